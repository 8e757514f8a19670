/* bw.c - the read-bandwidth baseline: a buffer as large as the weights one
 * decode step reads, summed by as many threads as tgc uses, with the
 * vector loops of bench/baseline.h (the yardstick of bench/llama.c and
 * bench/RESULTS.md).  A decode step is bound by reading its weights, so
 * weight bytes per second over this figure says how close a framework
 * comes to the machine's limit.  Meaningful on the CPU device only.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "../bench.h"
#include "../baseline.h"
#include "tgc_bench.h"

struct tb_bw {
  base_pool *bp;
  float *buf;
  size_t nfloats;
};

tb_bw *tb_bw_new(double bytes, int threads) {
  tb_bw *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->nfloats = (size_t)(bytes / 4) / 64 * 64;
  if (b->nfloats < 64) b->nfloats = 64;
  if (!(b->buf = malloc(b->nfloats * sizeof *b->buf))) {
    free(b);
    return NULL;
  }
  for (size_t i = 0; i < b->nfloats; i++) b->buf[i] = (float)(i & 7); /* touched: no page faults in the timing */
  b->bp = base_pool_new(threads < 1 ? 1 : threads > 64 ? 64 : threads);
  return b;
}

double tb_bw_once(tb_bw *b) { return baseline_once(b->bp, b->buf, b->nfloats); }

double tb_bw_bytes(const tb_bw *b) { return (double)b->nfloats * sizeof *b->buf; }

void tb_bw_free(tb_bw *b) {
  if (!b) return;
  base_pool_free(b->bp);
  free(b->buf);
  free(b);
}
