#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# bench-kernel.sh: round trips/s of small UDP datagrams through
#   direct          qgate-loadgen -> qgate-echo (no relay: the ceiling of the tools)
#   nginx           nginx stream UDP proxy, one worker
#   qgate           qgate, io_uring backend, one worker
#   qgate-recvmmsg  qgate, recvmmsg backend, one worker
# all against the same two echo backends, in one run on this machine.
#
# CPU placement (the machine this was written for has 2 CPUs): the echo is
# pinned to the last CPU, the relay to CPU 0, and the load generator is left
# unpinned so the scheduler runs it wherever there is room. Pinning the client
# next to either the echo or the relay would make that side the bottleneck;
# leaving it free measures the relay, which is what we compare. With more CPUs
# use --echo-cpu/--relay-cpu.
#
# A leg whose program is missing (nginx stream module, qgate binary) is
# reported as skipped; a leg that is present but fails makes the script exit 1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=perf/lib.sh
. "$ROOT/perf/lib.sh"
BUILD=build-release
DURATION=10
WARMUP=1
REPEAT=1
FLOWS=256
WINDOW=16
SIZE=64
LEGS="direct,nginx,qgate,qgate-recvmmsg"
NCPU=$(nproc)
TOOL_ARGS=()
ECHO_CPU=$((NCPU - 1))
RELAY_CPU=0
NGINX=${NGINX:-nginx}
NGINX_STREAM_MODULE=${NGINX_STREAM_MODULE:-/usr/lib/nginx/modules/ngx_stream_module.so}
RESULTS="$ROOT/perf/results"

usage() {
	cat <<EOF
usage: perf/bench-kernel.sh [options]
  --build DIR       build directory (default build-release; configured and built if missing)
  --duration SEC    measured seconds per run (default 10)
  --warmup SEC      unmeasured seconds before each run (default 1)
  --repeat N        runs per leg, the median is reported (default 1)
  --flows N         client flows (default 256)
  --window W        datagrams in flight per flow (default 16)
  --size BYTES      UDP payload (default 64)
  --legs LIST       comma list of direct,nginx,qgate,qgate-recvmmsg (default all)
  --echo-cpu N      CPU of the echo backends (default: last CPU, $ECHO_CPU)
  --relay-cpu N     CPU of the relay (default 0)
  --results DIR     where results go (default perf/results)
  --no-gso          the load generator and echo send and receive datagram by datagram
                    (no UDP GSO/GRO): models peers without segmentation offload
  -h, --help        this text
Writes perf/results/bench-kernel-YYYYmmdd-HHMMSS.json and bench-kernel-latest.md.
EOF
}

die() {
	echo "bench-kernel: $*" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=${2:?}; shift 2 ;;
	--duration) DURATION=${2:?}; shift 2 ;;
	--warmup) WARMUP=${2:?}; shift 2 ;;
	--repeat) REPEAT=${2:?}; shift 2 ;;
	--flows) FLOWS=${2:?}; shift 2 ;;
	--window) WINDOW=${2:?}; shift 2 ;;
	--size) SIZE=${2:?}; shift 2 ;;
	--legs) LEGS=${2:?}; shift 2 ;;
	--echo-cpu) ECHO_CPU=${2:?}; shift 2 ;;
	--relay-cpu) RELAY_CPU=${2:?}; shift 2 ;;
	--results) RESULTS=${2:?}; shift 2 ;;
	--no-gso) TOOL_ARGS+=(--no-gso); shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done
for v in DURATION WARMUP REPEAT FLOWS WINDOW SIZE ECHO_CPU RELAY_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "--$(echo "$v" | tr 'A-Z_' 'a-z-') wants a whole number"
done
[ "$REPEAT" -ge 1 ] || die "--repeat wants >= 1"
[ "$DURATION" -ge 1 ] || die "--duration wants >= 1"
command -v jq >/dev/null || die "jq is required"
command -v python3 >/dev/null || die "python3 is required (port probing)"

case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
ECHO_BIN="$BUILD/perf/qgate-echo"
LOADGEN_BIN="$BUILD/perf/qgate-loadgen"
QGATE_BIN="$BUILD/controlplane/qgate"

if [ ! -x "$ECHO_BIN" ] || [ ! -x "$LOADGEN_BIN" ]; then
	echo "bench-kernel: building into $BUILD" >&2
	cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQGATE_TESTS=OFF >&2
	cmake --build "$BUILD" --target qgate-echo qgate-loadgen >&2
	# qgate may not build yet; its legs are then skipped.
	cmake --build "$BUILD" --target qgate >&2 || echo "bench-kernel: qgate did not build" >&2
fi

TMP=$(mktemp -d /tmp/qgate-bench.XXXXXX)
PIDS=()

# shellcheck disable=SC2317 # called through trap
cleanup() {
	kill_pids "${PIDS[@]}"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wait until a datagram to 127.0.0.1:$1 is echoed back (through a relay too), at most $2 s.
probe() {
	python3 - "$1" "$2" <<'EOF'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + limit
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
while time.monotonic() < end:
    try:
        s.sendto(b"qgate-bench-probe", ("127.0.0.1", port))
        if s.recv(2048) == b"qgate-bench-probe":
            sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
}

# ---- echo backends -------------------------------------------------------

ECHO_P1=$(free_port)
ECHO_P2=$(free_port)
taskset -c "$ECHO_CPU" "$ECHO_BIN" -l "127.0.0.1:$ECHO_P1" -l "127.0.0.1:$ECHO_P2" --quiet ${TOOL_ARGS[@]+"${TOOL_ARGS[@]}"} 2>"$TMP/echo.err" &
ECHO_PID=$!
PIDS+=("$ECHO_PID")
for _ in $(seq 1 50); do
	grep -q "listening on" "$TMP/echo.err" && break
	sleep 0.1
done
grep -q "listening on" "$TMP/echo.err" || { cat "$TMP/echo.err" >&2; echo "bench-kernel: qgate-echo did not start" >&2; exit 1; }

# ---- legs ------------------------------------------------------------------

# run_loadgen LEG RUN PORT: one measurement into $TMP/LEG.RUN.json
run_loadgen() {
	local out="$TMP/$1.$2.json"
	timeout $((DURATION + WARMUP + 30)) "$LOADGEN_BIN" --target "127.0.0.1:$3" --flows "$FLOWS" \
		--window "$WINDOW" --size "$SIZE" --duration "$DURATION" --warmup "$WARMUP" --json --quiet ${TOOL_ARGS[@]+"${TOOL_ARGS[@]}"} \
		>"$out" 2>"$TMP/$1.$2.err" || { cat "$TMP/$1.$2.err" >&2; return 1; }
	jq -e '.rtt_per_s' "$out" >/dev/null || return 1
	jq -r --arg leg "$1" '"  \($leg): \(.rtt_per_s | floor) round trips/s, loss \(.loss_pct)%, p50 \(.p50_us) us, p99 \(.p99_us) us"' "$out" >&2
}

start_nginx() {
	local port=$1 dir="$TMP/nginx"
	mkdir -p "$dir/logs"
	cat >"$dir/nginx.conf" <<EOF
load_module $NGINX_STREAM_MODULE;
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events {
	worker_connections 65536;
}
stream {
	upstream echo {
		server 127.0.0.1:$ECHO_P1;
		server 127.0.0.1:$ECHO_P2;
	}
	server {
		listen 127.0.0.1:$port udp reuseport;
		proxy_pass echo;
		proxy_timeout 10s;
	}
}
EOF
	taskset -c "$RELAY_CPU" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" \
		2>"$TMP/relay.err" &
	RELAY_PID=$!
	PIDS+=("$RELAY_PID")
}

# The qgate configuration (YAML). Keep in step with controlplane/config.
qgate_conf() {
	cat <<EOF
dataplane:
  backend: $2
  cores: [$RELAY_CPU]
services:
  - name: bench
    listen: 127.0.0.1:$1
    protocol: udp
    backends:
      - address: 127.0.0.1:$ECHO_P1
      - address: 127.0.0.1:$ECHO_P2
EOF
}

start_qgate() {
	qgate_conf "$1" "$2" >"$TMP/qgate-$2.yaml"
	taskset -c "$RELAY_CPU" "$QGATE_BIN" -c "$TMP/qgate-$2.yaml" 2>"$TMP/relay.err" &
	RELAY_PID=$!
	PIDS+=("$RELAY_PID")
}

# leg_available LEG: 0 when its program is present.
leg_available() {
	case "$1" in
	direct) return 0 ;;
	nginx) command -v "$NGINX" >/dev/null && [ -f "$NGINX_STREAM_MODULE" ] ;;
	qgate | qgate-recvmmsg) [ -x "$QGATE_BIN" ] ;;
	*) die "unknown leg: $1" ;;
	esac
}

declare -A MEDIAN STATUS
LEG_LIST=()
IFS=',' read -r -a LEG_LIST <<<"$LEGS"
FAILED=0
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

for leg in "${LEG_LIST[@]}"; do
	if ! leg_available "$leg"; then
		echo "bench-kernel: $leg: skipped (program not found)" >&2
		STATUS[$leg]=skipped
		continue
	fi
	echo "bench-kernel: $leg: $REPEAT x ${DURATION}s, $FLOWS flows x $WINDOW in flight, $SIZE bytes" >&2
	STATUS[$leg]=ok
	for run in $(seq 1 "$REPEAT"); do
		RELAY_PID=
		port=$ECHO_P1
		case "$leg" in
		nginx) port=$(free_port); start_nginx "$port" ;;
		qgate) port=$(free_port); start_qgate "$port" io_uring ;;
		qgate-recvmmsg) port=$(free_port); start_qgate "$port" recvmmsg ;;
		esac
		if ! probe "$port" 10; then
			echo "bench-kernel: $leg: no echo through 127.0.0.1:$port" >&2
			cat "$TMP/relay.err" >&2 2>/dev/null || true
			STATUS[$leg]=failed
		elif ! run_loadgen "$leg" "$run" "$port"; then
			echo "bench-kernel: $leg: qgate-loadgen failed" >&2
			STATUS[$leg]=failed
		fi
		[ -n "$RELAY_PID" ] && stop_pid "$RELAY_PID"
		[ "${STATUS[$leg]}" = ok ] || break
	done
	if [ "${STATUS[$leg]}" = ok ]; then
		MEDIAN[$leg]=$(cat "$TMP/$leg".*.json | jq -s 'map(.rtt_per_s) | sort | .[(length - 1) / 2 | floor]')
	else
		FAILED=1
	fi
done

# ---- report ----------------------------------------------------------------

mkdir -p "$RESULTS"
STAMP=$(date +%Y%m%d-%H%M%S)
JSON_OUT="$RESULTS/bench-kernel-$STAMP.json"
MD_OUT="$RESULTS/bench-kernel-latest.md"

ratio() { # ratio A B: A/B with 3 decimals, or null
	if [ -n "${MEDIAN[$1]:-}" ] && [ -n "${MEDIAN[$2]:-}" ]; then
		jq -n --argjson a "${MEDIAN[$1]}" --argjson b "${MEDIAN[$2]}" 'if $b > 0 then ($a / $b * 1000 | round) / 1000 else null end'
	else
		echo null
	fi
}
R_QN=$(ratio qgate nginx)
R_QD=$(ratio qgate direct)
R_RN=$(ratio qgate-recvmmsg nginx)

legs_json="{}"
for leg in "${LEG_LIST[@]}"; do
	runs="[]"
	if compgen -G "$TMP/$leg.*.json" >/dev/null; then
		runs=$(cat "$TMP/$leg".*.json | jq -s .)
	fi
	legs_json=$(jq -n --argjson acc "$legs_json" --arg leg "$leg" --arg st "${STATUS[$leg]}" \
		--argjson med "${MEDIAN[$leg]:-null}" --argjson runs "$runs" \
		'$acc + {($leg): {status: $st, median_rtt_per_s: $med, runs: $runs}}')
done

jq -n --argjson legs "$legs_json" --argjson qn "$R_QN" --argjson qd "$R_QD" --argjson rn "$R_RN" \
	--arg date "$(date -Iseconds)" --arg kernel "$(uname -r)" --argjson nproc "$NCPU" \
	--arg cpu "$(cpu_model)" \
	--arg loadavg "$LOADAVG" --argjson echo_cpu "$ECHO_CPU" --argjson relay_cpu "$RELAY_CPU" \
	--argjson duration "$DURATION" --argjson warmup "$WARMUP" --argjson repeat "$REPEAT" \
	--argjson flows "$FLOWS" --argjson window "$WINDOW" --argjson size "$SIZE" \
	--argjson peer_gso "$([ ${#TOOL_ARGS[@]} -eq 0 ] && echo true || echo false)" \
	'{date: $date,
	  machine: {nproc: $nproc, cpu_model: $cpu, kernel: $kernel, loadavg_at_start: $loadavg},
	  setup: {duration_s: $duration, warmup_s: $warmup, repeat: $repeat, flows: $flows, window: $window,
	          size: $size, echo_cpu: $echo_cpu, relay_cpu: $relay_cpu, loadgen_cpu: "unpinned",
	          peer_gso: $peer_gso},
	  legs: $legs,
	  ratios: {qgate_over_nginx: $qn, qgate_over_direct: $qd, qgate_recvmmsg_over_nginx: $rn}}' >"$JSON_OUT"

{
	echo "# bench-kernel $(date -Iseconds)"
	echo
	echo "$NCPU CPUs ($(jq -r .machine.cpu_model "$JSON_OUT")), kernel $(uname -r), load average at start $LOADAVG."
	echo "$FLOWS flows x $WINDOW in flight, $SIZE-byte UDP payload, ${DURATION}s measured (+${WARMUP}s warm-up), median of $REPEAT."
	echo "Echo on CPU $ECHO_CPU, relay on CPU $RELAY_CPU, loadgen unpinned. Peer GSO/GRO: $([ ${#TOOL_ARGS[@]} -eq 0 ] && echo on || echo off)."
	echo
	echo "| leg | round trips/s | loss % | p50 us | p99 us | status |"
	echo "|---|---:|---:|---:|---:|---|"
	for leg in "${LEG_LIST[@]}"; do
		jq -r --arg leg "$leg" '.legs[$leg] as $l
			| ($l.runs | map(select(.rtt_per_s == $l.median_rtt_per_s)) | .[0]) as $m
			| if $m then "| \($leg) | \($m.rtt_per_s | floor) | \($m.loss_pct) | \($m.p50_us) | \($m.p99_us) | \($l.status) |"
			  else "| \($leg) | - | - | - | - | \($l.status) |" end' "$JSON_OUT"
	done
	echo
	echo "qgate/nginx: ${R_QN/null/n\/a}, qgate/direct: ${R_QD/null/n\/a}, qgate-recvmmsg/nginx: ${R_RN/null/n\/a}"
	echo
	echo "Raw results: $(basename "$JSON_OUT")"
} >"$MD_OUT"

cat "$MD_OUT"
echo "bench-kernel: wrote $JSON_OUT and $MD_OUT" >&2
exit "$FAILED"
