/* gpu_check.c - tgc on a GPU: op checks against f64 references, matvec
 * bandwidth next to a device-to-device copy, and the cold compile time of
 * the checks' kernels.  bench/gpu-check.sh runs it with TGC_DEVICE=cuda.
 *
 * The GPU machines it is made for have the driver and the CUDA toolkit but
 * not the packages tgc's test suite needs (no Criterion), and no network,
 * so this is one standalone program linked only against libtgc.a
 * (-ldl -lm -pthread), built where tgc is built and copied over.  Its
 * references are plain loops in f64 written here.  It runs on whatever
 * device TGC_DEVICE names; on the CPU it is how the program itself is
 * tested on machines without a GPU (the copy columns then read n/a).
 *
 *   1. Op checks: elementwise (f32, f16, bf16, casts, i32 integer ops),
 *      reductions over each axis, a 1M-element sum, softmax, rmsnorm*w,
 *      layernorm, matmul, batched matmul, matvec in the LLaMA layout,
 *      movement views fed into an add, cat and embedding; one line each,
 *      then a count.  Then, unless --no-noopt, the same checks again in a
 *      context made with TGC_NOOPT=1 (no GPU opts), after the matvec table
 *      so that a timeout there costs nothing else.
 *   2. Matvec y = x[1,K] @ transpose(W[N,K]) (GGUF's [N,K] row-major
 *      weights) for K=N=4096 in f32 and f16 and for Llama-3.2-1B's FFN
 *      matrix (N=8192, K=2048) in f16.  "kernel": the schedule's kernels
 *      launched directly (internal API: schedule and programs are made once,
 *      then only launches are timed), R launches back to back between CUDA
 *      events, median of the per-launch intervals.  "realize": tgc_realize
 *      of a fresh graph (new x, built before the clock) between two device
 *      timer reads, so it includes scheduling and the launch.  Both rotate
 *      over enough copies of W (>= 256 MiB in all) that no launch finds its
 *      weights in L2 (50 MiB on an H100).  The copy is cuMemcpyDtoDAsync of
 *      the weights' byte size, timed the same way over as many buffer pairs.
 *      GB/s of a matvec = bytes it reads (W and x) / time; copy GB/s is
 *      given as (read + written) / time, the device's achievable bandwidth
 *      and the ratio's baseline, and as read bytes / time.  Each row's y is
 *      first checked against its f64 reference: a fast wrong kernel fails.
 *   3. Compile: the kernels compiled during part 1's first pass and the
 *      wall time spent compiling (tgc_get_stats).  With an empty
 *      TGC_CACHE_DIR that is the cold NVRTC time; the script runs the
 *      program a second time on the same cache for the warm figure.
 *
 *   gpu_check [--checks-only] [--no-noopt] [--reps N] [--help]
 *
 * --checks-only: no matvec table; --no-noopt: no TGC_NOOPT=1 pass;
 * --reps: timed repetitions per figure (default 50).
 *
 * Exit status: 0 when everything passed, 1 when a check failed (or a
 * matvec result was wrong, or a timing could not be taken), 2 when the
 * device cannot be opened, 3 on bad usage.
 *
 * This file is the program: the matvec table, the summary and main.  The
 * op checks and their f64 references are in bench/gpu/checks.c, the CUDA
 * driver (copy baseline, events) and the timing in bench/gpu/cudadrv.c;
 * the Makefile and bench/gpu-check.sh link the three together.
 */
#include "tgc_internal.h"

#include <math.h>
#include "bench.h"
#include "gpu/checks.h"
#include "gpu/cudadrv.h"

#define ROTATE_BYTES ((size_t)256 << 20) /* bytes of weights cycled through: > 5x L2 */

/* ---- matvec ------------------------------------------------------------------ */

typedef struct mv_row {
  const char *name;
  int64_t n, k;
  tgc_dtype dt;
  int copies;                /* weight copies rotated through */
  double kernel_s, realize_s; /* medians; < 0 when not measured */
  double copy_s;              /* median of a copy of the weights' size; < 0: n/a */
  char opts[320];             /* the kernel's launch and opts, or what went wrong */
  bool ok;                    /* result right and every timing taken */
} mv_row;

/* One rotating copy of the weights, with a schedule ready to launch. */
typedef struct mv_copy {
  tgc_tensor *w;          /* [N,K] */
  tgc_schedule *sched;    /* of x @ transpose(w), for the direct launches */
  tgc_program **progs;    /* one per kernel of sched */
} mv_copy;

typedef struct mv_bench {
  tgc_ctx *ctx;
  mv_row *row;
  void *x;        /* [K] host values in the row's dtype */
  mv_copy *cp;    /* [copies] */
} mv_bench;

static tgc_tensor *mv_graph(mv_bench *b, tgc_tensor *w) {
  tgc_tensor *x = tgc_from_data(b->ctx, b->row->dt, SH(1, b->row->k), b->x);
  return tgc_matmul(x, tgc_transpose(w, 0, 1));
}

/* Schedules x @ W^T for one copy, gets its programs and gives every kernel
 * its output buffer, so that launching is all that is left. */
static tgc_status mv_prepare(mv_bench *b, mv_copy *c) {
  tgc_tensor *y = mv_graph(b, c->w);
  if (!y || !(c->sched = tgc_schedule_new(b->ctx, 1, &y))) return tgc_last_status();
  tgc_schedule *s = c->sched;
  tgc_uop **asts = tgc_xmalloc(sizeof *asts * (size_t)(s->nkernels + 1));
  c->progs = tgc_xcalloc((size_t)s->nkernels + 1, sizeof *c->progs);
  for (int i = 0; i < s->nkernels; i++) asts[i] = s->kernels[i].ast;
  tgc_status st = tgc_programs_get(b->ctx, s->nkernels, asts, c->progs);
  free(asts);
  for (int i = 0; i < s->nkernels && !st; i++) {
    tgc_uop *out = s->kernels[i].out;
    if (!out->buf && !(out->buf = tgc_buffer_new(b->ctx, (tgc_dtype)out->dtype, (size_t)tgc_numel(out))))
      st = tgc_last_status();
  }
  return st;
}

/* work_fn: launches copy i's kernels (as run_kernel in realize.c does). */
static tgc_status mv_launch(void *arg, int i) {
  mv_bench *b = arg;
  const tgc_schedule *s = b->cp[i].sched;
  tgc_status st = TGC_OK;
  for (int k = 0; k < s->nkernels && !st; k++) {
    void *bufs[64];
    TGC_ASSERT(s->kernels[k].nbufs <= 64);
    for (int j = 0; j < s->kernels[k].nbufs; j++) bufs[j] = s->kernels[k].bufnodes[j]->buf->ptr;
    st = b->ctx->dev->launch(b->ctx->dev, b->cp[i].progs[k], bufs, NULL);
  }
  return st;
}

/* Median of tgc_realize of a fresh graph (built before the clock). */
static double mv_time_realize(mv_bench *b, int reps) {
  tgc_device *dev = b->ctx->dev;
  double t[MAX_REPS];
  for (int r = 0; r < reps; r++) {
    tgc_tensor *y = mv_graph(b, b->cp[r % b->row->copies].w);
    if (!y) return -1;
    double t0 = dev->timer(dev);
    if (tgc_realize(b->ctx, 1, &y) != TGC_OK || dev->sync(dev) != TGC_OK) return -1;
    t[r] = dev->timer(dev) - t0;
    if (isnan(t[r])) return -1; /* the timer failed; its error is set */
    /* y is not used again: its memory goes back to the device's cache, so
     * each realize allocates as in a steady loop, not from the driver. */
    tgc_buffer_unref(y->buf);
    y->buf = NULL;
  }
  return bench_median(t, reps);
}

/* Host weights and x in the row's dtype, and y's f64 reference. */
static void *mv_host(const mv_row *row, void **x, double *want, double *mag) {
  size_t es = tgc_dtype_size(row->dt);
  void *w = tgc_xmalloc(es * (size_t)(row->n * row->k));
  *x = hmem(es * (size_t)row->k);
  uint64_t seed = 42;
  for (int64_t i = 0; i < row->n * row->k; i++) store(row->dt, w, i, (double)(rng_next(&seed) >> 11) * 0x1p-52 - 1);
  for (int64_t i = 0; i < row->k; i++) store(row->dt, *x, i, (double)(rng_next(&seed) >> 11) * 0x1p-52 - 1);
  for (int64_t j = 0; j < row->n; j++) {
    double acc = 0, m = 0;
    for (int64_t i = 0; i < row->k; i++) {
      double p = load(row->dt, *x, i) * load(row->dt, w, j * row->k + i);
      acc += p, m += fabs(p);
    }
    want[j] = acc, mag[j] = m;
  }
  return w;
}

/* The first kernel's launch (on a GPU) and opts, for the log. */
static void mv_describe(mv_row *row, const mv_copy *c) {
  const tgc_prog_info *p = &c->progs[0]->info;
  char dims[96] = "";
  if (p->block[0] > 0)
    snprintf(dims, sizeof dims, "; grid %lldx%lldx%lld, block %lldx%lldx%lld", (long long)p->grid[0],
             (long long)p->grid[1], (long long)p->grid[2], (long long)p->block[0],
             (long long)p->block[1], (long long)p->block[2]);
  snprintf(row->opts, sizeof row->opts, "%d kernel%s%s; opts %s", c->sched->nkernels,
           c->sched->nkernels == 1 ? "" : "s", dims, p->opts[0] ? p->opts : "none");
}

/* Uploads the copies, checks y once, then times kernel, realize and copy. */
static tgc_status mv_measure(mv_bench *b, suite *s, gpu *g, int reps, const void *w,
                             const double *want, const double *mag) {
  mv_row *row = b->row;
  for (int i = 0; i < row->copies; i++)
    if (!(b->cp[i].w = tgc_from_data(b->ctx, row->dt, SH(row->n, row->k), w))) return tgc_last_status();
  char label[96];
  snprintf(label, sizeof label, "matvec %s: y of the timed graph", row->name);
  int fails = s->fail;
  expect(s, label, mv_graph(b, b->cp[0].w), row->n, want, mag, tol_dot(row->dt));
  if (s->fail != fails) return tgc_set_error(TGC_ERR_DEVICE, "wrong result");
  for (int i = 0; i < row->copies; i++)
    if (mv_prepare(b, &b->cp[i]) != TGC_OK) return tgc_last_status();
  mv_describe(row, &b->cp[0]);
  tgc_device *dev = b->ctx->dev;
  if ((row->kernel_s = time_work(dev, g, mv_launch, b, row->copies, reps)) < 0) return tgc_last_status();
  if ((row->realize_s = mv_time_realize(b, reps)) < 0) return tgc_last_status();
  size_t wbytes = tgc_dtype_size(row->dt) * (size_t)(row->n * row->k);
  if (g && (row->copy_s = time_copy(g, dev, wbytes, row->copies, reps)) < 0) return tgc_last_status();
  return TGC_OK;
}

/* One row of the table, in a context of its own (its weights' memory goes
 * with it). */
static void mv_run(mv_row *row, suite *s, gpu *g, int reps) {
  row->kernel_s = row->realize_s = row->copy_s = -1;
  size_t wbytes = tgc_dtype_size(row->dt) * (size_t)(row->n * row->k);
  row->copies = (int)((ROTATE_BYTES + wbytes - 1) / wbytes);
  row->copies = row->copies < 2 ? 2 : row->copies > 64 ? 64 : row->copies;
  mv_bench b = {.row = row, .ctx = tgc_ctx_new()};
  if (!b.ctx) {
    s->fail++;
    snprintf(row->opts, sizeof row->opts, "FAILED: %s", tgc_last_error());
    return;
  }
  double *want = dmem(row->n), *mag = dmem(row->n);
  void *w = mv_host(row, &b.x, want, mag);
  b.cp = tgc_xcalloc((size_t)row->copies, sizeof *b.cp);
  double t0 = tgc_now();
  row->ok = mv_measure(&b, s, g, reps, w, want, mag) == TGC_OK;
  if (!row->ok) snprintf(row->opts, sizeof row->opts, "FAILED: %s", tgc_last_error());
  printf("      matvec %s: %s (%.1f s)\n", row->name, row->opts, tgc_now() - t0);
  fflush(stdout);
  for (int i = 0; i < row->copies; i++) {
    tgc_schedule_free(b.cp[i].sched);
    free(b.cp[i].progs);
  }
  free(b.cp);
  free(w);
  tgc_ctx_free(b.ctx);
  hfree();
}

/* ---- the table --------------------------------------------------------------- */

typedef struct report {
  char device[256];
  int reps;
  mv_row rows[3];
  int nrows;
  tgc_stats compile;   /* after the first pass of op checks */
  double checks_s;     /* its wall time */
  suite checks, noopt; /* noopt.tag is NULL when it did not run */
  suite bench;         /* the matvec result checks */
} report;

/* GB/s in a column of the given width, or n/a when s was not measured. */
static void print_gbs(double bytes, double s, int width) {
  if (s > 0) printf(" %*.0f", width, bytes / s * 1e-9);
  else printf(" %*s", width, "n/a");
}

static void print_row(const mv_row *r) {
  double w = (double)tgc_dtype_size(r->dt) * (double)(r->n * r->k), read = w + (double)tgc_dtype_size(r->dt) * (double)r->k;
  printf("%-20s %7.1f %6d", r->name, w / 1048576, r->copies);
  if (r->kernel_s > 0) printf(" %10.2f", r->kernel_s * 1e6); else printf(" %10s", "n/a");
  print_gbs(read, r->kernel_s, 7);
  if (r->realize_s > 0) printf(" | %10.2f", r->realize_s * 1e6); else printf(" | %10s", "n/a");
  print_gbs(read, r->realize_s, 7);
  if (r->copy_s > 0) printf(" | %8.2f", r->copy_s * 1e6); else printf(" | %8s", "n/a");
  print_gbs(2 * w, r->copy_s, 9);
  print_gbs(w, r->copy_s, 7);
  if (r->kernel_s > 0 && r->copy_s > 0) printf(" | %5.1f%%", 100 * (read / r->kernel_s) / (2 * w / r->copy_s));
  else printf(" | %6s", "n/a");
  printf("%s\n", r->ok ? "" : "  FAILED");
}

static void print_counts(const char *what, const suite *s) {
  printf("op checks (%s): %d of %d passed%s\n", what, s->pass, s->pass + s->fail,
         s->fail ? ", FAILURES above" : "");
}

static void print_table(const report *rp) {
  printf("\n== gpu_check table: %s\n", rp->device);
  if (rp->nrows) {
    printf("matvec y = x[1,K] @ transpose(W[N,K]), weights [N,K] row-major as GGUF stores them; medians of %d\n", rp->reps);
    printf("  kernel: the launch alone (on CUDA back to back, timed by events); realize: tgc_realize of\n"
           "  a fresh graph, scheduling and launch included; both cycle through `copies` copies of W.\n"
           "  GB/s: bytes read (W and x) / time.  copy: cuMemcpyDtoDAsync of W's size: r+w = (read +\n"
           "  written) / time, r = read / time.  ratio = kernel GB/s / copy r+w GB/s (aim: f16 >= 80%%)\n");
    printf("%-20s %7s %6s %10s %7s | %10s %7s | %8s %9s %7s | %6s\n", "case", "W MiB", "copies",
           "kernel us", "GB/s", "realize us", "GB/s", "copy us", "r+w GB/s", "r GB/s", "ratio");
    for (int i = 0; i < rp->nrows; i++) print_row(&rp->rows[i]);
  }
  const tgc_stats *c = &rp->compile;
  printf("compile: %llu kernels compiled in %.2f s (%llu compiler runs; %llu disk hits) during the op checks, "
         "which took %.2f s\n",
         (unsigned long long)c->compiles, c->compile_seconds, (unsigned long long)c->compiler_runs,
         (unsigned long long)c->cache_disk_hits, rp->checks_s);
  print_counts("default opts", &rp->checks);
  if (rp->noopt.tag) print_counts("TGC_NOOPT=1", &rp->noopt);
  if (rp->nrows) printf("matvec results: %d of %d right\n", rp->bench.pass, rp->bench.pass + rp->bench.fail);
}

/* ---- main ---------------------------------------------------------------------- */

static void describe_device(report *rp, tgc_ctx *ctx, const gpu *g) {
  const char *dev = tgc_ctx_device(ctx);
  if (g) {
    const char *nv = tgc_nvrtc_version();
    snprintf(rp->device, sizeof rp->device, "%s: %s (sm_%d%d), %s", dev, g->name, g->cc_major,
             g->cc_minor, nv ? nv : "nvrtc ?");
  } else {
    snprintf(rp->device, sizeof rp->device, "%s", dev);
  }
  tgc_clear_error();
}

/* The op checks in a fresh context; with noopt, one made under TGC_NOOPT=1. */
static bool run_pass(suite *s, const char *tag, bool noopt, tgc_stats *stats, double *secs) {
  if (noopt) setenv("TGC_NOOPT", "1", 1);
  *s = (suite){.ctx = tgc_ctx_new(), .tag = tag};
  if (noopt) unsetenv("TGC_NOOPT");
  if (!s->ctx) return false;
  printf("\n== op checks on %s%s\n", tgc_ctx_device(s->ctx), noopt ? " with TGC_NOOPT=1" : "");
  double t0 = tgc_now();
  run_checks(s);
  if (secs) *secs = tgc_now() - t0;
  if (stats) tgc_get_stats(s->ctx, stats);
  tgc_ctx_free(s->ctx);
  s->ctx = NULL;
  return true;
}

static void run_bench(report *rp, gpu *g) {
  static const mv_row rows[] = {
      {.name = "K=N=4096 f32", .n = 4096, .k = 4096, .dt = TGC_F32},
      {.name = "K=N=4096 f16", .n = 4096, .k = 4096, .dt = TGC_F16},
      {.name = "FFN 8192x2048 f16", .n = 8192, .k = 2048, .dt = TGC_F16},
  };
  printf("\n== matvec (%d repetitions each)\n", rp->reps);
  rp->bench = (suite){.tag = ""};
  for (int i = 0; i < COUNT(rows); i++) {
    rp->rows[i] = rows[i];
    mv_run(&rp->rows[i], &rp->bench, g, rp->reps);
    rp->nrows = i + 1;
  }
}

static bool parse_args(int argc, char **argv, bool *bench, bool *noopt, int *reps, bool *help) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help")) *help = true;
    else if (!strcmp(argv[i], "--checks-only")) *bench = false;
    else if (!strcmp(argv[i], "--no-noopt")) *noopt = false;
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) *reps = atoi(argv[++i]);
    else return false;
  }
  return *reps >= 1 && *reps <= MAX_REPS;
}

int main(int argc, char **argv) {
  bool bench = true, noopt = true, help = false;
  static report rp = {.reps = 50};
  bool args_ok = parse_args(argc, argv, &bench, &noopt, &rp.reps, &help);
  if (!args_ok || help) {
    fprintf(args_ok ? stdout : stderr,
            "usage: gpu_check [--checks-only] [--no-noopt] [--reps N (1..%d, default 50)]\n", MAX_REPS);
    return args_ok ? 0 : 3;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  tgc_ctx *probe = tgc_ctx_new();
  if (!probe) {
    fprintf(stderr, "gpu_check: cannot open the device (TGC_DEVICE=%s): %s\n",
            tgc_env_str("TGC_DEVICE", "auto"), tgc_last_error());
    return 2;
  }
  gpu *g = NULL;
  if (!strcmp(tgc_ctx_device(probe), "cuda") && !(g = gpu_open()))
    printf("gpu_check: no copy baseline or events: %s\n", tgc_last_error());
  describe_device(&rp, probe, g);
  tgc_ctx_free(probe);
  printf("gpu_check: device %s\n", rp.device);
  if (!run_pass(&rp.checks, "", false, &rp.compile, &rp.checks_s)) {
    fprintf(stderr, "gpu_check: %s\n", tgc_last_error());
    return 2;
  }
  if (bench) run_bench(&rp, g);
  if (noopt && !run_pass(&rp.noopt, " [noopt]", true, NULL, NULL)) rp.noopt.fail = 1;
  print_table(&rp);
  gpu_close(g);
  bool ok = !rp.checks.fail && !rp.noopt.fail && !rp.bench.fail;
  for (int i = 0; i < rp.nrows; i++) ok = ok && rp.rows[i].ok;
  return ok ? 0 : 1;
}
