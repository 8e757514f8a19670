/* test_compare.c - the libtorch comparison module (compare/) against tgc.
 *
 * The module is opened as tgc-bench opens it: dlopen of
 * build/libtgc-compare.so, found beside the test binary's folder (the
 * build folder is the parent of the tests/ folder holding the binary).
 * Every graph is run by libtorch in both modes and by tgc (tgc_realize,
 * tgc_to_host), and the outputs must agree: max|torch - tgc| / max|tgc| <=
 * 1e-5 for the op graphs (f32, a few hundred terms per sum), 1e-4 of the
 * logits' scale for the tiny LLaMA, whose greedy tokens must be the same.
 * Graphs that write memory (assign) run on separate copies of it, one for
 * tgc and one for libtorch, which must hold the same values afterwards.
 *
 * The library is built by `make compare` (and `make test`) where libtorch
 * is found, and the Makefile then defines TGC_HAVE_COMPARE: without it
 * the tests are skipped, saying why; with it, a missing library fails.
 * libtorch is read on the CPU device only: elsewhere they are skipped.
 */
#include "tgc_internal.h"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <unistd.h>

#include "../compare/tgc_compare.h"
#include "../llama/llama.h"
#include "ref.h"

/* ---- the library ------------------------------------------------------------ */

typedef struct cmp_api {
  int (*abi)(void);
  const char *(*describe)(void);
  tgc_cmp *(*make)(tgc_cmp_mode mode, int threads, char *err, size_t errcap);
  void (*free)(tgc_cmp *c);
  int (*run)(tgc_cmp *c, tgc_ctx *ctx, int n, tgc_tensor *const *outs, float *const *host, char *err, size_t errcap);
  int (*stats)(const tgc_cmp *c, tgc_cmp_stats *out);
} cmp_api;

static cmp_api api;
static const tgc_cmp_mode modes[2] = {TGC_CMP_TORCH_BASE, TGC_CMP_TORCH_OPT};
static const char *const mode_names[2] = {"torch-base", "torch-opt"};

/* Opens the library (or skips or fails the test); tests call it first. */
static void need_compare(void) {
#ifndef TGC_HAVE_COMPARE
  cr_skip_test("compare: libtgc-compare.so is not built here (libtorch not found, COMPARE=0 or a sanitizer build; "
               "see make compare)");
#else
  if (strcmp(tgc_ctx_device(tctx), "cpu") != 0)
    cr_skip_test("compare: libtorch reads tgc's buffers in host memory; TGC_DEVICE is %s", tgc_ctx_device(tctx));
  char exe[PATH_MAX], path[PATH_MAX + 64];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  cr_assert_gt(n, 0, "readlink /proc/self/exe failed");
  exe[n] = 0;
  snprintf(path, sizeof path, "%s/libtgc-compare.so", dirname(dirname(exe)));
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  cr_assert_not_null(lib, "compare: cannot open %s (%s): run make compare", path, dlerror());
  *(void **)&api.abi = dlsym(lib, "tgc_cmp_abi");
  *(void **)&api.describe = dlsym(lib, "tgc_cmp_describe");
  *(void **)&api.make = dlsym(lib, "tgc_cmp_new");
  *(void **)&api.free = dlsym(lib, "tgc_cmp_free");
  *(void **)&api.run = dlsym(lib, "tgc_cmp_run");
  *(void **)&api.stats = dlsym(lib, "tgc_cmp_get_stats");
  cr_assert(api.abi && api.describe && api.make && api.free && api.run && api.stats, "compare: %s lacks a function", path);
  cr_assert_eq(api.abi(), TGC_CMP_ABI, "compare: %s has ABI %d, not %d: rebuild it", path, api.abi(), TGC_CMP_ABI);
#endif
}

static tgc_cmp *runner(int m) {
  char err[512] = "";
  tgc_cmp *c = api.make(modes[m], 2, err, sizeof err);
  cr_assert_not_null(c, "tgc_cmp_new(%s): %s", mode_names[m], err);
  return c;
}

static void run_torch(tgc_cmp *c, tgc_ctx *ctx, int n, tgc_tensor *const *outs, float *const *host, const char *what) {
  char err[1024] = "";
  cr_assert_eq(api.run(c, ctx, n, outs, host, err, sizeof err), 0, "%s: tgc_cmp_run: %s", what, err);
}

/* max|got - want| / max|want|. */
static double scaled_error(const float *got, const float *want, int64_t n) {
  double err = 0, scale = 0;
  for (int64_t i = 0; i < n; i++) {
    err = fmax(err, fabs((double)got[i] - want[i]));
    scale = fmax(scale, fabs((double)want[i]));
  }
  return scale > 0 ? err / scale : err;
}

static float *host_of(tgc_tensor *t) {
  float *h = malloc(sizeof *h * (size_t)tgc_numel(t));
  cr_assert_not_null(h);
  return h;
}

static float *tgc_values(tgc_tensor *t) {
  float *h = host_of(t);
  cr_assert_eq(tgc_to_host(t, h, sizeof *h * (size_t)tgc_numel(t)), TGC_OK, "%s", tgc_last_error());
  return h;
}

/* Runs the f32 graph of outs[0..n) through libtorch in both modes, then
 * through tgc, and compares. */
static void agree(const char *what, int n, tgc_tensor *const *outs, double tol) {
  float *torch[2][4];
  cr_assert(n <= 4);
  for (int m = 0; m < 2; m++) {
    tgc_cmp *c = runner(m);
    for (int i = 0; i < n; i++) torch[m][i] = host_of(outs[i]);
    run_torch(c, tctx, n, outs, torch[m], what);
    api.free(c);
  }
  cr_assert_eq(tgc_realize(tctx, n, outs), TGC_OK, "%s", tgc_last_error());
  for (int i = 0; i < n; i++) {
    float *want = tgc_values(outs[i]);
    for (int m = 0; m < 2; m++) {
      double e = scaled_error(torch[m][i], want, tgc_numel(outs[i]));
      cr_expect_leq(e, tol, "%s, output %d, %s: error %.3g of the scale", what, i, mode_names[m], e);
      free(torch[m][i]);
    }
    free(want);
  }
}

TestSuite(compare, .init = ref_setup, .fini = ref_teardown);

/* ---- op graphs ------------------------------------------------------------------ */

static tgc_tensor *randn(int ndim, const int64_t *shape, uint64_t seed) {
  tgc_tensor *t = tgc_randn(tctx, TGC_F32, ndim, shape, seed);
  cr_assert_not_null(t, "%s", tgc_last_error());
  return t;
}

Test(compare, matmul) {
  need_compare();
  tgc_tensor *a = randn(SHAPE(2, 3, 5, 7), 1), *b = randn(SHAPE(3, 7, 4), 2), *v = randn(SHAPE(7), 3);
  tgc_tensor *bt = tgc_transpose(randn(SHAPE(2, 4, 7), 4), -1, -2); /* [2, 7, 4], not contiguous */
  tgc_tensor *outs[3] = {tgc_matmul(a, b), tgc_matmul(a, v), tgc_matmul(tgc_permute(a, INTS(1, 0, 2, 3)), bt)};
  for (int i = 0; i < 3; i++) cr_assert_not_null(outs[i], "%s", tgc_last_error());
  agree("matmul", 3, outs, 1e-5);
}

/* The broadcast product of a 2048^3 matmul would be 32 GiB: libtorch must
 * run it as one einsum of the operands.  Checked at a few entries against
 * f64 dot products (tgc's own matmul of this size would take the test's
 * time). */
Test(compare, matmul_is_one_einsum) {
  need_compare();
  enum { N = 2048 };
  tgc_tensor *a = randn(SHAPE(N, N), 21), *b = randn(SHAPE(N, N), 22), *ab = tgc_matmul(a, b);
  float *av = tgc_values(a), *bv = tgc_values(b), *got = host_of(ab);
  for (int m = 0; m < 2; m++) {
    tgc_cmp *c = runner(m);
    run_torch(c, tctx, 1, &ab, &got, "matmul 2048");
    api.free(c);
    for (int k = 0; k < 8; k++) {
      int i = (k * 613) % N, j = (k * 1499 + 7) % N;
      double want = 0, scale = 0;
      for (int t = 0; t < N; t++) want += (double)av[i * N + t] * bv[t * N + j], scale += fabs((double)av[i * N + t] * bv[t * N + j]);
      cr_expect_leq(fabs(got[i * N + j] - want), 1e-5 * scale, "%s: [%d, %d] is %g, not %g", mode_names[m], i, j,
                    got[i * N + j], want);
    }
  }
  free(av), free(bv), free(got);
}

Test(compare, softmax) {
  need_compare();
  tgc_tensor *x = tgc_mul(randn(SHAPE(4, 33), 4), tgc_scalar(tctx, TGC_F32, 3));
  tgc_tensor *outs[2] = {tgc_softmax(x, -1), tgc_log_softmax(x, 0)};
  agree("softmax", 2, outs, 1e-5);
}

Test(compare, rmsnorm) {
  need_compare();
  tgc_tensor *x = randn(SHAPE(3, 64), 5), *w = randn(SHAPE(64), 6);
  tgc_tensor *out = tgc_mul(tgc_rmsnorm(x, 1e-5), w);
  agree("rmsnorm", 1, &out, 1e-5);
}

Test(compare, rope) {
  need_compare();
  tgc_tensor *cos, *sin, *x = randn(SHAPE(5, 2, 16), 7);
  cr_assert_eq(tgc_rope_tables(tctx, 3, 5, 16, 10000, &cos, &sin), TGC_OK, "%s", tgc_last_error());
  tgc_tensor *out = tgc_rope(x, tgc_reshape(cos, SHAPE(5, 1, 8)), tgc_reshape(sin, SHAPE(5, 1, 8)));
  cr_assert_not_null(out, "%s", tgc_last_error());
  agree("rope", 1, &out, 1e-5);
}

/* Movement, casts and the elementwise ops tgc defines beyond ATen (idiv by
 * zero, shift counts, a gather out of range, u16 arithmetic). */
Test(compare, movement_and_ints) {
  need_compare();
  tgc_tensor *x = randn(SHAPE(4, 6), 8);
  tgc_tensor *moved = tgc_flip(tgc_pad(tgc_shrink(tgc_permute(x, INTS(1, 0)), I64S(1, 5, 0, 3)), I64S(0, 2, 1, 1)), AXES(0));
  int32_t iv[6] = {7, -7, 9, 0, -3, 12}, jv[6] = {2, 2, 0, 3, 33, -1}, kv[6] = {3, 5, 1, 0, 2, 9}, ids[3] = {2, -1, 5};
  tgc_tensor *i = tgc_from_data(tctx, TGC_I32, SHAPE(6), iv), *j = tgc_from_data(tctx, TGC_I32, SHAPE(6), jv);
  tgc_tensor *k = tgc_from_data(tctx, TGC_I32, SHAPE(6), kv);
  tgc_tensor *ints = tgc_add(tgc_add(tgc_idiv(i, j), tgc_mod(i, j)), tgc_shl(i, j));
  tgc_tensor *u = tgc_cast(tgc_mul(tgc_cast(i, TGC_U16), tgc_cast(k, TGC_U16)), TGC_F32); /* wraps at 2^16 */
  tgc_tensor *g = tgc_embedding(x, tgc_from_data(tctx, TGC_I32, SHAPE(3), ids));
  tgc_tensor *h = tgc_cast(tgc_bitcast(tgc_cast(x, TGC_F16), TGC_I16), TGC_F32);
  tgc_tensor *outs[4] = {tgc_add(moved, tgc_exp(moved)), tgc_add(tgc_cast(ints, TGC_F32), u), g, h};
  for (int k = 0; k < 4; k++) cr_assert_not_null(outs[k], "%s", tgc_last_error());
  agree("movement and ints", 4, outs, 1e-6);
}

/* ---- attention with a KV cache written at a variable position ---------------------- */

enum { POS = 8, HEADS = 2, HD = 16, DIM = HEADS * HD };

typedef struct attn {
  tgc_var *pos;
  tgc_tensor *wq, *wk, *wv; /* [DIM, DIM] */
  tgc_tensor *kc, *vc;      /* caches [POS, DIM] */
} attn;

/* One step at start_pos: x [1, DIM] -> attention output [1, DIM], with k
 * and v written into the caches at start_pos. */
static tgc_tensor *attn_step(attn *a, tgc_tensor *x) {
  tgc_tensor *q = tgc_matmul(x, a->wq), *k = tgc_matmul(x, a->wk), *v = tgc_matmul(x, a->wv);
  tgc_tensor *kc = tgc_assign(tgc_shrink_var(a->kc, 0, a->pos, 0, 1), k);
  tgc_tensor *vc = tgc_assign(tgc_shrink_var(a->vc, 0, a->pos, 0, 1), v);
  int64_t L = tgc_var_dim(a->pos, 1, 1);
  tgc_tensor *keys = tgc_permute(tgc_reshape(tgc_shrink(kc, I64S(0, L, 0, DIM)), SHAPE(L, HEADS, HD)), INTS(1, 2, 0));
  tgc_tensor *vals = tgc_permute(tgc_reshape(tgc_shrink(vc, I64S(0, L, 0, DIM)), SHAPE(L, HEADS, HD)), INTS(1, 0, 2));
  tgc_tensor *qh = tgc_permute(tgc_reshape(q, SHAPE(1, HEADS, HD)), INTS(1, 0, 2)); /* [H, 1, HD] */
  tgc_tensor *s = tgc_mul(tgc_matmul(qh, keys), tgc_scalar(tctx, TGC_F32, 1.0 / sqrt(HD)));
  tgc_tensor *o = tgc_matmul(tgc_softmax(s, -1), vals); /* [H, 1, HD] */
  return tgc_reshape(tgc_permute(o, INTS(1, 0, 2)), SHAPE(1, DIM));
}

/* Runs in static form (compare/static.cpp, TGC_CMP_STATIC=1): what
 * torch-opt runs on CUDA, checked here on the CPU.  Criterion runs each
 * test in its own process, so the variable set by a test stays in it. */
static bool want_static;
static void go_static(void) {
  cr_assert_eq(setenv("TGC_CMP_STATIC", "1", 1), 0);
  want_static = true;
}

/* Every run of c was (or, without go_static, was not) of a static program. */
static void expect_static_runs(tgc_cmp *c, const char *what) {
  tgc_cmp_stats st;
  cr_assert_eq(api.stats(c, &st), 0);
  cr_expect_eq(st.static_runs, want_static ? st.runs : 0, "%s: %llu of %llu runs static", what,
               (unsigned long long)st.static_runs, (unsigned long long)st.runs);
}

static void attention_kv_cache(void) {
  need_compare();
  tgc_var *pos = tgc_var_new(tctx, "start_pos", 0, POS - 1);
  float zeros[POS * DIM] = {0};
  attn a[2]; /* a[0] for tgc, a[1] for libtorch: the same weights, separate caches */
  tgc_tensor *wq = randn(SHAPE(DIM, DIM), 10), *wk = randn(SHAPE(DIM, DIM), 11), *wv = randn(SHAPE(DIM, DIM), 12);
  for (int m = 0; m < 2; m++) {
    tgc_cmp *c = runner(m);
    for (int k = 0; k < 2; k++) {
      a[k] = (attn){pos, wq, wk, wv, tgc_from_data(tctx, TGC_F32, SHAPE(POS, DIM), zeros),
                    tgc_from_data(tctx, TGC_F32, SHAPE(POS, DIM), zeros)};
      cr_assert(a[k].kc && a[k].vc, "%s", tgc_last_error());
    }
    for (int p = 0; p < POS; p++) {
      cr_assert_eq(tgc_var_bind(pos, p), TGC_OK);
      tgc_tensor *x = randn(SHAPE(1, DIM), 100 + (uint64_t)p);
      tgc_tensor *mine = attn_step(&a[0], x), *theirs = attn_step(&a[1], x);
      cr_assert(mine && theirs, "%s", tgc_last_error());
      float got[DIM], want[DIM];
      float *h = got;
      run_torch(c, tctx, 1, &theirs, &h, "attention");
      cr_assert_eq(tgc_to_host(mine, want, sizeof want), TGC_OK, "%s", tgc_last_error());
      double e = scaled_error(got, want, DIM);
      cr_expect_leq(e, 1e-5, "attention, %s, start_pos %d: error %.3g", mode_names[m], p, e);
    }
    float *k0 = tgc_values(a[0].kc), *k1 = tgc_values(a[1].kc), *v0 = tgc_values(a[0].vc), *v1 = tgc_values(a[1].vc);
    double ek = scaled_error(k1, k0, POS * DIM), ev = scaled_error(v1, v0, POS * DIM);
    cr_expect_leq(ek, 1e-5, "%s: the K cache libtorch wrote differs from tgc's by %.3g", mode_names[m], ek);
    cr_expect_leq(ev, 1e-5, "%s: the V cache libtorch wrote differs from tgc's by %.3g", mode_names[m], ev);
    for (int r = 0; r < POS; r++) /* every row written */
      cr_expect_neq(k1[r * DIM] + k1[r * DIM + 1], 0, "%s: cache row %d not written", mode_names[m], r);
    free(k0), free(k1), free(v0), free(v1);
    expect_static_runs(c, "attention");
    api.free(c);
  }
}

Test(compare, attention_kv_cache) { attention_kv_cache(); }

/* The static form: the cache read at full length with the rows past
 * start_pos masked, the rope and cache rows at start_pos gathered and
 * index-copied; same results at every position. */
Test(compare, attention_kv_cache_static) {
  go_static();
  attention_kv_cache();
}

/* What the static form cannot express is an error with a message, never
 * a different function: padding the symbolic axis of a cache window. */
Test(compare, static_refuses_padding_a_symbolic_axis) {
  need_compare();
  go_static();
  tgc_var *pos = tgc_var_new(tctx, "start_pos", 0, POS - 1);
  cr_assert_not_null(pos, "%s", tgc_last_error());
  cr_assert_eq(tgc_var_bind(pos, 3), TGC_OK);
  tgc_tensor *cache = randn(SHAPE(POS, DIM), 5);
  cr_assert_eq(tgc_realize(tctx, 1, &cache), TGC_OK, "%s", tgc_last_error());
  int64_t r[4] = {0, tgc_var_dim(pos, 1, 1), 0, DIM}, pads[4] = {0, 2, 0, 0};
  tgc_tensor *w = tgc_pad(tgc_shrink(cache, r), pads);
  cr_assert_not_null(w, "%s", tgc_last_error());
  tgc_tensor *y = tgc_sum(w, 1, (int[]){0}, false);
  cr_assert_not_null(y, "%s", tgc_last_error());
  tgc_cmp *c = runner(0);
  float out[DIM], *host = out;
  char err[512] = "";
  cr_expect_lt(api.run(c, tctx, 1, &y, &host, err, sizeof err), 0, "a pad of a symbolic axis is refused");
  cr_expect(strstr(err, "padding an axis of symbolic length") != NULL, "the message says why: \"%s\"", err);
  api.free(c);
}

/* ---- the tiny LLaMA, greedy --------------------------------------------------------- */

static int argmax(const float *x, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return best;
}

/* tol: the largest error allowed, a fraction of the logits' scale; the
 * greedy tokens must agree too unless the run is in bf16 (want_half),
 * where near ties may flip. */
static bool want_half;
static void llama_greedy_tol(const char *preset, tgc_wtype wt, int steps, double tol);
static void llama_greedy(const char *preset, tgc_wtype wt, int steps) { llama_greedy_tol(preset, wt, steps, 1e-4); }

static void llama_greedy_tol(const char *preset, tgc_wtype wt, int steps, double tol) {
  tgc_llama_weights w;
  cr_assert_eq(tgc_llama_preset(preset, wt, 7, &w), TGC_OK, "%s", tgc_last_error());
  int V = w.cfg.vocab;
  float *want = malloc(sizeof *want * (size_t)V), *got = malloc(sizeof *got * (size_t)V);
  for (int m = 0; m < 2; m++) {
    tgc_ctx *ctx2 = tgc_ctx_new(); /* the model libtorch runs: its own KV cache */
    cr_assert_not_null(ctx2, "%s", tgc_last_error());
    tgc_llama *m1 = tgc_llama_new(tctx, &w, NULL), *m2 = tgc_llama_new(ctx2, &w, NULL);
    cr_assert(m1 && m2, "%s", tgc_last_error());
    tgc_cmp *c = runner(m);
    int32_t tok = 1;
    double worst = 0, exec = 0;
    tgc_cmp_stats st = {0};
    for (int pos = 0; pos < steps; pos++) {
      int32_t am;
      cr_assert_eq(tgc_llama_eval(m1, &tok, 1, pos, want, &am), TGC_OK, "step %d: %s", pos, tgc_last_error());
      tgc_tensor *g = tgc_llama_step_graph(m2, tok, pos);
      cr_assert_not_null(g, "%s", tgc_last_error());
      run_torch(c, ctx2, 1, &g, &got, preset);
      double e = scaled_error(got, want, V);
      worst = fmax(worst, e);
      cr_assert_leq(e, tol, "%s %s, %s, step %d: error %.3g of the logits' scale", preset, tgc_wtypes[wt].name,
                    mode_names[m], pos, e);
      if (!want_half)
        cr_assert_eq(argmax(got, V), am, "%s, %s, step %d: libtorch's greedy token %d, tgc's %d", preset, mode_names[m],
                   pos, argmax(got, V), am);
      api.stats(c, &st);
      if (pos >= 2) exec += st.exec_s;
      tok = am;
    }
    if (modes[m] == TGC_CMP_TORCH_OPT) cr_expect_eq(st.compiles, 1, "one TorchScript compile serves every step");
    expect_static_runs(c, preset);
    cr_log_info("compare: %s %s, %s (%s): %d steps, worst error %.2g; first call %.1f ms, then %.3f ms a step "
                "(+%.3f ms walking the graph)",
                preset, tgc_wtypes[wt].name, mode_names[m], api.describe(), steps, worst, st.first_s * 1e3,
                steps > 2 ? exec / (steps - 2) * 1e3 : 0.0, st.translate_s * 1e3);
    api.free(c);
    tgc_llama_free(m1);
    tgc_llama_free(m2);
    tgc_ctx_free(ctx2);
    tgc_ctx_free(tctx); /* a fresh context for the next mode's tgc model (variables are per context) */
    tctx = tgc_ctx_new();
    cr_assert_not_null(tctx, "%s", tgc_last_error());
  }
  free(want);
  free(got);
  tgc_llama_weights_free(&w);
}

Test(compare, llama_tiny, .timeout = 300) {
  need_compare();
  llama_greedy("tiny", TGC_W_F32, 16);
}

/* Quantized weights: dequantisation as ops on the raw bytes (shifts,
 * masks, u16 scale bytes bitcast to f16), then an einsum over blocks. */
Test(compare, llama_tiny_quantized, .timeout = 300) {
  need_compare();
  llama_greedy("tiny", TGC_W_Q8_0, 4);
  llama_greedy("tiny", TGC_W_Q4_0, 4);
}

/* The decode step in the form torch-opt captures on CUDA, on the CPU. */
Test(compare, llama_tiny_static, .timeout = 300) {
  need_compare();
  go_static();
  llama_greedy("tiny", TGC_W_F32, 16);
  llama_greedy("tiny", TGC_W_Q8_0, 4);
}

/* ...and in its reduced precision: f16 on CUDA, bf16 here (this
 * libtorch has no f16 exp on the CPU), sums in f32.  bf16 keeps 8
 * significant bits, a relative rounding of 2^-9 per value; the tiny
 * model's dozen rounded ops in sequence stay within 3% of the logits'
 * scale (measured: 0.6%), while a wrong mask or cache row gives errors of
 * the order of the scale itself. */
Test(compare, llama_tiny_static_half, .timeout = 300) {
  need_compare();
  cr_assert_eq(setenv("TGC_CMP_STATIC", "half", 1), 0);
  want_static = want_half = true;
  llama_greedy_tol("tiny", TGC_W_F32, 16, 0.03);
  llama_greedy_tol("stories15m", TGC_W_F16, 4, 0.03);
}

/* ---- errors ---------------------------------------------------------------------- */

/* torch-aoti needs AOTInductor's loader (libtorch 2.6 or later) and a
 * Python whose torch is that libtorch's version.  Where either is missing
 * (Debian's libtorch 1.13 has no loader; TGC_PYTHON names no Python),
 * tgc_cmp_new refuses with the reason, as tgc-bench shows it. */
Test(compare, aoti_where_it_cannot_run_is_a_clear_error) {
  need_compare();
  cr_assert_eq(setenv("TGC_PYTHON", "/nonexistent/python3", 1), 0);
  char err[512] = "";
  tgc_cmp *c = api.make(TGC_CMP_TORCH_AOTI, 1, err, sizeof err);
  cr_assert_null(c, "torch-aoti with no Python must be refused");
  cr_expect(strstr(err, "AOTInductor") != NULL, "the message names AOTInductor: \"%s\"", err);
  cr_expect(strstr(err, "no AOTInductor loader") || strstr(err, "/nonexistent/python3"),
            "and says what is missing (the loader, or the Python): \"%s\"", err);
}

Test(compare, bad_arguments) {
  need_compare();
  char err[512] = "";
  cr_expect_null(api.make((tgc_cmp_mode)7, 1, err, sizeof err), "an unknown mode is refused");
  cr_expect_neq(err[0], 0, "with a message");
  tgc_cmp *c = runner(0);
  float out[4], *host = out;
  err[0] = 0;
  cr_expect_lt(api.run(c, tctx, 1, NULL, &host, err, sizeof err), 0, "NULL outs is refused");
  cr_expect(strstr(err, "outs") != NULL, "the message names outs: \"%s\"", err);
  tgc_tensor *x = randn(SHAPE(4), 1), *none = NULL;
  err[0] = 0;
  cr_expect_lt(api.run(c, tctx, 1, &none, &host, err, sizeof err), 0, "a NULL output is refused");
  cr_expect_neq(err[0], 0);
  cr_expect_lt(api.run(c, NULL, 1, &x, &host, NULL, 0), 0, "a NULL context is refused (err may be NULL)");
  api.free(c);
  api.free(NULL);
  cr_expect(strstr(api.describe(), "libtorch") != NULL, "describe: %s", api.describe());
}
