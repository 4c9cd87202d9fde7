#!/usr/bin/env bash
# Install every Debian package qgate's build, tests, demo and benchmarks need.
# Idempotent: when everything is present it changes nothing and only says so.
# Usage: scripts/setup.sh [--check]   (--check: exit 1 if something is missing, install nothing)
set -euo pipefail

PACKAGES=(
	# build
	build-essential cmake ninja-build pkg-config clang-format
	liburing-dev libyaml-dev liburcu-dev libssl-dev
	# fuzzing (scripts/fuzz.sh)
	clang libclang-rt-14-dev
	# tests
	googletest libgtest-dev iproute2 procps psmisc
	# benchmarks and demo peers
	nginx libnginx-mod-stream jq python3
)

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

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
