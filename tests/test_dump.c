/* test_dump.c - what TGC_DUMP writes and what TGC_DEBUG=1 prints.
 *
 * TGC_DUMP=dir: each compiled kernel leaves <name>.c and <name>.json in
 * dir, the source compiles on its own, and the sidecar carries launch
 * dims, buffers with dtypes, opts, flops and bytes.  TGC_DEBUG=1: one
 * line per realize on stderr (checked in a forked child whose stderr goes
 * to a file).  Every test uses its own cache directory, so kernels are
 * compiled here and not found in a cache another test filled.
 */
#include "tgc_internal.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[512]; /* this test's temporary directory: cache/ and dump/ below */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void dump_setup(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/tgc-dump-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  cr_assert_not_null(mkdtemp(root), "mkdtemp: %s", strerror(errno));
  char dir[600];
  snprintf(dir, sizeof dir, "%s/cache", root);
  setenv("TGC_CACHE_DIR", dir, 1);
  unsetenv("TGC_CACHE");
  unsetenv("TGC_CC");
  unsetenv("TGC_DEBUG");
  unsetenv("TGC_DUMP");
  unsetenv("TGC_NOOPT");
}

static void dump_teardown(void) {
  if (root[0]) nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  root[0] = '\0';
}

TestSuite(dump, .init = dump_setup, .fini = dump_teardown, .timeout = 300);

/* ---- helpers ------------------------------------------------------------------ */

static void fill(float *v, int n, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
  }
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
  size_t cap = 1 << 16, len = 0;
  char *s = malloc(cap + 1);
  cr_assert_not_null(s);
  for (size_t n; (n = fread(s + len, 1, cap - len, f)) > 0;) {
    len += n;
    if (len == cap) {
      s = realloc(s, (cap *= 2) + 1);
      cr_assert_not_null(s);
    }
  }
  fclose(f);
  s[len] = '\0';
  return s;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n > k && strcmp(s + n - k, suffix) == 0;
}

/* softmax over the last axis of [4,16] (3 kernels), checked against loops. */
static void softmax_and_check(tgc_ctx *ctx) {
  float x[64], got[64];
  fill(x, 64, 7);
  tgc_tensor *X = tgc_from_data(ctx, TGC_F32, 2, (const int64_t[]){4, 16}, x);
  tgc_tensor *y = tgc_softmax(X, -1);
  cr_assert_eq(tgc_realize(ctx, 1, &y), TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(tgc_to_host(y, got, sizeof got), TGC_OK);
  for (int r = 0; r < 4; r++) {
    double mx = -INFINITY, s = 0;
    for (int c = 0; c < 16; c++) mx = fmax(mx, x[r * 16 + c]);
    for (int c = 0; c < 16; c++) s += exp(x[r * 16 + c] - mx);
    for (int c = 0; c < 16; c++) {
      double want = exp(x[r * 16 + c] - mx) / s;
      cr_assert(fabs(got[r * 16 + c] - want) <= 1e-5 * (1 + want), "softmax[%d]: %g vs %g",
                r * 16 + c, (double)got[r * 16 + c], want);
    }
  }
}

/* ---- TGC_DUMP ------------------------------------------------------------------- */

#define MAXK 32

Test(dump, each_kernel_leaves_source_and_sidecar) {
  char dir[600];
  snprintf(dir, sizeof dir, "%s/dump", root);
  setenv("TGC_DUMP", dir, 1);
  tgc_ctx *ctx = tgc_ctx_new();
  cr_assert_not_null(ctx, "%s", tgc_last_error());
  softmax_and_check(ctx);
  tgc_stats st;
  tgc_get_stats(ctx, &st);
  tgc_ctx_free(ctx);
  unsetenv("TGC_DUMP");
  cr_assert_geq(st.compiles, 2, "softmax should compile 2 or more kernels");

  /* pair the files up by stem */
  char stems[MAXK][256];
  int nc = 0, njson = 0, nother = 0;
  DIR *d = opendir(dir);
  cr_assert_not_null(d, "TGC_DUMP made no directory %s: %s", dir, strerror(errno));
  for (struct dirent *e; (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (ends_with(e->d_name, ".c")) {
      cr_assert_lt(nc, MAXK);
      snprintf(stems[nc], sizeof stems[nc], "%.*s", (int)(strlen(e->d_name) - 2), e->d_name);
      nc++;
    } else if (ends_with(e->d_name, ".json")) {
      njson++;
    } else {
      nother++;
    }
  }
  closedir(d);
  cr_assert_eq((uint64_t)nc, st.compiles, "%d sources for %llu compiled kernels", nc,
               (unsigned long long)st.compiles);
  cr_assert_eq(njson, nc, "%d sidecars for %d sources", njson, nc);
  cr_assert_eq(nother, 0, "unexpected files in the dump directory");

  for (int k = 0; k < nc; k++) {
    const char *stem = stems[k];
    /* <name>_<hash>: the name ends in hex digits of the kernel's key */
    const char *us = strrchr(stem, '_');
    cr_assert_not_null(us, "stem %s has no _<hash>", stem);
    cr_assert_geq(strlen(us + 1), 8, "stem %s: short hash", stem);
    for (const char *p = us + 1; *p; p++) cr_assert(isxdigit((unsigned char)*p), "stem %s", stem);

    static char path[16384], cmd[16384 + 64];
    snprintf(path, sizeof path, "%s/%s.c", dir, stem);
    char *src = read_text(path);
    cr_assert_not_null(strstr(src, stem), "%s does not contain its function %s", path, stem);
    free(src);
    snprintf(cmd, sizeof cmd, "cc -c -x c '%s' -o /dev/null", path);
    int rc = system(cmd);
    cr_assert_eq(rc, 0, "the dumped source does not compile on its own: %s (status %d)", cmd, rc);

    snprintf(path, sizeof path, "%s/%s.json", dir, stem);
    char *js = read_text(path);
    const char *first = js;
    while (isspace((unsigned char)*first)) first++;
    cr_assert_eq(*first, '{', "%s is not a JSON object", path);
    size_t n = strlen(js);
    while (n && isspace((unsigned char)js[n - 1])) n--;
    cr_assert(n && js[n - 1] == '}', "%s is not a JSON object", path);
    static const char *const keys[] = {"\"buffers\"", "\"dtype\"", "\"opts\"", "\"flops\"",
                                       "\"bytes\"", "\"launch\""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
      cr_assert_not_null(strstr(js, keys[i]), "%s lacks %s:\n%s", path, keys[i], js);
    cr_assert_not_null(strstr(js, stem), "%s does not name its kernel %s", path, stem);
    cr_assert_not_null(strstr(js, "f32"), "%s: the buffers' dtype (f32) is missing", path);
    int opens = 0, closes = 0;
    for (const char *p = js; *p; p++) opens += *p == '{' || *p == '[', closes += *p == '}' || *p == ']';
    cr_assert_eq(opens, closes, "%s: unbalanced brackets", path);
    free(js);
  }
}

Test(dump, no_dump_without_the_variable) {
  char dir[600];
  snprintf(dir, sizeof dir, "%s/dump", root);
  tgc_ctx *ctx = tgc_ctx_new();
  cr_assert_not_null(ctx, "%s", tgc_last_error());
  softmax_and_check(ctx);
  tgc_ctx_free(ctx);
  struct stat sb;
  cr_assert_neq(stat(dir, &sb), 0, "a dump directory appeared without TGC_DUMP");
}

/* ---- TGC_DEBUG ------------------------------------------------------------------ */

/* Runs three realizes in a child with TGC_DEBUG=level (NULL: unset) and
 * returns what it printed on stderr (malloc'd). */
static char *debug_output(const char *level) {
  char errpath[700];
  snprintf(errpath, sizeof errpath, "%s/stderr.txt", root);
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    alarm(100);
    int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, 2) < 0) _exit(90);
    close(fd);
    if (level) setenv("TGC_DEBUG", level, 1);
    else unsetenv("TGC_DEBUG");
    tgc_ctx *ctx = tgc_ctx_new();
    if (!ctx) _exit(91);
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8];
    tgc_tensor *A = tgc_from_data(ctx, TGC_F32, 1, (const int64_t[]){8}, a);
    tgc_tensor *s = tgc_softmax(A, 0);                 /* realize 1: several kernels */
    tgc_tensor *b = tgc_add(A, tgc_scalar(ctx, TGC_F32, 1)); /* realize 2: one kernel */
    int bad = tgc_realize(ctx, 1, &s) != TGC_OK;
    bad |= tgc_realize(ctx, 1, &b) != TGC_OK;
    bad |= tgc_realize(ctx, 1, &b) != TGC_OK;          /* realize 3: nothing to do */
    bad |= tgc_to_host(b, out, sizeof out) != TGC_OK;  /* realized: no realize */
    for (int i = 0; i < 8; i++) bad |= out[i] != a[i] + 1;
    tgc_ctx_free(ctx);
    fflush(stderr);
    _exit(bad ? 92 : 0);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "debug child ended with status %#x", st);
  return read_text(errpath);
}

Test(dump, debug_1_prints_one_line_per_realize) {
  char *text = debug_output("1");
  int lines = 0, with_kernels = 0;
  for (char *save, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    lines++;
    with_kernels += strstr(line, "kernels") != NULL;
  }
  cr_assert_eq(with_kernels, 3, "want one line naming kernels per realize (3), got %d", with_kernels);
  cr_assert_eq(lines, 3, "TGC_DEBUG=1 printed %d lines for 3 realizes", lines);
  free(text);
}

Test(dump, no_debug_output_by_default) {
  char *text = debug_output(NULL);
  cr_assert_str_empty(text, "stderr without TGC_DEBUG: \"%s\"", text);
  free(text);
  text = debug_output("0");
  cr_assert_str_empty(text, "stderr with TGC_DEBUG=0: \"%s\"", text);
  free(text);
}
