/* aoti.cpp - torch-aoti: a static program (static.cpp) compiled ahead of
 * time by AOTInductor, torch.compile's own code generator, where Python's
 * torch is present.
 *
 * libtorch's C++ API cannot compile a graph with Inductor; Python can, and
 * libtorch can load what it makes.  So the program is rendered as a Python
 * module (script.cpp: tgc_cmp_python_source), and Python's torch, run as a
 * child process, exports it (torch.export) and compiles it into a package
 * (torch._inductor.aoti_compile_and_package), which this process loads
 * with AOTIModelPackageLoader and runs every step.  Packages are kept in
 * tgc's cache folder (TGC_CACHE_DIR, or ~/.cache/tgc) under aoti/, named
 * by a hash of the source, the inputs' shapes and dtypes, the device and
 * the torch version: a warm cache loads in about a second, a cold one
 * compiles for minutes.  The inputs are the program's leaves (weights and
 * KV cache in place, mutated in place by the package) and the variables
 * as an int64 tensor.  Python's torch must be the version this module was
 * built against, since the package runs on this process's libtorch.
 *
 *   TGC_PYTHON   the Python to run (default python3 on PATH)
 */
#include "cmp_aten.h"

#include <torch/version.h>

#if __has_include(<torch/csrc/inductor/aoti_package/model_package_loader.h>)
#define TGC_CMP_HAVE_AOTI 1
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#endif

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

extern char **environ;

#ifdef TGC_CMP_HAVE_AOTI
namespace {

std::string python_exe() {
  const char *p = getenv("TGC_PYTHON");
  return p && *p ? p : "python3";
}

/* Runs the Python with args, its output (both streams) into log; the exit
 * status, or -1 with why set if it could not be started. */
int run_python(const std::vector<std::string> &args, const std::string &log, std::string *why) {
  std::string exe = python_exe();
  std::vector<char *> argv{const_cast<char *>(exe.c_str())};
  for (const std::string &a : args) argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int rc = posix_spawnp(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    *why = "cannot run " + exe + ": " + strerror(rc) + " (TGC_PYTHON names another Python)";
    return -1;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_file(const std::string &path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

/* The last n lines of text. */
std::string tail(const std::string &text, int n) {
  size_t at = text.size();
  while (n-- > 0 && at > 0) {
    size_t nl = text.rfind('\n', at - 1);
    if (nl == std::string::npos) return text;
    at = nl;
  }
  return text.substr(at);
}

bool write_file(const std::string &path, const std::string &text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
  return bool(f.flush());
}

/* "2.11.0" of "2.11.0+cu130": a build's tag is not its version. */
std::string version_of(std::string v) {
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r' || v.back() == ' ')) v.pop_back();
  size_t plus = v.find('+');
  return plus == std::string::npos ? v : v.substr(0, plus);
}

std::string cache_folder() {
  char buf[4096];
  const char *d = tgc_cache_dir(buf, sizeof buf);
  if (!d) throw tgc_cmp_error(std::string("AOTInductor: no cache folder: ") + tgc_last_error());
  std::string dir = std::string(d) + "/aoti";
  if (mkdir(d, 0755) != 0 && errno != EEXIST) throw tgc_cmp_error("AOTInductor: cannot make " + std::string(d));
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throw tgc_cmp_error("AOTInductor: cannot make " + dir);
  return dir;
}

} // namespace
#endif

std::string tgc_cmp_aoti_unavailable() {
#ifndef TGC_CMP_HAVE_AOTI
  return std::string("libtorch ") + TORCH_VERSION + " has no AOTInductor loader (torch 2.6 or later has it)";
#else
  static std::string why = [] {
    char tmpl[] = "/tmp/tgc-aoti-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) return std::string("no temporary file for Python's answer");
    close(fd);
    std::string log = tmpl, err;
    int rc = run_python({"-c", "import torch; print('torch_version=' + torch.__version__)"}, log, &err);
    std::string out = read_file(log);
    unlink(log.c_str());
    if (rc < 0) return err;
    size_t at = out.rfind("torch_version=");
    if (rc != 0 || at == std::string::npos) return python_exe() + " cannot import torch:" + tail(out, 2);
    out = out.substr(at + strlen("torch_version="));
    out = out.substr(0, out.find('\n'));
    if (version_of(out) != version_of(TORCH_VERSION))
      return python_exe() + "'s torch is " + version_of(out) + ", this module's libtorch " + TORCH_VERSION +
             ": a package must run on the libtorch that made it";
    return std::string();
  }();
  return why;
#endif
}

#ifdef TGC_CMP_HAVE_AOTI

struct tgc_cmp_aoti {
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
};

std::shared_ptr<tgc_cmp_aoti> tgc_cmp_aoti_new(const tgc_cmp_prog &p, const std::vector<at::Tensor> &leaves,
                                               at::Device dev, bool *compiled) {
  std::string why = tgc_cmp_aoti_unavailable();
  if (!why.empty()) throw tgc_cmp_error("AOTInductor: " + why);
  std::string src = tgc_cmp_python_source(p);
  /* the example inputs: shapes and dtypes of the leaves, then the variables */
  std::string inputs;
  for (const at::Tensor &t : leaves) {
    inputs += "    torch.empty([";
    for (int64_t d : t.sizes()) inputs += std::to_string(d) + ", ";
    inputs += "], dtype=DT[" + std::to_string((int)t.scalar_type()) + "], device=dev),\n";
  }
  std::string device = dev.is_cuda() ? "cuda:" + std::to_string(dev.index() < 0 ? 0 : dev.index()) : "cpu";
  std::string what = src + inputs + device + TORCH_VERSION;
  char key[32];
  snprintf(key, sizeof key, "%016" PRIx64, tgc_hash64(what.data(), what.size(), 0x7467632d616f7469ull));
  std::string dir = cache_folder(), base = dir + "/step-" + key, pkg = base + ".pt2";
  *compiled = access(pkg.c_str(), R_OK) != 0;
  if (*compiled) {
    std::string driver =
        "# Exports the step in " + base + ".py and compiles it with AOTInductor (tgc's compare module).\n"
        "import importlib.util, os, torch\n"
        "DT = {0: torch.uint8, 1: torch.int8, 2: torch.int16, 3: torch.int32, 4: torch.int64, 5: torch.float16,\n"
        "      6: torch.float32, 7: torch.float64, 11: torch.bool, 15: torch.bfloat16}\n"
        "spec = importlib.util.spec_from_file_location('tgc_step', '" + base + ".py')\n"
        "step = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(step)\n"
        "dev = torch.device('" + device + "')\n"
        "args = (\n" + inputs + "    torch.zeros([" + std::to_string(TGC_MAX_VARS) +
        "], dtype=torch.int64, device=dev),\n)\n"
        "with torch.no_grad():\n"
        "    ep = torch.export.export(step.Step(), args)\n"
        "    torch._inductor.aoti_compile_and_package(ep, package_path='" + base + ".tmp.pt2')\n"
        "os.replace('" + base + ".tmp.pt2', '" + pkg + "')\n";
    if (!write_file(base + ".py", src) || !write_file(base + "-build.py", driver))
      throw tgc_cmp_error("AOTInductor: cannot write " + base + ".py");
    std::string err, log = base + ".log";
    int rc = run_python({base + "-build.py"}, log, &err);
    if (rc != 0)
      throw tgc_cmp_error("AOTInductor: " + (rc < 0 ? err : "building " + pkg + " failed (status " + std::to_string(rc) +
                                                             "; the log is " + log + "):" + tail(read_file(log), 12)));
  }
  auto a = std::make_shared<tgc_cmp_aoti>();
  a->loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(pkg, "model", false, 1,
                                                                         dev.is_cuda() ? dev.index() : -1);
  return a;
}

std::vector<at::Tensor> tgc_cmp_aoti_run(tgc_cmp_aoti &a, const std::vector<at::Tensor> &leaves,
                                         const at::Tensor &vars_t) {
  std::vector<at::Tensor> in(leaves);
  in.push_back(vars_t);
  return a.loader->run(in);
}

#else

struct tgc_cmp_aoti {};

std::shared_ptr<tgc_cmp_aoti> tgc_cmp_aoti_new(const tgc_cmp_prog &, const std::vector<at::Tensor> &, at::Device,
                                               bool *) {
  throw tgc_cmp_error("AOTInductor: " + tgc_cmp_aoti_unavailable());
}

std::vector<at::Tensor> tgc_cmp_aoti_run(tgc_cmp_aoti &, const std::vector<at::Tensor> &, const at::Tensor &) {
  throw tgc_cmp_error("AOTInductor: " + tgc_cmp_aoti_unavailable());
}

#endif
