/* test_movement.c - reshape, permute, expand, pad, shrink/slice, flip,
 * squeeze/unsqueeze, cat, contiguous and assign against the reference's
 * index math; and every kind of view (and chains of them) fed to
 * elementwise and reduce ops, where the scheduler has to fold the view into
 * the kernel's loads.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ref.h"

TestSuite(movement, .init = ref_setup, .fini = ref_teardown);

static ref_t *gen(tgc_dtype dt, int ndim, const int64_t *shape, uint64_t seed) {
  if (dt == TGC_BOOL) return ref_randint(ndim, shape, 0, 1, seed);
  if (ref_is_float(dt)) return ref_uniform(ndim, shape, -2, 2, seed);
  return ref_randint(ndim, shape, ref_is_signed(dt) ? -50 : 0, 50, seed);
}

/* ---- each movement op on a realized input ------------------------------------ */

Test(movement, reshape_including_inferred_dims_and_0d) {
  static const tgc_dtype dts[] = {TGC_F32, TGC_I32};
  for (int d = 0; d < COUNT(dts); d++) {
    tgc_dtype dt = dts[d];
    const char *n = tgc_dtype_name(dt);
    ref_t *x = gen(dt, SHAPE(4, 6), 100 + d);
    tgc_tensor *tx = ref_tensor(x, dt);
    ref_expect(tgc_reshape(tx, SHAPE(2, 3, 4)), ref_reshape(x, SHAPE(2, 3, 4)), dt, TOL_EXACT, "%s [2,3,4]", n);
    ref_expect(tgc_reshape(tx, SHAPE(-1, 8)), ref_reshape(x, SHAPE(3, 8)), dt, TOL_EXACT, "%s [-1,8]", n);
    ref_expect(tgc_reshape(tx, SHAPE(2, -1, 3)), ref_reshape(x, SHAPE(2, 4, 3)), dt, TOL_EXACT, "%s [2,-1,3]", n);
    ref_expect(tgc_reshape(tx, SHAPE(24)), ref_reshape(x, SHAPE(24)), dt, TOL_EXACT, "%s [24]", n);
    ref_expect(tgc_reshape(tx, SHAPE(1, 24, 1)), ref_reshape(x, SHAPE(1, 24, 1)), dt, TOL_EXACT, "%s [1,24,1]", n);
    ref_expect(tgc_reshape(tgc_reshape(tx, SHAPE(24)), SHAPE(6, 4)), ref_reshape(x, SHAPE(6, 4)), dt, TOL_EXACT,
               "%s [24] -> [6,4]", n);
  }
  ref_t *one = ref_uniform(SHAPE(1), -1, 1, 110);
  tgc_tensor *t1 = ref_tensor(one, TGC_F32);
  tgc_tensor *t0 = tgc_reshape(t1, 0, NULL);
  cr_expect_eq(tgc_ndim(t0), 0, "reshape [1] -> [] has ndim %d", tgc_ndim(t0));
  ref_expect(t0, ref_reshape(one, 0, NULL), TGC_F32, TOL_EXACT, "[1] -> []");
  ref_expect(tgc_reshape(t0, SHAPE(1, 1)), ref_reshape(one, SHAPE(1, 1)), TGC_F32, TOL_EXACT, "[] -> [1,1]");
  ref_verify();
}

Test(movement, permute_every_order_and_transpose) {
  static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  static const tgc_dtype dts[] = {TGC_F32, TGC_F16, TGC_I8};
  for (int d = 0; d < COUNT(dts); d++) {
    tgc_dtype dt = dts[d];
    ref_t *x = gen(dt, SHAPE(2, 3, 4), 200 + d);
    tgc_tensor *tx = ref_tensor(x, dt);
    for (int p = 0; p < 6; p++)
      ref_expect(tgc_permute(tx, perms[p]), ref_permute(x, perms[p]), dt, TOL_EXACT, "%s permute (%d,%d,%d)",
                 tgc_dtype_name(dt), perms[p][0], perms[p][1], perms[p][2]);
    ref_expect(tgc_transpose(tx, 0, 2), ref_transpose(x, 0, 2), dt, TOL_EXACT, "%s transpose(0,2)",
               tgc_dtype_name(dt));
    ref_expect(tgc_transpose(tx, -1, -2), ref_transpose(x, -1, -2), dt, TOL_EXACT, "%s transpose(-1,-2)",
               tgc_dtype_name(dt));
  }
  ref_verify();
}

Test(movement, expand_size_one_and_leading_axes) {
  ref_t *c = gen(TGC_F32, SHAPE(3, 1), 301), *v = gen(TGC_F32, SHAPE(4), 302), *o = gen(TGC_F32, SHAPE(1, 1), 303);
  tgc_tensor *tc = ref_tensor(c, TGC_F32), *tv = ref_tensor(v, TGC_F32), *to = ref_tensor(o, TGC_F32);
  ref_expect(tgc_expand(tc, SHAPE(3, 4)), ref_expand(c, SHAPE(3, 4)), TGC_F32, TOL_EXACT, "[3,1] -> [3,4]");
  ref_expect(tgc_expand(tc, SHAPE(-1, 5)), ref_expand(c, SHAPE(3, 5)), TGC_F32, TOL_EXACT, "[3,1] -> [-1,5]");
  ref_expect(tgc_expand(tc, SHAPE(2, 3, 5)), ref_expand(c, SHAPE(2, 3, 5)), TGC_F32, TOL_EXACT, "[3,1] -> [2,3,5]");
  ref_expect(tgc_expand(tv, SHAPE(2, 3, 4)), ref_expand(v, SHAPE(2, 3, 4)), TGC_F32, TOL_EXACT, "[4] -> [2,3,4]");
  ref_expect(tgc_expand(to, SHAPE(5, 6)), ref_expand(o, SHAPE(5, 6)), TGC_F32, TOL_EXACT, "[1,1] -> [5,6]");
  ref_expect(tgc_expand(tc, SHAPE(3, 1)), c, TGC_F32, TOL_EXACT, "[3,1] -> [3,1]");
  ref_t *ci = gen(TGC_I64, SHAPE(3, 1), 304);
  ref_expect(tgc_expand(ref_tensor(ci, TGC_I64), SHAPE(2, 3, 4)), ref_expand(ci, SHAPE(2, 3, 4)), TGC_I64,
             TOL_EXACT, "i64 [3,1] -> [2,3,4]");
  ref_verify();
}

Test(movement, pad_fills_zero) {
  static const tgc_dtype dts[] = {TGC_F32, TGC_I32, TGC_F16, TGC_BOOL, TGC_U8};
  for (int d = 0; d < COUNT(dts); d++) {
    tgc_dtype dt = dts[d];
    ref_t *x = gen(dt, SHAPE(3, 4), 400 + d), *y = gen(dt, SHAPE(2, 3, 4), 410 + d);
    tgc_tensor *tx = ref_tensor(x, dt), *ty = ref_tensor(y, dt);
    ref_expect(tgc_pad(tx, I64S(1, 2, 0, 3)), ref_pad(x, I64S(1, 2, 0, 3)), dt, TOL_EXACT, "%s pad [3,4]",
               tgc_dtype_name(dt));
    ref_expect(tgc_pad(ty, I64S(0, 0, 2, 1, 1, 1)), ref_pad(y, I64S(0, 0, 2, 1, 1, 1)), dt, TOL_EXACT,
               "%s pad [2,3,4]", tgc_dtype_name(dt));
  }
  ref_t *x = gen(TGC_F32, SHAPE(3, 4), 420);
  ref_expect(tgc_pad(ref_tensor(x, TGC_F32), I64S(0, 0, 0, 0)), x, TGC_F32, TOL_EXACT, "pad by nothing");
  ref_verify();
}

Test(movement, shrink_and_slice) {
  static const tgc_dtype dts[] = {TGC_F32, TGC_I16};
  for (int d = 0; d < COUNT(dts); d++) {
    tgc_dtype dt = dts[d];
    const char *n = tgc_dtype_name(dt);
    ref_t *x = gen(dt, SHAPE(5, 6), 500 + d);
    tgc_tensor *tx = ref_tensor(x, dt);
    ref_expect(tgc_shrink(tx, I64S(1, 4, 2, 6)), ref_shrink(x, I64S(1, 4, 2, 6)), dt, TOL_EXACT, "%s shrink", n);
    ref_expect(tgc_shrink(tx, I64S(0, 5, 0, 6)), x, dt, TOL_EXACT, "%s shrink to everything", n);
    ref_expect(tgc_shrink(tx, I64S(4, 5, 5, 6)), ref_shrink(x, I64S(4, 5, 5, 6)), dt, TOL_EXACT, "%s shrink 1x1", n);
    ref_expect(tgc_slice(tx, 1, -3, -1), ref_slice(x, 1, -3, -1), dt, TOL_EXACT, "%s slice(1, -3, -1)", n);
    ref_expect(tgc_slice(tx, 0, 1, 3), ref_slice(x, 0, 1, 3), dt, TOL_EXACT, "%s slice(0, 1, 3)", n);
    ref_expect(tgc_slice(tx, -1, 0, -5), ref_slice(x, -1, 0, -5), dt, TOL_EXACT, "%s slice(-1, 0, -5)", n);
    ref_expect(tgc_slice(tgc_slice(tx, 1, 1, 5), 1, 1, 3), ref_slice(ref_slice(x, 1, 1, 5), 1, 1, 3), dt,
               TOL_EXACT, "%s slice of a slice", n);
  }
  ref_verify();
}

Test(movement, slice_clamps_out_of_range_bounds_like_python) {
  ref_t *x = gen(TGC_F32, SHAPE(5, 6), 550);
  tgc_tensor *tx = ref_tensor(x, TGC_F32);
  ref_expect(tgc_slice(tx, 1, 2, 100), ref_slice(x, 1, 2, 100), TGC_F32, TOL_EXACT, "x[:, 2:100]");
  ref_expect(tgc_slice(tx, 0, -100, 2), ref_slice(x, 0, -100, 2), TGC_F32, TOL_EXACT, "x[-100:2]");
  ref_verify();
}

Test(movement, flip_axes) {
  ref_t *x = gen(TGC_F32, SHAPE(4, 6), 600), *y = gen(TGC_I32, SHAPE(2, 3, 4), 601);
  tgc_tensor *tx = ref_tensor(x, TGC_F32), *ty = ref_tensor(y, TGC_I32);
  ref_expect(tgc_flip(tx, AXES(0)), ref_flip(x, AXES(0)), TGC_F32, TOL_EXACT, "flip 0");
  ref_expect(tgc_flip(tx, AXES(1)), ref_flip(x, AXES(1)), TGC_F32, TOL_EXACT, "flip 1");
  ref_expect(tgc_flip(tx, AXES(0, 1)), ref_flip(x, AXES(0, 1)), TGC_F32, TOL_EXACT, "flip 0,1");
  ref_expect(tgc_flip(tx, AXES(-1)), ref_flip(x, AXES(-1)), TGC_F32, TOL_EXACT, "flip -1");
  ref_expect(tgc_flip(ty, AXES(0, 2)), ref_flip(y, AXES(0, 2)), TGC_I32, TOL_EXACT, "i32 flip 0,2");
  ref_expect(tgc_flip(tgc_flip(tx, AXES(1)), AXES(1)), x, TGC_F32, TOL_EXACT, "flip twice");
  ref_verify();
}

Test(movement, squeeze_unsqueeze) {
  ref_t *x = gen(TGC_F32, SHAPE(3, 1, 4), 700);
  tgc_tensor *tx = ref_tensor(x, TGC_F32);
  ref_expect(tgc_squeeze(tx, 1), ref_squeeze(x, 1), TGC_F32, TOL_EXACT, "squeeze 1");
  ref_expect(tgc_squeeze(tx, -2), ref_squeeze(x, -2), TGC_F32, TOL_EXACT, "squeeze -2");
  static const int ax[] = {0, 1, 3, -1, -4, 2};
  for (int i = 0; i < COUNT(ax); i++)
    ref_expect(tgc_unsqueeze(tx, ax[i]), ref_unsqueeze(x, ax[i]), TGC_F32, TOL_EXACT, "unsqueeze %d", ax[i]);
  ref_t *s = ref_fill(0, NULL, 2.5);
  tgc_tensor *ts = ref_tensor(s, TGC_F32);
  ref_expect(tgc_unsqueeze(ts, 0), ref_unsqueeze(s, 0), TGC_F32, TOL_EXACT, "unsqueeze a 0-d tensor");
  ref_expect(tgc_squeeze(tgc_unsqueeze(ts, 0), 0), s, TGC_F32, TOL_EXACT, "squeeze back to 0-d");
  ref_verify();
}

/* ---- cat ------------------------------------------------------------------------- */

Test(movement, cat_along_each_axis) {
  ref_t *a = gen(TGC_F32, SHAPE(2, 3, 4), 801);
  tgc_tensor *ta = ref_tensor(a, TGC_F32);
  static const int64_t other[3][2][3] = {{{1, 3, 4}, {3, 3, 4}}, {{2, 1, 4}, {2, 2, 4}}, {{2, 3, 2}, {2, 3, 1}}};
  for (int ax = 0; ax < 3; ax++) {
    ref_t *b = gen(TGC_F32, 3, other[ax][0], 810 + ax), *c = gen(TGC_F32, 3, other[ax][1], 820 + ax);
    tgc_tensor *tb = ref_tensor(b, TGC_F32), *tc = ref_tensor(c, TGC_F32);
    const ref_t *r2[] = {a, b}, *r3[] = {a, b, c};
    tgc_tensor *t2[] = {ta, tb}, *t3[] = {ta, tb, tc};
    ref_expect(tgc_cat(2, t2, ax), ref_cat(2, r2, ax), TGC_F32, TOL_EXACT, "cat 2 along %d", ax);
    ref_expect(tgc_cat(3, t3, ax - 3), ref_cat(3, r3, ax), TGC_F32, TOL_EXACT, "cat 3 along %d", ax - 3);
  }
  tgc_tensor *one[] = {ta};
  ref_expect(tgc_cat(1, one, 1), a, TGC_F32, TOL_EXACT, "cat of one tensor");
  ref_verify();
}

Test(movement, cat_of_views_and_dtypes) {
  static const tgc_dtype dts[] = {TGC_F32, TGC_I32, TGC_F16};
  for (int d = 0; d < COUNT(dts); d++) {
    tgc_dtype dt = dts[d];
    const char *n = tgc_dtype_name(dt);
    /* a permuted [3,4] (from [4,3]), a padded [2,4] (from [1,2]), an
     * expanded [2,4] (from [2,1]) and a flipped [1,4] */
    ref_t *p = gen(dt, SHAPE(4, 3), 900 + d), *q = gen(dt, SHAPE(1, 2), 910 + d), *e = gen(dt, SHAPE(2, 1), 920 + d);
    ref_t *f = gen(dt, SHAPE(1, 4), 930 + d);
    tgc_tensor *tp = tgc_permute(ref_tensor(p, dt), INTS(1, 0));
    tgc_tensor *tq = tgc_pad(ref_tensor(q, dt), I64S(1, 0, 1, 1));
    tgc_tensor *te = tgc_expand(ref_tensor(e, dt), SHAPE(2, 4));
    tgc_tensor *tf = tgc_flip(ref_tensor(f, dt), AXES(1));
    const ref_t *rs[] = {ref_permute(p, INTS(1, 0)), ref_pad(q, I64S(1, 0, 1, 1)), ref_expand(e, SHAPE(2, 4)),
                         ref_flip(f, AXES(1))};
    tgc_tensor *ts[] = {tp, tq, te, tf};
    ref_t *cat0 = ref_cat(4, rs, 0);
    tgc_tensor *tcat = tgc_cat(4, ts, 0);
    ref_expect(tcat, cat0, dt, TOL_EXACT, "%s cat of 4 views along 0", n);
    /* the cat result used as a view and reduced */
    ref_expect(tgc_transpose(tcat, 0, 1), ref_transpose(cat0, 0, 1), dt, TOL_EXACT, "%s transpose of cat", n);
    ref_expect(tgc_sum(tcat, AXES(0), false), ref_reduce(REF_SUM, dt, cat0, AXES(0), false), dt, TOL_SIMPLE,
               "%s sum of cat", n);
    /* along axis 1: [2,4] views side by side */
    const ref_t *r1[] = {rs[1], rs[2], rs[1]};
    tgc_tensor *t1[] = {tq, te, tq};
    ref_expect(tgc_cat(3, t1, 1), ref_cat(3, r1, 1), dt, TOL_EXACT, "%s cat of views along 1", n);
  }
  ref_verify();
}

Test(movement, cat_of_lazy_computations) {
  ref_t *a = gen(TGC_F32, SHAPE(3, 4), 1001), *b = gen(TGC_F32, SHAPE(3, 4), 1002);
  tgc_tensor *ta = ref_tensor(a, TGC_F32), *tb = ref_tensor(b, TGC_F32);
  tgc_tensor *ts[] = {tgc_add(ta, tb), tgc_exp(ta), tgc_sum(tb, AXES(1), true)};
  const ref_t *rs[] = {ref_binary(REF_ADD, TGC_F32, a, b), ref_unary(REF_EXP, TGC_F32, a),
                       ref_reduce(REF_SUM, TGC_F32, b, AXES(1), true)};
  ref_expect(tgc_cat(3, ts, 1), ref_cat(3, rs, 1), TGC_F32, TOL_TRANS, "cat(a+b, exp(a), sum(b)) along 1");
  ref_verify();
}

/* ---- views fed to compute -------------------------------------------------------- */

/* A view of shape [4,6] and its reference. */
typedef struct view {
  tgc_tensor *t;
  ref_t *r;
} view;
typedef view (*view_fn)(tgc_dtype dt, uint64_t seed);

static view v_permuted(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(6, 4), s);
  return (view){tgc_permute(ref_tensor(b, dt), INTS(1, 0)), ref_permute(b, INTS(1, 0))};
}
static view v_shrunk(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(6, 8), s);
  return (view){tgc_shrink(ref_tensor(b, dt), I64S(1, 5, 1, 7)), ref_shrink(b, I64S(1, 5, 1, 7))};
}
static view v_sliced(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(4, 10), s);
  return (view){tgc_slice(ref_tensor(b, dt), 1, -8, -2), ref_slice(b, 1, -8, -2)};
}
static view v_padded(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(3, 4), s);
  return (view){tgc_pad(ref_tensor(b, dt), I64S(1, 0, 0, 2)), ref_pad(b, I64S(1, 0, 0, 2))};
}
static view v_expanded_col(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(4, 1), s);
  return (view){tgc_expand(ref_tensor(b, dt), SHAPE(4, 6)), ref_expand(b, SHAPE(4, 6))};
}
static view v_expanded_row(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(6), s);
  return (view){tgc_expand(ref_tensor(b, dt), SHAPE(4, 6)), ref_expand(b, SHAPE(4, 6))};
}
static view v_flipped(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(4, 6), s);
  return (view){tgc_flip(ref_tensor(b, dt), AXES(0, 1)), ref_flip(b, AXES(0, 1))};
}
/* a reshape that cannot merge with the permute below it */
static view v_permuted_reshaped(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(3, 2, 4), s);
  return (view){tgc_reshape(tgc_permute(ref_tensor(b, dt), INTS(2, 0, 1)), SHAPE(4, 6)),
                ref_reshape(ref_permute(b, INTS(2, 0, 1)), SHAPE(4, 6))};
}
/* the padded row ends up inside the kept range after the flip */
static view v_pad_flip_reshape(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(3, 4, 2), s);
  tgc_tensor *t = tgc_permute(ref_tensor(b, dt), INTS(1, 0, 2));
  t = tgc_shrink(tgc_flip(tgc_pad(t, I64S(0, 0, 1, 0, 0, 0)), AXES(1)), I64S(0, 4, 1, 4, 0, 2));
  ref_t *r = ref_shrink(ref_flip(ref_pad(ref_permute(b, INTS(1, 0, 2)), I64S(0, 0, 1, 0, 0, 0)), AXES(1)),
                        I64S(0, 4, 1, 4, 0, 2));
  return (view){tgc_reshape(t, SHAPE(4, 6)), ref_reshape(r, SHAPE(4, 6))};
}
static view v_expanded_reshaped(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(4, 1, 3), s);
  return (view){tgc_reshape(tgc_expand(ref_tensor(b, dt), SHAPE(4, 2, 3)), SHAPE(4, 6)),
                ref_reshape(ref_expand(b, SHAPE(4, 2, 3)), SHAPE(4, 6))};
}
/* keeps part of the padding on two sides */
static view v_pad_then_shrink(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(4, 6), s);
  return (view){tgc_shrink(tgc_pad(ref_tensor(b, dt), I64S(2, 2, 3, 3)), I64S(1, 5, 2, 8)),
                ref_shrink(ref_pad(b, I64S(2, 2, 3, 3)), I64S(1, 5, 2, 8))};
}
/* a view of a lazy computation rather than of a buffer */
static view v_permuted_lazy(tgc_dtype dt, uint64_t s) {
  ref_t *a = gen(dt, SHAPE(6, 4), s), *b = gen(dt, SHAPE(6, 4), s + 99);
  /* multiples of 1/16, so the sum is exact in every dtype whether or not
   * the kernel rounds it before the next op */
  for (int64_t i = 0; i < a->numel; i++) a->v[i] = round(a->v[i] * 16) / 16, b->v[i] = round(b->v[i] * 16) / 16;
  tgc_tensor *sum = tgc_add(ref_tensor(a, dt), ref_tensor(b, dt));
  ref_t *r = ref_binary(REF_ADD, dt, a, b);
  return (view){tgc_permute(sum, INTS(1, 0)), ref_permute(r, INTS(1, 0))};
}
/* permute -> pad -> flip -> shrink -> reshape */
static view v_long_chain(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(2, 3, 4), s);
  static const int perm[] = {2, 0, 1};
  static const int64_t pads[] = {1, 0, 0, 1, 2, 1}, rng[] = {1, 5, 0, 2, 1, 4};
  tgc_tensor *t = tgc_shrink(tgc_flip(tgc_pad(tgc_permute(ref_tensor(b, dt), perm), pads), AXES(0, 2)), rng);
  ref_t *r = ref_shrink(ref_flip(ref_pad(ref_permute(b, perm), pads), AXES(0, 2)), rng);
  return (view){tgc_reshape(t, SHAPE(4, 6)), ref_reshape(r, SHAPE(4, 6))};
}
static view v_squeezed_flipped_sliced(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(1, 4, 8), s);
  tgc_tensor *t = tgc_slice(tgc_flip(tgc_squeeze(ref_tensor(b, dt), 0), AXES(1)), 1, 1, 7);
  return (view){t, ref_slice(ref_flip(ref_squeeze(b, 0), AXES(1)), 1, 1, 7)};
}
static view v_shrunk_expand(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(1, 6), s);
  return (view){tgc_shrink(tgc_expand(ref_tensor(b, dt), SHAPE(9, 6)), I64S(2, 6, 0, 6)),
                ref_shrink(ref_expand(b, SHAPE(9, 6)), I64S(2, 6, 0, 6))};
}
static view v_unsqueezed_transposed(tgc_dtype dt, uint64_t s) {
  ref_t *b = gen(dt, SHAPE(6, 4), s);
  tgc_tensor *t = tgc_squeeze(tgc_transpose(tgc_unsqueeze(ref_tensor(b, dt), 0), 0, 2), 2);
  return (view){t, ref_transpose(b, 0, 1)};
}

/* Feeds a view (and a second one of the same kind) to elementwise ops,
 * reductions, contiguous and further views, on f32, i32 and f16. */
static void check_view(view_fn make, const char *name, uint64_t seed) {
  static const tgc_dtype dts[] = {TGC_F32, TGC_I32, TGC_F16};
  for (int d = 0; d < COUNT(dts); d++) {
    tgc_dtype dt = dts[d];
    const char *n = tgc_dtype_name(dt);
    view v = make(dt, seed + 10 * (uint64_t)d), w = make(dt, seed + 10 * (uint64_t)d + 5);
    cr_assert_not_null(v.t, "%s %s: building the view failed: %s", name, n, tgc_last_error());
    cr_assert_eq(tgc_ndim(v.t), 2, "%s %s: ndim %d", name, n, tgc_ndim(v.t));
    ref_t *c = gen(dt, SHAPE(4, 6), seed + 10 * (uint64_t)d + 7);
    tgc_tensor *tc = ref_tensor(c, dt);
    ref_expect(v.t, v.r, dt, TOL_EXACT, "%s %s: the view itself", name, n);
    ref_expect(tgc_add(v.t, tc), ref_binary(REF_ADD, dt, v.r, c), dt, TOL_SIMPLE, "%s %s: view + contiguous", name, n);
    ref_expect(tgc_sum(v.t, AXES(0), false), ref_reduce(REF_SUM, dt, v.r, AXES(0), false), dt, TOL_SIMPLE,
               "%s %s: sum axis 0", name, n);
    if (dt == TGC_I32) continue;
    ref_expect(tgc_mul(v.t, w.t), ref_binary(REF_MUL, dt, v.r, w.r), dt, TOL_SIMPLE, "%s %s: view * view", name, n);
    if (dt == TGC_F16) continue;
    ref_expect(tgc_exp(v.t), ref_unary(REF_EXP, dt, v.r), dt, TOL_TRANS, "%s %s: exp(view)", name, n);
    ref_expect(tgc_max(v.t, AXES(-1), true), ref_reduce(REF_RMAX, dt, v.r, AXES(-1), true), dt, TOL_EXACT,
               "%s %s: max axis -1", name, n);
    ref_expect(tgc_sum(tgc_mul(v.t, tc), 0, NULL, false),
               ref_reduce(REF_SUM, dt, ref_binary(REF_MUL, dt, v.r, c), 0, NULL, false), dt, TOL_TRANS,
               "%s %s: sum(view * c)", name, n);
    /* views on top of the view, over compute */
    ref_expect(tgc_permute(tgc_relu(v.t), INTS(1, 0)), ref_permute(ref_unary(REF_RELU, dt, v.r), INTS(1, 0)), dt,
               TOL_EXACT, "%s %s: permute(relu(view))", name, n);
    ref_expect(tgc_reshape(tgc_contiguous(v.t), SHAPE(3, 8)), ref_reshape(v.r, SHAPE(3, 8)), dt, TOL_EXACT,
               "%s %s: reshape(contiguous(view))", name, n);
    ref_expect(tgc_pad(tgc_neg(v.t), I64S(0, 1, 1, 0)), ref_pad(ref_unary(REF_NEG, dt, v.r), I64S(0, 1, 1, 0)), dt,
               TOL_EXACT, "%s %s: pad(neg(view))", name, n);
  }
  ref_verify();
}

#define VIEW_TEST(fn, seed) \
  Test(movement, view_##fn##_into_compute) { check_view(v_##fn, #fn, seed); }

VIEW_TEST(permuted, 2000)
VIEW_TEST(shrunk, 2100)
VIEW_TEST(sliced, 2200)
VIEW_TEST(padded, 2300)
VIEW_TEST(expanded_col, 2400)
VIEW_TEST(expanded_row, 2500)
VIEW_TEST(flipped, 2600)
VIEW_TEST(permuted_reshaped, 2700)
VIEW_TEST(pad_flip_reshape, 2800)
VIEW_TEST(expanded_reshaped, 2900)
VIEW_TEST(pad_then_shrink, 3000)
VIEW_TEST(permuted_lazy, 3100)
VIEW_TEST(long_chain, 3200)
VIEW_TEST(squeezed_flipped_sliced, 3300)
VIEW_TEST(shrunk_expand, 3400)
VIEW_TEST(unsqueezed_transposed, 3500)

Test(movement, padded_region_is_zero_before_compute_not_after) {
  /* exp(pad(x)) is 1 in the padding; pad(exp(x)) is 0 there */
  ref_t *x = gen(TGC_F32, SHAPE(3, 5), 3601);
  tgc_tensor *tx = ref_tensor(x, TGC_F32);
  static const int64_t pads[] = {2, 1, 0, 3};
  ref_expect(tgc_exp(tgc_pad(tx, pads)), ref_unary(REF_EXP, TGC_F32, ref_pad(x, pads)), TGC_F32, TOL_TRANS,
             "exp(pad(x))");
  ref_expect(tgc_pad(tgc_exp(tx), pads), ref_pad(ref_unary(REF_EXP, TGC_F32, x), pads), TGC_F32, TOL_TRANS,
             "pad(exp(x))");
  /* max over a padded all-negative tensor sees the zeros */
  ref_t *n = ref_uniform(SHAPE(3, 5), -5, -1, 3602);
  tgc_tensor *tn = ref_tensor(n, TGC_F32);
  ref_expect(tgc_max(tgc_pad(tn, pads), AXES(1), false), ref_reduce(REF_RMAX, TGC_F32, ref_pad(n, pads), AXES(1), false),
             TGC_F32, TOL_EXACT, "max(pad(negative), 1)");
  ref_expect(tgc_max(tgc_shrink(tgc_pad(tn, pads), I64S(2, 5, 0, 5)), AXES(1), false),
             ref_reduce(REF_RMAX, TGC_F32, n, AXES(1), false), TGC_F32, TOL_EXACT, "max(shrink(pad) == x, 1)");
  ref_verify();
}

Test(movement, reductions_over_chained_views_3d) {
  ref_t *x = gen(TGC_F32, SHAPE(3, 4, 5), 3701);
  tgc_tensor *tx = ref_tensor(x, TGC_F32);
  static const int perm[] = {2, 0, 1};
  static const int64_t pads[] = {0, 1, 1, 0, 2, 2};
  tgc_tensor *t = tgc_flip(tgc_pad(tgc_permute(tx, perm), pads), AXES(0, -1));
  ref_t *r = ref_flip(ref_pad(ref_permute(x, perm), pads), AXES(0, -1));
  static const int cfg[][2] = {{0, 0}, {1, 0}, {2, 0}, {0, 2}, {1, 2}};
  static const int ncfg[] = {1, 1, 1, 2, 2};
  for (int c = 0; c < COUNT(ncfg); c++) {
    ref_expect(tgc_sum(t, ncfg[c], cfg[c], c & 1), ref_reduce(REF_SUM, TGC_F32, r, ncfg[c], cfg[c], c & 1), TGC_F32,
               TOL_TRANS, "sum of chain over %d axes starting %d", ncfg[c], cfg[c][0]);
    ref_expect(tgc_max(t, ncfg[c], cfg[c], false), ref_reduce(REF_RMAX, TGC_F32, r, ncfg[c], cfg[c], false), TGC_F32,
               TOL_EXACT, "max of chain over %d axes starting %d", ncfg[c], cfg[c][0]);
  }
  /* reduce, then a view of the result, then compute against another view */
  tgc_tensor *m = tgc_transpose(tgc_sum(t, AXES(1), false), 0, 1);
  ref_t *rm = ref_transpose(ref_reduce(REF_SUM, TGC_F32, r, AXES(1), false), 0, 1);
  ref_expect(tgc_mul(m, tgc_flip(m, AXES(0))), ref_binary(REF_MUL, TGC_F32, rm, ref_flip(rm, AXES(0))), TGC_F32,
             TOL_TRANS, "sum -> transpose -> mul by its flip");
  ref_verify();
}

/* ---- contiguous and assign ------------------------------------------------------- */

Test(movement, contiguous_of_views) {
  view v = v_long_chain(TGC_F32, 3801);
  tgc_tensor *c = tgc_contiguous(v.t);
  cr_assert_not_null(c, "%s", tgc_last_error());
  cr_assert_eq(tgc_realize(tctx, 1, &c), TGC_OK, "%s", tgc_last_error());
  cr_expect(tgc_is_realized(c));
  ref_check_now(c, v.r, TGC_F32, ref_tol_for(TGC_F32, TOL_EXACT), "contiguous(long chain)");
  ref_expect(tgc_flip(c, AXES(1)), ref_flip(v.r, AXES(1)), TGC_F32, TOL_EXACT, "flip(contiguous(...))");
  ref_verify();
}

Test(movement, assign_into_a_slice) {
  ref_t *base = gen(TGC_F32, SHAPE(4, 6), 3901), *val = gen(TGC_F32, SHAPE(2, 6), 3902);
  tgc_tensor *tb = ref_tensor(base, TGC_F32), *tv = ref_tensor(val, TGC_F32);
  tgc_tensor *res = tgc_assign(tgc_slice(tb, 0, 1, 3), tv);
  ref_t *want = ref_copy(base);
  memcpy(want->v + 6, val->v, 12 * sizeof(double));
  ref_expect(res, want, TGC_F32, TOL_EXACT, "assign rows 1..2");
  ref_verify();
  /* a second write through a view of the result: a transposed column block,
   * with a lazy value */
  cr_assert(tgc_is_realized(res));
  ref_t *w2 = gen(TGC_F32, SHAPE(2, 4), 3903);
  tgc_tensor *target = tgc_slice(tgc_transpose(res, 0, 1), 0, 4, 6); /* [2,4]: columns 4,5 */
  tgc_tensor *val2 = tgc_mul(ref_tensor(w2, TGC_F32), tgc_scalar(tctx, TGC_F32, 2));
  tgc_tensor *res2 = tgc_assign(target, val2);
  ref_t *want2 = ref_copy(want);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 2; j++) want2->v[i * 6 + 4 + j] = 2 * w2->v[j * 4 + i];
  ref_expect(res2, want2, TGC_F32, TOL_EXACT, "assign a lazy value to a transposed slice");
  ref_verify();
}

Test(movement, assign_into_empty_and_padded_positions) {
  ref_t *val = gen(TGC_I32, SHAPE(3, 4), 4001);
  tgc_tensor *e = tgc_empty(tctx, TGC_I32, SHAPE(3, 4));
  cr_assert_not_null(e, "tgc_empty: %s", tgc_last_error());
  cr_expect(tgc_is_realized(e), "tgc_empty is realized");
  tgc_tensor *res = tgc_assign(e, ref_tensor(val, TGC_I32));
  ref_expect(res, val, TGC_I32, TOL_EXACT, "assign a whole tensor into tgc_empty");
  ref_verify();
  /* write one row of a KV-cache-like [1,8,4] buffer at position 5 with an
   * expanded value */
  ref_t *cache = ref_fill(SHAPE(1, 8, 4), 0);
  tgc_tensor *tcache = ref_tensor(cache, TGC_I32);
  ref_t *row = gen(TGC_I32, SHAPE(4), 4002);
  tgc_tensor *r2 = tgc_assign(tgc_slice(tcache, 1, 5, 6), tgc_expand(ref_tensor(row, TGC_I32), SHAPE(1, 1, 4)));
  ref_t *want = ref_copy(cache);
  memcpy(want->v + 5 * 4, row->v, 4 * sizeof(double));
  ref_expect(r2, want, TGC_I32, TOL_EXACT, "assign one cache position");
  ref_verify();
}

/* ---- every elementwise op on views ------------------------------------------------ */

/* [4,6] from [3,4,2] by permute -> flip -> shrink -> reshape (no padding,
 * so the values keep the base's domain), and [4,6] from [6,1] by expand ->
 * transpose. */
static view v_chain_in(tgc_dtype dt, double lo, double hi, uint64_t seed) {
  ref_t *b = ref_uniform(SHAPE(3, 5, 2), lo, hi, seed);
  if (!ref_is_float(dt))
    for (int64_t i = 0; i < b->numel; i++) b->v[i] = floor(b->v[i]);
  tgc_tensor *t = tgc_shrink(tgc_flip(tgc_permute(ref_tensor(b, dt), INTS(1, 0, 2)), AXES(0)), I64S(1, 5, 0, 3, 0, 2));
  ref_t *r = ref_shrink(ref_flip(ref_permute(b, INTS(1, 0, 2)), AXES(0)), I64S(1, 5, 0, 3, 0, 2));
  return (view){tgc_reshape(t, SHAPE(4, 6)), ref_reshape(r, SHAPE(4, 6))};
}
static view v_bcast_in(tgc_dtype dt, double lo, double hi, uint64_t seed) {
  ref_t *b = ref_uniform(SHAPE(6, 1), lo, hi, seed);
  if (!ref_is_float(dt))
    for (int64_t i = 0; i < b->numel; i++) b->v[i] = floor(b->v[i]);
  return (view){tgc_transpose(tgc_expand(ref_tensor(b, dt), SHAPE(6, 4)), 0, 1),
                ref_transpose(ref_expand(b, SHAPE(6, 4)), 0, 1)};
}

Test(movement, every_unary_op_on_a_chained_view) {
  static const struct { tgc_tensor *(*fn)(tgc_tensor *); ref_op op; const char *name; double lo, hi; } ops[] = {
      {tgc_neg, REF_NEG, "neg", -3, 3},        {tgc_exp, REF_EXP, "exp", -3, 3},
      {tgc_exp2, REF_EXP2, "exp2", -3, 3},     {tgc_log, REF_LOG, "log", 0.1, 5},
      {tgc_log2, REF_LOG2, "log2", 0.1, 5},    {tgc_sqrt, REF_SQRT, "sqrt", 0.1, 5},
      {tgc_rsqrt, REF_RSQRT, "rsqrt", 0.1, 5}, {tgc_reciprocal, REF_RECIP, "reciprocal", 0.5, 3},
      {tgc_sin, REF_SIN, "sin", -3, 3},        {tgc_cos, REF_COS, "cos", -3, 3},
      {tgc_tanh, REF_TANH, "tanh", -3, 3},     {tgc_sigmoid, REF_SIGMOID, "sigmoid", -5, 5},
      {tgc_silu, REF_SILU, "silu", -5, 5},     {tgc_relu, REF_RELU, "relu", -3, 3},
  };
  for (int i = 0; i < COUNT(ops); i++) {
    view v = v_chain_in(TGC_F32, ops[i].lo, ops[i].hi, 4100 + (uint64_t)i);
    ref_expect(ops[i].fn(v.t), ref_unary(ops[i].op, TGC_F32, v.r), TGC_F32, TOL_TRANS, "%s of a chained view",
               ops[i].name);
  }
  view h = v_chain_in(TGC_F16, -3, 3, 4150);
  ref_expect(tgc_cast(h.t, TGC_F32), ref_cast(h.r, TGC_F32), TGC_F32, TOL_EXACT, "cast f16 view -> f32");
  ref_expect(tgc_bitcast(h.t, TGC_I16), ref_bitcast(h.r, TGC_F16, TGC_I16), TGC_I16, TOL_EXACT, "bitcast f16 view");
  view n = v_chain_in(TGC_I32, -50, 50, 4151);
  ref_expect(tgc_neg(n.t), ref_unary(REF_NEG, TGC_I32, n.r), TGC_I32, TOL_EXACT, "neg of an i32 view");
  ref_expect(tgc_cast(n.t, TGC_F16), ref_cast(n.r, TGC_F16), TGC_F16, TOL_EXACT, "cast i32 view -> f16");
  ref_verify();
}

Test(movement, every_binary_op_on_views) {
  typedef tgc_tensor *(*binfn)(tgc_tensor *, tgc_tensor *);
  static const struct { binfn fn; ref_op op; const char *name; bool ints; double alo, ahi, blo, bhi; } ops[] = {
      {tgc_add, REF_ADD, "add", 0, -3, 3, -3, 3},        {tgc_sub, REF_SUB, "sub", 0, -3, 3, -3, 3},
      {tgc_mul, REF_MUL, "mul", 0, -3, 3, -3, 3},        {tgc_div, REF_DIV, "div", 0, -3, 3, 0.5, 3},
      {tgc_pow, REF_POW, "pow", 0, 0.1, 3, -2, 2},       {tgc_maximum, REF_MAX, "maximum", 0, -3, 3, -3, 3},
      {tgc_minimum, REF_MIN, "minimum", 0, -3, 3, -3, 3}, {tgc_lt, REF_LT, "lt", 0, -3, 3, -3, 3},
      {tgc_le, REF_LE, "le", 0, -3, 3, -3, 3},           {tgc_gt, REF_GT, "gt", 0, -3, 3, -3, 3},
      {tgc_ge, REF_GE, "ge", 0, -3, 3, -3, 3},           {tgc_eq, REF_EQ, "eq", 1, -3, 3, -3, 3},
      {tgc_ne, REF_NE, "ne", 1, -3, 3, -3, 3},           {tgc_idiv, REF_IDIV, "idiv", 1, -100, 100, -9, 9},
      {tgc_mod, REF_MOD, "mod", 1, -100, 100, -9, 9},    {tgc_div, REF_DIV, "div", 1, -100, 100, -9, 9},
      {tgc_and, REF_AND, "and", 1, -100, 100, -100, 100}, {tgc_or, REF_OR, "or", 1, -100, 100, -100, 100},
      {tgc_xor, REF_XOR, "xor", 1, -100, 100, -100, 100}, {tgc_shl, REF_SHL, "shl", 1, -100, 100, 0, 40},
      {tgc_shr, REF_SHR, "shr", 1, -100, 100, 0, 40},
  };
  for (int i = 0; i < COUNT(ops); i++) {
    tgc_dtype dt = ops[i].ints ? TGC_I32 : TGC_F32;
    view a = v_chain_in(dt, ops[i].alo, ops[i].ahi, 4200 + 2 * (uint64_t)i);
    view b = v_bcast_in(dt, ops[i].blo, ops[i].bhi, 4201 + 2 * (uint64_t)i);
    bool cmp = ops[i].op >= REF_LT && ops[i].op <= REF_NE;
    tgc_dtype out = cmp ? TGC_BOOL : dt;
    ref_expect(ops[i].fn(a.t, b.t), ref_binary(ops[i].op, dt, a.r, b.r), out, TOL_TRANS, "%s %s: chain (op) bcast",
               ops[i].name, tgc_dtype_name(dt));
    ref_expect(ops[i].fn(b.t, a.t), ref_binary(ops[i].op, dt, b.r, a.r), out, TOL_TRANS, "%s %s: bcast (op) chain",
               ops[i].name, tgc_dtype_name(dt));
  }
  /* where over three views, the condition itself a view */
  view a = v_chain_in(TGC_F32, -3, 3, 4300), b = v_bcast_in(TGC_F32, -3, 3, 4301);
  ref_t *c = ref_randint(SHAPE(6, 4), 0, 1, 4302);
  tgc_tensor *tc = tgc_permute(ref_tensor(c, TGC_BOOL), INTS(1, 0));
  ref_expect(tgc_where(tc, a.t, b.t), ref_where(ref_permute(c, INTS(1, 0)), a.r, b.r), TGC_F32, TOL_EXACT,
             "where(view, view, view)");
  ref_verify();
}
