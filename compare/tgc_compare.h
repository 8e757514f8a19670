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
  TGC_CMP_TORCH_OPT = 1,  /* the closest libtorch offers from C++ to torch.compile (see compare.cpp) */
} tgc_cmp_mode;

typedef struct tgc_cmp tgc_cmp;

/* The version of this ABI; tgc-bench refuses a library of another. */
#define TGC_CMP_ABI 1
int tgc_cmp_abi(void);
/* "libtorch 1.13.1, 2 intra-op threads, OpenBLAS" or similar. */
const char *tgc_cmp_describe(void);

/* A runner for one step graph.  threads: libtorch's intra-op threads (the
 * same as TGC_THREADS, for fairness).  NULL with err set on failure. */
tgc_cmp *tgc_cmp_new(tgc_cmp_mode mode, int threads, char *err, size_t errcap);
void tgc_cmp_free(tgc_cmp *c); /* NULL ok */

/* Runs the graph of outs[0..n) (tgc tensors, built but not necessarily
 * realized; leaves must be realized tgc buffers or constants) with the
 * context's current variable bindings, and copies each output to host
 * memory as f32, contiguous, numel(outs[i]) floats in host[i].  The first
 * call translates (and for TORCH_OPT compiles) the graph; later calls with
 * the same outputs' graph shape reuse it.  ASSIGNs write the tgc buffers
 * they target (the KV cache), exactly as tgc's realize would. */
int tgc_cmp_run(tgc_cmp *c, tgc_ctx *ctx, int n, tgc_tensor *const *outs, float *const *host, char *err,
                size_t errcap);

#ifdef __cplusplus
}
#endif
#endif
