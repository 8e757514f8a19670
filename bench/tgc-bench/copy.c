/* copy.c - the device copy baseline, the GPU's counterpart of bw.c: a
 * device-to-device copy (cuMemcpyDtoDAsync) of a buffer as large as the
 * weights one decode step reads, timed by CUDA events.  The driver, the
 * copy and the timing are gpu_check's (bench/gpu/cudadrv.c), so both
 * programs measure the same yardstick the same way.
 *
 * A copy reads its buffer and writes as many bytes, so its GB/s counts
 * read + written bytes / time, as bench/gpu_check.c's "r+w GB/s" does: the
 * bandwidth the device's memory actually sustains.  A decode step only
 * reads its weights; its weight GB/s over this figure is how close it comes
 * to that limit (gpu_check aims at 80% for f16 matvec).
 *
 * Each sample allocates its buffer pair, copies once untimed, times one
 * copy and frees the pair (time_copy), so between samples the baseline
 * holds no device memory that the frameworks' steps could miss.
 */
#include "tgc_bench.h"
#include "../gpu/cudadrv.h"

#include <stdlib.h>

struct tb_copy {
  gpu *g;           /* the driver, on the session's primary context */
  tgc_device *dev;  /* the session's; time_copy only uses it when g is NULL, never here */
  size_t bytes;     /* one buffer: the weight bytes a step reads */
};

/* The reason of the last tgc (or driver) failure into why, and the error
 * cleared, so that tgc's own later calls do not find it. */
static void take_error(char *why, size_t cap, const char *fallback) {
  const char *e = tgc_last_error();
  tb_fmt(why, cap, "%s", e && *e ? e : fallback);
  tgc_clear_error();
}

tb_copy *tb_copy_open(tgc_ctx *ctx, double bytes, char *why, size_t cap) {
  tb_copy *c = calloc(1, sizeof *c);
  if (!c) {
    tb_fmt(why, cap, "out of memory");
    return NULL;
  }
  c->dev = ctx->dev;
  c->bytes = bytes >= 1 ? (size_t)bytes : 1;
  if (!(c->g = gpu_open())) {
    take_error(why, cap, "the CUDA driver could not be opened");
    free(c);
    return NULL;
  }
  return c;
}

double tb_copy_gbs(tb_copy *c, char *why, size_t cap) {
  double s = time_copy(c->g, c->dev, c->bytes, 1, 1);
  if (s > 0) return 2.0 * (double)c->bytes / s / 1e9; /* read + written */
  if (s < 0)
    take_error(why, cap, "the copy failed");
  else
    tb_fmt(why, cap, "a copy of %zu bytes is too short for CUDA events to time", c->bytes);
  return -1;
}

void tb_copy_close(tb_copy *c) {
  if (!c) return;
  gpu_close(c->g);
  free(c);
}
