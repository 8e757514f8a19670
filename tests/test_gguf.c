/* test_gguf.c - the GGUF reader and writer (llama/gguf.h).
 *
 * Files are made with the writer, read back and compared with what went in;
 * then a valid file is corrupted one field at a time (the header at fixed
 * offsets, the KVs and tensor infos found by their names' bytes) and each
 * open must fail with the right status and a message that names the
 * problem.  Dequantization is checked against plain loops that decode the
 * block layouts with the compiler's _Float16.  A last test feeds thousands
 * of random mutations of a valid file to the reader, which must never read
 * out of bounds (the sanitizer build proves it) nor accept a file whose
 * tensors lie outside it.  Each test gets its own directory under $TMPDIR.
 */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../llama/gguf.h"

static char root[512];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void gguf_setup(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/tgc-gguf-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  cr_assert_not_null(mkdtemp(root), "mkdtemp: %s", strerror(errno));
}

static void gguf_teardown(void) {
  if (root[0]) nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  root[0] = '\0';
}

TestSuite(gguf, .init = gguf_setup, .fini = gguf_teardown, .timeout = 120);

/* ---- helpers --------------------------------------------------------------------- */

static const char *in_root(const char *name) {
  static char path[700];
  snprintf(path, sizeof path, "%s/%s", root, name);
  return path;
}

static uint8_t *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
  cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *size = (size_t)n;
  return buf;
}

static void write_file(const char *path, const void *buf, size_t size) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
  cr_assert_eq(fwrite(buf, 1, size, f), size);
  fclose(f);
}

static uint64_t rng_state;
static uint32_t rnd(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(rng_state >> 33);
}

static float half_ref(uint16_t h) {
  _Float16 f;
  memcpy(&f, &h, 2);
  return (float)f;
}

/* The tensors of the sample file, one of each type tgc reads. */
static struct sample {
  float f32[3][8];      /* dims [8, 3] */
  uint16_t f16[2][16];  /* dims [16, 2] */
  uint16_t bf16[5];     /* dims [5] */
  uint8_t q8[2][2][34]; /* dims [64, 2]: 2 rows of 2 blocks */
  uint8_t q4[3][18];    /* dims [32, 3] */
} S;

static const int64_t F32_DIMS[] = {8, 3}, F16_DIMS[] = {16, 2}, BF16_DIMS[] = {5}, Q8_DIMS[] = {64, 2},
                     Q4_DIMS[] = {32, 3};
/* Block scales: ordinary, small, negative and subnormal halves. */
static const uint16_t SCALES[] = {0x3c00, 0x2e66, 0xb800, 0x0001, 0x4500};

static void fill_sample(void) {
  rng_state = 42;
  for (int i = 0; i < 24; i++) S.f32[i / 8][i % 8] = (float)((int)(rnd() % 2001) - 1000) / 64.0f;
  for (int i = 0; i < 32; i++) S.f16[i / 16][i % 16] = (uint16_t)(rnd() & 0xbbff); /* no inf/nan */
  for (int i = 0; i < 5; i++) S.bf16[i] = (uint16_t)(rnd() & 0xbf7f);
  uint8_t *q8 = &S.q8[0][0][0], *q4 = &S.q4[0][0];
  for (int b = 0; b < 4; b++) {
    for (int j = 0; j < 34; j++) q8[34 * b + j] = (uint8_t)rnd();
    memcpy(q8 + 34 * b, &SCALES[b], 2);
  }
  for (int b = 0; b < 3; b++) {
    for (int j = 0; j < 18; j++) q4[18 * b + j] = (uint8_t)rnd();
    memcpy(q4 + 18 * b, &SCALES[b + 2], 2);
  }
}

static const uint8_t U8S[] = {0, 7, 255};
static const int8_t I8S[] = {-128, 0, 127};
static const uint16_t U16S[] = {0, 65535};
static const int16_t I16S[] = {-32768, 5};
static const uint32_t U32S[] = {1, 4000000000u};
static const int32_t I32S[] = {-7, 0, 2147483647, -2147483647 - 1};
static const uint64_t U64S[] = {18446744073709551615ull};
static const int64_t I64S[] = {-9223372036854775807ll - 1, 9223372036854775807ll};
static const float F32S[] = {0.5f, -1e30f, 3.25f};
static const double F64S[] = {1e300, -0.1};
static const uint8_t BOOLS[] = {1, 0, 1};
static const char *const STRS[] = {"hello", "", "tgc \xe2\x9c\x93"};

/* A writer with a KV of every type and the five sample tensors. */
static tgc_gguf_writer *sample_writer(uint32_t alignment) {
  tgc_gguf_writer *w = tgc_gguf_writer_new();
  cr_assert_eq(tgc_gguf_writer_set_alignment(w, alignment), TGC_OK, "%s", tgc_last_error());
  tgc_status s = TGC_OK;
  s |= tgc_gguf_writer_add_str(w, "general.architecture", "llama");
  s |= tgc_gguf_writer_add_u8(w, "t.u8", 200);
  s |= tgc_gguf_writer_add_i8(w, "t.i8", -100);
  s |= tgc_gguf_writer_add_u16(w, "t.u16", 60000);
  s |= tgc_gguf_writer_add_i16(w, "t.i16", -30000);
  s |= tgc_gguf_writer_add_u32(w, "t.u32", 4000000000u);
  s |= tgc_gguf_writer_add_i32(w, "t.i32", -2000000000);
  s |= tgc_gguf_writer_add_u64(w, "t.u64", 18446744073709551615ull);
  s |= tgc_gguf_writer_add_i64(w, "t.i64", -9223372036854775807ll - 1);
  s |= tgc_gguf_writer_add_f32(w, "t.f32", 0.15625f);
  s |= tgc_gguf_writer_add_f64(w, "t.f64", -2.5e-300);
  s |= tgc_gguf_writer_add_bool(w, "t.true", true);
  s |= tgc_gguf_writer_add_bool(w, "t.false", false);
  s |= tgc_gguf_writer_add_str(w, "t.empty", "");
  s |= tgc_gguf_writer_add_arr(w, "a.u8", TGC_GGUF_UINT8, U8S, 3);
  s |= tgc_gguf_writer_add_arr(w, "a.i8", TGC_GGUF_INT8, I8S, 3);
  s |= tgc_gguf_writer_add_arr(w, "a.u16", TGC_GGUF_UINT16, U16S, 2);
  s |= tgc_gguf_writer_add_arr(w, "a.i16", TGC_GGUF_INT16, I16S, 2);
  s |= tgc_gguf_writer_add_arr(w, "a.u32", TGC_GGUF_UINT32, U32S, 2);
  s |= tgc_gguf_writer_add_arr_i32(w, "a.i32", I32S, 4);
  s |= tgc_gguf_writer_add_arr(w, "a.u64", TGC_GGUF_UINT64, U64S, 1);
  s |= tgc_gguf_writer_add_arr(w, "a.i64", TGC_GGUF_INT64, I64S, 2);
  s |= tgc_gguf_writer_add_arr_f32(w, "a.f32", F32S, 3);
  s |= tgc_gguf_writer_add_arr(w, "a.f64", TGC_GGUF_FLOAT64, F64S, 2);
  s |= tgc_gguf_writer_add_arr(w, "a.bool", TGC_GGUF_BOOL, BOOLS, 3);
  s |= tgc_gguf_writer_add_arr_str(w, "a.str", STRS, 3);
  s |= tgc_gguf_writer_add_arr_f32(w, "a.empty", NULL, 0);
  s |= tgc_gguf_writer_add_arr_strn(w, "a.nul", (const tgc_gguf_str[]){{"a\0b", 3}}, 1);
  cr_assert_eq(s, TGC_OK, "adding KVs: %s", tgc_last_error());
  s |= tgc_gguf_writer_add_tensor(w, "tensor.f32", TGC_GGUF_F32, 2, F32_DIMS, S.f32, sizeof S.f32);
  s |= tgc_gguf_writer_add_tensor(w, "tensor.f16", TGC_GGUF_F16, 2, F16_DIMS, S.f16, sizeof S.f16);
  s |= tgc_gguf_writer_add_tensor(w, "tensor.bf16", TGC_GGUF_BF16, 1, BF16_DIMS, S.bf16, sizeof S.bf16);
  s |= tgc_gguf_writer_add_tensor(w, "tensor.q8_0", TGC_GGUF_Q8_0, 2, Q8_DIMS, S.q8, sizeof S.q8);
  s |= tgc_gguf_writer_add_tensor(w, "tensor.q4_0", TGC_GGUF_Q4_0, 2, Q4_DIMS, S.q4, sizeof S.q4);
  cr_assert_eq(s, TGC_OK, "adding tensors: %s", tgc_last_error());
  return w;
}

/* The sample written with the given alignment, read back into memory. */
static uint8_t *sample_bytes(uint32_t alignment, size_t *size) {
  fill_sample();
  tgc_gguf_writer *w = sample_writer(alignment);
  cr_assert_eq(tgc_gguf_writer_write(w, in_root("sample.gguf")), TGC_OK, "%s", tgc_last_error());
  tgc_gguf_writer_free(w);
  return read_file(in_root("sample.gguf"), size);
}

/* Offset just past the first occurrence of s (a name's bytes) in buf. */
static size_t after(const uint8_t *buf, size_t size, const char *s) {
  const uint8_t *p = memmem(buf, size, s, strlen(s));
  cr_assert_not_null(p, "\"%s\" not in the file", s);
  return (size_t)(p - buf) + strlen(s);
}

static void put32(uint8_t *buf, size_t at, uint32_t v) { memcpy(buf + at, &v, 4); }
static void put64(uint8_t *buf, size_t at, uint64_t v) { memcpy(buf + at, &v, 8); }

/* Opening buf must fail with status st and a message holding every needle. */
#define OPEN_FAILS(buf, size, st, ...) open_fails(buf, size, st, __LINE__, (const char *[]){__VA_ARGS__, NULL})
static void open_fails(const uint8_t *buf, size_t size, tgc_status st, int line, const char **needles) {
  tgc_clear_error();
  tgc_gguf *g = tgc_gguf_open_memory(buf, size);
  cr_expect_null(g, "line %d: the file opened", line);
  tgc_gguf_free(g);
  const char *msg = tgc_last_error();
  cr_expect_eq(tgc_last_status(), st, "line %d: status %s, message \"%s\"", line, tgc_status_str(tgc_last_status()),
               msg);
  for (const char **n = needles; *n; n++)
    cr_expect(strstr(msg, *n) != NULL, "line %d: message \"%s\" does not mention \"%s\"", line, msg, *n);
}

/* A tgc_status call that must fail likewise. */
#define FAILS(expr, st, needle)                                                                              \
  do {                                                                                                       \
    tgc_clear_error();                                                                                       \
    tgc_status s_ = (expr);                                                                                  \
    cr_expect_eq(s_, (st), "%s: %s, expected %s (\"%s\")", #expr, tgc_status_str(s_), tgc_status_str(st),    \
                 tgc_last_error());                                                                          \
    cr_expect(strstr(tgc_last_error(), (needle)) != NULL, "%s: message \"%s\" does not mention \"%s\"", #expr, \
              tgc_last_error(), (needle));                                                                   \
  } while (0)

/* ---- round trips ------------------------------------------------------------------- */

static void check_scalars(const tgc_gguf *g) {
  uint32_t u32 = 0;
  int32_t i32 = 0;
  uint64_t u64 = 0;
  int64_t i64 = 0;
  float f = 0;
  bool b = false;
  const char *s = NULL;
  size_t len = 99;
  cr_expect_eq(tgc_gguf_get_str(g, "general.architecture", &s, &len), TGC_OK);
  cr_expect_str_eq(s, "llama");
  cr_expect_eq(len, 5);
  cr_expect_eq(tgc_gguf_get_u32(g, "t.u8", &u32), TGC_OK);
  cr_expect_eq(u32, 200);
  cr_expect_eq(tgc_gguf_get_i32(g, "t.i8", &i32), TGC_OK);
  cr_expect_eq(i32, -100);
  cr_expect_eq(tgc_gguf_get_u32(g, "t.u16", &u32), TGC_OK);
  cr_expect_eq(u32, 60000);
  cr_expect_eq(tgc_gguf_get_i32(g, "t.i16", &i32), TGC_OK);
  cr_expect_eq(i32, -30000);
  cr_expect_eq(tgc_gguf_get_u32(g, "t.u32", &u32), TGC_OK);
  cr_expect_eq(u32, 4000000000u);
  cr_expect_eq(tgc_gguf_get_i32(g, "t.i32", &i32), TGC_OK);
  cr_expect_eq(i32, -2000000000);
  cr_expect_eq(tgc_gguf_get_u64(g, "t.u64", &u64), TGC_OK);
  cr_expect_eq(u64, 18446744073709551615ull);
  cr_expect_eq(tgc_gguf_get_i64(g, "t.i64", &i64), TGC_OK);
  cr_expect_eq(i64, -9223372036854775807ll - 1);
  cr_expect_eq(tgc_gguf_get_i64(g, "t.u32", &i64), TGC_OK);
  cr_expect_eq(i64, 4000000000ll);
  cr_expect_eq(tgc_gguf_get_f32(g, "t.f32", &f), TGC_OK);
  cr_expect_eq(f, 0.15625f);
  cr_expect_eq(tgc_gguf_find(g, "t.f64")->v.f, -2.5e-300);
  cr_expect_eq(tgc_gguf_get_bool(g, "t.true", &b), TGC_OK);
  cr_expect(b);
  cr_expect_eq(tgc_gguf_get_bool(g, "t.false", &b), TGC_OK);
  cr_expect(!b);
  cr_expect_eq(tgc_gguf_get_str(g, "t.empty", &s, NULL), TGC_OK);
  cr_expect_str_eq(s, "");
}

/* Array key holds n elements equal to want (elem_size bytes each). */
static void check_arr(const tgc_gguf *g, const char *key, tgc_gguf_vtype et, const void *want, size_t n,
                      size_t elem_size) {
  tgc_gguf_vtype got_et = TGC_GGUF_NUM_VTYPES;
  const void *arr = NULL;
  size_t got_n = 99;
  cr_assert_eq(tgc_gguf_get_arr(g, key, &got_et, &arr, &got_n), TGC_OK, "%s: %s", key, tgc_last_error());
  cr_expect_eq(got_et, et, "%s: element type %d", key, got_et);
  cr_expect_eq(got_n, n, "%s: %zu elements", key, got_n);
  cr_expect_eq((uintptr_t)arr % 16, 0, "%s: array not aligned", key);
  cr_expect(n == 0 || !memcmp(arr, want, n * elem_size), "%s: elements differ", key);
}

static void check_arrays(const tgc_gguf *g) {
  check_arr(g, "a.u8", TGC_GGUF_UINT8, U8S, 3, 1);
  check_arr(g, "a.i8", TGC_GGUF_INT8, I8S, 3, 1);
  check_arr(g, "a.u16", TGC_GGUF_UINT16, U16S, 2, 2);
  check_arr(g, "a.i16", TGC_GGUF_INT16, I16S, 2, 2);
  check_arr(g, "a.u32", TGC_GGUF_UINT32, U32S, 2, 4);
  check_arr(g, "a.i32", TGC_GGUF_INT32, I32S, 4, 4);
  check_arr(g, "a.u64", TGC_GGUF_UINT64, U64S, 1, 8);
  check_arr(g, "a.i64", TGC_GGUF_INT64, I64S, 2, 8);
  check_arr(g, "a.f32", TGC_GGUF_FLOAT32, F32S, 3, 4);
  check_arr(g, "a.f64", TGC_GGUF_FLOAT64, F64S, 2, 8);
  check_arr(g, "a.bool", TGC_GGUF_BOOL, BOOLS, 3, 1);
  check_arr(g, "a.empty", TGC_GGUF_FLOAT32, NULL, 0, 4);
  const float *f = NULL;
  const int32_t *i = NULL;
  size_t n = 0;
  cr_expect_eq(tgc_gguf_get_arr_f32(g, "a.f32", &f, &n), TGC_OK);
  cr_expect(n == 3 && f[1] == -1e30f);
  cr_expect_eq(tgc_gguf_get_arr_i32(g, "a.i32", &i, &n), TGC_OK);
  cr_expect(n == 4 && i[3] == INT32_MIN);
  const tgc_gguf_str *s = NULL;
  cr_assert_eq(tgc_gguf_get_arr_str(g, "a.str", &s, &n), TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(n, 3);
  for (size_t k = 0; k < n; k++) {
    cr_expect_str_eq(s[k].s, STRS[k]);
    cr_expect_eq(s[k].len, strlen(STRS[k]));
  }
  cr_assert_eq(tgc_gguf_get_arr_str(g, "a.nul", &s, &n), TGC_OK);
  cr_expect(n == 1 && s[0].len == 3 && !memcmp(s[0].s, "a\0b", 4), "a string with a NUL inside");
}

Test(gguf, metadata_round_trip_every_type) {
  for (uint32_t align = 32; align <= 64; align *= 2) {
    size_t size;
    uint8_t *buf = sample_bytes(align, &size);
    cr_expect_eq(buf[4], 3, "the writer writes version 3");
    tgc_gguf *g = tgc_gguf_open(in_root("sample.gguf"));
    cr_assert_not_null(g, "%s", tgc_last_error());
    cr_expect_eq(tgc_gguf_version(g), 3);
    cr_expect_eq(tgc_gguf_alignment(g), align);
    /* 28 KVs, plus general.alignment when it is not the default 32 */
    cr_expect_eq(tgc_gguf_n_kv(g), 28 + (align != 32), "%zu KVs", tgc_gguf_n_kv(g));
    for (size_t i = 0; i < tgc_gguf_n_kv(g); i++)
      cr_expect_eq(tgc_gguf_find(g, tgc_gguf_kv_at(g, i)->key), tgc_gguf_kv_at(g, i));
    cr_expect_null(tgc_gguf_kv_at(g, tgc_gguf_n_kv(g)));
    cr_expect_null(tgc_gguf_find(g, "no.such.key"));
    check_scalars(g);
    check_arrays(g);
    tgc_gguf_free(g);
    free(buf);
  }
}

static void check_tensor(const tgc_gguf *g, const char *name, uint32_t type, int ndim, const int64_t *dims,
                         const void *data, size_t nbytes) {
  const tgc_gguf_tensor *t = tgc_gguf_find_tensor(g, name);
  cr_assert_not_null(t, "tensor %s missing", name);
  cr_expect_str_eq(t->name, name);
  cr_expect_eq(t->type, type, "%s: type %u", name, t->type);
  cr_expect_eq(t->ndim, ndim);
  int64_t n = 1;
  for (int d = 0; d < 4; d++) {
    cr_expect_eq(t->dims[d], d < ndim ? dims[d] : 1, "%s: dims[%d] is %lld", name, d, (long long)t->dims[d]);
    n *= t->dims[d];
  }
  cr_expect_eq(t->n_elems, n);
  cr_expect_eq(t->nbytes, nbytes, "%s: %llu bytes", name, (unsigned long long)t->nbytes);
  cr_expect_eq(tgc_gguf_check_tensor(t), TGC_OK);
  const void *p = tgc_gguf_tensor_data(t);
  cr_assert_not_null(p, "%s: %s", name, tgc_last_error());
  cr_expect_eq((uintptr_t)p % tgc_gguf_alignment(g), 0, "%s: data not aligned", name);
  cr_expect_eq(t->offset % tgc_gguf_alignment(g), 0);
  cr_expect(!memcmp(p, data, nbytes), "%s: data differs", name);
}

Test(gguf, tensors_round_trip_every_type_and_alignment) {
  for (uint32_t align = 32; align <= 64; align *= 2) {
    size_t size;
    uint8_t *buf = sample_bytes(align, &size);
    tgc_gguf *g = tgc_gguf_open(in_root("sample.gguf"));
    cr_assert_not_null(g, "%s", tgc_last_error());
    cr_assert_eq(tgc_gguf_n_tensors(g), 5);
    static const char *const order[] = {"tensor.f32", "tensor.f16", "tensor.bf16", "tensor.q8_0", "tensor.q4_0"};
    for (size_t i = 0; i < 5; i++) cr_expect_str_eq(tgc_gguf_tensor_at(g, i)->name, order[i]);
    cr_expect_null(tgc_gguf_tensor_at(g, 5));
    cr_expect_null(tgc_gguf_find_tensor(g, "tensor.none"));
    check_tensor(g, "tensor.f32", TGC_GGUF_F32, 2, F32_DIMS, S.f32, 96);
    check_tensor(g, "tensor.f16", TGC_GGUF_F16, 2, F16_DIMS, S.f16, 64);
    check_tensor(g, "tensor.bf16", TGC_GGUF_BF16, 1, BF16_DIMS, S.bf16, 10);
    check_tensor(g, "tensor.q8_0", TGC_GGUF_Q8_0, 2, Q8_DIMS, S.q8, 4 * 34);
    check_tensor(g, "tensor.q4_0", TGC_GGUF_Q4_0, 2, Q4_DIMS, S.q4, 3 * 18);
    tgc_gguf_free(g);
    /* the same bytes through tgc_gguf_open_memory */
    g = tgc_gguf_open_memory(buf, size);
    cr_assert_not_null(g, "%s", tgc_last_error());
    const tgc_gguf_tensor *last = tgc_gguf_tensor_at(g, 4);
    cr_expect(!memcmp(tgc_gguf_tensor_data(last), S.q4, sizeof S.q4));
    cr_expect_eq((const uint8_t *)tgc_gguf_tensor_data(last) + last->nbytes, buf + size, "the last tensor ends the file");
    tgc_gguf_free(g);
    free(buf);
  }
}

/* ---- dequantization ------------------------------------------------------------------ */

Test(gguf, to_f32_decodes_the_block_layouts) {
  fill_sample();
  float out[128], want[128];
  cr_assert_eq(tgc_gguf_to_f32(TGC_GGUF_F32, S.f32, sizeof S.f32, out, 24), TGC_OK, "%s", tgc_last_error());
  cr_expect(!memcmp(out, S.f32, sizeof S.f32));
  cr_assert_eq(tgc_gguf_to_f32(TGC_GGUF_F16, S.f16, sizeof S.f16, out, 32), TGC_OK);
  for (int i = 0; i < 32; i++) cr_expect_eq(out[i], half_ref(S.f16[i / 16][i % 16]), "f16 %d: %g", i, out[i]);
  cr_assert_eq(tgc_gguf_to_f32(TGC_GGUF_BF16, S.bf16, sizeof S.bf16, out, 5), TGC_OK);
  for (int i = 0; i < 5; i++) {
    uint32_t bits = (uint32_t)S.bf16[i] << 16;
    memcpy(&want[i], &bits, 4);
    cr_expect_eq(out[i], want[i], "bf16 %d", i);
  }
  /* Q8_0: x = q * d per block of 32 */
  const uint8_t *q8 = &S.q8[0][0][0];
  for (int e = 0; e < 128; e++) want[e] = (float)(int8_t)q8[34 * (e / 32) + 2 + e % 32] * half_ref(SCALES[e / 32]);
  cr_assert_eq(tgc_gguf_to_f32(TGC_GGUF_Q8_0, q8, sizeof S.q8, out, 128), TGC_OK);
  for (int e = 0; e < 128; e++) cr_expect_eq(out[e], want[e], "q8_0 %d: %g, want %g", e, out[e], want[e]);
  /* Q4_0: element e of a block is nibble e/16 (low, then high) of byte e%16 */
  const uint8_t *q4 = &S.q4[0][0];
  for (int e = 0; e < 96; e++) {
    uint8_t byte = q4[18 * (e / 32) + 2 + e % 16];
    int q = (e % 32) < 16 ? byte & 15 : byte >> 4;
    want[e] = (float)(q - 8) * half_ref(SCALES[e / 32 + 2]);
  }
  cr_assert_eq(tgc_gguf_to_f32(TGC_GGUF_Q4_0, q4, sizeof S.q4, out, 96), TGC_OK);
  for (int e = 0; e < 96; e++) cr_expect_eq(out[e], want[e], "q4_0 %d: %g, want %g", e, out[e], want[e]);
  FAILS(tgc_gguf_to_f32(TGC_GGUF_Q8_0, q8, sizeof S.q8, out, 33), TGC_ERR_ARG, "33");
  FAILS(tgc_gguf_to_f32(TGC_GGUF_Q8_0, q8, 100, out, 96), TGC_ERR_ARG, "102 bytes");
  FAILS(tgc_gguf_to_f32(TGC_GGUF_F32, NULL, 0, out, 0), TGC_ERR_ARG, "NULL src");
  FAILS(tgc_gguf_to_f32(12, q8, sizeof S.q8, out, 256), TGC_ERR_UNSUPPORTED, "Q4_K");
}

Test(gguf, type_names_and_layouts) {
  cr_expect_str_eq(tgc_gguf_type_name(TGC_GGUF_Q4_0), "Q4_0");
  cr_expect_str_eq(tgc_gguf_type_name(12), "Q4_K");
  cr_expect_str_eq(tgc_gguf_type_name(TGC_GGUF_BF16), "BF16");
  cr_expect_str_eq(tgc_gguf_type_name(1000), "unknown");
  cr_expect_str_eq(tgc_gguf_vtype_name(TGC_GGUF_FLOAT64), "FLOAT64");
  cr_expect_str_eq(tgc_gguf_vtype_name(13), "unknown");
  uint32_t be = 0, bb = 0;
  cr_expect(tgc_gguf_type_layout(TGC_GGUF_Q8_0, &be, &bb) && be == 32 && bb == 34);
  cr_expect(tgc_gguf_type_layout(TGC_GGUF_Q4_0, &be, &bb) && be == 32 && bb == 18);
  cr_expect(tgc_gguf_type_layout(14, &be, &bb) && be == 256 && bb == 210); /* Q6_K */
  cr_expect(!tgc_gguf_type_layout(4, NULL, NULL));                         /* Q4_2, long gone */
  cr_expect(!tgc_gguf_type_layout(99, NULL, NULL));
}

/* ---- versions and magic --------------------------------------------------------------- */

Test(gguf, version_2_is_read_like_version_3) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size);
  put32(buf, 4, 2); /* v2 has v3's layout: 64-bit counts and lengths */
  write_file(in_root("v2.gguf"), buf, size);
  tgc_gguf *g = tgc_gguf_open(in_root("v2.gguf"));
  cr_assert_not_null(g, "%s", tgc_last_error());
  cr_expect_eq(tgc_gguf_version(g), 2);
  check_scalars(g);
  check_arrays(g);
  check_tensor(g, "tensor.q8_0", TGC_GGUF_Q8_0, 2, Q8_DIMS, S.q8, sizeof S.q8);
  tgc_gguf_free(g);
  free(buf);
}

Test(gguf, unsupported_versions_are_named) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size);
  put32(buf, 4, 1);
  OPEN_FAILS(buf, size, TGC_ERR_UNSUPPORTED, "version 1", "2 and 3");
  put32(buf, 4, 0x03000000); /* a big-endian version 3 read little-endian */
  OPEN_FAILS(buf, size, TGC_ERR_UNSUPPORTED, "big-endian", "0x03000000");
  put32(buf, 4, 4);
  OPEN_FAILS(buf, size, TGC_ERR_UNSUPPORTED, "version 4");
  put32(buf, 4, 0);
  OPEN_FAILS(buf, size, TGC_ERR_UNSUPPORTED, "version 0");
  free(buf);
}

Test(gguf, bad_magic_shows_the_bytes) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size);
  memcpy(buf, "GGML", 4);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "magic", "47 47 4d 4c", "\"GGML\"", "<memory>");
  write_file(in_root("text.gguf"), "hello, world\n", 13);
  tgc_clear_error();
  cr_expect_null(tgc_gguf_open(in_root("text.gguf")));
  cr_expect_eq(tgc_last_status(), TGC_ERR_IO);
  cr_expect(strstr(tgc_last_error(), "magic 68 65 6c 6c") && strstr(tgc_last_error(), "text.gguf"), "%s",
            tgc_last_error());
  free(buf);
}

/* ---- truncation, counts and lengths ---------------------------------------------------- */

Test(gguf, every_truncation_fails_cleanly) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size);
  for (size_t len = 0; len < size; len++) {
    uint8_t *cut = malloc(len ? len : 1); /* exactly len bytes, so ASan sees any overread */
    memcpy(cut, buf, len);
    tgc_clear_error();
    tgc_gguf *g = tgc_gguf_open_memory(cut, len);
    cr_expect_null(g, "a file cut to %zu of %zu bytes opened", len, size);
    cr_expect_eq(tgc_last_status(), TGC_ERR_IO, "cut to %zu: %s", len, tgc_last_error());
    cr_expect(strstr(tgc_last_error(), "gguf: <memory>: "), "cut to %zu: %s", len, tgc_last_error());
    tgc_gguf_free(g);
    free(cut);
  }
  OPEN_FAILS(buf, 0, TGC_ERR_IO, "truncated", "the magic", "offset 0");
  OPEN_FAILS(buf, 10, TGC_ERR_IO, "truncated", "the tensor count", "offset 8", "ends at 10");
  OPEN_FAILS(buf, 20, TGC_ERR_IO, "truncated", "the KV count", "offset 16");
  OPEN_FAILS(buf, size - 1, TGC_ERR_IO, "tensor.q4_0", "outside the file");
  free(buf);
}

Test(gguf, counts_the_file_cannot_hold) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size);
  put64(buf, 16, 1000000);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "KV count 1000000 cannot be");
  put64(buf, 16, UINT64_MAX);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "KV count 18446744073709551615");
  put64(buf, 16, 28);
  put64(buf, 8, 1ull << 40);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "tensor count 1099511627776 cannot be");
  put64(buf, 8, 6); /* one more than there are: read from the padding, it moves the data section */
  OPEN_FAILS(buf, size, TGC_ERR_IO, "tensor info", "outside the file");
  free(buf);
}

Test(gguf, string_lengths_past_the_end) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size), *orig = malloc(size);
  memcpy(orig, buf, size);
  put64(buf, 24, 1ull << 40); /* the first key's length */
  OPEN_FAILS(buf, size, TGC_ERR_IO, "KV 0: ", "the key at offset 24 claims 1099511627776 bytes", "past the end");
  memcpy(buf, orig, size);
  size_t at = after(buf, size, "general.architecture"); /* then type u32, length u64 */
  put64(buf, at + 4, size);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "KV 0 \"general.architecture\"", "the string value", "past the end");
  memcpy(buf, orig, size);
  at = after(buf, size, "a.str"); /* then type, element type, count, first string */
  put64(buf, at + 16, 1ull << 62);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "\"a.str\", element 0", "past the end");
  memcpy(buf, orig, size);
  put64(buf, at + 8, 1ull << 62);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "\"a.str\"", "strings cannot be");
  memcpy(buf, orig, size);
  at = after(buf, size, "a.u32");
  put64(buf, at + 8, 1ull << 62);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "\"a.u32\"", "array of 4611686018427387904 UINT32 elements", "past the end");
  memcpy(buf, orig, size);
  at = after(buf, size, "tensor.f16") - strlen("tensor.f16") - 8;
  put64(buf, at, UINT64_MAX);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "tensor info 1: ", "the tensor name", "past the end");
  free(buf);
  free(orig);
}

/* ---- tensor infos ------------------------------------------------------------------------ */

/* Offsets of a tensor info's fields, found after its name. */
typedef struct tinfo {
  size_t ndim, dims, type, offset;
} tinfo;

static tinfo find_tinfo(const uint8_t *buf, size_t size, const char *name) {
  size_t at = after(buf, size, name);
  uint32_t nd;
  memcpy(&nd, buf + at, 4);
  return (tinfo){at, at + 4, at + 4 + 8 * nd, at + 8 + 8 * nd};
}

Test(gguf, bad_dims) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size), *orig = malloc(size);
  memcpy(orig, buf, size);
  tinfo t = find_tinfo(buf, size, "tensor.f32");
  put32(buf, t.ndim, 5);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "tensor info 0 \"tensor.f32\"", "n_dims is 5", "at most 4");
  memcpy(buf, orig, size);
  put64(buf, t.dims + 8, 0);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "\"tensor.f32\"", "dims[1] is 0");
  put64(buf, t.dims + 8, 1ull << 63);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "\"tensor.f32\"", "dims[1] is 9223372036854775808");
  put64(buf, t.dims, 1ull << 40);
  put64(buf, t.dims + 8, 1ull << 40);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "\"tensor.f32\"", "element count overflows");
  put64(buf, t.dims, 1ull << 61); /* 3 x 2^61 elements fit, 4 x that many bytes do not */
  put64(buf, t.dims + 8, 3);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "\"tensor.f32\"", "byte size overflows");
  free(buf);
  free(orig);
}

Test(gguf, quantized_rows_must_be_whole_blocks) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size), *orig = malloc(size);
  memcpy(orig, buf, size);
  tinfo t = find_tinfo(buf, size, "tensor.q8_0");
  put64(buf, t.dims, 48);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "\"tensor.q8_0\"", "dims [48, 2] of type 8 (Q8_0)",
             "not a whole number of Q8_0 blocks of 32");
  memcpy(buf, orig, size);
  t = find_tinfo(buf, size, "tensor.q4_0");
  put64(buf, t.dims, 33);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "\"tensor.q4_0\"", "Q4_0 blocks");
  free(buf);
  free(orig);
}

Test(gguf, tensor_data_outside_the_file) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size), *orig = malloc(size);
  memcpy(orig, buf, size);
  tinfo t = find_tinfo(buf, size, "tensor.q4_0");
  uint64_t off;
  memcpy(&off, buf + t.offset, 8);
  put64(buf, t.offset, off + 4096);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "tensor info 4 \"tensor.q4_0\"", "lies outside the file");
  put64(buf, t.offset, UINT64_MAX - 31); /* aligned, and overflows when added to the data start */
  OPEN_FAILS(buf, size, TGC_ERR_IO, "\"tensor.q4_0\"", "outside the file");
  memcpy(buf, orig, size);
  t = find_tinfo(buf, size, "tensor.f32");
  put64(buf, t.dims + 8, 1000);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "\"tensor.f32\"", "data of 32000 bytes", "outside the file");
  free(buf);
  free(orig);
}

Test(gguf, misaligned_tensor_offsets) {
  for (uint32_t align = 32; align <= 64; align *= 2) {
    size_t size;
    uint8_t *buf = sample_bytes(align, &size);
    tinfo t = find_tinfo(buf, size, "tensor.f16");
    uint64_t off;
    memcpy(&off, buf + t.offset, 8);
    put64(buf, t.offset, off + align / 2);
    char want[64];
    snprintf(want, sizeof want, "is not a multiple of the alignment %u", align);
    OPEN_FAILS(buf, size, TGC_ERR_IO, "tensor info 1 \"tensor.f16\"", want);
    free(buf);
  }
}

Test(gguf, duplicate_keys_and_tensor_names) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size), *orig = malloc(size);
  memcpy(orig, buf, size);
  memcpy(buf + after(buf, size, "t.i32") - 5, "t.u32", 5);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "\"t.u32\"", "duplicate key", "KV 5 has the same key");
  memcpy(buf, orig, size);
  memcpy(buf + after(buf, size, "tensor.f16") - 10, "tensor.f32", 10);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "tensor info 1 \"tensor.f32\"", "duplicate tensor name", "tensor info 0");
  free(buf);
  free(orig);
}

Test(gguf, alignment_must_be_a_power_of_two) {
  size_t size;
  uint8_t *buf = sample_bytes(64, &size), *orig = malloc(size);
  memcpy(orig, buf, size);
  size_t at = after(buf, size, "general.alignment"); /* type u32, value u32 */
  put32(buf, at + 4, 48);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "general.alignment is 48", "power of two");
  put32(buf, at + 4, 0);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "general.alignment is 0");
  memcpy(buf, orig, size);
  put32(buf, at, TGC_GGUF_FLOAT32);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "general.alignment has type FLOAT32", "UINT32");
  put32(buf, at, TGC_GGUF_INT32);
  put32(buf, at + 4, (uint32_t)-64);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "general.alignment is -64");
  put32(buf, at + 4, 64); /* an INT32 that fits is taken */
  tgc_gguf *g = tgc_gguf_open_memory(buf, size);
  cr_assert_not_null(g, "%s", tgc_last_error());
  cr_expect_eq(tgc_gguf_alignment(g), 64);
  tgc_gguf_free(g);
  free(buf);
  free(orig);
}

/* ---- types tgc does not read ------------------------------------------------------------- */

Test(gguf, unsupported_tensor_types_open_but_refuse_access) {
  static uint8_t q4k[2 * 144], f32[4];
  tgc_gguf_writer *w = tgc_gguf_writer_new();
  cr_assert_eq(tgc_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", 12, 2, (const int64_t[]){256, 2}, q4k,
                                          sizeof q4k),
               TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(tgc_gguf_writer_add_tensor(w, "norm", TGC_GGUF_F32, 1, (const int64_t[]){1}, f32, 4), TGC_OK);
  cr_assert_eq(tgc_gguf_writer_write(w, in_root("q4k.gguf")), TGC_OK, "%s", tgc_last_error());
  tgc_gguf_writer_free(w);
  tgc_gguf *g = tgc_gguf_open(in_root("q4k.gguf"));
  cr_assert_not_null(g, "%s", tgc_last_error());
  const tgc_gguf_tensor *t = tgc_gguf_find_tensor(g, "blk.0.attn_q.weight");
  cr_assert_not_null(t);
  cr_expect_eq(t->nbytes, sizeof q4k);
  const char *want = "tensor blk.0.attn_q.weight has type 12 (Q4_K), which tgc does not support; "
                     "supported: F32 F16 BF16 Q8_0 Q4_0";
  FAILS(tgc_gguf_check_tensor(t), TGC_ERR_UNSUPPORTED, want);
  tgc_clear_error();
  cr_expect_null(tgc_gguf_tensor_data(t));
  cr_expect_eq(tgc_last_status(), TGC_ERR_UNSUPPORTED);
  cr_expect(strstr(tgc_last_error(), want), "%s", tgc_last_error());
  cr_expect_not_null(tgc_gguf_tensor_data(tgc_gguf_find_tensor(g, "norm")));
  FAILS(tgc_gguf_check_tensor(NULL), TGC_ERR_ARG, "NULL");
  tgc_gguf_free(g);
  /* ids with no known layout open too; their size is unknown (0) */
  size_t size;
  uint8_t *buf = read_file(in_root("q4k.gguf"), &size);
  tinfo ti = find_tinfo(buf, size, "blk.0.attn_q.weight");
  static const uint32_t types[] = {4, 99}; /* Q4_2 (long removed), an id ggml never had */
  for (int k = 0; k < 2; k++) {
    uint32_t type = types[k];
    put32(buf, ti.type, type);
    g = tgc_gguf_open_memory(buf, size);
    cr_assert_not_null(g, "%s", tgc_last_error());
    t = tgc_gguf_find_tensor(g, "blk.0.attn_q.weight");
    cr_expect_eq(t->nbytes, 0);
    FAILS(tgc_gguf_check_tensor(t), TGC_ERR_UNSUPPORTED, type == 4 ? "type 4 (Q4_2)" : "type 99 (unknown)");
    tgc_gguf_free(g);
  }
  free(buf);
}

Test(gguf, bad_value_types_nested_arrays_and_nul_in_keys) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size), *orig = malloc(size);
  memcpy(orig, buf, size);
  put32(buf, after(buf, size, "t.u8"), 13);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "KV 1 \"t.u8\"", "value type 13");
  memcpy(buf, orig, size);
  size_t at = after(buf, size, "a.u8");
  put32(buf, at + 4, TGC_GGUF_ARRAY);
  OPEN_FAILS(buf, size, TGC_ERR_UNSUPPORTED, "\"a.u8\"", "nested arrays");
  put32(buf, at + 4, 77);
  OPEN_FAILS(buf, size, TGC_ERR_IO, "\"a.u8\"", "element type 77");
  memcpy(buf, orig, size);
  buf[after(buf, size, "t.u8") - 3] = '\0';
  OPEN_FAILS(buf, size, TGC_ERR_IO, "KV 1: ", "NUL byte");
  free(buf);
  free(orig);
}

/* ---- getters ---------------------------------------------------------------------------- */

Test(gguf, getters_check_types_ranges_and_arguments) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size);
  tgc_gguf *g = tgc_gguf_open_memory(buf, size);
  cr_assert_not_null(g, "%s", tgc_last_error());
  uint32_t u32 = 123;
  int32_t i32 = 0;
  uint64_t u64 = 0;
  int64_t i64 = 0;
  float f = 0;
  bool b = false;
  const char *s = NULL;
  const float *fa = NULL;
  const int32_t *ia = NULL;
  const tgc_gguf_str *sa = NULL;
  const void *p = NULL;
  tgc_gguf_vtype et;
  size_t n = 0;
  FAILS(tgc_gguf_get_u32(g, "general.architecture", &u32), TGC_ERR_DTYPE, "\"general.architecture\" has type STRING");
  cr_expect_eq(u32, 123, "the output changed on failure");
  FAILS(tgc_gguf_get_str(g, "t.u32", &s, NULL), TGC_ERR_DTYPE, "\"t.u32\" has type UINT32, not STRING");
  FAILS(tgc_gguf_get_f32(g, "t.i32", &f), TGC_ERR_DTYPE, "\"t.i32\" has type INT32, not FLOAT32");
  FAILS(tgc_gguf_get_bool(g, "t.u8", &b), TGC_ERR_DTYPE, "\"t.u8\" has type UINT8, not BOOL");
  FAILS(tgc_gguf_get_u32(g, "a.u32", &u32), TGC_ERR_DTYPE, "\"a.u32\" is an ARRAY of UINT32");
  FAILS(tgc_gguf_get_arr_f32(g, "a.i32", &fa, &n), TGC_ERR_DTYPE, "\"a.i32\" is an ARRAY of INT32, not an ARRAY of FLOAT32");
  FAILS(tgc_gguf_get_arr_i32(g, "t.i32", &ia, &n), TGC_ERR_DTYPE, "\"t.i32\" has type INT32");
  FAILS(tgc_gguf_get_arr_str(g, "a.f32", &sa, &n), TGC_ERR_DTYPE, "\"a.f32\"");
  FAILS(tgc_gguf_get_arr(g, "a.str", &et, &p, &n), TGC_ERR_DTYPE, "\"a.str\" is an ARRAY of STRING");
  FAILS(tgc_gguf_get_u32(g, "t.i8", &u32), TGC_ERR_ARG, "\"t.i8\" is -100, which does not fit in UINT32");
  FAILS(tgc_gguf_get_i32(g, "t.u32", &i32), TGC_ERR_ARG, "\"t.u32\" is 4000000000, which does not fit in INT32");
  FAILS(tgc_gguf_get_u64(g, "t.i64", &u64), TGC_ERR_ARG, "does not fit in UINT64");
  FAILS(tgc_gguf_get_i64(g, "t.u64", &i64), TGC_ERR_ARG, "does not fit in INT64");
  FAILS(tgc_gguf_get_u32(g, "no.such.key", &u32), TGC_ERR_ARG, "no key \"no.such.key\"");
  FAILS(tgc_gguf_get_u32(NULL, "t.u32", &u32), TGC_ERR_ARG, "NULL gguf");
  FAILS(tgc_gguf_get_u32(g, NULL, &u32), TGC_ERR_ARG, "NULL key");
  FAILS(tgc_gguf_get_u32(g, "t.u32", NULL), TGC_ERR_ARG, "NULL output");
  FAILS(tgc_gguf_get_arr_f32(g, "a.f32", NULL, &n), TGC_ERR_ARG, "NULL output");
  FAILS(tgc_gguf_get_arr_f32(g, "a.f32", &fa, NULL), TGC_ERR_ARG, "NULL output");
  FAILS(tgc_gguf_get_arr(g, "a.u8", NULL, &p, &n), TGC_ERR_ARG, "NULL elem_type");
  cr_expect_eq(u32, 123);
  /* integer getters take any integer type that fits; get_f32 takes FLOAT64 */
  cr_expect_eq(tgc_gguf_get_u64(g, "t.i8", &u64) == TGC_ERR_ARG && tgc_gguf_get_i64(g, "t.i8", &i64) == TGC_OK, 1);
  cr_expect_eq(i64, -100);
  cr_expect_eq(tgc_gguf_get_u32(g, "t.u16", &u32), TGC_OK);
  cr_expect_eq(tgc_gguf_get_f32(g, "a.f32", &f), TGC_ERR_DTYPE);
  cr_expect_eq(tgc_gguf_get_f32(g, "t.f64", &f), TGC_OK);
  /* accessors on NULL */
  cr_expect_eq(tgc_gguf_n_kv(NULL), 0);
  cr_expect_eq(tgc_gguf_n_tensors(NULL), 0);
  cr_expect_null(tgc_gguf_find(NULL, "x"));
  cr_expect_null(tgc_gguf_find(g, NULL));
  cr_expect_null(tgc_gguf_find_tensor(NULL, "x"));
  cr_expect_null(tgc_gguf_kv_at(NULL, 0));
  cr_expect_null(tgc_gguf_tensor_at(NULL, 0));
  tgc_gguf_free(g);
  tgc_gguf_free(NULL);
  free(buf);
}

/* ---- opening and writing files ---------------------------------------------------------- */

Test(gguf, open_reports_files_it_cannot_read) {
  tgc_clear_error();
  cr_expect_null(tgc_gguf_open(in_root("missing.gguf")));
  cr_expect_eq(tgc_last_status(), TGC_ERR_IO);
  cr_expect(strstr(tgc_last_error(), "missing.gguf") && strstr(tgc_last_error(), "No such file"), "%s",
            tgc_last_error());
  cr_expect_null(tgc_gguf_open(root));
  cr_expect(strstr(tgc_last_error(), "not a regular file"), "%s", tgc_last_error());
  write_file(in_root("empty.gguf"), "", 0);
  cr_expect_null(tgc_gguf_open(in_root("empty.gguf")));
  cr_expect(strstr(tgc_last_error(), "empty.gguf: truncated file: reading the magic at offset 0"), "%s",
            tgc_last_error());
  cr_expect_null(tgc_gguf_open(NULL));
  cr_expect_eq(tgc_last_status(), TGC_ERR_ARG);
  cr_expect_null(tgc_gguf_open_memory(NULL, 5));
  cr_expect_eq(tgc_last_status(), TGC_ERR_ARG);
  cr_expect_null(tgc_gguf_open_memory(NULL, 0));
  cr_expect_eq(tgc_last_status(), TGC_ERR_IO);
}

Test(gguf, writer_rejects_bad_input) {
  tgc_gguf_writer *w = tgc_gguf_writer_new();
  static float data[32];
  cr_expect_eq(tgc_gguf_writer_add_u32(w, "k", 1), TGC_OK);
  FAILS(tgc_gguf_writer_add_u32(w, "k", 2), TGC_ERR_ARG, "key \"k\" was already added");
  FAILS(tgc_gguf_writer_add_str(w, "k", "x"), TGC_ERR_ARG, "already added");
  FAILS(tgc_gguf_writer_add_u32(w, "general.alignment", 64), TGC_ERR_ARG, "tgc_gguf_writer_set_alignment");
  FAILS(tgc_gguf_writer_add_str(w, "", "x"), TGC_ERR_ARG, "empty key");
  FAILS(tgc_gguf_writer_add_str(w, "s", NULL), TGC_ERR_ARG, "NULL value");
  FAILS(tgc_gguf_writer_add_u32(NULL, "x", 1), TGC_ERR_ARG, "NULL writer");
  FAILS(tgc_gguf_writer_add_u32(w, NULL, 1), TGC_ERR_ARG, "NULL key");
  FAILS(tgc_gguf_writer_add_arr(w, "arr", TGC_GGUF_STRING, data, 1), TGC_ERR_ARG, "element type 8");
  FAILS(tgc_gguf_writer_add_arr(w, "arr", TGC_GGUF_ARRAY, data, 1), TGC_ERR_ARG, "element type 9");
  FAILS(tgc_gguf_writer_add_arr(w, "arr", TGC_GGUF_UINT8, NULL, 3), TGC_ERR_ARG, "NULL elems");
  FAILS(tgc_gguf_writer_add_arr_str(w, "strs", (const char *const[]){"a", NULL}, 2), TGC_ERR_ARG, "string 1 is NULL");
  FAILS(tgc_gguf_writer_set_alignment(w, 0), TGC_ERR_ARG, "power of two");
  FAILS(tgc_gguf_writer_set_alignment(w, 48), TGC_ERR_ARG, "alignment 48");
  const int64_t d32[] = {32}, d33[] = {33}, d0[] = {0}, d5[] = {1, 1, 1, 1, 32};
  FAILS(tgc_gguf_writer_add_tensor(w, "t", TGC_GGUF_F32, 1, d32, data, 127), TGC_ERR_ARG, "take 128");
  FAILS(tgc_gguf_writer_add_tensor(w, "t", TGC_GGUF_Q8_0, 1, d33, data, 34), TGC_ERR_ARG, "not a whole number");
  FAILS(tgc_gguf_writer_add_tensor(w, "t", TGC_GGUF_F32, 5, d5, data, 128), TGC_ERR_ARG, "ndim 5");
  FAILS(tgc_gguf_writer_add_tensor(w, "t", TGC_GGUF_F32, 1, d0, data, 0), TGC_ERR_ARG, "dims[0] is 0");
  FAILS(tgc_gguf_writer_add_tensor(w, "t", 99, 1, d32, data, 128), TGC_ERR_UNSUPPORTED, "type 99");
  FAILS(tgc_gguf_writer_add_tensor(w, "t", 4, 1, d32, data, 128), TGC_ERR_UNSUPPORTED, "Q4_2");
  FAILS(tgc_gguf_writer_add_tensor(w, "t", TGC_GGUF_F32, 1, d32, NULL, 128), TGC_ERR_ARG, "NULL data");
  FAILS(tgc_gguf_writer_add_tensor(w, "", TGC_GGUF_F32, 1, d32, data, 128), TGC_ERR_ARG, "no name");
  cr_expect_eq(tgc_gguf_writer_add_tensor(w, "t", TGC_GGUF_F32, 1, d32, data, 128), TGC_OK);
  FAILS(tgc_gguf_writer_add_tensor(w, "t", TGC_GGUF_F32, 1, d32, data, 128), TGC_ERR_ARG, "tensor t was already added");
  FAILS(tgc_gguf_writer_write(w, in_root("no/such/dir/x.gguf")), TGC_ERR_IO, "no/such/dir/x.gguf");
  cr_expect(strstr(tgc_last_error(), "No such file"), "%s", tgc_last_error());
  FAILS(tgc_gguf_writer_write(w, root), TGC_ERR_IO, "renaming"); /* a directory */
  FAILS(tgc_gguf_writer_write(w, NULL), TGC_ERR_ARG, "NULL path");
  /* the failed write onto the directory left no temporary file beside it */
  char tmp_prefix[600];
  snprintf(tmp_prefix, sizeof tmp_prefix, "%s.tmp-", strrchr(root, '/') + 1);
  char parent[512];
  snprintf(parent, sizeof parent, "%.*s", (int)(strrchr(root, '/') - root), root);
  DIR *d = opendir(parent);
  cr_assert_not_null(d);
  for (struct dirent *e; (e = readdir(d));)
    cr_expect(strncmp(e->d_name, tmp_prefix, strlen(tmp_prefix)), "%s left behind", e->d_name);
  closedir(d);
  tgc_gguf_writer_free(w);
  tgc_gguf_writer_free(NULL);
}

Test(gguf, writes_replace_files_whole) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size); /* writes sample.gguf */
  free(buf);
  tgc_gguf_writer *w = tgc_gguf_writer_new();
  cr_assert_eq(tgc_gguf_writer_add_str(w, "general.name", "second"), TGC_OK);
  cr_assert_eq(tgc_gguf_writer_write(w, in_root("sample.gguf")), TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(tgc_gguf_writer_write(w, in_root("sample.gguf")), TGC_OK, "a writer can write twice");
  tgc_gguf_writer_free(w);
  DIR *d = opendir(root);
  int files = 0;
  for (struct dirent *e; (e = readdir(d));) files += e->d_name[0] != '.';
  closedir(d);
  cr_expect_eq(files, 1, "only sample.gguf, no temporary files");
  tgc_gguf *g = tgc_gguf_open(in_root("sample.gguf"));
  cr_assert_not_null(g, "%s", tgc_last_error());
  cr_expect_eq(tgc_gguf_n_kv(g), 1);
  cr_expect_eq(tgc_gguf_n_tensors(g), 0);
  const char *s = NULL;
  cr_expect_eq(tgc_gguf_get_str(g, "general.name", &s, NULL), TGC_OK);
  cr_expect_str_eq(s, "second");
  tgc_gguf_free(g);
  buf = read_file(in_root("sample.gguf"), &size);
  cr_expect_eq(size % 32, 0, "the metadata is padded to the alignment");
  free(buf);
}

/* ---- random corruption --------------------------------------------------------------------- */

/* Reads every key and tensor of an opened file through the accessors. */
static void walk(const tgc_gguf *g, const uint8_t *file, size_t size) {
  for (size_t i = 0; i < tgc_gguf_n_kv(g); i++) {
    const tgc_gguf_kv *kv = tgc_gguf_kv_at(g, i);
    cr_assert_eq(tgc_gguf_find(g, kv->key), kv);
    const void *p;
    size_t n;
    tgc_gguf_vtype et;
    if (kv->type == TGC_GGUF_ARRAY && kv->elem_type != TGC_GGUF_STRING)
      cr_assert_eq(tgc_gguf_get_arr(g, kv->key, &et, &p, &n), TGC_OK);
    uint64_t u;
    (void)tgc_gguf_get_u64(g, kv->key, &u);
  }
  for (size_t i = 0; i < tgc_gguf_n_tensors(g); i++) {
    const tgc_gguf_tensor *t = tgc_gguf_tensor_at(g, i);
    cr_assert_eq(tgc_gguf_find_tensor(g, t->name), t);
    const uint8_t *p = tgc_gguf_tensor_data(t);
    if (!p) continue;
    cr_assert(p >= file && p + t->nbytes <= file + size, "tensor %s outside the file", t->name);
    if (t->n_elems <= 4096) {
      float *out = malloc((size_t)t->n_elems * sizeof *out);
      cr_assert_eq(tgc_gguf_to_f32(t->type, p, t->nbytes, out, t->n_elems), TGC_OK, "%s", tgc_last_error());
      free(out);
    }
  }
}

Test(gguf, random_mutations_never_escape_the_file) {
  size_t size;
  uint8_t *buf = sample_bytes(32, &size);
  rng_state = 7;
  int opened = 0;
  for (int iter = 0; iter < 4000; iter++) {
    size_t len = rnd() % 8 ? size : rnd() % size;
    uint8_t *m = malloc(len ? len : 1);
    memcpy(m, buf, len);
    for (int k = 1 + rnd() % 4; k > 0 && len; k--) {
      size_t at = rnd() % len;
      uint32_t r = rnd();
      m[at] = r % 3 == 0 ? 0xff : r % 3 == 1 ? 0 : (uint8_t)(r >> 8);
    }
    tgc_clear_error();
    tgc_gguf *g = tgc_gguf_open_memory(m, len);
    if (g) {
      opened++;
      walk(g, m, len);
    } else {
      cr_assert_neq(tgc_last_status(), TGC_OK);
      cr_assert(strncmp(tgc_last_error(), "gguf: <memory>: ", 16) == 0, "%s", tgc_last_error());
    }
    tgc_gguf_free(g);
    free(m);
  }
  cr_expect_gt(opened, 0, "no mutation left a readable file");
  free(buf);
}
