#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# soak.sh: qgate for a long time at half its measured capacity; does anything
# grow or drift?
#
#  1. Capacity: a short closed-loop qgate-loadgen run (256 flows x 4 in flight,
#     64 bytes) through a qgate in front of two qgate-echo backends; its round
#     trips/s is the capacity C of this setup on this machine. 4 in flight per
#     flow because the open loop sends 4 datagrams per flow per turn: with 16 the
#     closed loop hands the kernel 16-datagram GSO batches the open loop never
#     makes and measures about twice what open-loop traffic of the same shape
#     sustains (--capacity-window changes it). That qgate is then stopped.
#  2. Soak: a fresh qgate, the same configuration; open loop at C/2 datagrams/s
#     over 256 flows for --minutes (default 10). On top, every 10 s a churn of
#     100 short-lived flows (2 s at 1000 datagrams/s; they expire after the 5 s
#     idle timeout) and every 60 s a `qgatectl reload` of the unchanged file, so
#     flow creation, expiry, upstream socket reuse and reload run all along.
#     The degradation controller observes but does not apply its level
#     (`degradation: {enabled: false}`; --degradation on applies it): on a small
#     shared machine, CPU taken by other jobs makes the worker fall behind now and
#     then, the controller goes to essential and refuses the churn's new flows,
#     and the run then measures the neighbours instead of qgate. The samples
#     record the level the controller would apply.
#  3. Every 10 s (at the end of each churn period, once the churn flows have
#     expired) a sample: VmRSS, open fds (/proc/PID/fd), flows, level, counters.
#  4. At the end, after the traffic stopped:
#     - RSS flat: mean of the last third of the samples within 5 % of the mean
#       of the first third;
#     - fds flat: the same count in every sample of the last third as in the
#       last sample of the first third (policy wrr spreads the churn evenly, so
#       the pool of idle upstream sockets it leaves is the same every period);
#     - counters add up, exactly: received (rx_client + rx_backend) = forwarded
#       (tx_backend + tx_client) + every drop reason counted by the relay (the
#       drop counters of counters.h but tx_backend_failed/tx_client_failed,
#       which count sends that failed after the datagram was counted as
#       forwarded; reported separately);
#     - the loadgen's loss, qgate alive and exiting 0 on SIGTERM.
# Writes perf/results/soak-YYYYmmdd-HHMMSS.json; exit 1 when a check fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=perf/lib.sh
. "$ROOT/perf/lib.sh"
BUILD=build-release
IO=io_uring
MINUTES=10
CAP_SECONDS=5
CAP_WINDOW=4
INTERVAL=10
FLOWS=256
CHURN=1
RELOAD_EVERY=60
QGATE_CPU=0
RSS_TOL_PCT=5
DEGRADE=off
RESULTS="$ROOT/perf/results"

usage() {
	cat <<EOF
usage: perf/soak.sh [options]
  --build DIR        build directory (default build-release; configured and built if missing)
  --io BACKEND       qgate I/O backend: io_uring (default) or recvmmsg
  --minutes N        soak duration (default $MINUTES)
  --capacity-seconds N  length of the closed-loop capacity run (default $CAP_SECONDS)
  --capacity-window W  datagrams in flight per flow in the capacity run (default $CAP_WINDOW)
  --rate PPS         skip the capacity run and soak at PPS
  --no-churn         no short-lived flows every 10 s
  --reload-every S   seconds between two reloads, 0 = none (default $RELOAD_EVERY)
  --degradation on|off  apply the degradation controller's level (default off: it only observes)
  --cpu N            CPU of qgate's worker (default 0)
  --results DIR      where the JSON goes (default perf/results)
  -h, --help         this text
EOF
}

die() {
	echo "soak: $*" >&2
	exit 2
}

RATE=
while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=${2:?}; shift 2 ;;
	--io) IO=${2:?}; shift 2 ;;
	--minutes) MINUTES=${2:?}; shift 2 ;;
	--capacity-seconds) CAP_SECONDS=${2:?}; shift 2 ;;
	--capacity-window) CAP_WINDOW=${2:?}; shift 2 ;;
	--rate) RATE=${2:?}; shift 2 ;;
	--no-churn) CHURN=0; shift ;;
	--reload-every) RELOAD_EVERY=${2:?}; shift 2 ;;
	--degradation) DEGRADE=${2:?}; shift 2 ;;
	--cpu) QGATE_CPU=${2:?}; shift 2 ;;
	--results) RESULTS=${2:?}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done
case "$IO" in io_uring | recvmmsg) ;; *) die "--io wants io_uring or recvmmsg" ;; esac
case "$DEGRADE" in on | off) ;; *) die "--degradation wants on or off" ;; esac
for v in MINUTES CAP_SECONDS CAP_WINDOW RELOAD_EVERY QGATE_CPU ${RATE:+RATE}; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "--$(echo "$v" | tr 'A-Z_' 'a-z-') wants a whole number"
done
[ "$MINUTES" -ge 1 ] || die "--minutes wants >= 1"
for t in jq python3; do command -v "$t" >/dev/null || die "$t is required"; done

case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
QGATE_BIN="$BUILD/controlplane/qgate"
CTL_BIN="$BUILD/controlplane/qgatectl"
ECHO_BIN="$BUILD/perf/qgate-echo"
LOADGEN_BIN="$BUILD/perf/qgate-loadgen"
if [ ! -x "$QGATE_BIN" ] || [ ! -x "$CTL_BIN" ] || [ ! -x "$ECHO_BIN" ] || [ ! -x "$LOADGEN_BIN" ]; then
	echo "soak: building into $BUILD" >&2
	[ -f "$BUILD/CMakeCache.txt" ] ||
		cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQGATE_TESTS=OFF >&2
	cmake --build "$BUILD" --target qgate qgatectl qgate-echo qgate-loadgen >&2
fi

TMP=$(mktemp -d /tmp/qgate-soak.XXXXXX)
PIDS=()

# shellcheck disable=SC2317 # called through trap
cleanup() {
	kill_pids "${PIDS[@]}"
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "soak: $*" >&2; }
ctl() { "$CTL_BIN" -s "$SOCK" "$@"; }

P1=$(free_port)
P2=$(free_port)
VIP=$(free_port)
SOCK="$TMP/admin.sock"
CONF="$TMP/qgate.yaml"
cat >"$CONF" <<EOF
admin: {socket: $SOCK}
dataplane:
  backend: $IO
  cores: [$QGATE_CPU]
degradation: {enabled: $([ "$DEGRADE" = on ] && echo true || echo false)}
services:
  - name: soak
    listen: 127.0.0.1:$VIP
    policy: wrr
    idle_timeout: 5s
    health: {probe: udp, interval: 1s}
    backends:
      - address: 127.0.0.1:$P1
      - address: 127.0.0.1:$P2
EOF

"$ECHO_BIN" -l "127.0.0.1:$P1" -l "127.0.0.1:$P2" -q 2>"$TMP/echo.err" &
PIDS+=("$!")
for _ in $(seq 1 100); do grep -q "listening on" "$TMP/echo.err" && break; sleep 0.05; done
grep -q "listening on" "$TMP/echo.err" || die "qgate-echo did not start"

QPID=
start_qgate() {
	"$QGATE_BIN" -c "$CONF" 2>"$1" &
	QPID=$!
	PIDS+=("$QPID")
	for _ in $(seq 1 100); do
		ctl status >/dev/null 2>&1 && return 0
		alive "$QPID" || break
		sleep 0.1
	done
	cat "$1" >&2
	die "qgate did not start"
}
stop_qgate() { # QRC = exit status
	kill -TERM "$QPID" 2>/dev/null || true
	for _ in $(seq 1 200); do alive "$QPID" || break; sleep 0.1; done
	kill -KILL "$QPID" 2>/dev/null || true
	QRC=0
	wait "$QPID" || QRC=$?
}

# ---- 1. capacity -------------------------------------------------------------

CAP_JSON=null
if [ -z "$RATE" ]; then
	start_qgate "$TMP/qgate-cap.log"
	"$LOADGEN_BIN" --target "127.0.0.1:$VIP" --flows "$FLOWS" --window "$CAP_WINDOW" --duration "$CAP_SECONDS" --warmup 1 \
		--json --quiet >"$TMP/cap.json" 2>"$TMP/cap.err" || { cat "$TMP/cap.err" >&2; die "capacity run failed"; }
	stop_qgate
	CAP_JSON=$(jq -c '{rtt_per_s, loss_pct, p50_us, p99_us, duration_s, flows, window}' "$TMP/cap.json")
	RATE=$(jq '.rtt_per_s / 2 | floor' "$TMP/cap.json")
	log "capacity $(jq .rtt_per_s "$TMP/cap.json") round trips/s (closed loop); soaking at $RATE datagrams/s"
fi
[ "$RATE" -ge 1 ] || die "no rate to soak at"

# ---- 2. soak -----------------------------------------------------------------

DROP_REASONS=$(drop_reasons "$ROOT/include/qgate/counters.h")
# identity TOTALS: received, forwarded, dropped (relay reasons), failed sends, difference;
# bytes: rx_bytes and tx_bytes, equal when nothing was dropped, no send failed and qgate
# answered nothing itself (an echo backend returns every datagram at its size); null otherwise
identity() {
	jq -c --argjson drops "$DROP_REASONS" '. as $t
		| ($drops | map(select(. != "tx_backend_failed" and . != "tx_client_failed")) | map({(.): ($t[.] // 0)}) | add
		   | with_entries(select(.value != 0))) as $by
		| {received: ($t.rx_client + $t.rx_backend), forwarded: ($t.tx_backend + $t.tx_client),
		   dropped: ([$by[]] | add // 0), dropped_by_reason: $by,
		   failed_sends: ($t.tx_backend_failed + $t.tx_client_failed),
		   per_direction: {from_clients: {received: $t.rx_client, to_backends: $t.tx_backend,
		                                  answered_by_qgate: ($t.quic_vn_sent + $t.quic_retry_sent)},
		                   from_backends: {received: $t.rx_backend,
		                                   to_clients: ($t.tx_client - $t.quic_vn_sent - $t.quic_retry_sent)}}}
		| .difference = (.received - .forwarded - .dropped) | .holds = (.difference == 0)
		| .bytes = {received: $t.rx_bytes, sent: $t.tx_bytes}
		| .bytes.holds = (if .dropped == 0 and .failed_sends == 0 and .per_direction.from_clients.answered_by_qgate == 0
		                  then .bytes.received == .bytes.sent else null end)' <<<"$1"
}

start_qgate "$TMP/qgate.log"
# UDP receive-buffer overflows, machine-wide: datagrams the kernel dropped because a socket
# (qgate's, the echo's, the loadgen's) was full, i.e. its reader fell behind
SNMP0=$(udp_rcvbuf_errors)
SECS=$((MINUTES * 60))
"$LOADGEN_BIN" --target "127.0.0.1:$VIP" --rate "$RATE" --flows "$FLOWS" --duration "$SECS" --warmup 1 \
	--json >"$TMP/soak.json" 2>"$TMP/soak.err" &
LG=$!
PIDS+=("$LG")
T0=$EPOCHREALTIME
SAMPLES="$TMP/samples.jsonl"
: >"$SAMPLES"
n_periods=$((SECS / INTERVAL))
churn_tx=0
churn_rx=0
reloads=0
reload_fail=0
log "soaking for $MINUTES min at $RATE datagrams/s ($FLOWS flows), churn $([ $CHURN = 1 ] && echo on || echo off), reload every ${RELOAD_EVERY}s"
for k in $(seq 1 "$n_periods"); do
	period_start=$(awk -v t="$T0" -v k="$k" -v i="$INTERVAL" 'BEGIN { printf "%.6f", t + 1 + (k - 1) * i }')
	# churn at the start of the period: 100 new flows for 2 s (they expire 5 s after)
	if [ "$CHURN" = 1 ]; then
		c=$("$LOADGEN_BIN" --target "127.0.0.1:$VIP" --rate 1000 --flows 100 --duration 2 --warmup 0 --json --quiet 2>/dev/null || echo '{"tx":0,"rx":0}')
		churn_tx=$((churn_tx + $(jq .tx <<<"$c")))
		churn_rx=$((churn_rx + $(jq .rx <<<"$c")))
	fi
	if [ "$RELOAD_EVERY" -gt 0 ] && [ $(((k * INTERVAL) % RELOAD_EVERY)) -eq 0 ]; then
		if ctl reload >/dev/null 2>&1; then reloads=$((reloads + 1)); else reload_fail=$((reload_fail + 1)); fi
	fi
	# sample at the end of the period (churn flows expired by then)
	d=$(awk -v t="$period_start" -v i="$INTERVAL" -v n="$EPOCHREALTIME" 'BEGIN { d = t + i - 0.2 - n; printf "%.3f", (d > 0 ? d : 0) }')
	sleep "$d"
	alive "$QPID" || { log "qgate died"; break; }
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$QPID/status")
	fds=$(find "/proc/$QPID/fd" -mindepth 1 -maxdepth 1 | wc -l)
	st=$(ctl status --json)
	lvl=$(ctl level --json 2>/dev/null | jq -c '{level, controller}' || echo '{}')
	jq -c --argjson t "$(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')" \
		--argjson rss "$rss" --argjson fds "$fds" --argjson lvl "$lvl" \
		'{t_s: $t, rss_kb: $rss, fds: $fds, flows_active: .flows_active, level: $lvl.level, controller: $lvl.controller,
		  rx_client: .totals.rx_client, rx_backend: .totals.rx_backend, tx_backend: .totals.tx_backend,
		  tx_client: .totals.tx_client, drops: .drops, errors: .errors,
		  flows_created: .totals.flows_created, flows_expired: .totals.flows_expired}' <<<"$st" >>"$SAMPLES"
	if [ $((k % 6)) -eq 0 ]; then
		tail -1 "$SAMPLES" | jq -r '"soak: t=\(.t_s)s rss=\(.rss_kb)kB fds=\(.fds) flows=\(.flows_active) level=\(.level) controller=\(.controller) drops=\(.drops)"' >&2
	fi
done
wait "$LG" || true
SNMP1=$(udp_rcvbuf_errors)
sleep 1
QALIVE=true
alive "$QPID" || QALIVE=false
FINAL=$(ctl status --json 2>/dev/null | jq -c .totals || echo '{}')
EVENTS=$(ctl events --json 2>/dev/null | jq -c '[.events[] | select(.type != "component_state") | {at_s, type, backend, text}] | .[-20:]' || echo '[]')
stop_qgate

# ---- 3. verdict --------------------------------------------------------------

mkdir -p "$RESULTS"
JSON_OUT="$RESULTS/soak-$(date +%Y%m%d-%H%M%S).json"
ID=$(identity "$FINAL")
jq -s --argjson cap "$CAP_JSON" --argjson rate "$RATE" --argjson minutes "$MINUTES" --argjson flows "$FLOWS" \
	--argjson lg "$(jq -c '{tx, rx, lost, mismatched, late, tx_skipped, loss_pct, rtt_per_s, p50_us, p99_us, p999_us, max_us}' "$TMP/soak.json" 2>/dev/null || echo null)" \
	--argjson id "$ID" --argjson final "$FINAL" --argjson alive "$QALIVE" --argjson qrc "$QRC" \
	--argjson churn "{\"enabled\": $([ $CHURN = 1 ] && echo true || echo false), \"tx\": $churn_tx, \"rx\": $churn_rx}" \
	--argjson reloads "{\"every_s\": $RELOAD_EVERY, \"ok\": $reloads, \"failed\": $reload_fail}" \
	--argjson events "$EVENTS" --argjson tol "$RSS_TOL_PCT" --argjson kdrop "$((SNMP1 - SNMP0))" \
	--arg date "$(date -Iseconds)" --arg kernel "$(uname -r)" --argjson nproc "$(nproc)" --arg io "$IO" \
	--arg cpu "$(cpu_model)" \
	--arg loadavg "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson degrade "$([ "$DEGRADE" = on ] && echo true || echo false)" \
	'. as $s | ($s | length) as $n | ($n / 3 | floor) as $third
	 | ($s[:$third]) as $first | ($s[$n - $third:]) as $last
	 | def mean(f): (map(f) | add) / length;
	 {date: $date, machine: {nproc: $nproc, cpu_model: $cpu, kernel: $kernel, loadavg_at_end: $loadavg},
	  setup: {io: $io, minutes: $minutes, flows: $flows, rate: $rate, capacity_run: $cap, churn: $churn,
	          reloads: $reloads, policy: "wrr", idle_timeout: "5s", sample_interval_s: 10,
	          degradation_applied: $degrade, controller_levels_seen: (map(.controller) | unique)},
	  loadgen: $lg, kernel_udp_rcvbuf_drops_machine_wide: $kdrop,
	  rss_kb: {first: $s[0].rss_kb, last: $s[-1].rss_kb, min: (map(.rss_kb) | min), max: (map(.rss_kb) | max),
	           first_third_mean: ($first | mean(.rss_kb) | round), last_third_mean: ($last | mean(.rss_kb) | round),
	           change_pct: ((($last | mean(.rss_kb)) / ($first | mean(.rss_kb)) - 1) * 10000 | round / 100),
	           tolerance_pct: $tol},
	  fds: {first: $s[0].fds, last: $s[-1].fds, min: (map(.fds) | min), max: (map(.fds) | max),
	        end_of_first_third: $first[-1].fds, last_third: ($last | map(.fds) | unique)},
	  counters: {final: $final, identity: $id},
	  qgate_alive: $alive, qgate_exit: $qrc, events: $events, samples: $s}
	 | .checks = [
	     {check: "qgate alive to the end and exit 0 on SIGTERM", ok: (.qgate_alive and .qgate_exit == 0)},
	     {check: "samples cover the run (\($n))", ok: ($n >= 3)},
	     {check: "RSS flat: last-third mean within \($tol) % of first-third mean (\(.rss_kb.change_pct) %)",
	      ok: ((.rss_kb.change_pct | fabs) <= $tol)},
	     {check: "fds flat: every last-third sample equals the end of the first third (\(.fds.end_of_first_third))",
	      ok: (.fds.last_third == [.fds.end_of_first_third])},
	     {check: "received = forwarded + dropped by reason, exactly (\(.counters.identity.received) = \(.counters.identity.forwarded) + \(.counters.identity.dropped))",
	      ok: .counters.identity.holds},
	     {check: "bytes sent = bytes received when nothing was dropped (\(.counters.identity.bytes.sent) = \(.counters.identity.bytes.received)\(if .counters.identity.bytes.holds == null then ", not applicable: drops" else "" end))",
	      ok: (.counters.identity.bytes.holds != false)},
	     {check: "no reload failed", ok: ($reloads.failed == 0)},
	     {check: "loadgen ran (tx > 0) and nothing mismatched", ok: (.loadgen != null and .loadgen.tx > 0 and .loadgen.mismatched == 0)}]
	 | .pass = all(.checks[]; .ok)' "$SAMPLES" >"$JSON_OUT"

jq -r '"soak: \(.setup.minutes) min at \(.setup.rate) datagrams/s (capacity \(.setup.capacity_run.rtt_per_s // "n/a")/s): loss \(.loadgen.lost)/\(.loadgen.tx) (\(.loadgen.loss_pct)%), p99 \(.loadgen.p99_us) us",
	"soak: RSS \(.rss_kb.first) -> \(.rss_kb.last) kB (first third \(.rss_kb.first_third_mean), last third \(.rss_kb.last_third_mean), \(.rss_kb.change_pct)%), fds \(.fds.first) -> \(.fds.last) (max \(.fds.max))",
	"soak: received \(.counters.identity.received) = forwarded \(.counters.identity.forwarded) + dropped \(.counters.identity.dropped) \(.counters.identity.dropped_by_reason) -> \(if .counters.identity.holds then "exact" else "off by \(.counters.identity.difference)" end)",
	(.checks[] | "soak: \(if .ok then "ok  " else "FAIL" end) \(.check)"),
	"soak: \(if .pass then "PASS" else "FAIL" end)"' "$JSON_OUT"
echo "soak: wrote $JSON_OUT" >&2
jq -e .pass "$JSON_OUT" >/dev/null
