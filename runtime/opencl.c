/* opencl.c - the OpenCL device, through the ICD loader opened with dlopen.
 *
 * OpenCL is here so that CI, which has no GPU, still runs GPU-shaped
 * kernels (work-groups, local memory, barriers): on PoCL they run on the
 * CPU.  tgc must build and run where OpenCL is absent, so nothing links
 * against it: libOpenCL.so.1 is opened once per process and every call
 * goes through a function pointer, and the few types and constants of the
 * OpenCL 1.2 API that we use are declared below rather than taken from
 * <CL/cl.h> (the GPU machines have no OpenCL headers).
 *
 * The device is one context and one in-order queue on the first GPU of any
 * platform, else the first device of any type; $TGC_OPENCL_DEVICE=N picks
 * device N (from 0) of all devices of all platforms, in the order of
 * `clinfo -l`.
 *
 * A program is built from source, and its binary (for PoCL, LLVM bitcode;
 * PoCL generates machine code per work-group size at the first launch and
 * keeps it in its own cache) goes into tgc's disk cache.  Buffers are
 * cl_mem handles passed around as void *.
 */
#include "tgc_internal.h"

#include <dlfcn.h>
#include <pthread.h>

/* ---- the part of the OpenCL 1.2 API we use (values from the Khronos cl.h) */

typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef uint64_t cl_bitfield;
typedef struct _cl_platform_id *cl_platform_id;
typedef struct _cl_device_id *cl_device_id;
typedef struct _cl_context *cl_context;
typedef struct _cl_command_queue *cl_command_queue;
typedef struct _cl_mem *cl_mem;
typedef struct _cl_program *cl_program;
typedef struct _cl_kernel *cl_kernel;
typedef struct _cl_event *cl_event;

enum {
  CL_SUCCESS = 0,
  CL_DEVICE_NOT_FOUND = -1,
  CL_BUILD_PROGRAM_FAILURE = -11,
  CL_PLATFORM_NOT_FOUND_KHR = -1001,
  CL_TRUE = 1,
  CL_PLATFORM_VERSION = 0x0901,
  CL_PLATFORM_NAME = 0x0902,
  CL_DEVICE_TYPE = 0x1000,
  CL_DEVICE_NAME = 0x102B,
  CL_DRIVER_VERSION = 0x102D,
  CL_PROGRAM_BINARY_SIZES = 0x1165,
  CL_PROGRAM_BINARIES = 0x1166,
  CL_PROGRAM_BUILD_LOG = 0x1183,
};
#define CL_DEVICE_TYPE_GPU ((cl_bitfield)1 << 2)
#define CL_DEVICE_TYPE_ALL ((cl_bitfield)0xFFFFFFFF)
#define CL_MEM_READ_WRITE ((cl_bitfield)1 << 0)

/* Every entry point: return type, name, parameters. */
#define CL_FUNCS(X)                                                                              \
  X(cl_int, clGetPlatformIDs, (cl_uint, cl_platform_id *, cl_uint *))                           \
  X(cl_int, clGetPlatformInfo, (cl_platform_id, cl_uint, size_t, void *, size_t *))             \
  X(cl_int, clGetDeviceIDs, (cl_platform_id, cl_bitfield, cl_uint, cl_device_id *, cl_uint *))  \
  X(cl_int, clGetDeviceInfo, (cl_device_id, cl_uint, size_t, void *, size_t *))                 \
  X(cl_context, clCreateContext,                                                                 \
    (const intptr_t *, cl_uint, const cl_device_id *,                                            \
     void (*)(const char *, const void *, size_t, void *), void *, cl_int *))                    \
  X(cl_int, clReleaseContext, (cl_context))                                                      \
  X(cl_command_queue, clCreateCommandQueue, (cl_context, cl_device_id, cl_bitfield, cl_int *))  \
  X(cl_int, clReleaseCommandQueue, (cl_command_queue))                                           \
  X(cl_mem, clCreateBuffer, (cl_context, cl_bitfield, size_t, void *, cl_int *))                 \
  X(cl_int, clReleaseMemObject, (cl_mem))                                                        \
  X(cl_int, clEnqueueWriteBuffer,                                                                \
    (cl_command_queue, cl_mem, cl_uint, size_t, size_t, const void *, cl_uint, const cl_event *, \
     cl_event *))                                                                                \
  X(cl_int, clEnqueueReadBuffer,                                                                 \
    (cl_command_queue, cl_mem, cl_uint, size_t, size_t, void *, cl_uint, const cl_event *,       \
     cl_event *))                                                                                \
  X(cl_program, clCreateProgramWithSource,                                                       \
    (cl_context, cl_uint, const char **, const size_t *, cl_int *))                              \
  X(cl_program, clCreateProgramWithBinary,                                                       \
    (cl_context, cl_uint, const cl_device_id *, const size_t *, const unsigned char **,          \
     cl_int *, cl_int *))                                                                        \
  X(cl_int, clBuildProgram,                                                                      \
    (cl_program, cl_uint, const cl_device_id *, const char *, void (*)(cl_program, void *),      \
     void *))                                                                                    \
  X(cl_int, clGetProgramBuildInfo, (cl_program, cl_device_id, cl_uint, size_t, void *, size_t *)) \
  X(cl_int, clGetProgramInfo, (cl_program, cl_uint, size_t, void *, size_t *))                   \
  X(cl_int, clReleaseProgram, (cl_program))                                                      \
  X(cl_kernel, clCreateKernel, (cl_program, const char *, cl_int *))                             \
  X(cl_int, clReleaseKernel, (cl_kernel))                                                        \
  X(cl_int, clSetKernelArg, (cl_kernel, cl_uint, size_t, const void *))                          \
  X(cl_int, clEnqueueNDRangeKernel,                                                              \
    (cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *, const size_t *,       \
     cl_uint, const cl_event *, cl_event *))                                                     \
  X(cl_int, clFinish, (cl_command_queue))

static struct {
#define X(ret, name, params) ret(*name) params;
  CL_FUNCS(X)
#undef X
} cl;

/* No fast-math: results must match the f64 references like the CPU's. */
static const char build_options[] = "-cl-std=CL1.2";

/* ---- errors ---------------------------------------------------------------- */

static const char *const cl_error_names[] = {
    [0] = "CL_SUCCESS",
    [1] = "CL_DEVICE_NOT_FOUND",
    [2] = "CL_DEVICE_NOT_AVAILABLE",
    [3] = "CL_COMPILER_NOT_AVAILABLE",
    [4] = "CL_MEM_OBJECT_ALLOCATION_FAILURE",
    [5] = "CL_OUT_OF_RESOURCES",
    [6] = "CL_OUT_OF_HOST_MEMORY",
    [7] = "CL_PROFILING_INFO_NOT_AVAILABLE",
    [8] = "CL_MEM_COPY_OVERLAP",
    [11] = "CL_BUILD_PROGRAM_FAILURE",
    [12] = "CL_MAP_FAILURE",
    [14] = "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST",
    [15] = "CL_COMPILE_PROGRAM_FAILURE",
    [16] = "CL_LINKER_NOT_AVAILABLE",
    [17] = "CL_LINK_PROGRAM_FAILURE",
    [30] = "CL_INVALID_VALUE",
    [31] = "CL_INVALID_DEVICE_TYPE",
    [32] = "CL_INVALID_PLATFORM",
    [33] = "CL_INVALID_DEVICE",
    [34] = "CL_INVALID_CONTEXT",
    [35] = "CL_INVALID_QUEUE_PROPERTIES",
    [36] = "CL_INVALID_COMMAND_QUEUE",
    [37] = "CL_INVALID_HOST_PTR",
    [38] = "CL_INVALID_MEM_OBJECT",
    [42] = "CL_INVALID_BINARY",
    [43] = "CL_INVALID_BUILD_OPTIONS",
    [44] = "CL_INVALID_PROGRAM",
    [45] = "CL_INVALID_PROGRAM_EXECUTABLE",
    [46] = "CL_INVALID_KERNEL_NAME",
    [47] = "CL_INVALID_KERNEL_DEFINITION",
    [48] = "CL_INVALID_KERNEL",
    [49] = "CL_INVALID_ARG_INDEX",
    [50] = "CL_INVALID_ARG_VALUE",
    [51] = "CL_INVALID_ARG_SIZE",
    [52] = "CL_INVALID_KERNEL_ARGS",
    [53] = "CL_INVALID_WORK_DIMENSION",
    [54] = "CL_INVALID_WORK_GROUP_SIZE",
    [55] = "CL_INVALID_WORK_ITEM_SIZE",
    [56] = "CL_INVALID_GLOBAL_OFFSET",
    [57] = "CL_INVALID_EVENT_WAIT_LIST",
    [58] = "CL_INVALID_EVENT",
    [59] = "CL_INVALID_OPERATION",
    [61] = "CL_INVALID_BUFFER_SIZE",
    [63] = "CL_INVALID_GLOBAL_WORK_SIZE",
    [64] = "CL_INVALID_PROPERTY",
};

static const char *cl_error_name(cl_int e) {
  size_t n = sizeof cl_error_names / sizeof cl_error_names[0];
  if (e == CL_PLATFORM_NOT_FOUND_KHR) return "CL_PLATFORM_NOT_FOUND_KHR";
  if (e > 0 || (size_t)-(int64_t)e >= n || !cl_error_names[-e]) return "unknown OpenCL error";
  return cl_error_names[-e];
}

static tgc_status cl_fail(const char *call, cl_int e) {
  return tgc_set_error(TGC_ERR_DEVICE, "OpenCL: %s failed: %s (%d)", call, cl_error_name(e), e);
}

/* ---- the library, loaded once per process ---------------------------------- */

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[512]; /* empty once every entry point is found */

static void load_library(void) {
  void *h = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    char why[256]; /* the first failure says more than the fallback's */
    snprintf(why, sizeof why, "%s", dlerror());
    if (!(h = dlopen("libOpenCL.so", RTLD_NOW | RTLD_LOCAL))) {
      snprintf(load_error, sizeof load_error,
               "libOpenCL.so.1 not found (install ocl-icd-libopencl1 and an OpenCL driver such as "
               "pocl-opencl-icd): %s",
               why);
      return;
    }
  }
#define X(ret, name, params)                                                                   \
  if (!(*(void **)&cl.name = dlsym(h, #name))) {                                               \
    snprintf(load_error, sizeof load_error, "libOpenCL.so.1 has no %s: %s", #name, dlerror()); \
    return;                                                                                    \
  }
  CL_FUNCS(X)
#undef X
  /* the handle stays open for the life of the process */
}

static bool library_ready(void) {
  pthread_once(&load_once, load_library);
  if (!load_error[0]) return true;
  tgc_set_error(TGC_ERR_UNSUPPORTED, "%s", load_error);
  return false;
}

/* ---- the device -------------------------------------------------------------- */

typedef struct ocl_device {
  tgc_device base;
  cl_device_id dev;
  cl_context ctx;
  cl_command_queue queue;
  char *id; /* compiler_id text, malloc'd */
} ocl_device;

/* A platform's (p != NULL) or a device's string attribute, malloc'd; "?"
 * when the driver will not say. */
static char *info_str(cl_platform_id p, cl_device_id d, cl_uint what) {
  size_t n = 0;
  cl_int e = p ? cl.clGetPlatformInfo(p, what, 0, NULL, &n)
                : cl.clGetDeviceInfo(d, what, 0, NULL, &n);
  if (e != CL_SUCCESS || n == 0) return tgc_xstrdup("?");
  char *s = tgc_xcalloc(n + 1, 1);
  e = p ? cl.clGetPlatformInfo(p, what, n, s, NULL) : cl.clGetDeviceInfo(d, what, n, s, NULL);
  if (e != CL_SUCCESS) strcpy(s, "?");
  return s;
}

enum { MAX_DEVICES = 64 };

/* Every device of every platform, in platform order. */
typedef struct device_list {
  int n;
  cl_device_id dev[MAX_DEVICES];
  cl_platform_id plat[MAX_DEVICES];
} device_list;

static tgc_status list_devices(device_list *l) {
  cl_platform_id plats[16];
  cl_uint np = 0;
  cl_int e = cl.clGetPlatformIDs(16, plats, &np);
  if (e == CL_PLATFORM_NOT_FOUND_KHR || (e == CL_SUCCESS && np == 0))
    return tgc_set_error(TGC_ERR_UNSUPPORTED, "OpenCL: no platform found (the ICD loader found no "
                                              "driver; install one such as pocl-opencl-icd)");
  if (e != CL_SUCCESS) return cl_fail("clGetPlatformIDs", e);
  l->n = 0;
  for (cl_uint i = 0; i < np && i < 16; i++) {
    cl_uint nd = 0;
    e = cl.clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_ALL, (cl_uint)(MAX_DEVICES - l->n),
                          l->dev + l->n, &nd);
    if (e == CL_DEVICE_NOT_FOUND) continue;
    if (e != CL_SUCCESS) return cl_fail("clGetDeviceIDs", e);
    for (cl_uint k = 0; k < nd && l->n < MAX_DEVICES; k++) l->plat[l->n++] = plats[i];
  }
  if (l->n == 0)
    return tgc_set_error(TGC_ERR_UNSUPPORTED, "OpenCL: %u platform(s) but no device", np);
  return TGC_OK;
}

/* $TGC_OPENCL_DEVICE, else the first GPU, else device 0; -1 with an error. */
static int pick_device(const device_list *l) {
  long want = tgc_env_int("TGC_OPENCL_DEVICE", -1);
  if (want >= l->n || (want < 0 && tgc_env_str("TGC_OPENCL_DEVICE", NULL))) {
    tgc_set_error(TGC_ERR_ARG, "TGC_OPENCL_DEVICE=%s: there are %d OpenCL devices (0 to %d)",
                  tgc_env_str("TGC_OPENCL_DEVICE", ""), l->n, l->n - 1);
    return -1;
  }
  if (want >= 0) return (int)want;
  for (int i = 0; i < l->n; i++) {
    cl_bitfield type = 0;
    if (cl.clGetDeviceInfo(l->dev[i], CL_DEVICE_TYPE, sizeof type, &type, NULL) == CL_SUCCESS &&
        (type & CL_DEVICE_TYPE_GPU))
      return i;
  }
  return 0;
}

/* What decides a binary besides the source. */
static char *make_compiler_id(cl_platform_id p, cl_device_id d) {
  char *pname = info_str(p, NULL, CL_PLATFORM_NAME), *pver = info_str(p, NULL, CL_PLATFORM_VERSION);
  char *dname = info_str(NULL, d, CL_DEVICE_NAME), *dver = info_str(NULL, d, CL_DRIVER_VERSION);
  tgc_str s = {0};
  tgc_str_fmt(&s, "opencl\nplatform=%s %s\ndevice=%s\ndriver=%s\noptions=%s", pname, pver, dname,
              dver, build_options);
  free(pname);
  free(pver);
  free(dname);
  free(dver);
  return s.s;
}

/* ---- memory -------------------------------------------------------------------- */

static void *ocl_alloc(tgc_device *d, size_t bytes) {
  ocl_device *o = (ocl_device *)d;
  /* whole 64-byte lines, as on the CPU: a wide load at the end of a
   * buffer stays inside it (and a 0-byte buffer is not an error) */
  size_t n = (bytes + 63) & ~(size_t)63;
  cl_int e;
  cl_mem m = cl.clCreateBuffer(o->ctx, CL_MEM_READ_WRITE, n ? n : 64, NULL, &e);
  return e == CL_SUCCESS ? m : NULL;
}

static void ocl_free(tgc_device *d, void *p) {
  (void)d;
  if (p) cl.clReleaseMemObject(p);
}

static tgc_status ocl_copy_in(tgc_device *d, void *dst, const void *src, size_t n) {
  ocl_device *o = (ocl_device *)d;
  if (n == 0) return TGC_OK;
  cl_int e = cl.clEnqueueWriteBuffer(o->queue, dst, CL_TRUE, 0, n, src, 0, NULL, NULL);
  return e == CL_SUCCESS ? TGC_OK : cl_fail("clEnqueueWriteBuffer", e);
}

static tgc_status ocl_copy_out(tgc_device *d, void *dst, const void *src, size_t n) {
  ocl_device *o = (ocl_device *)d;
  if (n == 0) return TGC_OK;
  cl_int e = cl.clEnqueueReadBuffer(o->queue, (cl_mem)src, CL_TRUE, 0, n, dst, 0, NULL, NULL);
  return e == CL_SUCCESS ? TGC_OK : cl_fail("clEnqueueReadBuffer", e);
}

/* ---- compiling ----------------------------------------------------------------- */

static const char *ocl_compiler_id(tgc_device *d) { return ((ocl_device *)d)->id; }

enum { LOG_CAP = 8 * 1024, SRC_LINES = 40 };

/* The program's build log, at most LOG_CAP bytes, into s. */
static void append_build_log(tgc_str *s, cl_program prog, cl_device_id dev) {
  size_t n = 0;
  cl_int e = cl.clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
  if (e != CL_SUCCESS || n <= 1) {
    tgc_str_cat(s, "(no build log)\n");
    return;
  }
  char *log = tgc_xcalloc(n + 1, 1);
  e = cl.clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, n, log, NULL);
  if (e != CL_SUCCESS) log[0] = 0;
  if (strlen(log) > LOG_CAP) strcpy(log + LOG_CAP, "\n... (log truncated)");
  tgc_str_fmt(s, "%s%s", log, log[0] && log[strlen(log) - 1] == '\n' ? "" : "\n");
  free(log);
}

/* The first SRC_LINES lines of src, numbered from 1. */
static void append_source_head(tgc_str *s, const char *src) {
  for (int line = 1; *src && line <= SRC_LINES; line++) {
    size_t len = strcspn(src, "\n");
    tgc_str_fmt(s, "%4d | %.*s\n", line, (int)len, src);
    src += len + (src[len] == '\n');
  }
}

static tgc_status build_failed(cl_program prog, cl_device_id dev, const char *src) {
  tgc_str s = {0};
  append_build_log(&s, prog, dev);
  append_source_head(&s, src);
  tgc_status st = tgc_set_error(TGC_ERR_COMPILE, "OpenCL build failed:\n%s", s.s);
  tgc_str_free(&s);
  return st;
}

/* Builds a program for the device; given the source, a failed build reports
 * its log and the source's first lines. */
static tgc_status build(ocl_device *o, cl_program prog, const char *src) {
  cl_int e = cl.clBuildProgram(prog, 1, &o->dev, build_options, NULL, NULL);
  if (e == CL_BUILD_PROGRAM_FAILURE && src) return build_failed(prog, o->dev, src);
  return e == CL_SUCCESS ? TGC_OK : cl_fail("clBuildProgram", e);
}

/* The binary of a built program for its one device, malloc'd. */
static tgc_status program_binary(cl_program prog, void **bin, size_t *len) {
  size_t n = 0;
  cl_int e = cl.clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL);
  if (e != CL_SUCCESS) return cl_fail("clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)", e);
  if (n == 0) return tgc_set_error(TGC_ERR_COMPILE, "OpenCL: the driver gave an empty binary");
  unsigned char *buf = tgc_xmalloc(n), *bufs[1] = {buf};
  e = cl.clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bufs, bufs, NULL);
  if (e != CL_SUCCESS) {
    free(buf);
    return cl_fail("clGetProgramInfo(CL_PROGRAM_BINARIES)", e);
  }
  *bin = buf;
  *len = n;
  return TGC_OK;
}

static tgc_status compile_one(ocl_device *o, const char *src, void **bin, size_t *len) {
  cl_int e;
  cl_program prog = cl.clCreateProgramWithSource(o->ctx, 1, &src, NULL, &e);
  if (e != CL_SUCCESS) return cl_fail("clCreateProgramWithSource", e);
  tgc_status st = build(o, prog, src);
  if (st == TGC_OK) st = program_binary(prog, bin, len);
  cl.clReleaseProgram(prog);
  return st;
}

/* One build after another.  Threads gain nothing on PoCL, which builds
 * under one lock per device: 8 cold builds took 2.3-2.4 s from 8 threads
 * and 2.0-2.6 s in a row (PoCL 3.1, 2 cores). */
static tgc_status ocl_compile(tgc_device *d, int n, const char *const *srcs, void **bins,
                              size_t *lens, int *runs) {
  ocl_device *o = (ocl_device *)d;
  tgc_status st = TGC_OK;
  *runs = 0;
  for (int i = 0; i < n && st == TGC_OK; i++) {
    ++*runs;
    st = compile_one(o, srcs[i], &bins[i], &lens[i]);
  }
  if (st != TGC_OK)
    for (int i = 0; i < n; i++) {
      free(bins[i]);
      bins[i] = NULL;
    }
  return st;
}

/* ---- programs -------------------------------------------------------------------- */

static tgc_status ocl_load(tgc_device *d, tgc_program *p, const void *bin, size_t len) {
  ocl_device *o = (ocl_device *)d;
  const unsigned char *b = bin;
  cl_int e, bin_status = CL_SUCCESS;
  cl_program prog = cl.clCreateProgramWithBinary(o->ctx, 1, &o->dev, &len, &b, &bin_status, &e);
  if (e != CL_SUCCESS || bin_status != CL_SUCCESS) {
    if (e == CL_SUCCESS) cl.clReleaseProgram(prog);
    return cl_fail("clCreateProgramWithBinary", e != CL_SUCCESS ? e : bin_status);
  }
  tgc_status st = build(o, prog, NULL);
  cl_kernel k = NULL;
  if (st == TGC_OK && !(k = cl.clCreateKernel(prog, p->info.name, &e)))
    st = tgc_set_error(TGC_ERR_COMPILE, "OpenCL: clCreateKernel(%s) failed: %s (%d)", p->info.name,
                       cl_error_name(e), e);
  if (st != TGC_OK) {
    cl.clReleaseProgram(prog);
    return st;
  }
  p->handle = prog;
  p->fn = k;
  p->dev = d;
  return TGC_OK;
}

static void ocl_unload(tgc_device *d, tgc_program *p) {
  (void)d;
  if (p->fn) cl.clReleaseKernel(p->fn);
  if (p->handle) cl.clReleaseProgram(p->handle);
  p->handle = p->fn = NULL;
}

/* Arguments: the buffers in slot order, then nvars 64-bit integers.  A
 * kernel object is not safe to set from two threads, but a device belongs
 * to one context, which one thread uses at a time. */
static tgc_status set_args(cl_kernel k, const tgc_prog_info *in, void **bufs, const int64_t *vars) {
  cl_int e = CL_SUCCESS;
  for (int i = 0; i < in->nglobals && e == CL_SUCCESS; i++)
    e = cl.clSetKernelArg(k, (cl_uint)i, sizeof(cl_mem), &bufs[i]);
  for (int i = 0; i < in->nvars && e == CL_SUCCESS; i++)
    e = cl.clSetKernelArg(k, (cl_uint)(in->nglobals + i), sizeof(int64_t), &vars[i]);
  return e == CL_SUCCESS ? TGC_OK : cl_fail("clSetKernelArg", e);
}

static tgc_status ocl_launch(tgc_device *d, const tgc_program *p, void **bufs,
                              const int64_t *vars) {
  ocl_device *o = (ocl_device *)d;
  tgc_status st = set_args(p->fn, &p->info, bufs, vars);
  if (st != TGC_OK) return st;
  size_t global[3], local[3];
  for (int i = 0; i < 3; i++) {
    local[i] = p->info.block[i] > 0 ? (size_t)p->info.block[i] : 1;
    global[i] = local[i] * (p->info.grid[i] > 0 ? (size_t)p->info.grid[i] : 1);
  }
  global[0] = local[0] * (size_t)tgc_prog_blocks(&p->info, vars); /* a symbolic axis: its current size */
  cl_int e = cl.clEnqueueNDRangeKernel(o->queue, p->fn, 3, NULL, global, local, 0, NULL, NULL);
  if (e != CL_SUCCESS)
    return tgc_set_error(TGC_ERR_DEVICE, "OpenCL: clEnqueueNDRangeKernel(%s) failed: %s (%d)",
                         p->info.name, cl_error_name(e), e);
  return TGC_OK;
}

static tgc_status ocl_sync(tgc_device *d) {
  cl_int e = cl.clFinish(((ocl_device *)d)->queue);
  return e == CL_SUCCESS ? TGC_OK : cl_fail("clFinish", e);
}

/* The host clock once the queue is empty: PoCL runs kernels on the CPU,
 * and events would add their own overhead to every launch. */
static double ocl_timer(tgc_device *d) {
  cl.clFinish(((ocl_device *)d)->queue);
  return tgc_now();
}

static void ocl_destroy(tgc_device *d) {
  ocl_device *o = (ocl_device *)d;
  if (!o) return;
  if (o->queue) cl.clReleaseCommandQueue(o->queue);
  if (o->ctx) cl.clReleaseContext(o->ctx);
  free(o->id);
  free(o);
}

/* ---- construction ----------------------------------------------------------------- */

static const tgc_device ocl_vtable = {
    .name = "opencl",
    .lang = &tgc_lang_opencl,
    .alloc = ocl_alloc,
    .free = ocl_free,
    .copy_in = ocl_copy_in,
    .copy_out = ocl_copy_out,
    .compiler_id = ocl_compiler_id,
    .compile = ocl_compile,
    .load = ocl_load,
    .unload = ocl_unload,
    .launch = ocl_launch,
    .sync = ocl_sync,
    .timer = ocl_timer,
    .destroy = ocl_destroy,
};

static tgc_status open_device(ocl_device *o, cl_platform_id plat) {
  cl_int e;
  o->ctx = cl.clCreateContext(NULL, 1, &o->dev, NULL, NULL, &e);
  if (e != CL_SUCCESS) return cl_fail("clCreateContext", e);
  o->queue = cl.clCreateCommandQueue(o->ctx, o->dev, 0, &e); /* in order, no profiling */
  if (e != CL_SUCCESS) return cl_fail("clCreateCommandQueue", e);
  o->id = make_compiler_id(plat, o->dev);
  return TGC_OK;
}

tgc_device *tgc_opencl_new(void) {
  if (!library_ready()) return NULL;
  device_list l;
  if (list_devices(&l) != TGC_OK) return NULL;
  int i = pick_device(&l);
  if (i < 0) return NULL;
  ocl_device *o = tgc_xcalloc(1, sizeof *o);
  o->base = ocl_vtable;
  o->dev = l.dev[i];
  if (open_device(o, l.plat[i]) != TGC_OK) {
    ocl_destroy(&o->base);
    return NULL;
  }
  return &o->base;
}
