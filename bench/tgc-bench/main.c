/* main.c - tgc-bench: LLaMA decode with tgc next to libtorch.
 *
 *   tgc-bench                         small-512 on the best device, every framework
 *   tgc-bench --model tiny --iterations 5 --timing --profile --json r.json
 *   tgc-bench --help                  every option
 *
 * The one place that exits: it parses the options, fixes the environment
 * every framework and child shares (TGC_THREADS, TGC_DEVICE), and runs
 * one of the main job, a child mode, the statistics self-test, or the
 * regression check of an earlier result file.  docs/benchmarking.md says
 * what each figure means.
 */
#define _POSIX_C_SOURCE 200809L
#include "tgc_bench.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Settings every framework and child must share, made explicit. */
static void environment(const tb_opts *o) {
  const char *t = getenv("TGC_THREADS");
  if (!t || atoi(t) <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    char buf[24];
    snprintf(buf, sizeof buf, "%ld", n > 0 ? n : 1);
    setenv("TGC_THREADS", buf, 1);
  }
  if (o->device) setenv("TGC_DEVICE", o->device, 1);
  /* tgc_compare.h has no parameter for these; the module may read them */
  if (o->no_compile) setenv("TGC_CMP_NO_COMPILE", "1", 1);
  if (o->no_half) setenv("TGC_CMP_NO_HALF", "1", 1);
  /* libtorch's OpenMP workers (and OpenBLAS's) spin while idle; on a small
   * machine they would take the CPUs tgc's timed steps run on, and their
   * own first steps.  Passive waiting, unless the caller chose otherwise;
   * it must be set before the module is opened. */
  setenv("OMP_WAIT_POLICY", "passive", 0);
  /* OpenBLAS picks its kernels from the CPU's model, and a virtual CPU
   * without one ("Intel Xeon Processor") gets Prescott's SSE3 code: name
   * the instruction set instead, unless the caller did */
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
  else if (__builtin_cpu_supports("avx2")) setenv("OPENBLAS_CORETYPE", "Haswell", 0);
#endif
}

static bool any_torch(const tb_opts *o) { return o->fw[TB_TORCH_OPT] || o->fw[TB_TORCH_BASE] || o->fw[TB_TORCH_AOTI]; }

static int write_files(const tb_report *r) {
  const tb_opts *o = r->o;
  char err[TB_ERR];
  bool ok = (!o->json || tb_write_json(o->json, r, err, sizeof err)) &&
            (!o->csv || tb_write_csv(o->csv, r, err, sizeof err)) &&
            (!o->plot || tb_write_plot(o->plot, r, err, sizeof err));
  if (!ok) fprintf(stderr, "tgc-bench: %s\n", err);
  return ok ? TB_EXIT_OK : TB_EXIT_FAIL;
}

static int regression_check(const tb_report *r) {
  char names[64][64];
  double values[64];
  int n = tb_ratios(r, names, values, 64);
  return tb_check_baseline(stdout, r->o->baseline, r->o->threshold, n, names, values);
}

/* Exit status of a finished job: a framework that was available but
 * failed makes it 1. */
static int framework_status(const tb_report *r) {
  for (int i = 0; i < r->nruns; i++)
    for (int fw = 0; fw < TB_NFW; fw++)
      if (r->avail[fw] && r->runs[i].fw[fw].why[0]) return TB_EXIT_FAIL;
  return TB_EXIT_OK;
}

static int main_job(const tb_opts *o) {
  tb_report r = {.o = o};
  tb_machine_probe(&r.mach);
  tb_torch torch = {0};
  if (any_torch(o)) tb_torch_open(&torch);
  char err[TB_ERR];
  int rc = TB_EXIT_OK;
  if (!tb_run_all(&r, &torch, err, sizeof err)) {
    fprintf(stderr, "tgc-bench: %s\n", err);
    rc = TB_EXIT_FAIL;
  } else {
    tb_print_report(stdout, &r);
    if (o->timing) tb_print_timing(stdout, &r);
    if (o->profile) tb_print_profile(stdout, &r);
    printf("\n");
    tb_print_warnings(stdout, &r);
    rc = write_files(&r);
    if (rc == TB_EXIT_OK) rc = framework_status(&r);
    if (rc == TB_EXIT_OK && o->baseline) rc = regression_check(&r);
  }
  tb_report_free(&r);
  tb_torch_close(&torch);
  return rc;
}

/* --check FILE --baseline BASE: compares two result files, runs nothing. */
static int check_only(const tb_opts *o) {
  char names[64][64], err[TB_ERR];
  double values[64];
  int n = tb_read_ratios(o->check, names, values, 64, err, sizeof err);
  if (n < 0) {
    fprintf(stderr, "tgc-bench: %s\n", err);
    return TB_EXIT_FAIL;
  }
  return tb_check_baseline(stdout, o->baseline, o->threshold, n, names, values);
}

int main(int argc, char **argv) {
  tb_opts o;
  char err[TB_ERR];
  if (!tb_parse(argc, argv, &o, err, sizeof err)) {
    fprintf(stderr, "tgc-bench: %s\n", err);
    return TB_EXIT_USAGE;
  }
  if (o.help) {
    tb_usage(stdout);
    return TB_EXIT_OK;
  }
  if (o.self_test) return tb_stats_self_test(stdout) ? TB_EXIT_OK : TB_EXIT_FAIL;
  environment(&o);
  switch (o.child) {
  case TB_CHILD_COLD: return tb_child_cold_main(&o);
  case TB_CHILD_PROFILE: return tb_child_profile_main(&o);
  case TB_CHILD_NONE: break;
  }
  return o.check ? check_only(&o) : main_job(&o);
}
