#!/usr/bin/env bash
# compare/find-libtorch.sh - where libtorch is, as make variables for the
# compare section of the Makefile (which includes what this prints).
#
#   compare/find-libtorch.sh [LIBTORCH]
#
# Looks, in this order, in LIBTORCH when it is given (an unpacked libtorch:
# include/, lib/; nothing else is tried then), at Debian's libtorch-dev,
# and at the libtorch bundled with Python's torch package.  Prints
# TORCH_FROM, TORCH_CXXFLAGS and TORCH_LIBS when one is found, TORCH_WHY
# otherwise; always exits 0.
set -euo pipefail
want=${1:-}

# -D_GLIBCXX_USE_CXX11_ABI=0 or 1, as the build of libtorch in $1 was made
# (official builds and Python wheels have used both).
abi_flag() {
  grep -so '_GLIBCXX_USE_CXX11_ABI=[01]' "$1/share/cmake/Torch/TorchConfig.cmake" | head -n 1 | sed 's/^/-D/' || true
}

# A libtorch folder: its headers in include/ and include/torch/csrc/api/include.
from_dir() {
  local d=$1 from=$2
  [ -f "$d/include/torch/csrc/api/include/torch/version.h" ] && [ -e "$d/lib/libtorch.so" ] || return 1
  echo "TORCH_FROM := $from ($d)"
  echo "TORCH_CXXFLAGS := -isystem $d/include -isystem $d/include/torch/csrc/api/include $(abi_flag "$d")"
  echo "TORCH_LIBS := -L$d/lib -Wl,-rpath,$d/lib -ltorch -ltorch_cpu -lc10"
}

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

# Python's torch, found without importing it (an import takes seconds).
py=$(python3 -c 'import importlib.util as u; s = u.find_spec("torch"); print(s.submodule_search_locations[0] if s else "")' 2>/dev/null || true)
if [ -n "$py" ] && from_dir "$py" "Python torch"; then
  exit 0
fi
echo "TORCH_WHY := libtorch not found (no LIBTORCH=<folder>, no Debian libtorch-dev: tools/deps.sh installs it, no Python torch)"
