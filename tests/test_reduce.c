/* test_reduce.c - sum, max and mean over chosen axes (single, several,
 * negative, all; keepdim or not) on several dtypes against the f64
 * reference, large reductions for accumulation accuracy, and reductions
 * fused with elementwise work before and after them.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>

#include "ref.h"

TestSuite(reduce, .init = ref_setup, .fini = ref_teardown);

typedef tgc_tensor *(*redfn)(tgc_tensor *, int, const int *, bool);

static const struct {
  const char *name;
  redfn fn;
  ref_redop op;
} REDS[] = {{"sum", tgc_sum, REF_SUM}, {"max", tgc_max, REF_RMAX}, {"mean", tgc_mean, REF_MEAN}};

typedef struct axes {
  int n;
  int ax[3];
} axes;

static const axes CONFIGS[] = {
    {1, {0}}, {1, {1}}, {1, {2}}, {1, {-1}}, {1, {-2}}, {2, {0, 2}},
    {2, {2, -3}} /* same set, other order */, {2, {1, 2}}, {3, {0, 1, 2}}, {0, {0}} /* all */,
};

static const char *axes_str(const axes *a, char *buf, size_t cap) {
  if (a->n == 0) return "all";
  size_t n = (size_t)snprintf(buf, cap, "{");
  for (int i = 0; i < a->n && n < cap; i++) n += (size_t)snprintf(buf + n, cap - n, "%s%d", i ? "," : "", a->ax[i]);
  if (n < cap) snprintf(buf + n, cap - n, "}");
  return buf;
}

static int64_t reduced_count(const ref_t *x, const axes *a) {
  if (a->n == 0) return x->numel;
  int64_t c = 1;
  for (int i = 0; i < a->n; i++) c *= x->shape[a->ax[i] < 0 ? a->ax[i] + x->ndim : a->ax[i]];
  return c;
}

/* Tolerance of a sum or mean of `count` values of magnitude <= scale: the
 * dtype's own tolerance, widened by the accumulation error of f32 (f64 for
 * f64), since a near-cancelling sum has no relative accuracy. */
static ref_tol red_tol(tgc_dtype dt, ref_redop op, int64_t count, double scale) {
  if (op == REF_RMAX || !ref_is_float(dt)) return ref_tol_for(dt, TOL_EXACT);
  ref_tol t = ref_tol_for(dt, TOL_SIMPLE);
  double eps = dt == TGC_F64 ? 2.3e-16 : 2.4e-7;
  double acc = eps * (double)count * scale / (op == REF_MEAN ? (double)count : 1.0);
  t.atol = fmax(t.atol, acc);
  return t;
}

static void check_reduce(int r, tgc_dtype dt, ref_t *x, tgc_tensor *tx, const axes *a, bool keepdim,
                         double scale) {
  char buf[32];
  ref_t *want = ref_reduce(REDS[r].op, dt, x, a->n, a->ax, keepdim);
  ref_expect_tol(REDS[r].fn(tx, a->n, a->ax, keepdim), want, ref_reduce_dtype(REDS[r].op, dt),
                 red_tol(dt, REDS[r].op, reduced_count(x, a), scale), "%s %s axes %s keepdim=%d",
                 REDS[r].name, tgc_dtype_name(dt), axes_str(a, buf, sizeof buf), keepdim);
}

Test(reduce, sum_max_mean_every_axes_config_f32) {
  ref_t *x = ref_uniform(SHAPE(4, 5, 6), -2, 2, 101);
  tgc_tensor *tx = ref_tensor(x, TGC_F32);
  for (int r = 0; r < COUNT(REDS); r++)
    for (int c = 0; c < COUNT(CONFIGS); c++) {
      check_reduce(r, TGC_F32, x, tx, &CONFIGS[c], false, 2);
      if (c == 1 || c == 5 || c == 9) check_reduce(r, TGC_F32, x, tx, &CONFIGS[c], true, 2);
    }
  ref_verify();
}

Test(reduce, sum_dtypes_ints_wrap_bool_counts_as_i32) {
  static const tgc_dtype dts[] = {TGC_F16, TGC_BF16, TGC_F64, TGC_I8, TGC_U8, TGC_I16,
                                  TGC_U16, TGC_I32, TGC_U32, TGC_I64, TGC_BOOL};
  static const axes cfg[] = {{1, {1}}, {2, {0, -1}}, {0, {0}}};
  for (int d = 0; d < COUNT(dts); d++) {
    tgc_dtype dt = dts[d];
    ref_t *x;
    switch (dt) {
    case TGC_I8: x = ref_randint(SHAPE(4, 5, 6), -128, 127, 200 + d); break;
    case TGC_U8: x = ref_randint(SHAPE(4, 5, 6), 0, 255, 200 + d); break;
    case TGC_I16: x = ref_randint(SHAPE(4, 5, 6), -32768, 32767, 200 + d); break;
    case TGC_U16: x = ref_randint(SHAPE(4, 5, 6), 0, 65535, 200 + d); break;
    case TGC_U32: x = ref_randint(SHAPE(4, 5, 6), 0, 4000000000ll, 200 + d); break;
    case TGC_BOOL: x = ref_binary(REF_GT, TGC_F64, ref_uniform(SHAPE(4, 5, 6), 0, 1, 200 + d),
                                  ref_fill(0, NULL, 0.7)); break;
    case TGC_I32: case TGC_I64: x = ref_randint(SHAPE(4, 5, 6), -100000, 100000, 200 + d); break;
    default: x = ref_uniform(SHAPE(4, 5, 6), -2, 2, 200 + d);
    }
    tgc_tensor *tx = ref_tensor(x, dt);
    for (int c = 0; c < COUNT(cfg); c++) check_reduce(0, dt, x, tx, &cfg[c], c == 1, 2);
  }
  ref_verify();
}

Test(reduce, max_dtypes_with_negative_values) {
  static const tgc_dtype dts[] = {TGC_F16, TGC_BF16, TGC_F64, TGC_I8, TGC_U8, TGC_I32, TGC_I64, TGC_BOOL};
  static const axes cfg[] = {{1, {0}}, {1, {-1}}, {0, {0}}};
  for (int d = 0; d < COUNT(dts); d++) {
    tgc_dtype dt = dts[d];
    /* all-negative rows, so a max that starts from 0 is caught */
    ref_t *x = dt == TGC_U8 ? ref_randint(SHAPE(4, 5, 6), 0, 255, 300 + d)
             : dt == TGC_BOOL ? ref_binary(REF_GT, TGC_F64, ref_uniform(SHAPE(4, 5, 6), 0, 1, 300 + d),
                                           ref_fill(0, NULL, 0.85))
             : ref_is_float(dt) ? ref_uniform(SHAPE(4, 5, 6), -100, -1, 300 + d)
                                : ref_randint(SHAPE(4, 5, 6), -120, -1, 300 + d);
    tgc_tensor *tx = ref_tensor(x, dt);
    for (int c = 0; c < COUNT(cfg); c++) check_reduce(1, dt, x, tx, &cfg[c], c == 0, 100);
  }
  ref_verify();
}

Test(reduce, mean_float_dtypes) {
  static const tgc_dtype dts[] = {TGC_F16, TGC_BF16, TGC_F64};
  static const axes cfg[] = {{1, {2}}, {2, {-3, 1}}, {0, {0}}};
  for (int d = 0; d < COUNT(dts); d++) {
    ref_t *x = ref_uniform(SHAPE(4, 5, 6), -2, 2, 400 + d);
    tgc_tensor *tx = ref_tensor(x, dts[d]);
    for (int c = 0; c < COUNT(cfg); c++) check_reduce(2, dts[d], x, tx, &cfg[c], c == 2, 2);
  }
  ref_verify();
}

Test(reduce, size_one_axes_and_zero_d) {
  ref_t *x = ref_uniform(SHAPE(4, 1, 6), -2, 2, 501);
  tgc_tensor *tx = ref_tensor(x, TGC_F32);
  static const axes one = {1, {1}}, all = {0, {0}}, last = {1, {-1}};
  for (int r = 0; r < COUNT(REDS); r++) {
    check_reduce(r, TGC_F32, x, tx, &one, false, 2);
    check_reduce(r, TGC_F32, x, tx, &one, true, 2);
  }
  ref_t *s = ref_fill(0, NULL, 3.5);
  tgc_tensor *ts = ref_tensor(s, TGC_F32);
  check_reduce(0, TGC_F32, s, ts, &all, false, 4);
  check_reduce(1, TGC_F32, s, ts, &all, true, 4);
  ref_t *v = ref_uniform(SHAPE(1), -2, 2, 502);
  tgc_tensor *tv = ref_tensor(v, TGC_F32);
  check_reduce(1, TGC_F32, v, tv, &last, false, 2);
  check_reduce(2, TGC_F32, v, tv, &all, true, 2);
  ref_verify();
}

/* ---- large reductions: accumulation accuracy -------------------------------- */

Test(reduce, large_sum_f32_positive_and_mixed) {
  static const axes all = {0, {0}};
  ref_t *p = ref_uniform(SHAPE(100003), 0, 1, 601), *m = ref_uniform(SHAPE(100003), -1, 1, 602);
  tgc_tensor *tp = ref_tensor(p, TGC_F32), *tm = ref_tensor(m, TGC_F32);
  /* ~50000 from 100003 terms: a single f32 accumulator drifts; several do not */
  ref_expect_tol(tgc_sum(tp, 0, NULL, false), ref_reduce(REF_SUM, TGC_F32, p, 0, NULL, false), TGC_F32,
                 (ref_tol){1e-5, 0}, "sum of 100003 positive f32");
  ref_expect_tol(tgc_mean(tp, 0, NULL, false), ref_reduce(REF_MEAN, TGC_F32, p, 0, NULL, false), TGC_F32,
                 (ref_tol){1e-5, 0}, "mean of 100003 positive f32");
  /* mixed signs: judged against the sum of magnitudes (~50000) */
  ref_expect_tol(tgc_sum(tm, 0, NULL, false), ref_reduce(REF_SUM, TGC_F32, m, 0, NULL, false), TGC_F32,
                 (ref_tol){0, 50000 * 1e-6}, "sum of 100003 mixed f32");
  check_reduce(1, TGC_F32, m, tm, &all, false, 1);
  ref_verify();
}

Test(reduce, large_2d_reductions_along_each_axis) {
  ref_t *x = ref_uniform(SHAPE(317, 331), 0, 1, 701);
  tgc_tensor *tx = ref_tensor(x, TGC_F32);
  static const axes a0 = {1, {0}}, a1 = {1, {1}}, all = {0, {0}};
  check_reduce(0, TGC_F32, x, tx, &a0, false, 1);
  check_reduce(0, TGC_F32, x, tx, &a1, true, 1);
  check_reduce(1, TGC_F32, x, tx, &a0, false, 1);
  check_reduce(2, TGC_F32, x, tx, &all, false, 1);
  ref_verify();
}

Test(reduce, large_half_sums_accumulate_in_float) {
  /* 100000 halves in [0,1): a sum kept in f16 stalls near 2048-4096 */
  ref_t *h = ref_uniform(SHAPE(100000), 0, 1, 801), *b = ref_uniform(SHAPE(100000), 0, 1, 802);
  tgc_tensor *th = ref_tensor(h, TGC_F16), *tb = ref_tensor(b, TGC_BF16);
  ref_expect_tol(tgc_sum(th, 0, NULL, false), ref_reduce(REF_SUM, TGC_F16, h, 0, NULL, false), TGC_F16,
                 (ref_tol){2e-3, 0}, "sum of 100000 f16");
  ref_expect_tol(tgc_mean(th, 0, NULL, false), ref_reduce(REF_MEAN, TGC_F16, h, 0, NULL, false), TGC_F16,
                 (ref_tol){2e-3, 0}, "mean of 100000 f16");
  ref_expect_tol(tgc_mean(tb, 0, NULL, false), ref_reduce(REF_MEAN, TGC_BF16, b, 0, NULL, false), TGC_BF16,
                 (ref_tol){1e-2, 0}, "mean of 100000 bf16");
  ref_verify();
}

Test(reduce, large_int_and_f64_sums_are_exact) {
  ref_t *i = ref_randint(SHAPE(100003), -1000, 1000, 901), *l = ref_randint(SHAPE(100003), -(1 << 30), 1 << 30, 902);
  ref_t *d = ref_uniform(SHAPE(100003), -1, 1, 903);
  tgc_tensor *ti = ref_tensor(i, TGC_I32), *tl = ref_tensor(l, TGC_I64), *td = ref_tensor(d, TGC_F64);
  ref_expect(tgc_sum(ti, 0, NULL, false), ref_reduce(REF_SUM, TGC_I32, i, 0, NULL, false), TGC_I32,
             TOL_EXACT, "sum of 100003 i32");
  ref_expect(tgc_sum(tl, 0, NULL, false), ref_reduce(REF_SUM, TGC_I64, l, 0, NULL, false), TGC_I64,
             TOL_EXACT, "sum of 100003 i64");
  ref_expect(tgc_max(ti, 0, NULL, false), ref_reduce(REF_RMAX, TGC_I32, i, 0, NULL, false), TGC_I32,
             TOL_EXACT, "max of 100003 i32");
  ref_expect_tol(tgc_sum(td, 0, NULL, false), ref_reduce(REF_SUM, TGC_F64, d, 0, NULL, false), TGC_F64,
                 (ref_tol){0, 1e-10}, "sum of 100003 f64");
  ref_verify();
}

/* ---- reductions fused with elementwise work ------------------------------------ */

Test(reduce, elementwise_before_and_after) {
  ref_t *a = ref_uniform(SHAPE(6, 40), -1, 1, 1001), *b = ref_uniform(SHAPE(6, 40), -1, 1, 1002);
  tgc_tensor *ta = ref_tensor(a, TGC_F32), *tb = ref_tensor(b, TGC_F32);
  ref_t *ab = ref_binary(REF_MUL, TGC_F32, a, b);
  ref_tol tol = red_tol(TGC_F32, REF_SUM, 240, 1);
  /* sum(a*b): dot products */
  ref_expect_tol(tgc_sum(tgc_mul(ta, tb), 0, NULL, false), ref_reduce(REF_SUM, TGC_F32, ab, 0, NULL, false),
                 TGC_F32, tol, "sum(a*b)");
  ref_expect_tol(tgc_sum(tgc_mul(ta, tb), AXES(1), false), ref_reduce(REF_SUM, TGC_F32, ab, AXES(1), false),
                 TGC_F32, tol, "sum(a*b, 1)");
  /* x - max(x) broadcast back, then exp and a second reduction */
  ref_t *mx = ref_reduce(REF_RMAX, TGC_F32, a, AXES(1), true);
  ref_t *e = ref_unary(REF_EXP, TGC_F32, ref_binary(REF_SUB, TGC_F32, a, mx));
  tgc_tensor *te = tgc_exp(tgc_sub(ta, tgc_max(ta, AXES(1), true)));
  ref_expect(te, e, TGC_F32, TOL_TRANS, "exp(a - max(a, 1, keepdim))");
  ref_expect_tol(tgc_sum(te, AXES(-1), false), ref_reduce(REF_SUM, TGC_F32, e, AXES(-1), false), TGC_F32,
                 (ref_tol){1e-4, 1e-5}, "sum(exp(a - max(a)))");
  /* a reduction feeding elementwise work: sqrt(mean(a^2) + 1) * 2 */
  ref_t *ms = ref_reduce(REF_MEAN, TGC_F32, ref_binary(REF_MUL, TGC_F32, a, a), AXES(0), false);
  ref_t *want = ref_binary(REF_MUL, TGC_F32, ref_unary(REF_SQRT, TGC_F32, ref_binary(REF_ADD, TGC_F32, ms, ref_fill(0, NULL, 1))),
                           ref_fill(0, NULL, 2));
  tgc_tensor *tms = tgc_mean(tgc_mul(ta, ta), AXES(0), false);
  ref_expect(tgc_mul(tgc_sqrt(tgc_add(tms, tgc_scalar(tctx, TGC_F32, 1))), tgc_scalar(tctx, TGC_F32, 2)), want,
             TGC_F32, TOL_TRANS, "sqrt(mean(a^2, 0) + 1) * 2");
  /* reduce of a reduce */
  ref_t *rr = ref_reduce(REF_SUM, TGC_F32, ref_reduce(REF_RMAX, TGC_F32, a, AXES(1), false), AXES(0), false);
  ref_expect_tol(tgc_sum(tgc_max(ta, AXES(1), false), AXES(0), false), rr, TGC_F32, (ref_tol){1e-5, 1e-5},
                 "sum(max(a, 1), 0)");
  /* a keepdim result broadcast against its input */
  ref_t *cs = ref_binary(REF_DIV, TGC_F32, a, ref_reduce(REF_SUM, TGC_F32, ref_unary(REF_EXP, TGC_F32, a), AXES(0), true));
  ref_expect(tgc_div(ta, tgc_sum(tgc_exp(ta), AXES(0), true)), cs, TGC_F32, TOL_TRANS, "a / sum(exp(a), 0, keepdim)");
  ref_verify();
}

Test(reduce, int_reductions_fused_with_casts) {
  ref_t *x = ref_randint(SHAPE(8, 30), -50, 50, 1101);
  tgc_tensor *tx = ref_tensor(x, TGC_I32);
  /* count of positives per row: sum of a bool cast to i32 */
  ref_t *pos = ref_cast(ref_binary(REF_GT, TGC_I32, x, ref_fill(0, NULL, 0)), TGC_I32);
  tgc_tensor *tpos = tgc_cast(tgc_gt(tx, tgc_scalar(tctx, TGC_I32, 0)), TGC_I32);
  ref_expect(tgc_sum(tpos, AXES(1), false), ref_reduce(REF_SUM, TGC_I32, pos, AXES(1), false), TGC_I32,
             TOL_EXACT, "count of positives");
  /* the same count straight from the bool: a bool sum is an i32 count */
  ref_t *gt = ref_binary(REF_GT, TGC_I32, x, ref_fill(0, NULL, 0));
  ref_expect(tgc_sum(tgc_gt(tx, tgc_scalar(tctx, TGC_I32, 0)), AXES(1), false),
             ref_reduce(REF_SUM, TGC_BOOL, gt, AXES(1), false), TGC_I32, TOL_EXACT, "sum of bool (x > 0)");
  /* mean of an int tensor after a cast to f32 */
  ref_expect(tgc_mean(tgc_cast(tx, TGC_F32), AXES(0), false),
             ref_reduce(REF_MEAN, TGC_F32, x, AXES(0), false), TGC_F32, TOL_SIMPLE, "mean(cast(x, f32), 0)");
  ref_verify();
}
