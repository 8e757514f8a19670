/* jit.c - JIT warm-up and replay overhead on a step of 100 tiny kernels.
 *
 * The JIT's promise (issue 4): call 1 of a step pays for scheduling and
 * compiling, call 2 records the launches, and calls 3 and later cost only
 * the kernels.  With kernels this small (x is [16,64] f32, 4 KiB), a
 * replay's time divided by its 100 launches bounds the JIT's overhead per
 * launch from above: it is that overhead plus a tiny kernel.  The step:
 *
 *   x = input [16,64]
 *   100 times: x = contiguous(stage_s(x, a_s, b_s))
 *   realize x
 *
 * where stage_s cycles through x*a+b, (x+b)*a, x*a-b and b-x*a (4 distinct
 * kernels), a_s and b_s are per-stage [16,64] constants made once, outside
 * the step, and contiguous makes each stage its own kernel (checked: call 1
 * schedules exactly 100 kernels).
 *
 * Printed, in this order:
 *   - the wall time of calls 1..20 (each with a new input made before the
 *     clock; each timed call ends with a device sync), once in a context
 *     on a new, empty TGC_CACHE_DIR (call 1 compiles) and once in a second
 *     context on the same cache dir (call 1 finds every kernel on disk);
 *   - R replays (default 200, after the 20 calls), each timed twice over:
 *     "host" times tgc_jit_call alone, on an idle device (a sync follows,
 *     untimed), which on a GPU is what the CPU pays to submit the step;
 *     "synced" times the call and a device sync, what a step costs end to
 *     end.  On the CPU launches are synchronous and the two agree;
 *   - the same step without the JIT (the step function called directly on
 *     a new input each time: build, schedule, cache lookups, launches), and
 *     the 100 stages as a plain C loop on the host, in the same run;
 *   - "result:" (one line for scripts) and "checksum:" (FNV-1a of the
 *     outputs of calls 1..20: equal across TGC_JIT modes and devices whose
 *     kernels round alike).
 *
 * Checks (exit status 1 if one fails): 100 kernels scheduled by call 1, 100
 * launches per call; replays build, schedule, look up and compile nothing
 * (TGC_JIT=1, 2); every output of a call or replay equals, bit for bit,
 * the output of the step run without the JIT on the same input, and lies
 * within 1e-4 (relative) of a plain f64 loop; the warm-cache context
 * compiles nothing.
 *
 *   jit [--device-sync] [--reps N] [--help]
 *
 * --device-sync: "replay us/launch" in the result line is the synced
 * figure (what bench/gpu-check.sh reports on CUDA); by default it is the
 * host figure.  --reps: replays timed (default 200).  TGC_JIT (0, 1, 2)
 * and TGC_DEVICE are read as tgc reads them.  Exit status: 0, 1 (a check
 * failed), 2 (the device cannot be opened), 3 (bad usage).
 */
#define _GNU_SOURCE 1
#include <tgc.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdint.h>
#include "bench.h"

#define ROWS 16
#define COLS 64
#define NEL (ROWS * COLS)
#define STAGES 100
#define KINDS 4         /* distinct stage kernels */
#define ITERS 20        /* calls in the per-iteration table */
#define NDATA ITERS     /* input data sets: call i uses set i-1, replay r set r % NDATA */
#define NOJIT_CALLS 60  /* timed calls of the step without the JIT */
#define MAX_REPS 2000
#define TOL 1e-4        /* against the f64 loop, relative to 1 + |reference| */

/* ---- host data --------------------------------------------------------- */

static float data[NDATA][NEL];          /* inputs */
static float ha[STAGES][NEL], hb[STAGES][NEL]; /* per-stage constants */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static float uniform(float lo, float hi) { /* xorshift64*: the same numbers everywhere */
  rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
  uint64_t r = rng_state * 0x2545f4914f6cdd1du;
  return lo + (hi - lo) * (float)((double)(r >> 11) / 9007199254740992.0);
}

/* a near 1 and b near 0 keep x of order 1 through the 100 stages. */
static void make_data(void) {
  for (int s = 0; s < STAGES; s++)
    for (int i = 0; i < NEL; i++) ha[s][i] = uniform(0.9f, 1.1f), hb[s][i] = uniform(-0.1f, 0.1f);
  for (int k = 0; k < NDATA; k++)
    for (int i = 0; i < NEL; i++) data[k][i] = uniform(-1, 1);
}

/* ---- the step ------------------------------------------------------------ */

typedef struct consts {
  tgc_tensor *a[STAGES], *b[STAGES]; /* [16,64] f32 each, realized */
} consts;

static tgc_tensor *stage(tgc_tensor *x, tgc_tensor *a, tgc_tensor *b, int kind) {
  switch (kind) {
  case 0: return tgc_add(tgc_mul(x, a), b);
  case 1: return tgc_mul(tgc_add(x, b), a);
  case 2: return tgc_sub(tgc_mul(x, a), b);
  default: return tgc_sub(b, tgc_mul(x, a));
  }
}

static double stage64(double x, double a, double b, int kind) {
  switch (kind) {
  case 0: return x * a + b;
  case 1: return (x + b) * a;
  case 2: return x * a - b;
  default: return b - x * a;
  }
}

static tgc_status step(tgc_ctx *ctx, void *user, int nin, tgc_tensor *const *ins, int *nout,
                       tgc_tensor **outs) {
  const consts *c = user;
  if (nin != 1) return TGC_ERR_ARG; /* the bench always passes one */
  tgc_tensor *x = ins[0];
  for (int s = 0; s < STAGES; s++) x = tgc_contiguous(stage(x, c->a[s], c->b[s], s % KINDS));
  if (!x) return tgc_last_status();
  tgc_status st = tgc_realize(ctx, 1, &x);
  if (st != TGC_OK) return st;
  outs[0] = x;
  *nout = 1;
  return TGC_OK;
}

/* The step as plain loops: f32 as the kernels compute (the compute-time
 * estimate), f64 as the reference.  The kernels are built with
 * -march=native; this program is not (it runs on GPU machines too), so on
 * x86 the f32 loop is cloned for AVX-512 and AVX2 and the best one this
 * CPU has is picked when the program starts. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void step_f32(const float *restrict in, float *restrict out) {
  memcpy(out, in, sizeof(float) * NEL);
  for (int s = 0; s < STAGES; s++) {
    const float *restrict a = ha[s], *restrict b = hb[s];
    switch (s % KINDS) {
    case 0: for (int i = 0; i < NEL; i++) out[i] = out[i] * a[i] + b[i]; break;
    case 1: for (int i = 0; i < NEL; i++) out[i] = (out[i] + b[i]) * a[i]; break;
    case 2: for (int i = 0; i < NEL; i++) out[i] = out[i] * a[i] - b[i]; break;
    default: for (int i = 0; i < NEL; i++) out[i] = b[i] - out[i] * a[i]; break;
    }
  }
}

static void step_f64(const float *in, double *out) {
  for (int i = 0; i < NEL; i++) {
    double x = in[i];
    for (int s = 0; s < STAGES; s++) x = stage64(x, ha[s][i], hb[s][i], s % KINDS);
    out[i] = x;
  }
}

/* ---- plumbing ------------------------------------------------------------- */

static int failures;

static void fail(const char *what) { /* the first 10 are printed, all are counted */
  if (failures++ < 10) fprintf(stderr, "jit: FAIL %s\n", what);
}

static void die(const char *what) {
  fprintf(stderr, "jit: %s: %s (%s)\n", what, tgc_last_error(), tgc_status_str(tgc_last_status()));
  exit(1);
}

static tgc_tensor *upload(tgc_ctx *ctx, const float *src) {
  tgc_tensor *t = tgc_from_data(ctx, TGC_F32, 2, (const int64_t[]){ROWS, COLS}, src);
  if (!t) die("tgc_from_data");
  return t;
}

static void sync_dev(tgc_ctx *ctx) {
  if (tgc_sync(ctx) != TGC_OK) die("device sync");
}

/* Counters that moved between two tgc_get_stats. */
typedef struct delta {
  uint64_t nodes, schedules, kernels, lookups, disk_hits, compiles, launches;
} delta;

static delta stats_delta(const tgc_stats *a, const tgc_stats *b) {
  return (delta){b->nodes_created - a->nodes_created, b->schedules - a->schedules,
                 b->kernels_scheduled - a->kernels_scheduled, b->cache_lookups - a->cache_lookups,
                 b->cache_disk_hits - a->cache_disk_hits, b->compiles - a->compiles,
                 b->launches - a->launches};
}

static void delta_add(delta *sum, delta d) {
  sum->nodes += d.nodes, sum->schedules += d.schedules, sum->kernels += d.kernels;
  sum->lookups += d.lookups, sum->disk_hits += d.disk_hits, sum->compiles += d.compiles;
  sum->launches += d.launches;
}

/* One tgc_jit_call (or, with jit NULL, the step called directly) on `in`,
 * timed; with sync the device sync is inside the clock, else after it.
 * The output goes to out. */
static double timed_call(tgc_ctx *ctx, tgc_jit *jit, consts *c, tgc_tensor *in, bool sync,
                         delta *d, float *out) {
  tgc_tensor *outs[TGC_JIT_MAX_IO];
  int nout = 0;
  tgc_stats s0, s1;
  tgc_get_stats(ctx, &s0);
  double t0 = bench_now();
  tgc_status st = jit ? tgc_jit_call(jit, 1, &in, &nout, outs) : step(ctx, c, 1, &in, &nout, outs);
  if (sync) sync_dev(ctx);
  double t = bench_now() - t0;
  if (!sync) sync_dev(ctx);
  tgc_get_stats(ctx, &s1);
  if (st != TGC_OK) die(jit ? "tgc_jit_call" : "the step");
  if (nout != 1 || tgc_numel(outs[0]) != NEL) die("the step's output");
  if (tgc_to_host(outs[0], out, sizeof(float) * NEL) != TGC_OK) die("tgc_to_host");
  *d = stats_delta(&s0, &s1);
  return t;
}

/* A context with the constants uploaded and one input per data set. */
typedef struct bench_ctx {
  tgc_ctx *ctx;
  consts c;
  tgc_tensor *in[NDATA];
} bench_ctx;

static bench_ctx open_ctx(void) {
  bench_ctx b = {.ctx = tgc_ctx_new()};
  if (!b.ctx) {
    fprintf(stderr, "jit: cannot open the device (TGC_DEVICE=%s): %s\n",
            (getenv("TGC_DEVICE") ? getenv("TGC_DEVICE") : "auto"), tgc_last_error());
    exit(2);
  }
  for (int s = 0; s < STAGES; s++) b.c.a[s] = upload(b.ctx, ha[s]), b.c.b[s] = upload(b.ctx, hb[s]);
  for (int k = 0; k < NDATA; k++) b.in[k] = upload(b.ctx, data[k]);
  return b;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

/* ---- the measurements ------------------------------------------------------- */

typedef struct iters {
  double ms[ITERS];
  delta d[ITERS];
  float out[ITERS][NEL]; /* output of call i, from data set i */
} iters;

/* Calls 1..ITERS of a new JIT in b's context.  Returns the JIT (for the
 * replays that follow). */
static tgc_jit *run_iters(bench_ctx *b, iters *it) {
  tgc_jit *jit = tgc_jit_new(b->ctx, step, &b->c);
  if (!jit) die("tgc_jit_new");
  for (int i = 0; i < ITERS; i++)
    it->ms[i] = 1e3 * timed_call(b->ctx, jit, &b->c, b->in[i], true, &it->d[i], it->out[i]);
  return jit;
}

static bool bit_equal(const float *x, const float *y) { return !memcmp(x, y, sizeof(float) * NEL); }

/* What every call and replay must satisfy: 100 launches, and from call 3
 * on under TGC_JIT=1/2 nothing but launches. */
static void check_call(delta d, int call, long mode, const char *what) {
  char msg[200];
  const char *bad = d.launches != STAGES ? "launched other than 100 kernels"
                    : call == 1 && d.kernels != STAGES ? "call 1 scheduled other than 100 kernels"
                    : call >= 3 && mode != 0 && (d.nodes || d.schedules || d.lookups || d.compiles)
                        ? "a replay built, scheduled, looked up or compiled something"
                        : NULL;
  if (!bad) return;
  snprintf(msg, sizeof msg, "%s, call %d: %s (launches %llu, kernels scheduled %llu)", what, call, bad,
           (unsigned long long)d.launches, (unsigned long long)d.kernels);
  fail(msg);
}

typedef struct replays {
  int reps;
  double host_s[MAX_REPS], sync_s[MAX_REPS];
  delta sum;
} replays;

/* R replays after the ITERS calls, alternating host-timed and synced;
 * each output must equal the call's output on the same data set. */
static void run_replays(bench_ctx *b, tgc_jit *jit, const iters *it, long mode, replays *rp) {
  float out[NEL];
  for (int r = 0; r < rp->reps; r++)
    for (int synced = 0; synced < 2; synced++) {
      int k = (2 * r + synced) % NDATA;
      delta d;
      double t = timed_call(b->ctx, jit, &b->c, b->in[k], synced, &d, out);
      (synced ? rp->sync_s : rp->host_s)[r] = t;
      check_call(d, 3, mode, "replay");
      delta_add(&rp->sum, d);
      if (!bit_equal(out, it->out[k]))
        fail("replay: the output differs from that of the call on the same input");
    }
}

/* The step without the JIT, each call on a new input (a realized node
 * would be memoised and launch nothing).  Returns the median seconds;
 * ref[k] gets its output on data set k. */
static double run_nojit(bench_ctx *b, float ref[NDATA][NEL]) {
  tgc_tensor *in[NOJIT_CALLS];
  for (int c = 0; c < NOJIT_CALLS; c++) in[c] = upload(b->ctx, data[c % NDATA]);
  double t[NOJIT_CALLS];
  float out[NEL];
  for (int c = 0; c < NOJIT_CALLS; c++) {
    delta d;
    t[c] = timed_call(b->ctx, NULL, &b->c, in[c], true, &d, out);
    check_call(d, 1, 0, "no-JIT step");
    if (c < NDATA) memcpy(ref[c], out, sizeof out);
    else if (!bit_equal(out, ref[c % NDATA])) fail("no-JIT step: the step gave two results on one input");
  }
  return bench_median(t, NOJIT_CALLS);
}

/* The 100 stages as a C loop, median seconds of reps runs. */
static double run_cloop(int reps) {
  static double t[MAX_REPS];
  static float out[NEL];
  volatile float sink = 0;
  for (int r = 0; r < reps; r++) {
    double t0 = bench_now();
    step_f32(data[r % NDATA], out);
    t[r] = bench_now() - t0;
    sink += out[r % NEL];
  }
  (void)sink;
  return bench_median(t, reps);
}

/* ---- checks of the results ------------------------------------------------ */

static void check_results(const iters *cold, const iters *warm, float ref[NDATA][NEL]) {
  static double r64[NEL];
  double worst = 0;
  for (int k = 0; k < NDATA; k++) {
    if (!bit_equal(cold->out[k], ref[k]))
      fail("results: a JIT call's output differs from the step without the JIT");
    if (!bit_equal(warm->out[k], ref[k]))
      fail("results: a warm-cache call's output differs from the step without the JIT");
    step_f64(data[k], r64);
    for (int i = 0; i < NEL; i++) {
      double e = fabs(ref[k][i] - r64[i]) / (1 + fabs(r64[i]));
      if (!(e <= worst)) worst = e; /* NaN sticks */
    }
  }
  if (!(worst <= TOL)) fail("results: outputs differ from the f64 loop by more than 1e-4");
  printf("results: calls 1..%d (both contexts) and every replay equal the step run without the JIT, "
         "bit for bit;\n         largest difference from the f64 loop %.1e (relative to 1 + |ref|; "
         "limit %.0e)\n",
         ITERS, worst, TOL);
}

static uint64_t checksum(const iters *it) { /* FNV-1a over the bytes of calls 1..ITERS */
  uint64_t h = 0xcbf29ce484222325u;
  const unsigned char *p = (const unsigned char *)it->out;
  for (size_t i = 0; i < sizeof it->out; i++) h = (h ^ p[i]) * 0x100000001b3u;
  return h;
}

/* ---- report ------------------------------------------------------------------ */

static const char *phase(int call, long mode) {
  if (mode == 0) return "normal (no JIT)";
  return call == 1 ? "1 run (schedule, compile)" : call == 2 ? "2 capture" : "3+ replay";
}

static void print_iters(const iters *cold, const iters *warm, long mode) {
  printf("\ncall  phase                        cold cache ms  warm cache ms   compiles   disk hits  launches\n");
  for (int i = 0; i < ITERS; i++)
    printf("%4d  %-27s %14.3f %14.3f %6llu/%-4llu %6llu/%-4llu %8llu\n", i + 1, phase(i + 1, mode),
           cold->ms[i], warm->ms[i], (unsigned long long)cold->d[i].compiles,
           (unsigned long long)warm->d[i].compiles, (unsigned long long)cold->d[i].disk_hits,
           (unsigned long long)warm->d[i].disk_hits, (unsigned long long)cold->d[i].launches);
  printf("(compiles and disk hits: cold/warm context; every call ends with a device sync)\n");
}

static const char *mode_name(long mode) {
  return mode == 0 ? "no JIT, every call runs the step"
         : mode == 2 ? "capture and replay, plain launches"
                     : "capture and replay, CUDA graphs where the device has them";
}

static bool parse_args(int argc, char **argv, bool *device_sync, int *reps, bool *help) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help")) *help = true;
    else if (!strcmp(argv[i], "--device-sync")) *device_sync = true;
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) *reps = atoi(argv[++i]);
    else return false;
  }
  return *reps >= 1 && *reps <= MAX_REPS;
}

static char *new_cache_dir(void) {
  const char *tmp = getenv("TMPDIR");
  static char dir[4096];
  snprintf(dir, sizeof dir, "%s/tgc-bench-jit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    perror("jit: mkdtemp");
    exit(1);
  }
  setenv("TGC_CACHE_DIR", dir, 1);
  setenv("TGC_CACHE", "1", 1);
  return dir;
}

static void print_time(const char *what, char n_name, int n, double s, const char *note) {
  printf("%-18s (%c=%d): median %9.2f us per step = %7.3f us per launch%s\n", what, n_name, n, s * 1e6,
         s * 1e6 / STAGES, note);
}

static void print_summary(const char *dev, long mode, bool device_sync, replays *rp, double nojit_s,
                          double cloop_s, uint64_t sum) {
  double host = bench_median(rp->host_s, rp->reps), synced = bench_median(rp->sync_s, rp->reps);
  double head = device_sync ? synced : host;
  printf("\nreplay counters over %d replays: nodes %llu, schedules %llu, cache lookups %llu, "
         "compiles %llu, launches %llu\n",
         2 * rp->reps, (unsigned long long)rp->sum.nodes, (unsigned long long)rp->sum.schedules,
         (unsigned long long)rp->sum.lookups, (unsigned long long)rp->sum.compiles,
         (unsigned long long)rp->sum.launches);
  print_time("replay, host call", 'R', rp->reps, host, "");
  print_time("replay + sync", 'R', rp->reps, synced, "");
  print_time("step without JIT", 'N', NOJIT_CALLS, nojit_s, "  (build, schedule, lookups, launches)");
  printf("no-JIT / replay: %.1fx\n", nojit_s / head);
  printf("plain C loop, the same 100 stages on the host: %.2f us per step (%.3f us per stage)\n",
         cloop_s * 1e6, cloop_s * 1e6 / STAGES);
  if (mode == 0) {
    printf("(TGC_JIT=0: the \"replays\" are normal calls; the aim is for TGC_JIT=1 and 2)\n");
  } else if (!strcmp(dev, "cpu")) {
    /* The replay's time includes the kernels, so per launch it bounds the
     * overhead from above; less the C loop it estimates the overhead, down
     * to the noise of two medians. */
    double per = head * 1e6 / STAGES, est = (head - cloop_s) * 1e6 / STAGES;
    printf("overhead per launch: at most %.3f us (the replay, kernels included); about %.3f us less the C loop%s\n",
           per, est, est < 0.05 ? " (below what this resolves)" : "");
    printf("aim (CPU): replay overhead under 2 us per launch: %s (%.3f us per launch, kernels included)\n",
           per < 2 ? "met" : "NOT met", per);
  } else {
    printf("(on %s each kernel is 1024 elements, so the replay is nearly all launch overhead)\n", dev);
  }
  printf("result: device %s TGC_JIT=%ld replay_us_per_launch %.3f (%s) host_us_per_launch %.3f "
         "synced_us_per_launch %.3f nojit_us_per_launch %.3f\n",
         dev, mode, head * 1e6 / STAGES, device_sync ? "synced" : "host", host * 1e6 / STAGES,
         synced * 1e6 / STAGES, nojit_s * 1e6 / STAGES);
  printf("checksum: %016llx\n", (unsigned long long)sum);
}

/* Replays launched as one device graph so far (CUDA graphs), so a silent
 * fallback to plain launches shows. */
static unsigned long long graph_replays(tgc_ctx *ctx) {
  tgc_stats st;
  tgc_get_stats(ctx, &st);
  return (unsigned long long)st.graph_replays;
}

int main(int argc, char **argv) {
  bool device_sync = false, help = false;
  static replays rp = {.reps = 200};
  bool args_ok = parse_args(argc, argv, &device_sync, &rp.reps, &help);
  if (!args_ok || help) {
    fprintf(args_ok ? stdout : stderr, "usage: jit [--device-sync] [--reps N (1..%d, default 200)]\n",
            MAX_REPS);
    return args_ok ? 0 : 3;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  long mode = getenv("TGC_JIT") && *getenv("TGC_JIT") ? strtol(getenv("TGC_JIT"), NULL, 10) : 1;
  make_data();
  char *dir = new_cache_dir();

  static iters cold, warm;
  static float ref[NDATA][NEL];
  bench_ctx b = open_ctx();
  const char *dev = tgc_ctx_device(b.ctx);
  printf("jit: TGC_JIT=%ld (%s), device %s", mode, mode_name(mode), dev);
  if (!strcmp(dev, "cpu")) printf(", TGC_THREADS=%s", (getenv("TGC_THREADS") ? getenv("TGC_THREADS") : "(all CPUs)"));
  printf("\nstep: x [%d,%d] f32 through %d stages, each its own kernel (%d distinct); new input each call\n",
         ROWS, COLS, STAGES, KINDS);
  tgc_jit *jit = run_iters(&b, &cold);
  for (int i = 0; i < ITERS; i++) check_call(cold.d[i], i + 1, mode, "cold-cache context");
  run_replays(&b, jit, &cold, mode, &rp);
  double nojit_s = run_nojit(&b, ref);
  tgc_stats st;
  tgc_get_stats(b.ctx, &st);
  unsigned long long graphs = graph_replays(b.ctx);
  tgc_jit_free(jit);
  tgc_ctx_free(b.ctx);
  double cloop_s = run_cloop(rp.reps);

  bench_ctx w = open_ctx(); /* the same cache dir: call 1 finds every kernel on disk */
  tgc_jit *wjit = run_iters(&w, &warm);
  for (int i = 0; i < ITERS; i++) check_call(warm.d[i], i + 1, mode, "warm-cache context");
  if (warm.d[0].compiles) fail("warm cache: the warm-cache context compiled kernels");
  tgc_jit_free(wjit);
  tgc_ctx_free(w.ctx);
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);

  print_iters(&cold, &warm, mode);
  printf("graph replays: %llu of %llu replays launched as one device graph\n", graphs,
         (unsigned long long)st.replays);
  if (mode != 0)
    printf("record: %d launches, %llu planned intermediate buffers (%llu bytes)\n", STAGES,
           (unsigned long long)st.replay_buffers, (unsigned long long)st.replay_bytes);
  check_results(&cold, &warm, ref);
  print_summary(dev, mode, device_sync, &rp, nojit_s, cloop_s, checksum(&cold));
  if (failures) fprintf(stderr, "jit: %d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
