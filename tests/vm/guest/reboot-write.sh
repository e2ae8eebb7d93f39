# reboot-write.sh -- guest action, first boot of the reboot test: a mixed tree
# on a fresh fs, its manifest printed for the host (KMEMFS-SUM lines), a second
# mount refused, clean umount and fsck; init then powers off cleanly.

mount_fs || {
	fail_out mount "kmemfs $DEV $MNT failed"
	exit 1
}
(
	set -e
	cd $MNT
	mkdir -p d1/d2 empty-dir
	dd if=/dev/urandom of=d1/f1 bs=4097 count=3 2>/dev/null
	dd if=/dev/urandom of=d1/d2/big bs=1M count=24 2>/dev/null
	ln d1/f1 hard
	ln -s d1/d2/big sym
	truncate -s 10M sparse
	dd if=/dev/urandom of=sparse bs=4096 seek=1000 count=1 conv=notrunc 2>/dev/null
	chmod 600 d1/f1
	chown 1234:5678 d1/d2
	setfattr -n user.k -v v1 d1/f1
	setfattr -n user.dir -v 0xdeadbeef d1
	touch -d '2001-01-01 01:01:01' hard
	mkfifo fifo
) >"$CMDLOG" 2>&1 || {
	fail_out reboot-write "building the tree failed"
	exit 1
}
# twice: the host takes a line from either copy whose check holds
manifest $MNT >/tmp/manifest
marked SUM </tmp/manifest
marked SUM </tmp/manifest
pass reboot-write
second_mount_refused || exit 1
umount_fs || {
	fail_out umount "umount $MNT or daemon exit failed"
	exit 1
}
fsck_clean fsck
