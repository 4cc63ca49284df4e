#!/bin/sh
# Build the libFuzzer target for plugins/common/dns.c's answer handling
# (tests/fuzz/fuzz-dns.c: NAPTR, SRV, A/AAAA answers from an untrusted
# server) with clang and run it for a bounded time ($FUZZ_TIME seconds,
# default 30) from the seeds tests/fuzz/dns-seeds.py writes.  TAP; skips
# only when clang is not installed (Debian: clang libclang-rt-14-dev).  A
# crash input is kept under the build folder's tests/fuzz/.
. "${IMGW_SRCDIR:-.}/tests/fuzz/fuzz-lib.sh"
fuzz_begin fuzz-dns

fuzz_build "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -Wall -Wextra -I"$srcdir/sdk/include" \
    "$srcdir/tests/fuzz/fuzz-dns.c" "$srcdir/plugins/common/dns.c" \
    $(pkg-config --libs openssl) -lresolv -o "$bin"

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

fuzz_run 4096
