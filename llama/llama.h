/* llama.h - LLaMA on tgc: weights, the model graph, presets, sampling.
 *
 * The internal header of llama/ (tgc-llama, tgc-bench and the tests use
 * it; it is not installed).  Weights are host memory in GGUF layout: a
 * matrix of `rows` outputs by `cols` inputs is stored row by row (GGUF
 * dims {cols, rows}), each row `tgc_wtype_row_bytes(type, cols)` bytes.
 * Quantized types keep that layout on the device and are dequantized by
 * the graph inside the matmul that reads them (llama/quant.c).
 */
#ifndef TGC_LLAMA_H
#define TGC_LLAMA_H

#include "tgc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- weight types (llama/quant.c) ---------------------------------------- */

/* X(NAME, name, ggml type id (-1: not a ggml type), block elements, block bytes) */
#define TGC_WTYPES(X)                 \
  X(F32, "f32", 0, 1, 4)              \
  X(F16, "f16", 1, 1, 2)              \
  X(BF16, "bf16", 30, 1, 2)           \
  X(Q8_0, "q8_0", 8, 32, 34)          \
  X(Q4_0, "q4_0", 2, 32, 18)          \
  X(NF4, "nf4", -1, 64, 34)

typedef enum tgc_wtype {
#define X(N, s, g, be, bb) TGC_W_##N,
  TGC_WTYPES(X)
#undef X
  TGC_W_COUNT
} tgc_wtype;

typedef struct tgc_wtype_info {
  const char *name; /* "q8_0" */
  int ggml;         /* GGUF tensor type id, -1 for nf4 (tgc's own) */
  int block;        /* elements per block */
  int block_bytes;  /* bytes per block */
} tgc_wtype_info;
extern const tgc_wtype_info tgc_wtypes[TGC_W_COUNT];

/* Bytes of one row of n elements; -1 if n is not a whole number of blocks. */
int64_t tgc_wtype_row_bytes(tgc_wtype t, int64_t n);
/* By name ("q4_0", also "int8" for q8_0); false if unknown. */
bool tgc_wtype_parse(const char *name, tgc_wtype *out);

/* Host conversion of a [rows, cols] matrix; each row is a whole number of
 * blocks.  The caller owns both buffers: src holds rows * cols floats,
 * dst rows * tgc_wtype_row_bytes(to, cols) bytes.  Q8_0 and Q4_0 round as
 * ggml's reference quantizers.  TGC_ERR_ARG for NULL buffers or a bad type,
 * TGC_ERR_SHAPE for sizes < 1 or cols not a whole number of blocks. */
tgc_status tgc_wquantize(const float *src, int64_t rows, int64_t cols, tgc_wtype to, void *dst);
/* The inverse: dst gets rows * cols floats; errors as tgc_wquantize. */
tgc_status tgc_wdequantize(tgc_wtype from, const void *src, int64_t rows, int64_t cols, float *dst);
/* Any type to any type through f32, one row at a time (a malloc of one row:
 * TGC_ERR_NOMEM); from == to copies the bytes. */
tgc_status tgc_wconvert(tgc_wtype from, const void *src, int64_t rows, int64_t cols, tgc_wtype to,
                        void *dst);

/* A weight on ctx's device, owned by ctx: f32/f16/bf16 as a tensor of that
 * dtype [rows, cols]; quantized types as their raw bytes, u8 [rows,
 * row_bytes].  data (host, GGUF layout) is copied.  NULL with an error for
 * a NULL ctx or data, a bad type or bad sizes. */
tgc_tensor *tgc_wupload(tgc_ctx *ctx, tgc_wtype t, int64_t rows, int64_t cols, const void *data);
/* The weight as a lazy f32 [rows, cols], made of ordinary ops on raw (what
 * tgc_wupload returned), so dequantisation fuses into its reader.  NULL
 * raw gives NULL quietly; a raw of the wrong dtype or shape, NULL with an
 * error. */
tgc_tensor *tgc_wdequant(tgc_tensor *raw, tgc_wtype t, int64_t rows, int64_t cols);
/* x [..., cols] f32 times the weight transposed: [..., rows] f32, lazy.  A
 * matvec is one kernel reading raw; no dequantized copy is allocated.  x
 * has 1 to 5 dimensions for a quantized type.  NULL x or raw gives NULL
 * quietly; x of another dtype or last size, or a raw that tgc_wdequant
 * would refuse, NULL with an error. */
tgc_tensor *tgc_wlinear(tgc_tensor *x, tgc_tensor *raw, tgc_wtype t, int64_t rows, int64_t cols);

/* ---- the model ---------------------------------------------------------------- */

typedef struct tgc_llama_config {
  int dim;          /* model width */
  int n_layers;
  int n_heads;
  int n_kv_heads;   /* grouped-query attention: n_heads % n_kv_heads == 0 */
  int ffn_dim;      /* SwiGLU hidden width */
  int vocab;
  int max_context;  /* KV cache positions */
  double rope_base; /* 10000 (Llama 2), 500000 (Llama 3) */
  double norm_eps;  /* RMSNorm epsilon */
  bool tied;        /* the output projection is the token embedding */
} tgc_llama_config;

/* One weight matrix (or vector: rows = 1), host memory in GGUF layout. */
typedef struct tgc_llama_weight {
  tgc_wtype type;
  int64_t rows, cols; /* [rows, cols]: rows outputs, cols inputs */
  const void *data;   /* rows * tgc_wtype_row_bytes(type, cols) bytes */
} tgc_llama_weight;

typedef struct tgc_llama_layer {
  tgc_llama_weight attn_norm; /* [1, dim] f32 */
  tgc_llama_weight wq;        /* [n_heads * head_dim, dim] (Q and K rows in GGUF's permuted order) */
  tgc_llama_weight wk;        /* [n_kv_heads * head_dim, dim] */
  tgc_llama_weight wv;        /* [n_kv_heads * head_dim, dim] */
  tgc_llama_weight wo;        /* [dim, n_heads * head_dim] */
  tgc_llama_weight ffn_norm;  /* [1, dim] f32 */
  tgc_llama_weight w_gate;    /* [ffn_dim, dim] (ffn_gate) */
  tgc_llama_weight w_down;    /* [dim, ffn_dim] (ffn_down) */
  tgc_llama_weight w_up;      /* [ffn_dim, dim] (ffn_up) */
} tgc_llama_layer;

/* Everything a model is made of, on the host.  layers is always heap
 * memory; the weights themselves are in `owned` (presets, conversions) or
 * in a mapped file (GGUF).  tgc_llama_weights_free releases both. */
typedef struct tgc_llama_weights {
  tgc_llama_config cfg;
  tgc_llama_weight tok_emb;   /* [vocab, dim] */
  tgc_llama_layer *layers;    /* n_layers */
  tgc_llama_weight out_norm;  /* [1, dim] f32 */
  tgc_llama_weight output;    /* [vocab, dim]; equals tok_emb when cfg.tied */
  const float *rope_freqs;    /* [head_dim / 2] Llama 3 frequency factors, or NULL */
  void *owned;                /* memory to free, or NULL */
  size_t owned_bytes;
} tgc_llama_weights;

/* The presets: "tiny", "stories15m", "small-512", "llama3-1b", "llama3-8b".
 * Fills cfg; false (with an error) for an unknown name. */
bool tgc_llama_preset_config(const char *name, tgc_llama_config *cfg);
/* Seeded random weights of a preset's shapes in type wt (f32 norms):
 * normal(0, 0.02) matrices, norms near 1.  Owns its memory. */
tgc_status tgc_llama_preset(const char *name, tgc_wtype wt, uint64_t seed, tgc_llama_weights *out);
void tgc_llama_weights_free(tgc_llama_weights *w); /* NULL ok */

int tgc_llama_head_dim(const tgc_llama_config *c);
/* Bytes of all weight matrices and vectors (the tied output counted once). */
double tgc_llama_weights_bytes(const tgc_llama_weights *w);

/* ---- a model on a device (llama/model.c) ------------------------------------ */

#define TGC_LLAMA_CHUNK 32 /* prompt tokens per prefill graph */

/* Progress of a long phase (loading): a bar with bytes and MB/s on a
 * terminal, a plain line per quarter otherwise (llama/load.c). */
typedef struct tgc_progress {
  const char *what;
  double total, done, t0, shown;
  bool tty, quiet;
} tgc_progress;
void tgc_progress_start(tgc_progress *p, const char *what, double total_bytes, bool quiet);
void tgc_progress_add(tgc_progress *p, double bytes); /* NULL ok */
void tgc_progress_end(tgc_progress *p);

typedef struct tgc_llama tgc_llama;
/* Uploads the weights to ctx's device in their own types (the host copy
 * may be freed afterwards) and allocates the KV cache: one f32 buffer of
 * max_context positions per layer for K and one for V.  progress may be
 * NULL.  NULL + error on failure. */
tgc_llama *tgc_llama_new(tgc_ctx *ctx, const tgc_llama_weights *w, tgc_progress *progress);
void tgc_llama_free(tgc_llama *m); /* NULL ok; call before tgc_ctx_free */
/* Runs tokens[0..n) at positions pos..pos+n-1 (pos = tokens already in
 * the cache).  One token is the decode step, replayed by a JIT from its
 * third call; more run as prefill graphs of up to TGC_LLAMA_CHUNK tokens
 * with a causal mask and a symbolic length.  Writes the last token's
 * logits (vocab floats) when logits is not NULL and their argmax, computed
 * on the device, when argmax is not NULL. */
tgc_status tgc_llama_eval(tgc_llama *m, const int32_t *tokens, int n, int pos, float *logits, int32_t *argmax);
/* The graph of one decode step, built but not realized: the logits
 * [1, vocab] of `token` at position pos (start_pos is bound to pos; the
 * graph writes the KV cache at pos when realized).  For running the same
 * graph elsewhere (compare/, tgc-bench) and for tests; NULL + error on bad
 * arguments. */
tgc_tensor *tgc_llama_step_graph(tgc_llama *m, int32_t token, int pos);
/* Bytes of weights one decode step reads (for GB/s): every matrix and
 * norm, and one row of the embedding table. */
double tgc_llama_weight_bytes(const tgc_llama *m);
/* Bytes of the KV cache. */
double tgc_llama_cache_bytes(const tgc_llama *m);

/* ---- models from files and presets (llama/load.c) ---------------------------- */

struct tgc_tokenizer;
struct tgc_gguf;
/* Weights with their tokenizer, and what backs them. */
typedef struct tgc_llama_model {
  tgc_llama_weights w;
  struct tgc_tokenizer *tok;
  struct tgc_gguf *file;  /* the mapped GGUF the weights point into, or NULL */
  void **allocs;          /* converted tensors */
  int nallocs;
  char name[64];          /* preset name or file name */
} tgc_llama_model;

/* A GGUF file (general.architecture llama).  quantize < 0 keeps the file's
 * types; otherwise matrices of F32/F16/BF16 are converted to that type.
 * Errors name the key, the tensor or the shape that is wrong. */
tgc_status tgc_llama_load(const char *path, int quantize, tgc_llama_model *out, tgc_progress *progress);
/* A preset (tgc_llama_preset) with a tokenizer of byte tokens. */
tgc_status tgc_llama_load_preset(const char *name, tgc_wtype wt, uint64_t seed, tgc_llama_model *out);
/* Writes the model as a GGUF file that tgc_llama_load (and llama.cpp) read. */
tgc_status tgc_llama_export(const tgc_llama_model *m, const char *path);
void tgc_llama_model_free(tgc_llama_model *m); /* NULL ok */

/* ---- sampling (llama/sample.c) ------------------------------------------------ */

typedef struct tgc_sampler {
  double temp;   /* <= 0: greedy */
  int top_k;     /* <= 0: all */
  double top_p;  /* >= 1: all */
  uint64_t state; /* the seed, then the generator's state */
} tgc_sampler;
/* A token id drawn from logits[0..n). */
int32_t tgc_sample(tgc_sampler *s, const float *logits, int n);

#endif
