/* util.c - the small services every stage leans on: per-thread errors,
 * dtype traits, aborting allocators, a bump arena, XXH3 hashing, a growable
 * string and environment lookups.
 *
 * Errors live in thread-local storage so that contexts used from different
 * threads do not see each other's messages; the buffer is 16 KiB because a
 * message may carry a compiler log.  xxHash is used header-only
 * (XXH_INLINE_ALL) so libtgc has no run-time dependency on libxxhash; this
 * is the only file that includes it.
 */
#include "tgc_internal.h"

#include <errno.h>
#include <unistd.h>
#include <pthread.h>
#include <stdalign.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* ---- errors ------------------------------------------------------------ */

#define ERR_CAP (16 * 1024)

static _Thread_local char err_msg[ERR_CAP];
static _Thread_local tgc_status err_status = TGC_OK;

static const char *const status_names[] = {
    [TGC_OK] = "TGC_OK",
    [TGC_ERR_ARG] = "TGC_ERR_ARG",
    [TGC_ERR_SHAPE] = "TGC_ERR_SHAPE",
    [TGC_ERR_DTYPE] = "TGC_ERR_DTYPE",
    [TGC_ERR_NOMEM] = "TGC_ERR_NOMEM",
    [TGC_ERR_IO] = "TGC_ERR_IO",
    [TGC_ERR_COMPILE] = "TGC_ERR_COMPILE",
    [TGC_ERR_DEVICE] = "TGC_ERR_DEVICE",
    [TGC_ERR_UNSUPPORTED] = "TGC_ERR_UNSUPPORTED",
};

const char *tgc_status_str(tgc_status s) {
  size_t n = sizeof status_names / sizeof status_names[0];
  if ((unsigned)s >= n || !status_names[s]) return "TGC_ERR_UNKNOWN";
  return status_names[s];
}

const char *tgc_last_error(void) { return err_msg; }
tgc_status tgc_last_status(void) { return err_status; }

void tgc_clear_error(void) {
  err_msg[0] = '\0';
  err_status = TGC_OK;
}

/* Formats into a heap buffer first: an argument may point into err_msg
 * itself (wrapping the previous message), and vsnprintf onto its own
 * input is undefined. */
static void set_error_v(tgc_status s, const char *fmt, va_list ap) {
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  const char *src = msg ? msg : fmt;
  size_t n = strlen(src);
  if (n >= ERR_CAP) n = ERR_CAP - 1;
  memmove(err_msg, src, n);
  err_msg[n] = '\0';
  err_status = s;
  free(msg);
}

tgc_status tgc_set_error(tgc_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_error_v(s, fmt, ap);
  va_end(ap);
  return s;
}

void *tgc_fail(tgc_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_error_v(s, fmt, ap);
  va_end(ap);
  return NULL;
}

void *tgc_fail_in(const char *fn) {
  size_t n = strlen(fn);
  if (!strncmp(err_msg, fn, n) && err_msg[n] == ':') return NULL;
  if (n + 2 >= ERR_CAP) return NULL;
  size_t len = strlen(err_msg);
  if (len + n + 2 >= ERR_CAP) len = ERR_CAP - n - 3;
  memmove(err_msg + n + 2, err_msg, len);
  memcpy(err_msg, fn, n);
  err_msg[n] = ':';
  err_msg[n + 1] = ' ';
  err_msg[n + 2 + len] = '\0';
  return NULL;
}

/* Messages already printed, by 64-bit hash of their text: a collision
 * between two distinct warnings is far less likely than anything else
 * going wrong, and hashes keep the set small. */
static pthread_mutex_t warn_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *warn_seen;
static size_t warn_n, warn_cap;

static bool warn_first_time(uint64_t h) {
  for (size_t i = 0; i < warn_n; i++)
    if (warn_seen[i] == h) return false;
  if (warn_n == warn_cap) {
    warn_cap = warn_cap ? 2 * warn_cap : 16;
    warn_seen = tgc_xrealloc(warn_seen, warn_cap * sizeof *warn_seen);
  }
  warn_seen[warn_n++] = h;
  return true;
}

void tgc_warn_once(const char *fmt, ...) {
  char *msg = NULL;
  va_list ap;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
  va_end(ap);
  const char *text = msg ? msg : fmt;
  pthread_mutex_lock(&warn_mu);
  if (warn_first_time(tgc_hash64(text, strlen(text), 0)))
    fprintf(stderr, "tgc: warning: %s\n", text); /* under the lock: no interleaving */
  pthread_mutex_unlock(&warn_mu);
  free(msg);
}

_Noreturn void tgc_assert_fail(const char *file, int line, const char *cond) {
  fprintf(stderr, "tgc: assertion failed: %s at %s:%d\n", cond, file, line);
  abort();
}

/* ---- dtypes ------------------------------------------------------------- */

static const char *const dtype_names[] = {
#define X(NAME, name, bytes, ctype, cudatype, isfloat, issigned) #name,
#include "tgc_dtypes.def"
#undef X
};
static const unsigned char dtype_sizes[] = {
#define X(NAME, name, bytes, ctype, cudatype, isfloat, issigned) bytes,
#include "tgc_dtypes.def"
#undef X
};
static const bool dtype_floats[] = {
#define X(NAME, name, bytes, ctype, cudatype, isfloat, issigned) isfloat,
#include "tgc_dtypes.def"
#undef X
};

static bool dtype_ok(tgc_dtype dt) { return (unsigned)dt < (unsigned)TGC_NUM_DTYPES; }

const char *tgc_dtype_name(tgc_dtype dt) { return dtype_ok(dt) ? dtype_names[dt] : "?"; }
size_t tgc_dtype_size(tgc_dtype dt) { return dtype_ok(dt) ? dtype_sizes[dt] : 0; }
bool tgc_dtype_is_float(tgc_dtype dt) { return dtype_ok(dt) && dtype_floats[dt]; }

/* ---- aborting allocators ------------------------------------------------- */

static _Noreturn void out_of_memory(size_t n) {
  fprintf(stderr, "tgc: out of memory (allocating %zu bytes)\n", n);
  abort();
}

/* Zero-byte requests get one byte so that NULL always means failure. */
void *tgc_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) out_of_memory(n);
  return p;
}

void *tgc_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) out_of_memory(n * size);
  return p;
}

void *tgc_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) out_of_memory(n);
  return q;
}

char *tgc_xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(tgc_xmalloc(n), s, n);
}

/* ---- arena ----------------------------------------------------------------
 * A list of calloc'd chunks; the head is the one being bumped.  Requests
 * above a quarter chunk get a chunk of their own, linked behind the head,
 * so one big allocation does not waste the rest of the current chunk. */

#define ARENA_CHUNK (64 * 1024)
#define ARENA_ALIGN 16

typedef struct chunk {
  struct chunk *next;
  size_t used, cap; /* bytes of data[] */
  alignas(ARENA_ALIGN) unsigned char data[];
} chunk;

struct tgc_arena {
  chunk *head;
};

static chunk *chunk_new(size_t cap) {
  if (cap > SIZE_MAX - sizeof(chunk)) out_of_memory(cap);
  chunk *c = calloc(1, sizeof(chunk) + cap);
  if (!c) out_of_memory(sizeof(chunk) + cap);
  c->cap = cap;
  return c;
}

tgc_arena *tgc_arena_new(void) { return tgc_xcalloc(1, sizeof(tgc_arena)); }

void tgc_arena_free(tgc_arena *a) {
  if (!a) return;
  for (chunk *c = a->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(a);
}

void *tgc_arena_alloc(tgc_arena *a, size_t n) {
  if (n > SIZE_MAX - ARENA_ALIGN) out_of_memory(n);
  n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (n == 0) n = ARENA_ALIGN; /* distinct pointers for distinct calls */
  if (n > ARENA_CHUNK / 4) {
    chunk *big = chunk_new(n);
    big->used = n;
    if (a->head) {
      big->next = a->head->next;
      a->head->next = big;
    } else {
      a->head = big;
    }
    return big->data;
  }
  if (!a->head || a->head->cap - a->head->used < n) {
    chunk *c = chunk_new(ARENA_CHUNK);
    c->next = a->head;
    a->head = c;
  }
  void *p = a->head->data + a->head->used;
  a->head->used += n;
  return p;
}

void *tgc_arena_dup(tgc_arena *a, const void *p, size_t n) {
  void *q = tgc_arena_alloc(a, n);
  if (n) memcpy(q, p, n);
  return q;
}

/* ---- hashing --------------------------------------------------------------- */

uint64_t tgc_hash64(const void *p, size_t n, uint64_t seed) {
  return XXH3_64bits_withSeed(p, n, seed);
}

tgc_key tgc_key_of(const void *p, size_t n) {
  XXH128_hash_t h = XXH3_128bits(p, n);
  return (tgc_key){.lo = h.low64, .hi = h.high64};
}

/* The XXH3 state must be 64-byte aligned, hence aligned_alloc. */
struct tgc_hasher {
  XXH3_state_t st;
};

tgc_hasher *tgc_hasher_new(void) {
  tgc_hasher *h = aligned_alloc(64, sizeof *h);
  if (!h) out_of_memory(sizeof *h);
  XXH3_INITSTATE(&h->st);
  XXH3_128bits_reset(&h->st);
  return h;
}

void tgc_hasher_feed(tgc_hasher *h, const void *p, size_t n) {
  if (n) XXH3_128bits_update(&h->st, p, n);
}

void tgc_hasher_feed_str(tgc_hasher *h, const char *s) {
  if (!s) s = "";
  tgc_hasher_feed(h, s, strlen(s) + 1);
}

tgc_key tgc_hasher_finish(tgc_hasher *h) {
  XXH128_hash_t d = XXH3_128bits_digest(&h->st);
  free(h);
  return (tgc_key){.lo = d.low64, .hi = d.high64};
}

void tgc_key_hex(tgc_key k, char out[33]) {
  snprintf(out, 33, "%016llx%016llx", (unsigned long long)k.hi, (unsigned long long)k.lo);
}

/* ---- growable string --------------------------------------------------------
 * b->s is always NUL-terminated once anything was appended. */

static void str_reserve(tgc_str *b, size_t extra) {
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap *= 2;
  b->s = tgc_xrealloc(b->s, cap);
  b->cap = cap;
}

void tgc_str_cat(tgc_str *b, const char *s) {
  size_t n = strlen(s);
  str_reserve(b, n);
  memcpy(b->s + b->len, s, n + 1);
  b->len += n;
}

void tgc_str_fmt(tgc_str *b, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  TGC_ASSERT(n >= 0);
  str_reserve(b, (size_t)n);
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  b->len += (size_t)n;
}

void tgc_str_free(tgc_str *b) {
  if (!b) return;
  free(b->s);
  *b = (tgc_str){0};
}

/* ---- environment and time ---------------------------------------------------- */

const char *tgc_env_str(const char *name, const char *dflt) {
  const char *v = getenv(name);
  return v && *v ? v : dflt;
}

long tgc_env_int(const char *name, long dflt) {
  const char *v = tgc_env_str(name, NULL);
  if (!v) return dflt;
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || end == v || *end) return dflt;
  return x;
}

double tgc_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool tgc_write_all(int fd, const void *buf, size_t n) {
  for (size_t done = 0; done < n;) {
    ssize_t w = write(fd, (const char *)buf + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return false;
    done += (size_t)w;
  }
  return true;
}

/* ---- numbers -------------------------------------------------------------- */

uint64_t tgc_splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float float_of(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* Rounds to nearest even: adds just under half a unit of the kept lsb's
 * weight, plus the kept lsb, and truncates `shift` bits. */
static uint32_t round_shift(uint32_t m, int shift) {
  return (m + (1u << (shift - 1)) - 1 + ((m >> shift) & 1)) >> shift;
}

uint16_t tgc_f32_to_f16(float f) {
  uint32_t u = bits_of(f), a = u & 0x7fffffffu;
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
  if (a > 0x7f800000u) return sign | 0x7e00 | (uint16_t)((a >> 13) & 0x3ff); /* NaN stays NaN */
  if (a >= 0x477ff000u) return sign | 0x7c00;        /* >= 65520 (the tie above 65504): inf */
  if (a >= 0x38800000u)                               /* >= 2^-14: normal; rebias 127 -> 15 */
    return sign | (uint16_t)round_shift(a - 0x38000000u, 13); /* a carry moves up the exponent */
  if (a <= 0x33000000u) return sign;                 /* <= 2^-25 (a tie to zero): zero */
  /* subnormal: the value in units of 2^-24 is m * 2^(e - 126) */
  uint32_t m = (a & 0x7fffffu) | 0x800000u;
  int e = (int)(a >> 23);
  return sign | (uint16_t)round_shift(m, 126 - e);
}

float tgc_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 31, m = h & 0x3ff;
  if (e == 31) return float_of(sign | 0x7f800000u | m << 13);
  if (e) return float_of(sign | (e + 112) << 23 | m << 13);
  float v = (float)m * 0x1p-24f; /* subnormal or zero: exact */
  return sign ? -v : v;
}

uint16_t tgc_f32_to_bf16(float f) {
  uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(u >> 16 | 0x40); /* quiet NaN */
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

float tgc_bf16_to_f32(uint16_t h) { return float_of((uint32_t)h << 16); }
