#!/usr/bin/env bash
# run.sh - runs tgc's benchmarks and prints what bench/RESULTS.md records:
# the date, the machine, the thread count and each program's table.
#
#   TGC_BENCH_DIR=build/bench bash bench/run.sh      (what `make bench` does)
#
# TGC_BENCH_DIR holds the binaries (make builds them there).  TGC_THREADS
# (default: the number of online CPUs) is exported so that tgc and the
# baselines use the same thread count.  Exits non-zero if any program fails;
# the others still run.
set -u

dir=${TGC_BENCH_DIR:?set TGC_BENCH_DIR to the folder of the benchmark binaries}
export TGC_THREADS=${TGC_THREADS:-$(nproc)}

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
l3=$(getconf LEVEL3_CACHE_SIZE 2>/dev/null || echo 0)
echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine:  ${cpu:-unknown CPU}, $(nproc) CPUs online, L3 $((${l3:-0} / 1048576)) MiB"
echo "threads:  TGC_THREADS=$TGC_THREADS"
echo "compiler: ${TGC_CC:-cc} ($(${TGC_CC:-cc} --version 2>/dev/null | head -n 1))"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; other work on the machine skews the figures)"

status=0
for prog in matvec compile jit llama; do
  echo
  echo "== $prog"
  if [ ! -x "$dir/$prog" ]; then
    echo "run.sh: $dir/$prog is missing (make bench builds it)" >&2
    status=1
    continue
  fi
  "$dir/$prog"
  rc=$?
  if [ $rc -ne 0 ]; then
    echo "run.sh: $prog failed with exit status $rc" >&2
    status=1
  fi
done
exit $status
