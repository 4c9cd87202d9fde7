#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
#
# bench-dpdk.sh: forwarding rate (Mpps) of small UDP datagrams through
#   testpmd    dpdk-testpmd --forward-mode=io (the ceiling of memif + generator)
#   testpmd-1m the same with the generator keeping --flows-large flows: the generator's own
#              ceiling at 1M flows (its per-flow state misses too), the baseline of qgate-1m
#   qgate-1k   qgate, DPDK backend, NAT, --flows-small flows (default 1000)
#   qgate-1m   the same with --flows-large flows (default 1000000)
#   qgate-udp-1m          = qgate-1m (its runs are reused when both are asked for),
#                           the baseline of the QUIC legs
#   qgate-quic-single-1m  QUIC service, QUIC-LB server_id_len 8 + nonce_len 8 + key:
#                         single-pass AES-128-ECB per packet
#   qgate-quic-four-1m    QUIC-LB server_id_len 3 + nonce_len 6 + key: four-pass
#                         (three passes to read the server ID)
#   QUIC legs send short headers whose DCID is a QUIC-LB CID naming one of the
#   backends' server IDs (each flow's first datagram is a 1200-byte Initial
#   with that DCID, sent during the warm-up).
# The generator (qgate-loadgen --dpdk, forward mode, open loop as fast as it
# can) owns two memif ports (role=server) on one CPU; the device under test
# attaches to them (role=client) on the other CPU. Nothing leaves the machine.
#
# qgate legs run only when `qgate --check-config` accepts a dpdk config;
# otherwise they are reported as skipped. A leg that runs but forwards nothing
# makes the script exit 1 (after writing the results).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=perf/lib.sh
. "$ROOT/perf/lib.sh"
BUILD=build-release
DURATION=10
WARMUP=2
REPEAT=1
SIZE=64
FLOWS_SMALL=1000
FLOWS_LARGE=1000000
NAT_ADDRS=16
LEGS="testpmd,testpmd-1m,qgate-1k,qgate-1m,qgate-udp-1m,qgate-quic-single-1m,qgate-quic-four-1m"
# QUIC-LB of the QUIC legs: one key, server IDs of the two backends per leg.
QLB_KEY=8f95f09245765f80256934e50c66207f
NCPU=$(nproc)
LG_CPU=0
DUT_CPU=$((NCPU - 1))
RESULTS="$ROOT/perf/results"
LOADGEN_BIN=${LOADGEN:-}
TESTPMD=${TESTPMD:-dpdk-testpmd}
ZERO_COPY=1
NEAR_NS=80
WAIT_NEAR=0

# Fixed MACs (memif devarg mac=) so configs can name them statically.
LG_MAC0=02:00:00:00:00:01
LG_MAC1=02:00:00:00:00:02
DUT_MAC0=02:00:00:00:01:01
DUT_MAC1=02:00:00:00:01:02

usage() {
	cat <<EOF
usage: perf/bench-dpdk.sh [options]
  --build DIR         build directory (default build-release; configured and built if needed)
  --loadgen PATH      qgate-loadgen built with DPDK (default DIR/perf/qgate-loadgen; env LOADGEN)
  --duration SEC      measured seconds per run (default 10)
  --warmup SEC        unmeasured seconds before each run (default 2)
  --repeat N          runs per leg, the median is reported (default 1)
  --size BYTES        UDP payload (default 64)
  --flows-small N     flows of the qgate-1k leg (default 1000)
  --flows-large N     flows of the qgate-1m, qgate-udp-1m and qgate-quic-*-1m legs (default 1000000)
  --nat-addresses N   NAT source addresses given to qgate (default 16: 1M flows fit in their ports)
  --legs LIST         comma list of testpmd,testpmd-1m,qgate-1k,qgate-1m,qgate-udp-1m,
                      qgate-quic-single-1m,qgate-quic-four-1m (default all)
  --lg-cpu N          CPU of the load generator (default 0)
  --dut-cpu N         CPU of the device under test (default: last CPU, $DUT_CPU)
  --copy              the device under test's memif ports copy every frame in and out of the
                      shared memory (the default without hugepages). With hugepages they run
                      zero-copy (zero-copy=yes, --single-file-segments): the generator writes
                      and reads frames in the device's own mbufs, as a NIC's DMA would, so
                      the device's cost is its own work, not memif's copies
  --near-ns N         a run is "near" when qgate-c2c measured the generator's and the device's
                      CPUs at most N ns apart (one-way cache-line transfer) before and after it
                      (default 80). On a VM the host moves vCPUs between cores that share a
                      cache (~30 ns here) and cores that do not (~180 ns); each leg also
                      reports the median of its near runs
  --wait-near SEC     before each run, wait up to SEC seconds for the CPUs to be near (default 0)
  --results DIR       where results go (default perf/results)
  -h, --help          this text
Writes perf/results/bench-dpdk-YYYYmmdd-HHMMSS.json and bench-dpdk-latest.md.
EOF
}

die() {
	echo "bench-dpdk: $*" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=${2:?}; shift 2 ;;
	--loadgen) LOADGEN_BIN=${2:?}; shift 2 ;;
	--duration) DURATION=${2:?}; shift 2 ;;
	--warmup) WARMUP=${2:?}; shift 2 ;;
	--repeat) REPEAT=${2:?}; shift 2 ;;
	--size) SIZE=${2:?}; shift 2 ;;
	--flows-small) FLOWS_SMALL=${2:?}; shift 2 ;;
	--flows-large) FLOWS_LARGE=${2:?}; shift 2 ;;
	--nat-addresses) NAT_ADDRS=${2:?}; shift 2 ;;
	--legs) LEGS=${2:?}; shift 2 ;;
	--lg-cpu) LG_CPU=${2:?}; shift 2 ;;
	--dut-cpu) DUT_CPU=${2:?}; shift 2 ;;
	--copy) ZERO_COPY=0; shift ;;
	--results) RESULTS=${2:?}; shift 2 ;;
	--near-ns) NEAR_NS=${2:?}; shift 2 ;;
	--wait-near) WAIT_NEAR=${2:?}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option: $1" ;;
	esac
done
for v in DURATION WARMUP REPEAT SIZE FLOWS_SMALL FLOWS_LARGE NAT_ADDRS LG_CPU DUT_CPU NEAR_NS WAIT_NEAR; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "--$(echo "$v" | tr 'A-Z_' 'a-z-') wants a whole number"
done
[ "$REPEAT" -ge 1 ] || die "--repeat wants >= 1"
[ "$DURATION" -ge 1 ] || die "--duration wants >= 1"
if [ "$NAT_ADDRS" -lt 1 ] || [ "$NAT_ADDRS" -gt 200 ]; then die "--nat-addresses wants 1..200"; fi
[ "$LG_CPU" != "$DUT_CPU" ] || die "--lg-cpu and --dut-cpu must differ"
command -v jq >/dev/null || die "jq is required"

case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
[ -n "$LOADGEN_BIN" ] || LOADGEN_BIN="$BUILD/perf/qgate-loadgen"
C2C_BIN="$BUILD/perf/qgate-c2c"
QGATE_BIN="$BUILD/controlplane/qgate"

has_dpdk_loadgen() {
	[ -x "$LOADGEN_BIN" ] && "$LOADGEN_BIN" --dpdk '' --help >/dev/null 2>&1
}
if ! has_dpdk_loadgen; then
	echo "bench-dpdk: building into $BUILD" >&2
	cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQGATE_TESTS=OFF >&2
	cmake --build "$BUILD" --target qgate-loadgen >&2
	cmake --build "$BUILD" --target qgate >&2 || echo "bench-dpdk: qgate did not build" >&2
	has_dpdk_loadgen || die "$LOADGEN_BIN has no DPDK driver (is libdpdk-dev installed?)"
fi
if [ ! -x "$C2C_BIN" ] && [ -f "$BUILD/CMakeCache.txt" ]; then
	cmake --build "$BUILD" --target qgate-c2c >&2 || echo "bench-dpdk: no qgate-c2c: runs are not classified near/far" >&2
fi

TMP=$(mktemp -d /tmp/qgate-bench-dpdk.XXXXXX)
PIDS=()
HUGE_ORIG=

# shellcheck disable=SC2317 # called through trap
cleanup() {
	kill_pids "${PIDS[@]}"
	if [ -n "${HUGE_MNT:-}" ]; then
		umount "$HUGE_MNT" 2>/dev/null || true
	fi
	if [ -n "$HUGE_ORIG" ]; then
		echo "$HUGE_ORIG" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
	fi
	rm -rf "$TMP"
	# EAL runtime directories of the processes we started (named with our PID).
	rm -rf /var/run/dpdk/lg-*-$$ /var/run/dpdk/tp-*-$$ /var/run/dpdk/qg-*-$$ 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- memory: hugepages when we can have them, else --no-huge ----------------

# Two DPDK processes at a time (generator + device under test), -m 512 each, plus slack.
hugepages_free() { awk '/^HugePages_Free/ {print $2}' /proc/meminfo; }
HUGE_NEED=768 # 2 MB pages
if [ "$(awk '/^Hugepagesize/ {print $2}' /proc/meminfo)" = 2048 ]; then
	free=$(hugepages_free)
	if [ "${free:-0}" -lt "$HUGE_NEED" ] && [ -w /proc/sys/vm/nr_hugepages ]; then
		HUGE_ORIG=$(cat /proc/sys/vm/nr_hugepages)
		echo $((HUGE_ORIG + HUGE_NEED - free)) >/proc/sys/vm/nr_hugepages 2>/dev/null || true
	fi
fi
# memif needs DPDK's multi-process support, so not --in-memory: a private hugetlbfs mount instead.
HUGE_MNT=
if [ "$(hugepages_free)" -ge "$HUGE_NEED" ] && mkdir -p "$TMP/huge" &&
	mount -t hugetlbfs -o pagesize=2M nodev "$TMP/huge" 2>/dev/null; then
	HUGE_MNT="$TMP/huge"
	MEM_ARGS=(--huge-dir "$HUGE_MNT" -m 512)
	MEMORY=hugepages
else
	MEM_ARGS=(--no-huge -m 512)
	MEMORY=no-huge
fi
echo "bench-dpdk: memory: $MEMORY" >&2
# The device under test's memif options and EAL memory arguments (same for testpmd and qgate).
DUT_MEM_ARGS=("${MEM_ARGS[@]}")
DUT_MEMIF=role=client
[ "$MEMORY" = hugepages ] || ZERO_COPY=0
if [ "$ZERO_COPY" = 1 ]; then
	# memif zero-copy exposes the client's memory segments, which must be one file per list.
	DUT_MEM_ARGS+=(--single-file-segments)
	DUT_MEMIF=role=client,zero-copy=yes
fi

# ---- one run -------------------------------------------------------------------

# start_loadgen NAME FLOWS [ARGS...]: the generator as memif server on two fresh sockets.
start_loadgen() {
	local name=$1 flows=$2 dir="$TMP/$1"
	shift 2
	mkdir -p "$dir"
	local eal="${MEM_ARGS[*]} --no-pci --file-prefix lg-$name-$$ --vdev net_memif0,role=server,socket-abstract=no,socket=$dir/a.sock,mac=$LG_MAC0 --vdev net_memif1,role=server,socket-abstract=no,socket=$dir/b.sock,mac=$LG_MAC1"
	timeout $((DURATION + WARMUP + 90)) "$LOADGEN_BIN" --dpdk "$eal" --lcore "$LG_CPU" \
		--tx-port net_memif0 --rx-port net_memif1 --mode forward --dst-mac "$DUT_MAC0" \
		--src-ip 10.1.0.2 --target 10.1.0.1:4433 --flows "$flows" --size "$SIZE" \
		--duration "$DURATION" --warmup "$WARMUP" --link-timeout 60 --json "$@" \
		>"$dir/lg.json" 2>"$dir/lg.err" &
	LG_PID=$!
	PIDS+=("$LG_PID")
	for _ in $(seq 1 100); do
		[ -S "$dir/a.sock" ] && [ -S "$dir/b.sock" ] && return 0
		kill -0 "$LG_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$dir/lg.err" >&2
	return 1
}

start_testpmd() {
	local dir="$TMP/$1"
	# Main lcore and forwarding lcore share the DUT CPU: testpmd's main lcore only sleeps.
	timeout $((DURATION + WARMUP + 120)) "$TESTPMD" "${DUT_MEM_ARGS[@]}" --no-pci --file-prefix "tp-$1-$$" \
		--lcores "0@$DUT_CPU,1@$DUT_CPU" \
		--vdev "net_memif0,$DUT_MEMIF,socket-abstract=no,socket=$dir/a.sock,mac=$DUT_MAC0" \
		--vdev "net_memif1,$DUT_MEMIF,socket-abstract=no,socket=$dir/b.sock,mac=$DUT_MAC1" \
		-- --forward-mode=io --auto-start --nb-cores=1 --total-num-mbufs=16384 --stats-period 5 \
		</dev/null >"$dir/dut.out" 2>&1 &
	DUT_PID=$!
	PIDS+=("$DUT_PID")
}

# QUIC-LB of a QUIC mode: "CONFIG_ID SID_LEN NONCE_LEN SID1 SID2".
qlb_params() {
	case "$1" in
	quic-single) echo "0 8 8 5153000000000a10 5153000000000a11" ;; # 8 + 8 = 16: one AES block
	quic-four) echo "0 3 6 0a0010 0a0011" ;;                        # 3 + 6 = 9: four-pass Feistel
	*) return 1 ;;
	esac
}

# qgate_conf DIR FLOWS [MODE]: a NAT from 10.1.0.1:4433 (memif0) to two backends behind memif1;
# MODE udp (default), quic-single or quic-four (protocol quic with that QUIC-LB configuration).
qgate_conf() {
	local dir=$1 flows=$2 mode=${3:-udp} sips i eal_yaml="" cid sl nl s1 s2
	# As many client addresses as qgate-loadgen will use (ports 1024..65535 each).
	sips=$(((flows + 64511) / 64512))
	for a in "${DUT_MEM_ARGS[@]}" --no-pci --file-prefix "qg-$(basename "$dir")-$$" \
		--vdev "net_memif0,$DUT_MEMIF,socket-abstract=no,socket=$dir/a.sock,mac=$DUT_MAC0" \
		--vdev "net_memif1,$DUT_MEMIF,socket-abstract=no,socket=$dir/b.sock,mac=$DUT_MAC1"; do
		eal_yaml+="'$a', "
	done
	# Degradation and the overload guard off: the legs measure forwarding, and a saturated worker
	# would otherwise shed or refuse (overload) the flows the warm-up is still opening.
	cat <<EOF
degradation: {enabled: false}
dataplane:
  backend: dpdk
  cores: [$DUT_CPU]
  overload_guard: false
  flows_per_core: $((flows * 2 > 65536 ? flows * 2 : 65536))
  dpdk:
    eal_args: [${eal_yaml%, }]
    ports:
      - name: net_memif0
        addresses: [10.1.0.1/16]
        neighbors:
EOF
	for ((i = 0; i < sips && i < 60; i++)); do
		echo "          - {address: 10.1.$(((2 + i) / 256)).$(((2 + i) % 256)), mac: '$LG_MAC0'}"
	done
	cat <<EOF
      - name: net_memif1
        addresses: [10.2.0.1/16]
        nat_addresses: [$(for ((i = 0; i < NAT_ADDRS; i++)); do printf '%s10.2.1.%d' "$([ "$i" -gt 0 ] && echo ', ')" $((i + 1)); done)]
        neighbors:
          - {address: 10.2.0.10, mac: '$LG_MAC1'}
          - {address: 10.2.0.11, mac: '$LG_MAC1'}
services:
  - name: bench
    listen: 10.1.0.1:4433
    idle_timeout: 60s
EOF
	if [ "$mode" = udp ]; then
		cat <<EOF
    backends:
      - address: 10.2.0.10:5001
      - address: 10.2.0.11:5001
EOF
		return
	fi
	read -r cid sl nl s1 s2 < <(qlb_params "$mode")
	cat <<EOF
    protocol: quic
    quic:
      lb:
        - {config_id: $cid, server_id_len: $sl, nonce_len: $nl, key: $QLB_KEY}
    backends:
      - {address: 10.2.0.10:5001, server_id: "$s1"}
      - {address: 10.2.0.11:5001, server_id: "$s2"}
EOF
}

# loadgen_args MODE: what the generator adds for a QUIC mode (nothing for udp).
loadgen_args() {
	local cid sl nl s1 s2
	[ "$1" != udp ] || return 0
	read -r cid sl nl s1 s2 < <(qlb_params "$1")
	echo "--payload quic --quic-lb $cid:$sl:$nl:$QLB_KEY --server-ids $s1,$s2"
}

# leg_mode LEG: udp, quic-single or quic-four.
leg_mode() {
	case "$1" in
	qgate-quic-single-1m) echo quic-single ;;
	qgate-quic-four-1m) echo quic-four ;;
	*) echo udp ;;
	esac
}

start_qgate() {
	local dir="$TMP/$1"
	qgate_conf "$dir" "$2" "$3" >"$dir/qgate.yaml"
	timeout $((DURATION + WARMUP + 120)) "$QGATE_BIN" -c "$dir/qgate.yaml" </dev/null >"$dir/dut.out" 2>&1 &
	DUT_PID=$!
	PIDS+=("$DUT_PID")
}

# c2c_ns: one-way cache-line transfer time between the generator's and the device's CPUs, or null.
c2c_ns() {
	if [ -x "$C2C_BIN" ]; then
		"$C2C_BIN" "$LG_CPU" "$DUT_CPU" 2>/dev/null | jq '.one_way_ns' 2>/dev/null || echo null
	else
		echo null
	fi
}

# wait_near: up to WAIT_NEAR seconds until the two CPUs share a cache; prints the last c2c_ns.
wait_near() {
	local ns waited=0
	ns=$(c2c_ns)
	while [ "$waited" -lt "$WAIT_NEAR" ] && [ "$ns" != null ] &&
		jq -en --argjson ns "$ns" --argjson near "$NEAR_NS" '$ns > $near' >/dev/null; do
		sleep 1
		waited=$((waited + 1))
		ns=$(c2c_ns)
	done
	echo "$ns"
}

# run_leg LEG RUN FLOWS: one measurement into $TMP/LEG.RUN.json
run_leg() {
	local leg=$1 name="$1.$2" flows=$3 rc=0 mode lg_args=() c2c_before c2c_after
	mode=$(leg_mode "$leg")
	c2c_before=$(wait_near)
	read -r -a lg_args <<<"$(loadgen_args "$mode")"
	LG_PID=
	DUT_PID=
	start_loadgen "$name" "$flows" "${lg_args[@]}" || {
		echo "bench-dpdk: $leg: generator did not start" >&2
		return 1
	}
	case "$leg" in
	testpmd | testpmd-1m) start_testpmd "$name" ;;
	*) start_qgate "$name" "$flows" "$mode" ;;
	esac
	wait "$LG_PID" || rc=$?
	stop_pid "$DUT_PID"
	c2c_after=$(c2c_ns)
	if [ "$rc" -ne 0 ] || ! jq -e '.rx_mpps > 0' "$TMP/$name/lg.json" >/dev/null 2>&1; then
		echo "bench-dpdk: $leg: nothing forwarded (generator exit $rc)" >&2
		tail -5 "$TMP/$name/lg.err" >&2 || true
		tail -20 "$TMP/$name/dut.out" >&2 || true
		return 1
	fi
	# The generator's live lines (one a second, warm-up left out): rx pps per second, to tell a run
	# that was slow throughout from one that a neighbour slowed for a few seconds.
	# With each second's ring_full: the share of the generator's bursts the device's ring refused in
	# part. Near 0 the generator set that second's rate; well above 0 the device did.
	grep '^t=[0-9]*s .* rx=[0-9]* pps' "$TMP/$name/lg.err" | grep -v '(warmup)' |
		sed -n 's/.* rx=\([0-9]*\) pps.* ring_full=\([0-9.]*\)%.*/[\1,\2]/p' |
		jq -s --slurpfile lg "$TMP/$name/lg.json" --argjson b "$c2c_before" --argjson a "$c2c_after" \
			--argjson near "$NEAR_NS" \
			'$lg[0] + {rx_pps_per_s: map(.[0]), ring_full_pct_per_s: map(.[1]),
			  c2c_ns_before: $b, c2c_ns_after: $a,
			  near: ($b != null and $a != null and $b <= $near and $a <= $near)}' >"$TMP/$name.json"
	jq -r --arg leg "$leg" --arg run "$2" '"  \($leg) run \($run): \(.rx_mpps) Mpps forwarded (generator sent \(.tx_mpps) Mpps, device ring full on \(.tx_full_pct)% of its bursts, CPUs \(.c2c_ns_before)/\(.c2c_ns_after) ns apart), loss \(.loss_pct)%, p50 \(.p50_us) us; per second \([.rx_pps_per_s[] / 1e4 | round / 100])"' \
		"$TMP/$name.json" >&2
}

# qgate_accepts_dpdk [MODE]: 0 when this qgate build validates a dpdk configuration of that mode.
QGATE_REASON=
qgate_accepts_dpdk() {
	local mode=${1:-udp} dir="$TMP/probe-${1:-udp}"
	if [ ! -x "$QGATE_BIN" ]; then
		QGATE_REASON="$QGATE_BIN not found"
		return 1
	fi
	mkdir -p "$dir"
	qgate_conf "$dir" "$FLOWS_LARGE" "$mode" >"$dir/qgate.yaml"
	if ! "$QGATE_BIN" --check-config "$dir/qgate.yaml" >"$dir/check.out" 2>&1; then
		QGATE_REASON="qgate --check-config refuses the dpdk $mode config: $(grep -m1 -v '^$' "$dir/check.out" || true)"
		return 1
	fi
}

declare -A MEDIAN MIN MAX BEST NEAR NEAR_RUNS STATUS REASON FLOWS_OF
LEG_LIST=()
IFS=',' read -r -a LEG_LIST <<<"$LEGS"
FAILED=0
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

for leg in "${LEG_LIST[@]}"; do
	case "$leg" in
	testpmd | testpmd-1m)
		flows=$FLOWS_SMALL
		[ "$leg" = testpmd ] || flows=$FLOWS_LARGE
		command -v "$TESTPMD" >/dev/null || { STATUS[$leg]=skipped; REASON[$leg]="$TESTPMD not found"; }
		;;
	qgate-1k) flows=$FLOWS_SMALL ;;
	qgate-1m | qgate-udp-1m | qgate-quic-single-1m | qgate-quic-four-1m) flows=$FLOWS_LARGE ;;
	*) die "unknown leg: $leg" ;;
	esac
	FLOWS_OF[$leg]=$flows
	if [ "${leg#testpmd}" = "$leg" ] && ! qgate_accepts_dpdk "$(leg_mode "$leg")"; then
		STATUS[$leg]=skipped
		REASON[$leg]=$QGATE_REASON
	fi
	if [ "${STATUS[$leg]:-}" = skipped ]; then
		echo "bench-dpdk: $leg: skipped (${REASON[$leg]})" >&2
		continue
	fi
	STATUS[$leg]=ok
done

# Runs go round robin over the legs (run 1 of every leg, then run 2, ...): a slow
# spell of the shared machine then hits several legs, not all runs of one.
for run in $(seq 1 "$REPEAT"); do
	for leg in "${LEG_LIST[@]}"; do
		[ "${STATUS[$leg]}" = ok ] || continue
		# qgate-udp-1m is qgate-1m: reuse that run when it was just measured.
		if [ "$leg" = qgate-udp-1m ] && [ -f "$TMP/qgate-1m.$run.json" ]; then
			cp "$TMP/qgate-1m.$run.json" "$TMP/$leg.$run.json"
			echo "bench-dpdk: $leg run $run: = qgate-1m run $run" >&2
			continue
		fi
		echo "bench-dpdk: $leg run $run/$REPEAT: ${DURATION}s, ${FLOWS_OF[$leg]} flows, $SIZE-byte $(leg_mode "$leg") payload, generator CPU $LG_CPU, DUT CPU $DUT_CPU" >&2
		run_leg "$leg" "$run" "${FLOWS_OF[$leg]}" || { STATUS[$leg]=failed; FAILED=1; }
	done
done
for leg in "${LEG_LIST[@]}"; do
	[ "${STATUS[$leg]}" = ok ] || continue
	MEDIAN[$leg]=$(cat "$TMP/$leg".*.json | jq -s 'map(.rx_mpps) | sort | .[(length - 1) / 2 | floor]')
	MIN[$leg]=$(cat "$TMP/$leg".*.json | jq -s 'map(.rx_mpps) | min')
	MAX[$leg]=$(cat "$TMP/$leg".*.json | jq -s 'map(.rx_mpps) | max')
	# The best measured second of any run (warm-up seconds left out): this VM's neighbours slow a
	# leg for seconds at a time, by up to 2x, and never speed it up.
	BEST[$leg]=$(cat "$TMP/$leg".*.json | jq -s \
		'[.[] | .rx_pps_per_s[]] | if length > 0 then (max / 1e4 | round) / 100 else null end')
	# The runs with both CPUs sharing a cache before and after (see --near-ns).
	NEAR[$leg]=$(cat "$TMP/$leg".*.json | jq -s \
		'map(select(.near) | .rx_mpps) | sort | if length > 0 then .[(length - 1) / 2 | floor] else null end')
	NEAR_RUNS[$leg]=$(cat "$TMP/$leg".*.json | jq -s 'map(select(.near)) | length')
done

# ---- report ----------------------------------------------------------------------

mkdir -p "$RESULTS"
STAMP=$(date +%Y%m%d-%H%M%S)
JSON_OUT="$RESULTS/bench-dpdk-$STAMP.json"
MD_OUT="$RESULTS/bench-dpdk-latest.md"

ratio() { # ratio A B [TABLE]: A/B of TABLE's Mpps (MEDIAN, or BEST: the best seconds) with 3 decimals, or null
	local -n tab=${3:-MEDIAN}
	if [ "${tab[$1]:-null}" != null ] && [ "${tab[$2]:-null}" != null ]; then
		jq -n --argjson a "${tab[$1]}" --argjson b "${tab[$2]}" 'if $b > 0 then ($a / $b * 1000 | round) / 1000 else null end'
	else
		echo null
	fi
}
R_QT=$(ratio qgate-1k testpmd)
R_LS=$(ratio qgate-1m qgate-1k)
R_QT1M=$(ratio qgate-1m testpmd-1m)
RB_QT=$(ratio qgate-1k testpmd BEST)
RB_LS=$(ratio qgate-1m qgate-1k BEST)
RB_QT1M=$(ratio qgate-1m testpmd-1m BEST)
RN_QT=$(ratio qgate-1k testpmd NEAR)
RN_LS=$(ratio qgate-1m qgate-1k NEAR)
RN_QT1M=$(ratio qgate-1m testpmd-1m NEAR)
# ns per packet is 1e3 / Mpps, so (QUIC-LB ns/pkt) / (UDP ns/pkt) = UDP Mpps / QUIC-LB Mpps.
R_QS=$(ratio qgate-udp-1m qgate-quic-single-1m)
R_QF=$(ratio qgate-udp-1m qgate-quic-four-1m)
RN_QS=$(ratio qgate-udp-1m qgate-quic-single-1m NEAR)
RN_QF=$(ratio qgate-udp-1m qgate-quic-four-1m NEAR)
QUIC_TARGET=1.30

legs_json="{}"
for leg in "${LEG_LIST[@]}"; do
	runs="[]"
	if compgen -G "$TMP/$leg.*.json" >/dev/null; then
		runs=$(cat "$TMP/$leg".*.json | jq -s .)
	fi
	legs_json=$(jq -n --argjson acc "$legs_json" --arg leg "$leg" --arg st "${STATUS[$leg]}" \
		--arg why "${REASON[$leg]:-}" --argjson med "${MEDIAN[$leg]:-null}" --argjson runs "$runs" \
		--argjson min "${MIN[$leg]:-null}" --argjson max "${MAX[$leg]:-null}" --arg mode "$(leg_mode "$leg")" \
		--argjson best "${BEST[$leg]:-null}" --argjson near "${NEAR[$leg]:-null}" \
		--argjson nnear "${NEAR_RUNS[$leg]:-0}" \
		'$acc + {($leg): {status: $st, reason: $why, payload: $mode, median_rx_mpps: $med,
		  min_rx_mpps: $min, max_rx_mpps: $max, best_second_mpps: $best,
		  near_median_rx_mpps: $near, near_runs: $nnear,
		  ns_per_pkt: (if $med != null and $med > 0 then (1e6 / $med | round) / 1000 else null end),
		  runs: $runs}}')
done

jq -n --argjson legs "$legs_json" --argjson qt "$R_QT" --argjson ls "$R_LS" \
	--argjson qs "$R_QS" --argjson qf "$R_QF" --argjson qtarget "$QUIC_TARGET" --arg key_note "QUIC-LB key $QLB_KEY" \
	--arg date "$(date -Iseconds)" --arg kernel "$(uname -r)" --argjson nproc "$NCPU" \
	--arg cpu "$(cpu_model)" \
	--arg loadavg "$LOADAVG" --argjson lg_cpu "$LG_CPU" --argjson dut_cpu "$DUT_CPU" \
	--argjson duration "$DURATION" --argjson warmup "$WARMUP" --argjson repeat "$REPEAT" \
	--argjson size "$SIZE" --argjson fs "$FLOWS_SMALL" --argjson fl "$FLOWS_LARGE" \
	--argjson rbqt "$RB_QT" --argjson rbls "$RB_LS" --argjson zc "$ZERO_COPY" \
	--argjson qt1m "$R_QT1M" --argjson rbqt1m "$RB_QT1M" \
	--argjson rnqt "$RN_QT" --argjson rnls "$RN_LS" --argjson rnqt1m "$RN_QT1M" --argjson nearns "$NEAR_NS" \
	--argjson rnqs "$RN_QS" --argjson rnqf "$RN_QF" \
	--arg memory "$MEMORY" --arg dpdk "$(pkg-config --modversion libdpdk 2>/dev/null || echo unknown)" \
	'{date: $date,
	  machine: {nproc: $nproc, cpu_model: $cpu, kernel: $kernel, loadavg_at_start: $loadavg, dpdk: $dpdk},
	  setup: {duration_s: $duration, warmup_s: $warmup, repeat: $repeat, size: $size,
	          flows_small: $fs, flows_large: $fl, loadgen_cpu: $lg_cpu, dut_cpu: $dut_cpu,
	          memory: $memory, dut_memif_zero_copy: ($zc == 1), near_ns: $nearns, link: "memif (2 ports)", mode: "forward, open loop, as fast as possible"},
	  legs: $legs,
	  quic_lb: {single: "server_id_len 8, nonce_len 8, key (one AES-128-ECB block)",
	            four: "server_id_len 3, nonce_len 6, key (four-pass Feistel)", note: $key_note},
	  ratios: {qgate_1k_over_testpmd: $qt, qgate_1m_over_qgate_1k: $ls, qgate_1m_over_testpmd_1m: $qt1m,
	           best_second: {qgate_1k_over_testpmd: $rbqt, qgate_1m_over_qgate_1k: $rbls,
	                         qgate_1m_over_testpmd_1m: $rbqt1m},
	           near_runs: {qgate_1k_over_testpmd: $rnqt, qgate_1m_over_qgate_1k: $rnls,
	                       qgate_1m_over_testpmd_1m: $rnqt1m, quic_single_ns_over_udp: $rnqs,
	                       quic_four_ns_over_udp: $rnqf},
	           quic_single_ns_over_udp: $qs, quic_four_ns_over_udp: $qf, quic_target: $qtarget}}' >"$JSON_OUT"

{
	echo "# bench-dpdk $(date -Iseconds)"
	echo
	echo "$NCPU CPUs ($(jq -r .machine.cpu_model "$JSON_OUT")), kernel $(uname -r), DPDK $(jq -r .machine.dpdk "$JSON_OUT"), load average at start $LOADAVG."
	echo "Forward path over two memif ports, $SIZE-byte UDP payload, ${DURATION}s measured (+${WARMUP}s warm-up), median of $REPEAT (runs round robin over the legs); memory: $MEMORY; device under test's memif $([ "$ZERO_COPY" = 1 ] && echo zero-copy || echo copying)."
	echo "qgate-loadgen on CPU $LG_CPU, device under test on CPU $DUT_CPU."
	echo
	echo "| leg | flows | payload | forwarded Mpps | min-max Mpps | best second Mpps | near runs Mpps (n) | ns/pkt | generator Mpps | ring full % | loss % | p50 us | status |"
	echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	for leg in "${LEG_LIST[@]}"; do
		jq -r --arg leg "$leg" '.legs[$leg] as $l
			| ($l.runs | map(select(.rx_mpps == $l.median_rx_mpps)) | .[0]) as $m
			| if $m then "| \($leg) | \($m.flows) | \($l.payload) | \($m.rx_mpps) | \($l.min_rx_mpps)-\($l.max_rx_mpps) | \($l.best_second_mpps) | \($l.near_median_rx_mpps // "-") (\($l.near_runs)) | \($l.ns_per_pkt) | \($m.tx_mpps) | \($m.tx_full_pct // "-") | \($m.loss_pct) | \($m.p50_us) | \($l.status) |"
			  else "| \($leg) | - | \($l.payload) | - | - | - | - | - | - | - | - | - | \($l.status)\(if $l.reason != "" then ": " + $l.reason else "" end) |" end' "$JSON_OUT"
	done
	echo
	echo "qgate-1k/testpmd: ${R_QT/null/n\/a}, qgate-1m/qgate-1k: ${R_LS/null/n\/a}, qgate-1m/testpmd-1m: ${R_QT1M/null/n\/a} (from the best seconds: ${RB_QT/null/n\/a}, ${RB_LS/null/n\/a} and ${RB_QT1M/null/n\/a}; from the near runs: ${RN_QT/null/n\/a}, ${RN_LS/null/n\/a} and ${RN_QT1M/null/n\/a})"
	echo "QUIC-LB ns/pkt over UDP ns/pkt (qgate-udp-1m), target <= $QUIC_TARGET: single-pass ${R_QS/null/n\/a}, four-pass ${R_QF/null/n\/a} (near runs: ${RN_QS/null/n\/a} and ${RN_QF/null/n\/a})"
	echo
	echo "ns/pkt = 1e3 / median forwarded Mpps. memif back-pressures the generator (it sends only what the"
	echo "rings take), so loss stays near 0 and the forwarded rate is min(generator, device): the testpmd leg"
	echo "shows the generator + memif ceiling, and a leg near it says little about the device's own cost."
	echo "ring full %: the share of the generator's transmit bursts the device's receive ring took only in"
	echo "part (median run). Near 0 the generator set the rate (the device kept up); well above 0 the device"
	echo "was the limit, and the leg measures the device."
	echo "near runs: runs with the two CPUs at most $NEAR_NS ns apart (qgate-c2c, one-way cache-line transfer,"
	echo "before and after the run). The generator hands every frame to the device through shared memory,"
	echo "so on a VM whose host moves the vCPUs to cores without a shared cache every leg slows, and a"
	echo "leg that reads the frames (qgate) slows most."
	echo "Runs vary a lot on a shared VM: compare min-max, and the load average above."
	echo
	echo "Raw results: $(basename "$JSON_OUT")"
} >"$MD_OUT"

cat "$MD_OUT"
echo "bench-dpdk: wrote $JSON_OUT and $MD_OUT" >&2
exit "$FAILED"
