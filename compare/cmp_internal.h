/* cmp_internal.h - the comparison module's internal header (C++).
 *
 * A tgc graph reaches libtorch in two steps: translate.cpp turns it into a
 * program, a list of ATen-level instructions in execution order (each one
 * value, named by its index: its slot), and then either eager.cpp runs the
 * instructions with ATen calls (TGC_CMP_TORCH_BASE) or script.cpp renders
 * them as TorchScript source that libtorch compiles (TGC_CMP_TORCH_OPT).
 * The instruction kinds are declared once, below; each of the two backends
 * expands its table of functions from that list, so a kind that one of
 * them lacks does not compile.
 *
 * Sizes in instructions are tgc sizes: plain or symbolic (ops/sym.c),
 * evaluated with the context's variable values when the program runs, so
 * one program serves every binding of start_pos.
 */
#ifndef TGC_CMP_INTERNAL_H
#define TGC_CMP_INTERNAL_H

/* tgc_internal.h is C: its _Noreturn is spelled for C++ here, and its
 * declarations get C linkage. */
#define _Noreturn __attribute__((noreturn))
extern "C" {
#include "tgc_internal.h"
}
#undef _Noreturn

#include <stdexcept>
#include <string>
#include <vector>

#include "tgc_compare.h"

/* X(NAME, what it computes; its fields) */
#define TGC_CMP_KINDS(X)                                                                       \
  X(LEAF, "a realized tgc buffer, argument ints[0] of the run (from_blob)")                    \
  X(CONST, "a 0-d constant: c, or the symbolic size sym when is_sym")                          \
  X(ALU, "elementwise tgc op `op` of in[0..nin); ints[0]: shift mask (bits - 1)")              \
  X(CAST, "value conversion from `from` to dt")                                                \
  X(BITCAST, "bit reinterpretation from `from` to dt")                                         \
  X(WRAP, "keeps the low bits of a widened unsigned value (u16 in i32, u32 in i64)")           \
  X(SUM, "sum over dims ints, keepdim, accumulating in dt")                                    \
  X(MAX, "amax over dims ints, keepdim")                                                       \
  X(RESHAPE, "reshape to sizes ints")                                                          \
  X(VIEW, "view as sizes ints (an assign target: must not copy)")                              \
  X(PERMUTE, "permute by ints")                                                                \
  X(EXPAND, "expand to sizes ints")                                                            \
  X(PAD, "zero padding; ints in torch's order (last axis first, before and after)")            \
  X(NARROW, "axis ints[0] kept from ints[1] to ints[2] (symbolic bounds allowed)")             \
  X(FLIP, "flip dims ints")                                                                    \
  X(EINSUM, "one einsum `eq` of in[0], in[1]: a reduce-sum of a broadcast product (matmul)")   \
  X(GATHER, "rows in[1] (ids, any shape) of table in[0] [V, D]; ids outside [0, V) read 0")    \
  X(COPY, "in[1] copied into the view in[0] of base in[2]; the value is the base (assign)")                \
  X(SYMVAL, "static programs: the symbolic size sym as a 0-d tensor, from the variables tensor")         \
  X(MASK, "static programs: in[0] where index < sym along axis ints[0], else 0 (or the lowest if ints[1])") \
  X(DYN_NARROW, "static programs: ints[1] rows of axis ints[0] from the symbolic start sym (a gather)")  \
  X(INDEX_COPY, "static programs: in[1] into base in[0] at rows sym.. of axis ints[0]; the value is the base")

enum tgc_cmp_kind {
#define X(NAME, doc) TGC_CMP_##NAME,
  TGC_CMP_KINDS(X)
#undef X
  TGC_CMP_NUM_KINDS
};

/* One instruction; its value is slot i where i is its index. */
struct tgc_cmp_ins {
  tgc_cmp_kind kind;
  tgc_dtype dt;              /* of the value */
  tgc_dtype from;            /* CAST, BITCAST: of the source */
  tgc_op op;                 /* ALU */
  int nin;
  int in[3];                 /* source slots */
  std::vector<int64_t> ints; /* dims, a permutation or sizes (see the kind) */
  tgc_cval c;                /* CONST */
  bool is_sym;               /* CONST: sym, not c */
  int64_t sym;
  std::string eq;            /* EINSUM: "abd,acd->abc" */
};

/* An instruction of kind k and value dtype dt reading slots in. */
inline tgc_cmp_ins tgc_cmp_make(tgc_cmp_kind k, tgc_dtype dt, std::initializer_list<int> in = {},
                                std::vector<int64_t> ints = {}) {
  tgc_cmp_ins i{};
  i.kind = k;
  i.dt = i.from = dt;
  i.nin = 0;
  for (int s : in) i.in[i.nin++] = s;
  i.ints = std::move(ints);
  return i;
}

/* A translated graph. */
struct tgc_cmp_prog {
  std::vector<tgc_cmp_ins> ins;
  std::vector<tgc_uop *> leaves; /* realized nodes, in argument order (LEAF ints[0]) */
  std::vector<int> outs;         /* slot of each output */
  std::vector<int> last_use;     /* per slot: the last instruction reading it (its own index if none) */
  /* A static program (tgc_cmp_static): every size concrete, the leaves at
   * their largest extent, the variables read from a tensor on the device;
   * out_shapes are the outputs' symbolic shapes, to which the results are
   * cut. */
  bool is_static = false;
  std::vector<std::vector<int64_t>> out_shapes;
};

/* Failures inside the module: caught at the C interface, whose err gets
 * what(). */
struct tgc_cmp_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/* translate.cpp: the program of outs[0..n), which must belong to ctx.
 * Throws tgc_cmp_error for a graph it cannot express. */
tgc_cmp_prog tgc_cmp_translate(tgc_ctx *ctx, int n, tgc_tensor *const *outs);
/* What decides a compiled program: every instruction and the leaves' dtypes
 * (not their identity), so the graphs of two decode steps share one key. */
std::string tgc_cmp_key(const tgc_cmp_prog &p);
/* u16 and u32, which this libtorch has no types for, computed in i32 and
 * i64 (their storage is i16 and i32). */
bool tgc_cmp_widened(tgc_dtype dt);

/* static.cpp: p as a static program: no size depends on a variable, so
 * that it can be captured once as a CUDA graph and replayed at every
 * binding.  An axis of symbolic length is computed at its largest extent
 * and masked where it is reduced (0 for a sum or a contraction, the lowest
 * value for a max); a window at a symbolic start is a gather, and an assign
 * into one an index_copy_.  half: the type f32 values become (f16 for
 * torch-opt on CUDA, bf16 to test that on the CPU; TGC_F32: none), with
 * float sums taken in f32.  Throws tgc_cmp_error for a graph it cannot
 * express statically. */
tgc_cmp_prog tgc_cmp_static(const tgc_cmp_prog &p, const tgc_ctx *ctx, tgc_dtype half);
/* Sets p.last_use from p.ins. */
void tgc_cmp_set_last_use(tgc_cmp_prog &p);

/* An EINSUM that is a linear layer, "...k,nk->...n": run as matmul with the
 * weight's transposed view (translate.cpp). */
bool tgc_cmp_is_linear(const std::string &eq);

#endif
