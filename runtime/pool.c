/* pool.c - the CPU thread pool that runs a kernel's outer axis in chunks.
 *
 * Built for launch latency: a JIT replays ~100 tiny kernels back to back,
 * so waking the workers must cost a few microseconds, not a futex round
 * trip each.  Each worker owns a cache line with a generation counter; the
 * caller publishes the job, bumps the counters of the workers it needs and
 * runs chunk 0 itself.  Workers spin on their counter for ~200 us after a
 * job before sleeping on a condition variable, and the caller spins on a
 * shared countdown the same way.  200 us, not less: a decode step runs
 * stretches of single-chunk kernels (norms, rope, attention at short
 * positions) between matvecs, and a worker asleep when the next matvec
 * starts costs a futex wake of ~50 us on a VM (stories15m: the kernels of
 * a step summed 7.1 ms with 50 us of spin, 3.1 ms with 500).  With more threads than usable CPUs
 * nobody spins: a spinner would hold the CPU the awaited thread needs.
 * Sleeping uses a Dekker-style handshake (announce "sleeping", then
 * re-check; publish, then check "sleeping") with sequentially consistent
 * atomics, so a wakeup is never lost.
 *
 * Only the workers that get a chunk are woken: the job fields are then
 * read only by threads the caller waits for, so rewriting them for the
 * next job cannot race with a straggler.
 */
#include "tgc_internal.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <unistd.h>

#define SPIN_SECONDS 200e-6
#define CACHE_LINE 64

typedef struct worker {
  alignas(CACHE_LINE) atomic_uint_fast64_t gen; /* bumped by the caller per job */
  atomic_int sleeping;                          /* 1 while blocked on cv */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  struct tgc_pool *pool;
  int index; /* 1 .. nthreads-1: the chunk this worker runs */
} worker;

struct tgc_pool {
  /* The current job: written by the caller before it bumps generations. */
  alignas(CACHE_LINE) tgc_pool_fn fn;
  void *arg;
  int64_t n;
  int nchunks;
  int nthreads; /* including the caller */
  double spin_seconds; /* 0 when threads outnumber CPUs: spinning would steal them */
  atomic_bool stop;
  atomic_bool busy; /* catches reentrant or concurrent tgc_pool_run */
  worker *workers;  /* nthreads-1 of them */

  alignas(CACHE_LINE) atomic_int pending; /* worker chunks not yet finished */
  atomic_int caller_sleeping;
  pthread_mutex_t done_mu;
  pthread_cond_t done_cv;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Spins until *a differs from old, for up to `seconds`; returns the last
 * value seen (== old if the time ran out).  Yields now and then so that a
 * busy machine still makes progress. */
static uint64_t spin_while_equal(atomic_uint_fast64_t *a, uint64_t old, double seconds) {
  double deadline = 0;
  for (unsigned i = 1;; i++) {
    uint64_t v = atomic_load_explicit(a, memory_order_acquire);
    if (v != old || seconds <= 0) return v;
    cpu_relax();
    if (i % 256 == 0) {
      double now = tgc_now();
      if (deadline == 0) deadline = now + seconds;
      else if (now > deadline) return v;
      sched_yield();
    }
  }
}

/* Blocks until the worker's generation moves past seen. */
static uint64_t worker_wait(worker *w, uint64_t seen) {
  uint64_t g = spin_while_equal(&w->gen, seen, w->pool->spin_seconds);
  if (g != seen) return g;
  pthread_mutex_lock(&w->mu);
  atomic_store(&w->sleeping, 1);
  while ((g = atomic_load(&w->gen)) == seen) pthread_cond_wait(&w->cv, &w->mu);
  atomic_store(&w->sleeping, 0);
  pthread_mutex_unlock(&w->mu);
  return g;
}

static void worker_wake(worker *w) {
  atomic_fetch_add(&w->gen, 1);
  if (atomic_load(&w->sleeping)) {
    pthread_mutex_lock(&w->mu);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
  }
}

/* Chunk i of k over [0, n): sizes differ by at most one, so every chunk is
 * at least n/k >= min_chunk long. */
static void run_chunk(tgc_pool *p, int i) {
  int64_t k = p->nchunks, base = p->n / k, rem = p->n % k;
  int64_t start = i * base + (i < rem ? i : rem);
  int64_t end = start + base + (i < rem);
  p->fn(p->arg, start, end);
}

static void chunk_done(tgc_pool *p) {
  if (atomic_fetch_sub(&p->pending, 1) != 1) return;
  if (atomic_load(&p->caller_sleeping)) {
    pthread_mutex_lock(&p->done_mu);
    pthread_cond_signal(&p->done_cv);
    pthread_mutex_unlock(&p->done_mu);
  }
}

static void *worker_main(void *arg) {
  worker *w = arg;
  tgc_pool *p = w->pool;
  uint64_t seen = 0;
  for (;;) {
    seen = worker_wait(w, seen);
    if (atomic_load(&p->stop)) return NULL;
    run_chunk(p, w->index);
    chunk_done(p);
  }
}

static void caller_wait(tgc_pool *p) {
  double deadline = 0;
  for (unsigned i = 1; atomic_load_explicit(&p->pending, memory_order_acquire); i++) {
    if (p->spin_seconds <= 0) break;
    cpu_relax();
    if (i % 256 == 0) {
      double now = tgc_now();
      if (deadline == 0) deadline = now + p->spin_seconds;
      else if (now > deadline) break;
    }
  }
  if (!atomic_load(&p->pending)) return;
  pthread_mutex_lock(&p->done_mu);
  atomic_store(&p->caller_sleeping, 1);
  while (atomic_load(&p->pending)) pthread_cond_wait(&p->done_cv, &p->done_mu);
  atomic_store(&p->caller_sleeping, 0);
  pthread_mutex_unlock(&p->done_mu);
}

/* Starts the worker threads; if the system refuses some, the pool simply
 * has fewer threads.  Workers block all signals, so the host program's
 * handlers keep running on its own threads. */
static void start_workers(tgc_pool *p) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (int i = 1; i < p->nthreads; i++) {
    worker *w = &p->workers[i - 1];
    atomic_init(&w->gen, 0);
    atomic_init(&w->sleeping, 0);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->pool = p;
    w->index = i;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
      pthread_cond_destroy(&w->cv);
      pthread_mutex_destroy(&w->mu);
      p->nthreads = i;
      break;
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void *aligned_zalloc(size_t n) {
  n = (n + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
  void *q = aligned_alloc(CACHE_LINE, n);
  if (!q) {
    fprintf(stderr, "tgc: out of memory (allocating %zu bytes)\n", n);
    abort();
  }
  return memset(q, 0, n);
}

/* CPUs this process may run on (taskset and cgroups cpusets included). */
static int usable_cpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

tgc_pool *tgc_pool_new(int nthreads) {
  if (nthreads < 1) nthreads = 1;
  tgc_pool *p = aligned_zalloc(sizeof *p);
  p->nthreads = nthreads;
  p->spin_seconds = nthreads <= usable_cpus() ? SPIN_SECONDS : 0;
  atomic_init(&p->stop, false);
  atomic_init(&p->busy, false);
  atomic_init(&p->pending, 0);
  atomic_init(&p->caller_sleeping, 0);
  pthread_mutex_init(&p->done_mu, NULL);
  pthread_cond_init(&p->done_cv, NULL);
  p->workers = aligned_zalloc((size_t)(nthreads > 1 ? nthreads - 1 : 1) * sizeof(worker));
  start_workers(p);
  return p;
}

void tgc_pool_free(tgc_pool *p) {
  if (!p) return;
  atomic_store(&p->stop, true);
  for (int i = 1; i < p->nthreads; i++) worker_wake(&p->workers[i - 1]);
  for (int i = 1; i < p->nthreads; i++) {
    worker *w = &p->workers[i - 1];
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
  }
  pthread_cond_destroy(&p->done_cv);
  pthread_mutex_destroy(&p->done_mu);
  free(p->workers);
  free(p);
}

int tgc_pool_size(const tgc_pool *p) { return p ? p->nthreads : 0; }

void tgc_pool_run(tgc_pool *p, tgc_pool_fn fn, void *arg, int64_t n, int64_t min_chunk) {
  if (n <= 0) return;
  if (min_chunk < 1) min_chunk = 1;
  int64_t k = n / min_chunk;
  if (k > tgc_pool_size(p)) k = tgc_pool_size(p);
  if (k <= 1) { /* too small to share (or no pool): no synchronisation at all */
    fn(arg, 0, n);
    return;
  }
  TGC_ASSERT(!atomic_exchange(&p->busy, true));
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->nchunks = (int)k;
  atomic_store(&p->pending, (int)k - 1);
  for (int i = 1; i < k; i++) worker_wake(&p->workers[i - 1]);
  run_chunk(p, 0);
  caller_wait(p);
  atomic_store(&p->busy, false);
}
