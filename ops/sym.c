/* sym.c - symbolic sizes: affine expressions of variables.
 *
 * A symbolic size (start_pos + 1) is an ordinary int64_t with a tag in its
 * top bits, so it travels through every shape array, view and node
 * argument unchanged, and two equal expressions are equal integers (the
 * encoding is canonical).  The layout, from the top bit down:
 *
 *   12 bits  tag 0x8A5 (negative, and never a value a caller would pass)
 *   16 bits  four 4-bit signed coefficients, one per variable (-8..7)
 *   36 bits  the constant term, signed
 *
 * An expression whose coefficients are all zero is stored as the plain
 * constant.  Bounds come from the variables' [min, max], which is how a
 * buffer of symbolic shape is sized (at its largest value).
 */
#include "tgc_internal.h"

#define SYM_TAG UINT64_C(0x8A5)
#define SYM_BBITS 36
#define SYM_BMAX ((INT64_C(1) << (SYM_BBITS - 1)) - 1)

bool tgc_sym_is(int64_t d) { return ((uint64_t)d >> 52) == SYM_TAG; }

tgc_affine tgc_sym_get(int64_t d) {
  tgc_affine a = {{0}, d};
  if (!tgc_sym_is(d)) return a;
  uint64_t u = (uint64_t)d;
  for (int k = 0; k < TGC_MAX_VARS; k++) {
    int c = (int)((u >> (SYM_BBITS + 4 * k)) & 15);
    a.c[k] = c >= 8 ? c - 16 : c;
  }
  uint64_t b = u & ((UINT64_C(1) << SYM_BBITS) - 1);
  a.b = b >> (SYM_BBITS - 1) ? (int64_t)(b | ~((UINT64_C(1) << SYM_BBITS) - 1)) : (int64_t)b;
  return a;
}

bool tgc_sym_put(const tgc_affine *a, int64_t *d) {
  bool sym = false;
  for (int k = 0; k < TGC_MAX_VARS; k++) {
    if (a->c[k] < -8 || a->c[k] > 7) return false;
    sym |= a->c[k] != 0;
  }
  if (!sym) {
    *d = a->b;
    return true;
  }
  if (a->b < -SYM_BMAX || a->b > SYM_BMAX) return false;
  uint64_t u = SYM_TAG << 52;
  for (int k = 0; k < TGC_MAX_VARS; k++) u |= (uint64_t)(a->c[k] & 15) << (SYM_BBITS + 4 * k);
  u |= (uint64_t)a->b & ((UINT64_C(1) << SYM_BBITS) - 1);
  *d = (int64_t)u;
  return true;
}

/* x*ka + y*kb, false when it cannot be encoded. */
static bool lin2(int64_t x, int64_t ka, int64_t y, int64_t kb, int64_t *r) {
  tgc_affine a = tgc_sym_get(x), b = tgc_sym_get(y), s;
  for (int k = 0; k < TGC_MAX_VARS; k++) s.c[k] = a.c[k] * ka + b.c[k] * kb;
  if (__builtin_mul_overflow(a.b, ka, &a.b) || __builtin_mul_overflow(b.b, kb, &b.b) ||
      __builtin_add_overflow(a.b, b.b, &s.b))
    return false;
  return tgc_sym_put(&s, r);
}

bool tgc_sym_add(int64_t a, int64_t b, int64_t *r) { return lin2(a, 1, b, 1, r); }
bool tgc_sym_sub(int64_t a, int64_t b, int64_t *r) { return lin2(a, 1, b, -1, r); }
bool tgc_sym_mulc(int64_t a, int64_t k, int64_t *r) { return lin2(a, k, 0, 0, r); }

int64_t tgc_sym_eval(int64_t d, const int64_t *vals) {
  if (!tgc_sym_is(d)) return d;
  tgc_affine a = tgc_sym_get(d);
  int64_t v = a.b;
  for (int k = 0; k < TGC_MAX_VARS; k++) v += a.c[k] * vals[k];
  return v;
}

/* The extreme of d over the variables' ranges (hi: largest). */
static int64_t extreme(const tgc_ctx *ctx, int64_t d, bool hi) {
  if (!tgc_sym_is(d)) return d;
  tgc_affine a = tgc_sym_get(d);
  int64_t v = a.b;
  for (int k = 0; k < TGC_MAX_VARS; k++) {
    if (!a.c[k]) continue;
    const tgc_var *var = ctx && k < ctx->nvars ? ctx->vars[k] : NULL;
    int64_t lo = var ? var->min : 0, up = var ? var->max : 0;
    v += a.c[k] * ((a.c[k] > 0) == hi ? up : lo);
  }
  return v;
}
int64_t tgc_sym_max(const tgc_ctx *ctx, int64_t d) { return extreme(ctx, d, true); }
int64_t tgc_sym_min(const tgc_ctx *ctx, int64_t d) { return extreme(ctx, d, false); }

int tgc_sym_cmp(const tgc_ctx *ctx, int64_t a, int64_t b) {
  int64_t d;
  if (a == b) return 0;
  if (!tgc_sym_sub(a, b, &d)) return 2;
  if (tgc_sym_max(ctx, d) < 0) return -1;
  if (tgc_sym_min(ctx, d) > 0) return 1;
  if (tgc_sym_max(ctx, d) == 0 && tgc_sym_min(ctx, d) == 0) return 0;
  return 2;
}

bool tgc_shape_symbolic(int ndim, const int64_t *shape) {
  for (int i = 0; i < ndim; i++)
    if (tgc_sym_is(shape[i])) return true;
  return false;
}

void tgc_shape_max(const tgc_ctx *ctx, int ndim, const int64_t *shape, int64_t *out) {
  for (int i = 0; i < ndim; i++) out[i] = tgc_sym_max(ctx, shape[i]);
}

int64_t tgc_shape_numel_max(const tgc_ctx *ctx, int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= tgc_sym_max(ctx, shape[i]);
  return n;
}

char *tgc_sym_str(const tgc_ctx *ctx, int64_t d, char *buf, size_t cap) {
  if (!tgc_sym_is(d)) {
    snprintf(buf, cap, "%lld", (long long)d);
    return buf;
  }
  tgc_affine a = tgc_sym_get(d);
  size_t len = 0;
  buf[0] = 0;
  for (int k = 0; k < TGC_MAX_VARS && len < cap; k++) {
    if (!a.c[k]) continue;
    char name[16];
    const char *nm = ctx && k < ctx->nvars ? ctx->vars[k]->name : (snprintf(name, sizeof name, "v%d", k), name);
    const char *sign = a.c[k] < 0 ? "-" : len ? "+" : "";
    int64_t m = a.c[k] < 0 ? -a.c[k] : a.c[k];
    if (m == 1) {
      len += (size_t)snprintf(buf + len, cap - len, "%s%s", sign, nm);
    } else {
      len += (size_t)snprintf(buf + len, cap - len, "%s%lld*%s", sign, (long long)m, nm);
    }
  }
  if (a.b && len < cap) snprintf(buf + len, cap - len, "%+lld", (long long)a.b);
  return buf;
}

/* ---- the public face ------------------------------------------------------- */

int64_t tgc_var_dim(tgc_var *v, int64_t mul, int64_t add) {
  if (!v) {
    tgc_set_error(TGC_ERR_ARG, "tgc_var_dim: variable is NULL");
    return -1;
  }
  tgc_affine a = {{0}, add};
  a.c[v->index] = mul;
  int64_t d;
  if (!tgc_sym_put(&a, &d)) {
    tgc_set_error(TGC_ERR_ARG, "tgc_var_dim: %lld*%s%+lld cannot be represented (|mul| <= 7, |add| < 2^35)",
                  (long long)mul, v->name, (long long)add);
    return -1;
  }
  return d;
}

int64_t tgc_dim_add(int64_t a, int64_t b) {
  int64_t d;
  if (!tgc_sym_add(a, b, &d)) {
    tgc_set_error(TGC_ERR_ARG, "tgc_dim_add: the sum cannot be represented (coefficients -8..7)");
    return -1;
  }
  return d;
}

bool tgc_dim_is_symbolic(int64_t d) { return tgc_sym_is(d); }

int64_t tgc_dim_value(tgc_ctx *ctx, int64_t d) {
  if (!tgc_sym_is(d)) return d;
  if (!ctx) {
    tgc_set_error(TGC_ERR_ARG, "tgc_dim_value: ctx is NULL");
    return -1;
  }
  tgc_affine a = tgc_sym_get(d);
  for (int k = 0; k < TGC_MAX_VARS; k++)
    if (a.c[k] && (k >= ctx->nvars || !ctx->var_bound[k])) {
      tgc_set_error(TGC_ERR_ARG, "tgc_dim_value: variable %s is not bound (tgc_var_bind)",
                    k < ctx->nvars ? ctx->vars[k]->name : "?");
      return -1;
    }
  return tgc_sym_eval(d, ctx->var_values);
}
