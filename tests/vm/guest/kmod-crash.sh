# kmod-crash.sh -- kill -9 of the daemon while the device is lent to the
# kernel: the module keeps everything safe, a new daemon re-attaches (the
# module's lent units and the pool's record are reconciled), the data written
# before the kill is intact, fsck is clean, and unmount gives dax0.0 back.
. /kmemfs/kmod-lib.sh

run mkfs.kmemfs "$DEV" || { fail_out kmod-crash-mkfs "mkfs.kmemfs $DEV"; exit 1; }
kmod_load
mount_fs || { fail_out kmod-crash-mount "kmemfs $DEV $MNT"; exit 1; }
dd if=/dev/urandom of=/tmp/r8 bs=1M count=8 2>/dev/null
i=0
while [ $i -lt 16 ]; do cat /tmp/r8; i=$((i + 1)); done >"$MNT/keep"
sum=$(md5sum <"$MNT/keep" | cut -d' ' -f1)
sync
m1=$(memfree)
# a writer and a punch loop keep units moving both ways when the kill comes
( i=0; while [ $i -lt 200 ]; do cat /tmp/r8 >"$MNT/churn$((i % 4))" || break;
	rm -f "$MNT/churn$(((i + 2) % 4))"; i=$((i + 1)); done ) &
sleep 3
kill -9 $(pidof kmemfs)
wait
umount -l "$MNT" 2>/dev/null
[ ! -e /sys/bus/dax/devices/dax0.0/driver ] || { fail kmod-crash "dax0.0 rebound although the daemon died"; exit 1; }
pass kmod-crash-device-kept
mount_fs || { fail_out kmod-crash-remount "kmemfs after kill -9"; exit 1; }
m2=$(memfree)
echo "kmod-crash: node 1 MemFree ${m1} kB before the kill, ${m2} kB after re-attach"
got=$(md5sum <"$MNT/keep" | cut -d' ' -f1)
[ "$got" = "$sum" ] || { fail kmod-crash "keep: md5 $got, want $sum"; exit 1; }
pass kmod-crash-data-intact
rm -f "$MNT"/churn*
sync
sleep 1
m3=$(memfree)
echo "kmod-crash: after removing the churn files: MemFree ${m3} kB"
[ "$m3" -ge $((m1 * 9 / 10)) ] || { fail kmod-crash "MemFree $m3 kB, was $m1 kB before the crash"; exit 1; }
pass kmod-crash-lends-again
umount_fs || { fail_out kmod-crash-umount "umount"; exit 1; }
[ -e /sys/bus/dax/devices/dax0.0/driver ] || { dmesg | tail -5; fail kmod-crash "dax0.0 not back on device_dax"; exit 1; }
fsck_clean kmod-crash-fsck || exit 1
run rmmod kmemfs || { fail_out kmod-crash "rmmod"; exit 1; }
pass kmod-crash
