/* view.c - views and view stacks: how a kernel indexes memory.
 *
 * Every movement op is an edit of the top view: permute, expand, pad,
 * shrink and flip always fit in one view (masks record padding); reshape
 * fits when the dims it merges or splits are laid out contiguously with
 * respect to each other, and otherwise a new view is pushed whose index
 * space is the flattened shape of the one below.  Nothing here touches
 * data; the lowerer turns a stack into index arithmetic.
 *
 * Sizes and mask bounds may be symbolic (ops/sym.c); strides never are: a
 * buffer of symbolic shape is laid out at its largest extent, and a window
 * that starts at a symbolic position adds variable terms (voff) to the
 * offset.  A reshape keeps each symbolic size as an axis of its own, and
 * pushes a new view over a symbolic shape only when the symbolic size is
 * outermost (the flat index then never needs a stride of it).
 */
#include "tgc_internal.h"

/* Strides of a row-major layout of maxshape, for a view of `shape`. */
static void contiguous_in(tgc_view *v, int ndim, const int64_t *shape, const int64_t *maxshape) {
  memset(v, 0, sizeof *v);
  v->ndim = ndim;
  int64_t st = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    v->shape[i] = shape[i];
    v->strides[i] = shape[i] == 1 ? 0 : st;
    st *= maxshape[i];
  }
}

/* No symbolic size, or one that comes before every other size > 1: then
 * row-major strides never depend on it. */
static bool sym_outermost(int ndim, const int64_t *shape) {
  int i = 0;
  while (i < ndim && shape[i] == 1) i++;
  for (int j = i + 1; j < ndim; j++)
    if (tgc_sym_is(shape[j])) return false;
  return true;
}

void tgc_view_contiguous(tgc_view *v, int ndim, const int64_t *shape) {
  TGC_ASSERT(sym_outermost(ndim, shape));
  int64_t maxs[TGC_MAX_KDIMS];
  for (int i = 0; i < ndim; i++) maxs[i] = tgc_sym_is(shape[i]) ? 1 : shape[i]; /* never multiplied in */
  contiguous_in(v, ndim, shape, maxs);
}

tgc_st tgc_st_contiguous(int ndim, const int64_t *shape) { return tgc_st_contiguous_in(NULL, ndim, shape); }

tgc_st tgc_st_contiguous_in(const tgc_ctx *ctx, int ndim, const int64_t *shape) {
  tgc_st st;
  memset(&st, 0, sizeof st);
  st.nviews = 1;
  int64_t maxs[TGC_MAX_KDIMS];
  TGC_ASSERT(ctx || !tgc_shape_symbolic(ndim, shape));
  tgc_shape_max(ctx, ndim, shape, maxs);
  contiguous_in(&st.views[0], ndim, shape, maxs);
  return st;
}

const tgc_view *tgc_st_top(const tgc_st *st) { return &st->views[st->nviews - 1]; }
static tgc_view *top(tgc_st *st) { return &st->views[st->nviews - 1]; }

static bool mask_full(const tgc_view *v, int i) {
  return !v->has_mask || (v->mask[i][0] == 0 && v->mask[i][1] == v->shape[i]);
}

static void ensure_mask(tgc_view *v) {
  if (v->has_mask) return;
  v->has_mask = true;
  for (int i = 0; i < v->ndim; i++) {
    v->mask[i][0] = 0;
    v->mask[i][1] = v->shape[i];
  }
}

/* Drops a mask that covers everything; a mask that is empty on some axis
 * makes the whole view read zeros, which stays as it is. */
static void tidy_mask(tgc_view *v) {
  if (!v->has_mask) return;
  for (int i = 0; i < v->ndim; i++)
    if (!mask_full(v, i)) return;
  v->has_mask = false;
}

/* Tries to express `ns` over the same memory as v in one view (the
 * no-copy reshape of numpy, extended to masks on untouched axes). */
static bool reshape_view(const tgc_view *v, int nn, const int64_t *ns, tgc_view *out) {
  int od[TGC_MAX_KDIMS], on = 0; /* old axes of size > 1 */
  for (int i = 0; i < v->ndim; i++) {
    if (v->shape[i] != 1) {
      od[on++] = i;
    } else if (v->has_mask && (v->mask[i][0] != 0 || v->mask[i][1] != 1)) {
      return false; /* an empty axis: keep the view stack */
    }
  }
  memset(out, 0, sizeof *out);
  out->ndim = nn;
  out->offset = v->offset;
  memcpy(out->voff, v->voff, sizeof out->voff);
  for (int i = 0; i < nn; i++) {
    out->shape[i] = ns[i];
    out->mask[i][1] = ns[i];
  }
  int oi = 0, ni = 0;
  while (ni < nn && ns[ni] == 1) ni++;
  while (oi < on && ni < nn) {
    int64_t np = ns[ni], op = v->shape[od[oi]];
    int nj = ni + 1, oj = oi + 1;
    if ((tgc_sym_is(np) || tgc_sym_is(op)) && np != op) return false; /* symbolic: one to one only */
    while (np != op) {
      if (np < op) {
        if (nj >= nn || tgc_sym_is(ns[nj])) return false;
        np *= ns[nj++];
      } else {
        if (oj >= on || tgc_sym_is(v->shape[od[oj]])) return false;
        op *= v->shape[od[oj++]];
      }
    }
    for (int k = oi; k < oj - 1; k++)
      if (v->strides[od[k]] != v->shape[od[k + 1]] * v->strides[od[k + 1]]) return false;
    /* A masked axis may only be carried over one to one. */
    bool one_to_one = oj - oi == 1 && nj - ni == 1;
    for (int k = oi; k < oj; k++)
      if (!mask_full(v, od[k]) && !one_to_one) return false;
    int64_t st = v->strides[od[oj - 1]];
    for (int k = nj - 1; k >= ni; k--) {
      out->strides[k] = ns[k] == 1 ? 0 : st;
      if (k > ni) st *= ns[k]; /* a symbolic size is alone in its group: never multiplied */
    }
    if (one_to_one && v->has_mask) {
      out->mask[ni][0] = v->mask[od[oi]][0];
      out->mask[ni][1] = v->mask[od[oi]][1];
      out->has_mask = true;
    }
    ni = nj;
    oi = oj;
    while (ni < nn && ns[ni] == 1) ni++;
  }
  if (oi != on || ni != nn) return false;
  tidy_mask(out);
  return true;
}

bool tgc_st_reshape(tgc_st *st, int ndim, const int64_t *shape) {
  tgc_view *v = top(st), nv;
  if (v->ndim == ndim && !memcmp(v->shape, shape, sizeof *shape * (size_t)ndim)) return true;
  if (reshape_view(v, ndim, shape, &nv)) {
    *v = nv;
    return true;
  }
  /* a new view indexes the flat index of this one: a symbolic size may
   * only be outermost in both, where the flat index needs no stride of it */
  if (st->nviews == TGC_MAX_VIEWS || !sym_outermost(v->ndim, v->shape) || !sym_outermost(ndim, shape))
    return false;
  st->nviews++;
  tgc_view_contiguous(top(st), ndim, shape);
  return true;
}

void tgc_st_permute(tgc_st *st, const int *perm) {
  tgc_view *v = top(st), old = *v;
  for (int i = 0; i < old.ndim; i++) {
    v->shape[i] = old.shape[perm[i]];
    v->strides[i] = old.strides[perm[i]];
    v->mask[i][0] = old.mask[perm[i]][0];
    v->mask[i][1] = old.mask[perm[i]][1];
  }
}

void tgc_st_expand(tgc_st *st, const int64_t *shape) {
  tgc_view *v = top(st);
  for (int i = 0; i < v->ndim; i++) {
    if (v->shape[i] == shape[i]) continue;
    TGC_ASSERT(v->shape[i] == 1);
    v->strides[i] = 0;
    if (v->has_mask && v->mask[i][1] > v->mask[i][0]) v->mask[i][1] = shape[i];
    v->shape[i] = shape[i];
  }
}

/* offset += k * stride, where k may be symbolic (its variable terms go to voff). */
static void add_offset(tgc_view *v, int64_t k, int64_t stride) {
  tgc_affine a = tgc_sym_get(k);
  v->offset += a.b * stride;
  for (int j = 0; j < TGC_MAX_VARS; j++) v->voff[j] += a.c[j] * stride;
}

bool tgc_st_pad(tgc_st *st, const int64_t *pads) {
  tgc_view *v = top(st);
  ensure_mask(v);
  for (int i = 0; i < v->ndim; i++) {
    int64_t b = pads[2 * i], a = pads[2 * i + 1], nb;
    if (!tgc_sym_mulc(b, -1, &nb)) return false;
    add_offset(v, nb, v->strides[i]);
    if (!tgc_sym_add(v->mask[i][0], b, &v->mask[i][0]) || !tgc_sym_add(v->mask[i][1], b, &v->mask[i][1]) ||
        !tgc_sym_add(v->shape[i], b, &v->shape[i]) || !tgc_sym_add(v->shape[i], a, &v->shape[i]))
      return false;
  }
  tidy_mask(v);
  return true;
}

/* The mask [lo, hi) of an axis after keeping [b, e) of it: clamped to the
 * new extent, empty when nothing is left.  False when that depends on the
 * variables' values. */
static bool shrink_mask(const tgc_ctx *ctx, int64_t *m, int64_t b, int64_t e) {
  int64_t lo, hi, n;
  if (!tgc_sym_sub(m[0], b, &lo) || !tgc_sym_sub(m[1], b, &hi) || !tgc_sym_sub(e, b, &n)) return false;
  int c_lo = tgc_sym_cmp(ctx, lo, 0), c_hi = tgc_sym_cmp(ctx, hi, n);
  if (c_lo == 2 || c_hi == 2) return false;
  lo = c_lo < 0 ? 0 : lo;
  hi = c_hi > 0 ? n : hi;
  int c = tgc_sym_cmp(ctx, hi, lo);
  if (c == 2) return false;
  if (c <= 0) lo = hi = 0;
  m[0] = lo;
  m[1] = hi;
  return true;
}

bool tgc_st_shrink(tgc_st *st, const int64_t *ranges, const tgc_ctx *ctx) {
  tgc_view *v = top(st);
  for (int i = 0; i < v->ndim; i++) {
    int64_t b = ranges[2 * i], e = ranges[2 * i + 1];
    add_offset(v, b, v->strides[i]);
    if (v->has_mask && !shrink_mask(ctx, v->mask[i], b, e)) return false;
    if (!tgc_sym_sub(e, b, &v->shape[i])) return false;
  }
  tidy_mask(v);
  return true;
}

/* A window that moves with a variable: the offset gains stride * var.  A
 * masked axis cannot move (its mask would depend on the variable). */
static bool st_shrinkv(tgc_st *st, const tgc_shrinkv *w) {
  tgc_view *v = top(st);
  int a = w->axis;
  if (v->has_mask && (v->mask[a][0] != 0 || v->mask[a][1] != v->shape[a])) return false;
  v->offset += w->start * v->strides[a];
  v->voff[w->var] += v->strides[a];
  v->shape[a] = w->len;
  if (v->has_mask) v->mask[a][1] = w->len;
  return true;
}

bool tgc_st_flip(tgc_st *st, uint32_t axes, const tgc_ctx *ctx) {
  tgc_view *v = top(st);
  for (int i = 0; i < v->ndim; i++) {
    if (!((axes >> i) & 1)) continue;
    int64_t n = v->shape[i], n1;
    if (!tgc_sym_add(n, -1, &n1)) return false;
    add_offset(v, n1, v->strides[i]);
    v->strides[i] = -v->strides[i];
    if (v->has_mask) {
      int64_t lo = v->mask[i][0], hi = v->mask[i][1];
      int c = tgc_sym_cmp(ctx, hi, lo);
      if (c == 2) return false;
      if (c <= 0) {
        v->mask[i][0] = v->mask[i][1] = 0;
      } else if (!tgc_sym_sub(n, hi, &v->mask[i][0]) || !tgc_sym_sub(n, lo, &v->mask[i][1])) {
        return false;
      }
    }
  }
  return true;
}

bool tgc_st_apply(tgc_st *st, const tgc_uop *m) {
  switch (m->op) {
  case TGC_OP_RESHAPE: return tgc_st_reshape(st, m->ndim, m->shape);
  case TGC_OP_PERMUTE: tgc_st_permute(st, m->arg); return true;
  case TGC_OP_EXPAND: tgc_st_expand(st, m->shape); return true;
  case TGC_OP_PAD: return tgc_st_pad(st, m->arg);
  case TGC_OP_SHRINK: return tgc_st_shrink(st, m->arg, m->ctx);
  case TGC_OP_FLIP: return tgc_st_flip(st, *(const uint32_t *)m->arg, m->ctx);
  case TGC_OP_SHRINKV: return st_shrinkv(st, m->arg);
  default: TGC_ASSERT(!"not a movement op");
  }
  return false;
}

/* Row-major strides for the shape (a symbolic size only outermost, where
 * its extent does not matter). */
static bool row_major(const tgc_view *v) {
  int64_t st = 1;
  bool outer_only = false;
  for (int i = v->ndim - 1; i >= 0; i--) {
    if (v->shape[i] == 1) continue;
    if (outer_only || v->strides[i] != st) return false;
    if (tgc_sym_is(v->shape[i])) {
      outer_only = true;
    } else {
      st *= v->shape[i];
    }
  }
  return true;
}

bool tgc_st_is_contiguous(const tgc_st *st) {
  const tgc_view *v = tgc_st_top(st);
  if (st->nviews != 1 || v->has_mask || v->offset || v->voff[0] || v->voff[1] || v->voff[2] || v->voff[3])
    return false;
  return row_major(v);
}

/* A view with row-major strides and no mask maps flat index f to
 * offset + f: the view above it can absorb it. */
static bool is_linear(const tgc_view *v) { return !v->has_mask && row_major(v); }

void tgc_st_simplify(tgc_st *st) {
  for (int i = 0; i < st->nviews; i++) tidy_mask(&st->views[i]);
  while (st->nviews > 1 && is_linear(&st->views[st->nviews - 2])) {
    tgc_view low = st->views[st->nviews - 2];
    st->views[st->nviews - 2] = st->views[st->nviews - 1];
    st->views[st->nviews - 2].offset += low.offset;
    for (int k = 0; k < 4; k++) st->views[st->nviews - 2].voff[k] += low.voff[k];
    st->nviews--;
  }
}
