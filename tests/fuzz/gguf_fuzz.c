/* gguf_fuzz.c - libFuzzer target for the GGUF reader (make fuzz).
 *
 * Each input is opened as a file in memory (tgc_gguf_open_memory, the same
 * parser tgc_gguf_open runs on the mapped file), then every key and tensor
 * is walked through the public accessors, as a model loader would.  Built
 * with ASan and UBSan, so any read outside the input, overflow or leak is a
 * crash.  Beyond memory safety it checks what the reader promises: a failed
 * open leaves a message, lookups by name find the entry they came from, and
 * tensor data lies inside the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../llama/gguf.h"

#define CHECK(c) \
  do {           \
    if (!(c)) __builtin_trap(); \
  } while (0)

static volatile uint64_t sink; /* keeps the reads from being optimized away */

static void walk_kv(const tgc_gguf *g, const tgc_gguf_kv *kv) {
  CHECK(tgc_gguf_find(g, kv->key) == kv);
  uint32_t u32;
  int32_t i32;
  uint64_t u64;
  int64_t i64;
  float f;
  bool b;
  const char *s;
  size_t len, n;
  const void *arr;
  const tgc_gguf_str *strs;
  tgc_gguf_vtype et;
  /* every getter on every key: the right one succeeds, the others fail cleanly */
  (void)tgc_gguf_get_u32(g, kv->key, &u32);
  (void)tgc_gguf_get_i32(g, kv->key, &i32);
  (void)tgc_gguf_get_u64(g, kv->key, &u64);
  (void)tgc_gguf_get_i64(g, kv->key, &i64);
  (void)tgc_gguf_get_f32(g, kv->key, &f);
  (void)tgc_gguf_get_bool(g, kv->key, &b);
  if (tgc_gguf_get_str(g, kv->key, &s, &len) == TGC_OK) CHECK(s[len] == '\0');
  if (tgc_gguf_get_arr_str(g, kv->key, &strs, &n) == TGC_OK)
    for (size_t i = 0; i < n; i++) sink += (uint8_t)strs[i].s[strs[i].len] + strs[i].len;
  if (tgc_gguf_get_arr(g, kv->key, &et, &arr, &n) == TGC_OK && n) {
    static const uint8_t sizes[TGC_GGUF_NUM_VTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    CHECK(sizes[et] != 0);
    sink += ((const uint8_t *)arr)[0] + ((const uint8_t *)arr)[n * sizes[et] - 1];
  }
}

static void walk_tensor(const tgc_gguf *g, const tgc_gguf_tensor *t, const uint8_t *data, size_t size) {
  CHECK(tgc_gguf_find_tensor(g, t->name) == t);
  CHECK(t->ndim >= 0 && t->ndim <= TGC_GGUF_MAX_DIMS && t->n_elems >= 1);
  const uint8_t *p = tgc_gguf_tensor_data(t);
  if (!p) {
    CHECK(tgc_gguf_check_tensor(t) == TGC_ERR_UNSUPPORTED && tgc_last_error()[0]);
    return;
  }
  CHECK(p >= data && t->nbytes <= size && p - data <= (ptrdiff_t)(size - t->nbytes));
  if (t->n_elems > 1 << 16) return; /* converting large tensors adds time, not coverage */
  float *out = malloc((size_t)t->n_elems * sizeof *out);
  CHECK(out && tgc_gguf_to_f32(t->type, p, t->nbytes, out, t->n_elems) == TGC_OK);
  uint32_t bits;
  memcpy(&bits, &out[t->n_elems - 1], 4); /* a float may be NaN or huge: read its bits */
  sink += bits;
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tgc_clear_error();
  tgc_gguf *g = tgc_gguf_open_memory(data, size);
  if (!g) {
    CHECK(tgc_last_status() != TGC_OK && strncmp(tgc_last_error(), "gguf: ", 6) == 0);
    return 0;
  }
  CHECK(tgc_gguf_version(g) == 2 || tgc_gguf_version(g) == 3);
  uint32_t a = tgc_gguf_alignment(g);
  CHECK(a && !(a & (a - 1)));
  for (size_t i = 0; i < tgc_gguf_n_kv(g); i++) walk_kv(g, tgc_gguf_kv_at(g, i));
  for (size_t i = 0; i < tgc_gguf_n_tensors(g); i++) walk_tensor(g, tgc_gguf_tensor_at(g, i), data, size);
  CHECK(!tgc_gguf_kv_at(g, tgc_gguf_n_kv(g)) && !tgc_gguf_tensor_at(g, tgc_gguf_n_tensors(g)));
  tgc_gguf_free(g);
  return 0;
}
