/* compare.cpp - the C interface of the comparison module (tgc_compare.h).
 *
 * A run is: check the arguments, find libtorch's device for tgc's (the
 * CPU, or CUDA: tgc's buffers are device memory of the primary context
 * that libtorch's runtime shares), translate the graph into a program
 * (translate.cpp), make it static where it will be captured as a CUDA
 * graph (static.cpp), wrap the program's leaves (tgc buffers, zero copy;
 * f16 copies for a half program), and run it: eagerly (eager.cpp), as a
 * compiled TorchScript module cached by the program's key (script.cpp, the
 * CPU's torch-opt), as a CUDA graph cached by the key (cuda.cpp, CUDA's
 * torch-opt), or as an AOTInductor package (aoti.cpp, torch-aoti); then
 * copy the outputs out as f32.  Nothing throws across the
 * C boundary: libtorch's errors and the module's own become a message in
 * err and a return of -1.
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
  bool compile;     /* torch-opt: TorchScript (CPU) or a CUDA graph; off with TGC_CMP_NO_COMPILE */
  bool half;        /* torch-opt on CUDA computes f32 in f16; off with TGC_CMP_NO_HALF */
  bool make_static; /* TGC_CMP_STATIC: every program made static, also on the CPU */
  bool half_static; /* TGC_CMP_STATIC=half: and in bf16 (the CUDA form's f16, tested on the CPU) */
  std::unordered_map<std::string, std::shared_ptr<tgc_cmp_script>> scripts; /* TORCH_OPT, by program key */
  std::unordered_map<std::string, std::shared_ptr<tgc_cmp_aoti>> packages;  /* TORCH_AOTI, by program key */
#ifdef TGC_CMP_CUDA
  std::unordered_map<std::string, std::shared_ptr<tgc_cmp_graph>> graphs; /* TORCH_OPT on CUDA, by key */
#endif
  /* f16 copies of f32 leaves (half programs), by tgc buffer: made when a
   * buffer is first read and kept, so a KV cache lives on in its copy. */
  std::unordered_map<const void *, at::Tensor> shadows;
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

bool env_on(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
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

/* The program's leaves as tensors on dev, each in its LEAF's dtype: an f32
 * buffer a half program reads as f16 is its (kept) f16 copy. */
std::vector<at::Tensor> leaves_of(tgc_cmp *c, const tgc_cmp_prog &p, const int64_t *vars, at::Device dev) {
  std::vector<at::Tensor> leaves(p.leaves.size());
  for (const tgc_cmp_ins &i : p.ins) {
    if (i.kind != TGC_CMP_LEAF) continue;
    const tgc_uop *u = p.leaves[(size_t)i.ints[0]];
    at::Tensor t = tgc_cmp_leaf(u, vars, p.is_static, dev);
    if (t.scalar_type() != tgc_cmp_compute(i.dt)) {
      at::Tensor &copy = c->shadows[u->buf->ptr];
      if (!copy.defined() || copy.sizes() != t.sizes()) copy = t.to(tgc_cmp_compute(i.dt));
      t = copy;
    }
    leaves[(size_t)i.ints[0]] = t;
  }
  return leaves;
}

std::vector<at::Tensor> execute(tgc_cmp *c, tgc_ctx *ctx, tgc_cmp_prog &p, at::Device dev) {
  const int64_t *vars = ctx->var_values;
  bool opt = c->mode == TGC_CMP_TORCH_OPT, aoti = c->mode == TGC_CMP_TORCH_AOTI;
  if ((opt && dev.is_cuda()) || aoti || c->make_static) {
    double t0 = now();
    tgc_dtype half = c->half_static ? TGC_BF16 : (opt || aoti) && dev.is_cuda() && c->half ? TGC_F16 : TGC_F32;
    p = tgc_cmp_static(p, ctx, half);
    c->stats.translate_s += now() - t0;
  }
  std::vector<at::Tensor> leaves = leaves_of(c, p, vars, dev);
  /* the variables as a tensor on dev, for a static program run here (a
   * CUDA graph keeps its own, updated in place: no copy per step for it) */
  auto vars_tensor = [&] {
    return p.is_static ? at::from_blob(const_cast<int64_t *>(vars), {TGC_MAX_VARS}, at::kLong).to(dev) : at::Tensor();
  };
  c->stats.compile_s = 0;
  if (c->mode == TGC_CMP_TORCH_BASE || !c->compile) return tgc_cmp_eager(p, leaves, vars, vars_tensor(), dev);
  double t0 = now();
  std::string key = tgc_cmp_key(p);
  c->stats.translate_s += now() - t0;
  if (aoti) {
    std::shared_ptr<tgc_cmp_aoti> &a = c->packages[key];
    if (!a) {
      t0 = now();
      bool compiled = false;
      a = tgc_cmp_aoti_new(p, leaves, dev, &compiled);
      c->stats.compile_s = now() - t0;
      c->stats.compiles++;
    }
    return tgc_cmp_aoti_run(*a, leaves, vars_tensor());
  }
#ifdef TGC_CMP_CUDA
  if (dev.is_cuda()) {
    std::shared_ptr<tgc_cmp_graph> &g = c->graphs[key];
    if (!g || !tgc_cmp_graph_run(*g, leaves, vars)) {
      t0 = now(); /* a new program, or one whose weights moved: captured (again) */
      g = tgc_cmp_graph_new(p, leaves, vars, dev);
      c->stats.compile_s = now() - t0;
      c->stats.compiles++;
      if (!tgc_cmp_graph_run(*g, leaves, vars))
        throw tgc_cmp_error("a CUDA graph does not replay on the leaves it was captured with");
    }
    c->stats.graph_replays++;
    return tgc_cmp_graph_outs(*g);
  }
#endif
  auto it = c->scripts.find(key);
  if (it == c->scripts.end()) {
    t0 = now();
    if (getenv("TGC_CMP_DUMP")) fprintf(stderr, "tgc_cmp: TorchScript of a new graph:\n%s", tgc_cmp_script_source(p).c_str());
    it = c->scripts.emplace(std::move(key), tgc_cmp_script_new(p)).first;
    c->stats.compile_s = now() - t0;
    c->stats.compiles++;
  }
  return tgc_cmp_script_run(*it->second, leaves, vars);
}

/* Result i as f32 on the host: a static program's output cut to its size
 * under the current bindings first. */
at::Tensor host_result(const tgc_cmp_prog &p, size_t i, at::Tensor t, const int64_t *vars) {
  if (p.is_static)
    for (size_t a = 0; a < p.out_shapes[i].size(); a++)
      if (tgc_sym_is(p.out_shapes[i][a])) t = t.narrow((int64_t)a, 0, tgc_sym_eval(p.out_shapes[i][a], vars));
  return t.to(at::kFloat).contiguous().cpu();
}

int run(tgc_cmp *c, tgc_ctx *ctx, int n, tgc_tensor *const *outs, float *const *host, at::Device dev, char *err,
        size_t errcap) {
  double t0 = now();
  c10::InferenceMode inference;
  tgc_cmp_prog p = tgc_cmp_translate(ctx, n, outs);
  c->stats.translate_s = now() - t0;
  const int64_t *vars = ctx->var_values;
  std::vector<at::Tensor> r = execute(c, ctx, p, dev);
  for (int i = 0; i < n; i++) {
    at::Tensor t = host_result(p, (size_t)i, r[(size_t)i], vars);
    if (t.numel() != numel_now(outs[i], vars))
      return fail(err, errcap, "tgc_cmp_run: output %d has %lld elements in libtorch, %lld in tgc", i,
                  (long long)t.numel(), (long long)numel_now(outs[i], vars));
    memcpy(host[i], t.data_ptr<float>(), sizeof(float) * (size_t)t.numel());
  }
  double t1 = now(); /* everything but the walk, the key and a compile was libtorch's */
  c->stats.exec_s = t1 - t0 - c->stats.translate_s - c->stats.compile_s;
  if (!c->stats.runs) c->stats.first_s = t1 - t0;
  c->stats.runs++;
  c->stats.static_runs += p.is_static;
  return 0;
}

/* The libtorch device of tgc's context: the CPU, or CUDA where this
 * libtorch has it (tgc's CUDA buffers are device memory of the primary
 * context, which libtorch's runtime shares). */
int device_of(tgc_ctx *ctx, at::Device *dev, char *err, size_t errcap) {
  const char *name = ctx->dev->name;
  if (strcmp(name, "cpu") == 0) {
    *dev = at::Device(at::kCPU);
    return 0;
  }
  if (strcmp(name, "cuda") != 0)
    return fail(err, errcap, "tgc_cmp_run: the context's device is %s; libtorch can read tgc's buffers on cpu and cuda",
                name);
  if (!at::hasCUDA())
    return fail(err, errcap,
                "tgc_cmp_run: the context's device is cuda, and libtorch %s has no CUDA here (Debian's libtorch is "
                "CPU-only: build the module against a CUDA libtorch, make compare LIBTORCH=<folder>)",
                TORCH_VERSION);
  /* tgc's kernels (the weights' upload, the token) finish before libtorch reads */
  if (ctx->dev->sync && ctx->dev->sync(ctx->dev) != TGC_OK)
    return fail(err, errcap, "tgc_cmp_run: synchronizing tgc's CUDA device: %s", tgc_last_error());
  *dev = at::Device(at::kCUDA, 0);
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
  snprintf(buf, sizeof buf, "libtorch %s, %d intra-op threads, %s, %s", TORCH_VERSION, at::get_num_threads(),
           config ? config() : "BLAS: not OpenBLAS (libtorch's own or reference)",
           at::hasCUDA() ? "CUDA" : "no CUDA");
  return buf;
}

tgc_cmp *tgc_cmp_new(tgc_cmp_mode mode, int threads, char *err, size_t errcap) {
  if (mode != TGC_CMP_TORCH_BASE && mode != TGC_CMP_TORCH_OPT && mode != TGC_CMP_TORCH_AOTI) {
    fail(err, errcap, "tgc_cmp_new: unknown mode %d", (int)mode);
    return nullptr;
  }
  try {
    if (mode == TGC_CMP_TORCH_AOTI) {
      std::string why = tgc_cmp_aoti_unavailable();
      if (!why.empty()) {
        fail(err, errcap, "tgc_cmp_new: AOTInductor: %s", why.c_str());
        return nullptr;
      }
    }
    set_threads(threads);
    tgc_cmp *c = new tgc_cmp();
    c->mode = mode;
    c->threads = threads;
    c->compile = !env_on("TGC_CMP_NO_COMPILE"); /* tgc-bench --pytorch-no-compile */
    c->half = !env_on("TGC_CMP_NO_HALF");       /* tgc-bench --pytorch-no-half */
    c->make_static = env_on("TGC_CMP_STATIC");
    c->half_static = c->make_static && !strcmp(getenv("TGC_CMP_STATIC"), "half");
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
  try {
    at::Device dev(at::kCPU);
    if (device_of(ctx, &dev, err, errcap) < 0) return -1;
    return run(c, ctx, n, outs, host, dev, err, errcap);
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
