/* test_llama_ref.c - checks the f64 LLaMA reference (llama_ref.c) on a
 * hand-made one-layer model (dim 4, vocab 5) against code of a different
 * shape: no KV cache (each position's keys recomputed from its token),
 * RoPE as complex multiplication, softmax without the max, SiLU through
 * tanh, plus properties that need no model at all (zeroed blocks leave the
 * normed embedding, identical keys average the values, a tied output is
 * the embedding, quantized weights are read through the callback).
 */
#include <complex.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "llama_ref.h"

TestSuite(llama_ref);

#define MAXD 8 /* widest model: dim and ffn_dim */
#define VOCAB 5
#define MAXPOS 8

/* A one-layer model whose weights live in the struct, row-major with the
 * model's own widths (W(a, r, c, cols)); w points into it. */
typedef struct tiny {
  int dim, ffn;
  float emb[VOCAB * MAXD], attn_norm[MAXD], wq[MAXD * MAXD], wk[MAXD * MAXD], wv[MAXD * MAXD];
  float wo[MAXD * MAXD], ffn_norm[MAXD], gate[MAXD * MAXD], up[MAXD * MAXD], down[MAXD * MAXD];
  float out_norm[MAXD], out[VOCAB * MAXD], rope_freqs[MAXD / 2];
  tgc_llama_layer layer;
  tgc_llama_weights w;
} tiny;
#define W(a, r, c, cols) ((double)(a)[(r) * (cols) + (c)])

/* Small multiples of 1/8, exact in f32 and bf16; seeds 0..12 give
 * different matrices (31 is a unit mod 13). */
static float val(int seed, int r, int c) { return (float)((seed * 31 + r * 7 + c * 3) % 13 - 6) / 8.0f; }

static void fill(float *a, int rows, int cols, int seed, float add) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) a[r * cols + c] = add + val(seed, r, c);
}

static tgc_llama_weight f32(const void *data, int64_t rows, int64_t cols) {
  return (tgc_llama_weight){.type = TGC_W_F32, .rows = rows, .cols = cols, .data = data};
}

/* A model of width dim (ffn_dim dim + 2, so that no matrix is square by
 * accident) with n_heads / n_kv_heads query / kv heads. */
static void tiny_init(tiny *t, int dim, int n_heads, int n_kv_heads, double rope_base, bool with_freqs) {
  memset(t, 0, sizeof *t);
  int hd = dim / n_heads, kv_dim = n_kv_heads * hd, ffn = dim + 2;
  t->dim = dim;
  t->ffn = ffn;
  fill(t->emb, VOCAB, dim, 1, 0);
  fill(t->attn_norm, 1, dim, 2, 1);
  fill(t->wq, dim, dim, 3, 0);
  fill(t->wk, kv_dim, dim, 4, 0);
  fill(t->wv, kv_dim, dim, 5, 0);
  fill(t->wo, dim, dim, 6, 0);
  fill(t->ffn_norm, 1, dim, 7, 1);
  fill(t->gate, ffn, dim, 8, 0);
  fill(t->up, ffn, dim, 9, 0);
  fill(t->down, dim, ffn, 10, 0);
  fill(t->out_norm, 1, dim, 11, 1);
  fill(t->out, VOCAB, dim, 12, 0);
  for (int i = 0; i < hd / 2; i++) t->rope_freqs[i] = (float)(2 + 3 * i);
  t->layer = (tgc_llama_layer){
      .attn_norm = f32(t->attn_norm, 1, dim), .wq = f32(t->wq, dim, dim), .wk = f32(t->wk, kv_dim, dim),
      .wv = f32(t->wv, kv_dim, dim),          .wo = f32(t->wo, dim, dim), .ffn_norm = f32(t->ffn_norm, 1, dim),
      .w_gate = f32(t->gate, ffn, dim),       .w_down = f32(t->down, dim, ffn), .w_up = f32(t->up, ffn, dim)};
  t->w = (tgc_llama_weights){
      .cfg = {.dim = dim, .n_layers = 1, .n_heads = n_heads, .n_kv_heads = n_kv_heads, .ffn_dim = ffn,
              .vocab = VOCAB, .max_context = MAXPOS, .rope_base = rope_base, .norm_eps = 1e-5},
      .tok_emb = f32(t->emb, VOCAB, dim),
      .layers = &t->layer,
      .out_norm = f32(t->out_norm, 1, dim),
      .output = f32(t->out, VOCAB, dim),
      .rope_freqs = with_freqs ? t->rope_freqs : NULL};
}

/* ---- the same model written differently ------------------------------------ */

/* norm(x) * w: x / sqrt(ss / n + eps) = sqrt(n) x / sqrt(ss + n eps). */
static void hand_norm(double *out, const double *x, const float *w, int n, double eps) {
  double ss = 0;
  for (int i = n - 1; i >= 0; i--) ss += x[i] * x[i];
  for (int i = 0; i < n; i++) out[i] = sqrt(n) * x[i] / sqrt(ss + n * eps) * w[i];
}

/* Row r of a [rows, cols] matrix a times x. */
static double dot_row(const float *a, int r, int cols, const double *x) {
  double s = 0;
  for (int c = 0; c < cols; c++) s += W(a, r, c, cols) * x[c];
  return s;
}

/* Pair i of a head turns by pos * theta_i: RoPE as z * e^(i pos theta). */
static double complex turn(const tiny *t, double re, double im, int i, int pairs, int pos) {
  double theta = pow(t->w.cfg.rope_base, -(double)i / pairs);
  if (t->w.rope_freqs) theta /= t->w.rope_freqs[i];
  return (re + im * I) * cexp(I * (pos * theta));
}

/* The last position's logits after tokens toks[0..n): one layer, so the
 * keys and values of position p come from toks[p] alone. */
static void hand_logits(const tiny *t, const int *toks, int n, double *logits) {
  const tgc_llama_config *c = &t->w.cfg;
  int dim = t->dim, hd = dim / c->n_heads, pairs = hd / 2, rep = c->n_heads / c->n_kv_heads, last = n - 1;
  double complex k[MAXPOS][MAXD / 2], q[MAXD / 2]; /* [pos][kv head * pairs + i], [head * pairs + i] */
  double v[MAXPOS][MAXD], x[MAXD], h[MAXD];
  for (int p = 0; p < n; p++) {
    for (int i = 0; i < dim; i++) x[i] = t->emb[toks[p] * dim + i];
    hand_norm(h, x, t->attn_norm, dim, c->norm_eps);
    for (int r = 0; r < c->n_kv_heads * hd; r++) v[p][r] = dot_row(t->wv, r, dim, h);
    for (int r = 0; r < c->n_kv_heads * pairs; r++)
      k[p][r] = turn(t, dot_row(t->wk, 2 * r, dim, h), dot_row(t->wk, 2 * r + 1, dim, h), r % pairs, pairs, p);
  }
  for (int r = 0; r < c->n_heads * pairs; r++)
    q[r] = turn(t, dot_row(t->wq, 2 * r, dim, h), dot_row(t->wq, 2 * r + 1, dim, h), r % pairs, pairs, last);
  double att[MAXD] = {0};
  for (int head = 0; head < c->n_heads; head++) {
    int g = head / rep;
    double e[MAXPOS], sum = 0; /* exp(score): the scores are small */
    for (int j = 0; j < n; j++) {
      double dot = 0;
      for (int i = 0; i < pairs; i++) dot += creal(q[head * pairs + i] * conj(k[j][g * pairs + i]));
      sum += e[j] = exp(dot / sqrt(hd));
    }
    for (int j = 0; j < n; j++)
      for (int i = 0; i < hd; i++) att[head * hd + i] += e[j] / sum * v[j][g * hd + i];
  }
  for (int r = 0; r < dim; r++) x[r] += dot_row(t->wo, r, dim, att);
  hand_norm(h, x, t->ffn_norm, dim, c->norm_eps);
  double f[MAXD + 2];
  for (int r = 0; r < t->ffn; r++) {
    double g = dot_row(t->gate, r, dim, h), u = dot_row(t->up, r, dim, h);
    f[r] = 0.5 * g * (1 + tanh(g / 2)) * u; /* silu(g) = g sigmoid(g) */
  }
  for (int r = 0; r < dim; r++) x[r] += dot_row(t->down, r, t->ffn, f);
  hand_norm(h, x, t->out_norm, dim, c->norm_eps);
  for (int r = 0; r < VOCAB; r++) logits[r] = dot_row(c->tied ? t->emb : t->out, r, dim, h);
}

static void expect_close(const double *got, const double *want, int n, double tol, const char *what, int pos) {
  for (int i = 0; i < n; i++)
    cr_expect(fabs(got[i] - want[i]) <= tol * fmax(1, fabs(want[i])), "%s, pos %d, logit %d: %.17g, expected %.17g",
              what, pos, i, got[i], want[i]);
}

/* Runs toks through the reference and compares every step with hand_logits. */
static void check_against_hand(const tiny *t, const int *toks, int n, const char *what) {
  tgc_ref_model *m = tgc_ref_new(&t->w, NULL);
  cr_assert_not_null(m, "%s", what);
  double got[VOCAB], want[VOCAB];
  for (int p = 0; p < n; p++) {
    tgc_ref_step(m, toks[p], p, got);
    hand_logits(t, toks, p + 1, want);
    expect_close(got, want, VOCAB, 1e-12, what, p);
  }
  tgc_ref_free(m);
}

static const int toks[] = {3, 1, 4, 0, 2, 2};
#define NTOKS ((int)(sizeof toks / sizeof toks[0]))

Test(llama_ref, matches_hand_computation) {
  /* GQA (dim 8: 4 heads on 2 kv heads tells h / rep from h % n_kv_heads),
   * MHA, one head of 4 (two RoPE pairs), each with and without rope_freqs. */
  static const struct {
    int dim, heads, kv;
  } shapes[] = {{4, 2, 1}, {4, 2, 2}, {4, 1, 1}, {8, 4, 2}, {8, 2, 1}};
  tiny t;
  for (int s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++)
    for (int freqs = 0; freqs < 2; freqs++) {
      char what[64];
      snprintf(what, sizeof what, "dim %d, %d heads / %d kv heads%s", shapes[s].dim, shapes[s].heads,
               shapes[s].kv, freqs ? ", rope_freqs" : "");
      tiny_init(&t, shapes[s].dim, shapes[s].heads, shapes[s].kv, 100.0, freqs);
      check_against_hand(&t, toks, NTOKS, what);
    }
}

Test(llama_ref, rope_base_changes_only_later_positions) {
  /* One head of 4 (two pairs): the second pair turns at base^(-1/2), so
   * the base shows from pos 1 on and not at pos 0 (RoPE is the identity). */
  tiny a, b;
  tiny_init(&a, 4, 1, 1, 100.0, false);
  tiny_init(&b, 4, 1, 1, 10000.0, false);
  tgc_ref_model *ma = tgc_ref_new(&a.w, NULL), *mb = tgc_ref_new(&b.w, NULL);
  cr_assert(ma && mb);
  double la[VOCAB], lb[VOCAB];
  tgc_ref_step(ma, toks[0], 0, la);
  tgc_ref_step(mb, toks[0], 0, lb);
  cr_expect(memcmp(la, lb, sizeof la) == 0, "pos 0 depends on rope_base");
  tgc_ref_step(ma, toks[1], 1, la);
  tgc_ref_step(mb, toks[1], 1, lb);
  cr_expect(memcmp(la, lb, sizeof la) != 0, "pos 1 does not depend on rope_base");
  tgc_ref_free(ma);
  tgc_ref_free(mb);
}

Test(llama_ref, zeroed_blocks_leave_the_normed_embedding) {
  /* Wo = 0 and W_down = 0: the blocks add nothing, so logits_t =
   * sum_i out[t][i] emb[tok][i] out_norm[i] / rms(emb[tok]). */
  tiny t;
  tiny_init(&t, 4, 2, 1, 10000.0, false);
  memset(t.wo, 0, sizeof t.wo);
  memset(t.down, 0, sizeof t.down);
  tgc_ref_model *m = tgc_ref_new(&t.w, NULL);
  cr_assert_not_null(m);
  for (int p = 0; p < NTOKS; p++) {
    const float *e = &t.emb[toks[p] * 4];
    double ms = (e[0] * e[0] + e[1] * e[1] + e[2] * e[2] + e[3] * e[3]) / 4.0, want[VOCAB], got[VOCAB];
    for (int r = 0; r < VOCAB; r++) {
      want[r] = 0;
      for (int i = 0; i < 4; i++) want[r] += W(t.out, r, i, 4) * (e[i] / sqrt(ms + 1e-5) * t.out_norm[i]);
    }
    tgc_ref_step(m, toks[p], p, got);
    expect_close(got, want, VOCAB, 1e-14, "zeroed blocks", p);
    cr_expect_eq(tgc_ref_argmax(got, VOCAB), tgc_ref_argmax(want, VOCAB));
  }
  tgc_ref_free(m);
}

Test(llama_ref, identical_keys_average_the_values) {
  /* Wk = 0: every score is 0, the softmax is uniform and each head's output
   * is the mean of the values so far; Wo = I and W_down = 0 then leave
   * x = emb[tok] + [mean v, mean v] (both heads share the one kv head). */
  tiny t;
  tiny_init(&t, 4, 2, 1, 10000.0, false);
  memset(t.wk, 0, sizeof t.wk);
  memset(t.wo, 0, sizeof t.wo);
  memset(t.down, 0, sizeof t.down);
  for (int i = 0; i < 4; i++) t.wo[i * 4 + i] = 1;
  tgc_ref_model *m = tgc_ref_new(&t.w, NULL);
  cr_assert_not_null(m);
  double vsum[2] = {0}, x[4], h[4], want[VOCAB], got[VOCAB];
  for (int p = 0; p < NTOKS; p++) {
    for (int i = 0; i < 4; i++) x[i] = t.emb[toks[p] * 4 + i];
    hand_norm(h, x, t.attn_norm, 4, 1e-5);
    for (int r = 0; r < 2; r++) vsum[r] += dot_row(t.wv, r, 4, h);
    for (int i = 0; i < 4; i++) x[i] += vsum[i % 2] / (p + 1);
    hand_norm(h, x, t.out_norm, 4, 1e-5);
    for (int r = 0; r < VOCAB; r++) want[r] = dot_row(t.out, r, 4, h);
    tgc_ref_step(m, toks[p], p, got);
    expect_close(got, want, VOCAB, 1e-13, "identical keys", p);
  }
  tgc_ref_free(m);
}

Test(llama_ref, tied_output_is_the_embedding) {
  tiny t;
  tiny_init(&t, 4, 2, 1, 10000.0, true);
  t.w.cfg.tied = true;
  t.w.output = t.w.tok_emb;
  check_against_hand(&t, toks, NTOKS, "tied"); /* hand_logits reads emb when tied */
}

Test(llama_ref, restarting_at_pos_0_forgets_the_sequence) {
  tiny t;
  tiny_init(&t, 4, 2, 1, 10000.0, false);
  tgc_ref_model *m = tgc_ref_new(&t.w, NULL);
  cr_assert_not_null(m);
  double first[2][VOCAB], again[2][VOCAB], other[VOCAB];
  for (int p = 0; p < 2; p++) tgc_ref_step(m, toks[p], p, first[p]);
  tgc_ref_step(m, toks[2], 2, other);
  for (int p = 0; p < 2; p++) tgc_ref_step(m, toks[p], p, again[p]);
  cr_expect(memcmp(first, again, sizeof first) == 0);
  tgc_ref_free(m);
}

/* ---- weights through the callback ------------------------------------------ */

static int dq_calls;
static int64_t dq_elems;

/* The test's "quantized" type: bf16, the high half of an f32. */
static void dq_bf16(int type, const void *src, int64_t rows, int64_t cols, float *dst) {
  cr_assert_eq(type, TGC_W_BF16);
  const uint16_t *s = src;
  for (int64_t i = 0; i < rows * cols; i++) {
    uint32_t bits = (uint32_t)s[i] << 16;
    memcpy(&dst[i], &bits, sizeof bits);
  }
  dq_calls++;
  dq_elems += rows * cols;
}

static uint16_t bf16_store[16][MAXD * MAXD];
static int nstore;

static void to_bf16(tgc_llama_weight *w) {
  const float *f = w->data;
  uint16_t *d = bf16_store[nstore++];
  for (int64_t i = 0; i < w->rows * w->cols; i++) {
    uint32_t bits;
    memcpy(&bits, &f[i], sizeof bits);
    d[i] = (uint16_t)(bits >> 16); /* exact: the values are multiples of 1/8 */
  }
  w->type = TGC_W_BF16;
  w->data = d;
}

Test(llama_ref, non_f32_weights_go_through_the_callback) {
  tiny t, q;
  tiny_init(&t, 4, 2, 1, 10000.0, false);
  tiny_init(&q, 4, 2, 1, 10000.0, false);
  nstore = 0;
  tgc_llama_weight *mats[] = {&q.w.tok_emb, &q.layer.wq,     &q.layer.wk,   &q.layer.wv,    &q.layer.wo,
                              &q.layer.w_gate, &q.layer.w_up, &q.layer.w_down, &q.w.output};
  int64_t elems = 0;
  for (int i = 0; i < 9; i++) {
    to_bf16(mats[i]);
    elems += mats[i]->rows * mats[i]->cols;
  }
  cr_expect_null(tgc_ref_new(&q.w, NULL), "bf16 weights without a dequantize function");
  dq_calls = 0;
  dq_elems = 0;
  tgc_ref_model *mt = tgc_ref_new(&t.w, NULL), *mq = tgc_ref_new(&q.w, dq_bf16);
  cr_assert(mt && mq);
  cr_expect_eq(dq_calls, 9);
  cr_expect_eq(dq_elems, elems);
  double lt[VOCAB], lq[VOCAB];
  for (int p = 0; p < NTOKS; p++) {
    tgc_ref_step(mt, toks[p], p, lt);
    tgc_ref_step(mq, toks[p], p, lq);
    cr_expect(memcmp(lt, lq, sizeof lt) == 0, "pos %d: bf16 weights give other logits", p);
  }
  tgc_ref_free(mt);
  tgc_ref_free(mq);

  /* Tied: output shares tok_emb's data and is converted once. */
  q.w.cfg.tied = true;
  q.w.output = q.w.tok_emb;
  dq_calls = 0;
  mq = tgc_ref_new(&q.w, dq_bf16);
  cr_assert_not_null(mq);
  cr_expect_eq(dq_calls, 8);
  tgc_ref_free(mq);
}

Test(llama_ref, bad_weights_and_config_give_null) {
  tiny t;
  tiny_init(&t, 4, 2, 1, 10000.0, false);
  t.layer.wk.rows = 4; /* one kv head of 2: should be 2 */
  cr_expect_null(tgc_ref_new(&t.w, NULL));
  tiny_init(&t, 4, 2, 1, 10000.0, false);
  t.w.out_norm.data = NULL;
  cr_expect_null(tgc_ref_new(&t.w, NULL));
  tiny_init(&t, 4, 2, 1, 10000.0, false);
  t.w.cfg.n_kv_heads = 3; /* does not divide n_heads */
  cr_expect_null(tgc_ref_new(&t.w, NULL));
  tgc_ref_free(NULL);
}

Test(llama_ref, argmax_takes_the_first_of_ties) {
  cr_expect_eq(tgc_ref_argmax((const double[]){1, 3, 3, -2}, 4), 1);
  cr_expect_eq(tgc_ref_argmax((const double[]){-5}, 1), 0);
  cr_expect_eq(tgc_ref_argmax((const double[]){-1, -0.5, -7}, 3), 1);
}
