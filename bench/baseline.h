/* baseline.h - the read-bandwidth baseline the benchmarks compare with:
 * a buffer of the same byte size as the weights, summed by the same number
 * of threads with vector loads.  Header-only (static), for the benchmark
 * programs; include after <pthread.h>, <stdatomic.h>, <sched.h>,
 * <immintrin.h> (x86) and bench.h. */
#ifndef TGC_BENCH_BASELINE_H
#define TGC_BENCH_BASELINE_H

/* ---- the read-bandwidth baseline ---------------------------------------- */

/* The baseline's threads live as long as the program, as tgc's pool does,
 * so the scheduler keeps them on their CPUs; between runs they sleep on a
 * condition variable, so they take no CPU from tgc's repetitions. */
typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint64_t gen;     /* bumped per run, under mu */
  bool stop;
  int nthreads;     /* including the caller, which runs slice 0 */
  const float *buf; /* this run's buffer, nfloats floats */
  size_t nfloats;
  atomic_int ready; /* threads at the start barrier */
  atomic_int done;  /* threads finished */
  double t0;        /* when all threads were ready (caller) */
  float sums[64];
  pthread_t th[64];
} base_pool;

/* Sums floats [lo, hi) as 4 streams (the four quarters of the range, read
 * side by side, as a matvec reads several weight rows at once), with two
 * independent vector accumulators per stream.  Several streams per thread
 * keep more misses in flight than one: without them this loop would read
 * slower than the kernels it is the yardstick for. */
#define STREAMS 4
#if defined(__AVX512F__)
typedef __m512 vacc;
#define VW 16
#define VZERO() _mm512_setzero_ps()
#define VADD_LOAD(a, p) _mm512_add_ps((a), _mm512_loadu_ps(p))
#define VADD(a, b) _mm512_add_ps((a), (b))
static float vsum(vacc a) { return _mm512_reduce_add_ps(a); }
#elif defined(__AVX2__)
typedef __m256 vacc;
#define VW 8
#define VZERO() _mm256_setzero_ps()
#define VADD_LOAD(a, p) _mm256_add_ps((a), _mm256_loadu_ps(p))
#define VADD(a, b) _mm256_add_ps((a), (b))
static float vsum(vacc a) {
  float t[8], s = 0;
  _mm256_storeu_ps(t, a);
  for (int k = 0; k < 8; k++) s += t[k];
  return s;
}
#else
typedef float vacc __attribute__((vector_size(16)));
#define VW 4
#define VZERO() ((vacc){0, 0, 0, 0})
static vacc vload(const float *p) {
  vacc v;
  memcpy(&v, p, sizeof v);
  return v;
}
#define VADD_LOAD(a, p) ((a) + vload(p))
#define VADD(a, b) ((a) + (b))
static float vsum(vacc a) { return a[0] + a[1] + a[2] + a[3]; }
#endif

static float sum_slice(const float *p, size_t lo, size_t hi) {
  vacc a[2 * STREAMS];
  for (int k = 0; k < 2 * STREAMS; k++) a[k] = VZERO();
  size_t len = (hi - lo) / STREAMS / (2 * VW) * (2 * VW); /* per stream */
  const float *q = p + lo;
  for (size_t i = 0; i < len; i += 2 * VW)
    for (int s = 0; s < STREAMS; s++) {
      a[2 * s] = VADD_LOAD(a[2 * s], q + (size_t)s * len + i);
      a[2 * s + 1] = VADD_LOAD(a[2 * s + 1], q + (size_t)s * len + i + VW);
    }
  for (int k = 1; k < 2 * STREAMS; k++) a[0] = VADD(a[0], a[k]);
  float sum = vsum(a[0]);
  for (size_t i = lo + STREAMS * len; i < hi; i++) sum += p[i];
  return sum;
}

/* Thread t's share of a run: a start barrier, its slice (whole cache
 * lines), and the finish count. */
static void base_slice(base_pool *bp, int t) {
  int n = bp->nthreads;
  atomic_fetch_add(&bp->ready, 1);
  while (atomic_load(&bp->ready) < n) sched_yield();
  if (t == 0) bp->t0 = bench_now();
  size_t lines = bp->nfloats / 16, per = lines / (size_t)n, extra = lines % (size_t)n;
  size_t ut = (size_t)t, lo = 16 * (ut * per + (ut < extra ? ut : extra));
  size_t hi = t == n - 1 ? bp->nfloats : lo + 16 * (per + (ut < extra));
  bp->sums[t] = sum_slice(bp->buf, lo, hi);
  atomic_fetch_add(&bp->done, 1);
}

typedef struct {
  base_pool *bp;
  int index;
} base_arg;

static void *base_worker(void *argp) {
  base_arg *arg = argp;
  base_pool *bp = arg->bp;
  uint64_t seen = 0;
  for (;;) {
    pthread_mutex_lock(&bp->mu);
    while (bp->gen == seen && !bp->stop) pthread_cond_wait(&bp->cv, &bp->mu);
    seen = bp->gen;
    bool stop = bp->stop;
    pthread_mutex_unlock(&bp->mu);
    if (stop) break;
    base_slice(bp, arg->index);
  }
  free(arg);
  return NULL;
}

static base_pool *base_pool_new(int nthreads) {
  base_pool *bp = calloc(1, sizeof *bp);
  if (!bp) exit(1);
  pthread_mutex_init(&bp->mu, NULL);
  pthread_cond_init(&bp->cv, NULL);
  bp->nthreads = nthreads;
  for (int t = 1; t < nthreads; t++) {
    base_arg *a = malloc(sizeof *a);
    if (!a) exit(1);
    *a = (base_arg){bp, t};
    if (pthread_create(&bp->th[t], NULL, base_worker, a) != 0) {
      fprintf(stderr, "bench: pthread_create failed\n");
      exit(1);
    }
  }
  return bp;
}

static void base_pool_free(base_pool *bp) {
  pthread_mutex_lock(&bp->mu);
  bp->stop = true;
  pthread_cond_broadcast(&bp->cv);
  pthread_mutex_unlock(&bp->mu);
  for (int t = 1; t < bp->nthreads; t++) pthread_join(bp->th[t], NULL);
  pthread_cond_destroy(&bp->cv);
  pthread_mutex_destroy(&bp->mu);
  free(bp);
}

static volatile float base_sink;

/* Seconds for one read of buf (nfloats floats) by all the pool's threads,
 * from the start barrier to the last thread's finish. */
static double baseline_once(base_pool *bp, const float *buf, size_t nfloats) {
  pthread_mutex_lock(&bp->mu);
  bp->buf = buf;
  bp->nfloats = nfloats;
  atomic_store(&bp->ready, 0);
  atomic_store(&bp->done, 0);
  bp->gen++;
  pthread_cond_broadcast(&bp->cv);
  pthread_mutex_unlock(&bp->mu);
  base_slice(bp, 0);
  while (atomic_load(&bp->done) < bp->nthreads) sched_yield();
  double t1 = bench_now();
  float s = 0;
  for (int t = 0; t < bp->nthreads; t++) s += bp->sums[t];
  base_sink = s;
  return t1 - bp->t0;
}

#endif
