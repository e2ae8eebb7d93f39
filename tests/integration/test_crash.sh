#!/bin/bash
# test_crash.sh -- kill -9 of the daemon during a write loop, then remount:
# fsck.kmemfs -n says clean (one FUSE op = one transaction), everything fsynced
# before the kill reads back exactly, and nothing is unreadable.
. "$(dirname "$0")/lib.sh" "$@"
kmemfs_only
K=$BIN_DIR/kmemfs
FSCK=$BIN_DIR/fsck.kmemfs
fs_create 256M

# the same writer for both rounds: files of varying size, each logged after its
# fsync; every third one is renamed, every fifth removed (logged before and after)
writer() {
	local round=$1 i=0 size
	mkdir -p "$MNT/w$round" || return
	while :; do
		i=$((i + 1))
		size=$(((i * 7919) % 300000 + 1))
		probe patwrite "$MNT/w$round/f$i" $size $((round * 100000 + i)) >/dev/null 2>&1 || return
		echo "w $round $i $size" >>"$WORK/log"
		# R/D before the call, r/d after: the kill can land in between,
		# once the rename or unlink is done but not yet logged
		if [ $((i % 3)) -eq 0 ]; then
			echo "R $round $i" >>"$WORK/log"
			mv "$MNT/w$round/f$i" "$MNT/w$round/r$i" 2>/dev/null || return
			echo "r $round $i" >>"$WORK/log"
		fi
		if [ $((i % 5)) -eq 0 ]; then
			echo "D $round $i" >>"$WORK/log"
			rm "$MNT/w$round/f$i" "$MNT/w$round/r$i" 2>/dev/null
			echo "d $round $i" >>"$WORK/log"
		fi
	done
}

# verify_log: every logged file has its final name and exact content; a rename
# or unlink the kill interrupted (R or D logged, r or d not) may have happened
# or not: either name is right, and a file that was being removed may be gone
verify_log() {
	awk '
		{ k = $2 " " $3 }
		$1 == "w" { size[k] = $4; name[k] = "f" $3 }
		$1 == "R" { alt[k] = "r" $3 }
		$1 == "r" { name[k] = "r" $3; delete alt[k] }
		$1 == "D" { maygo[k] = 1 }
		$1 == "d" { delete size[k] }
		END {
			for (k in size) {
				split(k, p, " ")
				print p[1], p[2], name[k], size[k], (k in alt) ? alt[k] : "-", (k in maygo) ? 1 : 0
			}
		}
	' "$WORK/log" | while read -r round i nm size other maygo; do
		probe patcheck "$MNT/w$round/$nm" "$size" $((round * 100000 + i)) >/dev/null 2>&1 && continue
		[ "$other" != - ] && probe patcheck "$MNT/w$round/$other" "$size" \
			$((round * 100000 + i)) >/dev/null 2>&1 && continue
		[ "$maygo" = 1 ] && [ ! -e "$MNT/w$round/$nm" ] &&
			{ [ "$other" = - ] || [ ! -e "$MNT/w$round/$other" ]; } && continue
		echo "w$round/$nm (size $size) wrong or missing"
	done
}

: >"$WORK/log"
for round in 1 2; do
	env --default-signal=INT,TERM "$K" -f "$POOL" "$MNT" >"$WORK/daemon.out" 2>&1 &
	dpid=$!
	wait_until 10 is_mounted || abort_test "round $round: kmemfs -f mounts" "$(cat "$WORK/daemon.out")"
	writer $round &
	wpid=$!
	# an open O_TMPFILE and an unlinked open file: the kill leaves both
	# inodes with no name, for the next mount to free
	# (the helper itself in the background, not the probe function: $! must
	# be the process to kill)
	"$FSPROBE" tmpfile "$MNT" 0600 $((4 << 20)) 5 - - hold >"$WORK/held.out" 2>&1 &
	hpid=$!
	probe patwrite "$MNT/gone$round" $((2 << 20)) 5 >/dev/null 2>&1
	sleep 1000 <"$MNT/gone$round" &
	opid=$!
	wait_until 10 "[ \"\$(readlink /proc/$opid/fd/0)\" = '$MNT/gone$round' ]"
	rm -f "$MNT/gone$round"
	sleep $((round + 1))
	check "grep -q held '$WORK/held.out'" "round $round: an O_TMPFILE is open when the daemon is killed"
	check "[ -e /proc/$opid/fd/0 ] && ! [ -e '$MNT/gone$round' ]" "round $round: so is a file unlinked while open"
	kill -KILL $dpid
	wait $dpid 2>/dev/null
	wait $wpid 2>/dev/null
	kill -KILL $hpid $opid 2>/dev/null
	wait $hpid $opid 2>/dev/null
	n=$(grep -c "^w $round " "$WORK/log")
	note "round $round: killed the daemon after $n fsynced files"
	check "[ $n -ge 5 ]" "round $round: the write loop made progress before the kill ($n files)"
	check "! kill -0 $dpid 2>/dev/null" "round $round: the daemon is dead"
	# the dead mount still sits on $MNT: detach it
	fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"
	check "! is_mounted" "round $round: the dead mount is detached"
	if [ -x "$FSCK" ]; then
		sum=$(sha256sum <"$POOL")
		timeout 120 "$FSCK" -n "$POOL" >"$WORK/fsck.out" 2>&1
		rc=$?
		check_eq "$rc" 0 "round $round: fsck.kmemfs -n after kill -9 says clean ($(tail -n 1 "$WORK/fsck.out"))"
		check_eq "$(sha256sum <"$POOL")" "$sum" "round $round: fsck.kmemfs -n changed no byte of the pool the kill left"
	else
		fail "round $round: fsck.kmemfs is built"
	fi
	fs_mount || abort_test "round $round: remount after kill -9" "$(cat "$WORK/mount.out")"
	check_eq "$(used_inodes)" "$(find "$MNT" | wc -l)" "round $round: the mount freed the inodes that had no name (df -i counts only named ones)"
	bad=$(verify_log)
	check_eq "$bad" "" "round $round: every file fsynced before the kill reads back exactly"
	check "timeout 60 find '$MNT' -type f -exec cat {} + >/dev/null" "round $round: every file (also half-written ones) is readable"
	check_cmd "round $round: the remounted filesystem takes writes" probe patwrite "$MNT/after$round" 1000000 7
	check_cmd "round $round: and reads them back" probe patcheck "$MNT/after$round" 1000000 7
	fs_umount || abort_test "round $round: unmount"
done
if [ -x "$FSCK" ]; then
	timeout 120 "$FSCK" -n "$POOL" >"$WORK/fsck.out" 2>&1
	check_eq "$?" 0 "fsck.kmemfs -n after the crash rounds and a clean unmount"
fi
finish
