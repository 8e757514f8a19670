/* main.c - tgc-llama: run a LLaMA model from GGUF or a preset.
 *
 *   tgc-llama -m FILE.gguf | --model PRESET  -p PROMPT -n N
 *             [--temp T --top-k K --top-p P --seed S] [--device cpu|cuda|opencl]
 *             [--quantize f32|f16|bf16|int8|q4_0|nf4] [--max-context N]
 *             [--tokenize] [--logits-out FILE] [--tokens-in FILE] [--export FILE.gguf]
 *
 * Streams the generated text to stdout and ends with a summary on stderr:
 * load time, prompt and generation tokens per second, the time from
 * process start to the first generated token, and peak memory.
 */
#define _POSIX_C_SOURCE 200809L
#include "llama.h"
#include "tgc_internal.h"
#include "tokenizer.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct opts {
  const char *path, *preset, *prompt, *device, *logits_out, *tokens_in, *export_path;
  int n, top_k, max_context, quantize;
  double temp, top_p;
  uint64_t seed;
  bool tokenize, quiet;
} opts;

static void usage(FILE *f) {
  fprintf(f,
          "usage: tgc-llama (-m FILE.gguf | --model PRESET) [-p PROMPT] [-n N] [options]\n"
          "  -m, --model-path FILE   a GGUF LLaMA (Llama 2 / Llama 3 families)\n"
          "  --model PRESET          tiny, stories15m, small-512, llama3-1b, llama3-8b (random weights)\n"
          "  -p, --prompt TEXT       the prompt (default \"Once upon a time\")\n"
          "  -n N                    tokens to generate (default 32)\n"
          "  --temp T --top-k K --top-p P --seed S   sampling (temp 0: greedy, the default)\n"
          "  --device cpu|cuda|opencl                default: TGC_DEVICE, else the best available\n"
          "  --quantize f32|f16|bf16|int8|q4_0|nf4   convert weights at load\n"
          "  --max-context N         KV cache positions (default: the model's, at most 4096)\n"
          "  --tokenize              print the prompt's token ids as a JSON array and exit\n"
          "  --logits-out FILE       write every step's logits as raw little-endian f32 rows\n"
          "  --tokens-in FILE        feed a JSON array of token ids instead of a prompt\n"
          "  --export FILE.gguf      write the model (a preset) as GGUF and exit\n"
          "  -q, --quiet             no progress and no summary\n");
}

static bool parse(int argc, char **argv, opts *o) {
  *o = (opts){.prompt = "Once upon a time", .n = 32, .quantize = -1, .top_p = 1, .seed = 42};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    bool takes = true;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      exit(0);
    } else if (!strcmp(a, "--tokenize")) {
      o->tokenize = true, takes = false;
    } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
      o->quiet = true, takes = false;
    } else if (!v) {
      fprintf(stderr, "tgc-llama: %s needs a value (or is unknown; see --help)\n", a);
      return false;
    } else if (!strcmp(a, "-m") || !strcmp(a, "--model-path")) {
      o->path = v;
    } else if (!strcmp(a, "--model")) {
      o->preset = v;
    } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
      o->prompt = v;
    } else if (!strcmp(a, "-n")) {
      o->n = atoi(v);
    } else if (!strcmp(a, "--temp")) {
      o->temp = atof(v);
    } else if (!strcmp(a, "--top-k")) {
      o->top_k = atoi(v);
    } else if (!strcmp(a, "--top-p")) {
      o->top_p = atof(v);
    } else if (!strcmp(a, "--seed")) {
      o->seed = strtoull(v, NULL, 10);
    } else if (!strcmp(a, "--device")) {
      o->device = v;
    } else if (!strcmp(a, "--max-context")) {
      o->max_context = atoi(v);
    } else if (!strcmp(a, "--logits-out")) {
      o->logits_out = v;
    } else if (!strcmp(a, "--tokens-in")) {
      o->tokens_in = v;
    } else if (!strcmp(a, "--export")) {
      o->export_path = v;
    } else if (!strcmp(a, "--quantize")) {
      tgc_wtype t;
      if (!tgc_wtype_parse(v, &t)) {
        fprintf(stderr, "tgc-llama: --quantize %s: use f32, f16, bf16, int8, q4_0 or nf4\n", v);
        return false;
      }
      o->quantize = (int)t;
    } else {
      fprintf(stderr, "tgc-llama: unknown option %s (see --help)\n", a);
      return false;
    }
    i += takes;
  }
  if (!o->path == !o->preset) {
    fprintf(stderr, "tgc-llama: give a model: -m FILE.gguf or --model PRESET\n");
    return false;
  }
  if (o->n < 0 || o->top_p <= 0) {
    fprintf(stderr, "tgc-llama: -n must be >= 0 and --top-p > 0\n");
    return false;
  }
  return true;
}

/* A JSON array of integers: "[1, 2, 3]".  Anything after the '[' that is
 * not integers, commas and white space up to a ']' is refused, and so is
 * an id beyond 32 bits: a damaged file must not feed other tokens. */
static int32_t *read_ids(const char *path, int *n) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "tgc-llama: cannot open %s\n", path);
    return NULL;
  }
  int cap = 256, c;
  int32_t *ids = malloc(sizeof *ids * (size_t)cap);
  *n = 0;
  while ((c = fgetc(f)) != EOF && c != '[') {
  }
  long v;
  bool closed = false;
  while (ids && fscanf(f, " %ld", &v) == 1) {
    if (v < INT32_MIN || v > INT32_MAX) {
      fprintf(stderr, "tgc-llama: %s: token id %ld is outside the vocabulary\n", path, v);
      free(ids);
      fclose(f);
      return NULL;
    }
    if (*n == cap) ids = realloc(ids, sizeof *ids * (size_t)(cap *= 2));
    if (ids) ids[(*n)++] = (int32_t)v;
    while ((c = fgetc(f)) != EOF && (isspace(c) || c == ',')) {
    }
    if (c == ']' || c == EOF) {
      closed = c == ']';
      break;
    }
    ungetc(c, f);
  }
  fclose(f);
  if (ids && (*n == 0 || !closed)) {
    fprintf(stderr, "tgc-llama: %s: %s (a JSON array of integers)\n", path,
            *n == 0 ? "no token ids" : "not integers up to a closing ']'");
    free(ids);
    return NULL;
  }
  return ids;
}

static int32_t *encode(const tgc_llama_model *m, const char *text, int *n) {
  int k = tgc_tok_encode(m->tok, text, strlen(text), true, false, NULL, 0);
  if (k < 0) return NULL;
  int32_t *ids = malloc(sizeof *ids * (size_t)(k ? k : 1));
  if (ids) *n = tgc_tok_encode(m->tok, text, strlen(text), true, false, ids, k);
  return ids;
}

static void stream(const tgc_llama_model *m, int32_t id) {
  char buf[256];
  int k = tgc_tok_piece(m->tok, id, false, buf, sizeof buf);
  if (k > 0) fwrite(buf, 1, (size_t)(k < (int)sizeof buf ? k : (int)sizeof buf), stdout);
  fflush(stdout);
}

static int fail(const char *what) {
  fprintf(stderr, "tgc-llama: %s: %s\n", what, tgc_last_error());
  return 1;
}

static void summary(const tgc_llama_model *model, tgc_ctx *ctx, const tgc_llama *m, int n_prompt, int generated,
                    double t_start, double t_load, double t_prompt, double t_first, double gen_s) {
  const tgc_llama_config *c = &model->w.cfg;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  tgc_stats s;
  tgc_get_stats(ctx, &s);
  int timed = generated - 1; /* the first token's step is the cold start */
  fprintf(stderr,
          "\n%s on %s: %d layers, dim %d, weights %.1f MB (%s)\n"
          "load:        %.3f s\n"
          "prompt:      %d tokens, %.1f tokens/s\n"
          "generation:  %d tokens, %.1f tokens/s (%.2f ms/token)\n"
          "first token: %.3f s from process start\n"
          "peak memory: %.1f MB resident, %.1f MB tgc buffers\n",
          model->name, tgc_ctx_device(ctx), c->n_layers, c->dim, tgc_llama_weight_bytes(m) / 1e6,
          tgc_wtypes[model->w.layers[0].wq.type].name, t_load, n_prompt, t_prompt > 0 ? n_prompt / t_prompt : 0,
          timed > 0 ? timed : 0, timed > 0 ? timed / gen_s : 0, timed > 0 ? 1e3 * gen_s / timed : 0,
          t_first - t_start, (double)ru.ru_maxrss / 1024, (double)s.peak_bytes / 1e6);
}

/* Prompt through prefill (all but its last token), then one decode step
 * per generated token.  Returns the exit status; frees what it made. */
static int generate(const opts *o, tgc_llama_model *model, const int32_t *prompt, int n_prompt, double t_start) {
  tgc_llama_config *c = &model->w.cfg;
  tgc_ctx *ctx = tgc_ctx_new();
  if (!ctx) return fail("starting the device");
  double t_load0 = tgc_now();
  tgc_progress prog;
  tgc_progress_start(&prog, "loading", tgc_llama_weights_bytes(&model->w), o->quiet);
  tgc_llama *m = tgc_llama_new(ctx, &model->w, &prog);
  FILE *lf = NULL;
  float *logits = NULL;
  int rc = 1;
  if (!m) {
    rc = fail("loading the weights");
    goto done;
  }
  tgc_progress_end(&prog);
  double t_load = tgc_now() - t_load0;
  if (o->logits_out && !(lf = fopen(o->logits_out, "wb"))) {
    fprintf(stderr, "tgc-llama: cannot write %s\n", o->logits_out);
    goto done;
  }
  logits = malloc(sizeof *logits * (size_t)c->vocab);
  if (!logits) goto done;
  tgc_sampler sampler = {o->temp, o->top_k, o->top_p, o->seed};
  if (!o->tokens_in) fwrite(o->prompt, 1, strlen(o->prompt), stdout);
  double t0 = tgc_now(), t_first = 0, t_prompt = 0;
  int pos = n_prompt - 1, generated = 0;
  tgc_status st = n_prompt > 1 ? tgc_llama_eval(m, prompt, n_prompt - 1, 0, NULL, NULL) : TGC_OK;
  int32_t tok = prompt[n_prompt - 1], am;
  for (int i = 0; st == TGC_OK && i < o->n; i++) {
    if ((st = tgc_llama_eval(m, &tok, 1, pos++, logits, &am)) != TGC_OK) break;
    if (i == 0) t_prompt = (t_first = tgc_now()) - t0;
    if (lf) fwrite(logits, sizeof *logits, (size_t)c->vocab, lf);
    tok = o->temp <= 0 ? am : tgc_sample(&sampler, logits, c->vocab);
    generated++;
    if (!o->tokens_in) stream(model, tok);
    if (tgc_tok_is_eog(model->tok, tok)) break;
  }
  double t_end = tgc_now();
  printf("\n");
  if (st != TGC_OK) {
    rc = fail("generating");
    goto done;
  }
  if (!o->quiet) summary(model, ctx, m, n_prompt, generated, t_start, t_load, t_prompt, t_first, t_end - t_first);
  rc = 0;
done:
  if (lf) fclose(lf);
  free(logits);
  tgc_llama_free(m);
  tgc_ctx_free(ctx);
  return rc;
}

/* The prompt's ids fit the model: within its vocabulary and context. */
static bool prompt_fits(const opts *o, const tgc_llama_config *c, const int32_t *prompt, int n_prompt) {
  if (n_prompt < 1 || n_prompt + o->n > c->max_context) {
    fprintf(stderr, "tgc-llama: %d prompt tokens + %d to generate do not fit a context of %d (--max-context)\n",
            n_prompt, o->n, c->max_context);
    return false;
  }
  for (int i = 0; i < n_prompt; i++)
    if (prompt[i] < 0 || prompt[i] >= c->vocab) {
      fprintf(stderr, "tgc-llama: token %d is outside the vocabulary of %d\n", prompt[i], c->vocab);
      return false;
    }
  return true;
}

int main(int argc, char **argv) {
  double t_start = tgc_now();
  opts o;
  if (!parse(argc, argv, &o)) return 2;
  if (o.device) setenv("TGC_DEVICE", o.device, 1);
  tgc_llama_model model;
  tgc_progress prog;
  tgc_progress_start(&prog, "loading", 0, o.quiet);
  tgc_status st = o.path ? tgc_llama_load(o.path, o.quantize, &model, &prog)
                         : tgc_llama_load_preset(o.preset, o.quantize < 0 ? TGC_W_F32 : (tgc_wtype)o.quantize, o.seed, &model);
  if (st != TGC_OK) return fail("loading the model");
  int rc = 0, n_prompt = 0;
  int32_t *prompt = NULL;
  if (o.export_path) {
    if (tgc_llama_export(&model, o.export_path) != TGC_OK) rc = fail("writing the GGUF file");
    else if (!o.quiet) fprintf(stderr, "tgc-llama: wrote %s\n", o.export_path);
  } else if (!(prompt = o.tokens_in ? read_ids(o.tokens_in, &n_prompt) : encode(&model, o.prompt, &n_prompt))) {
    rc = o.tokens_in ? 1 : fail("tokenizing the prompt");
  } else if (o.tokenize) {
    printf("[");
    for (int i = 0; i < n_prompt; i++) printf("%s%d", i ? ", " : "", prompt[i]);
    printf("]\n");
  } else {
    tgc_llama_config *c = &model.w.cfg;
    if (o.max_context > 0) c->max_context = o.max_context;
    else if (c->max_context > 4096) c->max_context = 4096;
    rc = prompt_fits(&o, c, prompt, n_prompt) ? generate(&o, &model, prompt, n_prompt, t_start) : 1;
  }
  free(prompt);
  tgc_llama_model_free(&model);
  return rc;
}
