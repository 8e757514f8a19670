#!/usr/bin/env bash
# find-libtorch.sh - compare/find-libtorch.sh, the libtorch lookup of
# `make compare`, on libtorch layouts made here: an unpacked libtorch
# (LIBTORCH=<folder>), one with CUDA and the CUDA headers beside it,
# Python's torch (LIBTORCH=python, found by the package's location without
# importing it), and the errors for a folder without libtorch and a Python
# without torch.  The layouts hold empty files: the script only looks.
# Prints one line per check and stops at the first failure.  About 1 s.
set -euo pipefail

cd "$(dirname "$0")/.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
find=compare/find-libtorch.sh

ok() { echo "ok    $*"; }
fail() {
  echo "FAIL  $*" >&2
  exit 1
}
# has TEXT WHAT NEEDLE: TEXT holds NEEDLE
has() { [[ $1 == *"$3"* ]] || fail "$2: no \"$3\" in: $1"; }
hasnt() { [[ $1 != *"$3"* ]] || fail "$2: \"$3\" should not be in: $1"; }

# An unpacked libtorch at $1: headers, libraries, the CMake file that
# says which C++ ABI it was built with; with $2 = cuda, libtorch_cuda too.
libtorch() {
  mkdir -p "$1/include/torch/csrc/api/include/torch" "$1/lib" "$1/share/cmake/Torch"
  : >"$1/include/torch/csrc/api/include/torch/version.h"
  : >"$1/lib/libtorch.so"
  echo 'set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=0")' >"$1/share/cmake/Torch/TorchConfig.cmake"
  if [ "${2:-}" = cuda ]; then : >"$1/lib/libtorch_cuda.so"; fi
}

libtorch "$T/plain"
out=$("$find" "$T/plain")
has "$out" "LIBTORCH=<folder>" "TORCH_FROM := LIBTORCH ($T/plain)"
has "$out" "LIBTORCH=<folder>" "-isystem $T/plain/include -isystem $T/plain/include/torch/csrc/api/include"
has "$out" "LIBTORCH=<folder>: the C++ ABI of its build" "-D_GLIBCXX_USE_CXX11_ABI=0"
has "$out" "LIBTORCH=<folder>" "TORCH_LIBS := -L$T/plain/lib -Wl,-rpath,$T/plain/lib -ltorch -ltorch_cpu -lc10"
hasnt "$out" "LIBTORCH=<folder> without libtorch_cuda" "TGC_CMP_CUDA"
ok "LIBTORCH=<folder>: its headers, libraries and C++ ABI"

libtorch "$T/gpu" cuda
mkdir -p "$T/cuda/include" "$T/cuda/lib64"
: >"$T/cuda/include/cuda_runtime_api.h"
: >"$T/cuda/lib64/libcudart.so"
out=$(CUDA_HOME=$T/cuda "$find" "$T/gpu")
has "$out" "a CUDA libtorch" "TORCH_FROM := LIBTORCH, with CUDA ($T/gpu)"
has "$out" "a CUDA libtorch" "-DTGC_CMP_CUDA -isystem $T/cuda/include"
has "$out" "a CUDA libtorch: libtorch_cuda linked though no symbol names it" \
  "-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed -L$T/cuda/lib64 -lcudart"
ok "a CUDA libtorch with CUDA_HOME's headers: the module's CUDA path (TGC_CMP_CUDA, libtorch_cuda, cudart)"

out=$("$find" "$T/nowhere")
has "$out" "LIBTORCH=<missing folder>" "TORCH_WHY := LIBTORCH=$T/nowhere holds no libtorch"
hasnt "$out" "LIBTORCH=<missing folder>" "TORCH_FROM"
ok "LIBTORCH=<a folder without libtorch>: TORCH_WHY says so, nothing else is tried"

# Python's torch: a package folder on PYTHONPATH holding a libtorch.
mkdir -p "$T/site/torch"
: >"$T/site/torch/__init__.py"
libtorch "$T/site/torch"
out=$(PYTHONPATH=$T/site "$find" python)
has "$out" "LIBTORCH=python" "TORCH_FROM := Python torch ($T/site/torch)"
has "$out" "LIBTORCH=python" "-L$T/site/torch/lib"
ok "LIBTORCH=python: the libtorch inside Python's torch package"

out=$(PYTHON=false "$find" python)
has "$out" "LIBTORCH=python without torch" "TORCH_WHY := LIBTORCH=python: false has no torch package"
ok "LIBTORCH=python where Python has no torch: TORCH_WHY says so"

echo "find-libtorch.sh: all checks passed"
