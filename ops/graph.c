/* graph.c - graph nodes and device buffers.
 *
 * Nodes are hash-consed in the context's arena: tgc_uop_new looks the node
 * up by (op, dtype, sources, arg) first, so building the same expression
 * twice yields the same pointer.  That is what lets the scheduler and the
 * program cache recognise repeated work by pointer comparison.  BUFFER
 * nodes carry a unique serial number in their arg and so are never merged.
 */
#include "tgc_internal.h"

const tgc_op_info tgc_ops[TGC_NUM_OPS] = {
#define X(NAME, group, arity, flags) {#NAME, GROUP_##group, arity, flags},
#include "ops.def"
#undef X
};

const tgc_dtype_info tgc_dtypes[TGC_NUM_DTYPES] = {
#define X(NAME, name, bytes, ctype, cudatype, isfloat, issigned)                           \
  {#name, #ctype, #cudatype, bytes, isfloat, issigned},
#include "tgc_dtypes.def"
#undef X
};

tgc_cval tgc_scalar_of(tgc_dtype dt, double v) {
  tgc_cval s = {v, 0};
  if (tgc_dtypes[dt].is_float) return s;
  if (dt == TGC_BOOL) {
    s.i = v != 0;
  } else if (v >= 9.2e18) {
    s.i = INT64_MAX;
  } else if (v <= -9.2e18) {
    s.i = INT64_MIN;
  } else {
    s.i = (int64_t)v;
  }
  s.f = (double)s.i;
  return s;
}

int64_t tgc_shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

char *tgc_shape_str_in(const tgc_ctx *ctx, int ndim, const int64_t *shape, char *buf, size_t cap) {
  size_t len = 0;
  len += (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < ndim && len < cap; i++) {
    char d[64];
    len += (size_t)snprintf(buf + len, cap - len, i ? ",%s" : "%s", tgc_sym_str(ctx, shape[i], d, sizeof d));
  }
  if (len < cap) snprintf(buf + len, cap - len, "]");
  return buf;
}

char *tgc_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
  return tgc_shape_str_in(NULL, ndim, shape, buf, cap);
}

/* Does the node's value depend on the variables' bindings by itself (a
 * symbolic size, a window at a symbolic position, a symbolic constant)? */
static bool uses_vars(tgc_op op, const void *arg, size_t arglen, int ndim, const int64_t *shape) {
  if (op == TGC_OP_SHRINKV || tgc_shape_symbolic(ndim, shape)) return true;
  if (op == TGC_OP_SHRINK || op == TGC_OP_PAD) return tgc_shape_symbolic((int)(arglen / sizeof(int64_t)), arg);
  return op == TGC_OP_CONST && arglen == sizeof(tgc_symconst);
}

static uint64_t node_hash(tgc_op op, tgc_dtype dt, int nsrc, tgc_uop *const *src,
                          const void *arg, size_t arglen, int ndim, const int64_t *shape) {
  uint64_t h = tgc_hash64(arg, arglen, ((uint64_t)op << 8) | dt);
  for (int i = 0; i < nsrc; i++) h = tgc_hash64(&src[i]->id, sizeof src[i]->id, h);
  return tgc_hash64(shape, sizeof(int64_t) * (size_t)ndim, h ^ (uint64_t)ndim);
}

static bool node_equal(const tgc_uop *u, tgc_op op, tgc_dtype dt, int nsrc,
                       tgc_uop *const *src, const void *arg, size_t arglen, int ndim,
                       const int64_t *shape) {
  if (u->op != op || u->dtype != dt || u->nsrc != nsrc || u->arglen != arglen ||
      u->ndim != ndim)
    return false;
  for (int i = 0; i < nsrc; i++)
    if (u->src[i] != src[i]) return false;
  if (arglen && memcmp(u->arg, arg, arglen)) return false;
  return !ndim || !memcmp(u->shape, shape, sizeof(int64_t) * (size_t)ndim);
}

static void table_grow(tgc_ctx *ctx) {
  size_t cap = ctx->table_cap ? ctx->table_cap * 2 : 4096;
  tgc_uop **t = tgc_xcalloc(cap, sizeof *t);
  for (size_t i = 0; i < ctx->table_cap; i++) {
    for (tgc_uop *u = ctx->table[i], *next; u; u = next) {
      next = u->next;
      u->next = t[u->hash & (cap - 1)];
      t[u->hash & (cap - 1)] = u;
    }
  }
  free(ctx->table);
  ctx->table = t;
  ctx->table_cap = cap;
}

tgc_uop *tgc_uop_new(tgc_ctx *ctx, tgc_op op, tgc_dtype dt, int nsrc, tgc_uop *const *src,
                     const void *arg, size_t arglen, int ndim, const int64_t *shape) {
  TGC_ASSERT(nsrc >= 0 && nsrc < 256 && ndim >= 0 && ndim <= TGC_MAX_KDIMS);
  if (ctx->table_count * 2 >= ctx->table_cap) table_grow(ctx);
  uint64_t h = node_hash(op, dt, nsrc, src, arg, arglen, ndim, shape);
  tgc_uop **bucket = &ctx->table[h & (ctx->table_cap - 1)];
  for (tgc_uop *u = *bucket; u; u = u->next)
    if (u->hash == h && node_equal(u, op, dt, nsrc, src, arg, arglen, ndim, shape)) return u;
  tgc_uop *u = tgc_arena_alloc(ctx->arena, sizeof *u);
  u->op = (uint16_t)op;
  u->dtype = (uint8_t)dt;
  u->nsrc = (uint8_t)nsrc;
  u->ndim = (int8_t)ndim;
  u->id = ctx->next_id++;
  u->hash = h;
  u->ctx = ctx;
  if (nsrc) u->src = tgc_arena_dup(ctx->arena, src, sizeof *src * (size_t)nsrc);
  if (arglen) u->arg = tgc_arena_dup(ctx->arena, arg, arglen);
  u->arglen = (uint32_t)arglen;
  static const int64_t no_dims[1] = {0}; /* 0-d nodes: a valid, empty shape */
  u->shape = ndim ? tgc_arena_dup(ctx->arena, shape, sizeof *shape * (size_t)ndim) : no_dims;
  u->vardep = uses_vars(op, arg, arglen, ndim, shape);
  for (int i = 0; i < nsrc; i++) u->vardep |= src[i]->vardep;
  u->next = *bucket;
  *bucket = u;
  ctx->table_count++;
  ctx->stats.nodes_created++;
  return u;
}

tgc_uop *tgc_uop_buffer(tgc_ctx *ctx, tgc_buffer *b, int ndim, const int64_t *shape) {
  uint64_t serial = ctx->next_id; /* unique: never hash-consed with another buffer */
  tgc_uop *u = tgc_uop_new(ctx, TGC_OP_BUFFER, b->dtype, 0, NULL, &serial, sizeof serial, ndim,
                           shape);
  u->buf = tgc_buffer_ref(b);
  return u;
}

tgc_buffer *tgc_uop_realized(const tgc_uop *u) { return u->buf; }

bool tgc_uop_current(const tgc_uop *u) {
  return u->buf && (!u->vardep || u->op == TGC_OP_BUFFER || u->epoch == u->ctx->var_epoch);
}

/* ---- buffers ---------------------------------------------------------- */

tgc_buffer *tgc_buffer_new(tgc_ctx *ctx, tgc_dtype dt, size_t numel) {
  size_t bytes = numel * (size_t)tgc_dtypes[dt].bytes;
  if (bytes == 0) bytes = 1;
  tgc_clear_error();
  void *ptr = ctx->dev->alloc(ctx->dev, bytes);
  if (!ptr) { /* keep what the device said, if it said anything */
    char why[512] = "";
    if (tgc_last_status() != TGC_OK) snprintf(why, sizeof why, " (%s)", tgc_last_error());
    return tgc_fail(TGC_ERR_NOMEM, "out of %s memory allocating %zu bytes%s", ctx->dev->name, bytes, why);
  }
  tgc_buffer *b = tgc_xcalloc(1, sizeof *b);
  *b = (tgc_buffer){.dev = ctx->dev, .ptr = ptr, .bytes = bytes, .dtype = dt, .refs = 1, .ctx = ctx};
  if (ctx->nbufs == ctx->bufs_cap) {
    ctx->bufs_cap = ctx->bufs_cap ? ctx->bufs_cap * 2 : 64;
    ctx->bufs = tgc_xrealloc(ctx->bufs, sizeof *ctx->bufs * (size_t)ctx->bufs_cap);
  }
  ctx->bufs[ctx->nbufs++] = b;
  ctx->stats.buffers_allocated++;
  ctx->stats.bytes_allocated += bytes;
  ctx->stats.bytes_in_use += bytes;
  if (ctx->stats.bytes_in_use > ctx->stats.peak_bytes) ctx->stats.peak_bytes = ctx->stats.bytes_in_use;
  return b;
}

tgc_buffer *tgc_buffer_ref(tgc_buffer *b) {
  if (b) b->refs++;
  return b;
}

void tgc_buffer_unref(tgc_buffer *b) {
  if (!b || --b->refs > 0) return;
  tgc_ctx *ctx = b->ctx;
  for (int i = 0; i < ctx->nbufs; i++) {
    if (ctx->bufs[i] == b) {
      ctx->bufs[i] = ctx->bufs[--ctx->nbufs];
      break;
    }
  }
  ctx->stats.bytes_in_use -= b->bytes;
  b->dev->free(b->dev, b->ptr);
  free(b);
}
