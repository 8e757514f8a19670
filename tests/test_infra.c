/* test_infra.c - tests of the infrastructure under the pipeline: util
 * (errors, arena, hashing, strings), the thread pool, the disk cache and
 * the C compiler driver.  Criterion runs each test in its own process, so
 * the tests may setenv freely.
 */
#include "tgc_internal.h" /* first: it defines _GNU_SOURCE */

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- util ----------------------------------------------------------------- */

Test(util, arena_aligned_zeroed_disjoint) {
  tgc_arena *a = tgc_arena_new();
  static const size_t sizes[] = {0, 1, 3, 16, 17, 100, 5000, 16385, 70000, 1, 200000, 8};
  enum { N = sizeof sizes / sizeof sizes[0] };
  unsigned char *ps[N * 50];
  int k = 0;
  for (int round = 0; round < 50; round++)
    for (int i = 0; i < N; i++, k++) {
      ps[k] = tgc_arena_alloc(a, sizes[i]);
      cr_assert_eq((uintptr_t)ps[k] % 16, 0);
      for (size_t j = 0; j < sizes[i]; j++) cr_assert_eq(ps[k][j], 0);
      memset(ps[k], k & 0xff, sizes[i]);
    }
  k = 0;
  for (int round = 0; round < 50; round++)
    for (int i = 0; i < N; i++, k++)
      for (size_t j = 0; j < sizes[i]; j++) cr_assert_eq(ps[k][j], k & 0xff);
  const char msg[] = "duplicated";
  char *d = tgc_arena_dup(a, msg, sizeof msg);
  cr_assert_str_eq(d, msg);
  cr_assert_eq((uintptr_t)d % 16, 0);
  tgc_arena_free(a);
  tgc_arena_free(NULL);
}

Test(util, hasher_equals_one_shot) {
  const char *text = "hello, tensor world";
  tgc_key one = tgc_key_of(text, strlen(text));
  tgc_hasher *h = tgc_hasher_new();
  tgc_hasher_feed(h, text, 5);
  tgc_hasher_feed(h, text + 5, 0);
  tgc_hasher_feed(h, text + 5, strlen(text) - 5);
  tgc_key streamed = tgc_hasher_finish(h);
  cr_assert(one.lo == streamed.lo && one.hi == streamed.hi);

  h = tgc_hasher_new();
  tgc_hasher_feed_str(h, "ab");
  tgc_key with_nul = tgc_hasher_finish(h);
  tgc_key direct = tgc_key_of("ab", 3);
  cr_assert(with_nul.lo == direct.lo && with_nul.hi == direct.hi);

  char hex[33], want[33];
  tgc_key_hex(one, hex);
  snprintf(want, sizeof want, "%016llx%016llx", (unsigned long long)one.hi,
           (unsigned long long)one.lo);
  cr_assert_str_eq(hex, want);
  cr_assert_eq(strlen(hex), 32);
  cr_assert_neq(tgc_hash64(text, 5, 0), tgc_hash64(text, 5, 1));
}

Test(util, error_round_trip) {
  cr_assert_str_eq(tgc_last_error(), "");
  cr_assert_eq(tgc_last_status(), TGC_OK);
  cr_assert_eq(tgc_set_error(TGC_ERR_SHAPE, "shapes %d and %d", 3, 4), TGC_ERR_SHAPE);
  cr_assert_str_eq(tgc_last_error(), "shapes 3 and 4");
  cr_assert_eq(tgc_last_status(), TGC_ERR_SHAPE);
  cr_assert_str_eq(tgc_status_str(tgc_last_status()), "TGC_ERR_SHAPE");
  /* a message that wraps the previous one */
  tgc_set_error(TGC_ERR_IO, "while loading: %s", tgc_last_error());
  cr_assert_str_eq(tgc_last_error(), "while loading: shapes 3 and 4");
  cr_assert_null(tgc_fail(TGC_ERR_ARG, "x"));
  cr_assert_eq(tgc_last_status(), TGC_ERR_ARG);
  tgc_clear_error();
  cr_assert_str_eq(tgc_last_error(), "");
  cr_assert_eq(tgc_last_status(), TGC_OK);
  /* compiler logs are long: kept up to 16 KiB */
  char *big = malloc(20000);
  memset(big, 'e', 19999);
  big[19999] = '\0';
  tgc_set_error(TGC_ERR_COMPILE, "%s", big);
  cr_assert_eq(strlen(tgc_last_error()), 16 * 1024 - 1);
  free(big);
  cr_assert_str_eq(tgc_status_str(TGC_OK), "TGC_OK");
  cr_assert_str_eq(tgc_status_str(TGC_ERR_UNSUPPORTED), "TGC_ERR_UNSUPPORTED");
  cr_assert_not_null(tgc_status_str((tgc_status)99));
}

Test(util, warn_once_dedupes, .init = cr_redirect_stderr) {
  for (int i = 0; i < 3; i++) tgc_warn_once("disk %s is full", "/x");
  tgc_warn_once("disk %s is full", "/y");
  fflush(stderr);
  cr_assert_stderr_eq_str("tgc: warning: disk /x is full\ntgc: warning: disk /y is full\n");
}

Test(util, dtypes) {
  cr_assert_str_eq(tgc_dtype_name(TGC_F32), "f32");
  cr_assert_str_eq(tgc_dtype_name(TGC_BF16), "bf16");
  cr_assert_str_eq(tgc_dtype_name(TGC_NUM_DTYPES), "?");
  cr_assert_eq(tgc_dtype_size(TGC_I64), 8);
  cr_assert_eq(tgc_dtype_size(TGC_BOOL), 1);
  cr_assert_eq(tgc_dtype_size(TGC_NUM_DTYPES), 0);
  cr_assert(tgc_dtype_is_float(TGC_F16));
  cr_assert(!tgc_dtype_is_float(TGC_U32));
}

Test(util, strings_and_env) {
  tgc_str s = {0};
  tgc_str_cat(&s, "");
  cr_assert_str_eq(s.s, "");
  for (int i = 0; i < 1000; i++) tgc_str_fmt(&s, "%d,", i);
  tgc_str_cat(&s, "end");
  cr_assert_eq(strlen(s.s), s.len);
  cr_assert(strncmp(s.s, "0,1,2,", 6) == 0);
  cr_assert(strcmp(s.s + s.len - 7, "999,end") == 0);
  tgc_str_free(&s);
  cr_assert_null(s.s);

  setenv("TGC_TEST_INT", "42", 1);
  cr_assert_eq(tgc_env_int("TGC_TEST_INT", 7), 42);
  setenv("TGC_TEST_INT", "4x", 1);
  cr_assert_eq(tgc_env_int("TGC_TEST_INT", 7), 7);
  setenv("TGC_TEST_INT", "", 1);
  cr_assert_eq(tgc_env_int("TGC_TEST_INT", 7), 7);
  cr_assert_str_eq(tgc_env_str("TGC_TEST_INT", "d"), "d");
  unsetenv("TGC_TEST_INT");
  cr_assert_eq(tgc_env_int("TGC_TEST_INT", -1), -1);
  double t0 = tgc_now(), t1 = tgc_now();
  cr_assert(t1 >= t0 && t0 > 0);
}

/* ---- pool ------------------------------------------------------------------ */

typedef struct cover {
  atomic_int *hits;    /* per index */
  atomic_int calls;    /* chunks run */
  atomic_llong small;  /* chunks shorter than min_chunk */
  int64_t min_chunk;
} cover;

static void mark(void *arg, int64_t start, int64_t end) {
  cover *c = arg;
  atomic_fetch_add(&c->calls, 1);
  if (end - start < c->min_chunk) atomic_fetch_add(&c->small, 1);
  for (int64_t i = start; i < end; i++) atomic_fetch_add(&c->hits[i], 1);
}

static void check_cover(tgc_pool *p, int64_t n, int64_t min_chunk) {
  cover c = {.hits = calloc((size_t)n + 1, sizeof(atomic_int)), .min_chunk = min_chunk};
  tgc_pool_run(p, mark, &c, n, min_chunk);
  for (int64_t i = 0; i < n; i++)
    cr_assert_eq(atomic_load(&c.hits[i]), 1, "n=%lld index %lld", (long long)n, (long long)i);
  cr_assert_leq(atomic_load(&c.calls), tgc_pool_size(p));
  if (n > min_chunk) cr_assert_leq(atomic_load(&c.small), 1);
  if (n == 0) cr_assert_eq(atomic_load(&c.calls), 0);
  free(c.hits);
}

Test(pool, covers_range_exactly_once) {
  static const int threads[] = {1, 2, 4};
  static const int64_t ns[] = {0, 1, 2, 3, 5, 7, 8, 63, 64, 65, 1000, 12345};
  static const int64_t mins[] = {0, 1, 2, 16, 1000};
  for (size_t t = 0; t < 3; t++) {
    tgc_pool *p = tgc_pool_new(threads[t]);
    cr_assert_eq(tgc_pool_size(p), threads[t]);
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
      for (size_t m = 0; m < sizeof mins / sizeof mins[0]; m++) check_cover(p, ns[i], mins[m]);
    tgc_pool_free(p);
  }
  tgc_pool_free(NULL);
}

static void add_range(void *arg, int64_t start, int64_t end) {
  atomic_fetch_add((atomic_llong *)arg, (end - start) * (start + end - 1) / 2);
}

Test(pool, back_to_back_runs) {
  for (int t = 1; t <= 4; t *= 2) {
    tgc_pool *p = tgc_pool_new(t);
    atomic_llong sum = 0;
    long long want = 0;
    double t0 = tgc_now();
    for (int r = 0; r < 20000; r++) {
      int64_t n = 4 + r % 61;
      tgc_pool_run(p, add_range, &sum, n, 1);
      want += n * (n - 1) / 2;
    }
    double us = (tgc_now() - t0) / 20000 * 1e6;
    cr_log_info("pool of %d: %.2f us per run", t, us);
    cr_assert_eq(atomic_load(&sum), want);
    tgc_pool_free(p);
  }
}

/* Runs separated by pauses let the workers fall asleep between jobs. */
Test(pool, runs_after_workers_sleep) {
  tgc_pool *p = tgc_pool_new(4);
  for (int r = 0; r < 20; r++) {
    check_cover(p, 1000 + r, 1);
    usleep(r % 2 ? 200 : 2000);
  }
  tgc_pool_free(p);
}

static void slow_unless_first(void *arg, int64_t start, int64_t end) {
  if (start != 0) usleep(2000); /* the caller, with chunk 0, must wait asleep */
  add_range(arg, start, end);
}

Test(pool, caller_waits_for_slow_workers) {
  tgc_pool *p = tgc_pool_new(3);
  atomic_llong sum = 0;
  for (int r = 0; r < 10; r++) tgc_pool_run(p, slow_unless_first, &sum, 300, 1);
  cr_assert_eq(atomic_load(&sum), 10LL * 300 * 299 / 2);
  tgc_pool_free(p);
}

/* ---- disk cache -------------------------------------------------------------- */

static char cache_root[256];

static void use_temp_cache(void) {
  snprintf(cache_root, sizeof cache_root, "%s/tgc-test-XXXXXX", tgc_env_str("TMPDIR", "/tmp"));
  cr_assert_not_null(mkdtemp(cache_root));
  char dir[300];
  snprintf(dir, sizeof dir, "%s/cache", cache_root);
  setenv("TGC_CACHE_DIR", dir, 1);
  unsetenv("TGC_CACHE");
}

static void remove_tree(const char *path) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", path, path);
  cr_assert_eq(system(cmd), 0);
}

static void entry_file(char *out, size_t cap, const char *kind, tgc_key key) {
  char dir[512], hex[33];
  cr_assert_not_null(tgc_cache_dir(dir, sizeof dir));
  tgc_key_hex(key, hex);
  snprintf(out, cap, "%s/%s/%s.bin", dir, kind, hex);
}

static const char payload[] = "\x7f" "ELF pretend this is a shared object";

Test(cache, round_trip) {
  use_temp_cache();
  tgc_key k = tgc_key_of("k1", 2), other = tgc_key_of("k2", 2);
  size_t len = 99;
  cr_assert_null(tgc_disk_get("cpu", k, &len));
  cr_assert_eq(tgc_disk_put("cpu", k, payload, sizeof payload), TGC_OK);
  void *got = tgc_disk_get("cpu", k, &len);
  cr_assert_not_null(got);
  cr_assert_eq(len, sizeof payload);
  cr_assert(memcmp(got, payload, len) == 0);
  free(got);
  cr_assert_null(tgc_disk_get("cpu", other, &len));
  cr_assert_null(tgc_disk_get("cuda", k, &len));
  /* overwrite, and an empty payload is found (not "missing") */
  cr_assert_eq(tgc_disk_put("cpu", k, "", 0), TGC_OK);
  got = tgc_disk_get("cpu", k, &len);
  cr_assert_not_null(got);
  cr_assert_eq(len, 0);
  free(got);
  remove_tree(cache_root);
}

/* Writes a good entry, damages it with `damage`, and checks that the get
 * reports it missing and deletes the file. */
static void check_corrupt(void (*damage)(const char *path, tgc_key *k)) {
  tgc_key k = tgc_key_of("entry", 5);
  cr_assert_eq(tgc_disk_put("cpu", k, payload, sizeof payload), TGC_OK);
  char path[700];
  entry_file(path, sizeof path, "cpu", k);
  cr_assert_eq(access(path, F_OK), 0);
  damage(path, &k);
  size_t len;
  cr_assert_null(tgc_disk_get("cpu", k, &len));
  cr_assert_neq(access(path, F_OK), 0, "the bad entry %s is still there", path);
}

static void truncate_it(const char *path, tgc_key *k) {
  (void)k;
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  cr_assert_eq(truncate(path, st.st_size - 3), 0);
}

static void short_header(const char *path, tgc_key *k) {
  (void)k;
  cr_assert_eq(truncate(path, 10), 0);
}

static void scribble(const char *path, tgc_key *k) {
  (void)k;
  FILE *f = fopen(path, "r+b");
  cr_assert_not_null(f);
  fseek(f, -5, SEEK_END);
  fputs("XXXX", f);
  fclose(f);
}

static void garbage(const char *path, tgc_key *k) {
  (void)k;
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  for (int i = 0; i < 300; i++) fputc((i * 37) & 0xff, f);
  fclose(f);
}

/* The file of one key moved under another key's name. */
static void wrong_key(const char *path, tgc_key *k) {
  tgc_key k2 = tgc_key_of("another entry", 13);
  char path2[700];
  entry_file(path2, sizeof path2, "cpu", k2);
  cr_assert_eq(rename(path, path2), 0);
  strcpy((char *)path, path2);
  *k = k2;
}

Test(cache, corrupt_entries_are_deleted) {
  use_temp_cache();
  check_corrupt(truncate_it);
  check_corrupt(short_header);
  check_corrupt(scribble);
  check_corrupt(garbage);
  check_corrupt(wrong_key);
  remove_tree(cache_root);
}

Test(cache, unwritable_dir_is_an_error_not_a_crash) {
  use_temp_cache();
  char bad[400];
  if (geteuid() == 0) { /* root ignores permissions; a path below a file fails for all */
    snprintf(bad, sizeof bad, "%s/afile", cache_root);
    FILE *f = fopen(bad, "w");
    cr_assert_not_null(f);
    fclose(f);
    strcat(bad, "/x");
  } else {
    snprintf(bad, sizeof bad, "%s/ro", cache_root);
    cr_assert_eq(mkdir(bad, 0500), 0);
    strcat(bad, "/sub");
  }
  setenv("TGC_CACHE_DIR", bad, 1);
  tgc_key k = tgc_key_of("x", 1);
  cr_assert_eq(tgc_disk_put("cpu", k, payload, sizeof payload), TGC_ERR_IO);
  cr_assert_eq(tgc_last_status(), TGC_ERR_IO);
  cr_assert_eq(tgc_disk_put("cpu", k, payload, sizeof payload), TGC_ERR_IO); /* warns once */
  size_t len;
  cr_assert_null(tgc_disk_get("cpu", k, &len));
  remove_tree(cache_root);
}

/* Processes writing and reading the same entries at once: a reader sees
 * a whole entry or none, never a torn one, and nothing is left behind. */
static int hammer(int id) {
  char data[3000];
  for (int r = 0; r < 300; r++) {
    int which = (r + id) % 3;
    tgc_key k = tgc_key_of(&which, sizeof which);
    memset(data, 'a' + which, sizeof data);
    if (tgc_disk_put("cpu", k, data, sizeof data - (size_t)which) != TGC_OK) return 1;
    size_t len;
    char *got = tgc_disk_get("cpu", k, &len);
    if (got && (len != sizeof data - (size_t)which || memcmp(got, data, len) != 0)) return 2;
    free(got);
  }
  return 0;
}

Test(cache, shared_by_processes) {
  use_temp_cache();
  pid_t kids[4];
  for (int i = 0; i < 4; i++) {
    kids[i] = fork();
    cr_assert_geq(kids[i], 0);
    if (kids[i] == 0) _exit(hammer(i));
  }
  for (int i = 0; i < 4; i++) {
    int st;
    cr_assert_eq(waitpid(kids[i], &st, 0), kids[i]);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d: status %d", i, st);
  }
  char cmd[600];
  snprintf(cmd, sizeof cmd, "test $(ls '%s/cache/cpu' | wc -l) -eq 3", cache_root);
  cr_assert_eq(system(cmd), 0, "temporary files left in %s/cache/cpu", cache_root);
  remove_tree(cache_root);
}

Test(cache, directory_resolution) {
  char buf[512];
  setenv("TGC_CACHE", "0", 1);
  setenv("TGC_CACHE_DIR", "/somewhere", 1);
  cr_assert_null(tgc_cache_dir(buf, sizeof buf));
  size_t len;
  cr_assert_null(tgc_disk_get("cpu", tgc_key_of("a", 1), &len));
  cr_assert_eq(tgc_disk_put("cpu", tgc_key_of("a", 1), "a", 1), TGC_OK);
  unsetenv("TGC_CACHE");
  cr_assert_str_eq(tgc_cache_dir(buf, sizeof buf), "/somewhere");
  unsetenv("TGC_CACHE_DIR");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  cr_assert_str_eq(tgc_cache_dir(buf, sizeof buf), "/xdg/tgc");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/u", 1);
  cr_assert_str_eq(tgc_cache_dir(buf, sizeof buf), "/home/u/.cache/tgc");
  cr_assert_null(tgc_cache_dir(buf, 5)); /* does not fit */
}

/* ---- C compiler -------------------------------------------------------------- */

#define PREAMBLE "#ifndef TGC_TEST_PRE\n#define TGC_TEST_PRE\n#include <math.h>\n#endif\n"

Test(cc, identity) {
  unsetenv("TGC_CC");
  const char *id = tgc_cc_identity();
  cr_assert_not_null(id, "%s", tgc_last_error());
  cr_assert(strncmp(id, "cc=", 3) == 0);
  cr_assert_not_null(strstr(id, "\nversion="));
  cr_assert_not_null(strstr(id, "\nflags=-O2 -march=native"));
  cr_assert_eq(tgc_cc_identity(), id); /* memoised */
}

Test(cc, compile_two_units_and_call_them) {
  unsetenv("TGC_CC");
  const char *srcs[3] = {
      PREAMBLE "double tgc_t_sq(double x) { return sqrt(x) * 2; }\n",
      PREAMBLE "int tgc_t_add(int a, int b) { return a + b; }",
      PREAMBLE "int tgc_t_three(void) { return 3; }\n",
  };
  void *bins[3];
  size_t lens[3];
  cr_assert_eq(tgc_cc_compile(3, srcs, bins, lens), TGC_OK, "%s", tgc_last_error());
  void *h[3];
  for (int i = 0; i < 3; i++) {
    cr_assert(bins[i] && lens[i] > 0);
    h[i] = tgc_so_load(bins[i], lens[i]);
    cr_assert_not_null(h[i], "%s", tgc_last_error());
  }
  double (*sq)(double) = (double (*)(double))dlsym(h[0], "tgc_t_sq");
  int (*add)(int, int) = (int (*)(int, int))dlsym(h[1], "tgc_t_add");
  int (*three)(void) = (int (*)(void))dlsym(h[2], "tgc_t_three");
  cr_assert(sq && add && three);
  cr_assert_float_eq(sq(16.0), 8.0, 1e-12);
  cr_assert_eq(add(2, 40), 42);
  cr_assert_eq(three(), 3);
  for (int i = 0; i < 3; i++) {
    tgc_so_unload(h[i]);
    free(bins[i]);
  }
  tgc_so_unload(NULL);
}

/* Loading one image after another must give the new one each time, though
 * each memfd may reuse the number of the last. */
Test(cc, successive_loads_are_distinct) {
  unsetenv("TGC_CC");
  const char *srcs[2] = {"int tgc_t_v(void) { return 1; }", "int tgc_t_v(void) { return 2; }"};
  void *bins[2], *h[2];
  size_t lens[2];
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(tgc_cc_compile(1, &srcs[i], &bins[i], &lens[i]), TGC_OK, "%s", tgc_last_error());
    h[i] = tgc_so_load(bins[i], lens[i]);
    cr_assert_not_null(h[i], "%s", tgc_last_error());
    int (*v)(void) = (int (*)(void))dlsym(h[i], "tgc_t_v");
    cr_assert_eq(v(), i + 1);
  }
  for (int i = 0; i < 2; i++) tgc_so_unload(h[i]), free(bins[i]);
}

Test(cc, many_units_in_batches) {
  unsetenv("TGC_CC");
  enum { N = 21 };
  char *srcs[N];
  void *bins[N];
  size_t lens[N];
  for (int i = 0; i < N; i++) {
    srcs[i] = malloc(256);
    snprintf(srcs[i], 256, PREAMBLE "int tgc_t_f%d(void) { return %d * %d; }\n", i, i, i);
  }
  cr_assert_eq(tgc_cc_compile(N, (const char *const *)srcs, bins, lens), TGC_OK, "%s",
               tgc_last_error());
  for (int i = 0; i < N; i++) {
    void *h = tgc_so_load(bins[i], lens[i]);
    char name[32];
    snprintf(name, sizeof name, "tgc_t_f%d", i);
    int (*f)(void) = (int (*)(void))dlsym(h, name);
    cr_assert_not_null(f);
    cr_assert_eq(f(), i * i);
    tgc_so_unload(h);
    free(bins[i]);
    free(srcs[i]);
  }
}

Test(cc, syntax_error_reports_the_log) {
  unsetenv("TGC_CC");
  const char *srcs[2] = {"int tgc_t_ok(void) { return 1; }",
                         "int tgc_t_bad(void) { return 1 +; }"};
  void *bins[2] = {(void *)1, (void *)1};
  size_t lens[2];
  cr_assert_eq(tgc_cc_compile(2, srcs, bins, lens), TGC_ERR_COMPILE);
  cr_assert_null(bins[0]);
  cr_assert_null(bins[1]);
  cr_assert_eq(tgc_last_status(), TGC_ERR_COMPILE);
  const char *msg = tgc_last_error();
  cr_assert_not_null(strstr(msg, "C compiler 'cc' failed (exit"), "%s", msg);
  cr_assert_not_null(strstr(msg, "error"), "%s", msg);
}

Test(cc, missing_compiler_is_named) {
  setenv("TGC_CC", "/nonexistent/cc", 1);
  cr_assert_null(tgc_cc_identity());
  cr_assert_eq(tgc_last_status(), TGC_ERR_COMPILE);
  cr_assert_not_null(strstr(tgc_last_error(), "/nonexistent/cc"), "%s", tgc_last_error());
  const char *src = "int tgc_t_x(void) { return 0; }";
  void *bin = (void *)1;
  size_t len;
  cr_assert_eq(tgc_cc_compile(1, &src, &bin, &len), TGC_ERR_COMPILE);
  cr_assert_null(bin);
  cr_assert_not_null(strstr(tgc_last_error(), "C compiler '/nonexistent/cc' could not be run"),
                     "%s", tgc_last_error());
  /* a good compiler still works afterwards in the same process */
  setenv("TGC_CC", "cc -O1", 1);
  cr_assert_not_null(tgc_cc_identity(), "%s", tgc_last_error());
  cr_assert_eq(tgc_cc_compile(1, &src, &bin, &len), TGC_OK, "%s", tgc_last_error());
  free(bin);
}

Test(cc, bad_image_fails_to_load) {
  void *h = tgc_so_load("not an ELF file", 15);
  cr_assert_null(h);
  cr_assert_eq(tgc_last_status(), TGC_ERR_COMPILE);
  cr_assert_neq(tgc_last_error()[0], '\0');
}
