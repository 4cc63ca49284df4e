#!/bin/sh
# Build the libFuzzer target for plugins/common/dns.c's answer handling
# (tests/fuzz/fuzz-dns.c: NAPTR, SRV, A/AAAA answers from an untrusted
# server) with clang and run it for a bounded time ($FUZZ_TIME seconds,
# default 30) from the seeds tests/fuzz/dns-seeds.py writes.  TAP; skips
# only when clang is not installed (Debian: clang libclang-rt-14-dev).  A
# crash input is kept under the build folder's tests/fuzz/.
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
bin=$out/fuzz-dns
work=$(mktemp -d "${TMPDIR:-/tmp}/imgw-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

diag() { sed 's/^/# /' "$@"; }

if "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -Wall -Wextra -I"$srcdir/sdk/include" \
    "$srcdir/tests/fuzz/fuzz-dns.c" "$srcdir/plugins/common/dns.c" \
    $(pkg-config --libs openssl) -lresolv -o "$bin" >"$work/build.log" 2>&1; then
	echo "ok 1 - fuzz-dns builds with $CLANG (-fsanitize=fuzzer,address,undefined)"
else
	echo "not ok 1 - fuzz-dns builds with $CLANG"
	diag "$work/build.log"
	echo "# (the libFuzzer runtime is in Debian's libclang-rt-14-dev)"
	echo "not ok 2 - # SKIP not built"
	echo "not ok 3 - # SKIP not built"
	exit 1
fi

mkdir -p "$work/corpus"
if python3 "$srcdir/tests/fuzz/dns-seeds.py" "$work/corpus" &&
    FUZZ_DNS_VERBOSE=1 "$bin" -runs=0 "$work/corpus" >"$work/seed.log" 2>&1 &&
    grep -q "lookup: 2 address(es), first host.example.com\[127.0.0.1\]:5060 service 1" \
    "$work/seed.log"; then
	echo "ok 2 - the seeds run clean (and NAPTR -> SRV -> A finds its target)"
else
	echo "not ok 2 - the seeds run clean (and NAPTR -> SRV -> A finds its target)"
	tail -n 40 "$work/seed.log" | diag
fi

if "$bin" -max_total_time="$FUZZ_TIME" -max_len=4096 -timeout=10 \
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
