#!/bin/bash
# test_clone.sh -- copy-on-write clones through cp (copy_file_range) and
# kmemfsctl: instant, sharing pages, independent afterwards (checked against
# shadow copies kept on the host's tmpfs), counted once by df; a kill -9
# during a clone loop leaves a pool fsck.kmemfs calls clean.
. "$(dirname "$0")/lib.sh" "$@"
kmemfs_only
CTL=$BIN_DIR/kmemfsctl
FSCK=$BIN_DIR/fsck.kmemfs
K=$BIN_DIR/kmemfs
fs_setup 512M "" /dev/shm
SHADOW=$WORK/shadow
mkdir -p "$SHADOW"
field() { "$CTL" stat "$MNT" --json | tr -d '{}"' | tr ',' '\n' | awk -F': ' -v k="$1" '$1 ~ k { print $2 }' | tr -d ' '; }

# a 64 MiB source with a partial last page
head -c $((64 * 1024 * 1024 + 1234)) /dev/urandom >"$SHADOW/a"
cp "$SHADOW/a" "$MNT/a"
used0=$(used_bytes)
shared0=$(field shared_pages)
start=$(date +%s%N)
cp "$MNT/a" "$MNT/b"
ms=$((($(date +%s%N) - start) / 1000000))
cp "$SHADOW/a" "$SHADOW/b"
check_cmd "cp gives an identical file" cmp "$MNT/a" "$MNT/b"
note "cp of 64 MiB took ${ms} ms"
used1=$(used_bytes)
check "[ $((used1 - used0)) -lt $((2 * 1024 * 1024)) ]" "cp shares pages: df used grew by $((used1 - used0)) bytes for 64 MiB"
check "[ $(field shared_pages) -ge $((shared0 + 16384)) ]" "kmemfsctl counts the shared pages ($(field shared_pages))"
check_cmd "kmemfsctl clone" "$CTL" clone "$MNT/a" "$MNT/c"
cp "$SHADOW/a" "$SHADOW/c"
check "[ $(($(used_bytes) - used1)) -lt $((2 * 1024 * 1024)) ]" "kmemfsctl clone shares pages too"
check "! '$CTL' clone '$MNT/a' '$MNT/c' 2>/dev/null" "kmemfsctl clone refuses to replace an existing file"

# modify every copy at many offsets and sizes; mirror on the shadows
i=0
for off in 0 1 4095 4096 8191 65536 1000000 4194303 4194304 33554432 67108863 67109000; do
	for f in a b c; do
		i=$((i + 1))
		len=$(((i * 7919) % 20000 + 1))
		head -c $len /dev/urandom >"$WORK/patch"
		dd if="$WORK/patch" of="$MNT/$f" bs=1 seek=$off conv=notrunc status=none
		dd if="$WORK/patch" of="$SHADOW/$f" bs=1 seek=$off conv=notrunc status=none
	done
done
truncate -s 10000000 "$MNT/b"; truncate -s 10000000 "$SHADOW/b"
fallocate -p -o 5000 -l 300000 "$MNT/c"; fallocate -p -o 5000 -l 300000 "$SHADOW/c"
for f in a b c; do
	check_cmd "$f matches its shadow after writes on every copy" cmp "$MNT/$f" "$SHADOW/$f"
done
# clones of ranges at offsets that are and are not page-aligned alike
probe cfr "$MNT/a" 4096 "$MNT/b" 8192 1000000 >/dev/null 2>&1 &&
	dd if="$SHADOW/a" of="$SHADOW/b" bs=4096 skip=1 seek=2 count=244 conv=notrunc status=none &&
	dd if="$SHADOW/a" of="$SHADOW/b" bs=1 skip=$((4096 + 999424)) seek=$((8192 + 999424)) count=576 conv=notrunc status=none
check_cmd "copy_file_range of an aligned range" cmp "$MNT/b" "$SHADOW/b"
rm "$MNT/a" "$SHADOW/a"
check_cmd "b survives the removal of its source" cmp "$MNT/b" "$SHADOW/b"
check_cmd "c survives the removal of its source" cmp "$MNT/c" "$SHADOW/c"
fs_remount || abort_test "remount"
check_cmd "b after remount" cmp "$MNT/b" "$SHADOW/b"
check_cmd "c after remount" cmp "$MNT/c" "$SHADOW/c"
rm -f "$MNT/b" "$MNT/c"
check "wait_until 15 '[ \$(field shared_pages) -eq 0 ]'" "no shared pages once every clone is gone"

# a clone is a point in time even while another process overwrites the source
# in place (O_DIRECT, so the writes reach the daemon concurrently with clones)
head -c $((8 * 1024 * 1024)) /dev/urandom >"$MNT/hot"
(
	end=$((SECONDS + 5))
	while [ $SECONDS -lt $end ]; do
		dd if=/dev/urandom of="$MNT/hot" bs=64k count=8 seek=$((RANDOM % 120)) \
			conv=notrunc oflag=direct status=none
	done
) &
writer=$!
changed=0
for i in $(seq 1 15); do
	"$CTL" clone "$MNT/hot" "$MNT/hot.$i" || { changed=$((changed + 100)); continue; }
	s1=$(dd if="$MNT/hot.$i" bs=1M iflag=direct status=none | md5sum)
	sleep 0.2
	s2=$(dd if="$MNT/hot.$i" bs=1M iflag=direct status=none | md5sum)
	[ "$s1" = "$s2" ] || changed=$((changed + 1))
done
wait "$writer"
check_eq "$changed" 0 "15 clones taken under concurrent overwrites never change afterwards"
rm -f "$MNT"/hot*

# snapshot of a tree
mkdir -p "$MNT/tree/d1/d2"
head -c 3000000 /dev/urandom >"$MNT/tree/d1/f"
ln -s f "$MNT/tree/d1/s"
setfattr -n user.k -v v "$MNT/tree/d1/f"
check_cmd "kmemfsctl snapshot" "$CTL" snapshot "$MNT/tree" "$MNT/snap"
check_cmd "the snapshot's file is identical" cmp "$MNT/tree/d1/f" "$MNT/snap/d1/f"
check_eq "$(readlink "$MNT/snap/d1/s")" f "the snapshot keeps symlinks"
check_eq "$(getfattr --only-values -n user.k "$MNT/snap/d1/f" 2>/dev/null)" v "the snapshot keeps xattrs"
echo change >>"$MNT/tree/d1/f"
check "! cmp -s '$MNT/tree/d1/f' '$MNT/snap/d1/f'" "a later write does not reach the snapshot"
fs_umount

# a mount point with a space, which mountinfo spells as \040: the daemon
# must still know its own mount, or the clone ioctl (which names its source
# by a file descriptor) takes the source for a foreign file
MNT_PLAIN=$MNT
MNT="$WORK/mnt with space"
mkdir "$MNT"
fs_mount || abort_test "mount on a path with a space"
head -c $((32 * 1024 * 1024)) /dev/urandom >"$MNT/spaced"
used0=$(used_bytes)
check_cmd "kmemfsctl clone under a spaced mount point" "$CTL" clone "$MNT/spaced" "$MNT/spaced.copy"
check_cmd "the clone is identical" cmp "$MNT/spaced" "$MNT/spaced.copy"
check "[ $(($(used_bytes) - used0)) -lt $((2 * 1024 * 1024)) ]" "the clone shares pages: df used grew by $(($(used_bytes) - used0)) bytes for 32 MiB"
check_eq "$(cat /sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb)" 1024 "the spaced mount gets its 1 MiB read-ahead window"
fs_umount
MNT=$MNT_PLAIN

# the clone ioctl's source descriptor, swapped by the caller (dup2) while the
# daemon checks it: a file the user may only open O_PATH never passes as the
# readable one it was swapped with
fs_mount allow_other || abort_test "mount for the swapped source"
mkdir "$MNT/sec" "$MNT/u"
chmod 755 "$MNT/sec"
{ printf TOPSECRET; head -c 5000 /dev/zero; } >"$MNT/sec/secret"
chmod 600 "$MNT/sec/secret"
head -c 8192 /dev/urandom >"$MNT/u/readable"
: >"$MNT/u/out"
chown -R 1000:1000 "$MNT/u"
out=$(as_user 1000 timeout 300 "$BIN_DIR/cloneswap" "$MNT/sec/secret" "$MNT/u/readable" "$MNT/u/out" 10000 2>&1)
check "echo '$out' | grep -Eq '^[1-9][0-9]* cloned, [1-9][0-9]* refused$'" \
	"a clone from a descriptor swapped with an O_PATH one of an unreadable file never copies it ($out)"
fs_umount

# kill -9 while clones and copy-on-write writes run; then fsck
env --default-signal=INT,TERM "$K" -f "$POOL" "$MNT" >"$WORK/daemon.out" 2>&1 &
dpid=$!
wait_until 10 is_mounted || abort_test "kmemfs -f mounts"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$MNT/src"
( n=0; while :; do n=$((n + 1)); cp "$MNT/src" "$MNT/c$((n % 4))" 2>/dev/null || break
	dd if=/dev/urandom of="$MNT/c$((n % 4))" bs=4096 count=3 seek=$((n % 4000)) conv=notrunc status=none 2>/dev/null || break; done ) &
lpid=$!
sleep 2
kill -KILL $dpid
wait $dpid 2>/dev/null
wait $lpid 2>/dev/null
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"
timeout 120 "$FSCK" -n "$POOL" >"$WORK/fsck.out" 2>&1
check_eq "$?" 0 "fsck.kmemfs -n after kill -9 during clones: every page reference count right ($(tail -n 1 "$WORK/fsck.out"))"
finish
