#!/usr/bin/env bash
# tgc-bench.sh - tgc-bench end to end on the tiny preset.
#
#   tests/tgc-bench.sh BUILD_DIR       (runs BUILD_DIR/tgc-bench)
#
# Checks the statistics self-test, --help, bad options (exit 2 with a
# message), one full run with every output (--json, --csv, --plot,
# --timing, --profile) and what each file must hold, that the torch
# frameworks either ran or are named as unavailable with a reason, and the
# regression check (--baseline) against the run's own JSON (exit 0) and a
# doctored one whose ratios are far better (exit 3).  Prints one line per
# check and stops at the first failure.  The device is whatever TGC_DEVICE
# (or the best available) gives; the libtorch module is used when built
# (BUILD_DIR/libtgc-compare.so or TGC_COMPARE_LIB).  About 10 s on 2 cores.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
if [ ! -x "$1/tgc-bench" ]; then
  echo "tgc-bench.sh: $1/tgc-bench is not there (make $1/tgc-bench)" >&2
  exit 2
fi
BENCH=$(cd "$1" && pwd)/tgc-bench
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export TMPDIR=$T # tgc-bench's own temporary folders (kernel caches) land here too

ok() { echo "ok    $*"; }
die() {
  echo "FAIL  $*" >&2
  exit 1
}

# expect RC NAME ARGS...: tgc-bench ARGS exits RC; stdout in $T/NAME.out,
# stderr in $T/NAME.err.
expect() {
  local want=$1 name=$2 rc=0
  shift 2
  "$BENCH" "$@" >"$T/$name.out" 2>"$T/$name.err" || rc=$?
  [ "$rc" -eq "$want" ] || die "tgc-bench $* exited $rc, want $want: $(tail -n 5 "$T/$name.err" "$T/$name.out")"
}

# ---- the statistics ---------------------------------------------------------

expect 0 selftest --self-test
grep -q FAIL "$T/selftest.out" && die "--self-test: $(grep FAIL "$T/selftest.out")"
ok "--self-test: incomplete beta, t-distribution and Welch's test match known values ($(grep -c '^ok' "$T/selftest.out") checks)"

# ---- --help and bad options -------------------------------------------------------

expect 0 help --help
for opt in --framework --model --model-path --device --quantize --prompt-len --gen-len --iterations --timing \
  --profile --cold-runs --json --csv --plot --baseline --threshold --check --pytorch-no-compile --pytorch-no-half \
  --seed --self-test --help; do
  grep -Eq -- "^  $opt( |$)" "$T/help.out" || die "--help does not list $opt"
done
ok "--help lists every option"

# refuse NAME PATTERN ARGS...: exit 2 with a message matching PATTERN.
refuse() {
  local name=$1 pattern=$2
  shift 2
  expect 2 "$name" "$@"
  grep -Eq -- "$pattern" "$T/$name.err" || die "tgc-bench $*: exit 2, but the message does not match /$pattern/: $(cat "$T/$name.err")"
  ok "refused: $* ($(head -n 1 "$T/$name.err"))"
}
refuse bad1 "unknown option --frobnicate" --frobnicate
refuse bad2 "--iterations needs a value" --model tiny --iterations
refuse bad3 "--iterations x" --iterations x
refuse bad4 "--quantize q9" --quantize q9
refuse bad5 "--framework jax" --framework jax
refuse bad6 "--model or --model-path" --model tiny --model-path x.gguf
refuse bad7 "--prompt-len 1" --prompt-len 1
refuse bad8 "--check needs --baseline" --check x.json
refuse bad9 "--threshold -1" --threshold -1

# ---- one full run --------------------------------------------------------------------

expect 0 run --model tiny --iterations 5 --cold-runs 1 --json "$T/r.json" --csv "$T/r.csv" --plot "$T/r.svg" \
  --timing --profile
for want in "steady state (ms/token)" "cold start, empty cache (ms)" "cold start, warm cache (ms)" "model load (s)" \
  "throughput (tok/s)" "peak memory, RSS (GB)" "precision" "statistics" "per-iteration latency" "1 cold" \
  "memory, tgc" "KV cache" "kernels of the steady-state step"; do
  grep -qF -- "$want" "$T/run.out" || die "the report lacks \"$want\": $(cat "$T/run.out")"
done
ok "the report has the table, the statistics, --timing and --profile"

python3 -m json.tool "$T/r.json" >/dev/null || die "r.json is not JSON"
python3 - "$T/r.json" <<'EOF' || die "r.json lacks a documented key"
import json, sys
j = json.load(open(sys.argv[1]))
def need(obj, keys, where):
    for k in keys:
        if k not in obj:
            sys.exit("%s has no key %r" % (where, k))
need(j, ["tool", "schema", "git", "machine", "settings", "runs", "ratios", "warnings"], "the top level")
need(j["git"], ["commit", "source", "dirty"], "git")
need(j["machine"], ["cpu", "cores", "memory_gb", "device", "threads"], "machine")
need(j["settings"], ["model", "frameworks", "quantize", "prompt_len", "gen_len", "iterations", "cold_runs",
                     "steady_from"], "settings")
run = j["runs"][0]
need(run, ["quantize", "model", "read_baseline_gbs", "frameworks", "profile"], "runs[0]")
tgc = run["frameworks"]["tgc"]
need(tgc, ["available", "precision", "load_s", "cold_start_empty_cache_ms", "cold_start_warm_cache_ms", "steady_ms",
           "throughput_tok_s", "weight_gbs", "peak_rss_gb", "peak_tgc_buffers_gb", "iterations_ms"], "tgc")
need(tgc["steady_ms"], ["n", "median", "p10", "p90", "cv"], "tgc.steady_ms")
if len(tgc["iterations_ms"]) != 5:
    sys.exit("tgc.iterations_ms has %d values, want 5" % len(tgc["iterations_ms"]))
need(run["profile"], ["weights_bytes", "kv_cache_bytes", "tgc_peak_bytes", "activations_runtime_bytes", "kernels"],
     "profile")
if not run["profile"]["kernels"]:
    sys.exit("profile.kernels is empty")
for fw in ["torch-opt", "torch-base"]:
    f = run["frameworks"].get(fw)
    if f is None:
        sys.exit("runs[0].frameworks has no %s" % fw)
    if f["available"]:
        need(f, ["steady_ms", "speedup_of_tgc", "p_value", "agreement"], fw)
    elif not f.get("reason"):
        sys.exit("%s is unavailable without a reason" % fw)
EOF
ok "r.json parses and has the documented keys"

for fw in torch-opt torch-base; do
  if grep -q "^$fw: not available: ." "$T/run.out"; then
    ok "$fw: $(grep "^$fw: not available" "$T/run.out")"
  else
    grep -Eq "^ .* $fw( |$)" "$T/run.out" || die "$fw is neither a column of the table nor named as unavailable"
    ok "$fw ran: a column of the table"
  fi
done

head -n 1 "$T/r.csv" | grep -q "^quantize,framework,metric,index,unit,value,n,p10,p90,cv$" ||
  die "r.csv header: $(head -n 1 "$T/r.csv")"
grep -q "^f32,tgc,steady_state,,ms," "$T/r.csv" || die "r.csv has no tgc steady_state row"
[ "$(grep -c '^f32,tgc,iteration,' "$T/r.csv")" -eq 5 ] || die "r.csv has not 5 tgc iteration rows"
ok "r.csv has the header and $(($(wc -l <"$T/r.csv") - 1)) rows"

python3 - "$T/r.svg" <<'EOF' || die "r.svg is not the plot it should be"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
if not root.tag.endswith("svg"):
    sys.exit("the root element is %s, not svg" % root.tag)
texts = [t.text or "" for t in root.iter() if t.tag.endswith("text")]
for want in ["iteration", "latency per iteration (ms, log scale)", "tgc f32", "tgc-bench: decode latency"]:
    if not any(want in t for t in texts):
        sys.exit("no text %r in the plot (axis labels, legend, title)" % want)
if not any(t.tag.endswith("polyline") for t in root.iter()):
    sys.exit("no data line")
EOF
grep -q "<svg" "$T/r.svg" || die "r.svg has no <svg"
ok "r.svg is well-formed SVG with a title, axis labels, a legend and data"

# ---- the regression check ---------------------------------------------------------

expect 0 check_self --check "$T/r.json" --baseline "$T/r.json" --threshold 0.05
grep -q "bandwidth_fraction" "$T/check_self.out" || die "--check printed no ratio: $(cat "$T/check_self.out")"
ok "--baseline against its own JSON: exit 0"

python3 - "$T/r.json" "$T/better.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
j["ratios"] = {k: v * 1000 for k, v in j["ratios"].items()}
json.dump(j, open(sys.argv[2], "w"), indent=1)
EOF
expect 3 check_better --check "$T/r.json" --baseline "$T/better.json" --threshold 0.05
grep -q "REGRESSED" "$T/check_better.out" || die "no REGRESSED line: $(cat "$T/check_better.out")"
ok "--baseline against a doctored JSON (ratios x1000): exit 3, $(grep -c REGRESSED "$T/check_better.out") regressed"

expect 3 run_better --model tiny --iterations 5 --cold-runs 0 --baseline "$T/better.json" --threshold 0.05
ok "a fresh run with --baseline against the doctored JSON: exit 3"

echo '{"no": "ratios"}' >"$T/junk.json"
expect 1 check_junk --check "$T/r.json" --baseline "$T/junk.json"
ok "--baseline with a file without ratios: exit 1 ($(grep -m1 ratios "$T/check_junk.out"))"

# ---- the module lookup --------------------------------------------------------------

expect 0 nolib --model tiny --iterations 4 --cold-runs 0 --framework tgc torch-base
TGC_COMPARE_LIB=$T/none.so expect 0 nolib2 --model tiny --iterations 4 --cold-runs 0 --framework torch-base
grep -q "^torch-base: not available: TGC_COMPARE_LIB=$T/none.so: no such file" "$T/nolib2.out" ||
  die "a missing TGC_COMPARE_LIB is not named: $(head -n 5 "$T/nolib2.out")"
grep -q "^tgc: runs too" "$T/nolib2.out" || die "--framework torch-base alone does not say that tgc runs as the reference"
ok "a missing TGC_COMPARE_LIB makes torch unavailable, named with the path"

echo "tgc-bench.sh: all checks passed"
