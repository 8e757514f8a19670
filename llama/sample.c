/* sample.c - drawing the next token from logits.
 *
 * Greedy when the temperature is <= 0 (the first largest logit, as the
 * device argmax picks).  Otherwise softmax(logits / temp) restricted to the
 * top_k most likely tokens and then to the smallest set whose probability
 * reaches top_p, drawn with a seeded generator so a run is reproducible.
 * Only tokens within e^-40 of the most likely one are sorted: the rest
 * cannot matter, and a 128k vocabulary is not sorted per token.
 */
#include "llama.h"
#include "tgc_internal.h"

#include <math.h>

typedef struct cand {
  float logit;
  int32_t id;
} cand;

static int by_logit(const void *a, const void *b) {
  const cand *x = a, *y = b;
  if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
  return (x->id > y->id) - (x->id < y->id);
}

static double uniform01(uint64_t *s) { return (double)(tgc_splitmix64(s) >> 11) / 9007199254740992.0; }

int32_t tgc_sample(tgc_sampler *s, const float *logits, int n) {
  int32_t best = 0;
  for (int i = 1; i < n; i++)
    if (logits[i] > logits[best]) best = i;
  if (!s || s->temp <= 0 || n < 2) return best;
  float floor = logits[best] - 40.0f * (float)s->temp;
  cand *c = malloc(sizeof *c * (size_t)n);
  if (!c) return best;
  int m = 0;
  for (int i = 0; i < n; i++)
    if (logits[i] >= floor) c[m++] = (cand){logits[i], i};
  if (m == 0) { /* logits[best] is NaN: nothing compares >= floor */
    free(c);
    return best;
  }
  qsort(c, (size_t)m, sizeof *c, by_logit);
  if (s->top_k > 0 && s->top_k < m) m = s->top_k;
  double *p = malloc(sizeof *p * (size_t)m), z = 0;
  if (!p) {
    free(c);
    return best;
  }
  for (int i = 0; i < m; i++) z += p[i] = exp(((double)c[i].logit - c[0].logit) / s->temp);
  if (s->top_p > 0 && s->top_p < 1) { /* the smallest prefix reaching top_p */
    double acc = 0;
    for (int i = 0; i < m; i++)
      if ((acc += p[i] / z) >= s->top_p) {
        m = i + 1;
        break;
      }
    z = 0;
    for (int i = 0; i < m; i++) z += p[i];
  }
  double r = uniform01(&s->state) * z;
  int32_t pick = c[m - 1].id;
  for (int i = 0; i < m; i++)
    if ((r -= p[i]) < 0) {
      pick = c[i].id;
      break;
    }
  free(p);
  free(c);
  return pick;
}
