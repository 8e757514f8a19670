#!/usr/bin/env bash
# gpu-check.sh - tgc on an NVIDIA GPU: op checks against f64 references,
# matvec GB/s next to a device-to-device copy, NVRTC cold and warm compile
# time, and the JIT's replay of a 100-kernel step as one CUDA graph against
# plain launches.  Prints its table last; finishes within 5 minutes.
#
#   bash bench/gpu-check.sh          (or `make gpu-check`), from anywhere
#
# Made for a machine with the NVIDIA driver, the CUDA toolkit, gcc and make,
# but without the Debian packages tgc builds with and without network: build
# tgc where it builds (`make && make bench`, which writes
# build/bench/gpu_check), copy the whole tree with build/ over, run this.
# Nothing of tgc is rebuilt here; only if build/bench/gpu_check (or
# build/bench/jit) is missing, or does not start on this machine, is the
# program linked with gcc from its sources (bench/gpu_check.c and
# bench/gpu/*.c; bench/jit.c) and build/libtgc.a.
#
# Two runs of build/bench/gpu_check on one fresh TGC_CACHE_DIR: the first
# (empty cache) runs the op checks, the matvec table and the op checks again
# under TGC_NOOPT=1, and counts the cold NVRTC compiles; the second runs the
# op checks alone on the now warm cache.  Then build/bench/jit twice, with
# TGC_JIT=1 (replay as a CUDA graph) and TGC_JIT=2 (replay as plain
# launches), --device-sync: the replay time of its 100-kernel step per
# launch, each replay ending with a device sync, and a checksum of its
# outputs, which must be equal in both modes.  Exit status: the first
# failing run's (1: a check failed, or the two JIT modes disagree; 2: no
# CUDA device; 124: timed out), else 0.
#
#   TGC_DEVICE          device to check (default cuda; cpu tests the script)
#   TGC_GPU_CHECK_BIN   the program (default build/bench/gpu_check)
#   TGC_GPU_CHECK_JIT_BIN  the JIT benchmark (default build/bench/jit)
#   TGC_GPU_CHECK_REPS  repetitions per matvec timing (default 50)
set -euo pipefail

cd "$(dirname "$0")/.."
start=$SECONDS
budget=285 # seconds for everything, under the 5 minutes with room to spare

export TGC_DEVICE=${TGC_DEVICE:-cuda}
unset TGC_NOOPT TGC_CACHE # the first pass uses the default opts; the cache must be on
bin=${TGC_GPU_CHECK_BIN:-build/bench/gpu_check}
jbin=${TGC_GPU_CHECK_JIT_BIN:-build/bench/jit}
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

# Links program $1 from its sources, $2 and any after it, with gcc alone:
# tgc's sources need packages this machine may lack, the program and the
# copied libtgc.a do not.  Non-zero status if it cannot.
link() {
  if [ ! -f build/libtgc.a ]; then
    echo "gpu-check: build/libtgc.a is missing: run make where tgc builds and copy build/ here" >&2
    return 2
  fi
  mkdir -p "$(dirname "$1")"
  echo "gpu-check: linking $1 from ${*:2} and build/libtgc.a"
  "${CC:-gcc}" -std=c11 -O2 -g -pthread -Iinclude -o "$1" "${@:2}" build/libtgc.a -ldl -lm -pthread
}

# Sets the variable named $1, a program's path, to a program that runs
# here: the one named, linked from its sources ($2, its main, and any after
# it) if missing; or, if it does not start here (a binary from another
# machine: an older C library), a private one linked from the sources.
# Non-zero status if none can be had.
runnable() {
  local -n prog=$1
  if [ ! -x "$prog" ]; then link "$prog" "${@:2}" || return; fi
  if ! "$prog" --help >/dev/null 2>&1; then
    echo "gpu-check: $prog does not run here: $("$prog" --help 2>&1 | head -n 1)"
    prog=$logs/$(basename "$2" .c)
    link "$prog" "${@:2}" || return
  fi
}
runnable bin bench/gpu_check.c bench/gpu/*.c || exit $?
# Without its program only the JIT part is skipped.
if ! runnable jbin bench/jit.c; then
  echo "gpu-check: no runnable $jbin; the JIT part will be skipped"
  jbin=
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
jit_reserve=125 # seconds kept for the two JIT runs (65) and the llama decode (60) at the end
cold_limit=$(($(left) - 45 - jit_reserve))
[ "$cold_limit" -gt 200 ] && cold_limit=200
run cold "$cold_limit" loud --reps "$reps"
cold_rc=$rc
if [ "$cold_rc" -eq 2 ]; then
  echo
  echo "== gpu-check: cannot open TGC_DEVICE=$TGC_DEVICE (message above); nothing was measured"
  exit 2
fi

warm_rc=0
warm_limit=$(($(left) - 5 - jit_reserve))
[ "$warm_limit" -gt 60 ] && warm_limit=60
if [ "$warm_limit" -ge 15 ]; then
  run warm "$warm_limit" quiet --checks-only --no-noopt
  warm_rc=$rc
else
  echo "gpu-check: no time left for the warm-cache run"
fi

# ---- the JIT: a 100-kernel step replayed as a CUDA graph and as plain launches ----

# Runs build/bench/jit --device-sync with TGC_JIT=$1 under a time limit;
# the log is $logs/jit$1.log, of which the per-call rows after call 3 are
# left off the terminal; status in rc.  Its temporary cache dir lies under
# $logs, so a killed run leaves nothing behind.
run_jit() {
  local mode=$1 limit=$2
  echo
  echo "== jit --device-sync, TGC_JIT=$mode (limit ${limit} s)"
  set +e
  TMPDIR=$logs TGC_JIT=$mode timeout -k 5 "$limit" "$jbin" --device-sync >"$logs/jit$mode.log" 2>&1
  rc=$?
  set -e
  grep -vE '^ +([4-9]|1[0-9]|20) ' "$logs/jit$mode.log" || true
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "gpu-check: the TGC_JIT=$mode run timed out after $limit s"
  fi
}
# Field $2 of run $1's "result:" line, and its checksum ("" if missing).
jit_field() { sed -n "s/^result: .* $2 \([0-9.]*\).*/\1/p" "$logs/jit$1.log" 2>/dev/null; }
jit_sum() { sed -n 's/^checksum: //p' "$logs/jit$1.log" 2>/dev/null; }

jit_rc=0
for mode in 1 2; do
  jit_limit=$((($(left) - 5) / (3 - mode)))
  [ "$jit_limit" -gt 30 ] && jit_limit=30
  if [ -z "$jbin" ]; then
    break
  elif [ "$jit_limit" -lt 10 ]; then
    echo "gpu-check: no time left for the TGC_JIT=$mode run"
  else
    run_jit "$mode" "$jit_limit"
    [ "$jit_rc" -eq 0 ] && jit_rc=$rc
  fi
done
# The two modes launch the same kernels on the same inputs: their outputs
# must be equal bit for bit, so must the checksums.

# LLaMA decode on the device: llama3-1b in f16, next to the copy bandwidth
# the cold run measured (aim: weight GB/s >= 80% of it).  Needs the
# benchmark built where tgc builds (it links llama/ and PCRE2, and is
# compiled for the build machine's CPU, whose host baseline it times).
lbin=${TGC_GPU_CHECK_LLAMA_BIN:-build/bench/llama}
llama_limit=$(($(left) - 5))
echo
if [ ! -x "$lbin" ] || ! "$lbin" --help >/dev/null 2>&1; then
  echo "== llama: $lbin is missing or does not run here; skipped"
elif [ "$llama_limit" -lt 40 ]; then
  echo "== llama: no time left (${llama_limit} s); skipped"
else
  echo "== llama llama3-1b:f16 on $TGC_DEVICE (limit ${llama_limit} s)"
  set +e
  BENCH_TOKENS=16 timeout -k 5 "$llama_limit" "$lbin" llama3-1b:f16 2>&1 | tail -n 5
  set -e
  grep -iE 'copy|d2d' "$logs/cold.log" | head -n 3 || true
fi
agree="no answer: a JIT run did not finish"
if [ -n "$(jit_sum 1)" ] && [ -n "$(jit_sum 2)" ]; then
  if [ "$(jit_sum 1)" = "$(jit_sum 2)" ]; then
    agree="yes (checksum $(jit_sum 1))"
  else
    agree="NO (TGC_JIT=1: $(jit_sum 1), TGC_JIT=2: $(jit_sum 2))"
    [ "$jit_rc" -eq 0 ] && jit_rc=1
  fi
fi
[ -z "$jbin" ] && agree="not measured: no runnable jit program"

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
graph_note=""
[ "$TGC_DEVICE" != cuda ] && graph_note=" ($TGC_DEVICE has no graphs: both are plain launches)"
u1=$(jit_field 1 synced_us_per_launch) u2=$(jit_field 2 synced_us_per_launch)
h1=$(jit_field 1 host_us_per_launch) h2=$(jit_field 2 host_us_per_launch) nj=$(jit_field 1 nojit_us_per_launch)
echo "100-kernel step: replay us/launch: graph ${u1:-n/a}, plain ${u2:-n/a}" \
     "(TGC_JIT=1 and 2; each replay ends with a device sync)$graph_note"
echo "100-kernel step: host us/launch, the call alone: graph ${h1:-n/a}, plain ${h2:-n/a};" \
     "without the JIT ${nj:-n/a}"
echo "results agree between modes: $agree"
g1=$(sed -n 's/^graph replays: //p' "$logs/jit1.log" 2>/dev/null)
echo "TGC_JIT=1 graph replays: ${g1:-n/a}"
[ "$cold_rc" -ne 0 ] && exit "$cold_rc"
[ "$warm_rc" -ne 0 ] && exit "$warm_rc"
exit "$jit_rc"
