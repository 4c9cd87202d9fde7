#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# faults.sh: fault injection end to end on loopback, under load from
# qgate-loadgen, with the outcome measured. Each scenario starts its own qgate
# (one worker) in front of qgate-echo backends, runs open-loop traffic through
# it, injects one fault and measures what the clients saw (loadgen tx vs rx),
# what qgate did (its counters through `qgatectl status --json` / `backends
# --json`) and when (its events, `qgatectl events --json`, whose timestamps are
# mapped onto the wall clock):
#   a  a backend killed (SIGKILL), then restarted on the same port
#   b  a backend whose socket is closed while its process lives (the kernel
#      answers ICMP port unreachable), then bound again
#   c  a backend gone silent (SIGSTOP), then resumed (SIGCONT)
#   d  hot reload under load: a good file, a broken file, a file that removes
#      the busiest backend
#   e  SIGTERM with flows in flight (drain, exit 0); SIGKILL and restart (clean
#      start: stale admin socket replaced, ports bound again, no old state)
#   f  flow flood: millions of distinct source addresses/ports (perf/faults/
#      flood.c, raw socket) against a small flows_per_core, with the degradation
#      controller off (eviction) and on (its levels): RSS and fds stay bounded,
#      established flows keep working
#   h  as a, with the degradation level held at essential (`qgatectl level set
#      essential`): established flows are always relayed, re-homed ones too?
#   i  a flow removed in the middle of a receive burst (QUIC migration onto an
#      address with a flow; eviction from a 2-flow table) while one of its
#      datagrams waits to be sent: the datagram never reaches another client
#      (perf/faults/crossflow.py)
#   g  malformed barrage (perf/faults/barrage.py) at a QUIC and a UDP service
#      mixed with valid traffic to both: no crash, valid traffic loses nothing,
#      drops counted by reason, received = forwarded + dropped holds exactly
# Each scenario prints one result line; perf/results/faults-YYYYmmdd-HHMMSS.json
# gets every measurement and check. Exit 1 when a check failed, 2 for bad usage.
#
# The degradation controller only observes (`degradation: {enabled: false}`) but in the
# flood's protect leg: on a small shared machine, CPU taken by other jobs makes the worker
# fall behind now and then, the controller goes to essential and refuses every new flow,
# and the scenarios would measure the neighbours instead of the fault (h sets the level
# itself, with `qgatectl level set`).
#
# Not part of CI (it runs for minutes: about 7 with the defaults). Needs root for the raw-socket flooder
# (f is skipped otherwise), python3, jq, cc.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=perf/lib.sh
. "$ROOT/perf/lib.sh"
BUILD=build-release
IO=io_uring
SCENARIOS=a,b,c,h,d,e,f,g,i
RATE=10000           # open-loop datagrams/s of the measured traffic
FLOWS=60             # its flows
FLOOD_FLOWS=1000000  # distinct source address/port pairs per flood leg
FLOOD_RATE=5000      # flood datagrams/s of the leg qgate keeps up with (controller off)
FLOOD_RATE_HIGH=50000 # flood datagrams/s of the overload legs (controller on, then off)
FLOOD_FPC=16384      # flows_per_core (and upstream sockets) during the flood
FLOOD_TOL_PCT=0.1    # loss allowed to the established flows during a flood (%)
BARRAGE_ROUNDS=20
QGATE_CPU=0
RESULTS="$ROOT/perf/results"
KEEP=0

usage() {
	cat <<EOF
usage: perf/faults.sh [options]
  --build DIR          build directory (default build-release; configured and built if missing)
  --io BACKEND         qgate I/O backend: io_uring (default) or recvmmsg
  --scenarios LIST     comma list of a,b,c,d,e,f,g,h,i (default all)
  --rate PPS           open-loop rate of the measured traffic (default $RATE)
  --flows N            its flows (default $FLOWS)
  --flood-flows N      distinct client address/port pairs per flood leg (default $FLOOD_FLOWS)
  --flood-rate PPS     flood datagrams/s of the sustainable leg (default $FLOOD_RATE)
  --flood-rate-high PPS  flood datagrams/s of the two overload legs (default $FLOOD_RATE_HIGH)
  --flood-fpc N        flows_per_core during the flood (default $FLOOD_FPC)
  --barrage-rounds N   rounds of the malformed set (default $BARRAGE_ROUNDS)
  --cpu N              CPU of qgate's worker (default 0)
  --results DIR        where the JSON goes (default perf/results)
  --keep               keep the temporary directory (configs, logs)
  -h, --help           this text
EOF
}

die() {
	echo "faults: $*" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=${2:?}; shift 2 ;;
	--io) IO=${2:?}; shift 2 ;;
	--scenarios) SCENARIOS=${2:?}; shift 2 ;;
	--rate) RATE=${2:?}; shift 2 ;;
	--flows) FLOWS=${2:?}; shift 2 ;;
	--flood-flows) FLOOD_FLOWS=${2:?}; shift 2 ;;
	--flood-rate) FLOOD_RATE=${2:?}; shift 2 ;;
	--flood-rate-high) FLOOD_RATE_HIGH=${2:?}; shift 2 ;;
	--flood-fpc) FLOOD_FPC=${2:?}; shift 2 ;;
	--barrage-rounds) BARRAGE_ROUNDS=${2:?}; shift 2 ;;
	--cpu) QGATE_CPU=${2:?}; shift 2 ;;
	--results) RESULTS=${2:?}; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done
case "$IO" in io_uring | recvmmsg) ;; *) die "--io wants io_uring or recvmmsg" ;; esac
for v in RATE FLOWS FLOOD_FLOWS FLOOD_RATE FLOOD_RATE_HIGH FLOOD_FPC BARRAGE_ROUNDS QGATE_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "--$(echo "$v" | tr 'A-Z_' 'a-z-') wants a whole number"
done
[ "$FLOWS" -ge 3 ] || die "--flows wants >= 3"
for t in jq python3 cc; do command -v "$t" >/dev/null || die "$t is required"; done

case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
QGATE_BIN="$BUILD/controlplane/qgate"
CTL_BIN="$BUILD/controlplane/qgatectl"
ECHO_BIN="$BUILD/perf/qgate-echo"
LOADGEN_BIN="$BUILD/perf/qgate-loadgen"
FLOOD_BIN="$BUILD/perf/faults-flood"
if [ ! -x "$QGATE_BIN" ] || [ ! -x "$CTL_BIN" ] || [ ! -x "$ECHO_BIN" ] || [ ! -x "$LOADGEN_BIN" ]; then
	echo "faults: building into $BUILD" >&2
	[ -f "$BUILD/CMakeCache.txt" ] ||
		cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQGATE_TESTS=OFF >&2
	cmake --build "$BUILD" --target qgate qgatectl qgate-echo qgate-loadgen >&2
fi
if [ ! -x "$FLOOD_BIN" ] || [ "$ROOT/perf/faults/flood.c" -nt "$FLOOD_BIN" ]; then
	mkdir -p "$BUILD/perf"
	cc -O2 -Wall -Wextra -o "$FLOOD_BIN" "$ROOT/perf/faults/flood.c"
fi

TMP=$(mktemp -d /tmp/qgate-faults.XXXXXX)
PIDS=()
FAILED=0

# shellcheck disable=SC2317 # called through trap
cleanup() {
	kill_pids "${PIDS[@]}"
	if [ "$KEEP" = 1 ]; then
		echo "faults: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers -----------------------------------------------------------------

log() { echo "faults: $*" >&2; }
now() { echo "$EPOCHREALTIME"; }
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
# sleep_until T: sleep until wall time T (seconds, fractional)
sleep_until() {
	local d
	d=$(awk -v t="$1" -v n="$(now)" 'BEGIN { d = t - n; printf "%.3f", (d > 0 ? d : 0) }')
	sleep "$d"
}
plus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a + b }'; }

ctl() { "$CTL_BIN" -s "$SOCK" "$@"; }
totals() { ctl status --json | jq -c .totals; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# The drop counters (every QG_CTR_KIND_DROP name of counters.h) but the two counted
# after a send already counted the datagram as forwarded: the relay's drop reasons.
DROP_REASONS=$(drop_reasons "$ROOT/include/qgate/counters.h")
# identity TOTALS_JSON: {received, forwarded, dropped, failed_sends, holds}
identity() {
	jq -c --argjson drops "$DROP_REASONS" '. as $t
		| ($drops | map(select(. != "tx_backend_failed" and . != "tx_client_failed"))
		   | map($t[.] // 0) | add) as $d
		| {received: ($t.rx_client + $t.rx_backend), forwarded: ($t.tx_backend + $t.tx_client),
		   dropped: $d, failed_sends: ($t.tx_backend_failed + $t.tx_client_failed)}
		| .holds = (.received == .forwarded + .dropped)' <<<"$1"
}
# delta A B: counters that changed from A to B (B - A), as an object
delta() {
	jq -nc --argjson a "$1" --argjson b "$2" \
		'$b | to_entries | map(select(.value != ($a[.key] // 0)) | {key, value: (.value - ($a[.key] // 0))}) | from_entries'
}
# drops_by_reason DELTA: the drop reasons in a delta
drops_by_reason() {
	jq -c --argjson drops "$DROP_REASONS" 'with_entries(select(.key as $k | $drops | index($k)))' <<<"$1"
}

# ---- processes ---------------------------------------------------------------

declare -a ECHO_PORT ECHO_PID
N_ECHO=4
for i in $(seq 0 $((N_ECHO - 1))); do ECHO_PORT[$i]=$(free_port); done
VIP_PORT=$(free_port)
QUIC_PORT=$(free_port)
SOCK="$TMP/admin.sock"
CONF="$TMP/qgate.yaml"

# start_echo I [echo|ctl]: backend I on its port (ctl: perf/faults/ctlecho.py, whose socket can close)
start_echo() {
	local i=$1 kind=${2:-echo}
	if [ "$kind" = ctl ]; then
		python3 "$ROOT/perf/faults/ctlecho.py" "127.0.0.1:${ECHO_PORT[$i]}" 2>"$TMP/echo$i.err" &
	else
		"$ECHO_BIN" -l "127.0.0.1:${ECHO_PORT[$i]}" -q 2>"$TMP/echo$i.err" &
	fi
	ECHO_PID[$i]=$!
	PIDS+=("${ECHO_PID[$i]}")
	wait_line "$TMP/echo$i.err" "listening on" 10 || { cat "$TMP/echo$i.err" >&2; die "backend $i did not start"; }
}
stop_echo() {
	local p=${ECHO_PID[$1]:-}
	[ -n "$p" ] || return 0
	kill -CONT "$p" 2>/dev/null || true
	kill -TERM "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
	ECHO_PID[$1]=
}

# gen_conf FILE "I I ..." [EXTRA_YAML]: one UDP service "udp" on VIP_PORT over backends I...
# Knobs: C_FPC, C_UPS (flows_per_core, upstream_sockets_per_core), C_DEGRADE (on|off, default
# off: the degradation controller observes, only `qgatectl level set` sets the level), C_IDLE
# (the service's idle_timeout).
gen_conf() {
	local f=$1 i
	{
		echo "admin: {socket: $SOCK}"
		echo "dataplane:"
		echo "  backend: $IO"
		echo "  cores: [$QGATE_CPU]"
		[ -n "${C_FPC:-}" ] && echo "  flows_per_core: $C_FPC"
		[ -n "${C_UPS:-}" ] && echo "  upstream_sockets_per_core: $C_UPS"
		[ "${C_DEGRADE:-off}" = off ] && echo "degradation: {enabled: false}"
		echo "services:"
		echo "  - name: udp"
		echo "    listen: 127.0.0.1:$VIP_PORT"
		[ -n "${C_IDLE:-}" ] && echo "    idle_timeout: $C_IDLE"
		echo "    health: {probe: udp, interval: 100ms, timeout: 100ms, fall: 3, rise: 2}"
		echo "    circuit: {failures: 5, open_timeout: 1s}"
		echo "    backends:"
		for i in $2; do echo "      - address: 127.0.0.1:${ECHO_PORT[$i]}"; done
		printf '%s' "${3:-}"
	} >"$f"
}

QPID=
QLOG=
# start_qgate LOG: qgate on $CONF; waits until the admin socket answers; sets QPID and OFFSET
start_qgate() {
	QLOG=$1
	"$QGATE_BIN" -c "$CONF" 2>>"$QLOG" &
	QPID=$!
	PIDS+=("$QPID")
	local i
	for i in $(seq 1 100); do
		if ctl status >/dev/null 2>&1; then
			set_offset
			return 0
		fi
		alive "$QPID" || break
		sleep 0.1
	done
	cat "$QLOG" >&2
	return 1
}
# OFFSET: wall-clock time of qgate's start, so an event's at_s maps onto the wall clock
set_offset() {
	local t1 t2 up
	t1=$(now)
	up=$(ctl status --json | jq .uptime_s)
	t2=$(now)
	OFFSET=$(awk -v a="$t1" -v b="$t2" -v u="$up" 'BEGIN { printf "%.6f", (a + b) / 2 - u }')
}
# stop_qgate: SIGTERM, wait up to 20 s; QRC = exit status (>= 128: killed by a signal)
stop_qgate() {
	QRC=
	[ -n "$QPID" ] || return 0
	kill -TERM "$QPID" 2>/dev/null || true
	local i
	for i in $(seq 1 200); do
		alive "$QPID" || break
		sleep 0.1
	done
	kill -KILL "$QPID" 2>/dev/null || true
	QRC=0
	wait "$QPID" || QRC=$?
	QPID=
}

# event_ms REGEX BACKEND T: ms from wall time T to the first event after T (50 ms slack)
# whose "type:text" matches REGEX and whose backend is BACKEND ("" = any); null if none
event_ms() {
	ctl events --json | jq --arg re "$1" --arg be "$2" --argjson off "$OFFSET" --argjson t "$3" \
		'[.events[] | select(($be == "" or .backend == $be) and ((.type + ":" + .text) | test($re)))
		  | ($off + .at_s - $t) | select(. > -0.05)] | if length > 0 then (.[0] * 1000 | round) else null end'
}

# backend_field ADDR FIELD: one field of a backend from `backends --json`
backend_field() {
	ctl backends --json | jq -r --arg a "$1" --arg f "$2" '[.services[].backends[] | select(.address == $a)][0][$f]'
}
# wait_backend ADDR JQ_CONDITION SECONDS: until the backend's JSON satisfies the condition
wait_backend() {
	local i
	for i in $(seq 1 $(($3 * 50))); do
		ctl backends --json 2>/dev/null | jq -e --arg a "$1" "[.services[].backends[] | select(.address == \$a)][0] | $2" >/dev/null && return 0
		sleep 0.02
	done
	return 1
}

# loadgen_bg NAME ARGS...: qgate-loadgen in the background, JSON in $TMP/NAME.json; LG_PID
loadgen_bg() {
	local name=$1
	shift
	"$LOADGEN_BIN" --json "$@" >"$TMP/$name.json" 2>"$TMP/$name.err" &
	LG_PID=$!
	PIDS+=("$LG_PID")
}
loadgen_json() {
	jq -e .tx "$TMP/$1.json" >/dev/null 2>&1 || { cat "$TMP/$1.err" >&2; echo '{"tx":0,"rx":0,"lost":0,"mismatched":0,"late":0,"tx_skipped":0,"error":"loadgen failed"}'; return; }
	jq -c '{tx, rx, lost, mismatched, late, tx_skipped, loss_pct, rtt_per_s, p99_us}' "$TMP/$1.json"
}

# new_flows_to ADDR: does ADDR take new flows? 30 fresh flows, one round trip each, 1 s;
# prints the increase of the backend's flows_created
new_flows_to() {
	local before after
	before=$(backend_field "$1" flows_created)
	"$LOADGEN_BIN" --target "127.0.0.1:$VIP_PORT" --flows 30 --window 1 --duration 1 --warmup 0 --json --quiet >/dev/null 2>&1 || true
	after=$(backend_field "$1" flows_created)
	echo $((after - before))
}

# probe_once PORT TIMEOUT_S: 0 when a datagram from a fresh socket is echoed
probe_once() {
	python3 - "$1" "$2" <<'EOF'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + limit
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.05)
while time.monotonic() < end:
    try:
        s.sendto(b"qgate-faults-probe", ("127.0.0.1", port))
        if s.recv(2048) == b"qgate-faults-probe":
            sys.exit(0)
    except OSError:
        time.sleep(0.01)
sys.exit(1)
EOF
}

# ---- results -----------------------------------------------------------------

declare -A RESULT
ORDER=()
# finish ID TITLE METRICS_JSON CHECKS_JQ SUMMARY: CHECKS_JQ maps $m (the metrics) to
# [{check: "text", ok: bool}]; prints the result line and stores the scenario's JSON
finish() {
	local id=$1 title=$2 m=$3 checks=$4 summary=$5 res verdict
	res=$(jq -c --arg id "$id" --arg title "$title" --arg summary "$summary" --argjson m "$m" \
		--arg load "$(cut -d' ' -f1 /proc/loadavg)" \
		"{id: \$id, title: \$title, loadavg_1m_at_end: (\$load | tonumber), metrics: \$m, checks: (\$m | $checks) } | .pass = all(.checks[]; .ok) | .summary = \$summary" <<<'null')
	RESULT[$id]=$res
	ORDER+=("$id")
	verdict=$(jq -r 'if .pass then "PASS" else "FAIL" end' <<<"$res")
	[ "$verdict" = PASS ] || FAILED=1
	printf '%-2s %-44s %s  %s\n' "$id" "$title" "$verdict" "$summary"
	jq -r '.checks[] | select(.ok | not) | "     failed: \(.check)"' <<<"$res"
}
skip() {
	RESULT[$1]=$(jq -nc --arg id "$1" --arg title "$2" --arg why "$3" '{id: $id, title: $title, skipped: $why}')
	ORDER+=("$1")
	printf '%-2s %-44s %s  %s\n' "$1" "$2" "SKIP" "$3"
}

# ---- a, b, c: a backend fails and comes back ---------------------------------

# backend_fault ID TITLE MODE [LEVEL]: MODE kill (SIGKILL, restart), close (socket closed,
# bound again), stop (SIGSTOP, SIGCONT). Backend 0 is the victim; 3 backends; 8 s of
# traffic. LEVEL: `qgatectl level set LEVEL` just before the fault (`level auto` after it).
backend_fault() {
	local id=$1 title=$2 mode=$3 floor=${4:-} kind=echo
	[ "$mode" = close ] && kind=ctl
	local victim="127.0.0.1:${ECHO_PORT[0]}"
	start_echo 0 "$kind"
	start_echo 1
	start_echo 2
	gen_conf "$CONF" "0 1 2"
	start_qgate "$TMP/qgate-$id.log" || die "$id: qgate did not start"
	wait_backend "$victim" '.health == "healthy"' 5 || true
	loadgen_bg "lg-$id" --target "127.0.0.1:$VIP_PORT" --rate "$RATE" --flows "$FLOWS" --duration 8 --warmup 1 --quiet
	local lg=$LG_PID t_start
	t_start=$(now)
	sleep_until "$(plus "$t_start" 2.5)"
	local k tot0 t0 t1 t_ready=null detect down open up closed newflows alive_during=true
	k=$(backend_field "$victim" flows_active)
	[ -z "$floor" ] || ctl level set "$floor" >/dev/null
	tot0=$(totals)
	t0=$(now)
	case $mode in
	kill) kill -KILL "${ECHO_PID[0]}"; wait "${ECHO_PID[0]}" 2>/dev/null || true ;;
	close) kill -USR1 "${ECHO_PID[0]}"; wait_line "$TMP/echo0.err" "ctlecho: closed" 5 || true ;;
	stop) kill -STOP "${ECHO_PID[0]}" ;;
	esac
	wait_backend "$victim" '.up == false' 5 || log "$id: victim never marked down"
	sleep_until "$(plus "$t0" 2.5)"
	t1=$(now)
	case $mode in
	kill) start_echo 0 echo ;;
	close) kill -USR2 "${ECHO_PID[0]}" ;;
	stop) kill -CONT "${ECHO_PID[0]}" ;;
	esac
	if wait_backend "$victim" '.up == true and .health == "healthy" and .circuit == "closed"' 10; then
		t_ready=$(ms_since "$t1")
	fi
	wait "$lg" || true
	[ -z "$floor" ] || ctl level auto >/dev/null
	alive "$QPID" || alive_during=false
	newflows=$(new_flows_to "$victim" 2>/dev/null || echo 0)
	local tot1 lgj d
	tot1=$(totals)
	lgj=$(loadgen_json "lg-$id")
	d=$(delta "$tot0" "$tot1")
	detect=$(event_ms '^(backend_down|circuit_change:circuit closed -> open)' "$victim" "$t0")
	down=$(event_ms '^backend_down' "$victim" "$t0")
	open=$(event_ms '^circuit_change:circuit closed -> open' "$victim" "$t0")
	up=$(event_ms '^backend_up' "$victim" "$t1")
	closed=$(event_ms '^circuit_change:.* -> closed' "$victim" "$t1")
	local levels
	levels=$(ctl events --json | jq -c '[.events[] | select(.type == "level_change") | "\(.at_s)s \(.text)"]')
	stop_qgate
	for i in 0 1 2; do stop_echo "$i"; done
	local m
	m=$(jq -nc --argjson lg "$lgj" --argjson d "$d" --argjson k "$k" --argjson rate "$RATE" --argjson flows "$FLOWS" \
		--argjson detect "$detect" --argjson down "$down" --argjson open "$open" --argjson up "$up" \
		--argjson closed "$closed" --argjson ready "$t_ready" --argjson newflows "$newflows" \
		--argjson alive "$alive_during" --argjson qrc "${QRC:-null}" --arg mode "$mode" \
		--arg floor "$floor" --argjson levels "$levels" \
		'{mode: $mode, level_floor: (if $floor == "" then null else $floor end), level_changes: $levels, loadgen: $lg, victim_flows: $k, rehomed: ($d.flows_rehomed // 0),
		  backend_refused: ($d.backend_refused // 0),
		  detect_ms: $detect, backend_down_ms: $down, circuit_open_ms: $open,
		  after_restart: {backend_up_ms: $up, circuit_closed_ms: $closed, takes_new_flows_ms: $ready,
		                  new_flows_taken: $newflows},
		  outage_per_flow_ms: (if $k > 0 then ($lg.lost / ($rate / $flows * $k) * 1000 | round) else null end),
		  qgate_alive: $alive, qgate_exit: $qrc,
		  drops: $d | with_entries(select(.key | test("^(no_backend|shed|draining|stale_reply|tx_backend_failed|tx_client_failed)$")))}')
	local lim=1000
	[ "$mode" = stop ] && lim=1500
	finish "$id" "$title" "$m" "[
		{check: \"qgate never crashed (alive, exit 0 at SIGTERM)\", ok: (.qgate_alive and .qgate_exit == 0)},
		{check: \"the victim had flows (\(.victim_flows))\", ok: (.victim_flows > 0)},
		{check: \"fault detected within $lim ms\", ok: (.detect_ms != null and .detect_ms <= $lim)},
		{check: \"every flow of the victim re-homed (\(.rehomed) >= \(.victim_flows))\", ok: (.rehomed >= .victim_flows)},
		{check: \"loss explained by the detection time: outage per flow <= detect + 500 ms\",
		 ok: (.outage_per_flow_ms != null and .detect_ms != null and .outage_per_flow_ms <= .detect_ms + 500)},
		{check: \"no datagram mismatched\", ok: (.loadgen.mismatched == 0)},
		{check: \"back in service (up, healthy, circuit closed) within 5 s of the restart\",
		 ok: (.after_restart.takes_new_flows_ms != null and .after_restart.takes_new_flows_ms <= 5000)},
		{check: \"takes new flows again\", ok: (.after_restart.new_flows_taken > 0)}]" \
		"$(jq -r '"lost \(.loadgen.lost)/\(.loadgen.tx) (\(.loadgen.loss_pct)%), \(.rehomed) of \(.victim_flows) flows re-homed, detected in \(.detect_ms) ms (down \(.backend_down_ms), circuit open \(.circuit_open_ms)), outage/flow ~\(.outage_per_flow_ms) ms, back in \(.after_restart.takes_new_flows_ms) ms"' <<<"$m")"
}

# ---- d: reloads under load ---------------------------------------------------

reloads() {
	local id=d
	start_echo 0
	start_echo 1
	start_echo 2
	start_echo 3
	# A short idle timeout: the flows of one step's loadgen are gone before the next step looks.
	C_IDLE=1s gen_conf "$CONF" "0 1 2"
	start_qgate "$TMP/qgate-d.log" || die "d: qgate did not start"
	local parts=() step
	for step in good broken remove; do
		loadgen_bg "lg-d-$step" --target "127.0.0.1:$VIP_PORT" --rate "$RATE" --flows "$FLOWS" --duration 4 --warmup 1 --quiet
		local lg=$LG_PID t_start tot0 tot1 t0 rc=0 out k=0 busiest="" took
		t_start=$(now)
		sleep_until "$(plus "$t_start" 2.5)"
		tot0=$(totals)
		case $step in
		good)
			# a fourth backend and a new idle timeout
			C_IDLE=2s gen_conf "$CONF" "0 1 2 3"
			;;
		broken)
			cp "$CONF" "$TMP/good.yaml"
			printf '  - name: broken\n    listen: nowhere\n    backends: [{address: 127.0.0.1:1, weight: 5000}]\n' >>"$CONF"
			;;
		remove)
			cp "$TMP/good.yaml" "$CONF"
			busiest=$(ctl backends --json | jq -r '[.services[0].backends[]] | max_by(.flows_active) | .address')
			k=$(backend_field "$busiest" flows_active)
			local keep="" i
			for i in 0 1 2 3; do [ "127.0.0.1:${ECHO_PORT[$i]}" = "$busiest" ] || keep="$keep $i"; done
			C_IDLE=2s gen_conf "$CONF" "$keep"
			;;
		esac
		t0=$(now)
		out=$(ctl reload 2>&1) || rc=$?
		took=$(ms_since "$t0")
		wait "$lg" || true
		sleep 0.3
		tot1=$(totals)
		local d nb
		d=$(delta "$tot0" "$tot1")
		nb=$(ctl backends --json | jq '.services[0].backends | length')
		parts+=("$(jq -nc --arg step "$step" --argjson rc "$rc" --arg out "$out" --argjson took "$took" \
			--argjson lg "$(loadgen_json "lg-d-$step")" --argjson d "$d" --argjson k "$k" --arg busiest "$busiest" \
			--argjson nb "$nb" \
			'{step: $step, reload_exit: $rc, reload_answer: $out, reload_ms: $took, loadgen: $lg,
			  rehomed: ($d.flows_rehomed // 0), removed_backend: $busiest, removed_backend_flows: $k,
			  backends_after: $nb}')")
	done
	local alive_end=true
	alive "$QPID" || alive_end=false
	stop_qgate
	for i in 0 1 2 3; do stop_echo "$i"; done
	local m
	m=$(printf '%s\n' "${parts[@]}" | jq -sc --argjson alive "$alive_end" --argjson qrc "${QRC:-null}" \
		'{steps: (map({(.step): del(.step)}) | add), qgate_alive: $alive, qgate_exit: $qrc}')
	finish d "reload: good, broken, busy backend removed" "$m" '[
		{check: "qgate never crashed (alive, exit 0 at SIGTERM)", ok: (.qgate_alive and .qgate_exit == 0)},
		{check: "good file accepted (exit 0, 4 backends)", ok: (.steps.good.reload_exit == 0 and .steps.good.backends_after == 4)},
		{check: "good file: established flows lost nothing, none moved",
		 ok: (.steps.good.loadgen.lost == 0 and .steps.good.loadgen.mismatched == 0 and .steps.good.rehomed == 0)},
		{check: "broken file refused with FILE:LINE:COLUMN, configuration kept (4 backends)",
		 ok: (.steps.broken.reload_exit == 1 and (.steps.broken.reload_answer | test("\\.yaml:[0-9]+:[0-9]+: ")) and .steps.broken.backends_after == 4)},
		{check: "broken file: established flows lost nothing", ok: (.steps.broken.loadgen.lost == 0 and .steps.broken.loadgen.mismatched == 0)},
		{check: "busy backend removed (exit 0, 3 backends)", ok: (.steps.remove.reload_exit == 0 and .steps.remove.backends_after == 3)},
		{check: "its flows re-homed (\(.steps.remove.rehomed) >= \(.steps.remove.removed_backend_flows))",
		 ok: (.steps.remove.removed_backend_flows > 0 and .steps.remove.rehomed >= .steps.remove.removed_backend_flows)},
		{check: "removal lost at most one in-flight datagram per moved flow",
		 ok: (.steps.remove.loadgen.lost <= .steps.remove.removed_backend_flows and .steps.remove.loadgen.mismatched == 0)}]' \
		"$(jq -r '"good: lost \(.steps.good.loadgen.lost)/\(.steps.good.loadgen.tx) in \(.steps.good.reload_ms) ms; broken: exit \(.steps.broken.reload_exit), lost \(.steps.broken.loadgen.lost)/\(.steps.broken.loadgen.tx); remove busiest (\(.steps.remove.removed_backend_flows) flows): \(.steps.remove.rehomed) re-homed, lost \(.steps.remove.loadgen.lost)/\(.steps.remove.loadgen.tx)"' <<<"$m")"
}

# ---- e: SIGTERM drain; SIGKILL and restart -----------------------------------

stop_and_restart() {
	start_echo 0
	start_echo 1
	start_echo 2
	gen_conf "$CONF" "0 1 2"
	# e1: SIGTERM with flows in flight
	start_qgate "$TMP/qgate-e1.log" || die "e: qgate did not start"
	loadgen_bg lg-e1 --target "127.0.0.1:$VIP_PORT" --rate "$RATE" --flows "$FLOWS" --duration 6 --warmup 1 --quiet
	local lg=$LG_PID t_start t0 newflow=answered t_lg_end t_exit qpid=$QPID rc=0
	t_start=$(now)
	sleep_until "$(plus "$t_start" 2.5)"
	t0=$(now)
	kill -TERM "$qpid"
	sleep 0.5
	probe_once "$VIP_PORT" 1 || newflow=refused
	wait "$lg" || true
	t_lg_end=$(ms_since "$t0")
	local i
	for i in $(seq 1 300); do alive "$qpid" || break; sleep 0.05; done
	t_exit=$(ms_since "$t0")
	kill -KILL "$qpid" 2>/dev/null || true
	wait "$qpid" || rc=$?
	QPID=
	local drained draining
	drained=$(sed -n 's/.*drain ended after \([0-9]*\) ms.*/\1/p' "$TMP/qgate-e1.log" | tail -1)
	draining=$(sed -n 's/.*total draining = \([0-9]*\).*/\1/p' "$TMP/qgate-e1.log" | tail -1)
	local e1
	e1=$(jq -nc --argjson lg "$(loadgen_json lg-e1)" --argjson rc "$rc" --arg nf "$newflow" \
		--argjson lgend "$t_lg_end" --argjson exit "$t_exit" --argjson drained "${drained:-null}" \
		--argjson draining "${draining:-0}" \
		'{loadgen: $lg, exit_code: $rc, new_flow_during_drain: $nf, loadgen_done_ms: $lgend,
		  exit_ms: $exit, exit_after_traffic_ms: ($exit - $lgend), drain_ms: $drained, draining_drops: $draining}')

	# e2: SIGKILL with traffic, restart at once on the same file
	: >"$TMP/qgate-e2.log"
	start_qgate "$TMP/qgate-e2.log" || die "e: qgate did not start"
	loadgen_bg lg-e2 --target "127.0.0.1:$VIP_PORT" --rate "$RATE" --flows "$FLOWS" --duration 6 --warmup 1
	lg=$LG_PID
	t_start=$(now)
	sleep_until "$(plus "$t_start" 2.5)"
	local t_ready=null newclient=false rc2=0 restart_ok=true
	t0=$(now)
	kill -KILL "$QPID"
	wait "$QPID" 2>/dev/null || rc2=$?
	local stale=false
	[ -S "$SOCK" ] && stale=true
	QLOG="$TMP/qgate-e2b.log"
	"$QGATE_BIN" -c "$CONF" 2>"$QLOG" &
	QPID=$!
	PIDS+=("$QPID")
	# ready = the admin socket answers (includes starting qgatectl, polled every 10 ms); the
	# data path's own gap is measured by the loadgen (datagrams not delivered / rate)
	for i in $(seq 1 200); do
		if ctl status >/dev/null 2>&1; then t_ready=$(ms_since "$t0"); break; fi
		alive "$QPID" || break
		sleep 0.01
	done
	[ "$t_ready" != null ] || { restart_ok=false; cat "$QLOG" >&2; }
	if [ "$restart_ok" = true ]; then
		set_offset
		probe_once "$VIP_PORT" 5 && newclient=true
	fi
	local st
	st=$(ctl status --json 2>/dev/null || echo '{}')
	wait "$lg" || true
	local last_rx
	last_rx=$(grep -o 'rx=[0-9]* pps' "$TMP/lg-e2.err" | tail -1 | tr -dc 0-9)
	local tot
	tot=$(totals 2>/dev/null || echo '{}')
	local alive_end=true
	alive "$QPID" || alive_end=false
	stop_qgate
	for i in 0 1 2; do stop_echo "$i"; done
	local complaints replaced
	complaints=$(grep -ciE 'in use|cannot|error' "$QLOG" || true)
	replaced=$(grep -c 'removing stale socket' "$QLOG" || true)
	local m
	m=$(jq -nc --argjson e1 "$e1" --argjson lg "$(loadgen_json lg-e2)" --argjson kill "$rc2" \
		--argjson stale "$stale" --argjson replaced "$replaced" --argjson ready "$t_ready" \
		--argjson newclient "$newclient" --argjson st "$st" --argjson tot "$tot" --argjson lastrx "${last_rx:-0}" \
		--argjson complaints "$complaints" --argjson alive "$alive_end" --argjson qrc "${QRC:-null}" \
		--argjson rate "$RATE" \
		'{sigterm: $e1,
		  sigkill: {killed_status: $kill, stale_socket_left: $stale, stale_socket_replaced: ($replaced > 0),
		            restart_ready_ms: $ready, new_client_answered: $newclient, log_complaints: $complaints,
		            uptime_after_s: $st.uptime_s, flows_created_after: ($tot.flows_created // null), flows_rehomed_after: ($tot.flows_rehomed // 0),
		            loadgen: $lg, not_delivered: ($lg.lost + $lg.tx_skipped),
		            gap_ms_est: (($lg.lost + $lg.tx_skipped) / $rate * 1000 | round),
		            rx_pps_last_second: $lastrx, qgate_alive: $alive, qgate_exit: $qrc}}')
	finish e "SIGTERM drain; SIGKILL + restart" "$m" "[
		{check: \"SIGTERM: exit code 0\", ok: (.sigterm.exit_code == 0)},
		{check: \"SIGTERM: established flows lost nothing during the drain\", ok: (.sigterm.loadgen.lost == 0 and .sigterm.loadgen.mismatched == 0 and .sigterm.loadgen.tx > 0)},
		{check: \"SIGTERM: a new flow is refused while draining (counted)\", ok: (.sigterm.new_flow_during_drain == \"refused\" and .sigterm.draining_drops > 0)},
		{check: \"SIGTERM: exits within 1.5 s after the traffic stops\", ok: (.sigterm.exit_after_traffic_ms <= 1500)},
		{check: \"SIGKILL: the stale admin socket is replaced by the new qgate\", ok: (.sigkill.stale_socket_left and .sigkill.stale_socket_replaced and .sigkill.restart_ready_ms != null)},
		{check: \"SIGKILL: restart serves within 2 s (admin answers; data path gap from the loadgen; a new client answered)\",
		 ok: (.sigkill.restart_ready_ms != null and .sigkill.restart_ready_ms <= 2000 and .sigkill.gap_ms_est <= 2000 and .sigkill.new_client_answered)},
		{check: \"SIGKILL: clean start (no complaint in the log, uptime < 10 s, only this run's flows)\",
		 ok: (.sigkill.log_complaints == 0 and .sigkill.uptime_after_s < 10 and .sigkill.flows_created_after - .sigkill.flows_rehomed_after <= $FLOWS + 2)},
		{check: \"SIGKILL: the old clients' traffic flows again\", ok: (.sigkill.rx_pps_last_second > 0 and .sigkill.loadgen.mismatched == 0)},
		{check: \"SIGKILL: restarted qgate stops cleanly (exit 0)\", ok: (.sigkill.qgate_alive and .sigkill.qgate_exit == 0)}]" \
		"$(jq -r '"drain: exit \(.sigterm.exit_code), lost \(.sigterm.loadgen.lost)/\(.sigterm.loadgen.tx), new flow \(.sigterm.new_flow_during_drain), exit \(.sigterm.exit_after_traffic_ms) ms after the traffic; kill+restart: \(.sigkill.not_delivered) not delivered (gap ~\(.sigkill.gap_ms_est) ms), admin ready in \(.sigkill.restart_ready_ms) ms, stale socket replaced"' <<<"$m")"
}

# ---- f: flow flood -----------------------------------------------------------

# Three legs, each a fresh qgate (flows_per_core = upstream sockets = FLOOD_FPC, idle
# timeout 30 s) with 16 established flows at 4000 datagrams/s (a datagram not answered
# within 1 s is lost: the flood may queue, the question is whether they keep being served),
# flooded by FLOOD_FLOWS
# distinct source address/port pairs in two halves (evict 127.200.x.y then 127.201.x.y,
# protect 127.202/203, overload 127.204/205: 3 x FLOOD_FLOWS distinct pairs in all):
#   evict     controller off, FLOOD_RATE: a rate qgate's new-flow path keeps up with;
#             the full table evicts its least recently used flows
#   protect   controller on, FLOOD_RATE_HIGH: an overload; the degradation controller
#             refuses new flows (level essential) and the established ones carry on
#   overload  controller off, FLOOD_RATE_HIGH: the same overload without the controller
#             (reported, only crash and memory are checked): the worker, behind, refuses
#             new flows itself (overload), else the kernel drops what qgate cannot read
flood() {
	if [ "$(id -u)" != 0 ]; then
		skip f "flow flood" "needs root (raw socket)"
		return
	fi
	local leg parts=() half=$((FLOOD_FLOWS / 2)) i
	start_echo 0
	start_echo 1
	start_echo 2
	for leg in evict:off:$FLOOD_RATE:200 protect:on:$FLOOD_RATE_HIGH:202 overload:off:$FLOOD_RATE_HIGH:204; do
		local name mode rate net secs
		IFS=: read -r name mode rate net <<<"$leg"
		secs=$(((FLOOD_FLOWS + rate - 1) / rate))
		C_FPC=$FLOOD_FPC C_UPS=$FLOOD_FPC C_DEGRADE=$mode gen_conf "$CONF" "0 1 2"
		start_qgate "$TMP/qgate-f-$name.log" || die "f: qgate did not start"
		# Established flows first; their measured window starts once the table is full (6 s):
		# the fill, FLOOD_FPC * 1.25 new flows at the leg's rate from 127.199.x.y, is reported
		# apart (from the loadgen's per-second lines) as the fill transient.
		loadgen_bg "lg-f-$name" --target "127.0.0.1:$VIP_PORT" --rate 4000 --flows 16 --duration $((secs + 3)) --warmup 6 \
			--timeout-ms 1000
		local lg=$LG_PID t_start rss_pre fd_pre rss_fill fill rss0 fd0 rss1 fd1 rss2 fd2 tot0 tot1 f1 f2 snmp0 snmp1 newc levels transient
		t_start=$(now)
		sleep_until "$(plus "$t_start" 1.5)"
		rss_pre=$(rss_kb "$QPID")
		fd_pre=$(nfds "$QPID")
		fill=$("$FLOOD_BIN" --target "127.0.0.1:$VIP_PORT" --count $((FLOOD_FPC + FLOOD_FPC / 4)) --rate "$rate" --net 199)
		rss_fill=$(rss_kb "$QPID")
		sleep_until "$(plus "$t_start" 6.2)"
		rss0=$(rss_kb "$QPID")
		fd0=$(nfds "$QPID")
		tot0=$(totals)
		snmp0=$(udp_rcvbuf_errors)
		f1=$("$FLOOD_BIN" --target "127.0.0.1:$VIP_PORT" --count "$half" --rate "$rate" --net "$net")
		rss1=$(rss_kb "$QPID")
		fd1=$(nfds "$QPID")
		f2=$("$FLOOD_BIN" --target "127.0.0.1:$VIP_PORT" --count $((FLOOD_FLOWS - half)) --rate "$rate" --net $((net + 1)))
		sleep 0.5
		rss2=$(rss_kb "$QPID")
		fd2=$(nfds "$QPID")
		snmp1=$(udp_rcvbuf_errors)
		levels=$(ctl events --json | jq -c '[.events[] | select(.type == "level_change") | .text]')
		wait "$lg" || true
		tot1=$(totals)
		# New clients right after the flood (its flows are idle, not yet expired): admitted?
		newc=$("$LOADGEN_BIN" --target "127.0.0.1:$VIP_PORT" --flows 30 --window 1 --duration 1 --warmup 0 --json --quiet 2>/dev/null | jq -c '{tx, rx}' || echo '{"tx":0,"rx":0}')
		local alive_end=true d hwm
		alive "$QPID" || alive_end=false
		hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$QPID/status")
		d=$(delta "$tot0" "$tot1")
		stop_qgate
		# worst second of the established flows during the fill (warm-up lines from t=2 s on)
		transient=$(sed -n 's/^t=\([0-9]*\)s .*loss=\([0-9.]*\)% .*p99=\([0-9]*\)us (warmup)$/\1 \2 \3/p' "$TMP/lg-f-$name.err" |
			awk '$1 >= 2 { if ($2 > l) l = $2; if ($3 > p) p = $3 } END { printf "{\"worst_second_loss_pct\":%s,\"worst_second_p99_us\":%d}", l + 0, p + 0 }')
		parts+=("$(jq -nc --arg leg "$name" --arg mode "$mode" --argjson rate "$rate" --argjson lg "$(loadgen_json "lg-f-$name")" \
			--argjson d "$d" --argjson f1 "$f1" --argjson f2 "$f2" --argjson rss0 "$rss0" --argjson rss1 "$rss1" \
			--argjson rss2 "$rss2" --argjson hwm "$hwm" --argjson fd0 "$fd0" --argjson fd1 "$fd1" --argjson fd2 "$fd2" \
			--argjson kdrop "$((snmp1 - snmp0))" --argjson levels "$levels" --argjson newc "$newc" \
			--argjson alive "$alive_end" --argjson qrc "${QRC:-null}" --argjson fill "$fill" --argjson transient "$transient" \
			--argjson rss_pre "$rss_pre" --argjson rss_fill "$rss_fill" --argjson fd_pre "$fd_pre" \
			'{leg: $leg, controller: $mode, flood: {sent: ($f1.sent + $f2.sent), rate: $rate, pps: ((($f1.pps + $f2.pps) / 2) | round)},
			  fill: ({flows: $fill.sent, pps: $fill.pps} + $transient),
			  established: $lg, rss_kb: {before_flood: $rss_pre, after_fill: $rss_fill, before: $rss0, after_half: $rss1, after: $rss2, peak: $hwm},
			  fds: {before_flood: $fd_pre, before: $fd0, after_half: $fd1, after: $fd2},
			  flows: {created: ($d.flows_created // 0), evicted: ($d.flows_evicted // 0), expired: ($d.flows_expired // 0)},
			  received_from_clients: ($d.rx_client // 0), kernel_rcvbuf_drops_machine_wide: $kdrop,
			  drops: ($d | with_entries(select(.key | test("^(shed|overload|flow_table_full|upstream_exhausted|upstream_open|no_backend|stale_reply|tx_client_failed|tx_backend_failed)$")))),
			  errors: ($d | with_entries(select(.key | test("^(rx_errors|rx_nobufs|sq_full)$")))),
			  levels: $levels, new_clients_after: $newc, qgate_alive: $alive, qgate_exit: $qrc}')")
	done
	for i in 0 1 2; do stop_echo "$i"; done
	local m
	m=$(printf '%s\n' "${parts[@]}" | jq -sc --argjson fpc "$FLOOD_FPC" --argjson tol "$FLOOD_TOL_PCT" \
		'{flows_per_core: $fpc, established_loss_tolerance_pct: $tol, legs: (map({(.leg): .}) | add)}')
	finish f "flow flood: 3 legs x $((FLOOD_FLOWS / 1000))k src ports, fpc $FLOOD_FPC" "$m" '. as $r | [
		(.legs[] | . as $x | .leg as $l |
		 {check: "\($l): qgate never crashed (alive, exit 0)", ok: ($x.qgate_alive and $x.qgate_exit == 0)},
		 {check: "\($l): RSS flat over the second half of the flood (\($x.rss_kb.after_half) -> \($x.rss_kb.after) kB, <= +5 %)",
		  ok: ($x.rss_kb.after <= $x.rss_kb.after_half * 1.05)},
		 {check: "\($l): open fds within the flow capacity (\($x.fds.after) <= \($x.fds.before_flood) + \($r.flows_per_core))",
		  ok: ($x.fds.after <= $x.fds.before_flood + $r.flows_per_core)}),
		(.legs | (.evict, .protect) | . as $x |
		 {check: "\($x.leg): established flows kept working (loss \($x.established.loss_pct) % <= \($r.established_loss_tolerance_pct) %)",
		  ok: ($x.established.tx > 0 and $x.established.loss_pct <= $r.established_loss_tolerance_pct and $x.established.mismatched == 0)}),
		{check: "evict: the full table evicts, counted (\(.legs.evict.flows.evicted))", ok: (.legs.evict.flows.evicted > 0)},
		{check: "evict: new clients admitted right after the flood", ok: (.legs.evict.new_clients_after.rx > 0)},
		{check: "protect: the controller refused the flood (shed \(.legs.protect.drops.shed // 0))", ok: ((.legs.protect.drops.shed // 0) > 0)}
		]' \
		"$(jq -r '.legs | "evict: est. loss \(.evict.established.loss_pct)% (fill: worst s p99 \(.evict.fill.worst_second_p99_us / 1000 | round) ms), evicted \(.evict.flows.evicted), RSS \(.evict.rss_kb.before_flood)->\(.evict.rss_kb.after) kB, fds \(.evict.fds.before_flood)->\(.evict.fds.after); protect: est. loss \(.protect.established.loss_pct)%, shed \(.protect.drops.shed // 0); overload: est. loss \(.overload.established.loss_pct)%"' <<<"$m")"
}

# ---- g: malformed barrage ----------------------------------------------------

barrage() {
	start_echo 0
	start_echo 1
	start_echo 2
	gen_conf "$CONF" "0 1 2" "  - name: quic
    listen: 127.0.0.1:$QUIC_PORT
    protocol: quic
    quic: {versions: [0x00000001]}
    backends:
      - address: 127.0.0.1:${ECHO_PORT[0]}
      - address: 127.0.0.1:${ECHO_PORT[1]}
      - address: 127.0.0.1:${ECHO_PORT[2]}
"
	start_qgate "$TMP/qgate-g.log" || die "g: qgate did not start"
	# how long the barrage takes at 10k datagrams/s: ~1720 datagrams per round per target
	local secs=$(((BARRAGE_ROUNDS * 1720 * 2 + 9999) / 10000 + 4))
	loadgen_bg lg-g-udp --target "127.0.0.1:$VIP_PORT" --rate $((RATE / 2)) --flows 32 --duration "$secs" --warmup 1 --quiet
	local lg1=$LG_PID
	loadgen_bg lg-g-quic --target "127.0.0.1:$QUIC_PORT" --payload quic --rate $((RATE / 2)) --flows 32 --duration "$secs" --warmup 1 --quiet
	local lg2=$LG_PID t_start tot0 tot1 b
	t_start=$(now)
	sleep_until "$(plus "$t_start" 2)"
	tot0=$(totals)
	b=$(python3 "$ROOT/perf/faults/barrage.py" --target "127.0.0.1:$QUIC_PORT" --target "127.0.0.1:$VIP_PORT" \
		--rounds "$BARRAGE_ROUNDS" --rate 10000)
	wait "$lg1" || true
	wait "$lg2" || true
	sleep 0.5
	tot1=$(totals)
	local alive_end=true d id_end
	alive "$QPID" || alive_end=false
	d=$(delta "$tot0" "$tot1")
	id_end=$(identity "$tot1")
	stop_qgate
	for i in 0 1 2; do stop_echo "$i"; done
	local m
	m=$(jq -nc --argjson b "$b" --argjson d "$d" --argjson u "$(loadgen_json lg-g-udp)" --argjson q "$(loadgen_json lg-g-quic)" \
		--argjson drops "$(drops_by_reason "$d")" --argjson id "$id_end" --argjson alive "$alive_end" \
		--argjson qrc "${QRC:-null}" --argjson rounds "$BARRAGE_ROUNDS" \
		'{barrage: $b, valid_udp: $u, valid_quic: $q, drops_by_reason: $drops,
		  answered: {quic_vn_sent: ($d.quic_vn_sent // 0)},
		  errors: ($d | with_entries(select(.key | test("^(rx_errors|rx_nobufs|sq_full|backend_refused|quic_cid_table_full|quic_lb_unknown_server_id)$")))),
		  counter_identity: $id, qgate_alive: $alive, qgate_exit: $qrc}')
	finish g "malformed barrage + valid traffic" "$m" '[
		{check: "qgate never crashed (alive, exit 0 at SIGTERM)", ok: (.qgate_alive and .qgate_exit == 0)},
		{check: "valid UDP traffic lost nothing (\(.valid_udp.lost) of \(.valid_udp.tx))", ok: (.valid_udp.tx > 0 and .valid_udp.lost == 0 and .valid_udp.mismatched == 0)},
		{check: "valid QUIC traffic lost nothing (\(.valid_quic.lost) of \(.valid_quic.tx))", ok: (.valid_quic.tx > 0 and .valid_quic.lost == 0 and .valid_quic.mismatched == 0)},
		{check: "malformed QUIC counted (quic_malformed > 0)", ok: ((.drops_by_reason.quic_malformed // 0) > 0)},
		{check: "every 65507-byte datagram counted as oversize (\(.drops_by_reason.oversize // 0) >= \(.barrage.sent.max_len))",
		 ok: ((.drops_by_reason.oversize // 0) >= .barrage.sent.max_len)},
		{check: "received = forwarded + dropped, exactly (\(.counter_identity.received) = \(.counter_identity.forwarded) + \(.counter_identity.dropped))", ok: .counter_identity.holds}]' \
		"$(jq -r '"\(.barrage.total) hostile datagrams; valid udp lost \(.valid_udp.lost)/\(.valid_udp.tx), quic lost \(.valid_quic.lost)/\(.valid_quic.tx); drops \(.drops_by_reason | to_entries | map("\(.key)=\(.value)") | join(" ")); identity \(if .counter_identity.holds then "exact" else "OFF" end)"' <<<"$m")"
}

# ---- i: a removed flow's queued datagram never reaches another client -------------

crossflow() {
	start_echo 0
	start_echo 1
	local parts=() v rc
	for v in quic udp; do
		if [ "$v" = quic ]; then
			gen_conf "$CONF" "0 1"
			sed -i '/^services:/,$d' "$CONF"
			printf 'services:\n  - name: quic\n    listen: 127.0.0.1:%s\n    protocol: quic\n    backends:\n      - address: 127.0.0.1:%s\n      - address: 127.0.0.1:%s\n' \
				"$QUIC_PORT" "${ECHO_PORT[0]}" "${ECHO_PORT[1]}" >>"$CONF"
		else
			C_FPC=2 gen_conf "$CONF" "0 1"
		fi
		start_qgate "$TMP/qgate-i-$v.log" || die "i: qgate did not start"
		rc=0
		out=$(python3 "$ROOT/perf/faults/crossflow.py" --pid "$QPID" --"$v" "127.0.0.1:$([ "$v" = quic ] && echo "$QUIC_PORT" || echo "$VIP_PORT")") || rc=$?
		local alive_end=true
		alive "$QPID" || alive_end=false
		stop_qgate
		parts+=("$(jq -c --argjson alive "$alive_end" --argjson qrc "${QRC:-null}" --argjson rc "$rc" \
			'. + {qgate_alive: $alive, qgate_exit: $qrc, exit: $rc}' <<<"${out:-{\}}")")
	done
	stop_echo 0
	stop_echo 1
	local m
	m=$(printf '%s\n' "${parts[@]}" | jq -sc 'map({(.variant): .}) | add')
	finish i "removed flow mid-burst: no cross-client delivery" "$m" '[
		(.[] | {check: "\(.variant): qgate never crashed", ok: (.qgate_alive and .qgate_exit == 0)},
		       {check: "\(.variant): the new client got only its own datagrams (\(.leaked_to_c))", ok: ((.leaked_to_c | length) == 0 and .exit == 0)})]' \
		"$(jq -r 'to_entries | map("\(.key): client C got \(.value.received.C)") | join("; ")' <<<"$m")"
}

# ---- main --------------------------------------------------------------------

echo "faults: qgate $IO, $RATE datagrams/s over $FLOWS flows, results in $RESULTS" >&2
IFS=',' read -r -a LIST <<<"$SCENARIOS"
for s in "${LIST[@]}"; do
	case "$s" in
	a) backend_fault a "backend SIGKILL, restarted" kill ;;
	b) backend_fault b "backend socket closed (ICMP), reopened" close ;;
	c) backend_fault c "backend silent (SIGSTOP), SIGCONT" stop ;;
	d) reloads ;;
	e) stop_and_restart ;;
	h) backend_fault h "backend SIGKILL at level essential" kill essential ;;
	i) crossflow ;;
	f) flood ;;
	g) barrage ;;
	*) die "unknown scenario: $s" ;;
	esac
done

# ---- report ------------------------------------------------------------------

mkdir -p "$RESULTS"
JSON_OUT="$RESULTS/faults-$(date +%Y%m%d-%H%M%S).json"
for id in "${ORDER[@]}"; do echo "${RESULT[$id]}"; done | jq -s \
	--arg date "$(date -Iseconds)" --arg kernel "$(uname -r)" --argjson nproc "$(nproc)" \
	--arg cpu "$(cpu_model)" \
	--arg loadavg "$(cut -d' ' -f1-3 /proc/loadavg)" --arg io "$IO" --argjson rate "$RATE" --argjson flows "$FLOWS" \
	--argjson cpu_q "$QGATE_CPU" --arg rev "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	'{date: $date, machine: {nproc: $nproc, cpu_model: $cpu, kernel: $kernel, loadavg_at_end: $loadavg},
	  setup: {io: $io, qgate_cpu: $cpu_q, rate: $rate, flows: $flows, commit: $rev,
	          health: "probe udp, interval 100ms, timeout 100ms, fall 3, rise 2; circuit failures 5, open_timeout 1s"},
	  pass: all(.[]; .pass != false), scenarios: (map({(.id): .}) | add)}' >"$JSON_OUT"
echo "faults: wrote $JSON_OUT" >&2
exit "$FAILED"
