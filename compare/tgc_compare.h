/* tgc_compare.h - the same tgc graph, run by libtorch.
 *
 * The comparison module is C++ (compare/compare.cpp) behind this C header,
 * built by `make compare` into build/libtgc-compare.so when libtorch is
 * found; tgc-bench and the tests open it with dlopen, so libtgc never links
 * libtorch.  It takes a tgc graph before scheduling (the output tensors of
 * a step) and runs it with ATen: op for op, except that a reduce-sum over a
 * product of broadcast operands becomes one matmul/einsum, an ASSIGN an
 * in-place copy into a slice, and a variable an argument.  Weights are
 * shared with tgc: on the CPU device a realized tgc buffer is wrapped by
 * torch::from_blob, never copied.
 *
 * Every function returns 0 on success and a negative value on failure,
 * with a message in err (errcap bytes, NUL-terminated).  Nothing here exits
 * the process.
 */
#ifndef TGC_COMPARE_H
#define TGC_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include "tgc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tgc_cmp_mode {
  TGC_CMP_TORCH_BASE = 0, /* eager ATen in the graph's precision */
  TGC_CMP_TORCH_OPT = 1,  /* the closest libtorch offers from C++ to torch.compile (see script.cpp) */
  TGC_CMP_TORCH_AOTI = 2, /* the step compiled by AOTInductor, where Python's torch is present (aoti.cpp) */
} tgc_cmp_mode;

typedef struct tgc_cmp tgc_cmp;

/* The modes by device:
 *   cpu   torch-base: eager, the graph's precision.  torch-opt: the graph
 *         as TorchScript, compiled, frozen, optimised for inference.
 *   cuda  torch-base: eager f32 on the GPU.  torch-opt: the graph made
 *         static (compare/static.cpp: the KV cache at full length with a
 *         mask, as for CUDA graphs in PyTorch), in f16, captured once as
 *         a CUDA graph and replayed every step.  Needs a libtorch with
 *         CUDA (make compare LIBTORCH=<folder>, or Python's torch).
 *   both  torch-aoti: the static program (in f16 on CUDA) exported from
 *         Python's torch and compiled by AOTInductor into a package that
 *         this process loads and runs (torch.compile's code generator,
 *         ahead of time).  Needs Python's torch of the version the module
 *         is built against, and a libtorch of 2.6 or later; the package is
 *         cached in TGC_CACHE_DIR/aoti (TGC_PYTHON: the Python to run).
 * Environment the module reads (set by tgc-bench's flags):
 *   TGC_CMP_NO_COMPILE=1  torch-opt and torch-aoti without TorchScript, CUDA
 *                         graph or AOTInductor: their programs run eagerly
 *                         (--pytorch-no-compile);
 *   TGC_CMP_NO_HALF=1     torch-opt and torch-aoti on CUDA stay in f32 (--pytorch-no-half;
 *                         the CPU always computes in the graph's precision);
 *   TGC_CMP_STATIC=1      every program is made static, also on the CPU
 *                         (for tests: the CUDA form checked without a GPU);
 *   TGC_CMP_DUMP=1        print the TorchScript of each new program. */

/* The version of this ABI; tgc-bench refuses a library of another. */
#define TGC_CMP_ABI 2
int tgc_cmp_abi(void);
/* "libtorch 1.13.1, 2 intra-op threads, OpenBLAS" or similar. */
const char *tgc_cmp_describe(void);

/* A runner for one step graph.  threads: libtorch's intra-op threads (the
 * same as TGC_THREADS, for fairness; <= 0 keeps libtorch's default), and
 * OpenBLAS's where that is libtorch's BLAS; inter-op threads are set to 1.
 * These are process-wide: the last tgc_cmp_new wins.  NULL with err set
 * on failure (an unknown mode; TORCH_AOTI where it cannot run, saying why). */
tgc_cmp *tgc_cmp_new(tgc_cmp_mode mode, int threads, char *err, size_t errcap);
void tgc_cmp_free(tgc_cmp *c); /* NULL ok */

/* Runs the graph of outs[0..n) (tgc tensors, built but not necessarily
 * realized; leaves must be realized tgc buffers or constants) with the
 * context's current variable bindings, and copies each output to host
 * memory as f32, contiguous, numel(outs[i]) floats in host[i].  The
 * context's device must be cpu or cuda: tgc's buffers are read and written
 * in place (f32 buffers of a torch-opt run in f16 through f16 copies made
 * at their first use and kept by the runner).  Every call walks the graph (a decode step's
 * is new each time); TORCH_OPT compiles a graph of a new structure once
 * and reuses it for later graphs of the same structure (the next steps').
 * ASSIGNs write the tgc buffers they target (the KV cache), exactly as
 * tgc's realize would. */
int tgc_cmp_run(tgc_cmp *c, tgc_ctx *ctx, int n, tgc_tensor *const *outs, float *const *host, char *err,
                size_t errcap);

/* Where the time of the runs went.
 * translate_s, compile_s and exec_s are the last run's; a step's cost to
 * a PyTorch user is exec_s, translate_s is this module's own walk of the
 * tgc graph (every run: the graph is new each step).  Fails only for NULL
 * arguments. */
typedef struct tgc_cmp_stats {
  uint64_t runs;      /* successful tgc_cmp_run calls */
  uint64_t compiles;  /* TORCH_OPT, TORCH_AOTI: graphs of a new structure compiled (or captured, or loaded) */
  double translate_s; /* the graph walked into a program (and its key, TORCH_OPT) */
  double compile_s;   /* the last run's compile (TorchScript, capture, AOTInductor package); 0 when reused */
  double exec_s;      /* libtorch ran the program, and the outputs were copied to host */
  double first_s;     /* the whole first successful run (translation, compile, first execution) */
  uint64_t static_runs;   /* runs of a static program (compare/static.cpp: torch-opt on CUDA, TGC_CMP_STATIC) */
  uint64_t graph_replays; /* CUDA graph replays (torch-opt on CUDA) */
} tgc_cmp_stats;
int tgc_cmp_get_stats(const tgc_cmp *c, tgc_cmp_stats *out);

#ifdef __cplusplus
}
#endif
#endif
