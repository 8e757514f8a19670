/* checks.c - gpu_check's op checks: each builds a small tgc graph from
 * seeded inputs, computes the same values with plain loops in f64, and
 * compares them under a per-op tolerance, printing one PASS or FAIL line.
 * run_checks runs the whole list; bench/gpu_check.c runs it once per pass
 * and times the matvec table with the host helpers declared in checks.h.
 *
 * Host memory for inputs and references comes from one pool (hmem) that
 * run_checks empties after each check, so a check allocates freely and
 * frees nothing itself.
 */
#include "checks.h"

#include <math.h>

/* ---- host memory: freed all at once after each check ------------------- */

static void **hblocks;
static int nhblocks, caphblocks;

void *hmem(size_t n) {
  if (nhblocks == caphblocks)
    hblocks = tgc_xrealloc(hblocks, sizeof *hblocks * (size_t)(caphblocks = caphblocks ? caphblocks * 2 : 64));
  return hblocks[nhblocks++] = tgc_xcalloc(1, n ? n : 1);
}

void hfree(void) {
  for (int i = 0; i < nhblocks; i++) free(hblocks[i]);
  nhblocks = 0;
}

double *dmem(int64_t n) { return hmem(sizeof(double) * (size_t)n); }

static int64_t numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

/* ---- seeded values (splitmix64) ------------------------------------------ */

uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double *uniform(int64_t n, double lo, double hi, uint64_t seed) {
  double *v = dmem(n);
  for (int64_t i = 0; i < n; i++) v[i] = lo + (hi - lo) * (double)(rng_next(&seed) >> 11) * 0x1p-53;
  return v;
}

/* Integers in [lo, hi], inclusive. */
static double *randint(int64_t n, int64_t lo, int64_t hi, uint64_t seed) {
  double *v = dmem(n);
  uint64_t span = (uint64_t)(hi - lo) + 1;
  for (int64_t i = 0; i < n; i++) v[i] = (double)(lo + (int64_t)(rng_next(&seed) % span));
  return v;
}

/* ---- dtypes: host storage <-> double, round to nearest even ------------- */

static uint16_t f16_from_float(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffff;
  if (ax > 0x7f800000) return sign | 0x7e00;   /* NaN */
  if (ax >= 0x47800000) return sign | 0x7c00;  /* >= 65536 (and inf): inf */
  if (ax < 0x38800000) {                       /* below 2^-14: subnormal, units of 2^-24 */
    float a;
    memcpy(&a, &ax, 4);
    return sign | (uint16_t)lrintf(a * 16777216.0f); /* exact scaling; rounds to even */
  }
  uint32_t h = ((ax >> 23) - 112) << 10 | (ax >> 13 & 0x3ff), rem = ax & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* a carry may reach inf: right */
  return sign | (uint16_t)h;
}

static float f16_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = h >> 10 & 0x1f, m = h & 0x3ff, x;
  if (e == 0) {
    float f = ldexpf((float)m, -24);
    return (h & 0x8000) ? -f : f;
  }
  x = e == 31 ? sign | 0x7f800000 | m << 13 : sign | (e + 112) << 23 | m << 13;
  float f;
  memcpy(&f, &x, 4);
  return f;
}

static uint16_t bf16_from_float(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)(x >> 16 | 0x40); /* quiet NaN */
  return (uint16_t)((x + 0x7fff + (x >> 16 & 1)) >> 16);
}

static float bf16_to_float(uint16_t h) {
  uint32_t x = (uint32_t)h << 16;
  float f;
  memcpy(&f, &x, 4);
  return f;
}

/* The value v becomes when stored as dt (C conversion for integers). */
static double quant(tgc_dtype dt, double v) {
  switch (dt) {
  case TGC_F32: return (float)v;
  case TGC_F16: return f16_to_float(f16_from_float((float)v));
  case TGC_BF16: return bf16_to_float(bf16_from_float((float)v));
  case TGC_I32: return (double)(int32_t)v;
  case TGC_BOOL: return v != 0;
  default: return v;
  }
}

void store(tgc_dtype dt, void *buf, int64_t i, double v) {
  switch (dt) {
  case TGC_F32: ((float *)buf)[i] = (float)v; break;
  case TGC_F16: ((uint16_t *)buf)[i] = f16_from_float((float)v); break;
  case TGC_BF16: ((uint16_t *)buf)[i] = bf16_from_float((float)v); break;
  case TGC_I32: ((int32_t *)buf)[i] = (int32_t)v; break;
  case TGC_BOOL: ((bool *)buf)[i] = v != 0; break;
  case TGC_F64: ((double *)buf)[i] = v; break;
  default: TGC_ASSERT(!"dtype not used by gpu_check");
  }
}

double load(tgc_dtype dt, const void *buf, int64_t i) {
  switch (dt) {
  case TGC_F32: return ((const float *)buf)[i];
  case TGC_F16: return f16_to_float(((const uint16_t *)buf)[i]);
  case TGC_BF16: return bf16_to_float(((const uint16_t *)buf)[i]);
  case TGC_I32: return ((const int32_t *)buf)[i];
  case TGC_BOOL: return ((const bool *)buf)[i];
  case TGC_F64: return ((const double *)buf)[i];
  default: TGC_ASSERT(!"dtype not used by gpu_check"); return 0;
  }
}

/* v quantised in place to dt, uploaded as a tensor of shape. */
static tgc_tensor *up(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape, double *v) {
  int64_t n = numel(ndim, shape);
  void *buf = hmem(tgc_dtype_size(dt) * (size_t)n);
  for (int64_t i = 0; i < n; i++) store(dt, buf, i, v[i] = quant(dt, v[i]));
  return tgc_from_data(ctx, dt, ndim, shape, buf);
}

/* t's values as doubles, or NULL when it cannot be computed. */
static double *fetch(tgc_tensor *t) {
  tgc_dtype dt = tgc_dtype_of(t);
  int64_t n = tgc_numel(t);
  void *buf = hmem(tgc_dtype_size(dt) * (size_t)n);
  if (tgc_to_host(t, buf, tgc_dtype_size(dt) * (size_t)n) != TGC_OK) return NULL;
  double *v = dmem(n);
  for (int64_t i = 0; i < n; i++) v[i] = load(dt, buf, i);
  return v;
}

/* ---- comparing (the rule is on tol, in checks.h) -------------------------- */

static const tol EXACT = {0, 0, 0};

/* One op rounded once (simple), or a libm function or composite (trans). */
static tol tol_for(tgc_dtype dt, bool trans) {
  switch (dt) {
  case TGC_F16: return trans ? (tol){5e-3, 1e-3, 0} : (tol){6e-4, 1e-5, 0};
  case TGC_BF16: return trans ? (tol){2e-2, 1e-2, 0} : (tol){4.5e-3, 1e-4, 0};
  case TGC_F32: return trans ? (tol){1e-4, 1e-5, 0} : (tol){1e-5, 1e-6, 0};
  default: return EXACT;
  }
}

/* Dot products and sums: accumulated in f32, rounded once to dt. */
tol tol_dot(tgc_dtype dt) {
  return dt == TGC_F32 ? (tol){0, 1e-6, 2e-5} : (tol){1e-3, 1e-4, 2e-4};
}

static double allowed(tol t, double want, double mag) { return t.atol + t.rtol * fabs(want) + t.mtol * mag; }

static bool close_to(double got, double want, double mag, tol t) {
  if (isnan(want)) return isnan(got);
  if (isinf(want) || (t.rtol == 0 && t.atol == 0 && t.mtol == 0)) return got == want;
  return fabs(got - want) <= allowed(t, want, mag);
}

static void verdict(suite *s, const char *label, const double *got, const double *want,
                    const double *mag, int64_t n, tol t) {
  int64_t bad = -1, nbad = 0;
  double worst = 0, share = 0;
  for (int64_t i = 0; i < n; i++) {
    double m = mag ? mag[i] : 0, err = fabs(got[i] - want[i]);
    if (!close_to(got[i], want[i], m, t) && nbad++ == 0) bad = i;
    if (isfinite(err) && err > worst) worst = err;
    if (isfinite(err) && allowed(t, want[i], m) > 0 && err / allowed(t, want[i], m) > share)
      share = err / allowed(t, want[i], m);
  }
  if (bad < 0) {
    s->pass++;
    if (allowed(t, 0, 0) == 0 && t.rtol == 0 && t.mtol == 0) printf("PASS  %-58s exact\n", label);
    else printf("PASS  %-58s max err %.2e (%3.0f%% of tol)\n", label, worst, 100 * share);
  } else {
    s->fail++;
    printf("FAIL  %-58s %lld of %lld wrong; first at %lld: got %.9g, want %.9g; max err %.2e\n",
           label, (long long)nbad, (long long)n, (long long)bad, got[bad], want[bad], worst);
  }
}

/* Realizes t and compares its n values with want. */
void expect(suite *s, const char *name, tgc_tensor *t, int64_t n, const double *want,
                   const double *mag, tol tl) {
  char label[128];
  snprintf(label, sizeof label, "%s%s", name, s->tag);
  double *got = t && tgc_numel(t) == n ? fetch(t) : NULL;
  if (!got) {
    s->fail++;
    printf("FAIL  %-58s %s\n", label, t && tgc_numel(t) != n ? "wrong number of elements" : tgc_last_error());
    tgc_clear_error();
    return;
  }
  verdict(s, label, got, want, mag, n, tl);
}

/* ---- checks: elementwise ---------------------------------------------------- */

typedef tgc_tensor *(*binop)(tgc_tensor *, tgc_tensor *);
typedef tgc_tensor *(*unop)(tgc_tensor *);

static double r_add(double a, double b) { return a + b; }
static double r_mul(double a, double b) { return a * b; }
static double r_div(double a, double b) { return a / b; }
static double r_exp(double a, double b) { return (void)b, exp(a); }
static double r_log(double a, double b) { return (void)b, log(a); }
static double r_sqrt(double a, double b) { return (void)b, sqrt(a); }

typedef struct ew_case {
  const char *name;
  tgc_dtype dt;
  binop bin; /* NULL for a unary op */
  unop un;
  double (*ref)(double, double);
  double lo, hi, blo, bhi; /* ranges of a and b */
  bool trans;              /* tolerance of a libm function */
  bool bcast;              /* b is [65], broadcast over a's rows */
} ew_case;

static const ew_case ew_cases[] = {
    {"add f32 [33,65] + [65]", TGC_F32, tgc_add, NULL, r_add, -10, 10, -10, 10, false, true},
    {"mul f32 [33,65]", TGC_F32, tgc_mul, NULL, r_mul, -10, 10, -10, 10, false, false},
    {"div f32 [33,65]", TGC_F32, tgc_div, NULL, r_div, -10, 10, 0.25, 4, false, false},
    {"exp f32 [33,65]", TGC_F32, NULL, tgc_exp, r_exp, -20, 20, 0, 0, true, false},
    {"log f32 [33,65]", TGC_F32, NULL, tgc_log, r_log, 1e-3, 1e3, 0, 0, true, false},
    {"sqrt f32 [33,65]", TGC_F32, NULL, tgc_sqrt, r_sqrt, 0, 1e4, 0, 0, false, false},
    {"add f16 [33,65] + [65]", TGC_F16, tgc_add, NULL, r_add, -10, 10, -10, 10, false, true},
    {"mul f16 [33,65]", TGC_F16, tgc_mul, NULL, r_mul, -10, 10, -10, 10, false, false},
    {"div f16 [33,65]", TGC_F16, tgc_div, NULL, r_div, -10, 10, 0.25, 4, false, false},
    {"exp f16 [33,65]", TGC_F16, NULL, tgc_exp, r_exp, -5, 5, 0, 0, true, false},
    {"add bf16 [33,65] + [65]", TGC_BF16, tgc_add, NULL, r_add, -10, 10, -10, 10, false, true},
    {"mul bf16 [33,65]", TGC_BF16, tgc_mul, NULL, r_mul, -10, 10, -10, 10, false, false},
};

static void check_elementwise(suite *s) {
  for (int c = 0; c < COUNT(ew_cases); c++) {
    const ew_case *e = &ew_cases[c];
    int64_t n = 33 * 65, nb = e->bcast ? 65 : n;
    double *a = uniform(n, e->lo, e->hi, 100 + (uint64_t)c), *b = uniform(nb, e->blo, e->bhi, 200 + (uint64_t)c);
    tgc_tensor *ta = up(s->ctx, e->dt, SH(33, 65), a), *t;
    if (e->bin)
      t = e->bin(ta, e->bcast ? up(s->ctx, e->dt, SH(65), b) : up(s->ctx, e->dt, SH(33, 65), b));
    else
      t = e->un(ta);
    double *want = dmem(n);
    for (int64_t i = 0; i < n; i++) want[i] = e->ref(a[i], b[e->bcast ? i % 65 : i]);
    tol tl = tol_for(e->dt, e->trans);
    if (e->trans) tl.atol = e->dt == TGC_F32 ? 1e-12 : 1e-5; /* exp(-20) is 2e-9: relative error counts */
    expect(s, e->name, t, n, want, NULL, tl);
  }
}

static void check_where(suite *s) {
  int64_t n = 33 * 65;
  double *a = uniform(n, -1, 1, 300), *b = uniform(n, -1, 1, 301), *want = dmem(n);
  tgc_tensor *ta = up(s->ctx, TGC_F32, SH(33, 65), a), *tb = up(s->ctx, TGC_F32, SH(33, 65), b);
  tgc_tensor *t = tgc_where(tgc_lt(ta, tb), ta, tgc_mul(tb, tgc_scalar(s->ctx, TGC_F32, 2)));
  for (int64_t i = 0; i < n; i++) want[i] = a[i] < b[i] ? a[i] : 2 * b[i];
  expect(s, "where(a < b, a, 2*b) f32 [33,65]", t, n, want, NULL, tol_for(TGC_F32, false));
}

/* Round trips through a half type must round exactly as IEEE does, edge
 * cases included: subnormals, the largest finite value, overflow, inf, NaN. */
static void check_casts(suite *s) {
  static const double special[] = {0.0, -0.0, 1e-6, 6e-8, 2e-8, 3e-8, 65504, 65519, 65520, 1e5,
                                   -1e5, 0.1, 1.0 / 3, 3e38, 1e-40, INFINITY, -INFINITY, NAN};
  const tgc_dtype halfs[] = {TGC_F16, TGC_BF16};
  for (int h = 0; h < 2; h++) {
    int64_t n = 1000;
    double *v = uniform(n, -300, 300, 400 + (uint64_t)h), *want = dmem(n);
    for (int i = 0; i < COUNT(special); i++) v[i] = special[i];
    tgc_tensor *x = up(s->ctx, TGC_F32, SH(1000), v);
    for (int64_t i = 0; i < n; i++) want[i] = quant(halfs[h], v[i]);
    char name[64];
    snprintf(name, sizeof name, "cast f32 -> %s -> f32 [1000]", tgc_dtype_name(halfs[h]));
    expect(s, name, tgc_cast(tgc_cast(x, halfs[h]), TGC_F32), n, want, NULL, EXACT);
  }
  int64_t n = 33 * 65;
  double *f = uniform(n, -1000, 1000, 410), *i32 = randint(n, -(1 << 24), 1 << 24, 411);
  double *wf = dmem(n), *wi = dmem(n);
  tgc_tensor *tf = up(s->ctx, TGC_F32, SH(33, 65), f), *ti = up(s->ctx, TGC_I32, SH(33, 65), i32);
  for (int64_t i = 0; i < n; i++) wf[i] = trunc(f[i]), wi[i] = i32[i];
  expect(s, "cast f32 -> i32 [33,65] (truncates)", tgc_cast(tf, TGC_I32), n, wf, NULL, EXACT);
  expect(s, "cast i32 -> f32 [33,65]", tgc_cast(ti, TGC_F32), n, wi, NULL, EXACT);
}

/* ---- checks: integers ---------------------------------------------------------- */

static double ri_idiv(int32_t a, int32_t b) { return b ? a / b : 0; }
static double ri_mod(int32_t a, int32_t b) { return b ? a % b : 0; }
static double ri_shl(int32_t a, int32_t b) { return (int32_t)((uint32_t)a << (b & 31)); }
static double ri_shr(int32_t a, int32_t b) { return a >> (b & 31); }
static double ri_and(int32_t a, int32_t b) { return a & b; }
static double ri_or(int32_t a, int32_t b) { return a | b; }
static double ri_xor(int32_t a, int32_t b) { return a ^ b; }

typedef struct int_case {
  const char *name;
  binop op;
  double (*ref)(int32_t, int32_t);
  int64_t alo, ahi, blo, bhi;
} int_case;

/* Division truncates toward zero and by zero gives 0; shift counts are
 * taken modulo 32 (tgc.h). */
static const int_case int_cases[] = {
    {"idiv i32 (b in [-20,20], zeros give 0)", tgc_idiv, ri_idiv, -1000, 1000, -20, 20},
    {"mod i32 (b in [-20,20], zeros give 0)", tgc_mod, ri_mod, -1000, 1000, -20, 20},
    {"shl i32 (counts 0..40)", tgc_shl, ri_shl, -100000, 100000, 0, 40},
    {"shr i32 (arithmetic, counts 0..40)", tgc_shr, ri_shr, INT32_MIN, INT32_MAX, 0, 40},
    {"and i32", tgc_and, ri_and, INT32_MIN, INT32_MAX, INT32_MIN, INT32_MAX},
    {"or i32", tgc_or, ri_or, INT32_MIN, INT32_MAX, INT32_MIN, INT32_MAX},
    {"xor i32", tgc_xor, ri_xor, INT32_MIN, INT32_MAX, INT32_MIN, INT32_MAX},
};

static void check_ints(suite *s) {
  for (int c = 0; c < COUNT(int_cases); c++) {
    const int_case *k = &int_cases[c];
    int64_t n = 33 * 65;
    double *a = randint(n, k->alo, k->ahi, 500 + (uint64_t)c), *b = randint(n, k->blo, k->bhi, 600 + (uint64_t)c);
    double *want = dmem(n);
    tgc_tensor *t = k->op(up(s->ctx, TGC_I32, SH(33, 65), a), up(s->ctx, TGC_I32, SH(33, 65), b));
    for (int64_t i = 0; i < n; i++) want[i] = k->ref((int32_t)a[i], (int32_t)b[i]);
    expect(s, k->name, t, n, want, NULL, EXACT);
  }
}

/* ---- checks: reductions ------------------------------------------------------ */

/* Sum or max of x over one axis; mag gets the sum of magnitudes. */
static void reduce_ref(int ndim, const int64_t *shape, int axis, bool is_max, const double *x,
                       double *out, double *mag) {
  int64_t outer = numel(axis, shape), len = shape[axis], inner = numel(ndim - axis - 1, shape + axis + 1);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      double acc = is_max ? -INFINITY : 0, m = 0;
      for (int64_t j = 0; j < len; j++) {
        double v = x[(o * len + j) * inner + i];
        acc = is_max ? fmax(acc, v) : acc + v;
        m += fabs(v);
      }
      out[o * inner + i] = acc, mag[o * inner + i] = m;
    }
}

static void check_reduce(suite *s) {
  static const struct { int ndim; int64_t shape[3]; } shapes[] = {{2, {33, 65}}, {3, {4, 5, 6}}};
  for (int sh = 0; sh < COUNT(shapes); sh++) {
    int nd = shapes[sh].ndim;
    const int64_t *shape = shapes[sh].shape;
    int64_t n = numel(nd, shape);
    double *x = uniform(n, -1, 1, 700 + (uint64_t)sh), *want = dmem(n), *mag = dmem(n);
    tgc_tensor *tx = up(s->ctx, TGC_F32, nd, shape, x);
    char sstr[32], name[96];
    tgc_shape_str(nd, shape, sstr, sizeof sstr);
    for (int axis = 0; axis < nd; axis++)
      for (int is_max = 0; is_max < 2; is_max++) {
        tgc_tensor *t = is_max ? tgc_max(tx, 1, &axis, false) : tgc_sum(tx, 1, &axis, false);
        reduce_ref(nd, shape, axis, is_max, x, want, mag);
        snprintf(name, sizeof name, "%s f32 %s axis %d", is_max ? "max" : "sum", sstr, axis);
        expect(s, name, t, n / shape[axis], want, mag, is_max ? EXACT : tol_dot(TGC_F32));
      }
  }
  double *h = uniform(16 * 1000, -1, 1, 710), *want = dmem(16), *mag = dmem(16);
  tgc_tensor *t = tgc_sum(up(s->ctx, TGC_F16, SH(16, 1000), h), 1, (const int[]){1}, false);
  reduce_ref(2, (const int64_t[]){16, 1000}, 1, false, h, want, mag);
  expect(s, "sum f16 [16,1000] axis 1", t, 16, want, mag, tol_dot(TGC_F16));
}

/* Small integers in f32: every partial sum is exact, so any lost or
 * doubled element shows. */
static void check_big_sum(suite *s) {
  int64_t n = (int64_t)1 << 20;
  double *x = randint(n, 0, 8, 720), want = 0;
  for (int64_t i = 0; i < n; i++) want += x[i];
  tgc_tensor *t = tgc_sum(up(s->ctx, TGC_F32, SH(n), x), 0, NULL, false);
  expect(s, "sum f32 [1048576] (integers < 9: exact)", t, 1, &want, NULL, EXACT);
}

/* ---- checks: composites -------------------------------------------------------- */

typedef enum row_op { ROW_SOFTMAX, ROW_RMSNORM_W, ROW_LAYERNORM } row_op;

/* One row of softmax, rmsnorm(x)*w or layernorm, in f64. */
static void row_ref(row_op op, int64_t n, const double *x, const double *w, double *out) {
  double mx = -INFINITY, sum = 0, sq = 0;
  for (int64_t i = 0; i < n; i++) mx = fmax(mx, x[i]), sum += x[i], sq += x[i] * x[i];
  double mean = sum / (double)n, var = 0, den = 0;
  for (int64_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean), den += exp(x[i] - mx);
  var /= (double)n;
  for (int64_t i = 0; i < n; i++)
    out[i] = op == ROW_SOFTMAX   ? exp(x[i] - mx) / den
             : op == ROW_RMSNORM_W ? x[i] / sqrt(sq / (double)n + 1e-5) * w[i]
                                   : (x[i] - mean) / sqrt(var + 1e-5);
}

typedef struct row_case {
  const char *name;
  row_op op;
  tgc_dtype dt;
  int64_t rows, cols;
} row_case;

static const row_case row_cases[] = {
    {"softmax f32 [33,65] axis -1", ROW_SOFTMAX, TGC_F32, 33, 65},
    {"softmax f32 [8,4096] axis -1", ROW_SOFTMAX, TGC_F32, 8, 4096},
    {"softmax f16 [16,1000] axis -1", ROW_SOFTMAX, TGC_F16, 16, 1000},
    {"rmsnorm(x)*w f32 [8,4096]", ROW_RMSNORM_W, TGC_F32, 8, 4096},
    {"rmsnorm(x)*w f16 [4,2048]", ROW_RMSNORM_W, TGC_F16, 4, 2048},
    {"layernorm f32 [16,768]", ROW_LAYERNORM, TGC_F32, 16, 768},
};

static void check_rows(suite *s) {
  for (int c = 0; c < COUNT(row_cases); c++) {
    const row_case *r = &row_cases[c];
    int64_t n = r->rows * r->cols;
    double *x = uniform(n, -4, 4, 800 + (uint64_t)c), *w = uniform(r->cols, 0.5, 1.5, 900 + (uint64_t)c);
    tgc_tensor *tx = up(s->ctx, r->dt, 2, (const int64_t[]){r->rows, r->cols}, x), *t;
    if (r->op == ROW_SOFTMAX) t = tgc_softmax(tx, -1);
    else if (r->op == ROW_LAYERNORM) t = tgc_layernorm(tx, 1e-5);
    else t = tgc_mul(tgc_rmsnorm(tx, 1e-5), up(s->ctx, r->dt, 1, &r->cols, w));
    double *want = dmem(n);
    for (int64_t i = 0; i < r->rows; i++) row_ref(r->op, r->cols, x + i * r->cols, w, want + i * r->cols);
    tol tl = tol_for(r->dt, true);
    if (r->op == ROW_SOFTMAX) tl.atol = r->dt == TGC_F32 ? 1e-9 : 1e-6; /* outputs ~1/cols */
    expect(s, r->name, t, n, want, NULL, tl);
  }
}

/* out[b,m,n] = sum_k a[b,m,k] * w(b,k,n), where w is b[b,k,n] or, when
 * nk, b[b,n,k] (the LLaMA layout); mag: sum of |terms|. */
static void matmul_ref(int64_t nb, int64_t m, int64_t k, int64_t n, bool nk, const double *a,
                       const double *b, double *out, double *mag) {
  for (int64_t bi = 0; bi < nb; bi++)
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double acc = 0, sa = 0;
        for (int64_t l = 0; l < k; l++) {
          double p = a[(bi * m + i) * k + l] * b[nk ? (bi * n + j) * k + l : (bi * k + l) * n + j];
          acc += p, sa += fabs(p);
        }
        out[(bi * m + i) * n + j] = acc, mag[(bi * m + i) * n + j] = sa;
      }
}

typedef struct mm_case {
  const char *name;
  tgc_dtype dt;
  int64_t batch, m, k, n; /* batch 0: plain 2-d operands */
  bool nk;                /* b stored [n,k] and transposed: a matvec in the LLaMA layout */
} mm_case;

static const mm_case mm_cases[] = {
    {"matmul f32 [64,128] @ [128,96]", TGC_F32, 0, 64, 128, 96, false},
    {"matmul f16 [64,128] @ [128,96]", TGC_F16, 0, 64, 128, 96, false},
    {"batched matmul f32 [4,32,64] @ [4,64,48]", TGC_F32, 4, 32, 64, 48, false},
    {"matvec f32 x[1,4096] @ transpose(W[4096,4096])", TGC_F32, 0, 1, 4096, 4096, true},
    {"matvec f16 x[1,4096] @ transpose(W[4096,4096])", TGC_F16, 0, 1, 4096, 4096, true},
};

static void check_matmul(suite *s) {
  for (int c = 0; c < COUNT(mm_cases); c++) {
    const mm_case *mc = &mm_cases[c];
    int64_t nb = mc->batch ? mc->batch : 1, na = nb * mc->m * mc->k, nbv = nb * mc->k * mc->n;
    double *a = uniform(na, -1, 1, 1000 + (uint64_t)c), *b = uniform(nbv, -1, 1, 1100 + (uint64_t)c);
    int nd = mc->batch ? 3 : 2;
    int64_t ash[3] = {nb, mc->m, mc->k}, bsh[3] = {nb, mc->k, mc->n}, wsh[3] = {nb, mc->n, mc->k};
    tgc_tensor *ta = up(s->ctx, mc->dt, nd, ash + 3 - nd, a);
    tgc_tensor *tb = mc->nk ? tgc_transpose(up(s->ctx, mc->dt, nd, wsh + 3 - nd, b), nd - 2, nd - 1)
                            : up(s->ctx, mc->dt, nd, bsh + 3 - nd, b);
    int64_t no = nb * mc->m * mc->n;
    double *want = dmem(no), *mag = dmem(no);
    matmul_ref(nb, mc->m, mc->k, mc->n, mc->nk, a, b, want, mag);
    expect(s, mc->name, tgc_matmul(ta, tb), no, want, mag, tol_dot(mc->dt));
  }
}

/* ---- checks: movement ------------------------------------------------------------ */

typedef enum mv_kind { MV_PERMUTE, MV_FLIP, MV_PAD, MV_SHRINK } mv_kind;
typedef struct move {
  mv_kind kind;
  int perm[4];     /* MV_PERMUTE */
  unsigned flip;   /* MV_FLIP: bit mask of axes */
  int64_t pr[8];   /* MV_PAD: before/after per axis; MV_SHRINK: start/end per axis */
} move;

static tgc_tensor *move_tgc(const move *m, tgc_tensor *t) {
  int axes[4], na = 0;
  switch (m->kind) {
  case MV_PERMUTE: return tgc_permute(t, m->perm);
  case MV_PAD: return tgc_pad(t, m->pr);
  case MV_SHRINK: return tgc_shrink(t, m->pr);
  case MV_FLIP:
    for (int i = 0; i < 4; i++)
      if (m->flip >> i & 1) axes[na++] = i;
    return tgc_flip(t, na, axes);
  }
  return NULL;
}

/* Applies m to x of shape sh (updated to the result's shape) by index math. */
static double *move_ref(const move *m, int nd, int64_t *sh, const double *x) {
  int64_t os[4], idx[4], src[4];
  for (int d = 0; d < nd; d++)
    os[d] = m->kind == MV_PERMUTE ? sh[m->perm[d]]
            : m->kind == MV_PAD   ? sh[d] + m->pr[2 * d] + m->pr[2 * d + 1]
            : m->kind == MV_SHRINK ? m->pr[2 * d + 1] - m->pr[2 * d]
                                   : sh[d];
  int64_t n = numel(nd, os);
  double *out = dmem(n);
  for (int64_t i = 0; i < n; i++) {
    bool in = true;
    for (int64_t q = i, d = nd - 1; d >= 0; d--) idx[d] = q % os[d], q /= os[d];
    for (int d = 0; d < nd; d++) {
      if (m->kind == MV_PERMUTE) src[m->perm[d]] = idx[d];
      else if (m->kind == MV_FLIP) src[d] = m->flip >> d & 1 ? sh[d] - 1 - idx[d] : idx[d];
      else if (m->kind == MV_PAD) src[d] = idx[d] - m->pr[2 * d];
      else src[d] = idx[d] + m->pr[2 * d];
    }
    int64_t off = 0;
    for (int d = 0; d < nd; d++) {
      in = in && src[d] >= 0 && src[d] < sh[d];
      off = off * sh[d] + src[d];
    }
    out[i] = in ? x[off] : 0;
  }
  memcpy(sh, os, sizeof(int64_t) * (size_t)nd);
  return out;
}

typedef struct move_case {
  const char *name;
  bool exp_first; /* exp before the moves: a pad must still give 0, not exp(0) */
  int nd;
  int64_t shape[4];
  int nmoves;
  move moves[4];
} move_case;

static const move_case move_cases[] = {
    {"permute(2,0,1) [4,5,6] + b", false, 3, {4, 5, 6}, 1, {{MV_PERMUTE, .perm = {2, 0, 1}}}},
    {"pad [5,7] by (1,2),(3,0) + b", false, 2, {5, 7}, 1, {{MV_PAD, .pr = {1, 2, 3, 0}}}},
    {"pad(exp(a)) [5,7] by (2,0),(1,1) + b", true, 2, {5, 7}, 1, {{MV_PAD, .pr = {2, 0, 1, 1}}}},
    {"shrink [9,11] to [2:7,3:10] + b", false, 2, {9, 11}, 1, {{MV_SHRINK, .pr = {2, 7, 3, 10}}}},
    {"flip(0,2) [4,5,6] + b", false, 3, {4, 5, 6}, 1, {{MV_FLIP, .flip = 5}}},
    {"shrink(pad(flip(permute))) [6,8] + b", false, 2, {6, 8}, 4,
     {{MV_PERMUTE, .perm = {1, 0}}, {MV_FLIP, .flip = 1}, {MV_PAD, .pr = {1, 1, 2, 0}},
      {MV_SHRINK, .pr = {1, 9, 0, 7}}}},
};

static void check_movement(suite *s) {
  for (int c = 0; c < COUNT(move_cases); c++) {
    const move_case *mc = &move_cases[c];
    int64_t sh[4];
    memcpy(sh, mc->shape, sizeof sh);
    double *x = uniform(numel(mc->nd, sh), -2, 2, 1200 + (uint64_t)c);
    tgc_tensor *t = up(s->ctx, TGC_F32, mc->nd, sh, x);
    if (mc->exp_first) {
      t = tgc_exp(t);
      for (int64_t i = 0; i < numel(mc->nd, sh); i++) x[i] = exp(x[i]);
    }
    for (int i = 0; i < mc->nmoves; i++) {
      t = move_tgc(&mc->moves[i], t);
      x = move_ref(&mc->moves[i], mc->nd, sh, x);
    }
    int64_t n = numel(mc->nd, sh);
    double *b = uniform(n, -2, 2, 1300 + (uint64_t)c), *want = dmem(n);
    t = tgc_add(t, up(s->ctx, TGC_F32, mc->nd, sh, b));
    for (int64_t i = 0; i < n; i++) want[i] = x[i] + b[i];
    expect(s, mc->name, t, n, want, NULL, tol_for(TGC_F32, mc->exp_first));
  }
}

/* Two cats of 2-d f32 tensors: along axis 1 and along axis 0. */
static void check_cat(suite *s) {
  static const struct { const char *name; int axis, n; int64_t shapes[3][2]; } cases[] = {
      {"cat axis 1: [3,5] [3,2] [3,7]", 1, 3, {{3, 5}, {3, 2}, {3, 7}}},
      {"cat axis 0: [2,4] [5,4]", 0, 2, {{2, 4}, {5, 4}}},
  };
  for (int c = 0; c < COUNT(cases); c++) {
    int axis = cases[c].axis, rows = 0, cols = 0;
    tgc_tensor *ts[3];
    double *xs[3];
    for (int i = 0; i < cases[c].n; i++) {
      const int64_t *sh = cases[c].shapes[i];
      xs[i] = uniform(sh[0] * sh[1], -1, 1, 1400 + (uint64_t)(c * 3 + i));
      ts[i] = up(s->ctx, TGC_F32, 2, sh, xs[i]);
      rows = axis ? (int)sh[0] : rows + (int)sh[0];
      cols = axis ? cols + (int)sh[1] : (int)sh[1];
    }
    double *want = dmem(rows * cols);
    for (int i = 0, r0 = 0, c0 = 0; i < cases[c].n; i++) {
      const int64_t *sh = cases[c].shapes[i];
      for (int64_t r = 0; r < sh[0]; r++)
        for (int64_t k = 0; k < sh[1]; k++) want[(r0 + r) * cols + c0 + k] = xs[i][r * sh[1] + k];
      r0 += axis ? 0 : (int)sh[0], c0 += axis ? (int)sh[1] : 0;
    }
    expect(s, cases[c].name, tgc_cat(cases[c].n, ts, axis), rows * cols, want, NULL, EXACT);
  }
}

/* ids outside [0, V) read as zero rows (tgc.h). */
static void check_embedding(suite *s) {
  int64_t v = 100, d = 64, nid = 14;
  double *table = uniform(v * d, -1, 1, 1500), *ids = randint(nid, 0, v - 1, 1501), *want = dmem(nid * d);
  ids[3] = -1, ids[10] = (double)v;
  tgc_tensor *t = tgc_embedding(up(s->ctx, TGC_F32, SH(100, 64), table), up(s->ctx, TGC_I32, SH(2, 7), ids));
  for (int64_t i = 0; i < nid; i++)
    for (int64_t j = 0; j < d; j++)
      want[i * d + j] = ids[i] >= 0 && ids[i] < (double)v ? table[(int64_t)ids[i] * d + j] : 0;
  expect(s, "embedding f32 [100,64] by i32 [2,7] (ids -1 and 100: zeros)", t, nid * d, want, NULL, EXACT);
}

typedef void (*check_fn)(suite *s);
/* ---- checks: variables and the JIT ------------------------------------------- */

typedef struct window_step {
  tgc_var *pos;
} window_step;

static tgc_status window_fn(tgc_ctx *ctx, void *user, int nin, tgc_tensor *const *ins, int *nout,
                            tgc_tensor **outs) {
  window_step *w = user;
  (void)nin;
  tgc_tensor *win = tgc_shrink_var(ins[0], 0, w->pos, 0, 64);
  outs[0] = tgc_add(tgc_mul(win, tgc_scalar(ctx, TGC_F32, 2)), tgc_scalar(ctx, TGC_F32, 1));
  *nout = 1;
  return tgc_realize(ctx, 1, outs);
}

/* A window at start_pos, through the JIT (CUDA graph replays with the
 * variable's new value each call): every call must read its own window. */
static void check_var_window_jit(suite *s) {
  double *x = randint(128, -50, 50, 730), want[64];
  tgc_tensor *t = up(s->ctx, TGC_F32, SH(128), x), *out[TGC_JIT_MAX_IO];
  window_step w = {tgc_var_new(s->ctx, "start_pos", 0, 63)};
  tgc_jit *j = w.pos ? tgc_jit_new(s->ctx, window_fn, &w) : NULL;
  for (int call = 0; call < 6; call++) {
    int pos = (call * 11) % 64, nout = 0;
    char name[96];
    snprintf(name, sizeof name, "x[start_pos:start_pos+64]*2+1 via the JIT, call %d, start_pos %d", call + 1, pos);
    for (int i = 0; i < 64; i++) want[i] = 2 * x[pos + i] + 1;
    bool ok = j && tgc_var_bind(w.pos, pos) == TGC_OK && tgc_jit_call(j, 1, &t, &nout, out) == TGC_OK;
    expect(s, name, ok ? out[0] : NULL, 64, want, NULL, EXACT);
  }
  tgc_jit_free(j);
}

static const check_fn all_checks[] = {
    check_elementwise, check_where, check_casts, check_ints,    check_reduce,    check_big_sum,
    check_rows,        check_matmul, check_movement, check_cat, check_embedding, check_var_window_jit,
};

void run_checks(suite *s) {
  for (int i = 0; i < COUNT(all_checks); i++) {
    all_checks[i](s);
    hfree();
    fflush(stdout);
  }
}
