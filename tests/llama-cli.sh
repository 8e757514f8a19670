#!/usr/bin/env bash
# llama-cli.sh - tgc-llama's command line, end to end on the tiny preset.
#
#   tests/llama-cli.sh BUILD_DIR       (runs BUILD_DIR/tgc-llama)
#
# Checks --help, --tokenize, greedy and seeded generation, --logits-out,
# --tokens-in, --export and reading the export back, --quantize of a preset
# and of a file, and that bad input exits non-zero with a message that
# says what is wrong.  Prints one line per check and stops at the first
# failure.  The tiny preset (dim 64, 2 layers, vocab 512) runs in
# milliseconds once its kernels are compiled; they go to a private
# TGC_CACHE_DIR, so the first run compiles (a few seconds) and the others
# reuse them.  The device is whatever TGC_DEVICE (or the best available)
# gives: every comparison is between runs on the same device.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
if [ ! -x "$1/tgc-llama" ]; then
  echo "llama-cli: $1/tgc-llama is not there (make $1/tgc-llama)" >&2
  exit 2
fi
LLAMA=$(cd "$1" && pwd)/tgc-llama
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export TGC_CACHE_DIR=$T/cache
VOCAB=512 # the tiny preset's

ok() { echo "ok    $*"; }
die() {
  echo "FAIL  $*" >&2
  exit 1
}

# run NAME ARGS...: tgc-llama ARGS with stdout in $T/NAME.out and stderr in
# $T/NAME.err; it must exit 0.
run() {
  local name=$1
  shift
  if ! "$LLAMA" "$@" >"$T/$name.out" 2>"$T/$name.err"; then
    die "tgc-llama $* exited $?: $(tail -n 3 "$T/$name.err")"
  fi
}

# refuse WHAT PATTERN ARGS...: tgc-llama ARGS must exit non-zero with a
# message on stderr that matches the extended regular expression PATTERN.
refuse() {
  local what=$1 pattern=$2 rc=0
  shift 2
  "$LLAMA" "$@" >"$T/refuse.out" 2>"$T/refuse.err" || rc=$?
  [ "$rc" -ne 0 ] || die "$what: tgc-llama $* exited 0"
  [ "$rc" -lt 128 ] || die "$what: tgc-llama $* died of signal $((rc - 128)): $(cat "$T/refuse.err")"
  grep -Eq -- "$pattern" "$T/refuse.err" ||
    die "$what: tgc-llama $* exited $rc but its message does not match /$pattern/: $(cat "$T/refuse.err")"
  ok "$what (exit $rc: $(head -n 1 "$T/refuse.err"))"
}

# same A B WHAT: the files A and B are byte for byte equal.
same() { cmp -s "$1" "$2" || die "$3: $(basename "$1") and $(basename "$2") differ ($(cmp "$1" "$2" 2>&1 | head -n 1))"; }

# logits FILE ROWS: FILE holds ROWS rows of VOCAB little-endian f32, all
# finite and not all equal.
logits() {
  local bytes
  bytes=$(wc -c <"$1")
  [ "$bytes" -eq $(($2 * VOCAB * 4)) ] || die "$1: $bytes bytes, want $2 rows * $VOCAB * 4 = $(($2 * VOCAB * 4))"
  python3 - "$1" <<'EOF' || die "$1: logits not finite or all equal"
import math, struct, sys
data = open(sys.argv[1], "rb").read()
v = struct.unpack("<%df" % (len(data) // 4), data)
bad = [i for i, x in enumerate(v) if not math.isfinite(x)]
if bad:
    sys.exit("%d non-finite values, the first at %d: %r" % (len(bad), bad[0], v[bad[0]]))
if max(v) == min(v):
    sys.exit("every value is %r" % v[0])
EOF
}

# ---- --help ---------------------------------------------------------------

run help --help
for opt in -m --model -p -n --temp --top-k --top-p --seed --device --quantize --max-context --tokenize \
  --logits-out --tokens-in --export -q; do
  # the option as a word of its own: "-m," and "-m FILE" count, "--model-path" is not "--model"
  grep -Eq -- "(^|[ ,])$opt([ ,=]|$)" "$T/help.out" || die "--help does not mention $opt"
done
ok "--help exits 0 and names every option"

# ---- --tokenize -------------------------------------------------------------

# The preset tokenizer is <unk> <s> </s>, the byte tokens <0x00>..<0xFF> at
# 3 + byte, and pieces "▁t<i>" (i >= 259).  It adds BOS (1) and the space
# prefix, so "Hello" is encoded as "▁Hello".  No piece is a prefix of
# "▁Hello" (each is ▁, t, then digits), so nothing merges and every byte
# falls back to its byte token:
#   ▁ = e2 96 81 -> 3 + 226, 3 + 150, 3 + 129 = 229, 153, 132
#   H = 0x48 (72) -> 75, e = 0x65 (101) -> 104, l = 0x6c (108) -> 111 twice,
#   o = 0x6f (111) -> 114.
run tok --model tiny -p "Hello" --tokenize
want="[1, 229, 153, 132, 75, 104, 111, 111, 114]"
[ "$(cat "$T/tok.out")" = "$want" ] || die "--tokenize \"Hello\": $(cat "$T/tok.out"), want $want"
cp "$T/tok.out" "$T/hello.json"
ok "--tokenize \"Hello\" prints $want"

# ---- generation ----------------------------------------------------------------

# The first run compiles the kernels into the private cache.
run greedy1 --model tiny -p "Hi" -n 8 -q
run greedy2 --model tiny -p "Hi" -n 8 -q
same "$T/greedy1.out" "$T/greedy2.out" "greedy generation is not deterministic"
# The prompt is echoed, then 8 tokens (pieces of at least one byte), a newline.
[ "$(head -c 2 "$T/greedy1.out")" = "Hi" ] || die "greedy output does not start with the prompt: $(cat "$T/greedy1.out")"
[ "$(wc -c <"$T/greedy1.out")" -ge 11 ] || die "greedy output too short for 8 tokens: $(cat "$T/greedy1.out")"
[ ! -s "$T/greedy1.err" ] || die "-q still wrote to stderr: $(cat "$T/greedy1.err")"
ok "greedy generation is deterministic: \"$(tr -c '[:print:]' '?' <"$T/greedy1.out")\""

run summary --model tiny -p "Hi" -n 8
grep -q "tokens/s" "$T/summary.err" || die "no summary on stderr without -q: $(cat "$T/summary.err")"
same "$T/greedy1.out" "$T/summary.out" "the summary changed stdout"
ok "without -q the summary goes to stderr, stdout unchanged"

# Sampling: the same seed draws the same tokens; another seed (which also
# changes the preset's weights) others.  The tiny model's random weights
# give near-flat logits over 512 tokens, so two sequences of 8 agree by
# chance with a probability of about 512^-8.
sample=(--model tiny -p "Hi" -n 8 -q --temp 0.8 --top-k 40 --top-p 0.9)
run s7a "${sample[@]}" --seed 7
run s7b "${sample[@]}" --seed 7
run s8 "${sample[@]}" --seed 8
same "$T/s7a.out" "$T/s7b.out" "sampling with --seed 7 twice"
! cmp -s "$T/s7a.out" "$T/s8.out" || die "--seed 7 and --seed 8 sampled the same text"
ok "sampling is reproducible for a seed and differs across seeds"

# ---- --logits-out and --tokens-in --------------------------------------------------

run lo --model tiny -p "Hello" -n 5 -q --logits-out "$T/hello.f32"
logits "$T/hello.f32" 5
ok "--logits-out with -n 5 writes 5 * $VOCAB finite f32"

# The rows of a shorter run are the first rows of a longer one.
run lo2 --model tiny -p "Hello" -n 2 -q --logits-out "$T/hello2.f32"
logits "$T/hello2.f32" 2
cmp -s -n $((2 * VOCAB * 4)) "$T/hello.f32" "$T/hello2.f32" || die "-n 2 logits are not the first 2 rows of -n 5"
ok "-n 2 writes the first 2 rows of -n 5"

run ti --model tiny --tokens-in "$T/hello.json" -n 5 -q --logits-out "$T/ids.f32"
same "$T/hello.f32" "$T/ids.f32" "--tokens-in of the --tokenize ids against the prompt run"
ok "--tokens-in with --tokenize's ids gives the prompt run's logits"

# ---- --export and -m ----------------------------------------------------------------

run export --model tiny --export "$T/tiny.gguf" -q
[ -s "$T/tiny.gguf" ] || die "--export wrote no $T/tiny.gguf"
ok "--export writes tiny.gguf ($(wc -c <"$T/tiny.gguf") bytes)"

run file -m "$T/tiny.gguf" -p "Hi" -n 8 -q
same "$T/greedy1.out" "$T/file.out" "-m tiny.gguf against --model tiny (text)"
run file_lo -m "$T/tiny.gguf" -p "Hello" -n 5 -q --logits-out "$T/file.f32"
same "$T/hello.f32" "$T/file.f32" "-m tiny.gguf against --model tiny (logits)"
ok "-m tiny.gguf generates the preset's text and logits"

# ---- --quantize ---------------------------------------------------------------------

# A preset is generated in the type (f32 values quantized row by row); a
# file of f32 is converted at load by the same quantizer, so both give
# the same weights and the same logits, which are not the f32 ones.
for q in q8_0 nf4; do
  run "pq_$q" --model tiny -p "Hello" -n 5 -q --quantize "$q" --logits-out "$T/preset_$q.f32"
  logits "$T/preset_$q.f32" 5
  run "fq_$q" -m "$T/tiny.gguf" -p "Hello" -n 5 -q --quantize "$q" --logits-out "$T/file_$q.f32"
  logits "$T/file_$q.f32" 5
  same "$T/preset_$q.f32" "$T/file_$q.f32" "--quantize $q: preset generated in $q against the file converted at load"
  ! cmp -s "$T/preset_$q.f32" "$T/hello.f32" || die "--quantize $q gives the f32 logits: nothing was quantized"
  run "sq_$q" --model tiny -p "Hi" -n 4 --quantize "$q"
  grep -q "($q)" "$T/sq_$q.err" || die "--quantize $q: the summary does not name $q: $(cat "$T/sq_$q.err")"
  ok "--quantize $q: preset and -m file both run, agree, and differ from f32"
done
run q_int8 --model tiny -p "Hello" -n 5 -q --quantize int8 --logits-out "$T/preset_int8.f32"
same "$T/preset_q8_0.f32" "$T/preset_int8.f32" "--quantize int8 against q8_0"
ok "--quantize int8 is q8_0"

# ---- bad input ------------------------------------------------------------------------

refuse "no model" "give a model" -p "Hi"
refuse "both -m and --model" "give a model" --model tiny -m "$T/tiny.gguf"
refuse "unknown preset" 'unknown preset.*nosuchmodel' --model nosuchmodel
refuse "-m on a missing file" "$T/missing.gguf" -m "$T/missing.gguf"
size=$(wc -c <"$T/tiny.gguf")
head -c $((size / 2)) "$T/tiny.gguf" >"$T/half.gguf"
refuse "-m on the first half of tiny.gguf" 'half\.gguf.*(truncated|outside the file|past the end)' -m "$T/half.gguf"
head -c 10 "$T/tiny.gguf" >"$T/head.gguf"
refuse "-m on the first 10 bytes of tiny.gguf" 'head\.gguf.*truncated' -m "$T/head.gguf"
refuse "--quantize bogus" "--quantize bogus" --model tiny --quantize bogus
refuse "--export of nf4 (GGUF has no nf4)" "nf4" --model tiny --quantize nf4 --export "$T/nf4.gguf"
refuse "unknown option" "unknown option --frobnicate" --model tiny --frobnicate 1
refuse "option without its value" "-n needs a value" --model tiny -n
refuse "prompt + -n beyond the context" "do not fit" --model tiny -p "Hi" -n 200

# --tokens-in: ids outside 0..VOCAB-1 (512 is the first one past the end),
# and files that are not a JSON array of integers.
bad_ids() {
  printf '%s' "$2" >"$T/bad.json"
  refuse "--tokens-in $2 ($1)" "$3" --model tiny --tokens-in "$T/bad.json" -n 2 -q
}
bad_ids "the vocabulary's size" "[1, $VOCAB, 3]" "token $VOCAB is outside the vocabulary"
bad_ids "negative" "[1, -1]" "token -1 is outside the vocabulary"
bad_ids "beyond 32 bits, 2^32 + 1" "[1, 4294967297]" "4294967297 is outside the vocabulary"
bad_ids "empty" "[]" "no token ids"
bad_ids "no closing bracket" "[1, 75" "bad\.json.*JSON array"
bad_ids "not an integer" "[1, 7.5]" "bad\.json.*JSON array"
refuse "--tokens-in of a missing file" "cannot open .*none\.json" --model tiny --tokens-in "$T/none.json"

echo "llama-cli: all checks passed"
