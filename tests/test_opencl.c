/* test_opencl.c - the OpenCL device through its vtable, with hand-written
 * kernels (no renderer involved).
 *
 * Each test opens its own device; where no OpenCL platform can be found
 * (no libOpenCL.so.1, or no driver behind it) the test is skipped with the
 * reason.  In CI, PoCL runs the kernels on the CPU.
 */
#include "tgc_internal.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>

TestSuite(opencl, .timeout = 120);

static const char add1_src[] =
    "__kernel void add1(__global float *b0, __global const float *b1) {\n"
    "  int i = get_global_id(0);\n"
    "  b0[i] = b1[i] + 1.0f;\n"
    "}\n";

/* Uses the 64-bit variable argument that follows the buffers. */
static const char addn_src[] =
    "__kernel void addn(__global float *b0, __global const float *b1, long n) {\n"
    "  int i = get_global_id(0);\n"
    "  b0[i] = b1[i] + (float)n;\n"
    "}\n";

static tgc_device *open_or_skip(void) {
  tgc_device *d = tgc_opencl_new();
  if (!d) {
    cr_assert_eq(tgc_last_status(), TGC_ERR_UNSUPPORTED, "tgc_opencl_new: %s", tgc_last_error());
    cr_skip_test("no OpenCL: %s", tgc_last_error());
  }
  return d;
}

static tgc_prog_info info_of(const char *name, int nvars) {
  tgc_prog_info in = {.nglobals = 2, .nvars = nvars, .grid = {16, 1, 1}, .block = {4, 1, 1}};
  snprintf(in.name, sizeof in.name, "%s", name);
  return in;
}

/* Compiles one source and returns its binary (malloc'd). */
static void *compile1(tgc_device *d, const char *src, size_t *len) {
  void *bin = NULL;
  int runs = 0;
  tgc_status st = d->compile(d, 1, &src, &bin, len, &runs);
  cr_assert_eq(st, TGC_OK, "compile: %s", tgc_last_error());
  cr_assert_eq(runs, 1);
  cr_assert(bin && *len > 0);
  return bin;
}

/* Runs a loaded program (16 work-groups of 4: N work-items) on x and
 * checks x + add. */
enum { N = 16 * 4 };
static void run_and_check(tgc_device *d, tgc_program *p, const int64_t *vars, float add) {
  float x[N], y[N];
  for (int i = 0; i < N; i++) x[i] = (float)i * 0.5f;
  void *bufs[2] = {d->alloc(d, sizeof y), d->alloc(d, sizeof x)};
  cr_assert(bufs[0] && bufs[1]);
  cr_assert_eq(d->copy_in(d, bufs[1], x, sizeof x), TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(d->launch(d, p, bufs, vars), TGC_OK, "launch: %s", tgc_last_error());
  cr_assert_eq(d->sync(d), TGC_OK, "%s", tgc_last_error());
  cr_assert_eq(d->copy_out(d, y, bufs[0], sizeof y), TGC_OK, "%s", tgc_last_error());
  for (int i = 0; i < N; i++) cr_expect_eq(y[i], x[i] + add, "y[%d] = %g", i, (double)y[i]);
  d->free(d, bufs[0]);
  d->free(d, bufs[1]);
}

Test(opencl, device_opens_with_a_compiler_id) {
  tgc_device *d = open_or_skip();
  cr_expect_str_eq(d->name, "opencl");
  cr_expect_eq(d->lang, &tgc_lang_opencl);
  const char *id = d->compiler_id(d);
  cr_assert(id);
  cr_expect(!strncmp(id, "opencl\nplatform=", 16), "id: %s", id);
  cr_expect(strstr(id, "\ndevice=") && strstr(id, "\ndriver="), "id: %s", id);
  cr_expect(strstr(id, "\noptions=-cl-std=CL1.2"), "id: %s", id);
  d->destroy(d);
}

Test(opencl, add1_compiles_loads_and_runs) {
  tgc_device *d = open_or_skip();
  size_t len;
  void *bin = compile1(d, add1_src, &len);
  tgc_program p = {.info = info_of("add1", 0)};
  cr_assert_eq(d->load(d, &p, bin, len), TGC_OK, "load: %s", tgc_last_error());
  cr_expect(p.handle && p.fn && p.dev == d);
  run_and_check(d, &p, NULL, 1.0f);
  d->unload(d, &p);
  cr_expect(!p.handle && !p.fn);
  free(bin);
  d->destroy(d);
}

Test(opencl, vars_follow_the_buffers_as_64_bit_ints) {
  tgc_device *d = open_or_skip();
  size_t len;
  void *bin = compile1(d, addn_src, &len);
  tgc_program p = {.info = info_of("addn", 1)};
  cr_assert_eq(d->load(d, &p, bin, len), TGC_OK, "load: %s", tgc_last_error());
  int64_t n = 7;
  run_and_check(d, &p, &n, 7.0f);
  d->unload(d, &p);
  free(bin);
  d->destroy(d);
}

Test(opencl, binary_loads_in_a_fresh_device) {
  tgc_device *d = open_or_skip();
  size_t len;
  void *bin = compile1(d, add1_src, &len);
  d->destroy(d);
  tgc_device *e = open_or_skip();
  tgc_program p = {.info = info_of("add1", 0)};
  cr_assert_eq(e->load(e, &p, bin, len), TGC_OK, "load: %s", tgc_last_error());
  run_and_check(e, &p, NULL, 1.0f);
  e->unload(e, &p);
  free(bin);
  e->destroy(e);
}

Test(opencl, several_sources_compile_in_one_call) {
  tgc_device *d = open_or_skip();
  const char *srcs[2] = {add1_src, addn_src};
  void *bins[2] = {0};
  size_t lens[2];
  int runs = 0;
  cr_assert_eq(d->compile(d, 2, srcs, bins, lens, &runs), TGC_OK, "%s", tgc_last_error());
  cr_expect_eq(runs, 2);
  tgc_program p = {.info = info_of("addn", 1)};
  cr_assert_eq(d->load(d, &p, bins[1], lens[1]), TGC_OK, "load: %s", tgc_last_error());
  int64_t n = -3;
  run_and_check(d, &p, &n, -3.0f);
  d->unload(d, &p);
  free(bins[0]);
  free(bins[1]);
  d->destroy(d);
}

/* PoCL's clang also prints "1 error generated." on stderr: kept quiet. */
Test(opencl, syntax_error_gives_the_build_log_and_the_source, .init = cr_redirect_stderr) {
  tgc_device *d = open_or_skip();
  const char *srcs[2] = {add1_src, "__kernel void bad(__global float *b0) {\n  b0[0] = oops;\n}\n"};
  void *bins[2] = {0};
  size_t lens[2];
  int runs = 0;
  tgc_clear_error();
  cr_assert_eq(d->compile(d, 2, srcs, bins, lens, &runs), TGC_ERR_COMPILE);
  cr_expect_eq(tgc_last_status(), TGC_ERR_COMPILE);
  const char *msg = tgc_last_error();
  cr_expect(!strncmp(msg, "OpenCL build failed:\n", 21), "%s", msg);
  cr_expect(strstr(msg, "oops") && strstr(msg, "error"), "no build log in: %s", msg);
  cr_expect(strstr(msg, "   2 |   b0[0] = oops;"), "no numbered source in: %s", msg);
  cr_expect(!bins[0] && !bins[1], "binaries left after a failed compile");
  d->destroy(d);
}

Test(opencl, a_bad_binary_or_kernel_name_is_an_error) {
  tgc_device *d = open_or_skip();
  static const char junk[] = "this is not a program binary, not even close";
  tgc_program p = {.info = info_of("add1", 0)};
  cr_expect_neq(d->load(d, &p, junk, sizeof junk), TGC_OK);
  cr_expect(!p.handle && !p.fn);
  cr_expect(strstr(tgc_last_error(), "OpenCL"), "%s", tgc_last_error());
  size_t len;
  void *bin = compile1(d, add1_src, &len);
  tgc_program q = {.info = info_of("nope", 0)};
  cr_expect_neq(d->load(d, &q, bin, len), TGC_OK);
  cr_expect(strstr(tgc_last_error(), "CL_INVALID_KERNEL_NAME"), "%s", tgc_last_error());
  cr_expect(!q.handle && !q.fn);
  free(bin);
  d->destroy(d);
}

Test(opencl, launch_errors_name_the_call_and_the_cl_error) {
  tgc_device *d = open_or_skip();
  size_t len;
  void *bin = compile1(d, add1_src, &len);
  tgc_program p = {.info = info_of("add1", 0)};
  cr_assert_eq(d->load(d, &p, bin, len), TGC_OK, "load: %s", tgc_last_error());
  p.info.block[0] = (int64_t)1 << 20; /* more threads than any work-group holds */
  p.info.grid[0] = 1;
  void *bufs[2] = {d->alloc(d, 4 << 20), d->alloc(d, 4 << 20)};
  cr_assert(bufs[0] && bufs[1]);
  cr_expect_eq(d->launch(d, &p, bufs, NULL), TGC_ERR_DEVICE);
  const char *msg = tgc_last_error();
  cr_expect(strstr(msg, "clEnqueueNDRangeKernel") && strstr(msg, "CL_INVALID_WORK"), "%s", msg);
  d->free(d, bufs[0]);
  d->free(d, bufs[1]);
  d->unload(d, &p);
  free(bin);
  d->destroy(d);
}

Test(opencl, empty_buffers_and_copies_are_fine) {
  tgc_device *d = open_or_skip();
  void *b = d->alloc(d, 0);
  cr_assert(b, "alloc(0) failed");
  cr_expect_eq(d->copy_in(d, b, "", 0), TGC_OK);
  cr_expect_eq(d->copy_out(d, (char[1]){0}, b, 0), TGC_OK);
  d->free(d, b);
  d->free(d, NULL);
  cr_expect(d->timer(d) > 0);
  d->destroy(d);
}

Test(opencl, device_index_out_of_range_is_an_error) {
  setenv("TGC_OPENCL_DEVICE", "999", 1);
  tgc_device *d = tgc_opencl_new();
  if (!d && tgc_last_status() == TGC_ERR_UNSUPPORTED)
    cr_skip_test("no OpenCL: %s", tgc_last_error());
  cr_assert_null(d);
  cr_expect_eq(tgc_last_status(), TGC_ERR_ARG);
  cr_expect(strstr(tgc_last_error(), "TGC_OPENCL_DEVICE=999"), "%s", tgc_last_error());
  setenv("TGC_OPENCL_DEVICE", "0", 1);
  d = tgc_opencl_new();
  cr_assert(d, "%s", tgc_last_error());
  d->destroy(d);
}
