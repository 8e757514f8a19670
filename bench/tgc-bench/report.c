/* report.c - what tgc-bench prints: per weight type, the comparison
 * table (one column per framework that ran), the analysis lines (ratios
 * with their p-values, numeric agreement, bandwidth against the read
 * baseline on the CPU or the device copy on CUDA), the statistics of every measured metric with a warning where
 * the spread is large, and the --timing and --profile sections.
 *
 * A table row is data (a label and a function that formats one
 * framework's cell), so the rows read as the list of metrics they are.
 */
#include "tgc_bench.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#define CV_WARN 0.1 /* a coefficient of variation above this gets a warning */
#define COL 13      /* width of a framework column */

static const char *wname(const tb_report *r) { return r->o->model_path ? r->o->model_path : r->o->model; }

/* ---- the comparison table ------------------------------------------------------------ */

typedef void (*cell_fn)(char *out, size_t cap, const tb_run *run, const tb_fw_result *f);

static void num(char *out, size_t cap, const tb_stat *s, double scale, const char *fmt) {
  if (s->n == 0)
    snprintf(out, cap, "-");
  else
    snprintf(out, cap, fmt, s->median * scale);
}

static void c_load(char *o, size_t c, const tb_run *r, const tb_fw_result *f) { (void)r, num(o, c, &f->load, 1, "%.3f"); }
static void c_empty(char *o, size_t c, const tb_run *r, const tb_fw_result *f) { (void)r, num(o, c, &f->cold_empty, 1, "%.1f"); }
static void c_warm(char *o, size_t c, const tb_run *r, const tb_fw_result *f) { (void)r, num(o, c, &f->cold_warm, 1, "%.1f"); }
static void c_steady(char *o, size_t c, const tb_run *r, const tb_fw_result *f) { (void)r, num(o, c, &f->steady, 1, "%.3f"); }
static void c_rss(char *o, size_t c, const tb_run *r, const tb_fw_result *f) { (void)r, num(o, c, &f->rss_gb, 1, "%.3f"); }
static void c_peak(char *o, size_t c, const tb_run *r, const tb_fw_result *f) { (void)r, num(o, c, &f->tgc_peak_gb, 1, "%.3f"); }
static void c_prec(char *o, size_t c, const tb_run *r, const tb_fw_result *f) { (void)r, snprintf(o, c, "%s", f->precision); }

static void c_tok(char *o, size_t c, const tb_run *r, const tb_fw_result *f) {
  (void)r;
  if (f->tok_s > 0)
    snprintf(o, c, "%.1f", f->tok_s);
  else
    snprintf(o, c, "-");
}

static void c_gbs(char *o, size_t c, const tb_run *r, const tb_fw_result *f) {
  (void)r;
  if (f->weight_gbs > 0)
    snprintf(o, c, "%.2f", f->weight_gbs);
  else
    snprintf(o, c, "-");
}

static void c_frac(char *o, size_t c, const tb_run *r, const tb_fw_result *f) {
  if (r->base_gbs.n > 0 && f->weight_gbs > 0)
    snprintf(o, c, "%.0f%%", 100 * f->weight_gbs / r->base_gbs.median);
  else
    snprintf(o, c, "-");
}

static void c_copy(char *o, size_t c, const tb_run *r, const tb_fw_result *f) {
  if (r->copy_gbs.n > 0 && f->weight_gbs > 0)
    snprintf(o, c, "%.0f%%", 100 * f->weight_gbs / r->copy_gbs.median);
  else
    snprintf(o, c, "-");
}

/* Which fraction row a run shows: the device copy's where one was tried
 * (CUDA: samples, or the reason there are none), else the read baseline's
 * as before (a row of "-" off the CPU). */
static bool copy_tried(const tb_run *r) { return r->copy_gbs.n > 0 || r->copy_why[0]; }
static bool copy_not_tried(const tb_run *r) { return !copy_tried(r); }

static const struct {
  const char *label;
  cell_fn cell;
  bool (*shown)(const tb_run *run); /* NULL: always */
} rows[] = {
    {"model load (s)", c_load, NULL},
    {"cold start, empty cache (ms)", c_empty, NULL},
    {"cold start, warm cache (ms)", c_warm, NULL},
    {"steady state (ms/token)", c_steady, NULL},
    {"throughput (tok/s)", c_tok, NULL},
    {"peak memory, RSS (GB)", c_rss, NULL},
    {"peak memory, tgc buffers (GB)", c_peak, NULL},
    {"precision (weights/compute)", c_prec, NULL},
    {"weights read (GB/s)", c_gbs, NULL},
    {"  of the read baseline", c_frac, copy_not_tried},
    {"  of the device copy (r+w)", c_copy, copy_tried},
};

/* The line under the table that says what the fraction row is measured
 * against, or why there is none. */
static void baseline_line(FILE *f, const tb_report *r, const tb_run *run) {
  if (run->base_gbs.n > 0)
    fprintf(f, "read baseline: %.2f GB/s (%.1f MB, the bytes a step reads, summed by %d threads; median of %d)\n",
            run->base_gbs.median, run->step_bytes / 1e6, r->mach.threads, run->base_gbs.n);
  else if (run->copy_gbs.n > 0)
    fprintf(f, "device copy baseline: %.2f GB/s = (read + written) bytes / time, as bench/gpu_check's r+w GB/s "
               "(cuMemcpyDtoDAsync of %.1f MB, the bytes a step reads, so %.1f MB moved per copy; median of %d "
               "copies, one after every step)\n",
            run->copy_gbs.median, run->step_bytes / 1e6, 2 * run->step_bytes / 1e6, run->copy_gbs.n);
  else if (!strcmp(r->mach.device, "cuda"))
    fprintf(f, "device copy baseline: not measured: %s\n", run->copy_why[0] ? run->copy_why : "no copy was timed");
  else
    fprintf(f, "read baseline: not measured (the host baseline is only meaningful on the CPU device; the device copy "
               "baseline is measured on CUDA only)\n");
  if (run->copy_gbs.n > 0 && run->copy_why[0]) fprintf(f, "device copy baseline: stopped early: %s\n", run->copy_why);
}

static void print_table(FILE *f, const tb_report *r, const tb_run *run) {
  fprintf(f, "\n%-32s", "");
  for (int fw = 0; fw < TB_NFW; fw++)
    if (run->fw[fw].ran) fprintf(f, "%*s", COL, tb_fw_names[fw]);
  fprintf(f, "\n");
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    if (rows[i].shown && !rows[i].shown(run)) continue;
    fprintf(f, "%-32s", rows[i].label);
    for (int fw = 0; fw < TB_NFW; fw++) {
      char cell[64];
      if (!run->fw[fw].ran) continue;
      rows[i].cell(cell, sizeof cell, run, &run->fw[fw]);
      fprintf(f, "%*s", COL, cell);
    }
    fprintf(f, "\n");
  }
  baseline_line(f, r, run);
}

/* ---- analysis ---------------------------------------------------------------------- */

static void ratio_line(FILE *f, const char *what, double tgc, double other, const char *name, double p) {
  if (!(tgc > 0 && other > 0)) return;
  double x = other / tgc;
  fprintf(f, "tgc %s is %.2fx %s than %s", what, x >= 1 ? x : 1 / x, x >= 1 ? "faster" : "slower", name);
  if (!isnan(p)) fprintf(f, " (p = %.3g%s)", p, p < 0.05 ? "" : ", not significant at 0.05");
  fprintf(f, "\n");
}

static void analysis(FILE *f, const tb_run *run) {
  const tb_fw_result *t = &run->fw[TB_TGC];
  fprintf(f, "\n");
  for (int fw = TB_TGC + 1; fw < TB_NFW; fw++) {
    const tb_fw_result *o = &run->fw[fw];
    if (!o->ran) continue;
    ratio_line(f, "steady state", t->steady.median, o->steady.median, tb_fw_names[fw], o->p_value);
    ratio_line(f, "cold start (empty cache)", t->cold_empty.median, o->cold_empty.median, tb_fw_names[fw], NAN);
    ratio_line(f, "cold start (warm cache)", t->cold_warm.median, o->cold_warm.median, tb_fw_names[fw], NAN);
    const tb_agree *a = &o->agree;
    fprintf(f, "%s vs tgc, same tokens, %d steps: max |diff| %.3g, max rel %.3g, cosine >= %.6f, top-1 %d/%d\n",
            tb_fw_names[fw], a->steps, a->max_abs, a->max_rel, a->cos_min, a->top1, a->steps);
  }
  if (run->base_gbs.n > 0 && t->weight_gbs > 0)
    fprintf(f, "tgc reads its weights at %.2f GB/s, %.0f%% of the read baseline (%.2f GB/s)\n", t->weight_gbs,
            100 * t->weight_gbs / run->base_gbs.median, run->base_gbs.median);
  if (run->copy_gbs.n > 0 && t->weight_gbs > 0)
    fprintf(f, "tgc reads its weights at %.2f GB/s, %.0f%% of the device copy (%.2f GB/s read + written)\n",
            t->weight_gbs, 100 * t->weight_gbs / run->copy_gbs.median, run->copy_gbs.median);
}

/* ---- statistics -------------------------------------------------------------------- */

static const struct {
  const char *label;
  size_t off; /* offsetof(tb_fw_result, a tb_stat) */
} stat_rows[] = {
    {"steady state (ms)", offsetof(tb_fw_result, steady)},
    {"cold start, empty (ms)", offsetof(tb_fw_result, cold_empty)},
    {"cold start, warm (ms)", offsetof(tb_fw_result, cold_warm)},
    {"model load (s)", offsetof(tb_fw_result, load)},
    {"peak RSS (GB)", offsetof(tb_fw_result, rss_gb)},
};

static const tb_stat *stat_at(const tb_fw_result *f, int row) {
  return (const tb_stat *)((const char *)f + stat_rows[row].off);
}

static void statistics(FILE *f, const tb_run *run) {
  fprintf(f, "\n%-34s %4s %11s %11s %11s %7s\n", "statistics", "n", "median", "p10", "p90", "CV");
  for (int fw = 0; fw < TB_NFW; fw++)
    for (int i = 0; run->fw[fw].ran && i < (int)(sizeof stat_rows / sizeof stat_rows[0]); i++) {
      const tb_stat *s = stat_at(&run->fw[fw], i);
      if (s->n == 0) continue;
      char label[64];
      snprintf(label, sizeof label, "%s %s", tb_fw_names[fw], stat_rows[i].label);
      fprintf(f, "%-34s %4d %11.4g %11.4g %11.4g %7.3f\n", label, s->n, s->median, s->p10, s->p90, s->cv);
    }
  if (run->base_gbs.n > 0)
    fprintf(f, "%-34s %4d %11.4g %11.4g %11.4g %7.3f\n", "read baseline (GB/s)", run->base_gbs.n,
            run->base_gbs.median, run->base_gbs.p10, run->base_gbs.p90, run->base_gbs.cv);
  if (run->copy_gbs.n > 0)
    fprintf(f, "%-34s %4d %11.4g %11.4g %11.4g %7.3f\n", "device copy (GB/s, r+w)", run->copy_gbs.n,
            run->copy_gbs.median, run->copy_gbs.p10, run->copy_gbs.p90, run->copy_gbs.cv);
}

void tb_print_warnings(FILE *f, const tb_report *r) {
  for (int i = 0; i < r->nruns; i++) {
    const tb_run *run = &r->runs[i];
    for (int fw = 0; fw < TB_NFW; fw++)
      for (int k = 0; run->fw[fw].ran && k < (int)(sizeof stat_rows / sizeof stat_rows[0]); k++) {
        const tb_stat *s = stat_at(&run->fw[fw], k);
        if (s->n > 1 && s->cv > CV_WARN)
          fprintf(f, "warning: %s %s %s varies: CV %.3f > %.1f over %d values (a busy machine? more --iterations "
                     "or --cold-runs narrow it)\n",
                  run->qname, tb_fw_names[fw], stat_rows[k].label, s->cv, CV_WARN, s->n);
      }
    if (run->base_gbs.n > 1 && run->base_gbs.cv > CV_WARN)
      fprintf(f, "warning: %s read baseline varies: CV %.3f > %.1f\n", run->qname, run->base_gbs.cv, CV_WARN);
    if (run->copy_gbs.n > 1 && run->copy_gbs.cv > CV_WARN)
      fprintf(f, "warning: %s device copy baseline varies: CV %.3f > %.1f\n", run->qname, run->copy_gbs.cv, CV_WARN);
    if (run->fw[TB_TGC].steady.n == 0)
      fprintf(f, "warning: no steady state with --iterations %d (it starts at iteration %d)\n", r->o->iterations,
              TB_STEADY_FROM);
  }
}

void tb_print_report(FILE *f, const tb_report *r) {
  fprintf(f, "tgc-bench: %s, %d cores, %.1f GB; device %s, %d threads (tgc and libtorch); commit %.12s%s\n", r->mach.cpu,
          r->mach.cores, r->mach.memory_gb, r->mach.device, r->mach.threads, r->mach.commit, r->mach.dirty ? " (dirty)" : "");
  if (r->torch_describe[0]) fprintf(f, "torch: %s\n", r->torch_describe);
  if (r->o->tgc_added) fprintf(f, "tgc: runs too, as the reference: torch is fed tgc's tokens and compared with it\n");
  for (int fw = 0; fw < TB_NFW; fw++)
    if (r->o->fw[fw] && !r->avail[fw]) fprintf(f, "%s: not available: %s\n", tb_fw_names[fw], r->why[fw]);
  for (int i = 0; i < r->nruns; i++) {
    const tb_run *run = &r->runs[i];
    fprintf(f, "\n== %s, %s weights: prompt %d tokens (prefill), %d iterations (decode steps); steady state = "
               "median of iterations %d-%d; cold start = median of %d fresh processes\n",
            wname(r), run->qname, r->o->prompt_len, r->o->iterations, TB_STEADY_FROM, r->o->iterations, r->o->cold_runs);
    for (int fw = 0; fw < TB_NFW; fw++)
      if (r->avail[fw] && run->fw[fw].why[0]) fprintf(f, "%s: %s\n", tb_fw_names[fw], run->fw[fw].why);
    print_table(f, r, run);
    analysis(f, run);
    statistics(f, run);
  }
}

/* ---- --timing ------------------------------------------------------------------------ */

void tb_print_timing(FILE *f, const tb_report *r) {
  for (int i = 0; i < r->nruns; i++) {
    const tb_run *run = &r->runs[i];
    fprintf(f, "\nper-iteration latency (ms), %s %s; iteration 1 is cold (tgc schedules and compiles, torch "
               "translates the graph); tgc's 2 records the JIT, 3 is its first replay\n%-14s",
            wname(r), run->qname, "iteration");
    for (int fw = 0; fw < TB_NFW; fw++)
      if (run->fw[fw].ran) fprintf(f, "%*s", COL, tb_fw_names[fw]);
    fprintf(f, "\n");
    for (int it = 0; it < r->o->iterations; it++) {
      fprintf(f, "%6d %-7s", it + 1, it == 0 ? "cold" : it + 1 < TB_STEADY_FROM ? "warm-up" : "");
      for (int fw = 0; fw < TB_NFW; fw++)
        if (run->fw[fw].ran) fprintf(f, "%*.3f", COL, run->fw[fw].iter_ms[it]);
      fprintf(f, "\n");
    }
    fprintf(f, "%-14s", "1 / steady");
    for (int fw = 0; fw < TB_NFW; fw++) {
      const tb_fw_result *x = &run->fw[fw];
      if (!x->ran) continue;
      char cell[32] = "-";
      if (x->steady.n > 0) snprintf(cell, sizeof cell, "%.1fx", x->iter_ms[0] / x->steady.median);
      fprintf(f, "%*s", COL, cell);
    }
    fprintf(f, "\n(1 / steady: how much faster the steady state is than iteration 1)");
    fprintf(f, "\n");
  }
}

/* ---- --profile ----------------------------------------------------------------------- */

static void memory_breakdown(FILE *f, const tb_run *run) {
  const tb_fw_result *t = &run->fw[TB_TGC];
  double peak = t->tgc_peak_gb.median * 1e9, other = peak - run->all_weight_bytes - run->cache_bytes;
  fprintf(f, "\nmemory, tgc %s:\n", run->qname);
  fprintf(f, "  %-34s %10.1f MB  (a decode step reads %.1f MB of them)\n", "weights", run->all_weight_bytes / 1e6,
          run->step_bytes / 1e6);
  fprintf(f, "  %-34s %10.1f MB\n", "KV cache", run->cache_bytes / 1e6);
  fprintf(f, "  %-34s %10.1f MB  (tgc's peak buffers - weights - KV cache)\n", "activations and runtime buffers",
          other > 0 ? other / 1e6 : 0);
  fprintf(f, "  %-34s %10.1f MB\n", "tgc peak buffers", peak / 1e6);
  for (int fw = 0; fw < TB_NFW; fw++)
    if (run->fw[fw].ran && run->fw[fw].rss_gb.n > 0) {
      char label[64];
      snprintf(label, sizeof label, "peak RSS, %s", tb_fw_names[fw]);
      fprintf(f, "  %-34s %10.1f MB  (process total: code, libraries, host copies)\n", label,
              run->fw[fw].rss_gb.median * 1e3);
    }
}

static void kernel_table(FILE *f, const tb_run *run) {
  if (!run->nkernels) {
    fprintf(f, "\nkernels: no profile: %s\n", run->profile_why[0] ? run->profile_why : "not run");
    return;
  }
  double total = 0;
  int launches = 0;
  for (int i = 0; i < run->nkernels; i++) total += run->kernels[i].us, launches += run->kernels[i].launches;
  fprintf(f, "\nkernels of the steady-state step, tgc %s (TGC_DEBUG=2 in a child: mean of %d steps, every launch "
             "synchronized)\n",
          run->qname, run->profile_steps);
  fprintf(f, "  %-44s %8s %10s %7s %9s %8s\n", "kernel", "launches", "us/step", "share", "GFLOP/s", "GB/s");
  for (int i = 0; i < run->nkernels; i++) {
    const tb_kernel *k = &run->kernels[i];
    double s = k->us * 1e-6;
    fprintf(f, "  %-44s %8d %10.1f %6.1f%% %9.2f %8.2f\n", k->name, k->launches, k->us, 100 * k->us / total,
            s > 0 ? k->flops / s / 1e9 : 0, s > 0 ? k->bytes / s / 1e9 : 0);
  }
  fprintf(f, "  %-44s %8d %10.1f  (the step takes %.1f us on replay, without the syncs)\n", "total", launches, total,
          run->fw[TB_TGC].steady.median * 1e3);
}

void tb_print_profile(FILE *f, const tb_report *r) {
  for (int i = 0; i < r->nruns; i++) {
    memory_breakdown(f, &r->runs[i]);
    kernel_table(f, &r->runs[i]);
  }
}

void tb_bar(const char *what, int done, int total) {
  if (!isatty(2) || total <= 0) return;
  if (done < 0) { /* given up: end the line */
    fputc('\n', stderr);
    return;
  }
  char bar[31];
  int fill = done * 30 / total;
  for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
  bar[30] = 0;
  fprintf(stderr, "\r%s [%s] %d/%d%s", what, bar, done, total, done == total ? "\n" : "");
  fflush(stderr);
}
