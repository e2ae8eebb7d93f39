# powercut-check.sh -- guest action after a power cut: fsck -n on the device as
# the cut left it, mount, print "KMEMFS-SUM: name md5 ~check" for every file the
# writer made, twice (the host checks the fsync'ed ones against either copy),
# umount and fsck -n again.

fsck_clean fsck-after-cut || exit 1
mount_fs || {
	fail_out mount "kmemfs $DEV $MNT failed after the power cut"
	exit 1
}
for f in $MNT/pc/*; do
	[ -f "$f" ] && echo "${f##*/} $(md5sum <"$f" | cut -d' ' -f1)"
done >/tmp/sums
marked SUM </tmp/sums
marked SUM </tmp/sums
echo "powercut-check: $(ls $MNT/pc | wc -l) files after the cut"
umount_fs || {
	fail_out umount "umount $MNT or daemon exit failed"
	exit 1
}
fsck_clean fsck || exit 1
pass powercut-check
