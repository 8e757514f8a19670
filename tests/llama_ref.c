/* llama_ref.c - the f64 reference forward pass of a LLaMA model (see
 * llama_ref.h), written llama2.c-style: one step function that reads top
 * to bottom, and a few loops it calls (rmsnorm, matvec, rope, softmax).
 *
 * Everything is double: the weights are converted once in tgc_ref_new, the
 * KV cache and the activations are double and every sum accumulates in
 * double, so what remains of the difference to tgc is tgc's own rounding.
 * Speed does not matter; the models it runs are small.
 */
#include "llama_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken call from a test: say where and stop. */
#define REF_CHECK(c)                                                                 \
  do {                                                                               \
    if (!(c)) {                                                                      \
      fprintf(stderr, "%s:%d: llama_ref: check failed: %s\n", __FILE__, __LINE__, #c); \
      abort();                                                                       \
    }                                                                                \
  } while (0)

typedef struct ref_layer {
  double *attn_norm; /* [dim] */
  double *wq;        /* [n_heads * hd, dim] */
  double *wk;        /* [kv_dim, dim] */
  double *wv;        /* [kv_dim, dim] */
  double *wo;        /* [dim, n_heads * hd] */
  double *ffn_norm;  /* [dim] */
  double *w_gate;    /* [ffn_dim, dim] */
  double *w_up;      /* [ffn_dim, dim] */
  double *w_down;    /* [dim, ffn_dim] */
} ref_layer;

struct tgc_ref_model {
  tgc_llama_config c;
  int hd;             /* head dim: dim / n_heads */
  int kv_dim;         /* n_kv_heads * hd */
  double *tok_emb;    /* [vocab, dim] */
  ref_layer *layers;  /* [n_layers] */
  double *out_norm;   /* [dim] */
  double *output;     /* [vocab, dim]; tok_emb itself when it is the same weight */
  double *rope_freqs; /* [hd / 2] Llama 3 frequency factors, or NULL */
  double *key_cache;  /* [n_layers, max_context, kv_dim], after RoPE */
  double *val_cache;  /* [n_layers, max_context, kv_dim] */
  int next_pos;       /* the pos the next step must have */
  /* activations of the running step */
  double *x;   /* [dim] the residual stream */
  double *xb;  /* [dim] normed input of a block */
  double *q;   /* [n_heads * hd] */
  double *att; /* [n_heads * hd] attention output, all heads */
  double *s;   /* [max_context] scores, then probabilities, of one head */
  double *hg;  /* [ffn_dim] gate, then silu(gate) * up */
  double *hu;  /* [ffn_dim] up */
  double *blk; /* [dim] a block's output before the residual add */
};

/* ---- weights -------------------------------------------------------------- */

/* w as rows * cols doubles; NULL (with a message) on a shape mismatch, a
 * non-F32 weight without dq, or no memory. */
static double *load(const tgc_llama_weight *w, const char *name, int64_t rows, int64_t cols,
                    tgc_ref_dequant_fn dq) {
  if (w->rows != rows || w->cols != cols || !w->data) {
    fprintf(stderr, "tgc_ref_new: %s is [%lld, %lld]%s, expected [%lld, %lld]\n", name,
            (long long)w->rows, (long long)w->cols, w->data ? "" : " without data", (long long)rows,
            (long long)cols);
    return NULL;
  }
  if (w->type != TGC_W_F32 && !dq) {
    fprintf(stderr, "tgc_ref_new: %s has type %d and no dequantize function was given\n", name,
            (int)w->type);
    return NULL;
  }
  size_t n = (size_t)rows * (size_t)cols;
  double *out = malloc(n * sizeof *out);
  float *f = malloc(n * sizeof *f);
  if (!out || !f) {
    fprintf(stderr, "tgc_ref_new: %s: out of memory\n", name);
    free(out);
    free(f);
    return NULL;
  }
  if (w->type == TGC_W_F32)
    memcpy(f, w->data, n * sizeof *f); /* a mapped file need not align it */
  else
    dq((int)w->type, w->data, rows, cols, f);
  for (size_t i = 0; i < n; i++) out[i] = f[i];
  free(f);
  return out;
}

static bool load_layer(ref_layer *d, const tgc_llama_layer *s, const tgc_llama_config *c, int kv_dim,
                       tgc_ref_dequant_fn dq) {
  int64_t dim = c->dim, qd = (int64_t)c->n_heads * (c->dim / c->n_heads), ffn = c->ffn_dim;
  d->attn_norm = load(&s->attn_norm, "attn_norm", 1, dim, dq);
  d->wq = load(&s->wq, "wq", qd, dim, dq);
  d->wk = load(&s->wk, "wk", kv_dim, dim, dq);
  d->wv = load(&s->wv, "wv", kv_dim, dim, dq);
  d->wo = load(&s->wo, "wo", dim, qd, dq);
  d->ffn_norm = load(&s->ffn_norm, "ffn_norm", 1, dim, dq);
  d->w_gate = load(&s->w_gate, "w_gate", ffn, dim, dq);
  d->w_up = load(&s->w_up, "w_up", ffn, dim, dq);
  d->w_down = load(&s->w_down, "w_down", dim, ffn, dq);
  return d->attn_norm && d->wq && d->wk && d->wv && d->wo && d->ffn_norm && d->w_gate && d->w_up &&
         d->w_down;
}

static void free_layer(ref_layer *l) {
  free(l->attn_norm);
  free(l->wq);
  free(l->wk);
  free(l->wv);
  free(l->wo);
  free(l->ffn_norm);
  free(l->w_gate);
  free(l->w_up);
  free(l->w_down);
}

static bool config_ok(const tgc_llama_config *c) {
  return c->dim > 0 && c->n_layers > 0 && c->n_heads > 0 && c->n_kv_heads > 0 &&
         c->dim % c->n_heads == 0 && (c->dim / c->n_heads) % 2 == 0 &&
         c->n_heads % c->n_kv_heads == 0 && c->ffn_dim > 0 && c->vocab > 0 && c->max_context > 0;
}

tgc_ref_model *tgc_ref_new(const tgc_llama_weights *w, tgc_ref_dequant_fn dq) {
  const tgc_llama_config *c = &w->cfg;
  if (!config_ok(c)) {
    fprintf(stderr, "tgc_ref_new: bad config (dim %d, heads %d/%d, ffn %d, vocab %d, context %d)\n",
            c->dim, c->n_heads, c->n_kv_heads, c->ffn_dim, c->vocab, c->max_context);
    return NULL;
  }
  tgc_ref_model *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->c = *c;
  m->hd = c->dim / c->n_heads;
  m->kv_dim = c->n_kv_heads * m->hd;
  int qd = c->n_heads * m->hd;
  bool ok = (m->tok_emb = load(&w->tok_emb, "tok_emb", c->vocab, c->dim, dq)) != NULL;
  m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
  ok = ok && m->layers;
  for (int l = 0; ok && l < c->n_layers; l++)
    ok = load_layer(&m->layers[l], &w->layers[l], c, m->kv_dim, dq);
  ok = ok && (m->out_norm = load(&w->out_norm, "out_norm", 1, c->dim, dq));
  /* Tied models point output at tok_emb's data: share the converted copy. */
  if (ok && w->output.data == w->tok_emb.data && w->output.type == w->tok_emb.type &&
      w->output.rows == w->tok_emb.rows && w->output.cols == w->tok_emb.cols)
    m->output = m->tok_emb;
  else
    ok = ok && (m->output = load(&w->output, "output", c->vocab, c->dim, dq));
  if (ok && w->rope_freqs) {
    ok = (m->rope_freqs = malloc((size_t)(m->hd / 2) * sizeof(double))) != NULL;
    for (int i = 0; ok && i < m->hd / 2; i++) m->rope_freqs[i] = w->rope_freqs[i];
  }
  /* calloc: the pages of a long context are only touched as it fills. */
  size_t cache = (size_t)c->n_layers * (size_t)c->max_context * (size_t)m->kv_dim;
  ok = ok && (m->key_cache = calloc(cache, sizeof(double))) && (m->val_cache = calloc(cache, sizeof(double))) &&
       (m->x = calloc((size_t)c->dim, sizeof(double))) && (m->xb = calloc((size_t)c->dim, sizeof(double))) &&
       (m->q = calloc((size_t)qd, sizeof(double))) && (m->att = calloc((size_t)qd, sizeof(double))) &&
       (m->s = calloc((size_t)c->max_context, sizeof(double))) &&
       (m->hg = calloc((size_t)c->ffn_dim, sizeof(double))) &&
       (m->hu = calloc((size_t)c->ffn_dim, sizeof(double))) &&
       (m->blk = calloc((size_t)c->dim, sizeof(double)));
  if (!ok) {
    tgc_ref_free(m);
    return NULL;
  }
  return m;
}

void tgc_ref_free(tgc_ref_model *m) {
  if (!m) return;
  if (m->layers)
    for (int l = 0; l < m->c.n_layers; l++) free_layer(&m->layers[l]);
  free(m->layers);
  if (m->output != m->tok_emb) free(m->output);
  free(m->tok_emb);
  free(m->out_norm);
  free(m->rope_freqs);
  free(m->key_cache);
  free(m->val_cache);
  free(m->x);
  free(m->xb);
  free(m->q);
  free(m->att);
  free(m->s);
  free(m->hg);
  free(m->hu);
  free(m->blk);
  free(m);
}

/* ---- the loops -------------------------------------------------------------- */

/* out_i = x_i / sqrt(mean_j(x_j^2) + eps) * w_i, for i < n. */
static void rmsnorm(double *out, const double *x, const double *w, int n, double eps) {
  double ss = 0;
  for (int j = 0; j < n; j++) ss += x[j] * x[j];
  double scale = 1.0 / sqrt(ss / n + eps);
  for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* out = W x with W [rows, cols]: out_r = sum_c W[r][c] x_c. */
static void matvec(double *out, const double *W, const double *x, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    const double *row = W + (size_t)r * (size_t)cols;
    double acc = 0;
    for (int c = 0; c < cols; c++) acc += row[c] * x[c];
    out[r] = acc;
  }
}

/* RoPE on n_vec vectors of hd values each, rotating the adjacent pairs
 * (x[2i], x[2i+1]) by pos * base^(-2i/hd) (divided by freqs[i] if given). */
static void rope(double *v, int n_vec, int hd, int pos, double base, const double *freqs) {
  for (int h = 0; h < n_vec; h++) {
    double *x = v + (size_t)h * (size_t)hd;
    for (int i = 0; i < hd / 2; i++) {
      double freq = pow(base, -2.0 * i / hd);
      if (freqs) freq /= freqs[i];
      double angle = pos * freq, co = cos(angle), si = sin(angle);
      double a = x[2 * i], b = x[2 * i + 1];
      x[2 * i] = a * co - b * si;
      x[2 * i + 1] = a * si + b * co;
    }
  }
}

/* x[0..n) = softmax(x[0..n)), the max subtracted first. */
static void softmax(double *x, int n) {
  double mx = x[0], sum = 0;
  for (int j = 1; j < n; j++) mx = x[j] > mx ? x[j] : mx;
  for (int j = 0; j < n; j++) sum += (x[j] = exp(x[j] - mx));
  for (int j = 0; j < n; j++) x[j] /= sum;
}

/* ---- the forward pass ------------------------------------------------------ */

void tgc_ref_step(tgc_ref_model *m, int32_t token, int pos, double *logits) {
  const tgc_llama_config *c = &m->c;
  int dim = c->dim, hd = m->hd, kv_dim = m->kv_dim, qd = c->n_heads * hd;
  int rep = c->n_heads / c->n_kv_heads; /* query heads per kv head */
  REF_CHECK(token >= 0 && token < c->vocab);
  REF_CHECK(pos == 0 || pos == m->next_pos);
  REF_CHECK(pos < c->max_context);
  m->next_pos = pos + 1;

  /* x = tok_emb[token]: [dim] */
  memcpy(m->x, m->tok_emb + (size_t)token * (size_t)dim, (size_t)dim * sizeof(double));

  for (int l = 0; l < c->n_layers; l++) {
    const ref_layer *L = &m->layers[l];
    double *kc = m->key_cache + (size_t)l * (size_t)c->max_context * (size_t)kv_dim; /* [max_context, kv_dim] */
    double *vc = m->val_cache + (size_t)l * (size_t)c->max_context * (size_t)kv_dim;
    double *k = kc + (size_t)pos * (size_t)kv_dim, *v = vc + (size_t)pos * (size_t)kv_dim;

    /* attention: q [n_heads, hd], k and v [n_kv_heads, hd] straight into the cache */
    rmsnorm(m->xb, m->x, L->attn_norm, dim, c->norm_eps);
    matvec(m->q, L->wq, m->xb, qd, dim);
    matvec(k, L->wk, m->xb, kv_dim, dim);
    matvec(v, L->wv, m->xb, kv_dim, dim);
    rope(m->q, c->n_heads, hd, pos, c->rope_base, m->rope_freqs);
    rope(k, c->n_kv_heads, hd, pos, c->rope_base, m->rope_freqs);

    for (int h = 0; h < c->n_heads; h++) {
      const double *qh = m->q + (size_t)h * (size_t)hd;
      int g = h / rep; /* its kv head */
      /* scores over positions 0..pos: s [pos + 1] */
      for (int j = 0; j <= pos; j++) {
        const double *kj = kc + (size_t)j * (size_t)kv_dim + (size_t)g * (size_t)hd;
        double dot = 0;
        for (int i = 0; i < hd; i++) dot += qh[i] * kj[i];
        m->s[j] = dot / sqrt((double)hd);
      }
      softmax(m->s, pos + 1);
      /* att_h = sum_j s_j v_j: [hd] */
      double *out = m->att + (size_t)h * (size_t)hd;
      for (int i = 0; i < hd; i++) out[i] = 0;
      for (int j = 0; j <= pos; j++) {
        const double *vj = vc + (size_t)j * (size_t)kv_dim + (size_t)g * (size_t)hd;
        for (int i = 0; i < hd; i++) out[i] += m->s[j] * vj[i];
      }
    }
    matvec(m->blk, L->wo, m->att, dim, qd);
    for (int i = 0; i < dim; i++) m->x[i] += m->blk[i];

    /* SwiGLU feed-forward: [dim] -> [ffn_dim] -> [dim] */
    rmsnorm(m->xb, m->x, L->ffn_norm, dim, c->norm_eps);
    matvec(m->hg, L->w_gate, m->xb, c->ffn_dim, dim);
    matvec(m->hu, L->w_up, m->xb, c->ffn_dim, dim);
    for (int i = 0; i < c->ffn_dim; i++) m->hg[i] = m->hg[i] / (1.0 + exp(-m->hg[i])) * m->hu[i];
    matvec(m->blk, L->w_down, m->hg, dim, c->ffn_dim);
    for (int i = 0; i < dim; i++) m->x[i] += m->blk[i];
  }

  /* logits = output rmsnorm(x): [vocab] */
  rmsnorm(m->xb, m->x, m->out_norm, dim, c->norm_eps);
  matvec(logits, m->output, m->xb, c->vocab, dim);
}

int tgc_ref_argmax(const double *x, int n) {
  REF_CHECK(n > 0);
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return best;
}
