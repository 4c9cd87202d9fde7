#!/usr/bin/env bash
# Run a command inside a throw-away VM that has a real kernel Bluetooth stack and two virtual controllers.
#
# The VM boots Debian's own kernel (package linux-image-amd64, downloaded with `apt-get download` and
# extracted with `dpkg -x` into a cache directory; the host's /boot is never touched) under
# qemu-system-x86_64, with the host's root file system shared read-only over virtio-9p, a busybox-static
# initramfs as PID 1 (scripts/bt-vm-init.sh), and BlueZ's emulator `btvirt` creating hci0 and hci1
# (scripts/bt-vm-guest.sh). The command runs as root, chrooted into the host's root file system, in the
# same working directory; its output streams here; its exit status is this script's.
# See docs/BLUETOOTH.md, "How the VM test works".
#
# Usage: scripts/bt-vm-test.sh [options] -- COMMAND [ARG...]
#   --timeout SECS   the command's time limit inside the guest (default 120); the VM as a whole gets
#                    SECS + 60 s to boot and power off
#   --rw DIR         share the host directory DIR read-write at the same path (repeatable); everything
#                    else of the host is read-only, and /tmp, /var/tmp, /run are the guest's own tmpfs
#   --ro DIR         keep DIR visible although it lies under /tmp, /var/tmp or /run (repeatable; the
#                    working directory and this repository are kept without asking)
#   --env NAME=VALUE set a variable in the command's environment (repeatable); QGATE_*, ASAN_OPTIONS,
#                    UBSAN_OPTIONS and LSAN_OPTIONS pass through by themselves
#   --modules "M..." load these kernel modules too (modprobe, after the Bluetooth ones)
#   --no-bt          skip the Bluetooth bring-up: run COMMAND right away in a plain VM
#   --keep           keep the run directory (initramfs, console log, output) and print its path
#   -v, --verbose    print the guest console even when the command passes
# Environment: QGATE_VM_CACHE (kernel cache; default /var/cache/qgate-vm, else build-vm/ in the repo),
#   QGATE_VM_KERNEL_DEB (use this linux-image .deb instead of downloading one), QGATE_VM_ACCEL (kvm|tcg;
#   default kvm only when /proc/cpuinfo has vmx or svm and /dev/kvm is usable), QGATE_VM_MEM (MiB, 1024),
#   QGATE_VM_SMP (vCPUs, 2), QGATE_VM_APPEND (more kernel parameters, e.g. ignore_loglevel to see the
#   whole boot on the console).
# Exit status: COMMAND's; 77 when the VM cannot be had here (no qemu, busybox-static, btvirt or kernel
# package): the reason is printed and ctest counts a skip; 124 when COMMAND timed out; 125 when the VM
# failed to report a status (its console is printed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
me=bt-vm-test

timeout_s=120
rw_dirs=()
ro_dirs=()
envs=()
extra_modules=""
bt=1
keep=0
verbose=0

usage() {
	sed -n '/^# Usage:/,/^#   -v, --verbose/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
skip() {
	echo "$me: SKIP: $*"
	exit 77
}
die() {
	echo "$me: $*" >&2
	exit 125
}

while [ $# -gt 0 ]; do
	case "$1" in
	--timeout) timeout_s=$2; shift 2 ;;
	--rw) rw_dirs+=("$(realpath -e "$2")") || die "--rw $2: no such directory"; shift 2 ;;
	--ro) ro_dirs+=("$(realpath -e "$2")") || die "--ro $2: no such directory"; shift 2 ;;
	--env) [[ "$2" == [A-Za-z_]*=* ]] || die "--env wants NAME=VALUE"; envs+=("$2"); shift 2 ;;
	--modules) extra_modules+=" $2"; shift 2 ;;
	--no-bt) bt=0; shift ;;
	--keep) keep=1; shift ;;
	-v | --verbose) verbose=1; shift ;;
	--) shift; break ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done
[ $# -gt 0 ] || usage
[[ "$timeout_s" =~ ^[0-9]+$ ]] || die "--timeout wants seconds"

# --- what the host must have -----------------------------------------------------------------------
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (scripts/setup.sh installs qemu-system-x86)"
[ -x /bin/busybox ] || skip "busybox is not installed (scripts/setup.sh installs busybox-static)"
if ldd /bin/busybox >/dev/null 2>&1; then
	skip "/bin/busybox is dynamically linked: the initramfs needs busybox-static"
fi
if [ $bt = 1 ]; then
	for t in btvirt btmgmt; do
		command -v $t >/dev/null || skip "$t is not installed (scripts/setup.sh installs bluez-test-tools and bluez)"
	done
fi
command -v dpkg >/dev/null || skip "dpkg is needed to unpack the kernel package"

# --- the kernel: Debian's linux-image-amd64, unpacked once into the cache ---------------------------
if [ -n "${QGATE_VM_CACHE:-}" ]; then
	cache=$QGATE_VM_CACHE
elif mkdir -p /var/cache/qgate-vm 2>/dev/null && [ -w /var/cache/qgate-vm ]; then
	cache=/var/cache/qgate-vm
else
	cache=$repo/build-vm
fi
mkdir -p "$cache" || skip "cannot create the kernel cache $cache"

depmod_b() { # ROOT KVER
	if command -v depmod >/dev/null; then
		depmod -b "$1" "$2"
	else
		/bin/busybox depmod -b "$1" "$2"
	fi
}
unpack() { # DEB DIR
	local kver
	rm -rf "$2.tmp"
	dpkg -x "$1" "$2.tmp" || return 1
	kver=$(ls "$2.tmp/lib/modules" 2>/dev/null | head -n 1)
	[ -n "$kver" ] && [ -f "$2.tmp/boot/vmlinuz-$kver" ] || { echo "$me: $1 holds no kernel" >&2; return 1; }
	depmod_b "$2.tmp" "$kver" || return 1
	rm -rf "$2"
	mv "$2.tmp" "$2"
	touch "$2/.ready"
}
kernel_pkg() { # linux-image-amd64 is a metapackage: the image is what it depends on
	apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

exec 9>"$cache/.lock"
flock -w 900 9 || die "cannot lock $cache/.lock"
kdir=""
why=""
# apt-cache is slow: its answer is kept until apt's package lists change.
resolved=$cache/resolved
if [ -z "${QGATE_VM_KERNEL_DEB:-}" ] && [ -f "$resolved" ] && [ "$resolved" -nt /var/lib/apt/lists ] &&
	[ -f "$(cat "$resolved")/.ready" ]; then
	kdir=$(cat "$resolved")
elif [ -n "${QGATE_VM_KERNEL_DEB:-}" ]; then
	[ -f "$QGATE_VM_KERNEL_DEB" ] || skip "QGATE_VM_KERNEL_DEB=$QGATE_VM_KERNEL_DEB does not exist"
	kdir=$cache/$(basename "$QGATE_VM_KERNEL_DEB" .deb)
	[ -f "$kdir/.ready" ] || unpack "$QGATE_VM_KERNEL_DEB" "$kdir" || skip "cannot unpack $QGATE_VM_KERNEL_DEB"
else
	pkg=$(kernel_pkg) || true
	if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
		apt-get update -q >"$cache/apt-update.log" 2>&1 || true
		pkg=$(kernel_pkg) || true
	fi
	ver=""
	[ -z "$pkg" ] || ver=$(apt-cache policy "$pkg" | awk '$1 == "Candidate:" { print $2; exit }') || true
	if [ -z "$pkg" ]; then
		why="apt knows no linux-image-amd64 (no package lists?)"
	elif [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
		why="apt has no candidate for $pkg"
	else
		kdir=$cache/${pkg}_${ver//:/%}
		if [ ! -f "$kdir/.ready" ]; then
			echo "$me: downloading $pkg $ver into $cache (once)"
			dl=$cache/download
			rm -rf "$dl"
			mkdir -p "$dl"
			if (cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver") >"$cache/download.log" 2>&1 &&
				unpack "$dl"/*.deb "$kdir"; then
				# Keep one kernel: drop the ones this one replaces.
				for old in "$cache"/linux-image-*; do
					[ "$old" = "$kdir" ] || rm -rf "$old"
				done
				echo "$kdir" >"$resolved"
			else
				why="apt-get download $pkg=$ver failed ($(tail -n 1 "$cache/download.log"))"
				kdir=""
			fi
			rm -rf "$dl"
		else
			echo "$kdir" >"$resolved"
		fi
	fi
	if [ -z "$kdir" ]; then # fall back on what an earlier run unpacked
		kdir=$(ls -dt "$cache"/linux-image-*/.ready 2>/dev/null | head -n 1) || true
		kdir=${kdir%/.ready}
		[ -n "$kdir" ] && echo "$me: $why; using $kdir"
	fi
fi
[ -n "$kdir" ] && [ -f "$kdir/.ready" ] || skip "no kernel package: $why"
kver=$(ls "$kdir/lib/modules" 2>/dev/null | head -n 1) || true
if [ -z "$kver" ] || [ ! -f "$kdir/boot/vmlinuz-$kver" ] || [ ! -f "$kdir/lib/modules/$kver/modules.dep" ]; then
	rm -f "$kdir/.ready" # unpacked by halves: the next run unpacks it again
	skip "the kernel in $kdir is incomplete"
fi
moddir=$kdir/lib/modules/$kver
kernel=$kdir/boot/vmlinuz-$kver
# Under TCG, decompressing the bzImage takes seconds (xz, emulated): boot the uncompressed ELF
# through its PVH entry instead (QEMU's -kernel takes one), unpacked here once.
if [ ! -f "$kdir/vmlinux" ] && [ ! -f "$kdir/.no-pvh" ]; then
	pvh_unpack() {
		grep -q '^CONFIG_PVH=y' "$kdir/boot/config-$kver" 2>/dev/null || return 1
		local magic tool off
		for magic in '\xfd7zXZ\x00:xz -dc --single-stream' '\x28\xb5\x2f\xfd:zstd -dcq' '\x1f\x8b\x08:gzip -dc'; do
			tool=${magic#*:}
			off=$(LC_ALL=C grep -obUaP -m 1 "${magic%%:*}" "$kernel" | head -n 1 | cut -d: -f1)
			[ -n "$off" ] && command -v "${tool%% *}" >/dev/null || continue
			tail -c +$((off + 1)) "$kernel" | $tool >"$kdir/vmlinux.tmp" 2>/dev/null
			if [ "$(head -c 4 "$kdir/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
				mv "$kdir/vmlinux.tmp" "$kdir/vmlinux"
				return 0
			fi
		done
		rm -f "$kdir/vmlinux.tmp"
		return 1
	}
	pvh_unpack || touch "$kdir/.no-pvh"
fi
flock -u 9
[ -f "$kdir/vmlinux" ] && kernel=$kdir/vmlinux

# --- the run directory: initramfs, console, and the read-write share for the command's output -------
run=$(mktemp -d "${TMPDIR:-/tmp}/qgate-vm.XXXXXX")
out=$run/out
mkdir -p "$out"
qpid=""
tpid=""
cleanup() {
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill "$qpid" 2>/dev/null || true # timeout(1) passes it on to qemu
		wait "$qpid" 2>/dev/null || true
	fi
	if [ -n "$tpid" ]; then
		kill "$tpid" 2>/dev/null || true
		wait "$tpid" 2>/dev/null || true
	fi
	if [ $keep = 1 ]; then
		echo "$me: run directory kept: $run"
	else
		rm -rf "$run"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Modules, in this order: 9p first (the root), then the Bluetooth stack. jitterentropy_rng and drbg must
# precede ecdh_generic (pulled in by bluetooth), else "Unable to create ECDH crypto context"; btvirt needs
# the AF_ALG ones, else "Failed to open Virtual HCI device".
boot_modules="virtio_pci 9pnet_virtio 9p"
modules=""
[ $bt = 1 ] && modules="jitterentropy_rng drbg bluetooth hci_vhci cmac ecb af_alg algif_hash algif_skcipher"
modules+="$extra_modules"

ird=$run/initramfs
mkdir -p "$ird"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,newroot,lib/modules/"$kver"}
cp /bin/busybox "$ird/bin/busybox"
install -m 755 "$here/bt-vm-init.sh" "$ird/init"
# The boot modules and their dependencies, in load order (modules.dep lists a module's dependencies
# so that the last one loads first).
for m in $boot_modules; do
	line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$moddir/modules.dep") || die "module $m is not in kernel $kver"
	deps=${line#*:}
	printf '%s\n' $deps | tac
	echo "${line%%:*}"
done | awk 'NF && !seen[$0]++' >"$ird/etc/boot-modules"
while read -r ko; do
	case "$ko" in *.ko) ;; *) die "compressed module $ko: unsupported" ;; esac
	mkdir -p "$ird/lib/modules/$kver/$(dirname "$ko")"
	cp "$moddir/$ko" "$ird/lib/modules/$kver/$ko"
done <"$ird/etc/boot-modules"
{
	printf 'KVER=%q\n' "$kver"
	printf 'MODDIR=%q\n' "$moddir"
	printf 'OUT=%q\n' "$out"
	printf 'TIMEOUT=%q\n' "$timeout_s"
	printf 'MSIZE=%q\n' 262144
	printf 'MODULES=%q\n' "$modules"
} >"$ird/etc/qgate-vm.conf"

# Paths under the guest's tmpfs mounts that must stay visible: the working directory, this repository,
# --ro ones, the folders of the command's file arguments (a build directory under /tmp holds the
# binaries a test is given); nested ones are covered by their ancestor.
arg_dirs=()
for a in "$@"; do
	[ -e "$a" ] && arg_dirs+=("$(dirname "$(realpath "$a")")")
done
kept=()
for p in "$PWD" "$repo" "${ro_dirs[@]}" "${arg_dirs[@]}"; do
	case "$p" in /tmp/* | /var/tmp/* | /run/*) ;; *) continue ;; esac
	covered=0
	for k in "${kept[@]}"; do
		case "$p/" in "$k"/*) covered=1 ;; esac
	done
	[ $covered = 1 ] || kept+=("$p")
done
printf '%s\n' "${kept[@]}" >"$ird/etc/keep-paths"
: >"$ird/etc/rw-shares"
fsdev=()
i=0
for d in "${rw_dirs[@]}"; do
	echo "rw$i $d" >>"$ird/etc/rw-shares"
	fsdev+=(-fsdev "local,id=rw$i,path=${d//,/,,},security_model=none,multidevs=remap"
		-device "virtio-9p-pci,fsdev=rw$i,mount_tag=rw$i")
	i=$((i + 1))
done
(cd "$ird" && find . | /bin/busybox cpio -o -H newc 2>/dev/null) >"$run/initramfs.cpio"

# What the guest runs: cd, environment, then the Bluetooth helper (or not) and the command.
{
	printf 'cd %q || exit 125\n' "$PWD"
	printf 'export QGATE_VM=1 QGATE_VM_OUT=%q\n' "$out"
	for name in $(compgen -e); do
		case "$name" in QGATE_* | ASAN_OPTIONS | UBSAN_OPTIONS | LSAN_OPTIONS) ;; *) continue ;; esac
		printf 'export %s=%q\n' "$name" "${!name}"
	done
	for e in "${envs[@]}"; do
		printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"
	done
	printf 'exec >>%q 2>&1\n' "$out/output.log"
	printf 'exec'
	[ $bt = 1 ] && printf ' %q' "$here/bt-vm-guest.sh"
	printf ' %q' "$@"
	printf '\n'
} >"$out/run.sh"
: >"$out/output.log"

# --- the VM ------------------------------------------------------------------------------------------
accel=${QGATE_VM_ACCEL:-}
if [ -z "$accel" ]; then
	accel=tcg
	if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
		accel=kvm
	fi
fi
case "$accel" in
kvm) accel_args=(-accel kvm -cpu host) ;;
tcg) accel_args=(-accel tcg,thread=multi -cpu max) ;;
*) die "QGATE_VM_ACCEL=$accel: kvm or tcg" ;;
esac
vm_timeout=$((timeout_s + 60))
qemu=(qemu-system-x86_64 -nodefaults -no-user-config -display none -monitor none -no-reboot
	-machine pc "${accel_args[@]}" -m "${QGATE_VM_MEM:-1024}" -smp "${QGATE_VM_SMP:-2}"
	-kernel "$kernel" -initrd "$run/initramfs.cpio"
	-append "console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init 8250.nr_uarts=1 mitigations=off ${QGATE_VM_APPEND:-}"
	-serial "file:$run/console.log"
	-fsdev "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap"
	-device "virtio-9p-pci,fsdev=root,mount_tag=root"
	-fsdev "local,id=out,path=${out//,/,,},security_model=none,multidevs=remap"
	-device "virtio-9p-pci,fsdev=out,mount_tag=out"
	"${fsdev[@]}")

echo "$me: kernel $kver, accel $accel, guest timeout ${timeout_s}s: $*"
# Status 125 is the harness's, not the test's (the guest failed to boot, mount or report): under a
# loaded TCG host that happens now and then, so the VM gets one more try before it counts.
for attempt in 1 2; do
	t0=$(date +%s.%N)
	timeout -k 5 "$vm_timeout" "${qemu[@]}" </dev/null >"$run/qemu.log" 2>&1 &
	qpid=$!
	# In the background, so that a signal to this script is handled at once (bash runs traps only
	# between foreground commands).
	tail -s 0.2 -n +1 -F --pid="$qpid" "$out/output.log" 2>/dev/null &
	tpid=$!
	wait "$tpid" || true
	tpid=""
	qrc=0
	wait "$qpid" || qrc=$?
	qpid=""
	t1=$(date +%s.%N)

	total=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	boot=$(cat "$out/boot-seconds" 2>/dev/null || echo "?")
	if [ -s "$out/status" ]; then
		rc=$(cat "$out/status")
		[[ "$rc" =~ ^[0-9]+$ ]] || rc=125
		what="exit status $rc"
		[ "$rc" = 124 ] && what="timed out after ${timeout_s}s (124)"
	else
		rc=125
		what="the VM reported no status (qemu exit $qrc)"
		[ $qrc = 124 ] && what="the VM reported no status (killed after ${vm_timeout}s)"
	fi
	[ "$rc" = 125 ] && [ $attempt = 1 ] || break
	echo "$me: $what; the VM failed before the test ran: retrying once"
	cat "$run/console.log" 2>/dev/null | tail -n 5 || true
	rm -f "$out/status" "$out/output.log" "$out/boot-seconds" "$run/console.log"
done
echo "$me: $what; guest up after ${boot}s, ${total}s in all ($accel)"
if [ "$rc" != 0 ] || [ $verbose = 1 ]; then
	echo "--- guest console ($run/console.log) ---"
	cat "$run/console.log" 2>/dev/null || true
	if [ -s "$run/qemu.log" ]; then
		echo "--- qemu ---"
		cat "$run/qemu.log"
	fi
	echo "--- end of guest console ---"
fi
exit "$rc"
