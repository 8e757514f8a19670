/* ref.c - the f64 reference the op tests compare tgc against (see ref.h).
 *
 * Plain loops over unravelled indices, written for obviousness rather than
 * speed: inputs are small.  Half-precision conversions are written out by
 * hand (no _Float16) so they check tgc's rather than share them.  This file
 * also owns the per-suite fixture and the runner hook that gives the whole
 * test binary one private kernel cache directory.
 */
#define _GNU_SOURCE 1
#include "ref.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocation tracking ----------------------------------------------- */

static void **allocs;
static size_t nallocs, capallocs;

void *ref_alloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  cr_assert_not_null(p, "ref_alloc(%zu): out of memory", n);
  if (nallocs == capallocs) {
    capallocs = capallocs ? 2 * capallocs : 256;
    allocs = realloc(allocs, capallocs * sizeof *allocs);
    cr_assert_not_null(allocs);
  }
  allocs[nallocs++] = p;
  return p;
}

static void free_allocs(void) {
  for (size_t i = 0; i < nallocs; i++) free(allocs[i]);
  free(allocs);
  allocs = NULL;
  nallocs = capallocs = 0;
}

/* ---- fixture ------------------------------------------------------------ */

tgc_ctx *tctx;

typedef struct pending {
  tgc_tensor *t;
  const ref_t *want;
  tgc_dtype dt;
  ref_tol tol;
  char label[240];
} pending;
static pending *pend;
static int npend, cappend;

/* The runner (parent of every test process) makes one cache directory
 * unless TGC_CACHE_DIR is already set (make test sets a fresh one); the
 * forked test processes inherit the environment, so they share compiled
 * kernels, and the directory is removed when the run ends. */
static char made_cache_dir[4096];

ReportHook(PRE_ALL)(struct criterion_test_set *set) {
  (void)set;
  const char *have = getenv("TGC_CACHE_DIR");
  if (have && *have) return;
  const char *tmp = getenv("TMPDIR");
  snprintf(made_cache_dir, sizeof made_cache_dir, "%s/tgc-tests-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(made_cache_dir)) {
    made_cache_dir[0] = 0;
    return;
  }
  setenv("TGC_CACHE_DIR", made_cache_dir, 1);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
  (void)stats;
  if (made_cache_dir[0]) nftw(made_cache_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void ref_setup(void) {
  /* Running one test directly (--single) may skip the runner hook. */
  const char *have = getenv("TGC_CACHE_DIR");
  if (!have || !*have) {
    static char dir[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tgc-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir)) setenv("TGC_CACHE_DIR", dir, 1);
  }
  tgc_clear_error();
  tctx = tgc_ctx_new();
  cr_assert_not_null(tctx, "tgc_ctx_new failed: %s", tgc_last_error());
}

void ref_teardown(void) {
  tgc_ctx_free(tctx);
  tctx = NULL;
  free(pend);
  pend = NULL;
  npend = cappend = 0;
  free_allocs();
}

/* ---- random ------------------------------------------------------------- */

uint64_t ref_rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double ref_rng_unit(uint64_t *s) { return (double)(ref_rng_next(s) >> 11) * 0x1p-53; }

/* ---- construction ----------------------------------------------------- */

static int64_t numel_of(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

ref_t *ref_new(int ndim, const int64_t *shape) {
  cr_assert(ndim >= 0 && ndim <= TGC_MAX_DIMS, "ref_new: bad ndim %d", ndim);
  ref_t *r = ref_alloc(sizeof *r);
  r->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    cr_assert(shape[i] >= 1, "ref_new: bad dim %lld", (long long)shape[i]);
    r->shape[i] = shape[i];
  }
  r->numel = numel_of(ndim, shape);
  r->v = ref_alloc((size_t)r->numel * sizeof(double));
  return r;
}

ref_t *ref_copy(const ref_t *x) {
  ref_t *r = ref_new(x->ndim, x->shape);
  memcpy(r->v, x->v, (size_t)x->numel * sizeof(double));
  return r;
}

ref_t *ref_fill(int ndim, const int64_t *shape, double value) {
  ref_t *r = ref_new(ndim, shape);
  for (int64_t i = 0; i < r->numel; i++) r->v[i] = value;
  return r;
}

ref_t *ref_uniform(int ndim, const int64_t *shape, double lo, double hi, uint64_t seed) {
  ref_t *r = ref_new(ndim, shape);
  uint64_t s = seed;
  for (int64_t i = 0; i < r->numel; i++) r->v[i] = lo + (hi - lo) * ref_rng_unit(&s);
  return r;
}

ref_t *ref_randint(int ndim, const int64_t *shape, int64_t lo, int64_t hi, uint64_t seed) {
  ref_t *r = ref_new(ndim, shape);
  uint64_t s = seed, span = (uint64_t)(hi - lo) + 1;
  for (int64_t i = 0; i < r->numel; i++) r->v[i] = (double)(lo + (int64_t)(ref_rng_next(&s) % span));
  return r;
}

ref_t *ref_normal(int ndim, const int64_t *shape, uint64_t seed) {
  ref_t *r = ref_new(ndim, shape);
  uint64_t s = seed;
  for (int64_t i = 0; i < r->numel; i++) {
    double u1 = 1.0 - ref_rng_unit(&s), u2 = ref_rng_unit(&s);
    r->v[i] = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
  }
  return r;
}

ref_t *ref_of(int ndim, const int64_t *shape, const double *values) {
  ref_t *r = ref_new(ndim, shape);
  memcpy(r->v, values, (size_t)r->numel * sizeof(double));
  return r;
}

/* ---- dtype conversions --------------------------------------------------- */

uint16_t ref_f16_from_double(double v) {
  uint16_t sign = signbit(v) ? 0x8000 : 0;
  double a = fabs(v);
  if (isnan(v)) return 0x7e00;
  if (a >= 65520.0) return sign | 0x7c00; /* 65520 is the tie to 65536: overflow */
  /* Quantum of the binade a lies in; subnormals share 2^-24. */
  int e;
  frexp(a, &e); /* a = m * 2^e, m in [0.5, 1): binade exponent is e-1 */
  int E = a == 0 ? -15 : e - 1;
  double quantum = E < -14 ? 0x1p-24 : ldexp(1.0, E - 10);
  double q = nearbyint(a / quantum) * quantum; /* exact scaling; ties to even */
  if (q >= 65536.0) return sign | 0x7c00;
  if (q < 0x1p-14) return sign | (uint16_t)(q * 0x1p24); /* subnormal or zero */
  frexp(q, &e);
  E = e - 1;
  uint16_t mant = (uint16_t)((q / ldexp(1.0, E) - 1.0) * 1024.0);
  return sign | (uint16_t)((E + 15) << 10) | mant;
}

double ref_f16_to_double(uint16_t h) {
  double sign = h & 0x8000 ? -1.0 : 1.0;
  int e = (h >> 10) & 31, m = h & 1023;
  if (e == 31) return m ? NAN : sign * INFINITY;
  if (e == 0) return sign * m * 0x1p-24;
  return sign * ldexp(1024.0 + m, e - 25);
}

uint16_t ref_bf16_from_float(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

float ref_bf16_to_float(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* Our own tables, so that the reference does not lean on tgc's. */
size_t ref_size(tgc_dtype dt) {
  switch (dt) {
  case TGC_BOOL: case TGC_I8: case TGC_U8: return 1;
  case TGC_I16: case TGC_U16: case TGC_F16: case TGC_BF16: return 2;
  case TGC_I32: case TGC_U32: case TGC_F32: return 4;
  case TGC_I64: case TGC_F64: return 8;
  default: cr_assert_fail("ref_size: bad dtype %d", (int)dt);
  }
  return 0;
}

int ref_bits(tgc_dtype dt) { return (int)(8 * ref_size(dt)); }

static bool is_float(tgc_dtype dt) {
  return dt == TGC_F16 || dt == TGC_BF16 || dt == TGC_F32 || dt == TGC_F64;
}

bool ref_is_float(tgc_dtype dt) { return is_float(dt); }

bool ref_is_signed(tgc_dtype dt) {
  return dt == TGC_I8 || dt == TGC_I16 || dt == TGC_I32 || dt == TGC_I64 || is_float(dt);
}

/* Truncation to int64 without undefined behaviour (tests keep values in
 * range; out-of-range values saturate). */
static int64_t to_i64(double v) {
  if (isnan(v)) return 0;
  if (v >= 0x1p63) return INT64_MAX;
  if (v < -0x1p63) return INT64_MIN;
  return (int64_t)v;
}

/* Two's complement wrap of x to dt's width. */
static double wrap_int(uint64_t x, tgc_dtype dt) {
  switch (dt) {
  case TGC_BOOL: return x != 0;
  case TGC_I8: return (int8_t)(uint8_t)x;
  case TGC_U8: return (uint8_t)x;
  case TGC_I16: return (int16_t)(uint16_t)x;
  case TGC_U16: return (uint16_t)x;
  case TGC_I32: return (int32_t)(uint32_t)x;
  case TGC_U32: return (uint32_t)x;
  case TGC_I64: return (double)(int64_t)x;
  default: cr_assert_fail("wrap_int: %s is not an integer dtype", tgc_dtype_name(dt));
  }
  return 0;
}

double ref_quant(double v, tgc_dtype dt) {
  switch (dt) {
  case TGC_BOOL: return v != 0;
  case TGC_F64: return v;
  case TGC_F32: return (float)v;
  case TGC_F16: return ref_f16_to_double(ref_f16_from_double(v));
  case TGC_BF16: return ref_bf16_to_float(ref_bf16_from_float((float)v));
  default: return wrap_int((uint64_t)to_i64(v), dt);
  }
}

ref_t *ref_quantize(ref_t *x, tgc_dtype dt) {
  for (int64_t i = 0; i < x->numel; i++) x->v[i] = ref_quant(x->v[i], dt);
  return x;
}

void ref_store(tgc_dtype dt, void *buf, int64_t i, double v) {
  v = ref_quant(v, dt);
  switch (dt) {
  case TGC_BOOL: ((uint8_t *)buf)[i] = v != 0; break;
  case TGC_I8: ((int8_t *)buf)[i] = (int8_t)v; break;
  case TGC_U8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
  case TGC_I16: ((int16_t *)buf)[i] = (int16_t)v; break;
  case TGC_U16: ((uint16_t *)buf)[i] = (uint16_t)v; break;
  case TGC_I32: ((int32_t *)buf)[i] = (int32_t)v; break;
  case TGC_U32: ((uint32_t *)buf)[i] = (uint32_t)v; break;
  case TGC_I64: ((int64_t *)buf)[i] = to_i64(v); break;
  case TGC_F16: ((uint16_t *)buf)[i] = ref_f16_from_double(v); break;
  case TGC_BF16: ((uint16_t *)buf)[i] = ref_bf16_from_float((float)v); break;
  case TGC_F32: ((float *)buf)[i] = (float)v; break;
  case TGC_F64: ((double *)buf)[i] = v; break;
  default: cr_assert_fail("ref_store: bad dtype %d", (int)dt);
  }
}

double ref_load(tgc_dtype dt, const void *buf, int64_t i) {
  switch (dt) {
  case TGC_BOOL: return ((const uint8_t *)buf)[i] != 0;
  case TGC_I8: return ((const int8_t *)buf)[i];
  case TGC_U8: return ((const uint8_t *)buf)[i];
  case TGC_I16: return ((const int16_t *)buf)[i];
  case TGC_U16: return ((const uint16_t *)buf)[i];
  case TGC_I32: return ((const int32_t *)buf)[i];
  case TGC_U32: return ((const uint32_t *)buf)[i];
  case TGC_I64: return (double)((const int64_t *)buf)[i];
  case TGC_F16: return ref_f16_to_double(((const uint16_t *)buf)[i]);
  case TGC_BF16: return ref_bf16_to_float(((const uint16_t *)buf)[i]);
  case TGC_F32: return ((const float *)buf)[i];
  case TGC_F64: return ((const double *)buf)[i];
  default: cr_assert_fail("ref_load: bad dtype %d", (int)dt);
  }
  return 0;
}

void *ref_to_host(const ref_t *x, tgc_dtype dt) {
  void *buf = ref_alloc((size_t)x->numel * ref_size(dt));
  for (int64_t i = 0; i < x->numel; i++) ref_store(dt, buf, i, x->v[i]);
  return buf;
}

ref_t *ref_from_host(tgc_dtype dt, int ndim, const int64_t *shape, const void *buf) {
  ref_t *r = ref_new(ndim, shape);
  for (int64_t i = 0; i < r->numel; i++) r->v[i] = ref_load(dt, buf, i);
  return r;
}

tgc_tensor *ref_tensor(ref_t *x, tgc_dtype dt) {
  ref_quantize(x, dt);
  tgc_tensor *t = tgc_from_data(tctx, dt, x->ndim, x->shape, ref_to_host(x, dt));
  cr_assert_not_null(t, "tgc_from_data(%s) failed: %s", tgc_dtype_name(dt), tgc_last_error());
  return t;
}

/* ---- shapes and indices ------------------------------------------------- */

int ref_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int64_t *out) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int64_t da = i - (n - na) >= 0 ? a[i - (n - na)] : 1;
    int64_t db = i - (n - nb) >= 0 ? b[i - (n - nb)] : 1;
    if (da != db && da != 1 && db != 1) return -1;
    out[i] = da == 1 ? db : da;
  }
  return n;
}

const char *ref_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
  size_t n = (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < ndim && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)shape[i]);
  if (n < cap) snprintf(buf + n, cap - n, "]");
  return buf;
}

static void unravel(int64_t flat, int ndim, const int64_t *shape, int64_t *idx) {
  for (int i = ndim - 1; i >= 0; i--) {
    idx[i] = flat % shape[i];
    flat /= shape[i];
  }
}

static int64_t ravel(const int64_t *idx, int ndim, const int64_t *shape) {
  int64_t flat = 0;
  for (int i = 0; i < ndim; i++) flat = flat * shape[i] + idx[i];
  return flat;
}

/* Flat index into x of the output index idx (ndim dims) under numpy
 * broadcasting: x's dims align to the right, size-1 dims read index 0. */
static int64_t bcast_at(const ref_t *x, int ndim, const int64_t *idx) {
  int64_t flat = 0;
  for (int i = 0; i < x->ndim; i++) {
    int64_t d = x->shape[i], j = idx[ndim - x->ndim + i];
    flat = flat * d + (d == 1 ? 0 : j);
  }
  return flat;
}

static int norm_axis(int axis, int ndim) {
  int a = axis < 0 ? axis + ndim : axis;
  cr_assert(a >= 0 && a < (ndim ? ndim : 1), "reference: axis %d out of range for ndim %d",
            axis, ndim);
  return a;
}

/* ---- elementwise -------------------------------------------------------- */

static double int_op(ref_op op, tgc_dtype dt, double fa, double fb) {
  int64_t a = to_i64(fa), b = to_i64(fb);
  uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
  int bits = ref_bits(dt);
  switch (op) {
  case REF_ADD: return wrap_int(ua + ub, dt);
  case REF_SUB: return wrap_int(ua - ub, dt);
  case REF_MUL: return wrap_int(ua * ub, dt);
  case REF_DIV:
  case REF_IDIV: return b == 0 ? 0 : wrap_int((uint64_t)(a / b), dt);
  case REF_MOD: return b == 0 ? 0 : wrap_int((uint64_t)(a % b), dt);
  case REF_MAX: return a > b ? fa : fb;
  case REF_MIN: return a < b ? fa : fb;
  case REF_AND: return wrap_int(ua & ub, dt);
  case REF_OR: return wrap_int(ua | ub, dt);
  case REF_XOR: return wrap_int(ua ^ ub, dt);
  case REF_SHL: return wrap_int(ua << (ub % (uint64_t)bits), dt);
  case REF_SHR: {
    uint64_t c = ub % (uint64_t)bits;
    if (ref_is_signed(dt)) return floor(ldexp((double)a, -(int)c)); /* arithmetic */
    return wrap_int(ua >> c, dt);
  }
  case REF_NEG: return wrap_int(0 - ua, dt);
  case REF_RELU: return a > 0 ? fa : 0;
  default: break;
  }
  cr_assert_fail("reference: op %d is not defined on %s", (int)op, tgc_dtype_name(dt));
  return 0;
}

static double float_op(ref_op op, double a, double b) {
  switch (op) {
  case REF_ADD: return a + b;
  case REF_SUB: return a - b;
  case REF_MUL: return a * b;
  case REF_DIV: return a / b;
  case REF_POW: return pow(a, b);
  case REF_MAX: return a > b ? a : b;
  case REF_MIN: return a < b ? a : b;
  case REF_NEG: return -a;
  case REF_EXP: return exp(a);
  case REF_EXP2: return exp2(a);
  case REF_LOG: return log(a);
  case REF_LOG2: return log2(a);
  case REF_SQRT: return sqrt(a);
  case REF_RSQRT: return 1.0 / sqrt(a);
  case REF_RECIP: return 1.0 / a;
  case REF_SIN: return sin(a);
  case REF_COS: return cos(a);
  case REF_TANH: return tanh(a);
  case REF_SIGMOID: return 1.0 / (1.0 + exp(-a));
  case REF_SILU: return a / (1.0 + exp(-a));
  case REF_RELU: return a > 0 ? a : 0;
  default: break;
  }
  cr_assert_fail("reference: op %d is not defined on floats", (int)op);
  return 0;
}

double ref_scalar_op(ref_op op, tgc_dtype dt, double a, double b) {
  switch (op) {
  case REF_LT: return a < b;
  case REF_LE: return a <= b;
  case REF_GT: return a > b;
  case REF_GE: return a >= b;
  case REF_EQ: return a == b;
  case REF_NE: return a != b;
  default: break;
  }
  return is_float(dt) ? float_op(op, a, b) : int_op(op, dt, a, b);
}

ref_t *ref_binary(ref_op op, tgc_dtype dt, const ref_t *a, const ref_t *b) {
  int64_t shape[TGC_MAX_DIMS], idx[TGC_MAX_DIMS];
  int n = ref_broadcast_shape(a->ndim, a->shape, b->ndim, b->shape, shape);
  cr_assert(n >= 0, "reference: shapes do not broadcast");
  ref_t *r = ref_new(n, shape);
  for (int64_t i = 0; i < r->numel; i++) {
    unravel(i, n, shape, idx);
    r->v[i] = ref_scalar_op(op, dt, a->v[bcast_at(a, n, idx)], b->v[bcast_at(b, n, idx)]);
  }
  return r;
}

ref_t *ref_unary(ref_op op, tgc_dtype dt, const ref_t *x) {
  ref_t *r = ref_new(x->ndim, x->shape);
  for (int64_t i = 0; i < r->numel; i++) r->v[i] = ref_scalar_op(op, dt, x->v[i], 0);
  return r;
}

ref_t *ref_where(const ref_t *c, const ref_t *a, const ref_t *b) {
  int64_t s1[TGC_MAX_DIMS], shape[TGC_MAX_DIMS], idx[TGC_MAX_DIMS];
  int n1 = ref_broadcast_shape(c->ndim, c->shape, a->ndim, a->shape, s1);
  cr_assert(n1 >= 0);
  int n = ref_broadcast_shape(n1, s1, b->ndim, b->shape, shape);
  cr_assert(n >= 0);
  ref_t *r = ref_new(n, shape);
  for (int64_t i = 0; i < r->numel; i++) {
    unravel(i, n, shape, idx);
    r->v[i] = c->v[bcast_at(c, n, idx)] != 0 ? a->v[bcast_at(a, n, idx)] : b->v[bcast_at(b, n, idx)];
  }
  return r;
}

ref_t *ref_cast(const ref_t *x, tgc_dtype to) {
  ref_t *r = ref_copy(x);
  /* to bool is v != 0 (0.5 is true); to an integer truncates first */
  for (int64_t i = 0; i < r->numel; i++)
    r->v[i] = is_float(to) || to == TGC_BOOL ? ref_quant(r->v[i], to) : ref_quant(trunc(r->v[i]), to);
  return r;
}

ref_t *ref_bitcast(const ref_t *x, tgc_dtype from, tgc_dtype to) {
  cr_assert(ref_size(from) == ref_size(to));
  return ref_from_host(to, x->ndim, x->shape, ref_to_host(x, from));
}

/* ---- reductions ---------------------------------------------------------- */

tgc_dtype ref_reduce_dtype(ref_redop op, tgc_dtype dt) {
  return op == REF_SUM && dt == TGC_BOOL ? TGC_I32 : dt;
}

ref_t *ref_reduce(ref_redop op, tgc_dtype dt, const ref_t *x, int naxes, const int *axes,
                  bool keepdim) {
  bool red[TGC_MAX_DIMS] = {0};
  for (int i = 0; i < x->ndim; i++) red[i] = naxes == 0;
  for (int i = 0; i < naxes; i++) red[norm_axis(axes[i], x->ndim)] = true;
  int64_t kshape[TGC_MAX_DIMS], oshape[TGC_MAX_DIMS], idx[TGC_MAX_DIMS];
  int on = 0;
  for (int i = 0; i < x->ndim; i++) {
    kshape[i] = red[i] ? 1 : x->shape[i];
    if (!red[i]) oshape[on++] = x->shape[i];
  }
  ref_t *acc = ref_fill(x->ndim, kshape, op == REF_RMAX ? -INFINITY : 0.0);
  int64_t count = x->numel / acc->numel;
  for (int64_t i = 0; i < x->numel; i++) {
    unravel(i, x->ndim, x->shape, idx);
    int64_t o = bcast_at(acc, x->ndim, idx);
    if (op == REF_RMAX) acc->v[o] = x->v[i] > acc->v[o] ? x->v[i] : acc->v[o];
    else acc->v[o] += x->v[i];
  }
  tgc_dtype out = ref_reduce_dtype(op, dt);
  for (int64_t i = 0; i < acc->numel; i++) {
    if (op == REF_MEAN) acc->v[i] /= (double)count;
    if (!is_float(out)) acc->v[i] = ref_quant(acc->v[i], out);
  }
  return keepdim ? acc : ref_reshape(acc, on, oshape);
}

/* ---- movement ------------------------------------------------------------ */

ref_t *ref_reshape(const ref_t *x, int ndim, const int64_t *shape) {
  int64_t s[TGC_MAX_DIMS], known = 1;
  int infer = -1;
  for (int i = 0; i < ndim; i++) {
    s[i] = shape[i];
    if (s[i] == -1) infer = i;
    else known *= s[i];
  }
  if (infer >= 0) s[infer] = x->numel / known;
  ref_t *r = ref_new(ndim, s);
  cr_assert_eq(r->numel, x->numel, "reference reshape: numel differs");
  memcpy(r->v, x->v, (size_t)x->numel * sizeof(double));
  return r;
}

ref_t *ref_permute(const ref_t *x, const int *perm) {
  int64_t s[TGC_MAX_DIMS], idx[TGC_MAX_DIMS], src[TGC_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) s[i] = x->shape[perm[i]];
  ref_t *r = ref_new(x->ndim, s);
  for (int64_t i = 0; i < r->numel; i++) {
    unravel(i, r->ndim, s, idx);
    for (int d = 0; d < x->ndim; d++) src[perm[d]] = idx[d];
    r->v[i] = x->v[ravel(src, x->ndim, x->shape)];
  }
  return r;
}

ref_t *ref_transpose(const ref_t *x, int d0, int d1) {
  int perm[TGC_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) perm[i] = i;
  d0 = norm_axis(d0, x->ndim), d1 = norm_axis(d1, x->ndim);
  perm[d0] = d1, perm[d1] = d0;
  return ref_permute(x, perm);
}

ref_t *ref_expand(const ref_t *x, int ndim, const int64_t *shape) {
  int64_t s[TGC_MAX_DIMS], idx[TGC_MAX_DIMS];
  for (int i = 0; i < ndim; i++) {
    int xi = i - (ndim - x->ndim);
    s[i] = shape[i] == -1 ? x->shape[xi] : shape[i];
    cr_assert(xi < 0 || x->shape[xi] == 1 || x->shape[xi] == s[i], "reference expand: bad");
  }
  ref_t *r = ref_new(ndim, s);
  for (int64_t i = 0; i < r->numel; i++) {
    unravel(i, ndim, s, idx);
    r->v[i] = x->v[bcast_at(x, ndim, idx)];
  }
  return r;
}

ref_t *ref_pad(const ref_t *x, const int64_t *pads) {
  int64_t s[TGC_MAX_DIMS], idx[TGC_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) s[i] = pads[2 * i] + x->shape[i] + pads[2 * i + 1];
  ref_t *r = ref_new(x->ndim, s);
  for (int64_t i = 0; i < r->numel; i++) {
    unravel(i, x->ndim, s, idx);
    bool inside = true;
    for (int d = 0; d < x->ndim; d++) {
      idx[d] -= pads[2 * d];
      inside = inside && idx[d] >= 0 && idx[d] < x->shape[d];
    }
    r->v[i] = inside ? x->v[ravel(idx, x->ndim, x->shape)] : 0.0;
  }
  return r;
}

ref_t *ref_shrink(const ref_t *x, const int64_t *ranges) {
  int64_t s[TGC_MAX_DIMS], idx[TGC_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) s[i] = ranges[2 * i + 1] - ranges[2 * i];
  ref_t *r = ref_new(x->ndim, s);
  for (int64_t i = 0; i < r->numel; i++) {
    unravel(i, x->ndim, s, idx);
    for (int d = 0; d < x->ndim; d++) idx[d] += ranges[2 * d];
    r->v[i] = x->v[ravel(idx, x->ndim, x->shape)];
  }
  return r;
}

ref_t *ref_slice(const ref_t *x, int axis, int64_t start, int64_t stop) {
  int a = norm_axis(axis, x->ndim);
  int64_t d = x->shape[a], ranges[2 * TGC_MAX_DIMS];
  if (start < 0) start += d;
  if (stop < 0) stop += d;
  start = start < 0 ? 0 : start > d ? d : start;
  stop = stop < 0 ? 0 : stop > d ? d : stop;
  for (int i = 0; i < x->ndim; i++) ranges[2 * i] = 0, ranges[2 * i + 1] = x->shape[i];
  ranges[2 * a] = start, ranges[2 * a + 1] = stop;
  return ref_shrink(x, ranges);
}

ref_t *ref_flip(const ref_t *x, int naxes, const int *axes) {
  bool f[TGC_MAX_DIMS] = {0};
  int64_t idx[TGC_MAX_DIMS];
  for (int i = 0; i < naxes; i++) f[norm_axis(axes[i], x->ndim)] = true;
  ref_t *r = ref_new(x->ndim, x->shape);
  for (int64_t i = 0; i < r->numel; i++) {
    unravel(i, x->ndim, x->shape, idx);
    for (int d = 0; d < x->ndim; d++)
      if (f[d]) idx[d] = x->shape[d] - 1 - idx[d];
    r->v[i] = x->v[ravel(idx, x->ndim, x->shape)];
  }
  return r;
}

ref_t *ref_squeeze(const ref_t *x, int axis) {
  int a = norm_axis(axis, x->ndim), n = 0;
  int64_t s[TGC_MAX_DIMS];
  cr_assert_eq(x->shape[a], 1);
  for (int i = 0; i < x->ndim; i++)
    if (i != a) s[n++] = x->shape[i];
  return ref_reshape(x, n, s);
}

ref_t *ref_unsqueeze(const ref_t *x, int axis) {
  int a = axis < 0 ? axis + x->ndim + 1 : axis, n = 0;
  int64_t s[TGC_MAX_DIMS];
  for (int i = 0; i <= x->ndim; i++) {
    if (i == a) s[n++] = 1;
    if (i < x->ndim) s[n++] = x->shape[i];
  }
  return ref_reshape(x, n, s);
}

ref_t *ref_cat(int n, const ref_t *const *xs, int axis) {
  int a = norm_axis(axis, xs[0]->ndim), nd = xs[0]->ndim;
  int64_t s[TGC_MAX_DIMS], idx[TGC_MAX_DIMS];
  memcpy(s, xs[0]->shape, sizeof s);
  for (int k = 1; k < n; k++) s[a] += xs[k]->shape[a];
  ref_t *r = ref_new(nd, s);
  for (int64_t i = 0; i < r->numel; i++) {
    unravel(i, nd, s, idx);
    int k = 0;
    while (idx[a] >= xs[k]->shape[a]) idx[a] -= xs[k++]->shape[a];
    r->v[i] = xs[k]->v[ravel(idx, nd, xs[k]->shape)];
  }
  return r;
}

/* ---- composites ----------------------------------------------------------- */

ref_t *ref_matmul(const ref_t *a, const ref_t *b) {
  /* numpy: a 1-d left operand gains a leading 1, a 1-d right operand a
   * trailing 1, and the added axis is dropped from the result. */
  const ref_t *A = a->ndim == 1 ? ref_reshape(a, SHAPE(1, a->shape[0])) : a;
  const ref_t *B = b->ndim == 1 ? ref_reshape(b, SHAPE(b->shape[0], 1)) : b;
  int64_t M = A->shape[A->ndim - 2], K = A->shape[A->ndim - 1], N = B->shape[B->ndim - 1];
  cr_assert_eq(K, B->shape[B->ndim - 2], "reference matmul: inner dims differ");
  int64_t bs[TGC_MAX_DIMS], os[TGC_MAX_DIMS], idx[TGC_MAX_DIMS];
  int nb = ref_broadcast_shape(A->ndim - 2, A->shape, B->ndim - 2, B->shape, bs);
  cr_assert(nb >= 0, "reference matmul: batch dims do not broadcast");
  memcpy(os, bs, sizeof(int64_t) * (size_t)nb);
  os[nb] = M, os[nb + 1] = N;
  ref_t *r = ref_new(nb + 2, os);
  /* A's and B's batch parts as tensors of matrices, indexed by broadcast. */
  ref_t abatch = {.ndim = A->ndim - 2}, bbatch = {.ndim = B->ndim - 2};
  memcpy(abatch.shape, A->shape, sizeof(int64_t) * (size_t)abatch.ndim);
  memcpy(bbatch.shape, B->shape, sizeof(int64_t) * (size_t)bbatch.ndim);
  int64_t nbatch = numel_of(nb, bs);
  for (int64_t z = 0; z < nbatch; z++) {
    unravel(z, nb, bs, idx);
    const double *pa = A->v + bcast_at(&abatch, nb, idx) * M * K;
    const double *pb = B->v + bcast_at(&bbatch, nb, idx) * K * N;
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double acc = 0;
        for (int64_t k = 0; k < K; k++) acc += pa[m * K + k] * pb[k * N + n];
        r->v[(z * M + m) * N + n] = acc;
      }
  }
  if (a->ndim == 1 && b->ndim == 1) return ref_reshape(r, 0, NULL);
  if (a->ndim == 1) return ref_squeeze(r, -2);
  if (b->ndim == 1) return ref_squeeze(r, -1);
  return r;
}

/* Iterates the lines of x along axis: outer * inner lines of length n,
 * element j of line (o, i) at (o * n + j) * inner + i. */
typedef struct lines {
  int64_t outer, n, inner;
} lines;

static lines lines_of(const ref_t *x, int axis) {
  int a = norm_axis(axis, x->ndim);
  lines l = {1, x->shape[a], 1};
  for (int i = 0; i < a; i++) l.outer *= x->shape[i];
  for (int i = a + 1; i < x->ndim; i++) l.inner *= x->shape[i];
  return l;
}

static ref_t *softmax_impl(const ref_t *x, int axis, bool log_) {
  lines l = lines_of(x, axis);
  ref_t *r = ref_new(x->ndim, x->shape);
  for (int64_t o = 0; o < l.outer; o++)
    for (int64_t i = 0; i < l.inner; i++) {
      const double *px = x->v + o * l.n * l.inner + i;
      double *pr = r->v + o * l.n * l.inner + i, mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < l.n; j++) mx = fmax(mx, px[j * l.inner]);
      for (int64_t j = 0; j < l.n; j++) sum += exp(px[j * l.inner] - mx);
      for (int64_t j = 0; j < l.n; j++)
        pr[j * l.inner] = log_ ? px[j * l.inner] - mx - log(sum) : exp(px[j * l.inner] - mx) / sum;
    }
  return r;
}

ref_t *ref_softmax(const ref_t *x, int axis) { return softmax_impl(x, axis, false); }
ref_t *ref_log_softmax(const ref_t *x, int axis) { return softmax_impl(x, axis, true); }

static ref_t *norm_impl(const ref_t *x, double eps, bool center) {
  lines l = lines_of(x, -1);
  ref_t *r = ref_new(x->ndim, x->shape);
  for (int64_t o = 0; o < l.outer; o++) {
    const double *px = x->v + o * l.n;
    double mean = 0, ss = 0;
    if (center) {
      for (int64_t j = 0; j < l.n; j++) mean += px[j];
      mean /= (double)l.n;
    }
    for (int64_t j = 0; j < l.n; j++) ss += (px[j] - mean) * (px[j] - mean);
    double scale = 1.0 / sqrt(ss / (double)l.n + eps);
    for (int64_t j = 0; j < l.n; j++) r->v[o * l.n + j] = (px[j] - mean) * scale;
  }
  return r;
}

ref_t *ref_rmsnorm(const ref_t *x, double eps) { return norm_impl(x, eps, false); }
ref_t *ref_layernorm(const ref_t *x, double eps) { return norm_impl(x, eps, true); }

ref_t *ref_rope(const ref_t *x, const ref_t *c, const ref_t *s) {
  int nd = x->ndim;
  int64_t hs[TGC_MAX_DIMS], idx[TGC_MAX_DIMS];
  memcpy(hs, x->shape, sizeof hs);
  hs[nd - 1] /= 2;
  ref_t *r = ref_new(nd, x->shape);
  int64_t half_numel = numel_of(nd, hs);
  for (int64_t h = 0; h < half_numel; h++) {
    unravel(h, nd, hs, idx);
    double cv = c->v[bcast_at(c, nd, idx)], sv = s->v[bcast_at(s, nd, idx)];
    double x0 = x->v[2 * h], x1 = x->v[2 * h + 1];
    r->v[2 * h] = x0 * cv - x1 * sv;
    r->v[2 * h + 1] = x0 * sv + x1 * cv;
  }
  return r;
}

void ref_rope_tables(int64_t start, int64_t n, int64_t dim, double theta, ref_t **cos_,
                     ref_t **sin_) {
  *cos_ = ref_new(SHAPE(n, dim / 2));
  *sin_ = ref_new(SHAPE(n, dim / 2));
  for (int64_t p = 0; p < n; p++)
    for (int64_t i = 0; i < dim / 2; i++) {
      double ang = (double)(start + p) * pow(theta, -2.0 * (double)i / (double)dim);
      (*cos_)->v[p * (dim / 2) + i] = cos(ang);
      (*sin_)->v[p * (dim / 2) + i] = sin(ang);
    }
}

ref_t *ref_embedding(const ref_t *table, const ref_t *ids) {
  int64_t V = table->shape[0], D = table->shape[1], s[TGC_MAX_DIMS];
  memcpy(s, ids->shape, sizeof(int64_t) * (size_t)ids->ndim);
  s[ids->ndim] = D;
  ref_t *r = ref_new(ids->ndim + 1, s);
  for (int64_t i = 0; i < ids->numel; i++) {
    int64_t id = to_i64(ids->v[i]);
    for (int64_t d = 0; d < D; d++) r->v[i * D + d] = id >= 0 && id < V ? table->v[id * D + d] : 0.0;
  }
  return r;
}

/* ---- comparison -------------------------------------------------------------- */

ref_tol ref_tol_for(tgc_dtype dt, ref_tolkind kind) {
  if (kind == TOL_EXACT || !is_float(dt)) return (ref_tol){0, 0};
  bool trans = kind == TOL_TRANS;
  switch (dt) {
  /* one rounding to nearest of a half is at most 2^-11 (f16) or 2^-8
   * (bf16) relative, so TOL_SIMPLE catches truncation; TOL_TRANS allows a
   * few roundings of intermediates */
  case TGC_F16: return trans ? (ref_tol){5e-3, 1e-3} : (ref_tol){6e-4, 1e-5};
  case TGC_BF16: return trans ? (ref_tol){2e-2, 1e-2} : (ref_tol){4.5e-3, 1e-4};
  case TGC_F32: return trans ? (ref_tol){1e-4, 1e-5} : (ref_tol){1e-5, 1e-6};
  default: return trans ? (ref_tol){1e-10, 1e-12} : (ref_tol){1e-12, 1e-14};
  }
}

static bool close_enough(double got, double want, ref_tol tol) {
  if (isnan(want)) return isnan(got);
  if (isinf(want) || (tol.rtol == 0 && tol.atol == 0)) return got == want;
  return fabs(got - want) <= tol.atol + tol.rtol * fabs(want);
}

bool ref_check_now(tgc_tensor *t, const ref_t *want, tgc_dtype dt, ref_tol tol,
                   const char *label) {
  char s1[128], s2[128];
  if (!t) {
    cr_expect_fail("%s: tensor is NULL: %s (%s)", label, tgc_last_error(),
                   tgc_status_str(tgc_last_status()));
    return false;
  }
  if (tgc_dtype_of(t) != dt) {
    cr_expect_fail("%s: dtype %s, expected %s", label, tgc_dtype_name(tgc_dtype_of(t)),
                   tgc_dtype_name(dt));
    return false;
  }
  int nd = tgc_ndim(t);
  const int64_t *sh = tgc_shape(t);
  bool same = nd == want->ndim && (nd == 0 || (sh && !memcmp(sh, want->shape, sizeof(int64_t) * (size_t)nd)));
  if (!same) {
    cr_expect_fail("%s: shape %s, expected %s", label,
                   nd >= 0 && sh ? ref_shape_str(nd, sh, s1, sizeof s1) : "(none)",
                   ref_shape_str(want->ndim, want->shape, s2, sizeof s2));
    return false;
  }
  size_t nbytes = (size_t)want->numel * ref_size(dt);
  void *buf = ref_alloc(nbytes);
  tgc_status st = tgc_to_host(t, buf, nbytes);
  if (st != TGC_OK) {
    cr_expect_fail("%s: tgc_to_host failed: %s: %s", label, tgc_status_str(st), tgc_last_error());
    return false;
  }
  int64_t bad = 0, first = -1;
  double worst = 0;
  for (int64_t i = 0; i < want->numel; i++) {
    double g = ref_load(dt, buf, i), w = want->v[i];
    if (!close_enough(g, w, tol)) {
      if (first < 0) first = i;
      bad++;
      if (fabs(g - w) > worst || isnan(g)) worst = fabs(g - w);
    }
  }
  if (bad) {
    int64_t idx[TGC_MAX_DIMS];
    unravel(first, want->ndim, want->shape, idx);
    cr_expect_fail("%s (%s %s): %lld of %lld elements differ; first at %s: got %.9g, "
                   "expected %.9g (rtol %g, atol %g; largest error %.3g)",
                   label, tgc_dtype_name(dt), ref_shape_str(want->ndim, want->shape, s2, sizeof s2),
                   (long long)bad, (long long)want->numel, ref_shape_str(want->ndim, idx, s1, sizeof s1),
                   ref_load(dt, buf, first), want->v[first], tol.rtol, tol.atol, worst);
    return false;
  }
  return true;
}

static void queue(tgc_tensor *t, const ref_t *want, tgc_dtype dt, ref_tol tol, const char *fmt,
                  va_list ap) {
  if (npend == cappend) {
    cappend = cappend ? 2 * cappend : 64;
    pend = realloc(pend, (size_t)cappend * sizeof *pend);
    cr_assert_not_null(pend);
  }
  pending *p = &pend[npend++];
  *p = (pending){.t = t, .want = want, .dt = dt, .tol = tol};
  vsnprintf(p->label, sizeof p->label, fmt, ap);
  if (!t) { /* report the constructor's failure now, while its message is fresh */
    cr_expect_fail("%s: the op returned NULL: %s: %s", p->label,
                   tgc_status_str(tgc_last_status()), tgc_last_error());
    npend--;
  }
}

void ref_expect(tgc_tensor *t, const ref_t *want, tgc_dtype dt, ref_tolkind kind, const char *fmt,
                ...) {
  va_list ap;
  va_start(ap, fmt);
  queue(t, want, dt, ref_tol_for(dt, kind), fmt, ap);
  va_end(ap);
}

void ref_expect_tol(tgc_tensor *t, const ref_t *want, tgc_dtype dt, ref_tol tol, const char *fmt,
                    ...) {
  va_list ap;
  va_start(ap, fmt);
  queue(t, want, dt, tol, fmt, ap);
  va_end(ap);
}

void ref_verify(void) {
  if (npend == 0) return;
  tgc_tensor **ts = ref_alloc((size_t)npend * sizeof *ts);
  for (int i = 0; i < npend; i++) ts[i] = pend[i].t;
  tgc_status st = tgc_realize(tctx, npend, ts);
  if (st != TGC_OK) {
    cr_expect_fail("tgc_realize of %d tensors failed: %s: %s; realizing them one at a time",
                   npend, tgc_status_str(st), tgc_last_error());
    for (int i = 0; i < npend; i++) {
      st = tgc_realize(tctx, 1, &pend[i].t);
      if (st != TGC_OK)
        cr_expect_fail("%s: tgc_realize failed: %s: %s", pend[i].label, tgc_status_str(st),
                       tgc_last_error());
      else
        ref_check_now(pend[i].t, pend[i].want, pend[i].dt, pend[i].tol, pend[i].label);
    }
  } else {
    for (int i = 0; i < npend; i++) {
      cr_expect(tgc_is_realized(pend[i].t), "%s: not realized after tgc_realize", pend[i].label);
      ref_check_now(pend[i].t, pend[i].want, pend[i].dt, pend[i].tol, pend[i].label);
    }
  }
  npend = 0;
}
