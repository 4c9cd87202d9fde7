#!/usr/bin/env bash
# Install every Debian package qgate's build, tests, demo and benchmarks need.
# Idempotent: when everything is present it changes nothing and only says so.
# Usage: scripts/setup.sh [--check]   (--check: exit 1 if something is missing, install nothing)
set -euo pipefail

PACKAGES=(
	# build
	build-essential cmake ninja-build pkg-config clang-format
	liburing-dev libyaml-dev liburcu-dev libmicrohttpd-dev libssl-dev libck-dev libsystemd-dev
	# fuzzing (scripts/fuzz.sh: libFuzzer comes with clang's runtime)
	clang libclang-rt-14-dev
	# tests
	googletest libgtest-dev iproute2 procps psmisc ngtcp2-client ngtcp2-server openssl
	# benchmarks and demo peers
	nginx libnginx-mod-stream jq python3 valgrind
	# DPDK backend and its pcap tests
	dpdk-dev dpdk libpcap-dev tshark
	# Bluetooth: qgate-l2test, and the VM test (scripts/bt-vm-test.sh downloads linux-image-amd64 itself,
	# with apt-get download, and unpacks it into a cache: the kernel package is never installed)
	libbluetooth-dev qemu-system-x86 busybox-static bluez bluez-test-tools kmod
)

# The DPDK backend runs best on 2 MiB hugepages (it also runs with --no-huge).
# Reserve some when the kernel lets us; never fail setup when it does not
# (containers, no root, a read-only /proc/sys).
HUGEPAGES=512
reserve_hugepages() {
	local f=/proc/sys/vm/nr_hugepages cur
	cur=$(cat "$f" 2>/dev/null) || return 0
	if [ "$cur" -ge "$HUGEPAGES" ] 2>/dev/null; then
		return 0
	fi
	if [ -w "$f" ] && echo "$HUGEPAGES" >"$f" 2>/dev/null; then
		echo "setup: hugepages: $(cat "$f") x 2 MiB reserved (asked for $HUGEPAGES)"
	else
		echo "setup: hugepages: cannot reserve ($cur reserved); DPDK can still run with --no-huge"
	fi
	return 0
}

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ "${1:-}" != "--check" ]; then
	reserve_hugepages || true
fi
if [ ${#missing[@]} -eq 0 ]; then
	echo "setup: all ${#PACKAGES[@]} packages present"
	exit 0
fi
if [ "${1:-}" = "--check" ]; then
	echo "setup: missing: ${missing[*]}"
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "setup: missing ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start daemons (nginx) on this machine: the benchmarks start their own.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	created_policy=1
fi
cleanup() { [ "$created_policy" = 1 ] && rm -f "$policy"; }
trap cleanup EXIT
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
