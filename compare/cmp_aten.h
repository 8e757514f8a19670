/* cmp_aten.h - what the two libtorch backends of the comparison module
 * share: dtypes, leaf tensors, the elementwise op table (eager.cpp), and
 * the entry points of eager.cpp and script.cpp. */
#ifndef TGC_CMP_ATEN_H
#define TGC_CMP_ATEN_H

#include "cmp_internal.h"

#include <ATen/ATen.h>

#include <memory>

/* How ATen holds a tgc dtype: storage is the element type of tgc's memory;
 * compute the type values are computed in (wider for u16 and u32);
 * wrap the mask that keeps such a value in range (0 for the others). */
at::ScalarType tgc_cmp_storage(tgc_dtype dt);
at::ScalarType tgc_cmp_compute(tgc_dtype dt);
int64_t tgc_cmp_wrap(tgc_dtype dt);

/* The realized node's buffer as a tensor on dev (the CPU, or the CUDA
 * device whose memory tgc's buffers are) of its shape under the bindings
 * vars, or at its largest extent when largest (static programs): zero
 * copy (torch::from_blob), except for the widened dtypes, which are
 * converted. */
at::Tensor tgc_cmp_leaf(const tgc_uop *u, const int64_t *vars, bool largest, at::Device dev);

/* An elementwise tgc op in both backends: TorchScript source with $0 $1 $2
 * for the operands and $M for the shift mask, and the eager call. */
struct tgc_cmp_alu_rule {
  const char *script;
  at::Tensor (*eager)(const at::Tensor *x, int64_t mask);
};
/* The rule of op; throws tgc_cmp_error for an op without one. */
const tgc_cmp_alu_rule &tgc_cmp_alu(tgc_op op);

/* eager.cpp: runs p op by op on dev; returns the outputs (in their compute
 * types).  A static program reads the variables from vars_t (int64, one per
 * variable, on dev: what a CUDA graph replays with); others from vars. */
std::vector<at::Tensor> tgc_cmp_eager(const tgc_cmp_prog &p, const std::vector<at::Tensor> &leaves,
                                      const int64_t *vars, const at::Tensor &vars_t, at::Device dev);

/* script.cpp: p as TorchScript, compiled, frozen and optimised for
 * inference; the leaves and the variables are its arguments, so one
 * compiled program serves every graph of the same key. */
struct tgc_cmp_script;
std::shared_ptr<tgc_cmp_script> tgc_cmp_script_new(const tgc_cmp_prog &p);
std::vector<at::Tensor> tgc_cmp_script_run(tgc_cmp_script &s, const std::vector<at::Tensor> &leaves,
                                           const int64_t *vars);
/* The TorchScript source of p (TGC_CMP_DUMP shows it). */
std::string tgc_cmp_script_source(const tgc_cmp_prog &p);
/* A static program as a Python module (class Step, forward(a0.., vars))
 * for torch.export and AOTInductor (aoti.cpp). */
std::string tgc_cmp_python_source(const tgc_cmp_prog &p);
/* What was applied after compiling: "frozen, optimized for inference". */
const char *tgc_cmp_script_passes(void);

/* aoti.cpp: why AOTInductor cannot run here ("" if it can: this libtorch
 * has the loader, and Python's torch is its version); a static program's
 * package, built by Python's torch or found in the cache (*compiled says
 * which), loaded for dev; and a run of it. */
struct tgc_cmp_aoti;
std::string tgc_cmp_aoti_unavailable();
std::shared_ptr<tgc_cmp_aoti> tgc_cmp_aoti_new(const tgc_cmp_prog &p, const std::vector<at::Tensor> &leaves,
                                               at::Device dev, bool *compiled);
std::vector<at::Tensor> tgc_cmp_aoti_run(tgc_cmp_aoti &a, const std::vector<at::Tensor> &leaves,
                                         const at::Tensor &vars_t);

#ifdef TGC_CMP_CUDA
/* cuda.cpp: a static program captured as a CUDA graph (torch-opt on CUDA).
 * _new warms the program up and captures it; _run copies the small leaves
 * and the variables into the graph's inputs and replays it, or returns
 * false when a large leaf has moved since the capture (capture again);
 * _outs are the graph's output tensors, valid until the next replay. */
struct tgc_cmp_graph;
std::shared_ptr<tgc_cmp_graph> tgc_cmp_graph_new(const tgc_cmp_prog &p, const std::vector<at::Tensor> &leaves,
                                                 const int64_t *vars, at::Device dev);
bool tgc_cmp_graph_run(tgc_cmp_graph &g, const std::vector<at::Tensor> &leaves, const int64_t *vars);
const std::vector<at::Tensor> &tgc_cmp_graph_outs(const tgc_cmp_graph &g);
#endif

#endif
