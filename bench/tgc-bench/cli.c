/* cli.c - tgc-bench's options.
 *
 * One table describes every option: its name, what kind of value it
 * takes, where the value goes in tb_opts, and its help line, so --help
 * lists exactly what the parser accepts.  Multi-value options
 * (--framework, --quantize) take values until the next argument that
 * starts with "--".  Hidden entries are the child modes that tgc-bench
 * starts itself.
 */
#define _POSIX_C_SOURCE 200809L
#include "tgc_bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *const tb_fw_names[TB_NFW] = {"tgc", "torch-opt", "torch-base", "torch-aoti"};

typedef enum kind {
  K_FLAG,  /* bool, no value */
  K_INT,   /* int >= min */
  K_STR,   /* const char * */
  K_NUM,   /* double > 0 */
  K_FW,    /* framework names, several */
  K_QUANT, /* weight types, several */
  K_U64,   /* uint64_t (the seed) */
  K_T0,    /* --child-cold: nanoseconds; a cold-start child */
  K_CHILD, /* --child-profile: a profile child */
} kind;

typedef struct opt_def {
  const char *name;
  kind k;
  size_t off;      /* offsetof(tb_opts, field) */
  int min;         /* K_INT */
  const char *arg; /* the value in --help */
  const char *help;
  bool hidden;
} opt_def;

#define F(field) offsetof(tb_opts, field)
static const opt_def defs[] = {
    {"--framework", K_FW, 0, 0, "NAME...", "tgc torch-opt torch-base torch-aoti (default: every available one)", false},
    {"--model", K_STR, F(model), 0, "PRESET", "tiny, stories15m, small-512 (default), llama3-1b, llama3-8b", false},
    {"--model-path", K_STR, F(model_path), 0, "FILE.gguf", "a GGUF LLaMA instead of a preset", false},
    {"--device", K_STR, F(device), 0, "DEV", "cpu, cuda, opencl (default: TGC_DEVICE, else the best available)", false},
    {"--quantize", K_QUANT, 0, 0, "TYPE...", "f32 f16 bf16 int8 q4_0 nf4, a run each (default: f32 for presets)", false},
    {"--prompt-len", K_INT, F(prompt_len), 2, "N", "prompt tokens, run as prefill before the iterations (32)", false},
    {"--gen-len", K_INT, F(gen_len), 1, "N", "tokens each cold-start child generates; the first is timed (4)", false},
    {"--iterations", K_INT, F(iterations), 1, "N", "decode steps timed per framework (20)", false},
    {"--cold-runs", K_INT, F(cold_runs), 0, "N", "child processes per cache state for cold start (3)", false},
    {"--timing", K_FLAG, F(timing), 0, NULL, "per-iteration latency table", false},
    {"--profile", K_FLAG, F(profile), 0, NULL, "memory breakdown and per-kernel times of the steady-state step", false},
    {"--json", K_STR, F(json), 0, "FILE", "write every figure, the machine and the settings as JSON", false},
    {"--csv", K_STR, F(csv), 0, "FILE", "the same figures as CSV", false},
    {"--plot", K_STR, F(plot), 0, "FILE.svg", "per-iteration latency per framework (log scale)", false},
    {"--baseline", K_STR, F(baseline), 0, "FILE.json", "exit 3 when a ratio regressed against this earlier --json", false},
    {"--threshold", K_NUM, F(threshold), 0, "X", "allowed relative regression for --baseline (0.05)", false},
    {"--check", K_STR, F(check), 0, "FILE.json", "no run: check the ratios of this earlier --json against --baseline", false},
    {"--pytorch-no-compile", K_FLAG, F(no_compile), 0, NULL, "torch-opt and torch-aoti without their compiled graphs", false},
    {"--pytorch-no-half", K_FLAG, F(no_half), 0, NULL, "torch-opt and torch-aoti in f32 on GPUs too", false},
    {"--seed", K_U64, F(seed), 0, "N", "seed of preset weights and prompt tokens (1)", false},
    {"--self-test", K_FLAG, F(self_test), 0, NULL, "check the statistics code against known values and exit", false},
    {"--help", K_FLAG, F(help), 0, NULL, "this list", false},
    {"--child-cold", K_T0, F(child_t0_ns), 0, "T0", "(internal) a cold-start child", true},
    {"--child-profile", K_CHILD, 0, 0, NULL, "(internal) a kernel-profile child", true},
};
#undef F
#define NDEFS (int)(sizeof defs / sizeof defs[0])

void tb_usage(FILE *f) {
  fprintf(f, "usage: tgc-bench [options]   (no options: small-512 on the best device, every framework)\n");
  for (int i = 0; i < NDEFS; i++) {
    if (defs[i].hidden) continue;
    char head[48];
    snprintf(head, sizeof head, "%s%s%s", defs[i].name, defs[i].arg ? " " : "", defs[i].arg ? defs[i].arg : "");
    fprintf(f, "  %-32s %s\n", head, defs[i].help);
  }
  fprintf(f, "environment: TGC_THREADS (tgc's and libtorch's threads), TGC_COMPARE_LIB (the libtorch module)\n"
             "exit status: 0 ok, 1 a run failed, 2 bad options, 3 --baseline found a regression\n");
}

const char *tb_quant_name(int quant) { return quant < 0 ? "model" : tgc_wtypes[quant].name; }


static bool parse_long(const char *s, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end) return false;
  *out = v;
  return true;
}

/* One value of a multi-value option. */
static bool multi_value(tb_opts *o, kind k, const char *v, char *err, size_t cap) {
  if (k == K_FW) {
    for (int f = 0; f < TB_NFW; f++)
      if (!strcmp(v, tb_fw_names[f])) return o->fw[f] = o->fw_given = true;
    return tb_fail(err, cap, "--framework %s: use tgc, torch-opt, torch-base or torch-aoti", v);
  }
  tgc_wtype t;
  if (!tgc_wtype_parse(v, &t)) return tb_fail(err, cap, "--quantize %s: use f32, f16, bf16, int8, q4_0 or nf4", v);
  if (o->nquant == TB_MAX_QUANT) return tb_fail(err, cap, "--quantize: at most %d types", TB_MAX_QUANT);
  for (int i = 0; i < o->nquant; i++)
    if (o->quant[i] == (int)t) return true; /* a repeat is one run */
  o->quant[o->nquant++] = (int)t;
  return true;
}

/* A single value; *(field) gets it. */
static bool single_value(tb_opts *o, const opt_def *d, const char *v, char *err, size_t cap) {
  char *field = (char *)o + d->off;
  long n;
  if (d->k == K_STR) {
    *(const char **)field = v;
  } else if (d->k == K_INT) {
    if (!parse_long(v, &n) || n < d->min || n > 1000000)
      return tb_fail(err, cap, "%s %s: give a whole number >= %d", d->name, v, d->min);
    *(int *)field = (int)n;
  } else if (d->k == K_U64) {
    char *end;
    unsigned long long u = strtoull(v, &end, 10);
    if (*end || end == v || *v == '-') return tb_fail(err, cap, "%s %s: give a whole number >= 0", d->name, v);
    *(uint64_t *)field = u;
  } else if (d->k == K_T0) {
    char *end;
    long long t = strtoll(v, &end, 10);
    if (*end || end == v) return tb_fail(err, cap, "%s %s: not a time", d->name, v);
    *(int64_t *)field = t;
    o->child = TB_CHILD_COLD;
  } else { /* K_NUM */
    char *end;
    double x = strtod(v, &end);
    if (*end || end == v || !(x > 0 && x < 1e6)) return tb_fail(err, cap, "%s %s: give a number > 0", d->name, v);
    *(double *)field = x;
  }
  return true;
}

static const opt_def *find(const char *a) {
  if (!strcmp(a, "-h")) a = "--help";
  for (int i = 0; i < NDEFS; i++)
    if (!strcmp(a, defs[i].name)) return &defs[i];
  return NULL;
}

/* Parses argv[*i] and its values; *i ends on the last argument used. */
static bool parse_one(int argc, char **argv, int *i, tb_opts *o, char *err, size_t cap) {
  const opt_def *d = find(argv[*i]);
  if (!d) return tb_fail(err, cap, "unknown option %s (see --help)", argv[*i]);
  if (d->k == K_FLAG) return *(bool *)((char *)o + d->off) = true;
  if (d->k == K_CHILD) {
    o->child = TB_CHILD_PROFILE;
    return true;
  }
  if (d->k == K_FW || d->k == K_QUANT) {
    int got = 0;
    while (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0) {
      if (!multi_value(o, d->k, argv[++*i], err, cap)) return false;
      got++;
    }
    return got ? true : tb_fail(err, cap, "%s needs at least one value", d->name);
  }
  if (*i + 1 >= argc || !strncmp(argv[*i + 1], "--", 2)) return tb_fail(err, cap, "%s needs a value", d->name);
  return single_value(o, d, argv[++*i], err, cap);
}

static bool validate(tb_opts *o, char *err, size_t cap) {
  if (o->model && o->model_path) return tb_fail(err, cap, "give --model or --model-path, not both");
  if (!o->model && !o->model_path) o->model = "small-512";
  if (o->check && !o->baseline) return tb_fail(err, cap, "--check needs --baseline");
  if (o->cold_runs > TB_MAX_COLD) return tb_fail(err, cap, "--cold-runs %d: at most %d", o->cold_runs, TB_MAX_COLD);
  if (!o->threshold) o->threshold = 0.05;
  if (!o->fw_given)
    for (int f = 0; f < TB_NFW; f++) o->fw[f] = true;
  o->tgc_added = !o->fw[TB_TGC] && o->child == TB_CHILD_NONE; /* torch runs on tgc's tokens */
  o->fw[TB_TGC] |= o->tgc_added;
  if (o->nquant == 0) o->quant[o->nquant++] = o->model_path ? -1 : TGC_W_F32;
  if (o->device && strcmp(o->device, "cpu") && strcmp(o->device, "cuda") && strcmp(o->device, "opencl"))
    return tb_fail(err, cap, "--device %s: use cpu, cuda or opencl", o->device);
  return true;
}

bool tb_parse(int argc, char **argv, tb_opts *o, char *err, size_t cap) {
  *o = (tb_opts){.prompt_len = 32, .gen_len = 4, .iterations = 20, .cold_runs = 3, .seed = 1};
  for (int i = 1; i < argc; i++) {
    if (!parse_one(argc, argv, &i, o, err, cap)) return false;
    if (o->help) return true;
  }
  return validate(o, err, cap);
}
