/* lower.c - kernel AST + kernel shape -> linear IR.
 *
 * The linear IR is a list of instructions in program order: loops
 * (RANGE/ENDRANGE), index arithmetic, loads, ALU ops, accumulators and
 * stores.  Upcast and unroll axes are expanded here: the AST is lowered
 * once per combination of their values, and common subexpressions are
 * shared (so a load that does not depend on an upcast axis is emitted
 * once).  The vector axis, if any, is not expanded: values that depend on
 * it are vectors, loaded with one wide load where memory is contiguous.
 *
 * Index arithmetic is folded as it is built, with value bounds, so views
 * stacked by a reshape do not leave divisions in the inner loop when they
 * cancel.  Half-precision values are computed in f32: loads convert, and
 * stores convert back.
 */
#include "tgc_internal.h"

#include <math.h>

typedef struct lower {
  tgc_linprog *p;
  const tgc_ctx *ctx;        /* the variables' bounds */
  const tgc_kshape *ks;
  const tgc_lang *lang;
  int gidx, lidx;            /* GPU: group-axis and local-axis thread indices */
  int nlocal_loads;          /* makes local-memory loads unique (no CSE across barriers) */
  int W;                     /* lanes of the vector axis; 1 if none */
  int vals[TGC_MAX_KDIMS];   /* instruction giving each axis's value */
  int *cse;                  /* open hash of instruction indices */
  size_t cse_cap;
  int globals[TGC_MAX_BUFS];           /* DEFINE_GLOBAL per slot */
  const tgc_uop **memo_k;    /* AST node -> instruction, per expansion */
  int *memo_v;
  int nmemo, memo_cap;
} lower;

static tgc_dtype cdt(tgc_dtype dt) { return dt == TGC_F16 || dt == TGC_BF16 ? TGC_F32 : dt; }
static bool is_half(tgc_dtype dt) { return dt == TGC_F16 || dt == TGC_BF16; }

/* ---- emitting with common-subexpression elimination ---------------------- */

static uint64_t lin_hash(const tgc_lin *l) {
  uint64_t h = tgc_hash64(l->nsrc ? (const void *)l->src : "", sizeof *l->src * (size_t)l->nsrc,
                          ((uint64_t)l->op << 16) | ((uint64_t)l->dtype << 8) | l->vec);
  return tgc_hash64(&l->c, sizeof l->c, h);
}

static bool lin_eq(const tgc_lin *a, const tgc_lin *b) {
  return a->op == b->op && a->dtype == b->dtype && a->vec == b->vec && a->nsrc == b->nsrc &&
         (!a->nsrc || !memcmp(a->src, b->src, sizeof *a->src * (size_t)a->nsrc)) &&
         !memcmp(&a->c, &b->c, sizeof a->c);
}

static bool cse_ok(tgc_op op) {
  return op != TGC_OP_RANGE && op != TGC_OP_ENDRANGE && op != TGC_OP_DEFINE_ACC &&
         op != TGC_OP_ACC_ASSIGN && op != TGC_OP_STORE && op != TGC_OP_IF && op != TGC_OP_ENDIF &&
         op != TGC_OP_BARRIER && op != TGC_OP_DEFINE_LOCAL && op != TGC_OP_SHUFFLE_DOWN && op != TGC_OP_PREFETCH;
}

static void cse_grow(lower *L) {
  size_t cap = L->cse_cap ? L->cse_cap * 2 : 1024;
  int *t = tgc_xmalloc(sizeof *t * cap);
  for (size_t i = 0; i < cap; i++) t[i] = -1;
  for (int i = 0; i < L->p->n; i++) {
    if (!cse_ok(L->p->ins[i].op)) continue;
    size_t j = lin_hash(&L->p->ins[i]) & (cap - 1);
    while (t[j] >= 0) j = (j + 1) & (cap - 1);
    t[j] = i;
  }
  free(L->cse);
  L->cse = t;
  L->cse_cap = cap;
}

static int emit_full(lower *L, tgc_op op, tgc_dtype dt, int vec, int nsrc, const int *src,
                     tgc_cval c, int64_t vmin, int64_t vmax) {
  tgc_lin l = {.op = (uint16_t)op, .dtype = (uint8_t)dt, .vec = (uint8_t)vec, .nsrc = nsrc,
               .src = (int *)src, .c = c, .vmin = vmin, .vmax = vmax};
  size_t h = 0;
  if (cse_ok(op)) {
    if ((size_t)(L->p->n + 1) * 2 > L->cse_cap) cse_grow(L);
    h = lin_hash(&l) & (L->cse_cap - 1);
    for (; L->cse[h] >= 0; h = (h + 1) & (L->cse_cap - 1)) {
      tgc_lin *o = &L->p->ins[L->cse[h]];
      if (!o->dead && lin_eq(o, &l)) return L->cse[h];
    }
  }
  tgc_linprog *p = L->p;
  if (p->n == p->cap) p->ins = tgc_xrealloc(p->ins, sizeof *p->ins * (size_t)(p->cap = p->cap ? p->cap * 2 : 256));
  l.src = nsrc ? tgc_xmalloc(sizeof *src * (size_t)nsrc) : NULL;
  if (nsrc) memcpy(l.src, src, sizeof *src * (size_t)nsrc);
  p->ins[p->n] = l;
  if (cse_ok(op)) L->cse[h] = p->n;
  return p->n++;
}

static int emit(lower *L, tgc_op op, tgc_dtype dt, int vec, int nsrc, const int *src) {
  return emit_full(L, op, dt, vec, nsrc, src, (tgc_cval){0, 0}, INT64_MIN, INT64_MAX);
}

static const tgc_lin *I(lower *L, int i) { return &L->p->ins[i]; }

static int cnst(lower *L, tgc_dtype dt, tgc_cval c) {
  return emit_full(L, TGC_OP_CONST, dt, 1, 0, NULL, c, c.i, c.i);
}
static int iconst(lower *L, int64_t v) { return cnst(L, TGC_I64, (tgc_cval){(double)v, v}); }
static int bconst(lower *L, bool v) { return cnst(L, TGC_BOOL, (tgc_cval){v, v}); }
static bool is_const(lower *L, int i, int64_t *v) {
  if (I(L, i)->op != TGC_OP_CONST) return false;
  if (v) *v = I(L, i)->c.i;
  return true;
}

/* ---- folded index arithmetic (int64, bounds tracked) ---------------------- */

static int64_t sat_add(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? (a < 0 ? INT64_MIN : INT64_MAX) : r;
}
static int64_t sat_mul(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? ((a < 0) != (b < 0) ? INT64_MIN : INT64_MAX) : r;
}

static int iadd(lower *L, int a, int b) {
  int64_t x, y;
  if (is_const(L, a, &x) && is_const(L, b, &y)) return iconst(L, x + y);
  if (is_const(L, a, &x) && x == 0) return b;
  if (is_const(L, b, &y) && y == 0) return a;
  int s[2] = {a, b};
  return emit_full(L, TGC_OP_ADD, TGC_I64, 1, 2, s, (tgc_cval){0, 0},
                   sat_add(I(L, a)->vmin, I(L, b)->vmin), sat_add(I(L, a)->vmax, I(L, b)->vmax));
}

static int imul(lower *L, int a, int64_t c) {
  int64_t x;
  if (c == 0) return iconst(L, 0);
  if (c == 1) return a;
  if (is_const(L, a, &x)) return iconst(L, x * c);
  int s[2] = {a, iconst(L, c)};
  int64_t lo = sat_mul(I(L, a)->vmin, c), hi = sat_mul(I(L, a)->vmax, c);
  return emit_full(L, TGC_OP_MUL, TGC_I64, 1, 2, s, (tgc_cval){0, 0}, lo < hi ? lo : hi, lo < hi ? hi : lo);
}

/* Splits a sum into terms divisible by c (returned divided) and a rest. */
static void split_terms(lower *L, int a, int64_t c, int *quot, int *rest) {
  const tgc_lin *l = I(L, a);
  int64_t v;
  if (l->op == TGC_OP_ADD && l->dtype == TGC_I64) {
    int q1, r1, q2, r2;
    int s0 = l->src[0], s1 = l->src[1];
    split_terms(L, s0, c, &q1, &r1);
    split_terms(L, s1, c, &q2, &r2);
    *quot = iadd(L, q1, q2);
    *rest = iadd(L, r1, r2);
  } else if (l->op == TGC_OP_MUL && l->dtype == TGC_I64 && is_const(L, l->src[1], &v) && v % c == 0) {
    *quot = imul(L, l->src[0], v / c);
    *rest = iconst(L, 0);
  } else if (is_const(L, a, &v) && v % c == 0) {
    *quot = iconst(L, v / c);
    *rest = iconst(L, 0);
  } else {
    *quot = iconst(L, 0);
    *rest = a;
  }
}

static int idivc(lower *L, int a, int64_t c) {
  int64_t x;
  if (c == 1) return a;
  if (is_const(L, a, &x) && x >= 0) return iconst(L, x / c);
  const tgc_lin *l = I(L, a);
  if (l->vmin >= 0 && l->vmax < c) return iconst(L, 0);
  int q, r;
  split_terms(L, a, c, &q, &r);
  if (I(L, r)->vmin >= 0 && I(L, r)->vmax < c) return q;
  if (I(L, r)->vmin >= 0 && !(is_const(L, q, &x) && x == 0)) {
    int s[2] = {r, iconst(L, c)};
    int d = emit_full(L, TGC_OP_IDIV, TGC_I64, 1, 2, s, (tgc_cval){0, 0}, I(L, r)->vmin / c, I(L, r)->vmax / c);
    return iadd(L, q, d);
  }
  int s[2] = {a, iconst(L, c)};
  bool pos = l->vmin >= 0;
  return emit_full(L, TGC_OP_IDIV, TGC_I64, 1, 2, s, (tgc_cval){0, 0}, pos ? l->vmin / c : INT64_MIN,
                   pos ? l->vmax / c : INT64_MAX);
}

static int imodc(lower *L, int a, int64_t c) {
  int64_t x;
  if (c == 1) return iconst(L, 0);
  if (is_const(L, a, &x) && x >= 0) return iconst(L, x % c);
  const tgc_lin *l = I(L, a);
  if (l->vmin >= 0 && l->vmax < c) return a;
  int q, r;
  split_terms(L, a, c, &q, &r);
  if (I(L, r)->vmin >= 0 && I(L, r)->vmax < c) return r;
  int src = I(L, r)->vmin >= 0 ? r : a;
  int s[2] = {src, iconst(L, c)};
  bool pos = I(L, src)->vmin >= 0;
  return emit_full(L, TGC_OP_MOD, TGC_I64, 1, 2, s, (tgc_cval){0, 0}, pos ? 0 : -(c - 1), c - 1);
}

static int band(lower *L, int a, int b) {
  int64_t x;
  if (is_const(L, a, &x)) return x ? b : a;
  if (is_const(L, b, &x)) return x ? a : b;
  int s[2] = {a, b};
  return emit(L, TGC_OP_AND, TGC_BOOL, 1, 2, s);
}

/* Variable k, as a kernel argument, with its bounds. */
static int var_ins(lower *L, int k) {
  const tgc_var *v = k < L->ctx->nvars ? L->ctx->vars[k] : NULL;
  if (k + 1 > L->p->info.nvars) L->p->info.nvars = k + 1;
  L->p->info.var_mask |= 1u << k;
  return emit_full(L, TGC_OP_DEFINE_VAR, TGC_I64, 1, 0, NULL, (tgc_cval){k, k}, v ? v->min : 0, v ? v->max : 0);
}

/* The value of a size: a constant, or sum(c[k] * var k) + b. */
static int dimval(lower *L, int64_t d) {
  if (!tgc_sym_is(d)) return iconst(L, d);
  tgc_affine a = tgc_sym_get(d);
  int t = iconst(L, a.b);
  for (int k = 0; k < TGC_MAX_VARS; k++)
    if (a.c[k]) t = iadd(L, imul(L, var_ins(L, k), a.c[k]), t);
  return t;
}

static int64_t dmax(lower *L, int64_t d) { return tgc_sym_max(L->ctx, d); }

/* lo <= a < hi, folded by bounds; lo and hi may be symbolic sizes. */
static int in_range(lower *L, int a, int64_t lo_d, int64_t hi_d) {
  if (!tgc_sym_is(lo_d) && !tgc_sym_is(hi_d) && hi_d <= lo_d) return bconst(L, false);
  int lo = dimval(L, lo_d), hi = dimval(L, hi_d);
  int r = bconst(L, true);
  if (I(L, a)->vmin < I(L, lo)->vmax) {
    int s[2] = {lo, a};
    r = band(L, r, I(L, a)->vmax < I(L, lo)->vmin ? bconst(L, false) : emit(L, TGC_OP_CMPLE, TGC_BOOL, 1, 2, s));
  }
  if (I(L, a)->vmax >= I(L, hi)->vmin) {
    int s[2] = {a, hi};
    r = band(L, r, I(L, a)->vmin >= I(L, hi)->vmax ? bconst(L, false) : emit(L, TGC_OP_CMPLT, TGC_BOOL, 1, 2, s));
  }
  return r;
}

/* sum(voff[k] * var k): where a window that moves with variables sits. */
static int var_terms(lower *L, const tgc_view *v) {
  int t = iconst(L, 0);
  for (int k = 0; k < 4; k++)
    if (v->voff[k]) t = iadd(L, t, imul(L, var_ins(L, k), v->voff[k]));
  return t;
}

/* Index and validity of a leaf's element, for the current axis values. */
static void view_index(lower *L, const tgc_st *st, const int *vals, int *idx, int *valid) {
  const tgc_view *v = tgc_st_top(st);
  int lin = iadd(L, iconst(L, v->offset), var_terms(L, v)), ok = bconst(L, true);
  for (int i = 0; i < v->ndim; i++) {
    if (v->shape[i] == 1) continue;
    lin = iadd(L, lin, imul(L, vals[i], v->strides[i]));
    if (v->has_mask) ok = band(L, ok, in_range(L, vals[i], v->mask[i][0], v->mask[i][1]));
  }
  for (int k = st->nviews - 2; k >= 0; k--) {
    const tgc_view *w = &st->views[k];
    int64_t after = 1;
    int nl = iadd(L, iconst(L, w->offset), var_terms(L, w));
    int outer = 0; /* the outermost axis needs no modulo: the index is in range */
    while (outer < w->ndim - 1 && w->shape[outer] == 1) outer++;
    for (int d = w->ndim - 1; d >= 0; d--) {
      if (w->shape[d] == 1) continue;
      /* tgc_st_reshape lets a symbolic size into a lower view only outermost */
      TGC_ASSERT(d == outer || !tgc_sym_is(w->shape[d]));
      int x = idivc(L, lin, after);
      if (d != outer) {
        x = imodc(L, x, w->shape[d]);
        after *= w->shape[d];
      }
      nl = iadd(L, nl, imul(L, x, w->strides[d]));
      if (w->has_mask) ok = band(L, ok, in_range(L, x, w->mask[d][0], w->mask[d][1]));
    }
    lin = nl;
  }
  *idx = lin;
  *valid = ok;
}

/* ---- values: vectors, casts, ALU ---------------------------------------- */

static int gep(lower *L, int v, int lane) {
  if (I(L, v)->vec == 1) return v;
  if (I(L, v)->op == TGC_OP_VECTORIZE) return I(L, v)->src[lane];
  int s[1] = {v};
  return emit_full(L, TGC_OP_GEP, I(L, v)->dtype, 1, 1, s, (tgc_cval){lane, lane}, INT64_MIN, INT64_MAX);
}

static int broadcast_vec(lower *L, int v, int w) {
  if (w == 1 || I(L, v)->vec == w) return v;
  int s[64];
  for (int i = 0; i < w; i++) s[i] = v;
  return emit(L, TGC_OP_VECTORIZE, I(L, v)->dtype, w, w, s);
}

/* Ops the language renders directly on vectors; everything else is split
 * into lanes. */
static bool vec_ok(const lower *L, tgc_op op, tgc_dtype dt, tgc_dtype src_dt) {
  if (!L->lang->vec_alu) return false;
  if (op == TGC_OP_CAST) { /* bf16 converts with a helper, lane by lane; f16 on C only */
    bool halfs = is_half(dt) || is_half(src_dt);
    return tgc_dtypes[dt].is_float && tgc_dtypes[src_dt].is_float && dt != TGC_BF16 &&
           src_dt != TGC_BF16 && (!halfs || L->lang == &tgc_lang_c);
  }
  return (tgc_ops[op].flags & F_VEC) && tgc_dtypes[dt].is_float;
}

static int alu(lower *L, tgc_op op, tgc_dtype dt, int n, int *src) {
  int w = 1;
  for (int i = 0; i < n; i++) w = I(L, src[i])->vec > w ? I(L, src[i])->vec : w;
  if (w > 1 && !vec_ok(L, op, dt, (tgc_dtype)I(L, src[0])->dtype)) {
    int lanes[64];
    for (int l = 0; l < w; l++) {
      int s[3];
      for (int i = 0; i < n; i++) s[i] = gep(L, src[i], l);
      lanes[l] = alu(L, op, dt, n, s);
    }
    return emit(L, TGC_OP_VECTORIZE, dt, w, w, lanes);
  }
  for (int i = 0; i < n; i++) src[i] = broadcast_vec(L, src[i], w);
  if (op == TGC_OP_CAST && I(L, src[0])->dtype == dt && I(L, src[0])->vec == w) return src[0];
  return emit(L, op, dt, w, n, src);
}

static int cast(lower *L, int v, tgc_dtype dt) {
  if (I(L, v)->dtype == dt) return v;
  int s[1] = {v};
  return alu(L, TGC_OP_CAST, dt, 1, s);
}

/* ---- leaves ------------------------------------------------------------- */

static int lane_vals(lower *L, int lane, int *vals) {
  memcpy(vals, L->vals, sizeof L->vals);
  if (L->ks->vec_axis >= 0) vals[L->ks->vec_axis] = iconst(L, lane);
  return L->ks->ndim;
}

/* How a leaf meets the vector axis: 0 not at all (a scalar), 1 contiguous
 * (one wide access), 2 anything else (one access per lane). */
static int leaf_mode(lower *L, int leaf) {
  const tgc_kshape *ks = L->ks;
  int va = ks->vec_axis;
  if (va < 0) return 0;
  const tgc_view *v = tgc_st_top(&ks->sts[leaf]);
  bool masked = v->has_mask && (v->mask[va][0] != 0 || v->mask[va][1] != v->shape[va]);
  if (v->shape[va] == 1 || (v->strides[va] == 0 && !masked)) return 0;
  if (ks->sts[leaf].nviews != 1 || v->strides[va] != 1 || masked) return 2;
  if (L->lang->gpu) { /* GPU vector accesses must be aligned to their size */
    if (v->offset % L->W) return 2;
    for (int i = 0; i < v->ndim; i++)
      if (i != va && v->shape[i] > 1 && v->strides[i] % L->W) return 2;
  }
  return 1;
}

static int leaf_index(const lower *L, const tgc_uop *a) {
  for (int l = 0; l < L->ks->nleaves; l++)
    if (L->ks->leaves[l] == a) return l;
  TGC_ASSERT(!"leaf not in kernel shape");
  return -1;
}

static int load_one(lower *L, int leaf, const int *vals, int w) {
  const tgc_uop *a = L->ks->leaves[leaf];
  int idx, valid;
  view_index(L, &L->ks->sts[leaf], vals, &idx, &valid);
  int64_t ok;
  int s[3] = {L->globals[*(const int *)a->src[0]->arg], idx, valid};
  int n = is_const(L, valid, &ok) && ok ? 2 : 3;
  if (is_const(L, valid, &ok) && !ok) return cast(L, cnst(L, (tgc_dtype)a->dtype, tgc_scalar_of(a->dtype, 0)), cdt(a->dtype));
  int v = emit(L, TGC_OP_LOAD, (tgc_dtype)a->dtype, w, n, s);
  return cast(L, v, cdt(a->dtype));
}

static int const_one(lower *L, int leaf, const int *vals) {
  const tgc_uop *a = L->ks->leaves[leaf];
  tgc_dtype dt = cdt(a->dtype);
  int c = a->arglen == sizeof(tgc_symconst) ? cast(L, dimval(L, ((const tgc_symconst *)a->arg)->sym), dt)
                                            : cnst(L, dt, *(const tgc_cval *)a->arg);
  int idx, valid;
  int64_t ok;
  view_index(L, &L->ks->sts[leaf], vals, &idx, &valid);
  if (is_const(L, valid, &ok)) return ok ? c : cnst(L, dt, (tgc_cval){0, 0});
  int s[3] = {valid, c, cnst(L, dt, (tgc_cval){0, 0})};
  return alu(L, TGC_OP_WHERE, dt, 3, s);
}

static int leaf_value(lower *L, const tgc_uop *a) {
  int leaf = leaf_index(L, a), mode = leaf_mode(L, leaf), vals[TGC_MAX_KDIMS];
  bool isload = a->op == TGC_OP_LOAD;
  if (mode < 2) {
    lane_vals(L, 0, vals);
    return isload ? load_one(L, leaf, vals, mode ? L->W : 1) : const_one(L, leaf, vals);
  }
  int lanes[64];
  for (int l = 0; l < L->W; l++) {
    lane_vals(L, l, vals);
    lanes[l] = isload ? load_one(L, leaf, vals, 1) : const_one(L, leaf, vals);
  }
  return emit(L, TGC_OP_VECTORIZE, (tgc_dtype)I(L, lanes[0])->dtype, L->W, L->W, lanes);
}

static int gather_value(lower *L, const tgc_uop *a) {
  int ids = L->globals[*(const int *)a->src[1]->arg], table = L->globals[*(const int *)a->src[0]->arg];
  int64_t rows = *(const int64_t *)a->arg;
  const tgc_view *v = tgc_st_top((const tgc_st *)a->src[2]->arg);
  int s[3] = {ids, L->vals[0]};
  int id = cast(L, emit(L, TGC_OP_LOAD, (tgc_dtype)a->src[1]->dtype, 1, 2, s), TGC_I64);
  int lo[2] = {iconst(L, 0), id}, hi[2] = {id, iconst(L, rows)};
  int ok = band(L, emit(L, TGC_OP_CMPLE, TGC_BOOL, 1, 2, lo), emit(L, TGC_OP_CMPLT, TGC_BOOL, 1, 2, hi));
  int s2[2] = {id, iconst(L, v->shape[1])};
  int row = emit(L, TGC_OP_MUL, TGC_I64, 1, 2, s2);
  int t[3] = {table, iadd(L, row, L->vals[1]), ok};
  return cast(L, emit(L, TGC_OP_LOAD, (tgc_dtype)a->dtype, 1, 3, t), cdt(a->dtype));
}

/* ---- the AST ---------------------------------------------------------- */

static void memo_clear(lower *L) { L->nmemo = 0; }
static void memo_put(lower *L, const tgc_uop *a, int v) {
  if (L->nmemo == L->memo_cap) {
    L->memo_cap = L->memo_cap ? L->memo_cap * 2 : 64;
    L->memo_k = tgc_xrealloc(L->memo_k, sizeof *L->memo_k * (size_t)L->memo_cap);
    L->memo_v = tgc_xrealloc(L->memo_v, sizeof *L->memo_v * (size_t)L->memo_cap);
  }
  L->memo_k[L->nmemo] = a;
  L->memo_v[L->nmemo++] = v;
}
static int memo_get(lower *L, const tgc_uop *a) {
  for (int i = L->nmemo - 1; i >= 0; i--)
    if (L->memo_k[i] == a) return L->memo_v[i];
  return -1;
}

static int expr(lower *L, const tgc_uop *a);

static int lower_cast(lower *L, const tgc_uop *a, int x) {
  tgc_dtype to = (tgc_dtype)a->dtype, from = (tgc_dtype)a->src[0]->dtype;
  if (a->op == TGC_OP_CAST) {
    if (is_half(to)) return cast(L, cast(L, x, to), TGC_F32); /* round to half */
    return cast(L, x, to);
  }
  if (is_half(from)) x = cast(L, x, from); /* back to its bits */
  int s[1] = {x};
  int b = alu(L, TGC_OP_BITCAST, to, 1, s);
  return is_half(to) ? cast(L, b, TGC_F32) : b;
}

static int expr_uncached(lower *L, const tgc_uop *a) {
  if (a->op == TGC_OP_LOAD || a->op == TGC_OP_CONST) return leaf_value(L, a);
  if (a->op == TGC_OP_GATHER_LOAD) return gather_value(L, a);
  TGC_ASSERT(IS_ALU(a->op));
  int s[3];
  for (int i = 0; i < a->nsrc; i++) s[i] = expr(L, a->src[i]);
  if (a->op == TGC_OP_CAST || a->op == TGC_OP_BITCAST) return lower_cast(L, a, s[0]);
  return alu(L, (tgc_op)a->op, cdt(a->dtype), a->nsrc, s);
}

static int expr(lower *L, const tgc_uop *a) {
  int v = memo_get(L, a);
  if (v >= 0) return v;
  v = expr_uncached(L, a);
  memo_put(L, a, v);
  return v;
}

static void store(lower *L, const tgc_uop *st, int val) {
  int leaf = leaf_index(L, st), mode = leaf_mode(L, leaf), vals[TGC_MAX_KDIMS];
  int g = L->globals[0];
  val = cast(L, val, (tgc_dtype)st->dtype);
  if (mode < 2) {
    int idx, valid;
    lane_vals(L, 0, vals);
    view_index(L, &L->ks->sts[leaf], vals, &idx, &valid);
    int s[3] = {g, idx, broadcast_vec(L, val, mode ? L->W : 1)};
    if (!mode && I(L, val)->vec > 1) s[2] = gep(L, val, 0);
    emit(L, TGC_OP_STORE, (tgc_dtype)st->dtype, mode ? L->W : 1, 3, s);
    return;
  }
  for (int l = 0; l < L->W; l++) {
    int idx, valid;
    lane_vals(L, l, vals);
    view_index(L, &L->ks->sts[leaf], vals, &idx, &valid);
    int s[3] = {g, idx, gep(L, val, l)};
    emit(L, TGC_OP_STORE, (tgc_dtype)st->dtype, 1, 3, s);
  }
}

/* ---- loops and expansion ------------------------------------------------- */

static int open_range(lower *L, int start, int end, int axis) {
  int s[2] = {start, end};
  return emit_full(L, TGC_OP_RANGE, TGC_I64, 1, 2, s, (tgc_cval){axis, axis}, I(L, start)->vmin,
                   I(L, end)->vmax - 1);
}

static void close_range(lower *L, int r) {
  int s[1] = {r};
  emit(L, TGC_OP_ENDRANGE, TGC_I64, 1, 1, s);
  for (int i = r + 1; i < L->p->n; i++) L->p->ins[i].dead = true;
}

static int open_if(lower *L, int cond) {
  int s[1] = {cond};
  return emit(L, TGC_OP_IF, TGC_BOOL, 1, 1, s);
}

static void close_if(lower *L, int iff) {
  int s[1] = {iff};
  emit(L, TGC_OP_ENDIF, TGC_BOOL, 1, 1, s);
  for (int i = iff + 1; i < L->p->n; i++) L->p->ins[i].dead = true;
}

/* ---- GPU: combining a grouped reduce in local memory ---------------------- */

/* The product of the axes of a kind, symbolic ones at their largest. */
static int64_t axes_size(lower *L, tgc_axis_kind kind) {
  int64_t n = 1;
  for (int i = 0; i < L->ks->ndim; i++)
    if (L->ks->kind[i] == kind) n *= dmax(L, L->ks->shape[i]);
  return n;
}

static int local_load(lower *L, int temp, tgc_dtype dt, int idx) {
  int s[2] = {temp, idx};
  L->nlocal_loads++; /* never merged with a load on the other side of a barrier */
  return emit_full(L, TGC_OP_LOAD, dt, 1, 2, s, (tgc_cval){0, L->nlocal_loads}, INT64_MIN, INT64_MAX);
}

static void local_store(lower *L, int temp, tgc_dtype dt, int idx, int val) {
  int s[3] = {temp, idx, val};
  emit(L, TGC_OP_STORE, dt, 1, 3, s);
}

static void barrier(lower *L) { emit(L, TGC_OP_BARRIER, TGC_BOOL, 1, 0, NULL); }

/* One tree step: the threads whose entry e < n (and `who` holds) add in
 * the partial dist places above them. */
static void tree_step(lower *L, tgc_op rop, tgc_dtype dt, int temp, const int *base, int nslots, int e,
                      int who, int64_t n, int64_t dist) {
  int s[2] = {e, iconst(L, n)};
  int iff = open_if(L, band(L, who, emit(L, TGC_OP_CMPLT, TGC_BOOL, 1, 2, s)));
  for (int k = 0; k < nslots; k++) {
    int at = iadd(L, base[k], e);
    int a = local_load(L, temp, dt, at), b = local_load(L, temp, dt, iadd(L, at, iconst(L, dist)));
    int c[2] = {a, b};
    local_store(L, temp, dt, at, alu(L, rop == TGC_OP_REDUCE_SUM ? TGC_OP_ADD : TGC_OP_MAX, dt, 2, c));
  }
  close_if(L, iff);
  barrier(L);
}

/* CUDA: combines the 32 lanes of a warp with shuffles, no barrier. */
static int warp_reduce(lower *L, tgc_op rop, tgc_dtype dt, int v) {
  for (int off = 16; off >= 1; off /= 2) {
    int s[1] = {v};
    int o = emit_full(L, TGC_OP_SHUFFLE_DOWN, dt, 1, 1, s, (tgc_cval){off, off}, INT64_MIN, INT64_MAX);
    int c[2] = {v, o};
    v = alu(L, rop == TGC_OP_REDUCE_SUM ? TGC_OP_ADD : TGC_OP_MAX, dt, 2, c);
  }
  return v;
}

/* Combines the partials r[0..nup) of the G threads of each group: within
 * warps by shuffles where the language has them, then through local
 * memory as a tree.  Returns the IF (the group's first thread) that the
 * caller closes after using the combined r[]. */
static int group_combine(lower *L, tgc_op rop, tgc_dtype dt, int *r, int nup) {
  int64_t G = axes_size(L, AXIS_GROUP), Lt = axes_size(L, AXIS_LOCAL);
  bool shfl_type = dt == TGC_F32 || dt == TGC_F64 || dt == TGC_I32 || dt == TGC_U32 || dt == TGC_I64;
  bool warp = L->lang->op_fmt[TGC_OP_SHUFFLE_DOWN] && G % 32 == 0 && shfl_type;
  int64_t E = warp ? G / 32 : G; /* entries per group in local memory */
  int wl = I(L, r[0])->vec, nslots = nup * wl;
  int *vals = tgc_xmalloc(sizeof *vals * (size_t)nslots), *base = tgc_xmalloc(sizeof *base * (size_t)nslots);
  for (int u = 0; u < nup; u++)
    for (int l = 0; l < wl; l++) vals[u * wl + l] = gep(L, r[u], l);
  int e = L->gidx, who = bconst(L, true);
  if (warp) {
    for (int k = 0; k < nslots; k++) vals[k] = warp_reduce(L, rop, dt, vals[k]);
    e = idivc(L, L->gidx, 32);
    int s[2] = {imodc(L, L->gidx, 32), iconst(L, 0)};
    who = emit(L, TGC_OP_CMPEQ, TGC_BOOL, 1, 2, s); /* lane 0 of each warp */
  }
  if (warp && E == 1) { /* one warp per group: lane 0 has the result, no local memory */
    int s[2] = {L->gidx, iconst(L, 0)};
    int iff = open_if(L, emit(L, TGC_OP_CMPEQ, TGC_BOOL, 1, 2, s));
    for (int u = 0; u < nup; u++)
      r[u] = wl > 1 ? emit(L, TGC_OP_VECTORIZE, dt, wl, wl, vals + u * wl) : vals[u];
    free(vals);
    free(base);
    return iff;
  }
  int temp = emit_full(L, TGC_OP_DEFINE_LOCAL, dt, 1, 0, NULL, (tgc_cval){0, nslots * Lt * E}, 0, 0);
  for (int k = 0; k < nslots; k++) base[k] = imul(L, iadd(L, imul(L, iconst(L, k), Lt), L->lidx), E);
  int iff = open_if(L, who);
  for (int k = 0; k < nslots; k++) local_store(L, temp, dt, iadd(L, base[k], e), vals[k]);
  close_if(L, iff);
  barrier(L);
  int64_t P = 1;
  while (P * 2 <= E) P *= 2;
  if (E > P) tree_step(L, rop, dt, temp, base, nslots, e, who, E - P, P);
  for (int64_t half = P / 2; half >= 1; half /= 2) tree_step(L, rop, dt, temp, base, nslots, e, who, half, half);
  int s[2] = {L->gidx, iconst(L, 0)};
  iff = open_if(L, emit(L, TGC_OP_CMPEQ, TGC_BOOL, 1, 2, s));
  for (int u = 0; u < nup; u++) {
    int lanes[64];
    for (int l = 0; l < wl; l++) lanes[l] = local_load(L, temp, dt, base[u * wl + l]);
    r[u] = wl > 1 ? emit(L, TGC_OP_VECTORIZE, dt, wl, wl, lanes) : lanes[0];
  }
  free(vals);
  free(base);
  return iff;
}

/* Sets the expanded axes of `kind` (all but the vector axis) to combination
 * `combo`; returns the number of combinations. */
static int expand_axes(lower *L, tgc_axis_kind kind, int combo) {
  int total = 1;
  for (int i = L->ks->ndim - 1; i >= 0; i--) {
    if (L->ks->kind[i] != kind || i == L->ks->vec_axis) continue;
    int n = (int)L->ks->shape[i];
    if (combo >= 0) L->vals[i] = iconst(L, (combo / total) % n);
    total *= n;
  }
  return total;
}

static tgc_cval reduce_identity(tgc_op op, tgc_dtype dt) {
  if (op == TGC_OP_REDUCE_SUM) return (tgc_cval){0, 0};
  if (tgc_dtypes[dt].is_float) return (tgc_cval){-INFINITY, 0};
  if (!tgc_dtypes[dt].is_signed) return (tgc_cval){0, 0};
  int64_t m = dt == TGC_I64 ? INT64_MIN : -(INT64_C(1) << (8 * tgc_dtypes[dt].bytes - 1));
  return (tgc_cval){(double)m, m};
}

static int combine(lower *L, tgc_op rop, tgc_dtype dt, int a, int b) {
  int s[2] = {a, b};
  return alu(L, rop == TGC_OP_REDUCE_SUM ? TGC_OP_ADD : TGC_OP_MAX, dt, 2, s);
}

/* CPU: hints that the streamed leaf's bytes 512 ahead of this iteration's
 * (one hint per 64-byte line the iteration reads) will be needed, so a
 * matvec keeps more memory requests in flight than the hardware
 * prefetchers alone start.  Called per upcast row, inside the reduce loop. */
static void prefetch_ahead(lower *L, int nun) {
  const tgc_kshape *ks = L->ks;
  int leaf = ks->prefetch_leaf;
  if (leaf < 0 || L->lang->gpu || ks->leaves[leaf]->op != TGC_OP_LOAD) return;
  int vals[TGC_MAX_KDIMS], idx, valid;
  expand_axes(L, AXIS_UNROLL, 0);
  lane_vals(L, 0, vals);
  view_index(L, &ks->sts[leaf], vals, &idx, &valid);
  const tgc_uop *a = ks->leaves[leaf];
  int64_t span = (int64_t)nun * L->W * tgc_dtypes[a->dtype].bytes;
  for (int64_t off = 0; off < span; off += 64) {
    int s[2] = {L->globals[*(const int *)a->src[0]->arg], idx};
    emit_full(L, TGC_OP_PREFETCH, (tgc_dtype)a->dtype, 1, 2, s, (tgc_cval){0, 512 + off}, 0, 0);
  }
}

static void lower_reduce(lower *L, const tgc_uop *st) {
  const tgc_kshape *ks = L->ks;
  const tgc_uop *red = ks->reduce;
  tgc_op rop = (tgc_op)red->op;
  tgc_dtype dt = cdt(red->dtype);
  bool vec_unroll = ks->vec_axis >= 0 && ks->kind[ks->vec_axis] == AXIS_UNROLL;
  int nup = expand_axes(L, AXIS_UPCAST, -1), nun = expand_axes(L, AXIS_UNROLL, -1);
  int *acc = tgc_xmalloc(sizeof *acc * (size_t)(nup * nun));
  int init = broadcast_vec(L, cnst(L, dt, reduce_identity(rop, dt)), L->W);
  for (int i = 0; i < nup * nun; i++) {
    int s[1] = {init};
    acc[i] = emit(L, TGC_OP_DEFINE_ACC, dt, L->W, 1, s);
  }
  int ranges[TGC_MAX_KDIMS], nr = 0;
  for (int i = 0; i < ks->ndim; i++)
    if (ks->kind[i] == AXIS_REDUCE)
      L->vals[i] = ranges[nr++] = open_range(L, iconst(L, 0), dimval(L, ks->shape[i]), i);
  for (int u = 0; u < nup; u++) {
    expand_axes(L, AXIS_UPCAST, u);
    prefetch_ahead(L, nun);
    for (int v = 0; v < nun; v++) {
      expand_axes(L, AXIS_UNROLL, v);
      memo_clear(L);
      int x = broadcast_vec(L, expr(L, red->src[0]), L->W);
      int s[2] = {acc[u * nun + v], combine(L, rop, dt, acc[u * nun + v], x)};
      emit(L, TGC_OP_ACC_ASSIGN, dt, L->W, 2, s);
    }
  }
  while (nr) close_range(L, ranges[--nr]);
  int *res = tgc_xmalloc(sizeof *res * (size_t)nup);
  for (int u = 0; u < nup; u++) {
    int r = acc[u * nun];
    for (int v = 1; v < nun; v++) r = combine(L, rop, dt, r, acc[u * nun + v]);
    if (vec_unroll && L->W > 1) {
      int h = gep(L, r, 0);
      for (int l = 1; l < L->W; l++) h = combine(L, rop, dt, h, gep(L, r, l));
      r = h;
    }
    res[u] = r;
  }
  int iff = axes_size(L, AXIS_GROUP) > 1 ? group_combine(L, rop, dt, res, nup) : -1;
  for (int i = 0; i < ks->ndim; i++)
    if (ks->kind[i] == AXIS_REDUCE || ks->kind[i] == AXIS_UNROLL || ks->kind[i] == AXIS_GROUP)
      L->vals[i] = iconst(L, 0);
  for (int u = 0; u < nup; u++) {
    expand_axes(L, AXIS_UPCAST, u);
    memo_clear(L);
    memo_put(L, red, res[u]);
    store(L, st, expr(L, st->src[2]));
  }
  if (iff >= 0) close_if(L, iff);
  free(res);
  free(acc);
}

static void lower_elementwise(lower *L, const tgc_uop *st) {
  int nup = expand_axes(L, AXIS_UPCAST, -1);
  for (int u = 0; u < nup; u++) {
    expand_axes(L, AXIS_UPCAST, u);
    memo_clear(L);
    store(L, st, expr(L, st->src[2]));
  }
}

/* Unravels index `idx` over the axes of `kind`, last axis fastest, except
 * axis `slowest` (-1: none), which takes what is left: the slowest.
 * Returns the product of the other axes' sizes. */
static int64_t unravel(lower *L, int idx, tgc_axis_kind kind, int slowest) {
  int64_t after = 1;
  for (int i = L->ks->ndim - 1; i >= 0; i--) {
    if (L->ks->kind[i] != kind || i == slowest) continue;
    int64_t n = dmax(L, L->ks->shape[i]);
    L->vals[i] = imodc(L, idivc(L, idx, after), n);
    after *= n;
  }
  if (slowest >= 0) L->vals[slowest] = idivc(L, idx, after);
  return after;
}

/* Global axes from the block index.  With one global axis of symbolic
 * size, that axis is the slowest, so the blocks of its current length are
 * a prefix of the grid, and a launch covers that prefix only (grid_sym,
 * grid_per; tgc_prog_blocks): attention over the cache rows 0..start_pos
 * then launches start_pos + 1 rows of blocks, not max_context. */
static void unravel_global(lower *L, int gid) {
  int s = -1, nsym = 0;
  for (int i = 0; i < L->ks->ndim; i++)
    if (L->ks->kind[i] == AXIS_GLOBAL && tgc_sym_is(L->ks->shape[i])) s = i, nsym++;
  int64_t per = unravel(L, gid, AXIS_GLOBAL, nsym == 1 ? s : -1);
  if (nsym == 1) L->p->info.grid_sym = L->ks->shape[s], L->p->info.grid_per = per;
}

/* GPU: global axes come from the block index, local and group axes from
 * the thread index (group axes fastest, so neighbouring threads of a
 * grouped reduce read neighbouring memory). */
static void gpu_indices(lower *L) {
  int64_t ng = axes_size(L, AXIS_GLOBAL), nl = axes_size(L, AXIS_LOCAL), ngr = axes_size(L, AXIS_GROUP);
  int gid = emit_full(L, TGC_OP_SPECIAL, TGC_I64, 1, 0, NULL, (tgc_cval){2, 2}, 0, ng - 1);
  int lid = emit_full(L, TGC_OP_SPECIAL, TGC_I64, 1, 0, NULL, (tgc_cval){3, 3}, 0, nl * ngr - 1);
  unravel_global(L, gid);
  L->lidx = idivc(L, lid, ngr);
  L->gidx = imodc(L, lid, ngr);
  unravel(L, L->lidx, AXIS_LOCAL, -1);
  unravel(L, L->gidx, AXIS_GROUP, -1);
  L->p->info.grid[0] = ng;
  L->p->info.block[0] = nl * ngr;
  L->p->info.grid[1] = L->p->info.grid[2] = L->p->info.block[1] = L->p->info.block[2] = 1;
}

/* GPU: the grid covers symbolic global axes at their largest (or, for one
 * such axis, its current size: unravel_global); blocks past the current
 * size do nothing.  (Global axes come from the block index, so
 * a whole block takes the same side: barriers stay safe.)  -1 if none. */
static int gpu_guard(lower *L) {
  int ok = bconst(L, true);
  for (int i = 0; i < L->ks->ndim; i++)
    if (L->ks->kind[i] == AXIS_GLOBAL && tgc_sym_is(L->ks->shape[i]))
      ok = band(L, ok, in_range(L, L->vals[i], 0, L->ks->shape[i]));
  int64_t v;
  return is_const(L, ok, &v) && v ? -1 : open_if(L, ok);
}

tgc_linprog *tgc_lower(tgc_uop *ast, const tgc_kshape *ks, const tgc_lang *lang) {
  lower L = {.ks = ks, .lang = lang, .ctx = ast->ctx, .W = ks->vec_axis >= 0 ? (int)ks->shape[ks->vec_axis] : 1};
  L.p = tgc_xcalloc(1, sizeof *L.p);
  TGC_ASSERT(L.W <= 64);
  /* globals, in slot order */
  int nglob = 0;
  for (int l = 0; l < ks->nleaves; l++) {
    const tgc_uop *a = ks->leaves[l];
    const tgc_uop *gs[2] = {a->op == TGC_OP_CONST ? NULL : a->src[0],
                            a->op == TGC_OP_GATHER_LOAD ? a->src[1] : NULL};
    for (int k = 0; k < 2; k++) {
      if (!gs[k]) continue;
      int slot = *(const int *)gs[k]->arg;
      TGC_ASSERT(slot < TGC_MAX_BUFS);
      L.p->info.gdtype[slot] = (tgc_dtype)gs[k]->dtype;
      if (slot + 1 > nglob) nglob = slot + 1;
    }
  }
  L.p->info.nglobals = nglob;
  L.p->info.may_alias = ast->arglen && *(const int *)ast->arg;
  for (int i = 0; i < nglob; i++)
    L.globals[i] = emit_full(&L, TGC_OP_DEFINE_GLOBAL, L.p->info.gdtype[i], 1, 0, NULL,
                             (tgc_cval){i, i}, 0, 0);
  for (int i = 0; i < ks->ndim; i++) L.vals[i] = iconst(&L, 0);
  int ranges[TGC_MAX_KDIMS], nr = 0;
  int guard = -1;
  if (lang->gpu) {
    gpu_indices(&L);
    guard = gpu_guard(&L);
  }
  for (int i = 0; i < ks->ndim && !lang->gpu; i++) {
    if (ks->kind[i] != AXIS_GLOBAL) continue;
    int start, end;
    if (nr == 0 && i == 0) { /* the thread's share [gs, ge) of the parallel axis */
      int64_t n = dmax(&L, ks->shape[0]);
      start = emit_full(&L, TGC_OP_SPECIAL, TGC_I64, 1, 0, NULL, (tgc_cval){0, 0}, 0, n - 1);
      end = emit_full(&L, TGC_OP_SPECIAL, TGC_I64, 1, 0, NULL, (tgc_cval){1, 1}, 1, n);
    } else {
      start = iconst(&L, 0);
      end = dimval(&L, ks->shape[i]);
    }
    L.vals[i] = ranges[nr++] = open_range(&L, start, end, i);
  }
  const tgc_uop *st = ast;
  if (ks->reduce) {
    lower_reduce(&L, st);
  } else {
    lower_elementwise(&L, st);
  }
  while (nr) close_range(&L, ranges[--nr]);
  if (guard >= 0) close_if(&L, guard);
  tgc_linprog_describe(L.p, ks, lang->gpu, L.ctx, L.W);
  free(L.cse);
  free(L.memo_k);
  free(L.memo_v);
  return L.p;
}

void tgc_linprog_free(tgc_linprog *p) {
  if (!p) return;
  for (int i = 0; i < p->n; i++) free(p->ins[i].src);
  free(p->ins);
  free(p);
}
