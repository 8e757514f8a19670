/* llama.c - LLaMA decode speed on the CPU against the read-bandwidth bound.
 *
 * For each preset and weight type: the decode step (through the JIT, after
 * 19 untimed tokens) is timed token by token, and the weights one step
 * reads (every matrix and norm, one embedding row) over the step time
 * gives GB/s.  The baseline reads a buffer of the same byte size with the
 * same number of threads (bench/baseline.h); tgc steps and baseline runs
 * alternate, so both see the same machine.  Reported: medians, and the
 * ratio tgc GB/s / baseline GB/s (aim: >= 90%).
 *
 *   build/bench/llama [PRESET:TYPE ...]   (default: the four cases)
 *   TGC_THREADS   threads for tgc and the baseline (default: nproc)
 *   BENCH_TOKENS  timed decode steps per case (default 32)
 *   BENCH_CONTEXT KV cache positions (default 256; at least 64)
 *   BENCH_LOGITS  1: every timed step also copies its logits to the host
 *                 (as a sampler on the host, or tgc-bench, needs them)
 */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"
#include <tgc.h>
#include <stdbool.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "../llama/llama.h"
#include "baseline.h"

static void die(const char *what) {
  fprintf(stderr, "bench llama: %s: %s\n", what, tgc_last_error());
  exit(1);
}

static void run_case(const char *spec, base_pool *bp, int tokens) {
  char preset[64];
  snprintf(preset, sizeof preset, "%s", spec);
  char *colon = strchr(preset, ':');
  tgc_wtype wt = TGC_W_F32;
  if (colon) {
    *colon = 0;
    if (!tgc_wtype_parse(colon + 1, &wt)) {
      fprintf(stderr, "bench llama: unknown type in %s\n", spec);
      exit(2);
    }
  }
  double t0 = bench_now();
  tgc_llama_weights w;
  if (tgc_llama_preset(preset, wt, 1, &w) != TGC_OK) die(preset);
  const char *context = getenv("BENCH_CONTEXT");
  w.cfg.max_context = context && atoi(context) >= 64 ? atoi(context) : 256; /* positions 0..51 are used */
  int vocab = w.cfg.vocab;
  tgc_ctx *ctx = tgc_ctx_new();
  tgc_llama *m = tgc_llama_new(ctx, &w, NULL);
  if (!m) die("tgc_llama_new");
  tgc_llama_weights_free(&w); /* the device holds its own copy */
  double load_s = bench_now() - t0, bytes = tgc_llama_weight_bytes(m);
  /* the host read baseline means something only next to the CPU device;
   * on a GPU, gpu-check.sh prints the device copy bandwidth instead */
  bool cpu = !strcmp(tgc_ctx_device(ctx), "cpu");
  size_t nfloats = cpu ? (size_t)(bytes / 4) / 64 * 64 : 64;
  float *buf = malloc(nfloats * sizeof *buf);
  if (!buf) die("baseline buffer");
  for (size_t i = 0; i < nfloats; i++) buf[i] = (float)(i & 7);
  int32_t tok = 1;
  int pos = 0;
  double cold0 = bench_now();
  for (; pos < 3; pos++) /* call 1 compiles, call 2 records, call 3 replays */
    if (tgc_llama_eval(m, &tok, 1, pos, NULL, &tok) != TGC_OK) die("decode");
  double warm_s = bench_now() - cold0;
  /* untimed replays: on this kind of shared machine the first dozen steps
   * of a fresh process run slower (up to 3x) before settling */
  for (int i = 0; i < 16; i++, pos++)
    if (tgc_llama_eval(m, &tok, 1, pos, NULL, &tok) != TGC_OK) die("decode");
  if (cpu) baseline_once(bp, buf, nfloats);
  double *tt = malloc(sizeof *tt * (size_t)tokens), *tb = malloc(sizeof *tb * (size_t)tokens);
  const char *want_logits = getenv("BENCH_LOGITS");
  float *logits = want_logits && !strcmp(want_logits, "1") ? malloc(sizeof *logits * (size_t)vocab) : NULL;
  for (int i = 0; i < tokens; i++, pos++) {
    double a = bench_now();
    if (tgc_llama_eval(m, &tok, 1, pos, logits, &tok) != TGC_OK) die("decode");
    tt[i] = bench_now() - a;
    tb[i] = cpu ? baseline_once(bp, buf, nfloats) : 1;
  }
  double ms = 1e3 * bench_median(tt, tokens), base_s = bench_median(tb, tokens);
  double gbs = bytes / (ms * 1e-3) / 1e9, base_gbs = (double)nfloats * 4 / base_s / 1e9;
  if (cpu)
    printf("  %-12s %-5s %9.1f %9.2f %9.1f %9.1f %7.0f%% %9.2f %8.2f\n", preset, tgc_wtypes[wt].name, bytes / 1e6, ms,
           gbs, base_gbs, 100 * gbs / base_gbs, load_s, warm_s);
  else
    printf("  %-12s %-5s %9.1f %9.2f %9.1f %9s %8s %9.2f %8.2f  on %s: %.1f tokens/s\n", preset, tgc_wtypes[wt].name,
           bytes / 1e6, ms, gbs, "-", "-", load_s, warm_s, tgc_ctx_device(ctx), 1e3 / ms);
  fflush(stdout);
  free(tt);
  free(tb);
  free(buf);
  free(logits);
  tgc_llama_free(m);
  tgc_ctx_free(ctx);
}

int main(int argc, char **argv) {
  long nt = sysconf(_SC_NPROCESSORS_ONLN);
  const char *env = getenv("TGC_THREADS");
  int threads = env && atoi(env) > 0 ? atoi(env) : (int)(nt > 0 ? nt : 1);
  char tbuf[16];
  snprintf(tbuf, sizeof tbuf, "%d", threads);
  setenv("TGC_THREADS", tbuf, 1);
  setenv("TGC_DEVICE", "cpu", 0); /* TGC_DEVICE=cuda: the GPU (gpu-check.sh) */
  if (argc > 1 && !strcmp(argv[1], "--help")) {
    printf("usage: llama [PRESET:TYPE ...]  (TGC_THREADS, TGC_DEVICE, BENCH_TOKENS)\n");
    return 0;
  }
  const char *e = getenv("BENCH_TOKENS");
  int tokens = e && atoi(e) > 0 ? atoi(e) : 32;
  static const char *dflt[] = {"stories15m:f32", "small-512:f32", "small-512:f16", "llama3-1b:f16"};
  int n = argc > 1 ? argc - 1 : 4;
  const char *const *cases = argc > 1 ? (const char *const *)argv + 1 : dflt;
  base_pool *bp = base_pool_new(threads);
  printf("llama decode, %d threads, median of %d tokens after 19 untimed ones (compile, record, replays),\n", threads,
         tokens);
  printf("  tgc and the read-bandwidth baseline interleaved token by token\n");
  printf("  %-12s %-5s %9s %9s %9s %9s %8s %9s %8s\n", "model", "type", "MB/step", "ms/token", "GB/s", "base GB/s",
         "ratio", "load s", "warm s");
  for (int i = 0; i < n; i++) run_case(cases[i], bp, tokens);
  printf("\n  MB/step = weight bytes a decode step reads; ratio = tgc GB/s / baseline GB/s (aim: >= 90%%);\n"
         "  warm s = the first three tokens (compile, record, first replay)\n");
  base_pool_free(bp);
  return 0;
}
