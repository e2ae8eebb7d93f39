# powercut-write.sh -- guest action: write files until the host kills QEMU.
# Every other file is written with fsync (dd conv=fsync); once that returns the
# guest prints "KMEMFS-SYNCED: name md5 ~check", a promise the next boot must keep.
# Some earlier unsynced files are deleted on the way, so the fs also sees
# unlinks at the cut and does not fill up. Files are named g<boot>-<n>.

mount_fs || {
	fail_out mount "kmemfs $DEV $MNT failed"
	exit 1
}
mkdir -p $MNT/pc
# 16 MiB of random bytes; each file is a slice of it behind a header naming it
dd if=/dev/urandom of=/tmp/pool bs=1M count=16 2>/dev/null
echo "KMEMFS-WRITING: boot $KMEMFS_GEN"
i=0
while :; do
	name=g$KMEMFS_GEN-$i
	case $((i % 5)) in
	0) kib=64 ;; 1) kib=1024 ;; 2) kib=300 ;; 3) kib=2048 ;; *) kib=8 ;;
	esac
	{
		echo "$name"
		dd if=/tmp/pool bs=1k skip=$(((i * 613) % 14000)) count=$kib 2>/dev/null
	} >/tmp/w
	m=$(md5sum </tmp/w | cut -d' ' -f1)
	if [ $((i % 2)) -eq 0 ]; then
		run dd if=/tmp/w of=$MNT/pc/$name bs=256k conv=fsync || {
			fail_out powercut-write "fsync'ed write of $name failed"
			exit 1
		}
		echo "$name $m" | marked SYNCED
	else
		run dd if=/tmp/w of=$MNT/pc/$name bs=256k || {
			fail_out powercut-write "write of $name failed"
			exit 1
		}
		# drop an older unsynced file now and then
		[ $((i % 4)) -eq 3 ] && rm -f $MNT/pc/g$KMEMFS_GEN-$((i - 2))
	fi
	i=$((i + 1))
done
