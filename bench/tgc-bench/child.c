/* child.c - the measurements that need a process of their own.
 *
 * Cold start: the time from nothing to the first token, as a user sees it,
 * can only be measured in a fresh process.  The parent reads the monotonic
 * clock, forks and execs tgc-bench itself with --child-cold and that time;
 * the child loads the model, runs the prompt and the first token, and
 * prints the time since the parent's clock reading (so exec, dynamic
 * loading and every start-up cost are in it), its load time, its peak RSS
 * (getrusage) and tgc's peak buffer bytes.  It then runs gen-len - 1 more
 * tokens, so its peak memory includes the JIT's record.  Each framework
 * runs cold-runs children with an empty kernel cache (a fresh
 * TGC_CACHE_DIR each) and as many with a warm one (the last of those
 * folders again).
 *
 * The kernel profile: a child under TGC_DEBUG=2 (every kernel launch is
 * synchronized and timed, one stderr line each) and TGC_JIT=0 (so every
 * step launches through realize, which prints; replays do not) runs the
 * prompt and three warm-up steps, then marks three steps on stderr; the
 * parent sums the marked lines by kernel name.
 */
#define _POSIX_C_SOURCE 200809L
#include "tgc_bench.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MARK_BEGIN "tgc-bench: profile begin"
#define MARK_STEP "tgc-bench: profile step"
#define MARK_END "tgc-bench: profile end"
#define PROFILE_WARM 3  /* untimed steps before the marked ones */
#define PROFILE_STEPS 3 /* marked steps */


/* ---- the child's side ------------------------------------------------------------- */

static int only_framework(const tb_opts *o) {
  for (int fw = 0; fw < TB_NFW; fw++)
    if (o->fw[fw]) return fw;
  return TB_TGC;
}

/* Opens the session and runs the prompt; *pos is the next position. */
static bool child_start(const tb_opts *o, tb_session *s, tb_torch *torch, int extra, int32_t *next) {
  int fw = only_framework(o);
  if (fw != TB_TGC) tb_torch_open(torch);
  if (!tb_session_open(s, o, fw, o->quant[0], torch, false)) return false;
  if (o->prompt_len + extra > s->cfg.max_context) {
    snprintf(s->err, sizeof s->err, "prompt and tokens exceed the context of %d", s->cfg.max_context);
    return false;
  }
  int32_t *prompt = malloc(sizeof *prompt * (size_t)o->prompt_len);
  if (!prompt) return false;
  tb_prompt_tokens(o->seed, s->cfg.vocab, o->prompt_len, prompt);
  bool ok = tb_session_prompt(s, prompt, o->prompt_len, false, next);
  free(prompt);
  return ok;
}

int tb_child_cold_main(const tb_opts *o) {
  tb_torch torch = {0};
  tb_session s;
  int32_t tok = 0;
  bool ok = child_start(o, &s, &torch, o->gen_len, &tok);
  double first_ms = 0;
  for (int i = 0; ok && i < o->gen_len; i++) {
    ok = tb_session_step(&s, tok, o->prompt_len + i, &tok, NULL);
    if (i == 0) first_ms = (double)(tb_now_ns() - o->child_t0_ns) / 1e6;
  }
  if (ok) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    tgc_stats st;
    tgc_get_stats(s.ctx, &st);
    printf("tgc-bench-child first_token_ms=%.6f load_s=%.6f maxrss_kb=%ld peak_bytes=%.0f\n", first_ms, s.load_s,
           ru.ru_maxrss, (double)st.peak_bytes);
  } else {
    fprintf(stderr, "tgc-bench child: %s\n", s.err[0] ? s.err : "out of memory");
  }
  tb_session_close(&s);
  tb_torch_close(&torch);
  return ok ? TB_EXIT_OK : TB_EXIT_FAIL;
}

int tb_child_profile_main(const tb_opts *o) {
  tb_torch torch = {0};
  tb_session s;
  int32_t tok = 0;
  bool ok = child_start(o, &s, &torch, PROFILE_WARM + PROFILE_STEPS, &tok);
  int pos = o->prompt_len;
  for (int i = 0; ok && i < PROFILE_WARM; i++) ok = tb_session_step(&s, tok, pos++, &tok, NULL);
  fprintf(stderr, "%s\n", MARK_BEGIN);
  for (int i = 0; ok && i < PROFILE_STEPS; i++) {
    fprintf(stderr, "%s %d\n", MARK_STEP, i + 1);
    ok = tb_session_step(&s, tok, pos++, &tok, NULL);
  }
  fprintf(stderr, "%s\n", MARK_END);
  if (!ok) fprintf(stderr, "tgc-bench child: %s\n", s.err[0] ? s.err : "out of memory");
  tb_session_close(&s);
  tb_torch_close(&torch);
  return ok ? TB_EXIT_OK : TB_EXIT_FAIL;
}

/* ---- starting a child ------------------------------------------------------------- */

typedef struct child_cmd {
  const char *argv[40];
  int argc;
  char num[6][32];   /* numbers in argv */
  char t0[32];       /* --child-cold's value: the clock at the fork */
  const char *env[8];/* "NAME=value" overrides */
  int nenv;
} child_cmd;

static void arg(child_cmd *c, const char *a) {
  if (c->argc < 38) c->argv[c->argc++] = a;
}

static void arg_num(child_cmd *c, const char *name, long long v) {
  int k = 0;
  while (k < 6 && c->num[k][0]) k++;
  if (k == 6) return;
  snprintf(c->num[k], sizeof c->num[k], "%lld", v);
  arg(c, name);
  arg(c, c->num[k]);
}

/* The child's options: the parent's model and settings, one framework
 * and one weight type. */
static void child_args(child_cmd *c, const tb_opts *o, int fw, int quant, const char *mode) {
  memset(c, 0, sizeof *c);
  arg(c, tb_exe_path());
  arg(c, mode);
  if (!strcmp(mode, "--child-cold")) arg(c, c->t0); /* filled in at the fork */
  arg(c, "--framework");
  arg(c, tb_fw_names[fw]);
  arg(c, o->model_path ? "--model-path" : "--model");
  arg(c, o->model_path ? o->model_path : o->model);
  if (quant >= 0) {
    arg(c, "--quantize");
    arg(c, tb_quant_name(quant));
  }
  if (o->device) {
    arg(c, "--device");
    arg(c, o->device);
  }
  arg_num(c, "--prompt-len", o->prompt_len);
  arg_num(c, "--gen-len", o->gen_len);
  arg_num(c, "--seed", (long long)o->seed);
  if (o->no_compile) arg(c, "--pytorch-no-compile");
  if (o->no_half) arg(c, "--pytorch-no-half");
}

/* environ with c's overrides; the array is malloc'd, the strings are not. */
static char **child_env(const child_cmd *c) {
  int n = 0;
  while (environ[n]) n++;
  char **env = malloc(sizeof *env * (size_t)(n + c->nenv + 1));
  if (!env) return NULL;
  int k = 0;
  for (int i = 0; i < n; i++) {
    bool replaced = false;
    for (int j = 0; j < c->nenv; j++) {
      size_t len = strcspn(c->env[j], "=") + 1;
      replaced |= !strncmp(environ[i], c->env[j], len);
    }
    if (!replaced) env[k++] = environ[i];
  }
  for (int j = 0; j < c->nenv; j++) env[k++] = (char *)c->env[j];
  env[k] = NULL;
  return env;
}

/* Runs c with stdout and stderr in files; its exit status, or -1.  The
 * child does only what is safe after a fork in a threaded program. */
static int run_child(child_cmd *c, const char *out, const char *errf) {
  char **env = child_env(c);
  int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), fe = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int status = -1;
  if (env && fo >= 0 && fe >= 0) {
    fflush(NULL);
    snprintf(c->t0, sizeof c->t0, "%lld", (long long)tb_now_ns());
    pid_t pid = fork();
    if (pid == 0) {
      dup2(fo, 1);
      dup2(fe, 2);
      execve(c->argv[0], (char *const *)c->argv, env);
      _exit(127);
    }
    if (pid > 0 && waitpid(pid, &status, 0) == pid)
      status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  }
  if (fo >= 0) close(fo);
  if (fe >= 0) close(fe);
  free(env);
  return status;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0, k;
  char *s = malloc(cap);
  while (s && (k = fread(s + n, 1, cap - n - 1, f)) > 0) {
    n += k;
    if (n + 1 == cap) s = realloc(s, cap *= 2);
  }
  fclose(f);
  if (s) s[n] = 0;
  return s;
}

/* The last lines of a child's stderr, for an error message. */
static void tail_of(const char *path, char *out, size_t cap) {
  char *s = slurp(path);
  size_t n = s ? strlen(s) : 0;
  while (n && s[n - 1] == '\n') s[--n] = 0;
  const char *t = s ? s + (n > 300 ? n - 300 : 0) : "";
  snprintf(out, cap, "%s", t);
  for (char *p = out; *p; p++)
    if (*p == '\n') *p = ' ';
  free(s);
}

/* ---- cold start: the parent's side ------------------------------------------------- */

typedef struct cold_result {
  double first_ms, load_s, rss_gb, peak_gb;
} cold_result;

static bool cold_once(child_cmd *c, int fw, const char *cache, const char *tmp, cold_result *res, char *err,
                      size_t cap) {
  char env_cache[640], out[600], errf[600];
  snprintf(env_cache, sizeof env_cache, "TGC_CACHE_DIR=%s", cache);
  snprintf(out, sizeof out, "%s/child.out", tmp);
  snprintf(errf, sizeof errf, "%s/child.err", tmp);
  c->env[0] = env_cache;
  c->nenv = 1;
  int rc = run_child(c, out, errf);
  char *text = slurp(out);
  long rss = 0;
  const char *line = text ? strstr(text, "tgc-bench-child ") : NULL;
  bool ok = rc == 0 && line &&
            sscanf(line, "tgc-bench-child first_token_ms=%lf load_s=%lf maxrss_kb=%ld peak_bytes=%lf", &res->first_ms,
                   &res->load_s, &rss, &res->peak_gb) == 4;
  free(text);
  res->rss_gb = (double)rss * 1024 / 1e9;
  res->peak_gb /= 1e9;
  if (ok) return true;
  char tail[400];
  tail_of(errf, tail, sizeof tail);
  return tb_fail(err, cap, "a cold-start child (%s) exited %d: %s", tb_fw_names[fw], rc, tail);
}

typedef struct cold_set {
  double empty[TB_MAX_COLD], warm[TB_MAX_COLD], load[TB_MAX_COLD], rss[2 * TB_MAX_COLD], peak[2 * TB_MAX_COLD];
  int n;
} cold_set;

static void cold_figures(tb_fw_result *f, const cold_set *cs) {
  f->cold_empty = tb_stat_of(cs->empty, cs->n);
  f->cold_warm = tb_stat_of(cs->warm, cs->n);
  f->load = tb_stat_of(cs->load, cs->n);
  f->rss_gb = tb_stat_of(cs->rss, 2 * cs->n);
  f->tgc_peak_gb = tb_stat_of(cs->peak, 2 * cs->n);
}

bool tb_cold_runs(const tb_opts *o, tb_run *run, int fw, const char *tmp, char *err, size_t cap) {
  int n = o->cold_runs; /* cli.c keeps it <= TB_MAX_COLD */
  child_cmd c;
  child_args(&c, o, fw, run->quant, "--child-cold");
  cold_set *cs = calloc(1, sizeof *cs);
  char cache[600], what[64];
  snprintf(what, sizeof what, "cold runs, %s %s", tb_fw_names[fw], run->qname);
  fprintf(stderr, "tgc-bench: %s: %d with an empty kernel cache, %d with a warm one\n", what, n, n);
  bool ok = cs != NULL;
  for (int k = 0; ok && k < 2 * n; k++) {
    if (k < n) snprintf(cache, sizeof cache, "%s/cold-%s-%s-%d", tmp, tb_fw_names[fw], run->qname, k);
    cold_result res;
    tb_bar(what, k, 2 * n);
    if (!(ok = cold_once(&c, fw, cache, tmp, &res, err, cap))) break;
    (k < n ? cs->empty : cs->warm)[k % n] = res.first_ms;
    if (k >= n) cs->load[k - n] = res.load_s;
    cs->rss[k] = res.rss_gb, cs->peak[k] = res.peak_gb;
  }
  tb_bar(what, ok ? 2 * n : -1, 2 * n);
  if (ok) {
    cs->n = n;
    cold_figures(&run->fw[fw], cs);
  }
  free(cs);
  return ok;
}

/* ---- the kernel profile ------------------------------------------------------------- */

static tb_kernel *kernel_slot(tb_kernel **ks, int *n, int *cap, const char *name) {
  for (int i = 0; i < *n; i++)
    if (!strcmp((*ks)[i].name, name)) return &(*ks)[i];
  if (*n == *cap) {
    tb_kernel *grown = realloc(*ks, sizeof **ks * (size_t)(*cap = *cap ? 2 * *cap : 32));
    if (!grown) return NULL;
    *ks = grown;
  }
  tb_kernel *k = &(*ks)[(*n)++];
  memset(k, 0, sizeof *k);
  snprintf(k->name, sizeof k->name, "%s", name);
  return k;
}

static int by_time(const void *a, const void *b) {
  double x = ((const tb_kernel *)a)->us, y = ((const tb_kernel *)b)->us;
  return (x < y) - (x > y);
}

/* One line of TGC_DEBUG=2: "tgc:   NAME   12.3 us   4.56 GFLOP/s   7.89 GB/s  opts". */
static void kernel_line(const char *line, tb_kernel **ks, int *n, int *cap) {
  char name[96];
  double us, gflops, gbs;
  if (sscanf(line, "tgc: %95s %lf us %lf GFLOP/s %lf GB/s", name, &us, &gflops, &gbs) != 4) return;
  tb_kernel *k = kernel_slot(ks, n, cap, name);
  if (!k) return;
  k->launches++;
  k->us += us;
  k->flops += gflops * 1e3 * us; /* GFLOP/s * us = 1e3 FLOP */
  k->bytes += gbs * 1e3 * us;
}

int tb_parse_kernel_lines(const char *text, tb_kernel **out, int *steps) {
  tb_kernel *ks = NULL;
  int n = 0, cap = 0;
  *steps = 0;
  const char *p = strstr(text, MARK_BEGIN);
  for (; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    if (!strncmp(p, MARK_END, strlen(MARK_END))) break;
    if (!strncmp(p, MARK_STEP, strlen(MARK_STEP))) (*steps)++;
    char line[512];
    size_t len = strcspn(p, "\n");
    snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
    kernel_line(line, &ks, &n, &cap);
  }
  for (int i = 0; i < n && *steps > 0; i++) {
    ks[i].launches /= *steps; /* per step */
    ks[i].us /= *steps, ks[i].flops /= *steps, ks[i].bytes /= *steps;
  }
  if (n) qsort(ks, (size_t)n, sizeof *ks, by_time);
  *out = ks;
  return n;
}

bool tb_profile_kernels(const tb_opts *o, tb_run *run, const char *cache, const char *tmp, char *err, size_t cap) {
  child_cmd c;
  child_args(&c, o, TB_TGC, run->quant, "--child-profile");
  char env_cache[640], out[600], errf[600];
  snprintf(env_cache, sizeof env_cache, "TGC_CACHE_DIR=%s", cache);
  snprintf(out, sizeof out, "%s/profile.out", tmp);
  snprintf(errf, sizeof errf, "%s/profile.err", tmp);
  c.env[0] = env_cache, c.env[1] = "TGC_DEBUG=2", c.env[2] = "TGC_JIT=0";
  c.nenv = 3;
  fprintf(stderr, "tgc-bench: profile, tgc %s: %d steps under TGC_DEBUG=2\n", run->qname, PROFILE_STEPS);
  int rc = run_child(&c, out, errf);
  char *text = slurp(errf);
  if (rc != 0 || !text) {
    free(text);
    char tail[400];
    tail_of(errf, tail, sizeof tail);
    return tb_fail(err, cap, "the profile child exited %d: %s", rc, tail);
  }
  run->nkernels = tb_parse_kernel_lines(text, &run->kernels, &run->profile_steps);
  free(text);
  return run->nkernels > 0 || tb_fail(err, cap, "the profile child printed no kernel lines (TGC_DEBUG=2)");
}
