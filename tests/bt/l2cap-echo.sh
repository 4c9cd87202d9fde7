#!/usr/bin/env bash
# Runs inside the test VM, after scripts/bt-vm-guest.sh brought hci0 and hci1 up:
# qgate-l2test server on hci1, client on hci0, over BR/EDR (PSM), LE (credit-based channel, PSM) and LE's
# fixed ATT channel (CID 4); every echo is checked byte for byte.
# Usage (from the host): scripts/bt-vm-test.sh -- tests/bt/l2cap-echo.sh BUILD/tests/bt/qgate-l2test
set -uo pipefail
l2=${1:?usage: l2cap-echo.sh PATH/TO/qgate-l2test}
peer=${QGATE_BT_HCI1_ADDR:?run me through scripts/bt-vm-test.sh}
failed=()

# pair NAME "SERVER ARGS" "CLIENT ARGS" [fail]: with "fail", the client must fail on a differing echo
pair() {
	local name=$1 sargs=$2 cargs=$3 expect=${4:-pass} ready=/tmp/l2test-ready.$1 spid rc=0 crc=0
	echo "=== $name"
	rm -f "$ready"
	# shellcheck disable=SC2086 # word splitting of the argument strings is wanted
	timeout 60 "$l2" server -i hci1 -l 1 -r "$ready" $sargs &
	spid=$!
	for _ in $(seq 100); do
		[ -e "$ready" ] || ! kill -0 $spid 2>/dev/null && break
		sleep 0.05
	done
	# shellcheck disable=SC2086
	"$l2" client -i hci0 $cargs "$peer" 2>/tmp/l2test-client.err || crc=$?
	cat /tmp/l2test-client.err >&2
	if [ $crc != 0 ]; then
		kill $spid 2>/dev/null # it may wait for a link that will not come
	fi
	# A failing client hangs up mid-stream on purpose: the server may then be killed above, or
	# have its next echo refused (ECONNRESET), so only a passing pair needs a clean server exit.
	if ! wait $spid && [ "$expect" = pass ]; then
		rc=1
	fi
	case "$expect:$crc" in
	pass:0) ;;
	fail:1) grep -q 'differs' /tmp/l2test-client.err || rc=1 ;; # failed for the right reason
	*) rc=1 ;;
	esac
	[ $rc = 0 ] || failed+=("$name")
}

# The fixed channel first: its server gets the channel only when the LE link comes up, so it must
# not find one left over (an LE link lingers a few seconds after its last channel closes).
pair le-att "-t le -c 4" "-t le -c 4 -n 50 -w 1 --max 672"
pair bredr "-t bredr -p 0x1001 -m 4096" "-t bredr -p 0x1001 -m 4096 -n 200 -w 4 --max 4096"
pair le "-t le -p 0x0081 -m 2048" "-t le -p 0x0081 -m 2048 -n 200 -w 4 --max 2048"
# The client must notice a single flipped byte: this check is not vacuous.
pair corrupt-caught "-t bredr -p 0x1003 --corrupt 7" "-t bredr -p 0x1003 -n 20 --no-oversize" fail

if [ ${#failed[@]} -gt 0 ]; then
	echo "l2cap-echo: FAILED: ${failed[*]}"
	exit 1
fi
echo "l2cap-echo: all passed"
