/* cuda.c - the CUDA device: the driver API loads and runs kernels that
 * NVRTC (nvrtc.c) compiled to CUBIN.
 *
 * The driver is not linked.  libcuda.so.1 is opened with dlopen once per
 * process, and the few types and entry points tgc uses are declared
 * below, so tgc builds and runs where CUDA is absent and says which
 * library is missing.  Versioned driver symbols (cuMemAlloc_v2, ...) are
 * looked up by their exported names, as cuda.h's macros would resolve
 * them.
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
#include <stddef.h>


/* ---- the CUDA ABI, as far as tgc uses it (cuda.h) ----------------------- */

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

/* Driver entry points; cu_syms below names the exported symbols. */
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

#define CU(f, name, alt) {name, alt, offsetof(cu_api, f)}
static const tgc_dl_sym cu_syms[] = {
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
static const tgc_dl_sym cu_graph_syms[] = {
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

/* ---- loading the driver (once per process) ---------------------------- */

static cu_api cu;
static cu_graph_api cug;            /* all NULL when the driver lacks one */
static const char *cug_missing;     /* the first graph symbol it lacks */
static tgc_dl_lib cu_lib;
static pthread_once_t cu_once = PTHREAD_ONCE_INIT;

static void load_driver(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *e = dlerror();
    tgc_dl_fail(&cu_lib, TGC_ERR_UNSUPPORTED, "libcuda.so.1 not found (no NVIDIA driver?): %s",
                e ? e : "dlopen failed");
    return;
  }
  const char *missing = tgc_dl_bind(lib, &cu, cu_syms, sizeof cu_syms / sizeof cu_syms[0]);
  if (missing) {
    tgc_dl_fail(&cu_lib, TGC_ERR_UNSUPPORTED, "libcuda.so.1 has no %s (driver too old?)",
                missing);
    dlclose(lib);
    return;
  }
  /* All or none, so one check (cug.Create) says whether graphs work. */
  cug_missing =
      tgc_dl_bind(lib, &cug, cu_graph_syms, sizeof cu_graph_syms / sizeof cu_graph_syms[0]);
  if (cug_missing) memset(&cug, 0, sizeof cug);
  cu_lib.ok = true; /* the library stays loaded for the process */
}

static bool driver_ready(void) { return tgc_dl_ready(&cu_once, load_driver, &cu_lib); }

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
  g[0] = (unsigned)tgc_prog_blocks(in, vars); /* a symbolic axis: its current size */
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
      .gridDimX = (unsigned)tgc_prog_blocks(&p->info, vars), .gridDimY = g[1], .gridDimZ = g[2],
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
  gn->params.gridDimX = (unsigned)tgc_prog_blocks(in, vars); /* a symbolic axis: its current size */
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
  const char *version = tgc_nvrtc_version();
  char *opts = tgc_nvrtc_options(arch);
  TGC_ASSERT(version && opts); /* tgc_cuda_new checked that NVRTC loads */
  tgc_str s = {0};
  tgc_str_fmt(&s, "%s\narch=%s\nopts=%s", version, arch, opts);
  free(opts);
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
  if (pick_device(c) || !tgc_nvrtc_version() || open_context(c)) {
    cuda_destroy(&c->base); /* keeps the error set */
    return NULL;
  }
  c->id = compiler_identity(c->arch);
  return &c->base;
}
