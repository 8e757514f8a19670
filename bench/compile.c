/* compile.c - cold compile time of one schedule of 20+ distinct kernels.
 *
 * Cold start is what a user of a run-time compiler waits for first, and
 * tgc compiles the kernels of one schedule that miss the cache together
 * (batched into a few compiler processes that run at once) rather than one
 * `cc` after another.  This measures that, against the one-at-a-time way:
 *
 *   cold        one tgc_realize of 24 outputs (softmaxes, reductions over
 *               different axes, elementwise chains of different lengths,
 *               matmuls, norms), each a different small computation, in a
 *               new context with a new, empty TGC_CACHE_DIR (mkdtemp)
 *   warm        the same graph in a new context on the same cache dir: every
 *               kernel comes from disk, nothing is compiled (checked)
 *   sequential  the same graph in a new context with another empty cache
 *               dir, one tgc_realize per output: one compiler wave per
 *               output (the kernels of a multi-kernel output, such as a
 *               softmax's three, still share their wave)
 *
 * Each is repeated TGC_BENCH_COMPILE_REPS times (default 3; fresh
 * directories every time, cold and sequential alternating) and the median
 * is reported.  Exits non-zero if there are fewer than 20 distinct kernels,
 * if the warm run compiles anything, or if any result differs between the
 * three ways of computing it.
 */
#define _GNU_SOURCE
#include "bench.h"
#include <tgc.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_OUTS 32

static void die(const char *what) {
  fprintf(stderr, "compile: %s: %s (%s)\n", what, tgc_last_error(), tgc_status_str(tgc_last_status()));
  exit(1);
}

/* ---- the graph --------------------------------------------------------- */

static tgc_tensor *rnd(tgc_ctx *ctx, int nd, int64_t d0, int64_t d1, int64_t d2, uint64_t seed) {
  int64_t s[3] = {d0, d1, d2};
  return tgc_randn(ctx, TGC_F32, nd, s, seed);
}

/* Elementwise chain of n steps on x, each a different op. */
static tgc_tensor *chain(tgc_tensor *x, int n) {
  for (int i = 0; i < n; i++) {
    switch (i % 6) {
    case 0: x = tgc_mul(x, x); break;
    case 1: x = tgc_exp(tgc_neg(x)); break;
    case 2: x = tgc_add(x, tgc_sin(x)); break;
    case 3: x = tgc_tanh(x); break;
    case 4: x = tgc_sigmoid(x); break;
    case 5: x = tgc_sqrt(tgc_relu(x)); break;
    }
  }
  return x;
}

/* 24 outputs, each a different small computation; their kernels differ in
 * op or shape, so none is a duplicate of another.  Inputs are seeded and
 * realized at creation, so every kernel belongs to the one schedule. */
static int build(tgc_ctx *ctx, tgc_tensor **outs) {
  int n = 0, ax;
  /* softmax and log-softmax over the last axis of different shapes: 3 kernels each */
  outs[n++] = tgc_softmax(rnd(ctx, 2, 4, 100, 0, 1), -1);
  outs[n++] = tgc_softmax(rnd(ctx, 2, 16, 33, 0, 2), -1);
  outs[n++] = tgc_softmax(rnd(ctx, 3, 2, 3, 50, 3), 1);
  outs[n++] = tgc_log_softmax(rnd(ctx, 2, 7, 64, 0, 4), -1);
  /* sums, maxes and means over different axes */
  tgc_tensor *r = rnd(ctx, 3, 8, 16, 32, 5);
  ax = 0, outs[n++] = tgc_sum(r, 1, &ax, false);
  ax = 1, outs[n++] = tgc_sum(r, 1, &ax, false);
  ax = 2, outs[n++] = tgc_sum(r, 1, &ax, true);
  ax = 1, outs[n++] = tgc_max(r, 1, &ax, false);
  ax = 2, outs[n++] = tgc_mean(r, 1, &ax, false);
  outs[n++] = tgc_sum(r, 0, NULL, false);
  /* elementwise chains of lengths 1..6 on different shapes */
  for (int len = 1; len <= 6; len++) outs[n++] = chain(rnd(ctx, 2, 3 + len, 40 + len, 0, 10 + (uint64_t)len), len);
  /* matmuls of different shapes, one with bias and relu fused */
  outs[n++] = tgc_matmul(rnd(ctx, 2, 8, 16, 0, 20), rnd(ctx, 2, 16, 24, 0, 21));
  outs[n++] = tgc_matmul(rnd(ctx, 2, 5, 7, 0, 22), rnd(ctx, 2, 7, 9, 0, 23));
  outs[n++] = tgc_matmul(rnd(ctx, 3, 3, 4, 32, 24), rnd(ctx, 3, 3, 32, 12, 25));
  outs[n++] = tgc_relu(tgc_add(tgc_matmul(rnd(ctx, 2, 6, 20, 0, 26), rnd(ctx, 2, 20, 10, 0, 27)),
                               rnd(ctx, 1, 10, 0, 0, 28)));
  /* norms */
  outs[n++] = tgc_mul(tgc_rmsnorm(rnd(ctx, 2, 6, 48, 0, 29), 1e-5), rnd(ctx, 1, 48, 0, 0, 30));
  outs[n++] = tgc_layernorm(rnd(ctx, 2, 5, 72, 0, 31), 1e-5);
  /* a transposed-input reduction and a where */
  ax = -1, outs[n++] = tgc_sum(tgc_transpose(rnd(ctx, 2, 24, 18, 0, 32), 0, 1), 1, &ax, false);
  tgc_tensor *w = rnd(ctx, 2, 9, 11, 0, 33);
  outs[n++] = tgc_where(tgc_gt(w, tgc_scalar(ctx, TGC_F32, 0.25)), w, tgc_cos(w));
  for (int i = 0; i < n; i++)
    if (!outs[i]) die("building the graph");
  return n;
}

/* ---- runs ---------------------------------------------------------------- */

typedef struct {
  double ms; /* wall time of the realize call(s) */
  tgc_stats st;
  int nouts;
  float *vals[MAX_OUTS]; /* results, for the cross-check */
  int64_t nvals[MAX_OUTS];
} run_result;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static char *new_cache_dir(void) {
  const char *tmp = getenv("TMPDIR");
  char *dir = malloc(4096);
  if (!dir) exit(1);
  snprintf(dir, 4096, "%s/tgc-bench-compile-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    perror("compile: mkdtemp");
    exit(1);
  }
  return dir;
}

static void free_cache_dir(char *dir) {
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

/* Builds the graph in a new context on cache dir `dir` and realizes it,
 * all at once or one output at a time. */
static run_result run(const char *dir, bool one_by_one) {
  setenv("TGC_CACHE_DIR", dir, 1);
  run_result r = {0};
  tgc_ctx *ctx = tgc_ctx_new();
  if (!ctx) die("tgc_ctx_new");
  tgc_tensor *outs[MAX_OUTS];
  r.nouts = build(ctx, outs);
  tgc_stats_reset(ctx);
  double t0 = bench_now();
  if (one_by_one) {
    for (int i = 0; i < r.nouts; i++)
      if (tgc_realize(ctx, 1, &outs[i]) != TGC_OK) die("tgc_realize");
  } else if (tgc_realize(ctx, r.nouts, outs) != TGC_OK) {
    die("tgc_realize");
  }
  r.ms = (bench_now() - t0) * 1e3;
  tgc_get_stats(ctx, &r.st);
  for (int i = 0; i < r.nouts; i++) {
    r.nvals[i] = tgc_numel(outs[i]);
    r.vals[i] = malloc(sizeof(float) * (size_t)r.nvals[i]);
    if (!r.vals[i]) exit(1);
    if (tgc_to_host(outs[i], r.vals[i], sizeof(float) * (size_t)r.nvals[i]) != TGC_OK) die("tgc_to_host");
  }
  tgc_ctx_free(ctx);
  return r;
}

static void run_free(run_result *r) {
  for (int i = 0; i < r->nouts; i++) free(r->vals[i]);
}

/* Do two runs give the same numbers?  (Same kernels, so bit-equal is
 * expected; a tiny tolerance allows for a different batching.) */
static bool same(const run_result *a, const run_result *b) {
  if (a->nouts != b->nouts) return false;
  for (int i = 0; i < a->nouts; i++)
    for (int64_t j = 0; j < a->nvals[i]; j++) {
      float x = a->vals[i][j], y = b->vals[i][j];
      if (!(fabsf(x - y) <= 1e-6f * (1 + fabsf(x)))) {
        fprintf(stderr, "compile: output %d element %lld differs: %g vs %g\n", i, (long long)j, x, y);
        return false;
      }
    }
  return true;
}

int main(void) {
  const char *re = getenv("TGC_BENCH_COMPILE_REPS");
  int reps = re && atoi(re) > 0 ? atoi(re) : 3;
  setenv("TGC_CACHE", "1", 1);
  const char *cc = getenv("TGC_CC");

  double cold[16], warm[16], seq[16], cold_cs[16], seq_cs[16];
  if (reps > 16) reps = 16;
  run_result c = {0}, w = {0}, s = {0};
  bool ok = true;
  for (int i = 0; i < reps; i++) {
    char *d1 = new_cache_dir(), *d2 = new_cache_dir();
    run_free(&c), run_free(&w), run_free(&s);
    c = run(d1, false);
    w = run(d1, false);
    s = run(d2, true);
    cold[i] = c.ms, warm[i] = w.ms, seq[i] = s.ms;
    cold_cs[i] = c.st.compile_seconds, seq_cs[i] = s.st.compile_seconds;
    ok = ok && same(&c, &w) && same(&c, &s);
    if (w.st.compiles != 0) {
      fprintf(stderr, "compile: the warm run compiled %llu kernels (expected 0)\n",
              (unsigned long long)w.st.compiles);
      ok = false;
    }
    free_cache_dir(d1);
    free_cache_dir(d2);
  }
  double mc = bench_median(cold, reps), mw = bench_median(warm, reps), ms = bench_median(seq, reps);
  double mcc = bench_median(cold_cs, reps), msc = bench_median(seq_cs, reps);

  printf("compile: one schedule of %d outputs, fresh TGC_CACHE_DIR per cold run, compiler %s, "
         "median of %d\n\n", c.nouts, cc && *cc ? cc : "cc", reps);
  printf("%-11s %8s %8s %8s %13s %9s %10s\n", "run", "realizes", "kernels", "compiled",
         "compiler_runs", "ms", "compile s");
  printf("%-11s %8d %8llu %8llu %13llu %9.1f %10.3f\n", "cold", 1,
         (unsigned long long)c.st.kernels_scheduled, (unsigned long long)c.st.compiles,
         (unsigned long long)c.st.compiler_runs, mc, mcc);
  printf("%-11s %8d %8llu %8llu %13llu %9.1f %10.3f   (%llu disk hits)\n", "warm", 1,
         (unsigned long long)w.st.kernels_scheduled, (unsigned long long)w.st.compiles,
         (unsigned long long)w.st.compiler_runs, mw, w.st.compile_seconds,
         (unsigned long long)w.st.cache_disk_hits);
  printf("%-11s %8d %8llu %8llu %13llu %9.1f %10.3f\n", "sequential", s.nouts,
         (unsigned long long)s.st.kernels_scheduled, (unsigned long long)s.st.compiles,
         (unsigned long long)s.st.compiler_runs, ms, msc);
  printf("\n  cold/sequential = %.2f (batched schedule vs one realize per output); "
         "warm/cold = %.3f\n", mc / ms, mw / mc);
  printf("  ms: wall time of the realize call(s); compile s: tgc's stats.compile_seconds (wall time\n"
         "  in the compiler); both medians.  compiler_runs is stats.compiler_runs as the library\n"
         "  counts it: one per batch of misses handed to the compiler (a wave of up to\n"
         "  min(kernels, CPUs, 8) concurrent cc processes), not one per process\n");

  if (c.st.compiles < 20) {
    fprintf(stderr, "compile: only %llu distinct kernels compiled (want >= 20)\n",
            (unsigned long long)c.st.compiles);
    ok = false;
  }
  run_free(&c), run_free(&w), run_free(&s);
  return ok ? 0 : 1;
}
