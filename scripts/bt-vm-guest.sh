#!/usr/bin/env bash
# Inside the test VM (scripts/bt-vm-test.sh runs it as root, chrooted in the host's root file system):
# create virtual Bluetooth controllers with BlueZ's emulator btvirt, make them usable without bluetoothd,
# export their addresses, then exec the test command.
#
# Usage: bt-vm-guest.sh COMMAND [ARG...]
# Environment in:  QGATE_BT_CONTROLLERS (default 2: hci0 and hci1, dual mode BR/EDR + LE)
# Environment out: QGATE_BT_HCI0_ADDR, QGATE_BT_HCI1_ADDR, ... (public BD addresses, "00:AA:01:00:00:23")
#
# Each controller: SSP off (with SSP on, pairing stalls without an agent), connectable (page scan, so
# BR/EDR connects), powered, and connectable LE advertising as advertising instance 1 (so LE connects).
# Not the "advertising on" setting: with it, the kernel makes that controller's own outgoing LE
# connections by directed advertising (peripheral role), which a peer that is not connecting back never
# answers. btvirt keeps running in the background until the VM powers off; its log is /tmp/btvirt.log.
set -euo pipefail

n=${QGATE_BT_CONTROLLERS:-2}
t0=$(cut -d' ' -f1 /proc/uptime)
last=$((n - 1))
btvirt_pid=""
say() { echo "bt-vm-guest: $*"; }

# btmgmt prints nothing unless its output is a terminal (its exit status is right, though): the
# settings go through plain btmgmt, the check through `btmgmt info` under script(1), on a pty.
btmgmt_pty() { # INDEX ARGS...
	local i=$1
	shift
	script -qec "btmgmt --index $i $*" /dev/null </dev/null | tr -d '\r'
}
setup_one() { # INDEX: prints the address on success
	local i=$1 cmd info settings want addr
	# Every command is idempotent, and retried: on a loaded machine the emulated controller can miss
	# the kernel's 2 s HCI command timeout (a failed power on says "Opcode 0x0c03 failed: -110").
	for cmd in "le on" "ssp off" "connectable on" "power on" "add-adv -c 1"; do
		for try in 1 2 3 4 5 6; do
			# shellcheck disable=SC2086 # cmd is several words
			btmgmt --index "$i" $cmd </dev/null >/dev/null 2>&1 && break
			echo "hci$i: btmgmt $cmd failed (try $try): $(btmgmt_pty "$i" $cmd | tr '\n' ' ')" \
				>>"/tmp/bt-vm-guest.hci$i.log"
			if [ "$try" = 6 ]; then
				echo "btmgmt --index $i $cmd failed $try times"
				return 1
			fi
			sleep 0.5
		done
	done
	info=$(btmgmt_pty "$i" info) || true
	settings=$(echo "$info" | sed -n 's/^[[:space:]]*current settings: //p')
	for want in powered connectable br/edr le; do
		if ! [[ " $settings " == *" $want "* ]]; then
			echo "setting $want did not take: $info"
			return 1
		fi
	done
	if [[ " $settings " == *" ssp "* ]]; then
		echo "ssp still on: $info"
		return 1
	fi
	addr=$(echo "$info" | awk '$1 == "addr" { print $2; exit }')
	if [ -z "$addr" ]; then
		echo "no address: $info"
		return 1
	fi
	echo "$addr $settings"
}
start_btvirt() {
	# Ahead of the test's processes: the kernel gives each HCI command 2 s to complete.
	nice -n -10 btvirt -l"$n" >/tmp/btvirt.log 2>&1 &
	btvirt_pid=$!
	for _ in $(seq 100); do
		[ -e "/sys/class/bluetooth/hci$last" ] && return 0
		if ! kill -0 "$btvirt_pid" 2>/dev/null; then
			say "btvirt exited: $(cat /tmp/btvirt.log)"
			return 1
		fi
		sleep 0.1
	done
	say "btvirt created no hci$last in 10 s: $(cat /tmp/btvirt.log)"
	return 1
}
stop_btvirt() {
	kill "$btvirt_pid" 2>/dev/null || true
	wait "$btvirt_pid" 2>/dev/null || true
	for _ in $(seq 50); do
		[ -e /sys/class/bluetooth/hci0 ] || return 0
		sleep 0.1
	done
}
bring_up() {
	local i rc bad=0 pids=()
	rm -f /tmp/bt-vm-guest.hci*
	start_btvirt || return 1
	# The controllers in parallel: each btmgmt costs a process start, slow under TCG.
	for i in $(seq 0 "$last"); do
		setup_one "$i" >"/tmp/bt-vm-guest.hci$i" 2>&1 &
		pids+=($!)
	done
	for i in $(seq 0 "$last"); do
		rc=0
		wait "${pids[$i]}" || rc=$?
		[ -s "/tmp/bt-vm-guest.hci$i.log" ] && sed 's/^/bt-vm-guest: /' "/tmp/bt-vm-guest.hci$i.log"
		if [ $rc = 0 ]; then
			read -r addr settings <"/tmp/bt-vm-guest.hci$i"
			export "QGATE_BT_HCI${i}_ADDR=$addr"
			say "hci$i $addr: $settings"
		else
			say "hci$i: $(cat "/tmp/bt-vm-guest.hci$i")"
			bad=1
		fi
	done
	return $bad
}

# A controller whose initialisation missed a timeout (machine too loaded) is gone from mgmt for good
# ("Invalid Index"): start over with fresh controllers.
for attempt in 1 2 3; do
	bring_up && break
	stop_btvirt
	if [ $attempt = 3 ]; then
		say "controllers failed 3 times; btvirt said: $(cat /tmp/btvirt.log)"
		exit 125
	fi
	say "starting over with new controllers"
done
say "controllers up in $(awk -v t0="$t0" '{ printf "%.1f", $1 - t0 }' /proc/uptime)s"
exec "$@"
