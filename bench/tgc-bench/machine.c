/* machine.c - what a result file needs to say where it was measured: the
 * CPU, its cores and memory, the thread count and device, and the git
 * commit of the code that ran.
 *
 * The commit comes from the build (the Makefile passes TGC_GIT_COMMIT and
 * TGC_GIT_DIRTY from `git rev-parse HEAD` and `git status` when it
 * compiles this file), because that is the code in the binary; a binary
 * built without them asks git at run time in the source tree above its
 * folder, and says so.
 */
#define _XOPEN_SOURCE 700
#include "tgc_bench.h"

#include <ftw.h>
#include <stdarg.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef TGC_GIT_DIRTY
#define TGC_GIT_DIRTY 0
#endif

int64_t tb_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void tb_fmt(char *out, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out, cap, fmt, ap);
  va_end(ap);
}

bool tb_fail(char *err, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, cap, fmt, ap);
  va_end(ap);
  return false;
}

static char exe_path[PATH_MAX], exe_dir[PATH_MAX];

static void find_exe(void) {
  if (exe_path[0]) return;
  ssize_t k = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
  if (k <= 0) return;
  exe_path[k] = 0;
  snprintf(exe_dir, sizeof exe_dir, "%s", exe_path);
  char *slash = strrchr(exe_dir, '/');
  if (slash) *slash = 0;
}

const char *tb_exe_path(void) {
  find_exe();
  return exe_path;
}

const char *tb_exe_dir(void) {
  find_exe();
  return exe_dir;
}

static void cpu_model(char *out, size_t cap) {
  snprintf(out, cap, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (strncmp(line, "model name", 10) || !colon) continue;
    colon += 1 + (colon[1] == ' ');
    colon[strcspn(colon, "\n")] = 0;
    snprintf(out, cap, "%s", colon);
    break;
  }
  fclose(f);
}

/* The first line `cmd` prints, or false. */
static bool first_line(const char *cmd, char *out, size_t cap) {
  FILE *p = popen(cmd, "r");
  if (!p) return false;
  bool ok = fgets(out, (int)cap, p) != NULL;
  int rc = pclose(p);
  if (ok) out[strcspn(out, "\n")] = 0;
  return ok && rc == 0 && out[0];
}

static void git_commit(tb_machine *m) {
#ifdef TGC_GIT_COMMIT
  if (strcmp(TGC_GIT_COMMIT, "") && strcmp(TGC_GIT_COMMIT, "unknown")) {
    snprintf(m->commit, sizeof m->commit, "%s", TGC_GIT_COMMIT);
    snprintf(m->commit_source, sizeof m->commit_source, "build time (git rev-parse HEAD)");
    m->dirty = TGC_GIT_DIRTY;
    return;
  }
#endif
  char cmd[PATH_MAX + 96], line[128];
  snprintf(cmd, sizeof cmd, "git -C '%s/..' rev-parse HEAD 2>/dev/null", tb_exe_dir());
  if (!strchr(tb_exe_dir(), '\'') && first_line(cmd, line, sizeof line)) {
    snprintf(m->commit, sizeof m->commit, "%s", line);
    snprintf(m->commit_source, sizeof m->commit_source, "run time (git rev-parse HEAD above the binary)");
    snprintf(cmd, sizeof cmd, "git -C '%s/..' status --porcelain --untracked-files=no 2>/dev/null", tb_exe_dir());
    m->dirty = first_line(cmd, line, sizeof line);
    return;
  }
  snprintf(m->commit, sizeof m->commit, "unknown");
  snprintf(m->commit_source, sizeof m->commit_source, "not built from a git tree");
}

void tb_machine_probe(tb_machine *m) {
  memset(m, 0, sizeof *m);
  cpu_model(m->cpu, sizeof m->cpu);
  long n = sysconf(_SC_NPROCESSORS_ONLN), pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  m->cores = n > 0 ? (int)n : 1;
  m->memory_gb = pages > 0 && psz > 0 ? (double)pages * (double)psz / 1e9 : 0;
  const char *t = getenv("TGC_THREADS");
  m->threads = t && atoi(t) > 0 ? atoi(t) : m->cores;
  git_commit(m);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

void tb_rmtree(const char *dir) {
  if (dir && dir[0]) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
