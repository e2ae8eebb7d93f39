# reboot-check.sh -- guest action, second boot of the reboot test: mount what
# reboot-write.sh left and print its manifest (the host compares the two boots),
# a second mount refused again, clean umount and fsck.

mount_fs || {
	fail_out mount "kmemfs $DEV $MNT failed after reboot"
	exit 1
}
# twice: the host takes a line from either copy whose check holds
manifest $MNT >/tmp/manifest
marked SUM </tmp/manifest
marked SUM </tmp/manifest
pass reboot-check
second_mount_refused || exit 1
umount_fs || {
	fail_out umount "umount $MNT or daemon exit failed"
	exit 1
}
fsck_clean fsck
