#!/bin/bash
# test_exercise.sh -- random file operations checked byte for byte against a
# copy kept in memory (fsexercise.c): buffered, O_DIRECT and mmap I/O,
# truncate, fallocate and punch, copy_file_range clones, SEEK_DATA/SEEK_HOLE.
# Two exercisers run at once, so their allocations interleave, beside four
# threads that share one file in stripes that meet inside pages, and two
# namespace exercisers (nsexercise.c: create, mkdir, unlink, rmdir, link,
# symlink, rename with its flags, each errno and link count checked against
# a model tree, directories listed and stat'ed); then the
# files must survive a remount unchanged and fsck.kmemfs must find the pool
# clean. Then a third one on a filesystem too small for its files, where an
# operation refused with ENOSPC must have changed nothing (and a copy that
# stopped short must have copied what it said). Last, kill -9 of the daemon
# in the middle of both kinds of exercise: fsck.kmemfs must find the pool
# clean as the kill left it, and every file must read. Each run draws new seeds
# (printed); KMEMFS_FX_SEEDS="S1 S2 S3" replays.
. "$(dirname "$0")/lib.sh" "$@"
test_tool fsexercise || abort_test "cannot build fsexercise"
test_tool nsexercise || abort_test "cannot build nsexercise"
FX=$WORK/fsexercise
NSX=$WORK/nsexercise
OPS=${KMEMFS_FX_OPS:-12000}
watchdog 400 # the ASan build takes about two minutes
read -r seed1 seed2 seed3 seed4 seed5 seed6 seed7 <<<"${KMEMFS_FX_SEEDS:-$(od -An -tu4 -N28 /dev/urandom | tr -s "\n" " ")}"
fs_setup 1G "" /dev/shm

mkdir "$MNT/one" "$MNT/two" "$MNT/ns5" "$MNT/ns6"
"$FX" -s "$seed1" -n "$OPS" -o "$WORK/shadow1" "$MNT/one" >"$WORK/fx1.out" 2>&1 &
p1=$!
"$FX" -s "$seed2" -n "$OPS" -o "$WORK/shadow2" "$MNT/two" >"$WORK/fx2.out" 2>&1 &
p2=$!
"$FX" -T 4 -s "$seed4" -n $((OPS / 2)) "$MNT" >"$WORK/fx4.out" 2>&1 &
p4=$!
"$NSX" -s "$seed5" -n $((OPS / 2)) "$MNT/ns5" >"$WORK/fx5.out" 2>&1 &
p5=$!
"$NSX" -s "$seed6" -n $((OPS / 2)) "$MNT/ns6" >"$WORK/fx6.out" 2>&1 &
p6=$!
wait $p1; rc1=$?
wait $p2; rc2=$?
wait $p4; rc4=$?
wait $p5; rc5=$?
wait $p6; rc6=$?
fx_result() { # RC SEED OUTPUT
	if [ "$1" -eq 0 ]; then
		pass "seed $2: $(tail -n 1 "$3" | sed 's/^[a-z]*exercise: //'), every check against the in-memory copy matched"
	else
		case $1 in
		1) why="random operations found a difference" ;;
		2) why="the exerciser could not set up" ;;
		*) why="the exerciser ended with status $1 (a sanitizer's report or a crash)" ;;
		esac
		fail "seed $2: $why (replay: KMEMFS_FX_SEEDS=\"$seed1 $seed2 $seed3 $seed4 $seed5 $seed6 $seed7\")" "$(tail -n 30 "$3")"
	fi
}
fx_result $rc1 "$seed1" "$WORK/fx1.out"
fx_result $rc2 "$seed2" "$WORK/fx2.out"
fx_result $rc4 "$seed4 (4 threads, one file)" "$WORK/fx4.out"
fx_result $rc5 "$seed5 (namespace)" "$WORK/fx5.out"
fx_result $rc6 "$seed6 (namespace, at the same time)" "$WORK/fx6.out"
manifest "$MNT/ns5" >"$WORK/ns5.before"
manifest "$MNT/ns6" >"$WORK/ns6.before"

fs_remount || abort_test "remount"
check_eq "$(manifest "$MNT/ns5")" "$(cat "$WORK/ns5.before")" "after a remount, the namespace tree of seed $seed5 is the same (names, types, links, inodes, times)"
check_eq "$(manifest "$MNT/ns6")" "$(cat "$WORK/ns6.before")" "after a remount, the namespace tree of seed $seed6 is the same"
for n in 1 2; do
	d=$([ $n = 1 ] && echo one || echo two)
	s=$([ $n = 1 ] && echo "$seed1" || echo "$seed2")
	for f in a b; do
		[ -f "$WORK/shadow$n.$f" ] || continue
		check_cmd "after a remount, file $f of seed $s is what was written" \
			cmp "$MNT/$d/fx.$s.$f" "$WORK/shadow$n.$f"
	done
done
fsck_clean() { # WHEN
	on_kmemfs || return 0
	fs_umount || abort_test "unmount"
	timeout 120 "$BIN_DIR/fsck.kmemfs" -n "$POOL" >"$WORK/fsck.out" 2>&1
	check_eq "$?" 0 "fsck.kmemfs -n: clean $1 ($(tail -n 1 "$WORK/fsck.out"))"
	rm -f "$POOL"
}
fsck_clean "after the exercise"
if ! on_kmemfs; then
	umount "$MNT" && umount "$WORK/backing" || abort_test "unmount the tmpfs"
fi

# a 64 MiB filesystem (40 MiB for data) and two files of up to 64 MiB each
fs_setup 64M "" /dev/shm
# leave 16 MiB free, so that the files' up to 128 MiB surely run into the end
avail_mb=$(($(df -B1 --output=avail "$MNT" | tail -n 1) / 1048576))
dd if=/dev/zero of="$MNT/filler" bs=1M count=$((avail_mb - 16)) status=none ||
	abort_test "cannot write the $((avail_mb - 16)) MiB filler"
"$FX" -E -S $((64 * 1024 * 1024)) -s "$seed3" -n "$OPS" "$MNT" >"$WORK/fx3.out" 2>&1
fx_result $? "$seed3 (full filesystem)" "$WORK/fx3.out"
check "grep -q 'refused with ENOSPC' '$WORK/fx3.out' && ! grep -q '; 0 refused' '$WORK/fx3.out'" "the small filesystem did fill up"
fsck_clean "after operations on a full filesystem"
on_kmemfs || finish

# kill -9 in the middle of random data and namespace operations
is_mounted && umount "$MNT"
fs_create 512M /dev/shm
env --default-signal=INT,TERM "$BIN_DIR/kmemfs" -f "$POOL" "$MNT" >"$WORK/daemon.out" 2>&1 &
dpid=$!
wait_until 10 is_mounted || abort_test "kmemfs -f mounts" "$(cat "$WORK/daemon.out")"
mkdir "$MNT/data" "$MNT/names"
"$FX" -s "$seed7" -n 100000000 "$MNT/data" >"$WORK/fx7.out" 2>&1 &
p7=$!
"$NSX" -s "$seed7" -n 100000000 "$MNT/names" >"$WORK/fx8.out" 2>&1 &
p8=$!
sleep 3
check "kill -0 $p7 && kill -0 $p8 && [ -n \"\$(ls '$MNT/names')\" ]" "both exercisers are at work when the daemon is killed"
kill -KILL $dpid
wait $dpid 2>/dev/null
wait $p7 $p8 2>/dev/null # they fail now: the mount is dead
# (an exerciser in an mmap write dies of SIGBUS instead, without a count)
note "the kill came after $(sed -n 's/.*FAILED at operation \([0-9]*\).*/\1/p' "$WORK/fx7.out") data and $(sed -n 's/.*FAILED at operation \([0-9]*\).*/\1/p' "$WORK/fx8.out") namespace operations"
fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"
timeout 120 "$BIN_DIR/fsck.kmemfs" -n "$POOL" >"$WORK/fsck.out" 2>&1
check_eq "$?" 0 "seed $seed7: fsck.kmemfs -n clean as kill -9 during random operations left the pool ($(tail -n 1 "$WORK/fsck.out"))"
fs_mount || abort_test "mount after kill -9"
check "timeout 60 find '$MNT' -type f -exec cat {} + >/dev/null" "after the kill, every file reads"
fsck_clean "after the remount that followed the kill"
finish
