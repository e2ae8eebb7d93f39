# kmod-detach-busy.sh -- unmount while the kernel cannot take the lent memory
# offline. 1. A process pins one page in each of node 1's memory blocks with
# vmsplice() into a pipe it never reads (get_user_pages references, so
# migration fails with EAGAIN and offline_pages() retries until a signal).
# The daemon's detach must hang in offlining, not fail by itself; SIGTERM
# then stops it: the daemon says the device is still attached as System RAM
# and exits 1, the module says why in dmesg and keeps everything attached
# (rmmod refused). Once the pin is gone, mounting again re-attaches with the
# file intact, and a normal unmount detaches; fsck clean, rmmod works.
#
# 2. Rollback: with only node 1's last block pinned (kmodtest pin --last) the
# detach offlines every other block first, then sticks in the last one; on
# SIGTERM offline_and_remove_memory() re-onlines the others. The module's
# counts per block are what they were (held units held, lent units lent),
# MemFree did not grow, and after a process filled node 1's free memory with
# a pattern the files' md5 are unchanged: no file page reached the buddy.
#
# 3. -o detach_timeout=12, last block pinned: one progress line at 10 s (1 of
# 6 blocks still online), then the daemon gives up by itself, exit 1, the
# device attached; remount, clean unmount, fsck.
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
# start_pin [--last] -- kmodtest pin in the background (PPID_PIN); waits up to
# 120 s until it says it has pinned (/tmp/pinned) or ends; output in /tmp/pin.log
start_pin() {
	rm -f /tmp/pinned
	kmodtest pin "$@" /tmp/pinned >/tmp/pin.log 2>&1 &
	PPID_PIN=$!
	i=0
	while [ ! -e /tmp/pinned ] && running $PPID_PIN && [ $i -lt 1200 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}
# clean_detach NAME -- umount with nothing pinned: the daemon exits 0 within
# 60 s and dax0.0 is back on device_dax
clean_detach() {
	run umount "$MNT" || { fail_out "$1" "umount"; return 1; }
	wait_exit $KPID 60 || { cat /tmp/kmemfs.log; fail "$1" "the daemon is still running 60 s after umount without the pin"; return 1; }
	wait $KPID
	rc=$?
	[ $rc -eq 0 ] && [ -e "$DRV" ] || { cat /tmp/kmemfs.log; fail "$1" "the daemon exited $rc, dax0.0 $([ -e "$DRV" ] || echo not) on device_dax"; return 1; }
	pass "$1"
}
# start_daemon NAME [OPTS...] -- kmemfs -f in the background (KPID), its
# messages in /tmp/kmemfs.log; waits for the mount
start_daemon() {
	sdname=$1
	shift
	kmemfs -f "$@" "$DEV" "$MNT" >/tmp/kmemfs.log 2>&1 &
	KPID=$!
	i=0
	while ! grep -q " $MNT fuse" /proc/mounts && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	grep -q " $MNT fuse" /proc/mounts || { cat /tmp/kmemfs.log; fail "$sdname" "kmemfs $* $DEV $MNT with kmemfs.ko loaded"; exit 1; }
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
start_pin
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

# ---- 2. the rollback: only node 1's last block pinned. offline_and_remove_memory()
# offlines the blocks before it (held units' pages dropped by the notifier, the
# kernel's pages migrated off lent units), sticks in the last one, and on the
# signal re-onlines the others. Held units must come back held (their file data
# never in the buddy), lent ones lent.
start_daemon kmod-detach-busy-rb-mount
# a file larger than the free space that is not lent: the daemon takes units
# back from the kernel for it, so file data lies in the hot part
i=0
while [ $i -lt 24 ]; do cat /tmp/r8; i=$((i + 1)); done >"$MNT/big" || { fail kmod-detach-busy-rb-write "writing 192 MiB"; exit 1; }
sync
bsum=$(md5sum <"$MNT/big" | cut -d' ' -f1)
kmemfsctl stat "$MNT" | sed 's/^/    stat: /'
kmt kmod-detach-busy-rb-query info
lent0=$(kv lent)
held0=$(kv held)
per0=$(sed -n 's/^lent units per block: //p' "$CMDLOG")
first=$(kv first_block)
last=$((first + nblk - 1))
# units held in the blocks the detach will offline and bring back
heldlow=0
for e in $per0; do
	b=${e%%:*}; b=${b#memory}; l=${e#*:}; l=${l%/*}; per=${e#*/}
	[ "$b" -lt "$last" ] && heldlow=$((heldlow + per - l))
done
echo "kmod-detach-busy: module: $lent0 units lent, $held0 held; $heldlow held in memory$first..memory$((last - 1))"
[ "$heldlow" -ge 16 ] || { fail kmod-detach-busy-rb-query "only $heldlow held units before the last block, want >= 16 (file data there)"; exit 1; }
pass kmod-detach-busy-rb-write

start_pin --last
sed 's/^/    /' /tmp/pin.log
grep -q "^pin: 1 pages on node 1 pinned by vmsplice, in blocks: memory$last\$" /tmp/pin.log ||
	{ fail kmod-detach-busy-rb-pin "kmodtest pin --last did not pin one page in memory$last"; exit 1; }
pass kmod-detach-busy-rb-pin
m3=$(memfree)

ncant=$(dmesg | grep -c 'kmemfs: cannot offline .*interrupted by a signal.*still attached')
run umount "$MNT" || { fail_out kmod-detach-busy-rb-umount "umount"; exit 1; }
t0=$(date +%s)
i=0
while { [ "$(blocks_in offline)" -lt $((nblk - 1)) ] || [ "$(blocks_in going-offline)" -ne 1 ]; } &&
	running $KPID && [ $i -lt 1200 ]; do
	sleep 0.1
	i=$((i + 1))
done
sleep 3
off=$(blocks_in offline)
going=$(blocks_in going-offline)
echo "kmod-detach-busy: $(($(date +%s) - t0)) s after umount: $off of $nblk blocks offline, memory$last $(cat /sys/devices/system/memory/memory$last/state), daemon $(running $KPID && echo running || echo gone)"
running $KPID || { cat /tmp/kmemfs.log; fail kmod-detach-busy-rb-stuck "the daemon ended although memory$last could not be offlined"; exit 1; }
[ "$off" -eq $((nblk - 1)) ] && [ "$going" -eq 1 ] &&
	[ "$(cat /sys/devices/system/memory/memory$last/state)" = going-offline ] ||
	{ fail kmod-detach-busy-rb-stuck "$off blocks offline and $going going-offline, want $((nblk - 1)) and memory$last"; exit 1; }
dmesg | grep 'migrating pfn .* failed' | tail -n 1 | sed 's/^/    dmesg: /'
pass kmod-detach-busy-rb-stuck

kill -TERM $KPID
wait_exit $KPID 30 || { fail kmod-detach-busy-rb-signal "the daemon is still running 30 s after SIGTERM"; exit 1; }
wait $KPID
rc=$?
sed 's/^/    daemon: /' /tmp/kmemfs.log
[ $rc -eq 1 ] || { fail kmod-detach-busy-rb-signal "the daemon exited $rc after SIGTERM, want 1"; exit 1; }
grep -q 'still attached to kmemfs.ko as System RAM' /tmp/kmemfs.log &&
	grep -q 'the detach was stopped by' /tmp/kmemfs.log ||
	{ fail kmod-detach-busy-rb-signal "the daemon did not say the device stays attached and why"; exit 1; }
dmesg | grep 'kmemfs: cannot offline' | tail -n 1 | sed 's/^/    dmesg: /'
[ "$(dmesg | grep -c 'kmemfs: cannot offline .*interrupted by a signal.*still attached')" -gt "$ncant" ] ||
	{ fail kmod-detach-busy-rb-signal "no new 'cannot offline ... still attached' from the module"; exit 1; }
pass kmod-detach-busy-rb-signal

# the rolled-back blocks are online again, with the same units lent and held
online=$(blocks_in online)
m4=$(memfree)
kmt kmod-detach-busy-rb-units info
per1=$(sed -n 's/^lent units per block: //p' "$CMDLOG")
echo "kmod-detach-busy: after the rollback: $online of $nblk blocks online; node 1 MemFree ${m3} kB before umount, ${m4} kB now"
[ "$online" -eq "$nblk" ] || { fail kmod-detach-busy-rb-online "$online of $nblk blocks of node 1 online"; exit 1; }
[ "$(kv lent)" = "$lent0" ] && [ "$(kv held)" = "$held0" ] && [ "$(kv offline)" = 0 ] ||
	{ fail kmod-detach-busy-rb-units "lent $(kv lent) held $(kv held) offline $(kv offline), want $lent0 $held0 0"; exit 1; }
[ "$per1" = "$per0" ] || { fail kmod-detach-busy-rb-units "lent units per block: $per1, want $per0"; exit 1; }
# a held unit given to the buddy would raise MemFree by 4 MiB
[ "$m4" -le $((m3 + 8 * 1024)) ] || { fail kmod-detach-busy-rb-units "MemFree rose by $((m4 - m3)) kB: held pages in the buddy?"; exit 1; }
pass kmod-detach-busy-rb-units

# the kernel uses all of node 1's free memory: a file page among it would be overwritten
kmt kmod-detach-busy-rb-fill fill $((m4 / 1024 - 32)) 4b4d454d46535041
kill $PPID_PIN
wait $PPID_PIN 2>/dev/null
start_daemon kmod-detach-busy-rb-remount
got=$(md5sum <"$MNT/keep" | cut -d' ' -f1)
bgot=$(md5sum <"$MNT/big" | cut -d' ' -f1)
[ "$got" = "$sum" ] && [ "$bgot" = "$bsum" ] ||
	{ fail kmod-detach-busy-rb-data "md5 keep $got big $bgot, want $sum $bsum"; exit 1; }
pass kmod-detach-busy-rb-data
kmemfsctl stat "$MNT" | sed 's/^/    stat: /'
plent=$(kmemfsctl stat "$MNT" --json | sed -n 's/.*"lent_pages": \([0-9]*\).*/\1/p')
kmt kmod-detach-busy-rb-stat info
echo "kmod-detach-busy: remounted: the pool says ${plent} pages lent, the module $(kv lent) units"
[ "$(kv lent)" -eq "$lent0" ] && [ "${plent:-0}" -eq $((lent0 * 1024)) ] ||
	{ fail kmod-detach-busy-rb-stat "module $(kv lent) units lent, pool ${plent} pages, want $lent0 units"; exit 1; }
pass kmod-detach-busy-rb-stat
clean_detach kmod-detach-busy-rb-detach || exit 1
fsck_clean kmod-detach-busy-rb-fsck || exit 1

# ---- 3. -o detach_timeout=12: a line every 10 s while the detach waits, and
# the daemon gives up by itself after 12 s, device attached, exit 1
start_daemon kmod-detach-busy-tmo-mount -o detach_timeout=12
start_pin --last
grep -q "^pin: 1 pages on node 1 pinned by vmsplice, in blocks: memory$last\$" /tmp/pin.log ||
	{ sed 's/^/    /' /tmp/pin.log; fail kmod-detach-busy-tmo-pin "kmodtest pin --last did not pin one page in memory$last"; exit 1; }
t0=$(date +%s)
run umount "$MNT" || { fail_out kmod-detach-busy-tmo-umount "umount"; exit 1; }
wait_exit $KPID 60 || { cat /tmp/kmemfs.log; fail kmod-detach-busy-tmo "the daemon is still running 60 s after umount with detach_timeout=12"; exit 1; }
took=$(($(date +%s) - t0))
wait $KPID
rc=$?
sed 's/^/    daemon: /' /tmp/kmemfs.log
echo "kmod-detach-busy: with detach_timeout=12 the daemon exited $rc by itself $took s after umount"
[ $rc -eq 1 ] || { fail kmod-detach-busy-tmo "the daemon exited $rc, want 1"; exit 1; }
[ $took -ge 12 ] && [ $took -le 30 ] || { fail kmod-detach-busy-tmo "the daemon exited $took s after umount, want 12-30 s"; exit 1; }
grep -q 'gave up after 12 s (-o detach_timeout=12)' /tmp/kmemfs.log &&
	grep -q 'still attached to kmemfs.ko as System RAM' /tmp/kmemfs.log ||
	{ fail kmod-detach-busy-tmo "no 'gave up after 12 s' and 'still attached' from the daemon"; exit 1; }
grep -q 'the detach was stopped by signal' /tmp/kmemfs.log &&
	{ fail kmod-detach-busy-tmo "the daemon says a signal stopped it; it gave up by itself"; exit 1; }
pass kmod-detach-busy-tmo
# one progress line, at 10 s, with the blocks still online: the last one
np=$(grep -c 'waiting for the kernel to move its pages off the device' /tmp/kmemfs.log)
grep -q "waiting for the kernel to move its pages off the device (10 s): 1 of $nblk memory blocks still online; SIGTERM or Ctrl-C stops the wait and leaves the device attached as System RAM" /tmp/kmemfs.log &&
	[ "$np" -eq 1 ] || { fail kmod-detach-busy-tmo-progress "$np progress lines, want one at 10 s saying 1 of $nblk blocks still online"; exit 1; }
pass kmod-detach-busy-tmo-progress
online=$(blocks_in online)
[ "$online" -eq "$nblk" ] && [ ! -e "$DRV" ] && grep -q 'System RAM (kmemfs)' /proc/iomem ||
	{ fail kmod-detach-busy-tmo-attached "$online of $nblk blocks online, dax0.0 $([ -e "$DRV" ] && echo bound || echo unbound)"; exit 1; }
pass kmod-detach-busy-tmo-attached
kill $PPID_PIN
wait $PPID_PIN 2>/dev/null
start_daemon kmod-detach-busy-tmo-remount -o detach_timeout=12
got=$(md5sum <"$MNT/keep" | cut -d' ' -f1)
bgot=$(md5sum <"$MNT/big" | cut -d' ' -f1)
[ "$got" = "$sum" ] && [ "$bgot" = "$bsum" ] ||
	{ fail kmod-detach-busy-tmo-remount "md5 keep $got big $bgot, want $sum $bsum"; exit 1; }
clean_detach kmod-detach-busy-tmo-detach || exit 1
fsck_clean kmod-detach-busy-tmo-fsck || exit 1

run rmmod kmemfs || { fail_out kmod-detach-busy-unload "rmmod after unmount"; exit 1; }
pass kmod-detach-busy
