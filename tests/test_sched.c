/* test_sched.c - the scheduler's promises, pinned: how many kernels known
 * graphs become, that nodes are hash-consed, what memory a realize
 * allocates and keeps, and assign into an existing buffer.
 *
 * Kernel counts are read from tgc_get_stats (kernels_scheduled) around one
 * tgc_realize; every count test also checks the values against plain loops
 * on the host (in double), so a "fused" kernel that computes the wrong
 * thing does not pass.  Self-contained on purpose: nothing here depends on
 * the shared reference helpers.
 */
#include "tgc_internal.h"

#include <criterion/criterion.h>
#include <math.h>

static tgc_ctx *ctx;

static void sched_setup(void) {
  /* running one test directly (--single) may skip the runner's cache hook */
  const char *have = getenv("TGC_CACHE_DIR");
  if (!have || !*have) {
    static char dir[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tgc-sched-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir)) setenv("TGC_CACHE_DIR", dir, 1);
  }
  unsetenv("TGC_NOOPT");
  ctx = tgc_ctx_new();
  cr_assert_not_null(ctx, "tgc_ctx_new: %s", tgc_last_error());
}

static void sched_teardown(void) {
  tgc_ctx_free(ctx);
  ctx = NULL;
}

TestSuite(sched, .init = sched_setup, .fini = sched_teardown, .timeout = 300);

/* ---- helpers ---------------------------------------------------------------- */

#define SH(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}
#define MAXN 4096

/* Seeded values in [-1, 1), exactly representable as f32. */
static void fill(float *v, int64_t n, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
  }
}

/* A realized f32 tensor with seeded values, copied into host (numel floats). */
static tgc_tensor *input(float *host, uint64_t seed, int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  cr_assert_leq(n, MAXN);
  fill(host, n, seed);
  tgc_tensor *t = tgc_from_data(ctx, TGC_F32, ndim, shape, host);
  cr_assert_not_null(t, "tgc_from_data: %s", tgc_last_error());
  return t;
}

/* Kernels scheduled by one tgc_realize of the given targets. */
static uint64_t kernels_of(int n, tgc_tensor *const *ts) {
  for (int i = 0; i < n; i++) cr_assert_not_null(ts[i], "target %d is NULL: %s", i, tgc_last_error());
  tgc_stats a, b;
  tgc_get_stats(ctx, &a);
  tgc_status st = tgc_realize(ctx, n, ts);
  cr_assert_eq(st, TGC_OK, "tgc_realize: %s: %s", tgc_status_str(st), tgc_last_error());
  tgc_get_stats(ctx, &b);
  cr_assert_eq(b.schedules, a.schedules + 1);
  for (int i = 0; i < n; i++) cr_assert(tgc_is_realized(ts[i]));
  return b.kernels_scheduled - a.kernels_scheduled;
}

static uint64_t kernels1(tgc_tensor *t) { return kernels_of(1, &t); }

/* Copies t out (it must be f32 with n elements). */
static void out(tgc_tensor *t, float *dst, int64_t n) {
  cr_assert_eq(tgc_numel(t), n);
  tgc_status st = tgc_to_host(t, dst, (size_t)n * sizeof(float));
  cr_assert_eq(st, TGC_OK, "tgc_to_host: %s", tgc_last_error());
}

static void check_close(const char *what, const float *got, const double *want, int64_t n,
                        double tol) {
  for (int64_t i = 0; i < n; i++) {
    double err = fabs((double)got[i] - want[i]);
    cr_assert(err <= tol * (1.0 + fabs(want[i])), "%s[%lld]: got %.9g, want %.9g", what,
              (long long)i, (double)got[i], want[i]);
  }
}

static void check_shape(tgc_tensor *t, int ndim, const int64_t *shape) {
  cr_assert_eq(tgc_ndim(t), ndim);
  for (int i = 0; i < ndim; i++) cr_assert_eq(tgc_shape(t)[i], shape[i], "axis %d", i);
}

/* Plain-loop references. */
static void ref_matmul(const float *a, const float *b, double *c, int64_t M, int64_t K, int64_t N) {
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += (double)a[m * K + k] * b[k * N + n];
      c[m * N + n] = s;
    }
}

static void ref_softmax_rows(const float *x, double *y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    double mx = -INFINITY, s = 0;
    for (int64_t c = 0; c < cols; c++) mx = fmax(mx, x[r * cols + c]);
    for (int64_t c = 0; c < cols; c++) s += exp(x[r * cols + c] - mx);
    for (int64_t c = 0; c < cols; c++) y[r * cols + c] = exp(x[r * cols + c] - mx) / s;
  }
}

/* ---- kernel counts: fusion ------------------------------------------------------ */

Test(sched, add_then_mul_is_one_kernel) {
  static float a[32], b[32], c[32], got[32];
  double want[32];
  tgc_tensor *A = input(a, 1, SH(4, 8)), *B = input(b, 2, SH(4, 8)), *C = input(c, 3, SH(4, 8));
  tgc_tensor *y = tgc_mul(tgc_add(A, B), C);
  cr_assert_eq(kernels1(y), 1);
  out(y, got, 32);
  for (int i = 0; i < 32; i++) want[i] = ((double)a[i] + b[i]) * c[i];
  check_close("(a+b)*c", got, want, 32, 1e-6);
}

Test(sched, long_elementwise_chain_with_broadcast_is_one_kernel) {
  static float a[24], b[6], c[4], got[24];
  double want[24];
  tgc_tensor *A = input(a, 4, SH(6, 4)), *B = input(b, 5, SH(6, 1)), *C = input(c, 6, SH(4));
  tgc_tensor *y = tgc_sigmoid(tgc_sub(tgc_mul(tgc_exp(A), B), tgc_tanh(C)));
  y = tgc_where(tgc_gt(y, tgc_scalar(ctx, TGC_F32, 0.5)), y, tgc_neg(y));
  cr_assert_eq(kernels1(y), 1);
  out(y, got, 24);
  for (int i = 0; i < 6; i++)
    for (int j = 0; j < 4; j++) {
      double v = 1.0 / (1.0 + exp(-(exp(a[i * 4 + j]) * b[i] - tanh(c[j]))));
      want[i * 4 + j] = v > 0.5 ? v : -v;
    }
  check_close("chain", got, want, 24, 1e-5);
}

Test(sched, relu_of_matmul_plus_bias_is_one_kernel) {
  static float a[64], b[128], bias[8], got[32];
  double want[32];
  tgc_tensor *A = input(a, 7, SH(4, 16)), *B = input(b, 8, SH(16, 8)), *Bi = input(bias, 9, SH(8));
  tgc_tensor *y = tgc_relu(tgc_add(tgc_matmul(A, B), Bi));
  check_shape(y, SH(4, 8));
  cr_assert_eq(kernels1(y), 1);
  out(y, got, 32);
  ref_matmul(a, b, want, 4, 16, 8);
  for (int i = 0; i < 32; i++) want[i] = fmax(0.0, want[i] + bias[i % 8]);
  check_close("relu(a@b+bias)", got, want, 32, 1e-5);
}

Test(sched, sum_of_product_over_all_axes_is_one_kernel) {
  static float a[60], b[60];
  tgc_tensor *A = input(a, 10, SH(3, 4, 5)), *B = input(b, 11, SH(3, 4, 5));
  tgc_tensor *y = tgc_sum(tgc_mul(A, B), 0, NULL, false);
  cr_assert_eq(tgc_ndim(y), 0);
  cr_assert_eq(kernels1(y), 1);
  float got;
  out(y, &got, 1);
  double want = 0;
  for (int i = 0; i < 60; i++) want += (double)a[i] * b[i];
  check_close("sum(a*b)", &got, &want, 1, 1e-5);
}

/* x [24] -> reshape [2,3,4] -> permute (2,0,1) [4,2,3] -> shrink [1:4, 0:2, 1:3]
 * [3,2,2] -> pad ((1,0),(0,1),(2,1)) [4,3,5]; the reference indexes x
 * directly. */
static double chain_ref(const float *x, int a, int b, int c) {
  if (a < 1 || b >= 2 || c < 2 || c >= 4) return 0.0; /* padding */
  int sa = a - 1, sb = b, sc = c - 2;          /* shrink's output index */
  int pa = sa + 1, pb = sb, pc = sc + 1;       /* permute's output index */
  int i = pb, j = pc, k = pa;                  /* reshape's output index */
  return x[i * 12 + j * 4 + k];
}

static tgc_tensor *movement_chain(tgc_tensor *x) {
  tgc_tensor *r = tgc_reshape(x, SH(2, 3, 4));
  tgc_tensor *p = tgc_permute(r, (const int[]){2, 0, 1});
  tgc_tensor *s = tgc_shrink(p, (const int64_t[]){1, 4, 0, 2, 1, 3});
  return tgc_pad(s, (const int64_t[]){1, 0, 0, 1, 2, 1});
}

Test(sched, movement_chain_on_realized_inputs_adds_no_kernel) {
  static float x[24], y[3], got[60];
  double want[60];
  tgc_tensor *X = input(x, 12, SH(24)), *Y = input(y, 13, SH(3, 1));
  tgc_tensor *d = movement_chain(X);
  check_shape(d, SH(4, 3, 5));
  tgc_tensor *z = tgc_add(d, tgc_expand(Y, SH(4, 3, 5)));
  check_shape(z, SH(4, 3, 5));
  cr_assert_eq(kernels1(z), 1);
  out(z, got, 60);
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 3; b++)
      for (int c = 0; c < 5; c++) want[(a * 3 + b) * 5 + c] = chain_ref(x, a, b, c) + y[b];
  check_close("pad(shrink(permute(reshape(x))))+expand(y)", got, want, 60, 1e-6);
}

Test(sched, movement_chain_into_a_reduce_adds_no_kernel) {
  static float x[24], y[3], got[3];
  double want[3] = {0, 0, 0};
  tgc_tensor *X = input(x, 14, SH(24)), *Y = input(y, 15, SH(3, 1));
  tgc_tensor *d = tgc_flip(movement_chain(X), 1, (const int[]){2});
  tgc_tensor *e = tgc_expand(Y, SH(4, 3, 5));
  tgc_tensor *z = tgc_sum(tgc_mul(d, e), 2, (const int[]){0, 2}, false);
  check_shape(z, SH(3));
  cr_assert_eq(kernels1(z), 1);
  out(z, got, 3);
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 3; b++)
      for (int c = 0; c < 5; c++) want[b] += chain_ref(x, a, b, 4 - c) * y[b];
  check_close("sum(flip(chain)*expand(y))", got, want, 3, 1e-5);
}

Test(sched, movement_of_lazy_elementwise_adds_no_kernel) {
  static float a[12], b[12], c[20], got[20];
  double want[20];
  tgc_tensor *A = input(a, 16, SH(3, 4)), *B = input(b, 17, SH(3, 4)), *C = input(c, 18, SH(5, 4));
  /* permute and pad a lazy sum: the padded rows must read 0, not 0+0 work */
  tgc_tensor *s = tgc_exp(tgc_add(A, B));
  tgc_tensor *p = tgc_pad(tgc_transpose(s, 0, 1), (const int64_t[]){0, 0, 1, 1});
  tgc_tensor *z = tgc_mul(tgc_transpose(p, 0, 1), C);
  check_shape(z, SH(5, 4));
  cr_assert_eq(kernels1(z), 1);
  out(z, got, 20);
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 4; j++) {
      double v = i >= 1 && i < 4 ? exp((double)a[(i - 1) * 4 + j] + b[(i - 1) * 4 + j]) : 0.0;
      want[i * 4 + j] = v * c[i * 4 + j];
    }
  check_close("transpose(pad(transpose(exp(a+b))))*c", got, want, 20, 1e-5);
}

Test(sched, softmax_last_axis_is_at_most_three_kernels) {
  static float x[64], got[64];
  double want[64];
  tgc_tensor *X = input(x, 19, SH(4, 16));
  tgc_tensor *y = tgc_softmax(X, -1);
  cr_assert_leq(kernels1(y), 3);
  out(y, got, 64);
  ref_softmax_rows(x, want, 4, 16);
  check_close("softmax", got, want, 64, 1e-5);
}

Test(sched, rmsnorm_times_weight_is_at_most_two_kernels) {
  static float x[64], w[16], got[64];
  double want[64];
  const double eps = 1e-5;
  tgc_tensor *X = input(x, 20, SH(4, 16)), *W = input(w, 21, SH(16));
  tgc_tensor *y = tgc_mul(tgc_rmsnorm(X, eps), W);
  cr_assert_leq(kernels1(y), 2);
  out(y, got, 64);
  for (int r = 0; r < 4; r++) {
    double ms = 0;
    for (int c = 0; c < 16; c++) ms += (double)x[r * 16 + c] * x[r * 16 + c];
    ms /= 16;
    for (int c = 0; c < 16; c++) want[r * 16 + c] = x[r * 16 + c] / sqrt(ms + eps) * w[c];
  }
  check_close("rmsnorm(x)*w", got, want, 64, 1e-5);
}

Test(sched, layernorm_is_at_most_three_kernels) {
  static float x[64], got[64];
  double want[64];
  const double eps = 1e-5;
  tgc_tensor *X = input(x, 22, SH(4, 16));
  tgc_tensor *y = tgc_layernorm(X, eps);
  cr_assert_leq(kernels1(y), 3);
  out(y, got, 64);
  for (int r = 0; r < 4; r++) {
    double m = 0, v = 0;
    for (int c = 0; c < 16; c++) m += x[r * 16 + c];
    m /= 16;
    for (int c = 0; c < 16; c++) v += (x[r * 16 + c] - m) * (x[r * 16 + c] - m);
    v /= 16;
    for (int c = 0; c < 16; c++) want[r * 16 + c] = (x[r * 16 + c] - m) / sqrt(v + eps);
  }
  check_close("layernorm", got, want, 64, 1e-4);
}

Test(sched, cat_of_three_is_one_kernel) {
  static float a[6], b[12], c[3], got[21];
  double want[21];
  tgc_tensor *A = input(a, 23, SH(2, 3)), *B = input(b, 24, SH(4, 3)), *C = input(c, 25, SH(1, 3));
  tgc_tensor *y = tgc_cat(3, (tgc_tensor *const[]){A, B, C}, 0);
  check_shape(y, SH(7, 3));
  cr_assert_eq(kernels1(y), 1);
  out(y, got, 21);
  for (int i = 0; i < 6; i++) want[i] = a[i];
  for (int i = 0; i < 12; i++) want[6 + i] = b[i];
  for (int i = 0; i < 3; i++) want[18 + i] = c[i];
  check_close("cat axis 0", got, want, 21, 0);
}

Test(sched, cat_of_three_along_last_axis_is_one_kernel) {
  static float a[6], b[4], c[8], got[18];
  double want[18];
  tgc_tensor *A = input(a, 26, SH(2, 3)), *B = input(b, 27, SH(2, 2)), *C = input(c, 28, SH(2, 4));
  tgc_tensor *y = tgc_cat(3, (tgc_tensor *const[]){A, B, C}, -1);
  check_shape(y, SH(2, 9));
  cr_assert_eq(kernels1(y), 1);
  out(y, got, 18);
  for (int r = 0; r < 2; r++) {
    for (int j = 0; j < 3; j++) want[r * 9 + j] = a[r * 3 + j];
    for (int j = 0; j < 2; j++) want[r * 9 + 3 + j] = b[r * 2 + j];
    for (int j = 0; j < 4; j++) want[r * 9 + 5 + j] = c[r * 4 + j];
  }
  check_close("cat axis 1", got, want, 18, 0);
}

Test(sched, zero_d_sums_and_keepdim_are_one_kernel) {
  static float x[12], got[4];
  tgc_tensor *X = input(x, 29, SH(3, 4));
  double all = 0, rows[3] = {0, 0, 0};
  for (int i = 0; i < 12; i++) all += x[i], rows[i / 4] += x[i];

  tgc_tensor *s0 = tgc_sum(X, 0, NULL, false); /* 0-d */
  cr_assert_eq(tgc_ndim(s0), 0);
  cr_assert_eq(kernels1(s0), 1);
  out(s0, got, 1);
  check_close("sum all", got, &all, 1, 1e-6);

  tgc_tensor *s1 = tgc_sum(X, 0, NULL, true); /* [1,1] */
  check_shape(s1, SH(1, 1));
  cr_assert_eq(kernels1(s1), 1);
  out(s1, got, 1);
  check_close("sum all keepdim", got, &all, 1, 1e-6);

  tgc_tensor *s2 = tgc_sum(X, 1, (const int[]){-1}, true); /* [3,1] */
  check_shape(s2, SH(3, 1));
  cr_assert_eq(kernels1(s2), 1);
  out(s2, got, 3);
  check_close("sum rows keepdim", got, rows, 3, 1e-6);

  tgc_tensor *s3 = tgc_sum(X, 1, (const int[]){1}, false); /* [3] */
  check_shape(s3, SH(3));
  cr_assert_eq(kernels1(s3), 1);
  out(s3, got, 3);
  check_close("sum rows", got, rows, 3, 1e-6);

  /* the sum of a 0-d tensor is itself: at most a copy */
  float v = 2.5f;
  tgc_tensor *z = tgc_from_data(ctx, TGC_F32, 0, NULL, &v);
  tgc_tensor *sz = tgc_sum(tgc_mul(z, z), 0, NULL, false);
  cr_assert_eq(tgc_ndim(sz), 0);
  cr_assert_leq(kernels1(sz), 1);
  out(sz, got, 1);
  double w = 6.25;
  check_close("0-d sum", got, &w, 1, 0);
}

Test(sched, batched_matmul_is_one_kernel) {
  static float a[24], b[20], got[30];
  double want[30];
  tgc_tensor *A = input(a, 30, SH(2, 3, 4)), *B = input(b, 31, SH(4, 5));
  tgc_tensor *y = tgc_matmul(A, B);
  check_shape(y, SH(2, 3, 5));
  cr_assert_eq(kernels1(y), 1);
  out(y, got, 30);
  ref_matmul(a, b, want, 6, 4, 5); /* [2,3] rows share b */
  check_close("[2,3,4]@[4,5]", got, want, 30, 1e-5);
}

/* ---- hash-consing ------------------------------------------------------------------ */

static tgc_tensor *some_expression(tgc_tensor *a, tgc_tensor *b, tgc_tensor *w) {
  tgc_tensor *h = tgc_add(tgc_matmul(a, w), tgc_scalar(ctx, TGC_F32, 0.5));
  h = tgc_softmax(tgc_mul(h, tgc_transpose(b, 0, 1)), -1);
  tgc_tensor *p = tgc_pad(tgc_shrink(h, (const int64_t[]){1, 3, 0, 2}), (const int64_t[]){1, 0, 0, 2});
  return tgc_sum(tgc_exp(p), 1, (const int[]){0}, true);
}

Test(sched, same_expression_twice_is_the_same_node) {
  static float a[12], b[6], w[8];
  tgc_tensor *A = input(a, 32, SH(3, 4)), *B = input(b, 33, SH(2, 3)), *W = input(w, 34, SH(4, 2));
  tgc_tensor *e1 = some_expression(A, B, W);
  cr_assert_not_null(e1, "%s", tgc_last_error());
  tgc_stats s1, s2;
  tgc_get_stats(ctx, &s1);
  tgc_tensor *e2 = some_expression(A, B, W);
  tgc_get_stats(ctx, &s2);
  cr_assert_eq(e1, e2, "the same expression built twice gave two nodes");
  cr_assert_eq(s2.nodes_created, s1.nodes_created, "building it again made %llu new nodes",
               (unsigned long long)(s2.nodes_created - s1.nodes_created));
  /* constants and leaf ops are shared too; different inputs are not */
  cr_assert_eq(tgc_scalar(ctx, TGC_F32, 3.0), tgc_scalar(ctx, TGC_F32, 3.0));
  cr_assert_neq(tgc_scalar(ctx, TGC_F32, 3.0), tgc_scalar(ctx, TGC_F64, 3.0));
  cr_assert_eq(tgc_add(A, A), tgc_add(A, A));
  cr_assert_neq(tgc_add(A, A), tgc_mul(A, A));
  cr_assert_neq(some_expression(A, B, W), some_expression(tgc_neg(A), B, W));
  tgc_tensor *A2 = tgc_from_data(ctx, TGC_F32, SH(3, 4), a);
  cr_assert_neq(A2, A, "two uploads of equal data must stay distinct buffers");
  /* after realizing, the rebuilt expression is the realized node: no kernel */
  cr_assert_geq(kernels1(e1), 1);
  tgc_tensor *e3 = some_expression(A, B, W);
  cr_assert_eq(e3, e1);
  cr_assert(tgc_is_realized(e3));
  cr_assert_eq(kernels1(e3), 0);
}

/* ---- memory ----------------------------------------------------------------------- */

/* Realizes y and checks it allocated exactly one buffer of out_bytes. */
static void check_allocates_only_output(tgc_tensor *y, uint64_t out_bytes) {
  tgc_stats a, b;
  tgc_get_stats(ctx, &a);
  cr_assert_eq(tgc_realize(ctx, 1, &y), TGC_OK, "%s", tgc_last_error());
  tgc_get_stats(ctx, &b);
  cr_assert_eq(b.buffers_allocated - a.buffers_allocated, 1, "buffers allocated: %llu",
               (unsigned long long)(b.buffers_allocated - a.buffers_allocated));
  cr_assert_eq(b.bytes_allocated - a.bytes_allocated, out_bytes, "bytes allocated: %llu, want %llu",
               (unsigned long long)(b.bytes_allocated - a.bytes_allocated),
               (unsigned long long)out_bytes);
  cr_assert_eq(b.bytes_in_use - a.bytes_in_use, out_bytes);
  cr_assert_eq(b.kernels_scheduled - a.kernels_scheduled, 1);
}

Test(sched, matvec_allocates_only_its_output) {
  enum { K = 64, N = 64 };
  static float x[K], w[K * N], got[N];
  double want[N];
  tgc_tensor *X = input(x, 35, SH(1, K)), *W = input(w, 36, SH(K, N));
  tgc_tensor *y = tgc_matmul(X, W);
  check_shape(y, SH(1, N));
  check_allocates_only_output(y, N * sizeof(float));
  out(y, got, N);
  ref_matmul(x, w, want, 1, K, N);
  check_close("[1,K]@[K,N]", got, want, N, 1e-5);
}

Test(sched, matvec_with_transposed_weight_allocates_only_its_output) {
  enum { K = 64, N = 64 };
  static float x[K], w[N * K], wt[K * N], got[N];
  double want[N];
  tgc_tensor *X = input(x, 37, SH(1, K)), *W = input(w, 38, SH(N, K));
  tgc_tensor *y = tgc_matmul(X, tgc_transpose(W, 0, 1));
  check_shape(y, SH(1, N));
  check_allocates_only_output(y, N * sizeof(float));
  out(y, got, N);
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++) wt[k * N + n] = w[n * K + k];
  ref_matmul(x, wt, want, 1, K, N);
  check_close("x @ W^T", got, want, N, 1e-5);
}

Test(sched, softmax_frees_its_intermediates) {
  static float x[64], got[64];
  double want[64];
  tgc_tensor *X = input(x, 39, SH(4, 16));
  tgc_stats a, b;
  tgc_get_stats(ctx, &a);
  cr_assert_eq(a.bytes_in_use, sizeof x, "only the input is alive before");
  tgc_tensor *y = tgc_softmax(X, -1);
  uint64_t k = kernels1(y);
  tgc_get_stats(ctx, &b);
  cr_assert_eq(b.bytes_in_use, sizeof x + sizeof got,
               "after softmax %llu bytes are in use, want input + output = %zu",
               (unsigned long long)b.bytes_in_use, sizeof x + sizeof got);
  /* the intermediates existed (more than one kernel) and were released */
  if (k > 1) cr_assert_gt(b.bytes_allocated - a.bytes_allocated, sizeof got);
  cr_assert_geq(b.peak_bytes, b.bytes_in_use);
  out(y, got, 64);
  ref_softmax_rows(x, want, 4, 16);
  check_close("softmax", got, want, 64, 1e-5);
}

/* ---- realize ---------------------------------------------------------------------- */

Test(sched, realizing_a_realized_tensor_schedules_nothing) {
  static float a[16], b[16];
  tgc_tensor *A = input(a, 40, SH(16)), *B = input(b, 41, SH(16));
  cr_assert_eq(kernels1(A), 0, "an uploaded tensor needs no kernel");
  tgc_tensor *y = tgc_add(A, B);
  cr_assert_eq(kernels1(y), 1);
  tgc_stats s1, s2;
  tgc_get_stats(ctx, &s1);
  cr_assert_eq(kernels1(y), 0);
  cr_assert_eq(kernels_of(2, (tgc_tensor *const[]){y, A}), 0);
  tgc_get_stats(ctx, &s2);
  cr_assert_eq(s2.launches, s1.launches);
  cr_assert_eq(s2.compiles, s1.compiles);
  cr_assert_eq(s2.buffers_allocated, s1.buffers_allocated);
  /* a new computation on top of the realized one uses its buffer */
  tgc_tensor *z = tgc_mul(y, y);
  cr_assert_eq(kernels1(z), 1);
  float got[16];
  out(z, got, 16);
  double want[16];
  for (int i = 0; i < 16; i++) want[i] = ((double)a[i] + b[i]) * ((double)a[i] + b[i]);
  check_close("(a+b)^2", got, want, 16, 1e-6);
}

Test(sched, two_targets_sharing_work_in_one_realize) {
  static float x[32], g1[32], g2[32];
  double w1[32], w2[32];
  tgc_tensor *X = input(x, 42, SH(4, 8));
  /* both targets need the row sums: computed once, not per target */
  tgc_tensor *m = tgc_sum(X, 1, (const int[]){1}, true);
  tgc_tensor *t1 = tgc_sub(X, m), *t2 = tgc_mul(X, m);
  uint64_t k = kernels_of(2, (tgc_tensor *const[]){t1, t2});
  cr_assert_leq(k, 3, "row sums + two outputs is at most 3 kernels, got %llu", (unsigned long long)k);
  cr_assert_geq(k, 2);
  out(t1, g1, 32);
  out(t2, g2, 32);
  for (int r = 0; r < 4; r++) {
    double s = 0;
    for (int c = 0; c < 8; c++) s += x[r * 8 + c];
    for (int c = 0; c < 8; c++) w1[r * 8 + c] = x[r * 8 + c] - s, w2[r * 8 + c] = x[r * 8 + c] * s;
  }
  check_close("x - sum", g1, w1, 32, 1e-5);
  check_close("x * sum", g2, w2, 32, 1e-5);

  /* the same target twice, and a target that is the other's input */
  static float a[8], b[8];
  tgc_tensor *A = input(a, 43, SH(8)), *B = input(b, 44, SH(8));
  tgc_tensor *s = tgc_add(A, B);
  cr_assert_eq(kernels_of(2, (tgc_tensor *const[]){s, s}), 1);
  tgc_tensor *e = tgc_exp(tgc_sub(A, B)), *f = tgc_mul(e, e);
  uint64_t k2 = kernels_of(2, (tgc_tensor *const[]){e, f});
  cr_assert_leq(k2, 2);
  cr_assert_geq(k2, 1);
  float ge[8], gf[8];
  double we[8], wf[8];
  out(e, ge, 8);
  out(f, gf, 8);
  for (int i = 0; i < 8; i++) we[i] = exp((double)a[i] - b[i]), wf[i] = we[i] * we[i];
  check_close("e", ge, we, 8, 1e-6);
  check_close("e*e", gf, wf, 8, 1e-6);
}

/* ---- assign ---------------------------------------------------------------------- */

Test(sched, assign_rows_like_a_kv_cache) {
  enum { T = 8, D = 4 };
  tgc_tensor *cache = tgc_empty(ctx, TGC_F32, SH(T, D));
  cr_assert_not_null(cache, "%s", tgc_last_error());
  cr_assert(tgc_is_realized(cache));
  tgc_tensor *cur = tgc_assign(cache, tgc_zeros(ctx, TGC_F32, SH(T, D)));
  cr_assert_not_null(cur, "%s", tgc_last_error());
  check_shape(cur, SH(T, D));
  cr_assert_eq(kernels1(cur), 1);
  float got[T * D];
  out(cur, got, T * D);
  for (int i = 0; i < T * D; i++) cr_assert_eq(got[i], 0.0f, "zeroed cache [%d] = %g", i, got[i]);

  double want[T * D] = {0};
  static float rows[T][D];
  for (int pos = 0; pos < T; pos++) {
    fill(rows[pos], D, 100 + (uint64_t)pos);
    tgc_tensor *row = tgc_from_data(ctx, TGC_F32, SH(D), rows[pos]);
    /* every other row goes in as a lazy computation that fuses into the assign */
    if (pos % 2) row = tgc_mul(row, tgc_scalar(ctx, TGC_F32, 2.0));
    tgc_tensor *view = tgc_shrink(cur, (const int64_t[]){pos, pos + 1, 0, D});
    cr_assert_not_null(view, "%s", tgc_last_error());
    tgc_tensor *next = tgc_assign(view, row);
    cr_assert_not_null(next, "assign at %d: %s", pos, tgc_last_error());
    check_shape(next, SH(T, D));
    cr_assert_eq(kernels1(next), 1, "assign at position %d", pos);
    cur = next;
    for (int j = 0; j < D; j++) want[pos * D + j] = rows[pos][j] * (pos % 2 ? 2.0 : 1.0);
    out(cur, got, T * D); /* rows after pos are still zero */
    check_close("cache", got, want, T * D, 0);
  }
  /* the cache's own buffer holds the writes, and compute reads through it */
  out(cache, got, T * D);
  check_close("cache buffer", got, want, T * D, 0);
  tgc_tensor *tot = tgc_sum(cur, 1, (const int[]){0}, false);
  cr_assert_eq(kernels1(tot), 1);
  float gs[D];
  double ws[D] = {0};
  out(tot, gs, D);
  for (int i = 0; i < T; i++)
    for (int j = 0; j < D; j++) ws[j] += want[i * D + j];
  check_close("sum over cache", gs, ws, D, 1e-6);
}

/* ---- TGC_NOOPT ------------------------------------------------------------------ */

/* matmul [5,64]@[64,24] and softmax over [6,40], in a context made under the
 * current environment. */
static void noopt_compute(float *mm, float *sm, const float *a, const float *b, const float *x) {
  tgc_ctx *c = tgc_ctx_new();
  cr_assert_not_null(c, "%s", tgc_last_error());
  tgc_tensor *A = tgc_from_data(c, TGC_F32, SH(5, 64), a);
  tgc_tensor *B = tgc_from_data(c, TGC_F32, SH(64, 24), b);
  tgc_tensor *X = tgc_from_data(c, TGC_F32, SH(6, 40), x);
  tgc_tensor *y = tgc_matmul(A, B), *s = tgc_softmax(X, -1);
  cr_assert_eq(tgc_realize(c, 2, (tgc_tensor *const[]){y, s}), TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(tgc_to_host(y, mm, 5 * 24 * sizeof(float)), TGC_OK);
  cr_assert_eq(tgc_to_host(s, sm, 6 * 40 * sizeof(float)), TGC_OK);
  tgc_ctx_free(c);
}

Test(sched, noopt_gives_the_same_results) {
  static float a[5 * 64], b[64 * 24], x[240];
  static float mm0[120], sm0[240], mm1[120], sm1[240];
  double wmm[120], wsm[240];
  fill(a, 5 * 64, 45);
  fill(b, 64 * 24, 46);
  fill(x, 240, 47);
  noopt_compute(mm0, sm0, a, b, x);
  setenv("TGC_NOOPT", "1", 1);
  noopt_compute(mm1, sm1, a, b, x);
  unsetenv("TGC_NOOPT");
  ref_matmul(a, b, wmm, 5, 64, 24);
  ref_softmax_rows(x, wsm, 6, 40);
  check_close("matmul default", mm0, wmm, 120, 1e-5);
  check_close("matmul noopt", mm1, wmm, 120, 1e-5);
  check_close("softmax default", sm0, wsm, 240, 1e-5);
  check_close("softmax noopt", sm1, wsm, 240, 1e-5);
  for (int i = 0; i < 120; i++)
    cr_assert(fabsf(mm0[i] - mm1[i]) <= 1e-5f * (1 + fabsf(mm0[i])), "matmul[%d]: %g vs %g", i,
              mm0[i], mm1[i]);
  for (int i = 0; i < 240; i++)
    cr_assert(fabsf(sm0[i] - sm1[i]) <= 1e-5f * (1 + fabsf(sm0[i])), "softmax[%d]: %g vs %g", i,
              sm0[i], sm1[i]);
}
