/* matvec.c - GB/s of weight traffic for a matrix-vector product, next to
 * the read bandwidth of a plain C loop measured in the same run.
 *
 * A decode step of a LLaMA-style model is a string of [1,K] @ [K,N]
 * products; each reads its whole weight matrix once and does 2 flops per
 * weight, so it is bound by memory bandwidth and the fair measure is
 * "bytes of weight per second" against the best a simple loop can read.
 *
 * Cases: (K,N) = (4096,4096) and (2048,8192), f32 and f16 weights (x has
 * the weights' dtype, since tgc's binary ops take equal dtypes; the kernel
 * computes in f32).  Two layouts per case:
 *   nk  W stored [N,K] row-major as GGUF/LLaMA store it (each output's K
 *       weights contiguous); y = x @ transpose(W)
 *   kn  W stored [K,N] row-major; y = x @ W
 *
 * Timing: the graph is built and realized once (warm-up: schedules and
 * compiles).  Each repetition then makes a fresh x (tgc hash-conses graphs
 * and a realized node stays realized, so a new input makes a new graph;
 * its upload is outside the clock) and times tgc_realize of x @ W, which
 * includes scheduling, the in-memory program cache lookup and the launch.
 * tgc repetitions alternate with baseline repetitions so that neither gets
 * a systematic cache advantage; both read buffers of the same byte size on
 * the same number of threads.  Then, for context only, "hot" figures: all
 * tgc repetitions back to back, then all baseline ones.  Reported: medians.
 *
 * The baseline: a buffer of the weights' byte size, allocated for the
 * baseline, summed by `threads` threads (the caller and persistent
 * pthreads), each over its slice with the widest vector loads the compiler
 * targets (-march=native), as 4 side-by-side streams with 8 independent
 * accumulators in all (see sum_slice).  Its clock runs from a spin barrier
 * at which all threads are ready to the moment the last finishes, so
 * wake-up costs are not counted: it is the read bandwidth, not a runtime,
 * and tgc's launch costs count against it.
 *
 * Each row also checks y against an f64 reference and fails the program
 * if it is wrong.
 *
 *   TGC_THREADS       threads for tgc and the baseline (default: nproc)
 *   TGC_BENCH_REPS    repetitions per row (default 50)
 */
#define _GNU_SOURCE
#include "bench.h"
#include <tgc.h>

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

static void *xmalloc(size_t n) {
  void *p = aligned_alloc(64, (n + 63) / 64 * 64);
  if (!p) {
    fprintf(stderr, "matvec: out of memory (%zu bytes)\n", n);
    exit(1);
  }
  return p;
}

/* ---- f16 on the host --------------------------------------------------- */

/* IEEE binary16 bits of f, rounded to nearest even (no NaN payloads). */
static uint16_t f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u, abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return (uint16_t)(sign | (abs > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
  if (abs < 0x38800000u) {                                   /* below 2^-14: subnormal or 0 */
    if (abs < 0x33000000u) return (uint16_t)sign;
    uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    int shift = 126 - (int)(abs >> 23); /* 14..24 */
    uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((abs - 0x38000000u) >> 13), rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

static float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu;
  if (e == 0) {
    float v = ldexpf((float)m, -24);
    return sign ? -v : v;
  }
  uint32_t x = sign | (e == 31 ? 0x7f800000u | (m << 13) : ((e + 112) << 23) | (m << 13));
  float f;
  memcpy(&f, &x, 4);
  return f;
}

#include "baseline.h"

/* ---- one row of the table --------------------------------------------------- */

typedef struct {
  int64_t K, N;
  tgc_dtype dt;
  bool nk; /* W stored [N,K] (GGUF) rather than [K,N] */
} mv_case;

typedef struct {
  double ms, gbs, base_gbs;  /* tgc and baseline interleaved */
  double hot_gbs, hot_base_gbs; /* each run back to back */
  double max_rel_err;
} mv_result;

static void die_tgc(const char *what) {
  fprintf(stderr, "matvec: %s: %s (%s)\n", what, tgc_last_error(), tgc_status_str(tgc_last_status()));
  exit(1);
}

/* Host data in the case's dtype: n values from src, converted. */
static void *host_data(tgc_dtype dt, const float *src, size_t n) {
  if (dt == TGC_F32) {
    float *p = xmalloc(n * 4);
    memcpy(p, src, n * 4);
    return p;
  }
  uint16_t *p = xmalloc(n * 2);
  for (size_t i = 0; i < n; i++) p[i] = f32_to_f16(src[i]);
  return p;
}

static double host_value(tgc_dtype dt, const void *p, size_t i) {
  return dt == TGC_F32 ? ((const float *)p)[i] : f16_to_f32(((const uint16_t *)p)[i]);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float urand(void) { /* [-1, 1), xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (float)((rng_state * 0x2545f4914f6cdd1dull) >> 40) / (float)(1 << 23) - 1.0f;
}

/* Largest |y - ref| / sum_k |x_k w_kn| over all outputs: 0 means exact. */
static double check(const mv_case *c, tgc_tensor *y, const void *xh, const void *wh) {
  size_t esz = tgc_dtype_size(c->dt);
  void *yh = xmalloc((size_t)c->N * esz);
  if (tgc_to_host(y, yh, (size_t)c->N * esz) != TGC_OK) die_tgc("tgc_to_host");
  double worst = 0;
  for (int64_t n = 0; n < c->N; n++) {
    double ref = 0, mag = 0;
    for (int64_t k = 0; k < c->K; k++) {
      size_t wi = c->nk ? (size_t)(n * c->K + k) : (size_t)(k * c->N + n);
      double p = host_value(c->dt, xh, (size_t)k) * host_value(c->dt, wh, wi);
      ref += p;
      mag += fabs(p);
    }
    double err = fabs(host_value(c->dt, yh, (size_t)n) - ref) / (mag > 0 ? mag : 1);
    if (err > worst) worst = err;
  }
  free(yh);
  return worst;
}

/* Seconds for tgc_realize of fresh_x @ Wkn; the upload of the fresh x
 * (which makes the graph new) happens before the clock starts. */
static double tgc_once(tgc_ctx *ctx, const mv_case *c, tgc_tensor *Wkn, const void *xh) {
  int64_t xshape[2] = {1, c->K};
  tgc_tensor *x = tgc_from_data(ctx, c->dt, 2, xshape, xh);
  tgc_tensor *y = tgc_matmul(x, Wkn);
  if (!y) die_tgc("building x @ W");
  double t0 = bench_now();
  if (tgc_realize(ctx, 1, &y) != TGC_OK) die_tgc("realize");
  return bench_now() - t0;
}

static mv_result run_case(const mv_case *c, base_pool *bp, int reps) {
  size_t nw = (size_t)(c->K * c->N), esz = tgc_dtype_size(c->dt), wbytes = nw * esz;
  tgc_ctx *ctx = tgc_ctx_new();
  if (!ctx) die_tgc("tgc_ctx_new");

  float *wf = xmalloc(nw * 4), *xf = xmalloc((size_t)c->K * 4);
  for (size_t i = 0; i < nw; i++) wf[i] = urand();
  for (int64_t i = 0; i < c->K; i++) xf[i] = urand();
  void *wh = host_data(c->dt, wf, nw), *xh = host_data(c->dt, xf, (size_t)c->K);
  free(wf);

  int64_t wshape[2] = {c->nk ? c->N : c->K, c->nk ? c->K : c->N}, xshape[2] = {1, c->K};
  tgc_tensor *W = tgc_from_data(ctx, c->dt, 2, wshape, wh);
  tgc_tensor *Wkn = c->nk ? tgc_transpose(W, 0, 1) : W;
  tgc_tensor *x = tgc_from_data(ctx, c->dt, 2, xshape, xh);
  tgc_tensor *y = tgc_matmul(x, Wkn);
  if (!y) die_tgc("building x @ W");
  if (tgc_realize(ctx, 1, &y) != TGC_OK) die_tgc("warm-up realize");
  mv_result r = {.max_rel_err = check(c, y, xh, wh)};

  /* the baseline's own buffer, of the same byte size, written once */
  float *bb = xmalloc(wbytes);
  for (size_t i = 0; i < wbytes / 4; i++) bb[i] = (float)(i & 255);
  baseline_once(bp, bb, wbytes / 4);

  /* interleaved: the figures reported */
  double *tt = xmalloc(sizeof(double) * (size_t)reps), *tb = xmalloc(sizeof(double) * (size_t)reps);
  for (int i = 0; i < reps; i++) {
    tt[i] = tgc_once(ctx, c, Wkn, xh);
    tb[i] = baseline_once(bp, bb, wbytes / 4);
  }
  r.ms = bench_median(tt, reps) * 1e3;
  r.gbs = (double)wbytes / r.ms * 1e-6;
  r.base_gbs = (double)wbytes / bench_median(tb, reps) * 1e-9;
  /* back to back, for context: each buffer re-read while it is hot */
  for (int i = 0; i < reps; i++) tt[i] = tgc_once(ctx, c, Wkn, xh);
  for (int i = 0; i < reps; i++) tb[i] = baseline_once(bp, bb, wbytes / 4);
  r.hot_gbs = (double)wbytes / bench_median(tt, reps) * 1e-9;
  r.hot_base_gbs = (double)wbytes / bench_median(tb, reps) * 1e-9;

  free(tt);
  free(tb);
  free(bb);
  free(wh);
  free(xh);
  free(xf);
  tgc_ctx_free(ctx);
  return r;
}

int main(void) {
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  const char *te = getenv("TGC_THREADS");
  int threads = te && atoi(te) > 0 ? atoi(te) : (int)(ncpu > 0 ? ncpu : 1);
  if (threads > 64) threads = 64;
  char tbuf[16];
  snprintf(tbuf, sizeof tbuf, "%d", threads);
  setenv("TGC_THREADS", tbuf, 1); /* the library uses exactly as many as the baseline */
  const char *re = getenv("TGC_BENCH_REPS");
  int reps = re && atoi(re) > 0 ? atoi(re) : 50;

  long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  printf("matvec: y[1,N] = x[1,K] @ W, %d threads, median of %d reps, tgc and baseline interleaved\n",
         threads, reps);
  printf("  nk: W stored [N,K] (GGUF), y = x @ transpose(W);  kn: W stored [K,N], y = x @ W\n");
  printf("  GB/s = weight bytes / time; baseline = %d-thread vector sum of its own buffer of the same size\n",
         threads);
  if (l3 > 0)
    printf("  note: L3 is %ld MiB, so weights up to that size (both buffers together) can be L3-resident:\n"
           "        the figures are cache bandwidth, not DRAM bandwidth, where they fit\n",
           l3 >> 20);
  printf("\n%-10s %-6s %-5s %8s %8s %10s %7s | %8s %9s %7s | %8s\n", "case", "layout", "dtype", "ms",
         "GB/s", "base GB/s", "ratio", "hot GB/s", "hot base", "ratio", "max err");

  static const int64_t shapes[2][2] = {{4096, 4096}, {2048, 8192}};
  static const tgc_dtype dts[2] = {TGC_F32, TGC_F16};
  base_pool *bp = base_pool_new(threads);
  int bad = 0;
  for (int s = 0; s < 2; s++)
    for (int d = 0; d < 2; d++)
      for (int l = 0; l < 2; l++) {
        mv_case c = {shapes[s][0], shapes[s][1], dts[d], l == 0};
        mv_result r = run_case(&c, bp, reps);
        char name[32];
        snprintf(name, sizeof name, "%lldx%lld", (long long)c.K, (long long)c.N);
        double tol = c.dt == TGC_F32 ? 1e-5 : 2e-3;
        bool ok = r.max_rel_err <= tol;
        bad += !ok;
        printf("%-10s %-6s %-5s %8.3f %8.2f %10.2f %6.1f%% | %8.2f %9.2f %6.1f%% | %8.1e%s\n", name,
               c.nk ? "nk" : "kn", tgc_dtype_name(c.dt), r.ms, r.gbs, r.base_gbs, 100 * r.gbs / r.base_gbs,
               r.hot_gbs, r.hot_base_gbs, 100 * r.hot_gbs / r.hot_base_gbs, r.max_rel_err,
               ok ? "" : "  WRONG");
        fflush(stdout);
      }
  printf("\n  case = KxN; ratio = tgc GB/s / baseline GB/s (aim: >= 90%%), tgc and baseline interleaved;\n"
         "  hot = %d tgc runs back to back, then %d baseline runs: each buffer re-read while cached\n"
         "  (not simultaneous, so noisier as a ratio; for context only);\n"
         "  max err = max |y - ref| / sum|x*w| against an f64 reference (f16 output rounds to ~5e-4)\n",
         reps, reps);
  base_pool_free(bp);
  if (bad) fprintf(stderr, "matvec: %d case(s) gave wrong results\n", bad);
  return bad ? 1 : 0;
}
