/* run.c - the main job: for each weight type, each framework in turn
 * loads its own instance of the model, runs the prompt and `iterations`
 * decode steps, each timed; then the children measure cold start and peak
 * memory, and (--profile) one more child times tgc's kernels.
 *
 * Frameworks run one after another, not side by side, so that each has
 * the machine (and its memory) to itself; tgc runs first and its greedy
 * tokens are the inputs of torch's steps, so all frameworks see the same
 * positions and tokens and their logits can be compared step by step.
 * Torch's prompt runs as tgc's prefill on torch's instance (session.c
 * says why); its cold start, measured in the children, is its own.
 * On the CPU device a read of the baseline buffer follows every timed
 * step of every framework (as in bench/llama.c), so the baseline sees the
 * same machine as the steps it is compared with.  On CUDA a timed
 * device-to-device copy of as many bytes (copy.c) follows every step
 * instead, for the same reason.  The main process uses a
 * fresh kernel cache, so iteration 1 is a true cold step: it schedules
 * and compiles.
 */
#define _POSIX_C_SOURCE 200809L
#include "tgc_bench.h"
#include "../bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* What one framework's in-process run shares with the others. */
typedef struct job {
  const tb_opts *o;
  tb_report *r;
  tb_run *run;
  const tb_torch *torch;
  tb_bw *bw;               /* NULL off the CPU */
  double *base_s;          /* baseline read times, all frameworks */
  int nbase;
  double *copy_gbs;        /* CUDA: device copy samples, all frameworks; NULL elsewhere */
  int ncopy;
  tb_copy *copy;           /* open during one framework's iterations */
  int32_t first;           /* tgc's greedy token after the prompt: iteration 1's input */
} job;

/* ---- agreement ------------------------------------------------------------------ */

static void agree(const tb_fw_result *ref, tb_fw_result *x, int vocab) {
  tb_agree a = {.steps = x->niter, .cos_min = 1};
  for (int i = 0; i < x->niter; i++) {
    const float *p = ref->logits + (size_t)i * vocab, *q = x->logits + (size_t)i * vocab;
    double dot = 0, pp = 0, qq = 0, diff = 0, top = 0;
    for (int k = 0; k < vocab; k++) {
      dot += (double)p[k] * q[k], pp += (double)p[k] * p[k], qq += (double)q[k] * q[k];
      diff = fmax(diff, fabs((double)p[k] - q[k]));
      top = fmax(top, fabs((double)p[k]));
    }
    double cos = pp > 0 && qq > 0 ? dot / sqrt(pp * qq) : (pp == qq ? 1 : 0);
    a.max_abs = fmax(a.max_abs, diff);
    a.max_rel = fmax(a.max_rel, top > 0 ? diff / top : diff);
    a.cos_min = fmin(a.cos_min, cos);
    a.top1 += ref->next[i] == x->next[i];
  }
  x->agree = a;
}

/* ---- one framework in this process ------------------------------------------------ */

static bool alloc_result(tb_fw_result *f, int n, int vocab) {
  f->niter = n;
  f->iter_ms = calloc((size_t)n, sizeof *f->iter_ms);
  f->next = calloc((size_t)n, sizeof *f->next);
  f->logits = malloc(sizeof *f->logits * (size_t)n * (size_t)vocab);
  return f->iter_ms && f->next && f->logits;
}

/* ---- the device copy baseline (CUDA) ----------------------------------------------- */

/* Opens the copy baseline on s's context, which gpu_open needs to exist
 * (one per framework, closed before its session).  If the driver cannot be
 * had, run->copy_why says why and the run goes on without it. */
static void open_copy(job *j, tb_session *s) {
  tb_run *run = j->run;
  if (j->copy_gbs && !run->copy_why[0])
    j->copy = tb_copy_open(s->ctx, run->step_bytes, run->copy_why, sizeof run->copy_why);
}

/* One copy sample; a failure (out of device memory beside a framework's
 * weights) ends the baseline, with its reason, and the steps go on. */
static void copy_once(job *j) {
  double gbs = tb_copy_gbs(j->copy, j->run->copy_why, sizeof j->run->copy_why);
  if (gbs > 0) {
    j->copy_gbs[j->ncopy++] = gbs;
    return;
  }
  tb_copy_close(j->copy);
  j->copy = NULL;
}

/* The decode steps: iteration i + 1 at position prompt_len + i, fed
 * tgc's token (tgc: its own). */
static bool iterate(job *j, tb_session *s, tb_fw_result *f) {
  const tb_fw_result *ref = &j->run->fw[TB_TGC];
  int vocab = s->cfg.vocab;
  for (int i = 0; i < f->niter; i++) {
    int32_t in = i == 0 ? j->first : ref->next[i - 1];
    if (!tb_session_step(s, in, j->o->prompt_len + i, &f->next[i], &f->iter_ms[i])) return false;
    memcpy(f->logits + (size_t)i * vocab, s->logits, sizeof *f->logits * (size_t)vocab);
    if (j->bw) j->base_s[j->nbase++] = tb_bw_once(j->bw);
    if (j->copy) copy_once(j);
  }
  return true;
}

static void steady_figures(job *j, tb_fw_result *f) {
  int skip = TB_STEADY_FROM - 1, n = f->niter - skip;
  f->steady = tb_stat_of(f->iter_ms + skip, n > 0 ? n : 0);
  double ms = f->steady.median;
  f->tok_s = ms > 0 ? 1e3 / ms : 0;
  f->weight_gbs = ms > 0 ? j->run->step_bytes / (ms * 1e-3) / 1e9 : 0;
}

/* tgc's session tells the run what the model is: sizes, the device, the
 * prompt, and the baseline: on the CPU the read buffer (as large as the
 * weights a step reads), on CUDA room for the copy samples (the copy
 * itself is opened per framework, on that framework's context). */
static bool first_session(job *j, tb_session *s) {
  tb_run *run = j->run;
  run->cfg = s->cfg;
  run->step_bytes = tgc_llama_weight_bytes(s->m);
  run->all_weight_bytes = s->all_weight_bytes;
  run->cache_bytes = tgc_llama_cache_bytes(s->m);
  snprintf(j->r->mach.device, sizeof j->r->mach.device, "%s", tgc_ctx_device(s->ctx));
  int need = j->o->prompt_len + j->o->iterations;
  if (need > s->cfg.max_context) {
    snprintf(s->err, sizeof s->err, "--prompt-len + --iterations = %d exceed the model's context of %d", need,
             s->cfg.max_context);
    return false;
  }
  if (!j->r->prompt && !(j->r->prompt = malloc(sizeof *j->r->prompt * (size_t)j->o->prompt_len))) return false;
  tb_prompt_tokens(j->o->seed, s->cfg.vocab, j->o->prompt_len, j->r->prompt);
  if (!strcmp(j->r->mach.device, "cuda")) /* the GPU's yardstick is its own copy (copy.c) */
    return (j->copy_gbs = malloc(sizeof *j->copy_gbs * (size_t)TB_NFW * (size_t)j->o->iterations)) != NULL;
  if (strcmp(j->r->mach.device, "cpu")) return true; /* the host baseline means nothing next to a GPU */
  j->bw = tb_bw_new(run->step_bytes, j->r->mach.threads);
  j->base_s = malloc(sizeof *j->base_s * (size_t)TB_NFW * (size_t)j->o->iterations);
  return j->bw && j->base_s;
}

/* Figures of a successful run that come from its session. */
static void session_figures(job *j, tb_session *s, tb_fw_result *f) {
  tgc_stats st;
  tgc_get_stats(s->ctx, &st);
  double peak_gb = (double)st.peak_bytes / 1e9;
  f->tgc_peak_gb = tb_stat_of(&peak_gb, 1);
  f->load = tb_stat_of(&s->load_s, 1);
  f->load_s = s->load_s, f->upload_s = s->upload_s;
  tb_precision(s->fw, s->wtype, tgc_ctx_device(s->ctx), j->o, f->precision,
               sizeof f->precision);
  steady_figures(j, f);
}

/* Opens, prompts and iterates framework fw; its session is closed on
 * return.  A torch failure is recorded in its result (the others go on);
 * a tgc failure is returned. */
static bool run_framework(job *j, int fw, char *err, size_t cap) {
  tb_fw_result *f = &j->run->fw[fw];
  tb_session s;
  fprintf(stderr, "tgc-bench: %s %s: %s: load, %d-token prompt, %d iterations\n",
          j->o->model_path ? j->o->model_path : j->o->model, j->run->qname, tb_fw_names[fw], j->o->prompt_len,
          j->o->iterations);
  bool ok = tb_session_open(&s, j->o, fw, j->run->quant, j->torch, isatty(2));
  if (ok && fw == TB_TGC) ok = first_session(j, &s);
  ok = ok && alloc_result(f, j->o->iterations, s.cfg.vocab);
  double t0 = bench_now();
  int32_t first = 0;
  ok = ok && tb_session_prompt(&s, j->r->prompt, j->o->prompt_len, true, &first);
  f->prefill_ms = fw == TB_TGC ? 1e3 * (bench_now() - t0) : NAN; /* torch's prompt ran on tgc */
  if (fw == TB_TGC) j->first = first;
  if (ok) open_copy(j, &s);
  ok = ok && iterate(j, &s, f);
  tb_copy_close(j->copy); /* before the session frees the context it copies in */
  j->copy = NULL;
  if (ok) session_figures(j, &s, f);
  f->ran = ok;
  if (!ok) tb_fmt(f->why, sizeof f->why, "failed: %s", s.err[0] ? s.err : "out of memory");
  if (!ok && fw == TB_TGC) tb_fail(err, cap, "%s", s.err[0] ? s.err : "out of memory");
  tb_session_close(&s);
  return ok || fw != TB_TGC;
}

/* ---- one weight type ------------------------------------------------------------ */

static void compare_with_tgc(tb_run *run) {
  tb_fw_result *t = &run->fw[TB_TGC];
  int skip = TB_STEADY_FROM - 1;
  for (int fw = TB_TGC + 1; fw < TB_NFW; fw++) {
    tb_fw_result *f = &run->fw[fw];
    if (!f->ran) continue;
    agree(t, f, run->cfg.vocab);
    f->speedup = t->steady.median > 0 ? f->steady.median / t->steady.median : 0;
    f->p_value = tb_welch(t->iter_ms + skip, t->niter - skip, f->iter_ms + skip, f->niter - skip, NULL, NULL);
  }
}

static bool run_children(tb_report *r, tb_run *run, const char *tmp, const char *cache, char *err, size_t cap) {
  for (int fw = 0; fw < TB_NFW && r->o->cold_runs > 0; fw++) {
    tb_fw_result *f = &run->fw[fw];
    if (!f->ran) continue;
    if (!tb_cold_runs(r->o, run, fw, tmp, err, cap)) {
      if (fw == TB_TGC) return false;
      tb_fmt(f->why, sizeof f->why, "cold-start children failed: %s", err); /* its other figures stand */
    }
  }
  if (r->o->profile && !tb_profile_kernels(r->o, run, cache, tmp, err, cap))
    snprintf(run->profile_why, sizeof run->profile_why, "%s", err);
  return true;
}

static bool run_quant(tb_report *r, tb_run *run, const tb_torch *torch, const char *tmp, const char *cache,
                      char *err, size_t cap) {
  job j = {.o = r->o, .r = r, .run = run, .torch = torch};
  bool ok = run_framework(&j, TB_TGC, err, cap);
  for (int fw = TB_TGC + 1; ok && fw < TB_NFW; fw++)
    if (r->avail[fw]) run_framework(&j, fw, err, cap);
  double *gbs = malloc(sizeof *gbs * (size_t)(j.nbase ? j.nbase : 1));
  for (int i = 0; gbs && i < j.nbase; i++) gbs[i] = tb_bw_bytes(j.bw) / j.base_s[i] / 1e9;
  run->base_gbs = tb_stat_of(gbs, gbs ? j.nbase : 0);
  free(gbs);
  free(j.base_s);
  tb_bw_free(j.bw);
  run->copy_gbs = tb_stat_of(j.copy_gbs, j.ncopy);
  free(j.copy_gbs);
  if (!ok) return false;
  compare_with_tgc(run);
  return run_children(r, run, tmp, cache, err, cap);
}

/* ---- the whole job ------------------------------------------------------------------ */

static void availability(tb_report *r, const tb_torch *torch) {
  for (int fw = 0; fw < TB_NFW; fw++) {
    r->avail[fw] = r->o->fw[fw] && (fw == TB_TGC || torch->dl) && (fw != TB_TORCH_AOTI || !torch->aoti_why[0]);
    if (!r->o->fw[fw])
      snprintf(r->why[fw], sizeof r->why[fw], "not asked for (--framework)");
    else if (!r->avail[fw])
      snprintf(r->why[fw], sizeof r->why[fw], "%s", torch->dl ? torch->aoti_why : torch->why);
  }
  snprintf(r->torch_describe, sizeof r->torch_describe, "%s", torch->dl ? torch->describe : "");
}

bool tb_run_all(tb_report *r, tb_torch *torch, char *err, size_t cap) {
  const tb_opts *o = r->o;
  availability(r, torch);
  const char *tmpdir = getenv("TMPDIR");
  char tmp[512], cache[600];
  snprintf(tmp, sizeof tmp, "%s/tgc-bench.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  if (!mkdtemp(tmp)) return tb_fail(err, cap, "cannot make a folder under %s", tmpdir && *tmpdir ? tmpdir : "/tmp");
  snprintf(cache, sizeof cache, "%s/cache-main", tmp);
  setenv("TGC_CACHE_DIR", cache, 1); /* iteration 1 compiles: nothing is cached yet */
  if (!(r->runs = calloc((size_t)o->nquant, sizeof *r->runs))) {
    tb_rmtree(tmp);
    return tb_fail(err, cap, "out of memory");
  }
  bool ok = true;
  for (int q = 0; ok && q < o->nquant; q++) {
    tb_run *run = &r->runs[r->nruns++];
    run->quant = o->quant[q];
    snprintf(run->qname, sizeof run->qname, "%s", tb_quant_name(run->quant));
    ok = run_quant(r, run, torch, tmp, cache, err, cap);
    if (ok && run->quant < 0) /* the file's own types: name them */
      tb_fmt(run->qname, sizeof run->qname, "%.*s", (int)strcspn(run->fw[TB_TGC].precision, "/"),
             run->fw[TB_TGC].precision);
  }
  tb_rmtree(tmp);
  return ok;
}

void tb_report_free(tb_report *r) {
  for (int i = 0; i < r->nruns; i++) {
    for (int fw = 0; fw < TB_NFW; fw++) {
      free(r->runs[i].fw[fw].iter_ms);
      free(r->runs[i].fw[fw].logits);
      free(r->runs[i].fw[fw].next);
    }
    free(r->runs[i].kernels);
  }
  free(r->runs);
  free(r->prompt);
  r->runs = NULL, r->prompt = NULL, r->nruns = 0;
}

int tb_ratios(const tb_report *r, char (*names)[64], double *values, int cap) {
  int n = 0;
  for (int i = 0; i < r->nruns; i++) {
    const tb_run *run = &r->runs[i];
    for (int fw = TB_TGC + 1; fw < TB_NFW && n < cap; fw++)
      if (run->fw[fw].ran && run->fw[fw].speedup > 0) {
        snprintf(names[n], 64, "%s:speedup_vs_%s", run->qname, tb_fw_names[fw]);
        values[n++] = run->fw[fw].speedup;
      }
    if (n < cap && run->base_gbs.n > 0 && run->fw[TB_TGC].weight_gbs > 0) {
      snprintf(names[n], 64, "%s:bandwidth_fraction", run->qname);
      values[n++] = run->fw[TB_TGC].weight_gbs / run->base_gbs.median;
    }
    if (n < cap && run->copy_gbs.n > 0 && run->fw[TB_TGC].weight_gbs > 0) {
      snprintf(names[n], 64, "%s:device_copy_fraction", run->qname);
      values[n++] = run->fw[TB_TGC].weight_gbs / run->copy_gbs.median;
    }
  }
  return n;
}
