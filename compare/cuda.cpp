/* cuda.cpp - torch-opt on CUDA: a static program (static.cpp) captured once
 * as a CUDA graph and replayed at every step, as a PyTorch user does with
 * torch.cuda.CUDAGraph (or torch.compile's "reduce-overhead") on a model
 * with a static KV cache.
 *
 * A graph replays fixed pointers.  Large leaves (weights, the KV cache, in
 * place) must be the same tensors at every replay; small ones (the token
 * id, whose tgc buffer is new every step) are copied into the graph's own
 * tensor before each replay, as are the variables.  A leaf that an assign
 * writes is never copied: the write must reach the cache itself.  Built
 * only where libtorch has CUDA (TGC_CMP_CUDA, set by find-libtorch.sh).
 */
#include "cmp_aten.h"

#ifdef TGC_CMP_CUDA

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

struct tgc_cmp_graph {
  at::cuda::CUDAGraph graph;
  std::vector<at::Tensor> leaves; /* what the capture reads: a leaf itself, or the graph's copy of it */
  std::vector<char> copied;       /* leaf k is copied in before each replay */
  at::Tensor vars_t;              /* the variables, int64 on the device */
  std::vector<at::Tensor> outs;
};

namespace {

constexpr int64_t copy_limit = 64 << 10; /* bytes: a leaf this small is copied in, not required in place */

/* Leaves that an assign writes (the base of a COPY or an INDEX_COPY). */
std::vector<char> written_leaves(const tgc_cmp_prog &p) {
  std::vector<char> w(p.leaves.size());
  for (const tgc_cmp_ins &i : p.ins) {
    int base = i.kind == TGC_CMP_COPY ? i.in[2] : i.kind == TGC_CMP_INDEX_COPY ? i.in[0] : -1;
    if (base >= 0 && p.ins[(size_t)base].kind == TGC_CMP_LEAF) w[(size_t)p.ins[(size_t)base].ints[0]] = 1;
  }
  return w;
}

at::Tensor host_vars(const int64_t *vars) {
  return at::from_blob(const_cast<int64_t *>(vars), {TGC_MAX_VARS}, at::kLong);
}

} // namespace

std::shared_ptr<tgc_cmp_graph> tgc_cmp_graph_new(const tgc_cmp_prog &p, const std::vector<at::Tensor> &leaves,
                                                 const int64_t *vars, at::Device dev) {
  TGC_ASSERT(p.is_static);
  auto g = std::make_shared<tgc_cmp_graph>();
  std::vector<char> written = written_leaves(p);
  for (size_t k = 0; k < leaves.size(); k++) {
    bool copy = !written[k] && leaves[k].nbytes() <= (size_t)copy_limit;
    g->leaves.push_back(copy ? leaves[k].clone() : leaves[k]);
    g->copied.push_back(copy);
  }
  g->vars_t = host_vars(vars).to(dev);
  /* Captured on a stream of its own (the default stream cannot be), after
   * one eager run there, so that cuBLAS's handle and workspace for that
   * stream exist before the capture.  A step's work is idempotent (the
   * cache row it writes depends only on the token), so running it twice is
   * harmless. */
  at::cuda::CUDAStream side = at::cuda::getStreamFromPool(false, dev.index());
  at::cuda::getCurrentCUDAStream(dev.index()).synchronize();
  {
    c10::cuda::CUDAStreamGuard guard(side);
    tgc_cmp_eager(p, g->leaves, vars, g->vars_t, dev);
    side.synchronize();
    g->graph.capture_begin();
    g->outs = tgc_cmp_eager(p, g->leaves, vars, g->vars_t, dev);
    g->graph.capture_end();
  }
  side.synchronize();
  return g;
}

bool tgc_cmp_graph_run(tgc_cmp_graph &g, const std::vector<at::Tensor> &leaves, const int64_t *vars) {
  if (leaves.size() != g.leaves.size()) return false;
  for (size_t k = 0; k < leaves.size(); k++)
    if (!g.copied[k] && leaves[k].data_ptr() != g.leaves[k].data_ptr()) return false;
  for (size_t k = 0; k < leaves.size(); k++)
    if (g.copied[k]) g.leaves[k].copy_(leaves[k], true);
  g.vars_t.copy_(host_vars(vars));
  g.graph.replay();
  return true;
}

const std::vector<at::Tensor> &tgc_cmp_graph_outs(const tgc_cmp_graph &g) { return g.outs; }

#endif
