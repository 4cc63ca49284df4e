#!/bin/sh
# Build the libFuzzer target for the xmpp connector's inbound path
# (tests/fuzz/fuzz-xmpp-stanza.c) with clang and run it for a bounded time
# ($FUZZ_TIME seconds, default 30) from the seed corpus tests/fuzz/corpus-xmpp/
# (which also holds the reproducers of findings: they must all pass).
# TAP; skips only when clang is not installed (Debian: clang
# libclang-rt-14-dev).  The fuzzer's new inputs go to a temporary folder;
# a crash input is kept under the build folder's tests/fuzz/.
. "${IMGW_SRCDIR:-.}/tests/fuzz/fuzz-lib.sh"
fuzz_begin fuzz-xmpp-stanza

# The connector's own sources, conn.c replaced by the target's stubs; the
# core's event validation for the fake host's emit.
fuzz_build "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -Wall -Wextra \
    -I"$builddir" -I"$srcdir/core" -I"$srcdir/sdk/include" \
    -I"$srcdir/plugins/xmpp" $(pkg-config --cflags libstrophe) \
    "$srcdir/tests/fuzz/fuzz-xmpp-stanza.c" \
    "$srcdir/plugins/xmpp/stanza-in.c" "$srcdir/plugins/xmpp/jid.c" \
    "$srcdir/plugins/xmpp/stanza-out.c" "$srcdir/plugins/xmpp/disco.c" \
    "$srcdir/plugins/xmpp/outq.c" "$srcdir/plugins/xmpp/subs.c" \
    "$srcdir/core/ev.c" "$srcdir/core/address.c" "$srcdir/core/util.c" \
    $(pkg-config --libs libstrophe) -o "$bin"

if "$bin" -runs=0 "$srcdir/tests/fuzz/corpus-xmpp" >"$work/seed.log" 2>&1; then
	echo "ok 2 - the seed corpus and the saved reproducers run clean"
else
	echo "not ok 2 - the seed corpus and the saved reproducers run clean"
	tail -n 40 "$work/seed.log" | diag
fi

mkdir -p "$work/corpus"
cp "$srcdir"/tests/fuzz/corpus-xmpp/* "$work/corpus/"
fuzz_run 8192
