#!/bin/bash
# test_racer.sh -- threads racing random operations on the same dozen names
# (fsracer.c): create, write, unlink, rename with its flags, link, mkdir,
# rmdir, symlink, truncate, xattrs, O_TMPFILE with linkat, copy_file_range,
# punch, listings; each thread keeps files open across operations and uses
# them after their names are gone. No errno may be one the operation cannot
# give, and the daemon must neither crash nor hang (the watchdog). Then:
# fsck.kmemfs finds the pool clean, a remount shows a tree every file of
# which reads, and removing everything gives back all the space and inodes
# (nothing leaked by a race between a lookup and a forget, an unlink and a
# release, a rename and an open). Last, kill -9 of the daemon during a race:
# fsck.kmemfs must find the pool clean as the kill left it, and the next
# mount must free what only open files held. Each run draws a new seed (printed);
# KMEMFS_RACER_SEED replays one.
. "$(dirname "$0")/lib.sh" "$@"
test_tool fsracer || abort_test "cannot build fsracer"
SECS=${KMEMFS_RACER_SECS:-15}
seed=${KMEMFS_RACER_SEED:-$(od -An -tu4 -N4 /dev/urandom | tr -d ' ')}
fs_setup 512M "" /dev/shm

used0=$(used_bytes) inodes0=$(used_inodes)
mkdir "$MNT/race"
"$WORK/fsracer" -s "$seed" -t "$SECS" -T 4 "$MNT/race" >"$WORK/racer.out" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
	pass "seed $seed: $(tail -n 1 "$WORK/racer.out" | sed 's/^fsracer: //')"
else
	fail "seed $seed: fsracer ended with status $rc (replay: KMEMFS_RACER_SEED=$seed)" \
		"$(tail -n 20 "$WORK/racer.out")"
fi
check "is_mounted && stat '$MNT/race' >/dev/null" "the daemon is still serving"

if on_kmemfs; then
	fs_umount || abort_test "unmount after the race"
	timeout 120 "$BIN_DIR/fsck.kmemfs" -n "$POOL" >"$WORK/fsck.out" 2>&1
	check_eq "$?" 0 "fsck.kmemfs -n: clean after the race ($(tail -n 1 "$WORK/fsck.out"))"
	fs_mount || abort_test "remount after the race" "$(cat "$WORK/mount.out")"
fi
check "timeout 60 find '$MNT/race' -type f -exec cat {} + >/dev/null" "after a remount every file reads"
note "left: $(find "$MNT/race" | wc -l) names, $(($(used_bytes) - used0)) bytes"
rm -rf "$MNT/race"
# (the kernel forgets the last inodes asynchronously)
wait_until 10 "[ \$(used_bytes) -le $used0 ] && [ \$(used_inodes) -eq $inodes0 ]"
check_eq "$(used_bytes) bytes, $(used_inodes) inodes" "$used0 bytes, $inodes0 inodes" \
	"removing everything gives back every byte and inode"
on_kmemfs || finish
fs_umount || abort_test "unmount"
timeout 120 "$BIN_DIR/fsck.kmemfs" -n "$POOL" >"$WORK/fsck.out" 2>&1
check_eq "$?" 0 "fsck.kmemfs -n: clean once everything is removed ($(tail -n 1 "$WORK/fsck.out"))"

# kill -9 of the daemon in the middle of a race: files open, unlinked,
# O_TMPFILEs, renames half way through the kernel
env --default-signal=INT,TERM "$BIN_DIR/kmemfs" -f "$POOL" "$MNT" >"$WORK/daemon.out" 2>&1 &
dpid=$!
wait_until 10 is_mounted || abort_test "kmemfs -f mounts" "$(cat "$WORK/daemon.out")"
mkdir "$MNT/race"
"$WORK/fsracer" -s "$((seed + 1))" -t 60 -T 4 "$MNT/race" >"$WORK/racer2.out" 2>&1 &
rpid=$!
sleep 4
check "kill -0 $rpid" "seed $((seed + 1)): the racers are at work when the daemon is killed"
kill -KILL $dpid
wait $dpid 2>/dev/null
wait $rpid 2>/dev/null # it fails now: the mount is dead
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"
timeout 120 "$BIN_DIR/fsck.kmemfs" -n "$POOL" >"$WORK/fsck.out" 2>&1
check_eq "$?" 0 "fsck.kmemfs -n: clean as the kill left the pool ($(tail -n 1 "$WORK/fsck.out"))"
fs_mount || abort_test "mount after kill -9" "$(cat "$WORK/mount.out")"
check "timeout 60 find '$MNT/race' -type f -exec cat {} + >/dev/null" "after the kill every file reads"
rm -rf "$MNT/race"
wait_until 10 "[ \$(used_bytes) -le $used0 ] && [ \$(used_inodes) -eq $inodes0 ]"
check_eq "$(used_bytes) bytes, $(used_inodes) inodes" "$used0 bytes, $inodes0 inodes" \
	"after the kill, removing everything gives back every byte and inode"
fs_umount || abort_test "unmount"
timeout 120 "$BIN_DIR/fsck.kmemfs" -n "$POOL" >"$WORK/fsck.out" 2>&1
check_eq "$?" 0 "fsck.kmemfs -n: clean at the end ($(tail -n 1 "$WORK/fsck.out"))"
finish
