/* cudadrv.h - the CUDA driver, opened at run time, for gpu_check's copy
 * baseline and event timing; and time_work, the timing of a unit of work on
 * any device (bench/gpu/cudadrv.c).  tgc-bench links it too, for the same
 * copy baseline on CUDA (bench/tgc-bench/copy.c).
 *
 * Order of calls: gpu_open after tgc's context exists; time_work and
 * time_copy with it; gpu_close last.  Where CUDA is not the device (or
 * gpu_open failed), time_work takes a NULL gpu and time_copy is not called.
 */
#ifndef TGC_BENCH_GPU_CUDADRV_H
#define TGC_BENCH_GPU_CUDADRV_H

#include "tgc_internal.h"

/* Most timed repetitions per figure: the events are made once, this many
 * plus one, so --reps is limited to it. */
#define MAX_REPS 1000

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUevent_st *CUevent;
typedef struct CUstream_st *CUstream;

/* The driver's entry points, filled by gpu_open (gpu_syms in cudadrv.c),
 * and the device, context and events it opened. */
typedef struct gpu {
  CUresult (*Init)(unsigned flags);
  CUresult (*DeviceGet)(CUdevice *dev, int ordinal);
  CUresult (*DeviceGetName)(char *name, int len, CUdevice dev);
  CUresult (*DeviceGetAttribute)(int *v, int attr, CUdevice dev);
  CUresult (*PrimaryCtxRetain)(CUcontext *ctx, CUdevice dev);
  CUresult (*PrimaryCtxRelease)(CUdevice dev);
  CUresult (*CtxSetCurrent)(CUcontext ctx);
  CUresult (*MemAlloc)(CUdeviceptr *p, size_t n);
  CUresult (*MemFree)(CUdeviceptr p);
  CUresult (*MemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s);
  CUresult (*EventCreate)(CUevent *e, unsigned flags);
  CUresult (*EventRecord)(CUevent e, CUstream s);
  CUresult (*EventSynchronize)(CUevent e);
  CUresult (*EventElapsedTime)(float *ms, CUevent start, CUevent end);
  CUresult (*EventDestroy)(CUevent e);
  CUresult (*GetErrorString)(CUresult r, const char **s);
  CUdevice dev;
  CUcontext ctx;
  CUevent ev[MAX_REPS + 1];
  char name[128]; /* "NVIDIA H100 80GB HBM3" */
  int cc_major, cc_minor;
} gpu;

/* The driver, after tgc's context exists; NULL with an error set if not.
 * The caller owns it: gpu_close frees it. */
gpu *gpu_open(void);
/* Destroys the events, releases the primary context, frees g; NULL: nothing. */
void gpu_close(gpu *g);

/* One unit of work: the i-th of m rotating copies (of the weights, or of
 * the copy's buffer pairs). */
typedef tgc_status (*work_fn)(void *arg, int i);

/* Median seconds of one unit of work over reps (1..MAX_REPS) runs of
 * fn(arg, r % m), timed by events on g, or by dev's timer when g is NULL;
 * -1 with an error set if not. */
double time_work(tgc_device *dev, gpu *g, work_fn fn, void *arg, int m, int reps);

/* Median seconds of a device-to-device copy of bytes, over m (<= 64)
 * buffer pairs copied in turn; -1 with an error set if not. */
double time_copy(gpu *g, tgc_device *dev, size_t bytes, int m, int reps);

#endif
