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
exit $status
