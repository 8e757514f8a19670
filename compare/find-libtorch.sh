#!/usr/bin/env bash
# compare/find-libtorch.sh - where libtorch is, as make variables for the
# compare section of the Makefile (which includes what this prints).
#
#   compare/find-libtorch.sh [LIBTORCH]
#
# Looks, in this order, in LIBTORCH when it is given (an unpacked libtorch:
# include/, lib/; nothing else is tried then; LIBTORCH=python: Python's
# torch only, e.g. its CUDA build where Debian's CPU-only one is also
# installed), at Debian's libtorch-dev, and at the libtorch bundled with
# Python's torch package (the Python is $PYTHON, default python3).
# Prints TORCH_FROM, TORCH_CXXFLAGS and TORCH_LIBS when one is found,
# TORCH_WHY otherwise; always exits 0.
set -euo pipefail
want=${1:-}

# -D_GLIBCXX_USE_CXX11_ABI=0 or 1, as the build of libtorch in $1 was made
# (official builds and Python wheels have used both).
abi_flag() {
  grep -so '_GLIBCXX_USE_CXX11_ABI=[01]' "$1/share/cmake/Torch/TorchConfig.cmake" | head -n 1 | sed 's/^/-D/' || true
}

# The CUDA toolkit (c10/cuda's inline code includes cuda_runtime_api.h
# and calls the runtime): CUDA_HOME, else /usr/local/cuda.  Empty if
# neither has the header and lib64/libcudart.so.
cuda_home() {
  local c
  for c in ${CUDA_HOME:+"$CUDA_HOME"} /usr/local/cuda; do
    [ -f "$c/include/cuda_runtime_api.h" ] && [ -e "$c/lib64/libcudart.so" ] && { echo "$c"; return; }
  done
}

# A libtorch folder: its headers in include/ and include/torch/csrc/api/include.
# With lib/libtorch_cuda.so (a CUDA build, as Python's torch on Linux is)
# and the CUDA headers, the module is built with its CUDA path
# (TGC_CMP_CUDA); libtorch_cuda is linked even though no symbol of it is
# named, because loading it is what registers CUDA with ATen.
from_dir() {
  local d=$1 from=$2 cuda="" libs ch rt
  [ -f "$d/include/torch/csrc/api/include/torch/version.h" ] && [ -e "$d/lib/libtorch.so" ] || return 1
  libs="-L$d/lib -Wl,-rpath,$d/lib -ltorch -ltorch_cpu -lc10"
  ch=$(cuda_home)
  if [ -e "$d/lib/libtorch_cuda.so" ] && [ -n "$ch" ]; then
    cuda=" -DTGC_CMP_CUDA -isystem $ch/include"
    # the CUDA runtime that Python's torch loads (nvidia/cu*/lib beside it) comes first
    for rt in "$d"/../nvidia/cu*/lib "$d"/../nvidia/cuda_runtime/lib; do
      [ -d "$rt" ] && libs="$libs -Wl,-rpath,$(cd "$rt" && pwd)"
    done
    libs="$libs -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed -L$ch/lib64 -lcudart"
    from="$from, with CUDA"
  elif [ -e "$d/lib/libtorch_cuda.so" ]; then
    from="$from, without its CUDA: no CUDA headers (set CUDA_HOME)"
  fi
  echo "TORCH_FROM := $from ($d)"
  echo "TORCH_CXXFLAGS := -isystem $d/include -isystem $d/include/torch/csrc/api/include $(abi_flag "$d")$cuda"
  echo "TORCH_LIBS := $libs"
}

# Python's torch, found without importing it (an import takes seconds).
python_torch() {
  local py
  py=$("${PYTHON:-python3}" -c 'import importlib.util as u; s = u.find_spec("torch"); print(s.submodule_search_locations[0] if s else "")' 2>/dev/null || true)
  [ -n "$py" ] && from_dir "$py" "Python torch"
}

if [ "$want" = python ]; then
  python_torch && exit 0
  echo "TORCH_WHY := LIBTORCH=python: ${PYTHON:-python3} has no torch package with its libtorch (include/ and lib/libtorch.so)"
  exit 0
fi
if [ -n "$want" ]; then
  from_dir "$want" LIBTORCH && exit 0
  echo "TORCH_WHY := LIBTORCH=$want holds no libtorch (include/torch/csrc/api/include/torch/version.h and lib/libtorch.so)"
  exit 0
fi

# Debian: headers in /usr/include (a default include directory, so only the
# C++ API's folder is added) and the libraries in the multiarch folder.
multiarch=$(${CC:-cc} -print-multiarch 2>/dev/null || true)
if [ -f /usr/include/torch/csrc/api/include/torch/version.h ] && [ -e "/usr/lib/$multiarch/libtorch.so" ]; then
  echo "TORCH_FROM := Debian libtorch-dev"
  echo "TORCH_CXXFLAGS := -isystem /usr/include/torch/csrc/api/include"
  echo "TORCH_LIBS := -ltorch -ltorch_cpu -lc10"
  exit 0
fi

python_torch && exit 0
echo "TORCH_WHY := libtorch not found (no LIBTORCH=<folder>, no Debian libtorch-dev: tools/deps.sh installs it, no Python torch)"
