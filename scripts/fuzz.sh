#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and run each
# tests/fuzz/fuzz_NAME.c for SECONDS on a scratch copy of its seed corpus
# tests/fuzz/corpus/NAME/ (the checked-in seeds are never modified). Exits
# non-zero when a target crashes; the reproducer lands in build-fuzz/artifacts/.
# Targets: fuzz_quic_parse (QUIC headers, VN), fuzz_quic_lb (QUIC-LB CID codec),
# fuzz_retry_token (Retry tokens and packets). Each runs in the foreground as
# one process of the script's process group, bounded: an input slower than 25 s
# is a failure and the run is killed SECONDS + 60 s in. Nothing is left running.
# Usage: scripts/fuzz.sh [SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
dir=build-fuzz

# The fuzz targets need nothing from DPDK: leave it out so they build wherever clang does.
CC=clang cmake -S . -B "$dir" -G Ninja -DCMAKE_C_COMPILER=clang -DQGATE_FUZZ=ON -DQGATE_TESTS=OFF \
	-DQGATE_DPDK=OFF >/dev/null
targets=()
for src in tests/fuzz/fuzz_*.c; do
	targets+=("$(basename "$src" .c)")
done
cmake --build "$dir" --target "${targets[@]}"

status=0
for t in "${targets[@]}"; do
	name=${t#fuzz_}
	work="$dir/corpus/$name"
	art="$dir/artifacts/$name/"
	rm -rf "$work"
	mkdir -p "$work" "$art"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp -r "tests/fuzz/corpus/$name/." "$work/"
	fi
	echo "=== $t: ${secs}s"
	if ! timeout --foreground -k 5 $((secs + 60)) "$dir/tests/fuzz/$t" -max_total_time="$secs" -timeout=25 \
		-print_final_stats=1 -artifact_prefix="$art" "$work" >"$dir/$t.log" 2>&1; then
		echo "$t: CRASH, see $dir/$t.log and $art" >&2
		tail -n 40 "$dir/$t.log" >&2
		status=1
		continue
	fi
	grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb|new_units_added)' \
		"$dir/$t.log" || true
	grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/$t.log" | tail -n 1 || true
done
exit $status
