/* schedule.c - cuts a lazy graph into kernels.
 *
 * Three steps:
 *   1. collect the unrealized graph under the targets, in topological order;
 *   2. choose the realize points: targets, CONTIGUOUS/ASSIGN/GATHER, and a
 *      reduce (or the elementwise work after it) wherever its value would
 *      have to be broadcast, moved or recomputed; everything else fuses;
 *   3. build one AST per realize point: movement ops are pushed into the
 *      views of the loads beneath them, so they never cost a kernel.
 *
 * A kernel holds at most one reduce.  The elementwise work after the reduce
 * is expressed in the reduce's output shape ("reduce space"): a reshape
 * between the reduce and the output is absorbed by reshaping the other
 * operands instead, which is how matmul's final reshape and keepdim=false
 * fuse into the reduce kernel.
 */
#include "tgc_internal.h"

/* ---- a small map from node to int, by node id ------------------------------ */

typedef struct imap {
  uint32_t *keys; /* id + 1; 0 is empty */
  int *vals;
  size_t cap, n;
} imap;

static void imap_put(imap *m, const tgc_uop *u, int v);
static int *imap_slot(imap *m, const tgc_uop *u) {
  if (!m->cap) return NULL;
  size_t i = (u->id * 2654435761u) & (m->cap - 1);
  while (m->keys[i]) {
    if (m->keys[i] == u->id + 1) return &m->vals[i];
    i = (i + 1) & (m->cap - 1);
  }
  return NULL;
}
static int imap_get(imap *m, const tgc_uop *u, int dflt) {
  int *p = imap_slot(m, u);
  return p ? *p : dflt;
}
static void imap_grow(imap *m) {
  imap o = *m;
  m->cap = o.cap ? o.cap * 2 : 256;
  m->n = 0;
  m->keys = tgc_xcalloc(m->cap, sizeof *m->keys);
  m->vals = tgc_xcalloc(m->cap, sizeof *m->vals);
  for (size_t i = 0; i < o.cap; i++) {
    if (!o.keys[i]) continue;
    size_t j = (o.keys[i] - 1) * 2654435761u & (m->cap - 1);
    while (m->keys[j]) j = (j + 1) & (m->cap - 1);
    m->keys[j] = o.keys[i];
    m->vals[j] = o.vals[i];
    m->n++;
  }
  free(o.keys);
  free(o.vals);
}
static void imap_put(imap *m, const tgc_uop *u, int v) {
  int *p = imap_slot(m, u);
  if (p) {
    *p = v;
    return;
  }
  if ((m->n + 1) * 2 > m->cap) imap_grow(m);
  size_t i = (u->id * 2654435761u) & (m->cap - 1);
  while (m->keys[i]) i = (i + 1) & (m->cap - 1);
  m->keys[i] = u->id + 1;
  m->vals[i] = v;
  m->n++;
}
static void imap_free(imap *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

/* ---- scheduler state ---------------------------------------------------- */

typedef struct sched {
  tgc_ctx *ctx;
  tgc_uop **topo; /* unrealized nodes, sources first */
  int ntopo, cap;
  imap seen;      /* node -> index in topo */
  imap realize;   /* node -> 1 when it is a realize point */
  imap memo;      /* scratch per pass */
} sched;

static bool done(const tgc_uop *u) { return tgc_uop_current(u); }
static bool is_rp(sched *s, const tgc_uop *u) { return imap_get(&s->realize, u, 0); }
static void mark(sched *s, tgc_uop *u) { imap_put(&s->realize, u, 1); }

/* Sources that belong to the computation (an ASSIGN's target chain only
 * names memory). */
static int nsrc_of(const tgc_uop *u) { return u->op == TGC_OP_ASSIGN ? 1 : u->nsrc; }
static tgc_uop *src_of(const tgc_uop *u, int i) {
  return u->op == TGC_OP_ASSIGN ? u->src[1] : u->src[i];
}

static void collect(sched *s, tgc_uop *root) {
  /* iterative DFS: the graphs of real models are deep */
  typedef struct {
    tgc_uop *u;
    int next;
  } frame;
  int cap = 64, sp = 0;
  frame *st = tgc_xmalloc(sizeof *st * (size_t)cap);
  if (done(root) || imap_slot(&s->seen, root)) {
    free(st);
    return;
  }
  st[sp++] = (frame){root, 0};
  imap_put(&s->seen, root, -1);
  while (sp) {
    frame *f = &st[sp - 1];
    if (f->next < nsrc_of(f->u)) {
      tgc_uop *c = src_of(f->u, f->next++);
      if (done(c) || imap_slot(&s->seen, c)) continue;
      imap_put(&s->seen, c, -1);
      if (sp == cap) st = tgc_xrealloc(st, sizeof *st * (size_t)(cap *= 2));
      st[sp++] = (frame){c, 0};
      continue;
    }
    if (s->ntopo == s->cap) {
      s->cap = s->cap ? s->cap * 2 : 256;
      s->topo = tgc_xrealloc(s->topo, sizeof *s->topo * (size_t)s->cap);
    }
    imap_put(&s->seen, f->u, s->ntopo);
    s->topo[s->ntopo++] = f->u;
    sp--;
  }
  free(st);
}

/* Does the fused region under u (stopping at realize points) hold a reduce? */
static bool has_reduce(sched *s, tgc_uop *u) {
  if (done(u) || is_rp(s, u)) return false;
  int m = imap_get(&s->memo, u, -1);
  if (m >= 0) return m;
  bool r = IS_REDUCE(u->op);
  for (int i = 0; !r && i < u->nsrc; i++) r = has_reduce(s, u->src[i]);
  imap_put(&s->memo, u, r);
  return r;
}

/* Marks every reduce in the fused region under u (u excluded). */
static int mark_reduces_below(sched *s, tgc_uop *u) {
  int n = 0;
  for (int i = 0; i < u->nsrc; i++) {
    tgc_uop *c = u->src[i];
    if (done(c) || is_rp(s, c)) continue;
    if (IS_REDUCE(c->op)) {
      mark(s, c);
      n++;
    } else {
      n += mark_reduces_below(s, c);
    }
  }
  return n;
}

/* Lists the reduces in the region of a root (DFS order, nearest first). */
static void region_reduces(sched *s, tgc_uop *u, imap *visit, tgc_uop **out, int *n, int cap) {
  for (int i = 0; i < nsrc_of(u); i++) {
    tgc_uop *c = src_of(u, i);
    if (done(c) || is_rp(s, c) || imap_slot(visit, c)) continue;
    imap_put(visit, c, 1);
    if (IS_REDUCE(c->op) && *n < cap) out[(*n)++] = c;
    region_reduces(s, c, visit, out, n, cap);
  }
}

/* Kernel outputs of this schedule that the fused region under u reads. */
static int count_rp_below(sched *s, tgc_uop *u, imap *visit) {
  int n = 0;
  for (int i = 0; i < nsrc_of(u); i++) {
    tgc_uop *c = src_of(u, i);
    if (done(c) || imap_slot(visit, c)) continue;
    imap_put(visit, c, 1);
    n += is_rp(s, c) ? 1 : count_rp_below(s, c, visit);
  }
  return n;
}

/* Elementwise work read through an EXPAND inside a reduce's region is
 * recomputed for every element of the expanded axes: matmul's A [M,1,K]
 * broadcast over N would redo rmsnorm's x * r * w once per output row of a
 * matvec.  Where that multiplies the work by 64 or more, the work is stored
 * first (a small kernel) and the reduce reads it.  Not below that: a
 * quantized weight read by a prefill chunk of up to 32 rows is dequantized
 * in the matmul's loads rather than stored in f32 (memory the size of the
 * weight, four times over).  Nor for fewer than 16 elements, which cost
 * less to recompute than a launch.  Marks such nodes under u; true if it
 * marked any. */
/* Whether the elementwise work at b, down to what is stored, holds a
 * transcendental or a division, which cost ten plain ops or more each. */
static bool costly_work(sched *s, tgc_uop *b, int depth) {
  if (depth > 12 || done(b) || is_rp(s, b) || !(IS_ALU(b->op) || IS_MOVE(b->op))) return false;
  switch (b->op) {
  case TGC_OP_EXP:
  case TGC_OP_EXP2:
  case TGC_OP_LOG:
  case TGC_OP_LOG2:
  case TGC_OP_SIN:
  case TGC_OP_COS:
  case TGC_OP_TANH:
  case TGC_OP_FDIV:
  case TGC_OP_POW: return true;
  default: break;
  }
  for (int i = 0; i < nsrc_of(b); i++)
    if (costly_work(s, src_of(b, i), depth + 1)) return true;
  return false;
}

/* ... and where that work holds a transcendental or a division (softmax's
 * exp(x - max) / sum, read by probs @ V once per feature of a head), from
 * 8 times on: with heads of 48 features, an exp per feature was 13% of a
 * stories15m decode step. */
static bool store_expanded_work(sched *s, tgc_uop *u, imap *visit) {
  if (done(u) || is_rp(s, u) || imap_slot(visit, u)) return false;
  imap_put(visit, u, 1);
  bool marked = false;
  if (u->op == TGC_OP_EXPAND) {
    tgc_uop *b = u->src[0];
    while (IS_MOVE(b->op) && !done(b) && !is_rp(s, b)) b = b->src[0];
    int64_t from = tgc_shape_numel_max(s->ctx, u->src[0]->ndim, u->src[0]->shape);
    int64_t to = tgc_shape_numel_max(s->ctx, u->ndim, u->shape);
    bool worth = to >= 64 * from || (to >= 8 * from && !done(b) && !is_rp(s, b) && costly_work(s, b, 0));
    if (!done(b) && !is_rp(s, b) && IS_ALU(b->op) && from >= 16 && worth) {
      mark(s, b);
      return true;
    }
  }
  for (int i = 0; i < nsrc_of(u); i++) marked |= store_expanded_work(s, src_of(u, i), visit);
  return marked;
}

static bool is_root_op(const tgc_uop *u) {
  return u->op == TGC_OP_CONTIGUOUS || u->op == TGC_OP_ASSIGN || u->op == TGC_OP_GATHER;
}

/* One pass of the realize rules; returns true if it marked anything. */
static bool realize_pass(sched *s) {
  bool changed = false;
  imap_free(&s->memo);
  for (int i = 0; i < s->ntopo; i++) {
    tgc_uop *u = s->topo[i];
    if (is_rp(s, u)) continue;
    if (IS_MOVE(u->op) && u->op != TGC_OP_RESHAPE) {
      /* a moved reduce cannot stay in reduce space: store it first */
      tgc_uop *b = u->src[0];
      while (IS_MOVE(b->op) && !done(b) && !is_rp(s, b)) b = b->src[0];
      if (has_reduce(s, b)) {
        mark(s, b);
        changed = true;
        imap_free(&s->memo);
      }
    } else if (IS_REDUCE(u->op) && has_reduce(s, u->src[0])) {
      changed |= mark_reduces_below(s, u) > 0; /* a reduce of a reduce */
      imap_free(&s->memo);
    }
  }
  if (changed) return true;
  for (int i = 0; i < s->ntopo; i++) {
    tgc_uop *u = s->topo[i];
    if (!IS_REDUCE(u->op) || done(u)) continue;
    imap visit = {0};
    changed |= store_expanded_work(s, u->src[0], &visit);
    imap_free(&visit);
  }
  if (changed) return true;
  /* shared work built on three or more of this schedule's kernel outputs
   * is stored, not recomputed: recomputing it would repeat every stage
   * before it in every consumer (a chain of normalisations would grow
   * quadratically).  Shallow shared work (softmax's exp(x - max), even
   * over a matmul) still fuses. */
  imap consumers = {0};
  for (int i = 0; i < s->ntopo; i++)
    for (int k = 0; k < nsrc_of(s->topo[i]); k++) {
      tgc_uop *c = src_of(s->topo[i], k);
      imap_put(&consumers, c, imap_get(&consumers, c, 0) + 1);
    }
  for (int i = 0; i < s->ntopo; i++) {
    tgc_uop *u = s->topo[i];
    if (is_rp(s, u) || !IS_ALU(u->op) || imap_get(&consumers, u, 0) < 2) continue;
    imap visit = {0};
    if (count_rp_below(s, u, &visit) >= 3) {
      mark(s, u);
      changed = true;
    }
    imap_free(&visit);
  }
  imap_free(&consumers);
  if (changed) return true;
  /* one reduce per kernel, and no reduce computed by two kernels */
  imap owners = {0};
  for (int i = 0; i < s->ntopo; i++) {
    tgc_uop *r = s->topo[i];
    if (!is_rp(s, r)) continue;
    tgc_uop *red[64];
    int n = 0;
    imap visit = {0};
    region_reduces(s, r, &visit, red, &n, 64);
    imap_free(&visit);
    if (IS_REDUCE(r->op)) {
      for (int k = 0; k < n; k++) mark(s, red[k]);
      changed |= n > 0;
      n = 0;
    }
    for (int k = 1; k < n; k++) mark(s, red[k]);
    changed |= n > 1;
    if (n >= 1) {
      int prev = imap_get(&owners, red[0], 0);
      if (prev) {
        mark(s, red[0]);
        changed = true;
      }
      imap_put(&owners, red[0], 1);
    }
  }
  imap_free(&owners);
  return changed;
}

/* ---- building a kernel AST ----------------------------------------------- */

typedef struct kbuild {
  sched *s;
  tgc_uop *root;
  tgc_uop **bufs; /* slot -> graph node */
  int nbufs, bufcap;
  imap slots;     /* graph node -> slot */
  imap memo;      /* graph node -> index into results */
  struct built *res;
  int nres, rescap;
  tgc_uop *reduce;      /* the kernel's reduce (graph node) */
  int64_t rshape[TGC_MAX_DIMS];
  int rndim;
  bool failed;
} kbuild;

/* A built subtree: its AST, and whether its leaves are in reduce space. */
typedef struct built {
  tgc_uop *ast;
  bool rspace;
} built;

static tgc_uop *view_node(tgc_ctx *ctx, tgc_st st) {
  tgc_st c;
  memset(&c, 0, sizeof c);
  c.nviews = st.nviews;
  for (int v = 0; v < st.nviews; v++) {
    tgc_view *d = &c.views[v], *o = &st.views[v];
    d->ndim = o->ndim;
    d->offset = o->offset;
    memcpy(d->voff, o->voff, sizeof d->voff);
    d->has_mask = o->has_mask;
    for (int i = 0; i < o->ndim; i++) {
      d->shape[i] = o->shape[i];
      d->strides[i] = o->shape[i] == 1 ? 0 : o->strides[i];
      if (o->has_mask) {
        d->mask[i][0] = o->mask[i][0];
        d->mask[i][1] = o->mask[i][1];
      }
    }
  }
  return tgc_uop_new(ctx, TGC_OP_VIEW, TGC_BOOL, 0, NULL, &c, sizeof c, 0, NULL);
}

static tgc_uop *global_node(tgc_ctx *ctx, int slot, tgc_dtype dt) {
  return tgc_uop_new(ctx, TGC_OP_DEFINE_GLOBAL, dt, 0, NULL, &slot, sizeof slot, 0, NULL);
}

static int slot_of(kbuild *k, tgc_uop *u) {
  int slot = imap_get(&k->slots, u, -1);
  if (slot >= 0) return slot;
  if (k->nbufs == k->bufcap) {
    k->bufcap = k->bufcap ? k->bufcap * 2 : 8;
    k->bufs = tgc_xrealloc(k->bufs, sizeof *k->bufs * (size_t)k->bufcap);
  }
  k->bufs[k->nbufs] = u;
  imap_put(&k->slots, u, k->nbufs);
  return k->nbufs++;
}

static tgc_uop *load_node(kbuild *k, tgc_uop *u) {
  tgc_ctx *ctx = k->s->ctx;
  tgc_uop *src[2] = {global_node(ctx, slot_of(k, u), u->dtype),
                     view_node(ctx, tgc_st_contiguous_in(ctx, u->ndim, u->shape))};
  return tgc_uop_new(ctx, TGC_OP_LOAD, u->dtype, 2, src, NULL, 0, 0, NULL);
}

/* arg is a tgc_cval, or a tgc_symconst for the value of a symbolic size. */
static tgc_uop *const_node(tgc_ctx *ctx, tgc_dtype dt, const void *arg, size_t arglen, tgc_st st) {
  tgc_uop *v = view_node(ctx, st);
  return tgc_uop_new(ctx, TGC_OP_CONST, dt, 1, &v, arg, arglen, 0, NULL);
}

/* Does the AST hold an op with f(0) != 0 (so a zero pad cannot pass)? */
static bool pad_unsafe(tgc_uop *a) {
  if (a->op == TGC_OP_LOAD || a->op == TGC_OP_CONST) return false;
  if (!(tgc_ops[a->op].flags & F_ZERO)) return true;
  for (int i = 0; i < a->nsrc; i++)
    if (pad_unsafe(a->src[i])) return true;
  return false;
}

typedef struct pushctx {
  kbuild *k;
  const tgc_uop *m; /* movement node (op, arg, shape) */
  imap memo;
  tgc_uop **out;
  int nout, cap;
} pushctx;

static tgc_uop *push(pushctx *p, tgc_uop *a) {
  int m = imap_get(&p->memo, a, -1);
  if (m >= 0) return p->out[m];
  tgc_ctx *ctx = p->k->s->ctx;
  tgc_uop *r;
  if (a->op == TGC_OP_LOAD || a->op == TGC_OP_CONST) {
    tgc_uop *vnode = a->src[a->op == TGC_OP_LOAD ? 1 : 0];
    tgc_st st = *(const tgc_st *)vnode->arg;
    if (!tgc_st_apply(&st, p->m)) {
      p->k->failed = true;
      return a;
    }
    tgc_uop *v = view_node(ctx, st);
    if (a->op == TGC_OP_LOAD) {
      tgc_uop *src[2] = {a->src[0], v};
      r = tgc_uop_new(ctx, TGC_OP_LOAD, a->dtype, 2, src, NULL, 0, 0, NULL);
    } else {
      r = tgc_uop_new(ctx, TGC_OP_CONST, a->dtype, 1, &v, a->arg, a->arglen, 0, NULL);
    }
  } else {
    tgc_uop *src[4];
    for (int i = 0; i < a->nsrc; i++) src[i] = push(p, a->src[i]);
    r = tgc_uop_new(ctx, a->op, a->dtype, a->nsrc, src, a->arg, a->arglen, 0, NULL);
  }
  if (p->nout == p->cap) p->out = tgc_xrealloc(p->out, sizeof *p->out * (size_t)(p->cap = p->cap ? p->cap * 2 : 32));
  imap_put(&p->memo, a, p->nout);
  p->out[p->nout++] = r;
  return r;
}

/* Applies movement node m (whose source has shape `from`) to every leaf of
 * ast.  A pad over an op that does not keep zeros is guarded by a mask. */
static tgc_uop *push_move(kbuild *k, tgc_uop *ast, const tgc_uop *m, int fndim,
                          const int64_t *from) {
  pushctx p = {.k = k, .m = m};
  tgc_uop *r = push(&p, ast);
  imap_free(&p.memo);
  free(p.out);
  if (m->op == TGC_OP_PAD && pad_unsafe(ast)) {
    tgc_ctx *ctx = k->s->ctx;
    tgc_st vst = tgc_st_contiguous_in(ctx, fndim, from);
    for (int i = 0; i < fndim; i++) vst.views[0].strides[i] = 0;
    if (!tgc_st_pad(&vst, m->arg)) k->failed = true;
    tgc_st zst = tgc_st_contiguous_in(ctx, m->ndim, m->shape);
    for (int i = 0; i < m->ndim; i++) zst.views[0].strides[i] = 0;
    tgc_cval one = tgc_scalar_of(TGC_BOOL, 1), zero = tgc_scalar_of(ast->dtype, 0);
    tgc_uop *src[3] = {const_node(ctx, TGC_BOOL, &one, sizeof one, vst), r,
                       const_node(ctx, ast->dtype, &zero, sizeof zero, zst)};
    r = tgc_uop_new(ctx, TGC_OP_WHERE, ast->dtype, 3, src, NULL, 0, 0, NULL);
  }
  return r;
}

/* A RESHAPE node over shape `from` to shape (nd, to), for push_move. */
static tgc_uop reshape_of(int nd, const int64_t *to) {
  tgc_uop m;
  memset(&m, 0, sizeof m);
  m.op = TGC_OP_RESHAPE;
  m.ndim = (int8_t)nd;
  m.shape = to;
  return m;
}

static built build(kbuild *k, tgc_uop *u);

static built build_alu(kbuild *k, tgc_uop *u) {
  built b[3];
  bool rs = false;
  for (int i = 0; i < u->nsrc; i++) {
    b[i] = build(k, u->src[i]);
    rs |= b[i].rspace;
  }
  tgc_uop *src[3];
  for (int i = 0; i < u->nsrc; i++) {
    src[i] = b[i].ast;
    if (rs && !b[i].rspace) {
      tgc_uop m = reshape_of(k->rndim, k->rshape);
      src[i] = push_move(k, b[i].ast, &m, u->src[i]->ndim, u->src[i]->shape);
    }
  }
  tgc_uop *a = tgc_uop_new(k->s->ctx, u->op, u->dtype, u->nsrc, src, NULL, 0, 0, NULL);
  return (built){a, rs};
}

static built build_uncached(kbuild *k, tgc_uop *u) {
  tgc_ctx *ctx = k->s->ctx;
  if (u != k->root && (done(u) || is_rp(k->s, u))) return (built){load_node(k, u), false};
  if (u->op == TGC_OP_CONST) {
    tgc_st st = tgc_st_contiguous(0, NULL);
    return (built){const_node(ctx, u->dtype, u->arg, u->arglen, st), false};
  }
  if (IS_MOVE(u->op)) {
    built b = build(k, u->src[0]);
    if (b.rspace) {
      TGC_ASSERT(u->op == TGC_OP_RESHAPE);
      return b;
    }
    return (built){push_move(k, b.ast, u, u->src[0]->ndim, u->src[0]->shape), false};
  }
  if (IS_REDUCE(u->op)) {
    TGC_ASSERT(!k->reduce);
    k->reduce = u;
    k->rndim = u->ndim;
    memcpy(k->rshape, u->shape, sizeof *u->shape * (size_t)u->ndim);
    built b = build(k, u->src[0]);
    TGC_ASSERT(!b.rspace);
    tgc_uop *a = tgc_uop_new(ctx, u->op, u->dtype, 1, &b.ast, u->arg, u->arglen, 0, NULL);
    return (built){a, true};
  }
  if (IS_ALU(u->op)) return build_alu(k, u);
  if (u->op == TGC_OP_CONTIGUOUS) return build(k, u->src[0]);
  TGC_ASSERT(!"unexpected op in a kernel");
  return (built){NULL, false};
}

static built build(kbuild *k, tgc_uop *u) {
  int m = imap_get(&k->memo, u, -1);
  if (m >= 0) return k->res[m];
  built b = build_uncached(k, u);
  if (k->nres == k->rescap)
    k->res = tgc_xrealloc(k->res, sizeof *k->res * (size_t)(k->rescap = k->rescap ? k->rescap * 2 : 32));
  imap_put(&k->memo, u, k->nres);
  k->res[k->nres++] = b;
  return b;
}

/* The store's view stack for an ASSIGN: its target chain applied to the
 * base buffer's contiguous view. */
static tgc_uop *assign_base(tgc_uop *target, tgc_st *st) {
  if (!IS_MOVE(target->op) || tgc_uop_current(target)) {
    *st = tgc_st_contiguous_in(target->ctx, target->ndim, target->shape);
    return target;
  }
  tgc_uop *base = assign_base(target->src[0], st);
  if (!tgc_st_apply(st, target)) return NULL;
  return base;
}

static tgc_uop *gather_ast(kbuild *k, tgc_uop *r) {
  tgc_ctx *ctx = k->s->ctx;
  tgc_uop *table = r->src[0], *ids = r->src[1];
  int64_t n = tgc_numel(ids), d = table->shape[1], shape[2] = {n, d};
  slot_of(k, r);
  tgc_uop *src[3] = {global_node(ctx, slot_of(k, table), table->dtype),
                     global_node(ctx, slot_of(k, ids), ids->dtype),
                     view_node(ctx, tgc_st_contiguous(2, shape))};
  int64_t rows = table->shape[0];
  tgc_uop *g = tgc_uop_new(ctx, TGC_OP_GATHER_LOAD, table->dtype, 3, src, &rows, sizeof rows, 0, NULL);
  tgc_uop *st[3] = {global_node(ctx, 0, r->dtype), src[2], g};
  return tgc_uop_new(ctx, TGC_OP_STORE, r->dtype, 3, st, NULL, 0, 0, NULL);
}

/* Builds the kernel that realizes root r; false with an error on failure. */
static bool build_kernel(sched *s, tgc_uop *r, tgc_kernel *out) {
  kbuild k = {.s = s, .root = r};
  tgc_ctx *ctx = s->ctx;
  tgc_uop *ast = NULL;
  if (r->op == TGC_OP_GATHER) {
    ast = gather_ast(&k, r);
  } else {
    tgc_uop *val = r->op == TGC_OP_CONTIGUOUS ? r->src[0] : r->op == TGC_OP_ASSIGN ? r->src[1] : r;
    tgc_st st = tgc_st_contiguous_in(ctx, val->ndim, val->shape);
    int alias = 0;
    if (r->op == TGC_OP_ASSIGN) {
      tgc_uop *base = assign_base(r->src[0], &st);
      if (!base) {
        tgc_set_error(TGC_ERR_UNSUPPORTED, "assign: the target view is too complex");
        return false;
      }
      slot_of(&k, r);
      alias = 1;
    } else {
      slot_of(&k, r);
    }
    built b = build(&k, val == r ? r : val);
    if (b.rspace && !tgc_st_reshape(&st, k.rndim, k.rshape)) k.failed = true;
    if (k.failed) {
      free(k.bufs);
      imap_free(&k.slots);
      imap_free(&k.memo);
      free(k.res);
      tgc_set_error(TGC_ERR_UNSUPPORTED, "schedule: a chain of movement ops cannot be expressed as views "
                    "(more than %d reshapes deep, a reshape that splits or merges a symbolic size, or a "
                    "mask that depends on a variable's value)", TGC_MAX_VIEWS);
      return false;
    }
    tgc_uop *src[3] = {global_node(ctx, 0, r->dtype), view_node(ctx, st), b.ast};
    ast = tgc_uop_new(ctx, TGC_OP_STORE, r->dtype, 3, src, &alias, sizeof alias, 0, NULL);
  }
  if (k.nbufs > TGC_MAX_BUFS) {
    free(k.bufs);
    imap_free(&k.slots);
    imap_free(&k.memo);
    free(k.res);
    tgc_set_error(TGC_ERR_UNSUPPORTED, "schedule: a fused kernel would read %d buffers (at most %d); "
                                       "realize part of the graph first (tgc_contiguous)", k.nbufs, TGC_MAX_BUFS);
    return false;
  }
  out->ast = ast;
  out->nbufs = k.nbufs;
  out->bufnodes = k.bufs;
  out->out = r;
  imap_free(&k.slots);
  imap_free(&k.memo);
  free(k.res);
  return true;
}

/* ---- the scheduler --------------------------------------------------------- */

tgc_schedule *tgc_schedule_new(tgc_ctx *ctx, int n, tgc_uop *const *targets) {
  sched s = {.ctx = ctx};
  for (int i = 0; i < n; i++) collect(&s, targets[i]);
  for (int i = 0; i < n; i++)
    if (!done(targets[i])) mark(&s, targets[i]);
  for (int i = 0; i < s.ntopo; i++) {
    tgc_uop *u = s.topo[i];
    if (is_root_op(u)) mark(&s, u);
    if (u->op == TGC_OP_GATHER)
      for (int j = 0; j < 2; j++)
        if (!done(u->src[j])) mark(&s, u->src[j]);
  }
  while (realize_pass(&s)) {
  }
  tgc_schedule *sch = tgc_xcalloc(1, sizeof *sch);
  sch->kernels = tgc_xcalloc((size_t)s.ntopo + 1, sizeof *sch->kernels);
  sch->targets = tgc_xmalloc(sizeof *sch->targets * (size_t)(n ? n : 1));
  sch->ntargets = n;
  memcpy(sch->targets, targets, sizeof *targets * (size_t)n);
  bool ok = true;
  for (int i = 0; ok && i < s.ntopo; i++) {
    tgc_uop *u = s.topo[i];
    if (!is_rp(&s, u)) continue;
    ok = build_kernel(&s, u, &sch->kernels[sch->nkernels]);
    if (ok) sch->nkernels++;
  }
  free(s.topo);
  imap_free(&s.seen);
  imap_free(&s.realize);
  imap_free(&s.memo);
  ctx->stats.schedules++;
  ctx->stats.kernels_scheduled += (uint64_t)sch->nkernels;
  if (!ok) {
    tgc_schedule_free(sch);
    return NULL;
  }
  return sch;
}

void tgc_schedule_free(tgc_schedule *s) {
  if (!s) return;
  for (int i = 0; i < s->nkernels; i++) free(s->kernels[i].bufnodes);
  free(s->kernels);
  free(s->targets);
  free(s);
}
