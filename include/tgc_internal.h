/* tgc_internal.h - the one internal header, and the map of the code.
 *
 * Each section below is owned by the stage named in its heading; read top
 * to bottom it follows the pipeline: util -> ops (graph) -> compiler
 * (views, schedule, opt, lower, render) -> runtime (device, cache,
 * compiler driver, thread pool, realize).  Not installed.
 */
#ifndef TGC_INTERNAL_H
#define TGC_INTERNAL_H

#define _GNU_SOURCE 1
#include "tgc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================
 * util (ops/util.c): errors, arena, hashing, growable arrays
 * ==================================================================== */

/* Internal invariant; a failure is a bug in tgc, not in the caller. */
#define TGC_ASSERT(c)                                                                  \
  do {                                                                                 \
    if (!(c)) tgc_assert_fail(__FILE__, __LINE__, #c);                                 \
  } while (0)
_Noreturn void tgc_assert_fail(const char *file, int line, const char *cond);

/* Records a failure for tgc_last_error() and returns s (printf-style). */
tgc_status tgc_set_error(tgc_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Like tgc_set_error, for constructors: returns NULL. */
void *tgc_fail(tgc_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For composites: names the op the caller called in front of the message
 * an inner op left ("softmax: max: axis 3 out of range..."); returns NULL. */
void *tgc_fail_in(const char *fn);
/* Prints a warning on stderr once per distinct message text. */
void tgc_warn_once(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Aborting allocators for internal bookkeeping (never for tensor data). */
void *tgc_xmalloc(size_t n);
void *tgc_xcalloc(size_t n, size_t size);
void *tgc_xrealloc(void *p, size_t n);
char *tgc_xstrdup(const char *s);

/* Bump arena: everything allocated is freed at once by tgc_arena_free. */
typedef struct tgc_arena tgc_arena;
tgc_arena *tgc_arena_new(void);
void tgc_arena_free(tgc_arena *a);
void *tgc_arena_alloc(tgc_arena *a, size_t n); /* zeroed, 16-byte aligned */
void *tgc_arena_dup(tgc_arena *a, const void *p, size_t n);

/* 128-bit keys (XXH3-128) for the program cache. */
typedef struct tgc_key {
  uint64_t lo, hi;
} tgc_key;
uint64_t tgc_hash64(const void *p, size_t n, uint64_t seed);
tgc_key tgc_key_of(const void *p, size_t n);
/* Streaming key over several pieces: init, feed pieces, finish. */
typedef struct tgc_hasher tgc_hasher;
tgc_hasher *tgc_hasher_new(void);
void tgc_hasher_feed(tgc_hasher *h, const void *p, size_t n);
void tgc_hasher_feed_str(tgc_hasher *h, const char *s); /* includes the NUL */
tgc_key tgc_hasher_finish(tgc_hasher *h); /* frees h */
void tgc_key_hex(tgc_key k, char out[33]);

/* Growable string. */
typedef struct tgc_str {
  char *s;
  size_t len, cap;
} tgc_str;
void tgc_str_cat(tgc_str *b, const char *s);
void tgc_str_fmt(tgc_str *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tgc_str_free(tgc_str *b);

/* Environment helpers: integer value of a variable, or dflt when unset or
 * not a number. */
long tgc_env_int(const char *name, long dflt);
const char *tgc_env_str(const char *name, const char *dflt);
double tgc_now(void); /* monotonic seconds */
/* write(2) until all n bytes are written (EINTR retried); false on error. */
bool tgc_write_all(int fd, const void *buf, size_t n);
/* SplitMix64: the next value of the seeded stream *s (tgc_rand, presets,
 * sampling). */
uint64_t tgc_splitmix64(uint64_t *s);
/* Half-precision conversions, rounding to nearest even; NaN stays NaN. */
uint16_t tgc_f32_to_f16(float f);
float tgc_f16_to_f32(uint16_t h);
uint16_t tgc_f32_to_bf16(float f);
float tgc_bf16_to_f32(uint16_t h);

/* ======================================================================
 * ops (ops/graph.c, ops/tensor.c, ops/nn.c): the lazy graph
 * ==================================================================== */

enum { F_COMM = 1, F_ASSOC = 2, F_ZERO = 4, F_VEC = 8 };

typedef enum tgc_op {
#define X(NAME, group, arity, flags) TGC_OP_##NAME,
#include "../ops/ops.def"
#undef X
  TGC_NUM_OPS
} tgc_op;

typedef enum tgc_op_group {
  GROUP_BUF,     /* buffers and constants */
  GROUP_UNARY,   /* elementwise, one source */
  GROUP_BINARY,  /* elementwise, two sources */
  GROUP_TERNARY, /* elementwise, three sources */
  GROUP_REDUCE,  /* reductions over axes */
  GROUP_MOVE,    /* views */
  GROUP_SPECIAL, /* forces a kernel boundary */
  GROUP_KERNEL,  /* kernel AST */
  GROUP_LINEAR,  /* linear kernel IR */
} tgc_op_group;

typedef struct tgc_op_info {
  const char *name;
  tgc_op_group group;
  int arity;
  int flags;
} tgc_op_info;
extern const tgc_op_info tgc_ops[TGC_NUM_OPS];

typedef struct tgc_dtype_info {
  const char *name, *c_type, *cuda_type;
  int bytes, is_float, is_signed;
} tgc_dtype_info;
extern const tgc_dtype_info tgc_dtypes[TGC_NUM_DTYPES];
#define IS_ALU(op) (tgc_ops[op].group >= GROUP_UNARY && tgc_ops[op].group <= GROUP_TERNARY)
#define IS_MOVE(op) (tgc_ops[op].group == GROUP_MOVE)
#define IS_REDUCE(op) (tgc_ops[op].group == GROUP_REDUCE)

/* A scalar constant, kept exactly for both integer and float dtypes.  A
 * CONST node whose arg is a tgc_symconst holds the value of a symbolic
 * size instead (tgc_dim_tensor), read from the variables in the kernel. */
typedef struct tgc_cval {
  double f;
  int64_t i;
} tgc_cval;
typedef struct tgc_symconst {
  tgc_cval c; /* zero */
  int64_t sym;
} tgc_symconst;
tgc_cval tgc_scalar_of(tgc_dtype dt, double v);

/* Device memory; reference-counted, freed when the count drops to zero. */
typedef struct tgc_buffer {
  struct tgc_device *dev;
  void *ptr;    /* device pointer */
  size_t bytes; /* allocation size */
  tgc_dtype dtype;
  int refs;
  tgc_ctx *ctx;
} tgc_buffer;
tgc_buffer *tgc_buffer_new(tgc_ctx *ctx, tgc_dtype dt, size_t numel); /* NULL + error on OOM */
tgc_buffer *tgc_buffer_ref(tgc_buffer *b);
void tgc_buffer_unref(tgc_buffer *b); /* NULL ok */

/* A graph node.  Nodes are hash-consed: (op, dtype, sources, arg) is made
 * once per context, so equal expressions are the same pointer. */
struct tgc_uop {
  uint16_t op;          /* tgc_op */
  uint8_t dtype;        /* tgc_dtype of the result (elements for kernel ops) */
  uint8_t nsrc;
  int8_t ndim;          /* derived shape; 0 for kernel and linear ops */
  bool vardep;          /* its value depends on a variable's binding */
  uint32_t epoch;       /* ctx->var_epoch when it was realized (vardep nodes) */
  uint32_t id;          /* creation order, unique in the context */
  uint64_t hash;
  const int64_t *shape; /* ndim entries, in the arena */
  struct tgc_uop **src; /* nsrc entries, in the arena */
  const void *arg;      /* arglen bytes, in the arena; compared by content */
  uint32_t arglen;
  tgc_ctx *ctx;
  tgc_buffer *buf;      /* set when realized: the node's contiguous value */
  struct tgc_uop *next; /* hash bucket chain */
};
typedef struct tgc_uop tgc_uop;

/* SHRINKV's arg: axis `axis` keeps [var + start, var + start + len). */
typedef struct tgc_shrinkv {
  int axis, var;
  int64_t start, len;
} tgc_shrinkv;

/* Makes (or finds) a node; shape is copied.  Never fails (arena memory). */
tgc_uop *tgc_uop_new(tgc_ctx *ctx, tgc_op op, tgc_dtype dt, int nsrc, tgc_uop *const *src,
                     const void *arg, size_t arglen, int ndim, const int64_t *shape);
/* A fresh, unique BUFFER node over b (takes a reference). */
tgc_uop *tgc_uop_buffer(tgc_ctx *ctx, tgc_buffer *b, int ndim, const int64_t *shape);
/* The node's value as a buffer, or NULL if not realized (BUFFER nodes,
 * realized nodes, and ASSIGN nodes after their kernel ran). */
tgc_buffer *tgc_uop_realized(const tgc_uop *u);
/* Realized, and for the variables' current bindings. */
bool tgc_uop_current(const tgc_uop *u);
int64_t tgc_shape_numel(int ndim, const int64_t *shape);
/* "[2,3]" into buf; returns buf.  Symbolic sizes are named by the
 * context's variables (v0, v1, ... when ctx is NULL). */
char *tgc_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap);
char *tgc_shape_str_in(const tgc_ctx *ctx, int ndim, const int64_t *shape, char *buf, size_t cap);

/* ---- ops/sym.c: symbolic sizes -------------------------------------------
 * sum(c[k] * variable k) + b, encoded in an int64_t (tgc_sym_is) so that it
 * can stand anywhere a size can.  Arithmetic returns false when the result
 * cannot be encoded (coefficients -8..7). */
#define TGC_MAX_VARS 4 /* variables per context (tgc_var_new) */
typedef struct tgc_affine {
  int64_t c[TGC_MAX_VARS];
  int64_t b;
} tgc_affine;
bool tgc_sym_is(int64_t d);
tgc_affine tgc_sym_get(int64_t d);               /* a constant d gives c = 0, b = d */
bool tgc_sym_put(const tgc_affine *a, int64_t *d);
bool tgc_sym_add(int64_t a, int64_t b, int64_t *r);
bool tgc_sym_sub(int64_t a, int64_t b, int64_t *r);
bool tgc_sym_mulc(int64_t a, int64_t k, int64_t *r);
int64_t tgc_sym_eval(int64_t d, const int64_t *vals);
/* Bounds over the variables' [min, max]; ctx NULL treats variables as 0. */
int64_t tgc_sym_max(const tgc_ctx *ctx, int64_t d);
int64_t tgc_sym_min(const tgc_ctx *ctx, int64_t d);
/* -1, 0, 1 when a <, ==, > b for every binding; 2 when it depends. */
int tgc_sym_cmp(const tgc_ctx *ctx, int64_t a, int64_t b);
char *tgc_sym_str(const tgc_ctx *ctx, int64_t d, char *buf, size_t cap);
bool tgc_shape_symbolic(int ndim, const int64_t *shape);
/* Each size at its largest: the extent a buffer of this shape is laid out in. */
void tgc_shape_max(const tgc_ctx *ctx, int ndim, const int64_t *shape, int64_t *out);
int64_t tgc_shape_numel_max(const tgc_ctx *ctx, int ndim, const int64_t *shape);

/* ======================================================================
 * compiler/view.c: views and view stacks
 * ==================================================================== */

/* A view maps an index over `shape` to memory: offset + sum(idx*strides),
 * valid only where mask[i][0] <= idx[i] < mask[i][1] (reads 0 elsewhere). */
typedef struct tgc_view {
  int ndim;
  int64_t shape[TGC_MAX_DIMS + 4];
  int64_t strides[TGC_MAX_DIMS + 4];
  int64_t offset;
  int64_t voff[4];   /* plus voff[k] * (value of variable k): a window that moves */
  bool has_mask;
  int64_t mask[TGC_MAX_DIMS + 4][2];
} tgc_view;
#define TGC_MAX_KDIMS (TGC_MAX_DIMS + 4) /* kernel axes: dims plus splits for opts */

/* A stack of views: views[0] addresses memory, views[n-1] is what the
 * kernel indexes; each view's index space is the previous one's flattened
 * shape. */
#define TGC_MAX_VIEWS 4
typedef struct tgc_st {
  int nviews;
  tgc_view views[TGC_MAX_VIEWS];
} tgc_st;

void tgc_view_contiguous(tgc_view *v, int ndim, const int64_t *shape);
tgc_st tgc_st_contiguous(int ndim, const int64_t *shape); /* concrete shapes */
/* Symbolic sizes laid out at their largest value (the variables' bounds
 * come from ctx; NULL only for concrete shapes). */
tgc_st tgc_st_contiguous_in(const tgc_ctx *ctx, int ndim, const int64_t *shape);
const tgc_view *tgc_st_top(const tgc_st *st);
/* Movement on a view stack; false when it cannot be represented (a reshape
 * needing more than TGC_MAX_VIEWS views, or one that would split or merge
 * a symbolic size; a mask whose clamping depends on a variable's value). */
bool tgc_st_reshape(tgc_st *st, int ndim, const int64_t *shape);
void tgc_st_permute(tgc_st *st, const int *perm);
void tgc_st_expand(tgc_st *st, const int64_t *shape);
bool tgc_st_pad(tgc_st *st, const int64_t *pads);
bool tgc_st_shrink(tgc_st *st, const int64_t *ranges, const tgc_ctx *ctx);
bool tgc_st_flip(tgc_st *st, uint32_t axes, const tgc_ctx *ctx);
/* Applies a graph movement node's op and arg. */
bool tgc_st_apply(tgc_st *st, const tgc_uop *move);
/* True when the top view reads memory in order with no mask. */
bool tgc_st_is_contiguous(const tgc_st *st);
/* Drops masks that cover the whole shape and merges what can be merged. */
void tgc_st_simplify(tgc_st *st);

/* ======================================================================
 * compiler/schedule.c: graph -> kernels
 * ==================================================================== */

/* One kernel: an AST rooted at a STORE into global slot 0, and the buffers
 * bound to its global slots. */
typedef struct tgc_kernel {
  tgc_uop *ast;          /* STORE(DEFINE_GLOBAL 0, VIEW, value) */
  int nbufs;
  tgc_uop **bufnodes;    /* graph node whose buffer fills each slot */
  tgc_uop *out;          /* graph node this kernel realizes */
} tgc_kernel;

typedef struct tgc_schedule {
  int nkernels;
  tgc_kernel *kernels;   /* in execution order */
  int ntargets;
  tgc_uop **targets;
} tgc_schedule;

/* Cuts the graph of the targets into kernels.  Returns NULL with an error
 * set on failure.  The schedule is malloc'd; free with tgc_schedule_free. */
tgc_schedule *tgc_schedule_new(tgc_ctx *ctx, int n, tgc_uop *const *targets);
void tgc_schedule_free(tgc_schedule *s);

struct tgc_lang;

/* ======================================================================
 * compiler/opt.c: kernel shape and optimisations
 * ==================================================================== */

typedef enum tgc_axis_kind {
  AXIS_GLOBAL, /* a loop over outputs, split across threads (axis 0) */
  AXIS_REDUCE, /* a loop inside the accumulation */
  AXIS_UPCAST, /* outputs computed together, unrolled at compile time */
  AXIS_UNROLL, /* reduce iterations unrolled, with their own accumulators */
  AXIS_LOCAL,  /* outputs split across the threads of a block (GPU) */
  AXIS_GROUP,  /* a reduce split across the threads of a block, combined in local memory (GPU) */
} tgc_axis_kind;

typedef enum tgc_opt_kind {
  OPT_UPCAST,   /* global axis: inner part computed together */
  OPT_UNROLL,   /* reduce axis: inner part unrolled */
  OPT_LOCAL,    /* global axis: inner part becomes thread index */
  OPT_GROUP,    /* reduce axis: inner part across threads (interleaved, coalesced) */
  OPT_GROUPTOP, /* reduce axis: outer part across threads (a contiguous chunk each) */
} tgc_opt_kind;
typedef struct tgc_opt {
  tgc_opt_kind kind;
  int axis;   /* axis of the shape when the opt is applied */
  int amount;
} tgc_opt;

/* The kernel as the lowerer sees it: a full shape whose axes each have a
 * kind, and every leaf's view over it. */
typedef struct tgc_kshape {
  int ndim;
  int64_t shape[TGC_MAX_KDIMS];
  tgc_axis_kind kind[TGC_MAX_KDIMS];
  int vec_axis;             /* axis rendered as a vector, -1 for none */
  int prefetch_leaf;        /* CPU: the leaf streamed along the reduce, prefetched ahead; -1 for none */
  int nleaves;
  tgc_uop **leaves;         /* LOAD, CONST, STORE, GATHER_LOAD nodes of the AST */
  tgc_st *sts;              /* each leaf's view stack over the full shape */
  bool *post_reduce;        /* leaf is after the reduce (size 1 on reduce axes) */
  tgc_uop *reduce;          /* the REDUCE node of the AST, or NULL */
  int nopts;
  tgc_opt opts[8];
} tgc_kshape;

/* Builds the kernel shape of an AST: reduce axes last, size-1 axes dropped,
 * mergeable axes merged.  Returns false if the AST cannot be lowered. */
bool tgc_kshape_init(tgc_kshape *ks, tgc_uop *ast);
void tgc_kshape_free(tgc_kshape *ks);
/* Applies one opt; false (and no change) if it does not fit. */
bool tgc_kshape_apply(tgc_kshape *ks, tgc_opt opt);
const char *tgc_opt_name(tgc_opt_kind k); /* "UPCAST" */
/* Picks opts by the heuristic of the language (CPU or GPU). */
void tgc_opt_heuristic(tgc_kshape *ks, const struct tgc_lang *lang);

/* ======================================================================
 * compiler/lower.c: kernel AST + shape -> linear IR
 * ==================================================================== */

typedef struct tgc_lin {
  uint16_t op;      /* tgc_op (ALU or LINEAR or LOAD/STORE/CONST/DEFINE_GLOBAL) */
  uint8_t dtype;    /* scalar dtype of the value */
  uint8_t vec;      /* lanes; 1 for scalars */
  int nsrc;
  int *src;         /* earlier instructions */
  tgc_cval c;     /* CONST value; slot, lane or flags for other ops */
  int64_t vmin, vmax; /* bounds of integer values (index math) */
  bool dead;        /* emitted inside a closed loop: not reusable */
} tgc_lin;

#define TGC_MAX_BUFS 32 /* buffers one kernel may address */

typedef struct tgc_prog_info {
  char name[64];         /* kernel function name, unique per source */
  int nglobals;
  tgc_dtype gdtype[TGC_MAX_BUFS];  /* element dtype per global slot */
  int64_t gnumel[TGC_MAX_BUFS];    /* elements addressed per slot (for the dump) */
  int64_t par_n;         /* size of the parallel axis (1 if none), at its largest */
  int64_t par_sym;       /* the parallel axis's symbolic size (evaluated at launch), or 0 */
  int64_t par_min_chunk; /* smallest share worth a thread */
  double flops, bytes;   /* estimated work per launch */
  char opts[128];        /* "UPCAST(0,4) UNROLL(1,16)" */
  bool may_alias;        /* the output may alias an input (assign) */
  /* GPU launch: blocks (work-groups) and threads per block; the kernel's
   * parameters are the buffers in slot order, then nvars int64 values. */
  int64_t grid[3], block[3];
  /* GPU, with one global axis of symbolic size: that size (the slowest
   * part of the block index) and the blocks per unit of it, so a launch
   * covers the current size only (tgc_prog_blocks); 0 and grid[0] else. */
  int64_t grid_sym, grid_per;
  int nvars;             /* variable arguments passed (vars[0..nvars)) */
  uint32_t var_mask;     /* bit k: the kernel reads variable k (must be bound) */
} tgc_prog_info;

/* GPU blocks (work-groups) of a launch under the bindings vars (NULL: the
 * largest, grid[0]). */
int64_t tgc_prog_blocks(const tgc_prog_info *in, const int64_t *vars);

typedef struct tgc_linprog {
  int n, cap;
  tgc_lin *ins;
  tgc_prog_info info;
} tgc_linprog;

/* Lowers an AST with its (optimised) kernel shape for a language (which
 * decides GPU thread indexing and what may stay a vector).  Free with
 * tgc_linprog_free. */
tgc_linprog *tgc_lower(tgc_uop *ast, const tgc_kshape *ks, const struct tgc_lang *lang);
void tgc_linprog_free(tgc_linprog *p);
/* compiler/kinfo.c: fills p->info's name, CPU split, flops, bytes and
 * opts from the kernel shape and p's instructions (W: vector lanes); the
 * globals' slots and dtypes and the GPU launch are set by tgc_lower. */
void tgc_linprog_describe(tgc_linprog *p, const tgc_kshape *ks, bool gpu, const tgc_ctx *ctx, int W);

/* ======================================================================
 * compiler/render.c: linear IR -> source text, by language tables
 * ==================================================================== */

/* A language: what the one C-style renderer needs to know.  Formats use
 * $0 $1 $2 (sources), $T (result type), $F (math suffix), $B (bit width
 * minus one), $P (buffer), $I (index), $V (vector type), $W (lanes), $L
 * (lane).  A NULL entry falls back to `base` (C), so CUDA and OpenCL
 * tables hold only what differs. */
typedef struct tgc_lang {
  const char *name;            /* "c", "cuda", "opencl" */
  const char *ext;             /* file extension of the source: "c", "cu", "cl" */
  const struct tgc_lang *base; /* where missing entries come from; NULL for C */
  bool gpu;                    /* blocks and threads instead of a loop over axis 0 */
  bool vec_alu;                /* ALU ops apply to vector values */
  int vec_bytes;               /* widest vector access */
  const char *preamble;        /* once per translation unit (include-guarded) */
  void (*signature)(tgc_str *out, const struct tgc_lang *lang, const tgc_linprog *p, const char *name);
  void (*vec_type)(tgc_str *out, tgc_dtype dt, int w, bool unaligned);
  void (*vec_typedefs)(tgc_str *out, const tgc_linprog *p); /* declares the vector types used */
  const char *type_names[TGC_NUM_DTYPES]; /* value types; NULL: the C type */
  const char *ptr_names[TGC_NUM_DTYPES];  /* buffer element types; NULL: the value type */
  const char *special[4];      /* thread range start, end; block index; thread index */
  const char *barrier, *local_decl;    /* local_decl: $T type, $P name, $I count */
  const char *math_suffix;     /* of f32 math functions: "f", or "" where overloaded */
  const char *i64_suffix;
  const char *inf[2], *nan[2]; /* f32, f64 */
  const char *load, *store, *vec_load, *vec_store, *gep, *vectorize_open, *vectorize_close;
  const char *load_half, *store_half, *vec_load_half, *vec_store_half; /* NULL: plain */
  const char *op_fmt[TGC_NUM_OPS];
  const char *idiv_signed, *mod_signed;
  const char *cast, *vec_cast, *cast_to_bool, *cast_to_half, *cast_from_half;
  const char *cast_to_bf16, *cast_from_bf16, *bitcast;
} tgc_lang;
extern const tgc_lang tgc_lang_c, tgc_lang_cuda, tgc_lang_opencl;

/* Renders the program as a complete translation unit. */
char *tgc_render(const tgc_lang *lang, const tgc_linprog *p);

/* ======================================================================
 * runtime/pool.c: the CPU thread pool
 * ==================================================================== */

/* A pool of nthreads workers (the calling thread counts as one of them).
 * Workers spin briefly before sleeping, so back-to-back launches of small
 * kernels cost a few microseconds. */
typedef struct tgc_pool tgc_pool;
typedef void (*tgc_pool_fn)(void *arg, int64_t start, int64_t end);
tgc_pool *tgc_pool_new(int nthreads);
void tgc_pool_free(tgc_pool *p); /* NULL does nothing */
int tgc_pool_size(const tgc_pool *p);
/* Calls fn(arg, start, end) over disjoint chunks covering [0, n), at most
 * one chunk per thread, none smaller than min_chunk (except the last);
 * returns when all are done.  Not reentrant. */
void tgc_pool_run(tgc_pool *p, tgc_pool_fn fn, void *arg, int64_t n, int64_t min_chunk);

/* ======================================================================
 * runtime/cache.c: the on-disk program cache
 * ==================================================================== */

/* The cache directory: $TGC_CACHE_DIR, else $XDG_CACHE_HOME/tgc, else
 * ~/.cache/tgc; NULL when TGC_CACHE=0.  Resolved at each call. */
const char *tgc_cache_dir(char *buf, size_t cap);
/* Reads the entry (kind, key): returns a malloc'd payload and its length,
 * or NULL when missing.  An entry whose header (magic, kind, key, length)
 * does not check out is deleted and reported as missing. */
void *tgc_disk_get(const char *kind, tgc_key key, size_t *len);
/* Writes the entry atomically (temporary file, then rename), creating the
 * directory.  A failure warns once on stderr and returns an error; the
 * caller goes on without the disk cache. */
tgc_status tgc_disk_put(const char *kind, tgc_key key, const void *data, size_t len);

/* ======================================================================
 * runtime/cc.c: the system C compiler as a kernel compiler
 * ==================================================================== */

/* What decides a CPU binary besides the source: compiler path, its
 * --version text, flags and the CPU's features.  Computed once per value
 * of TGC_CC; NULL with an error set if the compiler cannot be run. */
const char *tgc_cc_identity(void);
/* Compiles n C translation units into shared objects, in parallel and
 * batched (several units per compiler process; all the names they
 * export must differ).  On success bins[i] is a malloc'd .so image of a
 * shared object holding unit i (units of one batch share an image, each
 * bins[i] is its own copy) and lens[i] its size.  On failure returns
 * TGC_ERR_COMPILE with the compiler's name and its message, and all
 * bins[i] are NULL. */
tgc_status tgc_cc_compile(int n, const char *const *srcs, void **bins, size_t *lens);
/* How many compiler processes tgc_cc_compile(n, ...) starts. */
int tgc_cc_batches(int n);
/* Loads a .so image (through a memfd, else a temporary file) and returns
 * the dlopen handle, or NULL with an error set. */
void *tgc_so_load(const void *bin, size_t len);
void tgc_so_unload(void *handle);

/* ======================================================================
 * runtime/dl.c: libraries opened with dlopen
 * ==================================================================== */

#include <pthread.h> /* pthread_once_t */

/* A symbol to look up: its name, an older name to fall back on (NULL for
 * none; the _v2 driver entry points are newer than the oldest drivers tgc
 * should run on), and the offset in the table of function pointers where
 * its address goes. */
typedef struct tgc_dl_sym {
  const char *name, *alt;
  size_t off;
} tgc_dl_sym;
/* Fills the table at api with syms[0..n) from the dlopen handle lib;
 * returns the first name found under neither spelling, NULL when all were
 * found (the entries before a missing one are filled). */
const char *tgc_dl_bind(void *lib, void *api, const tgc_dl_sym *syms, size_t n);

/* Outcome of a one-time load: the failure is replayed to every caller. */
typedef struct tgc_dl_lib {
  bool ok;           /* set by the load function when it succeeds */
  tgc_status status; /* of the failure */
  char err[1024];    /* the failure's message */
} tgc_dl_lib;
/* Records the load's failure in st (printf-style); st->ok stays false. */
void tgc_dl_fail(tgc_dl_lib *st, tgc_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Runs load once per process (pthread_once on *once); load fills st.
 * Returns st->ok, setting st's error for the calling thread when false. */
bool tgc_dl_ready(pthread_once_t *once, void (*load)(void), const tgc_dl_lib *st);

/* runtime/nvrtc.c, for the CUDA device's compiler id: the options NVRTC
 * compiles for arch with, space-separated and malloc'd
 * ("--gpu-architecture=sm_90 -I/usr/local/cuda/include --std=c++17");
 * NULL with an error set if NVRTC cannot be loaded. */
char *tgc_nvrtc_options(const char *arch);

/* ======================================================================
 * runtime/device.c, runtime/cpu.c: devices
 * ==================================================================== */

/* A compiled kernel ready to launch. */
typedef struct tgc_program {
  tgc_prog_info info;
  void *handle;            /* device module (dlopen handle on the CPU) */
  void *fn;                /* entry point */
  struct tgc_device *dev;
} tgc_program;

/* A device is a vtable.  Every function returns a tgc_status with an error
 * set on failure. */
typedef struct tgc_device {
  const char *name;
  const tgc_lang *lang;
  void *(*alloc)(struct tgc_device *d, size_t bytes);      /* NULL on OOM */
  void (*free)(struct tgc_device *d, void *ptr);
  tgc_status (*copy_in)(struct tgc_device *d, void *dst, const void *src, size_t n);
  tgc_status (*copy_out)(struct tgc_device *d, void *dst, const void *src, size_t n);
  /* The identity of the compiler for the cache key; NULL + error if none. */
  const char *(*compiler_id)(struct tgc_device *d);
  /* Compiles n sources at once; *runs: compiler processes started. */
  tgc_status (*compile)(struct tgc_device *d, int n, const char *const *srcs, void **bins,
                        size_t *lens, int *runs);
  tgc_status (*load)(struct tgc_device *d, tgc_program *p, const void *bin, size_t len);
  void (*unload)(struct tgc_device *d, tgc_program *p);
  tgc_status (*launch)(struct tgc_device *d, const tgc_program *p, void **bufs,
                       const int64_t *vars);
  tgc_status (*sync)(struct tgc_device *d);
  /* Seconds on the device's clock once the work launched so far is done
   * (events on CUDA); differences time kernels. */
  double (*timer)(struct tgc_device *d);
  /* Launch graphs (NULL where the device has none): n launches recorded
   * in order, each with its buffers and vars; updated per replay in place
   * (launch i gets new buffers/vars), then launched as one. */
  void *(*graph_new)(struct tgc_device *d, int n, tgc_program *const *progs, void **const *bufs,
                     const int64_t *const *vars); /* NULL + error on failure */
  tgc_status (*graph_update)(struct tgc_device *d, void *graph, int i, void *const *bufs,
                             const int64_t *vars);
  tgc_status (*graph_launch)(struct tgc_device *d, void *graph);
  void (*graph_free)(struct tgc_device *d, void *graph);
  void (*destroy)(struct tgc_device *d);
} tgc_device;

tgc_device *tgc_cpu_new(int nthreads); /* NULL + error on failure */

/* runtime/cuda.c: the CUDA device, through libcuda.so.1 and NVRTC opened
 * with dlopen.  NULL + an error naming the missing library or the failing
 * call when CUDA cannot be used. */
tgc_device *tgc_cuda_new(void);
/* runtime/nvrtc.c.  NVRTC alone (no GPU needed): compiles one CUDA source for arch
 * ("sm_90") into a malloc'd CUBIN.  TGC_ERR_UNSUPPORTED when NVRTC cannot
 * be loaded; TGC_ERR_COMPILE with NVRTC's log when the source fails. */
tgc_status tgc_nvrtc_compile(const char *src, const char *arch, void **cubin, size_t *len);
/* The same for n sources in parallel threads (*threads: how many). */
tgc_status tgc_nvrtc_compile_n(int n, const char *const *srcs, const char *arch, void **bins,
                               size_t *lens, int *threads);
/* "nvrtc 13.0" or NULL (with an error) if NVRTC cannot be loaded. */
const char *tgc_nvrtc_version(void);

/* runtime/opencl.c: the OpenCL device through the ICD loader
 * (libOpenCL.so.1, opened with dlopen); the first GPU, else the first
 * device of any type (PoCL's CPU device in CI). */
tgc_device *tgc_opencl_new(void);

/* ======================================================================
 * runtime/program.c: programs, the compile cache and the dump
 * ==================================================================== */

/* The programs for the kernels of a schedule: found in memory, on disk, or
 * compiled together.  progs[i] belongs to the context's cache. */
tgc_status tgc_programs_get(tgc_ctx *ctx, int n, tgc_uop *const *asts, tgc_program **progs);
void tgc_programs_free(tgc_ctx *ctx);

/* ======================================================================
 * runtime/jit.c: capture and replay
 * ==================================================================== */

/* Called by realize while ctx->capture is set: a kernel output was
 * allocated; a kernel was launched with these buffers (slot order). */
void tgc_jit_note_alloc(tgc_ctx *ctx, tgc_buffer *b);
void tgc_jit_note_launch(tgc_ctx *ctx, tgc_program *p, int nbufs, tgc_buffer *const *bufs);

/* ======================================================================
 * the context (runtime/realize.c)
 * ==================================================================== */

struct tgc_var {
  tgc_ctx *ctx;
  int index;           /* kernel argument vars[index] */
  char name[32];
  int64_t min, max;
};

struct tgc_ctx {
  tgc_arena *arena;     /* graph nodes, shapes, args */
  tgc_uop **table;      /* hash-cons table, open hashing with chains */
  size_t table_cap, table_count;
  uint32_t next_id;
  tgc_device *dev;
  tgc_stats stats;
  int debug;            /* TGC_DEBUG */
  bool noopt;           /* TGC_NOOPT */
  char *dump_dir;       /* TGC_DUMP, or NULL */
  bool xcheck_cuda;     /* TGC_XCHECK=cuda: also compile each kernel for CUDA with NVRTC */
  struct tgc_jit_capture *capture; /* set while a JIT records its step (runtime/jit.c) */
  struct tgc_var *vars[TGC_MAX_VARS];
  int nvars;
  int64_t var_values[TGC_MAX_VARS]; /* current bindings, passed to every launch */
  bool var_bound[TGC_MAX_VARS];
  uint32_t var_epoch;   /* bumped by every binding: var-dependent results go stale */
  struct tgc_progcache *progs; /* program cache (runtime/program.c) */
  tgc_buffer **bufs;    /* every live buffer, for tgc_ctx_free */
  int nbufs, bufs_cap;
};

#endif
