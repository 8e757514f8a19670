/* quant.c - weight types: their table, conversion on the host, and
 * dequantisation as lazy tgc ops.
 *
 * The host side converts rows of f32 to the stored formats and back; Q8_0
 * and Q4_0 are GGML's, byte for byte (the rounding of its reference
 * quantize_row_q8_0 / _q4_0), so GGUF files load as they are.  The device
 * side has no dequant kernel of its own: tgc_wdequant spells the unpacking
 * as ordinary ops on the raw bytes (shrink, shifts, masks, bitcast,
 * casts), and the scheduler fuses them into the loads of whatever reads
 * the weight.  A matvec through tgc_wlinear is therefore one kernel that
 * reads the packed bytes, and no f32 copy of a weight is ever allocated.
 *
 * Speeds quoted below are a 4096x4096 matvec on the 2-core CPU of the
 * dev box (a scratch benchmark timing tgc_realize of tgc_wlinear with a
 * fresh x, best of 10), old and new formulations in the same session; an
 * f32 weight takes 1.2 ms there.
 *
 * Block layouts (a row is a whole number of blocks; scales are f16,
 * little-endian as in GGUF, written byte by byte so the host's byte order
 * does not matter):
 *   Q8_0  32 elements, 34 bytes: d, int8 q[32]                 x = q * d
 *   Q4_0  32 elements, 18 bytes: d, qs[16],                    x = (q - 8) * d
 *         qs[j] = q[j] | q[j + 16] << 4
 *   NF4   64 elements, 34 bytes: s, qs[32],                    x = nf4[q] * s
 *         qs[j] = q[j] | q[j + 32] << 4 (tgc's own layout: Q4_0's nibble
 *         order with QLoRA's NormalFloat4 codebook and an absmax scale)
 * Inputs are expected finite; other values give unspecified blocks, never
 * undefined behaviour.
 */
#include "tgc_internal.h"

#include "llama.h"

#include <math.h>
#include <strings.h>

const tgc_wtype_info tgc_wtypes[TGC_W_COUNT] = {
#define X(N, s, g, be, bb) [TGC_W_##N] = {s, g, be, bb},
    TGC_WTYPES(X)
#undef X
};

/* QLoRA's NormalFloat4: quantiles of N(0, 1) scaled to [-1, 1], with an
 * exact zero. */
static const float nf4_table[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

/* ---- the table ---------------------------------------------------------- */

static bool wtype_ok(tgc_wtype t) { return (unsigned)t < TGC_W_COUNT; }
static bool is_quant(tgc_wtype t) { return tgc_wtypes[t].block > 1; }

int64_t tgc_wtype_row_bytes(tgc_wtype t, int64_t n) {
  if (!wtype_ok(t) || n < 0) return -1;
  const tgc_wtype_info *w = &tgc_wtypes[t];
  if (n % w->block) return -1;
  int64_t blocks = n / w->block;
  if (blocks > INT64_MAX / w->block_bytes) return -1;
  return blocks * w->block_bytes;
}

bool tgc_wtype_parse(const char *name, tgc_wtype *out) {
  if (!name || !out) {
    tgc_set_error(TGC_ERR_ARG, "wtype_parse: NULL %s", name ? "out" : "name");
    return false;
  }
  const char *want = strcasecmp(name, "int8") == 0 ? "q8_0" : name;
  for (int t = 0; t < TGC_W_COUNT; t++)
    if (strcasecmp(want, tgc_wtypes[t].name) == 0) {
      *out = (tgc_wtype)t;
      return true;
    }
  tgc_set_error(TGC_ERR_ARG, "unknown weight type '%s' (f32, f16, bf16, q8_0 or int8, q4_0, nf4)", name);
  return false;
}

/* Checks a [rows, cols] matrix of type t; *row_bytes gets a row's size. */
static tgc_status check_matrix(const char *fn, tgc_wtype t, int64_t rows, int64_t cols,
                               int64_t *row_bytes) {
  if (!wtype_ok(t)) return tgc_set_error(TGC_ERR_ARG, "%s: weight type %d out of range", fn, (int)t);
  if (rows < 1 || cols < 1)
    return tgc_set_error(TGC_ERR_SHAPE, "%s: a %s matrix of [%lld, %lld]: sizes must be >= 1", fn,
                         tgc_wtypes[t].name, (long long)rows, (long long)cols);
  int64_t rb = tgc_wtype_row_bytes(t, cols);
  if (rb < 0)
    return tgc_set_error(TGC_ERR_SHAPE, "%s: %s rows hold blocks of %d; %lld columns are not a whole number of them",
                         fn, tgc_wtypes[t].name, tgc_wtypes[t].block, (long long)cols);
  if (rows > (int64_t)(SIZE_MAX / 8) / rb || rows > (int64_t)(SIZE_MAX / 8) / cols)
    return tgc_set_error(TGC_ERR_SHAPE, "%s: [%lld, %lld] is too large", fn, (long long)rows, (long long)cols);
  *row_bytes = rb;
  return TGC_OK;
}

/* ---- f16 and bf16 ------------------------------------------------------- */

/* The conversions themselves are tgc_f32_to_f16 and friends (ops/util.c). */

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* ---- blocks --------------------------------------------------------------- */

/* ggml's quantize_row_q8_0_ref: d = absmax / 127, q = round(x / d) (half
 * away from zero, through the reciprocal as ggml does). */
static void q8_0_put(const float *x, uint8_t *b) {
  float amax = 0;
  for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
  float d = amax / 127, id = d != 0 ? 1.0f / d : 0;
  put16(b, tgc_f32_to_f16(d));
  for (int j = 0; j < 32; j++) {
    float q = roundf(x[j] * id);
    q = q >= -127 ? (q <= 127 ? q : 127) : (q < 0 ? -127 : 0); /* NaN -> 0 */
    b[2 + j] = (uint8_t)(int8_t)q;
  }
}

static void q8_0_get(const uint8_t *b, float *y) {
  float d = tgc_f16_to_f32(get16(b));
  for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

/* ggml's quantize_row_q4_0_ref: the element of largest magnitude, sign
 * kept, maps to -8; q = trunc(x / d + 8.5) clamped to 0..15. */
static int q4_code(float v) {
  v += 8.5f;
  return v >= 0 ? (v < 15 ? (int)v : 15) : 0; /* NaN -> 0 */
}

static void q4_0_put(const float *x, uint8_t *b) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; j++)
    if (amax < fabsf(x[j])) {
      amax = fabsf(x[j]);
      max = x[j];
    }
  float d = max / -8, id = d != 0 ? 1.0f / d : 0;
  put16(b, tgc_f32_to_f16(d));
  for (int j = 0; j < 16; j++)
    b[2 + j] = (uint8_t)(q4_code(x[j] * id) | q4_code(x[16 + j] * id) << 4);
}

static void q4_0_get(const uint8_t *b, float *y) {
  float d = tgc_f16_to_f32(get16(b));
  for (int j = 0; j < 16; j++) {
    y[j] = (float)((b[2 + j] & 15) - 8) * d;
    y[16 + j] = (float)((b[2 + j] >> 4) - 8) * d;
  }
}

/* Nearest codebook entry of v in [-1, 1]: the number of midpoints below
 * it (a tie goes to the lower entry). */
static int nf4_code(float v) {
  int q = 0;
  for (int k = 0; k < 15; k++) q += v > (nf4_table[k] + nf4_table[k + 1]) / 2;
  return q;
}

/* The scale is the block's absmax rounded to f16, and x is normalised by
 * that rounded value, so the codes fit the scale a reader sees. */
static void nf4_put(const float *x, uint8_t *b) {
  float amax = 0;
  for (int j = 0; j < 64; j++) amax = fmaxf(amax, fabsf(x[j]));
  uint16_t h = tgc_f32_to_f16(amax);
  float s = tgc_f16_to_f32(h), is = s != 0 && isfinite(s) ? 1.0f / s : 0;
  put16(b, h);
  for (int j = 0; j < 32; j++)
    b[2 + j] = (uint8_t)(nf4_code(x[j] * is) | nf4_code(x[32 + j] * is) << 4);
}

static void nf4_get(const uint8_t *b, float *y) {
  float s = tgc_f16_to_f32(get16(b));
  for (int j = 0; j < 32; j++) {
    y[j] = nf4_table[b[2 + j] & 15] * s;
    y[32 + j] = nf4_table[b[2 + j] >> 4] * s;
  }
}

/* ---- rows -------------------------------------------------------------------- */

/* One row of n elements to type t (dst: its row bytes). */
static void row_put(tgc_wtype t, const float *x, int64_t n, uint8_t *dst) {
  int be = tgc_wtypes[t].block, bb = tgc_wtypes[t].block_bytes;
  switch (t) {
  case TGC_W_F32: memcpy(dst, x, (size_t)n * 4); return;
  case TGC_W_F16:
    for (int64_t i = 0; i < n; i++) put16(dst + 2 * i, tgc_f32_to_f16(x[i]));
    return;
  case TGC_W_BF16:
    for (int64_t i = 0; i < n; i++) put16(dst + 2 * i, tgc_f32_to_bf16(x[i]));
    return;
  default: break;
  }
  void (*put)(const float *, uint8_t *) = t == TGC_W_Q8_0 ? q8_0_put : t == TGC_W_Q4_0 ? q4_0_put : nf4_put;
  for (int64_t i = 0; i < n / be; i++) put(x + i * be, dst + i * bb);
}

static void row_get(tgc_wtype t, const uint8_t *src, int64_t n, float *y) {
  int be = tgc_wtypes[t].block, bb = tgc_wtypes[t].block_bytes;
  switch (t) {
  case TGC_W_F32: memcpy(y, src, (size_t)n * 4); return;
  case TGC_W_F16:
    for (int64_t i = 0; i < n; i++) y[i] = tgc_f16_to_f32(get16(src + 2 * i));
    return;
  case TGC_W_BF16:
    for (int64_t i = 0; i < n; i++) y[i] = tgc_bf16_to_f32(get16(src + 2 * i));
    return;
  default: break;
  }
  void (*get)(const uint8_t *, float *) = t == TGC_W_Q8_0 ? q8_0_get : t == TGC_W_Q4_0 ? q4_0_get : nf4_get;
  for (int64_t i = 0; i < n / be; i++) get(src + i * bb, y + i * be);
}

tgc_status tgc_wquantize(const float *src, int64_t rows, int64_t cols, tgc_wtype to, void *dst) {
  int64_t rb;
  tgc_status st = check_matrix("wquantize", to, rows, cols, &rb);
  if (st) return st;
  if (!src || !dst) return tgc_set_error(TGC_ERR_ARG, "wquantize: NULL %s", src ? "dst" : "src");
  for (int64_t r = 0; r < rows; r++) row_put(to, src + r * cols, cols, (uint8_t *)dst + r * rb);
  return TGC_OK;
}

tgc_status tgc_wdequantize(tgc_wtype from, const void *src, int64_t rows, int64_t cols, float *dst) {
  int64_t rb;
  tgc_status st = check_matrix("wdequantize", from, rows, cols, &rb);
  if (st) return st;
  if (!src || !dst) return tgc_set_error(TGC_ERR_ARG, "wdequantize: NULL %s", src ? "dst" : "src");
  for (int64_t r = 0; r < rows; r++) row_get(from, (const uint8_t *)src + r * rb, cols, dst + r * cols);
  return TGC_OK;
}

tgc_status tgc_wconvert(tgc_wtype from, const void *src, int64_t rows, int64_t cols, tgc_wtype to,
                        void *dst) {
  int64_t rbf, rbt;
  tgc_status st = check_matrix("wconvert", from, rows, cols, &rbf);
  if (!st) st = check_matrix("wconvert", to, rows, cols, &rbt);
  if (st) return st;
  if (!src || !dst) return tgc_set_error(TGC_ERR_ARG, "wconvert: NULL %s", src ? "dst" : "src");
  if (from == to) { /* exact: quantizing dequantized blocks need not give them back */
    memcpy(dst, src, (size_t)(rows * rbf));
    return TGC_OK;
  }
  float *row = malloc((size_t)cols * sizeof *row);
  if (!row) return tgc_set_error(TGC_ERR_NOMEM, "wconvert: no memory for a row of %lld floats", (long long)cols);
  for (int64_t r = 0; r < rows; r++) {
    row_get(from, (const uint8_t *)src + r * rbf, cols, row);
    row_put(to, row, cols, (uint8_t *)dst + r * rbt);
  }
  free(row);
  return TGC_OK;
}

/* ---- on the device ------------------------------------------------------------ */

static const tgc_dtype float_dtype[TGC_W_COUNT] = {
    [TGC_W_F32] = TGC_F32, [TGC_W_F16] = TGC_F16, [TGC_W_BF16] = TGC_BF16};

tgc_tensor *tgc_wupload(tgc_ctx *ctx, tgc_wtype t, int64_t rows, int64_t cols, const void *data) {
  int64_t rb;
  if (check_matrix("wupload", t, rows, cols, &rb)) return NULL;
  if (!ctx || !data) return tgc_fail(TGC_ERR_ARG, "wupload: NULL %s", ctx ? "data" : "ctx");
  if (!is_quant(t)) return tgc_from_data(ctx, float_dtype[t], 2, (const int64_t[]){rows, cols}, data);
  return tgc_from_data(ctx, TGC_U8, 2, (const int64_t[]){rows, rb}, data);
}

/* Bytes [from, to) of every block of blk [rows, nblocks, block_bytes]. */
static tgc_tensor *block_bytes(tgc_tensor *blk, int64_t from, int64_t to) {
  if (!blk) return NULL;
  const int64_t *s = tgc_shape(blk);
  return tgc_shrink(blk, (const int64_t[]){0, s[0], 0, s[1], from, to});
}

/* The f16 scale in bytes 0..1 of each block, as f32 [rows, nblocks,
 * parts, n]: the bytes are broadcast over the block before they are
 * decoded, never the decoded scale.  The scheduler stores elementwise work
 * that a reduce reads through a large EXPAND (compiler/schedule.c,
 * store_expanded_work), so an expanded decode would be a kernel and a
 * [rows, nblocks] buffer of its own; a view of the raw bytes fuses. */
static tgc_tensor *block_scale(tgc_tensor *blk, int64_t parts, int64_t n) {
  tgc_ctx *ctx = tgc_ctx_of(blk);
  const int64_t *s = tgc_shape(blk), full[4] = {s[0], s[1], parts, n};
  tgc_tensor *lo = tgc_cast(tgc_expand(tgc_unsqueeze(block_bytes(blk, 0, 1), 3), 4, full), TGC_U16);
  tgc_tensor *hi = tgc_cast(tgc_expand(tgc_unsqueeze(block_bytes(blk, 1, 2), 3), 4, full), TGC_U16);
  tgc_tensor *h = tgc_or(tgc_shl(hi, tgc_scalar(ctx, TGC_U16, 8)), lo);
  return tgc_cast(tgc_bitcast(h, TGC_F16), TGC_F32);
}

/* The 4-bit codes of bytes 2.. of each block as u8 [rows, nblocks, 2,
 * block_bytes - 2]: [.., 0, j] the low nibble of byte j (element j),
 * [.., 1, j] the high one (element j + block / 2): (byte >> s) & 15 with
 * s = {0, 4} along the new axis, a lazy constant (a padded 4), so one
 * load serves both nibbles. */
static tgc_tensor *block_nibbles(tgc_tensor *blk) {
  tgc_ctx *ctx = tgc_ctx_of(blk);
  tgc_tensor *qs = tgc_unsqueeze(block_bytes(blk, 2, tgc_shape(blk)[2]), 2);
  tgc_tensor *s = tgc_pad(tgc_full(ctx, TGC_U8, 4, (const int64_t[]){1, 1, 1, 1}, 4),
                          (const int64_t[]){0, 0, 0, 0, 1, 0, 0, 0});
  return tgc_and(tgc_shr(qs, s), tgc_scalar(ctx, TGC_U8, 15));
}

/* nf4_table[idx] (idx u8) without a gather, so that it fuses: a tree of
 * 15 selects on the entries' bit patterns, one level per bit of idx, each
 * select branch-free integer work, lo ^ (mask & (hi ^ lo)) with mask =
 * 0 - bit (all ones or zero).  A tree of where()s on the f32 entries
 * compiles to branches that weights make unpredictable: 133 ms against
 * 35 ms. */
static tgc_tensor *nf4_lookup(tgc_tensor *idx) {
  tgc_ctx *ctx = tgc_ctx_of(idx);
  tgc_tensor *level[8], *i = tgc_cast(idx, TGC_U32), *one = tgc_scalar(ctx, TGC_U32, 1);
  uint32_t bits[16];
  memcpy(bits, nf4_table, sizeof bits);
  for (int bit = 0, n = 16; bit < 4; bit++, n /= 2) {
    tgc_tensor *b = tgc_and(bit ? tgc_shr(i, tgc_scalar(ctx, TGC_U32, bit)) : i, one);
    tgc_tensor *mask = tgc_sub(tgc_scalar(ctx, TGC_U32, 0), b);
    for (int k = 0; k < n / 2; k++) {
      /* the first level's operands are constants: their xor is folded here,
       * as a 0-d op broadcast into the reduce would be stored apart */
      tgc_tensor *lo = bit ? level[2 * k] : tgc_scalar(ctx, TGC_U32, bits[2 * k]);
      tgc_tensor *diff = bit ? tgc_xor(level[2 * k + 1], lo)
                             : tgc_scalar(ctx, TGC_U32, bits[2 * k + 1] ^ bits[2 * k]);
      level[k] = tgc_xor(lo, tgc_and(mask, diff));
    }
  }
  return tgc_bitcast(level[0], TGC_F32);
}

/* Checks that raw is what tgc_wupload makes for (t, rows, cols). */
static bool raw_ok(const char *fn, tgc_tensor *raw, tgc_wtype t, int64_t rows, int64_t cols, int64_t rb) {
  tgc_dtype want = is_quant(t) ? TGC_U8 : float_dtype[t];
  int64_t wcols = is_quant(t) ? rb : cols;
  const int64_t *s = tgc_shape(raw);
  if (tgc_dtype_of(raw) == want && tgc_ndim(raw) == 2 && s[0] == rows && s[1] == wcols) return true;
  char got[160];
  tgc_shape_str(tgc_ndim(raw), s, got, sizeof got);
  tgc_set_error(tgc_dtype_of(raw) == want ? TGC_ERR_SHAPE : TGC_ERR_DTYPE,
                "%s: a %s [%lld, %lld] weight is stored as %s [%lld, %lld], not %s %s",
                fn, tgc_wtypes[t].name, (long long)rows, (long long)cols, tgc_dtype_name(want), (long long)rows,
                (long long)wcols, tgc_dtype_name(tgc_dtype_of(raw)), got);
  return false;
}

/* A quantized weight dequantized block by block: f32 [rows, nblocks,
 * parts, block / parts], parts = 2 for the 4-bit types (low and high
 * nibbles), 1 for Q8_0; row-major order is the elements' order. */
static tgc_tensor *dequant_blocks(tgc_tensor *raw, tgc_wtype t, int64_t rows, int64_t cols) {
  const tgc_wtype_info *w = &tgc_wtypes[t];
  int64_t nb = cols / w->block, parts = t == TGC_W_Q8_0 ? 1 : 2;
  tgc_tensor *blk = tgc_reshape(raw, 3, (const int64_t[]){rows, nb, w->block_bytes});
  if (!blk) return NULL;
  tgc_tensor *q;
  if (t == TGC_W_Q8_0)
    q = tgc_unsqueeze(tgc_cast(tgc_bitcast(block_bytes(blk, 2, w->block_bytes), TGC_I8), TGC_F32), 2);
  else if (t == TGC_W_Q4_0)
    q = tgc_sub(tgc_cast(block_nibbles(blk), TGC_F32), tgc_scalar(tgc_ctx_of(raw), TGC_F32, 8));
  else
    q = nf4_lookup(block_nibbles(blk));
  return tgc_mul(q, block_scale(blk, parts, w->block / parts));
}

tgc_tensor *tgc_wdequant(tgc_tensor *raw, tgc_wtype t, int64_t rows, int64_t cols) {
  int64_t rb;
  if (!raw) return NULL;
  if (check_matrix("wdequant", t, rows, cols, &rb) || !raw_ok("wdequant", raw, t, rows, cols, rb)) return NULL;
  if (!is_quant(t)) return tgc_cast(raw, TGC_F32);
  tgc_tensor *y = tgc_reshape(dequant_blocks(raw, t, rows, cols), 2, (const int64_t[]){rows, cols});
  return y ? y : tgc_fail_in("wdequant");
}

/* For a quantized weight the product is summed over the blocks' own axes
 * rather than a flattened cols axis: x [..., 1, nblocks, parts, n] times
 * dequant_blocks [rows, nblocks, parts, n].  Still one kernel, but its
 * loops follow the blocks, so the element loop shares its block's scale
 * and no element pays a division and a modulo to find its block or nibble
 * (against tgc_matmul of a flat dequantized [rows, cols], best of three
 * runs: q8_0 12.2 -> 4.4 ms, q4_0 14.1 -> 5.3 ms, nf4 161 -> 34 ms with
 * the select tree above).  With 4 or more rows of x the scheduler stores
 * the dequantized weight first, as it stores any elementwise work that a
 * reduce would recompute 4 times or more (store_expanded_work): an f32
 * [rows, cols] buffer for the length of the call. */
tgc_tensor *tgc_wlinear(tgc_tensor *x, tgc_tensor *raw, tgc_wtype t, int64_t rows, int64_t cols) {
  if (!x || !raw) return NULL;
  if (tgc_dtype_of(x) != TGC_F32)
    return tgc_fail(TGC_ERR_DTYPE, "wlinear: x must be f32, not %s", tgc_dtype_name(tgc_dtype_of(x)));
  int nd = tgc_ndim(x);
  if (nd < 1 || tgc_shape(x)[nd - 1] != cols) {
    char s[160];
    return tgc_fail(TGC_ERR_SHAPE, "wlinear: x %s does not end in the weight's %lld columns",
                    tgc_shape_str(nd, tgc_shape(x), s, sizeof s), (long long)cols);
  }
  int64_t rb;
  if (check_matrix("wlinear", t, rows, cols, &rb) || !raw_ok("wlinear", raw, t, rows, cols, rb)) return NULL;
  if (!is_quant(t)) return tgc_matmul(x, tgc_transpose(tgc_cast(raw, TGC_F32), 0, 1));
  if (nd + 3 > TGC_MAX_DIMS) return tgc_fail(TGC_ERR_SHAPE, "wlinear: x has too many dimensions (%d)", nd);
  tgc_tensor *wb = dequant_blocks(raw, t, rows, cols);
  if (!wb) return tgc_fail_in("wlinear");
  int64_t shape[TGC_MAX_DIMS];
  memcpy(shape, tgc_shape(x), sizeof *shape * (size_t)(nd - 1));
  shape[nd - 1] = 1;
  memcpy(shape + nd, tgc_shape(wb) + 1, 3 * sizeof *shape);
  tgc_tensor *prod = tgc_mul(tgc_reshape(x, nd + 3, shape), wb);
  tgc_tensor *y = tgc_sum(prod, 3, (const int[]){-3, -2, -1}, false);
  return y ? y : tgc_fail_in("wlinear");
}
