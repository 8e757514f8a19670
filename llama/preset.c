/* preset.c - the model presets: real shapes, seeded random weights.
 *
 * Every command runs with no file: a preset gives a model of a real
 * family's shapes whose weights come from a seeded generator, so a
 * benchmark reads exactly the bytes the real model would.  Matrices are
 * uniform with the standard deviation 0.02 (as initialisation usually is;
 * uniform because a 1B model has a billion of them), norm weights lie near
 * 1.  Llama 3 presets carry the frequency factors of Llama 3.1's RoPE
 * scaling (factor 32, low 1, high 4, original context 8192).
 */
#include "llama.h"
#include "tgc_internal.h"

#include <math.h>

typedef struct preset {
  const char *name;
  tgc_llama_config cfg;
  bool llama3_rope;
} preset;

/* dim, layers, heads, kv heads, ffn, vocab, context, rope base, eps, tied */
static const preset presets[] = {
    {"tiny", {64, 2, 4, 2, 192, 512, 128, 10000, 1e-5, false}, false},
    {"stories15m", {288, 6, 6, 6, 768, 32000, 256, 10000, 1e-5, false}, false},
    {"small-512", {512, 8, 8, 8, 1408, 32000, 1024, 10000, 1e-5, false}, false},
    {"llama3-1b", {2048, 16, 32, 8, 8192, 128256, 2048, 500000, 1e-5, true}, true},
    {"llama3-8b", {4096, 32, 32, 8, 14336, 128256, 2048, 500000, 1e-5, false}, true},
};

int tgc_llama_head_dim(const tgc_llama_config *c) { return c->dim / c->n_heads; }

static double wbytes(const tgc_llama_weight *w) {
  return w->data ? (double)w->rows * (double)tgc_wtype_row_bytes(w->type, w->cols) : 0;
}

double tgc_llama_weights_bytes(const tgc_llama_weights *w) {
  double b = wbytes(&w->tok_emb) + wbytes(&w->out_norm) + (w->cfg.tied ? 0 : wbytes(&w->output));
  for (int l = 0; w->layers && l < w->cfg.n_layers; l++) {
    const tgc_llama_layer *L = &w->layers[l];
    b += wbytes(&L->attn_norm) + wbytes(&L->wq) + wbytes(&L->wk) + wbytes(&L->wv) + wbytes(&L->wo) +
         wbytes(&L->ffn_norm) + wbytes(&L->w_gate) + wbytes(&L->w_down) + wbytes(&L->w_up);
  }
  return b;
}

static const preset *find(const char *name) {
  for (size_t i = 0; name && i < sizeof presets / sizeof *presets; i++)
    if (!strcmp(presets[i].name, name)) return &presets[i];
  return NULL;
}

bool tgc_llama_preset_config(const char *name, tgc_llama_config *cfg) {
  const preset *p = find(name);
  if (!p) {
    tgc_set_error(TGC_ERR_ARG, "unknown preset \"%s\" (tiny, stories15m, small-512, llama3-1b, llama3-8b)",
                  name ? name : "(null)");
    return false;
  }
  *cfg = p->cfg;
  return true;
}

/* ---- generation ------------------------------------------------------------- */


/* Fills n floats: centre + uniform with standard deviation sd. */
static void uniform(float *x, int64_t n, float centre, float sd, uint64_t seed) {
  uint64_t s = seed;
  float a = sd * 1.7320508f / 2147483648.0f; /* U(-sd*sqrt3, sd*sqrt3) */
  for (int64_t i = 0; i < n; i += 2) {
    uint64_t r = tgc_splitmix64(&s);
    x[i] = centre + a * (float)(int32_t)(uint32_t)r;
    if (i + 1 < n) x[i + 1] = centre + a * (float)(int32_t)(uint32_t)(r >> 32);
  }
}

typedef struct gen {
  char *mem;   /* the arena all weights live in */
  size_t used, cap;
  uint64_t seed;
  int serial;  /* per tensor: each gets its own stream */
} gen;

static size_t weight_bytes(tgc_wtype t, int64_t rows, int64_t cols) {
  return (size_t)(rows * tgc_wtype_row_bytes(t, cols) + 63) / 64 * 64;
}

/* A [rows, cols] matrix of type t, generated row block by row block (a
 * chunk of f32 at a time, so a 1B model never exists in f32). */
static tgc_status matrix(gen *g, tgc_llama_weight *w, tgc_wtype t, int64_t rows, int64_t cols, float centre,
                         float sd) {
  *w = (tgc_llama_weight){t, rows, cols, g->mem + g->used};
  int64_t rb = tgc_wtype_row_bytes(t, cols), chunk = rows < 64 ? rows : 64;
  float *tmp = malloc(sizeof *tmp * (size_t)(chunk * cols));
  if (!tmp) return tgc_set_error(TGC_ERR_NOMEM, "preset: out of host memory");
  uint64_t stream = g->seed * 1000003u + (uint64_t)g->serial++ * 0x632be59bd9b4e019u;
  tgc_status st = TGC_OK;
  for (int64_t r = 0; r < rows && st == TGC_OK; r += chunk) {
    int64_t n = rows - r < chunk ? rows - r : chunk;
    uniform(tmp, n * cols, centre, sd, stream + (uint64_t)r);
    st = tgc_wquantize(tmp, n, cols, t, g->mem + g->used + (size_t)(r * rb));
  }
  free(tmp);
  g->used += weight_bytes(t, rows, cols);
  return st;
}

/* Llama 3.1's RoPE frequency factors (the rope_freqs.weight of its GGUF). */
static void llama3_factors(float *f, int hd, double base) {
  const double factor = 32, low = 1, high = 4, old_ctx = 8192;
  double low_wl = old_ctx / low, high_wl = old_ctx / high;
  for (int i = 0; i < hd / 2; i++) {
    double freq = pow(base, -2.0 * i / hd), wl = 6.283185307179586 / freq;
    if (wl < high_wl) {
      f[i] = 1;
    } else if (wl > low_wl) {
      f[i] = (float)factor;
    } else {
      double smooth = (old_ctx / wl - low) / (high - low);
      f[i] = (float)(1 / ((1 - smooth) / factor + smooth));
    }
  }
}

static size_t total_bytes(const tgc_llama_config *c, tgc_wtype t) {
  int hd = c->dim / c->n_heads, q = c->n_heads * hd, kv = c->n_kv_heads * hd;
  size_t layer = 2 * weight_bytes(TGC_W_F32, 1, c->dim) + weight_bytes(t, q, c->dim) +
                 2 * weight_bytes(t, kv, c->dim) + weight_bytes(t, c->dim, q) +
                 2 * weight_bytes(t, c->ffn_dim, c->dim) + weight_bytes(t, c->dim, c->ffn_dim);
  return (size_t)c->n_layers * layer + weight_bytes(TGC_W_F32, 1, c->dim) +
         (c->tied ? 1 : 2) * weight_bytes(t, c->vocab, c->dim) + sizeof(float) * (size_t)hd;
}

tgc_status tgc_llama_preset(const char *name, tgc_wtype wt, uint64_t seed, tgc_llama_weights *out) {
  memset(out, 0, sizeof *out);
  const preset *p = find(name);
  if (!p) return tgc_llama_preset_config(name, &out->cfg) ? TGC_OK : tgc_last_status();
  const tgc_llama_config *c = &p->cfg;
  if (tgc_wtype_row_bytes(wt, c->dim) < 0 || tgc_wtype_row_bytes(wt, c->ffn_dim) < 0)
    return tgc_set_error(TGC_ERR_ARG, "preset %s: %s needs widths that are whole blocks of %d", name,
                         tgc_wtypes[wt].name, tgc_wtypes[wt].block);
  gen g = {.cap = total_bytes(c, wt), .seed = seed};
  g.mem = malloc(g.cap);
  tgc_llama_layer *layers = calloc((size_t)c->n_layers, sizeof *layers);
  if (!g.mem || !layers) {
    free(g.mem);
    free(layers);
    return tgc_set_error(TGC_ERR_NOMEM, "preset %s: out of host memory (%zu bytes)", name, g.cap);
  }
  out->cfg = *c;
  out->layers = layers;
  out->owned = g.mem;
  out->owned_bytes = g.cap;
  int hd = c->dim / c->n_heads, q = c->n_heads * hd, kv = c->n_kv_heads * hd;
  const float sd = 0.02f;
  tgc_status st = matrix(&g, &out->tok_emb, wt, c->vocab, c->dim, 0, 1.0f);
  for (int l = 0; l < c->n_layers && st == TGC_OK; l++) {
    tgc_llama_layer *L = &layers[l];
    if ((st = matrix(&g, &L->attn_norm, TGC_W_F32, 1, c->dim, 1, 0.1f)) ||
        (st = matrix(&g, &L->wq, wt, q, c->dim, 0, sd)) || (st = matrix(&g, &L->wk, wt, kv, c->dim, 0, sd)) ||
        (st = matrix(&g, &L->wv, wt, kv, c->dim, 0, sd)) || (st = matrix(&g, &L->wo, wt, c->dim, q, 0, sd)) ||
        (st = matrix(&g, &L->ffn_norm, TGC_W_F32, 1, c->dim, 1, 0.1f)) ||
        (st = matrix(&g, &L->w_gate, wt, c->ffn_dim, c->dim, 0, sd)) ||
        (st = matrix(&g, &L->w_down, wt, c->dim, c->ffn_dim, 0, sd)) ||
        (st = matrix(&g, &L->w_up, wt, c->ffn_dim, c->dim, 0, sd)))
      break;
  }
  if (st == TGC_OK) st = matrix(&g, &out->out_norm, TGC_W_F32, 1, c->dim, 1, 0.1f);
  if (st == TGC_OK && !c->tied) st = matrix(&g, &out->output, wt, c->vocab, c->dim, 0, sd);
  if (c->tied) out->output = out->tok_emb;
  if (st == TGC_OK && p->llama3_rope) {
    float *f = (float *)(g.mem + g.used);
    llama3_factors(f, hd, c->rope_base);
    out->rope_freqs = f;
  }
  if (st != TGC_OK) tgc_llama_weights_free(out);
  return st;
}

void tgc_llama_weights_free(tgc_llama_weights *w) {
  if (!w) return;
  free(w->owned);
  free(w->layers);
  memset(w, 0, sizeof *w);
}
