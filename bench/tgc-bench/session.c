/* session.c - one framework running one model: load, prompt, decode step.
 *
 * Every framework gets a model instance of its own (its own context,
 * weights and KV cache), built by the same tgc loader, so loading costs
 * the same and the weights are identical bit for bit.  tgc decodes with
 * tgc_llama_eval (prefill graphs, then the JIT); torch runs the graph of
 * tgc_llama_step_graph through the comparison module (tgc_cmp_run).  Its
 * prompt runs either as one torch step graph per token (the cold-start
 * children: everything up to the first token is torch's own work) or as
 * tgc's prefill on torch's instance (the in-process run: torch's KV cache
 * then holds exactly tgc's values, so the logits are compared on the same
 * inputs, and torch's first decode step is its cold one, as tgc's is).
 * The step graph is built outside torch's timing: building it is tgc's
 * work, not torch's.
 */
#define _POSIX_C_SOURCE 200809L
#include "tgc_bench.h"
#include "../bench.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the comparison module -------------------------------------------------- */

static bool sym(void *dl, const char *name, void *fnptr) {
  void *p = dlsym(dl, name);
  memcpy(fnptr, &p, sizeof p); /* a function pointer from void *, as POSIX allows */
  return p != NULL;
}

static void torch_why(tb_torch *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->why, sizeof t->why, fmt, ap);
  va_end(ap);
  if (t->dl) dlclose(t->dl);
  t->dl = NULL;
}

void tb_torch_open(tb_torch *t) {
  memset(t, 0, sizeof *t);
  const char *env = getenv("TGC_COMPARE_LIB");
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/libtgc-compare.so", tb_exe_dir());
  if (env && *env) snprintf(path, sizeof path, "%s", env);
  if (access(path, F_OK) != 0) {
    if (env && *env)
      torch_why(t, "TGC_COMPARE_LIB=%s: no such file", env);
    else
      torch_why(t, "libtorch compare module not built (make compare; looked for %s)", path);
    return;
  }
  if (!(t->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
    torch_why(t, "cannot open %s: %s", path, dlerror());
    return;
  }
  int (*abi)(void) = NULL;
  const char *(*describe)(void) = NULL;
  if (!sym(t->dl, "tgc_cmp_abi", &abi)) return torch_why(t, "%s has no tgc_cmp_abi (not a compare module)", path);
  int have = abi();
  if (have != TGC_CMP_ABI)
    return torch_why(t, "%s has compare ABI %d, tgc-bench needs %d (rebuild: make compare)", path, have, TGC_CMP_ABI);
  if (!sym(t->dl, "tgc_cmp_describe", &describe) || !sym(t->dl, "tgc_cmp_new", &t->new_) ||
      !sym(t->dl, "tgc_cmp_free", &t->free_) || !sym(t->dl, "tgc_cmp_run", &t->run))
    return torch_why(t, "%s lacks a function of compare/tgc_compare.h", path);
  /* a runner made and dropped applies the thread count, so the description
   * says what the runs will use */
  const char *threads = getenv("TGC_THREADS");
  char err[TB_ERR] = "";
  tgc_cmp *c = t->new_(TGC_CMP_TORCH_BASE, threads && atoi(threads) > 0 ? atoi(threads) : 1, err, sizeof err);
  if (c) t->free_(c);
  /* torch-aoti runs only where Python's torch matches the module's libtorch */
  err[0] = 0;
  if ((c = t->new_(TGC_CMP_TORCH_AOTI, threads && atoi(threads) > 0 ? atoi(threads) : 1, err, sizeof err)))
    t->free_(c);
  else
    snprintf(t->aoti_why, sizeof t->aoti_why, "%s", err[0] ? err : "tgc_cmp_new failed");
  snprintf(t->describe, sizeof t->describe, "%s", describe() ? describe() : "libtorch");
}

void tb_torch_close(tb_torch *t) {
  if (t->dl) dlclose(t->dl);
  t->dl = NULL;
}

/* ---- a session ---------------------------------------------------------------- */

static bool fail(tb_session *s, const char *what) {
  snprintf(s->err, sizeof s->err, "%s %s: %s", tb_fw_names[s->fw], what, tgc_last_error());
  return false;
}

static tgc_status load_host(const tb_opts *o, int quant, tgc_llama_model *model) {
  if (o->model_path) return tgc_llama_load(o->model_path, quant, model, NULL);
  return tgc_llama_load_preset(o->model, quant < 0 ? TGC_W_F32 : (tgc_wtype)quant, o->seed, model);
}

static bool open_torch(tb_session *s) {
  if (!s->torch || !s->torch->dl) {
    tb_fmt(s->err, sizeof s->err, "%s: %s", tb_fw_names[s->fw], s->torch ? s->torch->why : "no compare module");
    return false;
  }
  const char *env = getenv("TGC_THREADS");
  int threads = env && atoi(env) > 0 ? atoi(env) : 1;
  char err[TB_ERR] = "";
  tgc_cmp_mode mode = s->fw == TB_TORCH_OPT    ? TGC_CMP_TORCH_OPT
                      : s->fw == TB_TORCH_AOTI ? TGC_CMP_TORCH_AOTI
                                               : TGC_CMP_TORCH_BASE;
  if (!(s->cmp = s->torch->new_(mode, threads, err, sizeof err)))
    snprintf(s->err, sizeof s->err, "%s: tgc_cmp_new: %s", tb_fw_names[s->fw], err);
  return s->cmp != NULL;
}

bool tb_session_open(tb_session *s, const tb_opts *o, int fw, int quant, const tb_torch *torch, bool progress) {
  memset(s, 0, sizeof *s);
  s->fw = fw;
  s->torch = torch;
  double t0 = bench_now();
  tgc_llama_model model;
  if (load_host(o, quant, &model) != TGC_OK) return fail(s, "loading the model");
  s->cfg = model.w.cfg;
  s->wtype = model.w.layers[0].wq.type;
  s->all_weight_bytes = tgc_llama_weights_bytes(&model.w);
  bool ok = (s->ctx = tgc_ctx_new()) != NULL;
  double t1 = bench_now();
  if (ok) {
    tgc_progress p;
    tgc_progress_start(&p, "uploading", s->all_weight_bytes, !progress);
    if ((ok = (s->m = tgc_llama_new(s->ctx, &model.w, &p)) != NULL)) tgc_progress_end(&p);
  }
  tgc_llama_model_free(&model); /* the device holds its own copy */
  if (!ok) return fail(s, s->ctx ? "uploading the weights" : "starting the device");
  s->upload_s = bench_now() - t1;
  if (fw != TB_TGC && !open_torch(s)) return false;
  s->load_s = bench_now() - t0;
  if (!(s->logits = malloc(sizeof *s->logits * (size_t)s->cfg.vocab))) {
    snprintf(s->err, sizeof s->err, "out of memory");
    return false;
  }
  return true;
}

static int32_t host_argmax(const float *x, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return best;
}

static bool torch_step(tb_session *s, int32_t token, int pos, int32_t *next, double *ms) {
  tgc_tensor *g = tgc_llama_step_graph(s->m, token, pos);
  if (!g) return fail(s, "building the step graph");
  char err[TB_ERR] = "";
  float *host = s->logits;
  double t0 = bench_now();
  int rc = s->torch->run(s->cmp, s->ctx, 1, &g, &host, err, sizeof err);
  if (ms) *ms = 1e3 * (bench_now() - t0);
  if (rc < 0) {
    snprintf(s->err, sizeof s->err, "%s: tgc_cmp_run at position %d: %s", tb_fw_names[s->fw], pos, err);
    return false;
  }
  *next = host_argmax(s->logits, s->cfg.vocab);
  return true;
}

bool tb_session_step(tb_session *s, int32_t token, int pos, int32_t *next, double *ms) {
  if (s->fw != TB_TGC) return torch_step(s, token, pos, next, ms);
  double t0 = bench_now();
  tgc_status st = tgc_llama_eval(s->m, &token, 1, pos, s->logits, next);
  if (ms) *ms = 1e3 * (bench_now() - t0);
  return st == TGC_OK || fail(s, "decode step");
}

bool tb_session_prompt(tb_session *s, const int32_t *tokens, int n, bool by_tgc, int32_t *next) {
  if (s->fw == TB_TGC || by_tgc)
    return tgc_llama_eval(s->m, tokens, n, 0, NULL, next) == TGC_OK || fail(s, "prefill");
  for (int i = 0; i < n; i++)
    if (!torch_step(s, tokens[i], i, next, NULL)) return false;
  return true;
}

void tb_session_close(tb_session *s) {
  if (s->cmp && s->torch && s->torch->free_) s->torch->free_(s->cmp);
  tgc_llama_free(s->m);
  tgc_ctx_free(s->ctx);
  free(s->logits);
  memset(s, 0, sizeof *s);
}

/* ---- inputs and labels -------------------------------------------------------- */

void tb_prompt_tokens(uint64_t seed, int vocab, int n, int32_t *out) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int i = 0; i < n; i++) { /* xorshift64*: the same ids on every machine */
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    uint64_t r = x * 0x2545F4914F6CDD1Dull;
    out[i] = vocab > 3 ? 3 + (int32_t)(r % (uint64_t)(vocab - 3)) : 0;
  }
}

void tb_precision(int fw, tgc_wtype wt, const char *device, const tb_opts *o, char *out, size_t cap) {
  bool half = (fw == TB_TORCH_OPT || fw == TB_TORCH_AOTI) && strcmp(device, "cpu") && !o->no_half;
  snprintf(out, cap, "%s/%s", tgc_wtypes[wt].name, half ? "f16" : "f32");
}
