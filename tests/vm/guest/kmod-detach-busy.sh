# kmod-detach-busy.sh -- unmount while the kernel cannot take the lent memory
# offline: a process pins one page in each of node 1's memory blocks with
# vmsplice() into a pipe it never reads (get_user_pages references, so
# migration fails with EAGAIN and offline_pages() retries until a signal).
# The daemon's detach must hang in offlining, not fail by itself; SIGTERM
# then stops it: the daemon says the device is still attached as System RAM
# and exits 1, the module says why in dmesg and keeps everything attached
# (rmmod refused). Once the pin is gone, mounting again re-attaches with the
# file intact, and a normal unmount detaches; fsck clean, rmmod works.
. /kmemfs/kmod-lib.sh

DRV=/sys/bus/dax/devices/dax0.0/driver
NODE1=/sys/devices/system/node/node1

# blocks_in STATE -- how many of node 1's memory blocks are in STATE
blocks_in() {
	n=0
	for b in "$NODE1"/memory*; do
		[ "$(cat "$b/state")" = "$1" ] && n=$((n + 1))
	done
	echo $n
}
# running PID -- PID exists and has not exited (an unreaped child is a zombie,
# which kill -0 still finds)
running() {
	[ -e "/proc/$1/stat" ] && ! grep -q ') Z ' "/proc/$1/stat" 2>/dev/null
}
# wait_exit PID SECONDS -- wait until PID has exited; fails if it is still running
wait_exit() {
	i=0
	while running "$1" && [ $i -lt $(($2 * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	! running "$1"
}
# start_daemon NAME -- kmemfs -f in the background (KPID), its messages in
# /tmp/kmemfs.log; waits for the mount
start_daemon() {
	kmemfs -f "$DEV" "$MNT" >/tmp/kmemfs.log 2>&1 &
	KPID=$!
	i=0
	while ! grep -q " $MNT fuse" /proc/mounts && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	grep -q " $MNT fuse" /proc/mounts || { cat /tmp/kmemfs.log; fail "$1" "kmemfs $DEV $MNT with kmemfs.ko loaded"; exit 1; }
}

run mkfs.kmemfs "$DEV" || { fail_out kmod-detach-busy-mkfs "mkfs.kmemfs $DEV"; exit 1; }
kmod_load
m0=$(memfree)
start_daemon kmod-detach-busy-mount
dd if=/dev/urandom of=/tmp/r8 bs=1M count=8 2>/dev/null
i=0
while [ $i -lt 2 ]; do cat /tmp/r8; i=$((i + 1)); done >"$MNT/keep" || { fail kmod-detach-busy-write "writing 16 MiB"; exit 1; }
sync
sum=$(md5sum <"$MNT/keep" | cut -d' ' -f1)
m1=$(memfree)
echo "kmod-detach-busy: node 1 MemFree ${m0} kB before mount, ${m1} kB mounted"
[ $((m1 - m0)) -ge $((400 * 1024)) ] || { fail kmod-detach-busy-lends "MemFree rose by $((m1 - m0)) kB, want >= 400 MiB"; exit 1; }
pass kmod-detach-busy-lends

# pin one page per block of node 1 (the lent memory is ZONE_MOVABLE there)
rm -f /tmp/pinned
kmodtest pin /tmp/pinned >/tmp/pin.log 2>&1 &
PPID_PIN=$!
i=0
while [ ! -e /tmp/pinned ] && running $PPID_PIN && [ $i -lt 1200 ]; do
	sleep 0.1
	i=$((i + 1))
done
sed 's/^/    /' /tmp/pin.log
[ -e /tmp/pinned ] || { fail kmod-detach-busy-pin "kmodtest pin did not pin its pages"; exit 1; }
npin=$(sed -n 's/^pin: \([0-9]*\) pages on node 1 pinned.*/\1/p' /tmp/pin.log)
nblk=$(ls -d "$NODE1"/memory* | wc -l)
grep -q 'missed 0 blocks' /tmp/pin.log && [ "${npin:-0}" -eq "$nblk" ] ||
	{ fail kmod-detach-busy-pin "pinned ${npin:-no} pages, node 1 has $nblk memory blocks"; exit 1; }
# the kernel's own view of the pinner's memory: the pinned pages are on node 1
fill=$(sed -n 's/^pin: fill mapping at \([0-9a-f]*\)$/\1/p' /tmp/pin.log)
nm=$(grep "^${fill:-none} " /proc/$PPID_PIN/numa_maps)
echo "    numa_maps: $nm"
n1=$(echo "$nm" | tr ' ' '\n' | sed -n 's/^N1=//p')
[ "${n1:-0}" -ge "$npin" ] || { fail kmod-detach-busy-pin "numa_maps shows ${n1:-no} pages on node 1, want $npin"; exit 1; }
pass kmod-detach-busy-pin

# unmount: the daemon's detach now cannot finish offlining
run umount "$MNT" || { fail_out kmod-detach-busy-umount "umount"; exit 1; }
i=0
while [ "$(blocks_in going-offline)" -eq 0 ] && running $KPID && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
sleep 5
going=$(blocks_in going-offline)
echo "kmod-detach-busy: 5 s after the detach began: $going block(s) of node 1 going-offline, daemon $(running $KPID && echo running || echo gone)"
running $KPID || { cat /tmp/kmemfs.log; fail kmod-detach-busy-stuck "the daemon ended although its pages could not be offlined"; exit 1; }
[ "$going" -eq 1 ] || { fail kmod-detach-busy-stuck "$going blocks going-offline, want the one being offlined"; exit 1; }
[ ! -e "$DRV" ] || { fail kmod-detach-busy-stuck "dax0.0 bound to device_dax while its memory is online"; exit 1; }
dmesg | grep -m 1 'migrating pfn .* failed' | sed 's/^/    dmesg: /'
pass kmod-detach-busy-stuck

# the user stops it
kill -TERM $KPID
wait_exit $KPID 30 || { fail kmod-detach-busy-signal "the daemon is still running 30 s after SIGTERM"; exit 1; }
wait $KPID
rc=$?
sed 's/^/    daemon: /' /tmp/kmemfs.log
[ $rc -eq 1 ] || { fail kmod-detach-busy-signal "the daemon exited $rc after SIGTERM, want 1"; exit 1; }
grep -q 'still attached to kmemfs.ko as System RAM' /tmp/kmemfs.log &&
	grep -q 'the detach was stopped by' /tmp/kmemfs.log ||
	{ fail kmod-detach-busy-signal "the daemon did not say the device stays attached and why"; exit 1; }
pass kmod-detach-busy-signal
dmesg | grep 'kmemfs: cannot offline' | sed 's/^/    dmesg: /'
dmesg | grep -q 'kmemfs: cannot offline .*interrupted by a signal.*still attached' ||
	{ fail kmod-detach-busy-dmesg "no 'cannot offline ... interrupted by a signal ... still attached' from the module"; exit 1; }
pass kmod-detach-busy-dmesg

# everything stays attached: RAM online, range claimed, module pinned
online=$(blocks_in online)
m2=$(memfree)
echo "kmod-detach-busy: after the stopped detach: $online of $nblk blocks online, MemFree ${m2} kB"
[ "$online" -eq "$nblk" ] || { fail kmod-detach-busy-attached "$online of $nblk blocks of node 1 online"; exit 1; }
[ $((m2 - m0)) -ge $((400 * 1024)) ] || { fail kmod-detach-busy-attached "node 1 MemFree ${m2} kB: the lent memory is gone"; exit 1; }
grep -q 'System RAM (kmemfs)' /proc/iomem || { fail kmod-detach-busy-attached "no 'System RAM (kmemfs)' in /proc/iomem"; exit 1; }
[ ! -e "$DRV" ] || { fail kmod-detach-busy-attached "dax0.0 bound to device_dax again"; exit 1; }
if rmmod kmemfs 2>/tmp/rmmod.log; then
	fail kmod-detach-busy-attached "rmmod kmemfs succeeded while the device is attached"
	exit 1
fi
echo "kmod-detach-busy: rmmod: $(cat /tmp/rmmod.log)"
pass kmod-detach-busy-attached

# release the pin; mounting again re-attaches, unmounting detaches
kill $PPID_PIN
wait $PPID_PIN 2>/dev/null
start_daemon kmod-detach-busy-remount
got=$(md5sum <"$MNT/keep" | cut -d' ' -f1)
[ "$got" = "$sum" ] || { fail kmod-detach-busy-remount "keep: md5 $got, want $sum"; exit 1; }
pass kmod-detach-busy-remount
run umount "$MNT" || { fail_out kmod-detach-busy-detach "umount"; exit 1; }
wait_exit $KPID 60 || { cat /tmp/kmemfs.log; fail kmod-detach-busy-detach "the daemon is still running 60 s after umount without the pin"; exit 1; }
wait $KPID
rc=$?
sed 's/^/    daemon: /' /tmp/kmemfs.log
[ $rc -eq 0 ] || { fail kmod-detach-busy-detach "the daemon exited $rc"; exit 1; }
[ -e "$DRV" ] || { dmesg | tail -5; fail kmod-detach-busy-detach "dax0.0 not back on device_dax"; exit 1; }
grep -q kmemfs /proc/iomem && { fail kmod-detach-busy-detach "kmemfs still in /proc/iomem"; exit 1; }
pass kmod-detach-busy-detach
fsck_clean kmod-detach-busy-fsck || exit 1
run rmmod kmemfs || { fail_out kmod-detach-busy-unload "rmmod after unmount"; exit 1; }
pass kmod-detach-busy
