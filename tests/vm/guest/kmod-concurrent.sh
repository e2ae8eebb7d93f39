# kmod-concurrent.sh -- kmemfs.ko's LEND does not wait for a RECLAIM, and a
# RECLAIM does not wait for a folio that a pending FUSE request keeps locked.
#
# 1. With the test hook reclaim_delay_ms, a RECLAIM of unit 2 takes 3 s. A
#    LEND of unit 0 meanwhile must finish at once (it used to wait for the
#    module-wide lock the RECLAIM held: a deadlock when the RECLAIM waits on
#    a request whose answer needs that LEND). A second RECLAIM of unit 2 is
#    refused with EALREADY, and QUERY counts the unit as still lent. A DETACH
#    issued during another slow RECLAIM waits for it, and a LEND meanwhile is
#    refused at once instead of waiting for the DETACH.
# 2. kmemfs mounted on dax0.0 and stopped with SIGSTOP, a reader bound to
#    node 1 waits for a READ: the kernel keeps its page-cache folios locked,
#    on units lent to the kernel, until the daemon answers. A RECLAIM of such
#    a unit must fail with EBUSY in seconds; it used to wait for the folio,
#    which never comes free when the request is the one the reclaim is for.
#    Once the daemon runs on, the read completes with the file's bytes and
#    the same unit can be taken back (and is lent again).
# 3. The filesystem full but for one lent unit, a writer bound to node 1: the
#    kernel puts the write's page-cache folios on that unit and keeps them
#    locked while the daemon handles the WRITE, which needs that very unit
#    back. The write must fail with ENOSPC (the kernel refused the unit), not
#    hang; from node 0 the same write then takes the unit back.
. /kmemfs/kmod-lib.sh

# cs -- time since boot in centiseconds
cs() { sed 's/ .*//; s/\.//; s/^0*//' /proc/uptime; }

DELAY=/sys/module/kmemfs/parameters/reclaim_delay_ms

# ---- 1: LEND while a RECLAIM runs --------------------------------------
kmod_attach
[ -e "$DELAY" ] || { fail kmod-concurrent-param "$DELAY missing"; exit 1; }
kmt kmod-concurrent-lend lend 2 all
echo 3000 >"$DELAY"
kmodtest reclaim 2 1 >/tmp/slow.out 2>&1 &
slow=$!
sleep 0.5
# the whole command: its ATTACH and its LEND both used to wait
t0=$(cs)
kmodtest lend 0 1 >/tmp/lend.out 2>&1
lrc=$?
ms=$((($(cs) - t0) * 10))
sed 's/^/    /' /tmp/lend.out
echo "kmod-concurrent: kmodtest lend 0 1 took $ms ms while unit 2 was being reclaimed"
[ $lrc -eq 0 ] && [ "${ms:-99999}" -lt 1000 ] ||
	{ fail kmod-concurrent-lend "LEND of unit 0 took ${ms} ms (exit $lrc) while a RECLAIM of unit 2 ran"; exit 1; }
pass kmod-concurrent-lend
kmodtest reclaim 2 1 >/tmp/again.out 2>&1 && { fail kmod-concurrent-same "a second RECLAIM of unit 2 succeeded: $(cat /tmp/again.out)"; exit 1; }
grep -q "Operation already in progress" /tmp/again.out ||
	{ fail kmod-concurrent-same "a second RECLAIM of unit 2: $(cat /tmp/again.out), want EALREADY"; exit 1; }
pass kmod-concurrent-same
kmt kmod-concurrent-query info
lent=$(sed -n 's/.* lent=\([0-9]*\) .*/\1/p' "$CMDLOG" | head -n 1)
[ "$lent" = $((UNITS - 1)) ] || { fail kmod-concurrent-query "QUERY: $lent units lent during the RECLAIM, want $((UNITS - 1))"; exit 1; }
pass kmod-concurrent-query
wait $slow
src=$?
sed 's/^/    /' /tmp/slow.out
[ $src -eq 0 ] || { fail kmod-concurrent-reclaim "the slow RECLAIM of unit 2 failed"; exit 1; }
pass kmod-concurrent-reclaim

# a DETACH waits for the RECLAIM in flight without blocking other ioctls: a
# LEND meanwhile is refused at once (its ATTACH gets EBUSY, the device being
# detached), where it used to wait for the DETACH
kmodtest reclaim 3 1 >/tmp/slow.out 2>&1 &
slow=$!
sleep 0.5
kmodtest detach >/tmp/detach.out 2>&1 &
det=$!
sleep 0.5
t0=$(cs)
kmodtest lend 1 1 >/tmp/lend.out 2>&1 && { fail kmod-concurrent-detach "a LEND during a DETACH succeeded: $(cat /tmp/lend.out)"; exit 1; }
ms=$((($(cs) - t0) * 10))
sed 's/^/    /' /tmp/lend.out
echo "kmod-concurrent: kmodtest lend 1 1 during a DETACH waiting for a RECLAIM: refused in $ms ms"
grep -q "Device or resource busy" /tmp/lend.out && [ "$ms" -lt 1000 ] ||
	{ fail kmod-concurrent-detach "a LEND during a DETACH: $(cat /tmp/lend.out) after $ms ms, want EBUSY at once"; exit 1; }
wait $slow || { sed 's/^/    /' /tmp/slow.out; fail kmod-concurrent-detach "the RECLAIM a DETACH waited for failed"; exit 1; }
wait $det || { sed 's/^/    /' /tmp/detach.out; fail kmod-concurrent-detach "DETACH after the RECLAIM"; exit 1; }
sed 's/^/    /' /tmp/slow.out /tmp/detach.out
pass kmod-concurrent-detach
echo 0 >"$DELAY"

# ---- 2: a RECLAIM meets a folio locked for a pending READ ----------------
run mkfs.kmemfs "$DEV" || { fail_out kmod-concurrent-mkfs "mkfs.kmemfs $DEV"; exit 1; }
kmemfs -f "$DEV" "$MNT" >/tmp/kmemfs.log 2>&1 &
i=0
while ! grep -q " $MNT fuse" /proc/mounts && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q " $MNT fuse" /proc/mounts || { cat /tmp/kmemfs.log; fail kmod-concurrent-mount "kmemfs $DEV $MNT"; exit 1; }
dd if=/dev/urandom of=/tmp/r8 bs=1M count=8 2>/dev/null
cp /tmp/r8 "$MNT/f" && sync || { fail kmod-concurrent-write "writing 8 MiB"; exit 1; }
echo 3 >/proc/sys/vm/drop_caches
pid=$(pidof kmemfs)
# opened and mapped while the daemon runs (an OPEN or a GETATTR would wait
# before any folio exists), read through page faults once it is stopped
rm -f /tmp/go
kmodtest node1 kmodtest mapread "$MNT/f" /tmp/go /tmp/f.out &
reader=$!
sleep 1
kill -STOP "$pid"
touch /tmp/go
sleep 1
kmodtest lockedunit >"$CMDLOG" 2>&1
lrc=$?
sed 's/^/    kmodtest: /' "$CMDLOG"
if [ $lrc -ne 0 ]; then
	kill -CONT "$pid"
	fail kmod-concurrent-locked "no page locked on a lent unit while a READ waits"
	exit 1
fi
unit=$(kv lockedunit)
kmodtest reclaim "$unit" 1 >/tmp/rec.out 2>&1 &
rec=$!
i=0
while kill -0 $rec 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 $rec 2>/dev/null; then
	kill -CONT "$pid"
	wait $rec
	fail kmod-concurrent-locked "a RECLAIM of unit $unit was still waiting for the locked folio after 10 s"
	exit 1
fi
wait $rec && { kill -CONT "$pid"; fail kmod-concurrent-locked "RECLAIM of unit $unit succeeded while its folio was locked"; exit 1; }
sed 's/^/    /' /tmp/rec.out
grep -q "Device or resource busy" /tmp/rec.out ||
	{ kill -CONT "$pid"; fail kmod-concurrent-locked "RECLAIM of unit $unit: $(cat /tmp/rec.out), want EBUSY"; exit 1; }
pass kmod-concurrent-locked
kill -CONT "$pid"
wait $reader || { fail kmod-concurrent-read "the read failed once the daemon ran on"; exit 1; }
cmp -s /tmp/f.out /tmp/r8 || { fail kmod-concurrent-read "the read returned other bytes than were written"; exit 1; }
pass kmod-concurrent-read
# nothing holds the folios now: the unit comes back, and goes back to the kernel
kmt kmod-concurrent-after reclaim "$unit" 1
kmt kmod-concurrent-after lend "$unit" 1
pass kmod-concurrent-after

umount_fs || { fail_out kmod-concurrent-umount "umount"; exit 1; }
fsck_clean kmod-concurrent-fsck-locked || exit 1

# ---- 3: a write whose own folios sit on the only unit it can take back ----
# stat_json KEY -- a number from kmemfsctl stat --json
stat_json() { kmemfsctl stat "$MNT" --json | sed "s/.*\"$1\": \([0-9]*\).*/\1/"; }
run mkfs.kmemfs --force "$DEV" || { fail_out kmod-concurrent-mkfs "mkfs.kmemfs $DEV"; exit 1; }
kmemfs -f -o reserve=0 "$DEV" "$MNT" >/tmp/kmemfs.log 2>&1 &
i=0
while ! grep -q " $MNT fuse" /proc/mounts && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q " $MNT fuse" /proc/mounts || { cat /tmp/kmemfs.log; fail kmod-concurrent-mount "kmemfs -o reserve=0 $DEV $MNT"; exit 1; }
# fill everything but one unit, which stays lent: node 1's only free memory
pages=$(($(stat_json free_pages) + $(stat_json lent_pages) - 1024))
dd if=/dev/zero of="$MNT/fill" bs=1M count=$((pages / 256)) 2>/dev/null &&
	dd if=/dev/zero of="$MNT/fill" bs=4096 seek=$((pages / 256 * 256)) count=$((pages % 256)) conv=notrunc 2>/dev/null ||
	{ fail kmod-concurrent-fill "filling $pages pages"; exit 1; }
sync
echo 3 >/proc/sys/vm/drop_caches
free=$(stat_json free_pages) lent=$(stat_json lent_pages)
echo "kmod-concurrent: filled $pages pages: $free free, $lent lent; node 1 MemFree $(memfree) kB"
[ "$free" -eq 0 ] && [ "$lent" -eq 1024 ] || { fail kmod-concurrent-fill "$free pages free and $lent lent after the fill, want 0 and 1024"; exit 1; }
fails0=$(stat_json reclaim_failures)
dd if=/dev/urandom of=/tmp/r1 bs=1M count=1 2>/dev/null
# bound to node 1, the write's page-cache folios can only be on the lent
# unit, locked until the daemon answers the WRITE that needs that unit back
kmodtest node1 dd if=/tmp/r1 of="$MNT/g" bs=1M count=1 2>/tmp/self.err &
writer=$!
i=0
while kill -0 $writer 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 $writer 2>/dev/null; then
	fail kmod-concurrent-self "a write needing the unit its own folios are on was still waiting after 30 s"
	exit 1
fi
wait $writer && { fail kmod-concurrent-self "the write succeeded although its folios were on the only unit to take back"; exit 1; }
sed 's/^/    /' /tmp/self.err
grep -q "No space left on device" /tmp/self.err ||
	{ fail kmod-concurrent-self "the write failed, but not with ENOSPC: $(cat /tmp/self.err)"; exit 1; }
fails1=$(stat_json reclaim_failures)
echo "kmod-concurrent: ENOSPC after $((i * 100)) ms; reclaim_failures $fails0 -> $fails1, $(stat_json lent_pages) pages lent"
[ "$fails1" -gt "$fails0" ] || { fail kmod-concurrent-self "reclaim_failures $fails0 -> $fails1"; exit 1; }
pass kmod-concurrent-self
# the same write from node 0: the unit comes back and takes the data
dd if=/tmp/r1 of="$MNT/g" bs=1M count=1 2>/tmp/self.err || { cat /tmp/self.err; fail kmod-concurrent-self-retry "the write from node 0"; exit 1; }
sync
echo 3 >/proc/sys/vm/drop_caches
cmp -s "$MNT/g" /tmp/r1 || { fail kmod-concurrent-self-retry "g holds other bytes than were written"; exit 1; }
echo "kmod-concurrent: from node 0 the write took the unit back: $(stat_json lent_pages) pages lent"
pass kmod-concurrent-self-retry

umount_fs || { fail_out kmod-concurrent-umount "umount"; exit 1; }
fsck_clean kmod-concurrent-fsck || exit 1
run rmmod kmemfs || { fail_out kmod-concurrent-unload "rmmod after unmount"; exit 1; }
pass kmod-concurrent
