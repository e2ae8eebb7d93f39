# kmod-callback-taken.sh -- the online-page callback is system-wide and
# virtio-mem takes it when its device probes (the host gives this boot a
# virtio-mem-pci device, tests/vm/lib/kmod.sh). Mounting with kmemfs.ko loaded
# must then fail with a message that says so, mount nothing, and leave dax0.0
# bound to device_dax with its data: the module unloads (no reference left
# behind) and a plain devdax mount reads the file written before.
. /kmemfs/kmod-lib.sh

DRV=/sys/bus/dax/devices/dax0.0/driver
# vmem_bound -- a virtio-mem device has probed (and so holds the callback)
vmem_bound() {
	for d in /sys/bus/virtio/drivers/virtio_mem/virtio*; do
		[ -e "$d" ] && return 0
	done
	return 1
}

run mkfs.kmemfs "$DEV" || { fail_out kmod-callback-mkfs "mkfs.kmemfs $DEV"; exit 1; }
# a file written without the module, on plain devdax
mount_fs || { fail_out kmod-callback-mount "plain devdax mount"; exit 1; }
dd if=/dev/urandom of="$MNT/keep" bs=1M count=8 2>/dev/null
sum=$(md5sum <"$MNT/keep" | cut -d' ' -f1)
umount_fs || { fail_out kmod-callback-mount "umount"; exit 1; }

run modprobe -a virtio_pci virtio_mem || { fail_out kmod-callback-virtio-mem "modprobe virtio_pci virtio_mem"; exit 1; }
i=0
while ! vmem_bound && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
vmem_bound || {
	dmesg | grep -i virtio | tail -5
	fail kmod-callback-virtio-mem "no virtio-mem device probed"
	exit 1
}
dmesg | grep virtio_mem | sed 's/^/    /'
pass kmod-callback-virtio-mem

kmod_load
kmemfs "$DEV" "$MNT" >"$CMDLOG" 2>&1
rc=$?
sed 's/^/    kmemfs: /' "$CMDLOG"
if [ $rc -eq 0 ] || grep -q " $MNT fuse" /proc/mounts; then
	fail kmod-callback-refused "kmemfs $DEV $MNT exited $rc with virtio-mem holding the callback"
	exit 1
fi
grep -q "online-page callback is taken by virtio-mem" "$CMDLOG" ||
	{ fail kmod-callback-message "kmemfs exited $rc without saying the online-page callback is taken"; exit 1; }
dmesg | grep "online-page callback is taken" | sed 's/^/    dmesg: /'
dmesg | grep -q "online-page callback is taken" ||
	{ fail kmod-callback-message "kmemfs.ko logged nothing about the callback"; exit 1; }
pass kmod-callback-refused

# the device as it was: bound to device_dax, /dev/dax0.0 there, daxctl lists it
[ -e "$DRV" ] && [ "$(basename "$(readlink "$DRV")")" = device_dax ] ||
	{ fail kmod-callback-device "dax0.0 not bound to device_dax after the refused attach"; exit 1; }
[ -c "$DEV" ] || { fail kmod-callback-device "$DEV missing"; exit 1; }
run daxctl list -d dax0.0 && grep -q '"mode":"devdax"' "$CMDLOG" ||
	{ fail_out kmod-callback-device "daxctl list -d dax0.0"; exit 1; }
grep -q kmemfs /proc/iomem && { grep kmemfs /proc/iomem; fail kmod-callback-device "kmemfs resources left in /proc/iomem"; exit 1; }
pass kmod-callback-device
# no module reference or state left: it unloads, and devdax works without it
run rmmod kmemfs || { fail_out kmod-callback-unload "rmmod after the refused attach"; exit 1; }
mount_fs || { fail_out kmod-callback-remount "plain devdax mount after the refused attach"; exit 1; }
got=$(md5sum <"$MNT/keep" | cut -d' ' -f1)
[ "$got" = "$sum" ] || { fail kmod-callback-remount "keep: md5 $got, want $sum"; exit 1; }
umount_fs || { fail_out kmod-callback-remount "umount"; exit 1; }
fsck_clean kmod-callback-fsck || exit 1
pass kmod-callback-taken
