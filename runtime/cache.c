/* cache.c - the on-disk blob cache that lets a second run skip compiling.
 *
 * One file per entry, <dir>/<kind>/<32-hex key>.bin, holding a header and
 * the payload:
 *
 *   offset  size        field
 *   0       8           magic "TGCCACHE"
 *   8       4           format version (CACHE_VERSION)
 *   12      4           kind length k
 *   16      pad8(k)     kind bytes, zero-padded to a multiple of 8
 *   ..      16          key: lo, then hi
 *   ..      8           payload length
 *   ..      8           XXH3-64 of the payload (seed 0)
 *
 * Integers are little-endian whatever the host, so a directory shared
 * between machines never misreads a header.  Several processes may share
 * the directory: entries are written under a unique temporary name and
 * rename()d into place, so a reader sees a whole old file or a whole new
 * one.  A file that fails any check is deleted (only if it is still the
 * file we read) and reported as missing, so it is recompiled, never loaded.
 * fsync is skipped on purpose: a torn file after a crash fails the payload
 * hash and is simply recompiled.
 */
#include "tgc_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAGIC "TGCCACHE"
#define CACHE_VERSION 1u
#define KIND_MAX 32
#define HEADER_MAX (16 + KIND_MAX + 32)

const char *tgc_cache_dir(char *buf, size_t cap) {
  const char *on = tgc_env_str("TGC_CACHE", "1");
  if (strcmp(on, "0") == 0) return NULL;
  const char *dir = tgc_env_str("TGC_CACHE_DIR", NULL), *xdg, *home;
  int n;
  if (dir) n = snprintf(buf, cap, "%s", dir);
  else if ((xdg = tgc_env_str("XDG_CACHE_HOME", NULL))) n = snprintf(buf, cap, "%s/tgc", xdg);
  else if ((home = tgc_env_str("HOME", NULL))) n = snprintf(buf, cap, "%s/.cache/tgc", home);
  else return NULL; /* nowhere sensible to write: run without a disk cache */
  return n >= 0 && (size_t)n < cap ? buf : NULL;
}

/* ---- header encoding ---------------------------------------------------- */

static void put_le(unsigned char *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* Kinds are short fixed words chosen by tgc ("cpu", "cuda"); anything
 * else is a bug in the caller. */
static size_t kind_len(const char *kind) {
  TGC_ASSERT(kind && *kind);
  size_t k = strlen(kind);
  TGC_ASSERT(k <= KIND_MAX && !strchr(kind, '/'));
  return k;
}

/* Writes the part of the header fixed by (kind, key) into h and returns
 * its size; the length and hash follow it. */
static size_t header_prefix(unsigned char *h, const char *kind, tgc_key key) {
  size_t k = kind_len(kind), padded = (k + 7) & ~(size_t)7;
  memset(h, 0, HEADER_MAX);
  memcpy(h, CACHE_MAGIC, 8);
  put_le(h + 8, CACHE_VERSION, 4);
  put_le(h + 12, k, 4);
  memcpy(h + 16, kind, k);
  put_le(h + 16 + padded, key.lo, 8);
  put_le(h + 24 + padded, key.hi, 8);
  return 32 + padded;
}

static bool entry_path(char *path, size_t cap, char *dir, size_t dcap, const char *kind,
                       tgc_key key) {
  if (!tgc_cache_dir(dir, dcap)) return false;
  char hex[33];
  tgc_key_hex(key, hex);
  int n = snprintf(path, cap, "%s/%s/%s.bin", dir, kind, hex);
  return n >= 0 && (size_t)n < cap;
}

/* ---- reading ---------------------------------------------------------------- */

static bool read_all(int fd, void *buf, size_t n) {
  for (size_t done = 0; done < n;) {
    ssize_t r = read(fd, (char *)buf + done, n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += (size_t)r;
  }
  return true;
}

/* Checks a whole file image against the expected header; on success
 * *hdr is the header size (the payload follows it). */
static bool entry_valid(const unsigned char *img, size_t size, const char *kind, tgc_key key,
                        size_t *hdr) {
  unsigned char want[HEADER_MAX];
  size_t pre = header_prefix(want, kind, key);
  *hdr = pre + 16;
  if (size < *hdr || memcmp(img, want, pre) != 0) return false;
  uint64_t len = get_le(img + pre, 8), hash = get_le(img + pre + 8, 8);
  return len == size - *hdr && hash == tgc_hash64(img + *hdr, (size_t)len, 0);
}

/* Deletes a bad entry unless another process has replaced it meanwhile. */
static void drop_entry(const char *path, const struct stat *read_st) {
  struct stat now;
  if (stat(path, &now) == 0 && now.st_dev == read_st->st_dev && now.st_ino == read_st->st_ino)
    unlink(path);
}

void *tgc_disk_get(const char *kind, tgc_key key, size_t *len) {
  char dir[4096], path[4096 + 128];
  TGC_ASSERT(len);
  kind_len(kind); /* checks the kind even when there is no file */
  if (!entry_path(path, sizeof path, dir, sizeof dir, kind, key)) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  unsigned char *img = NULL;
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (ok) img = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
  bool read_ok = ok && img && read_all(fd, img, (size_t)st.st_size);
  close(fd);
  if (!read_ok) { /* an I/O problem, not proof of a bad file: leave it */
    free(img);
    return NULL;
  }
  size_t hdr;
  if (!entry_valid(img, (size_t)st.st_size, kind, key, &hdr)) {
    free(img);
    drop_entry(path, &st);
    return NULL;
  }
  *len = (size_t)st.st_size - hdr;
  memmove(img, img + hdr, *len);
  return img;
}

/* ---- writing ------------------------------------------------------------------ */

/* mkdir -p with mode 0755; an existing directory is fine. */
static bool make_dirs(const char *dir) {
  char p[4096];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof p) {
    errno = ENAMETOOLONG;
    return false;
  }
  memcpy(p, dir, n + 1);
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s != '\0') continue;
    char c = *s;
    *s = '\0';
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return false;
    *s = c;
    if (c == '\0') break;
  }
  struct stat st;
  if (stat(p, &st) != 0) return false;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return false;
  }
  return true;
}


/* A name no other writer uses: pid, plus a per-process counter and the
 * clock, because threads of one process write too. */
static int open_temp(char *tmp, size_t cap, const char *path) {
  static _Atomic unsigned long counter;
  for (int attempt = 0; attempt < 100; attempt++) {
    unsigned long c = counter++;
    uint64_t seed[2] = {(uint64_t)(tgc_now() * 1e9), c};
    unsigned r = (unsigned)tgc_hash64(seed, sizeof seed, (uint64_t)getpid());
    int n = snprintf(tmp, cap, "%s.tmp.%ld.%08x", path, (long)getpid(), r);
    if (n < 0 || (size_t)n >= cap) {
      errno = ENAMETOOLONG;
      return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1;
}

/* Writes header and payload and closes fd; false with errno set on failure. */
static bool write_entry(int fd, const char *kind, tgc_key key, const void *data, size_t len) {
  unsigned char h[HEADER_MAX];
  size_t pre = header_prefix(h, kind, key);
  put_le(h + pre, len, 8);
  put_le(h + pre + 8, tgc_hash64(data, len, 0), 8);
  bool ok = tgc_write_all(fd, h, pre + 16) && tgc_write_all(fd, data, len);
  int saved = errno;
  if (close(fd) != 0 && ok) return false;
  errno = saved;
  return ok;
}

tgc_status tgc_disk_put(const char *kind, tgc_key key, const void *data, size_t len) {
  char dir[4096], path[4096 + 128], sub[4096 + 64], tmp[4096 + 192];
  if (!tgc_cache_dir(dir, sizeof dir)) return TGC_OK; /* cache off: nothing to do */
  kind_len(kind);
  snprintf(sub, sizeof sub, "%s/%s", dir, kind);
  int fd = -1;
  bool ok = entry_path(path, sizeof path, dir, sizeof dir, kind, key) && make_dirs(sub) &&
            (fd = open_temp(tmp, sizeof tmp, path)) >= 0 &&
            write_entry(fd, kind, key, data, len) && rename(tmp, path) == 0;
  if (ok) return TGC_OK;
  int err = errno;
  if (fd >= 0) unlink(tmp);
  tgc_warn_once("cannot write the kernel cache in %s: %s; going on without it", dir,
                strerror(err));
  return tgc_set_error(TGC_ERR_IO, "cannot write the kernel cache entry %s: %s", path,
                       strerror(err));
}
