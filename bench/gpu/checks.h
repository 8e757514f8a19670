/* checks.h - gpu_check's op checks against f64 references
 * (bench/gpu/checks.c), and the host helpers bench/gpu_check.c's matvec
 * table shares with them: the host memory pool, seeded values, dtype
 * storage and the comparison of a tensor with its reference.
 */
#ifndef TGC_BENCH_GPU_CHECKS_H
#define TGC_BENCH_GPU_CHECKS_H

#include "tgc_internal.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
/* The (ndim, shape) pair tgc takes: SH(33, 65) -> 2, (const int64_t[]){33, 65}. */
#define SH(...) \
  (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}

/* A value passes when |got - want| <= atol + rtol*|want| + mtol*mag, where
 * mag is the sum of the magnitudes of the terms behind want (reductions and
 * dot products, whose rounding error scales with it rather than with
 * |want|).  All zero: exact (NaN matches NaN). */
typedef struct tol {
  double rtol, atol, mtol;
} tol;

/* The checks' counts; each check prints its own PASS or FAIL line. */
typedef struct suite {
  tgc_ctx *ctx;
  const char *tag; /* appended to each check's name */
  int pass, fail;
} suite;

/* Host memory: zeroed blocks owned by one pool until hfree frees them all
 * (run_checks calls it after each check). */
void *hmem(size_t n);
double *dmem(int64_t n); /* n doubles */
void hfree(void);

/* The next seeded value of a splitmix64 stream whose state is *s. */
uint64_t rng_next(uint64_t *s);

/* store: v into element i of a host buffer of dtype dt (round to nearest
 * even for the half types, C conversion for integers); load: element i as
 * a double. */
void store(tgc_dtype dt, void *buf, int64_t i, double v);
double load(tgc_dtype dt, const void *buf, int64_t i);

/* Dot products and sums: accumulated in f32, rounded once to dt. */
tol tol_dot(tgc_dtype dt);

/* Realizes t, compares its n values with want (mag: NULL, or as on tol),
 * counts the result in s and prints its line; s->tag follows the name. */
void expect(suite *s, const char *name, tgc_tensor *t, int64_t n, const double *want,
            const double *mag, tol tl);

/* Every op check, on s->ctx, one line each. */
void run_checks(suite *s);

#endif
