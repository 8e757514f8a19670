/* nvrtc.c - NVRTC, the CUDA runtime compiler: CUDA C++ source to CUBIN.
 *
 * NVRTC is not linked: it is opened with dlopen once per process (the
 * newest major version first, from the loader path or a toolkit's lib64)
 * and the few entry points tgc uses are declared below, so tgc builds and
 * runs where CUDA is absent.  It needs no GPU: tgc_nvrtc_compile works on
 * any machine with the library, which is how CI compiles every CUDA
 * kernel.  The CUDA device (cuda.c) compiles through here; it is kept
 * apart from the driver because it loads, fails and is tested on its own.
 *
 * A batch of kernels compiles on parallel threads (NVRTC programs are
 * independent), and its failure is always that of the lowest index, so
 * the error does not depend on the threads' timing.
 */
#include "tgc_internal.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <unistd.h>


/* ---- the NVRTC ABI, as far as tgc uses it (nvrtc.h) ------------------- */

typedef int nvrtcResult; /* enum; 0 is NVRTC_SUCCESS */
typedef struct _nvrtcProgram *nvrtcProgram;

typedef struct nvrtc_api {
  nvrtcResult (*Version)(int *major, int *minor);
  nvrtcResult (*CreateProgram)(nvrtcProgram *p, const char *src, const char *name, int nheaders,
                               const char *const *headers, const char *const *include_names);
  nvrtcResult (*CompileProgram)(nvrtcProgram p, int nopts, const char *const *opts);
  nvrtcResult (*GetProgramLogSize)(nvrtcProgram p, size_t *n);
  nvrtcResult (*GetProgramLog)(nvrtcProgram p, char *log);
  nvrtcResult (*GetCUBINSize)(nvrtcProgram p, size_t *n);
  nvrtcResult (*GetCUBIN)(nvrtcProgram p, char *cubin);
  nvrtcResult (*DestroyProgram)(nvrtcProgram *p);
  const char *(*GetErrorString)(nvrtcResult r);
} nvrtc_api;

#define NV(f, name) {name, NULL, offsetof(nvrtc_api, f)}
static const tgc_dl_sym nvrtc_syms[] = {
    NV(Version, "nvrtcVersion"),
    NV(CreateProgram, "nvrtcCreateProgram"),
    NV(CompileProgram, "nvrtcCompileProgram"),
    NV(GetProgramLogSize, "nvrtcGetProgramLogSize"),
    NV(GetProgramLog, "nvrtcGetProgramLog"),
    NV(GetCUBINSize, "nvrtcGetCUBINSize"),
    NV(GetCUBIN, "nvrtcGetCUBIN"),
    NV(DestroyProgram, "nvrtcDestroyProgram"),
    NV(GetErrorString, "nvrtcGetErrorString"),
};
#undef NV

/* ---- loading the library (once per process) -------------------------- */

static nvrtc_api nv;
static tgc_dl_lib nv_lib;
static pthread_once_t nv_once = PTHREAD_ONCE_INIT;
static char nv_version[32];     /* "nvrtc 13.0" */
static char nv_include[PATH_MAX]; /* toolkit include dir, "" if none found */

/* The toolkit's roots, most explicit first: $CUDA_HOME, $CUDA_PATH, then
 * /usr/local/cuda.  Returns how many were filled in. */
static int toolkit_roots(const char *out[3]) {
  int n = 0;
  const char *env[] = {"CUDA_HOME", "CUDA_PATH"};
  for (int i = 0; i < 2; i++)
    if (tgc_env_str(env[i], NULL)) out[n++] = tgc_env_str(env[i], NULL);
  out[n++] = "/usr/local/cuda";
  return n;
}

/* dlopen by bare name (the loader path), then from each toolkit's lib64;
 * err (if not NULL) gets the bare name's dlerror. */
static void *open_anywhere(const char *name, int flags, char *err, size_t cap) {
  void *h = dlopen(name, flags);
  if (!h && err) snprintf(err, cap, "%s", dlerror());
  const char *roots[3];
  int nr = toolkit_roots(roots);
  char path[PATH_MAX];
  for (int i = 0; !h && i < nr; i++) {
    snprintf(path, sizeof path, "%s/lib64/%s", roots[i], name);
    h = dlopen(path, flags);
  }
  return h;
}

/* NVRTC finds its builtins library through the loader path at compile
 * time and fails with "builtin operation" errors when that misses (NVRTC
 * loaded from a toolkit that is not on the path).  Loaded first with
 * RTLD_GLOBAL, the soname is already resolved.  major 0: unversioned. */
static void *open_builtins(int major) {
  char name[64];
  if (!major) return open_anywhere("libnvrtc-builtins.so", RTLD_NOW | RTLD_GLOBAL, NULL, 0);
  for (int minor = 9; minor >= 0; minor--) {
    snprintf(name, sizeof name, "libnvrtc-builtins.so.%d.%d", major, minor);
    void *h = open_anywhere(name, RTLD_NOW | RTLD_GLOBAL, NULL, 0);
    if (h) return h;
  }
  return NULL;
}

/* Sets nv_include to dir if it holds cuda_fp16.h. */
static bool try_include_dir(const char *dir) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/cuda_fp16.h", dir) >= (int)sizeof path) return false;
  if (access(path, R_OK) != 0) return false;
  snprintf(nv_include, sizeof nv_include, "%s", dir);
  return true;
}

/* The include dir beside the NVRTC that was loaded (lib/../include),
 * whose headers match it; "" if dladdr cannot say. */
static void nvrtc_include_dir(char *out, size_t cap) {
  Dl_info info;
  out[0] = '\0';
  if (!dladdr(*(void **)&nv.Version, &info) || !info.dli_fname) return;
  const char *slash = strrchr(info.dli_fname, '/');
  if (slash) snprintf(out, cap, "%.*s/../include", (int)(slash - info.dli_fname), info.dli_fname);
}

/* The include dir for cuda_fp16.h and cuda_bf16.h: $CUDA_HOME, $CUDA_PATH,
 * the one beside NVRTC, /usr/local/cuda.  None found: no -I, and kernels
 * that include them fail (NVRTC 13 has no built-in copies). */
static void find_include_dir(void) {
  const char *roots[3];
  int nr = toolkit_roots(roots);
  char dir[PATH_MAX];
  for (int i = 0; i < nr - 1; i++) {
    snprintf(dir, sizeof dir, "%s/include", roots[i]);
    if (try_include_dir(dir)) return;
  }
  nvrtc_include_dir(dir, sizeof dir);
  char *real = dir[0] ? realpath(dir, NULL) : NULL;
  bool found = real && try_include_dir(real);
  free(real);
  if (!found) try_include_dir("/usr/local/cuda/include");
}

static void load_nvrtc(void) {
  static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
  static const int majors[] = {13, 12, 0};
  char first_err[512] = "";
  void *lib = NULL;
  for (int i = 0; !lib && i < 3; i++) {
    void *builtins = open_builtins(majors[i]); /* missing is not fatal by itself */
    lib = open_anywhere(names[i], RTLD_NOW | RTLD_LOCAL, i ? NULL : first_err, sizeof first_err);
    if (!lib && builtins) dlclose(builtins);
  }
  if (!lib) {
    tgc_dl_fail(&nv_lib, TGC_ERR_UNSUPPORTED,
                "NVRTC not found (tried libnvrtc.so.13, libnvrtc.so.12, libnvrtc.so): %s", first_err);
    return;
  }
  const char *missing =
      tgc_dl_bind(lib, &nv, nvrtc_syms, sizeof nvrtc_syms / sizeof nvrtc_syms[0]);
  int major = 0, minor = 0;
  if (missing || nv.Version(&major, &minor) != 0) {
    tgc_dl_fail(&nv_lib, TGC_ERR_UNSUPPORTED, "NVRTC is unusable: %s",
                missing ? missing : "nvrtcVersion failed");
    dlclose(lib);
    return;
  }
  snprintf(nv_version, sizeof nv_version, "nvrtc %d.%d", major, minor);
  find_include_dir();
  nv_lib.ok = true;
}

static bool nvrtc_ready(void) { return tgc_dl_ready(&nv_once, load_nvrtc, &nv_lib); }

/* ---- compiling -------------------------------------------------------- */

#define LOG_MAX (8 * 1024)

/* The options of a compile: IEEE math (no --use_fast_math), CUBIN for a
 * real arch, the toolkit's headers for cuda_fp16.h and cuda_bf16.h. */
typedef struct nvrtc_opts {
  char arch[64], inc[PATH_MAX + 2];
  const char *v[3];
  int n;
} nvrtc_opts;

static void make_opts(nvrtc_opts *o, const char *arch) {
  snprintf(o->arch, sizeof o->arch, "--gpu-architecture=%s", arch);
  o->n = 0;
  o->v[o->n++] = o->arch;
  if (nv_include[0]) {
    snprintf(o->inc, sizeof o->inc, "-I%s", nv_include);
    o->v[o->n++] = o->inc;
  }
  o->v[o->n++] = "--std=c++17";
}

/* The program's log, cut at LOG_MAX; malloc'd. */
static char *program_log(nvrtcProgram prog) {
  size_t n = 0;
  if (nv.GetProgramLogSize(prog, &n) != 0 || n <= 1) return tgc_xstrdup("(no log)");
  char *log = tgc_xmalloc(n + 64); /* room for the note below */
  if (nv.GetProgramLog(prog, log) != 0) log[0] = '\0';
  log[n] = '\0';
  if (n > LOG_MAX) snprintf(log + LOG_MAX, 64, "\n... (log cut at %d bytes)", LOG_MAX);
  return log;
}

static tgc_status compile_failed(nvrtcProgram prog, nvrtcResult r, const char *arch) {
  char *log = program_log(prog);
  const char *hint = nv_include[0] ? ""
                                   : " (no CUDA include dir with cuda_fp16.h was found: "
                                     "set CUDA_HOME to the toolkit)";
  tgc_set_error(TGC_ERR_COMPILE, "NVRTC failed for %s:\n%s%s%s%s", arch, log,
                log[0] && log[strlen(log) - 1] == '\n' ? "" : "\n", nv.GetErrorString(r), hint);
  free(log);
  return TGC_ERR_COMPILE;
}

static tgc_status take_cubin(nvrtcProgram prog, const char *arch, void **cubin, size_t *len) {
  size_t n = 0;
  nvrtcResult r = nv.GetCUBINSize(prog, &n);
  if (r != 0)
    return tgc_set_error(TGC_ERR_COMPILE, "nvrtcGetCUBINSize for %s: %s", arch, nv.GetErrorString(r));
  if (n == 0)
    return tgc_set_error(TGC_ERR_COMPILE, "NVRTC made no CUBIN for %s (not a real sm_ arch?)", arch);
  char *bin = tgc_xmalloc(n);
  if ((r = nv.GetCUBIN(prog, bin)) != 0) {
    free(bin);
    return tgc_set_error(TGC_ERR_COMPILE, "nvrtcGetCUBIN for %s: %s", arch, nv.GetErrorString(r));
  }
  *cubin = bin;
  *len = n;
  return TGC_OK;
}

tgc_status tgc_nvrtc_compile(const char *src, const char *arch, void **cubin, size_t *len) {
  if (!src || !arch || !cubin || !len)
    return tgc_set_error(TGC_ERR_ARG, "tgc_nvrtc_compile: NULL argument");
  *cubin = NULL;
  *len = 0;
  if (!nvrtc_ready()) return tgc_last_status();
  nvrtcProgram prog = NULL;
  nvrtcResult r = nv.CreateProgram(&prog, src, "kernel.cu", 0, NULL, NULL);
  if (r != 0)
    return tgc_set_error(TGC_ERR_COMPILE, "nvrtcCreateProgram: %s", nv.GetErrorString(r));
  nvrtc_opts o;
  make_opts(&o, arch);
  r = nv.CompileProgram(prog, o.n, o.v);
  tgc_status st = r != 0 ? compile_failed(prog, r, arch) : take_cubin(prog, arch, cubin, len);
  nv.DestroyProgram(&prog);
  return st;
}

const char *tgc_nvrtc_version(void) { return nvrtc_ready() ? nv_version : NULL; }

char *tgc_nvrtc_options(const char *arch) {
  if (!nvrtc_ready()) return NULL;
  nvrtc_opts o;
  make_opts(&o, arch);
  tgc_str s = {0};
  for (int i = 0; i < o.n; i++) tgc_str_fmt(&s, "%s%s", i ? " " : "", o.v[i]);
  return s.s;
}

/* ---- parallel compiles ------------------------------------------------ */

#define MAX_COMPILE_THREADS 8

/* Work shared by the compile threads: each takes the next index. */
typedef struct compile_job {
  int n;
  const char *const *srcs;
  const char *arch;
  void **bins;
  size_t *lens;
  tgc_status *st;  /* per source */
  char **msg;      /* per source: the error text of a failure, malloc'd */
  atomic_int next;
  atomic_bool failed;
} compile_job;

static void *compile_worker(void *arg) {
  compile_job *j = arg;
  int i;
  while (!atomic_load(&j->failed) && (i = atomic_fetch_add(&j->next, 1)) < j->n) {
    j->st[i] = tgc_nvrtc_compile(j->srcs[i], j->arch, &j->bins[i], &j->lens[i]);
    if (j->st[i] != TGC_OK) {
      j->msg[i] = tgc_xstrdup(tgc_last_error()); /* errors are per thread */
      atomic_store(&j->failed, true);
    }
  }
  return NULL;
}

/* Runs the workers on min(n, CPUs, 8) threads, the caller being one. */
static int run_workers(compile_job *j) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int want = j->n < MAX_COMPILE_THREADS ? j->n : MAX_COMPILE_THREADS;
  if (cpus > 0 && cpus < want) want = (int)cpus;
  pthread_t tids[MAX_COMPILE_THREADS];
  int started = 0;
  while (started < want - 1 && !pthread_create(&tids[started], NULL, compile_worker, j)) started++;
  compile_worker(j);
  for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
  return started + 1;
}

/* Every index below a failure was taken before it, so the lowest failing
 * index is the same whatever the threads' timing: the first failure. */
static tgc_status first_failure(compile_job *j) {
  tgc_status st = TGC_OK;
  for (int i = 0; i < j->n; i++) {
    if (st == TGC_OK && j->st[i] != TGC_OK) st = tgc_set_error(j->st[i], "%s", j->msg[i]);
    free(j->msg[i]);
  }
  if (st != TGC_OK)
    for (int i = 0; i < j->n; i++) {
      free(j->bins[i]);
      j->bins[i] = NULL;
      j->lens[i] = 0;
    }
  return st;
}

/* Compiles srcs[0..n) for arch in parallel threads.  On success bins[i] is
 * a malloc'd CUBIN of lens[i] bytes; on failure all bins[i] are NULL and
 * the error is the failure of the lowest index.  *threads: threads used. */
tgc_status tgc_nvrtc_compile_n(int n, const char *const *srcs, const char *arch, void **bins,
                               size_t *lens, int *threads) {
  if (threads) *threads = 0;
  if (n <= 0) return TGC_OK;
  if (!nvrtc_ready()) return tgc_last_status();
  compile_job j = {.n = n, .srcs = srcs, .arch = arch, .bins = bins, .lens = lens};
  atomic_init(&j.next, 0);
  atomic_init(&j.failed, false);
  for (int i = 0; i < n; i++) bins[i] = NULL, lens[i] = 0;
  j.st = tgc_xcalloc((size_t)n, sizeof *j.st);
  j.msg = tgc_xcalloc((size_t)n, sizeof *j.msg);
  int used = run_workers(&j);
  if (threads) *threads = used;
  tgc_status st = first_failure(&j);
  free(j.st);
  free(j.msg);
  return st;
}
