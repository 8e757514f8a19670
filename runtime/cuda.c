/* cuda.c - the CUDA device: NVRTC compiles kernels to CUBIN, the driver API
 * loads and runs them.
 *
 * Neither library is linked.  libcuda.so.1 and NVRTC are opened with dlopen
 * once per process, and the few types and entry points tgc uses are
 * declared below, so tgc builds and runs where CUDA is absent and says
 * which library is missing.  Versioned driver symbols (cuMemAlloc_v2, ...)
 * are looked up by their exported names, as cuda.h's macros would resolve
 * them.  NVRTC needs no GPU: tgc_nvrtc_compile works on any machine with
 * the library, which is how CI compiles every CUDA kernel.
 *
 * All device work goes to the legacy default stream (stream 0), and copies
 * return once the host memory is no longer needed, so everything the
 * device does happens in the order it was asked for: a freed block can go
 * straight back into the allocator's cache and be handed out again while
 * a kernel that used it is still queued.  Every vtable call makes the
 * device's (primary) context current on the calling thread first, so a
 * context may move between threads.
 *
 * JIT replay may run as a CUDA graph: a chain of kernel nodes built once,
 * whose parameters are updated in place per replay.  The graph entry
 * points are optional; a driver without them runs replays as plain
 * launches.
 */
#include "tgc_internal.h"

#include <dlfcn.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <unistd.h>


/* ---- the CUDA ABI, as far as tgc uses it (cuda.h, nvrtc.h) -------------- */

typedef int CUresult; /* enum cudaError_enum; 0 is CUDA_SUCCESS */
typedef int CUdevice;
typedef unsigned long long CUdeviceptr; /* CUdeviceptr_v2 */
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUevent_st *CUevent;
typedef struct CUstream_st *CUstream;
typedef struct CUkern_st *CUkernel;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphNode_st *CUgraphNode;
typedef struct CUgraphExec_st *CUgraphExec;

enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CU_ATTR_CC_MAJOR = 75, /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR */
  CU_ATTR_CC_MINOR = 76, /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR */
  CU_EVENT_DEFAULT = 0,
};

typedef int nvrtcResult; /* enum; 0 is NVRTC_SUCCESS */
typedef struct _nvrtcProgram *nvrtcProgram;

/* CUDA_KERNEL_NODE_PARAMS_v2 (CUDA 12+).  Its first ten fields are
 * CUDA_KERNEL_NODE_PARAMS_v1, all that the unversioned entry points of
 * older drivers read, so one struct serves both. */
typedef struct cu_kernel_node {
  CUfunction func;
  unsigned gridDimX, gridDimY, gridDimZ;
  unsigned blockDimX, blockDimY, blockDimZ;
  unsigned sharedMemBytes;
  void **kernelParams; /* a pointer to each parameter's value */
  void **extra;        /* NULL: parameters come from kernelParams */
  CUkernel kern;       /* v2: read only when func is NULL */
  CUcontext ctx;       /* v2: ignored when func is set */
} cu_kernel_node;

_Static_assert(offsetof(cu_kernel_node, kernelParams) == 40 && sizeof(cu_kernel_node) == 72,
               "cu_kernel_node must match CUDA_KERNEL_NODE_PARAMS_v2 (LP64)");
_Static_assert(sizeof(void *) >= sizeof(CUdeviceptr), "device pointers travel as void *");
_Static_assert(sizeof(void (*)(void)) == sizeof(void *), "dlsym results become function pointers");

/* Driver entry points; `sym` names the exported symbol. */
typedef struct cu_api {
  CUresult (*Init)(unsigned flags);
  CUresult (*DeviceGetCount)(int *n);
  CUresult (*DeviceGet)(CUdevice *dev, int ordinal);
  CUresult (*DeviceGetAttribute)(int *v, int attr, CUdevice dev);
  CUresult (*DeviceGetName)(char *name, int len, CUdevice dev);
  CUresult (*PrimaryCtxRetain)(CUcontext *ctx, CUdevice dev);
  CUresult (*PrimaryCtxRelease)(CUdevice dev);
  CUresult (*CtxSetCurrent)(CUcontext ctx);
  CUresult (*CtxSynchronize)(void);
  CUresult (*MemAlloc)(CUdeviceptr *p, size_t n);
  CUresult (*MemFree)(CUdeviceptr p);
  CUresult (*MemAllocHost)(void **p, size_t n);
  CUresult (*MemFreeHost)(void *p);
  CUresult (*MemcpyHtoD)(CUdeviceptr dst, const void *src, size_t n);
  CUresult (*MemcpyDtoH)(void *dst, CUdeviceptr src, size_t n);
  CUresult (*ModuleLoadData)(CUmodule *m, const void *image);
  CUresult (*ModuleGetFunction)(CUfunction *f, CUmodule m, const char *name);
  CUresult (*ModuleUnload)(CUmodule m);
  CUresult (*LaunchKernel)(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                           unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                           void **extra);
  CUresult (*EventCreate)(CUevent *e, unsigned flags);
  CUresult (*EventRecord)(CUevent e, CUstream s);
  CUresult (*EventSynchronize)(CUevent e);
  CUresult (*EventElapsedTime)(float *ms, CUevent start, CUevent end);
  CUresult (*EventDestroy)(CUevent e);
  CUresult (*GetErrorString)(CUresult r, const char **s);
  CUresult (*GetErrorName)(CUresult r, const char **s);
} cu_api;

/* The graph entry points, optional (CUDA 11.4+ drivers have them all). */
typedef struct cu_graph_api {
  CUresult (*Create)(CUgraph *g, unsigned flags);
  CUresult (*AddKernelNode)(CUgraphNode *node, CUgraph g, const CUgraphNode *deps, size_t ndeps,
                            const cu_kernel_node *params);
  CUresult (*Instantiate)(CUgraphExec *exec, CUgraph g, unsigned long long flags);
  CUresult (*ExecKernelNodeSetParams)(CUgraphExec exec, CUgraphNode node,
                                      const cu_kernel_node *params);
  CUresult (*Launch)(CUgraphExec exec, CUstream s);
  CUresult (*ExecDestroy)(CUgraphExec exec);
  CUresult (*Destroy)(CUgraph g);
} cu_graph_api;

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

/* A symbol to look up: its name, an older name to fall back on (the _v2
 * entry points newer than the oldest drivers tgc should run on), and where
 * the pointer goes. */
typedef struct sym {
  const char *name, *alt;
  size_t off;
} sym;

#define CU(f, name, alt) {name, alt, offsetof(cu_api, f)}
static const sym cu_syms[] = {
    CU(Init, "cuInit", NULL),
    CU(DeviceGetCount, "cuDeviceGetCount", NULL),
    CU(DeviceGet, "cuDeviceGet", NULL),
    CU(DeviceGetAttribute, "cuDeviceGetAttribute", NULL),
    CU(DeviceGetName, "cuDeviceGetName", NULL),
    CU(PrimaryCtxRetain, "cuDevicePrimaryCtxRetain", NULL),
    CU(PrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"),
    CU(CtxSetCurrent, "cuCtxSetCurrent", NULL),
    CU(CtxSynchronize, "cuCtxSynchronize", NULL), /* not _v2: that one takes a context */
    CU(MemAlloc, "cuMemAlloc_v2", NULL),
    CU(MemFree, "cuMemFree_v2", NULL),
    CU(MemAllocHost, "cuMemAllocHost_v2", NULL),
    CU(MemFreeHost, "cuMemFreeHost", NULL),
    CU(MemcpyHtoD, "cuMemcpyHtoD_v2", NULL),
    CU(MemcpyDtoH, "cuMemcpyDtoH_v2", NULL),
    CU(ModuleLoadData, "cuModuleLoadData", NULL),
    CU(ModuleGetFunction, "cuModuleGetFunction", NULL),
    CU(ModuleUnload, "cuModuleUnload", NULL),
    CU(LaunchKernel, "cuLaunchKernel", NULL),
    CU(EventCreate, "cuEventCreate", NULL),
    CU(EventRecord, "cuEventRecord", NULL),
    CU(EventSynchronize, "cuEventSynchronize", NULL),
    CU(EventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime"),
    CU(EventDestroy, "cuEventDestroy_v2", "cuEventDestroy"),
    CU(GetErrorString, "cuGetErrorString", NULL),
    CU(GetErrorName, "cuGetErrorName", NULL),
};
#undef CU

/* cuda.h 12+ maps cuGraphAddKernelNode and cuGraphExecKernelNodeSetParams
 * to the _v2 symbols (the v2 params struct); older drivers export only the
 * v1 ones.  cuGraphInstantiate is a macro for cuGraphInstantiateWithFlags:
 * the symbol named cuGraphInstantiate is the old five-argument form (error
 * node and log buffer), so it is no fallback.  cuGraphLaunch is the legacy
 * default stream's entry (not _ptsz), as for the other calls. */
#define CG(f, name, alt) {name, alt, offsetof(cu_graph_api, f)}
static const sym cu_graph_syms[] = {
    CG(Create, "cuGraphCreate", NULL),
    CG(AddKernelNode, "cuGraphAddKernelNode_v2", "cuGraphAddKernelNode"),
    CG(Instantiate, "cuGraphInstantiateWithFlags", NULL),
    CG(ExecKernelNodeSetParams, "cuGraphExecKernelNodeSetParams_v2",
       "cuGraphExecKernelNodeSetParams"),
    CG(Launch, "cuGraphLaunch", NULL),
    CG(ExecDestroy, "cuGraphExecDestroy", NULL),
    CG(Destroy, "cuGraphDestroy", NULL),
};
#undef CG

#define NV(f, name) {name, NULL, offsetof(nvrtc_api, f)}
static const sym nvrtc_syms[] = {
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

/* ---- loading the libraries (once per process) ------------------------- */

/* Outcome of a one-time load: the failure is replayed to every caller. */
typedef struct lib_state {
  bool ok;
  tgc_status status;
  char err[1024];
} lib_state;

static cu_api cu;
static cu_graph_api cug;            /* all NULL when the driver lacks one */
static const char *cug_missing;     /* the first graph symbol it lacks */
static nvrtc_api nv;
static lib_state cu_lib, nv_lib;
static pthread_once_t cu_once = PTHREAD_ONCE_INIT, nv_once = PTHREAD_ONCE_INIT;
static char nv_version[32];     /* "nvrtc 13.0" */
static char nv_include[PATH_MAX]; /* toolkit include dir, "" if none found */

static void lib_fail(lib_state *st, tgc_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void lib_fail(lib_state *st, tgc_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->err, sizeof st->err, fmt, ap);
  va_end(ap);
  st->status = s;
}

/* Fills the table at api from the library; returns the first missing name. */
static const char *bind_syms(void *lib, void *api, const sym *syms, size_t n) {
  for (size_t i = 0; i < n; i++) {
    void *p = dlsym(lib, syms[i].name);
    if (!p && syms[i].alt) p = dlsym(lib, syms[i].alt);
    if (!p) return syms[i].name;
    memcpy((char *)api + syms[i].off, &p, sizeof p);
  }
  return NULL;
}

static void load_driver(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *e = dlerror();
    lib_fail(&cu_lib, TGC_ERR_UNSUPPORTED, "libcuda.so.1 not found (no NVIDIA driver?): %s",
             e ? e : "dlopen failed");
    return;
  }
  const char *missing = bind_syms(lib, &cu, cu_syms, sizeof cu_syms / sizeof cu_syms[0]);
  if (missing) {
    lib_fail(&cu_lib, TGC_ERR_UNSUPPORTED, "libcuda.so.1 has no %s (driver too old?)", missing);
    dlclose(lib);
    return;
  }
  /* All or none, so one check (cug.Create) says whether graphs work. */
  cug_missing = bind_syms(lib, &cug, cu_graph_syms, sizeof cu_graph_syms / sizeof cu_graph_syms[0]);
  if (cug_missing) memset(&cug, 0, sizeof cug);
  cu_lib.ok = true; /* the library stays loaded for the process */
}

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
    lib_fail(&nv_lib, TGC_ERR_UNSUPPORTED,
             "NVRTC not found (tried libnvrtc.so.13, libnvrtc.so.12, libnvrtc.so): %s", first_err);
    return;
  }
  const char *missing = bind_syms(lib, &nv, nvrtc_syms, sizeof nvrtc_syms / sizeof nvrtc_syms[0]);
  int major = 0, minor = 0;
  if (missing || nv.Version(&major, &minor) != 0) {
    lib_fail(&nv_lib, TGC_ERR_UNSUPPORTED, "NVRTC is unusable: %s",
             missing ? missing : "nvrtcVersion failed");
    dlclose(lib);
    return;
  }
  snprintf(nv_version, sizeof nv_version, "nvrtc %d.%d", major, minor);
  find_include_dir();
  nv_lib.ok = true;
}

/* Loads once; false with the load's error set when it failed. */
static bool lib_ready(pthread_once_t *once, void (*load)(void), const lib_state *st) {
  pthread_once(once, load);
  if (!st->ok) tgc_set_error(st->status, "%s", st->err);
  return st->ok;
}

static bool driver_ready(void) { return lib_ready(&cu_once, load_driver, &cu_lib); }
static bool nvrtc_ready(void) { return lib_ready(&nv_once, load_nvrtc, &nv_lib); }

/* ---- errors ----------------------------------------------------------- */

/* "<what>: CUDA_ERROR_X: <cuGetErrorString's text>" as TGC_ERR_DEVICE. */
static tgc_status cu_fail(CUresult r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static tgc_status cu_fail(CUresult r, const char *fmt, ...) {
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  const char *name = NULL, *text = NULL;
  if (cu.GetErrorName(r, &name) != CUDA_SUCCESS || !name) name = "CUDA error";
  if (cu.GetErrorString(r, &text) != CUDA_SUCCESS || !text) text = "unknown error";
  return tgc_set_error(TGC_ERR_DEVICE, "%s: %s: %s", what, name, text);
}

/* ---- NVRTC ------------------------------------------------------------ */

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

/* ---- the device ------------------------------------------------------- */

#define NBUCKETS 1024         /* hash buckets of the allocator's two tables */
#define STAGE_BYTES (2 << 20)  /* pinned staging buffer for small reads */
#define MAX_GLOBALS 32         /* buffer arguments (tgc_prog_info's slots) */
#define MAX_VARS 64            /* int64 kernel arguments after the buffers */

/* A device allocation, in the table of live blocks (by pointer) or of
 * cached free blocks (by size). */
typedef struct block {
  CUdeviceptr ptr;
  size_t size; /* rounded */
  struct block *next;
} block;

typedef struct cuda_device {
  tgc_device base;
  CUdevice dev;
  CUcontext ctx;            /* the primary context, retained */
  char arch[16];            /* "sm_90" */
  char gpu[128];            /* cuDeviceGetName */
  char *id;                 /* compiler_id text */
  pthread_mutex_t mu;       /* guards the tables and the staging buffer */
  block *live[NBUCKETS];
  block *cached[NBUCKETS];
  void *stage;              /* pinned, STAGE_BYTES; NULL until the first small read */
  bool no_stage;            /* pinned memory was refused */
  CUevent ev_ref, ev_now;   /* timer: reference point and "now" */
  double ref_s;             /* seconds on the timer at ev_ref */
} cuda_device;

static tgc_status make_current(cuda_device *c) {
  CUresult r = cu.CtxSetCurrent(c->ctx);
  return r ? cu_fail(r, "cuCtxSetCurrent") : TGC_OK;
}

/* ---- the caching allocator ---- */

/* Sizes come in steps, so freed blocks fit later requests: 256 B below
 * 1 MiB, 2 MiB above. */
static size_t round_size(size_t n) {
  size_t step = n < ((size_t)1 << 20) ? 256 : (size_t)2 << 20;
  if (n == 0 || n > SIZE_MAX - step) return n ? n : step; /* a huge n fails in cuMemAlloc */
  return (n + step - 1) / step * step;
}

static size_t bucket(uint64_t key) {
  return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 54) % NBUCKETS;
}

static block *take_cached(cuda_device *c, size_t size) {
  for (block **pp = &c->cached[bucket(size)]; *pp; pp = &(*pp)->next)
    if ((*pp)->size == size) {
      block *b = *pp;
      *pp = b->next;
      return b;
    }
  return NULL;
}

static void free_list(block **head) {
  while (*head) {
    block *b = *head;
    *head = b->next;
    cu.MemFree(b->ptr);
    free(b);
  }
}

static void drop_cache(cuda_device *c) {
  for (int i = 0; i < NBUCKETS; i++) free_list(&c->cached[i]);
}

static block *new_block(cuda_device *c, size_t size) {
  CUdeviceptr p = 0;
  CUresult r = cu.MemAlloc(&p, size);
  if (r == CUDA_ERROR_OUT_OF_MEMORY) {
    drop_cache(c);
    r = cu.MemAlloc(&p, size);
  }
  if (r != CUDA_SUCCESS) {
    cu_fail(r, "cuMemAlloc(%zu bytes)", size);
    return NULL;
  }
  block *b = tgc_xmalloc(sizeof *b);
  *b = (block){.ptr = p, .size = size};
  return b;
}

static void *cuda_alloc(tgc_device *d, size_t bytes) {
  cuda_device *c = (cuda_device *)d;
  if (make_current(c)) return NULL;
  size_t size = round_size(bytes);
  pthread_mutex_lock(&c->mu);
  block *b = take_cached(c, size);
  if (!b) b = new_block(c, size);
  if (b) {
    block **head = &c->live[bucket(b->ptr)];
    b->next = *head;
    *head = b;
  }
  pthread_mutex_unlock(&c->mu);
  return b ? (void *)(uintptr_t)b->ptr : NULL;
}

static void cuda_free(tgc_device *d, void *ptr) {
  cuda_device *c = (cuda_device *)d;
  if (!ptr) return;
  CUdeviceptr p = (CUdeviceptr)(uintptr_t)ptr;
  pthread_mutex_lock(&c->mu);
  block **pp = &c->live[bucket(p)];
  while (*pp && (*pp)->ptr != p) pp = &(*pp)->next;
  TGC_ASSERT(*pp); /* a pointer this device handed out */
  block *b = *pp;
  *pp = b->next;
  block **head = &c->cached[bucket(b->size)];
  b->next = *head;
  *head = b;
  pthread_mutex_unlock(&c->mu);
}

/* ---- copies ---- */

/* Measured on an H200 (GB/s, best of 7): the driver's own staging of
 * pageable memory beats a pinned staging buffer (even a ring of them,
 * memcpy overlapped with DMA) except for small reads:
 *                       64 KiB  256 KiB  1 MiB  4 MiB  16 MiB  256 MiB
 *   DtoH direct           3.4     4.9     6.7    9.4    15      17
 *   DtoH pinned buffer    5.8    11.6    10.5    9.4   (ring:) 9.1  6.6
 *   HtoD direct                          17            17      9.1
 *   HtoD pinned ring                      9.1           12      6.8
 * So writes go direct, and reads up to STAGE_BYTES through tgc's buffer. */

/* The pinned buffer, allocated at the first small read; false if pinned
 * memory cannot be had (reads then go direct). */
static bool have_stage(cuda_device *c) {
  void *p = NULL;
  if (!c->stage && !c->no_stage) {
    if (cu.MemAllocHost(&p, STAGE_BYTES) == CUDA_SUCCESS) c->stage = p;
    else c->no_stage = true;
  }
  return c->stage != NULL;
}

static tgc_status cuda_copy_in(tgc_device *d, void *dst, const void *src, size_t n) {
  if (!n) return TGC_OK;
  if (make_current((cuda_device *)d)) return tgc_last_status();
  CUresult r = cu.MemcpyHtoD((CUdeviceptr)(uintptr_t)dst, src, n);
  return r ? cu_fail(r, "cuMemcpyHtoD(%zu bytes)", n) : TGC_OK;
}

static tgc_status cuda_copy_out(tgc_device *d, void *dst, const void *src, size_t n) {
  cuda_device *c = (cuda_device *)d;
  CUdeviceptr p = (CUdeviceptr)(uintptr_t)src;
  CUresult r;
  if (!n) return TGC_OK;
  if (make_current(c)) return tgc_last_status();
  pthread_mutex_lock(&c->mu);
  bool staged = n <= STAGE_BYTES && have_stage(c);
  if (staged && !(r = cu.MemcpyDtoH(c->stage, p, n))) memcpy(dst, c->stage, n);
  pthread_mutex_unlock(&c->mu);
  if (!staged) r = cu.MemcpyDtoH(dst, p, n);
  return r ? cu_fail(r, "cuMemcpyDtoH(%zu bytes)", n) : TGC_OK;
}

/* ---- compiling, loading, launching ---- */

static const char *cuda_compiler_id(tgc_device *d) { return ((cuda_device *)d)->id; }

static tgc_status cuda_compile(tgc_device *d, int n, const char *const *srcs, void **bins,
                               size_t *lens, int *runs) {
  return tgc_nvrtc_compile_n(n, srcs, ((cuda_device *)d)->arch, bins, lens, runs);
}

static tgc_status cuda_load(tgc_device *d, tgc_program *p, const void *bin, size_t len) {
  cuda_device *c = (cuda_device *)d;
  (void)len; /* a CUBIN is an ELF image that knows its own size */
  if (make_current(c)) return tgc_last_status();
  CUmodule m = NULL;
  CUfunction f = NULL;
  CUresult r = cu.ModuleLoadData(&m, bin);
  if (r) return cu_fail(r, "cuModuleLoadData(%s)", p->info.name);
  if ((r = cu.ModuleGetFunction(&f, m, p->info.name))) {
    cu_fail(r, "cuModuleGetFunction(%s)", p->info.name);
    cu.ModuleUnload(m);
    return tgc_last_status();
  }
  p->handle = m;
  p->fn = f;
  p->dev = d;
  return TGC_OK;
}

static void cuda_unload(tgc_device *d, tgc_program *p) {
  if (p->handle && make_current((cuda_device *)d) == TGC_OK) cu.ModuleUnload(p->handle);
  p->handle = p->fn = NULL;
}

/* Launch dims as the driver takes them: 0 means 1. */
static bool launch_dims(const int64_t in[3], unsigned out[3]) {
  for (int i = 0; i < 3; i++) {
    if (in[i] < 0 || in[i] > UINT_MAX) return false;
    out[i] = in[i] ? (unsigned)in[i] : 1;
  }
  return true;
}

/* Kernel parameters: a CUdeviceptr per buffer slot, then nvars int64
 * values.  The driver takes a pointer to each and copies the values when
 * called, so a launch may keep these on its stack. */
typedef struct kargs {
  CUdeviceptr ptrs[MAX_GLOBALS];
  int64_t vals[MAX_VARS];
  void *args[MAX_GLOBALS + MAX_VARS]; /* &ptrs[0..nglobals), then &vals[0..nvars) */
} kargs;

static void fill_args(kargs *a, const tgc_prog_info *in, void *const *bufs, const int64_t *vars) {
  TGC_ASSERT(in->nglobals >= 0 && in->nglobals <= MAX_GLOBALS && in->nvars >= 0 &&
             in->nvars <= MAX_VARS && (in->nvars == 0 || vars));
  int k = 0;
  for (int i = 0; i < in->nglobals; i++) {
    a->ptrs[i] = (CUdeviceptr)(uintptr_t)bufs[i];
    a->args[k++] = &a->ptrs[i];
  }
  for (int i = 0; i < in->nvars; i++) {
    a->vals[i] = vars[i];
    a->args[k++] = &a->vals[i];
  }
}

static tgc_status cuda_launch(tgc_device *d, const tgc_program *p, void **bufs,
                              const int64_t *vars) {
  const tgc_prog_info *in = &p->info;
  kargs a;
  fill_args(&a, in, bufs, vars);
  unsigned g[3], b[3];
  if (!launch_dims(in->grid, g) || !launch_dims(in->block, b))
    return tgc_set_error(TGC_ERR_DEVICE, "cuLaunchKernel(%s): launch dims out of range", in->name);
  if (make_current((cuda_device *)d)) return tgc_last_status();
  CUresult r = cu.LaunchKernel(p->fn, g[0], g[1], g[2], b[0], b[1], b[2], 0, NULL, a.args, NULL);
  return r ? cu_fail(r, "cuLaunchKernel(%s)", in->name) : TGC_OK;
}

static tgc_status cuda_sync(tgc_device *d) {
  if (make_current((cuda_device *)d)) return tgc_last_status();
  CUresult r = cu.CtxSynchronize();
  return r ? cu_fail(r, "cuCtxSynchronize") : TGC_OK;
}

/* Event times are float milliseconds: far from the reference they lose
 * precision (a 0.25 ms step after an hour), so once more than a second has
 * passed the "now" event becomes the new reference. */
static double cuda_timer(tgc_device *d) {
  cuda_device *c = (cuda_device *)d;
  float ms = 0;
  CUresult r;
  if (make_current(c)) return NAN;
  if ((r = cu.EventRecord(c->ev_now, NULL)) || (r = cu.EventSynchronize(c->ev_now)) ||
      (r = cu.EventElapsedTime(&ms, c->ev_ref, c->ev_now))) {
    cu_fail(r, "timer event");
    return NAN;
  }
  double t = c->ref_s + ms / 1000.0;
  if (ms > 1000) {
    CUevent e = c->ev_ref;
    c->ev_ref = c->ev_now;
    c->ev_now = e;
    c->ref_s = t;
  }
  return t;
}

/* ---- CUDA graphs (JIT replay) ---- */

/* One kernel node.  Its params point into its own kargs, so an update
 * rewrites the values and hands the same params to the driver. */
typedef struct graph_node {
  const tgc_program *prog; /* loaded for as long as the graph lives (the caller's) */
  CUgraphNode node;        /* owned by the CUgraph; names the node in the exec */
  cu_kernel_node params;   /* .kernelParams = a.args */
  kargs a;                 /* the values the exec's node holds, unless stale */
  bool stale;              /* an update failed: the exec may hold other values */
} graph_node;

/* The CUgraph stays alive beside its exec: updates name its nodes. */
typedef struct cuda_graph {
  CUgraph graph;
  CUgraphExec exec;  /* NULL until instantiated */
  int n;
  graph_node *nodes; /* [n], in launch order; never moved (params point in) */
} cuda_graph;

/* Node gn's parameters: program p's dims, a pointer to each argument. */
static tgc_status set_node(graph_node *gn, const tgc_program *p, void *const *bufs,
                           const int64_t *vars) {
  unsigned g[3], b[3];
  if (!launch_dims(p->info.grid, g) || !launch_dims(p->info.block, b))
    return tgc_set_error(TGC_ERR_DEVICE, "cuGraphAddKernelNode(%s): launch dims out of range",
                         p->info.name);
  fill_args(&gn->a, &p->info, bufs, vars);
  gn->prog = p;
  gn->params = (cu_kernel_node){
      .func = p->fn,
      .gridDimX = g[0], .gridDimY = g[1], .gridDimZ = g[2],
      .blockDimX = b[0], .blockDimY = b[1], .blockDimZ = b[2],
      .kernelParams = gn->a.args,
  };
  return TGC_OK;
}

/* The launches as a chain: each node depends on the one before, so they
 * run in the order recorded, as plain launches on one stream do. */
static tgc_status add_nodes(cuda_graph *g, tgc_program *const *progs, void **const *bufs,
                            const int64_t *const *vars) {
  for (int i = 0; i < g->n; i++) {
    graph_node *gn = &g->nodes[i];
    if (set_node(gn, progs[i], bufs[i], vars ? vars[i] : NULL)) return tgc_last_status();
    const CUgraphNode *dep = i ? &g->nodes[i - 1].node : NULL;
    CUresult r = cug.AddKernelNode(&gn->node, g->graph, dep, i ? 1 : 0, &gn->params);
    if (r) return cu_fail(r, "cuGraphAddKernelNode(launch %d: %s)", i, progs[i]->info.name);
  }
  return TGC_OK;
}

/* The graph, its nodes and its exec; on failure g holds what was made. */
static tgc_status build_graph(cuda_graph *g, tgc_program *const *progs, void **const *bufs,
                              const int64_t *const *vars) {
  CUresult r = cug.Create(&g->graph, 0);
  if (r) {
    g->graph = NULL;
    return cu_fail(r, "cuGraphCreate");
  }
  if (add_nodes(g, progs, bufs, vars)) return tgc_last_status();
  if ((r = cug.Instantiate(&g->exec, g->graph, 0))) {
    g->exec = NULL;
    return cu_fail(r, "cuGraphInstantiateWithFlags(%d kernels)", g->n);
  }
  return TGC_OK;
}

static void cuda_graph_free(tgc_device *d, void *graph) {
  cuda_graph *g = graph;
  if (!g) return;
  /* Not make_current: a failure here must not replace the caller's error.
   * An exec still running is freed by the driver once it completes. */
  if (cu.CtxSetCurrent(((cuda_device *)d)->ctx) == CUDA_SUCCESS) {
    if (g->exec) cug.ExecDestroy(g->exec);
    if (g->graph) cug.Destroy(g->graph);
  }
  free(g->nodes);
  free(g);
}

static void *cuda_graph_new(tgc_device *d, int n, tgc_program *const *progs, void **const *bufs,
                            const int64_t *const *vars) {
  if (!cug.Create) {
    tgc_set_error(TGC_ERR_UNSUPPORTED, "CUDA graphs not available in this driver (no %s)",
                  cug_missing);
    return NULL;
  }
  if (n < 1 || !progs || !bufs) {
    tgc_set_error(TGC_ERR_ARG, "graph_new: %d launches", n);
    return NULL;
  }
  if (make_current((cuda_device *)d)) return NULL;
  cuda_graph *g = tgc_xcalloc(1, sizeof *g);
  g->n = n;
  g->nodes = tgc_xcalloc((size_t)n, sizeof *g->nodes);
  if (build_graph(g, progs, bufs, vars)) {
    cuda_graph_free(d, g); /* keeps the error */
    return NULL;
  }
  return g;
}

static bool same_args(const kargs *a, const tgc_prog_info *in, void *const *bufs,
                      const int64_t *vars) {
  for (int k = 0; k < in->nglobals; k++)
    if (a->ptrs[k] != (CUdeviceptr)(uintptr_t)bufs[k]) return false;
  for (int k = 0; k < in->nvars; k++)
    if (a->vals[k] != vars[k]) return false;
  return true;
}

/* Launch i gets new buffers and vars.  The driver is called only when a
 * value changed: a replay mostly rebinds the nodes that read its inputs.
 * Launches already queued keep the values they were queued with, so this
 * needs no sync. */
static tgc_status cuda_graph_update(tgc_device *d, void *graph, int i, void *const *bufs,
                                    const int64_t *vars) {
  cuda_graph *g = graph;
  if (!g || i < 0 || i >= g->n)
    return tgc_set_error(TGC_ERR_ARG, "graph_update: launch %d of %d", i, g ? g->n : 0);
  graph_node *gn = &g->nodes[i];
  const tgc_prog_info *in = &gn->prog->info;
  if (!gn->stale && same_args(&gn->a, in, bufs, vars)) return TGC_OK;
  fill_args(&gn->a, in, bufs, vars);
  gn->stale = true; /* until the driver has the new values */
  if (make_current((cuda_device *)d)) return tgc_last_status();
  CUresult r = cug.ExecKernelNodeSetParams(g->exec, gn->node, &gn->params);
  if (r) return cu_fail(r, "cuGraphExecKernelNodeSetParams(launch %d: %s)", i, in->name);
  gn->stale = false;
  return TGC_OK;
}

/* Asynchronous, on stream 0 behind all earlier work, like a plain launch. */
static tgc_status cuda_graph_launch(tgc_device *d, void *graph) {
  cuda_graph *g = graph;
  if (!g) return tgc_set_error(TGC_ERR_ARG, "graph_launch: NULL graph");
  if (make_current((cuda_device *)d)) return tgc_last_status();
  CUresult r = cug.Launch(g->exec, NULL);
  return r ? cu_fail(r, "cuGraphLaunch(%d kernels)", g->n) : TGC_OK;
}

/* ---- lifetime ---- */

/* Frees what was made, in any state of construction. */
static void cuda_destroy(tgc_device *d) {
  cuda_device *c = (cuda_device *)d;
  if (c->ctx && cu.CtxSetCurrent(c->ctx) == CUDA_SUCCESS) {
    cu.CtxSynchronize(); /* a failure here has nowhere to go */
    drop_cache(c);
    for (int i = 0; i < NBUCKETS; i++) free_list(&c->live[i]); /* leaked buffers */
    if (c->stage) cu.MemFreeHost(c->stage);
    if (c->ev_ref) cu.EventDestroy(c->ev_ref);
    if (c->ev_now) cu.EventDestroy(c->ev_now);
  }
  if (c->ctx) cu.PrimaryCtxRelease(c->dev);
  pthread_mutex_destroy(&c->mu);
  free(c->id);
  free(c);
}

/* Picks device $TGC_CUDA_DEVICE (default 0) and reads its arch. */
static tgc_status pick_device(cuda_device *c) {
  int count = 0, major = 0, minor = 0;
  CUresult r = cu.Init(0);
  if (r) return cu_fail(r, "cuInit failed");
  if ((r = cu.DeviceGetCount(&count))) return cu_fail(r, "cuDeviceGetCount");
  if (count < 1) return tgc_set_error(TGC_ERR_DEVICE, "the NVIDIA driver reports no CUDA devices");
  long idx = tgc_env_int("TGC_CUDA_DEVICE", 0);
  if (idx < 0 || idx >= count)
    return tgc_set_error(TGC_ERR_ARG, "TGC_CUDA_DEVICE=%ld: out of range (%d CUDA devices)", idx,
                         count);
  if ((r = cu.DeviceGet(&c->dev, (int)idx))) return cu_fail(r, "cuDeviceGet(%ld)", idx);
  if ((r = cu.DeviceGetAttribute(&major, CU_ATTR_CC_MAJOR, c->dev)) ||
      (r = cu.DeviceGetAttribute(&minor, CU_ATTR_CC_MINOR, c->dev)))
    return cu_fail(r, "cuDeviceGetAttribute(compute capability)");
  snprintf(c->arch, sizeof c->arch, "sm_%d%d", major, minor);
  if (cu.DeviceGetName(c->gpu, (int)sizeof c->gpu, c->dev)) snprintf(c->gpu, sizeof c->gpu, "?");
  return TGC_OK;
}

/* The primary context, current on this thread, and the timer's events. */
static tgc_status open_context(cuda_device *c) {
  CUresult r = cu.PrimaryCtxRetain(&c->ctx, c->dev);
  if (r) {
    c->ctx = NULL;
    return cu_fail(r, "cuDevicePrimaryCtxRetain");
  }
  if (make_current(c)) return tgc_last_status();
  if ((r = cu.EventCreate(&c->ev_ref, CU_EVENT_DEFAULT))) return cu_fail(r, "cuEventCreate");
  if ((r = cu.EventCreate(&c->ev_now, CU_EVENT_DEFAULT))) return cu_fail(r, "cuEventCreate");
  if ((r = cu.EventRecord(c->ev_ref, NULL))) return cu_fail(r, "cuEventRecord");
  return TGC_OK;
}

/* "nvrtc 13.0\narch=sm_90\nopts=--gpu-architecture=sm_90 -I... --std=c++17" */
static char *compiler_identity(const char *arch) {
  nvrtc_opts o;
  make_opts(&o, arch);
  tgc_str s = {0};
  tgc_str_fmt(&s, "%s\narch=%s\nopts=", nv_version, arch);
  for (int i = 0; i < o.n; i++) tgc_str_fmt(&s, "%s%s", i ? " " : "", o.v[i]);
  return s.s;
}

static const tgc_device cuda_vtable = {
    .name = "cuda",
    .lang = &tgc_lang_cuda,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .copy_in = cuda_copy_in,
    .copy_out = cuda_copy_out,
    .compiler_id = cuda_compiler_id,
    .compile = cuda_compile,
    .load = cuda_load,
    .unload = cuda_unload,
    .launch = cuda_launch,
    .sync = cuda_sync,
    .timer = cuda_timer,
    .graph_new = cuda_graph_new,
    .graph_update = cuda_graph_update,
    .graph_launch = cuda_graph_launch,
    .graph_free = cuda_graph_free,
    .destroy = cuda_destroy,
};

tgc_device *tgc_cuda_new(void) {
  if (!driver_ready()) return NULL;
  cuda_device *c = tgc_xcalloc(1, sizeof *c);
  c->base = cuda_vtable;
  pthread_mutex_init(&c->mu, NULL);
  if (pick_device(c) || !nvrtc_ready() || open_context(c)) {
    cuda_destroy(&c->base); /* keeps the error set */
    return NULL;
  }
  c->id = compiler_identity(c->arch);
  return &c->base;
}
