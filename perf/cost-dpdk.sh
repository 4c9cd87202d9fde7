#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Deterministic per-packet cost of qgate's DPDK path, in instructions (callgrind
# Ir; no hardware counters needed).
#
# qgate (1 worker, backend dpdk) runs under `valgrind --tool=callgrind
# --separate-threads=yes` on a net_pcap vdev that reads a generated capture
# (rx_pcap=IN) and writes to /dev/null: N UDP/IPv4 datagrams to the VIP, round
# robin over F client flows, NAT'd toward 3 backends (maglev). Once qgate's
# --stats report shows every datagram received, it gets SIGTERM. Only the worker
# thread's profile is analysed (perf/cost_dpdk.py): two baseline runs without
# packets, idle for different times, give the startup cost and the cost of one
# empty poll; both are subtracted, and the timer work (qg_relay_expire, once per
# millisecond of wall time) is left out of the total.
#
# QUIC modes (--modes): the same service with protocol quic and a QUIC-LB
# config, single-pass (quic-lb1: server_id_len 8 + nonce_len 8, one AES block)
# or four-pass (quic-lb4: 3 + 6, Feistel), both keyed; every datagram is a
# short header whose DCID is the QUIC-LB CID of its flow (one CID per flow,
# server ID of backend f % 3), so each flow must reach the backend its CID
# names: the run checks the per-backend totals and quic_lb_routed. Each QUIC
# case is compared with the UDP case of the same flow count.
#
# Cache model (--cache-sim): callgrind also simulates the caches (--cache-sim=yes:
# I1, D1 and one last level, LRU, write-allocate, no hardware prefetcher, prefetch
# instructions not simulated) and the branch predictors (--branch-sim=yes), with a
# fixed server-like geometry (not the host's, so results do not depend on where
# they ran) that a million flows do not fit in. The same baseline subtraction applies to every event; per packet the
# script reports Ir, D1 and LL misses, mispredicts and callgrind's cycle estimate
# CEst = Ir + 10 (I1mr + D1mr + D1mw) + 100 (ILmr + DLmr + DLmw) + 10 (Bcm + Bim),
# a model, not a measurement. With two --large-packets values a case's flows are
# run twice and the difference is the steady state (lookups only, no creation).
#
# Output: a table on stdout and perf/results/cost-dpdk-YYYYmmdd-HHMMSS.json
# (cost-dpdk-quic-... when a QUIC mode ran, cost-dpdk-cache-... with --cache-sim).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=build-release
PACKETS=200000
FLOWS="1000,1000000"
LARGE_PACKETS=
SIZE=64
ORDER=rr
MODES=udp
QUIC_KEY=8f95f09245765f80256934e50c66207f
RESULTS="$ROOT/perf/results"
KEEP=0
CACHE_SIM=0
# Simulated geometry (SIZE,ASSOC,LINE): a current server core. 48 KiB 12-way L1d (Intel since Ice
# Lake, AMD Zen 5), 32 KiB 8-way L1i, and a 32 MiB 16-way last level (one Zen 3/4 CCD's L3; a Xeon
# socket slice of similar size). callgrind models two levels, so L2 hits count as D1 misses.
I1=32768,8,64
D1=49152,12,64
LL=33554432,16,64
HOST_CACHE=0

usage() {
	cat <<EOF
usage: perf/cost-dpdk.sh [options]
  --build DIR         build directory with qgate built with DPDK (default build-release;
                      configured (Release) and built if qgate is missing)
  --packets N         datagrams per case (default 200000)
  --flows LIST        comma list of client flow counts, one case each (default 1000,1000000)
  --large-packets LIST
                      datagrams of a case with more flows than --packets (default: 2 x flows,
                      so half of its datagrams open a flow); a comma list runs such a case once
                      per value (with --cache-sim, two values give the steady state: the
                      difference between the runs is lookups only)
  --size BYTES        UDP payload (default 64)
  --order rr|shuffled  datagram order over the flows: rr (round robin, default; as qgate-loadgen
                      --dpdk sends) or shuffled (each pass over the flows in another order,
                      as independent clients arrive: LRU neighbours are not the next flow)
  --modes LIST        comma list of udp, quic-lb1 (QUIC-LB single pass, 8 + 8), quic-lb4
                      (four pass, 3 + 6); every mode runs every --flows case (default udp)
  --cache-sim         also simulate caches and branch predictors (callgrind --cache-sim=yes
                      --branch-sim=yes): D1/LL misses, mispredicts and the cycle estimate
                      CEst per packet, and the modelled throughput ratio between flow counts
  --I1 S,A,L          simulated L1i: size, associativity, line bytes (default $I1)
  --D1 S,A,L          simulated L1d (default $D1)
  --LL S,A,L          simulated last level (default $LL, 32 MiB)
  --host-cache        simulate the host's caches as valgrind detects them instead
  --results DIR       where the JSON goes (default perf/results)
  --keep              keep the temporary directory (pcaps, callgrind files, logs)
  -h, --help          this text
Writes perf/results/cost-dpdk-YYYYmmdd-HHMMSS.json (cost-dpdk-quic-... with a QUIC mode,
cost-dpdk-cache-... with --cache-sim).
QUIC vs UDP, 100k flows x 4 datagrams and 1k flows:
  perf/cost-dpdk.sh --modes udp,quic-lb1,quic-lb4 --flows 1000,100000 --packets 400000
Cache model, 1k vs 1M flows, with the 1M steady state:
  perf/cost-dpdk.sh --cache-sim --large-packets 2000000,3000000
EOF
}

die() {
	echo "cost-dpdk: $*" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=${2:?}; shift 2 ;;
	--packets) PACKETS=${2:?}; shift 2 ;;
	--flows) FLOWS=${2:?}; shift 2 ;;
	--large-packets) LARGE_PACKETS=${2:?}; shift 2 ;;
	--size) SIZE=${2:?}; shift 2 ;;
	--order) ORDER=${2:?}; shift 2 ;;
	--modes) MODES=${2:?}; shift 2 ;;
	--results) RESULTS=${2:?}; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--cache-sim) CACHE_SIM=1; shift ;;
	--I1) I1=${2:?}; CACHE_SIM=1; shift 2 ;;
	--D1) D1=${2:?}; CACHE_SIM=1; shift 2 ;;
	--LL) LL=${2:?}; CACHE_SIM=1; shift 2 ;;
	--host-cache) HOST_CACHE=1; CACHE_SIM=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done
for v in PACKETS SIZE; do
	[[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] || die "--$(echo "$v" | tr 'A-Z' 'a-z') wants a whole number >= 1"
done
[ -z "$LARGE_PACKETS" ] || [[ $LARGE_PACKETS =~ ^[0-9]+(,[0-9]+)*$ ]] ||
	die "--large-packets wants a whole number or a comma list of them"
for v in I1 D1 LL; do
	[[ ${!v} =~ ^[0-9]+,[0-9]+,[0-9]+$ ]] || die "--$v wants SIZE,ASSOC,LINE (bytes, ways, bytes)"
done
CG_ARGS=()
if [ "$CACHE_SIM" = 1 ]; then
	CG_ARGS=(--cache-sim=yes --branch-sim=yes)
	[ "$HOST_CACHE" = 1 ] || CG_ARGS+=(--I1="$I1" --D1="$D1" --LL="$LL")
fi
[[ $FLOWS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--flows wants a comma list of numbers"
[ "$SIZE" -ge 24 ] && [ "$SIZE" -le 1472 ] || die "--size wants 24..1472"
case "$ORDER" in rr | shuffled) ;; *) die "--order wants rr or shuffled" ;; esac
[[ $MODES =~ ^(udp|quic-lb1|quic-lb4)(,(udp|quic-lb1|quic-lb4))*$ ]] ||
	die "--modes wants a comma list of udp, quic-lb1, quic-lb4"
for tool in valgrind callgrind_annotate python3; do
	command -v "$tool" >/dev/null || die "$tool is required"
done

case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
QGATE_BIN="$BUILD/controlplane/qgate"
HELPER="$ROOT/perf/cost_dpdk.py"
if [ ! -x "$QGATE_BIN" ]; then
	echo "cost-dpdk: building qgate into $BUILD" >&2
	cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQGATE_TESTS=OFF >&2
	cmake --build "$BUILD" --target qgate >&2
fi

TMP=$(mktemp -d /tmp/qgate-cost-dpdk.XXXXXX)
VG_PID=

# shellcheck disable=SC2317 # called through trap
cleanup() {
	if [ -n "$VG_PID" ]; then
		kill -KILL "$VG_PID" 2>/dev/null || true
		wait "$VG_PID" 2>/dev/null || true
	fi
	if [ "$KEEP" = 1 ]; then
		echo "cost-dpdk: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	rm -rf /var/run/dpdk/qgcost-*-$$ 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CPU=$(python3 -c 'import os; print(max(os.sched_getaffinity(0)))')

# quic_lb_of MODE: the lb config (ID:SID_LEN:NONCE_LEN:KEY) and the backends' server IDs, in order.
quic_lb_of() {
	case "$1" in
	quic-lb1) echo "1:8:8:$QUIC_KEY 0a00000000000001,0a00000000000002,0a00000000000003" ;;
	quic-lb4) echo "1:3:6:$QUIC_KEY 0a0001,0a0002,0a0003" ;;
	esac
}

# qgate_conf NAME IN FLOWS [MODE]: one-arm on net_pcap0; clients 10.1.x.x, backends and NAT 10.2.x.x.
qgate_conf() {
	local name=$1 in=$2 flows=$3 mode=${4:-udp} nat=$(((${3} + 64511) / 64512 + 1)) i
	local lb sids id sl nl
	cat <<EOF
dataplane:
  backend: dpdk
  cores: [$CPU]
  flows_per_core: $((flows * 2 > 65536 ? flows * 2 : 65536))
  max_datagram: 1500
  overload_guard: false # pcap always fills a burst: the worker would look behind and refuse flows
  dpdk:
    eal_args: [--no-huge, -m, "512", --no-pci, --file-prefix, qgcost-$name-$$, --vdev, "net_pcap0,rx_pcap=$in,tx_pcap=/dev/null"]
    ports:
      - name: net_pcap0
        addresses: [10.1.0.1/16, 10.2.0.1/16]
        nat_addresses: [$(for ((i = 1; i <= nat; i++)); do printf '%s10.2.1.%d' "$([ "$i" -gt 1 ] && echo ', ')" "$i"; done)]
        neighbors:
          - {address: 10.2.0.10, mac: "02:00:00:00:00:02"}
          - {address: 10.2.0.11, mac: "02:00:00:00:00:02"}
          - {address: 10.2.0.12, mac: "02:00:00:00:00:02"}
# Under valgrind the worker is always busy: the degradation controller would shed new flows.
degradation: {enabled: false}
services:
  - name: cost
    listen: 10.1.0.100:4433
    policy: maglev
    idle_timeout: 1h
EOF
	if [ "$mode" = udp ]; then
		echo "    backends: [{address: 10.2.0.10:5001}, {address: 10.2.0.11:5001}, {address: 10.2.0.12:5001}]"
		return
	fi
	read -r lb sids <<<"$(quic_lb_of "$mode")"
	IFS=: read -r id sl nl _ <<<"$lb"
	IFS=, read -r -a sids <<<"$sids"
	cat <<EOF
    protocol: quic
    quic:
      lb: [{config_id: $id, server_id_len: $sl, nonce_len: $nl, key: $QUIC_KEY}]
    backends:
EOF
	for i in 0 1 2; do
		echo "      - {address: 10.2.0.1$i:5001, server_id: \"${sids[$i]}\"}"
	done
}

# run_case NAME PACKETS FLOWS IDLE_SEC [MODE]: one callgrind run; sets WORKER_FILE (the worker
# thread's profile). Runs in the main shell (not in $(...)) so the EXIT trap sees VG_PID.
run_case() {
	local name=$1 packets=$2 flows=$3 idle=$4 mode=${5:-udp} dir="$TMP/$1" t0 rc=0 lb sids
	mkdir -p "$dir"
	if [ "$mode" = udp ]; then
		python3 "$HELPER" pcap "$dir/in.pcap" "$packets" "$flows" --size "$SIZE" --order "$ORDER"
	else
		read -r lb sids <<<"$(quic_lb_of "$mode")"
		python3 "$HELPER" pcap "$dir/in.pcap" "$packets" "$flows" --size "$SIZE" --order "$ORDER" \
			--quic-lb "$lb" --server-ids "$sids"
	fi
	qgate_conf "$name" "$dir/in.pcap" "$flows" "$mode" >"$dir/qgate.yaml"
	if ! "$QGATE_BIN" --check-config "$dir/qgate.yaml" >"$dir/check.out" 2>&1; then
		cat "$dir/check.out" >&2
		die "qgate refuses the dpdk config (built without DPDK?)"
	fi
	echo "cost-dpdk: $name: $packets datagrams, $flows flows, under callgrind" >&2
	t0=$SECONDS
	valgrind --tool=callgrind --separate-threads=yes "${CG_ARGS[@]}" --callgrind-out-file="$dir/cg.out" \
		"$QGATE_BIN" -c "$dir/qgate.yaml" --stats 0.5 </dev/null >"$dir/qgate.out" 2>"$dir/qgate.err" &
	VG_PID=$!
	# Ready (EAL up, worker polling), then every datagram received; each wait bounded.
	local deadline=$((SECONDS + 300))
	until grep -q "ready (config" "$dir/qgate.err" 2>/dev/null; do
		kill -0 "$VG_PID" 2>/dev/null || { tail -20 "$dir/qgate.err" >&2; die "$name: qgate exited before ready"; }
		[ $SECONDS -lt $deadline ] || die "$name: qgate not ready within 300 s"
		sleep 0.2
	done
	deadline=$((SECONDS + 1800))
	if [ "$packets" -gt 0 ]; then
		until grep -q "^--- t=[0-9]*s  rx $packets " "$dir/qgate.out" 2>/dev/null; do
			kill -0 "$VG_PID" 2>/dev/null || die "$name: qgate exited early"
			[ $SECONDS -lt $deadline ] || die "$name: input not consumed within 1800 s"
			sleep 0.2
		done
	fi
	sleep "$idle"
	kill -TERM "$VG_PID"
	for _ in $(seq 1 600); do
		kill -0 "$VG_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$VG_PID" 2>/dev/null && echo "cost-dpdk: $name: qgate did not stop within 60 s of SIGTERM" >&2
	wait "$VG_PID" || rc=$?
	VG_PID=
	[ "$rc" = 0 ] || { tail -20 "$dir/qgate.err" >&2; die "$name: qgate exited with $rc"; }
	if [ "$packets" -gt 0 ]; then
		grep -q "^qgate: total tx_backend = $packets$" "$dir/qgate.err" ||
			{ grep "qgate: total" "$dir/qgate.err" >&2; die "$name: not every datagram went out to a backend"; }
	fi
	if [ "$packets" -gt 0 ] && [ "$mode" != udp ]; then
		check_quic_routing "$name" "$dir" "$packets" "$flows"
	fi
	rm -f "$dir/in.pcap"
	echo "cost-dpdk: $name: $((SECONDS - t0)) s" >&2
	WORKER_FILE=$(python3 "$HELPER" worker-file "$dir/cg.out") || die "$name: no worker thread profile"
}

# check_quic_routing NAME DIR PACKETS FLOWS: every flow reached the backend its CID names (flow f:
# backend f % 3), and every flow was created by its server ID.
check_quic_routing() {
	local name=$1 dir=$2 packets=$3 flows=$4 want got created
	want=$(python3 "$HELPER" backend-counts "$packets" "$flows" 3 "$ORDER")
	# The last --stats report holds the final per-backend totals ("total to N from M").
	got=$(grep "^  backend " "$dir/qgate.out" | tail -3 | sed -n 's/.* total to \([0-9]*\) from .*/\1/p' | xargs)
	[ "$got" = "$want" ] || die "$name: datagrams per backend $got, the CIDs name $want"
	created=$((flows < packets ? flows : packets))
	grep -q "^qgate: total quic_lb_routed = $created$" "$dir/qgate.err" ||
		{ grep "qgate: total" "$dir/qgate.err" >&2; die "$name: not every flow was routed by its QUIC-LB server ID"; }
	if grep -q "^qgate: total quic_lb_unknown_server_id" "$dir/qgate.err"; then
		die "$name: server IDs the service does not know"
	fi
}

RUNS="$TMP/runs.json"
entries=()
add_entry() { # NAME FILE PACKETS FLOWS BASELINE [MODE]
	entries+=("{\"name\": \"$1\", \"file\": \"$2\", \"packets\": $3, \"flows\": $4, \"baseline\": $5, \"mode\": \"${6:-udp}\"}")
}

run_case idle-short 0 1 0.5
add_entry idle-short "$WORKER_FILE" 0 1 true
run_case idle-long 0 1 3
add_entry idle-long "$WORKER_FILE" 0 1 true
IFS=',' read -r -a FLOW_LIST <<<"$FLOWS"
IFS=',' read -r -a MODE_LIST <<<"$MODES"
for mode in "${MODE_LIST[@]}"; do
	for flows in "${FLOW_LIST[@]}"; do
		PACKET_LIST=("$PACKETS")
		if [ "$flows" -gt "$PACKETS" ]; then
			IFS=',' read -r -a PACKET_LIST <<<"${LARGE_PACKETS:-$((2 * flows))}"
		fi
		for packets in "${PACKET_LIST[@]}"; do
			[ "$packets" -ge 1 ] || die "--large-packets wants whole numbers >= 1"
			name="flows-$flows"
			[ "$mode" = udp ] || name="$mode-flows-$flows"
			[ "${#PACKET_LIST[@]}" = 1 ] || name="$name-p$packets"
			run_case "$name" "$packets" "$flows" 0.5 "$mode"
			add_entry "$name" "$WORKER_FILE" "$packets" "$flows" false "$mode"
			# callgrind_annotate's own view of the worker thread (kept with --keep).
			callgrind_annotate --threshold=99 "$WORKER_FILE" >"$TMP/$name/annotate.txt" 2>/dev/null || true
			if [ "$CACHE_SIM" = 1 ]; then
				# Functions by last-level then L1d data misses (inclusive of startup: raw counts).
				callgrind_annotate --threshold=99 --show=Ir,D1mr,D1mw,DLmr,DLmw,Bcm \
					--sort=DLmr,DLmw,D1mr,D1mw "$WORKER_FILE" >"$TMP/$name/annotate-cache.txt" 2>/dev/null || true
			fi
		done
	done
done

{
	echo "{\"qgate\": \"$QGATE_BIN\", \"runs\": ["
	(IFS=','; echo "${entries[*]}")
	echo "]}"
} >"$RUNS"

mkdir -p "$RESULTS"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$RESULTS/cost-dpdk-$STAMP.json"
[ "$MODES" = udp ] || OUT="$RESULTS/cost-dpdk-quic-$STAMP.json"
[ "$CACHE_SIM" = 0 ] || OUT="${OUT%-"$STAMP".json}-cache-$STAMP.json"
python3 "$HELPER" analyze "$RUNS" "$TMP/analysis.json"
python3 - "$TMP/analysis.json" "$OUT" <<EOF
import json, os, platform, subprocess, sys
a = json.load(open(sys.argv[1]))
def cmd(*c):
    try:
        return subprocess.run(c, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
out = {
    "date": cmd("date", "-Iseconds"),
    "machine": {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
                "dpdk": cmd("pkg-config", "--modversion", "libdpdk") or "unknown",
                "valgrind": cmd("valgrind", "--version")},
    "setup": {"qgate": "$QGATE_BIN", "size": $SIZE, "order": "$ORDER", "workers": 1, "policy": "maglev", "backends": 3,
              "modes": "$MODES".split(","),
              "quic": {"quic-lb1": "protocol quic, QUIC-LB config 1, server_id_len 8, nonce_len 8, AES-128 key (single pass)",
                       "quic-lb4": "protocol quic, QUIC-LB config 1, server_id_len 3, nonce_len 6, AES-128 key (four pass)",
                       "input": "short headers (0x41) whose DCID is the flow's QUIC-LB CID (server ID of backend flow % 3, nonce flow + 1), same UDP payload size as udp"},
              "port": "net_pcap0 (rx_pcap=generated capture, tx_pcap=/dev/null), --no-huge -m 512 --no-pci",
              "direction": "client -> VIP -> backend (NAT), IPv4",
              "tool": "valgrind --tool=callgrind --separate-threads=yes, worker thread only",
              "callgrind_args": "${CG_ARGS[*]}",
              "cache_sim": $([ "$CACHE_SIM" = 1 ] && echo True || echo False),
              "method": "baselines without packets give startup + Ir per empty poll (linear in empty polls); both subtracted; qg_relay_expire (timer, per ms of wall time) excluded from the total"},
    **a,
}
json.dump(out, open(sys.argv[2], "w"), indent=2)
open(sys.argv[2], "a").write("\n")
EOF
echo
echo "cost-dpdk: wrote $OUT" >&2
