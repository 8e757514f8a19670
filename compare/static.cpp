/* static.cpp - a program whose sizes depend on no variable
 * (tgc_cmp_static in cmp_internal.h), the form a CUDA graph can hold.
 *
 * A decode step's graph has sizes that move with start_pos: the KV cache
 * is read over rows 0..start_pos, and the new row is written at start_pos.
 * A CUDA graph fixes every launch's shapes when it is captured, so the
 * step is rewritten the way a PyTorch user rewrites a model for CUDA
 * graphs (a static KV cache with a mask):
 *   - an axis of symbolic length is computed at its largest extent; where
 *     it is reduced, the rows past the current length are masked first (0
 *     for a sum or a contraction, the lowest value for a max), so they
 *     never reach a result; elsewhere they are computed and ignored, and
 *     an output is cut to its current size after the run;
 *   - a window of fixed length at a symbolic start (the rope row, the
 *     cache row) is a gather of the rows start.., and an assign into one
 *     is an index_copy_ into the base;
 *   - a constant that is a symbolic size is computed from the variables'
 *     tensor, which the caller updates before every replay.
 * The walk infers each value's symbolic shape (sizes of ops/sym.c) from
 * its instruction, which is how it knows which axes are symbolic.  What it
 * cannot express this way (padding or flipping a symbolic axis, a reshape
 * that merges one, a window into one) is an error, never a silently
 * different function.  With half, f32 values are computed in f16: the
 * precision torch-opt uses on CUDA.
 */
#include "cmp_internal.h"

#include <algorithm>

namespace {

[[noreturn]] void fail(const std::string &what) { throw tgc_cmp_error("static program: " + what); }

using shape_t = std::vector<int64_t>; /* symbolic sizes */

/* a - b of two sizes. */
int64_t size_sub(int64_t a, int64_t b) {
  tgc_affine x = tgc_sym_get(a), y = tgc_sym_get(b);
  for (int k = 0; k < TGC_MAX_VARS; k++) x.c[k] -= y.c[k];
  x.b -= y.b;
  int64_t d;
  if (!tgc_sym_put(&x, &d)) fail("a window's length cannot be represented");
  return d;
}

struct pass {
  const tgc_cmp_prog &p;
  const tgc_ctx *ctx;
  tgc_dtype lo; /* f32 values become this (f16, or bf16 for tests on the CPU); f32: unchanged */
  bool half;    /* lo != f32 */
  tgc_cmp_prog q;
  std::vector<int> map;       /* p's slot -> q's slot; -1: folded into the assign that reads it */
  std::vector<shape_t> shape; /* p's slot -> its symbolic shape */
  std::vector<int> readers;   /* p's slot -> instructions reading it */
  std::vector<char> is_view;  /* p's slot is the target view of an assign */

  tgc_dtype hd(tgc_dtype dt) const { return dt == TGC_F32 ? lo : dt; }
  shape_t largest(const shape_t &s) const {
    shape_t r(s.size());
    for (size_t i = 0; i < s.size(); i++) r[i] = tgc_sym_max(ctx, s[i]);
    return r;
  }
  int emit(tgc_cmp_ins i) {
    q.ins.push_back(std::move(i));
    return (int)q.ins.size() - 1;
  }
  /* q's slot of operand k of i */
  int in(const tgc_cmp_ins &i, int k) const {
    int s = map[(size_t)i.in[k]];
    if (s < 0) fail("a window at a symbolic start is read as a value and assigned to");
    return s;
  }
  const shape_t &shape_in(const tgc_cmp_ins &i, int k) const { return shape[(size_t)i.in[k]]; }

  /* i with its operands in q's slots and its dtype made half where asked. */
  tgc_cmp_ins copy(const tgc_cmp_ins &i) const {
    tgc_cmp_ins r = i;
    for (int k = 0; k < i.nin; k++) r.in[k] = in(i, k);
    r.dt = hd(i.dt);
    r.from = hd(i.from);
    return r;
  }

  /* q's slot x, of p-shape s, with the rows of symbolic axis a past its
   * current length set to 0 (or the lowest value). */
  int mask(int x, const shape_t &s, int a, bool lowest, tgc_dtype dt) {
    tgc_cmp_ins m = tgc_cmp_make(TGC_CMP_MASK, dt, {x}, {a, lowest ? 1 : 0});
    m.sym = s[(size_t)a];
    return emit(m);
  }

  /* Whether the view chain from slot v down to base (an assign's target)
   * holds only views: a window at a symbolic start is a gather here, and
   * writing into a gather's result would write nowhere. */
  bool views_only(int v, int base) const {
    for (; v != base; v = p.ins[(size_t)v].in[0]) {
      const tgc_cmp_ins &i = p.ins[(size_t)v];
      if (i.nin < 1 || i.kind == TGC_CMP_LEAF) return false;
      if (i.kind == TGC_CMP_NARROW && tgc_sym_is(i.ints[1])) return false;
    }
    return true;
  }

  int leaf(const tgc_cmp_ins &i, size_t s) {
    const tgc_uop *u = p.leaves[(size_t)i.ints[0]];
    shape[s] = shape_t(u->shape, u->shape + u->ndim);
    return emit(copy(i)); /* the caller hands it in at its largest extent, in the LEAF's dtype */
  }

  int constant(const tgc_cmp_ins &i) {
    if (!i.is_sym) return emit(copy(i));
    tgc_cmp_ins v = tgc_cmp_make(TGC_CMP_SYMVAL, hd(i.dt));
    v.sym = i.sym;
    return emit(v);
  }

  /* Elementwise: the operands' shapes broadcast (aligned at the right). */
  int alu(const tgc_cmp_ins &i, size_t s) {
    shape_t r;
    for (int k = 0; k < i.nin; k++) {
      const shape_t &x = shape_in(i, k);
      if (x.size() > r.size()) r.insert(r.begin(), x.size() - r.size(), 1);
      for (size_t j = 0; j < x.size(); j++) {
        int64_t &d = r[r.size() - x.size() + j];
        if (d == 1) d = x[j];
      }
    }
    shape[s] = r;
    return emit(copy(i));
  }

  int cast(const tgc_cmp_ins &i, size_t s) {
    shape[s] = shape_in(i, 0);
    if (hd(i.from) == hd(i.dt) && !tgc_cmp_widened(i.dt)) return in(i, 0); /* f32 -> f32 became f16 -> f16 */
    return emit(copy(i));
  }

  /* Reinterpreting bits is exact in the graph's dtypes: an f32 source is
   * widened back to f32 first, an f32 result narrowed after. */
  int bitcast(const tgc_cmp_ins &i, size_t s) {
    shape_t r = shape_in(i, 0);
    int fb = tgc_dtypes[i.from].bytes, tb = tgc_dtypes[i.dt].bytes;
    if (fb != tb && !r.empty() && !tgc_sym_is(r.back())) r.back() = r.back() * fb / tb;
    shape[s] = r;
    int x = in(i, 0);
    if (half && i.from == TGC_F32) x = to_dtype(x, TGC_F32);
    tgc_cmp_ins b = i;
    b.in[0] = x;
    int y = emit(b);
    return half && i.dt == TGC_F32 ? to_dtype(y, lo) : y;
  }

  /* In half, a float sum is taken in f32 and stays f32 (a sum of squares
   * over 2048 features can pass f16's 65504), as LLaMA's reference code
   * computes its norms and softmax; ops after it promote to f32 until the
   * next contraction casts back to f16. */
  int reduce(const tgc_cmp_ins &i, size_t s) {
    const shape_t &x = shape_in(i, 0);
    int v = in(i, 0);
    tgc_dtype vt = hd(p.ins[(size_t)i.in[0]].dt);
    bool wide = half && i.kind == TGC_CMP_SUM && tgc_dtypes[i.dt].is_float;
    if (wide) v = to_dtype(v, TGC_F32), vt = TGC_F32;
    shape_t r = x;
    for (int64_t d : i.ints) {
      if (tgc_sym_is(x[(size_t)d])) v = mask(v, x, (int)d, i.kind == TGC_CMP_MAX, vt);
      r[(size_t)d] = 1;
    }
    shape[s] = r;
    tgc_cmp_ins c = copy(i);
    c.in[0] = v;
    if (wide) c.dt = TGC_F32;
    return emit(c);
  }

  /* q's slot x converted to dt (a no-op where it already is). */
  int to_dtype(int x, tgc_dtype dt) {
    tgc_cmp_ins c = tgc_cmp_make(TGC_CMP_CAST, dt, {x});
    c.from = dt == TGC_F32 ? lo : TGC_F32;
    return emit(c);
  }

  /* A reshape keeps every symbolic axis whole (tgc's rule): each symbolic
   * size of the source is a size of the result. */
  int reshape(const tgc_cmp_ins &i, size_t s) {
    const shape_t &x = shape_in(i, 0);
    for (int64_t d : x)
      if (tgc_sym_is(d) && std::count(x.begin(), x.end(), d) != std::count(i.ints.begin(), i.ints.end(), d))
        fail("a reshape merges an axis of symbolic length");
    shape[s] = i.ints;
    tgc_cmp_ins c = copy(i);
    c.ints = largest(i.ints);
    return emit(c);
  }

  int permute(const tgc_cmp_ins &i, size_t s) {
    const shape_t &x = shape_in(i, 0);
    shape_t r;
    for (int64_t d : i.ints) r.push_back(x[(size_t)d]);
    shape[s] = r;
    return emit(copy(i));
  }

  int expand(const tgc_cmp_ins &i, size_t s) {
    shape[s] = i.ints;
    tgc_cmp_ins c = copy(i);
    c.ints = largest(i.ints);
    return emit(c);
  }

  /* ints: torch's order, the last axis first. */
  int pad(const tgc_cmp_ins &i, size_t s) {
    shape_t r = shape_in(i, 0);
    for (size_t j = 0; j < i.ints.size() / 2; j++) {
      int64_t &d = r[r.size() - 1 - j], a = i.ints[2 * j], b = i.ints[2 * j + 1];
      if (tgc_sym_is(a) || tgc_sym_is(b)) fail("padding by a symbolic amount");
      if ((a || b) && tgc_sym_is(d)) fail("padding an axis of symbolic length");
      d = tgc_sym_is(d) ? d : d + a + b;
    }
    shape[s] = r;
    return emit(copy(i));
  }

  int narrow(const tgc_cmp_ins &i, size_t s) {
    int64_t a = i.ints[0], start = i.ints[1], end = i.ints[2], len = size_sub(end, start);
    shape_t r = shape_in(i, 0);
    if (tgc_sym_is(r[(size_t)a])) fail("a window of an axis of symbolic length");
    r[(size_t)a] = len;
    shape[s] = r;
    if (!tgc_sym_is(start) && !tgc_sym_is(end)) return emit(copy(i));
    if (!tgc_sym_is(len)) { /* rows start..start+len: the assign reading it writes them, or a gather */
      if (is_view[s] && readers[s] == 1) return -1;
      tgc_cmp_ins g = tgc_cmp_make(TGC_CMP_DYN_NARROW, hd(i.dt), {in(i, 0)}, {a, len});
      g.sym = start;
      return emit(g);
    }
    if (tgc_sym_is(start)) fail("a window whose start and length both vary");
    tgc_cmp_ins c = copy(i); /* rows start..: the largest extent, masked where reduced */
    c.ints[2] = tgc_sym_max(ctx, end);
    return emit(c);
  }

  int flip(const tgc_cmp_ins &i, size_t s) {
    shape[s] = shape_in(i, 0);
    for (int64_t d : i.ints)
      if (tgc_sym_is(shape[s][(size_t)d])) fail("flipping an axis of symbolic length");
    return emit(copy(i));
  }

  /* The operands' letters index their axes; a contracted letter of
   * symbolic size is masked to 0 in every operand that has it. */
  int einsum(const tgc_cmp_ins &i, size_t s) {
    size_t comma = i.eq.find(','), arrow = i.eq.find("->");
    std::string ops[2] = {i.eq.substr(0, comma), i.eq.substr(comma + 1, arrow - comma - 1)};
    std::string out = i.eq.substr(arrow + 2);
    tgc_cmp_ins c = copy(i);
    int64_t size_of[128] = {0};
    for (int k = 0; k < 2; k++) {
      const shape_t &x = shape_in(i, k);
      if (x.size() != ops[k].size()) fail("an einsum operand's rank differs from its letters ('" + i.eq + "')");
      for (size_t j = 0; j < x.size(); j++) {
        size_of[(unsigned char)ops[k][j]] = x[j];
        if (tgc_sym_is(x[j]) && out.find(ops[k][j]) == std::string::npos)
          c.in[k] = mask(c.in[k], x, (int)j, false, hd(p.ins[(size_t)i.in[k]].dt));
      }
    }
    shape_t r;
    for (char l : out) r.push_back(size_of[(unsigned char)l]);
    shape[s] = r;
    if (half && c.dt == lo) /* operands that a wide sum left in f32 */
      for (int k = 0; k < 2; k++) c.in[k] = to_dtype(c.in[k], lo);
    return emit(c);
  }

  int gather(const tgc_cmp_ins &i, size_t s) {
    const shape_t &table = shape_in(i, 0);
    if (tgc_sym_is(table[0])) fail("a gather from a table of symbolic length");
    shape_t r = shape_in(i, 1);
    r.push_back(table[1]);
    shape[s] = r;
    return emit(copy(i));
  }

  int assign(const tgc_cmp_ins &i, size_t s) {
    int view = i.in[0], base = i.in[2];
    shape[s] = shape[(size_t)base];
    for (int64_t d : shape_in(i, 1))
      if (tgc_sym_is(d)) fail("an assign of a value of symbolic length");
    if (map[(size_t)view] >= 0) {
      if (!views_only(view, base)) fail("an assign through a window at a symbolic start and other views");
      return emit(copy(i));
    }
    const tgc_cmp_ins &w = p.ins[(size_t)view]; /* the window at a symbolic start */
    if (w.in[0] != base) fail("an assign into a window at a symbolic start of a view");
    tgc_cmp_ins c = tgc_cmp_make(TGC_CMP_INDEX_COPY, hd(i.dt), {in(i, 2), in(i, 1)}, {w.ints[0]});
    c.sym = w.ints[1];
    return emit(c);
  }

  int one(const tgc_cmp_ins &i, size_t s) {
    switch (i.kind) {
    case TGC_CMP_LEAF: return leaf(i, s);
    case TGC_CMP_CONST: shape[s] = {}; return constant(i);
    case TGC_CMP_ALU: return alu(i, s);
    case TGC_CMP_CAST: return cast(i, s);
    case TGC_CMP_BITCAST: return bitcast(i, s);
    case TGC_CMP_WRAP: shape[s] = shape_in(i, 0); return emit(copy(i));
    case TGC_CMP_SUM:
    case TGC_CMP_MAX: return reduce(i, s);
    case TGC_CMP_RESHAPE:
    case TGC_CMP_VIEW: return reshape(i, s);
    case TGC_CMP_PERMUTE: return permute(i, s);
    case TGC_CMP_EXPAND: return expand(i, s);
    case TGC_CMP_PAD: return pad(i, s);
    case TGC_CMP_NARROW: return narrow(i, s);
    case TGC_CMP_FLIP: return flip(i, s);
    case TGC_CMP_EINSUM: return einsum(i, s);
    case TGC_CMP_GATHER: return gather(i, s);
    case TGC_CMP_COPY: return assign(i, s);
    default: fail("an instruction of a static program in a graph's program");
    }
  }

  void run() {
    size_t n = p.ins.size();
    map.assign(n, -1);
    shape.resize(n);
    readers.assign(n, 0);
    is_view.assign(n, 0);
    for (const tgc_cmp_ins &i : p.ins) {
      for (int k = 0; k < i.nin; k++) readers[(size_t)i.in[k]]++;
      if (i.kind == TGC_CMP_COPY) is_view[(size_t)i.in[0]] = 1;
    }
    q.leaves = p.leaves;
    for (size_t s = 0; s < n; s++) map[s] = one(p.ins[s], s);
    for (int o : p.outs) {
      if (map[(size_t)o] < 0) fail("an output is a window at a symbolic start");
      q.outs.push_back(map[(size_t)o]);
      q.out_shapes.push_back(shape[(size_t)o]);
    }
    q.is_static = true;
    tgc_cmp_set_last_use(q);
  }
};

} // namespace

tgc_cmp_prog tgc_cmp_static(const tgc_cmp_prog &p, const tgc_ctx *ctx, tgc_dtype half) {
  if (half != TGC_F32 && half != TGC_F16 && half != TGC_BF16) fail("half must be f16, bf16 or f32 (none)");
  pass t{p, ctx, half, half != TGC_F32, {}, {}, {}, {}, {}};
  t.run();
  return t.q;
}
