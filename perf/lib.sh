# shellcheck shell=bash
# SPDX-License-Identifier: BSD-3-Clause
#
# perf/lib.sh: shell helpers the perf/ scripts share (bench-kernel.sh,
# bench-dpdk.sh, bench-control.sh, soak.sh, faults.sh). Sourced, never run; it defines
# functions only and changes no option of the calling shell.

# free_port: a free UDP port on 127.0.0.1 right now (the kernel picks it; the
# race with another process taking it before use is accepted in benchmarks)
free_port() {
	python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# alive PID: running and not a zombie (a crashed child stays a zombie until reaped)
alive() {
	[ -r "/proc/$1/status" ] && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"
}

# wait_line FILE TEXT SECONDS: 0 once FILE holds TEXT, 1 after SECONDS (polled every 50 ms)
wait_line() {
	for _ in $(seq 1 $(($3 * 20))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# stop_pid PID [SECONDS]: SIGTERM, up to SECONDS (default 5) to exit, then SIGKILL; reaped
stop_pid() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 $((${2:-5} * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# kill_pids PID...: what a script started, at its exit: SIGCONT (a stopped process
# must run to see the next signal) and SIGTERM to each, 0.3 s, then SIGKILL; reaped
kill_pids() {
	local p
	for p in "$@"; do
		kill -CONT "$p" 2>/dev/null || true
		kill -TERM "$p" 2>/dev/null || true
	done
	sleep 0.3
	for p in "$@"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

# drop_reasons COUNTERS_H: the names of the drop counters (QG_CTR_KIND_DROP) as a JSON array
drop_reasons() {
	grep -o 'QG_CTR_KIND_DROP, "[a-z0-9_]*"' "$1" | sed 's/.*"\(.*\)"/\1/' | jq -R . | jq -sc .
}

# udp_rcvbuf_errors: UDP datagrams the kernel dropped at a full receive buffer, machine-wide
udp_rcvbuf_errors() {
	awk '/^Udp:/ { n++ } /^Udp:/ && n == 2 { print $6 }' /proc/net/snmp
}

# cpu_model: the CPU's model name, for the results' machine section
cpu_model() {
	grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'
}
