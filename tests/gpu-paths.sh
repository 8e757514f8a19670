#!/usr/bin/env bash
# tests/gpu-paths.sh - runs the op suites through the GPU code paths, on a
# machine without a GPU (run by `make test`).
#
#   TGC_DEVICE=opencl  every op kernel is generated with GPU opts (threads,
#                      grouped reduces in local memory, barriers, 16-byte
#                      vector loads) and run on PoCL, against the same f64
#                      references as on the CPU;
#   TGC_XCHECK=cuda    every kernel is also rendered as CUDA and compiled by
#                      NVRTC for sm_80 and sm_90 ("skipped: NVRTC not found"
#                      where no NVRTC can be loaded).
set -euo pipefail
bin=${1:?usage: tests/gpu-paths.sh TEST_BINARY [JOBS]}
jobs=${2:-2}
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
export TGC_DEVICE=opencl TGC_XCHECK=cuda TGC_CACHE_DIR=$cache
# PoCL's kernel compiler prints warnings of its own; keep only tgc's lines
for suite in elementwise reduce movement nn sched gpu vars symbolic quant llama; do
  echo "gpu-paths: $suite on opencl, CUDA checked by NVRTC"
  "$bin" --jobs "$jobs" --filter "$suite/*" 2>&1 | grep -v '^[0-9]* warnings\? generated\.$'
done
