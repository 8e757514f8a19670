/* gguf_write.c - the GGUF writer (the reader is gguf.c).
 *
 * The writer keeps each KV already encoded and only references tensor
 * data; tgc_gguf_writer_write lays out the offsets, writes a temporary file
 * beside the path and renames it into place, so the path never holds half
 * a file.
 */
#include "tgc_internal.h"

#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- writer ------------------------------------------------------------------- */

typedef struct bytes {
  uint8_t *p;
  size_t len, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
  if (n > b->cap - b->len) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
      if (cap > SIZE_MAX / 2) tgc_assert_fail(__FILE__, __LINE__, "GGUF metadata over SIZE_MAX");
      cap *= 2;
    }
    b->p = tgc_xrealloc(b->p, cap);
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void put_u32(bytes *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(bytes *b, uint64_t v) { put(b, &v, 8); }
static void put_str(bytes *b, const char *s, size_t n) {
  put_u64(b, n);
  put(b, s, n);
}

/* A KV: its key, and its value type and value already encoded. */
typedef struct wkv {
  char *key;
  bytes val;
} wkv;

typedef struct wtensor {
  char *name;
  uint32_t type;
  int ndim;
  int64_t dims[TGC_GGUF_MAX_DIMS];
  const void *data; /* referenced, not owned */
  uint64_t nbytes;
} wtensor;

struct tgc_gguf_writer {
  wkv *kvs;
  size_t n_kv, cap_kv;
  wtensor *ts;
  size_t n_t, cap_t;
  uint32_t alignment;
};

tgc_gguf_writer *tgc_gguf_writer_new(void) {
  tgc_gguf_writer *w = tgc_xcalloc(1, sizeof *w);
  w->alignment = TGC_GGUF_DEFAULT_ALIGNMENT;
  return w;
}

void tgc_gguf_writer_free(tgc_gguf_writer *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n_kv; i++) {
    free(w->kvs[i].key);
    free(w->kvs[i].val.p);
  }
  for (size_t i = 0; i < w->n_t; i++) free(w->ts[i].name);
  free(w->kvs);
  free(w->ts);
  free(w);
}

tgc_status tgc_gguf_writer_set_alignment(tgc_gguf_writer *w, uint32_t alignment) {
  if (!w) return tgc_set_error(TGC_ERR_ARG, "%s: NULL writer", __func__);
  if (!alignment || (alignment & (alignment - 1)))
    return tgc_set_error(TGC_ERR_ARG, "%s: alignment %u is not a power of two", __func__, alignment);
  w->alignment = alignment;
  return TGC_OK;
}

/* Whether key may be added: not NULL, not empty, not general.alignment
 * (tgc_gguf_writer_set_alignment writes it), not added before. */
static tgc_status check_key(const tgc_gguf_writer *w, const char *key, const char *fn) {
  if (!w || !key) return tgc_set_error(TGC_ERR_ARG, "%s: NULL %s", fn, !w ? "writer" : "key");
  if (!key[0]) return tgc_set_error(TGC_ERR_ARG, "%s: empty key", fn);
  if (!strcmp(key, "general.alignment"))
    return tgc_set_error(TGC_ERR_ARG, "%s: general.alignment is set with tgc_gguf_writer_set_alignment", fn);
  for (size_t i = 0; i < w->n_kv; i++)
    if (!strcmp(w->kvs[i].key, key)) return tgc_set_error(TGC_ERR_ARG, "%s: key \"%s\" was already added", fn, key);
  return TGC_OK;
}

/* Appends a checked key with its encoded value (which the writer takes). */
static tgc_status append_kv(tgc_gguf_writer *w, const char *key, bytes val) {
  if (w->n_kv == w->cap_kv) {
    w->cap_kv = w->cap_kv ? 2 * w->cap_kv : 16;
    w->kvs = tgc_xrealloc(w->kvs, w->cap_kv * sizeof *w->kvs);
  }
  w->kvs[w->n_kv++] = (wkv){tgc_xstrdup(key), val};
  return TGC_OK;
}

static tgc_status add_scalar(tgc_gguf_writer *w, const char *key, tgc_gguf_vtype t, const void *v, const char *fn) {
  tgc_status s = check_key(w, key, fn);
  if (s) return s;
  bytes val = {0};
  put_u32(&val, t);
  put(&val, v, tgc_gguf_vtype_sizes[t]);
  return append_kv(w, key, val);
}

#define SCALAR_ADDER(suffix, ctype, vtype)                                          \
  tgc_status tgc_gguf_writer_add_##suffix(tgc_gguf_writer *w, const char *key, ctype v) { \
    return add_scalar(w, key, vtype, &v, __func__);                                 \
  }
SCALAR_ADDER(u8, uint8_t, TGC_GGUF_UINT8)
SCALAR_ADDER(i8, int8_t, TGC_GGUF_INT8)
SCALAR_ADDER(u16, uint16_t, TGC_GGUF_UINT16)
SCALAR_ADDER(i16, int16_t, TGC_GGUF_INT16)
SCALAR_ADDER(u32, uint32_t, TGC_GGUF_UINT32)
SCALAR_ADDER(i32, int32_t, TGC_GGUF_INT32)
SCALAR_ADDER(u64, uint64_t, TGC_GGUF_UINT64)
SCALAR_ADDER(i64, int64_t, TGC_GGUF_INT64)
SCALAR_ADDER(f32, float, TGC_GGUF_FLOAT32)
SCALAR_ADDER(f64, double, TGC_GGUF_FLOAT64)
#undef SCALAR_ADDER

tgc_status tgc_gguf_writer_add_bool(tgc_gguf_writer *w, const char *key, bool v) {
  uint8_t b = v;
  return add_scalar(w, key, TGC_GGUF_BOOL, &b, __func__);
}

tgc_status tgc_gguf_writer_add_str(tgc_gguf_writer *w, const char *key, const char *v) {
  tgc_status s = check_key(w, key, __func__);
  if (s) return s;
  if (!v) return tgc_set_error(TGC_ERR_ARG, "%s: NULL value for key \"%s\"", __func__, key);
  bytes val = {0};
  put_u32(&val, TGC_GGUF_STRING);
  put_str(&val, v, strlen(v));
  return append_kv(w, key, val);
}

tgc_status tgc_gguf_writer_add_arr(tgc_gguf_writer *w, const char *key, tgc_gguf_vtype elem_type,
                                   const void *elems, size_t n) {
  tgc_status s = check_key(w, key, __func__);
  if (s) return s;
  size_t bytes_n;
  if ((unsigned)elem_type >= TGC_GGUF_NUM_VTYPES || !tgc_gguf_vtype_sizes[elem_type])
    return tgc_set_error(TGC_ERR_ARG, "%s: key \"%s\": element type %d is not a number or BOOL", __func__, key,
                         (int)elem_type);
  if ((!elems && n) || __builtin_mul_overflow(n, (size_t)tgc_gguf_vtype_sizes[elem_type], &bytes_n))
    return tgc_set_error(TGC_ERR_ARG, "%s: key \"%s\": %s", __func__, key, elems ? "too many elements" : "NULL elems");
  bytes val = {0};
  put_u32(&val, TGC_GGUF_ARRAY);
  put_u32(&val, elem_type);
  put_u64(&val, n);
  put(&val, elems, bytes_n);
  return append_kv(w, key, val);
}

tgc_status tgc_gguf_writer_add_arr_f32(tgc_gguf_writer *w, const char *key, const float *v, size_t n) {
  return tgc_gguf_writer_add_arr(w, key, TGC_GGUF_FLOAT32, v, n);
}

tgc_status tgc_gguf_writer_add_arr_i32(tgc_gguf_writer *w, const char *key, const int32_t *v, size_t n) {
  return tgc_gguf_writer_add_arr(w, key, TGC_GGUF_INT32, v, n);
}

tgc_status tgc_gguf_writer_add_arr_strn(tgc_gguf_writer *w, const char *key, const tgc_gguf_str *v, size_t n) {
  tgc_status s = check_key(w, key, __func__);
  if (s) return s;
  if (!v && n) return tgc_set_error(TGC_ERR_ARG, "%s: key \"%s\": NULL strings", __func__, key);
  for (size_t i = 0; i < n; i++)
    if (!v[i].s && v[i].len)
      return tgc_set_error(TGC_ERR_ARG, "%s: key \"%s\": string %zu is NULL", __func__, key, i);
  bytes val = {0};
  put_u32(&val, TGC_GGUF_ARRAY);
  put_u32(&val, TGC_GGUF_STRING);
  put_u64(&val, n);
  for (size_t i = 0; i < n; i++) put_str(&val, v[i].s, v[i].len);
  return append_kv(w, key, val);
}

tgc_status tgc_gguf_writer_add_arr_str(tgc_gguf_writer *w, const char *key, const char *const *v, size_t n) {
  if (!v && n) return tgc_set_error(TGC_ERR_ARG, "%s: NULL strings", __func__);
  tgc_gguf_str *s = tgc_xmalloc(n * sizeof *s);
  for (size_t i = 0; i < n; i++) s[i] = (tgc_gguf_str){v[i], v[i] ? strlen(v[i]) : 1};
  tgc_status st = tgc_gguf_writer_add_arr_strn(w, key, s, n); /* a NULL string fails there, as length 1 */
  free(s);
  return st;
}

/* The checks of add_tensor on name, dims and type; *size gets the byte size. */
static tgc_status check_tensor_args(const tgc_gguf_writer *w, const char *name, uint32_t type, int ndim,
                                    const int64_t *dims, uint64_t *size) {
  const char *fn = "tgc_gguf_writer_add_tensor";
  if (!w || !name || !name[0]) return tgc_set_error(TGC_ERR_ARG, "%s: %s", fn, !w ? "NULL writer" : "no name");
  for (size_t i = 0; i < w->n_t; i++)
    if (!strcmp(w->ts[i].name, name))
      return tgc_set_error(TGC_ERR_ARG, "%s: tensor %s was already added", fn, name);
  if (ndim < 0 || ndim > TGC_GGUF_MAX_DIMS || (ndim && !dims))
    return tgc_set_error(TGC_ERR_ARG, "%s: tensor %s: ndim %d (0..4, with dims)", fn, name, ndim);
  for (int d = 0; d < ndim; d++)
    if (dims[d] < 1) return tgc_set_error(TGC_ERR_ARG, "%s: tensor %s: dims[%d] is %" PRId64, fn, name, d, dims[d]);
  if (!tgc_gguf_type_layout(type, NULL, NULL))
    return tgc_set_error(TGC_ERR_UNSUPPORTED, "%s: tensor %s: type %u (%s) has no known layout", fn, name, type,
                         tgc_gguf_type_name(type));
  int64_t n;
  char why[200], ds[160];
  if (!tgc_gguf_tensor_extent(type, ndim, dims, &n, size, why, sizeof why))
    return tgc_set_error(TGC_ERR_ARG, "%s: tensor %s: dims %s of type %s: %s", fn, name,
                         tgc_gguf_fmt_dims(ds, sizeof ds, ndim, dims), tgc_gguf_type_name(type), why);
  return TGC_OK;
}

tgc_status tgc_gguf_writer_add_tensor(tgc_gguf_writer *w, const char *name, uint32_t type, int ndim,
                                      const int64_t *dims, const void *data, size_t nbytes) {
  uint64_t size = 0;
  tgc_status s = check_tensor_args(w, name, type, ndim, dims, &size);
  if (s) return s;
  if (!data || nbytes != size)
    return tgc_set_error(TGC_ERR_ARG, "tgc_gguf_writer_add_tensor: tensor %s: %s (%zu bytes; its dims and type "
                         "take %" PRIu64 ")", name, data ? "wrong data size" : "NULL data", nbytes, size);
  if (w->n_t == w->cap_t) {
    w->cap_t = w->cap_t ? 2 * w->cap_t : 16;
    w->ts = tgc_xrealloc(w->ts, w->cap_t * sizeof *w->ts);
  }
  wtensor *t = &w->ts[w->n_t++];
  *t = (wtensor){tgc_xstrdup(name), type, ndim, {1, 1, 1, 1}, data, size};
  for (int d = 0; d < ndim; d++) t->dims[d] = dims[d];
  return TGC_OK;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

/* Header, KVs, tensor infos (offs[i] gets tensor i's offset in the data
 * section) and padding up to the data section. */
static bool encode_meta(const tgc_gguf_writer *w, bytes *b, uint64_t *offs) {
  bool own_alignment = w->alignment != TGC_GGUF_DEFAULT_ALIGNMENT;
  put(b, "GGUF", 4);
  put_u32(b, 3);
  put_u64(b, w->n_t);
  put_u64(b, w->n_kv + own_alignment);
  if (own_alignment) {
    put_str(b, "general.alignment", strlen("general.alignment"));
    put_u32(b, TGC_GGUF_UINT32);
    put_u32(b, w->alignment);
  }
  for (size_t i = 0; i < w->n_kv; i++) {
    put_str(b, w->kvs[i].key, strlen(w->kvs[i].key));
    put(b, w->kvs[i].val.p, w->kvs[i].val.len);
  }
  uint64_t off = 0;
  for (size_t i = 0; i < w->n_t; i++) {
    const wtensor *t = &w->ts[i];
    offs[i] = off;
    put_str(b, t->name, strlen(t->name));
    put_u32(b, (uint32_t)t->ndim);
    for (int d = 0; d < t->ndim; d++) put_u64(b, (uint64_t)t->dims[d]);
    put_u32(b, t->type);
    put_u64(b, off);
    if (__builtin_add_overflow(off, t->nbytes, &off) || off > UINT64_MAX - w->alignment) return false;
    off = align_up(off, w->alignment);
  }
  static const uint8_t zeros[64];
  for (size_t pad = align_up(b->len, w->alignment) - b->len; pad;) {
    size_t k = pad < sizeof zeros ? pad : sizeof zeros;
    put(b, zeros, k);
    pad -= k;
  }
  return true;
}

static bool write_zeros(int fd, uint64_t n) {
  static const uint8_t zeros[4096];
  while (n) {
    size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
    if (!tgc_write_all(fd, zeros, k)) return false;
    n -= k;
  }
  return true;
}

static bool write_contents(int fd, const tgc_gguf_writer *w, const bytes *meta, const uint64_t *offs) {
  if (!tgc_write_all(fd, meta->p, meta->len)) return false;
  uint64_t pos = 0; /* in the data section */
  for (size_t i = 0; i < w->n_t; i++) {
    if (!write_zeros(fd, offs[i] - pos) || !tgc_write_all(fd, w->ts[i].data, (size_t)w->ts[i].nbytes))
      return false;
    pos = offs[i] + w->ts[i].nbytes;
  }
  return fsync(fd) == 0;
}

/* Writes into a temporary file beside path and renames it over path. */
static tgc_status write_file(const tgc_gguf_writer *w, const char *path, const bytes *meta, const uint64_t *offs) {
  size_t n = strlen(path) + sizeof ".tmp-XXXXXX";
  char *tmp = tgc_xmalloc(n);
  snprintf(tmp, n, "%s.tmp-XXXXXX", path);
  tgc_status s = TGC_OK;
  int fd = mkstemp(tmp);
  if (fd < 0) {
    s = tgc_set_error(TGC_ERR_IO, "gguf: cannot write %s: creating %s failed: %s", path, tmp, strerror(errno));
    free(tmp);
    return s;
  }
  bool ok = write_contents(fd, w, meta, offs) && fchmod(fd, 0644) == 0;
  int err = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) s = tgc_set_error(TGC_ERR_IO, "gguf: cannot write %s: writing %s failed: %s", path, tmp, strerror(err));
  else if (rename(tmp, path) != 0)
    s = tgc_set_error(TGC_ERR_IO, "gguf: cannot write %s: renaming %s to it failed: %s", path, tmp, strerror(errno));
  if (s) unlink(tmp);
  free(tmp);
  return s;
}

tgc_status tgc_gguf_writer_write(const tgc_gguf_writer *w, const char *path) {
  if (!w || !path) return tgc_set_error(TGC_ERR_ARG, "%s: NULL %s", __func__, !w ? "writer" : "path");
  bytes meta = {0};
  uint64_t *offs = tgc_xmalloc(w->n_t * sizeof *offs);
  tgc_status s = encode_meta(w, &meta, offs)
                     ? write_file(w, path, &meta, offs)
                     : tgc_set_error(TGC_ERR_ARG, "gguf: cannot write %s: the tensors take over 2^64 bytes", path);
  free(meta.p);
  free(offs);
  return s;
}
