#!/usr/bin/env bash
# tests/embed/run.sh - the embedding test: tgc as a user gets it.
#
# Installs tgc into a temporary prefix with `make install PREFIX=...`, copies
# tests/embed/main.c out of the tree, builds it with nothing but pkg-config's
# flags (once against the shared library, once against the static one with
# --static), and runs both.  `make test` runs this after the Criterion suite.
#
# Environment: MAKE (default make); EMBED_CFLAGS, extra flags for compiling
# and linking main.c (make passes the sanitizer flags under SANITIZE); CC
# (default cc); PKG_CONFIG (default pkg-config).  The make variables of the
# calling make (SANITIZE, CFLAGS, ...) reach the install through MAKEFLAGS.
set -euo pipefail

# Under `make -n test` the install below would only be printed: skip.
mflags=${MAKEFLAGS:-}
mflags=${mflags%% *}
if [[ $mflags != -* && $mflags == *n* ]]; then
  echo "embed: dry run (make -n): skipped"
  exit 0
fi

root=$(cd "$(dirname "$0")/../.." && pwd)
MAKE=${MAKE:-make}
CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
read -r -a extra <<<"${EMBED_CFLAGS:-}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tgc-embed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$MAKE" -C "$root" -s --no-print-directory install PREFIX="$tmp/prefix" \
  ${SANITIZE:+SANITIZE="$SANITIZE"}

cp "$root/tests/embed/main.c" "$tmp/main.c"
cd "$tmp"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
cflags=$("$PKG_CONFIG" --cflags tgc)
libs=$("$PKG_CONFIG" --libs tgc)
static_libs=$("$PKG_CONFIG" --static --libs tgc)
warn=(-std=c11 -g -Wall -Wextra -Werror)

# shellcheck disable=SC2086 # pkg-config output is a list of words
"$CC" "${warn[@]}" "${extra[@]}" $cflags main.c -o embed $libs
# With libtgc.a named first, --static's Libs.private must resolve the rest;
# --as-needed drops the unused -ltgc shared library.
# shellcheck disable=SC2086
"$CC" "${warn[@]}" "${extra[@]}" $cflags main.c -o embed-static \
  "$tmp/prefix/lib/libtgc.a" -Wl,--as-needed $static_libs
if command -v c++ >/dev/null; then
  # The public header must also be clean C++ (extern "C").
  # shellcheck disable=SC2086
  echo '#include <tgc.h>' | c++ -Wall -Wextra -Werror $cflags -x c++ -fsyntax-only -
fi

export TGC_CACHE_DIR="$tmp/cache"
LD_LIBRARY_PATH="$tmp/prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ./embed
if ldd ./embed-static | grep -q libtgc; then
  echo "embed: embed-static still needs libtgc.so" >&2
  exit 1
fi
./embed-static
