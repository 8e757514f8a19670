/* test_sample.c - drawing tokens from logits (tgc_sample, llama/sample.c).
 *
 * The deterministic cases (greedy, top_k = 1, a tiny top_p, a NULL
 * sampler) must give the argmax, the first of ties as the device argmax
 * does.  The random cases draw 40000 tokens from four logits whose
 * softmax is proportional to 1:2:3:4 and compare the frequencies with the
 * probabilities worked out in f64 beside each test: the standard error of
 * a frequency near 0.4 over 40000 draws is sqrt(0.24 / 40000) = 0.0025,
 * so 0.01 is four of them.  The seed is fixed, so a pass is reproducible
 * and not a matter of luck on each run.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../llama/llama.h"

TestSuite(sample);

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define DRAWS 40000
#define TOL 0.01

/* softmax(L) is proportional to exp(ln(k + 1)) = 1, 2, 3, 4. */
static const float L[4] = {0.0f, 0.69314718f, 1.09861229f, 1.38629436f};

/* Draws DRAWS tokens from logits[0..n) and checks their frequencies
 * against want[0..n) (probabilities summing to 1). */
static void expect_freqs(tgc_sampler s, const float *logits, int n, const double *want, const char *what) {
  int counts[16] = {0};
  cr_assert_leq(n, COUNT(counts));
  for (int i = 0; i < DRAWS; i++) {
    int32_t t = tgc_sample(&s, logits, n);
    cr_assert(t >= 0 && t < n, "%s: draw %d gave token %d of %d", what, i, (int)t, n);
    counts[t]++;
  }
  for (int k = 0; k < n; k++) {
    double f = (double)counts[k] / DRAWS;
    cr_expect(fabs(f - want[k]) <= TOL, "%s: token %d drawn with frequency %.4f, want %.4f", what, k, f, want[k]);
  }
}

/* ---- the argmax cases ----------------------------------------------------- */

/* Logits with a tie for the largest at ids 1 and 2: the argmax is 1. */
static const float TIE[5] = {1.0f, 5.0f, 5.0f, 2.0f, -3.0f};

Test(sample, greedy_is_first_argmax) {
  /* temp 0 and any negative temperature are greedy, whatever else is set;
   * greedy does not consume the generator's state. */
  const double temps[] = {0.0, -1.0, -INFINITY};
  for (int i = 0; i < COUNT(temps); i++) {
    tgc_sampler s = {.temp = temps[i], .top_k = 3, .top_p = 0.5, .state = 99};
    for (int j = 0; j < 10; j++) cr_expect_eq(tgc_sample(&s, TIE, COUNT(TIE)), 1, "temp %g", temps[i]);
    cr_expect_eq(s.state, 99u, "greedy advanced the generator");
  }
  tgc_sampler s = {.temp = 0, .top_p = 1, .state = 1};
  cr_expect_eq(tgc_sample(&s, L, 4), 3);
}

Test(sample, null_sampler_is_argmax) {
  cr_expect_eq(tgc_sample(NULL, TIE, COUNT(TIE)), 1);
  cr_expect_eq(tgc_sample(NULL, L, 4), 3);
}

Test(sample, one_token_vocabulary) {
  /* Nothing to choose from: token 0 at any setting. */
  const float one[1] = {-2.0f};
  tgc_sampler s = {.temp = 1, .top_p = 1, .state = 5};
  cr_expect_eq(tgc_sample(&s, one, 1), 0);
}

Test(sample, top_k_one_is_argmax) {
  /* top_k = 1 keeps only the most likely token (the sort breaks ties by
   * id, so the first of ties), at a low, a normal and a huge temperature. */
  const double temps[] = {0.01, 1.0, 1000.0};
  for (int i = 0; i < COUNT(temps); i++) {
    tgc_sampler s = {.temp = temps[i], .top_k = 1, .top_p = 1, .state = 7};
    for (int j = 0; j < 200; j++) cr_assert_eq(tgc_sample(&s, TIE, COUNT(TIE)), 1, "temp %g draw %d", temps[i], j);
  }
}

Test(sample, tiny_top_p_is_argmax) {
  /* The first token alone has probability >= 1e-6, so the smallest set
   * reaching top_p is that token: at temp 1 on TIE its probability is
   * e^5 / (e + 2e^5 + e^2 + e^-3) = 0.48; on L it is 0.4. */
  tgc_sampler s = {.temp = 1, .top_p = 1e-6, .state = 11};
  for (int j = 0; j < 200; j++) {
    cr_assert_eq(tgc_sample(&s, TIE, COUNT(TIE)), 1, "draw %d", j);
    cr_assert_eq(tgc_sample(&s, L, 4), 3, "draw %d", j);
  }
}

/* ---- the generator -------------------------------------------------------- */

/* 64 draws from 16 tokens of logits 0, 0.1, ..., 1.5 (probabilities from
 * 0.04 to 0.11: no token dominates). */
static void draw64(uint64_t seed, int32_t out[64]) {
  float flat[16];
  for (int i = 0; i < 16; i++) flat[i] = 0.1f * (float)i;
  tgc_sampler s = {.temp = 1, .top_p = 1, .state = seed};
  for (int i = 0; i < 64; i++) out[i] = tgc_sample(&s, flat, 16);
}

Test(sample, seed_reproducible) {
  int32_t a[64], b[64], c[64];
  draw64(1234, a);
  draw64(1234, b);
  draw64(1235, c);
  cr_expect(!memcmp(a, b, sizeof a), "the same seed gave two different sequences");
  /* Two independent sequences agree at a position with probability
   * sum p_i^2 ~ 0.07, so all 64 agree with probability ~ 1e-74. */
  int same = 0;
  for (int i = 0; i < 64; i++) same += a[i] == c[i];
  cr_expect_lt(same, 64, "seeds 1234 and 1235 gave the same 64 draws");
  /* Seed 0 is a seed like any other (the generator adds a constant first). */
  int32_t z[64];
  draw64(0, z);
  int distinct = 0;
  for (int i = 1; i < 64; i++) distinct += z[i] != z[0];
  cr_expect_gt(distinct, 0, "seed 0 gave a constant sequence");
}

/* ---- frequencies ---------------------------------------------------------- */

Test(sample, temp_one_frequencies) {
  /* softmax(L) = (1, 2, 3, 4) / 10. */
  const double want[4] = {0.1, 0.2, 0.3, 0.4};
  expect_freqs((tgc_sampler){.temp = 1, .top_p = 1, .state = 42}, L, 4, want, "temp 1");
}

Test(sample, temp_two_frequencies) {
  /* softmax(L / 2) is proportional to exp(ln(k) / 2) = sqrt(k), k = 1..4:
   * sqrt(1), sqrt(2), sqrt(3), sqrt(4) over their sum 6.146 = 0.163,
   * 0.230, 0.282, 0.325. */
  double want[4], z = 0;
  for (int k = 0; k < 4; k++) z += want[k] = sqrt(k + 1.0);
  for (int k = 0; k < 4; k++) want[k] /= z;
  expect_freqs((tgc_sampler){.temp = 2, .top_p = 1, .state = 43}, L, 4, want, "temp 2");
}

Test(sample, top_k_frequencies) {
  /* top_k = 2 keeps tokens 3 and 2 (weights 4 and 3), renormalised: 4/7
   * and 3/7; tokens 0 and 1 never appear. */
  const double want[4] = {0, 0, 3.0 / 7, 4.0 / 7};
  expect_freqs((tgc_sampler){.temp = 1, .top_k = 2, .top_p = 1, .state = 44}, L, 4, want, "top_k 2");
  /* top_k of the whole vocabulary or more is no restriction. */
  const double all[4] = {0.1, 0.2, 0.3, 0.4};
  expect_freqs((tgc_sampler){.temp = 1, .top_k = 4, .top_p = 1, .state = 45}, L, 4, all, "top_k 4");
  expect_freqs((tgc_sampler){.temp = 1, .top_k = 100, .top_p = 1, .state = 46}, L, 4, all, "top_k 100");
}

Test(sample, top_p_frequencies) {
  /* Sorted descending the probabilities are 0.4 (token 3), 0.3 (2), 0.2
   * (1), 0.1 (0); cumulative 0.4, 0.7, 0.9, 1.0.  top_p 0.65: 0.4 < 0.65,
   * 0.7 >= 0.65, so tokens 3 and 2, renormalised 4/7 and 3/7. */
  const double two[4] = {0, 0, 3.0 / 7, 4.0 / 7};
  expect_freqs((tgc_sampler){.temp = 1, .top_p = 0.65, .state = 47}, L, 4, two, "top_p 0.65");
  /* top_p 0.75: 0.7 < 0.75, 0.9 >= 0.75, so tokens 3, 2, 1 over 9: 4/9,
   * 3/9, 2/9. */
  const double three[4] = {0, 2.0 / 9, 3.0 / 9, 4.0 / 9};
  expect_freqs((tgc_sampler){.temp = 1, .top_p = 0.75, .state = 48}, L, 4, three, "top_p 0.75");
}

Test(sample, top_p_after_top_k) {
  /* top_p applies to the top_k tokens renormalised: top_k 2 leaves 4/7 =
   * 0.571 for token 3, which alone reaches top_p 0.5 (over the whole
   * vocabulary 0.4 would not, and token 2 would be drawn too). */
  tgc_sampler s = {.temp = 1, .top_k = 2, .top_p = 0.5, .state = 49};
  for (int i = 0; i < 2000; i++) cr_assert_eq(tgc_sample(&s, L, 4), 3, "draw %d", i);
}

/* ---- awkward logits ------------------------------------------------------- */

Test(sample, minus_infinity_never_drawn) {
  /* Masked tokens (-inf) have probability 0 at every temperature; the
   * three finite ones share it as 1 : e : e^2 at temp 1. */
  const float masked[7] = {-INFINITY, 0.0f, -INFINITY, 1.0f, -INFINITY, 2.0f, -INFINITY};
  const double temps[] = {0.5, 1.0, 100.0};
  for (int i = 0; i < COUNT(temps); i++) {
    tgc_sampler s = {.temp = temps[i], .top_p = 1, .state = 50 + (uint64_t)i};
    for (int j = 0; j < 5000; j++) {
      int32_t t = tgc_sample(&s, masked, COUNT(masked));
      cr_assert(t == 1 || t == 3 || t == 5, "temp %g draw %d: token %d has logit -inf", temps[i], j, (int)t);
    }
  }
  double want[7] = {0}, e = exp(1.0), z = 1 + e + e * e;
  want[1] = 1 / z, want[3] = e / z, want[5] = e * e / z;
  expect_freqs((tgc_sampler){.temp = 1, .top_p = 1, .state = 53}, masked, 7, want, "masked");
  /* -inf first: the argmax skips it too. */
  cr_expect_eq(tgc_sample(NULL, masked, COUNT(masked)), 5);
}

Test(sample, nan_first_logit_stays_in_range) {
  /* A NaN in logits[0] compares false with everything, so the argmax stays
   * at 0 and no logit passes the cut-off: the draw must still be a token
   * of the vocabulary (it used to read before the candidate array). */
  const float bad[3] = {NAN, 1.0f, 2.0f};
  tgc_sampler s = {.temp = 1, .top_p = 1, .state = 60};
  for (int j = 0; j < 10; j++) {
    int32_t t = tgc_sample(&s, bad, 3);
    cr_assert(t >= 0 && t < 3, "token %d", (int)t);
  }
}

Test(sample, llama3_vocabulary) {
  /* 128256 logits in [0, 1) and one of 60 at id 100000: at temp 1 every
   * other token is below e^-59 of it, under the e^-40 cut-off, so it is
   * always drawn, and only one candidate is sorted per draw. */
  enum { V = 128256, HOT = 100000 };
  float *x = malloc(sizeof *x * V);
  cr_assert_not_null(x);
  for (int i = 0; i < V; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f;
  x[HOT] = 60.0f;
  tgc_sampler s = {.temp = 1, .top_k = 40, .top_p = 0.9, .state = 61};
  for (int j = 0; j < 200; j++) cr_assert_eq(tgc_sample(&s, x, V), HOT, "draw %d", j);
  /* Without a dominant token all 128256 are candidates: still a token of
   * the vocabulary, and top_k 1 is still the argmax (the largest of the
   * [0, 1) values, 0.999, first at the smallest i with i * 7919 % 1000 ==
   * 999: i = 321, since 321 * 7919 = 2541999 and 919 i = 999 (mod 1000)
   * has one solution below 1000, 919 being odd and not a multiple of 5). */
  x[HOT] = 0.5f;
  int32_t first = 0;
  for (int i = 1; i < V; i++)
    if (x[i] > x[first]) first = i;
  cr_expect_eq(first, 321);
  tgc_sampler k1 = {.temp = 1, .top_k = 1, .top_p = 1, .state = 62};
  tgc_sampler all = {.temp = 1, .top_p = 1, .state = 63};
  for (int j = 0; j < 5; j++) {
    cr_assert_eq(tgc_sample(&k1, x, V), first);
    int32_t t = tgc_sample(&all, x, V);
    cr_assert(t >= 0 && t < V, "token %d", (int)t);
  }
  free(x);
}
