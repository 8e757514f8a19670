/* script.cpp - a program as TorchScript (TGC_CMP_TORCH_OPT on the CPU).
 *
 * The closest libtorch comes from C++ to torch.compile: the program is
 * rendered as the source of a module's forward, one statement per
 * instruction, compiled (Module::define), frozen (torch::jit::freeze:
 * constants folded, helpers inlined) and optimised for inference
 * (torch::jit::optimize_for_inference), on libtorch versions that have
 * them.  The realized tgc buffers the graph reads (weights, the KV cache)
 * and the four variables are forward's arguments, so the graph of every
 * decode step runs the same compiled module.  Sizes that depend on a
 * variable are int expressions of the arguments v0..v3.  TorchScript
 * source cannot name a dtype without Python, so dtypes are ScalarType
 * numbers (6 is float32).  NNC, libtorch's CPU fuser, is left off: this
 * build of libtorch has no LLVM, and NNC would interpret its kernels.
 */
#include "cmp_aten.h"

#include <torch/library.h>
#include <torch/script.h>
#include <torch/version.h>

#include <cmath>
#include <cstdio>

/* Bit reinterpretation as an operator of the module's own, tgc_cmp.bitcast
 * in the source: TorchScript cannot call Tensor.view(dtype), because a
 * dtype is an int there and an int matches view(size) first. */
static at::Tensor bitcast_op(const at::Tensor &x, int64_t dtype) { return x.view((at::ScalarType)dtype); }
TORCH_LIBRARY(tgc_cmp, m) { m.def("bitcast(Tensor(a) x, int dtype) -> Tensor(a)", bitcast_op); }

namespace {
/* Names in the source: torch (ATen, as libtorch's own resolver has it) and
 * tgc_cmp (the operator above). */
struct resolver : torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string &name, torch::jit::GraphFunction &,
                                                         const torch::jit::SourceRange &) override {
    if (name == "torch") return std::make_shared<torch::jit::BuiltinModule>("aten");
    if (name == "tgc_cmp") return std::make_shared<torch::jit::BuiltinModule>("tgc_cmp");
    return nullptr;
  }
  c10::TypePtr resolveType(const std::string &, const torch::jit::SourceRange &) override { return nullptr; }
};
} // namespace

namespace {

/* Helpers the instructions call as self.<name>: what tgc defines and ATen
 * does not, as in eager.cpp.  The same text serves the Python module of
 * tgc_cmp_python_source (indented into its class), where a dtype argument
 * is a torch.dtype rather than an int and tgc_cmp.bitcast is a view. */
const char *helpers = R"(
def cast(self, x: Tensor, t: int, m: int) -> Tensor:
    if m != 0:
        return torch.bitwise_and(x.long(), m).to(t)
    return x.to(t)

def bitcast(self, x: Tensor, s: int, d: int, t: int, m: int) -> Tensor:
    y = tgc_cmp.bitcast(x.to(s), d)
    if m != 0:
        return torch.bitwise_and(y.to(t), m)
    return y

def idiv(self, a: Tensor, b: Tensor) -> Tensor:
    z = torch.eq(b, 0)
    q = torch.div(a, torch.where(z, torch.ones_like(b), b), rounding_mode='trunc')
    return torch.where(z, torch.zeros_like(q), q)

def mod(self, a: Tensor, b: Tensor) -> Tensor:
    z = torch.eq(b, 0)
    r = torch.fmod(a, torch.where(z, torch.ones_like(b), b))
    return torch.where(z, torch.zeros_like(r), r)

def gather(self, table: Tensor, ids: Tensor) -> Tensor:
    n = table.size(0)
    flat = ids.reshape([-1]).long()
    ok = torch.logical_and(torch.ge(flat, 0), torch.lt(flat, n))
    rows = torch.index_select(table, 0, torch.clamp(flat, 0, n - 1))
    rows = torch.where(ok.unsqueeze(1), rows, torch.zeros_like(rows))
    return rows.reshape(list(ids.size()) + [table.size(1)])

def linear(self, a: Tensor, w: Tensor) -> Tensor:
    if a.numel() == a.size(-1):
        return torch.mv(w, a.reshape([-1])).reshape(list(a.size())[:-1] + [w.size(0)])
    return torch.matmul(a, w.t())

def assign(self, base: Tensor, view: Tensor, value: Tensor) -> Tensor:
    view.copy_(value)
    return base

def mask(self, x: Tensor, a: int, n: int, low: bool) -> Tensor:
    shape = [1] * x.dim()
    shape[a] = x.size(a)
    keep = torch.lt(torch.arange(x.size(a), device=x.device).reshape(shape), n)
    if not low:
        return torch.where(keep, x, torch.zeros_like(x))
    if x.is_floating_point():
        return torch.where(keep, x, torch.full_like(x, float('-inf')))
    return torch.where(keep, x, torch.full_like(x, -2147483648))

def rows(self, x: Tensor, a: int, start: int, n: int) -> Tensor:
    return torch.index_select(x, a, torch.add(torch.arange(n, device=x.device), start))

def index_assign(self, base: Tensor, a: int, start: int, value: Tensor) -> Tensor:
    base.index_copy_(a, torch.add(torch.arange(value.size(a), device=base.device), start), value.to(base.dtype))
    return base
)";

/* Rendering Python for torch.export rather than TorchScript (set while
 * tgc_cmp_python_source runs): dtypes by name, constants on the inputs'
 * device, variables as 0-d tensors, f16 contractions left to the device. */
bool python = false;

/* A size: a number, or an expression of v0..v3. */
std::string sym(int64_t d) {
  if (!tgc_sym_is(d)) return std::to_string(d);
  tgc_affine a = tgc_sym_get(d);
  std::string s = "(" + std::to_string(a.b);
  for (int k = 0; k < TGC_MAX_VARS; k++)
    if (a.c[k]) s += " + " + std::to_string(a.c[k]) + " * v" + std::to_string(k);
  return s + ")";
}

std::string list(const std::vector<int64_t> &xs) {
  std::string s = "[";
  for (size_t i = 0; i < xs.size(); i++) s += (i ? ", " : "") + sym(xs[i]);
  return s + "]";
}

std::string num(int64_t x) { return std::to_string(x); }
std::string code(at::ScalarType t) {
  if (!python) return std::to_string((int)t);
  switch (t) {
  case at::kByte: return "torch.uint8";
  case at::kChar: return "torch.int8";
  case at::kShort: return "torch.int16";
  case at::kInt: return "torch.int32";
  case at::kLong: return "torch.int64";
  case at::kHalf: return "torch.float16";
  case at::kFloat: return "torch.float32";
  case at::kDouble: return "torch.float64";
  case at::kBool: return "torch.bool";
  case at::kBFloat16: return "torch.bfloat16";
  default: throw tgc_cmp_error(std::string("no Python name for ScalarType ") + c10::toString(t));
  }
}

std::string literal(const tgc_cmp_ins &i) {
  if (i.is_sym) return sym(i.sym);
  if (!tgc_dtypes[i.dt].is_float) {
    if (i.c.i == INT64_MIN) return "(-9223372036854775807 - 1)";
    return std::to_string(i.dt == TGC_BOOL ? (i.c.i != 0) : i.c.i);
  }
  double f = i.c.f;
  if (std::isnan(f)) return "float('nan')";
  if (std::isinf(f)) return f > 0 ? "float('inf')" : "-float('inf')";
  char b[64];
  snprintf(b, sizeof b, "%.17g", f);
  std::string s = b;
  return s.find_first_of(".e") == std::string::npos ? s + ".0" : s;
}

/* Replaces $0 $1 $2 by the operands' names and $M by mask. */
std::string fill(const char *fmt, const std::vector<std::string> &x, int64_t mask) {
  std::string s;
  for (const char *p = fmt; *p; p++) {
    if (p[0] == '$' && p[1] >= '0' && p[1] <= '2') s += x[(size_t)(*++p - '0')];
    else if (p[0] == '$' && p[1] == 'M') s += num(mask), p++;
    else s += *p;
  }
  return s;
}

/* Each kind's expression; x: its operands' names. */
using script_fn = std::string (*)(const tgc_cmp_ins &, const std::vector<std::string> &x);

std::string script_LEAF(const tgc_cmp_ins &i, const std::vector<std::string> &) { return "a" + num(i.ints[0]); }
std::string script_CONST(const tgc_cmp_ins &i, const std::vector<std::string> &) {
  return "torch.full([], " + literal(i) + ", dtype=" + code(tgc_cmp_compute(i.dt)) + (python ? ", device=dev)" : ")");
}
std::string script_ALU(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return fill(tgc_cmp_alu(i.op).script, x, i.ints[0]);
}
std::string script_CAST(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return "self.cast(" + x[0] + ", " + code(tgc_cmp_compute(i.dt)) + ", " + num(tgc_cmp_wrap(i.dt)) + ")";
}
std::string script_BITCAST(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return "self.bitcast(" + x[0] + ", " + code(tgc_cmp_storage(i.from)) + ", " + code(tgc_cmp_storage(i.dt)) + ", " +
         code(tgc_cmp_compute(i.dt)) + ", " + num(tgc_cmp_wrap(i.dt)) + ")";
}
std::string script_WRAP(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return "torch.bitwise_and(" + x[0] + ", " + num(tgc_cmp_wrap(i.dt)) + ")";
}
std::string script_SUM(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return "torch.sum(" + x[0] + ", " + list(i.ints) + ", True, dtype=" + code(tgc_cmp_compute(i.dt)) + ")";
}
std::string script_MAX(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return "torch.amax(" + x[0] + ", " + list(i.ints) + ", True)";
}
std::string script_RESHAPE(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return x[0] + ".reshape(" + list(i.ints) + ")";
}
std::string script_VIEW(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return x[0] + ".view(" + list(i.ints) + ")";
}
std::string script_PERMUTE(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return x[0] + ".permute(" + list(i.ints) + ")";
}
std::string script_EXPAND(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return x[0] + ".expand(" + list(i.ints) + ")";
}
std::string script_PAD(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return "torch.constant_pad_nd(" + x[0] + ", " + list(i.ints) + ", 0)";
}
std::string script_NARROW(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return x[0] + ".narrow(" + num(i.ints[0]) + ", " + sym(i.ints[1]) + ", " + sym(i.ints[2]) + " - " + sym(i.ints[1]) + ")";
}
std::string script_FLIP(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return "torch.flip(" + x[0] + ", " + list(i.ints) + ")";
}
std::string script_EINSUM(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  if (i.dt == TGC_F16 && !python) /* as in eager.cpp: no f16 matmul on the CPU (of libtorch 1.13) */
    return tgc_cmp_is_linear(i.eq) ? "self.linear(" + x[0] + ".to(6), " + x[1] + ".to(6)).to(5)"
                                   : "torch.einsum('" + i.eq + "', [" + x[0] + ".to(6), " + x[1] + ".to(6)]).to(5)";
  if (tgc_cmp_is_linear(i.eq)) return "self.linear(" + x[0] + ", " + x[1] + ")";
  return "torch.einsum('" + i.eq + "', [" + x[0] + ", " + x[1] + "])";
}
std::string script_GATHER(const tgc_cmp_ins &, const std::vector<std::string> &x) {
  return "self.gather(" + x[0] + ", " + x[1] + ")";
}
std::string script_COPY(const tgc_cmp_ins &, const std::vector<std::string> &x) {
  return "self.assign(" + x[2] + ", " + x[0] + ", " + x[1] + ")";
}

/* Static programs (static.cpp), for completeness: on the CPU a static
 * program can run as TorchScript too (TGC_CMP_STATIC=1). */
std::string script_SYMVAL(const tgc_cmp_ins &i, const std::vector<std::string> &) {
  if (python) return sym(i.sym) + ".to(" + code(tgc_cmp_compute(i.dt)) + ")"; /* v0..v3 are 0-d tensors there */
  return "torch.full([], " + sym(i.sym) + ", dtype=" + code(tgc_cmp_compute(i.dt)) + ")";
}
std::string script_MASK(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return "self.mask(" + x[0] + ", " + num(i.ints[0]) + ", " + sym(i.sym) + ", " + (i.ints[1] ? "True" : "False") + ")";
}
std::string script_DYN_NARROW(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return "self.rows(" + x[0] + ", " + num(i.ints[0]) + ", " + sym(i.sym) + ", " + num(i.ints[1]) + ")";
}
std::string script_INDEX_COPY(const tgc_cmp_ins &i, const std::vector<std::string> &x) {
  return "self.index_assign(" + x[0] + ", " + num(i.ints[0]) + ", " + sym(i.sym) + ", " + x[1] + ")";
}

const script_fn script_fns[TGC_CMP_NUM_KINDS] = {
#define X(NAME, doc) script_##NAME,
    TGC_CMP_KINDS(X)
#undef X
};

#if TORCH_VERSION_MAJOR > 1 || (TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR >= 10)
#define TGC_CMP_HAVE_FREEZE 1 /* freeze and optimize_for_inference in C++ */
#endif

} // namespace

namespace {
/* forward's statements, one per instruction, at indent; then its return. */
std::string body(const tgc_cmp_prog &p, const std::string &indent) {
  std::string s;
  std::vector<std::string> names(p.ins.size());
  for (size_t n = 0; n < p.ins.size(); n++) {
    const tgc_cmp_ins &i = p.ins[n];
    std::vector<std::string> x;
    for (int k = 0; k < i.nin; k++) x.push_back(names[(size_t)i.in[k]]);
    std::string e = script_fns[i.kind](i, x);
    if (i.kind == TGC_CMP_LEAF) {
      names[n] = e;
      continue;
    }
    names[n] = "t" + num((int64_t)n);
    s += indent + names[n] + " = " + e + "\n";
  }
  s += indent + "return [";
  for (size_t k = 0; k < p.outs.size(); k++) s += (k ? ", " : "") + names[(size_t)p.outs[k]];
  return s + "]\n";
}
} // namespace

std::string tgc_cmp_script_source(const tgc_cmp_prog &p) {
  std::string s = helpers, args;
  for (size_t k = 0; k < p.leaves.size(); k++) args += "a" + num((int64_t)k) + ": Tensor, ";
  s += "\ndef forward(self, " + args + "v0: int, v1: int, v2: int, v3: int) -> List[Tensor]:\n";
  return s + body(p, "    ");
}

std::string tgc_cmp_python_source(const tgc_cmp_prog &p) {
  if (!p.is_static) throw tgc_cmp_error("only a static program is rendered as Python for torch.export");
  struct on { /* the renderers' Python switch, off again however this returns */
    on() { python = true; }
    ~on() { python = false; }
  } scope;
  std::string s = "# A tgc step graph, rendered by tgc's compare module for torch.export and AOTInductor.\n"
                  "import torch\nfrom torch import Tensor\n\n\n"
                  "class tgc_cmp:  # the TorchScript module's own operator, in Python\n"
                  "    @staticmethod\n    def bitcast(x, d):\n        return x.view(d)\n\n\n"
                  "class Step(torch.nn.Module):";
  for (const char *p = helpers; *p; p++) { /* the helpers, indented into the class */
    s += *p;
    if (*p == '\n' && p[1] && p[1] != '\n') s += "    ";
  }
  s += "\n    def forward(self";
  for (size_t k = 0; k < p.leaves.size(); k++) s += ", a" + num((int64_t)k);
  s += ", vars):\n        dev = vars.device\n";
  for (int k = 0; k < TGC_MAX_VARS; k++) s += "        v" + num(k) + " = vars[" + num(k) + "]\n";
  return s + body(p, "        ");
}

struct tgc_cmp_script {
  torch::jit::Module mod;
};

std::shared_ptr<tgc_cmp_script> tgc_cmp_script_new(const tgc_cmp_prog &p) {
  torch::jit::Module m("tgc_step");
  m.register_attribute("training", c10::BoolType::get(), false);
  m.define(tgc_cmp_script_source(p), std::make_shared<resolver>());
  m.eval();
  auto s = std::make_shared<tgc_cmp_script>();
#ifdef TGC_CMP_HAVE_FREEZE
  torch::jit::Module frozen = torch::jit::freeze(m);
  s->mod = torch::jit::optimize_for_inference(frozen);
#else
  s->mod = m;
#endif
  return s;
}

const char *tgc_cmp_script_passes(void) {
#ifdef TGC_CMP_HAVE_FREEZE
  return "TorchScript, frozen, optimized for inference";
#else
  return "TorchScript (this libtorch has no freeze or optimize_for_inference)";
#endif
}

std::vector<at::Tensor> tgc_cmp_script_run(tgc_cmp_script &s, const std::vector<at::Tensor> &leaves,
                                           const int64_t *vars) {
  std::vector<c10::IValue> args(leaves.begin(), leaves.end());
  for (int k = 0; k < TGC_MAX_VARS; k++) args.emplace_back(vars[k]);
  return s.mod.forward(args).toTensorVector();
}
