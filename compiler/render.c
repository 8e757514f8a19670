/* render.c - linear IR -> source text.
 *
 * One C-style renderer serves every language; a language is a table
 * (tgc_lang): type names, op formats, load/store/vector spellings, a
 * preamble, and hooks for the signature and the vector types.  The CUDA
 * and OpenCL tables set only what differs from C; a NULL entry falls back
 * to the C table.  Each instruction becomes one line; constants are
 * written inline as literals, everything else gets a name (v12, acc3).
 */
#include "tgc_internal.h"

#include <math.h>

typedef struct rctx {
  const tgc_lang *lang;
  const tgc_linprog *p;
  tgc_str *out;
  int depth;
  char **names; /* per instruction: how to refer to it */
  bool *used;   /* per instruction: some instruction reads it */
} rctx;

/* ---- table lookups with fallback to C ------------------------------------ */

#define FIELD(lang, f) ((lang)->f ? (lang)->f : (lang)->base ? (lang)->base->f : NULL)

static const char *op_fmt(const tgc_lang *l, tgc_op op) {
  return l->op_fmt[op] ? l->op_fmt[op] : l->base ? l->base->op_fmt[op] : NULL;
}

static const char *tname(const tgc_lang *l, tgc_dtype dt) {
  const char *n = l->type_names[dt];
  if (!n && l->base) n = l->base->type_names[dt];
  return n ? n : tgc_dtypes[dt].c_type;
}

static const char *pname(const tgc_lang *l, tgc_dtype dt) {
  const char *n = l->ptr_names[dt];
  return n ? n : tname(l, dt);
}

static void type_of(rctx *r, tgc_str *out, const tgc_lin *l, bool unaligned) {
  if (l->vec > 1) {
    r->lang->vec_type(out, (tgc_dtype)l->dtype, l->vec, unaligned);
  } else {
    tgc_str_cat(out, tname(r->lang, (tgc_dtype)l->dtype));
  }
}

/* ---- expanding a format ----------------------------------------------------- */

typedef struct fmtargs {
  const tgc_lin *l;
  const char *ptr, *idx; /* $P $I */
  int lane;              /* $L */
} fmtargs;

static void expand(rctx *r, const char *fmt, fmtargs a) {
  const tgc_lin *l = a.l;
  tgc_dtype dt = (tgc_dtype)l->dtype;
  const tgc_lin *s0 = l->nsrc ? &r->p->ins[l->src[0]] : l;
  for (const char *c = fmt; *c; c++) {
    if (*c != '$') {
      char ch[2] = {*c, 0};
      tgc_str_cat(r->out, ch);
      continue;
    }
    switch (*++c) {
    case '0': case '1': case '2': tgc_str_cat(r->out, r->names[l->src[*c - '0']]); break;
    case 'T': type_of(r, r->out, l, false); break;
    case 'S': type_of(r, r->out, s0, false); break;
    case 'V': r->lang->vec_type(r->out, dt, l->vec, false); break;
    case 'U': r->lang->vec_type(r->out, dt, l->vec, true); break;
    case 'W': tgc_str_fmt(r->out, "%d", l->vec); break;
    case 'L': tgc_str_fmt(r->out, "%d", a.lane); break;
    case 'X': tgc_str_fmt(r->out, "%x", a.lane); break;
    case 'P': tgc_str_cat(r->out, a.ptr); break;
    case 'I': tgc_str_cat(r->out, a.idx); break;
    case 'B': tgc_str_fmt(r->out, "%d", 8 * tgc_dtypes[dt].bytes - 1); break;
    case 'F': {
      tgc_dtype m = l->op == TGC_OP_CAST ? (tgc_dtype)s0->dtype : dt;
      tgc_str_cat(r->out, m == TGC_F64 ? "" : FIELD(r->lang, math_suffix));
      break;
    }
    default: TGC_ASSERT(!"bad format");
    }
  }
}

/* ---- literals and names ----------------------------------------------------- */

static char *literal(const tgc_lang *lang, const tgc_lin *l) {
  char buf[96];
  tgc_dtype dt = (tgc_dtype)l->dtype;
  double f = l->c.f;
  const char *sfx = FIELD(lang, i64_suffix);
  if (dt == TGC_F32 || dt == TGC_F64) {
    int k = dt == TGC_F64;
    if (isnan(f)) snprintf(buf, sizeof buf, "%s", FIELD(lang, nan[k]));
    else if (isinf(f)) snprintf(buf, sizeof buf, "%s%s", f < 0 ? "-" : "", FIELD(lang, inf[k]));
    else if (!k) snprintf(buf, sizeof buf, "%af", (double)(float)f);
    else snprintf(buf, sizeof buf, "%a", f);
  } else if (dt == TGC_BOOL) {
    snprintf(buf, sizeof buf, "%d", l->c.i != 0);
  } else if (l->c.i == INT64_MIN) {
    snprintf(buf, sizeof buf, "((%s)(-9223372036854775807%s-1))", tname(lang, dt), sfx);
  } else if (dt == TGC_I64) {
    snprintf(buf, sizeof buf, "%lld%s", (long long)l->c.i, sfx);
  } else {
    snprintf(buf, sizeof buf, "((%s)%lld%s)", tname(lang, dt), (long long)l->c.i, sfx);
  }
  return tgc_xstrdup(buf);
}

static char *name_of(const tgc_lang *lang, const tgc_lin *l, int i) {
  char buf[48];
  switch (l->op) {
  case TGC_OP_CONST: return literal(lang, l);
  case TGC_OP_DEFINE_GLOBAL: snprintf(buf, sizeof buf, "b%lld", (long long)l->c.i); break;
  case TGC_OP_SPECIAL: snprintf(buf, sizeof buf, "%s", FIELD(lang, special[l->c.i])); break;
  case TGC_OP_DEFINE_VAR: snprintf(buf, sizeof buf, lang->gpu ? "var%lld" : "vars[%lld]", (long long)l->c.i); break;
  case TGC_OP_DEFINE_ACC: snprintf(buf, sizeof buf, "acc%d", i); break;
  case TGC_OP_DEFINE_LOCAL: snprintf(buf, sizeof buf, "temp%d", i); break;
  case TGC_OP_RANGE: snprintf(buf, sizeof buf, "i%d", i); break;
  default: snprintf(buf, sizeof buf, "v%d", i);
  }
  return tgc_xstrdup(buf);
}

static void indent(rctx *r) {
  for (int i = 0; i < r->depth + 1; i++) tgc_str_cat(r->out, "  ");
}

/* ---- instructions -------------------------------------------------------- */

static bool is_half(int dt) { return dt == TGC_F16 || dt == TGC_BF16; }

static void render_cast(rctx *r, const tgc_lin *l) {
  const tgc_lang *lang = r->lang;
  tgc_dtype to = (tgc_dtype)l->dtype, from = (tgc_dtype)r->p->ins[l->src[0]].dtype;
  const char *fmt = FIELD(lang, cast);
  if (l->vec > 1 && lang == &tgc_lang_c && ((from == TGC_F16 && to == TGC_F32) || (from == TGC_F32 && to == TGC_F16))) {
    tgc_str_fmt(r->out, "tgc_%s_to_%s_x%d(%s)", tgc_dtypes[from].name, tgc_dtypes[to].name, l->vec,
                r->names[l->src[0]]);
    return;
  }
  if (l->vec > 1) fmt = FIELD(lang, vec_cast);
  else if (to == TGC_BF16) fmt = FIELD(lang, cast_to_bf16);
  else if (from == TGC_BF16) fmt = FIELD(lang, cast_from_bf16);
  else if (to == TGC_F16) fmt = FIELD(lang, cast_to_half);
  else if (from == TGC_F16) fmt = FIELD(lang, cast_from_half);
  else if (to == TGC_BOOL) fmt = FIELD(lang, cast_to_bool);
  expand(r, fmt, (fmtargs){.l = l});
}

static void render_alu(rctx *r, const tgc_lin *l) {
  const tgc_lang *lang = r->lang;
  tgc_op op = (tgc_op)l->op;
  if (op == TGC_OP_CAST) return render_cast(r, l);
  const char *fmt = op == TGC_OP_BITCAST ? FIELD(lang, bitcast) : op_fmt(lang, op);
  tgc_dtype dt = (tgc_dtype)l->dtype;
  const tgc_lin *d = l->nsrc > 1 ? &r->p->ins[l->src[1]] : NULL;
  bool plain = d && d->op == TGC_OP_CONST && d->c.i > 0; /* index math: no guards needed */
  if (op == TGC_OP_IDIV) fmt = plain ? "($0 / $1)" : tgc_dtypes[dt].is_signed ? FIELD(lang, idiv_signed) : fmt;
  if (op == TGC_OP_MOD) fmt = plain ? "($0 % $1)" : tgc_dtypes[dt].is_signed ? FIELD(lang, mod_signed) : fmt;
  TGC_ASSERT(fmt);
  expand(r, fmt, (fmtargs){.l = l});
}

/* Declares "const T vN = " for instruction i. */
static void decl(rctx *r, int i) {
  indent(r);
  tgc_str_cat(r->out, "const ");
  type_of(r, r->out, &r->p->ins[i], false);
  tgc_str_fmt(r->out, " %s = ", r->names[i]);
}

static bool is_local(rctx *r, const tgc_lin *l) { return r->p->ins[l->src[0]].op == TGC_OP_DEFINE_LOCAL; }

static void render_load(rctx *r, int i) {
  const tgc_lin *l = &r->p->ins[i];
  const tgc_lang *lang = r->lang;
  fmtargs a = {.l = l, .ptr = r->names[l->src[0]], .idx = r->names[l->src[1]]};
  bool half = is_half(l->dtype) && !is_local(r, l);
  const char *fmt = l->vec > 1 ? (half && lang->vec_load_half ? lang->vec_load_half : FIELD(lang, vec_load))
                               : (half && lang->load_half ? lang->load_half : FIELD(lang, load));
  decl(r, i);
  if (l->nsrc == 3) tgc_str_fmt(r->out, "%s ? ", r->names[l->src[2]]);
  expand(r, fmt, a);
  if (l->nsrc == 3) {
    tgc_str_cat(r->out, " : ");
    if (l->vec > 1) {
      expand(r, FIELD(lang, vectorize_open), a);
      for (int k = 0; k < l->vec; k++) tgc_str_cat(r->out, k ? ", 0" : "0");
      expand(r, FIELD(lang, vectorize_close), a);
    } else {
      expand(r, "(($T)0)", a);
    }
  }
  tgc_str_cat(r->out, ";\n");
}

static void render_store(rctx *r, const tgc_lin *l) {
  const tgc_lang *lang = r->lang;
  fmtargs a = {.l = l, .ptr = r->names[l->src[0]], .idx = r->names[l->src[1]]};
  tgc_lin shifted = *l; /* $0 names the value, src[2] */
  int src[1] = {l->src[2]};
  shifted.src = src;
  shifted.nsrc = 1;
  a.l = &shifted;
  bool half = is_half(l->dtype) && !is_local(r, l);
  const char *fmt = l->vec > 1 ? (half && lang->vec_store_half ? lang->vec_store_half : FIELD(lang, vec_store))
                               : (half && lang->store_half ? lang->store_half : FIELD(lang, store));
  indent(r);
  expand(r, fmt, a);
  tgc_str_cat(r->out, "\n");
}

static void render_vectorize(rctx *r, int i) {
  const tgc_lin *l = &r->p->ins[i];
  decl(r, i);
  expand(r, FIELD(r->lang, vectorize_open), (fmtargs){.l = l});
  for (int k = 0; k < l->nsrc; k++) tgc_str_fmt(r->out, "%s%s", k ? ", " : "", r->names[l->src[k]]);
  expand(r, FIELD(r->lang, vectorize_close), (fmtargs){.l = l});
  tgc_str_cat(r->out, ";\n");
}

static void render_control(rctx *r, int i) {
  const tgc_lin *l = &r->p->ins[i];
  const char *i64 = tname(r->lang, TGC_I64);
  switch (l->op) {
  case TGC_OP_RANGE:
    indent(r);
    tgc_str_fmt(r->out, "for (%s %s = %s; %s < %s; %s++) {\n", i64, r->names[i], r->names[l->src[0]],
                r->names[i], r->names[l->src[1]], r->names[i]);
    r->depth++;
    return;
  case TGC_OP_IF:
    indent(r);
    tgc_str_fmt(r->out, "if (%s) {\n", r->names[l->src[0]]);
    r->depth++;
    return;
  case TGC_OP_ENDRANGE: case TGC_OP_ENDIF:
    r->depth--;
    indent(r);
    tgc_str_cat(r->out, "}\n");
    return;
  case TGC_OP_BARRIER:
    indent(r);
    tgc_str_fmt(r->out, "%s\n", FIELD(r->lang, barrier));
    return;
  case TGC_OP_DEFINE_LOCAL: {
    indent(r);
    char n[32];
    snprintf(n, sizeof n, "%lld", (long long)l->c.i);
    expand(r, FIELD(r->lang, local_decl), (fmtargs){.l = l, .ptr = r->names[i], .idx = n});
    tgc_str_cat(r->out, "\n");
    return;
  }
  case TGC_OP_DEFINE_ACC:
    indent(r);
    type_of(r, r->out, l, false);
    tgc_str_fmt(r->out, " %s = %s;\n", r->names[i], r->names[l->src[0]]);
    return;
  case TGC_OP_ACC_ASSIGN:
    indent(r);
    tgc_str_fmt(r->out, "%s = %s;\n", r->names[l->src[0]], r->names[l->src[1]]);
    return;
  default: TGC_ASSERT(!"not a control instruction");
  }
}

static void render_ins(rctx *r, int i) {
  const tgc_lin *l = &r->p->ins[i];
  switch (l->op) {
  case TGC_OP_CONST: case TGC_OP_DEFINE_GLOBAL: case TGC_OP_SPECIAL: case TGC_OP_DEFINE_VAR:
    return; /* named inline */
  case TGC_OP_DEFINE_LOCAL: return; /* declared at the top (tgc_render) */
  case TGC_OP_PREFETCH: /* a hint, on the CPU only (GCC and Clang) */
    indent(r);
    tgc_str_fmt(r->out, "__builtin_prefetch((const char *)(%s + %s) + %lld);\n", r->names[l->src[0]],
                r->names[l->src[1]], (long long)l->c.i);
    return;
  case TGC_OP_RANGE: case TGC_OP_ENDRANGE: case TGC_OP_IF: case TGC_OP_ENDIF: case TGC_OP_BARRIER:
  case TGC_OP_DEFINE_ACC: case TGC_OP_ACC_ASSIGN:
    render_control(r, i);
    return;
  case TGC_OP_LOAD: render_load(r, i); return;
  case TGC_OP_STORE: render_store(r, l); return;
  case TGC_OP_VECTORIZE: /* lanes split for an op are often read lane by lane only; an unread
                          * vector (a bool4 OpenCL has no type for) is not emitted */
    if (r->used[i]) render_vectorize(r, i);
    return;
  case TGC_OP_GEP:
    decl(r, i);
    expand(r, FIELD(r->lang, gep), (fmtargs){.l = l, .lane = (int)l->c.i});
    tgc_str_cat(r->out, ";\n");
    return;
  case TGC_OP_SHUFFLE_DOWN:
    decl(r, i);
    expand(r, op_fmt(r->lang, TGC_OP_SHUFFLE_DOWN), (fmtargs){.l = l, .lane = (int)l->c.i});
    tgc_str_cat(r->out, ";\n");
    return;
  default:
    TGC_ASSERT(IS_ALU(l->op));
    decl(r, i);
    render_alu(r, l);
    tgc_str_cat(r->out, ";\n");
  }
}

char *tgc_render(const tgc_lang *lang, const tgc_linprog *p) {
  tgc_str out = {0};
  rctx r = {.lang = lang, .p = p, .out = &out};
  r.names = tgc_xcalloc((size_t)p->n + 1, sizeof *r.names);
  r.used = tgc_xcalloc((size_t)p->n + 1, sizeof *r.used);
  for (int i = 0; i < p->n; i++) r.names[i] = name_of(lang, &p->ins[i], i);
  for (int i = 0; i < p->n; i++)
    for (int k = 0; k < p->ins[i].nsrc; k++) r.used[p->ins[i].src[k]] = true;
  tgc_str_cat(&out, lang->preamble);
  lang->vec_typedefs(&out, p);
  lang->signature(&out, lang, p, p->info.name);
  /* OpenCL allows local memory only in the kernel's outermost scope */
  for (int i = 0; i < p->n; i++)
    if (p->ins[i].op == TGC_OP_DEFINE_LOCAL) render_control(&r, i);
  for (int i = 0; i < p->n; i++) render_ins(&r, i);
  tgc_str_cat(&out, "}\n");
  for (int i = 0; i < p->n; i++) free(r.names[i]);
  free(r.names);
  free(r.used);
  return out.s;
}

/* ---- vector types used by a program ------------------------------------------ */

/* Marks [dt][w] for every vector value of the program; returns whether
 * f16<->f32 vector conversions of each width occur in half_w. */
static void vectors_used(const tgc_linprog *p, bool seen[TGC_NUM_DTYPES][65], bool half_w[65]) {
  for (int i = 0; i < p->n; i++) {
    const tgc_lin *l = &p->ins[i];
    if (l->vec <= 1) continue;
    seen[l->dtype][l->vec] = true;
    if (l->op == TGC_OP_CAST && (l->dtype == TGC_F16 || p->ins[l->src[0]].dtype == TGC_F16))
      half_w[l->vec] = seen[TGC_F16][l->vec] = seen[TGC_F32][l->vec] = true;
  }
}

/* ---- the C language ------------------------------------------------------ */

static void c_signature(tgc_str *out, const tgc_lang *lang, const tgc_linprog *p, const char *name) {
  tgc_str_fmt(out, "void %s(void *const *bufs, const int64_t *vars, int64_t gs, int64_t ge) {\n", name);
  tgc_str_cat(out, "  (void)vars; (void)gs; (void)ge;\n");
  const char *rs = p->info.may_alias ? "" : "restrict ";
  for (int i = 0; i < p->info.nglobals; i++) {
    const char *t = pname(lang, p->info.gdtype[i]), *c = i ? "const " : "";
    tgc_str_fmt(out, "  %s%s *%sb%d = (%s%s *)bufs[%d];\n", c, t, rs, i, c, t, i);
  }
}

static void c_vec_type(tgc_str *out, tgc_dtype dt, int w, bool unaligned) {
  tgc_str_fmt(out, "tgc_%sx%d%s", tgc_dtypes[dt].name, w, unaligned ? "u" : "");
}

/* f16 <-> f32 vector conversions: GCC 12 turns __builtin_convertvector on
 * _Float16 into one scalar conversion per lane, so use the F16C/AVX-512
 * instructions where the target has them. */
static void c_half_converters(tgc_str *out, int w) {
  tgc_str_fmt(out, "#ifndef TGC_CVT_F16_%d\n#define TGC_CVT_F16_%d\n"
                   "#if defined(__x86_64__)\n#include <immintrin.h>\n#endif\n"
                   "static inline tgc_f32x%d tgc_f16_to_f32_x%d(tgc_f16x%d x) {\n", w, w, w, w, w);
  if (w == 16)
    tgc_str_cat(out, "#if defined(__AVX512F__)\n  __m256i i; __builtin_memcpy(&i, &x, 32);\n"
                     "  return (tgc_f32x16)_mm512_cvtph_ps(i);\n#else\n");
  if (w == 8)
    tgc_str_cat(out, "#if defined(__F16C__)\n  __m128i i; __builtin_memcpy(&i, &x, 16);\n"
                     "  return (tgc_f32x8)_mm256_cvtph_ps(i);\n#else\n");
  tgc_str_fmt(out, "  return __builtin_convertvector(x, tgc_f32x%d);\n", w);
  if (w == 16 || w == 8) tgc_str_cat(out, "#endif\n");
  tgc_str_fmt(out, "}\nstatic inline tgc_f16x%d tgc_f32_to_f16_x%d(tgc_f32x%d x) {\n", w, w, w);
  if (w == 16)
    tgc_str_cat(out, "#if defined(__AVX512F__)\n  __m256i i = _mm512_cvtps_ph((__m512)x, _MM_FROUND_TO_NEAREST_INT);\n"
                     "  tgc_f16x16 h; __builtin_memcpy(&h, &i, 32);\n  return h;\n#else\n");
  if (w == 8)
    tgc_str_cat(out, "#if defined(__F16C__)\n  __m128i i = _mm256_cvtps_ph((__m256)x, _MM_FROUND_TO_NEAREST_INT);\n"
                     "  tgc_f16x8 h; __builtin_memcpy(&h, &i, 16);\n  return h;\n#else\n");
  tgc_str_fmt(out, "  return __builtin_convertvector(x, tgc_f16x%d);\n", w);
  if (w == 16 || w == 8) tgc_str_cat(out, "#endif\n");
  tgc_str_cat(out, "}\n#endif\n");
}

static void c_vec_typedefs(tgc_str *out, const tgc_linprog *p) {
  bool seen[TGC_NUM_DTYPES][65] = {{false}}, half_w[65] = {false};
  vectors_used(p, seen, half_w);
  for (int dt = 0; dt < TGC_NUM_DTYPES; dt++) {
    for (int w = 2; w <= 64; w++) {
      if (!seen[dt][w]) continue;
      const char *n = tgc_dtypes[dt].name, *t = tgc_dtypes[dt].c_type;
      int bytes = w * tgc_dtypes[dt].bytes;
      tgc_str_fmt(out, "#ifndef TGC_VEC_%s_%d\n#define TGC_VEC_%s_%d\n", n, w, n, w);
      tgc_str_fmt(out, "typedef %s tgc_%sx%d __attribute__((vector_size(%d)));\n", t, n, w, bytes);
      tgc_str_fmt(out, "typedef %s tgc_%sx%du __attribute__((vector_size(%d), aligned(%d), may_alias));\n#endif\n",
                  t, n, w, bytes, tgc_dtypes[dt].bytes);
    }
  }
  for (int w = 2; w <= 64; w++)
    if (half_w[w]) c_half_converters(out, w);
}

static const char c_preamble[] =
    "#ifndef TGC_PREAMBLE\n"
    "#define TGC_PREAMBLE\n"
    "#include <stdint.h>\n"
    "#include <math.h>\n"
    "static inline float tgc_bf2f(uint16_t x) {\n"
    "  union { uint32_t u; float f; } v = {(uint32_t)x << 16};\n"
    "  return v.f;\n"
    "}\n"
    "static inline uint16_t tgc_f2bf(float f) {\n"
    "  union { float f; uint32_t u; } v = {f};\n"
    "  if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);\n"
    "  return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);\n"
    "}\n"
    "#endif\n";

const tgc_lang tgc_lang_c = {
    .name = "c",
    .ext = "c",
    .vec_alu = true,
    .vec_bytes = 64,
    .preamble = c_preamble,
    .signature = c_signature,
    .vec_type = c_vec_type,
    .vec_typedefs = c_vec_typedefs,
    .special = {"gs", "ge", "0", "0"},
    .barrier = "",
    .local_decl = "$T $P[$I];",
    .math_suffix = "f",
    .i64_suffix = "LL",
    .inf = {"__builtin_inff()", "__builtin_inf()"},
    .nan = {"__builtin_nanf(\"\")", "__builtin_nan(\"\")"},
    .load = "$P[$I]",
    .store = "$P[$I] = $0;",
    .vec_load = "*(const $U *)($P + $I)",
    .vec_store = "*($U *)($P + $I) = $0;",
    .gep = "$0[$L]",
    .vectorize_open = "($V){",
    .vectorize_close = "}",
    .op_fmt =
        {
            [TGC_OP_NEG] = "(-$0)",
            [TGC_OP_EXP] = "exp$F($0)",
            [TGC_OP_EXP2] = "exp2$F($0)",
            [TGC_OP_LOG] = "log$F($0)",
            [TGC_OP_LOG2] = "log2$F($0)",
            [TGC_OP_SIN] = "sin$F($0)",
            [TGC_OP_COS] = "cos$F($0)",
            [TGC_OP_TANH] = "tanh$F($0)",
            [TGC_OP_SQRT] = "sqrt$F($0)",
            [TGC_OP_RECIP] = "(($T)1 / $0)",
            [TGC_OP_ADD] = "($0 + $1)",
            [TGC_OP_SUB] = "($0 - $1)",
            [TGC_OP_MUL] = "($0 * $1)",
            [TGC_OP_FDIV] = "($0 / $1)",
            [TGC_OP_IDIV] = "($1 == 0 ? 0 : $0 / $1)",
            [TGC_OP_MOD] = "($1 == 0 ? 0 : $0 % $1)",
            [TGC_OP_POW] = "pow$F($0, $1)",
            [TGC_OP_MAX] = "($0 > $1 ? $0 : $1)",
            [TGC_OP_MIN] = "($0 < $1 ? $0 : $1)",
            [TGC_OP_CMPLT] = "($0 < $1)",
            [TGC_OP_CMPLE] = "($0 <= $1)",
            [TGC_OP_CMPEQ] = "($0 == $1)",
            [TGC_OP_CMPNE] = "($0 != $1)",
            [TGC_OP_AND] = "($0 & $1)",
            [TGC_OP_OR] = "($0 | $1)",
            [TGC_OP_XOR] = "($0 ^ $1)",
            [TGC_OP_SHL] = "(($T)((uint64_t)$0 << ($1 & $B)))",
            [TGC_OP_SHR] = "(($T)($0 >> ($1 & $B)))",
            [TGC_OP_WHERE] = "($0 ? $1 : $2)",
        },
    .idiv_signed = "($1 == 0 ? 0 : $1 == -1 ? ($T)(0 - (uint64_t)$0) : $0 / $1)",
    .mod_signed = "($1 == 0 || $1 == -1 ? 0 : $0 % $1)",
    .cast = "(($T)($0))",
    .vec_cast = "__builtin_convertvector($0, $T)",
    .cast_to_bool = "($0 != 0)",
    .cast_to_half = "(($T)($0))",
    .cast_from_half = "(($T)($0))",
    .cast_to_bf16 = "tgc_f2bf((float)$0)",
    .cast_from_bf16 = "(($T)tgc_bf2f($0))",
    .bitcast = "((union { $S s; $T t; }){.s = $0}).t",
};

/* ---- CUDA ------------------------------------------------------------------ */

static int64_t block_threads(const tgc_linprog *p) {
  int64_t b = 1;
  for (int i = 0; i < 3; i++) b *= p->info.block[i] > 0 ? p->info.block[i] : 1;
  return b;
}

static void gpu_params(tgc_str *out, const tgc_lang *lang, const tgc_linprog *p, const char *glob,
                       const char *rs) {
  for (int i = 0; i < p->info.nglobals; i++)
    tgc_str_fmt(out, "%s%s%s%s *%sb%d", i ? ", " : "", glob, i ? "const " : "",
                pname(lang, p->info.gdtype[i]), p->info.may_alias ? "" : rs, i);
  for (int k = 0; k < p->info.nvars; k++) /* variables, after the buffers */
    tgc_str_fmt(out, ", %s var%d", tname(lang, TGC_I64), k);
  tgc_str_cat(out, ") {\n");
}

static void cuda_signature(tgc_str *out, const tgc_lang *lang, const tgc_linprog *p, const char *name) {
  tgc_str_fmt(out, "extern \"C\" __global__ void __launch_bounds__(%lld) %s(", (long long)block_threads(p), name);
  gpu_params(out, lang, p, "", "__restrict__ ");
}

static void cuda_vec_type(tgc_str *out, tgc_dtype dt, int w, bool unaligned) {
  (void)unaligned;
  tgc_str_fmt(out, "tgc_%sx%d", tgc_dtypes[dt].name, w);
}

/* CUDA's vector values are plain structs (lanes are computed one by one);
 * aligned to their size so a load of one is a single wide load. */
static void cuda_vec_typedefs(tgc_str *out, const tgc_linprog *p) {
  bool seen[TGC_NUM_DTYPES][65] = {{false}}, half_w[65] = {false};
  vectors_used(p, seen, half_w);
  for (int dt = 0; dt < TGC_NUM_DTYPES; dt++) {
    for (int w = 2; w <= 64; w++) {
      if (!seen[dt][w]) continue;
      const char *n = tgc_dtypes[dt].name;
      int bytes = w * tgc_dtypes[dt].bytes;
      tgc_str_fmt(out, "#ifndef TGC_VEC_%s_%d\n#define TGC_VEC_%s_%d\n", n, w, n, w);
      tgc_str_fmt(out, "struct __align__(%d) tgc_%sx%d { %s v[%d]; };\n#endif\n",
                  bytes <= 16 ? bytes : 16, n, w, tgc_dtypes[dt].cuda_type, w);
    }
  }
}

static const char cuda_preamble[] =
    "#ifndef TGC_PREAMBLE\n"
    "#define TGC_PREAMBLE\n"
    "#include <cuda_fp16.h>\n"
    "#include <cuda_bf16.h>\n"
    "#endif\n";

const tgc_lang tgc_lang_cuda = {
    .name = "cuda",
    .ext = "cu",
    .base = &tgc_lang_c,
    .gpu = true,
    .vec_alu = false,
    .vec_bytes = 16,
    .preamble = cuda_preamble,
    .signature = cuda_signature,
    .vec_type = cuda_vec_type,
    .vec_typedefs = cuda_vec_typedefs,
    .type_names =
        {
#define X(NAME, name, bytes, ctype, cudatype, isfloat, issigned) [TGC_##NAME] = #cudatype,
#include "tgc_dtypes.def"
#undef X
        },
    .special = {"0", "1", "(long long)blockIdx.x", "(long long)threadIdx.x"},
    .barrier = "__syncthreads();",
    .local_decl = "__shared__ $T $P[$I];",
    .inf = {"__int_as_float(0x7f800000)", "__longlong_as_double(0x7ff0000000000000LL)"},
    .nan = {"__int_as_float(0x7fc00000)", "__longlong_as_double(0x7ff8000000000000LL)"},
    .vec_load = "*(const $V *)($P + $I)",
    .vec_store = "*($V *)($P + $I) = $0;",
    .gep = "$0.v[$L]",
    .vectorize_open = "$V{{",
    .vectorize_close = "}}",
    .op_fmt =
        {
            [TGC_OP_SHL] = "(($T)((unsigned long long)$0 << ($1 & $B)))",
            [TGC_OP_SHUFFLE_DOWN] = "__shfl_down_sync(0xffffffffu, $0, $L)",
        },
    .idiv_signed = "($1 == 0 ? 0 : $1 == -1 ? ($T)(0 - (unsigned long long)$0) : $0 / $1)",
    .cast_to_half = "__float2half_rn($0)",
    .cast_from_half = "(($T)__half2float($0))",
    .cast_to_bf16 = "__float2bfloat16_rn((float)$0)",
    .cast_from_bf16 = "(($T)__bfloat162float($0))",
    .bitcast = "([&]() { $S s_ = $0; return *reinterpret_cast<$T *>(&s_); }())",
};

/* ---- OpenCL ----------------------------------------------------------------- */

static void opencl_signature(tgc_str *out, const tgc_lang *lang, const tgc_linprog *p, const char *name) {
  tgc_str_fmt(out, "__kernel __attribute__((reqd_work_group_size(%lld, 1, 1))) void %s(",
              (long long)block_threads(p), name);
  gpu_params(out, lang, p, "__global ", "restrict ");
}

static void opencl_vec_type(tgc_str *out, tgc_dtype dt, int w, bool unaligned) {
  (void)unaligned;
  tgc_str_fmt(out, "%s%d", tname(&tgc_lang_opencl, dt), w);
}

static void opencl_vec_typedefs(tgc_str *out, const tgc_linprog *p) {
  (void)out;
  (void)p; /* OpenCL C has its own vector types */
}

/* Without cl_khr_fp16 (PoCL has none) half is storage only: f16 values
 * are kept as their bits (ushort) and converted with vload_half and
 * vstore_half; bf16 likewise as ushort. */
static const char opencl_preamble[] =
    "#ifndef TGC_PREAMBLE\n"
    "#define TGC_PREAMBLE\n"
    "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
    "static inline float tgc_h2f(ushort u) { return vload_half(0, (const __private half *)&u); }\n"
    "static inline ushort tgc_f2h(float f) { ushort u; vstore_half_rte(f, 0, (__private half *)&u); return u; }\n"
    "static inline float tgc_bf2f(ushort x) { return as_float((uint)x << 16); }\n"
    "static inline ushort tgc_f2bf(float f) {\n"
    "  uint u = as_uint(f);\n"
    "  if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)((u >> 16) | 0x40);\n"
    "  return (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);\n"
    "}\n"
    "#endif\n";

const tgc_lang tgc_lang_opencl = {
    .name = "opencl",
    .ext = "cl",
    .base = &tgc_lang_c,
    .gpu = true,
    .vec_alu = true,
    .vec_bytes = 16,
    .preamble = opencl_preamble,
    .signature = opencl_signature,
    .vec_type = opencl_vec_type,
    .vec_typedefs = opencl_vec_typedefs,
    .type_names =
        {
            [TGC_BOOL] = "bool", [TGC_I8] = "char", [TGC_U8] = "uchar", [TGC_I16] = "short",
            [TGC_U16] = "ushort", [TGC_I32] = "int", [TGC_U32] = "uint", [TGC_I64] = "long",
            [TGC_F16] = "ushort", [TGC_BF16] = "ushort", [TGC_F32] = "float", [TGC_F64] = "double",
        },
    .ptr_names = {[TGC_BOOL] = "uchar"},
    .special = {"0", "1", "((long)get_group_id(0))", "((long)get_local_id(0))"},
    .barrier = "barrier(CLK_LOCAL_MEM_FENCE);",
    .local_decl = "__local $T $P[$I];",
    .math_suffix = "",
    .i64_suffix = "L",
    .inf = {"INFINITY", "((double)INFINITY)"},
    .nan = {"NAN", "((double)NAN)"},
    .vec_load = "vload$W(0, $P + $I)",
    .vec_store = "vstore$W($0, 0, $P + $I);",
    .gep = "$0.s$X",
    .vectorize_open = "(($V)(",
    .vectorize_close = "))",
    .op_fmt =
        {
            [TGC_OP_SHL] = "(($T)((ulong)$0 << ($1 & $B)))",
        },
    .idiv_signed = "($1 == 0 ? 0 : $1 == -1 ? ($T)(0 - (ulong)$0) : $0 / $1)",
    .vec_cast = "convert_$V($0)",
    .cast_to_half = "tgc_f2h((float)$0)",
    .cast_from_half = "(($T)tgc_h2f($0))",
    .bitcast = "as_$T($0)",
};
