/* render.c - linear IR -> source text.
 *
 * One C-style renderer serves every language; a language is a table
 * (tgc_lang): op formats, a preamble, and a few hooks for what cannot be a
 * string (the signature, vector types).  CUDA and OpenCL tables override
 * only what differs from C.  Each instruction becomes one line; constants
 * are written inline as literals, everything else gets a name (v12, acc3).
 */
#include "tgc_internal.h"

#include <math.h>

typedef struct rctx {
  const tgc_lang *lang;
  const tgc_linprog *p;
  tgc_str *out;
  int depth;
  char **names; /* per instruction: how to refer to it */
} rctx;

static const char *ctype(tgc_dtype dt) { return tgc_dtypes[dt].c_type; }

static void type_of(rctx *r, tgc_str *out, const tgc_lin *l, bool unaligned) {
  if (l->vec > 1) {
    r->lang->vec_type(out, (tgc_dtype)l->dtype, l->vec, unaligned);
  } else {
    tgc_str_cat(out, ctype((tgc_dtype)l->dtype));
  }
}

static char *literal(const tgc_lin *l) {
  char buf[96];
  tgc_dtype dt = (tgc_dtype)l->dtype;
  double f = l->c.f;
  if (dt == TGC_F32 || dt == TGC_F64) {
    const char *suf = dt == TGC_F32 ? "f" : "";
    if (isnan(f)) snprintf(buf, sizeof buf, "__builtin_nan%s(\"\")", suf);
    else if (isinf(f)) snprintf(buf, sizeof buf, "%s__builtin_inf%s()", f < 0 ? "-" : "", suf);
    else if (dt == TGC_F32) snprintf(buf, sizeof buf, "%af", (double)(float)f);
    else snprintf(buf, sizeof buf, "%a", f);
  } else if (dt == TGC_BOOL) {
    snprintf(buf, sizeof buf, "%d", l->c.i != 0);
  } else if (l->c.i == INT64_MIN) {
    snprintf(buf, sizeof buf, "(%s)(-9223372036854775807LL-1)", ctype(dt));
  } else if (dt == TGC_I64) {
    snprintf(buf, sizeof buf, "%lldLL", (long long)l->c.i);
  } else {
    snprintf(buf, sizeof buf, "((%s)%lldLL)", ctype(dt), (long long)l->c.i);
  }
  return tgc_xstrdup(buf);
}

static void indent(rctx *r) {
  for (int i = 0; i < r->depth + 1; i++) tgc_str_cat(r->out, "  ");
}

/* Expands a format: $0..$2 sources, $T result type, $F math suffix, $B bit
 * width minus one. */
static void expand_fmt(rctx *r, tgc_str *out, const char *fmt, const tgc_lin *l) {
  tgc_dtype dt = (tgc_dtype)l->dtype;
  tgc_dtype sdt = l->nsrc ? (tgc_dtype)r->p->ins[l->src[0]].dtype : dt;
  for (const char *c = fmt; *c; c++) {
    if (*c != '$') {
      char ch[2] = {*c, 0};
      tgc_str_cat(out, ch);
      continue;
    }
    c++;
    if (*c >= '0' && *c <= '2') tgc_str_cat(out, r->names[l->src[*c - '0']]);
    else if (*c == 'T') type_of(r, out, l, false);
    else if (*c == 'F') tgc_str_cat(out, (l->op == TGC_OP_CAST ? sdt : dt) == TGC_F64 ? "" : "f");
    else if (*c == 'B') tgc_str_fmt(out, "%d", 8 * tgc_dtypes[dt].bytes - 1);
  }
}

static void render_cast(rctx *r, const tgc_lin *l) {
  const tgc_lang *lang = r->lang;
  tgc_dtype to = (tgc_dtype)l->dtype, from = (tgc_dtype)r->p->ins[l->src[0]].dtype;
  const char *fmt = "(($T)($0))";
  if (l->vec > 1 && ((from == TGC_F16 && to == TGC_F32) || (from == TGC_F32 && to == TGC_F16))) {
    tgc_str_fmt(r->out, "tgc_%s_to_%s_x%d(%s)", tgc_dtypes[from].name, tgc_dtypes[to].name, l->vec,
                r->names[l->src[0]]);
    return;
  }
  if (l->vec > 1) fmt = "__builtin_convertvector($0, $T)";
  else if (to == TGC_BF16) fmt = lang->cast_to_bf16;
  else if (from == TGC_BF16) fmt = lang->cast_from_bf16;
  else if (to == TGC_BOOL) fmt = lang->cast_to_bool;
  expand_fmt(r, r->out, fmt, l);
}

static void render_bitcast(rctx *r, const tgc_lin *l) {
  tgc_str_cat(r->out, "((union { ");
  type_of(r, r->out, &r->p->ins[l->src[0]], false);
  tgc_str_cat(r->out, " s; ");
  type_of(r, r->out, l, false);
  tgc_str_fmt(r->out, " t; }){.s = %s}).t", r->names[l->src[0]]);
}

static void render_alu(rctx *r, const tgc_lin *l) {
  const tgc_lang *lang = r->lang;
  tgc_op op = (tgc_op)l->op;
  if (op == TGC_OP_CAST) return render_cast(r, l);
  if (op == TGC_OP_BITCAST) return render_bitcast(r, l);
  const char *fmt = lang->op_fmt[op];
  tgc_dtype dt = (tgc_dtype)l->dtype;
  if (op == TGC_OP_IDIV && tgc_dtypes[dt].is_signed) fmt = lang->idiv_signed;
  if (op == TGC_OP_MOD && tgc_dtypes[dt].is_signed) fmt = lang->mod_signed;
  TGC_ASSERT(fmt);
  expand_fmt(r, r->out, fmt, l);
}

/* Declares "const T vN = " for instruction i. */
static void decl(rctx *r, int i) {
  indent(r);
  tgc_str_cat(r->out, "const ");
  type_of(r, r->out, &r->p->ins[i], false);
  tgc_str_fmt(r->out, " %s = ", r->names[i]);
}

static void render_load(rctx *r, int i) {
  const tgc_lin *l = &r->p->ins[i];
  const char *buf = r->names[l->src[0]], *idx = r->names[l->src[1]];
  decl(r, i);
  if (l->nsrc == 3) tgc_str_fmt(r->out, "%s ? ", r->names[l->src[2]]);
  if (l->vec > 1) {
    tgc_str_cat(r->out, "*(const ");
    type_of(r, r->out, l, true);
    tgc_str_fmt(r->out, " *)(%s + %s)", buf, idx);
  } else {
    tgc_str_fmt(r->out, "%s[%s]", buf, idx);
  }
  if (l->nsrc == 3) {
    tgc_str_cat(r->out, " : (");
    type_of(r, r->out, l, false);
    tgc_str_cat(r->out, l->vec > 1 ? "){0}" : ")0");
  }
  tgc_str_cat(r->out, ";\n");
}

static void render_store(rctx *r, const tgc_lin *l) {
  const char *buf = r->names[l->src[0]], *idx = r->names[l->src[1]], *val = r->names[l->src[2]];
  indent(r);
  if (l->vec > 1) {
    tgc_str_cat(r->out, "*(");
    type_of(r, r->out, l, true);
    tgc_str_fmt(r->out, " *)(%s + %s) = %s;\n", buf, idx, val);
  } else {
    tgc_str_fmt(r->out, "%s[%s] = %s;\n", buf, idx, val);
  }
}

static void render_ins(rctx *r, int i) {
  const tgc_lin *l = &r->p->ins[i];
  switch (l->op) {
  case TGC_OP_CONST: case TGC_OP_DEFINE_GLOBAL: case TGC_OP_SPECIAL: return; /* named inline */
  case TGC_OP_RANGE:
    indent(r);
    tgc_str_fmt(r->out, "for (int64_t %s = %s; %s < %s; %s++) {\n", r->names[i], r->names[l->src[0]],
                r->names[i], r->names[l->src[1]], r->names[i]);
    r->depth++;
    return;
  case TGC_OP_ENDRANGE:
    r->depth--;
    indent(r);
    tgc_str_cat(r->out, "}\n");
    return;
  case TGC_OP_DEFINE_ACC:
    indent(r);
    type_of(r, r->out, l, false);
    tgc_str_fmt(r->out, " %s = %s;\n", r->names[i], r->names[l->src[0]]);
    return;
  case TGC_OP_ACC_ASSIGN:
    indent(r);
    tgc_str_fmt(r->out, "%s = %s;\n", r->names[l->src[0]], r->names[l->src[1]]);
    return;
  case TGC_OP_LOAD: render_load(r, i); return;
  case TGC_OP_STORE: render_store(r, l); return;
  case TGC_OP_VECTORIZE:
    decl(r, i);
    tgc_str_cat(r->out, "(");
    type_of(r, r->out, l, false);
    tgc_str_cat(r->out, "){");
    for (int k = 0; k < l->nsrc; k++) tgc_str_fmt(r->out, "%s%s", k ? ", " : "", r->names[l->src[k]]);
    tgc_str_cat(r->out, "};\n");
    return;
  case TGC_OP_GEP:
    decl(r, i);
    tgc_str_fmt(r->out, "%s[%lld];\n", r->names[l->src[0]], (long long)l->c.i);
    return;
  default:
    TGC_ASSERT(IS_ALU(l->op));
    decl(r, i);
    render_alu(r, l);
    tgc_str_cat(r->out, ";\n");
  }
}

static char *name_of(const tgc_lin *l, int i) {
  char buf[32];
  switch (l->op) {
  case TGC_OP_CONST: return literal(l);
  case TGC_OP_DEFINE_GLOBAL: snprintf(buf, sizeof buf, "b%lld", (long long)l->c.i); break;
  case TGC_OP_SPECIAL: snprintf(buf, sizeof buf, "%s", l->c.i ? "ge" : "gs"); break;
  case TGC_OP_DEFINE_ACC: snprintf(buf, sizeof buf, "acc%d", i); break;
  case TGC_OP_RANGE: snprintf(buf, sizeof buf, "i%d", i); break;
  default: snprintf(buf, sizeof buf, "v%d", i);
  }
  return tgc_xstrdup(buf);
}

/* Vector typedefs the program uses, each guarded so units can share a
 * translation unit. */
static void vector_typedef(rctx *r, tgc_dtype dt, int w) {
  const char *n = tgc_dtypes[dt].name;
  int bytes = w * tgc_dtypes[dt].bytes;
  tgc_str_fmt(r->out, "#ifndef TGC_VEC_%s_%d\n#define TGC_VEC_%s_%d\n", n, w, n, w);
  tgc_str_fmt(r->out, "typedef %s tgc_%sx%d __attribute__((vector_size(%d)));\n", ctype(dt), n, w, bytes);
  tgc_str_fmt(r->out, "typedef %s tgc_%sx%du __attribute__((vector_size(%d), aligned(%d), may_alias));\n#endif\n",
              ctype(dt), n, w, bytes, tgc_dtypes[dt].bytes);
}

/* f16 <-> f32 vector conversions: GCC 12 turns __builtin_convertvector on
 * _Float16 into one scalar conversion per lane, so use the F16C/AVX-512
 * instructions where the target has them. */
static void half_converters(rctx *r, int w) {
  tgc_str_fmt(r->out,
              "#ifndef TGC_CVT_F16_%d\n#define TGC_CVT_F16_%d\n"
              "#if defined(__x86_64__)\n#include <immintrin.h>\n#endif\n"
              "static inline tgc_f32x%d tgc_f16_to_f32_x%d(tgc_f16x%d x) {\n", w, w, w, w, w);
  if (w == 16)
    tgc_str_cat(r->out, "#if defined(__AVX512F__)\n  __m256i i; __builtin_memcpy(&i, &x, 32);\n"
                        "  return (tgc_f32x16)_mm512_cvtph_ps(i);\n#else\n");
  if (w == 8)
    tgc_str_cat(r->out, "#if defined(__F16C__)\n  __m128i i; __builtin_memcpy(&i, &x, 16);\n"
                        "  return (tgc_f32x8)_mm256_cvtph_ps(i);\n#else\n");
  tgc_str_fmt(r->out, "  return __builtin_convertvector(x, tgc_f32x%d);\n", w);
  if (w == 16 || w == 8) tgc_str_cat(r->out, "#endif\n");
  tgc_str_fmt(r->out, "}\nstatic inline tgc_f16x%d tgc_f32_to_f16_x%d(tgc_f32x%d x) {\n", w, w, w);
  if (w == 16)
    tgc_str_cat(r->out, "#if defined(__AVX512F__)\n  __m256i i = _mm512_cvtps_ph((__m512)x, _MM_FROUND_TO_NEAREST_INT);\n"
                        "  tgc_f16x16 h; __builtin_memcpy(&h, &i, 32);\n  return h;\n#else\n");
  if (w == 8)
    tgc_str_cat(r->out, "#if defined(__F16C__)\n  __m128i i = _mm256_cvtps_ph((__m256)x, _MM_FROUND_TO_NEAREST_INT);\n"
                        "  tgc_f16x8 h; __builtin_memcpy(&h, &i, 16);\n  return h;\n#else\n");
  tgc_str_fmt(r->out, "  return __builtin_convertvector(x, tgc_f16x%d);\n", w);
  if (w == 16 || w == 8) tgc_str_cat(r->out, "#endif\n");
  tgc_str_cat(r->out, "}\n#endif\n");
}

static void vector_types(rctx *r) {
  bool seen[TGC_NUM_DTYPES][65] = {{false}}, half[65] = {false};
  for (int i = 0; i < r->p->n; i++) {
    const tgc_lin *l = &r->p->ins[i];
    if (l->vec <= 1) continue;
    if (l->op == TGC_OP_CAST && (l->dtype == TGC_F16 || r->p->ins[l->src[0]].dtype == TGC_F16)) {
      half[l->vec] = seen[TGC_F16][l->vec] = seen[TGC_F32][l->vec] = true;
    }
    seen[l->dtype][l->vec] = true;
  }
  for (int dt = 0; dt < TGC_NUM_DTYPES; dt++)
    for (int w = 2; w <= 64; w++)
      if (seen[dt][w]) vector_typedef(r, (tgc_dtype)dt, w);
  for (int w = 2; w <= 64; w++)
    if (half[w]) half_converters(r, w);
}

char *tgc_render(const tgc_lang *lang, const tgc_linprog *p) {
  tgc_str out = {0};
  rctx r = {.lang = lang, .p = p, .out = &out};
  r.names = tgc_xcalloc((size_t)p->n + 1, sizeof *r.names);
  for (int i = 0; i < p->n; i++) r.names[i] = name_of(&p->ins[i], i);
  tgc_str_cat(&out, lang->preamble);
  if (lang == &tgc_lang_c) vector_types(&r);
  lang->signature(&out, p, p->info.name);
  for (int i = 0; i < p->n; i++) render_ins(&r, i);
  tgc_str_cat(&out, "}\n");
  for (int i = 0; i < p->n; i++) free(r.names[i]);
  free(r.names);
  return out.s;
}

/* ---- the C language ------------------------------------------------------ */

static void c_signature(tgc_str *out, const tgc_linprog *p, const char *name) {
  tgc_str_fmt(out, "void %s(void *const *bufs, const int64_t *vars, int64_t gs, int64_t ge) {\n", name);
  tgc_str_cat(out, "  (void)vars; (void)gs; (void)ge;\n");
  const char *rs = p->info.may_alias ? "" : "restrict ";
  for (int i = 0; i < p->info.nglobals; i++)
    tgc_str_fmt(out, "  %s%s *%sb%d = (%s%s *)bufs[%d];\n", i ? "const " : "",
                ctype(p->info.gdtype[i]), rs, i, i ? "const " : "", ctype(p->info.gdtype[i]), i);
}

static void c_vec_type(tgc_str *out, tgc_dtype dt, int w, bool unaligned) {
  tgc_str_fmt(out, "tgc_%sx%d%s", tgc_dtypes[dt].name, w, unaligned ? "u" : "");
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
    .preamble = c_preamble,
    .signature = c_signature,
    .vec_type = c_vec_type,
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
            [TGC_OP_RECIP] = "(($T)1/$0)",
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
    .cast_to_bf16 = "tgc_f2bf((float)$0)",
    .cast_from_bf16 = "(($T)tgc_bf2f($0))",
    .cast_to_bool = "($0 != 0)",
};
