/* test_llama.c - the model graph against the f64 reference (tests/llama_ref.c).
 *
 * Greedy runs of 32 steps on the tiny and stories15m presets: at every
 * step the logits agree with the reference, and the greedy tokens (argmax
 * on the device) are the reference's.  The error measure is
 * max|tgc - ref| / max|ref| over the vocabulary: logits near zero make an
 * element-wise relative error meaningless, and what sampling sees is the
 * error against the logits' scale.  f32 compute with f32 accumulation over
 * a few hundred terms per dot product stays near 1e-6 of that scale; the
 * tests hold it to 1e-4.
 *
 * Quantized runs (f16, q8_0, q4_0) are compared with the reference run on
 * the same quantized weights (dequantized exactly): the graph must compute
 * the same function, so the same 1e-4 holds.  Against the f32 model the
 * difference is the quantization's own, which is no property of tgc.
 */
#define _DEFAULT_SOURCE /* mkdtemp, truncate */
#include "tgc_internal.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stddef.h>
#include <unistd.h>

#include "../llama/gguf.h"
#include "../llama/llama.h"
#include "../llama/tokenizer.h"
#include "llama_ref.h"

static void dequant(int type, const void *src, int64_t rows, int64_t cols, float *dst) {
  cr_assert_eq(tgc_wdequantize((tgc_wtype)type, src, rows, cols, dst), TGC_OK, "%s", tgc_last_error());
}

static double scaled_error(const float *got, const double *want, int n) {
  double err = 0, scale = 0;
  for (int i = 0; i < n; i++) {
    err = fmax(err, fabs(got[i] - want[i]));
    scale = fmax(scale, fabs(want[i]));
  }
  return err / scale;
}

/* Greedy decode from token 1, one step per token; checks every step. */
static void greedy_run(const char *preset, tgc_wtype wt, int steps, double tol) {
  tgc_llama_weights w;
  cr_assert_eq(tgc_llama_preset(preset, wt, 7, &w), TGC_OK, "%s", tgc_last_error());
  int V = w.cfg.vocab;
  tgc_ref_model *ref = tgc_ref_new(&w, dequant);
  cr_assert_not_null(ref);
  tgc_ctx *ctx = tgc_ctx_new();
  tgc_llama *m = tgc_llama_new(ctx, &w, NULL);
  cr_assert_not_null(m, "%s", tgc_last_error());
  float *got = malloc(sizeof *got * (size_t)V);
  double *want = malloc(sizeof *want * (size_t)V), worst = 0;
  int32_t tok = 1;
  tgc_stats s3 = {0}, end;
  for (int pos = 0; pos < steps; pos++) {
    if (pos == 3) tgc_get_stats(ctx, &s3);
    int32_t am;
    cr_assert_eq(tgc_llama_eval(m, &tok, 1, pos, got, &am), TGC_OK, "%s step %d: %s", preset, pos, tgc_last_error());
    tgc_ref_step(ref, tok, pos, want);
    double e = scaled_error(got, want, V);
    worst = fmax(worst, e);
    cr_assert_leq(e, tol, "%s/%s step %d: error %.3g of the logits' scale", preset, tgc_wtypes[wt].name, pos, e);
    cr_assert_eq(am, tgc_ref_argmax(want, V), "%s step %d: greedy token %d, reference %d", preset, pos, am,
                 tgc_ref_argmax(want, V));
    tok = am;
  }
  tgc_get_stats(ctx, &end);
  cr_expect_eq(end.compiles, s3.compiles, "the decode step replays: nothing compiled after step 3");
  cr_expect_eq(end.schedules, s3.schedules, "nor scheduled");
  cr_log_info("%s %s: %d steps, worst error %.2g of the logits' scale", preset, tgc_wtypes[wt].name, steps, worst);
  free(got);
  free(want);
  tgc_llama_free(m);
  tgc_ctx_free(ctx);
  tgc_ref_free(ref);
  tgc_llama_weights_free(&w);
}

Test(llama, tiny_f32_matches_the_reference_for_32_greedy_steps, .timeout = 300) {
  greedy_run("tiny", TGC_W_F32, 32, 1e-4);
}

Test(llama, stories15m_f32_matches_the_reference_for_32_greedy_steps, .timeout = 600) {
  greedy_run("stories15m", TGC_W_F32, 32, 1e-4);
}

Test(llama, tiny_f16_matches_the_reference_on_its_weights, .timeout = 300) { greedy_run("tiny", TGC_W_F16, 32, 1e-4); }

Test(llama, tiny_q8_0_matches_the_reference_on_its_weights, .timeout = 300) {
  greedy_run("tiny", TGC_W_Q8_0, 32, 1e-4);
}

Test(llama, tiny_q4_0_matches_the_reference_on_its_weights, .timeout = 300) {
  greedy_run("tiny", TGC_W_Q4_0, 16, 1e-4);
}

/* A prompt of 40 tokens as prefill chunks (32 + 7, symbolic lengths) and a
 * last decode step: the logits after it are the reference's after 40 steps. */
Test(llama, prefill_in_chunks_matches_step_by_step, .timeout = 300) {
  tgc_llama_weights w;
  cr_assert_eq(tgc_llama_preset("tiny", TGC_W_F32, 3, &w), TGC_OK, "%s", tgc_last_error());
  int V = w.cfg.vocab, n = 40;
  int32_t prompt[40];
  for (int i = 0; i < n; i++) prompt[i] = (int32_t)((i * 37 + 5) % V);
  tgc_ref_model *ref = tgc_ref_new(&w, dequant);
  double *want = malloc(sizeof *want * (size_t)V);
  for (int i = 0; i < n; i++) tgc_ref_step(ref, prompt[i], i, want);
  tgc_ctx *ctx = tgc_ctx_new();
  tgc_llama *m = tgc_llama_new(ctx, &w, NULL);
  cr_assert_not_null(m, "%s", tgc_last_error());
  float *got = malloc(sizeof *got * (size_t)V);
  int32_t am;
  cr_assert_eq(tgc_llama_eval(m, prompt, n - 1, 0, NULL, NULL), TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(tgc_llama_eval(m, prompt + n - 1, 1, n - 1, got, &am), TGC_OK, "%s", tgc_last_error());
  double e = scaled_error(got, want, V);
  cr_expect_leq(e, 1e-4, "after a chunked prefill: error %.3g", e);
  cr_expect_eq(am, tgc_ref_argmax(want, V));
  /* the whole prompt as prefill: its last logits too */
  tgc_stats s0, s1;
  tgc_get_stats(ctx, &s0);
  cr_assert_eq(tgc_llama_eval(m, prompt, n, 0, got, &am), TGC_OK, "%s", tgc_last_error());
  tgc_get_stats(ctx, &s1);
  cr_expect_leq(scaled_error(got, want, V), 1e-4);
  cr_expect_eq(s1.compiles, s0.compiles, "chunks of other lengths reuse the prefill kernels");
  free(got);
  free(want);
  tgc_llama_free(m);
  tgc_ctx_free(ctx);
  tgc_ref_free(ref);
  tgc_llama_weights_free(&w);
}

Test(llama, bad_input_is_an_error) {
  tgc_llama_weights w;
  cr_expect_neq(tgc_llama_preset("no-such-model", TGC_W_F32, 1, &w), TGC_OK);
  cr_expect(strstr(tgc_last_error(), "unknown preset"), "%s", tgc_last_error());
  cr_assert_eq(tgc_llama_preset("tiny", TGC_W_F32, 1, &w), TGC_OK);
  tgc_ctx *ctx = tgc_ctx_new();
  tgc_llama *m = tgc_llama_new(ctx, &w, NULL);
  cr_assert_not_null(m, "%s", tgc_last_error());
  int32_t bad = w.cfg.vocab, ok = 1;
  cr_expect_eq(tgc_llama_eval(m, &bad, 1, 0, NULL, NULL), TGC_ERR_ARG);
  cr_expect_eq(tgc_llama_eval(m, &ok, 1, w.cfg.max_context, NULL, NULL), TGC_ERR_ARG);
  cr_expect_eq(tgc_llama_eval(m, &ok, 0, 0, NULL, NULL), TGC_ERR_ARG);
  tgc_llama_free(m);
  tgc_ctx_free(ctx);
  tgc_llama_weights_free(&w);
}

/* Llama 3's pieces on the tiny shapes: RoPE frequency factors and an
 * output projection tied to the embedding, against the reference. */
Test(llama, rope_factors_and_tied_output_match_the_reference, .timeout = 300) {
  tgc_llama_weights w;
  cr_assert_eq(tgc_llama_preset("tiny", TGC_W_F32, 5, &w), TGC_OK, "%s", tgc_last_error());
  int hd = w.cfg.dim / w.cfg.n_heads, V = w.cfg.vocab;
  float factors[64];
  for (int i = 0; i < hd / 2; i++) factors[i] = 1.0f + 3.0f * (float)i / (float)(hd / 2); /* 1 .. 4 */
  w.rope_freqs = factors;
  w.cfg.tied = true;
  w.output = w.tok_emb;
  w.cfg.rope_base = 500000;
  tgc_ref_model *ref = tgc_ref_new(&w, dequant);
  tgc_ctx *ctx = tgc_ctx_new();
  tgc_llama *m = tgc_llama_new(ctx, &w, NULL);
  cr_assert_not_null(m, "%s", tgc_last_error());
  float *got = malloc(sizeof *got * (size_t)V);
  double *want = malloc(sizeof *want * (size_t)V);
  int32_t tok = 7;
  for (int pos = 0; pos < 12; pos++) {
    int32_t am;
    cr_assert_eq(tgc_llama_eval(m, &tok, 1, pos, got, &am), TGC_OK, "%s", tgc_last_error());
    tgc_ref_step(ref, tok, pos, want);
    double e = scaled_error(got, want, V);
    cr_assert_leq(e, 1e-4, "step %d: error %.3g", pos, e);
    cr_assert_eq(am, tgc_ref_argmax(want, V));
    tok = am;
  }
  free(got);
  free(want);
  tgc_llama_free(m);
  tgc_ctx_free(ctx);
  tgc_ref_free(ref);
  tgc_llama_weights_free(&w);
}

static void tmp_gguf(char *path, size_t cap) {
  char dir[] = "/tmp/tgc-llama-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, cap, "%s/m.gguf", dir);
}

static void rm_gguf(const char *path) {
  char dir[256];
  snprintf(dir, sizeof dir, "%s", path);
  unlink(path);
  *strrchr(dir, '/') = 0;
  rmdir(dir);
}

/* A preset written as GGUF and read back is the same model: the same
 * logits, bit for bit, step by step (weights, config and tokenizer). */
Test(llama, a_preset_exported_to_gguf_loads_back_as_the_same_model, .timeout = 300) {
  char path[256];
  tmp_gguf(path, sizeof path);
  tgc_llama_model a, b;
  cr_assert_eq(tgc_llama_load_preset("tiny", TGC_W_Q8_0, 11, &a), TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(tgc_llama_export(&a, path), TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(tgc_llama_load(path, -1, &b, NULL), TGC_OK, "%s", tgc_last_error());
  cr_expect_eq(memcmp(&a.w.cfg, &b.w.cfg, offsetof(tgc_llama_config, rope_base)), 0, "the shapes");
  cr_expect_eq(b.w.layers[1].w_up.type, TGC_W_Q8_0);
  cr_expect_eq(tgc_tok_n_vocab(b.tok), tgc_tok_n_vocab(a.tok));
  int32_t ia[64], ib[64];
  int na = tgc_tok_encode(a.tok, "Hello, world", 12, true, false, ia, 64);
  int nb = tgc_tok_encode(b.tok, "Hello, world", 12, true, false, ib, 64);
  cr_assert(na == nb && na > 0 && !memcmp(ia, ib, sizeof *ia * (size_t)na), "the tokenizer");
  int V = a.w.cfg.vocab;
  tgc_ctx *ca = tgc_ctx_new(), *cb = tgc_ctx_new();
  tgc_llama *ma = tgc_llama_new(ca, &a.w, NULL), *mb = tgc_llama_new(cb, &b.w, NULL);
  cr_assert(ma && mb, "%s", tgc_last_error());
  float *la = malloc(sizeof *la * (size_t)V), *lb = malloc(sizeof *lb * (size_t)V);
  int32_t ta = 1, tb = 1;
  for (int pos = 0; pos < 8; pos++) {
    cr_assert_eq(tgc_llama_eval(ma, &ta, 1, pos, la, &ta), TGC_OK, "%s", tgc_last_error());
    cr_assert_eq(tgc_llama_eval(mb, &tb, 1, pos, lb, &tb), TGC_OK, "%s", tgc_last_error());
    cr_assert_eq(memcmp(la, lb, sizeof *la * (size_t)V), 0, "step %d: logits differ", pos);
    cr_assert_eq(ta, tb);
  }
  free(la);
  free(lb);
  tgc_llama_free(ma);
  tgc_llama_free(mb);
  tgc_ctx_free(ca);
  tgc_ctx_free(cb);
  /* and converted at load: f32 -> q4_0 */
  tgc_llama_model f, q;
  cr_assert_eq(tgc_llama_load_preset("tiny", TGC_W_F32, 11, &f), TGC_OK);
  cr_assert_eq(tgc_llama_export(&f, path), TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(tgc_llama_load(path, TGC_W_Q4_0, &q, NULL), TGC_OK, "%s", tgc_last_error());
  cr_expect_eq(q.w.layers[0].wq.type, TGC_W_Q4_0);
  cr_expect_eq(q.w.layers[0].attn_norm.type, TGC_W_F32, "norms stay f32");
  tgc_llama_model_free(&q);
  tgc_llama_model_free(&f);
  tgc_llama_model_free(&a);
  tgc_llama_model_free(&b);
  rm_gguf(path);
}

/* Files that are GGUF but not a usable LLaMA: each error names the problem. */
Test(llama, bad_gguf_models_are_errors_that_name_the_problem) {
  char path[256];
  tmp_gguf(path, sizeof path);
  tgc_llama_model m;
  /* no llama.* keys at all */
  tgc_gguf_writer *g = tgc_gguf_writer_new();
  tgc_gguf_writer_add_str(g, "general.architecture", "llama");
  cr_assert_eq(tgc_gguf_writer_write(g, path), TGC_OK, "%s", tgc_last_error());
  tgc_gguf_writer_free(g);
  cr_expect_neq(tgc_llama_load(path, -1, &m, NULL), TGC_OK);
  cr_expect(strstr(tgc_last_error(), "llama.embedding_length"), "%s", tgc_last_error());
  /* another architecture */
  g = tgc_gguf_writer_new();
  tgc_gguf_writer_add_str(g, "general.architecture", "mamba");
  tgc_gguf_writer_write(g, path);
  tgc_gguf_writer_free(g);
  cr_expect_eq(tgc_llama_load(path, -1, &m, NULL), TGC_ERR_UNSUPPORTED);
  cr_expect(strstr(tgc_last_error(), "mamba"), "%s", tgc_last_error());
  /* a tensor whose shape disagrees with the metadata: dim says 64, wq is 64x32 */
  tgc_llama_model p;
  cr_assert_eq(tgc_llama_load_preset("tiny", TGC_W_F32, 1, &p), TGC_OK);
  p.w.layers[1].wq.rows = 32;
  cr_assert_eq(tgc_llama_export(&p, path), TGC_OK, "%s", tgc_last_error());
  cr_expect_eq(tgc_llama_load(path, -1, &m, NULL), TGC_ERR_SHAPE);
  cr_expect(strstr(tgc_last_error(), "blk.1.attn_q.weight"), "%s", tgc_last_error());
  p.w.layers[1].wq.rows = 64;
  /* nf4 has no GGUF type */
  tgc_llama_model n;
  cr_assert_eq(tgc_llama_load_preset("tiny", TGC_W_NF4, 1, &n), TGC_OK, "%s", tgc_last_error());
  cr_expect_eq(tgc_llama_export(&n, path), TGC_ERR_UNSUPPORTED);
  cr_expect(strstr(tgc_last_error(), "nf4"), "%s", tgc_last_error());
  /* a truncated file: the reader's error */
  cr_assert_eq(tgc_llama_export(&p, path), TGC_OK);
  FILE *f = fopen(path, "r+");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fclose(f);
  cr_assert_eq(truncate(path, size / 2), 0);
  cr_expect_neq(tgc_llama_load(path, -1, &m, NULL), TGC_OK);
  cr_expect(strstr(tgc_last_error(), "m.gguf"), "%s", tgc_last_error());
  /* converting an already quantized file */
  tgc_llama_model q8;
  cr_assert_eq(tgc_llama_load_preset("tiny", TGC_W_Q8_0, 1, &q8), TGC_OK);
  cr_assert_eq(tgc_llama_export(&q8, path), TGC_OK);
  cr_expect_eq(tgc_llama_load(path, TGC_W_Q4_0, &m, NULL), TGC_ERR_UNSUPPORTED);
  cr_expect(strstr(tgc_last_error(), "already q8_0"), "%s", tgc_last_error());
  tgc_llama_model_free(&q8);
  tgc_llama_model_free(&n);
  tgc_llama_model_free(&p);
  rm_gguf(path);
}
