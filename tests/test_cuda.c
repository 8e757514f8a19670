/* test_cuda.c - the CUDA runtime where there may be no GPU.
 *
 * NVRTC needs no GPU, so kernels are compiled for sm_80 and sm_90 on any
 * machine with the library, and checked to be CUBINs (ELF images).  Where
 * NVRTC cannot be loaded those tests skip, saying so.  Without a driver,
 * asking for the CUDA device must fail and name libcuda.so.1; with one, it
 * must either work or fail with a message.
 */
#include "tgc_internal.h"

#include <criterion/criterion.h>
#include <dlfcn.h>

TestSuite(cuda, .timeout = 120);


/* Skips the test when NVRTC cannot be loaded. */
static void need_nvrtc(void) {
  if (!tgc_nvrtc_version()) cr_skip("skipped: NVRTC not found");
}

static const char *const good_src =
    "#include <cuda_fp16.h>\n"
    "#include <cuda_bf16.h>\n"
    "extern \"C\" __global__ void k_mix(float *out, const half *a, const __nv_bfloat16 *b,\n"
    "                                   long long n) {\n"
    "  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  if (i < n) out[i] = __half2float(a[i]) + __bfloat162float(b[i]);\n"
    "}\n";

static void expect_cubin(const void *bin, size_t len, const char *what) {
  const unsigned char *b = bin;
  cr_assert(bin && len > 4, "%s: no CUBIN", what);
  cr_expect(b[0] == 0x7f && b[1] == 'E' && b[2] == 'L' && b[3] == 'F', "%s: not an ELF image", what);
}

Test(cuda, device_without_driver_names_libcuda) {
  void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  tgc_clear_error();
  tgc_device *d = tgc_cuda_new();
  if (drv) { /* a machine with a driver: either a device or a reason */
    dlclose(drv);
    if (d) {
      cr_expect_str_eq(d->name, "cuda");
      d->destroy(d);
    } else {
      cr_expect(tgc_last_status() != TGC_OK && strlen(tgc_last_error()) > 8, "no reason given");
    }
    return;
  }
  cr_assert_null(d, "a CUDA device without libcuda.so.1");
  cr_expect_eq(tgc_last_status(), TGC_ERR_UNSUPPORTED, "status %s",
               tgc_status_str(tgc_last_status()));
  cr_expect(strstr(tgc_last_error(), "libcuda.so.1") != NULL, "message: %s", tgc_last_error());
}

Test(cuda, nvrtc_compiles_half_and_bf16_for_sm80_and_sm90) {
  need_nvrtc();
  const char *archs[] = {"sm_80", "sm_90"};
  for (int i = 0; i < 2; i++) {
    void *bin = NULL;
    size_t len = 0;
    tgc_status st = tgc_nvrtc_compile(good_src, archs[i], &bin, &len);
    cr_assert_eq(st, TGC_OK, "%s: %s", archs[i], tgc_last_error());
    expect_cubin(bin, len, archs[i]);
    free(bin);
  }
}

Test(cuda, nvrtc_syntax_error_gives_its_log) {
  need_nvrtc();
  const char *src = "extern \"C\" __global__ void k_bad(float *out) {\n  out[0] = 1.0f +;\n}\n";
  void *bin = (void *)1;
  size_t len = 1;
  tgc_clear_error();
  tgc_status st = tgc_nvrtc_compile(src, "sm_90", &bin, &len);
  cr_assert_eq(st, TGC_ERR_COMPILE, "status %s", tgc_status_str(st));
  cr_expect_eq(tgc_last_status(), TGC_ERR_COMPILE);
  cr_expect_null(bin);
  cr_expect_eq(len, 0);
  const char *msg = tgc_last_error();
  cr_expect(strstr(msg, "NVRTC failed for sm_90") != NULL, "message: %s", msg);
  cr_expect(strstr(msg, "kernel.cu(2)") != NULL && strstr(msg, "error") != NULL,
            "no NVRTC log in: %s", msg);
}

Test(cuda, nvrtc_bad_arch_and_arguments) {
  need_nvrtc();
  void *bin = NULL;
  size_t len = 0;
  cr_expect_eq(tgc_nvrtc_compile(good_src, "sm_1", &bin, &len), TGC_ERR_COMPILE);
  cr_expect(strstr(tgc_last_error(), "sm_1") != NULL, "message: %s", tgc_last_error());
  cr_expect_null(bin);
  cr_expect_eq(tgc_nvrtc_compile(NULL, "sm_90", &bin, &len), TGC_ERR_ARG);
}

Test(cuda, nvrtc_version) {
  need_nvrtc();
  const char *v = tgc_nvrtc_version();
  cr_assert_not_null(v);
  cr_expect(strncmp(v, "nvrtc ", 6) == 0, "version: %s", v);
}

/* Many sources at once: every one compiled, in the slot it came from. */
Test(cuda, nvrtc_parallel_compiles) {
  need_nvrtc();
  enum { N = 6 };
  char *srcs[N];
  void *bins[N];
  size_t lens[N];
  for (int i = 0; i < N; i++)
    cr_assert(asprintf(&srcs[i], "extern \"C\" __global__ void k_%d(float *o) { o[%d] = %d.0f; }\n",
                       i, i, i) > 0);
  int threads = 0;
  tgc_status st = tgc_nvrtc_compile_n(N, (const char *const *)srcs, "sm_80", bins, lens, &threads);
  cr_assert_eq(st, TGC_OK, "%s", tgc_last_error());
  cr_expect(threads >= 1 && threads <= 8, "threads: %d", threads);
  for (int i = 0; i < N; i++) {
    char name[16];
    expect_cubin(bins[i], lens[i], "parallel");
    snprintf(name, sizeof name, "k_%d", i);
    cr_expect(memmem(bins[i], lens[i], name, strlen(name) + 1) != NULL, "slot %d lacks %s", i, name);
    free(bins[i]);
  }
  for (int i = 0; i < N; i++) free(srcs[i]);
}

/* One bad source among good ones: no outputs, and the first failure's log. */
Test(cuda, nvrtc_parallel_failure_frees_all) {
  need_nvrtc();
  const char *srcs[] = {
      "extern \"C\" __global__ void k_a(float *o) { o[0] = 1.0f; }\n",
      "extern \"C\" __global__ void k_b(float *o) { o[0] = undeclared_b; }\n",
      "extern \"C\" __global__ void k_c(float *o) { o[0] = 3.0f; }\n",
      "extern \"C\" __global__ void k_d(float *o) { o[0] = undeclared_d; }\n",
  };
  void *bins[4];
  size_t lens[4];
  int threads = 0;
  tgc_status st = tgc_nvrtc_compile_n(4, srcs, "sm_90", bins, lens, &threads);
  cr_assert_eq(st, TGC_ERR_COMPILE, "status %s", tgc_status_str(st));
  cr_expect_eq(tgc_last_status(), TGC_ERR_COMPILE);
  cr_expect(strstr(tgc_last_error(), "undeclared_b") != NULL, "message: %s", tgc_last_error());
  for (int i = 0; i < 4; i++) cr_expect(bins[i] == NULL && lens[i] == 0, "slot %d kept output", i);
}

/* A log of many errors is cut, and says so. */
Test(cuda, nvrtc_long_log_is_cut) {
  need_nvrtc();
  tgc_str src = {0};
  tgc_str_cat(&src, "extern \"C\" __global__ void k_many(float *o) {\n");
  for (int i = 0; i < 150; i++) tgc_str_fmt(&src, "  o[%d] = undeclared_variable_number_%d;\n", i, i);
  tgc_str_cat(&src, "}\n");
  void *bin = NULL;
  size_t len = 0;
  cr_assert_eq(tgc_nvrtc_compile(src.s, "sm_90", &bin, &len), TGC_ERR_COMPILE);
  const char *msg = tgc_last_error();
  cr_expect(strstr(msg, "undeclared_variable_number_0") != NULL, "message: %.200s", msg);
  cr_expect(strstr(msg, "log cut at") != NULL, "long log not cut (%zu bytes)", strlen(msg));
  cr_expect(strlen(msg) < 9 * 1024, "message of %zu bytes", strlen(msg));
  tgc_str_free(&src);
}

/* ---- CUDA graphs (the JIT's replay), through the device vtable ---------- */

/* out = 2 * in + b, for i < n: each launch of a chain doubles and adds. */
static const char axpb_src[] =
    "extern \"C\" __global__ void k_axpb(float *out, const float *in, long long n, long long b) {\n"
    "  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
    "  if (i < n) out[i] = 2.0f * in[i] + (float)b;\n"
    "}\n";

enum { GN = 1000 }; /* elements: not a multiple of the block, so the guard matters */

typedef struct graph_fixture {
  tgc_device *d;
  tgc_program prog;
  void *buf[6]; /* x, t1, t2, y, x2, y2 */
} graph_fixture;

static void graph_teardown(graph_fixture *f) {
  for (int b = 0; b < 6; b++) f->d->free(f->d, f->buf[b]);
  f->d->unload(f->d, &f->prog);
  f->d->destroy(f->d);
}

/* A driver without the graph entry points says so; the JIT then replays
 * plain launches. */
static void skip_without_graphs(graph_fixture *f) {
  tgc_program *progs[1] = {&f->prog};
  void *b[2] = {f->buf[1], f->buf[0]};
  void **bufs[1] = {b};
  int64_t v[2] = {GN, 0};
  const int64_t *vars[1] = {v};
  void *g = f->d->graph_new(f->d, 1, progs, bufs, vars);
  if (g) {
    f->d->graph_free(f->d, g);
    return;
  }
  cr_assert_eq(tgc_last_status(), TGC_ERR_UNSUPPORTED, "graph_new: %s", tgc_last_error());
  cr_expect(strstr(tgc_last_error(), "CUDA graphs not available") != NULL, "%s", tgc_last_error());
  graph_teardown(f);
  cr_skip_test("%s", tgc_last_error());
}

/* A CUDA device with k_axpb loaded and six buffers, x = i and x2 = -i;
 * skips where there is no device (or no NVRTC, or no graphs). */
static void graph_setup(graph_fixture *f) {
  need_nvrtc();
  tgc_clear_error();
  if (!(f->d = tgc_cuda_new())) cr_skip_test("no CUDA device: %s", tgc_last_error());
  cr_assert_not_null(f->d->graph_new, "the CUDA device has no graph entries");
  const char *src = axpb_src;
  void *bin = NULL;
  size_t len = 0;
  cr_assert_eq(f->d->compile(f->d, 1, &src, &bin, &len, NULL), TGC_OK, "%s", tgc_last_error());
  f->prog.info = (tgc_prog_info){.nglobals = 2, .nvars = 2, .grid = {(GN + 127) / 128, 1, 1},
                                 .block = {128, 1, 1}};
  snprintf(f->prog.info.name, sizeof f->prog.info.name, "k_axpb");
  cr_assert_eq(f->d->load(f->d, &f->prog, bin, len), TGC_OK, "%s", tgc_last_error());
  free(bin);
  float host[2][GN];
  for (int i = 0; i < GN; i++) host[0][i] = (float)i, host[1][i] = (float)-i;
  for (int b = 0; b < 6; b++) cr_assert_not_null(f->buf[b] = f->d->alloc(f->d, GN * sizeof(float)));
  cr_assert_eq(f->d->copy_in(f->d, f->buf[0], host[0], sizeof host[0]), TGC_OK);
  cr_assert_eq(f->d->copy_in(f->d, f->buf[4], host[1], sizeof host[1]), TGC_OK);
  skip_without_graphs(f);
}

/* Checks buffer `got` against 8 * sign * i + 4 * b[0] + 2 * b[1] + b[2]. */
static void expect_chain(graph_fixture *f, void *got, float sign, const int64_t b[3]) {
  float host[GN];
  cr_assert_eq(f->d->sync(f->d), TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(f->d->copy_out(f->d, host, got, sizeof host), TGC_OK, "%s", tgc_last_error());
  for (int i = 0; i < GN; i++) {
    float want = 8.0f * sign * (float)i + (float)(4 * b[0] + 2 * b[1] + b[2]);
    cr_assert_float_eq(host[i], want, 1e-3f, "element %d: %g, want %g", i, host[i], want);
  }
}

/* Three launches in a chain x -> t1 -> t2 -> y; then launch 0 reads x2
 * with a new b, launch 2 writes y2, and the replay sees all of it. */
Test(cuda, graph_runs_a_chain_and_takes_updates) {
  graph_fixture f = {0};
  graph_setup(&f);
  tgc_program *progs[3] = {&f.prog, &f.prog, &f.prog};
  void *b0[2] = {f.buf[1], f.buf[0]}, *b1[2] = {f.buf[2], f.buf[1]}, *b2[2] = {f.buf[3], f.buf[2]};
  void **bufs[3] = {b0, b1, b2};
  int64_t v[3][2] = {{GN, 1}, {GN, 10}, {GN, 100}};
  const int64_t *vars[3] = {v[0], v[1], v[2]};
  void *g = f.d->graph_new(f.d, 3, progs, bufs, vars);
  cr_assert_not_null(g, "graph_new: %s", tgc_last_error());
  b0[0] = b2[0] = NULL; /* the graph keeps its own copies */
  v[0][1] = v[2][1] = -1;
  cr_assert_eq(f.d->graph_launch(f.d, g), TGC_OK, "%s", tgc_last_error());
  expect_chain(&f, f.buf[3], 1.0f, (int64_t[]){1, 10, 100});

  void *nb0[2] = {f.buf[1], f.buf[4]}, *nb2[2] = {f.buf[5], f.buf[2]};
  int64_t nv0[2] = {GN, 3}, nv2[2] = {GN, 300};
  cr_assert_eq(f.d->graph_update(f.d, g, 0, nb0, nv0), TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(f.d->graph_update(f.d, g, 2, nb2, nv2), TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(f.d->graph_launch(f.d, g), TGC_OK, "%s", tgc_last_error());
  expect_chain(&f, f.buf[5], -1.0f, (int64_t[]){3, 10, 300});
  expect_chain(&f, f.buf[3], 1.0f, (int64_t[]){1, 10, 100}); /* y untouched */

  /* The same values again: nothing changes, and replays repeat. */
  cr_assert_eq(f.d->graph_update(f.d, g, 0, nb0, nv0), TGC_OK, "%s", tgc_last_error());
  for (int r = 0; r < 3; r++) cr_assert_eq(f.d->graph_launch(f.d, g), TGC_OK);
  expect_chain(&f, f.buf[5], -1.0f, (int64_t[]){3, 10, 300});

  cr_expect_eq(f.d->graph_update(f.d, g, 3, nb0, nv0), TGC_ERR_ARG);
  cr_expect_eq(f.d->graph_update(f.d, g, -1, nb0, nv0), TGC_ERR_ARG);
  f.d->graph_free(f.d, g);
  f.d->graph_free(f.d, NULL);
  graph_teardown(&f);
}

/* Bad input to graph_new is an error, not a crash, and leaves nothing. */
Test(cuda, graph_new_rejects_bad_launches) {
  graph_fixture f = {0};
  graph_setup(&f);
  tgc_program *progs[1] = {&f.prog};
  void *b[2] = {f.buf[1], f.buf[0]};
  void **bufs[1] = {b};
  int64_t v[2] = {GN, 0};
  const int64_t *vars[1] = {v};
  tgc_clear_error();
  cr_expect_null(f.d->graph_new(f.d, 0, progs, bufs, vars));
  cr_expect_neq(tgc_last_status(), TGC_OK);
  tgc_program wide = f.prog;
  wide.info.grid[0] = (int64_t)1 << 40; /* more blocks than the driver takes */
  progs[0] = &wide;
  tgc_clear_error();
  cr_expect_null(f.d->graph_new(f.d, 1, progs, bufs, vars));
  cr_expect_neq(tgc_last_status(), TGC_OK);
  cr_expect(strstr(tgc_last_error(), "k_axpb") != NULL, "message: %s", tgc_last_error());
  graph_teardown(&f);
}
