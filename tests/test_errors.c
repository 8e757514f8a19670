/* test_errors.c - every error path of the public API.
 *
 * For each bad call: the result is NULL (or the status is not TGC_OK),
 * tgc_last_status() names the right failure, and tgc_last_error() is a
 * message that says which op failed (and, where the issue asks, shows the
 * shapes).  NULL tensor arguments must return NULL quietly, so a chain of
 * calls can be checked once at the end.  A context keeps working after
 * errors.
 *
 * Where tgc.h leaves the status of a bad shape argument open between
 * TGC_ERR_ARG ("out-of-range argument") and TGC_ERR_SHAPE ("shapes that do
 * not fit together"), the test accepts either (ARG_OR_SHAPE); shapes of two
 * operands that do not fit together must be TGC_ERR_SHAPE, axes and
 * permutations out of range TGC_ERR_ARG, dtypes an op does not take
 * TGC_ERR_DTYPE.
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

TestSuite(errors, .init = ref_setup, .fini = ref_teardown);

#define M(s) (1u << (s))
#define ARG M(TGC_ERR_ARG)
#define SHP M(TGC_ERR_SHAPE)
#define DTY M(TGC_ERR_DTYPE)
#define ARG_OR_SHAPE (ARG | SHP)

static void check_failure(bool failed, unsigned mask, const char *needle, const char *what, int line) {
  tgc_status st = tgc_last_status();
  const char *msg = tgc_last_error();
  cr_expect(failed, "line %d: %s: expected a failure", line, what);
  cr_expect(st != TGC_OK && (mask & M(st)), "line %d: %s: tgc_last_status() is %s (message \"%s\")", line, what,
            tgc_status_str(st), msg ? msg : "(null)");
  cr_expect(msg && strlen(msg) >= 8, "line %d: %s: message too short: \"%s\"", line, what, msg ? msg : "(null)");
  if (needle && msg)
    cr_expect(strstr(msg, needle) != NULL, "line %d: %s: message \"%s\" does not mention \"%s\"", line, what, msg,
              needle);
}

/* A constructor that must fail with a status in mask and a message that
 * contains needle (when not NULL). */
#define FAILS(expr, mask, needle)                                      \
  do {                                                                 \
    tgc_clear_error();                                                 \
    tgc_tensor *t_ = (expr);                                           \
    check_failure(t_ == NULL, (mask), (needle), #expr, __LINE__);      \
  } while (0)

/* A call returning tgc_status that must fail likewise. */
#define FAILS_ST(expr, mask, needle)                                                         \
  do {                                                                                       \
    tgc_clear_error();                                                                       \
    tgc_status s_ = (expr);                                                                  \
    cr_expect(s_ == tgc_last_status(), "line %d: %s returned %s but tgc_last_status() is %s", \
              __LINE__, #expr, tgc_status_str(s_), tgc_status_str(tgc_last_status()));       \
    check_failure(s_ != TGC_OK, (mask), (needle), #expr, __LINE__);                          \
  } while (0)

/* A NULL tensor argument: NULL back, and no new message. */
#define QUIET_NULL(expr)                                                                         \
  do {                                                                                           \
    tgc_clear_error();                                                                           \
    tgc_tensor *t_ = (expr);                                                                     \
    cr_expect_null(t_, "line %d: %s: expected NULL", __LINE__, #expr);                           \
    cr_expect_eq(tgc_last_status(), TGC_OK, "line %d: %s set status %s (\"%s\")", __LINE__, #expr, \
                 tgc_status_str(tgc_last_status()), tgc_last_error());                           \
    cr_expect_str_empty(tgc_last_error(), "line %d: %s set a message", __LINE__, #expr);         \
  } while (0)

/* Inputs: seed 7, so a test can rebuild their reference values. */
static tgc_tensor *f32(int ndim, const int64_t *shape) {
  return ref_tensor(ref_uniform(ndim, shape, -1, 1, 7), TGC_F32);
}
static tgc_tensor *i32(int ndim, const int64_t *shape) {
  return ref_tensor(ref_randint(ndim, shape, -5, 5, 8), TGC_I32);
}

/* ---- NULL arguments ----------------------------------------------------------- */

Test(errors, null_context) {
  int64_t sh[] = {2, 3};
  float data[6] = {0};
  FAILS(tgc_from_data(NULL, TGC_F32, 2, sh, data), ARG, NULL);
  FAILS(tgc_empty(NULL, TGC_F32, 2, sh), ARG, NULL);
  FAILS(tgc_full(NULL, TGC_F32, 2, sh, 1.0), ARG, NULL);
  FAILS(tgc_zeros(NULL, TGC_F32, 2, sh), ARG, NULL);
  FAILS(tgc_ones(NULL, TGC_F32, 2, sh), ARG, NULL);
  FAILS(tgc_scalar(NULL, TGC_F32, 1.0), ARG, NULL);
  FAILS(tgc_arange(NULL, TGC_F32, 0, 4, 1), ARG, NULL);
  FAILS(tgc_rand(NULL, TGC_F32, 2, sh, 1), ARG, NULL);
  FAILS(tgc_randn(NULL, TGC_F32, 2, sh, 1), ARG, NULL);
  tgc_tensor *t = f32(SHAPE(2, 3));
  FAILS_ST(tgc_realize(NULL, 1, &t), ARG, NULL);
  tgc_tensor *c = NULL, *s = NULL;
  FAILS_ST(tgc_rope_tables(NULL, 0, 4, 8, 10000.0, &c, &s), ARG, NULL);
  tgc_ctx_free(NULL); /* does nothing */
}

typedef tgc_tensor *(*binfn)(tgc_tensor *, tgc_tensor *);
typedef tgc_tensor *(*unfn)(tgc_tensor *);

Test(errors, null_tensor_arguments_return_null_quietly) {
  static const struct { binfn fn; bool ints; } bins[] = {
      {tgc_add, 0}, {tgc_sub, 0}, {tgc_mul, 0}, {tgc_div, 0}, {tgc_idiv, 1}, {tgc_mod, 1}, {tgc_pow, 0},
      {tgc_maximum, 0}, {tgc_minimum, 0}, {tgc_and, 1}, {tgc_or, 1}, {tgc_xor, 1}, {tgc_shl, 1},
      {tgc_shr, 1}, {tgc_lt, 0}, {tgc_le, 0}, {tgc_gt, 0}, {tgc_ge, 0}, {tgc_eq, 0}, {tgc_ne, 0}};
  static const unfn uns[] = {tgc_neg, tgc_exp, tgc_exp2, tgc_log, tgc_log2, tgc_sqrt, tgc_rsqrt,
                             tgc_reciprocal, tgc_sin, tgc_cos, tgc_tanh, tgc_sigmoid, tgc_silu, tgc_relu,
                             tgc_contiguous};
  tgc_tensor *x = f32(SHAPE(2, 4)), *xi = i32(SHAPE(2, 4)), *ids = i32(SHAPE(3));
  tgc_tensor *c = ref_tensor(ref_randint(SHAPE(2, 4), 0, 1, 9), TGC_BOOL), *cs = f32(SHAPE(1, 2));
  for (int i = 0; i < COUNT(bins); i++) {
    tgc_tensor *v = bins[i].ints ? xi : x;
    QUIET_NULL(bins[i].fn(NULL, v));
    QUIET_NULL(bins[i].fn(v, NULL));
    QUIET_NULL(bins[i].fn(NULL, NULL));
  }
  for (int i = 0; i < COUNT(uns); i++) QUIET_NULL(uns[i](NULL));
  QUIET_NULL(tgc_where(NULL, x, x));
  QUIET_NULL(tgc_where(c, NULL, x));
  QUIET_NULL(tgc_where(c, x, NULL));
  QUIET_NULL(tgc_cast(NULL, TGC_F16));
  QUIET_NULL(tgc_bitcast(NULL, TGC_I32));
  QUIET_NULL(tgc_sum(NULL, 0, NULL, false));
  QUIET_NULL(tgc_max(NULL, AXES(0), true));
  QUIET_NULL(tgc_mean(NULL, 0, NULL, false));
  QUIET_NULL(tgc_reshape(NULL, SHAPE(8)));
  QUIET_NULL(tgc_permute(NULL, INTS(1, 0)));
  QUIET_NULL(tgc_transpose(NULL, 0, 1));
  QUIET_NULL(tgc_expand(NULL, SHAPE(2, 4)));
  QUIET_NULL(tgc_pad(NULL, I64S(0, 0, 1, 1)));
  QUIET_NULL(tgc_shrink(NULL, I64S(0, 1, 0, 1)));
  QUIET_NULL(tgc_slice(NULL, 0, 0, 1));
  QUIET_NULL(tgc_flip(NULL, AXES(0)));
  QUIET_NULL(tgc_squeeze(NULL, 0));
  QUIET_NULL(tgc_unsqueeze(NULL, 0));
  tgc_tensor *with_null[] = {x, NULL};
  QUIET_NULL(tgc_cat(2, with_null, 0));
  QUIET_NULL(tgc_matmul(NULL, x));
  QUIET_NULL(tgc_matmul(x, NULL));
  QUIET_NULL(tgc_softmax(NULL, -1));
  QUIET_NULL(tgc_log_softmax(NULL, -1));
  QUIET_NULL(tgc_rmsnorm(NULL, 1e-5));
  QUIET_NULL(tgc_layernorm(NULL, 1e-5));
  QUIET_NULL(tgc_rope(NULL, cs, cs));
  QUIET_NULL(tgc_rope(x, NULL, cs));
  QUIET_NULL(tgc_rope(x, cs, NULL));
  QUIET_NULL(tgc_embedding(NULL, ids));
  QUIET_NULL(tgc_embedding(x, NULL));
  QUIET_NULL(tgc_assign(NULL, x));
  QUIET_NULL(tgc_assign(x, NULL));
  /* tensor facts of NULL */
  cr_expect_eq(tgc_ndim(NULL), -1);
  cr_expect_null(tgc_shape(NULL));
  cr_expect_eq(tgc_numel(NULL), -1);
  cr_expect_eq(tgc_dtype_of(NULL), TGC_NUM_DTYPES);
  cr_expect_null(tgc_ctx_of(NULL));
  cr_expect(!tgc_is_realized(NULL));
}

Test(errors, a_failed_chain_keeps_the_first_message) {
  tgc_tensor *x = f32(SHAPE(4, 6)), *y = f32(SHAPE(4, 6));
  tgc_clear_error();
  tgc_tensor *t = tgc_sum(tgc_exp(tgc_add(tgc_reshape(x, SHAPE(5, 5)), y)), AXES(0), false);
  cr_expect_null(t);
  cr_expect_eq(tgc_last_status(), TGC_ERR_SHAPE, "status %s", tgc_status_str(tgc_last_status()));
  cr_expect(strstr(tgc_last_error(), "reshape") != NULL, "message \"%s\" does not name reshape", tgc_last_error());
  /* a later NULL argument leaves the message as it was */
  char saved[512];
  snprintf(saved, sizeof saved, "%s", tgc_last_error());
  cr_expect_null(tgc_neg(NULL));
  cr_expect_str_eq(tgc_last_error(), saved);
  cr_expect_eq(tgc_last_status(), TGC_ERR_SHAPE);
  /* realize of the NULL result fails too */
  FAILS_ST(tgc_realize(tctx, 1, &t), ARG, NULL);
}

Test(errors, realize_and_to_host_bad_arguments) {
  tgc_tensor *x = f32(SHAPE(2, 3));
  tgc_tensor *nul[] = {NULL}, *some[] = {x, NULL};
  FAILS_ST(tgc_realize(tctx, 1, NULL), ARG, NULL);
  FAILS_ST(tgc_realize(tctx, 1, nul), ARG, NULL);
  FAILS_ST(tgc_realize(tctx, 2, some), ARG, NULL);
  FAILS_ST(tgc_realize(tctx, -1, some), ARG, NULL);
  /* a tensor of another context */
  tgc_ctx *other = tgc_ctx_new();
  cr_assert_not_null(other);
  tgc_tensor *y = tgc_ones(other, TGC_F32, SHAPE(2, 3));
  cr_assert_not_null(y);
  FAILS_ST(tgc_realize(tctx, 1, &y), ARG, NULL);
  FAILS(tgc_add(x, y), ARG, "add");
  tgc_ctx_free(other);
  float buf[8];
  FAILS_ST(tgc_to_host(NULL, buf, sizeof buf), ARG, NULL);
  FAILS_ST(tgc_to_host(x, NULL, 6 * sizeof(float)), ARG, NULL);
  FAILS_ST(tgc_to_host(x, buf, 5 * sizeof(float)), ARG, NULL);
  FAILS_ST(tgc_to_host(x, buf, 8 * sizeof(float)), ARG, NULL);
  FAILS_ST(tgc_to_host(x, buf, 6 * sizeof(double)), ARG, NULL);
  /* the right size works */
  cr_expect_eq(tgc_to_host(x, buf, 6 * sizeof(float)), TGC_OK, "%s", tgc_last_error());
}

/* ---- shapes ----------------------------------------------------------------------- */

Test(errors, creation_bad_shapes_and_dtypes) {
  float data[16] = {0};
  FAILS(tgc_zeros(tctx, TGC_F32, SHAPE(2, 0)), ARG_OR_SHAPE, NULL);
  FAILS(tgc_zeros(tctx, TGC_F32, SHAPE(-3, 2)), ARG_OR_SHAPE, NULL);
  FAILS(tgc_from_data(tctx, TGC_F32, SHAPE(0), data), ARG_OR_SHAPE, NULL);
  FAILS(tgc_ones(tctx, TGC_F32, SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1)), ARG_OR_SHAPE, NULL); /* 9 > TGC_MAX_DIMS */
  FAILS(tgc_full(tctx, TGC_F32, -1, NULL, 1.0), ARG_OR_SHAPE, NULL);
  FAILS(tgc_empty(tctx, TGC_F32, SHAPE(4, -1)), ARG_OR_SHAPE, NULL);
  FAILS(tgc_zeros(tctx, TGC_F32, 2, NULL), ARG, NULL);
  FAILS(tgc_from_data(tctx, TGC_F32, SHAPE(2, 2), NULL), ARG, NULL);
  FAILS(tgc_from_data(tctx, TGC_NUM_DTYPES, SHAPE(2, 2), data), ARG_OR_SHAPE | DTY, NULL);
  FAILS(tgc_zeros(tctx, (tgc_dtype)-1, SHAPE(2, 2)), ARG_OR_SHAPE | DTY, NULL);
  FAILS(tgc_arange(tctx, TGC_F32, 0, 10, 0), ARG, NULL);
  FAILS(tgc_arange(tctx, TGC_F32, 3, 3, 1), ARG_OR_SHAPE, NULL);  /* empty */
  FAILS(tgc_arange(tctx, TGC_I32, 5, 0, 1), ARG_OR_SHAPE, NULL);  /* empty: wrong direction */
  FAILS(tgc_rand(tctx, TGC_I32, SHAPE(4), 1), DTY, "rand");
  FAILS(tgc_randn(tctx, TGC_U8, SHAPE(4), 1), DTY, "randn");
  FAILS(tgc_rand(tctx, TGC_F32, SHAPE(4, 0), 1), ARG_OR_SHAPE, NULL);
  /* TGC_MAX_DIMS itself is fine */
  tgc_tensor *t8 = tgc_ones(tctx, TGC_F32, SHAPE(1, 2, 1, 2, 1, 2, 1, 2));
  cr_expect_not_null(t8, "8 dims: %s", tgc_last_error());
  ref_expect(tgc_sum(t8, AXES(1, 3, 5, 7), false), ref_fill(SHAPE(1, 1, 1, 1), 16), TGC_F32, TOL_EXACT,
             "sum over an 8-d tensor");
  ref_verify();
}

Test(errors, broadcast_mismatch) {
  tgc_tensor *a = f32(SHAPE(3, 4)), *b = f32(SHAPE(5)), *c = f32(SHAPE(2, 3)), *d = f32(SHAPE(3, 2));
  FAILS(tgc_add(a, b), SHP, "add");
  FAILS(tgc_mul(c, d), SHP, "mul");
  FAILS(tgc_lt(a, c), SHP, "lt");
  FAILS(tgc_maximum(b, a), SHP, "max");
  tgc_tensor *cond = ref_tensor(ref_randint(SHAPE(3, 4), 0, 1, 3), TGC_BOOL);
  FAILS(tgc_where(cond, a, c), SHP, "where");
  FAILS(tgc_where(tgc_lt(c, c), a, a), SHP, "where");
}

Test(errors, reshape_bad_shapes) {
  tgc_tensor *x = f32(SHAPE(4, 6));
  FAILS(tgc_reshape(x, SHAPE(5, 5)), SHP, "reshape");
  FAILS(tgc_reshape(x, SHAPE(25)), SHP, "reshape");
  FAILS(tgc_reshape(x, SHAPE(-1, -1)), ARG_OR_SHAPE, "reshape");
  FAILS(tgc_reshape(x, SHAPE(-1, 5)), SHP, "reshape"); /* 24 is not a multiple of 5 */
  FAILS(tgc_reshape(x, SHAPE(0, 24)), ARG_OR_SHAPE, "reshape");
  FAILS(tgc_reshape(x, SHAPE(-2, -12)), ARG_OR_SHAPE, "reshape");
  FAILS(tgc_reshape(x, SHAPE(1, 1, 1, 1, 1, 1, 1, 4, 6)), ARG_OR_SHAPE, "reshape");
  FAILS(tgc_reshape(x, -1, NULL), ARG_OR_SHAPE, "reshape");
  FAILS(tgc_reshape(x, 2, NULL), ARG, "reshape");
}

Test(errors, expand_bad_shapes) {
  tgc_tensor *x = f32(SHAPE(3, 4)), *y = f32(SHAPE(2, 3, 4));
  FAILS(tgc_expand(x, SHAPE(5, 4)), SHP, "expand");  /* 3 is not 1 */
  FAILS(tgc_expand(x, SHAPE(3, 8)), SHP, "expand");
  FAILS(tgc_expand(y, SHAPE(3, 4)), SHP, "expand");  /* fewer dims */
  FAILS(tgc_expand(x, SHAPE(3, 0)), ARG_OR_SHAPE, "expand");
  FAILS(tgc_expand(x, SHAPE(1, 1, 1, 1, 1, 1, 1, 3, 4)), ARG_OR_SHAPE, "expand");
  FAILS(tgc_expand(x, 2, NULL), ARG, "expand");
}

Test(errors, pad_shrink_slice_bad_ranges) {
  tgc_tensor *x = f32(SHAPE(4, 6));
  FAILS(tgc_pad(x, I64S(0, 0, -1, 2)), ARG_OR_SHAPE, "pad");
  FAILS(tgc_pad(x, I64S(-1, 0, 0, 0)), ARG_OR_SHAPE, "pad");
  FAILS(tgc_pad(x, NULL), ARG, "pad");
  FAILS(tgc_shrink(x, I64S(0, 5, 0, 6)), ARG_OR_SHAPE, "shrink");  /* past the end */
  FAILS(tgc_shrink(x, I64S(-1, 2, 0, 6)), ARG_OR_SHAPE, "shrink"); /* before the start */
  FAILS(tgc_shrink(x, I64S(2, 2, 0, 6)), ARG_OR_SHAPE, "shrink");  /* empty */
  FAILS(tgc_shrink(x, I64S(3, 1, 0, 6)), ARG_OR_SHAPE, "shrink");  /* reversed */
  FAILS(tgc_shrink(x, NULL), ARG, "shrink");
  FAILS(tgc_slice(x, 2, 0, 1), ARG, "slice");
  FAILS(tgc_slice(x, -3, 0, 1), ARG, "slice");
  FAILS(tgc_slice(x, 0, 3, 3), ARG_OR_SHAPE, "slice");   /* empty */
  FAILS(tgc_slice(x, 1, -1, -3), ARG_OR_SHAPE, "slice"); /* empty */
}

Test(errors, bad_axes_and_permutations) {
  tgc_tensor *x = f32(SHAPE(2, 3, 4));
  FAILS(tgc_permute(x, INTS(0, 0, 1)), ARG, "permute");
  FAILS(tgc_permute(x, INTS(0, 1, 3)), ARG, "permute");
  FAILS(tgc_permute(x, INTS(2, 2, 2)), ARG, "permute");
  FAILS(tgc_permute(x, NULL), ARG, "permute");
  FAILS(tgc_transpose(x, 0, 3), ARG, "transpose");
  FAILS(tgc_transpose(x, -4, 0), ARG, "transpose");
  static const struct { tgc_tensor *(*fn)(tgc_tensor *, int, const int *, bool); const char *name; } reds[] = {
      {tgc_sum, "sum"}, {tgc_max, "max"}, {tgc_mean, "mean"}};
  for (int i = 0; i < COUNT(reds); i++) {
    FAILS(reds[i].fn(x, AXES(3), false), ARG, reds[i].name);
    FAILS(reds[i].fn(x, AXES(-4), true), ARG, reds[i].name);
    FAILS(reds[i].fn(x, AXES(0, 0), false), ARG, reds[i].name);
    FAILS(reds[i].fn(x, AXES(1, -2), false), ARG, reds[i].name); /* the same axis twice */
    FAILS(reds[i].fn(x, AXES(0, 1, 2, 0), false), ARG, reds[i].name);
    FAILS(reds[i].fn(x, -1, INTS(0), false), ARG, reds[i].name);
    FAILS(reds[i].fn(x, 1, NULL, false), ARG, reds[i].name);
  }
  FAILS(tgc_flip(x, AXES(3)), ARG, "flip");
  FAILS(tgc_flip(x, AXES(0, -3)), ARG, "flip"); /* duplicate */
  FAILS(tgc_flip(x, 1, NULL), ARG, "flip");
  FAILS(tgc_squeeze(x, 0), ARG_OR_SHAPE, "squeeze"); /* size 2 */
  FAILS(tgc_squeeze(x, 3), ARG, "squeeze");
  FAILS(tgc_unsqueeze(x, 4), ARG, "unsqueeze");
  FAILS(tgc_unsqueeze(x, -5), ARG, "unsqueeze");
  FAILS(tgc_unsqueeze(tgc_ones(tctx, TGC_F32, SHAPE(1, 1, 1, 1, 1, 1, 1, 1)), 0), ARG_OR_SHAPE, "unsqueeze");
  FAILS(tgc_softmax(x, 3), ARG, "softmax");
  FAILS(tgc_log_softmax(x, -4), ARG, "softmax");
}

Test(errors, cat_mismatches) {
  tgc_tensor *a = f32(SHAPE(2, 3)), *b = f32(SHAPE(2, 4)), *c = f32(SHAPE(2, 3, 1));
  tgc_tensor *d = i32(SHAPE(2, 3));
  tgc_tensor *ab[] = {a, b}, *ac[] = {a, c}, *ad[] = {a, d}, *aa[] = {a, a};
  FAILS(tgc_cat(2, ab, 0), SHP, "cat"); /* 3 vs 4 off the cat axis */
  FAILS(tgc_cat(2, ac, 0), SHP, "cat"); /* ndim differs */
  FAILS(tgc_cat(2, ad, 0), DTY, "cat");
  FAILS(tgc_cat(2, aa, 2), ARG, "cat");
  FAILS(tgc_cat(2, aa, -3), ARG, "cat");
  FAILS(tgc_cat(0, aa, 0), ARG, "cat");
  FAILS(tgc_cat(-1, aa, 0), ARG, "cat");
  FAILS(tgc_cat(2, NULL, 0), ARG, "cat");
  ref_t *ra = ref_uniform(SHAPE(2, 3), -1, 1, 7);
  ref_quantize(ra, TGC_F32);
  const ref_t *rr[] = {ra, ra};
  ref_expect(tgc_cat(2, ab, 1), ref_cat(2, (const ref_t *const[]){ra, ref_uniform(SHAPE(2, 4), -1, 1, 7)}, 1),
             TGC_F32, TOL_SIMPLE, "but cat along the differing axis works");
  ref_expect(tgc_cat(2, aa, -2), ref_cat(2, rr, 0), TGC_F32, TOL_EXACT, "cat along -2");
  ref_verify();
}

Test(errors, matmul_shapes_named_in_the_message) {
  tgc_tensor *a = f32(SHAPE(2, 3)), *b = f32(SHAPE(4, 5));
  FAILS(tgc_matmul(a, b), SHP, "matmul");
  tgc_clear_error();
  cr_expect_null(tgc_matmul(a, b));
  const char *msg = tgc_last_error();
  cr_expect(strstr(msg, "[2,3]") && strstr(msg, "[4,5]"), "message \"%s\" should show [2,3] and [4,5]", msg);
  FAILS(tgc_matmul(f32(SHAPE(2, 3, 4)), f32(SHAPE(3, 4, 5))), SHP, "matmul"); /* batch 2 vs 3 */
  FAILS(tgc_matmul(f32(SHAPE(3)), f32(SHAPE(4))), SHP, "matmul");
  FAILS(tgc_matmul(f32(SHAPE(4, 3)), f32(SHAPE(4))), SHP, "matmul");
  FAILS(tgc_matmul(tgc_scalar(tctx, TGC_F32, 1), f32(SHAPE(3))), ARG_OR_SHAPE, "matmul");
  FAILS(tgc_matmul(f32(SHAPE(2, 3)), i32(SHAPE(3, 2))), DTY, "matmul");
}

Test(errors, dtype_mismatches_and_float_only_ops) {
  tgc_tensor *f = f32(SHAPE(2, 3)), *i = i32(SHAPE(2, 3));
  tgc_tensor *h = ref_tensor(ref_uniform(SHAPE(2, 3), -1, 1, 5), TGC_F16);
  FAILS(tgc_add(f, i), DTY, "add");
  FAILS(tgc_sub(f, h), DTY, "sub");
  FAILS(tgc_lt(i, f), DTY, "lt");
  FAILS(tgc_where(f, f, f), DTY, "where");  /* condition not bool */
  tgc_tensor *cond = tgc_lt(f, f);
  FAILS(tgc_where(cond, f, i), DTY, "where");
  /* integer-only ops on floats */
  static const struct { binfn fn; const char *name; } int_only[] = {
      {tgc_idiv, "idiv"}, {tgc_mod, "mod"}, {tgc_and, "and"}, {tgc_or, "or"},
      {tgc_xor, "xor"},   {tgc_shl, "shl"}, {tgc_shr, "shr"}};
  for (int k = 0; k < COUNT(int_only); k++) FAILS(int_only[k].fn(f, f), DTY, int_only[k].name);
  FAILS(tgc_pow(i, i), DTY, "pow");
  /* float-only unary math on ints */
  static const struct { unfn fn; const char *name; } float_only[] = {
      {tgc_exp, "exp"},     {tgc_exp2, "exp2"},   {tgc_log, "log"},   {tgc_log2, "log2"},
      {tgc_sqrt, "sqrt"},   {tgc_rsqrt, "rsqrt"}, {tgc_reciprocal, "reciprocal"}, {tgc_sin, "sin"},
      {tgc_cos, "cos"},     {tgc_tanh, "tanh"},   {tgc_sigmoid, "sigmoid"},       {tgc_silu, "silu"}};
  for (int k = 0; k < COUNT(float_only); k++) FAILS(float_only[k].fn(i), DTY, float_only[k].name);
  FAILS(tgc_mean(i, 0, NULL, false), DTY, "mean");
  /* bitcast needs equal sizes; cast and bitcast need a real dtype */
  FAILS(tgc_bitcast(f, TGC_I16), DTY, "bitcast");
  FAILS(tgc_bitcast(h, TGC_F32), DTY, "bitcast");
  FAILS(tgc_bitcast(f, TGC_NUM_DTYPES), ARG | DTY, "bitcast");
  FAILS(tgc_cast(f, TGC_NUM_DTYPES), ARG | DTY, "cast");
  FAILS(tgc_cast(f, (tgc_dtype)-1), ARG | DTY, "cast");
  /* embedding ids must be integers */
  FAILS(tgc_embedding(f32(SHAPE(10, 4)), f32(SHAPE(3))), DTY, "embedding");
  FAILS(tgc_embedding(f32(SHAPE(10)), i32(SHAPE(3))), ARG_OR_SHAPE, "embedding"); /* table not 2-d */
}

Test(errors, rope_bad_shapes) {
  tgc_tensor *x = f32(SHAPE(2, 4, 8)), *odd = f32(SHAPE(2, 4, 5)), *cs = f32(SHAPE(4, 4)), *bad = f32(SHAPE(3, 4));
  FAILS(tgc_rope(odd, f32(SHAPE(4, 2)), f32(SHAPE(4, 2))), ARG_OR_SHAPE, "rope"); /* odd last dim */
  FAILS(tgc_rope(x, bad, bad), SHP, "rope");                                       /* T 3 vs 4 */
  FAILS(tgc_rope(x, cs, bad), SHP, "rope");
  FAILS(tgc_rope(x, f32(SHAPE(4, 8)), f32(SHAPE(4, 8))), SHP, "rope");            /* D not D/2 */
  tgc_tensor *c = NULL, *s = NULL;
  FAILS_ST(tgc_rope_tables(tctx, 0, 4, 7, 10000.0, &c, &s), ARG_OR_SHAPE, NULL);  /* odd dim */
  FAILS_ST(tgc_rope_tables(tctx, 0, 0, 8, 10000.0, &c, &s), ARG_OR_SHAPE, NULL);  /* no positions */
  FAILS_ST(tgc_rope_tables(tctx, 0, 4, 8, 10000.0, NULL, &s), ARG, NULL);
  FAILS_ST(tgc_rope_tables(tctx, 0, 4, 8, 10000.0, &c, NULL), ARG, NULL);
}

/* ---- assign ---------------------------------------------------------------------- */

Test(errors, assign_targets_must_be_views_of_realized_tensors) {
  tgc_tensor *a = f32(SHAPE(4, 6)), *b = f32(SHAPE(4, 6));
  tgc_tensor *v = f32(SHAPE(2, 6));
  FAILS(tgc_assign(tgc_add(a, b), f32(SHAPE(4, 6))), ARG, "assign");               /* computed, not a view */
  FAILS(tgc_assign(tgc_slice(tgc_add(a, b), 0, 0, 2), v), ARG, "assign");          /* view of a computation */
  FAILS(tgc_assign(tgc_zeros(tctx, TGC_F32, SHAPE(2, 6)), v), ARG, "assign");      /* lazy constant */
  FAILS(tgc_assign(tgc_slice(a, 0, 0, 2), f32(SHAPE(2, 5))), SHP, "assign");       /* shape mismatch */
  FAILS(tgc_assign(tgc_slice(a, 0, 0, 2), f32(SHAPE(3, 6))), SHP, "assign");
  FAILS(tgc_assign(tgc_slice(a, 0, 0, 2), i32(SHAPE(2, 6))), DTY, "assign");       /* dtype mismatch */
  /* the tensor is untouched by the failed assigns */
  ref_t *ra = ref_uniform(SHAPE(4, 6), -1, 1, 7);
  ref_expect(a, ref_quantize(ra, TGC_F32), TGC_F32, TOL_EXACT, "target after failed assigns");
  ref_verify();
}

/* ---- status strings and recovery ------------------------------------------------- */

Test(errors, status_and_dtype_names) {
  static const struct { tgc_status s; const char *name; } sts[] = {
      {TGC_OK, "TGC_OK"},
      {TGC_ERR_ARG, "TGC_ERR_ARG"},
      {TGC_ERR_SHAPE, "TGC_ERR_SHAPE"},
      {TGC_ERR_DTYPE, "TGC_ERR_DTYPE"},
      {TGC_ERR_NOMEM, "TGC_ERR_NOMEM"},
      {TGC_ERR_IO, "TGC_ERR_IO"},
      {TGC_ERR_COMPILE, "TGC_ERR_COMPILE"},
      {TGC_ERR_DEVICE, "TGC_ERR_DEVICE"},
      {TGC_ERR_UNSUPPORTED, "TGC_ERR_UNSUPPORTED"},
  };
  for (int i = 0; i < COUNT(sts); i++) cr_expect_str_eq(tgc_status_str(sts[i].s), sts[i].name);
  cr_expect_not_null(tgc_status_str((tgc_status)999));
  cr_expect_not_null(tgc_status_str((tgc_status)-1));
  cr_expect_str_eq(tgc_dtype_name(TGC_NUM_DTYPES), "?");
  cr_expect_str_eq(tgc_dtype_name((tgc_dtype)-1), "?");
  cr_expect_eq(tgc_dtype_size(TGC_NUM_DTYPES), 0);
  cr_expect_eq(tgc_dtype_size((tgc_dtype)100), 0);
  cr_expect(!tgc_dtype_is_float(TGC_NUM_DTYPES));
  /* no failure yet on this thread: OK and "" */
  tgc_clear_error();
  cr_expect_eq(tgc_last_status(), TGC_OK);
  cr_expect_str_empty(tgc_last_error());
  cr_expect_null(tgc_reshape(f32(SHAPE(2, 2)), SHAPE(3)));
  cr_expect_neq(tgc_last_status(), TGC_OK);
  tgc_clear_error();
  cr_expect_eq(tgc_last_status(), TGC_OK);
  cr_expect_str_empty(tgc_last_error());
}

Test(errors, context_keeps_working_after_errors) {
  ref_t *a = ref_uniform(SHAPE(3, 4), -1, 1, 11), *b = ref_uniform(SHAPE(3, 4), -1, 1, 12);
  tgc_tensor *ta = ref_tensor(a, TGC_F32), *tb = ref_tensor(b, TGC_F32);
  /* a burst of failures of every kind */
  cr_expect_null(tgc_add(ta, f32(SHAPE(5))));
  cr_expect_null(tgc_reshape(ta, SHAPE(5, 5)));
  cr_expect_null(tgc_sum(ta, AXES(7), false));
  cr_expect_null(tgc_add(ta, i32(SHAPE(3, 4))));
  cr_expect_null(tgc_matmul(ta, tb));
  cr_expect_neq(tgc_to_host(ta, NULL, 0), TGC_OK);
  tgc_tensor *nul = NULL;
  cr_expect_neq(tgc_realize(tctx, 1, &nul), TGC_OK);
  /* then ordinary work on the same context, including the inputs used above */
  ref_t *want = ref_binary(REF_MUL, TGC_F32, ref_binary(REF_ADD, TGC_F32, a, b), a);
  ref_expect(tgc_mul(tgc_add(ta, tb), ta), want, TGC_F32, TOL_SIMPLE, "(a+b)*a after errors");
  ref_expect_tol(tgc_matmul(ta, tgc_transpose(tb, 0, 1)), ref_matmul(a, ref_transpose(b, 0, 1)), TGC_F32,
                 (ref_tol){1e-5, 1e-5}, "a @ b^T after errors");
  ref_verify();
}

/* ---- per-thread errors ------------------------------------------------------------ */

typedef struct thread_result {
  tgc_status before, after;
  char msg[256];
} thread_result;

static void *thread_main(void *arg) {
  thread_result *r = arg;
  r->before = tgc_last_status(); /* the main thread's failure is not visible here */
  tgc_ctx *ctx = tgc_ctx_new();
  if (ctx) {
    tgc_tensor *x = tgc_zeros(ctx, TGC_F32, SHAPE(2, 3));
    (void)tgc_permute(x, INTS(0, 0)); /* fails here, with ERR_ARG */
    r->after = tgc_last_status();
    snprintf(r->msg, sizeof r->msg, "%s", tgc_last_error());
    tgc_ctx_free(ctx);
  }
  return NULL;
}

Test(errors, last_error_is_per_thread) {
  tgc_clear_error();
  cr_expect_null(tgc_reshape(f32(SHAPE(2, 3)), SHAPE(7)));
  tgc_status mine = tgc_last_status();
  char saved[512];
  snprintf(saved, sizeof saved, "%s", tgc_last_error());
  thread_result r = {TGC_OK, TGC_OK, ""};
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, thread_main, &r), 0);
  pthread_join(th, NULL);
  cr_expect_eq(r.before, TGC_OK, "a new thread sees status %s", tgc_status_str(r.before));
  cr_expect_eq(r.after, TGC_ERR_ARG, "the thread's own failure: %s (%s)", tgc_status_str(r.after), r.msg);
  cr_expect_eq(tgc_last_status(), mine, "the main thread's status changed");
  cr_expect_str_eq(tgc_last_error(), saved, "the main thread's message changed");
}

/* ---- a missing compiler ----------------------------------------------------------- */

Test(errors, missing_compiler_is_named_in_the_error) {
  setenv("TGC_CC", "/nonexistent/tgc-no-such-cc", 1);
  setenv("TGC_CACHE", "0", 1); /* a cached binary would hide the compiler */
  tgc_ctx *ctx = tgc_ctx_new();
  if (!ctx) { /* failing at tgc_ctx_new is acceptable too, with a message */
    cr_expect(strstr(tgc_last_error(), "tgc-no-such-cc") != NULL, "message \"%s\"", tgc_last_error());
    return;
  }
  float a[5] = {1, 2, 3, 4, 5};
  tgc_tensor *x = tgc_from_data(ctx, TGC_F32, SHAPE(5), a);
  /* an expression no other test compiles */
  tgc_tensor *y = tgc_mul(tgc_add(x, tgc_scalar(ctx, TGC_F32, 1234.5)), tgc_scalar(ctx, TGC_F32, -0.125));
  FAILS_ST(tgc_realize(ctx, 1, &y), M(TGC_ERR_COMPILE), "tgc-no-such-cc");
  cr_expect(!tgc_is_realized(y), "a failed realize left the tensor realized");
  float out[5];
  FAILS_ST(tgc_to_host(y, out, sizeof out), M(TGC_ERR_COMPILE), "tgc-no-such-cc");
  tgc_ctx_free(ctx);
  unsetenv("TGC_CC");
  unsetenv("TGC_CACHE");
}
