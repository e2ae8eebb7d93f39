# kmod-fs.sh -- the filesystem and the module together: kmemfs on /dev/dax0.0
# with kmemfs.ko loaded lends every free unit to the kernel (node 1's MemFree),
# takes units back as a file grows, lends them again on punch-hole and rm;
# unmount gives /dev/dax0.0 back with the data intact and fsck clean.
. /kmemfs/kmod-lib.sh

mb() { echo $(($1 / 1024)); }
# want_rise NAME FROM TO KB: MemFree must have moved by >= 90% of KB
want_rise() {
	d=$(($3 - $2))
	[ "$d" -ge $(($4 * 9 / 10)) ] || { fail "$1" "MemFree moved by $d kB, want >= $(($4 * 9 / 10)) kB"; exit 1; }
	pass "$1"
}
# settle: lending follows the operation synchronously; give rm's forget a moment
settle() { sync; sleep 1; }

run mkfs.kmemfs "$DEV" || { fail_out kmod-fs-mkfs "mkfs.kmemfs $DEV"; exit 1; }
kmod_load
m0=$(memfree)
# foreground, its messages kept: a daemon that dies must say why
kmemfs -f "$DEV" "$MNT" >/tmp/kmemfs.log 2>&1 &
i=0
while ! grep -q " $MNT fuse" /proc/mounts && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q " $MNT fuse" /proc/mounts || { cat /tmp/kmemfs.log; fail kmod-fs-mount "kmemfs $DEV $MNT with kmemfs.ko loaded"; exit 1; }
DRV=/sys/bus/dax/devices/dax0.0/driver
[ ! -e "$DRV" ] || { fail kmod-fs-mount "dax0.0 still bound to device_dax while mounted"; exit 1; }
m1=$(memfree)
echo "kmod-fs: node 1 MemFree ${m0} kB before mount, ${m1} kB mounted"
kmemfsctl stat "$MNT" | sed 's/^/    /'
# all but the reserve (32 MiB) and the unaligned ends are lent: at least 400 MiB here
want_rise kmod-fs-mount-lends "$m0" "$m1" $((400 * 1024))

# free pages the module cannot lend (unaligned ends, the reserve) fill first
free_kb=$(( $(kmemfsctl stat "$MNT" --json | sed 's/.*"free_pages": \([0-9]*\).*/\1/') * 4 ))
echo "kmod-fs: ${free_kb} kB free and not lent before writing"
dd if=/dev/urandom of=/tmp/r8 bs=1M count=8 2>/dev/null
i=0
while [ $i -lt 64 ]; do cat /tmp/r8; i=$((i + 1)); done >"$MNT/big" || { fail kmod-fs-write "writing 512 MiB"; exit 1; }
settle
m2=$(memfree)
echo "kmod-fs: after writing 512 MiB: MemFree ${m2} kB"
want_rise kmod-fs-write-reclaims "$m2" "$m1" $((512 * 1024 - free_kb))
sum=$(md5sum <"$MNT/big" | cut -d' ' -f1)
r8sum=$(md5sum </tmp/r8 | cut -d' ' -f1)
bad=""
i=0
while [ $i -lt 64 ]; do
	c=$(dd if="$MNT/big" bs=1M skip=$((i * 8)) count=8 2>/dev/null | md5sum | cut -d' ' -f1)
	[ "$c" = "$r8sum" ] || bad="$bad $i"
	i=$((i + 1))
done
if [ -n "$bad" ]; then
	echo "daemon: $(pidof kmemfs)"; cat /tmp/kmemfs.log; grep fuse /proc/mounts
	head -c 8388608 "$MNT/big" >/tmp/c0
	ls -l /tmp/c0 /tmp/r8 "$MNT/big"
	cmp /tmp/c0 /tmp/r8 | head -3
	cmp -l /tmp/c0 /tmp/r8 | wc -l
	od -A d -t x1 /tmp/c0 | head -3
	od -A d -t x1 /tmp/r8 | head -3
	fail kmod-fs-write "8 MiB chunks that read back wrong:$bad"
	exit 1
fi
pass kmod-fs-write-intact

# the file's tail sits in units taken back from the kernel: punch it
fallocate -p -o $((384 * 1024 * 1024)) -l $((128 * 1024 * 1024)) "$MNT/big" || { fail kmod-fs-punch "fallocate -p"; exit 1; }
settle
m3=$(memfree)
echo "kmod-fs: after punching 128 MiB: MemFree ${m3} kB"
# the first 32 MiB freed refill the reserve kept for growth (-o reserve)
want_rise kmod-fs-punch-lends "$m2" "$m3" $((128 * 1024 - 32 * 1024))
tail -c $((128 * 1024 * 1024)) "$MNT/big" | tr -d '\0' | head -c 1 | grep -q . &&
	{ fail kmod-fs-punch "the punched range is not zeroes"; exit 1; }
pass kmod-fs-punch-zeroes

rm "$MNT/big"
settle
m4=$(memfree)
echo "kmod-fs: after rm: MemFree ${m4} kB"
want_rise kmod-fs-rm-lends "$m3" "$m4" $((384 * 1024 - free_kb))

# data written now must survive unmount, detach and a second attach
i=0
while [ $i -lt 8 ]; do cat /tmp/r8; i=$((i + 1)); done >"$MNT/keep"
sum=$(md5sum <"$MNT/keep" | cut -d' ' -f1)
kmemfsctl stat "$MNT" | sed 's/^/    /'
umount_fs || { fail_out kmod-fs-umount "umount"; exit 1; }
[ -e "$DRV" ] || {
	echo "daemon log:"; cat /tmp/kmemfs.log; dmesg | tail -5
	fail kmod-fs-umount "dax0.0 not bound to device_dax again after unmount"
	exit 1
}
pass kmod-fs-umount-detaches
fsck_clean kmod-fs-fsck || exit 1
mount_fs || { fail_out kmod-fs-remount "second mount"; exit 1; }
got=$(md5sum <"$MNT/keep" | cut -d' ' -f1)
[ "$got" = "$sum" ] || { fail kmod-fs-remount "keep: md5 $got, want $sum"; exit 1; }
pass kmod-fs-data-intact
umount_fs || { fail_out kmod-fs-umount "umount"; exit 1; }
run rmmod kmemfs || { dmesg | tail -5; fail_out kmod-fs-unload "rmmod after unmount"; exit 1; }
pass kmod-fs
