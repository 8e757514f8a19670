/* test_symbolic.c - sizes that are affine expressions of variables.
 *
 * The attention of one decode step reads the cache over start_pos + 1
 * positions: a shrink to a symbolic length, a reduce over it (scores,
 * softmax) and a reduce along it (probs @ V).  Each kernel must be
 * compiled once for all 64 positions, and agree with plain loops at every
 * position.  Then pad, expand, mean, flip, windows that start at a
 * symbolic position, two variables, realized tensors of symbolic shape,
 * and the errors. */
#include "tgc_internal.h"

#include <criterion/criterion.h>
#include <math.h>

enum { CTX = 64, HD = 8 };

static void fill(float *x, int n, int seed) {
  for (int i = 0; i < n; i++) x[i] = (float)((i * 7 + seed * 13) % 23) / 11.0f - 1.0f;
}

static tgc_tensor *from(tgc_ctx *ctx, int ndim, const int64_t *shape, const float *x) {
  tgc_tensor *t = tgc_from_data(ctx, TGC_F32, ndim, shape, x);
  cr_assert_not_null(t, "%s", tgc_last_error());
  return t;
}

/* out[d] = sum_j softmax_j(K[j] . q / sqrt(HD)) V[j][d] over j <= pos, in f64. */
static void attention_ref(const float *K, const float *V, const float *q, int pos, double *out) {
  double s[CTX], m = -INFINITY, z = 0;
  for (int j = 0; j <= pos; j++) {
    s[j] = 0;
    for (int d = 0; d < HD; d++) s[j] += (double)K[j * HD + d] * q[d];
    s[j] /= sqrt(HD);
    m = s[j] > m ? s[j] : m;
  }
  for (int j = 0; j <= pos; j++) z += s[j] = exp(s[j] - m);
  for (int d = 0; d < HD; d++) {
    out[d] = 0;
    for (int j = 0; j <= pos; j++) out[d] += s[j] / z * V[j * HD + d];
  }
}

typedef struct attn {
  tgc_tensor *K, *V, *q;
  tgc_var *pos;
} attn;

/* q [HD] against the cache rows 0..pos: [HD]. */
static tgc_tensor *attention(attn *a) {
  int64_t L = tgc_var_dim(a->pos, 1, 1), r[4] = {0, L, 0, HD};
  tgc_tensor *k = tgc_shrink(a->K, r), *v = tgc_shrink(a->V, r);
  tgc_tensor *s = tgc_mul(tgc_matmul(k, a->q), tgc_scalar(tgc_ctx_of(a->q), TGC_F32, 1 / sqrt(HD)));
  return tgc_matmul(tgc_softmax(s, 0), v);
}

static attn make_attn(tgc_ctx *ctx, float *K, float *V, float *q) {
  int64_t cs[2] = {CTX, HD}, qs[1] = {HD};
  fill(K, CTX * HD, 1);
  fill(V, CTX * HD, 2);
  fill(q, HD, 3);
  attn a = {from(ctx, 2, cs, K), from(ctx, 2, cs, V), from(ctx, 1, qs, q), tgc_var_new(ctx, "start_pos", 0, CTX - 1)};
  cr_assert_not_null(a.pos);
  return a;
}

Test(symbolic, attention_over_start_pos_plus_one_compiles_each_kernel_once) {
  tgc_ctx *ctx = tgc_ctx_new();
  static float K[CTX * HD], V[CTX * HD], q[HD];
  attn a = make_attn(ctx, K, V, q);
  tgc_stats s0, s1, s2;
  tgc_get_stats(ctx, &s0);
  uint64_t per_step = 0;
  for (int pos = 0; pos < CTX; pos++) {
    cr_assert_eq(tgc_var_bind(a.pos, pos), TGC_OK);
    tgc_tensor *out = attention(&a); /* built anew each step, as a model does */
    cr_assert_not_null(out, "%s", tgc_last_error());
    float got[HD];
    double want[HD];
    cr_assert_eq(tgc_to_host(out, got, sizeof got), TGC_OK, "pos %d: %s", pos, tgc_last_error());
    attention_ref(K, V, q, pos, want);
    for (int d = 0; d < HD; d++)
      cr_assert(fabs(got[d] - want[d]) <= 1e-5 + 1e-5 * fabs(want[d]), "pos %d [%d]: %g vs %g", pos, d, got[d], want[d]);
    if (pos == 0) {
      tgc_get_stats(ctx, &s1);
      per_step = s1.launches - s0.launches;
    }
  }
  tgc_get_stats(ctx, &s2);
  cr_assert_geq(per_step, 2, "scores, softmax and probs @ V take kernels");
  uint64_t made = (s2.compiles - s0.compiles) + (s2.cache_disk_hits - s0.cache_disk_hits);
  cr_expect_eq(made, per_step, "each of the %llu kernels made once for 64 positions, not %llu times",
               (unsigned long long)per_step, (unsigned long long)made);
  cr_expect_eq(s2.compiles, s1.compiles, "nothing compiled after the first position");
  cr_expect_eq(s2.launches - s0.launches, 64 * per_step);
  tgc_ctx_free(ctx);
}

typedef struct jit_user {
  attn a;
} jit_user;

static tgc_status attn_step(tgc_ctx *ctx, void *user, int nin, tgc_tensor *const *ins, int *nout, tgc_tensor **outs) {
  attn *a = &((jit_user *)user)->a;
  (void)nin;
  a->q = ins[0];
  outs[0] = attention(a);
  *nout = 1;
  return outs[0] ? tgc_realize(ctx, 1, outs) : tgc_last_status();
}

Test(symbolic, the_jit_replays_attention_at_every_position) {
  tgc_ctx *ctx = tgc_ctx_new();
  static float K[CTX * HD], V[CTX * HD], q[HD];
  jit_user u = {make_attn(ctx, K, V, q)};
  tgc_tensor *qt = u.a.q;
  tgc_jit *j = tgc_jit_new(ctx, attn_step, &u);
  tgc_stats mid, end;
  for (int pos = 0; pos < CTX; pos++) {
    if (pos == 2) tgc_get_stats(ctx, &mid);
    cr_assert_eq(tgc_var_bind(u.a.pos, pos), TGC_OK);
    tgc_tensor *outs[TGC_JIT_MAX_IO];
    int nout;
    cr_assert_eq(tgc_jit_call(j, 1, &qt, &nout, outs), TGC_OK, "pos %d: %s", pos, tgc_last_error());
    float got[HD];
    double want[HD];
    cr_assert_eq(tgc_to_host(outs[0], got, sizeof got), TGC_OK, "%s", tgc_last_error());
    attention_ref(K, V, q, pos, want);
    for (int d = 0; d < HD; d++)
      cr_assert(fabs(got[d] - want[d]) <= 1e-5 + 1e-5 * fabs(want[d]), "pos %d [%d]: %g vs %g", pos, d, got[d], want[d]);
  }
  tgc_get_stats(ctx, &end);
  cr_expect_eq(end.replays - mid.replays, CTX - 2);
  cr_expect_eq(end.compiles, mid.compiles);
  cr_expect_eq(end.schedules, mid.schedules);
  tgc_jit_free(j);
  tgc_ctx_free(ctx);
}

/* x[0..L) for L = pos + 1 over a ramp of CTX values. */
static tgc_tensor *prefix(tgc_ctx *ctx, float *x, tgc_var **pos) {
  int64_t s[1] = {CTX};
  fill(x, CTX, 5);
  tgc_tensor *t = from(ctx, 1, s, x);
  *pos = tgc_var_new(ctx, "p", 0, CTX - 1);
  int64_t r[2] = {0, tgc_var_dim(*pos, 1, 1)};
  return tgc_shrink(t, r);
}

Test(symbolic, reductions_over_a_symbolic_axis) {
  tgc_ctx *ctx = tgc_ctx_new();
  float x[CTX];
  tgc_var *p;
  tgc_tensor *w = prefix(ctx, x, &p);
  tgc_tensor *sum = tgc_sum(w, 0, NULL, false), *mx = tgc_max(w, 0, NULL, false), *mean = tgc_mean(w, 0, NULL, false);
  cr_assert(sum && mx && mean, "%s", tgc_last_error());
  for (int pos = 0; pos < CTX; pos += 9) {
    cr_assert_eq(tgc_var_bind(p, pos), TGC_OK);
    double s = 0, m = -INFINITY;
    for (int i = 0; i <= pos; i++) {
      s += x[i];
      m = x[i] > m ? x[i] : m;
    }
    float gs, gm, ga;
    cr_assert_eq(tgc_to_host(sum, &gs, 4), TGC_OK, "%s", tgc_last_error());
    cr_assert_eq(tgc_to_host(mx, &gm, 4), TGC_OK, "%s", tgc_last_error());
    cr_assert_eq(tgc_to_host(mean, &ga, 4), TGC_OK, "%s", tgc_last_error());
    cr_expect(fabs(gs - s) < 1e-4, "pos %d sum %g vs %g", pos, gs, s);
    cr_expect_eq(gm, (float)m, "pos %d max", pos);
    cr_expect(fabs(ga - s / (pos + 1)) < 1e-5, "pos %d mean %g vs %g", pos, ga, s / (pos + 1));
  }
  tgc_ctx_free(ctx);
}

Test(symbolic, a_result_of_symbolic_shape_comes_back_at_its_current_size) {
  tgc_ctx *ctx = tgc_ctx_new();
  static float K[CTX * HD];
  int64_t cs[2] = {CTX, HD};
  fill(K, CTX * HD, 4);
  tgc_tensor *k = from(ctx, 2, cs, K);
  tgc_var *p = tgc_var_new(ctx, "p", 0, CTX - 1);
  int64_t L = tgc_var_dim(p, 1, 1), r[4] = {0, L, 0, HD};
  tgc_tensor *rows = tgc_mul(tgc_shrink(k, r), tgc_scalar(ctx, TGC_F32, 3));   /* [L, HD] */
  tgc_tensor *cols = tgc_transpose(rows, 0, 1);                                 /* [HD, L] */
  tgc_tensor *colsum = tgc_contiguous(tgc_sum(cols, 1, (int[]){0}, false));     /* [L] */
  cr_assert(rows && cols && colsum, "%s", tgc_last_error());
  cr_expect(tgc_dim_is_symbolic(tgc_shape(cols)[1]));
  for (int pos = 0; pos < CTX; pos += 13) {
    cr_assert_eq(tgc_var_bind(p, pos), TGC_OK);
    cr_assert_eq(tgc_numel(rows), (pos + 1) * HD);
    cr_assert_eq(tgc_dim_value(ctx, L), pos + 1);
    static float a[CTX * HD], b[CTX * HD], c[CTX];
    size_t n = (size_t)(pos + 1) * HD * 4;
    cr_assert_eq(tgc_to_host(rows, a, n), TGC_OK, "%s", tgc_last_error());
    cr_assert_eq(tgc_to_host(cols, b, n), TGC_OK, "%s", tgc_last_error());
    cr_assert_eq(tgc_to_host(colsum, c, (size_t)(pos + 1) * 4), TGC_OK, "%s", tgc_last_error());
    for (int i = 0; i <= pos; i++) {
      double s = 0;
      for (int d = 0; d < HD; d++) {
        cr_assert_eq(a[i * HD + d], 3 * K[i * HD + d], "rows pos %d [%d,%d]", pos, i, d);
        cr_assert_eq(b[d * (pos + 1) + i], 3 * K[i * HD + d], "cols pos %d [%d,%d]", pos, d, i);
        s += 3.0 * K[i * HD + d];
      }
      cr_assert(fabs(c[i] - s) < 1e-4, "colsum pos %d [%d]: %g vs %g", pos, i, c[i], s);
    }
  }
  tgc_ctx_free(ctx);
}

Test(symbolic, pad_expand_flip_and_windows) {
  tgc_ctx *ctx = tgc_ctx_new();
  float x[CTX];
  tgc_var *p;
  tgc_tensor *w = prefix(ctx, x, &p); /* x[0..p] */
  int64_t L = tgc_shape(w)[0];
  /* padded by 2 before and 3 after: [L + 5], zeros at both ends */
  tgc_tensor *padded = tgc_pad(w, (int64_t[]){2, 3});
  /* padded up to CTX: the length p + 1 + (CTX - 1 - p) is concrete again */
  tgc_tensor *full = tgc_pad(w, (int64_t[]){0, tgc_var_dim(p, -1, CTX - 1)});
  tgc_tensor *ones = tgc_full(ctx, TGC_F32, 1, &L, 2.0);
  tgc_tensor *flipped = tgc_flip(w, 0, NULL);
  /* a window of 4 that starts at p, in a tensor of CTX + 4 */
  int64_t big = CTX + 4;
  static float xb[CTX + 4];
  for (int i = 0; i < CTX + 4; i++) xb[i] = (float)i;
  tgc_tensor *b = from(ctx, 1, &big, xb);
  tgc_tensor *win = tgc_shrink(b, (int64_t[]){tgc_var_dim(p, 1, 0), tgc_var_dim(p, 1, 4)});
  cr_assert(padded && full && ones && flipped && win, "%s", tgc_last_error());
  cr_expect_eq(tgc_shape(full)[0], CTX, "the symbolic parts cancel");
  cr_expect_eq(tgc_shape(win)[0], 4);
  tgc_tensor *onesum = tgc_sum(ones, 0, NULL, false);
  for (int pos = 0; pos < CTX; pos += 7) {
    cr_assert_eq(tgc_var_bind(p, pos), TGC_OK);
    static float g[CTX + 8];
    cr_assert_eq(tgc_to_host(padded, g, (size_t)(pos + 6) * 4), TGC_OK, "%s", tgc_last_error());
    for (int i = 0; i < pos + 6; i++)
      cr_assert_eq(g[i], i < 2 || i >= pos + 3 ? 0.0f : x[i - 2], "padded pos %d [%d]", pos, i);
    cr_assert_eq(tgc_to_host(full, g, CTX * 4), TGC_OK, "%s", tgc_last_error());
    for (int i = 0; i < CTX; i++) cr_assert_eq(g[i], i <= pos ? x[i] : 0.0f, "full pos %d [%d]", pos, i);
    cr_assert_eq(tgc_to_host(flipped, g, (size_t)(pos + 1) * 4), TGC_OK, "%s", tgc_last_error());
    for (int i = 0; i <= pos; i++) cr_assert_eq(g[i], x[pos - i], "flipped pos %d [%d]", pos, i);
    float s;
    cr_assert_eq(tgc_to_host(onesum, &s, 4), TGC_OK, "%s", tgc_last_error());
    cr_expect_eq(s, 2.0f * (float)(pos + 1));
    cr_assert_eq(tgc_to_host(win, g, 16), TGC_OK, "%s", tgc_last_error());
    for (int i = 0; i < 4; i++) cr_assert_eq(g[i], (float)(pos + i), "window pos %d [%d]", pos, i);
  }
  tgc_ctx_free(ctx);
}

Test(symbolic, two_variables_past_plus_new) {
  tgc_ctx *ctx = tgc_ctx_new();
  float x[CTX];
  int64_t s[1] = {CTX};
  fill(x, CTX, 6);
  tgc_tensor *t = from(ctx, 1, s, x);
  tgc_var *past = tgc_var_new(ctx, "past", 0, 32), *n = tgc_var_new(ctx, "n", 1, 31);
  int64_t len = tgc_dim_add(tgc_var_dim(past, 1, 0), tgc_var_dim(n, 1, 0));
  cr_assert(tgc_dim_is_symbolic(len));
  tgc_tensor *sum = tgc_sum(tgc_shrink(t, (int64_t[]){0, len}), 0, NULL, false);
  cr_assert_not_null(sum, "%s", tgc_last_error());
  tgc_stats s0, s1;
  tgc_get_stats(ctx, &s0);
  for (int a = 0; a <= 32; a += 8)
    for (int b = 1; b <= 31; b += 10) {
      cr_assert_eq(tgc_var_bind(past, a), TGC_OK);
      cr_assert_eq(tgc_var_bind(n, b), TGC_OK);
      float got;
      double want = 0;
      for (int i = 0; i < a + b; i++) want += x[i];
      cr_assert_eq(tgc_to_host(sum, &got, 4), TGC_OK, "%s", tgc_last_error());
      cr_expect(fabs(got - want) < 1e-4, "past %d n %d: %g vs %g", a, b, got, want);
    }
  tgc_get_stats(ctx, &s1);
  cr_expect_eq((s1.compiles - s0.compiles) + (s1.cache_disk_hits - s0.cache_disk_hits), 1);
  tgc_ctx_free(ctx);
}

Test(symbolic, misuse_is_an_error_not_undefined_behaviour) {
  tgc_ctx *ctx = tgc_ctx_new();
  int64_t s[2] = {CTX, 4};
  tgc_tensor *t = tgc_zeros(ctx, TGC_F32, 2, s);
  tgc_var *p = tgc_var_new(ctx, "start_pos", 0, CTX); /* one too many for a length p + 1 */
  int64_t L = tgc_var_dim(p, 1, 1);
  /* a length that leaves the axis for p = CTX */
  cr_expect_null(tgc_shrink(t, (int64_t[]){0, L, 0, 4}));
  cr_expect(strstr(tgc_last_error(), "start_pos+1"), "%s", tgc_last_error());
  /* a length that can be 0 */
  cr_expect_null(tgc_shrink(t, (int64_t[]){0, tgc_var_dim(p, 1, 0), 0, 4}));
  /* coefficients beyond what a size can hold */
  cr_expect_eq(tgc_var_dim(p, 9, 0), -1);
  cr_expect_eq(tgc_var_dim(NULL, 1, 0), -1);
  /* buffers are concrete */
  int64_t bs[1] = {L};
  cr_expect_null(tgc_empty(ctx, TGC_F32, 1, bs));
  cr_expect(strstr(tgc_last_error(), "symbolic"), "%s", tgc_last_error());
  /* a reshape may not merge a symbolic size with another */
  tgc_var *q = tgc_var_new(ctx, "q", 1, 8);
  int64_t Q = tgc_var_dim(q, 1, 0);
  tgc_tensor *wq = tgc_shrink(t, (int64_t[]){0, Q, 0, 4});
  cr_assert_not_null(wq, "%s", tgc_last_error());
  cr_expect_null(tgc_reshape(wq, 1, (int64_t[]){-1}));
  cr_expect(strstr(tgc_last_error(), "symbolic"), "%s", tgc_last_error());
  /* realizing with the variable unbound */
  tgc_tensor *sum = tgc_sum(wq, 1, (int[]){0}, false); /* [4] */
  float out[4];
  cr_expect_eq(tgc_numel(wq), -1);
  cr_expect_neq(tgc_to_host(sum, out, sizeof out), TGC_OK);
  cr_expect(strstr(tgc_last_error(), "not bound"), "%s", tgc_last_error());
  /* out of range binding, then a good one */
  cr_expect_eq(tgc_var_bind(q, 9), TGC_ERR_ARG);
  cr_assert_eq(tgc_var_bind(q, 3), TGC_OK);
  cr_expect_eq(tgc_to_host(sum, out, sizeof out), TGC_OK, "%s", tgc_last_error());
  cr_expect_eq(tgc_to_host(wq, out, sizeof out), TGC_ERR_ARG, "3 rows do not fit 16 bytes");
  tgc_ctx_free(ctx);
}

/* A GPU launch over one symbolic global axis covers its current size:
 * the axis is the slowest part of the block index (compiler/lower.c), so
 * a binding of start_pos = 9 launches 10 rows of 32 blocks, not all 64
 * rows the grid was laid out for.  Without a binding (NULL), or with a
 * size outside [1, largest], the whole grid.  (Results at every binding
 * are checked on OpenCL by the tests above, which the OpenCL pass runs.) */
Test(symbolic, a_gpu_launch_covers_the_current_size_of_a_symbolic_axis) {
  tgc_ctx *ctx = tgc_ctx_new();
  cr_assert_not_null(ctx, "%s", tgc_last_error());
  tgc_var *pos = tgc_var_new(ctx, "start_pos", 0, CTX - 1);
  cr_assert_not_null(pos, "%s", tgc_last_error());
  tgc_prog_info in = {.grid = {32 * CTX, 1, 1}, .grid_sym = tgc_var_dim(pos, 1, 1), .grid_per = 32};
  int64_t vars[TGC_MAX_VARS] = {9};
  cr_expect_eq(tgc_prog_blocks(&in, vars), 32 * 10, "start_pos 9: 10 rows of 32 blocks");
  vars[0] = CTX - 1;
  cr_expect_eq(tgc_prog_blocks(&in, vars), 32 * CTX, "the last position: the whole grid");
  cr_expect_eq(tgc_prog_blocks(&in, NULL), 32 * CTX, "no bindings: the whole grid");
  vars[0] = CTX + 5;
  cr_expect_eq(tgc_prog_blocks(&in, vars), 32 * CTX, "a size past the largest is never launched");
  tgc_prog_info plain = {.grid = {77, 1, 1}};
  cr_expect_eq(tgc_prog_blocks(&plain, vars), 77, "no symbolic axis: grid[0]");
  tgc_ctx_free(ctx);
}
