/* test_jit.c - capture and replay: results, counters, memory planning,
 * modes and the misuses a tracing JIT invites. */
#include "tgc_internal.h"

#include <criterion/criterion.h>
#include <math.h>

enum { N = 8, M = 64 };

typedef struct model {
  tgc_tensor *w; /* [M, M] weights, fixed */
} model;

/* softmax(relu(x @ w) + 1) over the last axis: 4 kernels. */
static tgc_status mlp_step(tgc_ctx *ctx, void *user, int nin, tgc_tensor *const *ins, int *nout,
                           tgc_tensor **outs) {
  model *m = user;
  (void)nin;
  tgc_tensor *h = tgc_add(tgc_relu(tgc_matmul(ins[0], m->w)), tgc_scalar(ctx, TGC_F32, 1));
  outs[0] = tgc_softmax(h, -1);
  *nout = 1;
  return tgc_realize(ctx, 1, outs);
}

static void reference(const float *x, const float *w, float *out) {
  for (int i = 0; i < N; i++) {
    double h[M], mx = -INFINITY, sum = 0;
    for (int j = 0; j < M; j++) {
      double acc = 0;
      for (int k = 0; k < M; k++) acc += (double)x[i * M + k] * w[k * M + j];
      h[j] = (acc > 0 ? acc : 0) + 1;
      mx = h[j] > mx ? h[j] : mx;
    }
    for (int j = 0; j < M; j++) sum += exp(h[j] - mx);
    for (int j = 0; j < M; j++) out[i * M + j] = (float)(exp(h[j] - mx) / sum);
  }
}

static void fill(float *v, int n, int seed) {
  for (int i = 0; i < n; i++) v[i] = (float)sin(0.37 * i + seed) * 0.5f;
}

static void check_tol(const float *got, const float *want, int n, float rtol) {
  for (int i = 0; i < n; i++)
    cr_assert(fabsf(got[i] - want[i]) <= 1e-5f + rtol * fabsf(want[i]), "[%d] %g vs %g", i, got[i], want[i]);
}

static void check_close(const float *got, const float *want, int n) { check_tol(got, want, n, 1e-4f); }

/* Runs the MLP step through a JIT for `calls` calls and checks each. */
static void run_calls(int calls, float *last) {
  tgc_ctx *ctx = tgc_ctx_new();
  cr_assert_not_null(ctx);
  float w[M * M], x[N * M], y[N * M], want[N * M];
  fill(w, M * M, 7);
  int64_t ws[2] = {M, M}, xs[2] = {N, M};
  model m = {tgc_from_data(ctx, TGC_F32, 2, ws, w)};
  tgc_jit *j = tgc_jit_new(ctx, mlp_step, &m);
  for (int c = 0; c < calls; c++) {
    fill(x, N * M, c);
    tgc_tensor *in = tgc_from_data(ctx, TGC_F32, 2, xs, x), *out[TGC_JIT_MAX_IO];
    int nout = 0;
    cr_assert_eq(tgc_jit_call(j, 1, &in, &nout, out), TGC_OK, "%s", tgc_last_error());
    cr_assert_eq(nout, 1);
    cr_assert_eq(tgc_to_host(out[0], y, sizeof y), TGC_OK);
    reference(x, w, want);
    check_close(y, want, N * M);
  }
  memcpy(last, y, sizeof y);
  tgc_jit_free(j);
  tgc_ctx_free(ctx);
}

Test(jit, replays_give_the_results_of_fresh_runs) {
  float y[N * M];
  run_calls(6, y);
}

Test(jit, replay_builds_schedules_hashes_and_compiles_nothing) {
  tgc_ctx *ctx = tgc_ctx_new();
  float w[M * M], x[N * M];
  fill(w, M * M, 3);
  int64_t ws[2] = {M, M}, xs[2] = {N, M};
  model m = {tgc_from_data(ctx, TGC_F32, 2, ws, w)};
  tgc_jit *j = tgc_jit_new(ctx, mlp_step, &m);
  tgc_tensor *ins[5], *out[TGC_JIT_MAX_IO];
  for (int c = 0; c < 5; c++) {
    fill(x, N * M, c);
    ins[c] = tgc_from_data(ctx, TGC_F32, 2, xs, x);
  }
  int nout;
  tgc_stats a, b;
  for (int c = 0; c < 2; c++) cr_assert_eq(tgc_jit_call(j, 1, &ins[c], &nout, out), TGC_OK, "%s", tgc_last_error());
  tgc_get_stats(ctx, &a);
  for (int c = 2; c < 5; c++) cr_assert_eq(tgc_jit_call(j, 1, &ins[c], &nout, out), TGC_OK, "%s", tgc_last_error());
  tgc_get_stats(ctx, &b);
  cr_expect_eq(b.nodes_created, a.nodes_created);
  cr_expect_eq(b.schedules, a.schedules);
  cr_expect_eq(b.cache_lookups, a.cache_lookups);
  cr_expect_eq(b.compiles, a.compiles);
  cr_expect_eq(b.buffers_allocated, a.buffers_allocated);
  cr_expect_eq(b.replays - a.replays, 3);
  cr_expect_eq(b.launches - a.launches, 3 * 4, "4 kernels a replay, got %llu launches",
               (unsigned long long)(b.launches - a.launches));
  tgc_jit_free(j);
  tgc_ctx_free(ctx);
}

/* 16 stages of x = relu(x @ w_s): an elementwise op and a reduce each,
 * one kernel each, every stage reading the one before. */
enum { STAGES = 16 };
typedef struct chain {
  tgc_tensor *w[STAGES]; /* [M, M] */
} chain;

static tgc_status chain_step(tgc_ctx *ctx, void *user, int nin, tgc_tensor *const *ins, int *nout,
                             tgc_tensor **outs) {
  chain *c = user;
  (void)ctx, (void)nin;
  tgc_tensor *x = ins[0];
  for (int s = 0; s < STAGES; s++) x = tgc_relu(tgc_matmul(x, c->w[s]));
  outs[0] = x;
  *nout = 1;
  return tgc_realize(ctx, 1, outs);
}

Test(jit, sixteen_stages_replay_in_at_most_three_intermediate_buffers) {
  tgc_ctx *ctx = tgc_ctx_new();
  static float w[STAGES][M * M];
  float x[N * M], y[N * M], want[N * M];
  int64_t ws[2] = {M, M}, xs[2] = {N, M};
  chain c;
  for (int s = 0; s < STAGES; s++) {
    for (int i = 0; i < M * M; i++) w[s][i] = (float)(((i * 7 + s * 13) % 17) - 7) / 40.0f;
    c.w[s] = tgc_from_data(ctx, TGC_F32, 2, ws, w[s]);
  }
  tgc_jit *j = tgc_jit_new(ctx, chain_step, &c);
  tgc_tensor *out[TGC_JIT_MAX_IO];
  int nout;
  tgc_stats before, after;
  for (int call = 0; call < 4; call++) {
    fill(x, N * M, 10 + call);
    tgc_tensor *in = tgc_from_data(ctx, TGC_F32, 2, xs, x);
    tgc_get_stats(ctx, &before);
    cr_assert_eq(tgc_jit_call(j, 1, &in, &nout, out), TGC_OK, "%s", tgc_last_error());
    tgc_get_stats(ctx, &after);
    cr_assert_eq(tgc_to_host(out[0], y, sizeof y), TGC_OK);
    for (int i = 0; i < N; i++) { /* the same stages in f64 */
      double r[M], t[M];
      for (int k = 0; k < M; k++) r[k] = x[i * M + k];
      for (int s = 0; s < STAGES; s++) {
        for (int n = 0; n < M; n++) {
          t[n] = 0;
          for (int k = 0; k < M; k++) t[n] += r[k] * w[s][k * M + n];
        }
        for (int n = 0; n < M; n++) r[n] = t[n] > 0 ? t[n] : 0;
      }
      for (int k = 0; k < M; k++) want[i * M + k] = (float)r[k];
    }
    check_tol(y, want, N * M, 2e-3f); /* 16 layers of f32 rounding */
    if (call >= 2) cr_expect_eq(after.launches - before.launches, STAGES);
  }
  tgc_get_stats(ctx, &after);
  cr_expect_leq(after.replay_buffers, 3, "intermediate buffers after planning: %llu",
                (unsigned long long)after.replay_buffers);
  cr_expect_gt(after.replay_bytes, 0);
  cr_expect_leq(after.replay_bytes, 3 * N * M * 4, "peak intermediate bytes %llu",
                (unsigned long long)after.replay_bytes);
  tgc_jit_free(j);
  tgc_ctx_free(ctx);
}

/* Normalisation stages share work across kernels: the planner must keep
 * every value alive as long as a later launch reads it. */
static tgc_status norm_step(tgc_ctx *ctx, void *user, int nin, tgc_tensor *const *ins, int *nout,
                            tgc_tensor **outs) {
  (void)user, (void)nin;
  int last = -1;
  tgc_tensor *x = ins[0];
  for (int s = 0; s < 8; s++) {
    x = tgc_sub(x, tgc_max(x, 1, &last, true));
    x = tgc_add(tgc_mul(x, tgc_scalar(ctx, TGC_F32, 0.5)), tgc_mean(x, 1, &last, true));
  }
  outs[0] = x;
  *nout = 1;
  return tgc_realize(ctx, 1, outs);
}

Test(jit, planned_memory_keeps_shared_values_alive) {
  tgc_ctx *ctx = tgc_ctx_new();
  float x[N * M], y[N * M], want[N * M];
  int64_t xs[2] = {N, M};
  tgc_jit *j = tgc_jit_new(ctx, norm_step, NULL);
  tgc_tensor *out[TGC_JIT_MAX_IO];
  int nout;
  for (int call = 0; call < 4; call++) {
    fill(x, N * M, 20 + call);
    tgc_tensor *in = tgc_from_data(ctx, TGC_F32, 2, xs, x);
    cr_assert_eq(tgc_jit_call(j, 1, &in, &nout, out), TGC_OK, "%s", tgc_last_error());
    cr_assert_eq(tgc_to_host(out[0], y, sizeof y), TGC_OK);
    for (int i = 0; i < N; i++) {
      double r[M];
      for (int k = 0; k < M; k++) r[k] = x[i * M + k];
      for (int s = 0; s < 8; s++) {
        double mx = -INFINITY, sum = 0;
        for (int k = 0; k < M; k++) mx = r[k] > mx ? r[k] : mx;
        for (int k = 0; k < M; k++) sum += (r[k] -= mx);
        for (int k = 0; k < M; k++) r[k] = r[k] * 0.5 + sum / M;
      }
      for (int k = 0; k < M; k++) want[i * M + k] = (float)r[k];
    }
    check_close(y, want, N * M);
  }
  tgc_jit_free(j);
  tgc_ctx_free(ctx);
}

Test(jit, modes_0_1_2_give_identical_results) {
  float y[3][N * M];
  const char *modes[3] = {"0", "1", "2"};
  for (int k = 0; k < 3; k++) {
    setenv("TGC_JIT", modes[k], 1);
    run_calls(5, y[k]);
  }
  unsetenv("TGC_JIT");
  cr_expect(!memcmp(y[0], y[1], sizeof y[0]), "TGC_JIT=0 and 1 differ");
  cr_expect(!memcmp(y[0], y[2], sizeof y[0]), "TGC_JIT=0 and 2 differ");
}

Test(jit, other_shapes_or_dtypes_after_recording_are_errors) {
  tgc_ctx *ctx = tgc_ctx_new();
  float w[M * M] = {0};
  int64_t ws[2] = {M, M}, xs[2] = {N, M}, other[2] = {N + 1, M};
  model m = {tgc_from_data(ctx, TGC_F32, 2, ws, w)};
  tgc_jit *j = tgc_jit_new(ctx, mlp_step, &m);
  tgc_tensor *out[TGC_JIT_MAX_IO];
  int nout;
  for (int c = 0; c < 2; c++) {
    tgc_tensor *in = tgc_zeros(ctx, TGC_F32, 2, xs);
    cr_assert_eq(tgc_jit_call(j, 1, &in, &nout, out), TGC_OK, "%s", tgc_last_error());
  }
  tgc_tensor *bad = tgc_zeros(ctx, TGC_F32, 2, other);
  cr_expect_eq(tgc_jit_call(j, 1, &bad, &nout, out), TGC_ERR_SHAPE);
  cr_expect(strstr(tgc_last_error(), "[9,64]") && strstr(tgc_last_error(), "[8,64]"), "%s", tgc_last_error());
  tgc_tensor *half = tgc_zeros(ctx, TGC_F16, 2, xs);
  cr_expect_eq(tgc_jit_call(j, 1, &half, &nout, out), TGC_ERR_SHAPE);
  cr_expect(strstr(tgc_last_error(), "f16") != NULL, "%s", tgc_last_error());
  tgc_tensor *good = tgc_zeros(ctx, TGC_F32, 2, xs);
  cr_expect_eq(tgc_jit_call(j, 1, &good, &nout, out), TGC_OK, "still usable: %s", tgc_last_error());
  tgc_jit_free(j);
  tgc_ctx_free(ctx);
}

static tgc_status identity_step(tgc_ctx *ctx, void *user, int nin, tgc_tensor *const *ins, int *nout,
                                tgc_tensor **outs) {
  (void)ctx, (void)user, (void)nin;
  outs[0] = ins[0]; /* realizes nothing */
  *nout = 1;
  return TGC_OK;
}

Test(jit, a_step_that_realizes_nothing_is_an_error) {
  tgc_ctx *ctx = tgc_ctx_new();
  int64_t xs[1] = {4};
  tgc_jit *j = tgc_jit_new(ctx, identity_step, NULL);
  tgc_tensor *in = tgc_zeros(ctx, TGC_F32, 1, xs), *out[TGC_JIT_MAX_IO];
  int nout;
  cr_expect_eq(tgc_jit_call(j, 1, &in, &nout, out), TGC_OK); /* call 1 runs normally */
  cr_expect_eq(tgc_jit_call(j, 1, &in, &nout, out), TGC_ERR_ARG);
  cr_expect(strstr(tgc_last_error(), "realized nothing") != NULL, "%s", tgc_last_error());
  tgc_jit_free(j);
  tgc_ctx_free(ctx);
}

typedef struct holder {
  tgc_jit *jit; /* the JIT whose step this is */
} holder;

static tgc_status nesting_step(tgc_ctx *ctx, void *user, int nin, tgc_tensor *const *ins, int *nout,
                               tgc_tensor **outs) {
  (void)ctx;
  holder *h = user;
  tgc_status st = tgc_jit_call(h->jit, nin, ins, nout, outs); /* itself */
  return st;
}

Test(jit, calling_a_jit_from_inside_its_step_is_an_error) {
  tgc_ctx *ctx = tgc_ctx_new();
  int64_t xs[1] = {4};
  holder h;
  h.jit = tgc_jit_new(ctx, nesting_step, &h);
  tgc_tensor *in = tgc_zeros(ctx, TGC_F32, 1, xs), *out[TGC_JIT_MAX_IO];
  int nout;
  cr_expect_eq(tgc_jit_call(h.jit, 1, &in, &nout, out), TGC_ERR_ARG);
  cr_expect(strstr(tgc_last_error(), "inside a step") != NULL, "%s", tgc_last_error());
  cr_expect_eq(tgc_jit_calls(h.jit), 0);
  tgc_jit_free(h.jit);
  tgc_ctx_free(ctx);
}

/* Reads the input on the host while building the graph: the value of
 * the recording call is baked into the record (documented in tgc.h). */
static tgc_status host_read_step(tgc_ctx *ctx, void *user, int nin, tgc_tensor *const *ins, int *nout,
                                 tgc_tensor **outs) {
  (void)user, (void)nin;
  float first[4];
  tgc_status st = tgc_to_host(ins[0], first, sizeof first);
  if (st != TGC_OK) return st;
  outs[0] = tgc_add(ins[0], tgc_scalar(ctx, TGC_F32, first[0]));
  *nout = 1;
  return tgc_realize(ctx, 1, outs);
}

Test(jit, a_host_value_read_while_recording_is_baked_in) {
  tgc_ctx *ctx = tgc_ctx_new();
  int64_t xs[1] = {4};
  tgc_jit *j = tgc_jit_new(ctx, host_read_step, NULL);
  tgc_tensor *out[TGC_JIT_MAX_IO];
  int nout;
  float y[4];
  for (int c = 1; c <= 3; c++) {
    float v[4] = {(float)c, (float)c, (float)c, (float)c}; /* x = c everywhere */
    tgc_tensor *in = tgc_from_data(ctx, TGC_F32, 1, xs, v);
    cr_assert_eq(tgc_jit_call(j, 1, &in, &nout, out), TGC_OK, "%s", tgc_last_error());
    cr_assert_eq(tgc_to_host(out[0], y, sizeof y), TGC_OK);
    /* calls 1, 2 compute x + x[0]; the replay adds call 2's x[0] (2) */
    float want = c <= 2 ? 2.0f * (float)c : (float)c + 2.0f;
    cr_expect_eq(y[0], want, "call %d: %g, expected %g", c, y[0], want);
  }
  tgc_jit_free(j);
  tgc_ctx_free(ctx);
}
