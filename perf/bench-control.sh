#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# bench-control.sh: does the control plane cost the dataplane? Round trips/s of
# small UDP datagrams through one qgate worker to a service of 100 backends, in
# two legs measured alternately in one run (quiet busy quiet busy ...):
#   quiet  no health checks (probe: none), nobody scrapes /metrics, no reloads
#   busy   health {probe: udp, interval: 100ms} on every backend, GET /metrics
#          every second and `qgatectl reload` every 5 s, each reload toggling
#          one backend's weight 1 <-> 2 so the service table really changes
# Both legs run the same configuration file otherwise (metrics server and admin
# socket included: the quiet leg has them, it just does not use them), so the
# difference is the control plane's activity. Target (issue 5): busy/quiet >= 0.98.
#
# CPU placement as perf/bench-kernel.sh: the echo backends on the last CPU, the
# whole qgate process (worker *and* control thread) on CPU 0, the load generator,
# curl and qgatectl unpinned. The control thread thus competes with the worker
# for its core, the harshest placement for this test. With --control-cpu the
# process may use more CPUs, and qgate moves its control thread onto those
# (the CPUs allowed that run no worker), as it does in deployment.
#
# Every started process is killed on exit. A run that does not relay, or a
# loadgen failure, or a reload/scrape that fails makes the script exit 1 (after
# writing the results).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=perf/lib.sh
. "$ROOT/perf/lib.sh"
BUILD=build-release
DURATION=10
WARMUP=1
REPEAT=3
FLOWS=256
WINDOW=16
SIZE=64
IO=io_uring
N_BACKENDS=100
HEALTH_INTERVAL=100ms
SCRAPE_INTERVAL=1
RELOAD_INTERVAL=5
BUSY=health,scrape,reload
NCPU=$(nproc)
TOOL_ARGS=()
ECHO_CPU=$((NCPU - 1))
RELAY_CPU=0
CONTROL_CPU= # default: none, the whole qgate process on the relay CPU
RESULTS="$ROOT/perf/results"
ECHO_PER_PROC=50 # qgate-echo takes at most 64 listen addresses

usage() {
	cat <<EOF
usage: perf/bench-control.sh [options]
  --build DIR             build directory (default build-release; configured and built if missing)
  --io BACKEND            dataplane I/O backend: io_uring (default) or recvmmsg
  --duration SEC          measured seconds per run (default 10)
  --warmup SEC            unmeasured seconds before each run (default 1)
  --repeat N              runs per leg, legs alternate quiet,busy,quiet,busy,...; medians reported (default 3)
  --backends N            backends in the service (default 100)
  --health-interval DUR   busy leg: health probe interval, a config duration (default 100ms)
  --scrape-interval SEC   busy leg: seconds between two GET /metrics (default 1)
  --reload-interval SEC   busy leg: seconds between two qgatectl reload (default 5)
  --busy LIST             what the busy leg does, comma list of health,scrape,reload
                          (default all three; one alone attributes the cost; none makes
                          busy a second quiet leg: an A/A run that shows the noise floor)
  --flows N               client flows (default 256)
  --window W              datagrams in flight per flow (default 16)
  --size BYTES            UDP payload (default 64)
  --echo-cpu N            CPU of the echo backends (default: last CPU, $ECHO_CPU)
  --relay-cpu N           CPU of the qgate worker (default 0)
  --control-cpu LIST      more CPUs (taskset list) the qgate process, hence its control thread,
                          may use besides the relay CPU (default none: the control thread shares
                          the worker's core). The worker stays pinned by cores:; qgate moves
                          its control thread to the allowed CPUs that run no worker, so
                          --control-cpu 1 gives the deployment layout (control off the worker)
  --results DIR           where results go (default perf/results)
  --no-gso                the load generator and echo send and receive datagram by datagram
  -h, --help              this text
Writes perf/results/control-YYYYmmdd-HHMMSS.json and prints a table and a summary line.
EOF
}

die() {
	echo "bench-control: $*" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=${2:?}; shift 2 ;;
	--io) IO=${2:?}; shift 2 ;;
	--duration) DURATION=${2:?}; shift 2 ;;
	--warmup) WARMUP=${2:?}; shift 2 ;;
	--repeat) REPEAT=${2:?}; shift 2 ;;
	--backends) N_BACKENDS=${2:?}; shift 2 ;;
	--health-interval) HEALTH_INTERVAL=${2:?}; shift 2 ;;
	--scrape-interval) SCRAPE_INTERVAL=${2:?}; shift 2 ;;
	--reload-interval) RELOAD_INTERVAL=${2:?}; shift 2 ;;
	--busy) BUSY=${2:?}; shift 2 ;;
	--flows) FLOWS=${2:?}; shift 2 ;;
	--window) WINDOW=${2:?}; shift 2 ;;
	--size) SIZE=${2:?}; shift 2 ;;
	--echo-cpu) ECHO_CPU=${2:?}; shift 2 ;;
	--relay-cpu) RELAY_CPU=${2:?}; shift 2 ;;
	--control-cpu) CONTROL_CPU=${2:?}; shift 2 ;;
	--results) RESULTS=${2:?}; shift 2 ;;
	--no-gso) TOOL_ARGS+=(--no-gso); shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done
for v in DURATION WARMUP REPEAT FLOWS WINDOW SIZE ECHO_CPU RELAY_CPU N_BACKENDS SCRAPE_INTERVAL RELOAD_INTERVAL; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "--$(echo "$v" | tr 'A-Z_' 'a-z-' | sed 's/^n-//') wants a whole number"
done
[ "$REPEAT" -ge 1 ] || die "--repeat wants >= 1"
[ "$DURATION" -ge 1 ] || die "--duration wants >= 1"
if [ "$N_BACKENDS" -lt 2 ] || [ "$N_BACKENDS" -gt 4096 ]; then die "--backends wants 2..4096"; fi
[ "$SCRAPE_INTERVAL" -ge 1 ] || die "--scrape-interval wants >= 1"
[ "$RELOAD_INTERVAL" -ge 1 ] || die "--reload-interval wants >= 1"
QGATE_CPUS=$RELAY_CPU${CONTROL_CPU:+,$CONTROL_CPU}
[[ ,$BUSY, =~ ^,((health|scrape|reload),)+$ ]] || [ "$BUSY" = none ] ||
	die "--busy wants a comma list of health, scrape, reload, or none"
busy_has() { [[ ,$BUSY, == *,$1,* ]]; }
[[ $QGATE_CPUS =~ ^[0-9,-]+$ ]] || die "--control-cpu wants a CPU list such as 1 or 1-3"
case "$IO" in io_uring | recvmmsg) ;; *) die "--io wants io_uring or recvmmsg" ;; esac
[[ $HEALTH_INTERVAL =~ ^[1-9][0-9]*(ms|s|m|h)?$ ]] || die "--health-interval wants a duration such as 100ms"
command -v jq >/dev/null || die "jq is required"
command -v curl >/dev/null || die "curl is required (metrics scrapes)"
command -v python3 >/dev/null || die "python3 is required (port probing)"

case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
ECHO_BIN="$BUILD/perf/qgate-echo"
LOADGEN_BIN="$BUILD/perf/qgate-loadgen"
QGATE_BIN="$BUILD/controlplane/qgate"
CTL_BIN="$BUILD/controlplane/qgatectl"

if [ ! -x "$ECHO_BIN" ] || [ ! -x "$LOADGEN_BIN" ] || [ ! -x "$QGATE_BIN" ] || [ ! -x "$CTL_BIN" ]; then
	echo "bench-control: building into $BUILD" >&2
	cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQGATE_TESTS=OFF >&2
	cmake --build "$BUILD" --target qgate qgatectl qgate-echo qgate-loadgen >&2
fi

TMP=$(mktemp -d /tmp/qgate-bench-control.XXXXXX)
PIDS=()
CLK_TCK=$(getconf CLK_TCK)

# shellcheck disable=SC2317 # called through trap
cleanup() {
	kill_pids "${PIDS[@]}"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# N free ports on 127.0.0.1 (udp or tcp), all held at once so they differ.
free_ports() {
	python3 - "$1" "$2" <<'EOF'
import socket, sys
n, kind = int(sys.argv[1]), socket.SOCK_DGRAM if sys.argv[2] == "udp" else socket.SOCK_STREAM
held = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
}

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

# CPU seconds (user + system) of /proc/$1/stat or /proc/$1/task/$2/stat.
cpu_ticks() {
	local f=/proc/$1/stat
	[ -n "${2:-}" ] && f=/proc/$1/task/$2/stat
	# Fields after the ")" that ends comm: utime is the 12th, stime the 13th.
	sed 's/^.*) //' "$f" 2>/dev/null | awk '{ print $12 + $13 }' || echo 0
}

# ---- echo backends -----------------------------------------------------------

read -r -a ECHO_PORTS <<<"$(free_ports "$N_BACKENDS" udp)"
i=0
n_echo=0
while [ "$i" -lt "$N_BACKENDS" ]; do
	args=()
	for p in "${ECHO_PORTS[@]:$i:$ECHO_PER_PROC}"; do
		args+=(-l "127.0.0.1:$p")
	done
	taskset -c "$ECHO_CPU" "$ECHO_BIN" "${args[@]}" --quiet ${TOOL_ARGS[@]+"${TOOL_ARGS[@]}"} \
		2>"$TMP/echo$n_echo.err" &
	PIDS+=("$!")
	i=$((i + ECHO_PER_PROC))
	n_echo=$((n_echo + 1))
done
for e in $(seq 0 $((n_echo - 1))); do
	for _ in $(seq 1 50); do
		grep -q "listening on" "$TMP/echo$e.err" && break
		sleep 0.1
	done
	grep -q "listening on" "$TMP/echo$e.err" ||
		{ cat "$TMP/echo$e.err" >&2; echo "bench-control: qgate-echo did not start" >&2; exit 1; }
done
for p in "${ECHO_PORTS[0]}" "${ECHO_PORTS[$((N_BACKENDS - 1))]}"; do
	probe "$p" 5 || { echo "bench-control: echo on 127.0.0.1:$p does not answer" >&2; exit 1; }
done

# ---- qgate -------------------------------------------------------------------

ADMIN_SOCK="$TMP/admin.sock"
ctl() { timeout 15 "$CTL_BIN" -s "$ADMIN_SOCK" "$@"; }

# qgate_conf LEG VIP_PORT METRICS_PORT WEIGHT0: the configuration (YAML). Keep in
# step with docs/CONFIG.md. Only `health` and the first backend's weight differ.
qgate_conf() {
	cat <<EOF
dataplane:
  backend: $IO
  cores: [$RELAY_CPU]
metrics:
  listen: 127.0.0.1:$3
admin:
  socket: $ADMIN_SOCK
services:
  - name: bench
    listen: 127.0.0.1:$2
    protocol: udp
EOF
	if [ "$1" = busy ] && busy_has health; then
		echo "    health: {probe: udp, interval: $HEALTH_INTERVAL}"
	else
		echo "    health: {probe: none}"
	fi
	echo "    backends:"
	local b w
	for b in $(seq 0 $((N_BACKENDS - 1))); do
		w=1
		[ "$b" = 0 ] && w=$4
		echo "      - {address: 127.0.0.1:${ECHO_PORTS[$b]}, weight: $w}"
	done
}

# Background loops of the busy leg. Each one ends on SIGTERM at once (the
# sleep runs in the background so the trap is not held up by it).

# scrape_loop URL OUT: one line "HTTP_CODE BYTES SECONDS" per GET.
scrape_loop() {
	local sp=
	trap '[ -n "$sp" ] && kill "$sp" 2>/dev/null; exit 0' TERM
	local next=${EPOCHREALTIME/./} code
	while :; do
		# curl prints "000 0 ..." itself when it fails; its exit status does not matter here.
		code=$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{size_download} %{time_total}' "$1") || true
		[ -n "$code" ] || code="000 0 0"
		echo "$code" >>"$2"
		next=$((next + SCRAPE_INTERVAL * 1000000))
		sleep_until "$next" & sp=$!
		wait "$sp" || true
	done
}

# reload_loop CONF VIP_PORT METRICS_PORT OUT: every RELOAD_INTERVAL s, rewrite CONF with the first
# backend's weight toggled, `qgatectl reload`, then check the weight the running qgate reports.
# One line "RC APPLIED MS" per reload (APPLIED 1 when the new weight is in effect).
reload_loop() {
	local sp=
	trap '[ -n "$sp" ] && kill "$sp" 2>/dev/null; exit 0' TERM
	local w=1 next=${EPOCHREALTIME/./} rc t0 t1 got applied
	while :; do
		next=$((next + RELOAD_INTERVAL * 1000000))
		sleep_until "$next" & sp=$!
		wait "$sp" || true
		sp=
		w=$((3 - w))
		qgate_conf busy "$2" "$3" "$w" >"$1.new"
		mv -f "$1.new" "$1"
		t0=${EPOCHREALTIME/./}
		rc=0
		ctl reload >>"$4.answers" 2>&1 || rc=$?
		[ "$rc" = 0 ] || echo "reload exit $rc: $(tail -1 "$4.answers")" >>"$4.errors"
		t1=${EPOCHREALTIME/./}
		got=$(ctl backends --json 2>/dev/null | jq -r '.services[0].backends[0].weight' 2>/dev/null) || got=
		applied=0
		[ "$got" = "$w" ] && applied=1
		echo "$rc $applied $(((t1 - t0) / 1000))" >>"$4"
	done
}

# sleep_until USEC: sleep until EPOCHREALTIME (in microseconds) reaches USEC.
sleep_until() {
	local now=${EPOCHREALTIME/./} d
	d=$(($1 - now))
	[ "$d" -gt 0 ] || return 0
	sleep "$((d / 1000000)).$(printf '%06d' $((d % 1000000)))"
}

# run_leg LEG RUN: start qgate for LEG, measure, stop it. Writes $TMP/LEG.RUN.json
# (the loadgen summary with a "control" object added).
run_leg() {
	local leg=$1 run=$2 vip mport conf qpid lg_rc=0 c0 t0 c1 t1 loops=() health='{}'
	read -r vip <<<"$(free_ports 1 udp)"
	read -r mport <<<"$(free_ports 1 tcp)"
	conf="$TMP/qgate-$leg.yaml"
	qgate_conf "$leg" "$vip" "$mport" 1 >"$conf"
	rm -f "$TMP/scrapes" "$TMP/reloads" "$TMP/reloads.answers" "$TMP/reloads.errors"
	: >"$TMP/scrapes"
	: >"$TMP/reloads"
	taskset -c "$QGATE_CPUS" "$QGATE_BIN" -c "$conf" 2>"$TMP/relay-$leg.$run.err" &
	qpid=$!
	PIDS+=("$qpid")
	if ! probe "$vip" 10; then
		echo "bench-control: $leg: no echo through 127.0.0.1:$vip" >&2
		tail -20 "$TMP/relay-$leg.$run.err" >&2 || true
		stop_pid "$qpid" 10
		return 1
	fi
	if [ "$leg" = busy ]; then
		# Wait for the first health verdicts so the run measures steady-state probing.
		for _ in $(seq 1 50); do
			busy_has health || break
			[ "$(ctl backends --json 2>/dev/null | jq '[.services[0].backends[] | select(.health == "healthy")] | length')" = "$N_BACKENDS" ] && break
			sleep 0.1
		done
		if busy_has scrape; then
			scrape_loop "http://127.0.0.1:$mport/metrics" "$TMP/scrapes" &
			loops+=("$!")
		fi
		if busy_has reload; then
			reload_loop "$conf" "$vip" "$mport" "$TMP/reloads" &
			loops+=("$!")
		fi
		PIDS+=(${loops[@]+"${loops[@]}"})
	fi
	c0=$(cpu_ticks "$qpid")
	t0=$(cpu_ticks "$qpid" "$qpid")
	timeout $((DURATION + WARMUP + 30)) "$LOADGEN_BIN" --target "127.0.0.1:$vip" --flows "$FLOWS" \
		--window "$WINDOW" --size "$SIZE" --duration "$DURATION" --warmup "$WARMUP" --json --quiet \
		${TOOL_ARGS[@]+"${TOOL_ARGS[@]}"} >"$TMP/$leg.$run.lg" 2>"$TMP/$leg.$run.lgerr" || lg_rc=$?
	c1=$(cpu_ticks "$qpid")
	t1=$(cpu_ticks "$qpid" "$qpid")
	local p
	for p in ${loops[@]+"${loops[@]}"}; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ "$leg" = busy ]; then
		health=$(ctl backends --json 2>/dev/null |
			jq -c '[.services[0].backends[].health] | group_by(.) | map({(.[0]): length}) | add // {}') || health='{}'
	fi
	stop_pid "$qpid" 10
	if [ "$lg_rc" != 0 ] || ! jq -e '.rtt_per_s' "$TMP/$leg.$run.lg" >/dev/null 2>&1; then
		cat "$TMP/$leg.$run.lgerr" >&2
		echo "bench-control: $leg: qgate-loadgen failed" >&2
		return 1
	fi
	# Scrapes: "CODE BYTES SECONDS"; reloads: "RC APPLIED MS".
	jq -c --argjson cpu "$((c1 - c0))" --argjson ctl_cpu "$((t1 - t0))" --argjson tck "$CLK_TCK" \
		--argjson health "$health" \
		--argjson scrapes "$(awk '{ printf "%s[%s,%s,%s]", (NR > 1 ? "," : ""), $1, $2, $3 } BEGIN { printf "[" } END { print "]" }' "$TMP/scrapes")" \
		--argjson reloads "$(awk '{ printf "%s[%s,%s,%s]", (NR > 1 ? "," : ""), $1, $2, $3 } BEGIN { printf "[" } END { print "]" }' "$TMP/reloads")" \
		'. + {control: {
			qgate_cpu_s: ($cpu / $tck), control_thread_cpu_s: ($ctl_cpu / $tck),
			scrapes: ($scrapes | length), scrapes_200: ($scrapes | map(select(.[0] == 200)) | length),
			scrape_bytes: ($scrapes | map(.[1]) | max // 0),
			scrape_max_ms: ($scrapes | map(.[2] * 1000 | round) | max // 0),
			reloads: ($reloads | length), reloads_ok: ($reloads | map(select(.[0] == 0)) | length),
			reloads_applied: ($reloads | map(select(.[1] == 1)) | length),
			reload_max_ms: ($reloads | map(.[2]) | max // 0),
			health_at_end: $health}}' "$TMP/$leg.$run.lg" >"$TMP/$leg.$run.json" ||
		{ rm -f "$TMP/$leg.$run.json"; echo "bench-control: $leg: cannot summarise run $run" >&2; return 1; }
	if [ -s "$TMP/reloads.errors" ]; then
		echo "bench-control: $leg run $run: failed reloads:" >&2
		sort -u "$TMP/reloads.errors" | head -5 >&2
	fi
	jq -r --arg leg "$leg" --arg run "$run" '"  \($run) \($leg): \(.rtt_per_s | floor) round trips/s, loss \(.loss_pct)%, p99 \(.p99_us) us, qgate cpu \(.control.qgate_cpu_s)s (control thread \(.control.control_thread_cpu_s)s)"
		+ (if $leg == "busy" then ", scrapes \(.control.scrapes_200)/\(.control.scrapes) ok, reloads \(.control.reloads_ok)/\(.control.reloads) ok (\(.control.reloads_applied) applied), health \(.control.health_at_end | tostring)" else "" end)' \
		"$TMP/$leg.$run.json" >&2
}

# ---- runs --------------------------------------------------------------------

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
FAILED=0
echo "bench-control: $IO, $N_BACKENDS backends, $REPEAT x (quiet, busy) x ${DURATION}s, $FLOWS flows x $WINDOW in flight, $SIZE bytes; busy = $BUSY (health $HEALTH_INTERVAL, scrape ${SCRAPE_INTERVAL}s, reload ${RELOAD_INTERVAL}s)" >&2
for run in $(seq 1 "$REPEAT"); do
	for leg in quiet busy; do
		run_leg "$leg" "$run" || { FAILED=1; break 2; }
	done
done

# ---- report ------------------------------------------------------------------

mkdir -p "$RESULTS"
JSON_OUT="$RESULTS/control-$(date +%Y%m%d-%H%M%S).json"
runs_of() {
	if compgen -G "$TMP/$1.*.json" >/dev/null; then
		cat "$TMP/$1".*.json | jq -s .
	else
		echo "[]"
	fi
}

jq -n --argjson quiet "$(runs_of quiet)" --argjson busy "$(runs_of busy)" \
	--arg date "$(date -Iseconds)" --arg kernel "$(uname -r)" --argjson nproc "$NCPU" \
	--arg cpu "$(cpu_model)" \
	--arg loadavg "$LOADAVG" --arg loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)" \
	--arg build "$BUILD" --arg io "$IO" --argjson backends "$N_BACKENDS" \
	--arg health_interval "$HEALTH_INTERVAL" --arg busy_list "$BUSY" --argjson scrape "$SCRAPE_INTERVAL" --argjson reload "$RELOAD_INTERVAL" \
	--argjson echo_cpu "$ECHO_CPU" --argjson relay_cpu "$RELAY_CPU" --arg qgate_cpus "$QGATE_CPUS" \
	--argjson duration "$DURATION" --argjson warmup "$WARMUP" --argjson repeat "$REPEAT" \
	--argjson flows "$FLOWS" --argjson window "$WINDOW" --argjson size "$SIZE" \
	--argjson peer_gso "$([ ${#TOOL_ARGS[@]} -eq 0 ] && echo true || echo false)" \
	--argjson failed "$FAILED" '
	def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
	def r3: if . == null then null else (. * 1000 | round) / 1000 end;
	def leg($runs): ($runs | map(.rtt_per_s)) as $v
		| {median_rtt_per_s: ($v | median), min_rtt_per_s: ($v | min), max_rtt_per_s: ($v | max),
		   spread_pct: (if ($v | length) > 0 then ((($v | max) - ($v | min)) / ($v | median) * 1000 | round) / 10 else null end),
		   median_loss_pct: ($runs | map(.loss_pct) | median),
		   median_qgate_cpu_s: ($runs | map(.control.qgate_cpu_s) | median),
		   median_control_thread_cpu_s: ($runs | map(.control.control_thread_cpu_s) | median),
		   runs: $runs};
	(leg($quiet)) as $q | (leg($busy)) as $b
	| (if $q.median_rtt_per_s and $b.median_rtt_per_s then $b.median_rtt_per_s / $q.median_rtt_per_s else null end) as $ratio
	| ([range(0; [($quiet | length), ($busy | length)] | min)] | map($busy[.].rtt_per_s / $quiet[.].rtt_per_s)) as $pairs
	| {date: $date,
	   machine: {nproc: $nproc, cpu_model: $cpu, kernel: $kernel, loadavg_at_start: $loadavg, loadavg_at_end: $loadavg_end},
	   setup: {build: $build, io_backend: $io, backends: $backends, duration_s: $duration, warmup_s: $warmup,
	           repeat: $repeat, order: "quiet,busy alternating", flows: $flows, window: $window, size: $size,
	           echo_cpu: $echo_cpu, relay_cpu: $relay_cpu, qgate_process_cpus: $qgate_cpus,
	           loadgen_cpu: "unpinned", peer_gso: $peer_gso,
	           busy: {activities: ($busy_list | split(",")),
	                  health: {probe: "udp", interval: $health_interval}, scrape_interval_s: $scrape,
	                  reload_interval_s: $reload, reload_change: "first backend weight 1 <-> 2"}},
	   legs: {quiet: $q, busy: $b},
	   ratio_busy_over_quiet: ($ratio | r3),
	   ratio_busy_over_quiet_per_pair: ($pairs | map(r3)),
	   ratio_busy_over_quiet_median_of_pairs: ($pairs | median | r3),
	   target: {min_ratio: 0.98, met: (if $ratio then $ratio >= 0.98 else null end)},
	   noise: {quiet_spread_pct: $q.spread_pct, busy_spread_pct: $b.spread_pct,
	           larger_than_target: (($q.spread_pct // 0) > 2 or ($b.spread_pct // 0) > 2)},
	   checks: {
	     scrapes: ($busy | map(.control.scrapes) | add // 0),
	     scrapes_200: ($busy | map(.control.scrapes_200) | add // 0),
	     reloads: ($busy | map(.control.reloads) | add // 0),
	     reloads_ok: ($busy | map(.control.reloads_ok) | add // 0),
	     reloads_applied: ($busy | map(.control.reloads_applied) | add // 0),
	     busy_runs: ($busy | length),
	     busy_runs_without_unhealthy: ($busy | map(select((.control.health_at_end.unhealthy // 0) == 0)) | length),
	     all_runs_done: ($failed == 0)}}' >"$JSON_OUT"

CHECKS_OK=$(jq --arg busy ",$BUSY," '.checks | (($busy | contains(",scrape,") | not) or (.scrapes > 0 and .scrapes == .scrapes_200))
	and (($busy | contains(",reload,") | not) or (.reloads > 0 and .reloads == .reloads_ok and .reloads == .reloads_applied))
	and .busy_runs_without_unhealthy == .busy_runs and .all_runs_done' "$JSON_OUT")
[ "$CHECKS_OK" = true ] || FAILED=1

jq -r '
	"",
	"\(.machine.nproc) CPUs (\(.machine.cpu_model)), kernel \(.machine.kernel), load average at start \(.machine.loadavg_at_start).",
	"qgate \(.setup.io_backend), 1 worker on CPU \(.setup.relay_cpu), qgate process (control thread) on CPU \(.setup.qgate_process_cpus); \(.setup.backends) backends; \(.setup.flows) flows x \(.setup.window) in flight, \(.setup.size) bytes, \(.setup.duration_s)s (+\(.setup.warmup_s)s) per run, median of \(.setup.repeat).",
	"",
	"| leg | median round trips/s | min | max | spread | loss % | qgate CPU s | control thread CPU s |",
	"|---|---:|---:|---:|---:|---:|---:|---:|",
	(.legs | to_entries[] | "| \(.key) | \(.value.median_rtt_per_s // 0 | floor) | \(.value.min_rtt_per_s // 0 | floor) | \(.value.max_rtt_per_s // 0 | floor) | \(.value.spread_pct)% | \(.value.median_loss_pct) | \(.value.median_qgate_cpu_s) | \(.value.median_control_thread_cpu_s) |"),
	"",
	"busy/quiet per pair: \(.ratio_busy_over_quiet_per_pair | map(tostring) | join(", "))"' "$JSON_OUT"

jq -r '"bench-control: busy/quiet = \(.ratio_busy_over_quiet) (target >= 0.98: \(if .target.met == null then "n/a" elif .target.met then "met" else "NOT met" end)); quiet \(.legs.quiet.median_rtt_per_s // 0 | floor) rt/s (spread \(.legs.quiet.spread_pct)%), busy \(.legs.busy.median_rtt_per_s // 0 | floor) rt/s (spread \(.legs.busy.spread_pct)%); reloads \(.checks.reloads_ok)/\(.checks.reloads) ok, \(.checks.reloads_applied) applied; scrapes \(.checks.scrapes_200)/\(.checks.scrapes) HTTP 200"' "$JSON_OUT"
[ "$CHECKS_OK" = true ] || echo "bench-control: control-plane checks failed (see checks in the JSON)" >&2
echo "bench-control: wrote $JSON_OUT" >&2
exit "$FAILED"
