/* test_cache.c - the compile cache end to end, across processes.
 *
 * Each test makes its own cache directory and runs the same computation
 * (several kernels: a matmul, a softmax, an rmsnorm, a reduce) in forked
 * children, each with a fresh context, so what one process leaves on disk
 * is what the next one finds.  A child sends its results, stats and error
 * text back through a pipe and leaves with _exit, so nothing of Criterion
 * runs in it.  The parent checks the numbers against plain loops and the
 * children against each other (bit for bit), and looks at the files.
 */
#include "tgc_internal.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>


/* ---- the computation ---------------------------------------------------------- */

enum { R = 4, C = 16, H = 8 };
#define NV (R * H + R * C + C) /* softmax(x@w) [R,H], rmsnorm(x)*g [R,C], sum(exp(x),0) [C] */

static void fill(float *v, int n, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int i = 0; i < n; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
  }
}

typedef struct inputs {
  float x[R * C], w[C * H], g[C];
} inputs;

static void make_inputs(inputs *in) {
  fill(in->x, R * C, 1);
  fill(in->w, C * H, 2);
  fill(in->g, C, 3);
}

static void expected(double *want) {
  inputs in;
  make_inputs(&in);
  double *sm = want, *rn = want + R * H, *se = want + R * H + R * C;
  for (int r = 0; r < R; r++) {
    double h[H], mx = -INFINITY, s = 0;
    for (int j = 0; j < H; j++) {
      h[j] = 0;
      for (int k = 0; k < C; k++) h[j] += (double)in.x[r * C + k] * in.w[k * H + j];
      mx = fmax(mx, h[j]);
    }
    for (int j = 0; j < H; j++) s += exp(h[j] - mx);
    for (int j = 0; j < H; j++) sm[r * H + j] = exp(h[j] - mx) / s;
    double ms = 0;
    for (int k = 0; k < C; k++) ms += (double)in.x[r * C + k] * in.x[r * C + k];
    ms /= C;
    for (int k = 0; k < C; k++) rn[r * C + k] = in.x[r * C + k] / sqrt(ms + 1e-5) * in.g[k];
  }
  for (int k = 0; k < C; k++) {
    se[k] = 0;
    for (int r = 0; r < R; r++) se[k] += exp((double)in.x[r * C + k]);
  }
}

/* What a child sends back. */
typedef struct result {
  int status;     /* tgc_status of the realize; -1 when no context could be made */
  bool realized;  /* the targets were realized after the call */
  int status2;    /* second attempt (compiler tests), else 0 */
  tgc_stats stats;
  float vals[NV];
  char err[1024];
} result;

/* Builds and realizes the computation; copies the values out on success. */
static tgc_status compute(tgc_ctx *ctx, result *r) {
  inputs in;
  make_inputs(&in);
  tgc_tensor *x = tgc_from_data(ctx, TGC_F32, 2, (const int64_t[]){R, C}, in.x);
  tgc_tensor *w = tgc_from_data(ctx, TGC_F32, 2, (const int64_t[]){C, H}, in.w);
  tgc_tensor *g = tgc_from_data(ctx, TGC_F32, 1, (const int64_t[]){C}, in.g);
  tgc_tensor *t[3] = {
      tgc_softmax(tgc_matmul(x, w), -1),
      tgc_mul(tgc_rmsnorm(x, 1e-5), g),
      tgc_sum(tgc_exp(x), 1, (const int[]){0}, false),
  };
  if (!t[0] || !t[1] || !t[2]) return tgc_last_status();
  tgc_status st = tgc_realize(ctx, 3, t);
  r->realized = tgc_is_realized(t[0]) && tgc_is_realized(t[1]) && tgc_is_realized(t[2]);
  if (st != TGC_OK) return st;
  float *v = r->vals;
  if ((st = tgc_to_host(t[0], v, R * H * sizeof(float))) != TGC_OK) return st;
  if ((st = tgc_to_host(t[1], v + R * H, R * C * sizeof(float))) != TGC_OK) return st;
  return tgc_to_host(t[2], v + R * H + R * C, C * sizeof(float));
}

/* ---- children ------------------------------------------------------------------ */

/* The body a child runs after its environment is set: fills r. */
typedef void (*child_fn)(result *r);

static void body_compute(result *r) {
  tgc_ctx *ctx = tgc_ctx_new();
  if (!ctx) {
    r->status = -1;
    snprintf(r->err, sizeof r->err, "%s", tgc_last_error());
    return;
  }
  r->status = compute(ctx, r);
  snprintf(r->err, sizeof r->err, "%s", tgc_last_error());
  tgc_get_stats(ctx, &r->stats);
  tgc_ctx_free(ctx);
}

/* With a broken TGC_CC: the realize must fail; then with the default
 * compiler the same context must succeed. */
static void body_bad_compiler(result *r) {
  tgc_ctx *ctx = tgc_ctx_new();
  if (!ctx) {
    r->status = -1;
    snprintf(r->err, sizeof r->err, "%s", tgc_last_error());
    return;
  }
  r->status = compute(ctx, r);
  snprintf(r->err, sizeof r->err, "%s", tgc_last_error());
  if (r->status != TGC_OK) {
    unsetenv("TGC_CC");
    r->status2 = compute(ctx, r);
  }
  tgc_get_stats(ctx, &r->stats);
  tgc_ctx_free(ctx);
}

typedef struct child {
  pid_t pid;
  int fd; /* read end of the result pipe */
} child;

static bool write_all(int fd, const void *p, size_t n) {
  for (size_t done = 0; done < n;) {
    ssize_t w = write(fd, (const char *)p + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    done += (size_t)w;
  }
  return true;
}

/* Forks a child with TGC_CACHE_DIR=cache_dir and the given overrides
 * (name, value pairs; a NULL value unsets).  stderr_path, if set, gets the
 * child's stderr.  start_fd, if >= 0, is read before starting (a barrier:
 * the parent releases every child at once by closing the write end,
 * gate_w, which the child closes at once: every holder of it must). */
static child start_child(child_fn fn, const char *cache_dir, const char *const *env,
                         const char *stderr_path, int start_fd, int gate_w) {
  int p[2];
  cr_assert_eq(pipe(p), 0);
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    close(p[0]);
    if (gate_w >= 0) close(gate_w);
    alarm(150); /* a stuck child ends by itself, whatever the parent does */
    if (stderr_path) {
      int fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd < 0 || dup2(fd, 2) < 0) _exit(90);
      close(fd);
    }
    static const char *const clean[] = {"TGC_CACHE", "TGC_CC", "TGC_DUMP", "TGC_DEBUG",
                                        "TGC_NOOPT", "TGC_DEVICE"};
    for (size_t i = 0; i < sizeof clean / sizeof clean[0]; i++) unsetenv(clean[i]);
    if (cache_dir) setenv("TGC_CACHE_DIR", cache_dir, 1);
    for (int i = 0; env && env[i]; i += 2) {
      if (env[i + 1]) setenv(env[i], env[i + 1], 1);
      else unsetenv(env[i]);
    }
    if (start_fd >= 0) {
      char c;
      while (read(start_fd, &c, 1) < 0 && errno == EINTR) {
      }
      close(start_fd);
    }
    static result r; /* static: no large frame in the child */
    memset(&r, 0, sizeof r);
    fn(&r);
    bool ok = write_all(p[1], &r, sizeof r);
    fflush(stderr);
    _exit(ok ? 0 : 91);
  }
  close(p[1]);
  return (child){pid, p[0]};
}

/* Reads the child's result and reaps it; returns its wait status. */
static int finish_child(child c, result *r) {
  memset(r, 0, sizeof *r);
  size_t done = 0;
  while (done < sizeof *r) {
    ssize_t n = read(c.fd, (char *)r + done, sizeof *r - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += (size_t)n;
  }
  close(c.fd);
  int st = 0;
  while (waitpid(c.pid, &st, 0) < 0 && errno == EINTR) {
  }
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d ended with wait status %#x",
            (int)c.pid, st);
  cr_assert_eq(done, sizeof *r, "child %d sent %zu of %zu bytes", (int)c.pid, done, sizeof *r);
  return st;
}

static void run(child_fn fn, const char *cache_dir, const char *const *env,
                const char *stderr_path, result *r) {
  finish_child(start_child(fn, cache_dir, env, stderr_path, -1, -1), r);
}

/* ---- checks ------------------------------------------------------------------- */

static void check_ok(const result *r, const char *who) {
  cr_assert_eq(r->status, TGC_OK, "%s: status %d: %s", who, r->status, r->err);
  double want[NV];
  expected(want);
  for (int i = 0; i < NV; i++)
    cr_assert(fabs(r->vals[i] - want[i]) <= 1e-5 * (1 + fabs(want[i])),
              "%s: value %d is %.9g, want %.9g", who, i, (double)r->vals[i], want[i]);
}

static void check_same_bits(const result *a, const result *b) {
  for (int i = 0; i < NV; i++)
    cr_assert(memcmp(&a->vals[i], &b->vals[i], sizeof(float)) == 0,
              "value %d differs between processes: %.9g vs %.9g", i, (double)a->vals[i],
              (double)b->vals[i]);
}

/* ---- the cache directory ------------------------------------------------------ */

static char root[512];      /* this test's temporary directory */
static char cache_dir[600]; /* root/cache */

/* Idempotent within a test: helpers may call it again. */
static void make_root(void) {
  if (root[0]) return;
  const char *tmp = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/tgc-cache-e2e-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  cr_assert_not_null(mkdtemp(root), "mkdtemp: %s", strerror(errno));
  snprintf(cache_dir, sizeof cache_dir, "%s/cache", root);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void remove_root(void) {
  if (root[0]) nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  root[0] = '\0';
}

/* .fini runs after a failed assertion too: no directory is left behind. */
TestSuite(cache_e2e, .fini = remove_root, .timeout = 300);

#define MAXF 64
typedef struct listing {
  int nbin, nother;
  char bin[MAXF][1024];
  off_t size[MAXF];
} listing;

/* The entries of <cache_dir>/cpu: *.bin files, and anything else. */
static void list_entries(listing *l) {
  memset(l, 0, sizeof *l);
  char sub[700];
  snprintf(sub, sizeof sub, "%s/cpu", cache_dir);
  DIR *d = opendir(sub);
  if (!d) return;
  for (struct dirent *e; (e = readdir(d));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    size_t n = strlen(e->d_name);
    if (n > 4 && !strcmp(e->d_name + n - 4, ".bin") && l->nbin < MAXF) {
      snprintf(l->bin[l->nbin], sizeof l->bin[0], "%s/%s", sub, e->d_name);
      struct stat st;
      cr_assert_eq(stat(l->bin[l->nbin], &st), 0);
      l->size[l->nbin++] = st.st_size;
    } else {
      l->nother++;
    }
  }
  closedir(d);
}

/* Files anywhere under dir (0 if it does not exist). */
static int nfiles;
static int count_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)path, (void)sb, (void)ftw;
  if (flag == FTW_F || flag == FTW_SL) nfiles++;
  return 0;
}
static int count_files(const char *dir) {
  nfiles = 0;
  nftw(dir, count_one, 16, FTW_PHYS);
  return nfiles;
}

/* A first process fills the cache; returns its result and the listing. */
static void first_run(result *r, listing *l) {
  run(body_compute, cache_dir, NULL, NULL, r);
  check_ok(r, "first process");
  cr_assert_geq(r->stats.compiles, 4, "the computation should need several kernels");
  cr_assert_eq(r->stats.cache_disk_hits, 0);
  list_entries(l);
  cr_assert_eq((uint64_t)l->nbin, r->stats.compiles, "%d cache files for %llu compiled kernels",
               l->nbin, (unsigned long long)r->stats.compiles);
  cr_assert_eq(l->nother, 0, "stray files in the cache directory");
}

/* A later process that must find everything on disk. */
static void check_warm_run(const result *first, int nbin) {
  result r;
  run(body_compute, cache_dir, NULL, NULL, &r);
  check_ok(&r, "warm process");
  cr_assert_eq(r.stats.compiles, 0, "a warm cache compiled %llu kernels",
               (unsigned long long)r.stats.compiles);
  cr_assert_eq(r.stats.compiler_runs, 0);
  cr_assert_eq(r.stats.cache_disk_hits, (uint64_t)nbin);
  check_same_bits(first, &r);
}

/* ---- tests ---------------------------------------------------------------------- */

Test(cache_e2e, second_process_compiles_nothing_and_gets_the_same_bits) {
  make_root();
  result r1, r2;
  listing l;
  first_run(&r1, &l);
  run(body_compute, cache_dir, NULL, NULL, &r2);
  check_ok(&r2, "second process");
  cr_assert_eq(r2.stats.compiles, 0, "second process compiled %llu kernels",
               (unsigned long long)r2.stats.compiles);
  cr_assert_eq(r2.stats.compiler_runs, 0);
  cr_assert_gt(r2.stats.cache_disk_hits, 0);
  cr_assert_eq(r2.stats.cache_disk_hits, r1.stats.compiles);
  cr_assert_eq(r2.stats.kernels_scheduled, r1.stats.kernels_scheduled);
  check_same_bits(&r1, &r2);
  listing l2;
  list_entries(&l2);
  cr_assert_eq(l2.nbin, l.nbin, "a warm run changed the number of entries");
  remove_root();
}

/* Corrupts every entry with how(i, path, size), then checks a new process
 * recompiles exactly those, gets correct results, and leaves valid files. */
static void corrupt_and_recover(void (*how)(int i, const char *path, off_t size)) {
  make_root();
  result r1, r2;
  listing l;
  first_run(&r1, &l);
  for (int i = 0; i < l.nbin; i++) how(i, l.bin[i], l.size[i]);
  run(body_compute, cache_dir, NULL, NULL, &r2);
  check_ok(&r2, "process after the corruption");
  cr_assert_gt(r2.stats.compiles, 0, "corrupt entries were loaded, not recompiled");
  cr_assert_eq(r2.stats.compiles, (uint64_t)l.nbin, "%llu recompiled, %d entries corrupted",
               (unsigned long long)r2.stats.compiles, l.nbin);
  cr_assert_eq(r2.stats.cache_disk_hits, 0);
  check_same_bits(&r1, &r2);
  listing l2;
  list_entries(&l2);
  cr_assert_eq(l2.nbin, l.nbin, "the entries were not replaced");
  cr_assert_eq(l2.nother, 0, "stray files in the cache directory");
  for (int i = 0; i < l2.nbin; i++) cr_assert_gt(l2.size[i], 64, "%s is too short", l2.bin[i]);
  check_warm_run(&r1, l.nbin);
  remove_root();
}

static void truncate_half(int i, const char *path, off_t size) {
  /* most to half their size; one to nothing at all */
  cr_assert_eq(truncate(path, i == 0 ? 0 : size / 2), 0, "truncate %s: %s", path, strerror(errno));
}

static void overwrite_garbage(int i, const char *path, off_t size) {
  int fd = open(path, O_RDWR);
  cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
  if (i % 2 == 0) { /* random bytes over the whole file, same size */
    static unsigned char junk[1 << 20];
    cr_assert_leq(size, (off_t)sizeof junk);
    uint64_t s = 12345 + (uint64_t)i;
    for (off_t k = 0; k < size; k++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      junk[k] = (unsigned char)(s >> 56);
    }
    cr_assert(write_all(fd, junk, (size_t)size));
  } else { /* the header intact, one flipped byte in the payload */
    unsigned char b;
    off_t at = size - size / 3;
    cr_assert_eq(pread(fd, &b, 1, at), 1);
    b ^= 0x5a;
    cr_assert_eq(pwrite(fd, &b, 1, at), 1);
  }
  close(fd);
}

Test(cache_e2e, truncated_entries_are_recompiled_and_replaced) {
  corrupt_and_recover(truncate_half);
}

Test(cache_e2e, garbage_entries_are_recompiled_and_replaced) {
  corrupt_and_recover(overwrite_garbage);
}

Test(cache_e2e, unwritable_cache_dir_warns_and_works) {
  make_root();
  char errpath[700];
  snprintf(errpath, sizeof errpath, "%s/stderr.txt", root);
  result r;
  /* a path below a regular file: fails even for root */
  run(body_compute, "/etc/passwd/sub", NULL, errpath, &r);
  check_ok(&r, "process with an unwritable cache");
  cr_assert_gt(r.stats.compiles, 0);
  FILE *f = fopen(errpath, "r");
  cr_assert_not_null(f);
  char text[8192];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  cr_assert_not_null(strstr(text, "warning"), "no warning on stderr: \"%s\"", text);
  cr_assert_not_null(strstr(text, "/etc/passwd/sub"), "the warning does not name the directory: \"%s\"",
                     text);
  int count = 0;
  for (const char *p = text; (p = strstr(p, "warning")); p++) count++;
  cr_assert_eq(count, 1, "expected one warning, got %d: \"%s\"", count, text);
  remove_root();
}

Test(cache_e2e, cache_off_writes_nothing) {
  make_root();
  cr_assert_eq(mkdir(cache_dir, 0755), 0);
  static const char *const off[] = {"TGC_CACHE", "0", NULL};
  result r1, r2;
  run(body_compute, cache_dir, off, NULL, &r1);
  check_ok(&r1, "TGC_CACHE=0");
  cr_assert_gt(r1.stats.compiles, 0);
  cr_assert_eq(count_files(cache_dir), 0, "TGC_CACHE=0 wrote into the cache directory");
  run(body_compute, cache_dir, off, NULL, &r2);
  check_ok(&r2, "TGC_CACHE=0 again");
  cr_assert_eq(r2.stats.compiles, r1.stats.compiles, "nothing to find: everything compiles again");
  cr_assert_eq(r2.stats.cache_disk_hits, 0);
  cr_assert_eq(count_files(cache_dir), 0);
  check_same_bits(&r1, &r2);
  remove_root();
}

Test(cache_e2e, two_processes_fill_one_empty_cache_at_once) {
  make_root();
  int gate[2];
  cr_assert_eq(pipe(gate), 0);
  child a = start_child(body_compute, cache_dir, NULL, NULL, gate[0], gate[1]);
  child b = start_child(body_compute, cache_dir, NULL, NULL, gate[0], gate[1]);
  close(gate[0]);
  close(gate[1]); /* both children see EOF now: go */
  result ra, rb;
  finish_child(a, &ra);
  finish_child(b, &rb);
  check_ok(&ra, "first racer");
  check_ok(&rb, "second racer");
  check_same_bits(&ra, &rb);
  cr_assert_gt(ra.stats.compiles + rb.stats.compiles, 0);
  listing l;
  list_entries(&l);
  uint64_t kernels = ra.stats.compiles > rb.stats.compiles ? ra.stats.compiles : rb.stats.compiles;
  cr_assert_eq((uint64_t)l.nbin, kernels, "%d entries for %llu kernels", l.nbin,
               (unsigned long long)kernels);
  cr_assert_eq(l.nother, 0, "temporary files left behind");
  check_warm_run(&ra, l.nbin);
  remove_root();
}

/* ---- the C compiler ------------------------------------------------------------ */

static void check_bad_compiler(const char *cc, const char *must_say, const char *also) {
  make_root();
  const char *const env[] = {"TGC_CC", cc, NULL};
  result r;
  run(body_bad_compiler, cache_dir, env, NULL, &r);
  cr_assert_neq(r.status, -1, "tgc_ctx_new failed: %s", r.err);
  cr_assert_eq(r.status, TGC_ERR_COMPILE, "TGC_CC=%s: status %s (%d), want TGC_ERR_COMPILE: %s",
               cc, r.status >= 0 ? tgc_status_str((tgc_status)r.status) : "?", r.status, r.err);
  cr_assert_not_null(strstr(r.err, must_say), "the error does not name the compiler '%s': \"%s\"",
                     must_say, r.err);
  if (also)
    cr_assert_not_null(strstr(r.err, also), "the error lacks the compiler's message '%s': \"%s\"",
                       also, r.err);
  /* the same context works once the default compiler is back */
  result ok = r;
  ok.status = r.status2;
  check_ok(&ok, "the same context with the default compiler");
  cr_assert(ok.realized);
  remove_root();
}

Test(cache_e2e, missing_compiler_is_a_clear_error) {
  check_bad_compiler("/nonexistent/cc", "/nonexistent/cc", NULL);
}

Test(cache_e2e, failing_compiler_is_a_clear_error) {
  check_bad_compiler("false", "false", NULL);
}

Test(cache_e2e, compiler_error_carries_its_message) {
  make_root();
  char script[700];
  snprintf(script, sizeof script, "%s/badcc", root);
  FILE *f = fopen(script, "w");
  cr_assert_not_null(f);
  fputs("#!/bin/sh\necho 'badcc: error: no kernels today' >&2\nexit 1\n", f);
  fclose(f);
  cr_assert_eq(chmod(script, 0755), 0);
  check_bad_compiler(script, script, "no kernels today");
}

/* In this process (Criterion runs each test in its own): a failed compile
 * leaves no target realized and nothing launched. */
Test(cache_e2e, failed_realize_leaves_nothing_realized) {
  make_root();
  setenv("TGC_CACHE_DIR", cache_dir, 1);
  setenv("TGC_CC", "false", 1);
  tgc_ctx *ctx = tgc_ctx_new();
  cr_assert_not_null(ctx);
  result mine;
  memset(&mine, 0, sizeof mine);
  cr_assert_eq(compute(ctx, &mine), TGC_ERR_COMPILE);
  cr_assert_not(mine.realized, "a failed realize left targets realized");
  tgc_stats s;
  tgc_get_stats(ctx, &s);
  cr_assert_eq(s.launches, 0);
  cr_assert_eq(s.bytes_in_use, (R * C + C * H + C) * sizeof(float), "only the inputs stay alive");
  cr_assert_eq(count_files(cache_dir), 0, "a failed compile left cache entries");
  tgc_ctx_free(ctx);
  unsetenv("TGC_CC");
  remove_root();
}
