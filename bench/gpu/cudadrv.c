/* cudadrv.c - the CUDA driver for gpu_check: the copy baseline
 * (cuMemcpyDtoDAsync between device buffers) and event timing, and the
 * timing of a unit of work on any device (time_work).
 *
 * The driver is opened with dlopen like tgc's own device, so this program
 * runs where CUDA is absent.  It retains the primary context of the device
 * tgc uses (TGC_CUDA_DEVICE, default 0), the context tgc launches in, and
 * works on the legacy default stream, as tgc does, so events and copies are
 * ordered with tgc's kernels.
 */
#include "cudadrv.h"

#include <dlfcn.h>
#include <math.h>
#include <stddef.h>
#include "../bench.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- the driver's entry points --------------------------------------------- */

typedef struct gpu_sym {
  const char *name, *alt; /* exported name; older name to fall back on */
  size_t off;
} gpu_sym;

#define G(f, name, alt) {name, alt, offsetof(gpu, f)}
static const gpu_sym gpu_syms[] = {
    G(Init, "cuInit", NULL),
    G(DeviceGet, "cuDeviceGet", NULL),
    G(DeviceGetName, "cuDeviceGetName", NULL),
    G(DeviceGetAttribute, "cuDeviceGetAttribute", NULL),
    G(PrimaryCtxRetain, "cuDevicePrimaryCtxRetain", NULL),
    G(PrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"),
    G(CtxSetCurrent, "cuCtxSetCurrent", NULL),
    G(MemAlloc, "cuMemAlloc_v2", NULL),
    G(MemFree, "cuMemFree_v2", NULL),
    G(MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2", NULL),
    G(EventCreate, "cuEventCreate", NULL),
    G(EventRecord, "cuEventRecord", NULL),
    G(EventSynchronize, "cuEventSynchronize", NULL),
    G(EventElapsedTime, "cuEventElapsedTime_v2", "cuEventElapsedTime"),
    G(EventDestroy, "cuEventDestroy_v2", "cuEventDestroy"),
    G(GetErrorString, "cuGetErrorString", NULL),
};
#undef G

/* A CUDA failure as a tgc error (so the timing code reports one kind). */
static tgc_status cu_check(const gpu *g, CUresult r, const char *what) {
  if (r == 0) return TGC_OK;
  const char *text = NULL;
  if (g->GetErrorString(r, &text) != 0 || !text) text = "unknown error";
  return tgc_set_error(TGC_ERR_DEVICE, "%s: CUDA error %d: %s", what, r, text);
}

static tgc_status gpu_init(gpu *g) {
  tgc_status st;
  int ordinal = (int)tgc_env_int("TGC_CUDA_DEVICE", 0);
  if ((st = cu_check(g, g->Init(0), "cuInit")) || (st = cu_check(g, g->DeviceGet(&g->dev, ordinal), "cuDeviceGet")) ||
      (st = cu_check(g, g->PrimaryCtxRetain(&g->ctx, g->dev), "cuDevicePrimaryCtxRetain")))
    return st;
  if ((st = cu_check(g, g->CtxSetCurrent(g->ctx), "cuCtxSetCurrent"))) return st;
  if (g->DeviceGetName(g->name, sizeof g->name, g->dev)) snprintf(g->name, sizeof g->name, "?");
  g->DeviceGetAttribute(&g->cc_major, 75, g->dev); /* COMPUTE_CAPABILITY_MAJOR */
  g->DeviceGetAttribute(&g->cc_minor, 76, g->dev); /* COMPUTE_CAPABILITY_MINOR */
  for (int i = 0; i <= MAX_REPS; i++)
    if ((st = cu_check(g, g->EventCreate(&g->ev[i], 0), "cuEventCreate"))) return st;
  return TGC_OK;
}

void gpu_close(gpu *g) {
  if (!g) return;
  for (int i = 0; i <= MAX_REPS; i++)
    if (g->ev[i]) g->EventDestroy(g->ev[i]);
  if (g->ctx) g->PrimaryCtxRelease(g->dev);
  free(g);
}

/* The driver, after tgc's context exists; NULL with an error set if not. */
gpu *gpu_open(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return tgc_fail(TGC_ERR_DEVICE, "libcuda.so.1: %s", dlerror());
  gpu *g = tgc_xcalloc(1, sizeof *g);
  for (int i = 0; i < COUNT(gpu_syms); i++) {
    void *p = dlsym(lib, gpu_syms[i].name);
    if (!p && gpu_syms[i].alt) p = dlsym(lib, gpu_syms[i].alt);
    if (!p) {
      free(g);
      return tgc_fail(TGC_ERR_DEVICE, "libcuda.so.1 has no %s", gpu_syms[i].name);
    }
    memcpy((char *)g + gpu_syms[i].off, &p, sizeof p);
  }
  if (gpu_init(g) != TGC_OK) {
    gpu_close(g);
    return NULL;
  }
  return g;
}

/* ---- timing ------------------------------------------------------------------
 * A unit of work is the i-th of m rotating copies (of the weights, or of
 * the copy's buffer pairs).  On CUDA all m run once untimed (warm-up, and a
 * queue ahead of the first event), then reps run back to back with an
 * event after each, and the intervals between events are the times: the
 * host enqueues faster than the GPU finishes a 32 MiB read, so no interval
 * holds host time.  Elsewhere, the device's timer around each unit. */

static tgc_status time_events(gpu *g, work_fn fn, void *arg, int m, int reps, double *t) {
  tgc_status st = TGC_OK;
  for (int i = 0; i < m && !st; i++) st = fn(arg, i);
  if (!st) st = cu_check(g, g->EventRecord(g->ev[0], NULL), "cuEventRecord");
  for (int r = 0; r < reps && !st; r++)
    if (!(st = fn(arg, r % m))) st = cu_check(g, g->EventRecord(g->ev[r + 1], NULL), "cuEventRecord");
  if (!st) st = cu_check(g, g->EventSynchronize(g->ev[reps]), "cuEventSynchronize");
  for (int r = 0; r < reps && !st; r++) {
    float ms = 0;
    st = cu_check(g, g->EventElapsedTime(&ms, g->ev[r], g->ev[r + 1]), "cuEventElapsedTime");
    t[r] = ms * 1e-3;
  }
  return st;
}

static tgc_status time_timer(tgc_device *dev, work_fn fn, void *arg, int m, int reps, double *t) {
  tgc_status st = TGC_OK;
  for (int i = 0; i < m && !st; i++) st = fn(arg, i);
  if (!st) st = dev->sync(dev);
  for (int r = 0; r < reps && !st; r++) {
    double t0 = dev->timer(dev);
    if (!(st = fn(arg, r % m))) st = dev->sync(dev);
    t[r] = dev->timer(dev) - t0;
    if (!st && isnan(t[r])) st = tgc_last_status() ? tgc_last_status() : TGC_ERR_DEVICE;
  }
  return st;
}

/* Median seconds of one unit of work, or -1 with an error set. */
double time_work(tgc_device *dev, gpu *g, work_fn fn, void *arg, int m, int reps) {
  double t[MAX_REPS];
  tgc_status st = g ? time_events(g, fn, arg, m, reps, t) : time_timer(dev, fn, arg, m, reps, t);
  return st ? -1 : bench_median(t, reps);
}

/* The copy baseline: as many buffer pairs of the weights' size as there
 * are weight copies, copied in turn on the legacy default stream. */
typedef struct copy_bench {
  gpu *g;
  size_t bytes;
  CUdeviceptr src[64], dst[64];
} copy_bench;

static tgc_status copy_one(void *arg, int i) {
  copy_bench *c = arg;
  return cu_check(c->g, c->g->MemcpyDtoDAsync(c->dst[i], c->src[i], c->bytes, NULL), "cuMemcpyDtoDAsync");
}

double time_copy(gpu *g, tgc_device *dev, size_t bytes, int m, int reps) {
  copy_bench c = {.g = g, .bytes = bytes};
  double t = -1;
  int n = 0;
  for (; n < m; n++)
    if (cu_check(g, g->MemAlloc(&c.src[n], bytes), "cuMemAlloc") ||
        cu_check(g, g->MemAlloc(&c.dst[n], bytes), "cuMemAlloc"))
      break;
  if (n == m) t = time_work(dev, g, copy_one, &c, m, reps);
  for (int i = 0; i < m; i++) {
    if (c.src[i]) g->MemFree(c.src[i]);
    if (c.dst[i]) g->MemFree(c.dst[i]);
  }
  return t;
}
