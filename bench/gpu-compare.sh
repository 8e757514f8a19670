#!/usr/bin/env bash
# gpu-compare.sh - tgc-bench on an NVIDIA GPU, next to libtorch with CUDA:
# small-512 and llama3-1b decode, tgc against torch-opt (f16, a static KV
# cache, one CUDA graph per step), torch-base (eager f32) and, where
# Python's torch is present, torch-aoti (the same static step compiled by
# AOTInductor), with the device copy bandwidth as the yardstick.  Writes
# each run's table, JSON, CSV and plot to OUTDIR; finishes within about
# 9 minutes, most of it AOTInductor compiling.
#
#   bash bench/gpu-compare.sh [OUTDIR]
#
# Made, like gpu-check.sh, for a GPU machine with the driver, the CUDA
# toolkit and Python's torch, but without tgc's Debian packages: build
# where tgc builds, for a CPU that may differ from this one,
#   make B=build/dev BENCH_CFLAGS=-march=x86-64-v3 COMPARE=0 build/dev/tgc-bench
#   make compare B=build/torch-cuda LIBTORCH=<Python torch's folder, the same version as there>
# and copy the tree with those two folders over.  Where tgc builds on the
# GPU machine itself, `make && make compare` (which finds Python's torch
# when Debian's libtorch is absent) gives build/tgc-bench with the module
# beside it; then TGC_BENCH_BIN=build/tgc-bench TGC_COMPARE_LIB= suffices.
#
#   TGC_BENCH_BIN     the program (default build/dev/tgc-bench, else build/tgc-bench)
#   TGC_COMPARE_LIB   the compare module (default build/torch-cuda/libtgc-compare.so)
#   GPU_COMPARE_ITERS iterations per run (default 30)
set -uo pipefail

cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d)}
mkdir -p "$out"
bin=${TGC_BENCH_BIN:-build/dev/tgc-bench}
[ -x "$bin" ] || bin=build/tgc-bench
export TGC_COMPARE_LIB=${TGC_COMPARE_LIB-build/torch-cuda/libtgc-compare.so}
[ -n "$TGC_COMPARE_LIB" ] && TGC_COMPARE_LIB=$(realpath "$TGC_COMPARE_LIB")
iters=${GPU_COMPARE_ITERS:-30}

# Python torch's libraries, and the CUDA runtime of its nvidia packages,
# for a module built against the same torch elsewhere; build/dev/lib holds
# libraries copied from the build machine (PCRE2), if any.
torch=$(python3 -c 'import importlib.util as u; s = u.find_spec("torch"); print(s.submodule_search_locations[0] if s else "")' 2>/dev/null || true)
libs=$PWD/build/dev/lib
if [ -n "$torch" ]; then
  libs="$libs:$torch/lib"
  for d in "$torch"/../nvidia/cu*/lib "$torch"/../nvidia/*/lib; do [ -d "$d" ] && libs="$libs:$(realpath "$d")"; done
fi
export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "gpu-compare: $bin, compare module ${TGC_COMPARE_LIB:-(beside the program)}, Python torch ${torch:-not found}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# One tgc-bench run: its name, its time limit in seconds, its arguments.
bench() {
  local name=$1 limit=$2
  shift 2
  echo
  echo "== $name: tgc-bench --device cuda $* (limit ${limit} s)"
  timeout -k 5 "$limit" "$bin" --device cuda --iterations "$iters" --json "$out/$name.json" --csv "$out/$name.csv" \
    --plot "$out/$name.svg" "$@" >"$out/$name.txt" 2>"$out/$name.err"
  local rc=$?
  cat "$out/$name.txt"
  [ "$rc" -ne 0 ] && { echo "gpu-compare: $name exited with status $rc; its errors:"; tail -n 20 "$out/$name.err"; }
  return 0
}

bench small-512-f16 240 --model small-512 --quantize f16 --cold-runs 1
bench llama3-1b-f16 120 --model llama3-1b --quantize f16 --cold-runs 0 --framework tgc torch-opt torch-base
bench llama3-1b-f16-aoti 200 --model llama3-1b --quantize f16 --cold-runs 0 --framework torch-aoti
echo
echo "gpu-compare: tables, JSON, CSV and plots in $out"
