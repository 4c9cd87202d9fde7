#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan+UBSan) in build-fuzz and run each
# tests/fuzz/fuzz_NAME.c on a scratch copy of its seed corpus
# tests/fuzz/corpus/NAME/ (the checked-in seeds are never modified). Exits
# non-zero when a target crashes or leaks; the reproducer lands in
# build-fuzz/artifacts/NAME/ and the whole output in build-fuzz/fuzz_NAME.log.
# Targets (docs/RELIABILITY.md says what each checks):
#   fuzz_quic_parse   QUIC headers, coalesced Initials, Version Negotiation
#   fuzz_quic_lb      QUIC-LB CID codec
#   fuzz_retry_token  Retry tokens and Retry packets
#   fuzz_net_parse    Ethernet/IPv4/IPv6/UDP frames, checksums, NAT rewrite, ARP/ND
#   fuzz_config       the YAML configuration loader and validator
#   fuzz_admin        admin socket request lines (parser, commands, views)
# Each runs in the foreground as one process of the script's process group,
# bounded: an input slower than 25 s is a failure, and a timed run is killed
# SECONDS + 60 s in. Nothing is left running.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]      run each target SECONDS (default 60)
#        scripts/fuzz.sh --runs N [TARGET...]       run each target for N executions
# TARGET is a name such as fuzz_config or config; none means every target.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=60
runs=""
if [ "${1:-}" = "--runs" ]; then
	runs=${2:?--runs needs a number of executions}
	shift 2
elif [ $# -gt 0 ]; then
	secs=$1
	shift
fi
dir=build-fuzz

# The fuzz targets need nothing from DPDK: leave it out so they build wherever clang does.
CC=clang cmake -S . -B "$dir" -G Ninja -DCMAKE_C_COMPILER=clang -DQGATE_FUZZ=ON -DQGATE_TESTS=OFF \
	-DQGATE_DPDK=OFF >/dev/null
targets=()
if [ $# -gt 0 ]; then
	for t in "$@"; do
		t=fuzz_${t#fuzz_}
		[ -f "tests/fuzz/$t.c" ] || { echo "no such target: $t (tests/fuzz/$t.c)" >&2; exit 2; }
		targets+=("$t")
	done
else
	for src in tests/fuzz/fuzz_*.c; do
		targets+=("$(basename "$src" .c)")
	done
fi
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
	if [ -n "$runs" ]; then
		# A count, not a time: no overall bound beyond the per-input timeout.
		echo "=== $t: $runs executions"
		bound=(-runs="$runs")
		kill_after=0
	else
		echo "=== $t: ${secs}s"
		bound=(-max_total_time="$secs")
		kill_after=$((secs + 60))
	fi
	if ! timeout --foreground -k 5 "$kill_after" "$dir/tests/fuzz/$t" "${bound[@]}" -timeout=25 \
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
