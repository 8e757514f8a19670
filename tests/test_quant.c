/* test_quant.c - weight types (llama/quant.c).
 *
 * Host conversion against bytes derived by hand in the comments (Q8_0,
 * Q4_0, NF4 blocks; f16 and bf16 ties), error bounds on normal data with
 * the bound's reasoning beside it, the device dequantisation bit for bit
 * against the host's, and the point of it all: a quantized matvec through
 * tgc_wlinear is one kernel that allocates only its output, checked with
 * the counters and against an f64 reference on the dequantized weight.
 * Bad input last.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../llama/llama.h"
#include "ref.h"

TestSuite(quant, .init = ref_setup, .fini = ref_teardown);

static const float nf4[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

static float f_of(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static uint16_t u16_at(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Seeded N(0, 1) floats, rows * cols of them. */
static float *normal_floats(int64_t rows, int64_t cols, uint64_t seed) {
  ref_t *r = ref_normal(2, I64S(rows, cols), seed);
  float *f = ref_alloc((size_t)(rows * cols) * sizeof *f);
  for (int64_t i = 0; i < rows * cols; i++) f[i] = (float)r->v[i];
  return f;
}

/* Quantizes, asserting success; the bytes are tracked by ref. */
static uint8_t *quantize(const float *x, int64_t rows, int64_t cols, tgc_wtype t) {
  int64_t rb = tgc_wtype_row_bytes(t, cols);
  cr_assert_gt(rb, 0);
  uint8_t *q = ref_alloc((size_t)(rows * rb));
  cr_assert_eq(tgc_wquantize(x, rows, cols, t, q), TGC_OK, "%s", tgc_last_error());
  return q;
}

static float *dequantize(const uint8_t *q, int64_t rows, int64_t cols, tgc_wtype t) {
  float *y = ref_alloc((size_t)(rows * cols) * sizeof *y);
  cr_assert_eq(tgc_wdequantize(t, q, rows, cols, y), TGC_OK, "%s", tgc_last_error());
  return y;
}

/* ---- the table --------------------------------------------------------------- */

Test(quant, table_and_row_bytes) {
  cr_expect_str_eq(tgc_wtypes[TGC_W_Q4_0].name, "q4_0");
  cr_expect_eq(tgc_wtypes[TGC_W_Q8_0].ggml, 8);
  cr_expect_eq(tgc_wtypes[TGC_W_NF4].ggml, -1);
  cr_expect_eq(tgc_wtype_row_bytes(TGC_W_F32, 3), 12);
  cr_expect_eq(tgc_wtype_row_bytes(TGC_W_BF16, 5), 10);
  cr_expect_eq(tgc_wtype_row_bytes(TGC_W_Q8_0, 64), 68);
  cr_expect_eq(tgc_wtype_row_bytes(TGC_W_Q4_0, 4096), 128 * 18);
  cr_expect_eq(tgc_wtype_row_bytes(TGC_W_NF4, 128), 68);
  cr_expect_eq(tgc_wtype_row_bytes(TGC_W_Q8_0, 33), -1);
  cr_expect_eq(tgc_wtype_row_bytes(TGC_W_NF4, 32), -1);
  cr_expect_eq(tgc_wtype_row_bytes(TGC_W_F32, -1), -1);
  cr_expect_eq(tgc_wtype_row_bytes(TGC_W_COUNT, 32), -1);
  /* (2^63 - 32) / 32 blocks of 34 bytes do not fit in an int64 */
  cr_expect_eq(tgc_wtype_row_bytes(TGC_W_Q8_0, INT64_MAX - 31), -1);
  cr_expect_eq(tgc_wtype_row_bytes(TGC_W_F32, INT64_MAX / 4 + 1), -1);
  cr_expect_eq(tgc_wtype_row_bytes(TGC_W_F32, INT64_MAX / 4), INT64_MAX / 4 * 4);
}

Test(quant, parse_names) {
  static const struct {
    const char *name;
    tgc_wtype t;
  } ok[] = {{"f32", TGC_W_F32},   {"f16", TGC_W_F16},   {"bf16", TGC_W_BF16}, {"q8_0", TGC_W_Q8_0},
            {"int8", TGC_W_Q8_0}, {"q4_0", TGC_W_Q4_0}, {"nf4", TGC_W_NF4},   {"Q4_0", TGC_W_Q4_0}};
  for (int i = 0; i < COUNT(ok); i++) {
    tgc_wtype t = TGC_W_COUNT;
    cr_expect(tgc_wtype_parse(ok[i].name, &t), "%s: %s", ok[i].name, tgc_last_error());
    cr_expect_eq(t, ok[i].t, "%s", ok[i].name);
  }
}

/* ---- f16 and bf16 rounding ------------------------------------------------------ */

Test(quant, f16_rounds_to_nearest_even) {
  static const struct {
    float x;
    uint16_t h;
  } c[] = {
      {1.0f, 0x3c00},
      {1.0f + 0x1p-11f, 0x3c00},        /* halfway 1 | 1+2^-10: to the even 0x3c00 */
      {1.0f + 3 * 0x1p-11f, 0x3c02},    /* halfway 0x3c01 | 0x3c02: to 0x3c02 */
      {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01}, /* just above the tie */
      {-2.0f, 0xc000},
      {0.1f, 0x2e66},                   /* 0.0999755859375, the nearest */
      {65504.0f, 0x7bff},               /* largest finite */
      {65519.0f, 0x7bff},               /* below the tie 65520 */
      {65520.0f, 0x7c00},               /* the tie with 65536 goes to even: inf */
      {0x1p-14f, 0x0400},               /* smallest normal */
      {0x1p-24f, 0x0001},               /* smallest subnormal */
      {0x1p-25f, 0x0000},               /* halfway 0 | 2^-24: to zero */
      {3 * 0x1p-25f, 0x0002},           /* halfway 1 | 2 units: to 2 */
      {0x1p-30f, 0x0000},
      {-0.0f, 0x8000},
      {INFINITY, 0x7c00},
      {-INFINITY, 0xfc00},
  };
  for (int i = 0; i < COUNT(c); i++) {
    uint8_t b[2];
    cr_assert_eq(tgc_wquantize(&c[i].x, 1, 1, TGC_W_F16, b), TGC_OK);
    cr_expect_eq(u16_at(b), c[i].h, "f16(%a) = %04x, want %04x", (double)c[i].x, u16_at(b), c[i].h);
    float back;
    cr_assert_eq(tgc_wdequantize(TGC_W_F16, b, 1, 1, &back), TGC_OK);
    cr_expect_eq(back, (float)ref_f16_to_double(c[i].h), "decode %04x", c[i].h);
  }
  uint8_t b[2];
  float nan = NAN, back;
  tgc_wquantize(&nan, 1, 1, TGC_W_F16, b);
  cr_expect((u16_at(b) & 0x7c00) == 0x7c00 && (u16_at(b) & 0x3ff), "NaN stays NaN: %04x", u16_at(b));
  tgc_wdequantize(TGC_W_F16, (const uint8_t[]){0x01, 0x00}, 1, 1, &back);
  cr_expect_eq(back, 0x1p-24f);
  tgc_wdequantize(TGC_W_F16, (const uint8_t[]){0x55, 0x35}, 1, 1, &back);
  cr_expect_eq(back, 0.333251953125f);
}

Test(quant, bf16_rounds_to_nearest_even) {
  static const struct {
    uint32_t x;
    uint16_t h;
  } c[] = {
      {0x3f800000, 0x3f80}, /* 1.0 */
      {0x3f808000, 0x3f80}, /* halfway 0x3f80 | 0x3f81: to even */
      {0x3f818000, 0x3f82}, /* halfway 0x3f81 | 0x3f82: to even */
      {0x3f808001, 0x3f81}, /* above the tie */
      {0x3f807fff, 0x3f80}, /* below it */
      {0x7f7fffff, 0x7f80}, /* FLT_MAX rounds up to inf */
      {0xff800000, 0xff80}, /* -inf */
      {0x7fc00001, 0x7fc0}, /* quiet NaN */
      {0x7f800001, 0x7fc0}, /* signalling NaN: truncation would give inf; kept NaN (quieted) */
  };
  for (int i = 0; i < COUNT(c); i++) {
    float x = f_of(c[i].x), back;
    uint8_t b[2];
    cr_assert_eq(tgc_wquantize(&x, 1, 1, TGC_W_BF16, b), TGC_OK);
    cr_expect_eq(u16_at(b), c[i].h, "bf16(%08x) = %04x, want %04x", c[i].x, u16_at(b), c[i].h);
    cr_assert_eq(tgc_wdequantize(TGC_W_BF16, b, 1, 1, &back), TGC_OK);
    uint32_t bb;
    memcpy(&bb, &back, 4);
    cr_expect_eq(bb, (uint32_t)c[i].h << 16);
  }
}

/* ---- blocks by hand ---------------------------------------------------------------- */

/* x[j] = (8j - 127) / 64: absmax 127/64, so d = 1/64 exactly (f16 0x2400,
 * bytes 00 24) and q[j] = 8j - 127.  Three overrides show the rounding:
 * x = -2.5/64 -> -3 and 2.5/64 -> 3 (roundf: half away from zero, as
 * ggml), 0.49/64 -> 0.  A second block of zeros: d = 0, q = 0. */
Test(quant, q8_0_block_by_hand) {
  float x[64] = {0};
  for (int j = 0; j < 32; j++) x[j] = (float)(8 * j - 127) / 64;
  x[1] = -2.5f / 64, x[2] = 2.5f / 64, x[3] = 0.49f / 64;
  uint8_t want[68] = {0x00, 0x24};
  for (int j = 0; j < 32; j++) want[2 + j] = (uint8_t)(int8_t)(8 * j - 127);
  want[2 + 1] = 0xfd, want[2 + 2] = 3, want[2 + 3] = 0;
  uint8_t *q = quantize(x, 1, 64, TGC_W_Q8_0);
  for (int i = 0; i < 68; i++) cr_expect_eq(q[i], want[i], "byte %d: %02x, want %02x", i, q[i], want[i]);
  float *y = dequantize(q, 1, 64, TGC_W_Q8_0);
  for (int j = 0; j < 64; j++) {
    int8_t k = j < 32 ? (int8_t)want[2 + j] : 0;
    cr_expect_eq(y[j], (float)k / 64, "y[%d] = %g", j, (double)y[j]);
  }
}

/* Block 0: x[j] = j/2 - 8.  The largest magnitude is x[0] = -8, so
 * d = -8 / -8 = 1 (f16 0x3c00, bytes 00 3c), id = 1, and
 * q = trunc(x + 8.5) = (j + 1) / 2 (integer division): -7.5 and -7 both
 * give 1 (ties go up), and x[31] = 7.5 gives 16, clamped to 15.
 * Block 1: x[j] = 4 - j/4.  The largest is +4, so d = 4 / -8 = -0.5
 * (f16 0xb800, bytes 00 b8), id = -2, x * id = j/2 - 8: the same codes.
 * Byte 2 + j of a block is q[j] | q[j + 16] << 4. */
Test(quant, q4_0_block_by_hand) {
  float x[64];
  for (int j = 0; j < 32; j++) x[j] = (float)j / 2 - 8, x[32 + j] = 4 - (float)j / 4;
  int code[32];
  for (int j = 0; j < 32; j++) code[j] = (j + 1) / 2 < 15 ? (j + 1) / 2 : 15;
  uint8_t want[36] = {0x00, 0x3c};
  want[18] = 0x00, want[19] = 0xb8;
  for (int j = 0; j < 16; j++) want[2 + j] = want[20 + j] = (uint8_t)(code[j] | code[j + 16] << 4);
  cr_expect_eq(want[2], 0x80, "q[0] = 0, q[16] = 8");
  cr_expect_eq(want[17], 0xf8, "q[15] = 8, q[31] = 15 (clamped)");
  uint8_t *q = quantize(x, 1, 64, TGC_W_Q4_0);
  for (int i = 0; i < 36; i++) cr_expect_eq(q[i], want[i], "byte %d: %02x, want %02x", i, q[i], want[i]);
  float *y = dequantize(q, 1, 64, TGC_W_Q4_0);
  for (int j = 0; j < 32; j++) {
    cr_expect_eq(y[j], (float)(code[j] - 8), "block 0, y[%d] = %g", j, (double)y[j]);
    cr_expect_eq(y[32 + j], (float)(code[j] - 8) * -0.5f, "block 1, y[%d] = %g", j, (double)y[32 + j]);
  }
  /* the clipped top code: x = 7.5 comes back as 7, x = -3.75 as -3.5 */
  cr_expect_eq(y[31], 7.0f);
  cr_expect_eq(y[63], -3.5f);
}

/* Absmax 2 (f16 0x4000, bytes 00 40).  Element j is 2 * nf4[j % 16] moved
 * 30% of the way towards a neighbour, so the nearest entry stays j % 16;
 * x[0] = 2 itself normalises to 1.0 (code 15) - except that element 0 is
 * overridden to 2.0 and element 1 to -2.0, codes 15 and 0.  Elements j and
 * j + 32 then share codes (j % 16 == (j + 32) % 16), so byte 2 + j is
 * (j % 16) * 0x11 for j >= 2. */
Test(quant, nf4_block_by_hand) {
  float x[64];
  int code[64];
  for (int j = 0; j < 64; j++) {
    int k = j % 16;
    float toward = k < 15 ? nf4[k + 1] : nf4[k - 1];
    x[j] = 2 * (nf4[k] + 0.3f * (toward - nf4[k]));
    code[j] = k;
  }
  x[0] = 2, code[0] = 15;
  x[1] = -2, code[1] = 0;
  x[63] = 2, code[63] = 15; /* keeps the absmax at 2 whatever the moves */
  uint8_t *q = quantize(x, 1, 64, TGC_W_NF4);
  cr_expect_eq(q[0], 0x00);
  cr_expect_eq(q[1], 0x40);
  for (int j = 0; j < 32; j++) {
    int want = code[j] | code[j + 32] << 4;
    cr_expect_eq(q[2 + j], want, "byte %d: %02x, want %02x", 2 + j, q[2 + j], want);
    if (j >= 2 && j != 31) cr_expect_eq(q[2 + j], (j % 16) * 0x11);
  }
  float *y = dequantize(q, 1, 64, TGC_W_NF4);
  for (int j = 0; j < 64; j++) cr_expect_eq(y[j], nf4[code[j]] * 2, "y[%d] = %g", j, (double)y[j]);
}

/* ---- error bounds on normal data ----------------------------------------------------- */

enum { ER = 16, EC = 256 };

/* Q8_0: q = round(x / d) is within 1/2 of x / d, so |x - q d| <= d/2 (the
 * reciprocal ggml multiplies by adds ~2^-24 * 127 relative, hence the
 * 1e-4).  The stored scale d16 = f16(d) moves each value by |q| |d - d16|
 * <= 127 |d - d16|, and the f32 product rounds by 2^-24 relative. */
Test(quant, q8_0_error_bound) {
  float *x = normal_floats(ER, EC, 11);
  uint8_t *q = quantize(x, ER, EC, TGC_W_Q8_0);
  float *y = dequantize(q, ER, EC, TGC_W_Q8_0);
  double worst = 0;
  for (int64_t b = 0; b < ER * EC / 32; b++) {
    double amax = 0;
    for (int j = 0; j < 32; j++) amax = fmax(amax, fabs(x[b * 32 + j]));
    double d = amax / 127, d16 = ref_f16_to_double(u16_at(q + b * 34));
    double bound = d / 2 * (1 + 1e-4) + 127 * fabs(d - d16) + amax * 0x1p-23;
    for (int j = 0; j < 32; j++) {
      double err = fabs((double)x[b * 32 + j] - y[b * 32 + j]);
      worst = fmax(worst, err / d);
      cr_expect_leq(err, bound, "block %lld elem %d: error %g > bound %g", (long long)b, j, err, bound);
    }
  }
  cr_expect_gt(worst, 0.3, "the bound is not vacuous: worst error %g d", worst);
}

/* Q4_0: d = m / -8 for the signed largest m, so t = x / d lies in
 * [-8, 8] and the code is trunc(t + 8.5) - 8 = floor(t + 1/2) (round half
 * up): within |d|/2 of x - unless t >= 7.5, where the code clamps at 7
 * (codes run -8..7, so the mirror image of m, t = 8, cannot be hit) and
 * the error reaches |d|.  Scale rounding adds |q - 8| |d - d16| <=
 * 8 |d - d16|. */
Test(quant, q4_0_error_bound) {
  float *x = normal_floats(ER, EC, 12);
  uint8_t *q = quantize(x, ER, EC, TGC_W_Q4_0);
  float *y = dequantize(q, ER, EC, TGC_W_Q4_0);
  int clipped = 0;
  for (int64_t b = 0; b < ER * EC / 32; b++) {
    double amax = 0, m = 0;
    for (int j = 0; j < 32; j++)
      if (fabs(x[b * 32 + j]) > amax) amax = fabs(x[b * 32 + j]), m = x[b * 32 + j];
    double d = m / -8, d16 = ref_f16_to_double(u16_at(q + b * 18));
    for (int j = 0; j < 32; j++) {
      double t = x[b * 32 + j] / d;
      clipped += t >= 7.5;
      double bound = (t < 7.5 ? 0.5 : 1.0) * fabs(d) * (1 + 1e-4) + 8 * fabs(d - d16) + amax * 0x1p-23;
      double err = fabs((double)x[b * 32 + j] - y[b * 32 + j]);
      cr_expect_leq(err, bound, "block %lld elem %d: t = %g, error %g > bound %g", (long long)b, j, t, err,
                    bound);
    }
  }
  cr_expect_gt(clipped, 0, "normal data reaches the clipped code");
}

/* NF4: with s = f16(absmax), x / s lies in [-1 - 2^-11, 1 + 2^-11]; the
 * nearest codebook entry is within half the largest gap (nf4[1] - nf4[0]
 * = 0.3038) of it, and the code must be the nearest one (checked
 * directly, up to the f32 rounding of x / s).  Beyond +-1 the error is
 * |x| - s <= absmax 2^-11. */
Test(quant, nf4_error_bound_and_nearest_code) {
  float *x = normal_floats(ER, EC, 13);
  uint8_t *q = quantize(x, ER, EC, TGC_W_NF4);
  float *y = dequantize(q, ER, EC, TGC_W_NF4);
  double gap = 0;
  for (int k = 0; k < 15; k++) gap = fmax(gap, (double)nf4[k + 1] - nf4[k]);
  for (int64_t b = 0; b < ER * EC / 64; b++) {
    const uint8_t *blk = q + b * 34;
    double amax = 0, s = ref_f16_to_double(u16_at(blk));
    for (int j = 0; j < 64; j++) amax = fmax(amax, fabs(x[b * 64 + j]));
    cr_expect_leq(fabs(amax - s), amax * 0x1p-11);
    for (int j = 0; j < 64; j++) {
      double v = x[b * 64 + j] / s;
      int code = j < 32 ? blk[2 + j] & 15 : blk[2 + j - 32] >> 4;
      double best = INFINITY;
      for (int k = 0; k < 16; k++) best = fmin(best, fabs(v - nf4[k]));
      cr_expect_leq(fabs(v - nf4[code]), best + 1e-6, "block %lld elem %d: code %d is not the nearest",
                    (long long)b, j, code);
      double err = fabs((double)x[b * 64 + j] - y[b * 64 + j]);
      double bound = s * gap / 2 + amax * 0x1p-11 + amax * 0x1p-22;
      cr_expect_leq(err, bound, "block %lld elem %d: error %g > bound %g", (long long)b, j, err, bound);
    }
  }
}

Test(quant, convert_goes_through_f32) {
  float *x = normal_floats(4, 64, 14);
  uint8_t *h = quantize(x, 4, 64, TGC_W_F16);
  /* f16 -> q4_0 equals quantizing the f16 values */
  float *xh = dequantize(h, 4, 64, TGC_W_F16);
  uint8_t *want = quantize(xh, 4, 64, TGC_W_Q4_0), got[4 * 36];
  cr_assert_eq(tgc_wconvert(TGC_W_F16, h, 4, 64, TGC_W_Q4_0, got), TGC_OK, "%s", tgc_last_error());
  cr_expect_arr_eq(got, want, sizeof got);
  /* q4_0 -> f32 is the dequantization; q4_0 -> q4_0 copies */
  float f[4 * 64];
  cr_assert_eq(tgc_wconvert(TGC_W_Q4_0, want, 4, 64, TGC_W_F32, f), TGC_OK);
  cr_expect_arr_eq(f, dequantize(want, 4, 64, TGC_W_Q4_0), sizeof f);
  uint8_t copy[4 * 36];
  cr_assert_eq(tgc_wconvert(TGC_W_Q4_0, want, 4, 64, TGC_W_Q4_0, copy), TGC_OK);
  cr_expect_arr_eq(copy, want, sizeof copy);
}

/* ---- on the device ---------------------------------------------------------------------- */

static const tgc_wtype all_types[] = {TGC_W_F32, TGC_W_F16, TGC_W_BF16, TGC_W_Q8_0, TGC_W_Q4_0, TGC_W_NF4};

/* The device's dequantization is the host's, bit for bit (one f32 product
 * of the same operands on both), in one elementwise kernel. */
Test(quant, device_dequant_equals_host_bitwise) {
  enum { R = 8, C = 128 };
  for (int i = 0; i < COUNT(all_types); i++) {
    tgc_wtype t = all_types[i];
    const char *name = tgc_wtypes[t].name;
    float *x = normal_floats(R, C, 20 + (uint64_t)i);
    uint8_t *q = quantize(x, R, C, t);
    float *want = dequantize(q, R, C, t);
    tgc_tensor *raw = tgc_wupload(tctx, t, R, C, q);
    cr_assert_not_null(raw, "%s: %s", name, tgc_last_error());
    tgc_tensor *w = tgc_wdequant(raw, t, R, C);
    cr_assert_not_null(w, "%s: %s", name, tgc_last_error());
    cr_expect_eq(tgc_dtype_of(w), TGC_F32);
    cr_expect(tgc_ndim(w) == 2 && tgc_shape(w)[0] == R && tgc_shape(w)[1] == C, "%s: shape", name);
    tgc_stats a, b;
    tgc_get_stats(tctx, &a);
    cr_assert_eq(tgc_realize(tctx, 1, &w), TGC_OK, "%s: %s", name, tgc_last_error());
    tgc_get_stats(tctx, &b);
    cr_expect_eq(b.kernels_scheduled - a.kernels_scheduled, t == TGC_W_F32 ? 0 : 1, "%s: %llu kernels", name,
                 (unsigned long long)(b.kernels_scheduled - a.kernels_scheduled));
    float got[R * C];
    cr_assert_eq(tgc_to_host(w, got, sizeof got), TGC_OK, "%s: %s", name, tgc_last_error());
    for (int k = 0; k < R * C; k++)
      if (memcmp(&got[k], &want[k], 4)) {
        cr_expect_fail("%s: element %d: device %a, host %a", name, k, (double)got[k], (double)want[k]);
        break;
      }
  }
}

/* The model's embedding gathers rows of the raw bytes and dequantizes
 * only those (tgc_embedding, then tgc_wdequant of the [n, row_bytes]
 * result): the rows come back as the host decodes them. */
Test(quant, dequant_of_gathered_rows) {
  enum { R = 8, C = 128, N = 3 };
  static const int32_t ids[N] = {3, 0, 7};
  for (int i = 0; i < COUNT(all_types); i++) {
    tgc_wtype t = all_types[i];
    float *x = normal_floats(R, C, 30 + (uint64_t)i);
    uint8_t *q = quantize(x, R, C, t);
    float *want = dequantize(q, R, C, t);
    tgc_tensor *raw = tgc_wupload(tctx, t, R, C, q);
    tgc_tensor *rows = tgc_embedding(raw, tgc_from_data(tctx, TGC_I32, 1, I64S(N), ids));
    tgc_tensor *w = tgc_wdequant(rows, t, N, C);
    cr_assert_not_null(w, "%s: %s", tgc_wtypes[t].name, tgc_last_error());
    float got[N * C];
    cr_assert_eq(tgc_to_host(w, got, sizeof got), TGC_OK, "%s: %s", tgc_wtypes[t].name, tgc_last_error());
    for (int r = 0; r < N; r++)
      cr_expect_arr_eq(got + r * C, want + ids[r] * C, C * sizeof(float), "%s: row %d", tgc_wtypes[t].name,
                       ids[r]);
  }
}

/* y = x @ W^T in f64 from the host dequantization; *mag gets sum |x w|
 * per output, the scale of the f32 rounding. */
static void ref_linear(const float *x, const float *w, int64_t n, int64_t rows, int64_t cols, double *y,
                       double *mag) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t r = 0; r < rows; r++) {
      double s = 0, m = 0;
      for (int64_t k = 0; k < cols; k++) {
        s += (double)x[i * cols + k] * w[r * cols + k];
        m += fabs((double)x[i * cols + k] * w[r * cols + k]);
      }
      y[i * rows + r] = s, mag[i * rows + r] = m;
    }
}

static void check_linear(const char *what, tgc_tensor *y, const float *x, const float *w, int64_t n,
                         int64_t rows, int64_t cols) {
  float *got = ref_alloc((size_t)(n * rows) * sizeof *got);
  double *want = ref_alloc((size_t)(n * rows) * sizeof *want), *mag = ref_alloc((size_t)(n * rows) * sizeof *mag);
  cr_assert_eq(tgc_to_host(y, got, (size_t)(n * rows) * sizeof *got), TGC_OK, "%s: %s", what, tgc_last_error());
  ref_linear(x, w, n, rows, cols, want, mag);
  for (int64_t i = 0; i < n * rows; i++)
    cr_expect_leq(fabs(got[i] - want[i]), 1e-4 * mag[i] + 1e-30, "%s: y[%lld] = %.9g, want %.9g", what,
                  (long long)i, (double)got[i], want[i]);
}

/* The point of the design: the dequantization fuses into the matvec's
 * loads.  One kernel is scheduled and launched, one buffer (the [1, 64]
 * output) allocated - never the [64, 256] f32 weight - and the result is
 * the f64 product with the host-dequantized weight, to 1e-4 of sum |x w|. */
Test(quant, matvec_is_one_kernel_allocating_only_its_output) {
  enum { K = 256, N = 64 };
  for (int i = 0; i < COUNT(all_types); i++) {
    tgc_wtype t = all_types[i];
    const char *name = tgc_wtypes[t].name;
    float *wf = normal_floats(N, K, 40 + (uint64_t)i), *xf = normal_floats(1, K, 50 + (uint64_t)i);
    uint8_t *q = quantize(wf, N, K, t);
    tgc_tensor *raw = tgc_wupload(tctx, t, N, K, q);
    tgc_tensor *x = tgc_from_data(tctx, TGC_F32, 2, I64S(1, K), xf);
    cr_assert(raw && x, "%s: %s", name, tgc_last_error());
    tgc_tensor *y = tgc_wlinear(x, raw, t, N, K);
    cr_assert_not_null(y, "%s: %s", name, tgc_last_error());
    cr_expect(tgc_ndim(y) == 2 && tgc_shape(y)[0] == 1 && tgc_shape(y)[1] == N, "%s: shape", name);
    tgc_stats a, b;
    tgc_get_stats(tctx, &a);
    cr_assert_eq(tgc_realize(tctx, 1, &y), TGC_OK, "%s: %s", name, tgc_last_error());
    tgc_get_stats(tctx, &b);
    cr_expect_eq(b.kernels_scheduled - a.kernels_scheduled, 1, "%s: %llu kernels scheduled", name,
                 (unsigned long long)(b.kernels_scheduled - a.kernels_scheduled));
    cr_expect_eq(b.launches - a.launches, 1, "%s: %llu launches", name,
                 (unsigned long long)(b.launches - a.launches));
    cr_expect_eq(b.buffers_allocated - a.buffers_allocated, 1, "%s: %llu buffers", name,
                 (unsigned long long)(b.buffers_allocated - a.buffers_allocated));
    cr_expect_eq(b.bytes_allocated - a.bytes_allocated, N * sizeof(float), "%s: %llu bytes allocated", name,
                 (unsigned long long)(b.bytes_allocated - a.bytes_allocated));
    cr_expect_lt(b.bytes_allocated - a.bytes_allocated, (uint64_t)N * K * sizeof(float));
    cr_expect_eq(b.bytes_in_use - a.bytes_in_use, N * sizeof(float), "%s: only the output stays", name);
    cr_expect_leq(b.peak_bytes, (a.peak_bytes > a.bytes_in_use + N * 4 ? a.peak_bytes : a.bytes_in_use + N * 4),
                  "%s: peak %llu", name, (unsigned long long)b.peak_bytes);
    check_linear(name, y, xf, dequantize(q, N, K, t), 1, N, K);
  }
}

/* Several rows of x, and a 1-d x, give the same products. */
Test(quant, wlinear_batched_and_1d) {
  enum { K = 128, N = 24, B = 3 };
  static const tgc_wtype ts[] = {TGC_W_Q8_0, TGC_W_Q4_0, TGC_W_NF4, TGC_W_BF16};
  for (int i = 0; i < COUNT(ts); i++) {
    tgc_wtype t = ts[i];
    float *wf = normal_floats(N, K, 60 + (uint64_t)i), *xf = normal_floats(B, K, 70 + (uint64_t)i);
    uint8_t *q = quantize(wf, N, K, t);
    float *w = dequantize(q, N, K, t);
    tgc_tensor *raw = tgc_wupload(tctx, t, N, K, q);
    tgc_tensor *x = tgc_from_data(tctx, TGC_F32, 3, I64S(1, B, K), xf);
    tgc_tensor *y = tgc_wlinear(x, raw, t, N, K);
    cr_assert_not_null(y, "%s: %s", tgc_wtypes[t].name, tgc_last_error());
    cr_expect(tgc_ndim(y) == 3 && tgc_shape(y)[1] == B && tgc_shape(y)[2] == N);
    check_linear(tgc_wtypes[t].name, y, xf, w, B, N, K);
    tgc_tensor *x1 = tgc_from_data(tctx, TGC_F32, 1, I64S(K), xf);
    tgc_tensor *y1 = tgc_wlinear(x1, raw, t, N, K);
    cr_assert_not_null(y1, "%s: %s", tgc_wtypes[t].name, tgc_last_error());
    cr_expect(tgc_ndim(y1) == 1 && tgc_shape(y1)[0] == N);
    check_linear(tgc_wtypes[t].name, y1, xf, w, 1, N, K);
  }
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void expect_error(bool failed, tgc_status st, const char *needle, const char *what) {
  cr_expect(failed, "%s: expected a failure", what);
  cr_expect_eq(tgc_last_status(), st, "%s: status %s (%s)", what, tgc_status_str(tgc_last_status()),
               tgc_last_error());
  cr_expect(strstr(tgc_last_error(), needle), "%s: message \"%s\" lacks \"%s\"", what, tgc_last_error(), needle);
  tgc_clear_error();
}

Test(quant, bad_input) {
  tgc_wtype t = TGC_W_F32;
  tgc_clear_error();
  expect_error(!tgc_wtype_parse("q5_k", &t), TGC_ERR_ARG, "q5_k", "parse q5_k");
  cr_expect_eq(t, TGC_W_F32, "out untouched on failure");
  expect_error(!tgc_wtype_parse(NULL, &t), TGC_ERR_ARG, "NULL", "parse NULL");

  float x[100] = {0};
  uint8_t buf[4 * 100];
  expect_error(tgc_wquantize(x, 1, 100, TGC_W_Q4_0, buf) != TGC_OK, TGC_ERR_SHAPE, "100 columns",
               "q4_0 of 100 columns");
  expect_error(tgc_wquantize(x, 1, 32, TGC_W_NF4, buf) != TGC_OK, TGC_ERR_SHAPE, "blocks of 64", "nf4 of 32");
  expect_error(tgc_wquantize(NULL, 1, 32, TGC_W_Q8_0, buf) != TGC_OK, TGC_ERR_ARG, "NULL src", "NULL src");
  expect_error(tgc_wquantize(x, 1, 32, TGC_W_Q8_0, NULL) != TGC_OK, TGC_ERR_ARG, "NULL dst", "NULL dst");
  expect_error(tgc_wquantize(x, 0, 32, TGC_W_Q8_0, buf) != TGC_OK, TGC_ERR_SHAPE, ">= 1", "zero rows");
  expect_error(tgc_wquantize(x, 1, 32, (tgc_wtype)99, buf) != TGC_OK, TGC_ERR_ARG, "out of range", "type 99");
  expect_error(tgc_wdequantize(TGC_W_Q8_0, NULL, 1, 32, x) != TGC_OK, TGC_ERR_ARG, "NULL src", "dequantize NULL");
  expect_error(tgc_wconvert(TGC_W_F32, x, 1, 48, TGC_W_Q8_0, buf) != TGC_OK, TGC_ERR_SHAPE, "48 columns",
               "convert 48 to q8_0");

  expect_error(tgc_wupload(tctx, TGC_W_Q8_0, 2, 64, NULL) == NULL, TGC_ERR_ARG, "NULL data", "upload NULL");
  expect_error(tgc_wupload(NULL, TGC_W_Q8_0, 2, 64, buf) == NULL, TGC_ERR_ARG, "NULL ctx", "upload NULL ctx");
  expect_error(tgc_wupload(tctx, TGC_W_Q4_0, 2, 40, buf) == NULL, TGC_ERR_SHAPE, "40 columns", "upload 40");

  tgc_tensor *f = tgc_from_data(tctx, TGC_F32, 2, I64S(2, 32), x);
  tgc_tensor *u = tgc_wupload(tctx, TGC_W_Q8_0, 2, 32, buf);
  cr_assert(f && u, "%s", tgc_last_error());
  expect_error(tgc_wdequant(f, TGC_W_Q8_0, 2, 32) == NULL, TGC_ERR_DTYPE, "stored as u8 [2, 34]",
               "dequant of f32 as q8_0");
  expect_error(tgc_wdequant(u, TGC_W_Q8_0, 1, 32) == NULL, TGC_ERR_SHAPE, "[2,34]", "dequant with wrong rows");
  expect_error(tgc_wlinear(f, u, TGC_W_Q8_0, 2, 64) == NULL, TGC_ERR_SHAPE, "64 columns", "x of 32 for 64");
  tgc_tensor *x6 = tgc_reshape(f, 6, I64S(1, 1, 1, 1, 2, 32));
  expect_error(tgc_wlinear(x6, u, TGC_W_Q8_0, 2, 32) == NULL, TGC_ERR_SHAPE, "too many dimensions", "6-d x");
  tgc_tensor *h = tgc_cast(f, TGC_F16);
  expect_error(tgc_wlinear(h, u, TGC_W_Q8_0, 2, 32) == NULL, TGC_ERR_DTYPE, "f16", "f16 x");
  /* NULL tensors pass through quietly */
  cr_expect_null(tgc_wdequant(NULL, TGC_W_Q8_0, 2, 32));
  cr_expect_null(tgc_wlinear(NULL, u, TGC_W_Q8_0, 2, 32));
  cr_expect_null(tgc_wlinear(f, NULL, TGC_W_Q8_0, 2, 32));
  cr_expect_eq(tgc_last_status(), TGC_OK, "no message for NULL tensors: %s", tgc_last_error());
}
