/* test_gpu.c - what the GPU code generator produces, read from the kernel
 * itself: a matvec must carry a grouped reduce (threads of a block
 * combining partial sums in local memory, with barriers) and 16-byte
 * loads; an elementwise kernel must get a block of many threads.  The
 * checks look at the linear IR and at the rendered source's constructs,
 * not at one exact file, so a change of names or order does not break
 * them but losing the grouped reduce does.  Kernels are also compiled by
 * NVRTC for sm_80 and sm_90 where NVRTC can be loaded. */
#include "tgc_internal.h"

#include <criterion/criterion.h>

typedef struct gen {
  tgc_linprog *lp;
  char *src;
} gen;

/* Schedules t (one kernel expected) and generates it for lang. */
static gen generate(tgc_ctx *ctx, tgc_tensor *t, const tgc_lang *lang) {
  tgc_schedule *s = tgc_schedule_new(ctx, 1, &t);
  cr_assert_not_null(s, "%s", tgc_last_error());
  cr_assert_eq(s->nkernels, 1);
  tgc_kshape ks;
  cr_assert(tgc_kshape_init(&ks, s->kernels[0].ast));
  tgc_opt_heuristic(&ks, lang);
  gen g;
  g.lp = tgc_lower(s->kernels[0].ast, &ks, lang);
  g.src = tgc_render(lang, g.lp);
  tgc_kshape_free(&ks);
  tgc_schedule_free(s);
  return g;
}

static void gen_free(gen g) {
  tgc_linprog_free(g.lp);
  free(g.src);
}

static int count_op(const tgc_linprog *p, tgc_op op) {
  int n = 0;
  for (int i = 0; i < p->n; i++) n += p->ins[i].op == op;
  return n;
}

/* Widest load from a global buffer, in bytes. */
static int widest_global_load(const tgc_linprog *p) {
  int best = 0;
  for (int i = 0; i < p->n; i++) {
    const tgc_lin *l = &p->ins[i];
    if (l->op != TGC_OP_LOAD || p->ins[l->src[0]].op != TGC_OP_DEFINE_GLOBAL) continue;
    int bytes = l->vec * tgc_dtypes[l->dtype].bytes;
    best = bytes > best ? bytes : best;
  }
  return best;
}

static void nvrtc_compiles(const char *src) {
  const char *archs[] = {"sm_80", "sm_90"};
  if (!tgc_nvrtc_version()) {
    cr_log_warn("skipped: NVRTC not found");
    return;
  }
  for (int a = 0; a < 2; a++) {
    void *cubin = NULL;
    size_t len = 0;
    tgc_status st = tgc_nvrtc_compile(src, archs[a], &cubin, &len);
    cr_expect_eq(st, TGC_OK, "NVRTC %s: %s\n%s", archs[a], tgc_last_error(), src);
    cr_expect_gt(len, 0);
    free(cubin);
  }
}

/* y = x @ W^T with W [N, K] row-major: the LLaMA/GGUF matvec. */
static tgc_tensor *matvec(tgc_ctx *ctx, tgc_dtype dt, int64_t n, int64_t k) {
  int64_t ws[2] = {n, k}, xs[2] = {1, k};
  tgc_tensor *w = tgc_empty(ctx, dt, 2, ws), *x = tgc_empty(ctx, dt, 2, xs);
  return tgc_matmul(x, tgc_transpose(w, 0, 1));
}

static void check_matvec(tgc_dtype dt, const tgc_lang *lang, const char *local_kw,
                         const char *barrier_kw) {
  tgc_ctx *ctx = tgc_ctx_new();
  cr_assert_not_null(ctx);
  gen g = generate(ctx, matvec(ctx, dt, 256, dt == TGC_F16 ? 8192 : 4096), lang);
  cr_expect(strstr(g.lp->info.opts, "GROUP") != NULL, "opts: %s", g.lp->info.opts);
  cr_expect_geq(g.lp->info.block[0], 32, "threads per block: %lld", (long long)g.lp->info.block[0]);
  /* rows of 4096: groups wider than a warp, so CUDA too combines the
   * warps' partial sums in shared memory */
  cr_expect_eq(count_op(g.lp, TGC_OP_DEFINE_LOCAL), 1, "local memory for the partial sums");
  cr_expect_geq(count_op(g.lp, TGC_OP_BARRIER), 1, "a barrier before partials are combined");
  cr_expect_eq(widest_global_load(g.lp), 16, "16-byte loads of the weights");
  cr_expect(strstr(g.src, local_kw) != NULL, "no %s in:\n%s", local_kw, g.src);
  cr_expect(strstr(g.src, barrier_kw) != NULL, "no %s in:\n%s", barrier_kw, g.src);
  if (lang == &tgc_lang_cuda) {
    cr_expect(strstr(g.src, "__shfl_down_sync") != NULL, "warp shuffles on CUDA:\n%s", g.src);
    nvrtc_compiles(g.src);
  }
  gen_free(g);
  tgc_ctx_free(ctx);
}

Test(gpu, cuda_matvec_f32_has_grouped_reduce_and_16_byte_loads) {
  check_matvec(TGC_F32, &tgc_lang_cuda, "__shared__", "__syncthreads()");
}

Test(gpu, cuda_matvec_f16_has_grouped_reduce_and_16_byte_loads) {
  check_matvec(TGC_F16, &tgc_lang_cuda, "__shared__", "__syncthreads()");
}

Test(gpu, opencl_matvec_has_grouped_reduce_and_16_byte_loads) {
  check_matvec(TGC_F32, &tgc_lang_opencl, "__local", "barrier(CLK_LOCAL_MEM_FENCE)");
}

Test(gpu, elementwise_gets_a_block_of_threads) {
  tgc_ctx *ctx = tgc_ctx_new();
  int64_t s[2] = {64, 1024};
  tgc_tensor *a = tgc_empty(ctx, TGC_F32, 2, s), *b = tgc_empty(ctx, TGC_F32, 2, s);
  gen g = generate(ctx, tgc_mul(tgc_add(a, b), b), &tgc_lang_cuda);
  cr_expect_geq(g.lp->info.block[0], 64, "threads per block: %lld", (long long)g.lp->info.block[0]);
  cr_expect_eq(count_op(g.lp, TGC_OP_BARRIER), 0);
  cr_expect_eq(g.lp->info.grid[0] * g.lp->info.block[0] * (widest_global_load(g.lp) / 4), 64 * 1024,
               "every element covered once");
  nvrtc_compiles(g.src);
  gen_free(g);
  tgc_ctx_free(ctx);
}

Test(gpu, noopt_cuda_kernels_still_compile) {
  tgc_ctx *ctx = tgc_ctx_new();
  int64_t s[2] = {8, 33};
  tgc_tensor *x = tgc_empty(ctx, TGC_F16, 2, s);
  tgc_schedule *sch = tgc_schedule_new(ctx, 1, (tgc_tensor *[]){tgc_softmax(x, -1)});
  cr_assert_not_null(sch);
  for (int i = 0; i < sch->nkernels; i++) {
    tgc_kshape ks;
    cr_assert(tgc_kshape_init(&ks, sch->kernels[i].ast));
    tgc_linprog *lp = tgc_lower(sch->kernels[i].ast, &ks, &tgc_lang_cuda);
    char *src = tgc_render(&tgc_lang_cuda, lp);
    nvrtc_compiles(src);
    free(src);
    tgc_linprog_free(lp);
    tgc_kshape_free(&ks);
  }
  tgc_schedule_free(sch);
  tgc_ctx_free(ctx);
}

Test(gpu, devices_lists_every_backend_with_reasons) {
  tgc_device_info info[8];
  int n = tgc_devices(info, 8);
  cr_assert_eq(n, 3);
  cr_expect_str_eq(info[0].name, "cpu");
  cr_expect(info[0].usable, "the CPU is always usable: %s", info[0].why);
  for (int i = 1; i < n; i++)
    if (!info[i].usable) cr_expect_gt(strlen(info[i].why), 10, "%s: no reason given", info[i].name);
  cr_expect_eq(tgc_last_status(), TGC_OK, "probing leaves no error behind");
}

Test(gpu, asking_for_cuda_without_a_driver_names_the_library) {
  tgc_device_info info[3];
  tgc_devices(info, 3);
  setenv("TGC_DEVICE", "cuda", 1);
  tgc_ctx *ctx = tgc_ctx_new();
  if (info[1].usable) { /* a machine with a GPU */
    cr_assert_not_null(ctx, "%s", tgc_last_error());
    cr_expect_str_eq(tgc_ctx_device(ctx), "cuda");
  } else {
    cr_assert_null(ctx);
    cr_expect(strstr(tgc_last_error(), "TGC_DEVICE") != NULL, "%s", tgc_last_error());
    cr_expect(strstr(tgc_last_error(), "libcuda.so.1") || strstr(tgc_last_error(), "NVRTC") ||
                  strstr(tgc_last_error(), "cuInit") || strstr(tgc_last_error(), "no CUDA devices"),
              "names what is missing: %s", tgc_last_error());
  }
  tgc_ctx_free(ctx);
  setenv("TGC_DEVICE", "no-such-device", 1);
  cr_expect_null(tgc_ctx_new());
  cr_expect_eq(tgc_last_status(), TGC_ERR_ARG);
  cr_expect(strstr(tgc_last_error(), "no-such-device") != NULL, "%s", tgc_last_error());
  unsetenv("TGC_DEVICE");
}
