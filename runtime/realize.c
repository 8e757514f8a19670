/* realize.c - the context, and tgc_realize: the pipeline in one function.
 *
 *   schedule -> programs (optimise, lower, render, compile; cached) -> run
 *
 * Realization is all or nothing: buffers made for a failed realize are
 * released again and no node is left marked realized.  Intermediate
 * kernel outputs (a softmax's max, say) are freed once the schedule has
 * run; only the targets, and the buffers that assigns wrote, keep memory.
 */
#include "tgc_internal.h"

#include <errno.h>
#include <sys/stat.h>

/* ---- the context ----------------------------------------------------------- */

typedef struct backend {
  const char *name;
  tgc_device *(*open)(void);
} backend;

static tgc_device *open_cpu(void) {
  long threads = tgc_env_int("TGC_THREADS", 0);
  return tgc_cpu_new(threads > 0 ? (int)threads : 0);
}

static const backend backends[] = {{"cpu", open_cpu}, {"cuda", tgc_cuda_new}, {"opencl", tgc_opencl_new}};
enum { NBACKENDS = sizeof backends / sizeof backends[0] };

/* TGC_DEVICE: auto (CUDA when usable, else the CPU), cpu, cuda, opencl. */
static tgc_device *open_device(void) {
  const char *want = tgc_env_str("TGC_DEVICE", "auto");
  if (!strcmp(want, "auto")) {
    tgc_device *d = tgc_cuda_new();
    if (d) return d;
    tgc_clear_error();
    return open_cpu();
  }
  for (int i = 0; i < NBACKENDS; i++)
    if (!strcmp(want, backends[i].name)) {
      tgc_device *d = backends[i].open();
      return d ? d : tgc_fail_in("TGC_DEVICE");
    }
  return tgc_fail(TGC_ERR_ARG, "TGC_DEVICE=%s: unknown device (use auto, cpu, cuda or opencl)", want);
}

int tgc_devices(tgc_device_info *out, int cap) {
  for (int i = 0; i < NBACKENDS && i < cap; i++) {
    tgc_device *d = backends[i].open();
    out[i].name = backends[i].name;
    out[i].usable = d != NULL;
    snprintf(out[i].why, sizeof out[i].why, "%s", d ? "" : tgc_last_error());
    if (d) d->destroy(d);
  }
  tgc_clear_error();
  return NBACKENDS;
}

tgc_ctx *tgc_ctx_new(void) {
  tgc_device *dev = open_device();
  if (!dev) return NULL;
  tgc_ctx *ctx = tgc_xcalloc(1, sizeof *ctx);
  ctx->dev = dev;
  ctx->arena = tgc_arena_new();
  ctx->debug = (int)tgc_env_int("TGC_DEBUG", 0);
  ctx->noopt = tgc_env_int("TGC_NOOPT", 0) != 0;
  const char *dump = tgc_env_str("TGC_DUMP", NULL);
  if (dump) ctx->dump_dir = tgc_xstrdup(dump);
  ctx->xcheck_cuda = strstr(tgc_env_str("TGC_XCHECK", ""), "cuda") != NULL;
  return ctx;
}

void tgc_ctx_free(tgc_ctx *ctx) {
  if (!ctx) return;
  tgc_programs_free(ctx);
  for (int i = 0; i < ctx->nbufs; i++) {
    ctx->dev->free(ctx->dev, ctx->bufs[i]->ptr);
    free(ctx->bufs[i]);
  }
  free(ctx->bufs);
  free(ctx->table);
  tgc_arena_free(ctx->arena);
  ctx->dev->destroy(ctx->dev);
  free(ctx->dump_dir);
  free(ctx);
}

const char *tgc_ctx_device(const tgc_ctx *ctx) { return ctx ? ctx->dev->name : NULL; }

void tgc_get_stats(const tgc_ctx *ctx, tgc_stats *out) {
  if (ctx && out) *out = ctx->stats;
}

void tgc_stats_reset(tgc_ctx *ctx) {
  if (!ctx) return;
  uint64_t in_use = ctx->stats.bytes_in_use;
  memset(&ctx->stats, 0, sizeof ctx->stats);
  ctx->stats.bytes_in_use = ctx->stats.peak_bytes = in_use;
}

/* ---- running a schedule -------------------------------------------------- */

/* The realized node whose memory an assign writes. */
static tgc_uop *assign_base(tgc_uop *u) {
  tgc_uop *t = u->src[0];
  while (!tgc_uop_current(t)) t = t->src[0];
  return t;
}

static tgc_status run_kernel(tgc_ctx *ctx, const tgc_kernel *k, const tgc_program *p,
                             double *seconds) {
  tgc_uop *out = k->out;
  if (!out->buf) {
    out->buf = out->op == TGC_OP_ASSIGN ? tgc_buffer_ref(assign_base(out)->buf)
                                         : tgc_buffer_new(ctx, (tgc_dtype)out->dtype,
                                                          (size_t)tgc_shape_numel_max(ctx, out->ndim, out->shape));
    if (!out->buf) return tgc_last_status();
    if (ctx->capture && out->op != TGC_OP_ASSIGN) tgc_jit_note_alloc(ctx, out->buf);
  }
  void *bufs[TGC_MAX_BUFS];
  tgc_buffer *owners[TGC_MAX_BUFS];
  TGC_ASSERT(k->nbufs <= TGC_MAX_BUFS);
  for (int i = 0; i < k->nbufs; i++) {
    TGC_ASSERT(k->bufnodes[i]->buf);
    owners[i] = k->bufnodes[i]->buf;
    bufs[i] = owners[i]->ptr;
  }
  if (ctx->capture) tgc_jit_note_launch(ctx, (tgc_program *)p, k->nbufs, owners);
  for (int v = 0; v < p->info.nvars; v++)
    if ((p->info.var_mask >> v & 1) && !ctx->var_bound[v])
      return tgc_set_error(TGC_ERR_ARG, "tgc_realize: variable %s is not bound (tgc_var_bind)",
                           ctx->vars[v] ? ctx->vars[v]->name : "?");
  double t0 = ctx->debug >= 2 ? tgc_now() : 0;
  tgc_status st = ctx->dev->launch(ctx->dev, p, bufs, ctx->var_values);
  out->epoch = ctx->var_epoch;
  ctx->stats.launches++;
  if (ctx->debug >= 2) {
    ctx->dev->sync(ctx->dev);
    *seconds = tgc_now() - t0;
  }
  return st;
}

static void debug_kernel(const tgc_program *p, double s) {
  double us = s * 1e6;
  fprintf(stderr, "tgc:   %-44s %9.1f us %8.2f GFLOP/s %8.2f GB/s  %s\n", p->info.name, us,
          p->info.flops / s * 1e-9, p->info.bytes / s * 1e-9, p->info.opts);
}

static bool is_target(const tgc_schedule *s, const tgc_uop *u) {
  for (int i = 0; i < s->ntargets; i++)
    if (s->targets[i] == u) return true;
  return false;
}

/* Releases the outputs of kernels [0, n) that must not stay realized:
 * intermediates after success, everything after a failure. */
static void release_outputs(const tgc_schedule *s, int n, bool failed) {
  for (int i = 0; i < n; i++) {
    tgc_uop *u = s->kernels[i].out;
    if (!failed && (is_target(s, u) || u->op == TGC_OP_ASSIGN)) continue;
    tgc_buffer_unref(u->buf);
    u->buf = NULL;
  }
}

static tgc_status run_schedule(tgc_ctx *ctx, const tgc_schedule *s, tgc_program **progs) {
  tgc_status st = TGC_OK;
  int i = 0;
  for (; st == TGC_OK && i < s->nkernels; i++) {
    double secs = 0;
    st = run_kernel(ctx, &s->kernels[i], progs[i], &secs);
    if (ctx->debug >= 2 && st == TGC_OK) debug_kernel(progs[i], secs);
  }
  release_outputs(s, i, st != TGC_OK);
  return st;
}

static bool check_targets(tgc_ctx *ctx, int n, tgc_tensor *const *ts) {
  if (!ctx) return tgc_fail(TGC_ERR_ARG, "tgc_realize: ctx is NULL") != NULL;
  if (n < 0 || (n > 0 && !ts)) return tgc_fail(TGC_ERR_ARG, "tgc_realize: bad tensor list") != NULL;
  for (int i = 0; i < n; i++) {
    if (!ts[i]) return tgc_fail(TGC_ERR_ARG, "tgc_realize: tensor %d is NULL", i) != NULL;
    if (ts[i]->ctx != ctx)
      return tgc_fail(TGC_ERR_ARG, "tgc_realize: tensor %d belongs to another context", i) != NULL;
  }
  return true;
}

tgc_status tgc_realize(tgc_ctx *ctx, int n, tgc_tensor *const *ts) {
  if (!check_targets(ctx, n, ts)) return tgc_last_status();
  double t0 = tgc_now();
  tgc_stats before = ctx->stats;
  tgc_schedule *s = tgc_schedule_new(ctx, n, ts);
  if (!s) return tgc_last_status();
  tgc_uop **asts = tgc_xmalloc(sizeof *asts * (size_t)(s->nkernels + 1));
  tgc_program **progs = tgc_xmalloc(sizeof *progs * (size_t)(s->nkernels + 1));
  for (int i = 0; i < s->nkernels; i++) asts[i] = s->kernels[i].ast;
  if (ctx->debug >= 2) fprintf(stderr, "tgc: realize: %d kernels\n", s->nkernels);
  tgc_status st = tgc_programs_get(ctx, s->nkernels, asts, progs);
  if (st == TGC_OK) st = run_schedule(ctx, s, progs);
  if (ctx->debug >= 1)
    fprintf(stderr, "tgc: realize: %d kernels, %llu compiled, %llu memory hits, %llu disk hits, %.3f ms%s\n",
            s->nkernels, (unsigned long long)(ctx->stats.compiles - before.compiles),
            (unsigned long long)(ctx->stats.cache_mem_hits - before.cache_mem_hits),
            (unsigned long long)(ctx->stats.cache_disk_hits - before.cache_disk_hits),
            (tgc_now() - t0) * 1e3, st == TGC_OK ? "" : " (failed)");
  free(asts);
  free(progs);
  tgc_schedule_free(s);
  return st;
}

/* ---- realize-related constructors ------------------------------------------- */

tgc_tensor *tgc_contiguous(tgc_tensor *x) {
  if (!x) return NULL;
  if (x->op == TGC_OP_BUFFER || x->op == TGC_OP_CONTIGUOUS) return x;
  return tgc_uop_new(x->ctx, TGC_OP_CONTIGUOUS, x->dtype, 1, &x, NULL, 0, x->ndim, x->shape);
}

tgc_tensor *tgc_assign(tgc_tensor *target, tgc_tensor *value) {
  if (!target || !value) return NULL;
  if (target->ctx != value->ctx) return tgc_fail(TGC_ERR_ARG, "assign: operands belong to different contexts");
  tgc_uop *t = target;
  while (!tgc_uop_current(t)) {
    if (!IS_MOVE(t->op) || t->op == TGC_OP_PAD || t->op == TGC_OP_EXPAND)
      return tgc_fail(TGC_ERR_ARG, "assign: the target must be a realized tensor or a view of one made "
                                   "by reshape, permute, shrink or flip (found %s)", tgc_ops[t->op].name);
    t = t->src[0];
  }
  if (target->dtype != value->dtype)
    return tgc_fail(TGC_ERR_DTYPE, "assign: dtypes differ: target %s, value %s",
                    tgc_dtypes[target->dtype].name, tgc_dtypes[value->dtype].name);
  tgc_uop *v = tgc_expand(value, target->ndim, target->shape);
  if (!v) {
    char a[160], b[160];
    return tgc_fail(TGC_ERR_SHAPE, "assign: a value of shape %s does not fit a target of shape %s",
                    tgc_shape_str(value->ndim, value->shape, a, sizeof a),
                    tgc_shape_str(target->ndim, target->shape, b, sizeof b));
  }
  tgc_uop *src[2] = {target, v};
  return tgc_uop_new(t->ctx, TGC_OP_ASSIGN, t->dtype, 2, src, NULL, 0, t->ndim, t->shape);
}

tgc_status tgc_sync(tgc_ctx *ctx) {
  if (!ctx) return tgc_set_error(TGC_ERR_ARG, "tgc_sync: ctx is NULL");
  return ctx->dev->sync(ctx->dev);
}

/* Copies the current extent of a tensor of symbolic shape out of its
 * buffer, which is laid out at the largest extent: row by row of the
 * innermost axis. */
static tgc_status copy_out_symbolic(tgc_uop *x, char *dst) {
  tgc_ctx *ctx = x->ctx;
  size_t es = (size_t)tgc_dtypes[x->dtype].bytes;
  int64_t maxs[TGC_MAX_DIMS], cur[TGC_MAX_DIMS], idx[TGC_MAX_DIMS] = {0};
  tgc_shape_max(ctx, x->ndim, x->shape, maxs);
  for (int i = 0; i < x->ndim; i++) cur[i] = tgc_sym_eval(x->shape[i], ctx->var_values);
  size_t all = (size_t)tgc_shape_numel_max(ctx, x->ndim, x->shape) * es;
  char *tmp = malloc(all ? all : 1);
  if (!tmp) return tgc_set_error(TGC_ERR_NOMEM, "tgc_to_host: out of host memory (%zu bytes)", all);
  tgc_status st = ctx->dev->copy_out(ctx->dev, tmp, x->buf->ptr, all);
  int last = x->ndim - 1;
  size_t row = (size_t)cur[last] * es;
  for (bool more = st == TGC_OK; more;) {
    int64_t off = 0;
    for (int i = 0; i < last; i++) off = (off + idx[i]) * maxs[i + 1];
    memcpy(dst, tmp + (size_t)off * es, row);
    dst += row;
    int i = last - 1;
    while (i >= 0 && ++idx[i] == cur[i]) idx[i--] = 0;
    more = i >= 0;
  }
  free(tmp);
  return st;
}

tgc_status tgc_to_host(tgc_tensor *x, void *dst, size_t nbytes) {
  if (!x) return tgc_set_error(TGC_ERR_ARG, "tgc_to_host: tensor is NULL");
  if (!dst) return tgc_set_error(TGC_ERR_ARG, "tgc_to_host: destination is NULL");
  int64_t n = tgc_numel(x);
  if (n < 0) {
    tgc_fail_in("tgc_to_host");
    return tgc_last_status();
  }
  size_t want = (size_t)n * (size_t)tgc_dtypes[x->dtype].bytes;
  if (nbytes != want)
    return tgc_set_error(TGC_ERR_ARG, "tgc_to_host: the tensor has %zu bytes, the destination %zu", want, nbytes);
  if (!tgc_uop_current(x)) {
    tgc_status st = tgc_realize(x->ctx, 1, &x);
    if (st != TGC_OK) return st;
  }
  if (tgc_shape_symbolic(x->ndim, x->shape)) return copy_out_symbolic(x, dst);
  return x->ctx->dev->copy_out(x->ctx->dev, dst, x->buf->ptr, nbytes);
}
