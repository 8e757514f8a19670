#!/usr/bin/env bash
# gpu-check.sh - tgc on an NVIDIA GPU: op checks against f64 references,
# matvec GB/s next to a device-to-device copy, NVRTC cold and warm compile
# time.  Prints its table last; finishes within 5 minutes.
#
#   bash bench/gpu-check.sh          (or `make gpu-check`), from anywhere
#
# Made for a machine with the NVIDIA driver, the CUDA toolkit, gcc and make,
# but without the Debian packages tgc builds with and without network: build
# tgc where it builds (`make && make bench`, which writes
# build/bench/gpu_check), copy the whole tree with build/ over, run this.
# Nothing of tgc is rebuilt here; only if build/bench/gpu_check is missing,
# or does not start on this machine, is the program linked with gcc from
# bench/gpu_check.c and build/libtgc.a.
#
# Two runs of build/bench/gpu_check on one fresh TGC_CACHE_DIR: the first
# (empty cache) runs the op checks, the matvec table and the op checks again
# under TGC_NOOPT=1, and counts the cold NVRTC compiles; the second runs the
# op checks alone on the now warm cache.  Exit status: the first failing
# run's (1: a check failed, 2: no CUDA device, 124: timed out), else 0.
#
#   TGC_DEVICE          device to check (default cuda; cpu tests the script)
#   TGC_GPU_CHECK_BIN   the program (default build/bench/gpu_check)
#   TGC_GPU_CHECK_REPS  repetitions per matvec timing (default 50)
set -euo pipefail

cd "$(dirname "$0")/.."
start=$SECONDS
budget=285 # seconds for everything, under the 5 minutes with room to spare

export TGC_DEVICE=${TGC_DEVICE:-cuda}
unset TGC_NOOPT TGC_CACHE # the first pass uses the default opts; the cache must be on
bin=${TGC_GPU_CHECK_BIN:-build/bench/gpu_check}
reps=${TGC_GPU_CHECK_REPS:-50}
logs=$(mktemp -d)
export TGC_CACHE_DIR
TGC_CACHE_DIR=$(mktemp -d)
trap 'rm -rf "$logs" "$TGC_CACHE_DIR"' EXIT

# ---- the machine --------------------------------------------------------------

gpu="(no nvidia-smi)"
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu=$(timeout 30 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 |
        paste -sd ';' -) || true
fi
nvcc=$(command -v nvcc 2>/dev/null || true)
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
cuda="(no nvcc)"
[ -n "$nvcc" ] && cuda=$(timeout 20 "$nvcc" --version 2>/dev/null | grep -i release | head -n 1 || true)
cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
header() {
  echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "gpu:     ${gpu:-?}"
  echo "cuda:    ${cuda:-?}"
  echo "host:    ${cpu:-unknown CPU}, $(nproc) CPUs"
  echo "device:  TGC_DEVICE=$TGC_DEVICE"
}
header
echo "cache:   TGC_CACHE_DIR=$TGC_CACHE_DIR (fresh, removed at the end)"

# ---- the program ---------------------------------------------------------------

# Links the program with gcc alone: tgc's sources need packages this
# machine may lack, the program and the copied libtgc.a do not.
link() {
  if [ ! -f build/libtgc.a ]; then
    echo "gpu-check: build/libtgc.a is missing: run make where tgc builds and copy build/ here" >&2
    exit 2
  fi
  mkdir -p "$(dirname "$1")"
  echo "gpu-check: linking $1 from bench/gpu_check.c and build/libtgc.a"
  "${CC:-gcc}" -std=c11 -O2 -g -pthread -Iinclude -o "$1" bench/gpu_check.c build/libtgc.a \
    -ldl -lm -pthread
}

[ -x "$bin" ] || link "$bin"
# A binary from another machine may not start here (an older C library):
# then link a private one from the source.
if ! "$bin" --help >/dev/null 2>&1; then
  echo "gpu-check: $bin does not run here: $("$bin" --help 2>&1 | head -n 1)"
  bin=$logs/gpu_check
  link "$bin"
fi

# Runs the program under a time limit; its output goes to the terminal and
# to $logs/$1.log (only the failures and counts, with quiet); status in rc.
run() {
  local name=$1 limit=$2 quiet=$3
  shift 3
  echo
  echo "== gpu_check $* (limit ${limit} s)"
  set +e
  if [ "$quiet" = quiet ]; then
    timeout -k 5 "$limit" "$bin" "$@" >"$logs/$name.log" 2>&1
    rc=$?
    grep -E '^(FAIL|op checks|compile|gpu_check)' "$logs/$name.log"
  else
    timeout -k 5 "$limit" "$bin" "$@" 2>&1 | tee "$logs/$name.log"
    rc=${PIPESTATUS[0]}
  fi
  set -e
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "gpu-check: the $name run timed out after $limit s"
  fi
}

# Limits: the whole script within $budget s, whatever each run does; a run
# that overstays gets TERM, then KILL 5 s later.
left() { echo $((budget - (SECONDS - start))); }
cold_limit=$(($(left) - 45))
[ "$cold_limit" -gt 200 ] && cold_limit=200
run cold "$cold_limit" loud --reps "$reps"
cold_rc=$rc
if [ "$cold_rc" -eq 2 ]; then
  echo
  echo "== gpu-check: cannot open TGC_DEVICE=$TGC_DEVICE (message above); nothing was measured"
  exit 2
fi

warm_rc=0
warm_limit=$(($(left) - 5))
[ "$warm_limit" -gt 60 ] && warm_limit=60
if [ "$warm_limit" -ge 15 ]; then
  run warm "$warm_limit" quiet --checks-only --no-noopt
  warm_rc=$rc
else
  echo "gpu-check: no time left for the warm-cache run"
fi

# ---- the table, last ---------------------------------------------------------------

echo
echo "==================== gpu-check results ($((SECONDS - start)) s) ===================="
header
if grep -q '^== gpu_check table' "$logs/cold.log"; then
  sed -n '/^== gpu_check table/,$p' "$logs/cold.log" | sed 's/^== gpu_check table: /tgc:     /; s/^compile:/compile, cold cache:/'
else
  echo "no table: the first run stopped (status $cold_rc) before printing it; its last lines:"
  tail -n 15 "$logs/cold.log"
fi
if [ -f "$logs/warm.log" ]; then
  sed -n 's/^compile:/compile, warm cache:/p' "$logs/warm.log"
  sed -n 's/^op checks (default opts)/op checks (default opts, warm-cache run)/p' "$logs/warm.log"
fi
[ "$cold_rc" -ne 0 ] && exit "$cold_rc"
exit "$warm_rc"
