/* export.c - results as files, and the regression check.
 *
 * --json writes every figure with the machine, the commit and the
 * settings (the keys are listed in docs/benchmarking.md); its "ratios"
 * object holds the figures --baseline compares, each a ratio where higher
 * is better and the machine's speed largely cancels out (tgc against
 * torch measured in the same run, tgc against the read baseline on the
 * CPU or the device copy on CUDA, measured beside it).  --csv writes the
 * same figures one per row.  The reader of "ratios" is a small scanner
 * for that one object of our own output, not a general JSON parser.
 */
#define _POSIX_C_SOURCE 200809L
#include "tgc_bench.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>


/* ---- a small JSON writer ---------------------------------------------------------- */

typedef struct jw {
  FILE *f;
  int depth;
  bool first[32]; /* no comma before the next member at this depth */
} jw;

static void j_str_raw(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

/* A new member: the comma, the line break and the key (none in arrays). */
static void j_key(jw *w, const char *key) {
  if (!w->first[w->depth]) fputc(',', w->f);
  w->first[w->depth] = false;
  fprintf(w->f, "\n%*s", 2 * w->depth, "");
  if (key) {
    j_str_raw(w->f, key);
    fputs(": ", w->f);
  }
}

static void j_open(jw *w, const char *key, char c) {
  if (w->depth > 0) j_key(w, key);
  fputc(c, w->f);
  w->first[++w->depth] = true;
}

static void j_close(jw *w, char c) {
  w->depth--;
  fprintf(w->f, "\n%*s%c", 2 * w->depth, "", c);
}

static void j_num(jw *w, const char *key, double v) {
  j_key(w, key);
  if (isfinite(v))
    fprintf(w->f, "%.9g", v);
  else
    fputs("null", w->f);
}

static void j_str(jw *w, const char *key, const char *s) {
  j_key(w, key);
  if (s)
    j_str_raw(w->f, s);
  else
    fputs("null", w->f);
}

static void j_bool(jw *w, const char *key, bool b) {
  j_key(w, key);
  fputs(b ? "true" : "false", w->f);
}

static void j_stat(jw *w, const char *key, const tb_stat *s) {
  if (s->n == 0) {
    j_key(w, key);
    fputs("null", w->f);
    return;
  }
  j_open(w, key, '{');
  j_num(w, "n", s->n);
  j_num(w, "median", s->median);
  j_num(w, "p10", s->p10);
  j_num(w, "p90", s->p90);
  j_num(w, "mean", s->mean);
  j_num(w, "cv", s->cv);
  j_close(w, '}');
}

/* ---- JSON ---------------------------------------------------------------------------- */

static void json_head(jw *w, const tb_report *r) {
  const tb_opts *o = r->o;
  j_str(w, "tool", "tgc-bench");
  j_num(w, "schema", 1);
  j_open(w, "git", '{');
  j_str(w, "commit", r->mach.commit);
  j_str(w, "source", r->mach.commit_source);
  j_bool(w, "dirty", r->mach.dirty);
  j_close(w, '}');
  j_open(w, "machine", '{');
  j_str(w, "cpu", r->mach.cpu);
  j_num(w, "cores", r->mach.cores);
  j_num(w, "memory_gb", r->mach.memory_gb);
  j_str(w, "device", r->mach.device);
  j_num(w, "threads", r->mach.threads);
  j_close(w, '}');
  j_open(w, "settings", '{');
  j_str(w, "model", o->model_path ? NULL : o->model);
  j_str(w, "model_path", o->model_path);
  j_str(w, "device", o->device ? o->device : "auto");
  j_open(w, "frameworks", '[');
  for (int fw = 0; fw < TB_NFW; fw++)
    if (o->fw[fw]) j_str(w, NULL, tb_fw_names[fw]);
  j_close(w, ']');
  j_open(w, "quantize", '[');
  for (int q = 0; q < o->nquant; q++) j_str(w, NULL, tb_quant_name(o->quant[q]));
  j_close(w, ']');
  j_num(w, "prompt_len", o->prompt_len);
  j_num(w, "gen_len", o->gen_len);
  j_num(w, "iterations", o->iterations);
  j_num(w, "cold_runs", o->cold_runs);
  j_num(w, "steady_from", TB_STEADY_FROM);
  j_num(w, "seed", (double)o->seed);
  j_bool(w, "pytorch_no_compile", o->no_compile);
  j_bool(w, "pytorch_no_half", o->no_half);
  j_close(w, '}');
  j_str(w, "torch_module", r->torch_describe[0] ? r->torch_describe : NULL);
}

static void json_framework(jw *w, const tb_report *r, const tb_run *run, int fw) {
  const tb_fw_result *f = &run->fw[fw];
  j_open(w, tb_fw_names[fw], '{');
  j_bool(w, "available", r->avail[fw] && f->ran);
  j_str(w, "reason", !r->avail[fw] ? r->why[fw] : f->why[0] ? f->why : NULL);
  if (f->ran) {
    j_str(w, "precision", f->precision);
    j_stat(w, "load_s", &f->load);
    j_stat(w, "cold_start_empty_cache_ms", &f->cold_empty);
    j_stat(w, "cold_start_warm_cache_ms", &f->cold_warm);
    j_stat(w, "steady_ms", &f->steady);
    j_num(w, "throughput_tok_s", f->tok_s);
    j_num(w, "weight_gbs", f->weight_gbs);
    j_num(w, "bandwidth_fraction", run->base_gbs.n ? f->weight_gbs / run->base_gbs.median : NAN);
    j_num(w, "device_copy_fraction", run->copy_gbs.n ? f->weight_gbs / run->copy_gbs.median : NAN);
    j_stat(w, "peak_rss_gb", &f->rss_gb);
    j_stat(w, "peak_tgc_buffers_gb", &f->tgc_peak_gb);
    j_num(w, "prefill_ms", f->prefill_ms);
    j_open(w, "iterations_ms", '[');
    for (int i = 0; i < f->niter; i++) j_num(w, NULL, f->iter_ms[i]);
    j_close(w, ']');
  }
  if (f->ran && fw != TB_TGC) {
    j_num(w, "speedup_of_tgc", f->speedup);
    j_num(w, "p_value", f->p_value);
    j_open(w, "agreement", '{');
    j_num(w, "steps", f->agree.steps);
    j_num(w, "max_abs_diff", f->agree.max_abs);
    j_num(w, "max_rel_diff", f->agree.max_rel);
    j_num(w, "cosine_min", f->agree.cos_min);
    j_num(w, "top1_agree", f->agree.top1);
    j_close(w, '}');
  }
  j_close(w, '}');
}

static void json_profile(jw *w, const tb_run *run) {
  j_open(w, "profile", '{');
  j_num(w, "weights_bytes", run->all_weight_bytes);
  j_num(w, "step_weight_bytes", run->step_bytes);
  j_num(w, "kv_cache_bytes", run->cache_bytes);
  double peak = run->fw[TB_TGC].tgc_peak_gb.median * 1e9;
  j_num(w, "tgc_peak_bytes", peak);
  j_num(w, "activations_runtime_bytes", fmax(0, peak - run->all_weight_bytes - run->cache_bytes));
  j_num(w, "profile_steps", run->profile_steps);
  j_str(w, "profile_note", run->profile_why[0] ? run->profile_why : NULL);
  j_open(w, "kernels", '[');
  for (int i = 0; i < run->nkernels; i++) {
    const tb_kernel *k = &run->kernels[i];
    j_open(w, NULL, '{');
    j_str(w, "name", k->name);
    j_num(w, "launches", k->launches);
    j_num(w, "us", k->us);
    j_num(w, "gflops", k->us > 0 ? k->flops / (k->us * 1e3) : 0);
    j_num(w, "gbs", k->us > 0 ? k->bytes / (k->us * 1e3) : 0);
    j_close(w, '}');
  }
  j_close(w, ']');
  j_close(w, '}');
}

static void json_run(jw *w, const tb_report *r, const tb_run *run) {
  j_open(w, NULL, '{');
  j_str(w, "quantize", run->qname);
  j_open(w, "model", '{');
  j_num(w, "dim", run->cfg.dim);
  j_num(w, "layers", run->cfg.n_layers);
  j_num(w, "vocab", run->cfg.vocab);
  j_num(w, "max_context", run->cfg.max_context);
  j_close(w, '}');
  j_stat(w, "read_baseline_gbs", &run->base_gbs);
  j_stat(w, "device_copy_gbs", &run->copy_gbs); /* (read + written) bytes / time */
  j_str(w, "device_copy_note", run->copy_why[0] ? run->copy_why : NULL);
  j_open(w, "frameworks", '{');
  for (int fw = 0; fw < TB_NFW; fw++)
    if (r->o->fw[fw]) json_framework(w, r, run, fw);
  j_close(w, '}');
  json_profile(w, run);
  j_close(w, '}');
}

static void json_warnings(jw *w, const tb_report *r) {
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (m) {
    tb_print_warnings(m, r);
    fclose(m);
  }
  j_open(w, "warnings", '[');
  for (char *line = buf, *nl; line && *line; line = nl + 1) {
    if (!(nl = strchr(line, '\n'))) break;
    *nl = 0;
    j_str(w, NULL, line);
  }
  j_close(w, ']');
  free(buf);
}

bool tb_write_json(const char *path, const tb_report *r, char *err, size_t cap) {
  FILE *f = fopen(path, "w");
  if (!f) return tb_fail(err, cap, "cannot write %s", path);
  jw w = {.f = f};
  j_open(&w, NULL, '{');
  json_head(&w, r);
  j_open(&w, "runs", '[');
  for (int i = 0; i < r->nruns; i++) json_run(&w, r, &r->runs[i]);
  j_close(&w, ']');
  char names[64][64];
  double values[64];
  int n = tb_ratios(r, names, values, 64);
  j_open(&w, "ratios", '{');
  for (int i = 0; i < n; i++) j_num(&w, names[i], values[i]);
  j_close(&w, '}');
  json_warnings(&w, r);
  j_close(&w, '}');
  fputc('\n', f);
  return fclose(f) == 0 || tb_fail(err, cap, "cannot write %s", path);
}

/* ---- CSV ------------------------------------------------------------------------------ */

static void csv_text(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) fprintf(f, *s == '"' ? "\"\"" : "%c", *s);
  fputc('"', f);
}

/* quantize,framework,metric,index,unit,value,n,p10,p90,cv */
static void csv_stat(FILE *f, const char *q, const char *fw, const char *metric, const char *unit, const tb_stat *s) {
  if (s->n == 0) return;
  fprintf(f, "%s,%s,%s,,%s,%.9g,%d,%.9g,%.9g,%.6g\n", q, fw, metric, unit, s->median, s->n, s->p10, s->p90, s->cv);
}

static void csv_num(FILE *f, const char *q, const char *fw, const char *metric, int index, const char *unit, double v) {
  if (!isfinite(v)) return;
  fprintf(f, "%s,%s,%s,", q, fw, metric);
  if (index > 0) fprintf(f, "%d", index);
  fprintf(f, ",%s,%.9g,1,,,\n", unit, v);
}

static void csv_meta(FILE *f, const char *metric, const char *value) {
  fprintf(f, ",,%s,,,", metric);
  csv_text(f, value);
  fprintf(f, ",,,,\n");
}

static void csv_framework(FILE *f, const tb_run *run, int fw) {
  const tb_fw_result *x = &run->fw[fw];
  const char *q = run->qname, *n = tb_fw_names[fw];
  csv_stat(f, q, n, "load", "s", &x->load);
  csv_stat(f, q, n, "cold_start_empty_cache", "ms", &x->cold_empty);
  csv_stat(f, q, n, "cold_start_warm_cache", "ms", &x->cold_warm);
  csv_stat(f, q, n, "steady_state", "ms", &x->steady);
  csv_num(f, q, n, "throughput", 0, "tok/s", x->tok_s);
  csv_num(f, q, n, "weight_bandwidth", 0, "GB/s", x->weight_gbs);
  csv_stat(f, q, n, "peak_rss", "GB", &x->rss_gb);
  csv_stat(f, q, n, "peak_tgc_buffers", "GB", &x->tgc_peak_gb);
  csv_num(f, q, n, "prefill", 0, "ms", x->prefill_ms);
  if (fw != TB_TGC) {
    csv_num(f, q, n, "speedup_of_tgc", 0, "x", x->speedup);
    csv_num(f, q, n, "p_value", 0, "", x->p_value);
    csv_num(f, q, n, "max_abs_diff", 0, "", x->agree.max_abs);
    csv_num(f, q, n, "max_rel_diff", 0, "", x->agree.max_rel);
    csv_num(f, q, n, "cosine_min", 0, "", x->agree.cos_min);
    csv_num(f, q, n, "top1_agree", 0, "steps", x->agree.top1);
  }
  for (int i = 0; i < x->niter; i++) csv_num(f, q, n, "iteration", i + 1, "ms", x->iter_ms[i]);
}

bool tb_write_csv(const char *path, const tb_report *r, char *err, size_t cap) {
  FILE *f = fopen(path, "w");
  if (!f) return tb_fail(err, cap, "cannot write %s", path);
  char buf[64];
  fprintf(f, "quantize,framework,metric,index,unit,value,n,p10,p90,cv\n");
  csv_meta(f, "cpu", r->mach.cpu);
  snprintf(buf, sizeof buf, "%d", r->mach.cores);
  csv_meta(f, "cores", buf);
  snprintf(buf, sizeof buf, "%.1f", r->mach.memory_gb);
  csv_meta(f, "memory_gb", buf);
  csv_meta(f, "device", r->mach.device);
  snprintf(buf, sizeof buf, "%d", r->mach.threads);
  csv_meta(f, "threads", buf);
  csv_meta(f, "git_commit", r->mach.commit);
  csv_meta(f, "git_commit_source", r->mach.commit_source);
  csv_meta(f, "model", r->o->model_path ? r->o->model_path : r->o->model);
  snprintf(buf, sizeof buf, "prompt_len=%d gen_len=%d iterations=%d cold_runs=%d steady_from=%d", r->o->prompt_len,
           r->o->gen_len, r->o->iterations, r->o->cold_runs, TB_STEADY_FROM);
  csv_meta(f, "settings", buf);
  for (int fw = 0; fw < TB_NFW; fw++)
    if (r->o->fw[fw] && !r->avail[fw]) {
      fprintf(f, ",%s,unavailable,,,", tb_fw_names[fw]);
      csv_text(f, r->why[fw]);
      fprintf(f, ",,,,\n");
    }
  for (int i = 0; i < r->nruns; i++) {
    const tb_run *run = &r->runs[i];
    csv_stat(f, run->qname, "", "read_baseline", "GB/s", &run->base_gbs);
    csv_stat(f, run->qname, "", "device_copy", "GB/s r+w", &run->copy_gbs);
    if (run->copy_why[0]) { /* why it is missing or stopped early, text in `value` as in `unavailable` rows */
      fprintf(f, "%s,,device_copy_note,,,", run->qname);
      csv_text(f, run->copy_why);
      fprintf(f, ",,,,\n");
    }
    for (int fw = 0; fw < TB_NFW; fw++)
      if (run->fw[fw].ran) csv_framework(f, run, fw);
  }
  return fclose(f) == 0 || tb_fail(err, cap, "cannot write %s", path);
}

/* ---- the regression check --------------------------------------------------------- */

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (s) s[fread(s, 1, (size_t)n, f)] = 0;
  fclose(f);
  return s;
}

static const char *skip_ws(const char *p) {
  while (isspace((unsigned char)*p)) p++;
  return p;
}

/* One "name": value member; returns the position after it, or NULL. */
static const char *ratio_member(const char *p, char *name, double *v, bool *isnull) {
  p = skip_ws(p);
  if (*p != '"') return NULL;
  const char *end = strchr(p + 1, '"');
  if (!end || end - p - 1 >= 64) return NULL;
  snprintf(name, 64, "%.*s", (int)(end - p - 1), p + 1);
  p = skip_ws(end + 1);
  if (*p++ != ':') return NULL;
  p = skip_ws(p);
  *isnull = !strncmp(p, "null", 4);
  if (*isnull) return p + 4;
  char *num_end;
  *v = strtod(p, &num_end);
  return num_end == p ? NULL : num_end;
}

int tb_read_ratios(const char *path, char (*names)[64], double *values, int cap, char *err, size_t cap_err) {
  char *text = slurp(path);
  if (!text) {
    tb_fail(err, cap_err, "cannot read %s", path);
    return -1;
  }
  const char *p = strstr(text, "\"ratios\"");
  p = p ? strchr(p, '{') : NULL;
  int n = 0;
  bool ok = p != NULL;
  for (p = ok ? skip_ws(p + 1) : NULL; ok && *p != '}';) {
    bool isnull = false;
    char name[64];
    double v = 0;
    if (!(p = ratio_member(p, name, &v, &isnull))) break;
    if (!isnull && n < cap) snprintf(names[n], 64, "%s", name), values[n++] = v;
    p = skip_ws(p);
    if (*p == ',') p = skip_ws(p + 1);
  }
  ok = ok && p && *p == '}';
  free(text);
  if (!ok) {
    tb_fail(err, cap_err, "%s: no \"ratios\" object of name: number pairs (a tgc-bench --json file?)", path);
    return -1;
  }
  return n;
}

int tb_check_baseline(FILE *f, const char *baseline, double threshold, int n, char (*names)[64],
                      const double *values) {
  char bnames[64][64], err[TB_ERR];
  double bvalues[64];
  int nb = tb_read_ratios(baseline, bnames, bvalues, 64, err, sizeof err);
  if (nb < 0) {
    fprintf(f, "baseline: %s\n", err);
    return TB_EXIT_FAIL;
  }
  int regressed = 0, compared = 0;
  fprintf(f, "\nregression check against %s (higher is better; threshold %.1f%%):\n", baseline, 100 * threshold);
  for (int i = 0; i < n; i++) {
    int k = 0;
    while (k < nb && strcmp(bnames[k], names[i])) k++;
    if (k == nb) {
      fprintf(f, "  %-34s %9.4f   not in the baseline\n", names[i], values[i]);
      continue;
    }
    double change = bvalues[k] != 0 ? values[i] / bvalues[k] - 1 : 0;
    bool bad = values[i] < bvalues[k] * (1 - threshold);
    compared++, regressed += bad;
    fprintf(f, "  %-34s %9.4f vs %9.4f  %+6.1f%%  %s\n", names[i], values[i], bvalues[k], 100 * change,
            bad ? "REGRESSED" : "ok");
  }
  if (!compared) fprintf(f, "  nothing to compare: no ratio of this run is in the baseline\n");
  if (regressed) fprintf(f, "%d ratio%s regressed by more than %.1f%%\n", regressed, regressed > 1 ? "s" : "", 100 * threshold);
  return regressed ? TB_EXIT_REGRESSION : TB_EXIT_OK;
}
