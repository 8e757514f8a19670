/* llama_ref.h - an independent f64 LLaMA forward pass, the reference the
 * llama tests compare tgc's model graph against.
 *
 * Plain C loops in double over weights dequantized once; it uses no tgc op
 * and none of tgc's quant code (the caller passes the dequantizer), so a
 * bug in either shows up as a difference instead of being shared.
 *
 * The model is the contract llama/ implements: RMSNorm, grouped-query
 * attention with RoPE on adjacent pairs (Llama 3 frequency factors when
 * rope_freqs is set), SwiGLU, an output projection (tok_emb when tied).
 *
 * Order of calls: tgc_ref_new, then tgc_ref_step at pos 0, 1, 2, ... (each
 * step attends to the tokens of the earlier ones through the reference's
 * own KV cache), then tgc_ref_free.
 */
#ifndef TGC_TESTS_LLAMA_REF_H
#define TGC_TESTS_LLAMA_REF_H

#include <stdint.h>

#include "../llama/llama.h"

typedef struct tgc_ref_model tgc_ref_model;

/* Writes the rows * cols values of a weight of type `type` (a tgc_wtype)
 * stored at src in GGUF layout as floats, row by row, to dst. */
typedef void (*tgc_ref_dequant_fn)(int type, const void *src, int64_t rows, int64_t cols, float *dst);

/* Converts every weight of w to double once: F32 weights are read
 * directly, every other type through dq.  w is not used after the call.
 * Returns NULL (with a line on stderr) when a weight's shape disagrees with
 * w->cfg, when a weight is not F32 and dq is NULL, or when out of memory.
 * The caller owns the result (tgc_ref_free). */
tgc_ref_model *tgc_ref_new(const tgc_llama_weights *w, tgc_ref_dequant_fn dq);

/* Runs token at position pos and writes cfg.vocab logits.  pos must be
 * 0 on the first call and one more on each next call, below max_context;
 * anything else (or a token outside the vocabulary) aborts: a bug in the
 * test.  Calling with pos 0 again starts a new sequence. */
void tgc_ref_step(tgc_ref_model *m, int32_t token, int pos, double *logits);

void tgc_ref_free(tgc_ref_model *m); /* NULL ok */

/* Index of the largest of x[0..n) (the first one on ties); n > 0. */
int tgc_ref_argmax(const double *x, int n);

#endif
