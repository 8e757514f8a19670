/* gguf.c - the GGUF reader (llama/gguf.h; the writer is gguf_write.c).
 *
 * The reader parses a byte range, whether mapped from a file (tgc_gguf_open)
 * or handed over (tgc_gguf_open_memory, which the fuzzer uses), and checks
 * everything at open: each count is held against the bytes left before
 * anything is allocated for it, each size is computed with overflow checks,
 * and each tensor's data must lie inside the file.  A cursor carries what is
 * being read (KV 3 "general.name") so every message says where the file is
 * wrong.  Metadata is decoded once into the handle's arena -- strings
 * NUL-terminated, arrays copied to aligned memory -- because the file packs
 * values at any byte offset and callers want plain C arrays; tensor data, the
 * bulk of the file, stays in the mapping.  Names are found through hash
 * tables, which also catch duplicates, so even a hostile file with millions
 * of entries opens in linear time.
 *
 * Files are little-endian, and so must the host be: values are read with
 * memcpy.
 */
#include "tgc_internal.h"

#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "gguf.c reads little-endian values with memcpy");

#define SUPPORTED_TYPES "F32 F16 BF16 Q8_0 Q4_0"
#define NAME_MAX_SHOWN 200 /* bytes of a key or tensor name quoted in a message */

/* ---- value and tensor types -------------------------------------------- */

static const char *const vtype_names[TGC_GGUF_NUM_VTYPES] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"};
/* Bytes of a scalar in the file; 0 for the variable-length STRING and ARRAY. */
const uint8_t tgc_gguf_vtype_sizes[TGC_GGUF_NUM_VTYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static bool is_uint(uint32_t t) {
  return t == TGC_GGUF_UINT8 || t == TGC_GGUF_UINT16 || t == TGC_GGUF_UINT32 || t == TGC_GGUF_UINT64;
}
static bool is_sint(uint32_t t) {
  return t == TGC_GGUF_INT8 || t == TGC_GGUF_INT16 || t == TGC_GGUF_INT32 || t == TGC_GGUF_INT64;
}
static bool is_float(uint32_t t) { return t == TGC_GGUF_FLOAT32 || t == TGC_GGUF_FLOAT64; }

const char *tgc_gguf_vtype_name(uint32_t vtype) {
  return vtype < TGC_GGUF_NUM_VTYPES ? vtype_names[vtype] : "unknown";
}

typedef void (*to_f32_fn)(const uint8_t *src, float *dst, int64_t n_blocks);
static void f32_to_f32(const uint8_t *src, float *dst, int64_t n);
static void f16_to_f32(const uint8_t *src, float *dst, int64_t n);
static void bf16_to_f32(const uint8_t *src, float *dst, int64_t n);
static void q8_0_to_f32(const uint8_t *src, float *dst, int64_t n);
static void q4_0_to_f32(const uint8_t *src, float *dst, int64_t n);

/* ggml's tensor types by id: name, block layout (0 where ggml dropped the
 * type or never fixed a layout in files) and, for the types tgc reads, the
 * conversion to f32.  Layouts of the others let the reader bound-check their
 * data all the same. */
static const struct ggml_type {
  const char *name;
  uint16_t blck, bytes; /* elements and bytes per block */
  to_f32_fn to_f32;     /* NULL: tgc does not read the type */
} ggml_types[] = {
    [0] = {"F32", 1, 4, f32_to_f32},         [1] = {"F16", 1, 2, f16_to_f32},
    [2] = {"Q4_0", 32, 18, q4_0_to_f32},     [3] = {"Q4_1", 32, 20, NULL},
    [4] = {"Q4_2", 0, 0, NULL},              [5] = {"Q4_3", 0, 0, NULL},
    [6] = {"Q5_0", 32, 22, NULL},            [7] = {"Q5_1", 32, 24, NULL},
    [8] = {"Q8_0", 32, 34, q8_0_to_f32},     [9] = {"Q8_1", 32, 36, NULL},
    [10] = {"Q2_K", 256, 84, NULL},          [11] = {"Q3_K", 256, 110, NULL},
    [12] = {"Q4_K", 256, 144, NULL},         [13] = {"Q5_K", 256, 176, NULL},
    [14] = {"Q6_K", 256, 210, NULL},         [15] = {"Q8_K", 256, 292, NULL},
    [16] = {"IQ2_XXS", 256, 66, NULL},       [17] = {"IQ2_XS", 256, 74, NULL},
    [18] = {"IQ3_XXS", 256, 98, NULL},       [19] = {"IQ1_S", 256, 50, NULL},
    [20] = {"IQ4_NL", 32, 18, NULL},         [21] = {"IQ3_S", 256, 110, NULL},
    [22] = {"IQ2_S", 256, 82, NULL},         [23] = {"IQ4_XS", 256, 136, NULL},
    [24] = {"I8", 1, 1, NULL},               [25] = {"I16", 1, 2, NULL},
    [26] = {"I32", 1, 4, NULL},              [27] = {"I64", 1, 8, NULL},
    [28] = {"F64", 1, 8, NULL},              [29] = {"IQ1_M", 256, 56, NULL},
    [30] = {"BF16", 1, 2, bf16_to_f32},      [31] = {"Q4_0_4_4", 0, 0, NULL},
    [32] = {"Q4_0_4_8", 0, 0, NULL},         [33] = {"Q4_0_8_8", 0, 0, NULL},
    [34] = {"TQ1_0", 256, 54, NULL},         [35] = {"TQ2_0", 256, 66, NULL},
    [36] = {"IQ4_NL_4_4", 0, 0, NULL},       [37] = {"IQ4_NL_4_8", 0, 0, NULL},
    [38] = {"IQ4_NL_8_8", 0, 0, NULL},       [39] = {"MXFP4", 32, 17, NULL},
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

/* The entry for a type id, or NULL for ids ggml never had. */
static const struct ggml_type *type_info(uint32_t type) {
  return type < N_GGML_TYPES && ggml_types[type].name ? &ggml_types[type] : NULL;
}

const char *tgc_gguf_type_name(uint32_t type) {
  const struct ggml_type *ti = type_info(type);
  return ti ? ti->name : "unknown";
}

bool tgc_gguf_type_layout(uint32_t type, uint32_t *block_elems, uint32_t *block_bytes) {
  const struct ggml_type *ti = type_info(type);
  if (!ti || !ti->blck) return false;
  if (block_elems) *block_elems = ti->blck;
  if (block_bytes) *block_bytes = ti->bytes;
  return true;
}

/* "[4096, 32000]": dims as a message shows them. */
const char *tgc_gguf_fmt_dims(char *buf, size_t cap, int ndim, const int64_t *dims) {
  size_t len = (size_t)snprintf(buf, cap, "[");
  for (int d = 0; d < ndim && len < cap; d++)
    len += (size_t)snprintf(buf + len, cap - len, "%s%" PRId64, d ? ", " : "", dims[d]);
  if (len < cap) snprintf(buf + len, cap - len, "]");
  return buf;
}

/* Element count and byte size of a tensor (nbytes 0 when the type's layout
 * is unknown).  False with the reason in why when the row is not a whole
 * number of blocks or a count overflows. */
bool tgc_gguf_tensor_extent(uint32_t type, int ndim, const int64_t *dims, int64_t *n_elems, uint64_t *nbytes,
                            char *why, size_t why_cap) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (__builtin_mul_overflow(n, dims[d], &n)) {
      snprintf(why, why_cap, "the element count overflows 64 bits");
      return false;
    }
  }
  *n_elems = n;
  *nbytes = 0;
  const struct ggml_type *ti = type_info(type);
  if (!ti || !ti->blck) return true;
  int64_t row = ndim > 0 ? dims[0] : 1;
  if (row % ti->blck) {
    snprintf(why, why_cap, "a row (dims[0] = %" PRId64 ") is not a whole number of %s blocks of %u elements", row,
             ti->name, ti->blck);
    return false;
  }
  if (__builtin_mul_overflow((uint64_t)(n / ti->blck), (uint64_t)ti->bytes, nbytes)) {
    snprintf(why, why_cap, "the byte size overflows 64 bits");
    return false;
  }
  return true;
}

/* ---- conversion to f32 --------------------------------------------------- */


static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static void f32_to_f32(const uint8_t *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }

static void f16_to_f32(const uint8_t *src, float *dst, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = tgc_f16_to_f32(rd16(src + 2 * i));
}

static void bf16_to_f32(const uint8_t *src, float *dst, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = tgc_bf16_to_f32(rd16(src + 2 * i));
}

/* Q8_0 block (34 bytes): f16 scale d, then 32 int8 q; x = q * d. */
static void q8_0_to_f32(const uint8_t *src, float *dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; b++, src += 34, dst += 32) {
    float d = tgc_f16_to_f32(rd16(src));
    for (int j = 0; j < 32; j++) dst[j] = (float)(int8_t)src[2 + j] * d;
  }
}

/* Q4_0 block (18 bytes): f16 scale d, then 16 bytes; element j < 16 is the
 * low nibble of byte j, element j + 16 its high nibble; x = (q - 8) * d. */
static void q4_0_to_f32(const uint8_t *src, float *dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; b++, src += 18, dst += 32) {
    float d = tgc_f16_to_f32(rd16(src));
    for (int j = 0; j < 16; j++) {
      dst[j] = (float)((src[2 + j] & 0xf) - 8) * d;
      dst[j + 16] = (float)((src[2 + j] >> 4) - 8) * d;
    }
  }
}

tgc_status tgc_gguf_to_f32(uint32_t type, const void *src, size_t src_bytes, float *dst, int64_t n) {
  const struct ggml_type *ti = type_info(type);
  if (!ti || !ti->to_f32)
    return tgc_set_error(TGC_ERR_UNSUPPORTED, "tgc_gguf_to_f32: type %u (%s) is not one tgc reads; supported: %s",
                         type, tgc_gguf_type_name(type), SUPPORTED_TYPES);
  if (!src || !dst || n < 0 || n % ti->blck)
    return tgc_set_error(TGC_ERR_ARG, "tgc_gguf_to_f32: %s%s%" PRId64 " elements of %s (blocks of %u)",
                         !src ? "NULL src; " : "", !dst ? "NULL dst; " : "", n, ti->name, ti->blck);
  uint64_t need;
  if (__builtin_mul_overflow((uint64_t)(n / ti->blck), (uint64_t)ti->bytes, &need) || need > src_bytes)
    return tgc_set_error(TGC_ERR_ARG, "tgc_gguf_to_f32: %" PRId64 " elements of %s need %" PRIu64
                         " bytes, src has %zu", n, ti->name, need, src_bytes);
  ti->to_f32(src, dst, n / ti->blck);
  return TGC_OK;
}

/* ---- growing storage in an arena --------------------------------------------- */

/* Arrays and tables grow as entries are parsed, never from the counts a file
 * claims, so a corrupt count cannot make the reader allocate more than a
 * small multiple of the bytes it actually read.  They double in the arena,
 * leaving the old copies behind: at most as much again. */

/* p with room for element n (of elem bytes), doubling *cap when full. */
static void *arena_grow(tgc_arena *a, void *p, size_t n, size_t *cap, size_t elem) {
  if (n < *cap) return p;
  size_t new_cap = *cap ? 2 * *cap : 16;
  void *q = tgc_arena_alloc(a, new_cap * elem);
  if (n) memcpy(q, p, n * elem);
  *cap = new_cap;
  return q;
}

/* Open addressing over names (keys or tensor names); items are indices into
 * the handle's kvs or tensors.  At most half full. */
typedef struct name_index {
  size_t cap, count;  /* cap a power of two, or 0 */
  const char **names; /* NULL: empty slot */
  size_t *items;
} name_index;

static size_t index_slot(const name_index *ix, const char *name) {
  size_t mask = ix->cap - 1, i = (size_t)tgc_hash64(name, strlen(name), 0) & mask;
  while (ix->names[i] && strcmp(ix->names[i], name)) i = (i + 1) & mask;
  return i;
}

static void index_grow(tgc_arena *a, name_index *ix) {
  name_index old = *ix;
  ix->cap = old.cap ? 2 * old.cap : 16;
  ix->names = tgc_arena_alloc(a, ix->cap * sizeof *ix->names);
  ix->items = tgc_arena_alloc(a, ix->cap * sizeof *ix->items);
  for (size_t i = 0; i < old.cap; i++) {
    if (!old.names[i]) continue;
    size_t j = index_slot(ix, old.names[i]);
    ix->names[j] = old.names[i];
    ix->items[j] = old.items[i];
  }
}

/* Adds name for item; SIZE_MAX, or the item that has the name already. */
static size_t index_add(tgc_arena *a, name_index *ix, const char *name, size_t item) {
  if (2 * (ix->count + 1) > ix->cap) index_grow(a, ix);
  size_t i = index_slot(ix, name);
  if (ix->names[i]) return ix->items[i];
  ix->names[i] = name;
  ix->items[i] = item;
  ix->count++;
  return SIZE_MAX;
}

static size_t index_find(const name_index *ix, const char *name) {
  if (!ix->cap) return SIZE_MAX;
  size_t i = index_slot(ix, name);
  return ix->names[i] ? ix->items[i] : SIZE_MAX;
}

/* ---- reader: the handle and the cursor --------------------------------------- */

struct tgc_gguf {
  const uint8_t *base; /* the file's bytes */
  size_t size;
  void *map; /* from mmap, or NULL for tgc_gguf_open_memory */
  const char *src; /* the path, or "<memory>", for messages */
  uint32_t version, alignment;
  uint64_t data_off; /* start of the data section */
  size_t n_kv, n_tensors;
  tgc_gguf_kv *kvs;
  tgc_gguf_tensor *tensors;
  name_index kv_index, tensor_index;
  tgc_arena *arena; /* everything above but the mapping */
};

/* Where the parse is: the position, and the item being read for messages
 * ("KV 3 \"general.name\", element 7"). */
typedef struct cursor {
  const uint8_t *p;
  size_t size, pos; /* pos <= size always */
  const char *src;
  const char *item; /* "KV", "tensor info", or NULL for the header */
  size_t index;
  const char *name; /* the item's key or tensor name once read, or NULL */
  size_t elem;      /* array element being read, or SIZE_MAX */
} cursor;

/* Sets "gguf: <src>: <item>: <detail>" and returns false. */
static bool __attribute__((format(printf, 3, 4))) bad(const cursor *c, tgc_status s, const char *fmt, ...) {
  char detail[1024], where[400] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  if (c->item) { /* at most about 300 bytes: the name is cut at NAME_MAX_SHOWN */
    int n = snprintf(where, sizeof where, "%s %zu", c->item, c->index);
    if (c->name) n += snprintf(where + n, sizeof where - (size_t)n, " \"%.*s\"", NAME_MAX_SHOWN, c->name);
    if (c->elem != SIZE_MAX) n += snprintf(where + n, sizeof where - (size_t)n, ", element %zu", c->elem);
    snprintf(where + n, sizeof where - (size_t)n, ": ");
  }
  tgc_set_error(s, "gguf: %s: %s%s", c->src, where, detail);
  return false;
}

static void enter(cursor *c, const char *item, size_t index) {
  c->item = item;
  c->index = index;
  c->name = NULL;
  c->elem = SIZE_MAX;
}

static size_t left(const cursor *c) { return c->size - c->pos; }

/* Copies n bytes to out and moves past them. */
static bool rd(cursor *c, void *out, size_t n, const char *what) {
  if (n > left(c))
    return bad(c, TGC_ERR_IO, "truncated file: reading %s at offset %zu needs %zu bytes, but the file ends at %zu",
               what, c->pos, n, c->size);
  memcpy(out, c->p + c->pos, n);
  c->pos += n;
  return true;
}

static bool rd_u32(cursor *c, uint32_t *v, const char *what) { return rd(c, v, 4, what); }
static bool rd_u64(cursor *c, uint64_t *v, const char *what) { return rd(c, v, 8, what); }

/* A string (u64 length + bytes) copied into the arena with a NUL after it. */
static bool rd_str(cursor *c, tgc_arena *a, const char *what, tgc_gguf_str *out) {
  size_t at = c->pos;
  uint64_t len = 0;
  if (!rd_u64(c, &len, what)) return false;
  if (len > left(c))
    return bad(c, TGC_ERR_IO, "%s at offset %zu claims %" PRIu64 " bytes, past the end of the file (%zu bytes left)",
               what, at, len, left(c));
  char *s = tgc_arena_alloc(a, (size_t)len + 1);
  memcpy(s, c->p + c->pos, (size_t)len);
  c->pos += (size_t)len;
  *out = (tgc_gguf_str){s, (size_t)len};
  return true;
}

/* A key or tensor name: a string without NUL bytes, so C code can use it. */
static bool rd_name(cursor *c, tgc_arena *a, const char *what, const char **out) {
  size_t at = c->pos;
  tgc_gguf_str s;
  if (!rd_str(c, a, what, &s)) return false;
  if (memchr(s.s, '\0', s.len))
    return bad(c, TGC_ERR_IO, "%s at offset %zu holds a NUL byte", what, at);
  *out = s.s;
  return true;
}

/* ---- reader: header and metadata ------------------------------------------ */

static bool check_version(cursor *c, uint32_t v) {
  if (v == 2 || v == 3) return true;
  if (v == 1)
    return bad(c, TGC_ERR_UNSUPPORTED, "GGUF version 1 is not supported (tgc reads versions 2 and 3); "
               "convert the model again with a current llama.cpp");
  if (v && (v & 0xffff) == 0)
    return bad(c, TGC_ERR_UNSUPPORTED, "version field 0x%08x looks byte-swapped (version %u): big-endian GGUF "
               "files are not supported", v, __builtin_bswap32(v));
  return bad(c, TGC_ERR_UNSUPPORTED, "unsupported GGUF version %u (tgc reads versions 2 and 3)", v);
}

static bool read_header(cursor *c, tgc_gguf *g, uint64_t *n_tensors, uint64_t *n_kv) {
  uint8_t m[4] = {0};
  if (!rd(c, m, 4, "the magic")) return false;
  if (memcmp(m, "GGUF", 4)) {
    char shown[4];
    for (int i = 0; i < 4; i++) shown[i] = m[i] >= 0x20 && m[i] < 0x7f ? (char)m[i] : '.';
    return bad(c, TGC_ERR_IO, "bad magic %02x %02x %02x %02x (\"%.4s\"), expected \"GGUF\": not a GGUF file",
               m[0], m[1], m[2], m[3], shown);
  }
  return rd_u32(c, &g->version, "the version") && check_version(c, g->version) &&
         rd_u64(c, n_tensors, "the tensor count") && rd_u64(c, n_kv, "the KV count");
}

/* Every KV takes at least 13 bytes (key length, value type, a one-byte value)
 * and every tensor info 24 (name length, n_dims, type, offset): counts that
 * need more than the file has are rejected at once, with a message that
 * says so, rather than as a truncation somewhere later. */
static bool check_counts(cursor *c, uint64_t n_tensors, uint64_t n_kv) {
  if (n_kv > left(c) / 13)
    return bad(c, TGC_ERR_IO, "KV count %" PRIu64 " cannot be: each KV takes at least 13 bytes, and the file has "
               "%zu after the header", n_kv, left(c));
  if (n_tensors > left(c) / 24)
    return bad(c, TGC_ERR_IO, "tensor count %" PRIu64 " cannot be: each tensor info takes at least 24 bytes, and "
               "the file has %zu after the header", n_tensors, left(c));
  return true;
}

/* A scalar of type t from its little-endian bytes. */
static void decode_scalar(uint32_t t, const uint8_t *b, tgc_gguf_kv *kv) {
  uint64_t u = 0;
  memcpy(&u, b, tgc_gguf_vtype_sizes[t]);
  if (is_uint(t)) kv->v.u = u;
  else if (t == TGC_GGUF_INT8) kv->v.i = (int8_t)u;
  else if (t == TGC_GGUF_INT16) kv->v.i = (int16_t)u;
  else if (t == TGC_GGUF_INT32) kv->v.i = (int32_t)u;
  else if (t == TGC_GGUF_INT64) memcpy(&kv->v.i, &u, 8);
  else if (t == TGC_GGUF_BOOL) kv->v.u = u != 0;
  else if (t == TGC_GGUF_FLOAT32) {
    float f;
    memcpy(&f, b, 4);
    kv->v.f = f;
  } else {
    memcpy(&kv->v.f, b, 8);
  }
}

static bool read_str_array(cursor *c, tgc_gguf *g, tgc_gguf_kv *kv, uint64_t n) {
  if (n > left(c) / 8)
    return bad(c, TGC_ERR_IO, "an array of %" PRIu64 " strings cannot be: each takes at least 8 bytes, and %zu "
               "are left", n, left(c));
  tgc_gguf_str *s = NULL;
  size_t cap = 0;
  for (c->elem = 0; c->elem < n; c->elem++) {
    s = arena_grow(g->arena, s, c->elem, &cap, sizeof *s);
    if (!rd_str(c, g->arena, "a string", &s[c->elem])) return false;
  }
  c->elem = SIZE_MAX;
  kv->n = (size_t)n;
  kv->v.arr = s ? s : tgc_arena_alloc(g->arena, 0); /* not NULL when empty, like the other arrays */
  return true;
}

static bool read_array(cursor *c, tgc_gguf *g, tgc_gguf_kv *kv) {
  uint32_t et = 0;
  uint64_t n = 0, bytes = 0;
  if (!rd_u32(c, &et, "the array's element type") || !rd_u64(c, &n, "the array's length")) return false;
  if (et == TGC_GGUF_ARRAY)
    return bad(c, TGC_ERR_UNSUPPORTED, "nested arrays (arrays of arrays) are not supported");
  if (et >= TGC_GGUF_NUM_VTYPES)
    return bad(c, TGC_ERR_IO, "array element type %u is not a GGUF value type (0..12)", et);
  kv->elem_type = (tgc_gguf_vtype)et;
  if (et == TGC_GGUF_STRING) return read_str_array(c, g, kv, n);
  if (__builtin_mul_overflow(n, (uint64_t)tgc_gguf_vtype_sizes[et], &bytes) || bytes > left(c))
    return bad(c, TGC_ERR_IO, "an array of %" PRIu64 " %s elements at offset %zu runs past the end of the file "
               "(%zu bytes left)", n, vtype_names[et], c->pos, left(c));
  kv->n = (size_t)n;
  kv->v.arr = tgc_arena_dup(g->arena, c->p + c->pos, (size_t)bytes);
  c->pos += (size_t)bytes;
  return true;
}

static bool read_value(cursor *c, tgc_gguf *g, tgc_gguf_kv *kv) {
  uint32_t t = 0;
  if (!rd_u32(c, &t, "the value type")) return false;
  if (t >= TGC_GGUF_NUM_VTYPES) return bad(c, TGC_ERR_IO, "value type %u is not a GGUF value type (0..12)", t);
  kv->type = kv->elem_type = (tgc_gguf_vtype)t;
  kv->n = 1;
  if (t == TGC_GGUF_STRING) return rd_str(c, g->arena, "the string value", &kv->v.s);
  if (t == TGC_GGUF_ARRAY) return read_array(c, g, kv);
  uint8_t b[8] = {0};
  if (!rd(c, b, tgc_gguf_vtype_sizes[t], "the value")) return false;
  decode_scalar(t, b, kv);
  return true;
}

static bool read_kvs(cursor *c, tgc_gguf *g, uint64_t n) {
  size_t cap = 0;
  for (size_t i = 0; i < n; i++) {
    g->kvs = arena_grow(g->arena, g->kvs, i, &cap, sizeof *g->kvs);
    tgc_gguf_kv *kv = &g->kvs[i];
    enter(c, "KV", i);
    if (!rd_name(c, g->arena, "the key", &kv->key)) return false;
    c->name = kv->key;
    size_t first = index_add(g->arena, &g->kv_index, kv->key, i);
    if (first != SIZE_MAX) return bad(c, TGC_ERR_IO, "duplicate key: KV %zu has the same key", first);
    if (!read_value(c, g, kv)) return false;
    g->n_kv = i + 1;
  }
  enter(c, NULL, 0);
  return true;
}

/* An integer kv's value if it lies in [lo, hi], as two's complement bits. */
static bool int_value(const tgc_gguf_kv *kv, int64_t lo, uint64_t hi, uint64_t *bits) {
  if (is_uint(kv->type)) {
    if (kv->v.u > hi || (lo > 0 && kv->v.u < (uint64_t)lo)) return false;
    *bits = kv->v.u;
    return true;
  }
  if (!is_sint(kv->type) || kv->v.i < lo || (kv->v.i > 0 && (uint64_t)kv->v.i > hi)) return false;
  memcpy(bits, &kv->v.i, 8);
  return true;
}

/* general.alignment: a power of two, 32 when absent. */
static bool read_alignment(cursor *c, tgc_gguf *g) {
  g->alignment = TGC_GGUF_DEFAULT_ALIGNMENT;
  const tgc_gguf_kv *kv = tgc_gguf_find(g, "general.alignment");
  if (!kv) return true;
  uint64_t a = 0;
  if (!is_uint(kv->type) && !is_sint(kv->type))
    return bad(c, TGC_ERR_IO, "general.alignment has type %s; it must be UINT32", vtype_names[kv->type]);
  if (!int_value(kv, 1, UINT32_MAX, &a) || (a & (a - 1))) {
    char v[32];
    if (is_sint(kv->type)) snprintf(v, sizeof v, "%" PRId64, kv->v.i);
    else snprintf(v, sizeof v, "%" PRIu64, kv->v.u);
    return bad(c, TGC_ERR_IO, "general.alignment is %s; it must be a power of two (1 to 2^31)", v);
  }
  g->alignment = (uint32_t)a;
  return true;
}

/* ---- reader: tensor infos and data ------------------------------------------ */

static bool read_tensor_info(cursor *c, tgc_gguf *g, tgc_gguf_tensor *t) {
  uint32_t nd = 0;
  if (!rd_name(c, g->arena, "the tensor name", &t->name)) return false;
  c->name = t->name;
  if (!rd_u32(c, &nd, "n_dims")) return false;
  if (nd > TGC_GGUF_MAX_DIMS) return bad(c, TGC_ERR_IO, "n_dims is %u; GGUF allows at most 4", nd);
  t->ndim = (int)nd;
  for (int d = 0; d < TGC_GGUF_MAX_DIMS; d++) t->dims[d] = 1;
  for (int d = 0; d < t->ndim; d++) {
    uint64_t v = 0;
    if (!rd_u64(c, &v, "a dimension")) return false;
    if (v == 0 || v > INT64_MAX)
      return bad(c, TGC_ERR_IO, "dims[%d] is %" PRIu64 "; it must be between 1 and 2^63-1", d, v);
    t->dims[d] = (int64_t)v;
  }
  if (!rd_u32(c, &t->type, "the tensor type") || !rd_u64(c, &t->offset, "the data offset")) return false;
  char why[200], dims[160];
  if (!tgc_gguf_tensor_extent(t->type, t->ndim, t->dims, &t->n_elems, &t->nbytes, why, sizeof why))
    return bad(c, TGC_ERR_IO, "dims %s of type %u (%s): %s", tgc_gguf_fmt_dims(dims, sizeof dims, t->ndim, t->dims),
               t->type, tgc_gguf_type_name(t->type), why);
  return true;
}

static bool read_tensor_infos(cursor *c, tgc_gguf *g, uint64_t n) {
  size_t cap = 0;
  for (size_t i = 0; i < n; i++) {
    g->tensors = arena_grow(g->arena, g->tensors, i, &cap, sizeof *g->tensors);
    enter(c, "tensor info", i);
    if (!read_tensor_info(c, g, &g->tensors[i])) return false;
    size_t first = index_add(g->arena, &g->tensor_index, g->tensors[i].name, i);
    if (first != SIZE_MAX) return bad(c, TGC_ERR_IO, "duplicate tensor name: tensor info %zu has the same name", first);
    g->n_tensors = i + 1;
  }
  enter(c, NULL, 0);
  return true;
}

/* The data section starts at the first multiple of the alignment after the
 * tensor infos; each tensor's offset is aligned and its data inside the file.
 * Tensors of unknown layout have no known size: only their start is checked. */
static bool place_data(cursor *c, tgc_gguf *g) {
  uint64_t a = g->alignment, start;
  if (__builtin_add_overflow((uint64_t)c->pos, a - 1, &start)) return bad(c, TGC_ERR_IO, "file too large");
  g->data_off = start & ~(a - 1);
  for (size_t i = 0; i < g->n_tensors; i++) {
    tgc_gguf_tensor *t = &g->tensors[i];
    uint64_t at, end;
    enter(c, "tensor info", i);
    c->name = t->name;
    if (t->offset % a)
      return bad(c, TGC_ERR_IO, "data offset %" PRIu64 " is not a multiple of the alignment %" PRIu64, t->offset, a);
    if (__builtin_add_overflow(g->data_off, t->offset, &at) || __builtin_add_overflow(at, t->nbytes, &end) ||
        end > g->size)
      return bad(c, TGC_ERR_IO, "data of %" PRIu64 " bytes at offset %" PRIu64 " in the data section (which starts "
                 "at %" PRIu64 ") lies outside the file (%zu bytes)", t->nbytes, t->offset, g->data_off, g->size);
    t->data_ = g->base + at;
  }
  return true;
}

/* ---- reader: open and free ---------------------------------------------------- */

void tgc_gguf_free(tgc_gguf *g) {
  if (!g) return;
  if (g->map) munmap(g->map, g->size);
  tgc_arena_free(g->arena);
  free(g);
}

/* Parses size bytes at base; the pipeline, one stage per line. */
static tgc_gguf *parse(const void *base, size_t size, const char *src) {
  tgc_gguf *g = tgc_xcalloc(1, sizeof *g);
  g->arena = tgc_arena_new();
  g->base = base;
  g->size = size;
  g->src = tgc_arena_dup(g->arena, src, strlen(src) + 1);
  cursor c = {.p = base, .size = size, .src = g->src, .elem = SIZE_MAX};
  uint64_t n_tensors = 0, n_kv = 0;
  bool ok = read_header(&c, g, &n_tensors, &n_kv) &&
            check_counts(&c, n_tensors, n_kv) &&
            read_kvs(&c, g, n_kv) &&
            read_alignment(&c, g) &&
            read_tensor_infos(&c, g, n_tensors) &&
            place_data(&c, g);
  if (ok) return g;
  tgc_gguf_free(g);
  return NULL;
}

tgc_gguf *tgc_gguf_open_memory(const void *data, size_t size) {
  if (!data && size) return tgc_fail(TGC_ERR_ARG, "tgc_gguf_open_memory: NULL data of %zu bytes", size);
  return parse(data ? data : "", size, "<memory>");
}

tgc_gguf *tgc_gguf_open(const char *path) {
  if (!path) return tgc_fail(TGC_ERR_ARG, "tgc_gguf_open: NULL path");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tgc_fail(TGC_ERR_IO, "gguf: cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int err = errno;
    close(fd);
    return tgc_fail(TGC_ERR_IO, "gguf: cannot read %s: %s", path, strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return tgc_fail(TGC_ERR_IO, "gguf: cannot read %s: not a regular file", path);
  }
  size_t size = (size_t)st.st_size;
  void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  int err = errno;
  close(fd);
  if (map == MAP_FAILED)
    return tgc_fail(TGC_ERR_IO, "gguf: cannot map %s (%zu bytes): %s", path, size, strerror(err));
  tgc_gguf *g = parse(map ? map : "", size, path);
  if (!g) {
    if (map) munmap(map, size);
    return NULL;
  }
  g->map = map;
  return g;
}

/* ---- reader: accessors --------------------------------------------------------- */

uint32_t tgc_gguf_version(const tgc_gguf *g) { return g ? g->version : 0; }
uint32_t tgc_gguf_alignment(const tgc_gguf *g) { return g ? g->alignment : 0; }
size_t tgc_gguf_n_kv(const tgc_gguf *g) { return g ? g->n_kv : 0; }
size_t tgc_gguf_n_tensors(const tgc_gguf *g) { return g ? g->n_tensors : 0; }

const tgc_gguf_kv *tgc_gguf_kv_at(const tgc_gguf *g, size_t i) {
  return g && i < g->n_kv ? &g->kvs[i] : NULL;
}

const tgc_gguf_kv *tgc_gguf_find(const tgc_gguf *g, const char *key) {
  size_t i = g && key ? index_find(&g->kv_index, key) : SIZE_MAX;
  return i == SIZE_MAX ? NULL : &g->kvs[i];
}

const tgc_gguf_tensor *tgc_gguf_tensor_at(const tgc_gguf *g, size_t i) {
  return g && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const tgc_gguf_tensor *tgc_gguf_find_tensor(const tgc_gguf *g, const char *name) {
  size_t i = g && name ? index_find(&g->tensor_index, name) : SIZE_MAX;
  return i == SIZE_MAX ? NULL : &g->tensors[i];
}

tgc_status tgc_gguf_check_tensor(const tgc_gguf_tensor *t) {
  if (!t) return tgc_set_error(TGC_ERR_ARG, "tgc_gguf_check_tensor: NULL tensor");
  const struct ggml_type *ti = type_info(t->type);
  if (ti && ti->to_f32) return TGC_OK;
  return tgc_set_error(TGC_ERR_UNSUPPORTED, "gguf: tensor %s has type %u (%s), which tgc does not support; "
                       "supported: %s", t->name, t->type, tgc_gguf_type_name(t->type), SUPPORTED_TYPES);
}

const void *tgc_gguf_tensor_data(const tgc_gguf_tensor *t) {
  return tgc_gguf_check_tensor(t) == TGC_OK ? t->data_ : NULL;
}

/* ---- reader: typed getters ------------------------------------------------------ */

/* The entry for key, or NULL with TGC_ERR_ARG. */
static const tgc_gguf_kv *need_kv(const tgc_gguf *g, const char *key, const void *out, const char *fn) {
  if (!g || !key || !out)
    return tgc_fail(TGC_ERR_ARG, "%s: NULL %s", fn, !g ? "gguf" : !key ? "key" : "output pointer");
  const tgc_gguf_kv *kv = tgc_gguf_find(g, key);
  if (!kv) tgc_fail(TGC_ERR_ARG, "gguf: %s: no key \"%s\"", g->src, key);
  return kv;
}

static tgc_status wrong_type(const tgc_gguf *g, const tgc_gguf_kv *kv, const char *want) {
  if (kv->type == TGC_GGUF_ARRAY)
    return tgc_set_error(TGC_ERR_DTYPE, "gguf: %s: key \"%s\" is an ARRAY of %s, not %s", g->src, kv->key,
                         vtype_names[kv->elem_type], want);
  return tgc_set_error(TGC_ERR_DTYPE, "gguf: %s: key \"%s\" has type %s, not %s", g->src, kv->key,
                       vtype_names[kv->type], want);
}

/* The integer getters: any integer type whose value lies in [lo, hi]. */
static tgc_status get_int(const tgc_gguf *g, const char *key, const void *out, const char *fn, const char *want,
                          int64_t lo, uint64_t hi, uint64_t *bits) {
  const tgc_gguf_kv *kv = need_kv(g, key, out, fn);
  if (!kv) return tgc_last_status();
  if (!is_uint(kv->type) && !is_sint(kv->type)) return wrong_type(g, kv, want);
  if (int_value(kv, lo, hi, bits)) return TGC_OK;
  if (is_sint(kv->type))
    return tgc_set_error(TGC_ERR_ARG, "gguf: %s: key \"%s\" is %" PRId64 ", which does not fit in %s", g->src, key,
                         kv->v.i, want);
  return tgc_set_error(TGC_ERR_ARG, "gguf: %s: key \"%s\" is %" PRIu64 ", which does not fit in %s", g->src, key,
                       kv->v.u, want);
}

tgc_status tgc_gguf_get_u32(const tgc_gguf *g, const char *key, uint32_t *out) {
  uint64_t b = 0;
  tgc_status s = get_int(g, key, out, __func__, "UINT32", 0, UINT32_MAX, &b);
  if (!s) *out = (uint32_t)b;
  return s;
}

tgc_status tgc_gguf_get_i32(const tgc_gguf *g, const char *key, int32_t *out) {
  uint64_t b = 0;
  tgc_status s = get_int(g, key, out, __func__, "INT32", INT32_MIN, INT32_MAX, &b);
  if (!s) *out = (int32_t)(int64_t)b;
  return s;
}

tgc_status tgc_gguf_get_u64(const tgc_gguf *g, const char *key, uint64_t *out) {
  uint64_t b = 0;
  tgc_status s = get_int(g, key, out, __func__, "UINT64", 0, UINT64_MAX, &b);
  if (!s) *out = b;
  return s;
}

tgc_status tgc_gguf_get_i64(const tgc_gguf *g, const char *key, int64_t *out) {
  uint64_t b = 0;
  tgc_status s = get_int(g, key, out, __func__, "INT64", INT64_MIN, INT64_MAX, &b);
  if (!s) memcpy(out, &b, 8);
  return s;
}

tgc_status tgc_gguf_get_f32(const tgc_gguf *g, const char *key, float *out) {
  const tgc_gguf_kv *kv = need_kv(g, key, out, __func__);
  if (!kv) return tgc_last_status();
  if (!is_float(kv->type)) return wrong_type(g, kv, "FLOAT32");
  *out = (float)kv->v.f;
  return TGC_OK;
}

tgc_status tgc_gguf_get_bool(const tgc_gguf *g, const char *key, bool *out) {
  const tgc_gguf_kv *kv = need_kv(g, key, out, __func__);
  if (!kv) return tgc_last_status();
  if (kv->type != TGC_GGUF_BOOL) return wrong_type(g, kv, "BOOL");
  *out = kv->v.u != 0;
  return TGC_OK;
}

tgc_status tgc_gguf_get_str(const tgc_gguf *g, const char *key, const char **out, size_t *len) {
  const tgc_gguf_kv *kv = need_kv(g, key, out, __func__);
  if (!kv) return tgc_last_status();
  if (kv->type != TGC_GGUF_STRING) return wrong_type(g, kv, "STRING");
  *out = kv->v.s.s;
  if (len) *len = kv->v.s.len;
  return TGC_OK;
}

/* An array whose elements have type want (or any but STRING for want < 0). */
static tgc_status get_arr(const tgc_gguf *g, const char *key, const void **out, size_t *n, int want,
                          const char *fn, const tgc_gguf_kv **kv_out) {
  const tgc_gguf_kv *kv = need_kv(g, key, n ? (const void *)out : NULL, fn);
  if (!kv) return tgc_last_status();
  bool ok = kv->type == TGC_GGUF_ARRAY &&
            (want < 0 ? kv->elem_type != TGC_GGUF_STRING : kv->elem_type == (tgc_gguf_vtype)want);
  if (!ok) {
    char what[64];
    snprintf(what, sizeof what, "an ARRAY of %s", want < 0 ? "numbers" : vtype_names[want]);
    return wrong_type(g, kv, what);
  }
  *out = kv->v.arr;
  *n = kv->n;
  if (kv_out) *kv_out = kv;
  return TGC_OK;
}

tgc_status tgc_gguf_get_arr_str(const tgc_gguf *g, const char *key, const tgc_gguf_str **out, size_t *n) {
  return get_arr(g, key, (const void **)out, n, TGC_GGUF_STRING, __func__, NULL);
}

tgc_status tgc_gguf_get_arr_f32(const tgc_gguf *g, const char *key, const float **out, size_t *n) {
  return get_arr(g, key, (const void **)out, n, TGC_GGUF_FLOAT32, __func__, NULL);
}

tgc_status tgc_gguf_get_arr_i32(const tgc_gguf *g, const char *key, const int32_t **out, size_t *n) {
  return get_arr(g, key, (const void **)out, n, TGC_GGUF_INT32, __func__, NULL);
}

tgc_status tgc_gguf_get_arr(const tgc_gguf *g, const char *key, tgc_gguf_vtype *elem_type, const void **out,
                            size_t *n) {
  const tgc_gguf_kv *kv = NULL;
  if (!elem_type) return tgc_set_error(TGC_ERR_ARG, "%s: NULL elem_type", __func__);
  tgc_status s = get_arr(g, key, out, n, -1, __func__, &kv);
  if (!s) *elem_type = kv->elem_type;
  return s;
}
