#!/usr/bin/env bash
# Install what is missing, build the Release and the ASan+UBSan flavours, and
# run the whole ctest suite on both. Exits non-zero on any failure.
# Usage: scripts/test.sh [-L LABEL]   (e.g. -L unit; default: everything)
set -euo pipefail
cd "$(dirname "$0")/.."
ctest_args=("$@")

scripts/setup.sh
status=0
for flavour in release sanitize; do
	echo "=== $flavour: build"
	scripts/build.sh "$flavour"
	echo "=== $flavour: test"
	# Leaks fail the sanitizer run; io_uring-heavy tests want a generous timeout under ASan.
	if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir "build-$flavour" --output-on-failure -j "$(nproc)" --timeout 600 \
		"${ctest_args[@]}"; then
		status=1
	fi
done

# Then the libFuzzer targets, briefly (10 s each), where clang can link libFuzzer:
# a crash fails the run. Without them, say why and go on.
fuzz_skip=""
if ! command -v clang >/dev/null 2>&1; then
	fuzz_skip="clang is not installed"
else
	probe=$(mktemp -d)
	echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; return (int)(n & 0); }' \
		>"$probe/probe.c"
	if ! clang -fsanitize=fuzzer,address,undefined "$probe/probe.c" -o "$probe/probe" >/dev/null 2>&1; then
		fuzz_skip="clang cannot link libFuzzer (libclang-rt-dev missing?)"
	fi
	rm -rf "$probe"
fi
if [ -n "$fuzz_skip" ]; then
	echo "=== fuzz: skipped: $fuzz_skip"
else
	echo "=== fuzz: 10 s per target"
	if ! scripts/fuzz.sh 10; then
		status=1
	fi
fi
exit $status
