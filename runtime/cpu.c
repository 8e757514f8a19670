/* cpu.c - the CPU device.
 *
 * Kernels are C functions compiled by the system compiler into shared
 * objects (runtime/cc.c), loaded with dlopen, and run on the thread pool,
 * which splits the kernel's outermost axis: every kernel has the signature
 *   void k(void *const *bufs, const int64_t *vars, int64_t gs, int64_t ge)
 * and computes rows gs..ge-1 of axis 0.
 */
#include "tgc_internal.h"

#include <dlfcn.h>
#include <unistd.h>

typedef struct cpu_device {
  tgc_device base;
  tgc_pool *pool;
} cpu_device;

typedef void (*cpu_kernel)(void *const *bufs, const int64_t *vars, int64_t gs, int64_t ge);

static void *cpu_alloc(tgc_device *d, size_t bytes) {
  (void)d;
  void *p = NULL;
  /* 64-byte alignment and a whole number of cache lines: wide loads at
   * the end of a buffer stay inside it */
  size_t n = (bytes + 63) & ~(size_t)63;
  if (posix_memalign(&p, 64, n)) return NULL;
  return p;
}

static void cpu_free(tgc_device *d, void *p) {
  (void)d;
  free(p);
}

static tgc_status cpu_copy(tgc_device *d, void *dst, const void *src, size_t n) {
  (void)d;
  memcpy(dst, src, n);
  return TGC_OK;
}

static const char *cpu_compiler_id(tgc_device *d) {
  (void)d;
  return tgc_cc_identity();
}

static tgc_status cpu_compile(tgc_device *d, int n, const char *const *srcs, void **bins,
                              size_t *lens, int *runs) {
  (void)d;
  *runs = tgc_cc_batches(n);
  return tgc_cc_compile(n, srcs, bins, lens);
}

static tgc_status cpu_load(tgc_device *d, tgc_program *p, const void *bin, size_t len) {
  p->handle = tgc_so_load(bin, len);
  if (!p->handle) return tgc_last_status();
  p->fn = dlsym(p->handle, p->info.name);
  if (!p->fn) {
    tgc_so_unload(p->handle);
    p->handle = NULL;
    return tgc_set_error(TGC_ERR_COMPILE, "kernel %s missing from its shared object", p->info.name);
  }
  p->dev = d;
  return TGC_OK;
}

static void cpu_unload(tgc_device *d, tgc_program *p) {
  (void)d;
  tgc_so_unload(p->handle);
  p->handle = p->fn = NULL;
}

typedef struct launch_args {
  cpu_kernel fn;
  void **bufs;
  const int64_t *vars;
} launch_args;

static void run_chunk(void *arg, int64_t start, int64_t end) {
  launch_args *a = arg;
  a->fn(a->bufs, a->vars, start, end);
}

static tgc_status cpu_launch(tgc_device *d, const tgc_program *p, void **bufs,
                             const int64_t *vars) {
  cpu_device *c = (cpu_device *)d;
  launch_args a;
  *(void **)&a.fn = p->fn;
  a.bufs = bufs;
  a.vars = vars;
  int64_t n = p->info.par_sym ? tgc_sym_eval(p->info.par_sym, vars) : p->info.par_n;
  tgc_pool_run(c->pool, run_chunk, &a, n, p->info.par_min_chunk);
  return TGC_OK;
}

static tgc_status cpu_sync(tgc_device *d) {
  (void)d;
  return TGC_OK;
}

static double cpu_timer(tgc_device *d) {
  (void)d;
  return tgc_now();
}

static void cpu_destroy(tgc_device *d) {
  cpu_device *c = (cpu_device *)d;
  tgc_pool_free(c->pool);
  free(c);
}

tgc_device *tgc_cpu_new(int nthreads) {
  if (nthreads < 1) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    nthreads = n > 0 ? (int)n : 1;
  }
  cpu_device *c = tgc_xcalloc(1, sizeof *c);
  c->base = (tgc_device){
      .name = "cpu",
      .lang = &tgc_lang_c,
      .alloc = cpu_alloc,
      .free = cpu_free,
      .copy_in = cpu_copy,
      .copy_out = cpu_copy,
      .compiler_id = cpu_compiler_id,
      .compile = cpu_compile,
      .load = cpu_load,
      .unload = cpu_unload,
      .launch = cpu_launch,
      .sync = cpu_sync,
      .timer = cpu_timer,
      .destroy = cpu_destroy,
  };
  c->pool = tgc_pool_new(nthreads);
  if (!c->pool) {
    free(c);
    return tgc_fail(TGC_ERR_DEVICE, "cannot start %d CPU threads", nthreads);
  }
  return &c->base;
}
