/* gguf.h - reading and writing GGUF files (ggml's model format).
 *
 * A GGUF file is a header, key/value metadata, a table of tensor infos and
 * an aligned data section.  tgc reads versions 2 and 3 (little-endian) and
 * writes version 3.  docs/gguf.md describes what is accepted and why.
 *
 * Reader: tgc_gguf_open maps the file read-only and checks all of it before
 * returning, so every accessor afterwards only looks things up.  Everything
 * an accessor hands out (keys, strings, arrays, tensor infos, tensor data)
 * is owned by the tgc_gguf and stays valid until tgc_gguf_free.
 *
 * Writer: collect metadata and tensors, then tgc_gguf_writer_write.
 *
 * Errors follow tgc.h: functions return NULL or a tgc_status and leave a
 * message for tgc_last_error() that names the file, the item (KV 3
 * "general.name", tensor info 7 "blk.0.attn_q.weight") and the offset.
 * A malformed file is TGC_ERR_IO; a well-formed file tgc cannot use (GGUF
 * v1, big-endian, another version, a tensor type tgc does not implement) is
 * TGC_ERR_UNSUPPORTED.  No function exits or aborts on bad input.
 *
 * Threads: a tgc_gguf may be read from several threads at once (nothing
 * changes after open); a writer must be used by one thread at a time.
 */
#ifndef TGC_GGUF_H
#define TGC_GGUF_H

#include "tgc.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TGC_GGUF_MAX_DIMS 4
#define TGC_GGUF_DEFAULT_ALIGNMENT 32

/* Metadata value types, with their numbers in the file. */
typedef enum tgc_gguf_vtype {
  TGC_GGUF_UINT8 = 0,
  TGC_GGUF_INT8 = 1,
  TGC_GGUF_UINT16 = 2,
  TGC_GGUF_INT16 = 3,
  TGC_GGUF_UINT32 = 4,
  TGC_GGUF_INT32 = 5,
  TGC_GGUF_FLOAT32 = 6,
  TGC_GGUF_BOOL = 7,   /* one byte; 0 false, anything else true */
  TGC_GGUF_STRING = 8, /* u64 length + bytes, no NUL in the file */
  TGC_GGUF_ARRAY = 9,  /* element type u32 + count u64 + elements; not nested */
  TGC_GGUF_UINT64 = 10,
  TGC_GGUF_INT64 = 11,
  TGC_GGUF_FLOAT64 = 12,
  TGC_GGUF_NUM_VTYPES
} tgc_gguf_vtype;

/* Tensor types (ggml's numbering) that tgc reads.  Files may hold others:
 * see tgc_gguf_type_name and tgc_gguf_check_tensor. */
typedef enum tgc_gguf_ttype {
  TGC_GGUF_F32 = 0,
  TGC_GGUF_F16 = 1,
  TGC_GGUF_Q4_0 = 2, /* blocks of 32: f16 d, 16 bytes; x[j] = (lo nibble of byte j - 8) * d, x[j+16] the high nibble */
  TGC_GGUF_Q8_0 = 8, /* blocks of 32: f16 d, 32 int8 q; x[j] = q[j] * d */
  TGC_GGUF_BF16 = 30,
} tgc_gguf_ttype;

/* A string that may hold NUL bytes; s is NUL-terminated after len bytes. */
typedef struct tgc_gguf_str {
  const char *s;
  size_t len;
} tgc_gguf_str;

/* One metadata entry, decoded.  Read-only; owned by its tgc_gguf. */
typedef struct tgc_gguf_kv {
  const char *key;          /* NUL-terminated (keys holding NUL bytes are rejected) */
  tgc_gguf_vtype type;      /* the value's type */
  tgc_gguf_vtype elem_type; /* ARRAY: the elements' type; otherwise the same as type */
  size_t n;                 /* ARRAY: number of elements; otherwise 1 */
  union {
    uint64_t u;       /* UINT8..UINT64; BOOL as 0 or 1 */
    int64_t i;        /* INT8..INT64, sign-extended */
    double f;         /* FLOAT32, FLOAT64 */
    tgc_gguf_str s;   /* STRING */
    const void *arr;  /* ARRAY: n elements, 16-byte aligned, in host order: the
                         C type of elem_type (bool as uint8_t), or tgc_gguf_str */
  } v;
} tgc_gguf_kv;

/* One tensor info.  Read-only; owned by its tgc_gguf. */
typedef struct tgc_gguf_tensor {
  const char *name;                  /* NUL-terminated, unique in the file */
  uint32_t type;                     /* ggml type id (tgc_gguf_ttype when tgc reads it) */
  int ndim;                          /* 0..4 (0 is a scalar) */
  int64_t dims[TGC_GGUF_MAX_DIMS];   /* GGUF order: dims[0] varies fastest; 1 past ndim */
  int64_t n_elems;                   /* product of dims */
  uint64_t nbytes;                   /* size of the data; 0 when the type's layout is unknown */
  uint64_t offset;                   /* of the data, from the start of the data section */
  const void *data_;                 /* private: use tgc_gguf_tensor_data */
} tgc_gguf_tensor;

typedef struct tgc_gguf tgc_gguf;

/* ---- reader ------------------------------------------------------------ */

/* Maps and checks the file at path.  NULL with a message when it cannot be
 * read or is not a GGUF file tgc reads.  Free with tgc_gguf_free.  The file
 * must not be truncated while it is open (reading the mapping would fault). */
tgc_gguf *tgc_gguf_open(const char *path);
/* The same for a file already in memory: the bytes are not copied (tensor
 * data points into them), so they must outlive the handle.  Tensor data is
 * aligned in memory only as far as data itself is. */
tgc_gguf *tgc_gguf_open_memory(const void *data, size_t size);
/* Unmaps and frees everything the handle gave out.  NULL does nothing. */
void tgc_gguf_free(tgc_gguf *g);

uint32_t tgc_gguf_version(const tgc_gguf *g);   /* 2 or 3 */
uint32_t tgc_gguf_alignment(const tgc_gguf *g); /* of the data section and every tensor */

/* Metadata in file order; i out of range gives NULL (no message). */
size_t tgc_gguf_n_kv(const tgc_gguf *g);
const tgc_gguf_kv *tgc_gguf_kv_at(const tgc_gguf *g, size_t i);
/* The entry for key, or NULL when absent (no message: absence is not
 * always a failure). */
const tgc_gguf_kv *tgc_gguf_find(const tgc_gguf *g, const char *key);

/* Typed getters.  TGC_ERR_ARG when g, key or out is NULL or the key is
 * absent; TGC_ERR_DTYPE when the value has another type (the message names
 * the key and both types); *out is untouched on failure.  The integer
 * getters take any integer type whose value fits (else TGC_ERR_ARG);
 * get_f32 takes FLOAT32 and FLOAT64. */
tgc_status tgc_gguf_get_u32(const tgc_gguf *g, const char *key, uint32_t *out);
tgc_status tgc_gguf_get_i32(const tgc_gguf *g, const char *key, int32_t *out);
tgc_status tgc_gguf_get_u64(const tgc_gguf *g, const char *key, uint64_t *out);
tgc_status tgc_gguf_get_i64(const tgc_gguf *g, const char *key, int64_t *out);
tgc_status tgc_gguf_get_f32(const tgc_gguf *g, const char *key, float *out);
tgc_status tgc_gguf_get_bool(const tgc_gguf *g, const char *key, bool *out);
/* *out is NUL-terminated; len (may be NULL) gets the length. */
tgc_status tgc_gguf_get_str(const tgc_gguf *g, const char *key, const char **out, size_t *len);
/* Arrays: *out points at *n elements owned by g.  The element type must
 * match exactly (an array of INT32 for get_arr_i32). */
tgc_status tgc_gguf_get_arr_str(const tgc_gguf *g, const char *key, const tgc_gguf_str **out, size_t *n);
tgc_status tgc_gguf_get_arr_f32(const tgc_gguf *g, const char *key, const float **out, size_t *n);
tgc_status tgc_gguf_get_arr_i32(const tgc_gguf *g, const char *key, const int32_t **out, size_t *n);
/* Any array of numbers or bools (not strings): its element type too. */
tgc_status tgc_gguf_get_arr(const tgc_gguf *g, const char *key, tgc_gguf_vtype *elem_type, const void **out,
                            size_t *n);

/* Tensor infos in file order; i out of range gives NULL (no message). */
size_t tgc_gguf_n_tensors(const tgc_gguf *g);
const tgc_gguf_tensor *tgc_gguf_tensor_at(const tgc_gguf *g, size_t i);
/* NULL when absent (no message). */
const tgc_gguf_tensor *tgc_gguf_find_tensor(const tgc_gguf *g, const char *name);
/* TGC_OK when tgc reads t's type; else TGC_ERR_UNSUPPORTED and a message
 * naming the tensor and its type ("tensor blk.0.attn_q.weight has type 12
 * (Q4_K), which tgc does not support; supported: F32 F16 BF16 Q8_0 Q4_0").
 * TGC_ERR_ARG for NULL. */
tgc_status tgc_gguf_check_tensor(const tgc_gguf_tensor *t);
/* t's nbytes of data in the mapping (owned by its tgc_gguf), or NULL with
 * the message of tgc_gguf_check_tensor. */
const void *tgc_gguf_tensor_data(const tgc_gguf_tensor *t);

/* ---- tensor types -------------------------------------------------------- */

/* ggml's name of a tensor type ("Q4_K"); "unknown" for ids it never had. */
const char *tgc_gguf_type_name(uint32_t type);
/* The name of a value type ("UINT32"); "unknown" past FLOAT64. */
const char *tgc_gguf_vtype_name(uint32_t vtype);
/* Elements per block and bytes per block of a tensor type; false (and
 * nothing written) when the layout is unknown.  Either pointer may be NULL. */
bool tgc_gguf_type_layout(uint32_t type, uint32_t *block_elems, uint32_t *block_bytes);
/* Converts n elements of a tgc-supported type at src (src_bytes long) to
 * floats.  TGC_ERR_ARG when n is not a whole number of blocks or src is too
 * short; TGC_ERR_UNSUPPORTED for other types. */
tgc_status tgc_gguf_to_f32(uint32_t type, const void *src, size_t src_bytes, float *dst, int64_t n);

/* ---- writer ------------------------------------------------------------ */

typedef struct tgc_gguf_writer tgc_gguf_writer;

/* A new, empty writer (alignment 32).  Never NULL (aborts only when out of
 * memory, like tgc's other bookkeeping).  Free with tgc_gguf_writer_free. */
tgc_gguf_writer *tgc_gguf_writer_new(void);
/* Frees the writer and its copies of keys and values; never the tensor
 * data it references.  NULL does nothing. */
void tgc_gguf_writer_free(tgc_gguf_writer *w);

/* Sets the alignment of the data section and of each tensor (a power of
 * two); any value but 32 is also written as the general.alignment KV,
 * which the other add functions refuse. */
tgc_status tgc_gguf_writer_set_alignment(tgc_gguf_writer *w, uint32_t alignment);

/* Metadata, written in the order added.  Keys and values are copied.
 * TGC_ERR_ARG for NULL arguments, an empty key, a key added before, or
 * general.alignment. */
tgc_status tgc_gguf_writer_add_u8(tgc_gguf_writer *w, const char *key, uint8_t v);
tgc_status tgc_gguf_writer_add_i8(tgc_gguf_writer *w, const char *key, int8_t v);
tgc_status tgc_gguf_writer_add_u16(tgc_gguf_writer *w, const char *key, uint16_t v);
tgc_status tgc_gguf_writer_add_i16(tgc_gguf_writer *w, const char *key, int16_t v);
tgc_status tgc_gguf_writer_add_u32(tgc_gguf_writer *w, const char *key, uint32_t v);
tgc_status tgc_gguf_writer_add_i32(tgc_gguf_writer *w, const char *key, int32_t v);
tgc_status tgc_gguf_writer_add_u64(tgc_gguf_writer *w, const char *key, uint64_t v);
tgc_status tgc_gguf_writer_add_i64(tgc_gguf_writer *w, const char *key, int64_t v);
tgc_status tgc_gguf_writer_add_f32(tgc_gguf_writer *w, const char *key, float v);
tgc_status tgc_gguf_writer_add_f64(tgc_gguf_writer *w, const char *key, double v);
tgc_status tgc_gguf_writer_add_bool(tgc_gguf_writer *w, const char *key, bool v);
tgc_status tgc_gguf_writer_add_str(tgc_gguf_writer *w, const char *key, const char *v);
/* Arrays of n elements (n may be 0).  add_arr takes any numeric or BOOL
 * elem_type, elems holding n values of its C type (bool as uint8_t). */
tgc_status tgc_gguf_writer_add_arr(tgc_gguf_writer *w, const char *key, tgc_gguf_vtype elem_type,
                                   const void *elems, size_t n);
tgc_status tgc_gguf_writer_add_arr_f32(tgc_gguf_writer *w, const char *key, const float *v, size_t n);
tgc_status tgc_gguf_writer_add_arr_i32(tgc_gguf_writer *w, const char *key, const int32_t *v, size_t n);
tgc_status tgc_gguf_writer_add_arr_str(tgc_gguf_writer *w, const char *key, const char *const *v, size_t n);
/* Strings with lengths (they may hold NUL bytes), as tgc_gguf_get_arr_str gives them. */
tgc_status tgc_gguf_writer_add_arr_strn(tgc_gguf_writer *w, const char *key, const tgc_gguf_str *v, size_t n);

/* A tensor of a type whose layout is known (tgc_gguf_type_layout), with
 * dims in GGUF order (dims[0] fastest; ndim 0..4, each dim >= 1, dims[0] a
 * multiple of the block size) and nbytes exactly its size.  The name is
 * copied; the data is REFERENCED, not copied: it must stay valid and
 * unchanged until tgc_gguf_writer_write returns.  Tensors are written in
 * the order added.  TGC_ERR_ARG for a bad or duplicate name, bad dims or a
 * wrong nbytes; TGC_ERR_UNSUPPORTED for a type of unknown layout. */
tgc_status tgc_gguf_writer_add_tensor(tgc_gguf_writer *w, const char *name, uint32_t type, int ndim,
                                      const int64_t *dims, const void *data, size_t nbytes);

/* Writes a version-3 file: to a temporary file beside path, renamed over
 * path once complete, so path never holds half a file.  TGC_ERR_IO with the
 * path and the system's reason when it cannot be written.  The writer is
 * unchanged and may be written again. */
tgc_status tgc_gguf_writer_write(const tgc_gguf_writer *w, const char *path);

/* ---- shared by gguf.c (reader) and gguf_write.c; not for callers ---------- */

extern const uint8_t tgc_gguf_vtype_sizes[]; /* bytes of a scalar value type; 0 for STRING, ARRAY */
const char *tgc_gguf_fmt_dims(char *buf, size_t cap, int ndim, const int64_t *dims); /* "[4096, 32000]" */
/* Element count and byte size of a tensor (nbytes 0 when the type's layout
 * is unknown); false with the reason in why on a partial block or overflow. */
bool tgc_gguf_tensor_extent(uint32_t type, int ndim, const int64_t *dims, int64_t *n_elems, uint64_t *nbytes,
                            char *why, size_t why_cap);

#ifdef __cplusplus
}
#endif

#endif
