#!/usr/bin/env bash
# qgate demo: build, start two local UDP echo backends, run qgate on its
# built-in default config (service "echo" on 127.0.0.1:4433 relaying to
# 127.0.0.1:5001 and 127.0.0.1:5002), drive traffic through it and show live
# per-backend counters until Ctrl-C or --seconds N. Leaves no process behind.
# Usage: scripts/demo.sh [--seconds N] [--rate PPS] [--flows N]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=0 # 0: until Ctrl-C
rate=20000
flows=64
while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) seconds=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;;
	--flows) flows=$2; shift 2 ;;
	-h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "demo: unknown option $1 (try --help)" >&2; exit 2 ;;
	esac
done
case "$seconds$rate$flows" in *[!0-9]*) echo "demo: --seconds, --rate and --flows take whole numbers" >&2; exit 2 ;; esac

scripts/setup.sh --check >/dev/null 2>&1 || scripts/setup.sh
build=build-release
echo "demo: building qgate ($build)"
scripts/build.sh release "$build" >/dev/null

logdir=$(mktemp -d /tmp/qgate-demo.XXXXXX)
pids=()
cleanup() {
	trap - EXIT INT TERM
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	echo
	echo "demo: stopped; logs in $logdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for port in 5001 5002; do
	if ss -Hlun "sport = :$port" | grep -q .; then
		echo "demo: UDP port $port is already in use; stop what holds it first" >&2
		exit 1
	fi
done

"$build/perf/qgate-echo" -l 127.0.0.1:5001 --quiet 2>"$logdir/echo-5001.log" &
pids+=($!)
"$build/perf/qgate-echo" -l 127.0.0.1:5002 --quiet 2>"$logdir/echo-5002.log" &
pids+=($!)

# The built-in default configuration, with a stats report every second on stdout.
"$build/controlplane/qgate" --stats 1 2>"$logdir/qgate.log" &
qgate_pid=$!
pids+=($qgate_pid)
for _ in $(seq 100); do
	grep -q 'ready' "$logdir/qgate.log" 2>/dev/null && break
	kill -0 "$qgate_pid" 2>/dev/null || { cat "$logdir/qgate.log" >&2; exit 1; }
	sleep 0.1
done
grep -q 'ready' "$logdir/qgate.log" || { echo "demo: qgate did not start" >&2; cat "$logdir/qgate.log" >&2; exit 1; }
sed 's/^/  /' "$logdir/qgate.log"

duration=$seconds
[ "$duration" -eq 0 ] && duration=86400
echo "demo: sending $rate datagrams/s over $flows flows to 127.0.0.1:4433 (Ctrl-C to stop)"
"$build/perf/qgate-loadgen" --target 127.0.0.1:4433 --flows "$flows" --rate "$rate" --size 64 \
	--duration "$duration" --warmup 0 --json >"$logdir/loadgen.json" 2>"$logdir/loadgen.log" &
load_pid=$!
pids+=($load_pid)
wait "$load_pid" || true
sleep 1.2 # one more stats report after the traffic
if [ -s "$logdir/loadgen.json" ]; then
	echo "demo: load generator summary:"
	sed 's/^/  /' "$logdir/loadgen.json"
fi
