/* dl.c - what the loaders of dlopen'ed libraries share: binding a table
 * of symbols into a struct of function pointers, and a load done once per
 * process whose failure every later caller sees again.
 *
 * tgc links neither the CUDA driver (cuda.c) nor NVRTC (nvrtc.c), so that
 * it builds and runs where CUDA is absent and can say which library is
 * missing; each loader keeps only its names and its messages, and these
 * helpers do the rest.
 */
#include "tgc_internal.h"

#include <dlfcn.h>

_Static_assert(sizeof(void (*)(void)) == sizeof(void *), "dlsym results become function pointers");

void tgc_dl_fail(tgc_dl_lib *st, tgc_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->err, sizeof st->err, fmt, ap);
  va_end(ap);
  st->status = s;
}

const char *tgc_dl_bind(void *lib, void *api, const tgc_dl_sym *syms, size_t n) {
  for (size_t i = 0; i < n; i++) {
    void *p = dlsym(lib, syms[i].name);
    if (!p && syms[i].alt) p = dlsym(lib, syms[i].alt);
    if (!p) return syms[i].name;
    memcpy((char *)api + syms[i].off, &p, sizeof p);
  }
  return NULL;
}

bool tgc_dl_ready(pthread_once_t *once, void (*load)(void), const tgc_dl_lib *st) {
  pthread_once(once, load);
  if (!st->ok) tgc_set_error(st->status, "%s", st->err);
  return st->ok;
}
