/* tgc.h - the public interface of tgc, a lazy tensor compiler and runtime.
 *
 * A program records tensor operations; nothing is computed until a result
 * is needed (tgc_realize, tgc_to_host).  Then tgc fuses the recorded graph
 * into kernels, renders them as C, compiles them with the system compiler,
 * caches the binaries on disk and runs them on a thread pool.
 *
 * Ownership: a tgc_ctx owns everything made from it.  Tensors are nodes of
 * the context's graph; they are never freed one by one and stay valid until
 * tgc_ctx_free.  Device memory behind realized tensors is reference-counted
 * by the context.
 *
 * Errors: functions that build tensors return NULL on failure and leave a
 * message for tgc_last_error(); passing NULL as a tensor argument returns
 * NULL without a new message, so a chain of calls can be checked once at
 * the end.  Functions that run something return a tgc_status.
 *
 * Devices: the CPU always; CUDA and OpenCL when their libraries can be
 * loaded (dlopen), chosen by TGC_DEVICE.
 *
 * Threads: a context must be used by one thread at a time.  tgc_last_error
 * is per thread.  Different contexts may be used from different threads.
 */
#ifndef TGC_H
#define TGC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TGC_MAX_DIMS 8

/* Outcome of an operation.  TGC_OK is zero. */
typedef enum tgc_status {
  TGC_OK = 0,
  TGC_ERR_ARG,         /* a NULL or out-of-range argument */
  TGC_ERR_SHAPE,       /* shapes that do not fit together */
  TGC_ERR_DTYPE,       /* a dtype the operation does not take */
  TGC_ERR_NOMEM,       /* host or device memory exhausted */
  TGC_ERR_IO,          /* a file could not be read or written */
  TGC_ERR_COMPILE,     /* the kernel compiler failed (its log is in the message) */
  TGC_ERR_DEVICE,      /* the device or its driver failed */
  TGC_ERR_UNSUPPORTED, /* valid, but not implemented on this device */
} tgc_status;

/* Element types, expanded from tgc_dtypes.def: TGC_BOOL, TGC_I8, ... TGC_F64. */
typedef enum tgc_dtype {
#define X(NAME, name, bytes, ctype, cudatype, isfloat, issigned) TGC_##NAME,
#include "tgc_dtypes.def"
#undef X
  TGC_NUM_DTYPES
} tgc_dtype;

typedef struct tgc_ctx tgc_ctx;
typedef struct tgc_uop tgc_tensor;

/* ---- status and errors ---------------------------------------------- */

/* Name of a status ("TGC_ERR_SHAPE"); never NULL. */
const char *tgc_status_str(tgc_status s);
/* The message of the last failure on this thread ("" if none).  The
 * pointer stays valid until the next tgc call on this thread. */
const char *tgc_last_error(void);
/* The status of the last failure on this thread (TGC_OK if none). */
tgc_status tgc_last_status(void);
/* Forgets the last failure on this thread. */
void tgc_clear_error(void);

/* ---- dtypes ---------------------------------------------------------- */

const char *tgc_dtype_name(tgc_dtype dt); /* "f32"; "?" if out of range */
size_t tgc_dtype_size(tgc_dtype dt);      /* bytes per element; 0 if out of range */
bool tgc_dtype_is_float(tgc_dtype dt);

/* ---- context ----------------------------------------------------------
 * tgc_ctx_new reads the environment (docs/environment.md): TGC_DEVICE
 * (auto, cpu, cuda, opencl), TGC_THREADS, TGC_CC, TGC_CACHE, TGC_CACHE_DIR,
 * TGC_DUMP, TGC_DEBUG, TGC_NOOPT, TGC_XCHECK.  Returns NULL on failure
 * (the device cannot be opened: the message says why; no memory).
 * tgc_ctx_free frees the graph, every buffer and the compiled kernels;
 * NULL does nothing. */
tgc_ctx *tgc_ctx_new(void);
void tgc_ctx_free(tgc_ctx *ctx);
/* Name of the context's device ("cpu", "cuda", "opencl"). */
const char *tgc_ctx_device(const tgc_ctx *ctx);

/* A backend and whether this machine can use it. */
typedef struct tgc_device_info {
  const char *name; /* "cpu", "cuda", "opencl" */
  bool usable;
  char why[256];    /* why not, when not usable ("libcuda.so.1 not found ...") */
} tgc_device_info;
/* Probes every backend; fills up to cap entries and returns the number of
 * backends.  Slow (it opens each device); not for hot paths. */
int tgc_devices(tgc_device_info *out, int cap);

/* Counters since tgc_ctx_new (or tgc_stats_reset), for tests and tools. */
typedef struct tgc_stats {
  uint64_t nodes_created;    /* graph nodes made (hash-cons hits excluded) */
  uint64_t schedules;        /* scheduler runs */
  uint64_t kernels_scheduled;/* kernels in those schedules */
  uint64_t cache_lookups;    /* program cache lookups */
  uint64_t cache_mem_hits;   /* ... found in memory */
  uint64_t cache_disk_hits;  /* ... found on disk */
  uint64_t compiles;         /* kernels compiled */
  uint64_t compiler_runs;    /* compiler processes started */
  uint64_t launches;         /* kernel launches */
  uint64_t buffers_allocated;/* device buffers allocated */
  uint64_t bytes_allocated;  /* bytes in those buffers */
  uint64_t bytes_in_use;     /* bytes of buffers alive now */
  uint64_t peak_bytes;       /* most bytes alive at once */
  double compile_seconds;    /* wall time spent compiling */
  uint64_t xchecks;          /* NVRTC cross-compiles (TGC_XCHECK=cuda) */
  uint64_t replays;          /* JIT replays */
  uint64_t graph_replays;    /* ... of them launched as one device graph (CUDA graphs) */
  uint64_t replay_buffers;   /* intermediate buffers of the last JIT record, after planning */
  uint64_t replay_bytes;     /* their bytes */
} tgc_stats;
void tgc_get_stats(const tgc_ctx *ctx, tgc_stats *out);
void tgc_stats_reset(tgc_ctx *ctx);

/* ---- tensor facts ---------------------------------------------------- */

int tgc_ndim(const tgc_tensor *t);               /* -1 for NULL */
const int64_t *tgc_shape(const tgc_tensor *t);   /* ndim entries; NULL for NULL */
int64_t tgc_numel(const tgc_tensor *t);          /* -1 for NULL */
tgc_dtype tgc_dtype_of(const tgc_tensor *t);     /* TGC_NUM_DTYPES for NULL */
tgc_ctx *tgc_ctx_of(const tgc_tensor *t);
bool tgc_is_realized(const tgc_tensor *t);

/* ---- creation ----------------------------------------------------------
 * Shapes have 0..TGC_MAX_DIMS dimensions, each >= 1.  `data` is copied;
 * it holds numel elements of dt, packed and in row-major order. */
tgc_tensor *tgc_from_data(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape,
                          const void *data);
/* A realized tensor with unspecified contents (for tgc_assign targets). */
tgc_tensor *tgc_empty(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape);
/* A lazy constant: no memory until it is realized, and it fuses. */
tgc_tensor *tgc_full(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape, double value);
tgc_tensor *tgc_zeros(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape);
tgc_tensor *tgc_ones(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape);
/* A 0-d constant; binary ops broadcast it. */
tgc_tensor *tgc_scalar(tgc_ctx *ctx, tgc_dtype dt, double value);
/* [start, start+step, ...) below stop (above it for negative step). */
tgc_tensor *tgc_arange(tgc_ctx *ctx, tgc_dtype dt, double start, double stop, double step);
/* Uniform in [0, 1) and standard normal, from a seed: the same seed gives
 * the same values on every machine. Float dtypes only. */
tgc_tensor *tgc_rand(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape, uint64_t seed);
tgc_tensor *tgc_randn(tgc_ctx *ctx, tgc_dtype dt, int ndim, const int64_t *shape, uint64_t seed);

/* ---- elementwise ------------------------------------------------------
 * Binary ops take equal dtypes and broadcast shapes by numpy's rules.
 * Comparisons return TGC_BOOL.  Integer division and modulo truncate toward
 * zero as in C; division by zero gives 0.  Shift counts are taken modulo
 * the bit width. */
tgc_tensor *tgc_add(tgc_tensor *a, tgc_tensor *b);
tgc_tensor *tgc_sub(tgc_tensor *a, tgc_tensor *b);
tgc_tensor *tgc_mul(tgc_tensor *a, tgc_tensor *b);
tgc_tensor *tgc_div(tgc_tensor *a, tgc_tensor *b);   /* floats: true division; ints: idiv */
tgc_tensor *tgc_idiv(tgc_tensor *a, tgc_tensor *b);  /* integers only */
tgc_tensor *tgc_mod(tgc_tensor *a, tgc_tensor *b);   /* integers only */
tgc_tensor *tgc_pow(tgc_tensor *a, tgc_tensor *b);   /* floats only */
tgc_tensor *tgc_maximum(tgc_tensor *a, tgc_tensor *b);
tgc_tensor *tgc_minimum(tgc_tensor *a, tgc_tensor *b);
tgc_tensor *tgc_and(tgc_tensor *a, tgc_tensor *b);   /* integers and bool */
tgc_tensor *tgc_or(tgc_tensor *a, tgc_tensor *b);
tgc_tensor *tgc_xor(tgc_tensor *a, tgc_tensor *b);
tgc_tensor *tgc_shl(tgc_tensor *a, tgc_tensor *b);   /* integers only */
tgc_tensor *tgc_shr(tgc_tensor *a, tgc_tensor *b);   /* arithmetic for signed types */
tgc_tensor *tgc_lt(tgc_tensor *a, tgc_tensor *b);
tgc_tensor *tgc_le(tgc_tensor *a, tgc_tensor *b);
tgc_tensor *tgc_gt(tgc_tensor *a, tgc_tensor *b);
tgc_tensor *tgc_ge(tgc_tensor *a, tgc_tensor *b);
tgc_tensor *tgc_eq(tgc_tensor *a, tgc_tensor *b);
tgc_tensor *tgc_ne(tgc_tensor *a, tgc_tensor *b);
/* cond ? a : b; cond is TGC_BOOL; all three broadcast together. */
tgc_tensor *tgc_where(tgc_tensor *cond, tgc_tensor *a, tgc_tensor *b);

/* Unary math: floats only, except neg, relu and the casts. */
tgc_tensor *tgc_neg(tgc_tensor *x);
tgc_tensor *tgc_exp(tgc_tensor *x);
tgc_tensor *tgc_exp2(tgc_tensor *x);
tgc_tensor *tgc_log(tgc_tensor *x);
tgc_tensor *tgc_log2(tgc_tensor *x);
tgc_tensor *tgc_sqrt(tgc_tensor *x);
tgc_tensor *tgc_rsqrt(tgc_tensor *x);
tgc_tensor *tgc_reciprocal(tgc_tensor *x);
tgc_tensor *tgc_sin(tgc_tensor *x);
tgc_tensor *tgc_cos(tgc_tensor *x);
tgc_tensor *tgc_tanh(tgc_tensor *x);
tgc_tensor *tgc_sigmoid(tgc_tensor *x);
tgc_tensor *tgc_silu(tgc_tensor *x);
tgc_tensor *tgc_relu(tgc_tensor *x);
/* Value conversion (C semantics; to bool means != 0). */
tgc_tensor *tgc_cast(tgc_tensor *x, tgc_dtype dt);
/* Reinterprets the bits; the dtypes must have the same size. */
tgc_tensor *tgc_bitcast(tgc_tensor *x, tgc_dtype dt);

/* ---- reductions -------------------------------------------------------
 * axes: naxes entries, negative counts from the end; naxes == 0 reduces
 * every axis.  Integer sums accumulate (and wrap) in their own type; the
 * sum of a bool tensor counts its true values, as i32. */
tgc_tensor *tgc_sum(tgc_tensor *x, int naxes, const int *axes, bool keepdim);
tgc_tensor *tgc_max(tgc_tensor *x, int naxes, const int *axes, bool keepdim);
tgc_tensor *tgc_mean(tgc_tensor *x, int naxes, const int *axes, bool keepdim); /* floats */

/* ---- movement: views, never copies --------------------------------- */
/* One entry may be -1 (inferred). */
tgc_tensor *tgc_reshape(tgc_tensor *x, int ndim, const int64_t *shape);
tgc_tensor *tgc_permute(tgc_tensor *x, const int *perm); /* tgc_ndim(x) entries */
tgc_tensor *tgc_transpose(tgc_tensor *x, int d0, int d1);
/* Size-1 axes grow to the new size; -1 keeps a size.  ndim may add
 * leading axes. */
tgc_tensor *tgc_expand(tgc_tensor *x, int ndim, const int64_t *shape);
/* pads[2*i], pads[2*i+1]: elements before and after axis i (>= 0), filled
 * with zero. */
tgc_tensor *tgc_pad(tgc_tensor *x, const int64_t *pads);
/* ranges[2*i] .. ranges[2*i+1]: the half-open range kept on axis i. */
tgc_tensor *tgc_shrink(tgc_tensor *x, const int64_t *ranges);
/* Python-style slice of one axis: start/stop may be negative. */
tgc_tensor *tgc_slice(tgc_tensor *x, int axis, int64_t start, int64_t stop);
tgc_tensor *tgc_flip(tgc_tensor *x, int naxes, const int *axes);
tgc_tensor *tgc_squeeze(tgc_tensor *x, int axis);   /* axis must have size 1 */
tgc_tensor *tgc_unsqueeze(tgc_tensor *x, int axis); /* axis in [-ndim-1, ndim] */
/* Concatenation along axis; copies into one output when realized. */
tgc_tensor *tgc_cat(int n, tgc_tensor *const *xs, int axis);

/* ---- composites (ops/nn.c) ------------------------------------------ */
/* Batched matmul with broadcasting of the batch axes; 1-d operands are
 * promoted as numpy does.  Never materialises the broadcast operands. */
tgc_tensor *tgc_matmul(tgc_tensor *a, tgc_tensor *b);
tgc_tensor *tgc_softmax(tgc_tensor *x, int axis);
tgc_tensor *tgc_log_softmax(tgc_tensor *x, int axis);
/* x / sqrt(mean(x^2, last axis) + eps); multiply by a weight yourself. */
tgc_tensor *tgc_rmsnorm(tgc_tensor *x, double eps);
/* (x - mean) / sqrt(var + eps) over the last axis. */
tgc_tensor *tgc_layernorm(tgc_tensor *x, double eps);
/* Rotary embedding on adjacent pairs (x[2i], x[2i+1]) of the last axis:
 * x [..., T, D], cos and sin broadcastable to [..., T, D/2]. */
tgc_tensor *tgc_rope(tgc_tensor *x, tgc_tensor *cos, tgc_tensor *sin);
/* cos and sin tables [n, dim/2] for positions start..start+n-1 and
 * frequencies theta^(-2i/dim). */
tgc_status tgc_rope_tables(tgc_ctx *ctx, int64_t start, int64_t n, int64_t dim, double theta,
                           tgc_tensor **cos, tgc_tensor **sin);
/* table [V, D] gathered by integer ids [...] -> [..., D].  Ids outside
 * [0, V) read as zero rows. */
tgc_tensor *tgc_embedding(tgc_tensor *table, tgc_tensor *ids);

/* ---- realization ------------------------------------------------------ */
/* Computes the tensors; after success each is realized (tgc_is_realized).
 * On failure nothing is half-realized. */
tgc_status tgc_realize(tgc_ctx *ctx, int n, tgc_tensor *const *ts);
/* A node that is realized into its own contiguous buffer: a fusion fence. */
tgc_tensor *tgc_contiguous(tgc_tensor *x);
/* Writes value into target, a view (movement ops only) of a realized
 * tensor, when realized.  Returns the whole realized tensor as it is after
 * the write: read the updated contents through the returned tensor. */
tgc_tensor *tgc_assign(tgc_tensor *target, tgc_tensor *value);
/* Waits until everything launched on the context's device has finished
 * (kernels run asynchronously on GPUs).  For timing. */
tgc_status tgc_sync(tgc_ctx *ctx);
/* Realizes x and copies its elements out, contiguous row-major;
 * nbytes must be numel * dtype size. */
tgc_status tgc_to_host(tgc_tensor *x, void *dst, size_t nbytes);

/* ---- variables ------------------------------------------------------------
 * A variable (start_pos) is a value bound per call, read by kernels as an
 * argument: kernels that use it are compiled once for every value.  At
 * most 4 per context; owned by the context. */
typedef struct tgc_var tgc_var;
/* NULL (with an error) for a bad name, min > max, or too many variables. */
tgc_var *tgc_var_new(tgc_ctx *ctx, const char *name, int64_t min, int64_t max);
/* TGC_ERR_ARG if value is outside [min, max].  Results that depend on the
 * variable are recomputed when realized after a new binding. */
tgc_status tgc_var_bind(tgc_var *v, int64_t value);
/* A window of x along axis that moves with v: [v + start, v + start + len).
 * Every value in [min, max] must keep the window inside the axis. */
tgc_tensor *tgc_shrink_var(tgc_tensor *x, int axis, tgc_var *v, int64_t start, int64_t len);

/* ---- symbolic sizes ---------------------------------------------------------
 * A size may be an affine expression of variables, such as start_pos + 1.
 * It is an int64_t that tgc recognises (never a value >= 0, nor -1), so it
 * goes wherever a size does: tgc_shrink ranges (a length of start_pos + 1,
 * or a window starting at start_pos), tgc_pad amounts, tgc_expand and
 * tgc_full shapes, tgc_reshape (a symbolic size stays an axis of its own).
 * Elementwise ops, reductions and matmul work over such axes; the kernels
 * loop to the variables' current values, read as kernel arguments, so each
 * is compiled once for every binding.  A symbolic size must be >= 1 (and a
 * shrink stay inside its axis) for every value in the variables' ranges;
 * the op says so otherwise.  A realized tensor of symbolic shape occupies
 * memory at the size's largest value.  tgc_shape returns the encoded sizes;
 * tgc_numel and tgc_to_host use the current bindings.  Buffers
 * (tgc_empty, tgc_from_data) have concrete shapes. */
/* mul * v + add; -1 (with an error) for a NULL v or when it cannot be
 * represented (|mul| <= 7, |add| < 2^35). */
int64_t tgc_var_dim(tgc_var *v, int64_t mul, int64_t add);
/* a + b, either symbolic or not (start_pos + n_new); -1 with an error when
 * a coefficient would leave -8..7. */
int64_t tgc_dim_add(int64_t a, int64_t b);
bool tgc_dim_is_symbolic(int64_t d);
/* The size under the current bindings; -1 with an error if a variable it
 * uses is not bound. */
int64_t tgc_dim_value(tgc_ctx *ctx, int64_t d);
/* The size's value as a scalar tensor of dtype dt (positions, means). */
tgc_tensor *tgc_dim_tensor(tgc_ctx *ctx, int64_t d, tgc_dtype dt);

/* ---- the JIT -------------------------------------------------------------
 * A JIT wraps a step function that builds a graph from its inputs and
 * realizes its outputs (a LLaMA decode step).  Call 1 runs the step
 * normally (scheduling, compiling); call 2 runs it again and records every
 * kernel launch; calls 3 and later replay the record with the new inputs'
 * memory: nothing is built, scheduled, hashed or compiled.  On CUDA the
 * record is a CUDA graph whose node parameters are updated per replay.
 *
 * What replay reuses, and so what a step must not depend on:
 * - the inputs' shapes and dtypes (a call with others is an error);
 * - every value the step read on the host while it was recorded (a
 *   tgc_to_host inside the step, or a C variable used to build the graph):
 *   such values are baked into the record, as in every tracing JIT;
 * - the outputs: each replay writes the same output buffers, returned as
 *   the same tensors; copy them out before the next call if needed.
 * TGC_JIT=0 runs every call normally; 1 records and replays (CUDA graphs
 * on CUDA); 2 records and replays without CUDA graphs.
 *
 * The step returns TGC_OK and fills outs[0..*nout) (at most
 * TGC_JIT_MAX_IO) with realized tensors. */
#define TGC_JIT_MAX_IO 16
typedef tgc_status (*tgc_step_fn)(tgc_ctx *ctx, void *user, int nin, tgc_tensor *const *ins,
                                  int *nout, tgc_tensor **outs);
typedef struct tgc_jit tgc_jit;
/* NULL (with an error) for a NULL ctx or fn. */
tgc_jit *tgc_jit_new(tgc_ctx *ctx, tgc_step_fn fn, void *user);
/* Runs the step on realized inputs; *nout and outs receive its outputs,
 * valid until the next call.  Errors: inputs that differ in shape or dtype
 * from the recorded ones, a step that realizes nothing, a call from inside
 * a step, and whatever the step itself returns. */
tgc_status tgc_jit_call(tgc_jit *jit, int nin, tgc_tensor *const *ins, int *nout, tgc_tensor **outs);
/* Number of completed calls; replays are the calls after the second. */
int tgc_jit_calls(const tgc_jit *jit);
/* Frees the record and its planned memory; call it before tgc_ctx_free of
 * the JIT's context.  NULL does nothing. */
void tgc_jit_free(tgc_jit *jit);

#ifdef __cplusplus
}
#endif
#endif
