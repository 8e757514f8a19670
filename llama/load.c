/* load.c - models from GGUF files and presets, and back to GGUF.
 *
 * A GGUF LLaMA names its tensors token_embd, blk.N.attn_q, ... and its
 * shapes in llama.* keys.  Loading checks every tensor against those keys
 * before anything is uploaded, so a bad file is an error naming the tensor,
 * never a wrong model.  The weights stay in the mapping unless a type
 * conversion (--quantize, or f16 norms) needs memory of their own.
 */
#include "llama.h"
#include "gguf.h"
#include "tgc_internal.h"
#include "tokenizer.h"

#include <unistd.h>

/* ---- progress ------------------------------------------------------------------ */

void tgc_progress_start(tgc_progress *p, const char *what, double total, bool quiet) {
  *p = (tgc_progress){.what = what, .total = total, .t0 = tgc_now(), .tty = isatty(2), .quiet = quiet};
}

static void progress_show(tgc_progress *p, bool last) {
  double dt = tgc_now() - p->t0, mb = p->done / 1e6, rate = dt > 0 ? mb / dt : 0;
  double frac = p->total > 0 ? p->done / p->total : 1;
  if (p->tty) {
    char bar[31];
    int fill = (int)(frac * 30 + 0.5);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r%s [%s] %8.1f / %.1f MB  %7.0f MB/s%s", p->what, bar, mb, p->total / 1e6, rate, last ? "\n" : "");
  } else {
    fprintf(stderr, "%s: %.1f / %.1f MB (%.0f%%), %.0f MB/s\n", p->what, mb, p->total / 1e6, 100 * frac, rate);
  }
}

void tgc_progress_add(tgc_progress *p, double bytes) {
  if (!p) return;
  p->done += bytes;
  if (p->quiet) return;
  double step = p->tty ? p->total / 100 : p->total / 4;
  if (p->done - p->shown >= step && p->done < p->total) {
    p->shown = p->done;
    progress_show(p, false);
  }
}

void tgc_progress_end(tgc_progress *p) {
  if (p && !p->quiet) progress_show(p, true);
}

/* ---- GGUF -> weights ---------------------------------------------------------- */

static bool wtype_of_ggml(uint32_t ggml, tgc_wtype *t) {
  for (int i = 0; i < TGC_W_COUNT; i++)
    if (tgc_wtypes[i].ggml == (int)ggml) {
      *t = (tgc_wtype)i;
      return true;
    }
  return false;
}

static void *keep(tgc_llama_model *m, size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) return NULL;
  m->allocs = tgc_xrealloc(m->allocs, sizeof *m->allocs * (size_t)(m->nallocs + 1));
  m->allocs[m->nallocs++] = p;
  return p;
}

/* Finds a tensor and checks its shape: [rows, cols] (GGUF dims {cols, rows};
 * rows 1 is a vector).  Converts it when its type is not `want` (-1: any;
 * norms are always f32). */
static tgc_status tensor(tgc_llama_model *m, const char *name, int64_t rows, int64_t cols, int want,
                         tgc_llama_weight *out) {
  const tgc_gguf_tensor *t = tgc_gguf_find_tensor(m->file, name);
  if (!t) return tgc_set_error(TGC_ERR_ARG, "%s: the file has no tensor %s", m->name, name);
  bool shape_ok = rows == 1 ? t->ndim == 1 && t->dims[0] == cols
                            : t->ndim == 2 && t->dims[0] == cols && t->dims[1] == rows;
  if (!shape_ok)
    return tgc_set_error(TGC_ERR_SHAPE, "%s: tensor %s is [%lld, %lld] (GGUF order), the metadata says [%lld, %lld]",
                         m->name, name, (long long)t->dims[0], (long long)(t->ndim > 1 ? t->dims[1] : 1),
                         (long long)cols, (long long)rows);
  tgc_wtype type;
  if (tgc_gguf_check_tensor(t) != TGC_OK || !wtype_of_ggml(t->type, &type))
    return tgc_set_error(TGC_ERR_UNSUPPORTED, "%s: tensor %s has type %s, which tgc does not read", m->name, name,
                         tgc_gguf_type_name(t->type));
  const void *data = tgc_gguf_tensor_data(t);
  if (!data) return tgc_last_status();
  *out = (tgc_llama_weight){type, rows, cols, data};
  if (want < 0 || (tgc_wtype)want == type) return TGC_OK;
  if (type != TGC_W_F32 && type != TGC_W_F16 && type != TGC_W_BF16)
    return tgc_set_error(TGC_ERR_UNSUPPORTED, "%s: tensor %s is already %s; tgc converts only from f32, f16 or bf16",
                         m->name, name, tgc_wtypes[type].name);
  int64_t rb = tgc_wtype_row_bytes((tgc_wtype)want, cols);
  if (rb < 0)
    return tgc_set_error(TGC_ERR_ARG, "%s: tensor %s: %lld columns are not whole %s blocks of %d", m->name, name,
                         (long long)cols, tgc_wtypes[want].name, tgc_wtypes[want].block);
  void *dst = keep(m, (size_t)(rows * rb));
  if (!dst) return tgc_set_error(TGC_ERR_NOMEM, "%s: out of host memory converting %s", m->name, name);
  tgc_status st = tgc_wconvert(type, data, rows, cols, (tgc_wtype)want, dst);
  *out = (tgc_llama_weight){(tgc_wtype)want, rows, cols, dst};
  return st;
}

static tgc_status need_u32(tgc_llama_model *m, const char *key, uint32_t dflt, bool required, int *out) {
  uint32_t v = dflt;
  if (tgc_gguf_find(m->file, key)) {
    if (tgc_gguf_get_u32(m->file, key, &v) != TGC_OK) return tgc_last_status();
  } else if (required) {
    return tgc_set_error(TGC_ERR_ARG, "%s: missing key %s", m->name, key);
  }
  if (v == 0 || v > (1u << 24)) return tgc_set_error(TGC_ERR_ARG, "%s: %s = %u cannot be", m->name, key, v);
  *out = (int)v;
  return TGC_OK;
}

static tgc_status read_config(tgc_llama_model *m) {
  tgc_llama_config *c = &m->w.cfg;
  const char *arch;
  size_t alen;
  if (tgc_gguf_get_str(m->file, "general.architecture", &arch, &alen) != TGC_OK)
    return tgc_set_error(TGC_ERR_ARG, "%s: missing key general.architecture", m->name);
  if (strcmp(arch, "llama"))
    return tgc_set_error(TGC_ERR_UNSUPPORTED, "%s: architecture \"%s\"; tgc runs llama", m->name, arch);
  tgc_status st;
  if ((st = need_u32(m, "llama.embedding_length", 0, true, &c->dim)) ||
      (st = need_u32(m, "llama.block_count", 0, true, &c->n_layers)) ||
      (st = need_u32(m, "llama.attention.head_count", 0, true, &c->n_heads)) ||
      (st = need_u32(m, "llama.attention.head_count_kv", (uint32_t)c->n_heads, false, &c->n_kv_heads)) ||
      (st = need_u32(m, "llama.feed_forward_length", 0, true, &c->ffn_dim)) ||
      (st = need_u32(m, "llama.context_length", 2048, false, &c->max_context)))
    return st;
  float base = 10000, eps = 1e-5f;
  if (tgc_gguf_find(m->file, "llama.rope.freq_base") && tgc_gguf_get_f32(m->file, "llama.rope.freq_base", &base))
    return tgc_last_status();
  if (tgc_gguf_find(m->file, "llama.attention.layer_norm_rms_epsilon") &&
      tgc_gguf_get_f32(m->file, "llama.attention.layer_norm_rms_epsilon", &eps))
    return tgc_last_status();
  c->rope_base = base;
  c->norm_eps = eps;
  const tgc_gguf_tensor *emb = tgc_gguf_find_tensor(m->file, "token_embd.weight");
  if (!emb || emb->ndim != 2) return tgc_set_error(TGC_ERR_ARG, "%s: no 2-d tensor token_embd.weight", m->name);
  c->vocab = (int)emb->dims[1];
  c->tied = !tgc_gguf_find_tensor(m->file, "output.weight");
  if (c->dim % c->n_heads || c->n_heads % c->n_kv_heads || (c->dim / c->n_heads) % 2)
    return tgc_set_error(TGC_ERR_ARG, "%s: %d heads (%d kv) do not divide a width of %d into even heads", m->name,
                         c->n_heads, c->n_kv_heads, c->dim);
  return TGC_OK;
}

static tgc_status read_weights(tgc_llama_model *m, int q, tgc_progress *prog) {
  tgc_llama_weights *w = &m->w;
  const tgc_llama_config *c = &w->cfg;
  int hd = c->dim / c->n_heads, nq = c->n_heads * hd, nkv = c->n_kv_heads * hd;
  w->layers = tgc_xcalloc((size_t)c->n_layers, sizeof *w->layers);
  tgc_status st;
  if ((st = tensor(m, "token_embd.weight", c->vocab, c->dim, q, &w->tok_emb)) ||
      (st = tensor(m, "output_norm.weight", 1, c->dim, TGC_W_F32, &w->out_norm)))
    return st;
  if (c->tied) {
    w->output = w->tok_emb;
  } else if ((st = tensor(m, "output.weight", c->vocab, c->dim, q, &w->output))) {
    return st;
  }
  for (int l = 0; l < c->n_layers; l++) {
    tgc_llama_layer *L = &w->layers[l];
    struct {
      const char *n;
      int64_t r, k;
      int type;
      tgc_llama_weight *dst;
    } t[] = {{"attn_norm", 1, c->dim, TGC_W_F32, &L->attn_norm}, {"attn_q", nq, c->dim, q, &L->wq},
             {"attn_k", nkv, c->dim, q, &L->wk},                 {"attn_v", nkv, c->dim, q, &L->wv},
             {"attn_output", c->dim, nq, q, &L->wo},             {"ffn_norm", 1, c->dim, TGC_W_F32, &L->ffn_norm},
             {"ffn_gate", c->ffn_dim, c->dim, q, &L->w_gate},     {"ffn_down", c->dim, c->ffn_dim, q, &L->w_down},
             {"ffn_up", c->ffn_dim, c->dim, q, &L->w_up}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
      char name[96];
      snprintf(name, sizeof name, "blk.%d.%s.weight", l, t[i].n);
      if ((st = tensor(m, name, t[i].r, t[i].k, t[i].type, t[i].dst))) return st;
    }
    tgc_progress_add(prog, 0);
  }
  const tgc_gguf_tensor *rf = tgc_gguf_find_tensor(m->file, "rope_freqs.weight");
  if (rf) {
    tgc_llama_weight f;
    if ((st = tensor(m, "rope_freqs.weight", 1, hd / 2, TGC_W_F32, &f))) return st;
    w->rope_freqs = f.data;
  }
  return TGC_OK;
}

/* The tokenizer.ggml.* keys, as tgc_tok_config wants them. */
static tgc_status read_tokenizer(tgc_llama_model *m) {
  tgc_gguf *g = m->file;
  const char *model = "llama", *pre = NULL;
  size_t len, n = 0, nm = 0, ns = 0, nt = 0;
  const tgc_gguf_str *tokens = NULL, *merges = NULL;
  const float *scores = NULL;
  const int32_t *types = NULL;
  if (tgc_gguf_get_str(g, "tokenizer.ggml.model", &model, &len) || tgc_gguf_get_arr_str(g, "tokenizer.ggml.tokens", &tokens, &n))
    return tgc_set_error(TGC_ERR_ARG, "%s: no tokenizer (tokenizer.ggml.model and tokenizer.ggml.tokens)", m->name);
  if (tgc_gguf_find(g, "tokenizer.ggml.pre")) tgc_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &len);
  if (tgc_gguf_find(g, "tokenizer.ggml.scores") && tgc_gguf_get_arr_f32(g, "tokenizer.ggml.scores", &scores, &ns))
    return tgc_last_status();
  if (tgc_gguf_find(g, "tokenizer.ggml.token_type") && tgc_gguf_get_arr_i32(g, "tokenizer.ggml.token_type", &types, &nt))
    return tgc_last_status();
  if (tgc_gguf_find(g, "tokenizer.ggml.merges") && tgc_gguf_get_arr_str(g, "tokenizer.ggml.merges", &merges, &nm))
    return tgc_last_status();
  if ((scores && ns != n) || (types && nt != n))
    return tgc_set_error(TGC_ERR_ARG, "%s: tokenizer arrays of different lengths", m->name);
  uint32_t bos = UINT32_MAX, eos = UINT32_MAX;
  bool add_bos = false, add_eos = false, space = true;
  if (tgc_gguf_find(g, "tokenizer.ggml.bos_token_id")) tgc_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos);
  if (tgc_gguf_find(g, "tokenizer.ggml.eos_token_id")) tgc_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &eos);
  if (tgc_gguf_find(g, "tokenizer.ggml.add_bos_token")) tgc_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos);
  else add_bos = bos != UINT32_MAX && !strcmp(model, "llama");
  if (tgc_gguf_find(g, "tokenizer.ggml.add_eos_token")) tgc_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &add_eos);
  if (tgc_gguf_find(g, "tokenizer.ggml.add_space_prefix")) tgc_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &space);
  const char **tk = tgc_xmalloc(sizeof *tk * (n ? n : 1)), **mg = tgc_xmalloc(sizeof *mg * (nm ? nm : 1));
  size_t *tl = tgc_xmalloc(sizeof *tl * (n ? n : 1));
  for (size_t i = 0; i < n; i++) tk[i] = tokens[i].s, tl[i] = tokens[i].len;
  for (size_t i = 0; i < nm; i++) mg[i] = merges[i].s;
  tgc_tok_config cfg = {.model = model, .n_vocab = (int)n, .tokens = tk, .token_lens = tl, .scores = scores,
                        .types = types, .n_merges = (int)nm, .merges = nm ? mg : NULL,
                        .bos = bos == UINT32_MAX ? -1 : (int32_t)bos, .eos = eos == UINT32_MAX ? -1 : (int32_t)eos,
                        .add_bos = add_bos && bos != UINT32_MAX, .add_eos = add_eos && eos != UINT32_MAX,
                        .add_space_prefix = space, .pre = pre};
  m->tok = tgc_tok_new(&cfg);
  free(tk);
  free(tl);
  free(mg);
  if (!m->tok) return tgc_last_status();
  if ((int)n < m->w.cfg.vocab)
    return tgc_set_error(TGC_ERR_ARG, "%s: %zu tokens for a vocabulary of %d", m->name, n, m->w.cfg.vocab);
  return TGC_OK;
}

tgc_status tgc_llama_load(const char *path, int quantize, tgc_llama_model *out, tgc_progress *prog) {
  memset(out, 0, sizeof *out);
  if (!path) return tgc_set_error(TGC_ERR_ARG, "tgc_llama_load: path is NULL");
  const char *base = strrchr(path, '/');
  snprintf(out->name, sizeof out->name, "%s", base ? base + 1 : path);
  if (!(out->file = tgc_gguf_open(path))) return tgc_last_status();
  tgc_status st = read_config(out);
  if (st == TGC_OK) st = read_weights(out, quantize, prog);
  if (st == TGC_OK) st = read_tokenizer(out);
  if (st != TGC_OK) {
    tgc_status keep_st = st;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", tgc_last_error());
    tgc_llama_model_free(out);
    return tgc_set_error(keep_st, "%s", msg);
  }
  return TGC_OK;
}

/* ---- presets ---------------------------------------------------------------------- */

/* <unk> <s> </s>, the 256 byte tokens, then pieces "▁t<i>" to fill the
 * vocabulary: prompts become byte tokens, and the model's (random) output
 * decodes to readable pieces. */
static tgc_status preset_tokenizer(tgc_llama_model *m) {
  int n = m->w.cfg.vocab;
  char **tk = tgc_xcalloc((size_t)n, sizeof *tk);
  float *sc = tgc_xcalloc((size_t)n, sizeof *sc);
  int32_t *ty = tgc_xcalloc((size_t)n, sizeof *ty);
  for (int i = 0; i < n; i++) {
    char buf[32];
    if (i < 3) {
      snprintf(buf, sizeof buf, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
      ty[i] = i == 0 ? TGC_TOK_UNKNOWN : TGC_TOK_CONTROL;
    } else if (i < 259) {
      snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
      ty[i] = TGC_TOK_BYTE;
    } else {
      snprintf(buf, sizeof buf, "\xe2\x96\x81t%d", i);
      ty[i] = TGC_TOK_NORMAL;
      sc[i] = -(float)i;
    }
    tk[i] = tgc_xmalloc(strlen(buf) + 1);
    strcpy(tk[i], buf);
  }
  tgc_tok_config cfg = {.model = "llama", .n_vocab = n, .tokens = (const char *const *)tk, .scores = sc, .types = ty,
                        .bos = 1, .eos = 2, .add_bos = true, .add_space_prefix = true};
  m->tok = tgc_tok_new(&cfg);
  for (int i = 0; i < n; i++) free(tk[i]);
  free(tk);
  free(sc);
  free(ty);
  return m->tok ? TGC_OK : tgc_last_status();
}

tgc_status tgc_llama_load_preset(const char *name, tgc_wtype wt, uint64_t seed, tgc_llama_model *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", name ? name : "");
  tgc_status st = tgc_llama_preset(name, wt, seed, &out->w);
  if (st == TGC_OK) st = preset_tokenizer(out);
  if (st != TGC_OK) {
    tgc_llama_weights_free(&out->w);
    tgc_tok_free(out->tok);
    out->tok = NULL;
  }
  return st;
}

void tgc_llama_model_free(tgc_llama_model *m) {
  if (!m) return;
  if (m->file) { /* the weights point into the file: only layers are ours */
    free(m->w.layers);
    memset(&m->w, 0, sizeof m->w);
  }
  tgc_llama_weights_free(&m->w);
  tgc_tok_free(m->tok);
  tgc_gguf_free(m->file);
  for (int i = 0; i < m->nallocs; i++) free(m->allocs[i]);
  free(m->allocs);
  memset(m, 0, sizeof *m);
}

/* ---- export ------------------------------------------------------------------------ */

static tgc_status put_tensor(tgc_gguf_writer *g, const char *name, const tgc_llama_weight *w) {
  if (tgc_wtypes[w->type].ggml < 0)
    return tgc_set_error(TGC_ERR_UNSUPPORTED, "export: %s is %s, which GGUF has no type for", name,
                         tgc_wtypes[w->type].name);
  int64_t dims[2] = {w->cols, w->rows};
  size_t bytes = (size_t)(w->rows * tgc_wtype_row_bytes(w->type, w->cols));
  return tgc_gguf_writer_add_tensor(g, name, (uint32_t)tgc_wtypes[w->type].ggml, w->rows == 1 ? 1 : 2, dims, w->data,
                                    bytes);
}

static tgc_status put_tokenizer(tgc_gguf_writer *g, const tgc_tokenizer *tok) {
  int n = tgc_tok_n_vocab(tok);
  tgc_gguf_str *s = tgc_xmalloc(sizeof *s * (size_t)n);
  int32_t *ty = tgc_xmalloc(sizeof *ty * (size_t)n);
  float *sc = tgc_xmalloc(sizeof *sc * (size_t)n);
  for (int i = 0; i < n; i++) {
    s[i].s = tgc_tok_text(tok, i, &s[i].len);
    ty[i] = (int32_t)tgc_tok_type_of(tok, i);
    sc[i] = i < 259 ? 0 : -(float)i;
  }
  tgc_status st = tgc_gguf_writer_add_str(g, "tokenizer.ggml.model", "llama");
  if (!st) st = tgc_gguf_writer_add_arr_strn(g, "tokenizer.ggml.tokens", s, (size_t)n);
  if (!st) st = tgc_gguf_writer_add_arr_f32(g, "tokenizer.ggml.scores", sc, (size_t)n);
  if (!st) st = tgc_gguf_writer_add_arr_i32(g, "tokenizer.ggml.token_type", ty, (size_t)n);
  if (!st) st = tgc_gguf_writer_add_u32(g, "tokenizer.ggml.bos_token_id", (uint32_t)tgc_tok_bos(tok));
  if (!st) st = tgc_gguf_writer_add_u32(g, "tokenizer.ggml.eos_token_id", (uint32_t)tgc_tok_eos(tok));
  if (!st) st = tgc_gguf_writer_add_bool(g, "tokenizer.ggml.add_bos_token", true);
  free(s);
  free(ty);
  free(sc);
  return st;
}

tgc_status tgc_llama_export(const tgc_llama_model *m, const char *path) {
  if (!m || !path) return tgc_set_error(TGC_ERR_ARG, "export: NULL argument");
  if (m->file) return tgc_set_error(TGC_ERR_UNSUPPORTED, "export: the model is already a GGUF file");
  const tgc_llama_weights *w = &m->w;
  const tgc_llama_config *c = &w->cfg;
  tgc_gguf_writer *g = tgc_gguf_writer_new();
  if (!g) return tgc_last_status();
  tgc_status st = tgc_gguf_writer_add_str(g, "general.architecture", "llama");
  if (!st) st = tgc_gguf_writer_add_str(g, "general.name", m->name);
  struct {
    const char *k;
    int v;
  } u[] = {{"llama.embedding_length", c->dim},     {"llama.block_count", c->n_layers},
           {"llama.attention.head_count", c->n_heads}, {"llama.attention.head_count_kv", c->n_kv_heads},
           {"llama.feed_forward_length", c->ffn_dim},  {"llama.context_length", c->max_context},
           {"llama.rope.dimension_count", c->dim / c->n_heads}};
  for (size_t i = 0; !st && i < sizeof u / sizeof *u; i++) st = tgc_gguf_writer_add_u32(g, u[i].k, (uint32_t)u[i].v);
  if (!st) st = tgc_gguf_writer_add_f32(g, "llama.rope.freq_base", (float)c->rope_base);
  if (!st) st = tgc_gguf_writer_add_f32(g, "llama.attention.layer_norm_rms_epsilon", (float)c->norm_eps);
  if (!st) st = put_tokenizer(g, m->tok);
  if (!st) st = put_tensor(g, "token_embd.weight", &w->tok_emb);
  if (!st) st = put_tensor(g, "output_norm.weight", &w->out_norm);
  if (!st && !c->tied) st = put_tensor(g, "output.weight", &w->output);
  if (!st && w->rope_freqs) {
    tgc_llama_weight f = {TGC_W_F32, 1, c->dim / c->n_heads / 2, w->rope_freqs};
    st = put_tensor(g, "rope_freqs.weight", &f);
  }
  for (int l = 0; !st && l < c->n_layers; l++) {
    const tgc_llama_layer *L = &w->layers[l];
    const tgc_llama_weight *t[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo,
                                   &L->ffn_norm, &L->w_gate, &L->w_down, &L->w_up};
    const char *n[] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"};
    for (int i = 0; !st && i < 9; i++) {
      char name[96];
      snprintf(name, sizeof name, "blk.%d.%s.weight", l, n[i]);
      st = put_tensor(g, name, t[i]);
    }
  }
  if (!st) st = tgc_gguf_writer_write(g, path);
  tgc_gguf_writer_free(g);
  return st;
}
