/* tests/embed/main.c - a program that uses tgc as an installed library.
 *
 * tests/embed/run.sh copies this file out of the tree and builds it with
 * nothing but `pkg-config --cflags --libs tgc`, so it proves that the
 * installed header, libraries and tgc.pc are enough to embed tgc.  It
 * computes c = relu(a*b + 1) over [4,8] f32 inputs, which tgc should fuse
 * into one kernel, and checks every element against a plain loop.
 */
#include <tgc.h>

#include <math.h>
#include <stdio.h>

enum { ROWS = 4, COLS = 8, N = ROWS * COLS };

/* Prints what went wrong and the library's own message. */
static int fail(const char *what) {
  fprintf(stderr, "embed: %s failed: %s (%s)\n", what, tgc_last_error(),
          tgc_status_str(tgc_last_status()));
  return 1;
}

int main(void) {
  float a[N], b[N], c[N], want[N];
  for (int i = 0; i < N; i++) {
    /* Halves and quarters of small integers: the products are exact, and
     * about half of the results are negative, so relu matters. */
    a[i] = 0.5f * (float)(i % 7 - 3);
    b[i] = 0.25f * (float)(i % 5 - 2) + 0.125f * (float)(i / 8);
    float r = a[i] * b[i] + 1.0f;
    want[i] = r > 0.0f ? r : 0.0f;
    c[i] = NAN;
  }

  tgc_ctx *ctx = tgc_ctx_new();
  if (!ctx) return fail("tgc_ctx_new");

  const int64_t shape[2] = {ROWS, COLS};
  tgc_tensor *ta = tgc_from_data(ctx, TGC_F32, 2, shape, a);
  tgc_tensor *tb = tgc_from_data(ctx, TGC_F32, 2, shape, b);
  tgc_tensor *one = tgc_scalar(ctx, TGC_F32, 1.0);
  /* NULL propagates through the chain, so one check covers all of it. */
  tgc_tensor *tc = tgc_relu(tgc_add(tgc_mul(ta, tb), one));
  if (!tc) {
    fail("building relu(a*b + 1)");
    tgc_ctx_free(ctx);
    return 1;
  }

  tgc_status st = tgc_to_host(tc, c, sizeof c);
  if (st != TGC_OK) {
    fail("tgc_to_host");
    tgc_ctx_free(ctx);
    return 1;
  }

  int bad = 0;
  for (int i = 0; i < N; i++) {
    if (!(fabsf(c[i] - want[i]) <= 1e-6f)) {
      if (bad < 10)
        fprintf(stderr, "embed: c[%d][%d] = %g, want %g\n", i / COLS, i % COLS, (double)c[i],
                (double)want[i]);
      bad++;
    }
  }
  tgc_ctx_free(ctx);
  if (bad) {
    fprintf(stderr, "embed: %d of %d values wrong\n", bad, N);
    return 1;
  }
  printf("embed: ok\n");
  return 0;
}
