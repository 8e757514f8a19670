/* model.c - the LLaMA forward pass as a tgc graph.
 *
 * One function builds the graph for T tokens at position start_pos (a
 * variable): the decode step is T = 1, a prefill chunk is T = n (a second
 * variable, 1..TGC_LLAMA_CHUNK).  Because both positions and lengths are
 * symbolic, one set of kernels serves every position and every chunk
 * length: nothing is compiled after the first tokens.  The decode step
 * runs through tgc_jit, so from its third call it is a replay of the
 * recorded launches.
 *
 * Layout, following GGUF: a weight [rows, cols] maps cols inputs to rows
 * outputs, so x @ W^T; Q and K rows are stored so that RoPE rotates
 * adjacent pairs.  The KV cache is one f32 buffer [max_context + CHUNK,
 * kv_dim] per layer for K and for V, written with tgc_assign at start_pos
 * (the CHUNK spare rows keep a prefill window inside the buffer for every
 * binding of start_pos and n, as the bounds check of tgc_shrink demands).
 */
#include "llama.h"
#include "tgc_internal.h"

#include <math.h>

typedef struct dev_weight {
  tgc_tensor *raw; /* in the weight's own type (u8 bytes when quantized) */
  tgc_wtype type;
  int64_t rows, cols;
} dev_weight;

typedef struct dev_layer {
  tgc_tensor *attn_norm, *ffn_norm; /* [dim] f32 */
  dev_weight wqkv;   /* [q + 2 kv, dim]: wq, wk, wv stacked, one matvec */
  dev_weight w_gate_up; /* [2 ffn, dim]: w_gate, w_up stacked */
  dev_weight wo, w_down;
  tgc_tensor *kc, *vc;              /* [max_context, kv_dim] f32 */
} dev_layer;

struct tgc_llama {
  tgc_ctx *ctx;
  tgc_llama_config cfg;
  int hd, kv_dim, rep;
  dev_weight tok_emb, output;
  tgc_tensor *out_norm;
  dev_layer *layers;
  tgc_tensor *cos, *sin;   /* [max_context, hd/2] */
  tgc_tensor *positions;   /* [max_context] f32: 0, 1, 2, ... (the causal mask) */
  tgc_tensor *rows;        /* [CHUNK] f32: 0, 1, 2, ... */
  tgc_tensor *ids;         /* [vocab] i32: 0, 1, 2, ... (argmax) */
  tgc_var *pos, *n;        /* start_pos; prefill length */
  tgc_jit *decode;
  double weight_bytes;
  tgc_progress *progress;
};

/* ---- upload ------------------------------------------------------------------ */

/* Uploads a weight; `read` is whether a decode step reads all of it (the
 * embedding table is read one row per token). */
static bool upload(tgc_llama *m, dev_weight *d, const tgc_llama_weight *w, bool read) {
  d->type = w->type;
  d->rows = w->rows;
  d->cols = w->cols;
  d->raw = tgc_wupload(m->ctx, w->type, w->rows, w->cols, w->data);
  double row = (double)tgc_wtype_row_bytes(w->type, w->cols);
  m->weight_bytes += read ? row * (double)w->rows : row;
  tgc_progress_add(m->progress, row * (double)w->rows);
  return d->raw != NULL;
}

/* Uploads the rows of several weights of one type and width as one matrix
 * (q, k and v; gate and up): one kernel reads them all where three or two
 * would each pay a launch.  Rows are independent in every type, so
 * stacking them is a copy. */
static bool upload_stacked(tgc_llama *m, dev_weight *d, int n, const tgc_llama_weight *const *ws) {
  int64_t rows = 0, rb = tgc_wtype_row_bytes(ws[0]->type, ws[0]->cols);
  for (int i = 0; i < n; i++) {
    if (ws[i]->type != ws[0]->type || ws[i]->cols != ws[0]->cols) {
      tgc_set_error(TGC_ERR_ARG, "llama: weights stacked for one matmul differ in type or width");
      return false;
    }
    rows += ws[i]->rows;
  }
  char *buf = malloc((size_t)(rows * rb));
  if (!buf) {
    tgc_set_error(TGC_ERR_NOMEM, "llama: out of host memory stacking weights");
    return false;
  }
  for (int i = 0, at = 0; i < n; at += (int)ws[i]->rows, i++) memcpy(buf + at * rb, ws[i]->data, (size_t)(ws[i]->rows * rb));
  tgc_llama_weight all = {ws[0]->type, rows, ws[0]->cols, buf};
  bool ok = upload(m, d, &all, true);
  free(buf);
  return ok;
}

static tgc_tensor *vec(tgc_llama *m, const tgc_llama_weight *w) {
  int64_t n = w->cols;
  if (w->type != TGC_W_F32 || w->rows != 1) return tgc_fail(TGC_ERR_ARG, "llama: a norm weight must be f32 [1, dim]");
  m->weight_bytes += (double)n * 4;
  return tgc_from_data(m->ctx, TGC_F32, 1, &n, w->data);
}

/* cos and sin of pos * base^(-2i/hd) / factor[i] for every position. */
static bool rope_tables(tgc_llama *m, const float *factors) {
  int64_t half = m->hd / 2, L = m->cfg.max_context + TGC_LLAMA_CHUNK, shape[2] = {L, half};
  float *c = malloc(sizeof *c * (size_t)(L * half)), *s = malloc(sizeof *s * (size_t)(L * half));
  bool ok = c && s;
  for (int64_t p = 0; ok && p < L; p++)
    for (int64_t i = 0; i < half; i++) {
      double f = pow(m->cfg.rope_base, -2.0 * (double)i / m->hd) / (factors ? factors[i] : 1.0);
      c[p * half + i] = (float)cos((double)p * f);
      s[p * half + i] = (float)sin((double)p * f);
    }
  if (ok) {
    m->cos = tgc_from_data(m->ctx, TGC_F32, 2, shape, c);
    m->sin = m->cos ? tgc_from_data(m->ctx, TGC_F32, 2, shape, s) : NULL;
  } else {
    tgc_set_error(TGC_ERR_NOMEM, "llama: out of host memory for the RoPE tables");
  }
  free(c);
  free(s);
  return ok && m->sin;
}

static tgc_tensor *ramp(tgc_ctx *ctx, tgc_dtype dt, int64_t n) { return tgc_arange(ctx, dt, 0, (double)n, 1); }

static tgc_status decode_step(tgc_ctx *ctx, void *user, int nin, tgc_tensor *const *ins, int *nout,
                              tgc_tensor **outs);

static bool check_config(const tgc_llama_config *c) {
  bool ok = c->dim > 0 && c->n_layers > 0 && c->n_heads > 0 && c->n_kv_heads > 0 && c->dim % c->n_heads == 0 &&
            c->n_heads % c->n_kv_heads == 0 && (c->dim / c->n_heads) % 2 == 0 && c->ffn_dim > 0 && c->vocab > 1 &&
            c->max_context > 0 && c->rope_base > 0;
  if (!ok) tgc_set_error(TGC_ERR_ARG, "llama: inconsistent model configuration (dim %d, heads %d/%d)", c->dim,
                         c->n_heads, c->n_kv_heads);
  return ok;
}

tgc_llama *tgc_llama_new(tgc_ctx *ctx, const tgc_llama_weights *w, tgc_progress *progress) {
  if (!ctx || !w || !w->layers) return tgc_fail(TGC_ERR_ARG, "tgc_llama_new: NULL argument");
  if (!check_config(&w->cfg)) return NULL;
  tgc_llama *m = tgc_xcalloc(1, sizeof *m);
  const tgc_llama_config *c = &w->cfg;
  m->ctx = ctx;
  m->cfg = *c;
  m->progress = progress;
  m->hd = c->dim / c->n_heads;
  m->kv_dim = c->n_kv_heads * m->hd;
  m->rep = c->n_heads / c->n_kv_heads;
  m->layers = tgc_xcalloc((size_t)c->n_layers, sizeof *m->layers);
  bool ok = upload(m, &m->tok_emb, &w->tok_emb, false) && (m->out_norm = vec(m, &w->out_norm));
  if (ok && !c->tied) ok = upload(m, &m->output, &w->output, true);
  if (ok && c->tied) { /* the output projection reads the whole table */
    m->output = m->tok_emb;
    m->weight_bytes += (double)(c->vocab - 1) * (double)tgc_wtype_row_bytes(m->tok_emb.type, c->dim);
  }
  /* TGC_LLAMA_CHUNK rows past the context: a prefill chunk's window
   * [start_pos, start_pos + n) stays inside for every pair of bindings */
  int64_t rows = c->max_context + TGC_LLAMA_CHUNK, cs[2] = {rows, m->kv_dim};
  for (int l = 0; ok && l < c->n_layers; l++) {
    const tgc_llama_layer *L = &w->layers[l];
    dev_layer *d = &m->layers[l];
    const tgc_llama_weight *qkv[3] = {&L->wq, &L->wk, &L->wv}, *gu[2] = {&L->w_gate, &L->w_up};
    ok = (d->attn_norm = vec(m, &L->attn_norm)) && (d->ffn_norm = vec(m, &L->ffn_norm)) &&
         upload_stacked(m, &d->wqkv, 3, qkv) && upload(m, &d->wo, &L->wo, true) &&
         upload_stacked(m, &d->w_gate_up, 2, gu) && upload(m, &d->w_down, &L->w_down, true);
    /* the cache starts as zeros: positions past start_pos are never read */
    if (ok) ok = (d->kc = tgc_empty(ctx, TGC_F32, 2, cs)) && (d->vc = tgc_empty(ctx, TGC_F32, 2, cs));
  }
  ok = ok && rope_tables(m, w->rope_freqs) && (m->positions = ramp(ctx, TGC_F32, rows)) &&
       (m->rows = ramp(ctx, TGC_F32, TGC_LLAMA_CHUNK)) && (m->ids = ramp(ctx, TGC_I32, c->vocab)) &&
       (m->pos = tgc_var_new(ctx, "start_pos", 0, c->max_context - 1)) &&
       (m->n = tgc_var_new(ctx, "n_tokens", 1, TGC_LLAMA_CHUNK)) && (m->decode = tgc_jit_new(ctx, decode_step, m));
  if (ok) {
    tgc_tensor *all[4] = {m->cos, m->sin, m->positions, m->rows};
    ok = tgc_realize(ctx, 4, all) == TGC_OK && tgc_realize(ctx, 1, &m->ids) == TGC_OK;
  }
  if (!ok) {
    tgc_fail_in("tgc_llama_new");
    tgc_llama_free(m);
    return NULL;
  }
  return m;
}

void tgc_llama_free(tgc_llama *m) {
  if (!m) return;
  tgc_jit_free(m->decode);
  free(m->layers);
  free(m);
}

double tgc_llama_weight_bytes(const tgc_llama *m) { return m ? m->weight_bytes : 0; }
double tgc_llama_cache_bytes(const tgc_llama *m) {
  return m ? 2.0 * m->cfg.n_layers * (m->cfg.max_context + TGC_LLAMA_CHUNK) * m->kv_dim * 4 : 0;
}

/* ---- the graph ------------------------------------------------------------------ */

static tgc_tensor *linear(tgc_tensor *x, const dev_weight *w) { return tgc_wlinear(x, w->raw, w->type, w->rows, w->cols); }

/* Columns [from, to) of x [T, n]. */
static tgc_tensor *cols(tgc_tensor *x, int64_t T, int64_t from, int64_t to) {
  return tgc_shrink(x, (int64_t[]){0, T, from, to});
}

static tgc_tensor *norm(tgc_llama *m, tgc_tensor *x, tgc_tensor *w) { return tgc_mul(tgc_rmsnorm(x, m->cfg.norm_eps), w); }

/* Rows of a table [max_context, k] for positions start_pos .. start_pos+T. */
static tgc_tensor *at_positions(tgc_llama *m, tgc_tensor *table, int64_t T) {
  int64_t start = tgc_var_dim(m->pos, 1, 0), r[4] = {start, tgc_dim_add(start, T), 0, tgc_shape(table)[1]};
  return tgc_shrink(table, r);
}

/* x [T, heads, hd] rotated by the positions' angles (adjacent pairs). */
static tgc_tensor *rope(tgc_llama *m, tgc_tensor *x, int64_t T) {
  int64_t s[3] = {T, 1, m->hd / 2};
  return tgc_rope(x, tgc_reshape(at_positions(m, m->cos, T), 3, s), tgc_reshape(at_positions(m, m->sin, T), 3, s));
}

/* 0 where key position j may be seen from query row i (j <= start_pos + i),
 * -inf elsewhere: [T, L]. */
static tgc_tensor *causal_mask(tgc_llama *m, int64_t T, int64_t L) {
  tgc_ctx *ctx = m->ctx;
  tgc_tensor *j = tgc_shrink(m->positions, (int64_t[]){0, L});
  tgc_tensor *i = tgc_add(tgc_shrink(m->rows, (int64_t[]){0, T}), tgc_dim_tensor(ctx, tgc_var_dim(m->pos, 1, 0), TGC_F32));
  tgc_tensor *ok = tgc_le(tgc_reshape(j, 2, (int64_t[]){1, L}), tgc_reshape(i, 2, (int64_t[]){T, 1}));
  return tgc_where(ok, tgc_scalar(ctx, TGC_F32, 0), tgc_scalar(ctx, TGC_F32, -INFINITY));
}

/* Grouped-query attention of q [T, n_heads, hd] over the cache rows
 * 0 .. start_pos + T (k and v already written there): [T, n_heads * hd]. */
static tgc_tensor *attention(tgc_llama *m, tgc_tensor *q, tgc_tensor *kc, tgc_tensor *vc, int64_t T) {
  int nkv = m->cfg.n_kv_heads, hd = m->hd;
  int64_t L = tgc_dim_add(tgc_var_dim(m->pos, 1, 0), T);
  tgc_tensor *k = tgc_reshape(tgc_shrink(kc, (int64_t[]){0, L, 0, m->kv_dim}), 3, (int64_t[]){L, nkv, hd});
  tgc_tensor *v = tgc_reshape(tgc_shrink(vc, (int64_t[]){0, L, 0, m->kv_dim}), 3, (int64_t[]){L, nkv, hd});
  tgc_tensor *kt = tgc_permute(tgc_reshape(k, 4, (int64_t[]){L, nkv, 1, hd}), (int[]){1, 2, 3, 0}); /* [nkv,1,hd,L] */
  tgc_tensor *vv = tgc_permute(tgc_reshape(v, 4, (int64_t[]){L, nkv, 1, hd}), (int[]){1, 2, 0, 3}); /* [nkv,1,L,hd] */
  tgc_tensor *qq = tgc_permute(tgc_reshape(q, 4, (int64_t[]){T, nkv, m->rep, hd}), (int[]){1, 2, 0, 3}); /* [nkv,rep,T,hd] */
  tgc_tensor *s = tgc_mul(tgc_matmul(qq, kt), tgc_scalar(m->ctx, TGC_F32, 1.0 / sqrt(hd)));  /* [nkv,rep,T,L] */
  if (T != 1) s = tgc_add(s, causal_mask(m, T, L));
  tgc_tensor *o = tgc_matmul(tgc_softmax(s, -1), vv);                                        /* [nkv,rep,T,hd] */
  return tgc_reshape(tgc_permute(o, (int[]){2, 0, 1, 3}), 2, (int64_t[]){T, (int64_t)m->cfg.n_heads * hd});
}

/* Writes rows start_pos .. start_pos+T of a cache; returns the cache after the write. */
static tgc_tensor *cache_write(tgc_llama *m, tgc_tensor *cache, tgc_tensor *rows, int64_t T) {
  return tgc_assign(at_positions(m, cache, T), rows);
}

static tgc_tensor *embed(tgc_llama *m, tgc_tensor *tokens) {
  const dev_weight *e = &m->tok_emb;
  tgc_tensor *g = tgc_embedding(e->raw, tokens);
  int64_t n = tgc_shape(tokens)[0];
  return g ? tgc_wdequant(g, e->type, n, e->cols) : NULL;
}

/* tokens [Tmax] i32 (the first T used): the logits of the last one [1, vocab]. */
static tgc_tensor *forward(tgc_llama *m, tgc_tensor *tokens, int64_t T) {
  const tgc_llama_config *c = &m->cfg;
  tgc_tensor *x = embed(m, tokens);
  if (tgc_shape(tokens)[0] != T) x = tgc_shrink(x, (int64_t[]){0, T, 0, c->dim});
  for (int l = 0; l < c->n_layers && x; l++) {
    dev_layer *d = &m->layers[l];
    tgc_tensor *h = norm(m, x, d->attn_norm);
    tgc_tensor *qkv = linear(h, &d->wqkv); /* [T, q + 2 kv] */
    int64_t nq = (int64_t)c->n_heads * m->hd, kv = m->kv_dim;
    tgc_tensor *q = rope(m, tgc_reshape(cols(qkv, T, 0, nq), 3, (int64_t[]){T, c->n_heads, m->hd}), T);
    tgc_tensor *k = rope(m, tgc_reshape(cols(qkv, T, nq, nq + kv), 3, (int64_t[]){T, c->n_kv_heads, m->hd}), T);
    tgc_tensor *kc = cache_write(m, d->kc, tgc_reshape(k, 2, (int64_t[]){T, m->kv_dim}), T);
    tgc_tensor *vc = cache_write(m, d->vc, cols(qkv, T, nq + kv, nq + 2 * kv), T);
    x = tgc_add(x, linear(attention(m, q, kc, vc, T), &d->wo));
    h = norm(m, x, d->ffn_norm);
    tgc_tensor *gu = linear(h, &d->w_gate_up); /* [T, 2 ffn] */
    tgc_tensor *f = tgc_mul(tgc_silu(cols(gu, T, 0, c->ffn_dim)), cols(gu, T, c->ffn_dim, 2 * (int64_t)c->ffn_dim));
    x = tgc_add(x, linear(f, &d->w_down));
  }
  int64_t last = tgc_dim_add(T, -1);
  x = tgc_shrink(x, (int64_t[]){last, T, 0, c->dim});
  return linear(norm(m, x, m->out_norm), &m->output);
}

/* The index of the largest logit, on the device: -max(where(x == max, -i, -vocab)). */
static tgc_tensor *argmax(tgc_llama *m, tgc_tensor *logits) {
  tgc_tensor *x = tgc_reshape(logits, 1, (int64_t[]){m->cfg.vocab});
  tgc_tensor *top = tgc_eq(x, tgc_max(x, 0, NULL, true));
  tgc_tensor *cand = tgc_where(top, tgc_neg(m->ids), tgc_scalar(m->ctx, TGC_I32, -m->cfg.vocab));
  return tgc_neg(tgc_max(cand, 0, NULL, false));
}

static tgc_status decode_step(tgc_ctx *ctx, void *user, int nin, tgc_tensor *const *ins, int *nout,
                              tgc_tensor **outs) {
  tgc_llama *m = user;
  (void)nin;
  outs[0] = forward(m, ins[0], 1);
  outs[1] = outs[0] ? argmax(m, outs[0]) : NULL;
  if (!outs[1]) return tgc_last_status();
  *nout = 2;
  return tgc_realize(ctx, 2, outs);
}

tgc_tensor *tgc_llama_step_graph(tgc_llama *m, int32_t token, int pos) {
  if (!m) return tgc_fail(TGC_ERR_ARG, "tgc_llama_step_graph: model is NULL");
  if (token < 0 || token >= m->cfg.vocab || pos < 0 || pos >= m->cfg.max_context)
    return tgc_fail(TGC_ERR_ARG, "tgc_llama_step_graph: token %d or position %d out of range", token, pos);
  int64_t one = 1;
  tgc_tensor *t = tgc_from_data(m->ctx, TGC_I32, 1, &one, &token);
  if (!t || tgc_var_bind(m->pos, pos) != TGC_OK) return NULL;
  return forward(m, t, 1);
}

static tgc_status fetch(tgc_llama *m, tgc_tensor *logits, tgc_tensor *am, float *out, int32_t *next) {
  tgc_status st = TGC_OK;
  if (out) st = tgc_to_host(logits, out, sizeof *out * (size_t)m->cfg.vocab);
  if (st == TGC_OK && next) st = tgc_to_host(am, next, sizeof *next);
  return st;
}

tgc_status tgc_llama_eval(tgc_llama *m, const int32_t *tokens, int n, int pos, float *logits, int32_t *next) {
  if (!m || !tokens || n < 1) return tgc_set_error(TGC_ERR_ARG, "tgc_llama_eval: bad arguments");
  if (pos < 0 || pos + n > m->cfg.max_context)
    return tgc_set_error(TGC_ERR_ARG, "tgc_llama_eval: positions %d..%d exceed the context of %d", pos, pos + n - 1,
                         m->cfg.max_context);
  for (int i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab)
      return tgc_set_error(TGC_ERR_ARG, "tgc_llama_eval: token %d is outside the vocabulary of %d", tokens[i], m->cfg.vocab);
  tgc_ctx *ctx = m->ctx;
  if (n == 1) {
    int64_t one = 1;
    tgc_tensor *t = tgc_from_data(ctx, TGC_I32, 1, &one, tokens), *outs[TGC_JIT_MAX_IO];
    int nout;
    tgc_status st = t ? tgc_var_bind(m->pos, pos) : tgc_last_status();
    if (st == TGC_OK) st = tgc_jit_call(m->decode, 1, &t, &nout, outs);
    return st == TGC_OK ? fetch(m, outs[0], outs[1], logits, next) : st;
  }
  for (int done = 0; done < n;) { /* prefill: chunks with a symbolic length */
    int k = n - done < TGC_LLAMA_CHUNK ? n - done : TGC_LLAMA_CHUNK;
    int32_t ids[TGC_LLAMA_CHUNK] = {0};
    memcpy(ids, tokens + done, sizeof *ids * (size_t)k);
    int64_t cs = TGC_LLAMA_CHUNK;
    tgc_tensor *t = tgc_from_data(ctx, TGC_I32, 1, &cs, ids);
    tgc_status st = t ? tgc_var_bind(m->pos, pos + done) : tgc_last_status();
    if (st == TGC_OK) st = tgc_var_bind(m->n, k);
    tgc_tensor *out[2] = {NULL, NULL};
    if (st == TGC_OK && !(out[0] = forward(m, t, tgc_var_dim(m->n, 1, 0)))) st = tgc_last_status();
    if (st == TGC_OK && !(out[1] = argmax(m, out[0]))) st = tgc_last_status();
    if (st == TGC_OK) st = tgc_realize(ctx, 2, out);
    done += k;
    if (st == TGC_OK && done == n) st = fetch(m, out[0], out[1], logits, next);
    if (st != TGC_OK) return st;
  }
  return TGC_OK;
}
