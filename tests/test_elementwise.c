/* test_elementwise.c - every elementwise op, cast, bitcast and creation op
 * against the f64 reference in ref.c, for each dtype where the op makes
 * sense, on seeded random inputs.
 *
 * Each test queues all its cases and realizes them with one tgc_realize
 * (ref_verify), so their kernels compile together; inputs share one odd
 * shape so that vector tails are exercised.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ref.h"

TestSuite(elementwise, .init = ref_setup, .fini = ref_teardown);

typedef tgc_tensor *(*binfn)(tgc_tensor *, tgc_tensor *);
typedef tgc_tensor *(*unfn)(tgc_tensor *);

static const tgc_dtype FLOATS[] = {TGC_F16, TGC_BF16, TGC_F32, TGC_F64};
static const tgc_dtype INTS[] = {TGC_I8, TGC_U8, TGC_I16, TGC_U16, TGC_I32, TGC_U32, TGC_I64};
static const tgc_dtype NUMERIC[] = {TGC_F16, TGC_BF16, TGC_F32, TGC_F64, TGC_I8, TGC_U8,
                                    TGC_I16, TGC_U16, TGC_I32, TGC_U32, TGC_I64};
/* For ops whose integer code path does not depend on the width. */
static const tgc_dtype COMMON[] = {TGC_F16, TGC_BF16, TGC_F32, TGC_F64, TGC_I8,
                                   TGC_U8,  TGC_I32,  TGC_I64, TGC_BOOL};

#define DIMS SHAPE(7, 33) /* 231 elements: not a multiple of any vector width */

static uint64_t seed_of(int a, int b, int c) {
  return 0x5eed0000ull + (uint64_t)a * 1000003u + (uint64_t)b * 1009u + (uint64_t)c;
}

/* ---- inputs ---------------------------------------------------------------- */

typedef enum domain {
  D_ANY,     /* floats [-3, 3); ints: a range where add/sub cannot overflow */
  D_MUL,     /* ints whose products stay clear of signed overflow */
  D_DIVISOR, /* floats |x| in [0.5, 3); ints in [-9, 9] with zeros */
  D_SMALL,   /* integers in [-3, 3] (or [0, 6]) as any dtype: ties for comparisons */
  D_SHIFT,   /* shift counts, some beyond the bit width */
} domain;

static void int_bounds(tgc_dtype dt, domain d, int64_t *lo, int64_t *hi) {
  bool mul = d == D_MUL;
  switch (dt) {
  case TGC_BOOL: *lo = 0, *hi = 1; break;
  case TGC_I8: *lo = -128, *hi = 127; break;
  case TGC_U8: *lo = 0, *hi = 255; break;
  case TGC_I16: *lo = -32768, *hi = 32767; break;
  case TGC_U16: *lo = 0, *hi = mul ? 46340 : 65535; break; /* promoted to int in C */
  case TGC_I32: *lo = mul ? -46340 : -(1 << 29), *hi = mul ? 46340 : 1 << 29; break;
  case TGC_U32: *lo = 0, *hi = 4294967295ll; break;
  case TGC_I64: *lo = mul ? -(1ll << 26) : -(1ll << 40), *hi = mul ? 1ll << 26 : 1ll << 40; break;
  default: cr_assert_fail("int_bounds: %s", tgc_dtype_name(dt));
  }
}

static ref_t *gen(tgc_dtype dt, domain d, uint64_t seed) {
  bool fl = ref_is_float(dt);
  if (d == D_SMALL) return ref_randint(DIMS, ref_is_signed(dt) ? -3 : 0, ref_is_signed(dt) ? 3 : 6, seed);
  if (d == D_SHIFT) {
    int bits = ref_bits(dt);
    if (dt != TGC_I64) return ref_randint(DIMS, 0, 2 * bits - 1, seed);
    /* i64: counts 0..32 and 64..96, so results stay exact in a double */
    ref_t *c = ref_randint(DIMS, 0, 32, seed), *k = ref_randint(DIMS, 0, 1, seed + 1);
    for (int64_t i = 0; i < c->numel; i++) c->v[i] += 64 * k->v[i];
    return c;
  }
  if (d == D_DIVISOR) {
    if (!fl) return ref_randint(DIMS, ref_is_signed(dt) ? -9 : 0, 9, seed);
    ref_t *m = ref_uniform(DIMS, 0.5, 3, seed), *s = ref_randint(DIMS, 0, 1, seed + 1);
    for (int64_t i = 0; i < m->numel; i++) m->v[i] *= s->v[i] ? -1 : 1;
    return m;
  }
  if (fl) return ref_uniform(DIMS, -3, 3, seed);
  int64_t lo, hi;
  int_bounds(dt, d, &lo, &hi);
  return ref_randint(DIMS, lo, hi, seed);
}

/* Queues op(a, b) on dtype dt with inputs from the given domains. */
static void check_binary(const char *name, binfn fn, ref_op op, tgc_dtype dt, domain da,
                         domain db, ref_tolkind tol, uint64_t seed) {
  ref_t *a = gen(dt, da, seed), *b = gen(dt, db, seed + 7);
  tgc_tensor *ta = ref_tensor(a, dt), *tb = ref_tensor(b, dt);
  bool cmp = op >= REF_LT && op <= REF_NE;
  ref_expect(fn(ta, tb), ref_binary(op, dt, a, b), cmp ? TGC_BOOL : dt, tol, "%s %s", name,
             tgc_dtype_name(dt));
}

static void check_unary(const char *name, unfn fn, ref_op op, tgc_dtype dt, ref_t *x,
                        ref_tolkind tol) {
  tgc_tensor *tx = ref_tensor(x, dt);
  ref_expect(fn(tx), ref_unary(op, dt, x), dt, tol, "%s %s", name, tgc_dtype_name(dt));
}

/* ---- binary arithmetic ---------------------------------------------------- */

Test(elementwise, add_sub_mul_every_numeric_dtype) {
  static const struct { const char *name; binfn fn; ref_op op; } ops[] = {
      {"add", tgc_add, REF_ADD}, {"sub", tgc_sub, REF_SUB}, {"mul", tgc_mul, REF_MUL}};
  for (int o = 0; o < COUNT(ops); o++)
    for (int d = 0; d < COUNT(NUMERIC); d++)
      check_binary(ops[o].name, ops[o].fn, ops[o].op, NUMERIC[d], ops[o].op == REF_MUL ? D_MUL : D_ANY,
                   ops[o].op == REF_MUL ? D_MUL : D_ANY, TOL_SIMPLE, seed_of(1, o, d));
  ref_verify();
}

Test(elementwise, div_floats_is_true_division) {
  for (int d = 0; d < COUNT(FLOATS); d++)
    check_binary("div", tgc_div, REF_DIV, FLOATS[d], D_ANY, D_DIVISOR, TOL_SIMPLE, seed_of(2, 0, d));
  ref_verify();
}

Test(elementwise, div_idiv_mod_ints_truncate_and_zero_divisor_gives_zero) {
  static const struct { const char *name; binfn fn; ref_op op; } ops[] = {
      {"div", tgc_div, REF_DIV}, {"idiv", tgc_idiv, REF_IDIV}, {"mod", tgc_mod, REF_MOD}};
  for (int o = 0; o < COUNT(ops); o++)
    for (int d = 0; d < COUNT(INTS); d++)
      check_binary(ops[o].name, ops[o].fn, ops[o].op, INTS[d], D_ANY, D_DIVISOR, TOL_EXACT,
                   seed_of(3, o, d));
  ref_verify();
}

Test(elementwise, idiv_mod_signs_small_cases) {
  /* Trivially derived C semantics: -7/2 = -3, -7%2 = -1, 7%-2 = 1, x/0 = 0. */
  double av[] = {7, -7, 7, -7, 5, -5, 0, 3}, bv[] = {2, 2, -2, -2, 0, 0, 3, 1};
  double qv[] = {3, -3, -3, 3, 0, 0, 0, 3}, rv[] = {1, -1, 1, -1, 0, 0, 0, 0};
  tgc_tensor *a = ref_tensor(ref_of(SHAPE(8), av), TGC_I32), *b = ref_tensor(ref_of(SHAPE(8), bv), TGC_I32);
  ref_expect(tgc_idiv(a, b), ref_of(SHAPE(8), qv), TGC_I32, TOL_EXACT, "idiv i32 signs");
  ref_expect(tgc_mod(a, b), ref_of(SHAPE(8), rv), TGC_I32, TOL_EXACT, "mod i32 signs");
  /* the reference agrees with the hand-derived values */
  ref_t *ra = ref_of(SHAPE(8), av), *rb = ref_of(SHAPE(8), bv);
  cr_assert(!memcmp(ref_binary(REF_IDIV, TGC_I32, ra, rb)->v, qv, sizeof qv));
  cr_assert(!memcmp(ref_binary(REF_MOD, TGC_I32, ra, rb)->v, rv, sizeof rv));
  ref_verify();
}

Test(elementwise, pow_floats) {
  for (int d = 0; d < COUNT(FLOATS); d++) {
    ref_t *a = ref_uniform(DIMS, 0.1, 3, seed_of(4, 0, d)), *b = ref_uniform(DIMS, -2, 2, seed_of(4, 1, d));
    tgc_tensor *ta = ref_tensor(a, FLOATS[d]), *tb = ref_tensor(b, FLOATS[d]);
    ref_expect(tgc_pow(ta, tb), ref_binary(REF_POW, FLOATS[d], a, b), FLOATS[d], TOL_TRANS, "pow %s",
               tgc_dtype_name(FLOATS[d]));
  }
  ref_verify();
}

Test(elementwise, maximum_minimum_every_numeric_dtype) {
  for (int d = 0; d < COUNT(NUMERIC); d++) {
    check_binary("maximum", tgc_maximum, REF_MAX, NUMERIC[d], D_ANY, D_ANY, TOL_EXACT, seed_of(5, 0, d));
    check_binary("minimum", tgc_minimum, REF_MIN, NUMERIC[d], D_ANY, D_ANY, TOL_EXACT, seed_of(5, 1, d));
  }
  ref_verify();
}

/* ---- bit ops --------------------------------------------------------------- */

Test(elementwise, and_or_xor_ints_and_bool) {
  static const struct { const char *name; binfn fn; ref_op op; } ops[] = {
      {"and", tgc_and, REF_AND}, {"or", tgc_or, REF_OR}, {"xor", tgc_xor, REF_XOR}};
  static const tgc_dtype dts[] = {TGC_BOOL, TGC_I8, TGC_U8, TGC_I16, TGC_U16,
                                  TGC_I32,  TGC_U32, TGC_I64};
  for (int o = 0; o < COUNT(ops); o++)
    for (int d = 0; d < COUNT(dts); d++)
      check_binary(ops[o].name, ops[o].fn, ops[o].op, dts[d], D_ANY, D_ANY, TOL_EXACT, seed_of(6, o, d));
  ref_verify();
}

Test(elementwise, shl_shr_counts_modulo_width_shr_arithmetic_for_signed) {
  for (int d = 0; d < COUNT(INTS); d++) {
    tgc_dtype dt = INTS[d];
    /* i64 values small enough that a left shift by up to 32 stays exact */
    ref_t *a = dt == TGC_I64 ? ref_randint(DIMS, -(1 << 20), 1 << 20, seed_of(7, 0, d))
                             : gen(dt, D_ANY, seed_of(7, 0, d));
    ref_t *c = gen(dt, D_SHIFT, seed_of(7, 1, d));
    tgc_tensor *ta = ref_tensor(a, dt), *tc = ref_tensor(c, dt);
    ref_expect(tgc_shl(ta, tc), ref_binary(REF_SHL, dt, a, c), dt, TOL_EXACT, "shl %s", tgc_dtype_name(dt));
    ref_expect(tgc_shr(ta, tc), ref_binary(REF_SHR, dt, a, c), dt, TOL_EXACT, "shr %s", tgc_dtype_name(dt));
  }
  ref_verify();
}

Test(elementwise, shr_of_negative_is_arithmetic_small_cases) {
  double av[] = {-8, -7, -1, 8, -128, 127}, cv[] = {1, 1, 3, 2, 7, 9 /* = 1 mod 8 */};
  double want[] = {-4, -4, -1, 2, -1, 63};
  tgc_tensor *a = ref_tensor(ref_of(SHAPE(6), av), TGC_I8), *c = ref_tensor(ref_of(SHAPE(6), cv), TGC_I8);
  ref_expect(tgc_shr(a, c), ref_of(SHAPE(6), want), TGC_I8, TOL_EXACT, "shr i8 small cases");
  cr_assert(!memcmp(ref_binary(REF_SHR, TGC_I8, ref_of(SHAPE(6), av), ref_of(SHAPE(6), cv))->v, want,
                    sizeof want));
  ref_verify();
}

/* ---- comparisons and where ------------------------------------------------- */

Test(elementwise, comparisons_give_bool) {
  static const struct { const char *name; binfn fn; ref_op op; } ops[] = {
      {"lt", tgc_lt, REF_LT}, {"le", tgc_le, REF_LE}, {"gt", tgc_gt, REF_GT},
      {"ge", tgc_ge, REF_GE}, {"eq", tgc_eq, REF_EQ}, {"ne", tgc_ne, REF_NE}};
  for (int o = 0; o < COUNT(ops); o++)
    for (int d = 0; d < COUNT(COMMON); d++)
      check_binary(ops[o].name, ops[o].fn, ops[o].op, COMMON[d], D_SMALL, D_SMALL, TOL_EXACT,
                   seed_of(8, o, d));
  ref_verify();
}

Test(elementwise, where_every_dtype) {
  ref_t *c = ref_randint(DIMS, 0, 1, seed_of(9, 0, 0));
  tgc_tensor *tc = ref_tensor(c, TGC_BOOL);
  for (int d = 0; d < COUNT(COMMON); d++) {
    tgc_dtype dt = COMMON[d];
    ref_t *a = gen(dt, D_ANY, seed_of(9, 1, d)), *b = gen(dt, D_ANY, seed_of(9, 2, d));
    tgc_tensor *ta = ref_tensor(a, dt), *tb = ref_tensor(b, dt);
    ref_expect(tgc_where(tc, ta, tb), ref_where(c, a, b), dt, TOL_EXACT, "where %s", tgc_dtype_name(dt));
  }
  ref_verify();
}

/* ---- unary ----------------------------------------------------------------- */

typedef struct unop {
  const char *name;
  unfn fn;
  ref_op op;
  double lo, hi; /* input domain */
} unop;

static void check_float_unops(const unop *ops, int n, int tag) {
  for (int o = 0; o < n; o++)
    for (int d = 0; d < COUNT(FLOATS); d++)
      check_unary(ops[o].name, ops[o].fn, ops[o].op, FLOATS[d],
                  ref_uniform(DIMS, ops[o].lo, ops[o].hi, seed_of(tag, o, d)), TOL_TRANS);
  ref_verify();
}

Test(elementwise, exp_log_sqrt_family_floats) {
  static const unop ops[] = {
      {"exp", tgc_exp, REF_EXP, -4, 4},           {"exp2", tgc_exp2, REF_EXP2, -6, 6},
      {"log", tgc_log, REF_LOG, 0.05, 10},        {"log2", tgc_log2, REF_LOG2, 0.05, 10},
      {"sqrt", tgc_sqrt, REF_SQRT, 0, 10},        {"rsqrt", tgc_rsqrt, REF_RSQRT, 0.05, 10},
  };
  check_float_unops(ops, COUNT(ops), 10);
}

Test(elementwise, trig_and_activations_floats) {
  static const unop ops[] = {
      {"sin", tgc_sin, REF_SIN, -4, 4},        {"cos", tgc_cos, REF_COS, -4, 4},
      {"tanh", tgc_tanh, REF_TANH, -4, 4},     {"sigmoid", tgc_sigmoid, REF_SIGMOID, -8, 8},
      {"silu", tgc_silu, REF_SILU, -8, 8},     {"relu", tgc_relu, REF_RELU, -3, 3},
      {"neg", tgc_neg, REF_NEG, -3, 3},
  };
  check_float_unops(ops, COUNT(ops), 11);
}

Test(elementwise, reciprocal_floats) {
  for (int d = 0; d < COUNT(FLOATS); d++)
    check_unary("reciprocal", tgc_reciprocal, REF_RECIP, FLOATS[d], gen(FLOATS[d], D_DIVISOR, seed_of(12, 0, d)),
                TOL_TRANS);
  ref_verify();
}

Test(elementwise, neg_relu_ints_wrap_in_c) {
  for (int d = 0; d < COUNT(INTS); d++) {
    tgc_dtype dt = INTS[d];
    check_unary("neg", tgc_neg, REF_NEG, dt, gen(dt, D_ANY, seed_of(13, 0, d)), TOL_EXACT);
    check_unary("relu", tgc_relu, REF_RELU, dt, gen(dt, D_ANY, seed_of(13, 1, d)), TOL_EXACT);
  }
  ref_verify();
}

/* ---- broadcasting ---------------------------------------------------------- */

Test(elementwise, broadcasting_shapes) {
  static const tgc_dtype dts[] = {TGC_F32, TGC_I32, TGC_F16};
  for (int d = 0; d < COUNT(dts); d++) {
    tgc_dtype dt = dts[d];
    const char *n = tgc_dtype_name(dt);
    uint64_t s = seed_of(14, d, 0);
    ref_t *c31 = ref_randint(SHAPE(3, 1), -9, 9, s), *r14 = ref_randint(SHAPE(1, 4), -9, 9, s + 1);
    ref_t *x234 = ref_randint(SHAPE(2, 3, 4), -9, 9, s + 2), *v4 = ref_randint(SHAPE(4), -9, 9, s + 3);
    ref_t *x214 = ref_randint(SHAPE(2, 1, 4), -9, 9, s + 4);
    tgc_tensor *t31 = ref_tensor(c31, dt), *t14 = ref_tensor(r14, dt), *t234 = ref_tensor(x234, dt);
    tgc_tensor *t4 = ref_tensor(v4, dt), *t214 = ref_tensor(x214, dt);
    ref_expect(tgc_add(t31, t14), ref_binary(REF_ADD, dt, c31, r14), dt, TOL_SIMPLE, "%s [3,1]+[1,4]", n);
    ref_expect(tgc_sub(t14, t31), ref_binary(REF_SUB, dt, r14, c31), dt, TOL_SIMPLE, "%s [1,4]-[3,1]", n);
    ref_expect(tgc_add(t234, t4), ref_binary(REF_ADD, dt, x234, v4), dt, TOL_SIMPLE, "%s [2,3,4]+[4]", n);
    ref_expect(tgc_sub(t4, t234), ref_binary(REF_SUB, dt, v4, x234), dt, TOL_SIMPLE, "%s [4]-[2,3,4]", n);
    ref_expect(tgc_mul(t214, t31), ref_binary(REF_MUL, dt, x214, c31), dt, TOL_SIMPLE, "%s [2,1,4]*[3,1]", n);
    ref_expect(tgc_maximum(t31, t234), ref_binary(REF_MAX, dt, c31, x234), dt, TOL_SIMPLE,
               "%s max([3,1],[2,3,4])", n);
    ref_expect(tgc_lt(t14, t234), ref_binary(REF_LT, dt, r14, x234), TGC_BOOL, TOL_EXACT,
               "%s [1,4]<[2,3,4]", n);
    /* scalars (0-d) on either side */
    ref_t *sc = ref_fill(0, NULL, 5);
    tgc_tensor *ts = tgc_scalar(tctx, dt, 5);
    cr_assert_not_null(ts, "tgc_scalar: %s", tgc_last_error());
    cr_expect_eq(tgc_ndim(ts), 0, "tgc_scalar has ndim %d", tgc_ndim(ts));
    ref_expect(tgc_add(t234, ts), ref_binary(REF_ADD, dt, x234, sc), dt, TOL_SIMPLE, "%s [2,3,4]+scalar", n);
    ref_expect(tgc_sub(ts, t31), ref_binary(REF_SUB, dt, sc, c31), dt, TOL_SIMPLE, "%s scalar-[3,1]", n);
    ref_expect(tgc_mul(ts, ts), ref_binary(REF_MUL, dt, sc, sc), dt, TOL_SIMPLE, "%s scalar*scalar", n);
  }
  ref_verify();
}

Test(elementwise, where_broadcasts_all_three) {
  ref_t *c = ref_randint(SHAPE(3, 1), 0, 1, 1501), *a = ref_uniform(SHAPE(1, 4), -1, 1, 1502);
  ref_t *b = ref_fill(0, NULL, -2.5), *c4 = ref_randint(SHAPE(4), 0, 1, 1503);
  ref_t *x = ref_uniform(SHAPE(2, 3, 4), -1, 1, 1504);
  tgc_tensor *tc = ref_tensor(c, TGC_BOOL), *ta = ref_tensor(a, TGC_F32), *tb = tgc_scalar(tctx, TGC_F32, -2.5);
  tgc_tensor *tc4 = ref_tensor(c4, TGC_BOOL), *tx = ref_tensor(x, TGC_F32);
  ref_expect(tgc_where(tc, ta, tb), ref_where(c, a, b), TGC_F32, TOL_EXACT, "where [3,1] [1,4] scalar");
  ref_expect(tgc_where(tc4, tx, ta), ref_where(c4, x, a), TGC_F32, TOL_EXACT, "where [4] [2,3,4] [1,4]");
  ref_expect(tgc_where(tc, tb, tx), ref_where(c, b, x), TGC_F32, TOL_EXACT, "where [3,1] scalar [2,3,4]");
  /* a condition computed in the same kernel */
  ref_t *cmp = ref_binary(REF_GT, TGC_F32, x, a);
  ref_expect(tgc_where(tgc_gt(tx, ta), tx, ta), ref_where(cmp, x, a), TGC_F32, TOL_EXACT,
             "where(x > a, x, a)");
  ref_verify();
}

/* ---- fused chains -------------------------------------------------------------- */

Test(elementwise, fused_chains_match_reference) {
  static const tgc_dtype dts[] = {TGC_F32, TGC_F16, TGC_F64};
  for (int d = 0; d < COUNT(dts); d++) {
    tgc_dtype dt = dts[d];
    ref_t *a = ref_uniform(DIMS, -2, 2, seed_of(16, d, 0)), *b = ref_uniform(DIMS, -2, 2, seed_of(16, d, 1));
    ref_t *c = ref_uniform(SHAPE(33), 0.5, 2, seed_of(16, d, 2));
    tgc_tensor *ta = ref_tensor(a, dt), *tb = ref_tensor(b, dt), *tc = ref_tensor(c, dt);
    /* sigmoid(a*b + c) / (1 + relu(a)) - exp(-|b|) with |b| as max(b, -b) */
    tgc_tensor *t = tgc_sub(tgc_div(tgc_sigmoid(tgc_add(tgc_mul(ta, tb), tc)),
                                    tgc_add(tgc_ones(tctx, dt, 0, NULL), tgc_relu(ta))),
                            tgc_exp(tgc_neg(tgc_maximum(tb, tgc_neg(tb)))));
    ref_t *one = ref_fill(0, NULL, 1);
    ref_t *r = ref_binary(REF_SUB, dt,
                          ref_binary(REF_DIV, dt,
                                     ref_unary(REF_SIGMOID, dt, ref_binary(REF_ADD, dt, ref_binary(REF_MUL, dt, a, b), c)),
                                     ref_binary(REF_ADD, dt, one, ref_unary(REF_RELU, dt, a))),
                          ref_unary(REF_EXP, dt, ref_unary(REF_NEG, dt, ref_binary(REF_MAX, dt, b, ref_unary(REF_NEG, dt, b)))));
    /* halves may round each intermediate; the result can be near zero */
    ref_tol tol = dt == TGC_F16 ? (ref_tol){1e-2, 4e-3} : ref_tol_for(dt, TOL_TRANS);
    ref_expect_tol(t, r, dt, tol, "fused chain %s", tgc_dtype_name(dt));
  }
  /* integers: ((a * b + c) >> 3) & 255, with a bool mask from a comparison */
  ref_t *a = ref_randint(DIMS, -1000, 1000, 1601), *b = ref_randint(DIMS, -1000, 1000, 1602);
  ref_t *c = ref_randint(SHAPE(33), 0, 100, 1603);
  tgc_tensor *ta = ref_tensor(a, TGC_I32), *tb = ref_tensor(b, TGC_I32), *tc = ref_tensor(c, TGC_I32);
  tgc_tensor *t3 = tgc_scalar(tctx, TGC_I32, 3), *t255 = tgc_scalar(tctx, TGC_I32, 255);
  ref_t *r3 = ref_fill(0, NULL, 3), *r255 = ref_fill(0, NULL, 255);
  tgc_tensor *t = tgc_and(tgc_shr(tgc_add(tgc_mul(ta, tb), tc), t3), t255);
  ref_t *r = ref_binary(REF_AND, TGC_I32,
                        ref_binary(REF_SHR, TGC_I32, ref_binary(REF_ADD, TGC_I32, ref_binary(REF_MUL, TGC_I32, a, b), c), r3),
                        r255);
  ref_expect(t, r, TGC_I32, TOL_EXACT, "fused int chain");
  tgc_tensor *m = tgc_where(tgc_and(tgc_gt(ta, tb), tgc_ne(tc, t3)), ta, tgc_neg(tb));
  ref_t *rm = ref_where(ref_binary(REF_AND, TGC_BOOL, ref_binary(REF_GT, TGC_I32, a, b), ref_binary(REF_NE, TGC_I32, c, r3)),
                        a, ref_unary(REF_NEG, TGC_I32, b));
  ref_expect(m, rm, TGC_I32, TOL_EXACT, "where over bool and");
  ref_verify();
}

Test(elementwise, shared_intermediate_feeds_two_outputs) {
  ref_t *a = ref_uniform(DIMS, -1, 1, 1701), *b = ref_uniform(DIMS, -1, 1, 1702);
  tgc_tensor *ta = ref_tensor(a, TGC_F32), *tb = ref_tensor(b, TGC_F32);
  tgc_tensor *y = tgc_add(ta, tb);
  ref_t *ry = ref_binary(REF_ADD, TGC_F32, a, b);
  ref_expect(tgc_mul(y, y), ref_binary(REF_MUL, TGC_F32, ry, ry), TGC_F32, TOL_SIMPLE, "y*y");
  ref_expect(tgc_exp(y), ref_unary(REF_EXP, TGC_F32, ry), TGC_F32, TOL_TRANS, "exp(y)");
  ref_expect(y, ry, TGC_F32, TOL_SIMPLE, "y itself");
  ref_verify();
  /* a realized intermediate used again later */
  tgc_tensor *z = tgc_sub(y, ta);
  ref_expect(z, ref_binary(REF_SUB, TGC_F32, ry, a), TGC_F32, TOL_SIMPLE, "(a+b)-a after realize");
  ref_verify();
}

/* ---- casts ------------------------------------------------------------------------ */

typedef struct castcase {
  tgc_dtype from, to;
  double lo, hi; /* source values (integers for integer sources) */
} castcase;

static void check_casts(const castcase *cs, int n, int tag, ref_tolkind tol) {
  for (int i = 0; i < n; i++) {
    ref_t *x = ref_is_float(cs[i].from) ? ref_uniform(DIMS, cs[i].lo, cs[i].hi, seed_of(tag, i, 0))
                                        : ref_randint(DIMS, (int64_t)cs[i].lo, (int64_t)cs[i].hi, seed_of(tag, i, 0));
    tgc_tensor *tx = ref_tensor(x, cs[i].from);
    ref_expect(tgc_cast(tx, cs[i].to), ref_cast(x, cs[i].to), cs[i].to, tol, "cast %s -> %s",
               tgc_dtype_name(cs[i].from), tgc_dtype_name(cs[i].to));
  }
  ref_verify();
}

Test(elementwise, cast_float_to_int_truncates) {
  static const castcase cs[] = {
      {TGC_F32, TGC_I8, -120, 120},       {TGC_F32, TGC_U8, 0, 250},
      {TGC_F32, TGC_I16, -30000, 30000},  {TGC_F32, TGC_U16, 0, 60000},
      {TGC_F32, TGC_I32, -1e6, 1e6},      {TGC_F32, TGC_U32, 0, 3e9},
      {TGC_F32, TGC_I64, -1e12, 1e12},    {TGC_F64, TGC_I32, -2e9, 2e9},
      {TGC_F64, TGC_I64, -1e15, 1e15},    {TGC_F16, TGC_I32, -1000, 1000},
      {TGC_F16, TGC_U8, 0, 250},          {TGC_BF16, TGC_I16, -1000, 1000},
      {TGC_F16, TGC_I8, -3, 3},           {TGC_BF16, TGC_I32, -3, 3},
  };
  check_casts(cs, COUNT(cs), 20, TOL_EXACT);
}

Test(elementwise, cast_int_to_float_rounds_to_nearest_even) {
  static const castcase cs[] = {
      {TGC_I32, TGC_F32, -(1 << 29), 1 << 29}, {TGC_I32, TGC_F16, -60000, 60000},
      {TGC_I32, TGC_BF16, -1e6, 1e6},          {TGC_I32, TGC_F64, -(1 << 29), 1 << 29},
      {TGC_I64, TGC_F64, -1e15, 1e15},         {TGC_I64, TGC_F32, -1e12, 1e12},
      {TGC_U8, TGC_F32, 0, 255},               {TGC_I8, TGC_F16, -128, 127},
      {TGC_U32, TGC_F32, 0, 4294967295.0},     {TGC_I16, TGC_BF16, -32768, 32767},
      {TGC_U16, TGC_F16, 0, 65535},
  };
  check_casts(cs, COUNT(cs), 21, TOL_EXACT);
}

Test(elementwise, cast_float_to_float) {
  static const castcase cs[] = {
      {TGC_F32, TGC_F16, -70000, 70000}, {TGC_F32, TGC_BF16, -1e5, 1e5}, {TGC_F16, TGC_F32, -100, 100},
      {TGC_BF16, TGC_F32, -100, 100},    {TGC_F32, TGC_F64, -100, 100},  {TGC_F16, TGC_F64, -100, 100},
      {TGC_F64, TGC_F32, -100, 100},     {TGC_F16, TGC_BF16, -100, 100}, {TGC_BF16, TGC_F16, -100, 100},
      {TGC_F32, TGC_F16, -1e-4, 1e-4}, /* f16 subnormals */
  };
  check_casts(cs, COUNT(cs), 22, TOL_EXACT);
}

Test(elementwise, cast_f32_to_half_ties_go_to_even) {
  /* Exact ties: half-way between neighbouring f16 (resp. bf16) values. */
  ref_t *h = ref_new(SHAPE(64)), *b = ref_new(SHAPE(64));
  for (int k = 0; k < 64; k++) {
    int m = 2 * k + 1;
    h->v[k] = (k & 1 ? -1 : 1) * (k < 32 ? 1.0 + m * 0x1p-11 : m * 0x1p-25); /* normal; subnormal */
    b->v[k] = (k & 1 ? -1 : 1) * (1.0 + m * 0x1p-8) * ldexp(1.0, k % 20 - 10);
  }
  tgc_tensor *th = ref_tensor(h, TGC_F32), *tb = ref_tensor(b, TGC_F32);
  ref_expect(tgc_cast(th, TGC_F16), ref_cast(h, TGC_F16), TGC_F16, TOL_EXACT, "f32 -> f16 ties");
  ref_expect(tgc_cast(tb, TGC_BF16), ref_cast(b, TGC_BF16), TGC_BF16, TOL_EXACT, "f32 -> bf16 ties");
  /* the reference rounds ties to even: 1 + 2^-11 -> 1, 1 + 3*2^-11 -> 1 + 2^-9 */
  cr_assert_eq(ref_f16_from_double(1.0 + 0x1p-11), 0x3c00);
  cr_assert_eq(ref_f16_from_double(1.0 + 3 * 0x1p-11), 0x3c02);
  cr_assert_eq(ref_bf16_from_float(1.0f + 0x1p-8f), 0x3f80);
  cr_assert_eq(ref_bf16_from_float(1.0f + 3 * 0x1p-8f), 0x3f82);
  ref_verify();
}

Test(elementwise, cast_int_to_int_wraps) {
  static const castcase cs[] = {
      {TGC_I32, TGC_I8, -100000, 100000}, {TGC_I32, TGC_U8, -100000, 100000},
      {TGC_I32, TGC_I16, -100000, 100000}, {TGC_I32, TGC_U16, -100000, 100000},
      {TGC_I8, TGC_I32, -128, 127},        {TGC_U8, TGC_I32, 0, 255},
      {TGC_I8, TGC_U8, -128, 127},         {TGC_U8, TGC_I8, 0, 255},
      {TGC_I64, TGC_I32, -1e12, 1e12},     {TGC_I32, TGC_I64, -(1 << 29), 1 << 29},
      {TGC_U32, TGC_I64, 0, 4294967295.0}, {TGC_I64, TGC_U32, -1e12, 1e12},
      {TGC_I16, TGC_U16, -32768, 32767},   {TGC_U16, TGC_I64, 0, 65535},
  };
  check_casts(cs, COUNT(cs), 23, TOL_EXACT);
}

Test(elementwise, cast_to_and_from_bool) {
  static const castcase cs[] = {
      {TGC_I32, TGC_BOOL, -2, 2}, {TGC_U8, TGC_BOOL, 0, 3},  {TGC_I64, TGC_BOOL, -1, 1},
      {TGC_BOOL, TGC_F32, 0, 1},  {TGC_BOOL, TGC_I32, 0, 1}, {TGC_BOOL, TGC_F16, 0, 1},
      {TGC_BOOL, TGC_U8, 0, 1},
  };
  check_casts(cs, COUNT(cs), 24, TOL_EXACT);
  /* floats with zeros, halves and negatives: nonzero is true */
  static const tgc_dtype fl[] = {TGC_F32, TGC_F16, TGC_F64, TGC_BF16};
  for (int d = 0; d < COUNT(fl); d++) {
    ref_t *x = ref_randint(DIMS, -2, 2, seed_of(24, 9, d));
    for (int64_t i = 0; i < x->numel; i++) x->v[i] *= 0.5;
    tgc_tensor *tx = ref_tensor(x, fl[d]);
    ref_expect(tgc_cast(tx, TGC_BOOL), ref_cast(x, TGC_BOOL), TGC_BOOL, TOL_EXACT, "cast %s -> bool",
               tgc_dtype_name(fl[d]));
  }
  ref_verify();
}

Test(elementwise, cast_to_same_dtype_is_identity) {
  ref_t *x = ref_uniform(DIMS, -3, 3, 2501);
  ref_expect(tgc_cast(ref_tensor(x, TGC_F32), TGC_F32), x, TGC_F32, TOL_EXACT, "cast f32 -> f32");
  ref_verify();
}

Test(elementwise, bitcast_reinterprets_bits) {
  ref_t *f = ref_uniform(DIMS, -1000, 1000, 2601);
  ref_t *h = ref_uniform(DIMS, -100, 100, 2602);
  ref_quantize(f, TGC_F32), ref_quantize(h, TGC_F16);
  /* integer inputs that are the bit patterns of finite floats */
  ref_t *fi = ref_bitcast(ref_uniform(DIMS, -1e6, 1e6, 2603), TGC_F32, TGC_I32);
  ref_t *hi = ref_bitcast(ref_quantize(ref_uniform(DIMS, -1e3, 1e3, 2604), TGC_F16), TGC_F16, TGC_I16);
  ref_t *bi = ref_bitcast(ref_quantize(ref_uniform(DIMS, -1e3, 1e3, 2605), TGC_BF16), TGC_BF16, TGC_I16);
  ref_t *d = ref_uniform(DIMS, -1e9, 1e9, 2606);
  static const struct { tgc_dtype from, to; int src; } cs[] = {
      {TGC_F32, TGC_I32, 0}, {TGC_I32, TGC_F32, 1}, {TGC_F16, TGC_I16, 2}, {TGC_I16, TGC_F16, 3},
      {TGC_BF16, TGC_I16, 4}, {TGC_I16, TGC_BF16, 5}, {TGC_F32, TGC_U32, 0}, {TGC_F16, TGC_U16, 2},
      {TGC_F64, TGC_I64, 6},
  };
  ref_t *srcs[] = {f, fi, h, hi, ref_quantize(ref_copy(f), TGC_BF16), bi, d};
  for (int i = 0; i < COUNT(cs); i++) {
    ref_t *x = ref_copy(srcs[cs[i].src]);
    tgc_tensor *tx = ref_tensor(x, cs[i].from);
    ref_expect(tgc_bitcast(tx, cs[i].to), ref_bitcast(x, cs[i].from, cs[i].to), cs[i].to, TOL_EXACT,
               "bitcast %s -> %s", tgc_dtype_name(cs[i].from), tgc_dtype_name(cs[i].to));
  }
  /* small known case: 1.0f is 0x3f800000, -2.0f is 0xc0000000 */
  float one[2] = {1.0f, -2.0f};
  tgc_tensor *t = tgc_bitcast(tgc_from_data(tctx, TGC_F32, SHAPE(2), one), TGC_I32);
  int32_t bits[2] = {0, 0};
  cr_assert_eq(tgc_to_host(t, bits, sizeof bits), TGC_OK, "%s", tgc_last_error());
  cr_expect_eq(bits[0], 0x3f800000);
  cr_expect_eq((uint32_t)bits[1], 0xc0000000u);
  ref_verify();
}

/* ---- creation ------------------------------------------------------------------------ */

Test(elementwise, full_zeros_ones_scalar_every_dtype) {
  static const tgc_dtype all[] = {TGC_BOOL, TGC_I8,  TGC_U8,  TGC_I16, TGC_U16, TGC_I32,
                                  TGC_U32,  TGC_I64, TGC_F16, TGC_BF16, TGC_F32, TGC_F64};
  for (int d = 0; d < COUNT(all); d++) {
    tgc_dtype dt = all[d];
    const char *n = tgc_dtype_name(dt);
    double v = dt == TGC_BOOL ? 1 : ref_is_signed(dt) ? -3.25 : 7;
    ref_expect(tgc_zeros(tctx, dt, SHAPE(3, 5)), ref_fill(SHAPE(3, 5), 0), dt, TOL_EXACT, "zeros %s", n);
    ref_expect(tgc_ones(tctx, dt, SHAPE(3, 5)), ref_fill(SHAPE(3, 5), 1), dt, TOL_EXACT, "ones %s", n);
    ref_expect(tgc_full(tctx, dt, SHAPE(2, 3, 4), v), ref_cast(ref_fill(SHAPE(2, 3, 4), v), dt), dt,
               TOL_EXACT, "full %s", n);
    ref_expect(tgc_scalar(tctx, dt, v), ref_cast(ref_fill(0, NULL, v), dt), dt, TOL_EXACT, "scalar %s", n);
  }
  ref_verify();
}

Test(elementwise, from_data_round_trips_every_dtype) {
  static const tgc_dtype all[] = {TGC_BOOL, TGC_I8,  TGC_U8,  TGC_I16, TGC_U16, TGC_I32,
                                  TGC_U32,  TGC_I64, TGC_F16, TGC_BF16, TGC_F32, TGC_F64};
  for (int d = 0; d < COUNT(all); d++) {
    tgc_dtype dt = all[d];
    ref_t *x = ref_is_float(dt) ? ref_normal(SHAPE(4, 5, 3), seed_of(27, d, 0))
                                : dt == TGC_BOOL ? ref_randint(SHAPE(4, 5, 3), 0, 1, seed_of(27, d, 0))
                                                 : gen(dt, D_ANY, seed_of(27, d, 0));
    if (x->ndim == 2) x = ref_reshape(x, SHAPE(3, 7, 11));
    tgc_tensor *t = ref_tensor(x, dt);
    cr_expect(tgc_is_realized(t), "from_data %s should be realized", tgc_dtype_name(dt));
    ref_check_now(t, x, dt, ref_tol_for(dt, TOL_EXACT), tgc_dtype_name(dt));
  }
  /* a 0-d tensor */
  double v = 42;
  tgc_tensor *s = tgc_from_data(tctx, TGC_F64, 0, NULL, &v);
  ref_check_now(s, ref_fill(0, NULL, 42), TGC_F64, ref_tol_for(TGC_F64, TOL_EXACT), "0-d from_data");
}

Test(elementwise, tensor_facts) {
  tgc_tensor *a = tgc_zeros(tctx, TGC_F16, SHAPE(2, 3, 4));
  cr_assert_not_null(a);
  cr_expect_eq(tgc_ndim(a), 3);
  cr_expect_eq(tgc_numel(a), 24);
  cr_expect_eq(tgc_dtype_of(a), TGC_F16);
  cr_assert_not_null(tgc_shape(a));
  cr_expect(tgc_shape(a)[0] == 2 && tgc_shape(a)[1] == 3 && tgc_shape(a)[2] == 4);
  cr_expect_eq(tgc_ctx_of(a), tctx);
  cr_expect(!tgc_is_realized(tgc_add(a, a)), "a lazy op is not realized before tgc_realize");
  const char *want = getenv("TGC_DEVICE"); /* the suite also runs on opencl */
  cr_expect_str_eq(tgc_ctx_device(tctx), want && strcmp(want, "auto") ? want : "cpu");
  tgc_tensor *c = tgc_lt(a, a);
  cr_expect_eq(tgc_dtype_of(c), TGC_BOOL);
  tgc_tensor *s = tgc_scalar(tctx, TGC_I32, 3);
  cr_expect_eq(tgc_ndim(s), 0);
  cr_expect_eq(tgc_numel(s), 1);
  /* dtype table */
  static const struct { tgc_dtype dt; const char *name; size_t size; bool fl; } dts[] = {
      {TGC_BOOL, "bool", 1, false}, {TGC_I8, "i8", 1, false},   {TGC_U8, "u8", 1, false},
      {TGC_I16, "i16", 2, false},   {TGC_U16, "u16", 2, false}, {TGC_I32, "i32", 4, false},
      {TGC_U32, "u32", 4, false},   {TGC_I64, "i64", 8, false}, {TGC_F16, "f16", 2, true},
      {TGC_BF16, "bf16", 2, true},  {TGC_F32, "f32", 4, true},  {TGC_F64, "f64", 8, true},
  };
  for (int i = 0; i < COUNT(dts); i++) {
    cr_expect_str_eq(tgc_dtype_name(dts[i].dt), dts[i].name);
    cr_expect_eq(tgc_dtype_size(dts[i].dt), dts[i].size, "size of %s", dts[i].name);
    cr_expect_eq(tgc_dtype_is_float(dts[i].dt), dts[i].fl, "is_float of %s", dts[i].name);
  }
}

/* arange: [start, start+step, ...) below stop; count = ceil((stop-start)/step) */
static ref_t *ref_arange(double start, double stop, double step) {
  int64_t n = (int64_t)ceil((stop - start) / step);
  ref_t *r = ref_new(SHAPE(n));
  for (int64_t i = 0; i < n; i++) r->v[i] = start + (double)i * step;
  return r;
}

Test(elementwise, arange_values_and_lengths) {
  static const struct { tgc_dtype dt; double start, stop, step; } cs[] = {
      {TGC_F32, 0, 10, 1},   {TGC_I32, -5, 7, 3},  {TGC_F32, 5, -5, -2.5}, {TGC_F32, 0.25, 1.0, 0.25}, {TGC_F32, 0, 1, 0.3},
      {TGC_I64, 0, 1000, 7}, {TGC_F16, -4, 4, 0.5}, {TGC_I32, 10, 0, -1},  {TGC_F64, 1, 2, 0.125},
      {TGC_U8, 0, 256, 1},
  };
  for (int i = 0; i < COUNT(cs); i++) {
    ref_t *want = ref_cast(ref_arange(cs[i].start, cs[i].stop, cs[i].step), cs[i].dt);
    ref_expect(tgc_arange(tctx, cs[i].dt, cs[i].start, cs[i].stop, cs[i].step), want, cs[i].dt, TOL_SIMPLE,
               "arange(%g, %g, %g) %s", cs[i].start, cs[i].stop, cs[i].step, tgc_dtype_name(cs[i].dt));
  }
  ref_verify();
}

static double *host_f64(tgc_tensor *t) {
  int64_t n = tgc_numel(t);
  cr_assert(n > 0, "numel %lld: %s", (long long)n, tgc_last_error());
  tgc_tensor *c = tgc_cast(t, TGC_F64);
  double *out = ref_alloc((size_t)n * sizeof(double));
  tgc_status st = tgc_to_host(c, out, (size_t)n * sizeof(double));
  cr_assert_eq(st, TGC_OK, "to_host: %s", tgc_last_error());
  return out;
}

Test(elementwise, rand_is_uniform_in_0_1_and_seeded) {
  static const tgc_dtype fl[] = {TGC_F32, TGC_F16, TGC_BF16, TGC_F64};
  for (int d = 0; d < COUNT(fl); d++) {
    const char *n = tgc_dtype_name(fl[d]);
    tgc_tensor *r = tgc_rand(tctx, fl[d], SHAPE(40, 50), 42);
    cr_assert_not_null(r, "rand %s: %s", n, tgc_last_error());
    cr_expect_eq(tgc_ndim(r), 2);
    double *v = host_f64(r), sum = 0, lo = 1, hi = 0;
    for (int i = 0; i < 2000; i++) sum += v[i], lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
    cr_expect(lo >= 0 && hi < 1, "rand %s: values in [%g, %g], expected [0, 1)", n, lo, hi);
    cr_expect(fabs(sum / 2000 - 0.5) < 0.03, "rand %s: mean %g", n, sum / 2000);
    cr_expect(hi - lo > 0.9, "rand %s: range [%g, %g] too narrow", n, lo, hi);
    /* same seed, same values, also from another context; another seed differs */
    tgc_ctx *c2 = tgc_ctx_new();
    cr_assert_not_null(c2);
    double *w = host_f64(tgc_rand(c2, fl[d], SHAPE(40, 50), 42));
    double *u = host_f64(tgc_rand(tctx, fl[d], SHAPE(40, 50), 43));
    cr_expect(!memcmp(v, w, 2000 * sizeof(double)), "rand %s: same seed gave different values", n);
    cr_expect(memcmp(v, u, 2000 * sizeof(double)), "rand %s: seeds 42 and 43 gave the same values", n);
    tgc_ctx_free(c2);
  }
}

Test(elementwise, randn_is_standard_normal) {
  static const tgc_dtype fl[] = {TGC_F32, TGC_F16, TGC_F64};
  for (int d = 0; d < COUNT(fl); d++) {
    const char *n = tgc_dtype_name(fl[d]);
    double *v = host_f64(tgc_randn(tctx, fl[d], SHAPE(4000), 7));
    double sum = 0, sq = 0;
    int above2 = 0;
    for (int i = 0; i < 4000; i++) sum += v[i], sq += v[i] * v[i], above2 += fabs(v[i]) > 2;
    double mean = sum / 4000, var = sq / 4000 - mean * mean;
    cr_expect(fabs(mean) < 0.08, "randn %s: mean %g", n, mean);
    cr_expect(fabs(var - 1) < 0.12, "randn %s: variance %g", n, var);
    /* P(|z| > 2) = 4.55% */
    cr_expect(above2 > 120 && above2 < 250, "randn %s: %d of 4000 beyond 2 sigma", n, above2);
    double *w = host_f64(tgc_randn(tctx, fl[d], SHAPE(4000), 7));
    cr_expect(!memcmp(v, w, 4000 * sizeof(double)), "randn %s: same seed gave different values", n);
  }
}
