/* stats.c - the statistics of a benchmark: median, percentiles,
 * coefficient of variation, and Welch's t-test for "is tgc's steady state
 * really faster than torch's, or is it noise".
 *
 * The t-distribution's tail comes from the regularized incomplete beta
 * function, P(|T| > t) = I_{df/(df+t^2)}(df/2, 1/2), evaluated with the
 * continued fraction of Numerical Recipes (modified Lentz), which
 * converges quickly for x < (a+1)/(a+b+2) and is used through the
 * symmetry I_x(a,b) = 1 - I_{1-x}(b,a) elsewhere.  tb_stats_self_test
 * checks it against closed forms and t tables.
 */
#include "tgc_bench.h"
#include "../bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double tb_percentile(const double *sorted, int n, double q) {
  if (n <= 0) return 0;
  double at = q * (n - 1);
  int lo = (int)floor(at);
  if (lo >= n - 1) return sorted[n - 1];
  return sorted[lo] + (at - lo) * (sorted[lo + 1] - sorted[lo]);
}

tb_stat tb_stat_of(const double *v, int n) {
  tb_stat s = {.n = n};
  if (n <= 0) return s;
  double *c = malloc(sizeof *c * (size_t)n);
  if (!c) return s;
  memcpy(c, v, sizeof *c * (size_t)n);
  qsort(c, (size_t)n, sizeof *c, bench_cmp_double);
  double sum = 0, ss = 0;
  for (int i = 0; i < n; i++) sum += c[i];
  s.mean = sum / n;
  for (int i = 0; i < n; i++) ss += (c[i] - s.mean) * (c[i] - s.mean);
  s.sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
  s.cv = s.mean != 0 ? s.sd / fabs(s.mean) : 0;
  s.median = tb_percentile(c, n, 0.5);
  s.p10 = tb_percentile(c, n, 0.1);
  s.p90 = tb_percentile(c, n, 0.9);
  free(c);
  return s;
}

/* The continued fraction of I_x(a, b) (Numerical Recipes' betacf). */
static double beta_cf(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-15;
  double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
  if (fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 1000; m++) {
    int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d, c = 1 + aa / c;
    d = fabs(d) < tiny ? 1 / tiny : 1 / d;
    c = fabs(c) < tiny ? tiny : c;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d, c = 1 + aa / c;
    d = fabs(d) < tiny ? 1 / tiny : 1 / d;
    c = fabs(c) < tiny ? tiny : c;
    double del = d * c;
    h *= del;
    if (fabs(del - 1) < eps) break;
  }
  return h;
}

double tb_betai(double a, double b, double x) {
  if (!(a > 0 && b > 0) || isnan(x)) return NAN;
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  double lfront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return exp(lfront) * beta_cf(a, b, x) / a;
  return 1 - exp(lfront) * beta_cf(b, a, 1 - x) / b;
}

double tb_t_two_sided(double t, double df) {
  if (isnan(t) || !(df > 0)) return NAN;
  if (isinf(t)) return 0;
  return tb_betai(df / 2, 0.5, df / (df + t * t));
}

double tb_welch(const double *a, int na, const double *b, int nb, double *t_out, double *df_out) {
  if (t_out) *t_out = NAN;
  if (df_out) *df_out = NAN;
  if (na < 2 || nb < 2) return NAN;
  tb_stat sa = tb_stat_of(a, na), sb = tb_stat_of(b, nb);
  double va = sa.sd * sa.sd / na, vb = sb.sd * sb.sd / nb, se2 = va + vb;
  if (se2 <= 0) return sa.mean == sb.mean ? 1 : 0; /* no spread: the means are equal or they are not */
  double t = (sa.mean - sb.mean) / sqrt(se2);
  double df = se2 * se2 / (va * va / (na - 1) + vb * vb / (nb - 1));
  if (t_out) *t_out = t;
  if (df_out) *df_out = df;
  return tb_t_two_sided(t, df);
}

/* ---- self-test ------------------------------------------------------------------ */

typedef struct known {
  const char *what;
  double got, want, tol;
} known;

bool tb_stats_self_test(FILE *out) {
  /* Welch's example 1 on Wikipedia ("Welch's t-test", Examples): two
   * samples of 15; t = -2.46, df = 25.0, p = 0.021 */
  static const double a1[] = {27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4};
  static const double a2[] = {27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4};
  double t, df, p = tb_welch(a1, 15, a2, 15, &t, &df);
  static const double v[] = {5, 1, 4, 2, 3};
  tb_stat s = tb_stat_of(v, 5);
  const known k[] = {
      {"I_0.3(1,1) = x", tb_betai(1, 1, 0.3), 0.3, 1e-12},
      {"I_0.6(3,1) = x^3", tb_betai(3, 1, 0.6), 0.216, 1e-12},
      {"I_0.2(1,4) = 1-(1-x)^4", tb_betai(1, 4, 0.2), 1 - pow(0.8, 4), 1e-12},
      {"I_0.5(7,7) = 1/2", tb_betai(7, 7, 0.5), 0.5, 1e-12},
      {"t=1, df=1: p = 1/2 (Cauchy)", tb_t_two_sided(1, 1), 0.5, 1e-10},
      {"t=2, df=2: p = 1-2/sqrt(6)", tb_t_two_sided(2, 2), 1 - 2 / sqrt(6), 1e-10},
      {"t=12.706, df=1: p = 0.05", tb_t_two_sided(12.706, 1), 0.05, 2e-5},
      {"t=2.571, df=5: p = 0.05", tb_t_two_sided(2.571, 5), 0.05, 1e-4},
      {"t=2.228, df=10: p = 0.05", tb_t_two_sided(2.228, 10), 0.05, 1e-4},
      {"t=3.169, df=10: p = 0.01", tb_t_two_sided(3.169, 10), 0.01, 2e-5},
      {"t=2.042, df=30: p = 0.05", tb_t_two_sided(2.042, 30), 0.05, 1e-4},
      {"t=1.960, df=1e6: p = 0.05 (normal)", tb_t_two_sided(1.959964, 1e6), 0.05, 1e-5},
      {"t=0: p = 1", tb_t_two_sided(0, 7), 1, 1e-12},
      {"Welch example 1: t", t, -2.46, 0.005},
      {"Welch example 1: df", df, 25.0, 0.05},
      {"Welch example 1: p", p, 0.021, 0.0005},
      {"  ... p by Simpson's rule on the density", p, 0.0213780, 2e-6},
      {"median of 5 1 4 2 3", s.median, 3, 0},
      {"p10 of 1..5", s.p10, 1.4, 1e-12},
      {"p90 of 1..5", s.p90, 4.6, 1e-12},
      {"cv of 1..5", s.cv, sqrt(2.5) / 3, 1e-12},
  };
  bool ok = true;
  for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
    bool good = fabs(k[i].got - k[i].want) <= k[i].tol;
    fprintf(out, "%s %-36s %.8g (want %.8g)\n", good ? "ok  " : "FAIL", k[i].what, k[i].got, k[i].want);
    ok &= good;
  }
  bool nan_ok = isnan(tb_welch(a1, 1, a2, 15, NULL, NULL));
  fprintf(out, "%s %-36s\n", nan_ok ? "ok  " : "FAIL", "Welch with one value: NaN");
  return ok && nan_ok;
}
