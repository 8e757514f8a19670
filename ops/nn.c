/* nn.c - composite ops built from primitives.
 *
 * Nothing here adds a kernel of its own: each composite is a few lines of
 * primitive ops, and the scheduler decides what fuses.  matmul in
 * particular is reshape/expand/mul/sum; the scheduler turns the expanded
 * product into one reduce kernel that never materialises it.  Only the
 * embedding lookup needs a primitive of its own (GATHER), because its
 * index comes from data.
 */
#include "tgc_internal.h"

#include <math.h>

static tgc_uop *scalar_like(tgc_uop *x, double v) {
  return tgc_expand(tgc_scalar(x->ctx, x->dtype, v), x->ndim, x->shape);
}

tgc_tensor *tgc_matmul(tgc_tensor *a, tgc_tensor *b) {
  if (!a || !b) return NULL;
  if (a->ndim < 1 || b->ndim < 1) return tgc_fail(TGC_ERR_SHAPE, "matmul: operands must have at least 1 dimension");
  if (a->dtype != b->dtype)
    return tgc_fail(TGC_ERR_DTYPE, "matmul: dtypes differ: %s and %s", tgc_dtypes[a->dtype].name,
                    tgc_dtypes[b->dtype].name);
  bool a1 = a->ndim == 1, b1 = b->ndim == 1;
  tgc_uop *A = a1 ? tgc_unsqueeze(a, 0) : a, *B = b1 ? tgc_unsqueeze(b, 1) : b;
  if (!A || !B) return NULL;
  int64_t M = A->shape[A->ndim - 2], K = A->shape[A->ndim - 1];
  int64_t K2 = B->shape[B->ndim - 2], N = B->shape[B->ndim - 1];
  if (K != K2) {
    char sa[160], sb[160];
    return tgc_fail(TGC_ERR_SHAPE, "matmul: inner dimensions differ: %s @ %s",
                    tgc_shape_str(a->ndim, a->shape, sa, sizeof sa),
                    tgc_shape_str(b->ndim, b->shape, sb, sizeof sb));
  }
  if ((A->ndim > B->ndim ? A->ndim : B->ndim) + 1 > TGC_MAX_DIMS)
    return tgc_fail(TGC_ERR_SHAPE, "matmul: too many batch dimensions");
  /* A [..., M, 1, K] * B^T [..., 1, N, K], summed over K. */
  A = tgc_unsqueeze(A, -2);
  B = tgc_unsqueeze(tgc_transpose(B, -1, -2), -3);
  tgc_uop *prod = tgc_mul(A, B);
  if (!prod) {
    char sa[160], sb[160];
    return tgc_fail(TGC_ERR_SHAPE, "matmul: batch dimensions of %s and %s cannot be broadcast",
                    tgc_shape_str(a->ndim, a->shape, sa, sizeof sa),
                    tgc_shape_str(b->ndim, b->shape, sb, sizeof sb));
  }
  int last = -1;
  tgc_uop *out = tgc_sum(prod, 1, &last, false);
  if (a1) out = tgc_squeeze(out, -2);
  if (b1) out = tgc_squeeze(out, -1);
  (void)M;
  (void)N;
  return out;
}

tgc_tensor *tgc_softmax(tgc_tensor *x, int axis) {
  if (!x) return NULL;
  if (!tgc_dtype_is_float(x->dtype)) return tgc_fail(TGC_ERR_DTYPE, "softmax: needs a float dtype");
  tgc_uop *e = tgc_exp(tgc_sub(x, tgc_max(x, 1, &axis, true)));
  tgc_uop *r = tgc_div(e, tgc_sum(e, 1, &axis, true));
  return r ? r : tgc_fail_in("softmax");
}

tgc_tensor *tgc_log_softmax(tgc_tensor *x, int axis) {
  if (!x) return NULL;
  if (!tgc_dtype_is_float(x->dtype)) return tgc_fail(TGC_ERR_DTYPE, "log_softmax: needs a float dtype");
  tgc_uop *s = tgc_sub(x, tgc_max(x, 1, &axis, true));
  tgc_uop *r = tgc_sub(s, tgc_log(tgc_sum(tgc_exp(s), 1, &axis, true)));
  return r ? r : tgc_fail_in("log_softmax");
}

tgc_tensor *tgc_rmsnorm(tgc_tensor *x, double eps) {
  if (!x) return NULL;
  if (x->ndim < 1) return tgc_fail(TGC_ERR_SHAPE, "rmsnorm: needs at least 1 dimension");
  int last = -1;
  tgc_uop *ms = tgc_mean(tgc_mul(x, x), 1, &last, true);
  tgc_uop *r = ms ? tgc_mul(x, tgc_rsqrt(tgc_add(ms, scalar_like(ms, eps)))) : NULL;
  return r ? r : tgc_fail_in("rmsnorm");
}

tgc_tensor *tgc_layernorm(tgc_tensor *x, double eps) {
  if (!x) return NULL;
  if (x->ndim < 1) return tgc_fail(TGC_ERR_SHAPE, "layernorm: needs at least 1 dimension");
  int last = -1;
  tgc_uop *c = tgc_sub(x, tgc_mean(x, 1, &last, true));
  tgc_uop *var = c ? tgc_mean(tgc_mul(c, c), 1, &last, true) : NULL;
  tgc_uop *r = var ? tgc_mul(c, tgc_rsqrt(tgc_add(var, scalar_like(var, eps)))) : NULL;
  return r ? r : tgc_fail_in("layernorm");
}

tgc_tensor *tgc_rope(tgc_tensor *x, tgc_tensor *cos, tgc_tensor *sin) {
  if (!x || !cos || !sin) return NULL;
  if (x->ndim < 2 || x->shape[x->ndim - 1] % 2)
    return tgc_fail(TGC_ERR_SHAPE, "rope: x must be [..., T, D] with D even");
  int nd = x->ndim;
  int64_t half = x->shape[nd - 1] / 2, s[TGC_MAX_DIMS + 1], r[2 * (TGC_MAX_DIMS + 1)];
  if (nd + 1 > TGC_MAX_DIMS) return tgc_fail(TGC_ERR_SHAPE, "rope: too many dimensions");
  memcpy(s, x->shape, sizeof *s * (size_t)nd);
  s[nd - 1] = half;
  s[nd] = 2;
  tgc_uop *pairs = tgc_reshape(x, nd + 1, s);
  for (int i = 0; i <= nd; i++) {
    r[2 * i] = 0;
    r[2 * i + 1] = s[i];
  }
  r[2 * nd + 1] = 1;
  tgc_uop *x0 = tgc_squeeze(tgc_shrink(pairs, r), -1);
  r[2 * nd] = 1;
  r[2 * nd + 1] = 2;
  tgc_uop *x1 = tgc_squeeze(tgc_shrink(pairs, r), -1);
  tgc_uop *o0 = tgc_sub(tgc_mul(x0, cos), tgc_mul(x1, sin));
  tgc_uop *o1 = o0 ? tgc_add(tgc_mul(x0, sin), tgc_mul(x1, cos)) : NULL;
  if ((!o0 || !o1) && tgc_last_status() != TGC_ERR_SHAPE) return tgc_fail_in("rope");
  if (!o0 || !o1) {
    char a[160], b[160], c[160];
    return tgc_fail(tgc_last_status(), "rope: cos %s and sin %s must broadcast to [..., T, D/2] of x %s",
                    tgc_shape_str(cos->ndim, cos->shape, a, sizeof a),
                    tgc_shape_str(sin->ndim, sin->shape, b, sizeof b),
                    tgc_shape_str(x->ndim, x->shape, c, sizeof c));
  }
  if (o0->ndim != nd || memcmp(o0->shape, s, sizeof *s * (size_t)nd))
    return tgc_fail(TGC_ERR_SHAPE, "rope: cos and sin must broadcast to [..., T, D/2]");
  tgc_uop *parts[2] = {tgc_unsqueeze(o0, -1), tgc_unsqueeze(o1, -1)};
  return tgc_reshape(tgc_cat(2, parts, -1), nd, x->shape);
}

tgc_status tgc_rope_tables(tgc_ctx *ctx, int64_t start, int64_t n, int64_t dim, double theta,
                           tgc_tensor **cos_out, tgc_tensor **sin_out) {
  if (!ctx || !cos_out || !sin_out) return tgc_set_error(TGC_ERR_ARG, "rope_tables: NULL argument");
  if (start < 0 || n < 1 || dim < 2 || dim % 2 || theta <= 0 || n * dim > (INT64_C(1) << 34))
    return tgc_set_error(TGC_ERR_ARG, "rope_tables: need start >= 0, n >= 1, even dim >= 2, theta > 0");
  int64_t half = dim / 2, shape[2] = {n, half};
  float *c = malloc(sizeof *c * (size_t)(n * half)), *s = malloc(sizeof *s * (size_t)(n * half));
  if (!c || !s) {
    free(c);
    free(s);
    return tgc_set_error(TGC_ERR_NOMEM, "rope_tables: out of host memory");
  }
  for (int64_t p = 0; p < n; p++) {
    for (int64_t i = 0; i < half; i++) {
      double ang = (double)(start + p) * pow(theta, -2.0 * (double)i / (double)dim);
      c[p * half + i] = (float)cos(ang);
      s[p * half + i] = (float)sin(ang);
    }
  }
  *cos_out = tgc_from_data(ctx, TGC_F32, 2, shape, c);
  *sin_out = *cos_out ? tgc_from_data(ctx, TGC_F32, 2, shape, s) : NULL;
  free(c);
  free(s);
  return *cos_out && *sin_out ? TGC_OK : tgc_last_status();
}

tgc_tensor *tgc_embedding(tgc_tensor *table, tgc_tensor *ids) {
  if (!table || !ids) return NULL;
  if (table->ctx != ids->ctx) return tgc_fail(TGC_ERR_ARG, "embedding: operands belong to different contexts");
  if (table->ndim != 2) return tgc_fail(TGC_ERR_SHAPE, "embedding: the table must be [V, D], not %d-d", table->ndim);
  if (tgc_dtypes[ids->dtype].is_float || ids->dtype == TGC_BOOL)
    return tgc_fail(TGC_ERR_DTYPE, "embedding: ids must be integers, not %s", tgc_dtypes[ids->dtype].name);
  if (ids->ndim + 1 > TGC_MAX_DIMS) return tgc_fail(TGC_ERR_SHAPE, "embedding: too many dimensions");
  if (tgc_shape_symbolic(ids->ndim, ids->shape))
    return tgc_fail(TGC_ERR_UNSUPPORTED, "embedding: ids of symbolic shape; look up the largest size and tgc_shrink the rows");
  int64_t s[TGC_MAX_DIMS];
  memcpy(s, ids->shape, sizeof *s * (size_t)ids->ndim);
  s[ids->ndim] = table->shape[1];
  tgc_uop *src[2] = {table, ids};
  return tgc_uop_new(table->ctx, TGC_OP_GATHER, table->dtype, 2, src, NULL, 0, ids->ndim + 1, s);
}
