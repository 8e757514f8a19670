/* compare.cpp - the C interface of the comparison module (tgc_compare.h).
 *
 * A run is: check the arguments, translate the graph into a program
 * (translate.cpp), wrap the program's leaves (tgc buffers, zero copy),
 * run it eagerly (eager.cpp) or as a compiled TorchScript module cached by
 * the program's key (script.cpp), and copy the outputs out as f32.
 * Nothing throws across the C boundary: libtorch's errors and the
 * module's own become a message in err and a return of -1.
 *
 * The module reads tgc's graph through tgc_internal.h and calls a few of
 * libtgc's functions (symbolic sizes, tgc_uop_current); the Makefile links
 * its own hidden copy of libtgc.a, because the programs that dlopen it
 * (tests, tgc-bench) link libtgc statically and export nothing.  Those
 * functions read the graph; none keeps state.
 */
#include "cmp_aten.h"

#include <ATen/Parallel.h>
#include <torch/version.h>

#include <dlfcn.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <unordered_map>

struct tgc_cmp {
  tgc_cmp_mode mode;
  int threads;
  std::unordered_map<std::string, std::shared_ptr<tgc_cmp_script>> scripts; /* TORCH_OPT, by program key */
  tgc_cmp_stats stats;
};

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int fail(char *err, size_t errcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int fail(char *err, size_t errcap, const char *fmt, ...) {
  if (err && errcap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* OpenBLAS, when libtorch's BLAS is OpenBLAS: it has a thread pool of its
 * own that at::set_num_threads does not size.  NULL elsewhere. */
void *openblas(const char *fn) {
  void *lib = dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD);
  return lib ? dlsym(lib, fn) : nullptr;
}

void set_threads(int threads) {
  if (threads > 0) {
    at::set_num_threads(threads);
    if (auto set = (void (*)(int))openblas("openblas_set_num_threads")) set(threads);
  }
  if (at::get_num_interop_threads() != 1) {
    try { /* refused once inter-op work has started in this process */
      at::set_num_interop_threads(1);
    } catch (const std::exception &) {
    }
  }
}

/* The outputs' shapes under the current bindings. */
int64_t numel_now(const tgc_uop *u, const int64_t *vars) {
  int64_t n = 1;
  for (int i = 0; i < u->ndim; i++) n *= tgc_sym_eval(u->shape[i], vars);
  return n;
}

std::vector<at::Tensor> execute(tgc_cmp *c, const tgc_cmp_prog &p, const int64_t *vars) {
  std::vector<at::Tensor> leaves;
  leaves.reserve(p.leaves.size());
  for (const tgc_uop *u : p.leaves) leaves.push_back(tgc_cmp_leaf(u, vars));
  if (c->mode == TGC_CMP_TORCH_BASE) return tgc_cmp_eager(p, leaves, vars);
  double t0 = now();
  std::string key = tgc_cmp_key(p);
  c->stats.translate_s += now() - t0;
  auto it = c->scripts.find(key);
  c->stats.compile_s = 0;
  if (it == c->scripts.end()) {
    t0 = now();
    if (getenv("TGC_CMP_DUMP")) fprintf(stderr, "tgc_cmp: TorchScript of a new graph:\n%s", tgc_cmp_script_source(p).c_str());
    it = c->scripts.emplace(std::move(key), tgc_cmp_script_new(p)).first;
    c->stats.compile_s = now() - t0;
    c->stats.compiles++;
  }
  return tgc_cmp_script_run(*it->second, leaves, vars);
}

int run(tgc_cmp *c, tgc_ctx *ctx, int n, tgc_tensor *const *outs, float *const *host, char *err, size_t errcap) {
  double t0 = now();
  c10::InferenceMode inference;
  tgc_cmp_prog p = tgc_cmp_translate(ctx, n, outs);
  c->stats.translate_s = now() - t0;
  const int64_t *vars = ctx->var_values;
  std::vector<at::Tensor> r = execute(c, p, vars);
  for (int i = 0; i < n; i++) {
    at::Tensor t = r[(size_t)i].to(at::kFloat).contiguous();
    if (t.numel() != numel_now(outs[i], vars))
      return fail(err, errcap, "tgc_cmp_run: output %d has %lld elements in libtorch, %lld in tgc", i,
                  (long long)t.numel(), (long long)numel_now(outs[i], vars));
    memcpy(host[i], t.data_ptr<float>(), sizeof(float) * (size_t)t.numel());
  }
  double t1 = now(); /* everything but the walk, the key and a compile was libtorch's */
  c->stats.exec_s = t1 - t0 - c->stats.translate_s - c->stats.compile_s;
  if (!c->stats.runs) c->stats.first_s = t1 - t0;
  c->stats.runs++;
  return 0;
}

} // namespace

/* The C interface is all the library exports (-fvisibility=hidden). */
#pragma GCC visibility push(default)
extern "C" {

int tgc_cmp_abi(void) { return TGC_CMP_ABI; }

const char *tgc_cmp_describe(void) {
  static char buf[256];
  auto config = (const char *(*)(void))openblas("openblas_get_config");
  snprintf(buf, sizeof buf, "libtorch %s, %d intra-op threads, %s", TORCH_VERSION, at::get_num_threads(),
           config ? config() : "BLAS: not OpenBLAS (libtorch's own or reference)");
  return buf;
}

tgc_cmp *tgc_cmp_new(tgc_cmp_mode mode, int threads, char *err, size_t errcap) {
  if (mode != TGC_CMP_TORCH_BASE && mode != TGC_CMP_TORCH_OPT) {
    fail(err, errcap, "tgc_cmp_new: unknown mode %d", (int)mode);
    return nullptr;
  }
  try {
    set_threads(threads);
    tgc_cmp *c = new tgc_cmp();
    /* tgc-bench --pytorch-no-compile: torch-opt runs eagerly */
    const char *nc = getenv("TGC_CMP_NO_COMPILE");
    c->mode = mode == TGC_CMP_TORCH_OPT && nc && *nc && strcmp(nc, "0") ? TGC_CMP_TORCH_BASE : mode;
    c->threads = threads;
    return c;
  } catch (const std::exception &e) {
    fail(err, errcap, "tgc_cmp_new: %s", e.what());
    return nullptr;
  }
}

void tgc_cmp_free(tgc_cmp *c) { delete c; }

int tgc_cmp_run(tgc_cmp *c, tgc_ctx *ctx, int n, tgc_tensor *const *outs, float *const *host, char *err,
                size_t errcap) {
  if (!c || !ctx || n < 1 || !outs || !host)
    return fail(err, errcap, "tgc_cmp_run: needs a runner, a context and n >= 1 outputs with host memory (got %s)",
                !c ? "no runner" : !ctx ? "no context" : n < 1 ? "n < 1" : !outs ? "outs NULL" : "host NULL");
  for (int i = 0; i < n; i++)
    if (!outs[i] || !host[i]) return fail(err, errcap, "tgc_cmp_run: %s %d is NULL", !outs[i] ? "output" : "host buffer", i);
  if (strcmp(ctx->dev->name, "cpu") != 0)
    return fail(err, errcap,
                "tgc_cmp_run: the context's device is %s; libtorch reads tgc's buffers in place "
                "(torch::from_blob on host memory), which needs TGC_DEVICE=cpu",
                ctx->dev->name);
  try {
    return run(c, ctx, n, outs, host, err, errcap);
  } catch (const c10::Error &e) {
    return fail(err, errcap, "tgc_cmp_run: libtorch: %s", e.what_without_backtrace());
  } catch (const std::exception &e) {
    return fail(err, errcap, "tgc_cmp_run: %s", e.what());
  }
}

int tgc_cmp_get_stats(const tgc_cmp *c, tgc_cmp_stats *out) {
  if (!c || !out) return -1;
  *out = c->stats;
  return 0;
}

} /* extern "C" */
#pragma GCC visibility pop
