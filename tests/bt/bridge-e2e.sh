#!/usr/bin/env bash
# Runs inside the test VM, after scripts/bt-vm-guest.sh brought hci0 and hci1 up: qgate bridges on hci0
# (BR/EDR and LE listeners, security low: the harness turns SSP off) and reaches Bluetooth echo backends
# on hci1 (bt:// and bt-le://), through a real kernel Bluetooth stack.
#   inbound:  qgate-l2test client on hci1 -> L2CAP -> qgate bridge -> worker -> UDP -> qgate-echo, and back
#   outbound: qgate-l2test udp -> UDP -> qgate worker -> bridge -> L2CAP -> qgate-l2test server on hci1, and back
# Every payload is checked byte for byte by qgate-l2test; qgate's exit totals must show the bridge traffic.
# Usage (from the host): scripts/bt-vm-test.sh -- tests/bt/bridge-e2e.sh QGATE QGATE-L2TEST QGATE-ECHO
# Environment: QGATE_BT_IO (dataplane backend, default io_uring: falls back to recvmmsg by itself),
#   QGATE_BT_COUNT (SDUs per exchange, default 100), QGATE_BT_LE_WINDOW (SDUs in flight on LE, default 4:
#   more 2 KB SDUs than an LE channel's credits cover, so the bridge's send queues must deliver them all).
set -uo pipefail
[ -z "${QGATE_BT_TRACE:-}" ] || set -x
qgate=${1:?usage: bridge-e2e.sh QGATE QGATE-L2TEST QGATE-ECHO}
l2=${2:?usage: bridge-e2e.sh QGATE QGATE-L2TEST QGATE-ECHO}
echo_bin=${3:?usage: bridge-e2e.sh QGATE QGATE-L2TEST QGATE-ECHO}
gw=${QGATE_BT_HCI0_ADDR:?run me through scripts/bt-vm-test.sh}
dev=${QGATE_BT_HCI1_ADDR:?run me through scripts/bt-vm-test.sh}
io=${QGATE_BT_IO:-io_uring}
count=${QGATE_BT_COUNT:-100}
le_window=${QGATE_BT_LE_WINDOW:-4}
dir=$(mktemp -d /tmp/bridge-e2e.XXXXXX)
failed=()
pids=()
t0=$(date +%s.%N)

declare -A server
say() { printf 'bridge-e2e: [%5.1fs] %s\n' "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" "$*"; }
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT

# wait_for FILE PATTERN SECS [PID]: until FILE has a line matching PATTERN (or PID is gone). Every turn
# costs processes, which are slow under TCG: a few per second only.
wait_for() {
	local _
	for _ in $(seq $(($3 * 5))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		[ -z "${4:-}" ] || kill -0 "$4" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

say "hci0 (qgate) $gw, hci1 (devices) $dev, $count SDUs per exchange"
# UDP echo backend of the bridged service.
"$echo_bin" -l 127.0.0.1:9000 2>"$dir/echo.log" &
pids+=($!)
# Bluetooth echo backends on hci1: BR/EDR PSM 0x1003, LE PSM 0x0083.
for t in "bredr 0x1003 4096" "le 0x0083 2048"; do
	# shellcheck disable=SC2086 # three words
	set -- $t
	"$l2" server -i hci1 -t "$1" -p "$2" -m "$3" -r "$dir/ready.$1" >"$dir/server.$1.log" 2>&1 &
	pids+=($!)
	server[$1]=$!
done
for t in bredr le; do
	wait_for "$dir/ready.$t" . 10 || {
		say "the $t echo server did not start: $(cat "$dir/server.$t.log")"
		exit 1
	}
done
wait_for "$dir/echo.log" listening 10 || {
	say "qgate-echo did not start: $(cat "$dir/echo.log")"
	exit 1
}

# config NAME SERVICES...: qgate's configuration, with the BR/EDR and LE listeners on hci0 for service
# sensors. Services: sensors (the UDP echo), things (bt:// echo on hci1), things-le (bt-le:// echo on hci1).
config() {
	local name=$1 s
	shift
	cat >"$dir/$name.yaml" <<EOF
dataplane:
  backend: $io
  cores: [0]
  max_datagram: 4096
  # Small tables: the guest runs under TCG, where touching a default-sized flow table takes seconds.
  flows_per_core: 4096
  upstream_sockets_per_core: 256
  rx_buffers: 256
drain_timeout: 0
services:
  - name: sensors
    listen: 127.0.0.1:9001
    backends:
      - address: 127.0.0.1:9000
EOF
	for s in "$@"; do
		case $s in
		things) printf '  - name: things\n    listen: 127.0.0.1:9002\n    backends:\n      - address: bt://%s/0x1003\n' "$dev" ;;
		things-le) printf '  - name: things-le\n    listen: 127.0.0.1:9003\n    backends:\n      - address: bt-le://%s/0x0083\n' "$dev" ;;
		esac
	done >>"$dir/$name.yaml"
	cat >>"$dir/$name.yaml" <<EOF
bridges:
  - type: bluetooth
    adapter: hci0
    transport: bredr
    psm: 0x1001
    service: sensors
    security: low
  - type: bluetooth
    adapter: hci0
    transport: le
    psm: 0x0081
    service: sensors
    security: low
EOF
}

# start_qgate NAME: run qgate on config NAME until ready
start_qgate() {
	"$qgate" -c "$dir/$1.yaml" 2>"$dir/$1.log" &
	qpid=$!
	pids+=("$qpid")
	if ! wait_for "$dir/$1.log" "qgate: info: ready" 20 "$qpid"; then
		say "qgate did not get ready:"
		cat "$dir/$1.log"
		exit 1
	fi
	grep -q "component bridge running" "$dir/$1.log" || {
		say "the bridge component is not running:"
		cat "$dir/$1.log"
		exit 1
	}
	say "qgate ready ($(grep -o 'dataplane: .*backend' "$dir/$1.log" | head -1))"
}

# stop_qgate NAME MIN: stop it; its exit totals must show at least MIN datagrams each way through the
# workers' bridge rings (bridge_rx: from links, bridge_tx: to links), and no datagram lost on a link: a
# full link queues (tx_queued), it must not drop (tx_queue_full, tx_dropped)
stop_qgate() {
	local c v rc=0
	kill -TERM "$qpid"
	wait "$qpid" || rc=$?
	if [ $rc != 0 ]; then
		say "qgate exited with $rc"
		failed+=("$1-exit")
	fi
	for c in bridge_rx bridge_tx; do
		v=$(awk -v c="$c" '$1 == "qgate:" && $2 == "total" && $3 == c { print $5; exit }' "$dir/$1.log")
		say "$1: qgate total $c: ${v:-0}"
		[ "${v:-0}" -ge "$2" ] || failed+=("$1-total-$c")
	done
	grep -E "total bridge(s\[| outbound)" "$dir/$1.log" | sed "s/^/  $1: /"
	if grep -E "total bridge(s\[| outbound)" "$dir/$1.log" | grep -qE " (tx_queue_full|tx_dropped)="; then
		say "$1: the bridge dropped datagrams on a link"
		failed+=("$1-link-drops")
	fi
	if grep -E "warning|error" "$dir/$1.log" | grep -v "open-file limit" >"$dir/$1.warn"; then
		say "$1: qgate warned:"
		cat "$dir/$1.warn"
	fi
}

# run NAME COMMAND...: one verified exchange
run() {
	local name=$1 rc=0
	shift
	say "$name: $*"
	timeout 60 "$@" 2>&1 | sed "s/^/  $name: /"
	rc=${PIPESTATUS[0]}
	if [ "$rc" != 0 ]; then
		say "$name: FAILED ($rc)"
		failed+=("$name")
	fi
}

# Phase 1: Bluetooth devices as clients of the service (LE, then BR/EDR), and a UDP client reaching the
# BR/EDR backend. An LE channel runs out of credits after one or two 2 KB SDUs: the replies behind them
# wait in the link's send queue (tx_queued) until credits come back. No LE backend yet: with btvirt, an
# LE channel that hci1 opens towards hci0 while hci0 holds an LE link to hci1 (the bridge's pool) does
# not connect (docs/BLUETOOTH.md).
config one things
start_qgate one
run in-le "$l2" client -i hci1 -t le -p 0x0081 -m 2048 -n "$count" -w "$le_window" --max 2048 -T 15 "$gw"
run in-bredr "$l2" client -i hci1 -t bredr -p 0x1001 -m 4096 -n "$count" -w 4 --max 2048 -T 15 "$gw"
# A UDP client reaching a Bluetooth backend; it probes until the bridge's link to the device is up.
run out-bredr "$l2" udp -n "$count" -w 4 --max 2048 -T 15 -C 30 127.0.0.1:9002
stop_qgate one $((count * 3))

# Phase 2: a UDP client reaching the LE backend (the pool retries while hci1's LE link of phase 1 lingers).
config two things-le
start_qgate two
run out-le "$l2" udp -n "$count" -w "$le_window" --max 2048 -T 15 -C 40 127.0.0.1:9003
stop_qgate two "$count"

for t in bredr le; do
	kill -TERM "${server[$t]}" 2>/dev/null
	wait "${server[$t]}" 2>/dev/null
done
for t in bredr le; do
	say "server $t: $(tail -n 1 "$dir/server.$t.log")"
	grep -q " 0 errors" "$dir/server.$t.log" || failed+=("server-$t")
done

if [ ${#failed[@]} -gt 0 ]; then
	say "FAILED: ${failed[*]}"
	for f in one two server.bredr server.le; do
		echo "--- $f log"
		cat "$dir/$f.log"
	done
	exit 1
fi
say "all passed"
