/* plot.c - --plot FILE.svg: per-iteration decode latency, one line per
 * framework and weight type.
 *
 * The y axis is logarithmic because iteration 1 (compiling) can be a
 * thousand times slower than a replayed step; decades carry labelled
 * ticks and grid lines (and 2 and 5 between them when the range is
 * short).  A dashed line marks where the steady state starts.  Plain SVG
 * 1.1 with no script or external reference, so any browser or XML tool
 * reads it.
 */
#include "tgc_bench.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#define W 860.0
#define H 500.0
#define LEFT 80.0
#define RIGHT 190.0 /* the legend */
#define TOP 56.0
#define BOTTOM 64.0

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

typedef struct axes {
  double x0, x1;     /* iterations shown */
  double ly0, ly1;   /* log10 of the y range (whole decades) */
} axes;

static double px(const axes *a, double x) { return LEFT + (x - a->x0) / (a->x1 - a->x0) * (W - LEFT - RIGHT); }
static double py(const axes *a, double ms) {
  double l = log10(ms > 0 ? ms : 1e-9);
  return TOP + (a->ly1 - l) / (a->ly1 - a->ly0) * (H - TOP - BOTTOM);
}

static void text_esc(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '<') fputs("&lt;", f);
    else if (*s == '>') fputs("&gt;", f);
    else if (*s == '&') fputs("&amp;", f);
    else if (*s == '"') fputs("&quot;", f);
    else fputc(*s, f);
  }
}

static void text(FILE *f, double x, double y, const char *anchor, const char *extra, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s>", x, y, anchor, extra ? " " : "", extra ? extra : "");
  text_esc(f, buf);
  fputs("</text>\n", f);
}

static axes axes_of(const tb_report *r) {
  double lo = INFINITY, hi = 0;
  for (int i = 0; i < r->nruns; i++)
    for (int fw = 0; fw < TB_NFW; fw++)
      for (int k = 0; r->runs[i].fw[fw].ran && k < r->runs[i].fw[fw].niter; k++) {
        double v = r->runs[i].fw[fw].iter_ms[k];
        if (v > 0) lo = fmin(lo, v), hi = fmax(hi, v);
      }
  if (!(hi > 0)) lo = 1, hi = 10;
  axes a = {0.5, r->o->iterations + 0.5, floor(log10(lo)), ceil(log10(hi))};
  if (a.ly1 <= a.ly0) a.ly1 = a.ly0 + 1;
  return a;
}

static void y_axis(FILE *f, const axes *a) {
  bool minor_labels = a->ly1 - a->ly0 <= 2;
  for (int d = (int)a->ly0; d <= (int)a->ly1; d++)
    for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) { /* 1, 2, 5 */
      double v = m * pow(10, d), y = py(a, v);
      if (log10(v) > a->ly1 + 1e-9) break;
      bool major = m == 1;
      fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", LEFT, y, W - RIGHT, y,
              major ? "#d0d0d0" : "#eeeeee");
      fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", LEFT - (major ? 6 : 3), y,
              LEFT, y);
      if (major || minor_labels) text(f, LEFT - 9, y + 4, "end", "font-size=\"12\"", "%g", v);
    }
  char rotate[96];
  double cy = (TOP + H - BOTTOM) / 2;
  snprintf(rotate, sizeof rotate, "font-size=\"13\" transform=\"rotate(-90 22 %.1f)\"", cy);
  text(f, 22, cy, "middle", rotate, "latency per iteration (ms, log scale)");
}

static void x_axis(FILE *f, const axes *a, int n) {
  int step = 1;
  while (n / step > 10) step = step == 1 ? 2 : step == 2 ? 5 : step * 2;
  for (int i = 1; i <= n; i += (i == 1 && step > 1) ? step - 1 : step) {
    double x = px(a, i);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", x, H - BOTTOM, x,
            H - BOTTOM + 6);
    text(f, x, H - BOTTOM + 20, "middle", "font-size=\"12\"", "%d", i);
  }
  text(f, (LEFT + W - RIGHT) / 2, H - 18, "middle", "font-size=\"13\"",
       "iteration (decode step; 1 = cold, steady state from %d)", TB_STEADY_FROM);
  if (n >= TB_STEADY_FROM) {
    double x = px(a, TB_STEADY_FROM - 0.5);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" stroke-dasharray=\"4 4\"/>\n", x,
            TOP, x, H - BOTTOM);
    text(f, x + 4, TOP + 14, "start", "font-size=\"11\" fill=\"#555\"", "steady state");
  }
}

static void series(FILE *f, const axes *a, const tb_fw_result *x, const char *color) {
  fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
  for (int k = 0; k < x->niter; k++) fprintf(f, "%.1f,%.1f ", px(a, k + 1), py(a, x->iter_ms[k]));
  fputs("\"/>\n", f);
  for (int k = 0; k < x->niter; k++)
    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px(a, k + 1), py(a, x->iter_ms[k]), color);
}

static void legend_entry(FILE *f, int i, const char *color, const char *label) {
  double x = W - RIGHT + 18, y = TOP + 10 + 22 * i;
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n", x, y, x + 24,
          y, color);
  fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x + 12, y, color);
  text(f, x + 30, y + 4, "start", "font-size=\"12\"", "%s", label);
}

bool tb_write_plot(const char *path, const tb_report *r, char *err, size_t cap) {
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, cap, "cannot write %s", path);
    return false;
  }
  axes a = axes_of(r);
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
             "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
          W, H, W, H);
  text(f, (LEFT + W - RIGHT) / 2, 26, "middle", "font-size=\"16\" font-weight=\"bold\"",
       "tgc-bench: decode latency per iteration, %s on %s (%d threads)", r->o->model_path ? r->o->model_path : r->o->model,
       r->mach.device, r->mach.threads);
  y_axis(f, &a);
  x_axis(f, &a, r->o->iterations);
  fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"black\"/>\n", LEFT, TOP,
          W - LEFT - RIGHT, H - TOP - BOTTOM);
  int k = 0;
  for (int i = 0; i < r->nruns; i++)
    for (int fw = 0; fw < TB_NFW; fw++) {
      const tb_fw_result *x = &r->runs[i].fw[fw];
      if (!x->ran) continue;
      const char *color = colors[k % 8];
      char label[64];
      snprintf(label, sizeof label, "%s %s", tb_fw_names[fw], r->runs[i].qname);
      series(f, &a, x, color);
      legend_entry(f, k++, color, label);
    }
  fputs("</svg>\n", f);
  if (fclose(f) != 0) {
    snprintf(err, cap, "cannot write %s", path);
    return false;
  }
  return true;
}
