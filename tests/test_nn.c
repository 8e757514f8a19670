/* test_nn.c - the composites of ops/nn.c against the f64 reference:
 * matmul (2-d, numpy 1-d promotions, batched with broadcast batch axes,
 * transposed operands given as views), softmax and log-softmax on each axis,
 * rmsnorm, layernorm, rope and its tables, and embedding with out-of-range
 * ids; on f32 and, where sensible, f16 / bf16 / f64 / i32.
 */
#include <criterion/criterion.h>
#include <math.h>

#include "ref.h"

TestSuite(nn, .init = ref_setup, .fini = ref_teardown);

/* A sum of K products: the output rounding of the dtype plus an
 * accumulation error growing with K (accumulation in f32 for halves). */
static ref_tol mm_tol(tgc_dtype dt, int64_t K) {
  switch (dt) {
  case TGC_F16: return (ref_tol){1e-2, 5e-3};
  case TGC_BF16: return (ref_tol){2e-2, 3e-2};
  case TGC_F32: return (ref_tol){1e-4, 2e-6 * (double)K};
  case TGC_F64: return (ref_tol){1e-10, 1e-13 * (double)K};
  default: return ref_tol_for(dt, TOL_EXACT);
  }
}

static ref_t *gen(tgc_dtype dt, int ndim, const int64_t *shape, uint64_t seed) {
  if (ref_is_float(dt)) return ref_uniform(ndim, shape, -1, 1, seed);
  return ref_randint(ndim, shape, -20, 20, seed);
}

static void check_mm(tgc_dtype dt, int na, const int64_t *sa, int nb, const int64_t *sb, uint64_t seed) {
  char s1[64], s2[64];
  ref_t *a = gen(dt, na, sa, seed), *b = gen(dt, nb, sb, seed + 1);
  tgc_tensor *ta = ref_tensor(a, dt), *tb = ref_tensor(b, dt);
  ref_expect_tol(tgc_matmul(ta, tb), ref_matmul(a, b), dt, mm_tol(dt, sa[na - 1]), "%s matmul %s @ %s",
                 tgc_dtype_name(dt), ref_shape_str(na, sa, s1, sizeof s1), ref_shape_str(nb, sb, s2, sizeof s2));
}

Test(nn, matmul_2d_every_float_dtype_and_i32) {
  static const tgc_dtype dts[] = {TGC_F32, TGC_F64, TGC_F16, TGC_BF16, TGC_I32};
  for (int d = 0; d < COUNT(dts); d++) {
    check_mm(dts[d], SHAPE(3, 4), SHAPE(4, 5), 100 + 10 * d);
    check_mm(dts[d], SHAPE(1, 7), SHAPE(7, 1), 105 + 10 * d);
  }
  ref_verify();
}

Test(nn, matmul_1d_promotions) {
  check_mm(TGC_F32, SHAPE(4), SHAPE(4, 5), 201);
  check_mm(TGC_F32, SHAPE(3, 4), SHAPE(4), 202);
  check_mm(TGC_F32, SHAPE(4), SHAPE(4), 203); /* 0-d result */
  check_mm(TGC_F32, SHAPE(4), SHAPE(2, 4, 5), 204);
  check_mm(TGC_F32, SHAPE(2, 3, 4), SHAPE(4), 205);
  ref_verify();
}

Test(nn, matmul_batched_with_broadcast_batch_dims) {
  check_mm(TGC_F32, SHAPE(2, 3, 4), SHAPE(2, 4, 5), 301);
  check_mm(TGC_F32, SHAPE(2, 1, 3, 4), SHAPE(5, 4, 6), 302); /* -> [2,5,3,6] */
  check_mm(TGC_F32, SHAPE(3, 4), SHAPE(2, 4, 5), 303);
  check_mm(TGC_F32, SHAPE(1, 3, 4), SHAPE(2, 4, 5), 304);
  check_mm(TGC_F32, SHAPE(2, 3, 4), SHAPE(4, 5), 305);
  check_mm(TGC_F16, SHAPE(2, 1, 3, 4), SHAPE(5, 4, 6), 306);
  check_mm(TGC_I32, SHAPE(2, 1, 3, 4), SHAPE(1, 2, 4, 2), 307);
  ref_verify();
}

Test(nn, matmul_transposed_operands_as_views) {
  ref_t *at = gen(TGC_F32, SHAPE(4, 3), 401), *bt = gen(TGC_F32, SHAPE(5, 4), 402);
  tgc_tensor *ta = tgc_transpose(ref_tensor(at, TGC_F32), 0, 1), *tb = tgc_transpose(ref_tensor(bt, TGC_F32), 0, 1);
  ref_t *a = ref_transpose(at, 0, 1), *b = ref_transpose(bt, 0, 1);
  ref_t *a2 = gen(TGC_F32, SHAPE(3, 4), 403), *b2 = gen(TGC_F32, SHAPE(4, 5), 404);
  tgc_tensor *ta2 = ref_tensor(a2, TGC_F32), *tb2 = ref_tensor(b2, TGC_F32);
  ref_tol tol = mm_tol(TGC_F32, 4);
  ref_expect_tol(tgc_matmul(ta, tb2), ref_matmul(a, b2), TGC_F32, tol, "A^T @ B");
  ref_expect_tol(tgc_matmul(ta2, tb), ref_matmul(a2, b), TGC_F32, tol, "A @ B^T");
  ref_expect_tol(tgc_matmul(ta, tb), ref_matmul(a, b), TGC_F32, tol, "A^T @ B^T");
  /* batched with a transposed, sliced and flipped right operand: q @ k^T */
  ref_t *q = gen(TGC_F32, SHAPE(2, 3, 8), 405), *k = gen(TGC_F32, SHAPE(2, 7, 8), 406);
  tgc_tensor *tq = ref_tensor(q, TGC_F32), *tk = ref_tensor(k, TGC_F32);
  tgc_tensor *tkv = tgc_flip(tgc_slice(tgc_transpose(tk, -1, -2), 2, 1, 6), AXES(2)); /* [2,8,5] */
  ref_t *kv = ref_flip(ref_slice(ref_transpose(k, -1, -2), 2, 1, 6), AXES(2));
  ref_expect_tol(tgc_matmul(tq, tkv), ref_matmul(q, kv), TGC_F32, mm_tol(TGC_F32, 8), "q @ flip(slice(k^T))");
  /* a padded left operand: the padding contributes zeros */
  ref_t *p = gen(TGC_F32, SHAPE(2, 3), 407);
  tgc_tensor *tp = tgc_pad(ref_tensor(p, TGC_F32), I64S(1, 0, 0, 1));
  ref_expect_tol(tgc_matmul(tp, tb2), ref_matmul(ref_pad(p, I64S(1, 0, 0, 1)), b2), TGC_F32, tol, "pad(p) @ B");
  /* an expanded (broadcast) operand given as a view */
  ref_t *r = gen(TGC_F32, SHAPE(1, 4), 408);
  tgc_tensor *tr = tgc_expand(ref_tensor(r, TGC_F32), SHAPE(3, 4));
  ref_expect_tol(tgc_matmul(tr, tb2), ref_matmul(ref_expand(r, SHAPE(3, 4)), b2), TGC_F32, tol, "expand(r) @ B");
  ref_verify();
}

Test(nn, matmul_larger_k_and_matvec) {
  check_mm(TGC_F32, SHAPE(16, 64), SHAPE(64, 32), 501);
  check_mm(TGC_F32, SHAPE(1, 512), SHAPE(512, 48), 502);
  check_mm(TGC_F16, SHAPE(1, 512), SHAPE(512, 48), 503);
  check_mm(TGC_F64, SHAPE(9, 130), SHAPE(130, 11), 504);
  ref_verify();
}

Test(nn, matmul_fused_with_bias_and_relu) {
  ref_t *a = gen(TGC_F32, SHAPE(5, 16), 601), *b = gen(TGC_F32, SHAPE(16, 7), 602), *bias = gen(TGC_F32, SHAPE(7), 603);
  tgc_tensor *ta = ref_tensor(a, TGC_F32), *tb = ref_tensor(b, TGC_F32), *tbias = ref_tensor(bias, TGC_F32);
  ref_t *want = ref_unary(REF_RELU, TGC_F32, ref_binary(REF_ADD, TGC_F32, ref_matmul(a, b), bias));
  ref_expect_tol(tgc_relu(tgc_add(tgc_matmul(ta, tb), tbias)), want, TGC_F32, mm_tol(TGC_F32, 16), "relu(a@b + bias)");
  /* a matmul of a matmul */
  ref_t *c = gen(TGC_F32, SHAPE(7, 3), 604);
  ref_expect_tol(tgc_matmul(tgc_matmul(ta, tb), ref_tensor(c, TGC_F32)), ref_matmul(ref_matmul(a, b), c), TGC_F32,
                 (ref_tol){1e-4, 1e-4}, "(a@b)@c");
  ref_verify();
}

/* ---- softmax ------------------------------------------------------------------ */

Test(nn, softmax_and_log_softmax_each_axis) {
  ref_t *x = ref_uniform(SHAPE(4, 5, 6), -3, 3, 701);
  tgc_tensor *tx = ref_tensor(x, TGC_F32);
  static const int axes[] = {0, 1, 2, -1, -3};
  for (int i = 0; i < COUNT(axes); i++) {
    ref_expect(tgc_softmax(tx, axes[i]), ref_softmax(x, axes[i]), TGC_F32, TOL_TRANS, "softmax axis %d", axes[i]);
    ref_expect(tgc_log_softmax(tx, axes[i]), ref_log_softmax(x, axes[i]), TGC_F32, TOL_TRANS, "log_softmax axis %d",
               axes[i]);
  }
  ref_verify();
}

Test(nn, softmax_is_stable_for_large_inputs) {
  /* exp(100) overflows f32: the max must be subtracted first */
  ref_t *x = ref_uniform(SHAPE(6, 33), -100, 100, 801);
  tgc_tensor *tx = ref_tensor(x, TGC_F32);
  ref_expect(tgc_softmax(tx, -1), ref_softmax(x, -1), TGC_F32, TOL_TRANS, "softmax of [-100,100]");
  ref_expect_tol(tgc_log_softmax(tx, -1), ref_log_softmax(x, -1), TGC_F32, (ref_tol){1e-5, 1e-4},
                 "log_softmax of [-100,100]");
  ref_verify();
}

Test(nn, softmax_half_and_double) {
  ref_t *x = ref_uniform(SHAPE(3, 4, 40), -4, 4, 901);
  ref_t *xh = ref_copy(x), *xb = ref_copy(x);
  tgc_tensor *th = ref_tensor(xh, TGC_F16), *tb = ref_tensor(xb, TGC_BF16), *td = ref_tensor(x, TGC_F64);
  ref_expect(tgc_softmax(th, -1), ref_softmax(xh, -1), TGC_F16, TOL_TRANS, "f16 softmax -1");
  ref_expect(tgc_softmax(tb, 1), ref_softmax(xb, 1), TGC_BF16, TOL_TRANS, "bf16 softmax 1");
  ref_expect_tol(tgc_log_softmax(th, -1), ref_log_softmax(xh, -1), TGC_F16, (ref_tol){1e-2, 1e-2}, "f16 log_softmax -1");
  ref_expect(tgc_softmax(td, 1), ref_softmax(x, 1), TGC_F64, TOL_TRANS, "f64 softmax 1");
  ref_expect(tgc_log_softmax(td, 0), ref_log_softmax(x, 0), TGC_F64, TOL_TRANS, "f64 log_softmax 0");
  ref_verify();
}

Test(nn, softmax_of_a_view) {
  ref_t *x = ref_uniform(SHAPE(5, 8), -3, 3, 1001);
  tgc_tensor *tv = tgc_flip(tgc_transpose(ref_tensor(x, TGC_F32), 0, 1), AXES(1));
  ref_t *v = ref_flip(ref_transpose(x, 0, 1), AXES(1));
  ref_expect(tgc_softmax(tv, -1), ref_softmax(v, -1), TGC_F32, TOL_TRANS, "softmax(flip(x^T))");
  ref_expect(tgc_softmax(tgc_pad(tv, I64S(0, 0, 0, 2)), -1), ref_softmax(ref_pad(v, I64S(0, 0, 0, 2)), -1), TGC_F32,
             TOL_TRANS, "softmax over padded positions (zeros count)");
  ref_verify();
}

/* ---- norms ----------------------------------------------------------------------- */

Test(nn, rmsnorm_and_layernorm) {
  static const tgc_dtype dts[] = {TGC_F32, TGC_F16, TGC_F64};
  for (int d = 0; d < COUNT(dts); d++) {
    tgc_dtype dt = dts[d];
    const char *n = tgc_dtype_name(dt);
    ref_t *x = ref_uniform(SHAPE(3, 16), -2, 2, 1100 + d), *y = ref_uniform(SHAPE(2, 3, 64), -1, 3, 1110 + d);
    ref_t *w = ref_uniform(SHAPE(64), 0.5, 1.5, 1120 + d);
    tgc_tensor *tx = ref_tensor(x, dt), *ty = ref_tensor(y, dt), *tw = ref_tensor(w, dt);
    ref_expect(tgc_rmsnorm(tx, 1e-5), ref_rmsnorm(x, 1e-5), dt, TOL_TRANS, "%s rmsnorm [3,16]", n);
    ref_expect(tgc_layernorm(tx, 1e-5), ref_layernorm(x, 1e-5), dt, TOL_TRANS, "%s layernorm [3,16]", n);
    ref_expect(tgc_mul(tgc_rmsnorm(ty, 1e-6), tw), ref_binary(REF_MUL, dt, ref_rmsnorm(y, 1e-6), w), dt, TOL_TRANS,
               "%s rmsnorm [2,3,64] * w", n);
    ref_expect(tgc_layernorm(ty, 1e-5), ref_layernorm(y, 1e-5), dt, TOL_TRANS, "%s layernorm [2,3,64]", n);
  }
  /* eps matters: rows of near-zero values */
  ref_t *z = ref_uniform(SHAPE(4, 8), -1e-3, 1e-3, 1130);
  tgc_tensor *tz = ref_tensor(z, TGC_F32);
  ref_expect(tgc_rmsnorm(tz, 1e-4), ref_rmsnorm(z, 1e-4), TGC_F32, TOL_TRANS, "rmsnorm with dominant eps");
  ref_expect(tgc_layernorm(tz, 1e-2), ref_layernorm(z, 1e-2), TGC_F32, TOL_TRANS, "layernorm with dominant eps");
  /* on a transposed view */
  ref_t *v = ref_uniform(SHAPE(16, 5), -2, 2, 1131);
  tgc_tensor *tv = tgc_transpose(ref_tensor(v, TGC_F32), 0, 1);
  ref_expect(tgc_rmsnorm(tv, 1e-5), ref_rmsnorm(ref_transpose(v, 0, 1), 1e-5), TGC_F32, TOL_TRANS, "rmsnorm(x^T)");
  ref_verify();
}

/* ---- rope --------------------------------------------------------------------------- */

Test(nn, rope_tables_match_formula) {
  tgc_tensor *c = NULL, *s = NULL;
  tgc_status st = tgc_rope_tables(tctx, 3, 5, 8, 10000.0, &c, &s);
  cr_assert_eq(st, TGC_OK, "tgc_rope_tables: %s", tgc_last_error());
  cr_assert(c && s);
  cr_assert(tgc_dtype_is_float(tgc_dtype_of(c)), "rope tables are %s", tgc_dtype_name(tgc_dtype_of(c)));
  ref_t *rc, *rs;
  ref_rope_tables(3, 5, 8, 10000.0, &rc, &rs);
  ref_expect(c, rc, tgc_dtype_of(c), TOL_TRANS, "rope cos table");
  ref_expect(s, rs, tgc_dtype_of(s), TOL_TRANS, "rope sin table");
  tgc_tensor *c2 = NULL, *s2 = NULL;
  cr_assert_eq(tgc_rope_tables(tctx, 0, 7, 16, 500000.0, &c2, &s2), TGC_OK, "%s", tgc_last_error());
  ref_rope_tables(0, 7, 16, 500000.0, &rc, &rs);
  ref_expect(c2, rc, tgc_dtype_of(c2), TOL_TRANS, "rope cos table, theta 5e5");
  ref_expect(s2, rs, tgc_dtype_of(s2), TOL_TRANS, "rope sin table, theta 5e5");
  ref_verify();
}

Test(nn, rope_rotates_adjacent_pairs) {
  /* x [B, T, D] with cos/sin [T, D/2] */
  ref_t *x = ref_uniform(SHAPE(2, 4, 8), -2, 2, 1301);
  ref_t *c = ref_uniform(SHAPE(4, 4), -1, 1, 1302), *s = ref_uniform(SHAPE(4, 4), -1, 1, 1303);
  tgc_tensor *tx = ref_tensor(x, TGC_F32), *tc = ref_tensor(c, TGC_F32), *ts = ref_tensor(s, TGC_F32);
  ref_expect(tgc_rope(tx, tc, ts), ref_rope(x, c, s), TGC_F32, TOL_SIMPLE, "rope [2,4,8] with [4,4] tables");
  /* x [B, H, T, D], tables from tgc_rope_tables, compared in f32 */
  ref_t *y = ref_uniform(SHAPE(1, 2, 4, 8), -2, 2, 1304), *rc, *rs;
  ref_rope_tables(5, 4, 8, 10000.0, &rc, &rs);
  tgc_tensor *tc2 = NULL, *ts2 = NULL;
  cr_assert_eq(tgc_rope_tables(tctx, 5, 4, 8, 10000.0, &tc2, &ts2), TGC_OK, "%s", tgc_last_error());
  tgc_tensor *ty = ref_tensor(y, TGC_F32);
  if (tgc_dtype_of(tc2) != TGC_F32) tc2 = tgc_cast(tc2, TGC_F32), ts2 = tgc_cast(ts2, TGC_F32);
  ref_expect(tgc_rope(ty, tc2, ts2), ref_rope(y, rc, rs), TGC_F32, TOL_TRANS, "rope [1,2,4,8] with rope_tables");
  /* x as a view: [T, H, D] transposed to [H, T, D] */
  ref_t *z = ref_uniform(SHAPE(4, 3, 8), -2, 2, 1305);
  tgc_tensor *tz = tgc_transpose(ref_tensor(z, TGC_F32), 0, 1);
  ref_expect(tgc_rope(tz, tc, ts), ref_rope(ref_transpose(z, 0, 1), c, s), TGC_F32, TOL_SIMPLE,
             "rope of a transposed view");
  /* f16 */
  ref_t *xh = ref_copy(x), *ch = ref_copy(c), *sh = ref_copy(s);
  tgc_tensor *txh = ref_tensor(xh, TGC_F16), *tch = ref_tensor(ch, TGC_F16), *tsh = ref_tensor(sh, TGC_F16);
  ref_expect(tgc_rope(txh, tch, tsh), ref_rope(xh, ch, sh), TGC_F16, TOL_TRANS, "f16 rope");
  ref_verify();
}

Test(nn, rope_small_case_by_hand) {
  /* one pair (1, 2) rotated by 90 degrees: (1*0 - 2*1, 1*1 + 2*0) = (-2, 1) */
  double xv[] = {1, 2}, cv[] = {0}, sv[] = {1}, want[] = {-2, 1};
  tgc_tensor *x = ref_tensor(ref_of(SHAPE(1, 2), xv), TGC_F32);
  tgc_tensor *c = ref_tensor(ref_of(SHAPE(1, 1), cv), TGC_F32), *s = ref_tensor(ref_of(SHAPE(1, 1), sv), TGC_F32);
  ref_t *w = ref_of(SHAPE(1, 2), want);
  ref_expect(tgc_rope(x, c, s), w, TGC_F32, TOL_EXACT, "rope of (1,2) by 90 degrees");
  ref_t *r = ref_rope(ref_of(SHAPE(1, 2), xv), ref_of(SHAPE(1, 1), cv), ref_of(SHAPE(1, 1), sv));
  cr_assert(r->v[0] == -2 && r->v[1] == 1, "the reference rope disagrees with the hand-derived case");
  ref_verify();
}

/* ---- embedding ---------------------------------------------------------------------- */

Test(nn, embedding_gathers_rows_out_of_range_ids_read_zero) {
  ref_t *table = ref_uniform(SHAPE(10, 6), -1, 1, 1401);
  tgc_tensor *tt = ref_tensor(table, TGC_F32);
  double idv[] = {0, 9, 3, -1, 10, 100, 3, 7};
  static const tgc_dtype idts[] = {TGC_I32, TGC_I64};
  for (int d = 0; d < COUNT(idts); d++) {
    ref_t *ids = ref_of(SHAPE(2, 4), idv);
    tgc_tensor *ti = ref_tensor(ids, idts[d]);
    ref_expect(tgc_embedding(tt, ti), ref_embedding(table, ids), TGC_F32, TOL_EXACT, "embedding with %s ids [2,4]",
               tgc_dtype_name(idts[d]));
  }
  /* 1-d ids, an f16 table, computed ids, and a 0-d id */
  ref_t *ids = ref_randint(SHAPE(12), -2, 11, 1402);
  tgc_tensor *ti = ref_tensor(ids, TGC_I32);
  ref_expect(tgc_embedding(tt, ti), ref_embedding(table, ids), TGC_F32, TOL_EXACT, "embedding [12] ids");
  ref_t *th = ref_copy(table);
  tgc_tensor *tth = ref_tensor(th, TGC_F16);
  ref_expect(tgc_embedding(tth, ti), ref_embedding(th, ids), TGC_F16, TOL_EXACT, "f16 embedding");
  ref_t *ids1 = ref_binary(REF_ADD, TGC_I32, ids, ref_fill(0, NULL, 1));
  ref_expect(tgc_embedding(tt, tgc_add(ti, tgc_scalar(tctx, TGC_I32, 1))), ref_embedding(table, ids1), TGC_F32,
             TOL_EXACT, "embedding of ids + 1");
  ref_t *one = ref_fill(0, NULL, 4);
  ref_expect(tgc_embedding(tt, ref_tensor(one, TGC_I32)), ref_embedding(table, one), TGC_F32, TOL_EXACT,
             "embedding of a 0-d id");
  ref_verify();
}

Test(nn, embedding_fused_into_compute) {
  ref_t *table = ref_uniform(SHAPE(32, 16), -1, 1, 1501), *w = ref_uniform(SHAPE(16, 8), -1, 1, 1502);
  ref_t *ids = ref_randint(SHAPE(5), 0, 31, 1503);
  tgc_tensor *tt = ref_tensor(table, TGC_F32), *tw = ref_tensor(w, TGC_F32), *ti = ref_tensor(ids, TGC_I64);
  ref_t *e = ref_embedding(table, ids);
  ref_expect_tol(tgc_matmul(tgc_rmsnorm(tgc_embedding(tt, ti), 1e-5), tw), ref_matmul(ref_rmsnorm(e, 1e-5), w),
                 TGC_F32, (ref_tol){1e-4, 1e-4}, "rmsnorm(embedding) @ w");
  ref_verify();
}
