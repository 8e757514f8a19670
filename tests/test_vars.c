/* test_vars.c - variables: a window that moves with a bound value is
 * compiled once for every value, rebinding recomputes, bad bindings are
 * errors, and the JIT replays with the current binding. */
#include "tgc_internal.h"

#include <criterion/criterion.h>

enum { LEN = 128, WIN = 64 };

static tgc_tensor *ramp(tgc_ctx *ctx, float *host) {
  int64_t s[1] = {LEN};
  for (int i = 0; i < LEN; i++) host[i] = (float)(i * 3 % 17) - 0.5f * (float)i;
  return tgc_from_data(ctx, TGC_F32, 1, s, host);
}

Test(vars, a_moving_window_compiles_once_for_64_positions) {
  tgc_ctx *ctx = tgc_ctx_new();
  float x[LEN], y[WIN];
  tgc_tensor *t = ramp(ctx, x);
  tgc_var *p = tgc_var_new(ctx, "start_pos", 0, 63);
  cr_assert_not_null(p, "%s", tgc_last_error());
  tgc_tensor *win = tgc_mul(tgc_shrink_var(t, 0, p, 0, WIN), tgc_scalar(ctx, TGC_F32, 2));
  cr_assert_not_null(win, "%s", tgc_last_error());
  tgc_stats before, after;
  tgc_get_stats(ctx, &before);
  for (int pos = 0; pos < 64; pos++) {
    cr_assert_eq(tgc_var_bind(p, pos), TGC_OK);
    cr_assert_eq(tgc_to_host(win, y, sizeof y), TGC_OK, "%s", tgc_last_error());
    for (int i = 0; i < WIN; i++) cr_assert_eq(y[i], 2 * x[pos + i], "pos %d [%d]: %g", pos, i, y[i]);
  }
  tgc_get_stats(ctx, &after);
  /* one program for every position: compiled (or found on disk) once,
   * then found in memory by the other 63 realizes */
  uint64_t got = (after.compiles - before.compiles) + (after.cache_disk_hits - before.cache_disk_hits);
  cr_expect_eq(got, 1, "programs made %llu times", (unsigned long long)got);
  cr_expect_eq(after.cache_mem_hits - before.cache_mem_hits, 63);
  cr_expect_eq(after.launches - before.launches, 64);
  tgc_ctx_free(ctx);
}

Test(vars, a_sum_over_a_moving_window) {
  tgc_ctx *ctx = tgc_ctx_new();
  float x[LEN], y;
  tgc_tensor *t = ramp(ctx, x);
  tgc_var *p = tgc_var_new(ctx, "p", 0, LEN - 8);
  tgc_tensor *s = tgc_sum(tgc_shrink_var(t, 0, p, 0, 8), 0, NULL, false);
  for (int pos = 0; pos <= LEN - 8; pos += 7) {
    cr_assert_eq(tgc_var_bind(p, pos), TGC_OK);
    cr_assert_eq(tgc_to_host(s, &y, sizeof y), TGC_OK, "%s", tgc_last_error());
    float want = 0;
    for (int i = 0; i < 8; i++) want += x[pos + i];
    cr_expect_float_eq(y, want, 1e-4, "pos %d: %g vs %g", pos, y, want);
  }
  tgc_ctx_free(ctx);
}

Test(vars, kv_cache_rows_written_at_the_bound_position) {
  tgc_ctx *ctx = tgc_ctx_new();
  int64_t cs[2] = {16, 4}, rs[2] = {1, 4};
  tgc_tensor *cache = tgc_empty(ctx, TGC_F32, 2, cs);
  cache = tgc_assign(cache, tgc_zeros(ctx, TGC_F32, 2, cs));
  cr_assert_eq(tgc_realize(ctx, 1, &cache), TGC_OK, "%s", tgc_last_error());
  tgc_var *pos = tgc_var_new(ctx, "start_pos", 0, 15);
  tgc_stats before, after;
  tgc_get_stats(ctx, &before);
  for (int p = 0; p < 16; p++) {
    float row[4] = {(float)p, (float)p + 0.25f, (float)-p, 1.0f};
    cr_assert_eq(tgc_var_bind(pos, p), TGC_OK);
    tgc_tensor *upd = tgc_assign(tgc_shrink_var(cache, 0, pos, 0, 1), tgc_from_data(ctx, TGC_F32, 2, rs, row));
    cr_assert_eq(tgc_realize(ctx, 1, &upd), TGC_OK, "%s", tgc_last_error());
  }
  tgc_get_stats(ctx, &after);
  cr_expect_eq((after.compiles - before.compiles) + (after.cache_disk_hits - before.cache_disk_hits), 1,
               "one kernel for every position");
  float got[64];
  cr_assert_eq(tgc_to_host(cache, got, sizeof got), TGC_OK);
  for (int p = 0; p < 16; p++) {
    cr_expect_eq(got[p * 4], (float)p);
    cr_expect_eq(got[p * 4 + 1], (float)p + 0.25f);
    cr_expect_eq(got[p * 4 + 2], (float)-p);
    cr_expect_eq(got[p * 4 + 3], 1.0f);
  }
  tgc_ctx_free(ctx);
}

Test(vars, bad_bindings_and_windows_are_errors) {
  tgc_ctx *ctx = tgc_ctx_new();
  float x[LEN];
  tgc_tensor *t = ramp(ctx, x);
  tgc_var *p = tgc_var_new(ctx, "start_pos", 0, 63);
  cr_expect_eq(tgc_var_bind(p, 64), TGC_ERR_ARG);
  cr_expect(strstr(tgc_last_error(), "start_pos") && strstr(tgc_last_error(), "[0, 63]"), "%s", tgc_last_error());
  cr_expect_eq(tgc_var_bind(p, -1), TGC_ERR_ARG);
  tgc_tensor *w = tgc_shrink_var(t, 0, p, 0, WIN);
  float y[WIN];
  cr_expect_eq(tgc_to_host(w, y, sizeof y), TGC_ERR_ARG, "unbound variable");
  cr_expect(strstr(tgc_last_error(), "not bound") && strstr(tgc_last_error(), "start_pos"), "%s", tgc_last_error());
  cr_expect_null(tgc_shrink_var(t, 0, p, 2, WIN), "window leaves the axis at start_pos = 63");
  cr_expect_eq(tgc_last_status(), TGC_ERR_ARG);
  cr_expect_null(tgc_var_new(ctx, "lo_hi", 5, 4));
  cr_expect_null(tgc_var_new(ctx, "", 0, 4));
  for (int i = 1; i < TGC_MAX_VARS; i++) cr_expect_not_null(tgc_var_new(ctx, "more", 0, 1));
  cr_expect_null(tgc_var_new(ctx, "too_many", 0, 1));
  cr_expect_eq(tgc_last_status(), TGC_ERR_UNSUPPORTED);
  cr_expect_eq(tgc_var_bind(NULL, 0), TGC_ERR_ARG);
  tgc_ctx_free(ctx);
}

typedef struct win_step {
  tgc_var *pos;
} win_step;

static tgc_status window_step(tgc_ctx *ctx, void *user, int nin, tgc_tensor *const *ins, int *nout,
                              tgc_tensor **outs) {
  win_step *w = user;
  (void)nin;
  outs[0] = tgc_add(tgc_shrink_var(ins[0], 0, w->pos, 0, WIN), tgc_scalar(ctx, TGC_F32, 1));
  *nout = 1;
  return tgc_realize(ctx, 1, outs);
}

Test(vars, the_jit_replays_with_the_current_binding) {
  tgc_ctx *ctx = tgc_ctx_new();
  float x[LEN], y[WIN];
  tgc_tensor *t = ramp(ctx, x);
  win_step w = {tgc_var_new(ctx, "start_pos", 0, 63)};
  tgc_jit *j = tgc_jit_new(ctx, window_step, &w);
  tgc_tensor *out[TGC_JIT_MAX_IO];
  int nout;
  tgc_stats mid, end;
  for (int pos = 0; pos < 10; pos++) {
    if (pos == 2) tgc_get_stats(ctx, &mid);
    cr_assert_eq(tgc_var_bind(w.pos, pos * 5), TGC_OK);
    cr_assert_eq(tgc_jit_call(j, 1, &t, &nout, out), TGC_OK, "%s", tgc_last_error());
    cr_assert_eq(tgc_to_host(out[0], y, sizeof y), TGC_OK, "%s", tgc_last_error());
    for (int i = 0; i < WIN; i++) cr_assert_eq(y[i], x[pos * 5 + i] + 1, "pos %d [%d]", pos * 5, i);
  }
  tgc_get_stats(ctx, &end);
  cr_expect_eq(end.replays - mid.replays, 8);
  cr_expect_eq(end.schedules, mid.schedules, "replays schedule nothing");
  cr_expect_eq(end.compiles, mid.compiles);
  tgc_jit_free(j);
  tgc_ctx_free(ctx);
}
