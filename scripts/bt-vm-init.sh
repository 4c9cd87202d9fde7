#!/bin/busybox sh
# PID 1 of the qgate test VM: busybox sh inside the initramfs that scripts/bt-vm-test.sh builds.
# It never leaves the initramfs: it mounts the host root file system (virtio-9p, read-only) on /newroot,
# loads the modules, runs the command chrooted there, reports its exit status and powers the VM off.
#
# Files the host puts in the initramfs:
#   /etc/qgate-vm.conf   shell variables: KVER MODDIR OUT TIMEOUT MSIZE MODULES
#   /etc/boot-modules    .ko paths (relative to /lib/modules/$KVER) to insmod before 9p is mounted
#   /etc/keep-paths      host paths under /tmp, /var/tmp or /run to keep visible over the guest's tmpfs
#   /etc/rw-shares       "TAG PATH" lines: 9p shares mounted read-write at PATH
# The exit status goes to $OUT/status (OUT is a read-write share) and to the console as
# "QGATE-VM-STATUS=N"; 124 means the command timed out, 125 that the VM itself failed.

/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
. /etc/qgate-vm.conf

status_out=""
finish() {
	rc=$1
	echo "QGATE-VM-STATUS=$rc"
	if [ -n "$status_out" ]; then
		echo "$rc" >"$status_out.tmp" && mv "$status_out.tmp" "$status_out"
	fi
	sync
	poweroff -f
	sleep 30
}
fail() {
	echo "qgate-vm: $*"
	finish 125
}

# 1. Just enough to mount the host's root: virtio-pci and 9p.
while read -r ko; do
	[ -n "$ko" ] || continue
	insmod "/lib/modules/$KVER/$ko" || fail "insmod $ko failed"
done </etc/boot-modules

mkdir -p /newroot
opts="trans=virtio,version=9p2000.L,msize=$MSIZE"
n=0
until mount -t 9p -o "ro,cache=loose,$opts" root /newroot 2>/dev/null; do
	n=$((n + 1))
	[ $n -lt 50 ] || fail "cannot mount the host root over 9p"
	sleep 0.1
done

# 2. The writable share where the status goes (OUT's own tag is "out").
if [ -n "$OUT" ]; then
	mkdir -p "/out"
	mount -t 9p -o "$opts" out /out || fail "cannot mount the output share"
	status_out=/out/status
fi

# 3. The whole module tree (extracted on the host, depmod'ed there) replaces the initramfs's few
#    modules, so /sbin/modprobe (the kernel's on-demand loader too) finds every module.
mount -o bind "/newroot$MODDIR" "/lib/modules/$KVER" || fail "cannot bind the module tree $MODDIR"
for m in $MODULES; do
	modprobe "$m" || fail "modprobe $m failed"
done
ip link set lo up

# 4. The guest's own /tmp, /var/tmp and /run (tmpfs) hide the host's; paths under them that the
#    command needs (its working directory, for one) are bound back in.
i=0
while read -r p; do
	[ -n "$p" ] || continue
	mkdir -p "/keep/$i"
	mount -o bind "/newroot$p" "/keep/$i" || fail "cannot keep $p"
	i=$((i + 1))
done </etc/keep-paths
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp || fail "cannot mount /tmp"
mount -t tmpfs -o mode=1777 tmpfs /newroot/var/tmp || fail "cannot mount /var/tmp"
mount -t tmpfs -o mode=755 tmpfs /newroot/run || fail "cannot mount /run"
i=0
while read -r p; do
	[ -n "$p" ] || continue
	mkdir -p "/newroot$p"
	mount -o move "/keep/$i" "/newroot$p" || fail "cannot put $p back"
	i=$((i + 1))
done </etc/keep-paths

mount -t proc proc /newroot/proc || fail "cannot mount /proc"
mount -t sysfs sys /newroot/sys || fail "cannot mount /sys"
mount -t debugfs debugfs /newroot/sys/kernel/debug 2>/dev/null
mount -t devtmpfs dev /newroot/dev || fail "cannot mount /dev"
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts -o ptmxmode=666 devpts /newroot/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm

# 5. Read-write shares at their host paths, the output share among them (a 9p tag mounts once: bind it).
mkdir -p "/newroot$OUT"
mount -o bind /out "/newroot$OUT" || fail "cannot bind the output share at $OUT"
while read -r tag p; do
	[ -n "$tag" ] || continue
	mkdir -p "/newroot$p"
	mount -t 9p -o "$opts" "$tag" "/newroot$p" || fail "cannot mount the share $p"
done </etc/rw-shares

# 6. The command, bounded by TIMEOUT seconds.
read -r up _ </proc/uptime
echo "qgate-vm: up after ${up}s, running the command"
echo "$up" >/out/boot-seconds
chroot /newroot /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root TERM=dumb LANG=C.UTF-8 /bin/bash "$OUT/run.sh" </dev/null &
pid=$!
(
	sleep "$TIMEOUT"
	touch /timed-out
	echo "qgate-vm: the command timed out after ${TIMEOUT}s: killing everything"
	kill -KILL -1
) &
wd=$!
wait $pid
rc=$?
kill $wd 2>/dev/null
[ -e /timed-out ] && rc=124
read -r end _ </proc/uptime
echo "qgate-vm: command exited with $rc at ${end}s"
# What the command left running (daemons, servers) stops before the shares go.
kill -TERM -1 2>/dev/null
sleep 0.2
kill -KILL -1 2>/dev/null
finish "$rc"
