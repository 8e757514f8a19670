#!/usr/bin/env bash
# tools/deps.sh - makes sure the Debian packages tgc needs are installed.
#
# Quiet when nothing is missing.  Otherwise, as root it installs the missing
# packages with apt-get (refreshing the package lists first only when there
# are none, or when the install fails); as anyone else it prints the exact
# command to run and exits 1.  Extra package names may be given as
# arguments (tools/deps.sh clang) for targets that need more.
#
# To add a dependency, add a line to PACKAGES.
set -euo pipefail

PACKAGES=(
  build-essential   # cc, make, ar
  pkg-config        # the embedding test and users of tgc.pc
  libxxhash-dev     # XXH3 hashing (header-only, XXH_INLINE_ALL)
  libcriterion-dev  # the test suite
  libpcre2-dev      # llama/: the tokenizers' pre-splitting (Llama 3's pattern)
  pocl-opencl-icd   # an OpenCL driver on the CPU: CI runs the GPU code paths on it
  ocl-icd-opencl-dev  # the OpenCL ICD loader (libOpenCL.so.1), opened with dlopen
  libtorch-dev      # compare/: libtorch (ATen, TorchScript) for build/libtgc-compare.so
  libopenblas0-pthread  # compare/: a threaded BLAS for libtorch (the reference BLAS is ~20x slower)
)

wanted=("${PACKAGES[@]}" "$@")

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps: not a Debian-based system; make sure these are installed:" \
       "${wanted[*]}" >&2
  exit 0
fi

missing=()
for p in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

install_cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: install them with:" >&2
  echo "  sudo ${install_cmd[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
have_lists() {
  compgen -G '/var/lib/apt/lists/*Packages*' >/dev/null
}
echo "deps: installing ${missing[*]}"
if ! have_lists; then
  apt-get update -q
fi
if ! "${install_cmd[@]}" </dev/null; then
  echo "deps: install failed; refreshing the package lists and retrying" >&2
  apt-get update -q
  "${install_cmd[@]}" </dev/null
fi
