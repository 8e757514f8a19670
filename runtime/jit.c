/* jit.c - capture a step's kernel launches once, replay them after.
 *
 * Call 1 runs the step normally.  Call 2 runs it with the context in
 * capture mode: every launch is recorded (program, buffers) and every
 * buffer allocated is noted.  The record is then planned: the inputs'
 * buffers become parameters, the outputs keep their buffers, and the
 * intermediates share a few pooled buffers by lifetime.  Calls 3 and later
 * only bind the new inputs and launch, as one CUDA graph where the device
 * has them: no graph is built, nothing is scheduled, hashed or compiled.
 *
 * The step gets fresh BUFFER nodes over the caller's input buffers on the
 * first two calls, so its graph is new each time even when the caller
 * passes the same tensors (a realized node would otherwise be memoised
 * and launch nothing).
 */
#include "tgc_internal.h"

enum { SLOT_FIXED, SLOT_INPUT, SLOT_POOL };

typedef struct rec_launch {
  tgc_program *prog;
  int nbufs;
  tgc_buffer **bufs;   /* as captured (references held) */
  int *kind, *index;   /* per slot: SLOT_*, and the input or pool index */
  void **ptrs;         /* device pointers bound for the next launch */
} rec_launch;

struct tgc_jit_capture {
  tgc_buffer **allocated; /* buffers made while capturing */
  int nalloc, capalloc;
  rec_launch *launches;
  int n, cap;
};

struct tgc_jit {
  tgc_ctx *ctx;
  tgc_step_fn fn;
  void *user;
  int calls;
  int mode;                              /* TGC_JIT when the JIT was made: 0, 1, 2 */
  bool running, recorded;
  int nin, nout;
  tgc_dtype in_dtype[TGC_JIT_MAX_IO];
  int in_ndim[TGC_JIT_MAX_IO];
  int64_t in_shape[TGC_JIT_MAX_IO][TGC_MAX_DIMS];
  tgc_buffer *in_buf[TGC_JIT_MAX_IO];   /* the inputs' buffers during capture */
  tgc_tensor *outs[TGC_JIT_MAX_IO];     /* recorded outputs, rewritten by each replay */
  struct tgc_jit_capture rec;
  tgc_buffer **pool;                     /* planned intermediates */
  int npool;
  void *graph;                           /* device launch graph, or NULL */
  int64_t graph_vars[TGC_MAX_VARS];      /* variable values the graph's nodes hold */
};

/* ---- capture hooks (called by realize.c and graph.c) ------------------ */

void tgc_jit_note_alloc(tgc_ctx *ctx, tgc_buffer *b) {
  struct tgc_jit_capture *c = ctx->capture;
  if (c->nalloc == c->capalloc)
    c->allocated = tgc_xrealloc(c->allocated, sizeof *c->allocated * (size_t)(c->capalloc = c->capalloc ? c->capalloc * 2 : 64));
  c->allocated[c->nalloc++] = b;
}

void tgc_jit_note_launch(tgc_ctx *ctx, tgc_program *p, int nbufs, tgc_buffer *const *bufs) {
  struct tgc_jit_capture *c = ctx->capture;
  if (c->n == c->cap)
    c->launches = tgc_xrealloc(c->launches, sizeof *c->launches * (size_t)(c->cap = c->cap ? c->cap * 2 : 64));
  rec_launch *l = &c->launches[c->n++];
  memset(l, 0, sizeof *l);
  l->prog = p;
  l->nbufs = nbufs;
  l->bufs = tgc_xmalloc(sizeof *l->bufs * (size_t)nbufs);
  for (int i = 0; i < nbufs; i++) l->bufs[i] = tgc_buffer_ref(bufs[i]);
}

/* ---- planning -------------------------------------------------------- */

static bool was_allocated(const struct tgc_jit_capture *c, const tgc_buffer *b) {
  for (int i = 0; i < c->nalloc; i++)
    if (c->allocated[i] == b) return true;
  return false;
}

static bool is_output(const tgc_jit *j, const tgc_buffer *b) {
  for (int i = 0; i < j->nout; i++)
    if (j->outs[i]->buf == b) return true;
  return false;
}

/* Distinct intermediate buffers in first-use order, with their last use. */
typedef struct interval {
  tgc_buffer *buf;
  int first, last, pool;
} interval;

static int collect_intervals(tgc_jit *j, interval **out) {
  struct tgc_jit_capture *c = &j->rec;
  interval *iv = NULL;
  int n = 0;
  for (int k = 0; k < c->n; k++) {
    rec_launch *l = &c->launches[k];
    for (int s = 0; s < l->nbufs; s++) {
      tgc_buffer *b = l->bufs[s];
      if (!was_allocated(c, b) || is_output(j, b)) continue;
      int f = -1;
      for (int i = 0; i < n && f < 0; i++)
        if (iv[i].buf == b) f = i;
      if (f < 0) {
        iv = tgc_xrealloc(iv, sizeof *iv * (size_t)(n + 1));
        iv[f = n++] = (interval){b, k, k, -1};
      }
      iv[f].last = k;
    }
  }
  *out = iv;
  return n;
}

/* By first use: an interval takes a pooled buffer whose occupant's life
 * has ended, the one closest in size (grown if needed), else a new one.
 * So the pool has as many buffers as intervals live at once. */
static tgc_status plan_pool(tgc_jit *j, interval *iv, int n) {
  int *busy_until = tgc_xmalloc(sizeof *busy_until * (size_t)(n + 1));
  size_t *size = tgc_xmalloc(sizeof *size * (size_t)(n + 1));
  int np = 0;
  for (int i = 0; i < n; i++) {
    size_t want = iv[i].buf->bytes;
    int pick = -1;
    for (int p = 0; p < np; p++) {
      if (busy_until[p] >= iv[i].first) continue;
      bool fits = size[p] >= want, best_fits = pick >= 0 && size[pick] >= want;
      if (pick < 0 || (fits && (!best_fits || size[p] < size[pick])) || (!fits && !best_fits && size[p] > size[pick]))
        pick = p;
    }
    if (pick < 0) size[pick = np++] = 0;
    if (size[pick] < want) size[pick] = want;
    busy_until[pick] = iv[i].last;
    iv[i].pool = pick;
  }
  j->pool = tgc_xcalloc((size_t)np + 1, sizeof *j->pool);
  tgc_status st = TGC_OK;
  for (int p = 0; p < np && st == TGC_OK; p++) {
    j->pool[p] = tgc_buffer_new(j->ctx, TGC_U8, size[p]);
    if (!j->pool[p]) st = tgc_last_status();
    else j->npool = p + 1;
  }
  free(busy_until);
  free(size);
  return st;
}

static void bind_slots(tgc_jit *j, interval *iv, int n) {
  struct tgc_jit_capture *c = &j->rec;
  for (int k = 0; k < c->n; k++) {
    rec_launch *l = &c->launches[k];
    l->kind = tgc_xcalloc((size_t)l->nbufs, sizeof *l->kind);
    l->index = tgc_xcalloc((size_t)l->nbufs, sizeof *l->index);
    l->ptrs = tgc_xcalloc((size_t)l->nbufs, sizeof *l->ptrs);
    for (int s = 0; s < l->nbufs; s++) {
      tgc_buffer *b = l->bufs[s];
      l->ptrs[s] = b->ptr;
      for (int i = 0; i < j->nin; i++)
        if (j->in_buf[i] == b) l->kind[s] = SLOT_INPUT, l->index[s] = i;
      for (int i = 0; i < n; i++)
        if (iv[i].buf == b) {
          l->kind[s] = SLOT_POOL;
          l->index[s] = iv[i].pool;
          l->ptrs[s] = j->pool[iv[i].pool]->ptr;
        }
    }
  }
}

/* Drops the record's references to the captured intermediates: the pool
 * stands for them now. */
static void drop_intermediates(tgc_jit *j) {
  struct tgc_jit_capture *c = &j->rec;
  for (int k = 0; k < c->n; k++)
    for (int s = 0; s < c->launches[k].nbufs; s++)
      if (c->launches[k].kind[s] != SLOT_FIXED) {
        tgc_buffer_unref(c->launches[k].bufs[s]);
        c->launches[k].bufs[s] = NULL;
      }
}

static void make_graph(tgc_jit *j) {
  tgc_device *d = j->ctx->dev;
  if (!d->graph_new || j->mode == 2) return;
  int n = j->rec.n;
  tgc_program **progs = tgc_xmalloc(sizeof *progs * (size_t)n);
  void ***bufs = tgc_xmalloc(sizeof *bufs * (size_t)n);
  const int64_t **vars = tgc_xcalloc((size_t)n, sizeof *vars);
  memcpy(j->graph_vars, j->ctx->var_values, sizeof j->graph_vars);
  for (int k = 0; k < n; k++) {
    progs[k] = j->rec.launches[k].prog;
    bufs[k] = j->rec.launches[k].ptrs;
    vars[k] = j->graph_vars;
  }
  j->graph = d->graph_new(d, n, progs, bufs, vars);
  if (!j->graph) tgc_clear_error(); /* plain launches then */
  free(progs);
  free(bufs);
  free(vars);
}

static tgc_status finish_record(tgc_jit *j) {
  if (j->rec.n == 0)
    return tgc_set_error(TGC_ERR_ARG, "tgc_jit: the step realized nothing, so there is nothing to replay "
                                      "(realize its outputs inside the step)");
  interval *iv;
  int n = collect_intervals(j, &iv);
  tgc_status st = plan_pool(j, iv, n);
  if (st == TGC_OK) bind_slots(j, iv, n);
  free(iv);
  if (st != TGC_OK) return st;
  drop_intermediates(j);
  j->ctx->stats.replay_buffers = (uint64_t)j->npool;
  j->ctx->stats.replay_bytes = 0;
  for (int p = 0; p < j->npool; p++) j->ctx->stats.replay_bytes += j->pool[p]->bytes;
  make_graph(j);
  j->recorded = true;
  return TGC_OK;
}

/* ---- calls ------------------------------------------------------------ */

static tgc_status check_inputs(tgc_jit *j, int nin, tgc_tensor *const *ins) {
  if (nin < 0 || nin > TGC_JIT_MAX_IO || (nin && !ins))
    return tgc_set_error(TGC_ERR_ARG, "tgc_jit_call: 0 to %d inputs", TGC_JIT_MAX_IO);
  for (int i = 0; i < nin; i++) {
    if (!ins[i] || ins[i]->ctx != j->ctx)
      return tgc_set_error(TGC_ERR_ARG, "tgc_jit_call: input %d is NULL or from another context", i);
    if (!ins[i]->buf) {
      tgc_status st = tgc_realize(j->ctx, 1, &ins[i]);
      if (st != TGC_OK) return st;
    }
  }
  if (!j->recorded) return TGC_OK;
  if (nin != j->nin)
    return tgc_set_error(TGC_ERR_ARG, "tgc_jit_call: %d inputs, but the step was recorded with %d", nin, j->nin);
  for (int i = 0; i < nin; i++) {
    const tgc_uop *x = ins[i];
    bool same = x->dtype == j->in_dtype[i] && x->ndim == j->in_ndim[i] &&
                !memcmp(x->shape, j->in_shape[i], sizeof(int64_t) * (size_t)x->ndim);
    if (!same) {
      char a[160], b[160];
      return tgc_set_error(TGC_ERR_SHAPE, "tgc_jit_call: input %d is %s %s, but the step was recorded with %s %s "
                                          "(make a new tgc_jit for other shapes)",
                           i, tgc_dtypes[x->dtype].name, tgc_shape_str(x->ndim, x->shape, a, sizeof a),
                           tgc_dtypes[j->in_dtype[i]].name,
                           tgc_shape_str(j->in_ndim[i], j->in_shape[i], b, sizeof b));
    }
  }
  return TGC_OK;
}

/* Calls 1 and 2: the step on fresh nodes over the inputs' memory. */
static tgc_status run_step(tgc_jit *j, int nin, tgc_tensor *const *ins, int *nout, tgc_tensor **outs) {
  tgc_tensor *fresh[TGC_JIT_MAX_IO];
  for (int i = 0; i < nin; i++) fresh[i] = tgc_uop_buffer(j->ctx, ins[i]->buf, ins[i]->ndim, ins[i]->shape);
  int n = 0;
  tgc_status st = j->fn(j->ctx, j->user, nin, fresh, &n, outs);
  if (st != TGC_OK) return st;
  if (n < 0 || n > TGC_JIT_MAX_IO) return tgc_set_error(TGC_ERR_ARG, "tgc_jit: the step returned %d outputs", n);
  for (int i = 0; i < n; i++)
    if (!outs[i] || !outs[i]->buf)
      return tgc_set_error(TGC_ERR_ARG, "tgc_jit: output %d of the step is NULL or not realized", i);
  *nout = n;
  return TGC_OK;
}

static tgc_status capture(tgc_jit *j, int nin, tgc_tensor *const *ins, int *nout, tgc_tensor **outs) {
  j->nin = nin;
  for (int i = 0; i < nin; i++) {
    j->in_dtype[i] = (tgc_dtype)ins[i]->dtype;
    j->in_ndim[i] = ins[i]->ndim;
    memcpy(j->in_shape[i], ins[i]->shape, sizeof(int64_t) * (size_t)ins[i]->ndim);
    j->in_buf[i] = ins[i]->buf;
  }
  j->ctx->capture = &j->rec;
  tgc_status st = run_step(j, nin, ins, nout, outs);
  j->ctx->capture = NULL;
  if (st != TGC_OK) return st;
  j->nout = *nout;
  memcpy(j->outs, outs, sizeof *outs * (size_t)*nout);
  return finish_record(j);
}

/* Binds the new inputs, then launches the graph, or every launch (also
 * when the graph cannot take the new bindings: it is dropped then). */
static tgc_status replay(tgc_jit *j, tgc_tensor *const *ins, int *nout, tgc_tensor **outs) {
  tgc_device *d = j->ctx->dev;
  const int64_t *vars = j->ctx->var_values;
  bool vars_moved = memcmp(j->graph_vars, vars, sizeof j->graph_vars) != 0;
  for (int k = 0; k < j->rec.n; k++) {
    rec_launch *l = &j->rec.launches[k];
    bool changed = vars_moved && l->prog->info.nvars > 0;
    for (int s = 0; s < l->nbufs; s++) {
      if (l->kind[s] != SLOT_INPUT) continue;
      void *p = ins[l->index[s]]->buf->ptr;
      changed |= l->ptrs[s] != p;
      l->ptrs[s] = p;
    }
    if (j->graph && changed && d->graph_update(d, j->graph, k, l->ptrs, vars) != TGC_OK) {
      d->graph_free(d, j->graph);
      j->graph = NULL;
      tgc_clear_error();
    }
  }
  memcpy(j->graph_vars, vars, sizeof j->graph_vars);
  for (int k = 0; k < j->rec.n; k++)
    for (int v = 0; v < j->rec.launches[k].prog->info.nvars; v++)
      if ((j->rec.launches[k].prog->info.var_mask >> v & 1) && !j->ctx->var_bound[v])
        return tgc_set_error(TGC_ERR_ARG, "tgc_jit_call: variable %s is not bound", j->ctx->vars[v]->name);
  tgc_status st = TGC_OK;
  if (j->graph) {
    st = d->graph_launch(d, j->graph);
    j->ctx->stats.graph_replays++;
  }
  for (int k = 0; !j->graph && k < j->rec.n && st == TGC_OK; k++)
    st = d->launch(d, j->rec.launches[k].prog, j->rec.launches[k].ptrs, vars);
  j->ctx->stats.launches += (uint64_t)j->rec.n;
  j->ctx->stats.replays++;
  for (int i = 0; i < j->nout; i++) j->outs[i]->epoch = j->ctx->var_epoch; /* current now */
  *nout = j->nout;
  memcpy(outs, j->outs, sizeof *outs * (size_t)j->nout);
  return st;
}

tgc_jit *tgc_jit_new(tgc_ctx *ctx, tgc_step_fn fn, void *user) {
  if (!ctx || !fn) return tgc_fail(TGC_ERR_ARG, "tgc_jit_new: ctx and fn must not be NULL");
  tgc_jit *j = tgc_xcalloc(1, sizeof *j);
  j->ctx = ctx;
  j->fn = fn;
  j->user = user;
  j->mode = (int)tgc_env_int("TGC_JIT", 1);
  return j;
}

tgc_status tgc_jit_call(tgc_jit *j, int nin, tgc_tensor *const *ins, int *nout, tgc_tensor **outs) {
  if (!j || !nout || !outs) return tgc_set_error(TGC_ERR_ARG, "tgc_jit_call: NULL argument");
  if (j->running || j->ctx->capture)
    return tgc_set_error(TGC_ERR_ARG, "tgc_jit_call: called from inside a step (a JIT cannot nest)");
  tgc_status st = check_inputs(j, nin, ins);
  if (st != TGC_OK) return st;
  j->running = true;
  if (j->mode == 0 || j->calls == 0) st = run_step(j, nin, ins, nout, outs);
  else if (!j->recorded) st = capture(j, nin, ins, nout, outs);
  else st = replay(j, ins, nout, outs);
  j->running = false;
  if (st == TGC_OK) j->calls++;
  return st;
}

int tgc_jit_calls(const tgc_jit *j) { return j ? j->calls : 0; }

void tgc_jit_free(tgc_jit *j) {
  if (!j) return;
  if (j->graph) j->ctx->dev->graph_free(j->ctx->dev, j->graph);
  for (int k = 0; k < j->rec.n; k++) {
    rec_launch *l = &j->rec.launches[k];
    for (int s = 0; s < l->nbufs; s++) tgc_buffer_unref(l->bufs[s]);
    free(l->bufs);
    free(l->kind);
    free(l->index);
    free(l->ptrs);
  }
  free(j->rec.launches);
  free(j->rec.allocated);
  for (int p = 0; p < j->npool; p++) tgc_buffer_unref(j->pool[p]);
  free(j->pool);
  free(j);
}
