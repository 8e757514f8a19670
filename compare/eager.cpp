/* eager.cpp - a program run op by op with ATen (TGC_CMP_TORCH_BASE), and
 * what both backends share: the dtype map, leaf tensors and the table of
 * elementwise ops.
 *
 * Eager means what a PyTorch user's forward does: every instruction is one
 * ATen call on the previous calls' tensors, each result materialised
 * (views stay views), in the graph's precision.  Tensors are dropped after
 * their last reader.  The semantics tgc defines and ATen does not (integer
 * division by zero gives 0, shift counts modulo the bit width, gather ids
 * out of range read zero rows) are spelled with a few extra ATen calls.
 */
#include "cmp_aten.h"

#include <cmath>
#include <cstdint>

/* ---- dtypes ------------------------------------------------------------------ */

namespace {
struct dtype_map {
  at::ScalarType storage, compute;
  int64_t wrap;
};
} // namespace

/* tgc dtype -> (storage, compute, wrap), expanded from tgc_dtypes.def: a
 * new dtype without a line here does not compile. */
#define TGC_CMP_AT_BOOL at::kBool, at::kBool, 0
#define TGC_CMP_AT_I8 at::kChar, at::kChar, 0
#define TGC_CMP_AT_U8 at::kByte, at::kByte, 0
#define TGC_CMP_AT_I16 at::kShort, at::kShort, 0
#define TGC_CMP_AT_U16 at::kShort, at::kInt, 0xFFFF
#define TGC_CMP_AT_I32 at::kInt, at::kInt, 0
#define TGC_CMP_AT_U32 at::kInt, at::kLong, 0xFFFFFFFF
#define TGC_CMP_AT_I64 at::kLong, at::kLong, 0
#define TGC_CMP_AT_F16 at::kHalf, at::kHalf, 0
#define TGC_CMP_AT_BF16 at::kBFloat16, at::kBFloat16, 0
#define TGC_CMP_AT_F32 at::kFloat, at::kFloat, 0
#define TGC_CMP_AT_F64 at::kDouble, at::kDouble, 0
static const dtype_map dtype_maps[TGC_NUM_DTYPES] = {
#define X(NAME, name, bytes, ctype, cudatype, isfloat, issigned) {TGC_CMP_AT_##NAME},
#include "tgc_dtypes.def"
#undef X
};

at::ScalarType tgc_cmp_storage(tgc_dtype dt) { return dtype_maps[dt].storage; }
at::ScalarType tgc_cmp_compute(tgc_dtype dt) { return dtype_maps[dt].compute; }
int64_t tgc_cmp_wrap(tgc_dtype dt) { return dtype_maps[dt].wrap; }

static std::vector<int64_t> eval(const std::vector<int64_t> &sizes, const int64_t *vars) {
  std::vector<int64_t> r(sizes.size());
  for (size_t i = 0; i < sizes.size(); i++) r[i] = tgc_sym_eval(sizes[i], vars);
  return r;
}

at::Tensor tgc_cmp_leaf(const tgc_uop *u, const int64_t *vars, bool largest, at::Device dev) {
  tgc_dtype dt = (tgc_dtype)u->dtype;
  std::vector<int64_t> maxs((size_t)u->ndim);
  tgc_shape_max(u->ctx, u->ndim, u->shape, maxs.data());
  size_t need = (size_t)tgc_shape_numel_max(u->ctx, u->ndim, u->shape) * (size_t)tgc_dtypes[dt].bytes;
  TGC_ASSERT(u->buf && u->buf->bytes >= need);
  at::Tensor t = at::from_blob(u->buf->ptr, maxs, at::TensorOptions().dtype(tgc_cmp_storage(dt)).device(dev));
  for (int i = 0; i < u->ndim && !largest; i++)
    if (tgc_sym_is(u->shape[i])) t = t.narrow(i, 0, tgc_sym_eval(u->shape[i], vars));
  return tgc_cmp_wrap(dt) ? t.to(tgc_cmp_compute(dt)).bitwise_and(tgc_cmp_wrap(dt)) : t;
}

/* ---- elementwise ops ---------------------------------------------------------- */

/* x / y and x % y truncating, with tgc's x / 0 = x % 0 = 0. */
static at::Tensor idiv(const at::Tensor *x, int64_t) {
  at::Tensor z = x[1].eq(0);
  at::Tensor q = at::div(x[0], at::where(z, at::ones_like(x[1]), x[1]), "trunc");
  return at::where(z, at::zeros_like(q), q);
}
static at::Tensor imod(const at::Tensor *x, int64_t) {
  at::Tensor z = x[1].eq(0);
  at::Tensor r = at::fmod(x[0], at::where(z, at::ones_like(x[1]), x[1]));
  return at::where(z, at::zeros_like(r), r);
}

namespace {
struct alu_entry {
  tgc_op op;
  tgc_cmp_alu_rule rule;
};
using T = const at::Tensor *;
const alu_entry alu_list[] = {
    {TGC_OP_NEG, {"torch.neg($0)", [](T x, int64_t) { return at::neg(x[0]); }}},
    {TGC_OP_EXP, {"torch.exp($0)", [](T x, int64_t) { return at::exp(x[0]); }}},
    {TGC_OP_EXP2, {"torch.exp2($0)", [](T x, int64_t) { return at::exp2(x[0]); }}},
    {TGC_OP_LOG, {"torch.log($0)", [](T x, int64_t) { return at::log(x[0]); }}},
    {TGC_OP_LOG2, {"torch.log2($0)", [](T x, int64_t) { return at::log2(x[0]); }}},
    {TGC_OP_SIN, {"torch.sin($0)", [](T x, int64_t) { return at::sin(x[0]); }}},
    {TGC_OP_COS, {"torch.cos($0)", [](T x, int64_t) { return at::cos(x[0]); }}},
    {TGC_OP_TANH, {"torch.tanh($0)", [](T x, int64_t) { return at::tanh(x[0]); }}},
    {TGC_OP_SQRT, {"torch.sqrt($0)", [](T x, int64_t) { return at::sqrt(x[0]); }}},
    {TGC_OP_RECIP, {"torch.reciprocal($0)", [](T x, int64_t) { return at::reciprocal(x[0]); }}},
    {TGC_OP_ADD, {"torch.add($0, $1)", [](T x, int64_t) { return at::add(x[0], x[1]); }}},
    {TGC_OP_SUB, {"torch.sub($0, $1)", [](T x, int64_t) { return at::sub(x[0], x[1]); }}},
    {TGC_OP_MUL, {"torch.mul($0, $1)", [](T x, int64_t) { return at::mul(x[0], x[1]); }}},
    {TGC_OP_FDIV, {"torch.div($0, $1)", [](T x, int64_t) { return at::div(x[0], x[1]); }}},
    {TGC_OP_IDIV, {"self.idiv($0, $1)", idiv}},
    {TGC_OP_MOD, {"self.mod($0, $1)", imod}},
    {TGC_OP_POW, {"torch.pow($0, $1)", [](T x, int64_t) { return at::pow(x[0], x[1]); }}},
    {TGC_OP_MAX, {"torch.maximum($0, $1)", [](T x, int64_t) { return at::maximum(x[0], x[1]); }}},
    {TGC_OP_MIN, {"torch.minimum($0, $1)", [](T x, int64_t) { return at::minimum(x[0], x[1]); }}},
    {TGC_OP_CMPLT, {"torch.lt($0, $1)", [](T x, int64_t) { return at::lt(x[0], x[1]); }}},
    {TGC_OP_CMPLE, {"torch.le($0, $1)", [](T x, int64_t) { return at::le(x[0], x[1]); }}},
    {TGC_OP_CMPEQ, {"torch.eq($0, $1)", [](T x, int64_t) { return at::eq(x[0], x[1]); }}},
    {TGC_OP_CMPNE, {"torch.ne($0, $1)", [](T x, int64_t) { return at::ne(x[0], x[1]); }}},
    {TGC_OP_AND, {"torch.bitwise_and($0, $1)", [](T x, int64_t) { return at::bitwise_and(x[0], x[1]); }}},
    {TGC_OP_OR, {"torch.bitwise_or($0, $1)", [](T x, int64_t) { return at::bitwise_or(x[0], x[1]); }}},
    {TGC_OP_XOR, {"torch.bitwise_xor($0, $1)", [](T x, int64_t) { return at::bitwise_xor(x[0], x[1]); }}},
    {TGC_OP_SHL,
     {"torch.bitwise_left_shift($0, torch.bitwise_and($1, $M))",
      [](T x, int64_t m) { return at::bitwise_left_shift(x[0], at::bitwise_and(x[1], m)); }}},
    {TGC_OP_SHR,
     {"torch.bitwise_right_shift($0, torch.bitwise_and($1, $M))",
      [](T x, int64_t m) { return at::bitwise_right_shift(x[0], at::bitwise_and(x[1], m)); }}},
    {TGC_OP_WHERE, {"torch.where($0, $1, $2)", [](T x, int64_t) { return at::where(x[0], x[1], x[2]); }}},
};
} // namespace

const tgc_cmp_alu_rule &tgc_cmp_alu(tgc_op op) {
  for (const alu_entry &e : alu_list)
    if (e.op == op) return e.rule;
  throw tgc_cmp_error(std::string("elementwise op ") + tgc_ops[op].name + " has no ATen rule");
}

/* ---- the instructions ------------------------------------------------------------ */

namespace {

struct env {
  const std::vector<at::Tensor> &v; /* values by slot */
  const std::vector<at::Tensor> &leaves;
  const int64_t *vars;
  const at::Tensor &vars_t; /* static programs: the variables on dev */
  at::Device dev;
  const at::Tensor &in(const tgc_cmp_ins &i, int k) const { return v[(size_t)i.in[k]]; }
  at::TensorOptions opts(at::ScalarType t) const { return at::TensorOptions().dtype(t).device(dev); }
};
using eager_fn = at::Tensor (*)(const tgc_cmp_ins &, const env &);

at::Tensor eager_LEAF(const tgc_cmp_ins &i, const env &e) { return e.leaves[(size_t)i.ints[0]]; }

at::Tensor eager_CONST(const tgc_cmp_ins &i, const env &e) {
  at::TensorOptions o = e.opts(tgc_cmp_compute(i.dt));
  if (i.is_sym) return at::scalar_tensor(tgc_sym_eval(i.sym, e.vars), o);
  if (tgc_dtypes[i.dt].is_float) return at::scalar_tensor(i.c.f, o);
  if (i.dt == TGC_BOOL) return at::scalar_tensor(i.c.i != 0, o);
  return at::scalar_tensor(i.c.i, o);
}

at::Tensor eager_ALU(const tgc_cmp_ins &i, const env &e) {
  at::Tensor x[3];
  for (int k = 0; k < i.nin; k++) x[k] = e.in(i, k);
  return tgc_cmp_alu(i.op).eager(x, i.ints[0]);
}

at::Tensor eager_CAST(const tgc_cmp_ins &i, const env &e) {
  const at::Tensor &x = e.in(i, 0);
  if (tgc_cmp_wrap(i.dt)) return x.to(at::kLong).bitwise_and(tgc_cmp_wrap(i.dt)).to(tgc_cmp_compute(i.dt));
  return x.to(tgc_cmp_compute(i.dt));
}

at::Tensor eager_BITCAST(const tgc_cmp_ins &i, const env &e) {
  at::Tensor y = e.in(i, 0).to(tgc_cmp_storage(i.from)).view(tgc_cmp_storage(i.dt));
  return tgc_cmp_wrap(i.dt) ? y.to(tgc_cmp_compute(i.dt)).bitwise_and(tgc_cmp_wrap(i.dt)) : y;
}

at::Tensor eager_WRAP(const tgc_cmp_ins &i, const env &e) { return e.in(i, 0).bitwise_and(tgc_cmp_wrap(i.dt)); }
at::Tensor eager_SUM(const tgc_cmp_ins &i, const env &e) {
  return at::sum(e.in(i, 0), i.ints, true, tgc_cmp_compute(i.dt));
}
at::Tensor eager_MAX(const tgc_cmp_ins &i, const env &e) { return at::amax(e.in(i, 0), i.ints, true); }
at::Tensor eager_RESHAPE(const tgc_cmp_ins &i, const env &e) { return e.in(i, 0).reshape(eval(i.ints, e.vars)); }
at::Tensor eager_VIEW(const tgc_cmp_ins &i, const env &e) { return e.in(i, 0).view(eval(i.ints, e.vars)); }
at::Tensor eager_PERMUTE(const tgc_cmp_ins &i, const env &e) { return e.in(i, 0).permute(i.ints); }
at::Tensor eager_EXPAND(const tgc_cmp_ins &i, const env &e) { return e.in(i, 0).expand(eval(i.ints, e.vars)); }
at::Tensor eager_PAD(const tgc_cmp_ins &i, const env &e) {
  return at::constant_pad_nd(e.in(i, 0), eval(i.ints, e.vars), 0);
}
at::Tensor eager_NARROW(const tgc_cmp_ins &i, const env &e) {
  int64_t b = tgc_sym_eval(i.ints[1], e.vars), end = tgc_sym_eval(i.ints[2], e.vars);
  return e.in(i, 0).narrow(i.ints[0], b, end - b);
}
at::Tensor eager_FLIP(const tgc_cmp_ins &i, const env &e) { return at::flip(e.in(i, 0), i.ints); }

/* A linear layer: one row of activations is a matrix-vector product (gemv),
 * which reads the weight as it lies; as a 1-row matmul, OpenBLAS's gemm
 * would first copy the whole weight into its packed layout, every step. */
static at::Tensor linear_layer(const at::Tensor &a, const at::Tensor &w) {
  if (a.numel() != a.size(-1)) return at::matmul(a, w.t());
  std::vector<int64_t> shape(a.sizes().begin(), a.sizes().end() - 1);
  shape.push_back(w.size(0));
  return at::mv(w, a.reshape({-1})).reshape(shape);
}

/* CPU matmul has no f16 kernel in this libtorch: f16 is multiplied in f32
 * (as tgc accumulates it) and rounded once.  CUDA multiplies f16 itself. */
at::Tensor eager_EINSUM(const tgc_cmp_ins &i, const env &e) {
  bool half = i.dt == TGC_F16 && e.dev.is_cpu();
  at::Tensor a = half ? e.in(i, 0).to(at::kFloat) : e.in(i, 0), b = half ? e.in(i, 1).to(at::kFloat) : e.in(i, 1);
  at::Tensor r = tgc_cmp_is_linear(i.eq) ? linear_layer(a, b) : at::einsum(i.eq, {a, b});
  return half ? r.to(at::kHalf) : r;
}

at::Tensor eager_GATHER(const tgc_cmp_ins &i, const env &e) {
  const at::Tensor &table = e.in(i, 0), &ids = e.in(i, 1);
  int64_t n = table.size(0);
  at::Tensor flat = ids.reshape({-1}).to(at::kLong);
  at::Tensor ok = at::logical_and(flat.ge(0), flat.lt(n));
  at::Tensor rows = at::index_select(table, 0, flat.clamp(0, n - 1));
  rows = at::where(ok.unsqueeze(1), rows, at::zeros_like(rows));
  std::vector<int64_t> shape = ids.sizes().vec();
  shape.push_back(table.size(1));
  return rows.reshape(shape);
}

/* A value that shares memory with the buffer (one part of a buffer
 * assigned to another) is cloned first: ATen leaves an overlapping copy_
 * undefined. */
at::Tensor eager_COPY(const tgc_cmp_ins &i, const env &e) {
  const at::Tensor &view = e.in(i, 0), &value = e.in(i, 1), &base = e.in(i, 2);
  view.copy_(value.is_alias_of(base) ? value.clone() : value);
  return base;
}

/* ---- the instructions of static programs (static.cpp) ---- */

/* The symbolic size d as a 0-d int64 tensor on the device, from vars_t. */
at::Tensor symval(int64_t d, const env &e) {
  tgc_affine a = tgc_sym_get(d);
  at::Tensor r;
  for (int k = 0; k < TGC_MAX_VARS; k++)
    if (a.c[k]) {
      at::Tensor t = e.vars_t.select(0, k).mul(a.c[k]);
      r = r.defined() ? r.add(t) : t;
    }
  return r.defined() ? r.add(a.b) : at::scalar_tensor(a.b, e.opts(at::kLong));
}

/* 0, 1, .. n-1, shaped to run along axis a of a rank-nd tensor. */
at::Tensor positions(int64_t n, int64_t a, int64_t nd, const env &e) {
  std::vector<int64_t> shape((size_t)nd, 1);
  shape[(size_t)a] = n;
  return at::arange(n, e.opts(at::kLong)).reshape(shape);
}

at::Tensor eager_SYMVAL(const tgc_cmp_ins &i, const env &e) {
  return symval(i.sym, e).to(tgc_cmp_compute(i.dt));
}

/* The lowest value of type t: what a max ignores. */
at::Scalar lowest(at::ScalarType t) {
  switch (t) {
  case at::kLong: return INT64_MIN;
  case at::kInt: return (int64_t)INT32_MIN;
  case at::kShort: return (int64_t)INT16_MIN;
  case at::kChar: return (int64_t)INT8_MIN;
  case at::kByte:
  case at::kBool: return 0;
  default: return -INFINITY;
  }
}

at::Tensor eager_MASK(const tgc_cmp_ins &i, const env &e) {
  const at::Tensor &x = e.in(i, 0);
  int64_t a = i.ints[0];
  at::Tensor keep = positions(x.size(a), a, x.dim(), e).lt(symval(i.sym, e));
  return at::where(keep, x, at::full({}, i.ints[1] ? lowest(x.scalar_type()) : at::Scalar(0), x.options()));
}

at::Tensor eager_DYN_NARROW(const tgc_cmp_ins &i, const env &e) {
  const at::Tensor &x = e.in(i, 0);
  return x.index_select(i.ints[0], at::arange(i.ints[1], e.opts(at::kLong)).add(symval(i.sym, e)));
}

at::Tensor eager_INDEX_COPY(const tgc_cmp_ins &i, const env &e) {
  const at::Tensor &base = e.in(i, 0), &value = e.in(i, 1);
  int64_t a = i.ints[0];
  at::Tensor rows = at::arange(value.size(a), e.opts(at::kLong)).add(symval(i.sym, e));
  base.index_copy_(a, rows, value.to(base.scalar_type()));
  return base;
}

const eager_fn eager_fns[TGC_CMP_NUM_KINDS] = {
#define X(NAME, doc) eager_##NAME,
    TGC_CMP_KINDS(X)
#undef X
};

} // namespace

std::vector<at::Tensor> tgc_cmp_eager(const tgc_cmp_prog &p, const std::vector<at::Tensor> &leaves,
                                      const int64_t *vars, const at::Tensor &vars_t, at::Device dev) {
  std::vector<at::Tensor> v(p.ins.size());
  std::vector<char> keep(p.ins.size());
  for (int s : p.outs) keep[(size_t)s] = 1;
  env e{v, leaves, vars, vars_t, dev};
  for (size_t n = 0; n < p.ins.size(); n++) {
    const tgc_cmp_ins &i = p.ins[n];
    v[n] = eager_fns[i.kind](i, e);
    for (int k = 0; k < i.nin; k++)
      if (p.last_use[(size_t)i.in[k]] == (int)n && !keep[(size_t)i.in[k]]) v[(size_t)i.in[k]].reset();
  }
  std::vector<at::Tensor> outs;
  for (int s : p.outs) outs.push_back(v[(size_t)s]);
  return outs;
}
