#!/bin/sh
# Build the libFuzzer target for the xmpp connector's inbound path
# (tests/fuzz/fuzz-xmpp-stanza.c) with clang and run it for a bounded time
# ($FUZZ_TIME seconds, default 30) from the seed corpus tests/fuzz/corpus-xmpp/
# (which also holds the reproducers of findings: they must all pass).
# TAP; skips only when clang is not installed (Debian: clang
# libclang-rt-14-dev).  The fuzzer's new inputs go to a temporary folder;
# a crash input is kept under the build folder's tests/fuzz/.
srcdir=${IMGW_SRCDIR:-.}
builddir=${IMGW_BUILDDIR:-.}
CLANG=${CLANG:-clang}
FUZZ_TIME=${FUZZ_TIME:-30}

echo "1..3"
if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "ok 1 # SKIP clang is not installed (Debian: clang libclang-rt-14-dev)"
	echo "ok 2 # SKIP no fuzzer"
	echo "ok 3 # SKIP no fuzzer"
	exit 0
fi

out=$builddir/tests/fuzz
mkdir -p "$out" || exit 1
bin=$out/fuzz-xmpp-stanza
work=$(mktemp -d "${TMPDIR:-/tmp}/imgw-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

diag() { sed 's/^/# /' "$@"; }

# The connector's own sources, conn.c replaced by the target's stubs; the
# core's event validation for the fake host's emit.
if "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -Wall -Wextra \
    -I"$builddir" -I"$srcdir/core" -I"$srcdir/sdk/include" \
    -I"$srcdir/plugins/xmpp" $(pkg-config --cflags libstrophe) \
    "$srcdir/tests/fuzz/fuzz-xmpp-stanza.c" \
    "$srcdir/plugins/xmpp/stanza-in.c" "$srcdir/plugins/xmpp/jid.c" \
    "$srcdir/plugins/xmpp/stanza-out.c" "$srcdir/plugins/xmpp/disco.c" \
    "$srcdir/plugins/xmpp/outq.c" "$srcdir/plugins/xmpp/subs.c" \
    "$srcdir/core/ev.c" "$srcdir/core/address.c" "$srcdir/core/util.c" \
    $(pkg-config --libs libstrophe) -o "$bin" >"$work/build.log" 2>&1; then
	echo "ok 1 - fuzz-xmpp-stanza builds with $CLANG (-fsanitize=fuzzer,address,undefined)"
else
	echo "not ok 1 - fuzz-xmpp-stanza builds with $CLANG"
	diag "$work/build.log"
	echo "# (the libFuzzer runtime is in Debian's libclang-rt-14-dev)"
	echo "not ok 2 - # SKIP not built"
	echo "not ok 3 - # SKIP not built"
	exit 1
fi

if "$bin" -runs=0 "$srcdir/tests/fuzz/corpus-xmpp" >"$work/seed.log" 2>&1; then
	echo "ok 2 - the seed corpus and the saved reproducers run clean"
else
	echo "not ok 2 - the seed corpus and the saved reproducers run clean"
	tail -n 40 "$work/seed.log" | diag
fi

mkdir -p "$work/corpus"
cp "$srcdir"/tests/fuzz/corpus-xmpp/* "$work/corpus/"
if "$bin" -max_total_time="$FUZZ_TIME" -max_len=8192 -timeout=10 \
    -artifact_prefix="$work/" -print_final_stats=1 "$work/corpus" \
    >"$work/fuzz.log" 2>&1; then
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
	echo "ok 3 - ${FUZZ_TIME}s of fuzzing (${runs:-?} inputs) found no crash"
else
	echo "not ok 3 - ${FUZZ_TIME}s of fuzzing found no crash"
	tail -n 60 "$work/fuzz.log" | diag
	for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
		[ -f "$f" ] || continue
		cp "$f" "$out/" && echo "# input kept: $out/$(basename "$f")"
	done
fi
