# devdax-basic.sh -- guest action: mkfs on /dev/dax0.0, mount, a workload of
# files, directories, links, xattrs, a large file, sparse and punched files;
# every byte and attribute checked, again after umount + mount; fsck clean.

S=/tmp/src        # sources of known content (tmpfs)
EXPECT=/tmp/expect # "path md5" of every file with known content

# step NAME CMD... -- run CMD quietly; on failure report NAME and stop the action
step() {
	n=$1
	shift
	run "$@" || {
		fail_out devdax-basic "$n: '$*' exited $?"
		exit 1
	}
}

# want NAME GOT WANT -- an attribute check
want() {
	[ "$2" = "$3" ] || {
		fail devdax-basic "$1: got '$2', want '$3'"
		exit 1
	}
}

sum() { md5sum <"$1" | cut -d' ' -f1; }

# expect PATH SOURCE -- PATH (below $MNT) must hold SOURCE's bytes
expect() { echo "$1 $(sum "$2")" >>"$EXPECT"; }

mkdir -p $S
dd if=/dev/urandom of=$S/r4097 bs=4097 count=1 2>/dev/null
dd if=/dev/urandom of=$S/r1M3 bs=1048579 count=1 2>/dev/null
dd if=/dev/urandom of=$S/r8M bs=1M count=8 2>/dev/null
: >$EXPECT

step mkfs mkfs.kmemfs "$DEV"
pass mkfs
mount_fs || {
	fail_out mount "kmemfs $DEV $MNT failed"
	exit 1
}
pass mount

cd $MNT || exit 1
# -- namespace objects and attributes
step mkdir mkdir -p a/b/c
step mkdir-mode mkdir -m 1777 tmpdir
: >empty
step copy cp $S/r4097 a/small
step copy cp $S/r1M3 a/b/mid
step copy cp $S/r8M a/b/c/eight
expect empty /dev/null
expect a/small $S/r4097
expect a/b/mid $S/r1M3
expect a/b/c/eight $S/r8M
step hardlink ln a/small hardlink
step symlink ln -s a/b/mid symlink
step symlink ln -s nowhere dangling
step mkfifo mkfifo a/fifo
step chmod chmod 640 a/small
step chown chown 1000:1000 a/b/mid
step touch touch -d '2020-02-02 20:20:20' a/b/c/eight
step xattr setfattr -n user.color -v blue a/small
step xattr setfattr -n user.bin -v 0x00ff10 a/b
step xattr setfattr -n trusted.t -v secret a/b/mid
step xattr setfattr -n user.big -v "$(head -c 1500 /dev/zero | tr '\0' x)" empty
step xattr setfattr -n user.gone -v 1 empty
step xattr setfattr -x user.gone empty
step rename cp $S/r4097 tmpname
step rename mv tmpname a/b/renamed
expect a/b/renamed $S/r4097
step unlink cp $S/r1M3 gone
step unlink rm gone

# -- data paths: overwrite inside, shrink, sparse, punch, preallocate
cp $S/r8M /tmp/over
dd if=$S/r4097 of=/tmp/over bs=4097 seek=3 conv=notrunc 2>/dev/null
step overwrite cp $S/r8M over
step overwrite dd if=$S/r4097 of=over bs=4097 seek=3 conv=notrunc
expect over /tmp/over
head -c 5000 $S/r1M3 >/tmp/shrunk
step shrink cp $S/r1M3 shrunk
step shrink truncate -s 5000 shrunk
expect shrunk /tmp/shrunk
truncate -s 64M /tmp/sparse
dd if=$S/r4097 of=/tmp/sparse bs=4096 seek=8000 conv=notrunc 2>/dev/null
step sparse truncate -s 64M sparse
step sparse dd if=$S/r4097 of=sparse bs=4096 seek=8000 conv=notrunc
expect sparse /tmp/sparse
cp $S/r8M /tmp/punched
fallocate -p -o 1M -l 2M /tmp/punched
step punch cp $S/r8M punched
step punch fallocate -p -o 1M -l 2M punched
expect punched /tmp/punched
head -c 3145728 /dev/zero >/tmp/zero3M
step prealloc fallocate -l 3M prealloc
expect prealloc /tmp/zero3M

# -- a large file, in 1 MiB writes (4 KiB writes take ~8 ms each under TCG)
dd if=/dev/urandom of=/tmp/big bs=1M count=200 2>/dev/null
expect big /tmp/big
step big dd if=/tmp/big of=big bs=1M
rm /tmp/big
cd / || exit 1

# verify WHEN -- every expected byte and attribute, on the mounted fs
verify() {
	w=$1
	while read -r p m; do
		[ -f "$MNT/$p" ] || {
			fail devdax-basic "$w: $p is missing"
			exit 1
		}
		want "$w: md5 of $p" "$(sum "$MNT/$p")" "$m"
	done <$EXPECT
	cd $MNT || exit 1
	want "$w: mode of a/small" "$(stat -c %a a/small)" 640
	want "$w: links of a/small" "$(stat -c %h a/small)" 2
	want "$w: inode of hardlink" "$(stat -c %i hardlink)" "$(stat -c %i a/small)"
	want "$w: owner of a/b/mid" "$(stat -c %u:%g a/b/mid)" 1000:1000
	want "$w: mtime of a/b/c/eight" "$(stat -c %Y a/b/c/eight)" \
		"$(date -d '2020-02-02 20:20:20' +%s)"
	want "$w: mode of tmpdir" "$(stat -c %a tmpdir)" 1777
	want "$w: symlink" "$(readlink symlink)" a/b/mid
	want "$w: dangling symlink" "$(readlink dangling)" nowhere
	want "$w: fifo type" "$(stat -c %F a/fifo)" fifo
	want "$w: size of empty" "$(stat -c %s empty)" 0
	want "$w: size of sparse" "$(stat -c %s sparse)" 67108864
	want "$w: size of prealloc" "$(stat -c %s prealloc)" 3145728
	want "$w: size of big" "$(stat -c %s big)" 209715200
	want "$w: xattr user.color" "$(getfattr --only-values -n user.color a/small)" blue
	want "$w: xattr user.bin" \
		"$(getfattr -e hex -n user.bin a/b | sed -n 's/^user.bin=//p')" 0x00ff10
	want "$w: xattr trusted.t" "$(getfattr --only-values -n trusted.t a/b/mid)" secret
	want "$w: xattr user.big" "$(getfattr --only-values -n user.big empty | wc -c)" 1500
	want "$w: removed xattr" "$(getfattr -d -m - empty | grep -c user.gone)" 0
	want "$w: unlinked file" "$([ -e gone ] && echo exists)" ""
	# holes must stay holes: blocks below what a full file would take
	blk=$(($(stat -c %b sparse) * 512))
	[ $blk -le $((1 << 20)) ] || fail devdax-basic "$w: sparse file uses $blk bytes"
	blk=$(($(stat -c %b punched) * 512))
	[ $blk -le $((6 << 20)) ] || fail devdax-basic "$w: punched file uses $blk bytes"
	[ -e /tmp/failed ] && exit 1
	cd / || exit 1
}

verify "before umount"
manifest $MNT >/tmp/m1
pass workload

umount_fs || {
	fail_out umount "umount $MNT or daemon exit failed"
	exit 1
}
pass umount
mount_fs || {
	fail_out remount "kmemfs $DEV $MNT failed the second time"
	exit 1
}
verify "after remount"
manifest $MNT >/tmp/m2
if ! diff /tmp/m1 /tmp/m2 >/tmp/mdiff; then
	fail devdax-basic "manifest changed across umount/mount:"
	head -n 20 /tmp/mdiff
	exit 1
fi
pass remount
run kmemfsctl stat $MNT || fail_out kmemfsctl "kmemfsctl stat $MNT exited $?"
umount_fs || {
	fail_out umount "second umount failed"
	exit 1
}
# kmemfs -d names the device as sysfs describes it: size, alignment,
# physical address and NUMA node (read through libdaxctl)
D=/sys/bus/dax/devices/${DEV#/dev/}
line=$(printf 'devdax %s: %d MiB, align %d KiB, phys 0x%x, node %d' "$DEV" \
	$(($(cat $D/size) >> 20)) $(($(cat $D/align) >> 10)) $(($(cat $D/resource))) \
	"$(cat $D/target_node)")
kmemfs -d "$DEV" $MNT >/tmp/debug.log 2>&1 &
i=0
until grep -q " $MNT fuse" /proc/mounts || [ $i -ge 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
umount_fs || {
	fail_out umount "umount of the kmemfs -d mount failed"
	exit 1
}
grep -qF "kmemfs: $line" /tmp/debug.log || {
	fail devdax-basic "kmemfs -d printed no line '$line'; it printed: $(grep -v '^unique' /tmp/debug.log | head -n 5)"
	exit 1
}
pass debug-line
fsck_clean fsck || exit 1
pass devdax-basic
