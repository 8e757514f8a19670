/* translate.cpp - a tgc graph, before scheduling, as a program of ATen-level
 * instructions (cmp_internal.h).
 *
 * A walk from the outputs, memoized by node, emits each node's
 * instructions after its sources', so the program is in execution order.
 * Most nodes are one instruction; the exceptions are where tgc and ATen
 * differ in what is primitive:
 *   - a reduce-sum of a product whose operands are EXPANDs (tgc_matmul, the
 *     quantized tgc_wlinear) is one einsum of the unexpanded operands, so
 *     the broadcast product is never materialised: torch runs a matmul;
 *   - an ASSIGN replays its target's view chain on the realized tensor
 *     with views only (a reshape must not copy), then copies the value in;
 *   - a SHRINK is one narrow per axis it cuts;
 *   - u16 and u32 values are computed in a wider signed type, with a WRAP
 *     after the ops that can leave the type's range.
 * A node that tgc has already realized for the current bindings is a leaf:
 * its buffer is an argument, as a weight or the KV cache is.  Nothing here
 * includes libtorch, so it compiles quickly and reads as plain C++.
 */
#include "cmp_internal.h"

#include <unordered_map>

bool tgc_cmp_widened(tgc_dtype dt) { return dt == TGC_U16 || dt == TGC_U32; }

namespace {

[[noreturn]] void fail(const std::string &what) { throw tgc_cmp_error(what); }

std::vector<int64_t> shape_of(const tgc_uop *u) { return std::vector<int64_t>(u->shape, u->shape + u->ndim); }

std::vector<int64_t> dims_of(uint32_t mask, int ndim) {
  std::vector<int64_t> d;
  for (int i = 0; i < ndim; i++)
    if ((mask >> i) & 1) d.push_back(i);
  return d;
}

/* The symbolic size var + k. */
int64_t var_plus(int var, int64_t k) {
  tgc_affine a{};
  a.c[var] = 1;
  a.b = k;
  int64_t d;
  if (!tgc_sym_put(&a, &d)) fail("a window start of variable " + std::to_string(var) + " cannot be represented");
  return d;
}

struct translator {
  tgc_cmp_prog *p;
  std::unordered_map<const tgc_uop *, int> memo;

  int emit(tgc_cmp_ins i) {
    p->ins.push_back(std::move(i));
    return (int)p->ins.size() - 1;
  }

  int value(tgc_uop *u) {
    auto it = memo.find(u);
    if (it != memo.end()) return it->second;
    int s = tgc_uop_current(u) ? leaf(u) : node(u);
    memo.emplace(u, s);
    return s;
  }

  int leaf(tgc_uop *u) {
    p->leaves.push_back(u);
    return emit(tgc_cmp_make(TGC_CMP_LEAF, (tgc_dtype)u->dtype, {}, {(int64_t)p->leaves.size() - 1}));
  }

  int node(tgc_uop *u) {
    switch (tgc_ops[u->op].group) {
    case GROUP_BUF: return constant(u);
    case GROUP_UNARY:
    case GROUP_BINARY:
    case GROUP_TERNARY: return alu(u);
    case GROUP_REDUCE: return reduce(u);
    case GROUP_MOVE: return move(u, value(u->src[0]), false);
    case GROUP_SPECIAL: return special(u);
    default: fail(std::string("a ") + tgc_ops[u->op].name + " node: not a graph op (a kernel's?)");
    }
  }

  int constant(tgc_uop *u) {
    if (u->op != TGC_OP_CONST) fail("a BUFFER node without a buffer");
    tgc_cmp_ins i = tgc_cmp_make(TGC_CMP_CONST, (tgc_dtype)u->dtype);
    if (u->arglen == sizeof(tgc_symconst)) {
      i.is_sym = true;
      i.sym = static_cast<const tgc_symconst *>(u->arg)->sym;
    } else {
      i.c = *static_cast<const tgc_cval *>(u->arg);
    }
    return emit(i);
  }

  int alu(tgc_uop *u) {
    tgc_dtype dt = (tgc_dtype)u->dtype;
    if (u->op == TGC_OP_CAST || u->op == TGC_OP_BITCAST) {
      tgc_cmp_ins i = tgc_cmp_make(u->op == TGC_OP_CAST ? TGC_CMP_CAST : TGC_CMP_BITCAST, dt, {value(u->src[0])});
      i.from = (tgc_dtype)u->src[0]->dtype;
      return emit(i);
    }
    tgc_cmp_ins i = tgc_cmp_make(TGC_CMP_ALU, dt);
    i.op = (tgc_op)u->op;
    for (int k = 0; k < u->nsrc; k++) i.in[i.nin++] = value(u->src[k]);
    i.ints = {8 * (int64_t)tgc_dtypes[u->src[0]->dtype].bytes - 1};
    int s = emit(i);
    bool grows = u->op == TGC_OP_NEG || u->op == TGC_OP_ADD || u->op == TGC_OP_SUB || u->op == TGC_OP_MUL ||
                 u->op == TGC_OP_SHL;
    return tgc_cmp_widened(dt) && grows ? emit(tgc_cmp_make(TGC_CMP_WRAP, dt, {s})) : s;
  }

  int reduce(tgc_uop *u) {
    tgc_dtype dt = (tgc_dtype)u->dtype;
    std::vector<int64_t> dims = dims_of(*static_cast<const uint32_t *>(u->arg), u->ndim);
    if (u->op == TGC_OP_REDUCE_MAX) return emit(tgc_cmp_make(TGC_CMP_MAX, dt, {value(u->src[0])}, dims));
    int s = contraction(u);
    if (s >= 0) return s;
    s = emit(tgc_cmp_make(TGC_CMP_SUM, dt, {value(u->src[0])}, dims));
    return tgc_cmp_widened(dt) ? emit(tgc_cmp_make(TGC_CMP_WRAP, dt, {s})) : s;
  }

  /* An operand of a product without its EXPANDs; *expanded says whether it
   * had any. */
  static tgc_uop *unexpanded(tgc_uop *x, bool *expanded) {
    while (x->op == TGC_OP_EXPAND && !tgc_uop_current(x)) {
      x = x->src[0];
      *expanded = true;
    }
    return x;
  }

  /* sum(expand(A) * expand(B)) over some axes as one einsum, or -1 when u
   * is not such a reduce.  Axes of size 1 and axes an operand is broadcast
   * along get no letter in that operand (a reshape drops them); the result
   * is reshaped back to u's keepdim shape. */
  int contraction(tgc_uop *u) {
    tgc_uop *m = u->src[0];
    if (m->op != TGC_OP_MUL || tgc_uop_current(m) || !tgc_dtypes[m->dtype].is_float) return -1;
    bool ea = false, eb = false;
    tgc_uop *ops[2] = {unexpanded(m->src[0], &ea), unexpanded(m->src[1], &eb)};
    if (!ea && !eb) return -1;
    uint32_t mask = *static_cast<const uint32_t *>(u->arg);
    int n = m->ndim, slots[2];
    std::string eq;
    for (int k = 0; k < 2; k++) {
      std::vector<int64_t> kept;
      if (k) eq += ',';
      for (int i = 0; i < n; i++) {
        if (m->shape[i] == 1 || ops[k]->shape[i] == 1) continue;
        eq += (char)('a' + i);
        kept.push_back(ops[k]->shape[i]);
      }
      slots[k] = value(ops[k]);
      if ((int)kept.size() != n) slots[k] = emit(tgc_cmp_make(TGC_CMP_RESHAPE, (tgc_dtype)m->dtype, {slots[k]}, kept));
    }
    eq += "->";
    for (int i = 0; i < n; i++)
      if (m->shape[i] != 1 && !((mask >> i) & 1)) eq += (char)('a' + i);
    tgc_cmp_ins e = tgc_cmp_make(TGC_CMP_EINSUM, (tgc_dtype)u->dtype, {slots[0], slots[1]});
    e.eq = eq;
    return emit(tgc_cmp_make(TGC_CMP_RESHAPE, (tgc_dtype)u->dtype, {emit(e)}, shape_of(u)));
  }

  /* The movement node u applied to slot x; as views only when view (an
   * assign's target chain). */
  int move(tgc_uop *u, int x, bool view) {
    tgc_dtype dt = (tgc_dtype)u->dtype;
    const tgc_uop *src = u->src[0];
    switch (u->op) {
    case TGC_OP_RESHAPE: return emit(tgc_cmp_make(view ? TGC_CMP_VIEW : TGC_CMP_RESHAPE, dt, {x}, shape_of(u)));
    case TGC_OP_EXPAND: return emit(tgc_cmp_make(TGC_CMP_EXPAND, dt, {x}, shape_of(u)));
    case TGC_OP_PERMUTE: {
      const int *perm = static_cast<const int *>(u->arg);
      return emit(tgc_cmp_make(TGC_CMP_PERMUTE, dt, {x}, std::vector<int64_t>(perm, perm + u->ndim)));
    }
    case TGC_OP_PAD: {
      const int64_t *pads = static_cast<const int64_t *>(u->arg);
      std::vector<int64_t> t;
      for (int i = u->ndim - 1; i >= 0; i--) t.insert(t.end(), {pads[2 * i], pads[2 * i + 1]});
      return emit(tgc_cmp_make(TGC_CMP_PAD, dt, {x}, t));
    }
    case TGC_OP_SHRINK: {
      const int64_t *r = static_cast<const int64_t *>(u->arg);
      for (int i = 0; i < u->ndim; i++)
        if (r[2 * i] != 0 || r[2 * i + 1] != src->shape[i])
          x = emit(tgc_cmp_make(TGC_CMP_NARROW, dt, {x}, {i, r[2 * i], r[2 * i + 1]}));
      return x;
    }
    case TGC_OP_SHRINKV: {
      const tgc_shrinkv *a = static_cast<const tgc_shrinkv *>(u->arg);
      return emit(tgc_cmp_make(TGC_CMP_NARROW, dt, {x}, {a->axis, var_plus(a->var, a->start), var_plus(a->var, a->start + a->len)}));
    }
    case TGC_OP_FLIP:
      if (view) fail("assign: a target flipped (FLIP) is no view in libtorch (negative strides)");
      return emit(tgc_cmp_make(TGC_CMP_FLIP, dt, {x}, dims_of(*static_cast<const uint32_t *>(u->arg), u->ndim)));
    default: fail(std::string("movement op ") + tgc_ops[u->op].name + " is not handled");
    }
  }

  int special(tgc_uop *u) {
    if (u->op == TGC_OP_CONTIGUOUS) return value(u->src[0]);
    if (u->op == TGC_OP_GATHER)
      return emit(tgc_cmp_make(TGC_CMP_GATHER, (tgc_dtype)u->dtype, {value(u->src[0]), value(u->src[1])}));
    if (u->op != TGC_OP_ASSIGN) fail(std::string("op ") + tgc_ops[u->op].name + " is not handled");
    /* the realized node the target views, as tgc's realize finds it */
    std::vector<tgc_uop *> chain;
    tgc_uop *t = u->src[0];
    for (; !tgc_uop_current(t); t = t->src[0]) {
      if (!IS_MOVE(t->op)) fail(std::string("assign: the target's chain holds a ") + tgc_ops[t->op].name);
      chain.push_back(t);
    }
    if (tgc_cmp_widened((tgc_dtype)t->dtype))
      fail(std::string("assign: a target of dtype ") + tgc_dtypes[t->dtype].name + " (no such type in this libtorch)");
    int base = value(t), view = base;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) view = move(*it, view, true);
    int v = value(u->src[1]);
    return emit(tgc_cmp_make(TGC_CMP_COPY, (tgc_dtype)u->dtype, {view, v, base}));
  }
};

} // namespace

tgc_cmp_prog tgc_cmp_translate(tgc_ctx *ctx, int n, tgc_tensor *const *outs) {
  tgc_cmp_prog p;
  translator t{&p, {}};
  for (int i = 0; i < n; i++) {
    if (outs[i]->ctx != ctx) fail("output " + std::to_string(i) + " belongs to another context");
    p.outs.push_back(t.value(outs[i]));
  }
  tgc_cmp_set_last_use(p);
  return p;
}

void tgc_cmp_set_last_use(tgc_cmp_prog &p) {
  p.last_use.resize(p.ins.size());
  for (size_t i = 0; i < p.ins.size(); i++) {
    p.last_use[i] = (int)i;
    for (int k = 0; k < p.ins[i].nin; k++) p.last_use[(size_t)p.ins[i].in[k]] = (int)i;
  }
}

namespace {
template <typename T> void put(std::string &k, const T &v) { k.append(reinterpret_cast<const char *>(&v), sizeof v); }
} // namespace

std::string tgc_cmp_key(const tgc_cmp_prog &p) {
  std::string k;
  k.reserve(p.ins.size() * 48);
  for (const tgc_cmp_ins &i : p.ins) {
    put(k, (int)i.kind), put(k, (int)i.dt), put(k, (int)i.from), put(k, (int)i.op), put(k, i.nin);
    for (int j = 0; j < i.nin; j++) put(k, i.in[j]);
    put(k, i.ints.size());
    for (int64_t v : i.ints) put(k, v);
    if (i.kind == TGC_CMP_CONST) put(k, i.c.f), put(k, i.c.i), put(k, i.is_sym);
    put(k, i.sym);
    k += i.eq;
    k += '\0';
  }
  for (const tgc_uop *u : p.leaves) put(k, (int)u->dtype);
  for (int s : p.outs) put(k, s);
  put(k, p.is_static);
  return k;
}

/* "...k,nk->...n": activations [..., K] times a weight [N, K] (a linear
 * layer), run as a matrix-vector or matrix product on the weight's
 * transposed view (eager.cpp, script.cpp), the form a libtorch user writes;
 * at::einsum would reshape the transpose into a batched product. */
bool tgc_cmp_is_linear(const std::string &eq) {
  size_t comma = eq.find(','), arrow = eq.find("->");
  if (comma == std::string::npos || arrow == std::string::npos) return false;
  std::string x = eq.substr(0, comma), y = eq.substr(comma + 1, arrow - comma - 1), z = eq.substr(arrow + 2);
  return y.size() == 2 && !x.empty() && x.back() == y[1] && z == x.substr(0, x.size() - 1) + y[0] &&
         x.find(y[0]) == std::string::npos;
}

