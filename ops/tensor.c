/* tensor.c - the public op constructors.
 *
 * Each constructor checks its arguments, reports misuse in words the caller
 * can act on, and then only records a node: nothing is computed here.
 * Broadcasting is expressed with RESHAPE and EXPAND nodes so the scheduler
 * sees every view explicitly.  Convenience ops (relu, sigmoid, rsqrt, the
 * comparisons with swapped operands) are built from the primitives of
 * ops.def rather than added to it.
 */
#include "tgc_internal.h"

#include <math.h>

/* ---- small helpers ----------------------------------------------------- */

static const char *shp(const tgc_uop *t, char *buf) {
  return tgc_shape_str_in(t->ctx, t->ndim, t->shape, buf, 160);
}

/* A symbolic size is at least lo for every binding of its variables. */
static bool sym_at_least(const char *fn, const char *what, const tgc_ctx *ctx, int64_t d, int64_t lo) {
  if (tgc_sym_min(ctx, d) >= lo) return true;
  char b[96];
  tgc_set_error(TGC_ERR_SHAPE, "%s: %s %s can be %lld for some binding; it must be >= %lld", fn, what,
                tgc_sym_str(ctx, d, b, sizeof b), (long long)tgc_sym_min(ctx, d), (long long)lo);
  return false;
}

static bool check_shape(const char *fn, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > TGC_MAX_DIMS) {
    tgc_set_error(TGC_ERR_SHAPE, "%s: %d dimensions; tgc supports 0 to %d", fn, ndim, TGC_MAX_DIMS);
    return false;
  }
  if (ndim && !shape) {
    tgc_set_error(TGC_ERR_ARG, "%s: shape is NULL", fn);
    return false;
  }
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (tgc_sym_is(shape[i])) {
      tgc_set_error(TGC_ERR_SHAPE, "%s: dimension %d is symbolic; a buffer has a concrete shape "
                    "(make it at the largest size and tgc_shrink it)", fn, i);
      return false;
    }
    if (shape[i] < 1) {
      tgc_set_error(TGC_ERR_SHAPE, "%s: dimension %d is %lld; dimensions must be >= 1", fn, i,
                    (long long)shape[i]);
      return false;
    }
    if (shape[i] > (INT64_C(1) << 40) / n) {
      tgc_set_error(TGC_ERR_SHAPE, "%s: shape has too many elements", fn);
      return false;
    }
    n *= shape[i];
  }
  return true;
}

static bool check_dtype(const char *fn, tgc_dtype dt) {
  if ((unsigned)dt >= TGC_NUM_DTYPES) {
    tgc_set_error(TGC_ERR_DTYPE, "%s: invalid dtype %d", fn, (int)dt);
    return false;
  }
  return true;
}

/* Normalises a possibly negative axis; -1 with an error if out of range. */
static int norm_axis(const char *fn, int axis, int ndim) {
  int a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) {
    tgc_set_error(TGC_ERR_ARG, "%s: axis %d out of range for %d dimensions", fn, axis, ndim);
    return -1;
  }
  return a;
}

/* Axes list -> bit mask; naxes == 0 means all.  Returns false on error. */
static bool axes_mask(const char *fn, int naxes, const int *axes, int ndim, uint32_t *mask) {
  *mask = 0;
  if (naxes < 0 || (naxes > 0 && !axes)) {
    tgc_set_error(TGC_ERR_ARG, "%s: bad axes list", fn);
    return false;
  }
  if (naxes == 0) {
    *mask = ndim ? (1u << ndim) - 1 : 0;
    return true;
  }
  for (int i = 0; i < naxes; i++) {
    int a = norm_axis(fn, axes[i], ndim);
    if (a < 0) return false;
    if (*mask & (1u << a)) {
      tgc_set_error(TGC_ERR_ARG, "%s: axis %d given twice", fn, axes[i]);
      return false;
    }
    *mask |= 1u << a;
  }
  return true;
}

static tgc_uop *move(tgc_uop *x, tgc_op op, const void *arg, size_t arglen, int ndim,
                     const int64_t *shape) {
  return tgc_uop_new(x->ctx, op, x->dtype, 1, &x, arg, arglen, ndim, shape);
}

/* ---- creation ------------------------------------------------------------ */

static void put_elem(void *dst, tgc_dtype dt, size_t i, double v);

tgc_tensor *tgc_empty(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape) {
  if (!ctx) return tgc_fail(TGC_ERR_ARG, "tgc_empty: ctx is NULL");
  if (!check_dtype("tgc_empty", dt) || !check_shape("tgc_empty", ndim, shape)) return NULL;
  tgc_buffer *b = tgc_buffer_new(ctx, dt, (size_t)tgc_shape_numel(ndim, shape));
  if (!b) return NULL;
  tgc_uop *u = tgc_uop_buffer(ctx, b, ndim, shape);
  tgc_buffer_unref(b);
  return u;
}

tgc_tensor *tgc_from_data(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape,
                          const void *data) {
  if (!ctx) return tgc_fail(TGC_ERR_ARG, "tgc_from_data: ctx is NULL");
  if (!data) return tgc_fail(TGC_ERR_ARG, "tgc_from_data: data is NULL");
  tgc_uop *u = tgc_empty(ctx, dt, ndim, shape);
  if (!u) return NULL;
  size_t bytes = (size_t)tgc_shape_numel(ndim, shape) * (size_t)tgc_dtypes[dt].bytes;
  if (ctx->dev->copy_in(ctx->dev, u->buf->ptr, data, bytes) != TGC_OK) return NULL;
  return u;
}

tgc_tensor *tgc_scalar(tgc_ctx *ctx, tgc_dtype dt, double value) {
  if (!ctx) return tgc_fail(TGC_ERR_ARG, "tgc_scalar: ctx is NULL");
  if (!check_dtype("tgc_scalar", dt)) return NULL;
  tgc_cval s = tgc_scalar_of(dt, value);
  return tgc_uop_new(ctx, TGC_OP_CONST, dt, 0, NULL, &s, sizeof s, 0, NULL);
}

tgc_tensor *tgc_full(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape, double value) {
  if (!ctx) return tgc_fail(TGC_ERR_ARG, "tgc_full: ctx is NULL");
  if (!check_dtype("tgc_full", dt)) return NULL;
  if (ndim < 0 || ndim > TGC_MAX_DIMS || (ndim && !shape)) return check_shape("tgc_full", ndim, shape), NULL;
  return tgc_expand(tgc_scalar(ctx, dt, value), ndim, shape); /* expand checks sizes, symbolic too */
}

tgc_tensor *tgc_zeros(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape) {
  return tgc_full(ctx, dt, ndim, shape, 0);
}

tgc_tensor *tgc_ones(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape) {
  return tgc_full(ctx, dt, ndim, shape, 1);
}

/* Fills a host array by fn(i) and uploads it. */
static tgc_tensor *from_fn(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape,
                           double (*fn)(void *, int64_t), void *st) {
  int64_t n = tgc_shape_numel(ndim, shape);
  void *host = malloc((size_t)n * (size_t)tgc_dtypes[dt].bytes + 1);
  if (!host) return tgc_fail(TGC_ERR_NOMEM, "out of host memory");
  for (int64_t i = 0; i < n; i++) put_elem(host, dt, (size_t)i, fn(st, i));
  tgc_tensor *t = tgc_from_data(ctx, dt, ndim, shape, host);
  free(host);
  return t;
}

typedef struct {
  double start, step;
} arange_st;
static double arange_fn(void *p, int64_t i) {
  arange_st *a = p;
  return a->start + a->step * (double)i;
}

tgc_tensor *tgc_arange(tgc_ctx *ctx, tgc_dtype dt, double start, double stop, double step) {
  if (!ctx) return tgc_fail(TGC_ERR_ARG, "tgc_arange: ctx is NULL");
  if (!check_dtype("tgc_arange", dt)) return NULL;
  if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step))
    return tgc_fail(TGC_ERR_ARG, "tgc_arange: need finite start and stop and a non-zero step");
  double cnt = ceil((stop - start) / step);
  if (cnt < 1) return tgc_fail(TGC_ERR_SHAPE, "tgc_arange: the range [%g, %g) by %g is empty", start, stop, step);
  int64_t n = (int64_t)cnt;
  arange_st a = {start, step};
  return from_fn(ctx, dt, 1, &n, arange_fn, &a);
}

typedef struct rand_st {
  uint64_t state;
  double below; /* the largest uniform value that stays < 1 in the dtype */
} rand_st;

static double uniform_fn(void *p, int64_t i) {
  (void)i;
  rand_st *r = p;
  double u = (double)(tgc_splitmix64(&r->state) >> 11) * 0x1.0p-53;
  return u < r->below ? u : r->below; /* rounding to f16/bf16 must not reach 1 */
}
static double normal_fn(void *p, int64_t i) {
  (void)i;
  rand_st *r = p;
  double u1 = ((double)(tgc_splitmix64(&r->state) >> 11) + 0.5) * 0x1.0p-53;
  double u2 = (double)(tgc_splitmix64(&r->state) >> 11) * 0x1.0p-53;
  return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static tgc_tensor *random_tensor(const char *fn, tgc_ctx *ctx, tgc_dtype dt, int ndim,
                                 const int64_t *shape, uint64_t seed, bool normal) {
  if (!ctx) return tgc_fail(TGC_ERR_ARG, "%s: ctx is NULL", fn);
  if (!check_dtype(fn, dt) || !check_shape(fn, ndim, shape)) return NULL;
  if (!tgc_dtypes[dt].is_float)
    return tgc_fail(TGC_ERR_DTYPE, "%s: needs a float dtype, not %s", fn, tgc_dtypes[dt].name);
  rand_st st = {seed, dt == TGC_F16 ? 1 - 0x1p-11 : dt == TGC_BF16 ? 1 - 0x1p-8 : 1};
  return from_fn(ctx, dt, ndim, shape, normal ? normal_fn : uniform_fn, &st);
}

tgc_tensor *tgc_rand(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape, uint64_t seed) {
  return random_tensor("tgc_rand", ctx, dt, ndim, shape, seed, false);
}

tgc_tensor *tgc_randn(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape, uint64_t seed) {
  return random_tensor("tgc_randn", ctx, dt, ndim, shape, seed, true);
}

/* Host-side conversions for the creation functions. */


static void put_elem(void *dst, tgc_dtype dt, size_t i, double v) {
  char *p = (char *)dst + i * (size_t)tgc_dtypes[dt].bytes;
  int64_t iv = tgc_scalar_of(dt, v).i;
  switch (dt) {
  case TGC_BOOL: *(uint8_t *)p = v != 0; break;
  case TGC_I8: case TGC_U8: { uint8_t b = (uint8_t)iv; memcpy(p, &b, 1); break; }
  case TGC_I16: case TGC_U16: { uint16_t b = (uint16_t)iv; memcpy(p, &b, 2); break; }
  case TGC_I32: case TGC_U32: { uint32_t b = (uint32_t)iv; memcpy(p, &b, 4); break; }
  case TGC_I64: memcpy(p, &iv, 8); break;
  case TGC_F16: { uint16_t b = tgc_f32_to_f16((float)v); memcpy(p, &b, 2); break; }
  case TGC_BF16: { uint16_t b = tgc_f32_to_bf16((float)v); memcpy(p, &b, 2); break; }
  case TGC_F32: { float f = (float)v; memcpy(p, &f, 4); break; }
  case TGC_F64: memcpy(p, &v, 8); break;
  default: TGC_ASSERT(0);
  }
}

/* ---- tensor facts -------------------------------------------------------- */

int tgc_ndim(const tgc_tensor *t) { return t ? t->ndim : -1; }
const int64_t *tgc_shape(const tgc_tensor *t) { return t ? t->shape : NULL; }
int64_t tgc_numel(const tgc_tensor *t) {
  if (!t) return -1;
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) {
    int64_t d = tgc_dim_value(t->ctx, t->shape[i]);
    if (d < 0) return -1;
    n *= d;
  }
  return n;
}
tgc_dtype tgc_dtype_of(const tgc_tensor *t) { return t ? (tgc_dtype)t->dtype : TGC_NUM_DTYPES; }
tgc_ctx *tgc_ctx_of(const tgc_tensor *t) { return t ? t->ctx : NULL; }
bool tgc_is_realized(const tgc_tensor *t) { return t && tgc_uop_current(t); }

/* ---- broadcasting and elementwise ---------------------------------------- */

/* Expands x to shape (ndim >= x->ndim), adding leading axes. */
static tgc_uop *broadcast_to(tgc_uop *x, int ndim, const int64_t *shape) {
  if (x->ndim == ndim && !memcmp(x->shape, shape, sizeof *shape * (size_t)ndim)) return x;
  return tgc_expand(x, ndim, shape);
}

/* Broadcasts n operands together by numpy's rules; false with an error if
 * they do not fit. */
static bool broadcast(const char *fn, int n, tgc_uop **xs) {
  int ndim = 0;
  for (int i = 0; i < n; i++) ndim = xs[i]->ndim > ndim ? xs[i]->ndim : ndim;
  int64_t shape[TGC_MAX_DIMS];
  for (int d = 0; d < ndim; d++) {
    shape[d] = 1;
    for (int i = 0; i < n; i++) {
      int k = d - (ndim - xs[i]->ndim);
      int64_t s = k < 0 ? 1 : xs[i]->shape[k];
      if (s != 1 && shape[d] != 1 && s != shape[d]) {
        char a[160], b[160];
        tgc_set_error(TGC_ERR_SHAPE, "%s: shapes %s and %s cannot be broadcast together", fn,
                      shp(xs[0], a), shp(xs[i], b));
        return false;
      }
      if (s != 1) shape[d] = s;
    }
  }
  for (int i = 0; i < n; i++) xs[i] = broadcast_to(xs[i], ndim, shape);
  return true;
}

enum { K_ANY = 0, K_FLOAT = 1, K_INT = 2, K_INTBOOL = 3 };

static bool dtype_ok(const char *fn, tgc_dtype dt, int kind) {
  bool isf = tgc_dtypes[dt].is_float;
  const char *need = NULL;
  if (kind == K_FLOAT && !isf) need = "a float dtype";
  if (kind == K_INT && (isf || dt == TGC_BOOL)) need = "an integer dtype";
  if (kind == K_INTBOOL && isf) need = "an integer or bool dtype";
  if (need) tgc_set_error(TGC_ERR_DTYPE, "%s: needs %s, got %s", fn, need, tgc_dtypes[dt].name);
  return need == NULL;
}

static tgc_uop *binary(const char *fn, tgc_op op, int kind, tgc_uop *a, tgc_uop *b) {
  if (!a || !b) return NULL;
  if (a->ctx != b->ctx) return tgc_fail(TGC_ERR_ARG, "%s: operands belong to different contexts", fn);
  if (a->dtype != b->dtype)
    return tgc_fail(TGC_ERR_DTYPE, "%s: dtypes differ: %s and %s (cast one first)", fn,
                    tgc_dtypes[a->dtype].name, tgc_dtypes[b->dtype].name);
  if (!dtype_ok(fn, a->dtype, kind)) return NULL;
  tgc_uop *xs[2] = {a, b};
  if (!broadcast(fn, 2, xs)) return NULL;
  bool cmp = op == TGC_OP_CMPLT || op == TGC_OP_CMPLE || op == TGC_OP_CMPEQ || op == TGC_OP_CMPNE;
  return tgc_uop_new(a->ctx, op, cmp ? TGC_BOOL : a->dtype, 2, xs, NULL, 0, xs[0]->ndim,
                     xs[0]->shape);
}

static tgc_uop *unary(const char *fn, tgc_op op, int kind, tgc_uop *x) {
  if (!x) return NULL;
  if (!dtype_ok(fn, x->dtype, kind)) return NULL;
  return tgc_uop_new(x->ctx, op, x->dtype, 1, &x, NULL, 0, x->ndim, x->shape);
}

static tgc_uop *const_like(tgc_uop *x, double v) {
  return tgc_expand(tgc_scalar(x->ctx, x->dtype, v), x->ndim, x->shape);
}

tgc_tensor *tgc_add(tgc_tensor *a, tgc_tensor *b) { return binary("add", TGC_OP_ADD, K_ANY, a, b); }
tgc_tensor *tgc_sub(tgc_tensor *a, tgc_tensor *b) { return binary("sub", TGC_OP_SUB, K_ANY, a, b); }
tgc_tensor *tgc_mul(tgc_tensor *a, tgc_tensor *b) { return binary("mul", TGC_OP_MUL, K_ANY, a, b); }
tgc_tensor *tgc_div(tgc_tensor *a, tgc_tensor *b) {
  if (!a || !b) return NULL;
  bool isf = tgc_dtypes[a->dtype].is_float;
  return binary("div", isf ? TGC_OP_FDIV : TGC_OP_IDIV, isf ? K_FLOAT : K_INT, a, b);
}
tgc_tensor *tgc_idiv(tgc_tensor *a, tgc_tensor *b) { return binary("idiv", TGC_OP_IDIV, K_INT, a, b); }
tgc_tensor *tgc_mod(tgc_tensor *a, tgc_tensor *b) { return binary("mod", TGC_OP_MOD, K_INT, a, b); }
tgc_tensor *tgc_pow(tgc_tensor *a, tgc_tensor *b) { return binary("pow", TGC_OP_POW, K_FLOAT, a, b); }
tgc_tensor *tgc_maximum(tgc_tensor *a, tgc_tensor *b) { return binary("maximum", TGC_OP_MAX, K_ANY, a, b); }
tgc_tensor *tgc_minimum(tgc_tensor *a, tgc_tensor *b) { return binary("minimum", TGC_OP_MIN, K_ANY, a, b); }
tgc_tensor *tgc_and(tgc_tensor *a, tgc_tensor *b) { return binary("and", TGC_OP_AND, K_INTBOOL, a, b); }
tgc_tensor *tgc_or(tgc_tensor *a, tgc_tensor *b) { return binary("or", TGC_OP_OR, K_INTBOOL, a, b); }
tgc_tensor *tgc_xor(tgc_tensor *a, tgc_tensor *b) { return binary("xor", TGC_OP_XOR, K_INTBOOL, a, b); }
tgc_tensor *tgc_shl(tgc_tensor *a, tgc_tensor *b) { return binary("shl", TGC_OP_SHL, K_INT, a, b); }
tgc_tensor *tgc_shr(tgc_tensor *a, tgc_tensor *b) { return binary("shr", TGC_OP_SHR, K_INT, a, b); }
tgc_tensor *tgc_lt(tgc_tensor *a, tgc_tensor *b) { return binary("lt", TGC_OP_CMPLT, K_ANY, a, b); }
tgc_tensor *tgc_le(tgc_tensor *a, tgc_tensor *b) { return binary("le", TGC_OP_CMPLE, K_ANY, a, b); }
tgc_tensor *tgc_gt(tgc_tensor *a, tgc_tensor *b) { return binary("gt", TGC_OP_CMPLT, K_ANY, b, a); }
tgc_tensor *tgc_ge(tgc_tensor *a, tgc_tensor *b) { return binary("ge", TGC_OP_CMPLE, K_ANY, b, a); }
tgc_tensor *tgc_eq(tgc_tensor *a, tgc_tensor *b) { return binary("eq", TGC_OP_CMPEQ, K_ANY, a, b); }
tgc_tensor *tgc_ne(tgc_tensor *a, tgc_tensor *b) { return binary("ne", TGC_OP_CMPNE, K_ANY, a, b); }

tgc_tensor *tgc_where(tgc_tensor *cond, tgc_tensor *a, tgc_tensor *b) {
  if (!cond || !a || !b) return NULL;
  if (cond->ctx != a->ctx || a->ctx != b->ctx)
    return tgc_fail(TGC_ERR_ARG, "where: operands belong to different contexts");
  if (cond->dtype != TGC_BOOL)
    return tgc_fail(TGC_ERR_DTYPE, "where: the condition must be bool, not %s", tgc_dtypes[cond->dtype].name);
  if (a->dtype != b->dtype)
    return tgc_fail(TGC_ERR_DTYPE, "where: dtypes differ: %s and %s", tgc_dtypes[a->dtype].name,
                    tgc_dtypes[b->dtype].name);
  tgc_uop *xs[3] = {cond, a, b};
  if (!broadcast("where", 3, xs)) return NULL;
  return tgc_uop_new(a->ctx, TGC_OP_WHERE, a->dtype, 3, xs, NULL, 0, xs[0]->ndim, xs[0]->shape);
}

tgc_tensor *tgc_neg(tgc_tensor *x) {
  if (x && x->dtype == TGC_BOOL) return tgc_fail(TGC_ERR_DTYPE, "neg: not defined for bool");
  return unary("neg", TGC_OP_NEG, K_ANY, x);
}
tgc_tensor *tgc_exp(tgc_tensor *x) { return unary("exp", TGC_OP_EXP, K_FLOAT, x); }
tgc_tensor *tgc_exp2(tgc_tensor *x) { return unary("exp2", TGC_OP_EXP2, K_FLOAT, x); }
tgc_tensor *tgc_log(tgc_tensor *x) { return unary("log", TGC_OP_LOG, K_FLOAT, x); }
tgc_tensor *tgc_log2(tgc_tensor *x) { return unary("log2", TGC_OP_LOG2, K_FLOAT, x); }
tgc_tensor *tgc_sqrt(tgc_tensor *x) { return unary("sqrt", TGC_OP_SQRT, K_FLOAT, x); }
tgc_tensor *tgc_reciprocal(tgc_tensor *x) { return unary("reciprocal", TGC_OP_RECIP, K_FLOAT, x); }
tgc_tensor *tgc_rsqrt(tgc_tensor *x) {
  if (!x) return NULL;
  tgc_uop *r = tgc_reciprocal(tgc_sqrt(x));
  return r ? r : tgc_fail_in("rsqrt");
}
tgc_tensor *tgc_sin(tgc_tensor *x) { return unary("sin", TGC_OP_SIN, K_FLOAT, x); }
tgc_tensor *tgc_cos(tgc_tensor *x) { return unary("cos", TGC_OP_COS, K_FLOAT, x); }
tgc_tensor *tgc_tanh(tgc_tensor *x) { return unary("tanh", TGC_OP_TANH, K_FLOAT, x); }

tgc_tensor *tgc_sigmoid(tgc_tensor *x) {
  if (!x || !dtype_ok("sigmoid", x->dtype, K_FLOAT)) return NULL;
  /* 1 / (1 + exp(-x)) */
  return tgc_reciprocal(tgc_add(const_like(x, 1), tgc_exp(tgc_neg(x))));
}

tgc_tensor *tgc_silu(tgc_tensor *x) {
  if (!x) return NULL;
  tgc_uop *r = tgc_mul(x, tgc_sigmoid(x));
  return r ? r : tgc_fail_in("silu");
}

tgc_tensor *tgc_relu(tgc_tensor *x) {
  if (x && x->dtype == TGC_BOOL) return tgc_fail(TGC_ERR_DTYPE, "relu: not defined for bool");
  return x ? tgc_maximum(x, const_like(x, 0)) : NULL;
}

tgc_tensor *tgc_cast(tgc_tensor *x, tgc_dtype dt) {
  if (!x || !check_dtype("cast", dt)) return NULL;
  if (x->dtype == dt) return x;
  return tgc_uop_new(x->ctx, TGC_OP_CAST, dt, 1, &x, NULL, 0, x->ndim, x->shape);
}

tgc_tensor *tgc_bitcast(tgc_tensor *x, tgc_dtype dt) {
  if (!x || !check_dtype("bitcast", dt)) return NULL;
  if (tgc_dtypes[dt].bytes != tgc_dtypes[x->dtype].bytes || dt == TGC_BOOL || x->dtype == TGC_BOOL)
    return tgc_fail(TGC_ERR_DTYPE, "bitcast: %s and %s differ in size (or one is bool)",
                    tgc_dtypes[x->dtype].name, tgc_dtypes[dt].name);
  if (x->dtype == dt) return x;
  return tgc_uop_new(x->ctx, TGC_OP_BITCAST, dt, 1, &x, NULL, 0, x->ndim, x->shape);
}

/* ---- reductions ---------------------------------------------------------- */

static tgc_uop *reduce(const char *fn, tgc_op op, tgc_uop *x, int naxes, const int *axes,
                       bool keepdim) {
  if (!x) return NULL;
  uint32_t mask;
  if (!axes_mask(fn, naxes, axes, x->ndim, &mask)) return NULL;
  if (op == TGC_OP_REDUCE_SUM && x->dtype == TGC_BOOL) x = tgc_cast(x, TGC_I32);
  int64_t kshape[TGC_MAX_DIMS], oshape[TGC_MAX_DIMS];
  int on = 0;
  for (int i = 0; i < x->ndim; i++) {
    kshape[i] = (mask >> i) & 1 ? 1 : x->shape[i];
    if (!((mask >> i) & 1)) oshape[on++] = x->shape[i];
  }
  tgc_uop *r = x;
  bool trivial = true;
  for (int i = 0; i < x->ndim; i++) trivial &= !((mask >> i) & 1) || x->shape[i] == 1;
  if (!trivial)
    r = tgc_uop_new(x->ctx, op, x->dtype, 1, &x, &mask, sizeof mask, x->ndim, kshape);
  return keepdim ? r : tgc_reshape(r, on, oshape);
}

tgc_tensor *tgc_sum(tgc_tensor *x, int naxes, const int *axes, bool keepdim) {
  return reduce("sum", TGC_OP_REDUCE_SUM, x, naxes, axes, keepdim);
}

tgc_tensor *tgc_max(tgc_tensor *x, int naxes, const int *axes, bool keepdim) {
  return reduce("max", TGC_OP_REDUCE_MAX, x, naxes, axes, keepdim);
}

tgc_tensor *tgc_mean(tgc_tensor *x, int naxes, const int *axes, bool keepdim) {
  if (!x || !dtype_ok("mean", x->dtype, K_FLOAT)) return NULL;
  uint32_t mask;
  if (!axes_mask("mean", naxes, axes, x->ndim, &mask)) return NULL;
  int64_t count = 1; /* elements per mean: symbolic when a reduced axis is */
  for (int i = 0; i < x->ndim; i++) {
    if (!((mask >> i) & 1)) continue;
    if (!tgc_sym_is(x->shape[i])) {
      if (!tgc_sym_mulc(count, x->shape[i], &count)) count = -1;
    } else if (!tgc_sym_is(count)) {
      if (!tgc_sym_mulc(x->shape[i], count, &count)) count = -1;
    } else {
      count = -1;
    }
    if (count == -1) return tgc_fail(TGC_ERR_UNSUPPORTED, "mean: over two symbolic axes (a product of variables)");
  }
  tgc_uop *s = tgc_sum(x, naxes, axes, keepdim);
  if (!s) return tgc_fail_in("mean");
  if (tgc_sym_is(count)) return tgc_div(s, tgc_dim_tensor(x->ctx, count, (tgc_dtype)x->dtype));
  return tgc_mul(s, const_like(s, 1.0 / (double)count));
}

/* ---- movement ------------------------------------------------------------ */

/* Reshape with symbolic sizes: each must stay an axis of its own, in the
 * same order, and the concrete sizes must have the same product. */
static bool same_symbols(const tgc_uop *x, int ndim, const int64_t *s) {
  int i = 0, j = 0;
  for (;;) {
    while (i < x->ndim && !tgc_sym_is(x->shape[i])) i++;
    while (j < ndim && !tgc_sym_is(s[j])) j++;
    if (i == x->ndim || j == ndim) return i == x->ndim && j == ndim;
    if (x->shape[i++] != s[j++]) return false;
  }
}

static int64_t concrete_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++)
    if (!tgc_sym_is(shape[i])) n *= shape[i];
  return n;
}

tgc_tensor *tgc_reshape(tgc_tensor *x, int ndim, const int64_t *shape) {
  if (!x) return NULL;
  if (ndim && !shape) return tgc_fail(TGC_ERR_ARG, "reshape: shape is NULL");
  if (ndim < 0 || ndim > TGC_MAX_DIMS)
    return tgc_fail(TGC_ERR_SHAPE, "reshape: %d dimensions; tgc supports 0 to %d", ndim, TGC_MAX_DIMS);
  int64_t s[TGC_MAX_DIMS], known = 1;
  int infer = -1;
  for (int i = 0; i < ndim; i++) {
    s[i] = shape[i];
    if (tgc_sym_is(s[i])) continue;
    if (s[i] == -1 && infer < 0) {
      infer = i;
    } else if (s[i] < 1) {
      return tgc_fail(TGC_ERR_SHAPE, "reshape: dimension %d is %lld (one -1 is allowed, others must be >= 1)",
                      i, (long long)s[i]);
    } else {
      known *= s[i];
    }
  }
  char a[160], b[160];
  if (!same_symbols(x, ndim, s))
    return tgc_fail(TGC_ERR_SHAPE, "reshape: %s to %s: symbolic sizes must stay whole axes, in order",
                    shp(x, a), tgc_shape_str_in(x->ctx, ndim, s, b, sizeof b));
  int64_t n = concrete_numel(x->ndim, x->shape);
  if (infer >= 0) {
    if (n % known) return tgc_fail(TGC_ERR_SHAPE, "reshape: cannot infer -1 for %lld elements", (long long)n);
    s[infer] = n / known;
    known = n;
  }
  if (known != n)
    return tgc_fail(TGC_ERR_SHAPE, "reshape: %s has %lld elements, %s has %lld", shp(x, a),
                    (long long)n, tgc_shape_str_in(x->ctx, ndim, s, b, sizeof b), (long long)known);
  if (ndim == x->ndim && !memcmp(s, x->shape, sizeof *s * (size_t)ndim)) return x;
  if (x->op == TGC_OP_RESHAPE && !x->buf) x = x->src[0]; /* reshape of a reshape */
  if (ndim == x->ndim && !memcmp(s, x->shape, sizeof *s * (size_t)ndim)) return x;
  return move(x, TGC_OP_RESHAPE, NULL, 0, ndim, s);
}

tgc_tensor *tgc_permute(tgc_tensor *x, const int *perm) {
  if (!x) return NULL;
  if (x->ndim && !perm) return tgc_fail(TGC_ERR_ARG, "permute: perm is NULL");
  int64_t s[TGC_MAX_DIMS];
  uint32_t seen = 0;
  bool identity = true;
  for (int i = 0; i < x->ndim; i++) {
    if (perm[i] < 0 || perm[i] >= x->ndim || (seen >> perm[i]) & 1)
      return tgc_fail(TGC_ERR_ARG, "permute: the order is not a permutation of 0..%d", x->ndim - 1);
    seen |= 1u << perm[i];
    s[i] = x->shape[perm[i]];
    identity &= perm[i] == i;
  }
  if (identity) return x;
  return move(x, TGC_OP_PERMUTE, perm, sizeof *perm * (size_t)x->ndim, x->ndim, s);
}

tgc_tensor *tgc_transpose(tgc_tensor *x, int d0, int d1) {
  if (!x) return NULL;
  int a = norm_axis("transpose", d0, x->ndim), b = a < 0 ? -1 : norm_axis("transpose", d1, x->ndim);
  if (a < 0 || b < 0) return NULL;
  int perm[TGC_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) perm[i] = i;
  perm[a] = b;
  perm[b] = a;
  return tgc_permute(x, perm);
}

tgc_tensor *tgc_expand(tgc_tensor *x, int ndim, const int64_t *shape) {
  if (!x) return NULL;
  if (ndim && !shape) return tgc_fail(TGC_ERR_ARG, "expand: shape is NULL");
  if (ndim < x->ndim || ndim > TGC_MAX_DIMS)
    return tgc_fail(TGC_ERR_SHAPE, "expand: cannot expand %d dimensions to %d", x->ndim, ndim);
  int64_t from[TGC_MAX_DIMS], to[TGC_MAX_DIMS];
  int lead = ndim - x->ndim;
  for (int i = 0; i < ndim; i++) {
    from[i] = i < lead ? 1 : x->shape[i - lead];
    to[i] = shape[i] == -1 ? from[i] : shape[i];
    if (tgc_sym_is(to[i]) && !sym_at_least("expand", "size", x->ctx, to[i], 1)) return NULL;
    if ((!tgc_sym_is(to[i]) && to[i] < 1) || (from[i] != 1 && from[i] != to[i])) {
      char a[160], b[160];
      return tgc_fail(TGC_ERR_SHAPE, "expand: cannot expand %s to %s (only size-1 axes grow)",
                      shp(x, a), tgc_shape_str(ndim, shape, b, sizeof b));
    }
  }
  x = tgc_reshape(x, ndim, from);
  if (!memcmp(from, to, sizeof *to * (size_t)ndim)) return x;
  return move(x, TGC_OP_EXPAND, NULL, 0, ndim, to);
}

tgc_tensor *tgc_pad(tgc_tensor *x, const int64_t *pads) {
  if (!x) return NULL;
  if (x->ndim && !pads) return tgc_fail(TGC_ERR_ARG, "pad: pads is NULL");
  int64_t s[TGC_MAX_DIMS];
  bool zero = true;
  for (int i = 0; i < x->ndim; i++) {
    int64_t b = pads[2 * i], a = pads[2 * i + 1];
    if (tgc_sym_min(x->ctx, b) < 0 || tgc_sym_min(x->ctx, a) < 0 ||
        tgc_sym_max(x->ctx, b) + tgc_sym_max(x->ctx, a) > (INT64_C(1) << 40))
      return tgc_fail(TGC_ERR_ARG, "pad: pads must be >= 0 (axis %d has %lld, %lld); use shrink to cut",
                      i, (long long)tgc_sym_min(x->ctx, b), (long long)tgc_sym_min(x->ctx, a));
    if (!tgc_sym_add(x->shape[i], b, &s[i]) || !tgc_sym_add(s[i], a, &s[i]))
      return tgc_fail(TGC_ERR_UNSUPPORTED, "pad: the padded size of axis %d cannot be represented", i);
    zero &= !b && !a;
  }
  if (zero) return x;
  return move(x, TGC_OP_PAD, pads, sizeof *pads * 2 * (size_t)x->ndim, x->ndim, s);
}

tgc_tensor *tgc_shrink(tgc_tensor *x, const int64_t *ranges) {
  if (!x) return NULL;
  if (x->ndim && !ranges) return tgc_fail(TGC_ERR_ARG, "shrink: ranges is NULL");
  int64_t s[TGC_MAX_DIMS];
  bool whole = true;
  for (int i = 0; i < x->ndim; i++) {
    int64_t b = ranges[2 * i], e = ranges[2 * i + 1], over;
    bool ok = tgc_sym_sub(e, b, &s[i]) && tgc_sym_sub(e, x->shape[i], &over) && tgc_sym_min(x->ctx, b) >= 0 &&
              tgc_sym_max(x->ctx, over) <= 0 && tgc_sym_min(x->ctx, s[i]) >= 1;
    if (!ok) {
      char bs[64], es[64], ns[64];
      return tgc_fail(TGC_ERR_ARG, "shrink: range [%s, %s) of axis %d is empty or outside [0, %s) for some binding",
                      tgc_sym_str(x->ctx, b, bs, sizeof bs), tgc_sym_str(x->ctx, e, es, sizeof es), i,
                      tgc_sym_str(x->ctx, x->shape[i], ns, sizeof ns));
    }
    whole &= b == 0 && e == x->shape[i];
  }
  if (whole) return x;
  return move(x, TGC_OP_SHRINK, ranges, sizeof *ranges * 2 * (size_t)x->ndim, x->ndim, s);
}

tgc_tensor *tgc_slice(tgc_tensor *x, int axis, int64_t start, int64_t stop) {
  if (!x) return NULL;
  int a = norm_axis("slice", axis, x->ndim);
  if (a < 0) return NULL;
  int64_t n = x->shape[a], r[2 * TGC_MAX_DIMS];
  if (tgc_sym_is(n))
    return tgc_fail(TGC_ERR_ARG, "slice: axis %d has a symbolic size; use tgc_shrink with explicit bounds", axis);
  if (start < 0) start += n;
  if (stop < 0) stop += n;
  start = start < 0 ? 0 : start > n ? n : start;
  stop = stop < 0 ? 0 : stop > n ? n : stop;
  for (int i = 0; i < x->ndim; i++) {
    r[2 * i] = 0;
    r[2 * i + 1] = x->shape[i];
  }
  if (start >= stop)
    return tgc_fail(TGC_ERR_ARG, "slice: [%lld, %lld) of axis %d (size %lld) is empty", (long long)start,
                    (long long)stop, axis, (long long)n);
  r[2 * a] = start;
  r[2 * a + 1] = stop;
  return tgc_shrink(x, r);
}

tgc_tensor *tgc_flip(tgc_tensor *x, int naxes, const int *axes) {
  if (!x) return NULL;
  uint32_t mask;
  if (!axes_mask("flip", naxes, axes, x->ndim, &mask)) return NULL;
  for (int i = 0; i < x->ndim; i++)
    if (x->shape[i] == 1) mask &= ~(1u << i);
  if (!mask) return x;
  return move(x, TGC_OP_FLIP, &mask, sizeof mask, x->ndim, x->shape);
}

tgc_tensor *tgc_squeeze(tgc_tensor *x, int axis) {
  if (!x) return NULL;
  int a = norm_axis("squeeze", axis, x->ndim);
  if (a < 0) return NULL;
  if (x->shape[a] != 1)
    return tgc_fail(TGC_ERR_SHAPE, "squeeze: axis %d has size %lld, not 1", axis, (long long)x->shape[a]);
  int64_t s[TGC_MAX_DIMS];
  for (int i = 0, j = 0; i < x->ndim; i++)
    if (i != a) s[j++] = x->shape[i];
  return tgc_reshape(x, x->ndim - 1, s);
}

tgc_tensor *tgc_unsqueeze(tgc_tensor *x, int axis) {
  if (!x) return NULL;
  int a = norm_axis("unsqueeze", axis, x->ndim + 1);
  if (a < 0) return NULL;
  if (x->ndim == TGC_MAX_DIMS) return tgc_fail(TGC_ERR_SHAPE, "unsqueeze: already %d dimensions", TGC_MAX_DIMS);
  int64_t s[TGC_MAX_DIMS];
  for (int i = 0, j = 0; i <= x->ndim; i++) s[i] = i == a ? 1 : x->shape[j++];
  return tgc_reshape(x, x->ndim + 1, s);
}

/* cat pads each piece to the output's extent along the axis and adds them:
 * one fused kernel writes the output. */
tgc_tensor *tgc_cat(int n, tgc_tensor *const *xs, int axis) {
  if (n < 1 || !xs) return tgc_fail(TGC_ERR_ARG, "cat: needs at least one tensor");
  for (int i = 0; i < n; i++)
    if (!xs[i]) return NULL;
  tgc_uop *x0 = xs[0];
  int a = norm_axis("cat", axis, x0->ndim);
  if (a < 0) return NULL;
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    tgc_uop *x = xs[i];
    if (x->ctx != x0->ctx) return tgc_fail(TGC_ERR_ARG, "cat: tensors belong to different contexts");
    if (x->dtype != x0->dtype)
      return tgc_fail(TGC_ERR_DTYPE, "cat: dtypes differ: %s and %s", tgc_dtypes[x0->dtype].name,
                      tgc_dtypes[x->dtype].name);
    bool ok = x->ndim == x0->ndim;
    for (int d = 0; ok && d < x0->ndim; d++) ok = d == a || x->shape[d] == x0->shape[d];
    if (!ok) {
      char s0[160], s1[160];
      return tgc_fail(TGC_ERR_SHAPE, "cat: %s and %s differ outside axis %d", shp(x0, s0), shp(x, s1), axis);
    }
    if (!tgc_sym_add(total, x->shape[a], &total))
      return tgc_fail(TGC_ERR_UNSUPPORTED, "cat: the total size of axis %d cannot be represented", axis);
  }
  if (n == 1) return x0;
  tgc_uop *out = NULL;
  int64_t at = 0, pads[2 * TGC_MAX_DIMS] = {0};
  for (int i = 0; i < n; i++) { /* sums of sizes already representable: these are too */
    pads[2 * a] = at;
    tgc_sym_sub(total, at, &pads[2 * a + 1]);
    tgc_sym_sub(pads[2 * a + 1], xs[i]->shape[a], &pads[2 * a + 1]);
    tgc_sym_add(at, xs[i]->shape[a], &at);
    tgc_uop *p = tgc_pad(xs[i], pads);
    out = out ? (x0->dtype == TGC_BOOL ? tgc_or(out, p) : tgc_add(out, p)) : p;
  }
  return out;
}

/* ---- variables ------------------------------------------------------------ */

tgc_var *tgc_var_new(tgc_ctx *ctx, const char *name, int64_t min, int64_t max) {
  if (!ctx || !name || !*name || strlen(name) >= sizeof ((tgc_var *)0)->name)
    return tgc_fail(TGC_ERR_ARG, "tgc_var_new: need a context and a name of 1 to 31 characters");
  if (min > max) return tgc_fail(TGC_ERR_ARG, "tgc_var_new: %s: min %lld > max %lld", name, (long long)min, (long long)max);
  if (ctx->nvars == TGC_MAX_VARS) return tgc_fail(TGC_ERR_UNSUPPORTED, "tgc_var_new: at most %d variables", TGC_MAX_VARS);
  tgc_var *v = tgc_arena_alloc(ctx->arena, sizeof *v);
  *v = (tgc_var){.ctx = ctx, .index = ctx->nvars, .min = min, .max = max};
  snprintf(v->name, sizeof v->name, "%s", name);
  ctx->vars[ctx->nvars++] = v;
  return v;
}

tgc_status tgc_var_bind(tgc_var *v, int64_t value) {
  if (!v) return tgc_set_error(TGC_ERR_ARG, "tgc_var_bind: variable is NULL");
  if (value < v->min || value > v->max)
    return tgc_set_error(TGC_ERR_ARG, "tgc_var_bind: %s = %lld is outside [%lld, %lld]", v->name, (long long)value,
                         (long long)v->min, (long long)v->max);
  tgc_ctx *ctx = v->ctx;
  if (!ctx->var_bound[v->index] || ctx->var_values[v->index] != value) ctx->var_epoch++;
  ctx->var_values[v->index] = value;
  ctx->var_bound[v->index] = true;
  return TGC_OK;
}

tgc_tensor *tgc_dim_tensor(tgc_ctx *ctx, int64_t dim, tgc_dtype dt) {
  if (!ctx) return tgc_fail(TGC_ERR_ARG, "tgc_dim_tensor: ctx is NULL");
  if (!check_dtype("tgc_dim_tensor", dt)) return NULL;
  if (!tgc_sym_is(dim)) return tgc_scalar(ctx, dt, (double)dim);
  tgc_affine a = tgc_sym_get(dim);
  for (int k = 0; k < TGC_MAX_VARS; k++)
    if (a.c[k] && k >= ctx->nvars)
      return tgc_fail(TGC_ERR_ARG, "tgc_dim_tensor: the size names a variable this context does not have");
  tgc_symconst c = {{0, 0}, dim};
  return tgc_uop_new(ctx, TGC_OP_CONST, dt, 0, NULL, &c, sizeof c, 0, NULL);
}

tgc_tensor *tgc_shrink_var(tgc_tensor *x, int axis, tgc_var *v, int64_t start, int64_t len) {
  if (!x) return NULL;
  if (!v || v->ctx != x->ctx) return tgc_fail(TGC_ERR_ARG, "shrink_var: the variable is NULL or from another context");
  int a = norm_axis("shrink_var", axis, x->ndim);
  if (a < 0) return NULL;
  if (len < 1 || v->min + start < 0 || v->max + start + len > x->shape[a])
    return tgc_fail(TGC_ERR_ARG, "shrink_var: [%s%+lld, %s%+lld) leaves axis %d (size %lld) for %s in [%lld, %lld]",
                    v->name, (long long)start, v->name, (long long)(start + len), axis, (long long)x->shape[a],
                    v->name, (long long)v->min, (long long)v->max);
  int64_t s[TGC_MAX_DIMS];
  memcpy(s, x->shape, sizeof *s * (size_t)x->ndim);
  s[a] = len;
  tgc_shrinkv arg = {a, v->index, start, len};
  return move(x, TGC_OP_SHRINKV, &arg, sizeof arg, x->ndim, s);
}
