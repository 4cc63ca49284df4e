# Shared by the t-fuzz-*.sh scripts (sourced, not run): the TAP plan, the
# skip without clang, a work folder, and the bounded fuzzing run.
#
#   fuzz_begin NAME      plan 1..3; exits 0 after three skips without
#                        clang; sets srcdir, builddir, CLANG, FUZZ_TIME,
#                        out (where the binary and kept inputs go), bin
#                        ($out/NAME) and work (removed at exit)
#   fuzz_build CMD...    test 1: run the build command (output kept in
#                        $work/build.log); on failure the rest fails too
#   fuzz_run MAX_LEN     test 3: fuzz $work/corpus for FUZZ_TIME seconds,
#                        keeping crash inputs under $out
srcdir=${IMGW_SRCDIR:-.}
builddir=${IMGW_BUILDDIR:-.}
CLANG=${CLANG:-clang}
FUZZ_TIME=${FUZZ_TIME:-30}

diag() { sed 's/^/# /' "$@"; }

fuzz_begin() {
	echo "1..3"
	if ! command -v "$CLANG" >/dev/null 2>&1; then
		echo "ok 1 # SKIP clang is not installed (Debian: clang libclang-rt-14-dev)"
		echo "ok 2 # SKIP no fuzzer"
		echo "ok 3 # SKIP no fuzzer"
		exit 0
	fi
	out=$builddir/tests/fuzz
	mkdir -p "$out" || exit 1
	bin=$out/$1
	work=$(mktemp -d "${TMPDIR:-/tmp}/imgw-fuzz.XXXXXX") || exit 1
	trap 'rm -rf "$work"' EXIT
}

fuzz_build() {
	if "$@" >"$work/build.log" 2>&1; then
		echo "ok 1 - $(basename "$bin") builds with $CLANG (-fsanitize=fuzzer,address,undefined)"
		return 0
	fi
	echo "not ok 1 - $(basename "$bin") builds with $CLANG"
	diag "$work/build.log"
	echo "# (the libFuzzer runtime is in Debian's libclang-rt-14-dev)"
	echo "not ok 2 - # SKIP not built"
	echo "not ok 3 - # SKIP not built"
	exit 1
}

fuzz_run() {
	if "$bin" -max_total_time="$FUZZ_TIME" -max_len="$1" -timeout=10 \
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
}
