/* tgc_bench.h - tgc-bench's internal header, and its map.
 *
 * tgc-bench times LLaMA decoding with tgc and, through the libtorch
 * comparison module (compare/tgc_compare.h, opened with dlopen), with
 * torch on the same graph, and reports the two side by side.  Each
 * section below names the file that owns its declarations, in the order
 * a run passes through them:
 *
 *   main.c     dispatch: the main job, the child modes, the self-test
 *   cli.c      options
 *   machine.c  the machine, the git commit, the binary's own path
 *   session.c  one framework with one model: load, prompt, decode step
 *   bw.c       the read-bandwidth baseline (bench/baseline.h), CPU device
 *   copy.c     the device copy baseline (bench/gpu/cudadrv.c), CUDA device
 *   run.c      the main job: in-process iterations, agreement
 *   child.c    cold start and the kernel profile, in child processes
 *   stats.c    median, percentiles, CV, Welch's t-test
 *   report.c   the table, the analysis, --timing, --profile
 *   export.c   --json, --csv, --baseline
 *   plot.c     --plot
 *
 * Functions return false (or NULL) on failure with a message in an error
 * buffer the caller passes; only main exits.
 */
#ifndef TGC_BENCH_TOOL_H
#define TGC_BENCH_TOOL_H

#include "../../compare/tgc_compare.h"
#include "../../llama/llama.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses of tgc-bench. */
enum {
  TB_EXIT_OK = 0,
  TB_EXIT_FAIL = 1,       /* a run failed */
  TB_EXIT_USAGE = 2,      /* bad options */
  TB_EXIT_REGRESSION = 3, /* --baseline: a ratio regressed past --threshold */
};

/* The frameworks, in the order of the table's columns. */
enum { TB_TGC, TB_TORCH_OPT, TB_TORCH_BASE, TB_TORCH_AOTI, TB_NFW };
extern const char *const tb_fw_names[TB_NFW]; /* "tgc", "torch-opt", "torch-base", "torch-aoti" */

#define TB_MAX_QUANT 8   /* --quantize values */
#define TB_MAX_COLD 64   /* --cold-runs */
#define TB_STEADY_FROM 4 /* steady state: iterations 4, 5, ... (1 cold, 2 record, 3 first replay) */
#define TB_ERR 512       /* error buffers */

/* ---- options (cli.c) -------------------------------------------------------- */

typedef enum tb_child {
  TB_CHILD_NONE,    /* the main job */
  TB_CHILD_COLD,    /* --child-cold T0: load, prompt, gen-len tokens; print one line of figures */
  TB_CHILD_PROFILE, /* --child-profile: steps between markers on stderr, under TGC_DEBUG=2 */
} tb_child;

typedef struct tb_opts {
  bool fw[TB_NFW];      /* frameworks asked for */
  bool fw_given;        /* --framework was given (else: all available) */
  bool tgc_added;       /* tgc was not asked for, but runs: torch is fed its tokens */
  const char *model;    /* preset, when no model_path */
  const char *model_path;
  const char *device;   /* NULL: TGC_DEVICE, else the best available */
  int quant[TB_MAX_QUANT]; /* tgc_wtype values, or -1: the model's own types */
  int nquant;
  int prompt_len, gen_len, iterations, cold_runs;
  bool timing, profile;
  const char *json, *csv, *plot, *baseline, *check;
  double threshold;
  bool no_compile, no_half; /* --pytorch-no-compile, --pytorch-no-half */
  bool self_test, help;
  uint64_t seed;        /* preset weights and prompt tokens */
  tb_child child;
  int64_t child_t0_ns;  /* --child-cold: CLOCK_MONOTONIC at the parent's fork */
} tb_opts;

/* Fills o from argv.  On a bad option, false with the message in err
 * (tgc-bench exits 2). */
bool tb_parse(int argc, char **argv, tb_opts *o, char *err, size_t cap);
void tb_usage(FILE *f);
/* "f32", or "model" for -1 (the file's own types). */
const char *tb_quant_name(int quant);

/* ---- the machine (machine.c) ------------------------------------------------ */

typedef struct tb_machine {
  char cpu[128];        /* /proc/cpuinfo model name */
  int cores;            /* online CPUs */
  double memory_gb;     /* physical memory */
  int threads;          /* TGC_THREADS as set for the run (and libtorch's intra-op threads) */
  char device[16];      /* tgc's device for the run */
  char commit[48];      /* git commit, or "unknown" */
  char commit_source[96]; /* where it came from: "run time: git rev-parse HEAD in DIR" or "build time" */
  bool dirty;           /* the work tree differs from the commit (run time only) */
} tb_machine;

void tb_machine_probe(tb_machine *m);
/* The running binary's path and its folder ("" if unknown). */
const char *tb_exe_path(void);
const char *tb_exe_dir(void);
/* Monotonic clock in nanoseconds (shared by parent and children). */
int64_t tb_now_ns(void);
/* snprintf that may cut the text short (messages made of messages). */
void tb_fmt(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* tb_fmt into err, then false: `return tb_fail(err, cap, "...", ...)`. */
bool tb_fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Removes a folder and everything under it; ignores errors. */
void tb_rmtree(const char *dir);

/* ---- one framework with one model (session.c) ------------------------------- */

/* The comparison module, opened with dlopen. */
typedef struct tb_torch {
  void *dl;                 /* NULL: not available */
  char why[TB_ERR];         /* why not */
  char aoti_why[TB_ERR];    /* why torch-aoti cannot run ("" if it can) */
  char describe[256];       /* tgc_cmp_describe() */
  tgc_cmp *(*new_)(tgc_cmp_mode, int, char *, size_t);
  void (*free_)(tgc_cmp *);
  int (*run)(tgc_cmp *, tgc_ctx *, int, tgc_tensor *const *, float *const *, char *, size_t);
} tb_torch;

/* Opens $TGC_COMPARE_LIB, else libtgc-compare.so beside the binary.
 * Always returns; t->dl is NULL with t->why set when it is unusable. */
void tb_torch_open(tb_torch *t);
void tb_torch_close(tb_torch *t);

typedef struct tb_session {
  int fw;                   /* TB_TGC, ... */
  tgc_ctx *ctx;
  tgc_llama *m;
  tgc_cmp *cmp;             /* torch: the runner; NULL for tgc */
  const tb_torch *torch;
  tgc_llama_config cfg;
  tgc_wtype wtype;          /* the matrices' type */
  double all_weight_bytes;  /* every weight on the device */
  double load_s;            /* weights from nothing to the device (preset generation or file read, upload) */
  double upload_s;          /* ... of which the upload */
  float *logits;            /* [vocab]: the last step's */
  char err[TB_ERR];
} tb_session;

/* Loads the model of o for framework fw with weights of type quant.
 * progress: a bar on a terminal while uploading.  False with s->err set;
 * tb_session_close is needed either way. */
bool tb_session_open(tb_session *s, const tb_opts *o, int fw, int quant, const tb_torch *torch, bool progress);
/* The prompt at positions 0..n-1; *next = the greedy token after it.
 * tgc runs it as prefill; torch runs one step graph per token, or, when
 * by_tgc, tgc's prefill on its own instance (same KV cache as tgc's). */
bool tb_session_prompt(tb_session *s, const int32_t *tokens, int n, bool by_tgc, int32_t *next);
/* One decode step: token at pos; s->logits and *next (greedy) get the
 * result.  *ms: the step's time (torch: tgc_cmp_run alone, the graph is
 * built outside the timing). */
bool tb_session_step(tb_session *s, int32_t token, int pos, int32_t *next, double *ms);
void tb_session_close(tb_session *s);
/* Prompt tokens: n ids from a seeded generator, in [3, vocab). */
void tb_prompt_tokens(uint64_t seed, int vocab, int n, int32_t *out);
/* "f32/f32": weights / compute. */
void tb_precision(int fw, tgc_wtype wt, const char *device, const tb_opts *o, char *out, size_t cap);

/* ---- the read-bandwidth baseline (bw.c) -------------------------------------- */

typedef struct tb_bw tb_bw;
/* A buffer of `bytes` bytes read by `threads` threads (bench/baseline.h). */
tb_bw *tb_bw_new(double bytes, int threads);
/* Seconds for one read of the buffer. */
double tb_bw_once(tb_bw *b);
double tb_bw_bytes(const tb_bw *b);
void tb_bw_free(tb_bw *b); /* NULL ok */

/* ---- the device copy baseline (copy.c) ---------------------------------------- */

typedef struct tb_copy tb_copy;
/* The CUDA driver on the context that ctx's device (cuda) runs in, to copy
 * a buffer of `bytes` bytes device to device.  Call it while ctx exists and
 * tb_copy_close before tgc_ctx_free(ctx).  NULL with the reason in why when
 * the driver cannot be had; the caller goes on without the baseline. */
tb_copy *tb_copy_open(tgc_ctx *ctx, double bytes, char *why, size_t cap);
/* One timed copy, as GB/s = (read + written) bytes / time, that is twice
 * the buffer over the copy's time (bench/gpu_check.c's "r+w GB/s"); -1
 * with the reason in why when it fails (out of device memory). */
double tb_copy_gbs(tb_copy *c, char *why, size_t cap);
void tb_copy_close(tb_copy *c); /* NULL ok */

/* ---- statistics (stats.c) --------------------------------------------------- */

typedef struct tb_stat {
  int n;
  double median, p10, p90, mean, sd, cv; /* cv = sd / mean; sd with n - 1 */
} tb_stat;

tb_stat tb_stat_of(const double *v, int n); /* n == 0: all zero */
/* Percentile q in [0, 1] of sorted v, interpolated linearly. */
double tb_percentile(const double *sorted, int n, double q);
/* The regularized incomplete beta function I_x(a, b). */
double tb_betai(double a, double b, double x);
/* P(|T| > |t|) for Student's t with df degrees of freedom. */
double tb_t_two_sided(double t, double df);
/* Welch's t-test: the two-sided p-value for equal means; NaN when a side
 * has fewer than 2 values.  *t and *df may be NULL. */
double tb_welch(const double *a, int na, const double *b, int nb, double *t, double *df);
/* Checks the functions above against known values; prints what fails. */
bool tb_stats_self_test(FILE *out);

/* ---- results (run.c, child.c) ------------------------------------------------ */

/* Numeric agreement of a framework's logits with tgc's over a run. */
typedef struct tb_agree {
  int steps;
  double max_abs;     /* max |x - tgc| */
  double max_rel;     /* max |x - tgc| / max |tgc| per step */
  double cos_min;     /* smallest cosine similarity of a step's logits */
  int top1;           /* steps whose greedy token equals tgc's */
} tb_agree;

/* One kernel of the steady-state step, aggregated over launches of the
 * same name (child.c parses TGC_DEBUG=2's lines). */
typedef struct tb_kernel {
  char name[96];
  int launches;       /* per step */
  double us;          /* per step */
  double flops, bytes;/* per step */
} tb_kernel;

typedef struct tb_fw_result {
  bool ran;
  char why[TB_ERR];        /* not available, or what failed */
  char precision[32];
  double load_s, upload_s; /* in-process */
  double prefill_ms;
  double *iter_ms;         /* [niter] decode steps, iteration 1 first */
  int niter;
  tb_stat steady;          /* iterations >= TB_STEADY_FROM */
  tb_stat load;            /* warm-cache children (else the in-process load) */
  tb_stat cold_empty, cold_warm; /* ms from fork to the first token */
  tb_stat rss_gb;          /* children's maxrss */
  tb_stat tgc_peak_gb;     /* tgc's peak buffer bytes (children, else in-process) */
  double weight_gbs;       /* weight bytes per step / steady median */
  double tok_s;            /* 1000 / steady median ms */
  double speedup, p_value; /* torch: its steady median / tgc's, and Welch's p */
  tb_agree agree;          /* torch: against tgc */
  float *logits;           /* [niter * vocab] */
  int32_t *next;           /* [niter] greedy tokens */
} tb_fw_result;

typedef struct tb_run {
  int quant;               /* tgc_wtype or -1 */
  char qname[16];
  tgc_llama_config cfg;
  double step_bytes;       /* weight bytes one step reads (tgc_llama_weight_bytes) */
  double all_weight_bytes; /* every weight */
  double cache_bytes;      /* KV cache */
  tb_stat base_gbs;        /* the read baseline, GB/s (CPU device only; n == 0 otherwise) */
  tb_stat copy_gbs;        /* the device copy baseline, (read + written) GB/s (CUDA only; n == 0 otherwise) */
  char copy_why[TB_ERR];   /* CUDA: why the copy baseline is missing, or stopped early ("" if neither) */
  tb_fw_result fw[TB_NFW];
  tb_kernel *kernels;      /* --profile: tgc's steady-state step */
  int nkernels;
  int profile_steps;
  char profile_why[TB_ERR];/* why there is no kernel table */
} tb_run;

typedef struct tb_report {
  const tb_opts *o;
  tb_machine mach;
  bool avail[TB_NFW];      /* asked for and available */
  char why[TB_NFW][TB_ERR];/* why not available */
  char torch_describe[256];
  tb_run *runs;
  int nruns;
  int32_t *prompt;         /* [o->prompt_len] */
} tb_report;

/* ---- the main job (run.c) ---------------------------------------------------- */

/* Runs every quantization of o for every available framework: the
 * in-process iterations, then the children.  False on a failure (err). */
bool tb_run_all(tb_report *r, tb_torch *torch, char *err, size_t cap);
void tb_report_free(tb_report *r);
/* Ratio name/value pairs for --baseline: "<quant>:speedup_vs_<fw>" (torch
 * median / tgc median), "<quant>:bandwidth_fraction" (tgc GB/s / read
 * baseline GB/s, CPU) and "<quant>:device_copy_fraction" (tgc GB/s / device
 * copy GB/s, CUDA), higher is better.  Returns the count (at most cap). */
int tb_ratios(const tb_report *r, char (*names)[64], double *values, int cap);

/* ---- children (child.c) ------------------------------------------------------- */

/* --child-cold: the child's side.  Prints "tgc-bench-child ..." on stdout. */
int tb_child_cold_main(const tb_opts *o);
/* --child-profile: the child's side. */
int tb_child_profile_main(const tb_opts *o);
/* The parent's side: cold-start children for run->fw[fw] (cold_empty,
 * cold_warm, load, rss_gb, tgc_peak_gb).  tmp: a private folder. */
bool tb_cold_runs(const tb_opts *o, tb_run *run, int fw, const char *tmp, char *err, size_t cap);
/* --profile: fills run->kernels from a TGC_DEBUG=2 child (tgc only);
 * cache: the kernel cache folder to reuse. */
bool tb_profile_kernels(const tb_opts *o, tb_run *run, const char *cache, const char *tmp, char *err, size_t cap);
/* Parses TGC_DEBUG=2 output between the profile markers: kernels summed
 * by name, divided by the steps seen.  Returns the number of kernels. */
int tb_parse_kernel_lines(const char *text, tb_kernel **out, int *steps);

/* ---- the report (report.c) ------------------------------------------------- */

void tb_print_report(FILE *f, const tb_report *r);
void tb_print_timing(FILE *f, const tb_report *r);
void tb_print_profile(FILE *f, const tb_report *r);
/* Warnings (CV over 0.1), one per line, each prefixed "warning: ". */
void tb_print_warnings(FILE *f, const tb_report *r);
/* A counting bar on a terminal: "cold runs [####......] 3/8"; done < 0
 * ends the line of a phase given up. */
void tb_bar(const char *what, int done, int total);

/* ---- files (export.c, plot.c) ----------------------------------------------- */

bool tb_write_json(const char *path, const tb_report *r, char *err, size_t cap);
bool tb_write_csv(const char *path, const tb_report *r, char *err, size_t cap);
bool tb_write_plot(const char *path, const tb_report *r, char *err, size_t cap);
/* Reads the "ratios" object of a --json file.  Returns the count, or -1
 * with err set. */
int tb_read_ratios(const char *path, char (*names)[64], double *values, int cap, char *err, size_t cap_err);
/* Compares ratios with a baseline file's: prints each, and which
 * regressed by more than threshold.  Returns TB_EXIT_OK,
 * TB_EXIT_REGRESSION, or TB_EXIT_FAIL (unreadable baseline). */
int tb_check_baseline(FILE *f, const char *baseline, double threshold, int n, char (*names)[64],
                      const double *values);

#endif
