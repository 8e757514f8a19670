/* cc.c - the system C compiler as the CPU kernel compiler, and the loader
 * for what it produces.
 *
 * A compiler process costs far more than a small kernel takes to compile,
 * so units are packed into at most min(n, CPUs, 8) batches of similar
 * source size; each batch is one translation unit (the units' shared
 * preambles are guarded by the renderer) compiled by one process, and the
 * processes run concurrently.  Sources, outputs and logs go through a
 * private temporary directory rather than pipes: no pipe can fill up and
 * deadlock, and nothing is left to poll.  Images are loaded from memory
 * through a memfd, so a noexec /tmp does not matter.
 *
 * TGC_CC is read at every call, and tgc_cc_identity memoises one identity
 * per distinct TGC_CC value: changing TGC_CC within a process (as the tests
 * do) gives the identity and the binaries of the new compiler.
 */
#include "tgc_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

extern char **environ;

#define MAX_BATCHES 8
#define LOG_MAX (8 * 1024)

/* Flags before the source; "-lm" follows it.  -fwrapv: tensor integer
 * arithmetic wraps, and it also keeps GCC 12's loop vectorizer away from
 * a miscompile of interleaved narrow-integer reductions (an i8 sum with
 * four accumulators came out wrong at -O2; tests/test_reduce.c covers it). */
static const char *const cc_flags[] = {"-O2", "-march=native", "-shared", "-fPIC", "-std=gnu11",
                                       "-ffp-contract=fast", "-fno-math-errno", "-fwrapv",
                                       "-x", "c"};
#define N_FLAGS (int)(sizeof cc_flags / sizeof cc_flags[0])

/* ---- the compiler command ------------------------------------------------- */

/* $TGC_CC split on blanks: "ccache gcc" or "gcc -O3" are allowed. */
typedef struct cc_cmd {
  char *text;   /* TGC_CC as given, for messages */
  char *words;  /* text with NULs between the words; argv points into it */
  char **argv;  /* argc words, room for the flags and a NULL after them */
  int argc;
} cc_cmd;

static void cmd_init(cc_cmd *c, int extra) {
  c->text = tgc_xstrdup(tgc_env_str("TGC_CC", "cc"));
  c->words = tgc_xstrdup(c->text);
  c->argv = tgc_xcalloc(strlen(c->words) + 2 + (size_t)extra, sizeof(char *));
  c->argc = 0;
  char *save;
  for (char *s = strtok_r(c->words, " \t", &save); s; s = strtok_r(NULL, " \t", &save))
    c->argv[c->argc++] = s;
  if (c->argc == 0) c->argv[c->argc++] = "cc";
}

static void cmd_free(cc_cmd *c) {
  free(c->text);
  free(c->words);
  free(c->argv);
}

/* ---- processes ---------------------------------------------------------------- */

/* Starts argv (searched in PATH) with stdin from /dev/null and stdout and
 * stderr into out_fd.  Returns 0, or the errno of a failed start: glibc's
 * posix_spawn reports a failed exec to the parent, so a missing compiler
 * shows up here rather than as exit 127. */
static int spawn(pid_t *pid, char *const *argv, int out_fd) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
  int err = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  return err;
}


/* Reaps pid; returns its wait status. */
static int reap(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

/* Reads fd to EOF, or max bytes, into a malloc'd NUL-terminated buffer;
 * *len gets the bytes read and *truncated (if not NULL) whether more was
 * left. */
static char *read_fd(int fd, size_t max, size_t *len_out, bool *truncated) {
  size_t len = 0, cap = max < 4096 ? max : 4096;
  char *buf = tgc_xmalloc(cap + 1);
  for (;;) {
    if (len == cap) {
      if (cap >= max) break;
      cap = cap * 2 > max ? max : cap * 2;
      buf = tgc_xrealloc(buf, cap + 1);
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += (size_t)r;
  }
  char probe;
  if (truncated) *truncated = len == cap && read(fd, &probe, 1) == 1;
  buf[len] = '\0';
  if (len_out) *len_out = len;
  return buf;
}

static char *read_path(const char *path, size_t max, size_t *len, bool *truncated) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  char *s = read_fd(fd, max, len, truncated);
  close(fd);
  return s;
}

/* Runs argv and returns the first line of its output (malloc'd), or NULL
 * with *err set when it cannot be started. */
static char *first_line_of(char *const *argv, int *err) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    *err = errno;
    return NULL;
  }
  pid_t pid;
  *err = spawn(&pid, argv, fds[1]);
  close(fds[1]);
  char *out = *err ? NULL : read_fd(fds[0], 64 * 1024, NULL, NULL);
  close(fds[0]);
  if (*err) return NULL;
  int st = reap(pid);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127) { /* a wrapper could not run it */
    free(out);
    *err = ENOENT;
    return NULL;
  }
  out[strcspn(out, "\r\n")] = '\0';
  return out;
}

/* ---- identity ------------------------------------------------------------------- */

/* The path the first word of the command runs, symlinks resolved
 * ("cc" -> "/usr/bin/x86_64-linux-gnu-gcc-12"); the word itself if not
 * found, since then spawning it fails and says so. */
static void resolve_program(const char *word, char out[PATH_MAX]) {
  snprintf(out, PATH_MAX, "%s", word);
  if (!strchr(word, '/')) {
    char *path = tgc_xstrdup(tgc_env_str("PATH", "/usr/bin:/bin"));
    for (char *save, *d = strtok_r(path, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
      char cand[PATH_MAX];
      struct stat st;
      int n = snprintf(cand, sizeof cand, "%s/%s", d, word);
      if (n > 0 && n < PATH_MAX && access(cand, X_OK) == 0 && stat(cand, &st) == 0 &&
          S_ISREG(st.st_mode)) {
        memcpy(out, cand, (size_t)n + 1);
        break;
      }
    }
    free(path);
  }
  char real[PATH_MAX];
  if (realpath(out, real)) memcpy(out, real, strlen(real) + 1);
}

/* -march=native makes the binary depend on the CPU, and a cache directory
 * may be shared by machines (an NFS home), so the identity names the CPU's
 * features: the CPUID feature leaves on x86 (without the per-core APIC
 * id), the kernel's hwcaps elsewhere. */
static uint64_t cpu_features_hash(void) {
  uint32_t w[32] = {0};
  int n = 0;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  static const unsigned leaves[][2] = {{0, 0}, {1, 0}, {7, 0}, {7, 1}, {0xd, 1}, {0x80000001, 0}};
  for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
    if (!__get_cpuid_count(leaves[i][0], leaves[i][1], &a, &b, &c, &d)) continue;
    if (leaves[i][0] == 1 || leaves[i][0] == 0xd) b = 0; /* per core / per process values */
    w[n++] = a, w[n++] = b, w[n++] = c, w[n++] = d;
  }
#else
  uint64_t caps[2] = {getauxval(AT_HWCAP), getauxval(AT_HWCAP2)};
  memcpy(w, caps, sizeof caps);
  n = 4;
#endif
  return tgc_hash64(w, (size_t)n * sizeof w[0], 0);
}

/* Builds the identity text, or returns NULL with an error set. */
static char *identity_of(cc_cmd *c) {
  c->argv[c->argc] = "--version";
  c->argv[c->argc + 1] = NULL;
  int err;
  char *version = first_line_of(c->argv, &err);
  c->argv[c->argc] = NULL;
  if (!version)
    return tgc_fail(TGC_ERR_COMPILE, "C compiler '%s' not found or not runnable (set TGC_CC): %s",
                    c->text, strerror(err));
  char prog[PATH_MAX];
  resolve_program(c->argv[0], prog);
  tgc_str s = {0};
  tgc_str_fmt(&s, "cc=%s", prog);
  for (int i = 1; i < c->argc; i++) tgc_str_fmt(&s, " %s", c->argv[i]);
  tgc_str_fmt(&s, "\nversion=%s\nflags=", version);
  for (int i = 0; i < N_FLAGS; i++) tgc_str_fmt(&s, "%s ", cc_flags[i]);
  tgc_str_fmt(&s, "-lm\narch=%016llx", (unsigned long long)cpu_features_hash());
  free(version);
  return s.s;
}

/* One identity per TGC_CC value, kept for the life of the process (a few
 * hundred bytes each), so the returned pointers never dangle. */
typedef struct ident {
  struct ident *next;
  char *cc, *text;
} ident;
static ident *idents;
static pthread_mutex_t ident_mu = PTHREAD_MUTEX_INITIALIZER;

const char *tgc_cc_identity(void) {
  cc_cmd c;
  cmd_init(&c, 2);
  pthread_mutex_lock(&ident_mu);
  ident *e = idents;
  while (e && strcmp(e->cc, c.text) != 0) e = e->next;
  if (!e) { /* failures are not memoised: the compiler may be installed later */
    char *text = identity_of(&c);
    if (text) {
      e = tgc_xmalloc(sizeof *e);
      *e = (ident){.next = idents, .cc = tgc_xstrdup(c.text), .text = text};
      idents = e;
    }
  }
  pthread_mutex_unlock(&ident_mu);
  cmd_free(&c);
  return e ? e->text : NULL;
}

/* ---- compiling ------------------------------------------------------------------ */

/* One compiler process: the units it compiles and where its files are. */
typedef struct batch {
  int *units; /* indices into srcs, ascending */
  int nunits;
  size_t bytes; /* total source length, for balancing */
  char src[PATH_MAX], so[PATH_MAX], log[PATH_MAX];
  pid_t pid;
  bool started;
  int status; /* wait status once reaped */
} batch;

typedef struct by_len {
  size_t len;
  int i;
} by_len;

static int longer_first(const void *a, const void *b) {
  const by_len *x = a, *y = b;
  if (x->len != y->len) return x->len < y->len ? 1 : -1;
  return x->i - y->i;
}

static int int_cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* Longest unit first into the lightest batch: near-equal source per
 * process, and deterministic, so equal inputs give equal binaries. */
static batch *plan_batches(int n, const char *const *srcs, int nb) {
  batch *bs = tgc_xcalloc((size_t)nb, sizeof *bs);
  by_len *order = tgc_xmalloc((size_t)n * sizeof *order);
  for (int i = 0; i < n; i++) order[i] = (by_len){strlen(srcs[i]), i};
  qsort(order, (size_t)n, sizeof *order, longer_first);
  for (int b = 0; b < nb; b++) bs[b].units = tgc_xmalloc((size_t)n * sizeof(int));
  for (int k = 0; k < n; k++) {
    batch *min = &bs[0];
    for (int b = 1; b < nb; b++)
      if (bs[b].bytes < min->bytes) min = &bs[b];
    min->units[min->nunits++] = order[k].i;
    min->bytes += order[k].len;
  }
  for (int b = 0; b < nb; b++) qsort(bs[b].units, (size_t)bs[b].nunits, sizeof(int), int_cmp);
  free(order);
  return bs;
}

static bool write_file(const char *path, const batch *b, const char *const *srcs) {
  FILE *f = fopen(path, "wxe"); /* e: close-on-exec, as other threads may spawn too */
  if (!f) return false;
  for (int k = 0; k < b->nunits; k++) {
    fputs(srcs[b->units[k]], f);
    fputc('\n', f);
  }
  bool ok = !ferror(f);
  return fclose(f) == 0 && ok;
}

/* Writes the batch's source and starts its compiler. */
static tgc_status start_batch(cc_cmd *c, const char *dir, int idx, batch *b,
                              const char *const *srcs) {
  snprintf(b->src, PATH_MAX, "%s/b%d.c", dir, idx);
  snprintf(b->so, PATH_MAX, "%s/b%d.so", dir, idx);
  snprintf(b->log, PATH_MAX, "%s/b%d.log", dir, idx);
  if (!write_file(b->src, b, srcs))
    return tgc_set_error(TGC_ERR_IO, "cannot write %s: %s", b->src, strerror(errno));
  int log = open(b->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log < 0) return tgc_set_error(TGC_ERR_IO, "cannot write %s: %s", b->log, strerror(errno));
  char **a = c->argv + c->argc;
  for (int i = 0; i < N_FLAGS; i++) *a++ = (char *)cc_flags[i];
  *a++ = b->src, *a++ = "-o", *a++ = b->so, *a++ = "-lm", *a = NULL;
  int err = spawn(&b->pid, c->argv, log);
  close(log);
  if (err)
    return tgc_set_error(TGC_ERR_COMPILE, "C compiler '%s' could not be run: %s", c->text,
                         strerror(err));
  b->started = true;
  return TGC_OK;
}

/* Turns a failed batch's wait status and log into the error message. */
static tgc_status batch_error(const cc_cmd *c, const batch *b) {
  bool cut = false;
  char *log = read_path(b->log, LOG_MAX, NULL, &cut);
  const char *text = log ? log : "";
  const char *more = cut ? "\n[... log truncated]" : "";
  tgc_status s;
  if (WIFEXITED(b->status) && WEXITSTATUS(b->status) == 127)
    s = tgc_set_error(TGC_ERR_COMPILE, "C compiler '%s' could not be run: %s%s", c->text,
                      *text ? text : "exit 127", more);
  else if (WIFEXITED(b->status))
    s = tgc_set_error(TGC_ERR_COMPILE, "C compiler '%s' failed (exit %d):\n%s%s", c->text,
                      WEXITSTATUS(b->status), text, more);
  else
    s = tgc_set_error(TGC_ERR_COMPILE, "C compiler '%s' failed (signal %d):\n%s%s", c->text,
                      WTERMSIG(b->status), text, more);
  free(log);
  return s;
}

/* Starts every batch, reaps every started process (even after a failure,
 * so no zombie is left), and reports the first failure. */
static tgc_status run_batches(cc_cmd *c, const char *dir, batch *bs, int nb,
                              const char *const *srcs) {
  tgc_status st = TGC_OK;
  for (int b = 0; b < nb && st == TGC_OK; b++) st = start_batch(c, dir, b, &bs[b], srcs);
  for (int b = 0; b < nb; b++)
    if (bs[b].started) bs[b].status = reap(bs[b].pid);
  for (int b = 0; b < nb && st == TGC_OK; b++)
    if (!WIFEXITED(bs[b].status) || WEXITSTATUS(bs[b].status) != 0) st = batch_error(c, &bs[b]);
  return st;
}

/* Reads each batch's .so and gives every unit its own copy. */
static tgc_status collect(const cc_cmd *c, batch *bs, int nb, void **bins, size_t *lens) {
  for (int b = 0; b < nb; b++) {
    size_t len = 0;
    char *img = read_path(bs[b].so, SIZE_MAX / 2, &len, NULL);
    if (!img || len == 0) {
      free(img);
      return tgc_set_error(TGC_ERR_COMPILE, "C compiler '%s' left no output in %s", c->text,
                           bs[b].so);
    }
    for (int k = 0; k < bs[b].nunits; k++) {
      int u = bs[b].units[k];
      bins[u] = memcpy(tgc_xmalloc(len), img, len);
      lens[u] = len;
    }
    free(img);
  }
  return TGC_OK;
}

/* Short enough that the batch files' names fit in PATH_MAX. */
#define TEMP_DIR_MAX (PATH_MAX - 64)

static bool make_temp_dir(char out[TEMP_DIR_MAX]) {
  int n = snprintf(out, TEMP_DIR_MAX, "%s/tgc-cc-XXXXXX", tgc_env_str("TMPDIR", "/tmp"));
  if (n <= 0 || n >= TEMP_DIR_MAX) {
    errno = ENAMETOOLONG;
    return false;
  }
  return mkdtemp(out) != NULL;
}

static void remove_temp_dir(const char *dir, batch *bs, int nb) {
  for (int b = 0; b < nb; b++) {
    if (bs[b].src[0]) unlink(bs[b].src);
    if (bs[b].so[0]) unlink(bs[b].so);
    if (bs[b].log[0]) unlink(bs[b].log);
  }
  rmdir(dir);
}

int tgc_cc_batches(int n) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  long nb = cpus < 1 ? 1 : cpus;
  if (nb > MAX_BATCHES) nb = MAX_BATCHES;
  return n < nb ? n : (int)nb;
}

tgc_status tgc_cc_compile(int n, const char *const *srcs, void **bins, size_t *lens) {
  for (int i = 0; i < n; i++) bins[i] = NULL, lens[i] = 0;
  if (n <= 0) return TGC_OK;
  char dir[TEMP_DIR_MAX];
  if (!make_temp_dir(dir))
    return tgc_set_error(TGC_ERR_IO, "cannot create a temporary directory %s: %s", dir,
                         strerror(errno));
  int nb = tgc_cc_batches(n);
  batch *bs = plan_batches(n, srcs, nb);
  cc_cmd c;
  cmd_init(&c, N_FLAGS + 5);
  tgc_status st = run_batches(&c, dir, bs, nb, srcs);
  if (st == TGC_OK) st = collect(&c, bs, nb, bins, lens);
  if (st != TGC_OK)
    for (int i = 0; i < n; i++) free(bins[i]), bins[i] = NULL, lens[i] = 0;
  remove_temp_dir(dir, bs, nb);
  for (int b = 0; b < nb; b++) free(bs[b].units);
  free(bs);
  cmd_free(&c);
  return st;
}

/* ---- loading ---------------------------------------------------------------------- */

/* dlopen returns an already loaded object whose name matches, before it
 * looks at the file.  A memfd is loaded as "/proc/self/fd/N" and closed
 * right after, so a later image may get the same N: it must then be
 * loaded under another number, or dlopen would hand back the old kernel. */
static int name_taken(struct dl_phdr_info *info, size_t size, void *name) {
  (void)size;
  return info->dlpi_name && strcmp(info->dlpi_name, name) == 0;
}

static void *load_memfd(const void *bin, size_t len, bool *tried) {
  int fd = memfd_create("tgc-kernel", MFD_CLOEXEC);
  if (fd < 0) return NULL;
  char path[64];
  bool ok = tgc_write_all(fd, bin, len);
  for (;;) {
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (!ok || !dl_iterate_phdr(name_taken, path)) break;
    int next = fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
    close(fd);
    if (next < 0) return NULL;
    fd = next;
  }
  void *h = NULL;
  if (ok && access(path, R_OK) == 0) { /* else /proc is missing: use a file */
    *tried = true;
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  }
  close(fd);
  return h;
}

static void *load_tempfile(const void *bin, size_t len) {
  char path[PATH_MAX];
  int n = snprintf(path, sizeof path, "%s/tgc-kernel-XXXXXX.so", tgc_env_str("TMPDIR", "/tmp"));
  if (n <= 0 || n >= PATH_MAX) return NULL;
  int fd = mkostemps(path, 3, O_CLOEXEC);
  if (fd < 0) return NULL;
  bool ok = tgc_write_all(fd, bin, len);
  close(fd);
  void *h = ok ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
  unlink(path);
  return h;
}

void *tgc_so_load(const void *bin, size_t len) {
  bool tried = false;
  dlerror();
  void *h = load_memfd(bin, len, &tried);
  if (!h && !tried) h = load_tempfile(bin, len);
  if (h) return h;
  const char *why = dlerror();
  return tgc_fail(TGC_ERR_COMPILE, "cannot load a compiled kernel: %s",
                  why ? why : "no memfd or temporary file could be written");
}

void tgc_so_unload(void *handle) {
  if (handle) dlclose(handle);
}
