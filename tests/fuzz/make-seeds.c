/* make-seeds.c - writes the fuzzer's seed corpus (make fuzz).
 *
 * Usage: make-seeds DIR.  Valid GGUF files made with tgc's writer, small
 * (a few KB: libFuzzer's inputs grow from them) and together covering what
 * the reader parses: every value type, empty arrays and strings, string
 * arrays like a tokenizer's, the five tensor types tgc reads and one it
 * does not, 0 to 4 dims, alignments 32 and 64, and version 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../llama/gguf.h"

static const char *dir;
static int failures;

static void check(tgc_status s, const char *what) {
  if (s == TGC_OK) return;
  fprintf(stderr, "make-seeds: %s: %s\n", what, tgc_last_error());
  failures++;
}

static void write_seed(tgc_gguf_writer *w, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  check(tgc_gguf_writer_write(w, path), name);
  tgc_gguf_writer_free(w);
}

static void every_value_type(void) {
  tgc_gguf_writer *w = tgc_gguf_writer_new();
  static const int16_t i16s[] = {-3, 4};
  static const uint64_t u64s[] = {1, 1ull << 63};
  static const double f64s[] = {0.5, -2};
  static const uint8_t bools[] = {1, 0};
  check(tgc_gguf_writer_add_u8(w, "v.u8", 1), "u8");
  check(tgc_gguf_writer_add_i8(w, "v.i8", -1), "i8");
  check(tgc_gguf_writer_add_u16(w, "v.u16", 2), "u16");
  check(tgc_gguf_writer_add_i16(w, "v.i16", -2), "i16");
  check(tgc_gguf_writer_add_u32(w, "v.u32", 3), "u32");
  check(tgc_gguf_writer_add_i32(w, "v.i32", -3), "i32");
  check(tgc_gguf_writer_add_u64(w, "v.u64", 4), "u64");
  check(tgc_gguf_writer_add_i64(w, "v.i64", -4), "i64");
  check(tgc_gguf_writer_add_f32(w, "v.f32", 1.5f), "f32");
  check(tgc_gguf_writer_add_f64(w, "v.f64", -1.5), "f64");
  check(tgc_gguf_writer_add_bool(w, "v.bool", true), "bool");
  check(tgc_gguf_writer_add_str(w, "v.str", "text"), "str");
  check(tgc_gguf_writer_add_str(w, "v.empty", ""), "empty str");
  check(tgc_gguf_writer_add_arr(w, "a.i16", TGC_GGUF_INT16, i16s, 2), "arr i16");
  check(tgc_gguf_writer_add_arr(w, "a.u64", TGC_GGUF_UINT64, u64s, 2), "arr u64");
  check(tgc_gguf_writer_add_arr(w, "a.f64", TGC_GGUF_FLOAT64, f64s, 2), "arr f64");
  check(tgc_gguf_writer_add_arr(w, "a.bool", TGC_GGUF_BOOL, bools, 2), "arr bool");
  check(tgc_gguf_writer_add_arr_i32(w, "a.empty", NULL, 0), "empty arr");
  write_seed(w, "values.gguf");
}

static void tokenizer(void) {
  static const char *const tokens[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81the", "a", "b", "ab"};
  static const float scores[] = {0, 0, 0, -1.5f, -2, -2, -3};
  static const int32_t types[] = {2, 3, 3, 1, 1, 1, 1};
  static const char *const merges[] = {"a b"};
  tgc_gguf_writer *w = tgc_gguf_writer_new();
  check(tgc_gguf_writer_add_str(w, "general.architecture", "llama"), "arch");
  check(tgc_gguf_writer_add_u32(w, "llama.context_length", 2048), "ctx");
  check(tgc_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama"), "model");
  check(tgc_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", tokens, 7), "tokens");
  check(tgc_gguf_writer_add_arr_f32(w, "tokenizer.ggml.scores", scores, 7), "scores");
  check(tgc_gguf_writer_add_arr_i32(w, "tokenizer.ggml.token_type", types, 7), "types");
  check(tgc_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", merges, 1), "merges");
  write_seed(w, "tokenizer.gguf");
}

/* The five types tgc reads, small, with the given alignment. */
static void every_tensor_type(uint32_t alignment, const char *name) {
  static uint8_t bytes[4096];
  for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (uint8_t)(i * 37 + 11);
  for (int b = 0; b < 8; b++) bytes[b * 34] = 0, bytes[b * 34 + 1] = 0x3c; /* f16 1.0 scales */
  tgc_gguf_writer *w = tgc_gguf_writer_new();
  check(tgc_gguf_writer_set_alignment(w, alignment), "alignment");
  check(tgc_gguf_writer_add_str(w, "general.name", name), "name");
  check(tgc_gguf_writer_add_tensor(w, "f32", TGC_GGUF_F32, 2, (const int64_t[]){4, 3}, bytes, 48), "f32");
  check(tgc_gguf_writer_add_tensor(w, "f16", TGC_GGUF_F16, 1, (const int64_t[]){7}, bytes, 14), "f16");
  check(tgc_gguf_writer_add_tensor(w, "bf16", TGC_GGUF_BF16, 3, (const int64_t[]){2, 2, 2}, bytes, 16), "bf16");
  check(tgc_gguf_writer_add_tensor(w, "q8_0", TGC_GGUF_Q8_0, 2, (const int64_t[]){64, 2}, bytes, 136), "q8_0");
  check(tgc_gguf_writer_add_tensor(w, "q4_0", TGC_GGUF_Q4_0, 4, (const int64_t[]){32, 1, 2, 1}, bytes, 36), "q4_0");
  check(tgc_gguf_writer_add_tensor(w, "scalar", TGC_GGUF_F32, 0, NULL, bytes, 4), "scalar");
  write_seed(w, name);
}

static void unsupported_type(void) {
  static uint8_t q4k[144], f32[8];
  tgc_gguf_writer *w = tgc_gguf_writer_new();
  check(tgc_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", 12, 1, (const int64_t[]){256}, q4k, 144), "q4_k");
  check(tgc_gguf_writer_add_tensor(w, "output_norm.weight", TGC_GGUF_F32, 1, (const int64_t[]){2}, f32, 8), "f32");
  write_seed(w, "q4_k.gguf");
}

/* tensors-64.gguf again, with version 2 in its header. */
static void version_2(void) {
  char src[4096], dst[4096];
  snprintf(src, sizeof src, "%s/tensors-64.gguf", dir);
  snprintf(dst, sizeof dst, "%s/tensors-64-v2.gguf", dir);
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  if (!in || !out) {
    fprintf(stderr, "make-seeds: cannot copy %s to %s\n", src, dst);
    failures++;
  } else {
    int c;
    for (long pos = 0; (c = getc(in)) != EOF; pos++) putc(pos == 4 ? 2 : c, out);
  }
  if (in) fclose(in);
  if (out && fclose(out)) failures++;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make-seeds DIR\n");
    return 2;
  }
  dir = argv[1];
  write_seed(tgc_gguf_writer_new(), "empty.gguf");
  every_value_type();
  tokenizer();
  every_tensor_type(32, "tensors-32.gguf");
  every_tensor_type(64, "tensors-64.gguf");
  unsupported_type();
  version_2();
  return failures ? 1 : 0;
}
