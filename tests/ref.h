/* ref.h - the test suite's independent reference: host tensors of doubles
 * and plain-loop ops computed in f64.
 *
 * Every op test builds its inputs here (seeded, quantised to the dtype under
 * test), hands the same values to tgc, computes the expected result with the
 * loops below and compares with ref_expect/ref_verify.  Nothing here calls
 * tgc to compute a value: tgc is only used to move data in and out.
 *
 * Ownership: every ref_t and every buffer these functions return is freed
 * by ref_teardown(), the .fini of every suite; tests never free them.
 */
#ifndef TGC_TESTS_REF_H
#define TGC_TESTS_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tgc.h"

/* A host reference tensor: numel doubles in row-major order. */
typedef struct ref_t {
  int ndim;
  int64_t shape[TGC_MAX_DIMS];
  int64_t numel;
  double *v; /* [numel] */
} ref_t;

/* Argument helpers: SHAPE(3,4) expands to `2, (const int64_t[]){3,4}`,
 * the (ndim, shape) pair tgc and ref take; AXES(0,-1) likewise for axes. */
#define SHAPE(...) \
  (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}
#define AXES(...) (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), (const int[]){__VA_ARGS__}
#define I64S(...) ((const int64_t[]){__VA_ARGS__})
#define INTS(...) ((const int[]){__VA_ARGS__})
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- fixture: one context per test ------------------------------------ */

/* The context of the running test, made by ref_setup. */
extern tgc_ctx *tctx;
/* .init and .fini of every suite: a fresh context (and, if the runner did
 * not provide one, a private TGC_CACHE_DIR); teardown frees the context,
 * pending checks and every ref allocation. */
void ref_setup(void);
void ref_teardown(void);

/* ---- allocation and seeded random fills -------------------------------- */

ref_t *ref_new(int ndim, const int64_t *shape); /* zeros */
ref_t *ref_copy(const ref_t *x);
ref_t *ref_fill(int ndim, const int64_t *shape, double value);
/* Uniform in [lo, hi). */
ref_t *ref_uniform(int ndim, const int64_t *shape, double lo, double hi, uint64_t seed);
/* Uniform integers in [lo, hi] (inclusive). */
ref_t *ref_randint(int ndim, const int64_t *shape, int64_t lo, int64_t hi, uint64_t seed);
/* Standard normal (Box-Muller). */
ref_t *ref_normal(int ndim, const int64_t *shape, uint64_t seed);
/* Values given as a list (numel of them). */
ref_t *ref_of(int ndim, const int64_t *shape, const double *values);
/* A tracked malloc, freed at teardown. */
void *ref_alloc(size_t n);

/* splitmix64 */
uint64_t ref_rng_next(uint64_t *state);
double ref_rng_unit(uint64_t *state); /* [0, 1) with 53 bits */

/* ---- dtypes: host storage <-> double ----------------------------------- */

/* Hand-written conversions, round to nearest even; bf16 is the top half of
 * an f32 (double -> f32 by C conversion first). */
uint16_t ref_f16_from_double(double v);
double ref_f16_to_double(uint16_t h);
uint16_t ref_bf16_from_float(float f);
float ref_bf16_to_float(uint16_t h);

/* The value v becomes when stored as dt with C semantics: floats round to
 * nearest even, integers truncate toward zero and wrap modulo 2^bits,
 * bool is v != 0. */
double ref_quant(double v, tgc_dtype dt);
ref_t *ref_quantize(ref_t *x, tgc_dtype dt); /* in place; returns x */
void ref_store(tgc_dtype dt, void *buf, int64_t i, double v);
double ref_load(tgc_dtype dt, const void *buf, int64_t i);
/* Packed host buffer of x's values as dt (tracked allocation). */
void *ref_to_host(const ref_t *x, tgc_dtype dt);
ref_t *ref_from_host(tgc_dtype dt, int ndim, const int64_t *shape, const void *buf);
size_t ref_size(tgc_dtype dt); /* bytes per element */
int ref_bits(tgc_dtype dt);     /* 8 * size */
bool ref_is_signed(tgc_dtype dt);
bool ref_is_float(tgc_dtype dt);

/* x's values quantised in place to dt, as a tgc tensor of tctx
 * (tgc_from_data); asserts success. */
tgc_tensor *ref_tensor(ref_t *x, tgc_dtype dt);

/* ---- shapes ------------------------------------------------------------- */

/* numpy broadcast of two shapes into out; returns the ndim or -1. */
int ref_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int64_t *out);
/* "[2,3,4]" into buf. */
const char *ref_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap);

/* ---- elementwise ------------------------------------------------------- */

typedef enum ref_op {
  /* binary */
  REF_ADD, REF_SUB, REF_MUL, REF_DIV, REF_IDIV, REF_MOD, REF_POW, REF_MAX, REF_MIN,
  REF_AND, REF_OR, REF_XOR, REF_SHL, REF_SHR,
  REF_LT, REF_LE, REF_GT, REF_GE, REF_EQ, REF_NE,
  /* unary */
  REF_NEG, REF_EXP, REF_EXP2, REF_LOG, REF_LOG2, REF_SQRT, REF_RSQRT, REF_RECIP,
  REF_SIN, REF_COS, REF_TANH, REF_SIGMOID, REF_SILU, REF_RELU,
} ref_op;

/* One element of op on operands of dtype dt (comparisons give 0/1).
 * Integer and bool results are exact and wrapped to dt; float results are
 * the exact f64 value, not rounded to dt. */
double ref_scalar_op(ref_op op, tgc_dtype dt, double a, double b);
ref_t *ref_binary(ref_op op, tgc_dtype dt, const ref_t *a, const ref_t *b); /* broadcasts */
ref_t *ref_unary(ref_op op, tgc_dtype dt, const ref_t *x);
ref_t *ref_where(const ref_t *cond, const ref_t *a, const ref_t *b);       /* broadcasts */
/* Value conversion of x (holding values of any dtype) to dt. */
ref_t *ref_cast(const ref_t *x, tgc_dtype to);
/* Bit reinterpretation of x (values of `from`) as `to` (same size). */
ref_t *ref_bitcast(const ref_t *x, tgc_dtype from, tgc_dtype to);

/* ---- reductions -------------------------------------------------------- */

typedef enum ref_redop { REF_SUM, REF_RMAX, REF_MEAN } ref_redop;
/* naxes == 0 reduces everything; negative axes count from the end.
 * Integer results wrap in dt; the sum of bool counts the true values (as
 * an i32, see ref_reduce_dtype). */
ref_t *ref_reduce(ref_redop op, tgc_dtype dt, const ref_t *x, int naxes, const int *axes,
                  bool keepdim);
/* The dtype of a reduction's result: dt, except i32 for the sum of bool. */
tgc_dtype ref_reduce_dtype(ref_redop op, tgc_dtype dt);

/* ---- movement (as index math; results are contiguous copies) ------------ */

ref_t *ref_reshape(const ref_t *x, int ndim, const int64_t *shape); /* one -1 allowed */
ref_t *ref_permute(const ref_t *x, const int *perm);
ref_t *ref_transpose(const ref_t *x, int d0, int d1);
ref_t *ref_expand(const ref_t *x, int ndim, const int64_t *shape); /* -1 keeps */
ref_t *ref_pad(const ref_t *x, const int64_t *pads);
ref_t *ref_shrink(const ref_t *x, const int64_t *ranges);
ref_t *ref_slice(const ref_t *x, int axis, int64_t start, int64_t stop); /* python-style */
ref_t *ref_flip(const ref_t *x, int naxes, const int *axes);
ref_t *ref_squeeze(const ref_t *x, int axis);
ref_t *ref_unsqueeze(const ref_t *x, int axis);
ref_t *ref_cat(int n, const ref_t *const *xs, int axis);

/* ---- composites -------------------------------------------------------- */

ref_t *ref_matmul(const ref_t *a, const ref_t *b); /* numpy matmul semantics */
ref_t *ref_softmax(const ref_t *x, int axis);
ref_t *ref_log_softmax(const ref_t *x, int axis);
ref_t *ref_rmsnorm(const ref_t *x, double eps);
ref_t *ref_layernorm(const ref_t *x, double eps); /* biased variance, like torch */
ref_t *ref_rope(const ref_t *x, const ref_t *cos, const ref_t *sin);
void ref_rope_tables(int64_t start, int64_t n, int64_t dim, double theta, ref_t **cos,
                     ref_t **sin);
ref_t *ref_embedding(const ref_t *table, const ref_t *ids);

/* ---- comparing tgc against the reference --------------------------------
 * Ints and bool always compare exactly; floats pass when
 * |got - want| <= atol + rtol * |want| (NaN matches NaN, inf matches itself). */
typedef struct ref_tol {
  double rtol, atol;
} ref_tol;
typedef enum ref_tolkind {
  TOL_SIMPLE, /* one op rounded once to the dtype: add, mul, casts, movement */
  TOL_TRANS,  /* libm functions (a few ulp in f32) and composites whose
                 intermediates a half dtype may round several times */
  TOL_EXACT,  /* bit-exact, floats included (NaN matches NaN) */
} ref_tolkind;
ref_tol ref_tol_for(tgc_dtype dt, ref_tolkind kind);

/* Queues a check that t (dtype dt) equals want; label is printf-style.
 * A NULL t fails at once with tgc_last_error(). */
void ref_expect(tgc_tensor *t, const ref_t *want, tgc_dtype dt, ref_tolkind kind,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void ref_expect_tol(tgc_tensor *t, const ref_t *want, tgc_dtype dt, ref_tol tol,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Realizes every queued tensor with one tgc_realize (so their kernels
 * compile together), then compares each; every mismatch is a non-fatal
 * failure naming the label, the first differing index and both values. */
void ref_verify(void);
/* Compares one tensor now (realizing it through tgc_to_host); returns
 * whether it matched. */
bool ref_check_now(tgc_tensor *t, const ref_t *want, tgc_dtype dt, ref_tol tol,
                   const char *label);

#endif
