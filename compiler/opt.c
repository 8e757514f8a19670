/* opt.c - the kernel's shape, and the optimisations that reshape it.
 *
 * A kernel AST's leaves (loads, constants, the store) each index the same
 * "full shape" through their own view stack.  tgc_kshape_init canonicalises
 * it: size-1 axes dropped, reduce axes moved last, adjacent axes merged
 * wherever every leaf allows.  An opt then splits an axis and moves the
 * inner part to the end as an UPCAST (outputs computed together) or UNROLL
 * (reduce iterations with their own accumulators) axis; at most one of
 * those is rendered as a vector.  Opts are only reshapes and permutes of
 * the views, so they can never change what the kernel computes.  An axis
 * of symbolic size is never split or merged: its loop runs to the
 * variable's current value.
 */
#include "tgc_internal.h"

static void add_leaf(tgc_kshape *ks, tgc_uop *leaf, bool post) {
  for (int i = 0; i < ks->nleaves; i++)
    if (ks->leaves[i] == leaf) return;
  int n = ks->nleaves++;
  ks->leaves = tgc_xrealloc(ks->leaves, sizeof *ks->leaves * (size_t)ks->nleaves);
  ks->sts = tgc_xrealloc(ks->sts, sizeof *ks->sts * (size_t)ks->nleaves);
  ks->post_reduce = tgc_xrealloc(ks->post_reduce, sizeof *ks->post_reduce * (size_t)ks->nleaves);
  ks->leaves[n] = leaf;
  const tgc_uop *v = leaf->op == TGC_OP_CONST ? leaf->src[0]
                     : leaf->op == TGC_OP_GATHER_LOAD ? leaf->src[2]
                                                      : leaf->src[1];
  ks->sts[n] = *(const tgc_st *)v->arg;
  ks->post_reduce[n] = post;
}

static void walk(tgc_kshape *ks, tgc_uop *a, bool post) {
  switch (a->op) {
  case TGC_OP_LOAD: case TGC_OP_CONST: case TGC_OP_GATHER_LOAD: add_leaf(ks, a, post); return;
  case TGC_OP_STORE: add_leaf(ks, a, true); walk(ks, a->src[2], true); return;
  default: break;
  }
  if (IS_REDUCE(a->op)) {
    TGC_ASSERT(!ks->reduce || ks->reduce == a);
    ks->reduce = a;
    post = false;
  }
  for (int i = 0; i < a->nsrc; i++) walk(ks, a->src[i], post);
}

/* Reshapes every leaf to the new full shape (nd, shape, kinds). */
static bool reshape_all(tgc_kshape *ks, int nd, const int64_t *shape, const tgc_axis_kind *kind) {
  tgc_st *sts = tgc_xmalloc(sizeof *sts * (size_t)ks->nleaves);
  for (int l = 0; l < ks->nleaves; l++) {
    int64_t s[TGC_MAX_KDIMS];
    for (int i = 0; i < nd; i++) {
      bool red = kind[i] == AXIS_REDUCE || kind[i] == AXIS_UNROLL || kind[i] == AXIS_GROUP;
      s[i] = red && ks->post_reduce[l] ? 1 : shape[i];
    }
    sts[l] = ks->sts[l];
    if (!tgc_st_reshape(&sts[l], nd, s)) {
      free(sts);
      return false;
    }
  }
  memcpy(ks->sts, sts, sizeof *sts * (size_t)ks->nleaves);
  free(sts);
  ks->ndim = nd;
  memcpy(ks->shape, shape, sizeof *shape * (size_t)nd);
  memcpy(ks->kind, kind, sizeof *kind * (size_t)nd);
  return true;
}

static void permute_all(tgc_kshape *ks, const int *perm) {
  int64_t s[TGC_MAX_KDIMS];
  tgc_axis_kind k[TGC_MAX_KDIMS];
  for (int i = 0; i < ks->ndim; i++) {
    s[i] = ks->shape[perm[i]];
    k[i] = ks->kind[perm[i]];
  }
  memcpy(ks->shape, s, sizeof *s * (size_t)ks->ndim);
  memcpy(ks->kind, k, sizeof *k * (size_t)ks->ndim);
  for (int l = 0; l < ks->nleaves; l++) tgc_st_permute(&ks->sts[l], perm);
}

/* Can axes i and i+1 be merged in every leaf's top view? */
static bool mergeable(const tgc_kshape *ks, int i) {
  if (ks->kind[i] != ks->kind[i + 1] || tgc_sym_is(ks->shape[i]) || tgc_sym_is(ks->shape[i + 1])) return false;
  for (int l = 0; l < ks->nleaves; l++) {
    const tgc_view *v = tgc_st_top(&ks->sts[l]);
    if (v->has_mask) {
      bool full = v->mask[i][0] == 0 && v->mask[i][1] == v->shape[i] && v->mask[i + 1][0] == 0 &&
                  v->mask[i + 1][1] == v->shape[i + 1];
      if (!full) return false;
    }
    if (v->shape[i] == 1 || v->shape[i + 1] == 1) continue;
    if (v->strides[i] != v->strides[i + 1] * v->shape[i + 1]) return false;
  }
  return true;
}

bool tgc_kshape_init(tgc_kshape *ks, tgc_uop *ast) {
  memset(ks, 0, sizeof *ks);
  ks->vec_axis = -1;
  ks->prefetch_leaf = -1;
  walk(ks, ast, true);
  for (int l = 0; l < ks->nleaves; l++) tgc_st_simplify(&ks->sts[l]);
  /* the full shape: a pre-reduce leaf's, else the store's */
  int ref = 0;
  for (int l = 0; l < ks->nleaves; l++)
    if (!ks->post_reduce[l]) ref = l;
  const tgc_view *v = tgc_st_top(&ks->sts[ref]);
  ks->ndim = v->ndim;
  uint32_t rmask = ks->reduce ? *(const uint32_t *)ks->reduce->arg : 0;
  for (int i = 0; i < v->ndim; i++) {
    ks->shape[i] = v->shape[i];
    ks->kind[i] = (rmask >> i) & 1 ? AXIS_REDUCE : AXIS_GLOBAL;
  }
  for (int l = 0; l < ks->nleaves; l++)
    if (tgc_st_top(&ks->sts[l])->ndim != ks->ndim) return false;
  if (ast->src[2]->op == TGC_OP_GATHER_LOAD) return true; /* indexed by data: keep as is */
  /* drop size-1 axes */
  int64_t s[TGC_MAX_KDIMS];
  tgc_axis_kind k[TGC_MAX_KDIMS];
  int nd = 0;
  for (int i = 0; i < ks->ndim; i++) {
    if (ks->shape[i] == 1) continue;
    s[nd] = ks->shape[i];
    k[nd++] = ks->kind[i];
  }
  if (!reshape_all(ks, nd, s, k)) return false;
  /* reduce axes last */
  int perm[TGC_MAX_KDIMS], np = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < ks->ndim; i++)
      if ((ks->kind[i] == AXIS_REDUCE) == pass) perm[np++] = i;
  permute_all(ks, perm);
  /* merge what every leaf allows */
  for (int i = ks->ndim - 2; i >= 0; i--) {
    if (!mergeable(ks, i)) continue;
    nd = 0;
    for (int j = 0; j < ks->ndim; j++) {
      s[nd] = j == i ? ks->shape[i] * ks->shape[i + 1] : ks->shape[j];
      k[nd++] = ks->kind[j];
      if (j == i) j++;
    }
    if (!reshape_all(ks, nd, s, k)) return false;
  }
  for (int l = 0; l < ks->nleaves; l++) tgc_st_simplify(&ks->sts[l]);
  return true;
}

void tgc_kshape_free(tgc_kshape *ks) {
  free(ks->leaves);
  free(ks->sts);
  free(ks->post_reduce);
  memset(ks, 0, sizeof *ks);
}

static const struct {
  tgc_axis_kind from, to; /* the axis kind it applies to, and the new axis's */
  bool outer;             /* the new axis is the outer part of the split */
  const char *name;
} opt_info[] = {
    [OPT_UPCAST] = {AXIS_GLOBAL, AXIS_UPCAST, false, "UPCAST"},
    [OPT_UNROLL] = {AXIS_REDUCE, AXIS_UNROLL, false, "UNROLL"},
    [OPT_LOCAL] = {AXIS_GLOBAL, AXIS_LOCAL, false, "LOCAL"},
    [OPT_GROUP] = {AXIS_REDUCE, AXIS_GROUP, false, "GROUP"},
    [OPT_GROUPTOP] = {AXIS_REDUCE, AXIS_GROUP, true, "GROUPTOP"},
};

const char *tgc_opt_name(tgc_opt_kind k) { return opt_info[k].name; }

bool tgc_kshape_apply(tgc_kshape *ks, tgc_opt opt) {
  int a = opt.axis;
  if (a < 0 || a >= ks->ndim || ks->kind[a] != opt_info[opt.kind].from || opt.amount < 2 ||
      tgc_sym_is(ks->shape[a]) || ks->shape[a] % opt.amount || ks->ndim + 1 > TGC_MAX_KDIMS || ks->nopts == 8)
    return false;
  bool outer = opt_info[opt.kind].outer;
  tgc_kshape save = *ks;
  tgc_st *sts = tgc_xmalloc(sizeof *sts * (size_t)ks->nleaves);
  memcpy(sts, ks->sts, sizeof *sts * (size_t)ks->nleaves);
  int64_t s[TGC_MAX_KDIMS];
  tgc_axis_kind k[TGC_MAX_KDIMS];
  int nd = 0, moved = -1;
  for (int i = 0; i < ks->ndim; i++) {
    if (i != a) {
      s[nd] = ks->shape[i];
      k[nd++] = ks->kind[i];
      continue;
    }
    int64_t part[2] = {outer ? opt.amount : ks->shape[i] / opt.amount, outer ? ks->shape[i] / opt.amount : opt.amount};
    for (int j = 0; j < 2; j++) {
      bool isnew = (j == 0) == outer;
      if (isnew) moved = nd;
      s[nd] = part[j];
      k[nd++] = isnew ? opt_info[opt.kind].to : ks->kind[i];
    }
  }
  if (!reshape_all(ks, nd, s, k)) {
    memcpy(ks->sts, sts, sizeof *sts * (size_t)ks->nleaves);
    free(sts);
    ks->ndim = save.ndim;
    memcpy(ks->shape, save.shape, sizeof save.shape);
    memcpy(ks->kind, save.kind, sizeof save.kind);
    return false;
  }
  free(sts);
  /* move the new axis to the end; the others keep their numbers */
  int perm[TGC_MAX_KDIMS], np = 0;
  for (int i = 0; i < ks->ndim; i++)
    if (i != moved) perm[np++] = i;
  perm[np++] = moved;
  permute_all(ks, perm);
  ks->opts[ks->nopts++] = opt;
  return true;
}

/* ---- the CPU heuristic ----------------------------------------------------- */

static bool is_half(tgc_dtype dt) { return dt == TGC_F16 || dt == TGC_BF16; }

/* Can the whole kernel run on C vector types? */
static bool vector_friendly(const tgc_uop *a) {
  if (a->op == TGC_OP_LOAD || a->op == TGC_OP_CONST) return tgc_dtypes[a->dtype].is_float;
  if (a->op == TGC_OP_STORE) return tgc_dtypes[a->dtype].is_float && vector_friendly(a->src[2]);
  if (a->op == TGC_OP_REDUCE_SUM) return vector_friendly(a->src[0]);
  if (a->op == TGC_OP_CAST) {
    if (!tgc_dtypes[a->dtype].is_float || !tgc_dtypes[a->src[0]->dtype].is_float) return false;
  } else if (!(tgc_ops[a->op].flags & F_VEC) || !tgc_dtypes[a->dtype].is_float) {
    return false;
  }
  for (int i = 0; i < a->nsrc; i++)
    if (!vector_friendly(a->src[i])) return false;
  return true;
}

/* The load that moves the most memory (elements it addresses). */
static int biggest_load(const tgc_kshape *ks) {
  int best = -1;
  double most = 0;
  for (int l = 0; l < ks->nleaves; l++) {
    if (ks->leaves[l]->op != TGC_OP_LOAD) continue;
    const tgc_view *v = tgc_st_top(&ks->sts[l]);
    double n = (double)tgc_dtypes[ks->leaves[l]->dtype].bytes;
    for (int i = 0; i < v->ndim; i++)
      if (v->strides[i] != 0) n *= (double)tgc_sym_max(ks->leaves[l]->ctx, v->shape[i]);
    if (n > most) {
      most = n;
      best = l;
    }
  }
  return best;
}

static int64_t stride_of(const tgc_kshape *ks, int leaf, int axis) {
  if (ks->sts[leaf].nviews != 1) return -1;
  const tgc_view *v = tgc_st_top(&ks->sts[leaf]);
  if (v->has_mask && (v->mask[axis][0] != 0 || v->mask[axis][1] != v->shape[axis])) return -1;
  return v->shape[axis] == 1 ? 0 : v->strides[axis];
}

/* Does some load re-read the same data along this axis (stride 0)? */
static bool has_reuse(const tgc_kshape *ks, int axis) {
  for (int l = 0; l < ks->nleaves; l++)
    if (ks->leaves[l]->op == TGC_OP_LOAD && !ks->post_reduce[l] && stride_of(ks, l, axis) == 0)
      return true;
  return false;
}

static int last_axis(const tgc_kshape *ks, tgc_axis_kind kind) {
  for (int i = ks->ndim - 1; i >= 0; i--)
    if (ks->kind[i] == kind) return i;
  return -1;
}

static void cpu_heuristic(tgc_kshape *ks, bool vectors) {
  tgc_uop *store = NULL;
  for (int l = 0; l < ks->nleaves; l++)
    if (ks->leaves[l]->op == TGC_OP_STORE) store = ks->leaves[l];
  if (!store || store->src[2]->op == TGC_OP_GATHER_LOAD) return;
  tgc_dtype cdt = is_half(store->dtype) ? TGC_F32 : (tgc_dtype)store->dtype;
  int W = 64 / tgc_dtypes[cdt].bytes;
  bool vec = vectors && vector_friendly(store);
  int big = biggest_load(ks), r = last_axis(ks, AXIS_REDUCE), g = last_axis(ks, AXIS_GLOBAL);
  if (r >= 0) {
    /* a vector along the reduce is summed to a scalar before the work after
     * the reduce: only the reduce's input must run on vectors */
    bool vec_red = vectors && vector_friendly(ks->reduce->src[0]);
    if (vec_red && big >= 0 && stride_of(ks, big, r) == 1 && ks->shape[r] % W == 0 &&
        tgc_kshape_apply(ks, (tgc_opt){OPT_UNROLL, r, W})) {
      /* a dot product along contiguous memory: vector accumulators, two of
       * them, and several outputs at once when an operand is shared */
      ks->vec_axis = ks->ndim - 1;
      /* enough independent loads in flight to keep memory busy: eight rows
       * at once, and half-precision rows (twice the elements per byte)
       * unrolled four times rather than two (measured: small-512 decode,
       * f16 54% -> 84% of the read baseline, f32 92% -> 94%) */
      int un = tgc_dtypes[ks->leaves[big]->dtype].bytes == 2 ? 4 : 2;
      if (ks->shape[r] % un == 0 && ks->shape[r] >= 2 * un) tgc_kshape_apply(ks, (tgc_opt){OPT_UNROLL, r, un});
      if (g >= 0 && has_reuse(ks, g) && ks->shape[g] % 8 == 0 && ks->shape[g] >= 32)
        tgc_kshape_apply(ks, (tgc_opt){OPT_UPCAST, g, 8});
      else if (g >= 0 && has_reuse(ks, g) && ks->shape[g] % 4 == 0 && ks->shape[g] >= 16)
        tgc_kshape_apply(ks, (tgc_opt){OPT_UPCAST, g, 4});
      /* the weight rows are read once, in order: ask for them 512 bytes
       * ahead (a matvec from DRAM, f16: 23 -> 27 GB/s in a microbenchmark
       * against 31 for a plain read) */
      ks->prefetch_leaf = big;
    } else if (vec && big >= 0 && g >= 0 && stride_of(ks, big, g) == 1 && ks->shape[g] % W == 0 &&
               tgc_kshape_apply(ks, (tgc_opt){OPT_UPCAST, g, W})) {
      /* outputs along contiguous memory: a strip of four vectors of
       * outputs per row (256 bytes of f32), two rows per step */
      ks->vec_axis = ks->ndim - 1;
      if (ks->shape[g] % 4 == 0) tgc_kshape_apply(ks, (tgc_opt){OPT_UPCAST, g, 4});
      if (ks->shape[r] % 2 == 0) tgc_kshape_apply(ks, (tgc_opt){OPT_UNROLL, r, 2});
    } else if (ks->shape[r] % 4 == 0 && ks->shape[r] >= 16) {
      tgc_kshape_apply(ks, (tgc_opt){OPT_UNROLL, r, 4}); /* four scalar accumulators */
    }
    return;
  }
  if (g >= 0 && vec && ks->shape[g] % W == 0) {
    int st = -1;
    for (int l = 0; l < ks->nleaves; l++)
      if (ks->leaves[l]->op == TGC_OP_STORE) st = (int)stride_of(ks, l, g);
    if (st == 1 && tgc_kshape_apply(ks, (tgc_opt){OPT_UPCAST, g, W})) ks->vec_axis = ks->ndim - 1;
  }
}

/* ---- the GPU heuristic ----------------------------------------------------- */

/* The largest divisor of n that is at most cap (powers of two first). */
static int pick_divisor(int64_t n, int cap, bool pow2) {
  for (int d = cap; d >= 2; d--)
    if (n % d == 0 && (!pow2 || (d & (d - 1)) == 0)) return d;
  return 1;
}

static bool store_contiguous_on(const tgc_kshape *ks, int axis) {
  for (int l = 0; l < ks->nleaves; l++)
    if (ks->leaves[l]->op == TGC_OP_STORE) return stride_of(ks, l, axis) == 1;
  return false;
}

/* A reduce along contiguous memory (matvec) becomes a grouped reduce with
 * 16-byte loads: each thread of a block reads every G-th 16-byte chunk,
 * so neighbouring threads read neighbouring chunks, and the partial sums
 * meet in local memory.  Elementwise kernels get a block of up to 256
 * threads along their last axis. */
static void gpu_heuristic(tgc_kshape *ks, const tgc_lang *lang) {
  tgc_uop *store = NULL;
  for (int l = 0; l < ks->nleaves; l++)
    if (ks->leaves[l]->op == TGC_OP_STORE) store = ks->leaves[l];
  if (!store || store->src[2]->op == TGC_OP_GATHER_LOAD) return;
  int big = biggest_load(ks), r = last_axis(ks, AXIS_REDUCE), g = last_axis(ks, AXIS_GLOBAL);
  if (r >= 0) {
    if (big >= 0 && stride_of(ks, big, r) == 1) {
      int w = lang->vec_bytes / tgc_dtypes[ks->leaves[big]->dtype].bytes;
      if (w > 1 && ks->shape[r] % w == 0 && tgc_kshape_apply(ks, (tgc_opt){OPT_UNROLL, r, w}))
        ks->vec_axis = ks->ndim - 1;
      /* enough threads per row to cover it in about sixteen steps, at
       * least a warp; the rest of the block takes more rows */
      int64_t want = ks->shape[r] / 16;
      int G = pick_divisor(ks->shape[r], want < 32 ? 32 : want > 256 ? 256 : (int)want, true);
      if (G > 1 && tgc_kshape_apply(ks, (tgc_opt){OPT_GROUP, r, G}) && g >= 0 && 256 / G > 1) {
        int L = pick_divisor(ks->shape[g], 256 / G, true);
        if (L > 1) tgc_kshape_apply(ks, (tgc_opt){OPT_LOCAL, g, L});
      }

    } else if (g >= 0 && big >= 0 && stride_of(ks, big, g) == 1) {
      int L = pick_divisor(ks->shape[g], 256, false);
      if (L > 1) tgc_kshape_apply(ks, (tgc_opt){OPT_LOCAL, g, L});
    } else if (ks->shape[r] >= 64) {
      int G = pick_divisor(ks->shape[r], 256, true);
      if (G > 1) tgc_kshape_apply(ks, (tgc_opt){OPT_GROUPTOP, r, G});
    } else if (g >= 0) {
      int L = pick_divisor(ks->shape[g], 256, false);
      if (L > 1) tgc_kshape_apply(ks, (tgc_opt){OPT_LOCAL, g, L});
    }
    return;
  }
  if (g < 0) return;
  int w = lang->vec_bytes / tgc_dtypes[store->dtype].bytes;
  if (tgc_dtypes[store->dtype].is_float && w > 1 && ks->shape[g] % w == 0 && ks->shape[g] / w >= 64 &&
      store_contiguous_on(ks, g) && tgc_kshape_apply(ks, (tgc_opt){OPT_UPCAST, g, w}))
    ks->vec_axis = ks->ndim - 1;
  int L = pick_divisor(ks->shape[g], 256, false);
  if (L > 1) tgc_kshape_apply(ks, (tgc_opt){OPT_LOCAL, g, L});
}

void tgc_opt_heuristic(tgc_kshape *ks, const tgc_lang *lang) {
  if (lang->gpu) {
    gpu_heuristic(ks, lang);
  } else {
    cpu_heuristic(ks, lang->vec_alu);
  }
}
