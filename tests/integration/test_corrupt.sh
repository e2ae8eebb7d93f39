#!/bin/bash
# test_corrupt.sh -- untrusted pools: a foreign file (random bytes, zeros, empty),
# a truncated pool, pools with random bytes flipped. The daemon must refuse with a
# one-line error and a non-zero exit, or mount and keep serving without crashing,
# with fsck.kmemfs able to report.
. "$(dirname "$0")/lib.sh" "$@"
kmemfs_only
K=$BIN_DIR/kmemfs
FSCK=$BIN_DIR/fsck.kmemfs
MiB=1048576

# try_mount LABEL POOLFILE: mount must fail cleanly; returns 0 if it did
try_mount_refused() {
	local label=$1 pool=$2 rc
	timeout 60 "$K" "$pool" "$MNT" >"$WORK/out" 2>&1
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -lt 124 ] && [ "$(grep -c . "$WORK/out")" -eq 1 ] && ! is_mounted; then
		pass "$label: mount refused with one line (exit $rc: $(head -c 120 "$WORK/out"))"
	else
		fail "$label: mount refused with a one-line error and non-zero exit" \
			"exit $rc, mounted: $(is_mounted && echo yes || echo no)" "$(head -n 10 "$WORK/out")"
		is_mounted && { fusermount3 -u "$MNT" || umount -l "$MNT"; }
	fi
}

# fsck_reports LABEL POOLFILE: fsck -n must answer with a real verdict, no crash
fsck_reports() {
	[ -x "$FSCK" ] || { fail "$1: fsck.kmemfs is built"; return; }
	timeout 120 "$FSCK" -n "$2" >"$WORK/fsck.out" 2>&1
	local rc=$?
	check "[ $rc -eq 4 ] || [ $rc -eq 8 ]" "$1: fsck -n reports the damage (exit $rc: $(tail -n 1 "$WORK/fsck.out" | head -c 100))"
}

head -c $((64 * MiB)) /dev/urandom >"$WORK/random.pool"
try_mount_refused "random bytes" "$WORK/random.pool"
check "! grep -q '[^[:print:]]' '$WORK/out'" "random bytes: the message is printable text"
fsck_reports "random bytes" "$WORK/random.pool"
truncate -s $((64 * MiB)) "$WORK/zero.pool"
try_mount_refused "all zeros" "$WORK/zero.pool"
fsck_reports "all zeros" "$WORK/zero.pool"
: >"$WORK/empty.pool"
try_mount_refused "empty file" "$WORK/empty.pool"
mkdir "$WORK/dirpool"
try_mount_refused "a directory as pool" "$WORK/dirpool"
check_eq "$(daemon_pids)" "" "no daemon left running"

# a real pool with content, then damaged copies of it
fs_create 64M
fs_mount || abort_test "mount"
mkdir -p "$MNT/d/e"
for i in $(seq 1 50); do head -c $((i * 3001)) /dev/urandom >"$MNT/d/f$i"; done
for i in $(seq 1 20); do setfattr -n user.i -v $i "$MNT/d/e" 2>/dev/null; touch "$MNT/d/e/g$i"; done
head -c $((8 * MiB)) /dev/urandom >"$MNT/big"
fs_umount || abort_test "unmount"
GOOD=$POOL
size=$(stat -c %s "$GOOD")

cp "$GOOD" "$WORK/trunc.pool"
truncate -s $((size / 2)) "$WORK/trunc.pool"
POOL=$WORK/trunc.pool
timeout 60 "$K" "$POOL" "$MNT" >"$WORK/out" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
	check "[ $rc -lt 124 ] && [ \$(grep -c . '$WORK/out') -eq 1 ] && ! is_mounted" \
		"truncated pool: mount refused with one line (exit $rc: $(head -c 120 "$WORK/out"))"
	check "grep -q 'truncated' '$WORK/out'" "... that says the pool file is truncated"
else
	fail "truncated pool: refused" "mounted a pool cut to half its size"
	fs_umount
fi
fsck_reports "truncated pool" "$WORK/trunc.pool"

# A bitmap of libpmemobj's first run (small objects) with every bit set:
# pmemobj_check passes it and pmemobj_next loops for ever on it. Layout of
# PMDK 1.12: heap_offset at 5136, a 1 KiB heap header, then zone 0 (magic,
# chunk headers from +64, chunks from +512 KiB); a run chunk starts with
# 16 bytes (block size, alignment) before its bitmap.
heap_off=$(od -A n -t u8 -j 5136 -N 8 "$GOOD" | tr -d ' ')
zone=$((heap_off + 1024))
if [ "$(od -A n -t x4 -j $zone -N 4 "$GOOD" | tr -d ' ')" = c3f0a2d2 ] &&
	[ "$(od -A n -t u2 -j $((zone + 64)) -N 2 "$GOOD" | tr -d ' ')" = 4 ]; then
	cp "$GOOD" "$WORK/loop.pool"
	printf '\377\377\377\377\377\377\377\377' |
		dd of="$WORK/loop.pool" bs=1 seek=$((zone + 512 * 1024 + 16)) conv=notrunc status=none
	cp "$WORK/loop.pool" "$WORK/loop.copy"
	try_mount_refused "a run bitmap that makes libpmemobj's object walk loop" "$WORK/loop.pool"
	check "grep -q 'loops' '$WORK/out'" "... and says the object list loops"
	check "cmp -s '$WORK/loop.pool' '$WORK/loop.copy'" "... and leaves the pool as it was"
	fsck_reports "a looping object walk" "$WORK/loop.pool"
	rm -f "$WORK/loop.pool" "$WORK/loop.copy"
else
	fail "libpmemobj's heap starts with a run chunk where this test expects one" \
		"heap_offset $heap_off: the PMDK layout changed; update the test"
fi

# A redo-log entry in an unused lane with its type byte set: pmemobj_check
# itself loops for ever on it (found by flipping bytes). PMDK 1.12: the lanes
# start at lanes_offset (pool offset 5120), 3 KiB each; a lane begins with its
# internal redo log (capacity 192 at +16), whose first entry follows the
# 64-byte log header, and the entry's top byte holds its type.
lanes_off=$(od -A n -t u8 -j 5120 -N 8 "$GOOD" | tr -d ' ')
entry=$((lanes_off + 1000 * 3072 + 71))
if [ "$(od -A n -t u8 -j 5128 -N 8 "$GOOD" | tr -d ' ')" = 1024 ] &&
	[ "$(od -A n -t u8 -j $((lanes_off + 1000 * 3072 + 16)) -N 8 "$GOOD" | tr -d ' ')" = 192 ] &&
	[ "$(od -A n -t u8 -j $((entry - 7)) -N 8 "$GOOD" | tr -d ' ')" = 0 ]; then
	cp "$GOOD" "$WORK/lane.pool"
	printf '\375' | dd of="$WORK/lane.pool" bs=1 seek=$entry conv=notrunc status=none
	cp "$WORK/lane.pool" "$WORK/lane.copy"
	t0=$(date +%s)
	try_mount_refused "a lane's redo log that makes pmemobj_check loop" "$WORK/lane.pool"
	check "grep -q 'does not end' '$WORK/out'" "... and says the check does not end ($(($(date +%s) - t0)) s)"
	check "cmp -s '$WORK/lane.pool' '$WORK/lane.copy'" "... and leaves the pool as it was"
	fsck_reports "a looping pmemobj_check" "$WORK/lane.pool"
	# a parent that ignores SIGXCPU passes that on: the check must still end
	bash -c "trap '' XCPU; exec timeout 60 '$FSCK' -n '$WORK/lane.pool'" >"$WORK/fsck.out" 2>&1
	rc=$?
	check "[ $rc -eq 4 ] && grep -q 'does not end' '$WORK/fsck.out'" \
		"... also when fsck's parent ignores SIGXCPU (exit $rc: $(head -c 100 "$WORK/fsck.out"))"
	rm -f "$WORK/lane.pool" "$WORK/lane.copy"
else
	fail "lane 1000 of a 1024-lane pool has an empty internal redo log where this test expects one" \
		"lanes_offset $lanes_off: the PMDK layout changed; update the test"
fi

# flip_bytes FILE SEED COUNT LIMIT: overwrite COUNT bytes at offsets < LIMIT
flip_bytes() {
	awk -v seed="$2" -v n="$3" -v lim="$4" 'BEGIN { srand(seed); for (i = 0; i < n; i++)
		printf "%d %d\n", int(rand() * lim), int(rand() * 255) + 1 }' |
		while read -r off val; do
			printf "$(printf '\\%03o' "$val")" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
		done
}
# seed:count:limit -- header only, first 8 MiB (pmemobj metadata), anywhere
for spec in 1:16:4096 2:64:$((8 * MiB)) 3:256:$((8 * MiB)) 4:512:$size; do
	IFS=: read -r seed count limit <<<"$spec"
	label="$count bytes flipped below $((limit / 1024)) KiB (seed $seed)"
	POOL=$WORK/flip$seed.pool
	cp "$GOOD" "$POOL"
	flip_bytes "$POOL" "$seed" "$count" "$limit"
	cp "$POOL" "$WORK/flipped.copy"
	timeout 60 "$K" "$POOL" "$MNT" >"$WORK/out" 2>&1
	rc=$?
	mount_rc=$rc
	if [ $rc -ne 0 ]; then
		check "[ $rc -lt 124 ] && [ \$(grep -c . '$WORK/out') -eq 1 ] && ! is_mounted" \
			"$label: refused with one line (exit $rc: $(head -c 100 "$WORK/out"))"
		check "cmp -s '$POOL' '$WORK/flipped.copy'" "$label: the refused mount left the pool as it was"
	elif wait_until 10 is_mounted; then
		# mounted: reading everything may give errors but must not kill the daemon
		timeout 60 find "$MNT" -type f -exec cat {} + >/dev/null 2>&1
		timeout 60 ls -lR "$MNT" >/dev/null 2>&1
		timeout 30 getfattr -R -d "$MNT" >/dev/null 2>&1
		check "[ -n \"\$(daemon_pids)\" ] && stat -f '$MNT' >/dev/null" \
			"$label: mounted, and the daemon survives reading everything"
		fs_umount
		check_eq "$(daemon_pids)" "" "$label: daemon gone after unmount"
	else
		fail "$label: mount exit 0 but no mount appeared" "$(cat "$WORK/out")"
	fi
	if [ -x "$FSCK" ]; then
		timeout 120 "$FSCK" -n "$POOL" >"$WORK/fsck.out" 2>&1
		rc=$?
		check "[ $rc -eq 0 ] || [ $rc -eq 4 ] || [ $rc -eq 8 ]" \
			"$label: fsck -n gives a verdict without crashing (exit $rc: $(tail -n 1 "$WORK/fsck.out" | head -c 100))"
	fi
	if [ -n "${KMEMFS_TEST_SAVE_BAD:-}" ] && [ "$mount_rc" -ge 124 ]; then
		mkdir -p "$KMEMFS_TEST_SAVE_BAD" && cp "$WORK/flipped.copy" "$KMEMFS_TEST_SAVE_BAD/flip$seed.pool"
	fi
	rm -f "$POOL"
done
POOL=$GOOD

# -- fsck -y mends a damaged directory: what it named goes to /lost+found,
# data intact, and the pool mounts again
fs_create 64M
fs_mount || abort_test "mount"
mkdir -p "$MNT/keep/zz-subdir-in-damaged-dir"
head -c 200000 /dev/urandom >"$MNT/keep/zz-lonely-file-in-damaged-dir"
echo inner >"$MNT/keep/zz-subdir-in-damaged-dir/inner"
echo outside >"$MNT/outside"
want=$(md5sum <"$MNT/keep/zz-lonely-file-in-damaged-dir")
fs_umount || abort_test "unmount"
offs=$(grep -boa 'zz-lonely-file-in-damaged-dir' "$POOL" | cut -d: -f1)
if [ "$(echo "$offs" | grep -c .)" -eq 1 ]; then
	printf / | dd of="$POOL" bs=1 seek="$offs" conv=notrunc status=none
	try_mount_refused "a directory entry with a bad name" "$POOL"
	"$FSCK" -y "$POOL" >"$WORK/fsck.out" 2>&1
	rc=$?
	check_eq "$rc" 1 "fsck -y mends it (exit $rc: $(tail -n 1 "$WORK/fsck.out"))"
	"$FSCK" -n "$POOL" >"$WORK/fsck.out" 2>&1
	check_eq "$?" 0 "... and a second fsck -n finds it clean"
	if fs_mount; then
		found=$(for f in "$MNT"/lost+found/*; do [ -f "$f" ] && md5sum <"$f"; done)
		check "echo '$found' | grep -qx -- '$want'" "the lost file is in /lost+found with its data"
		# entries before the damaged one (in hash order) stay where they were
		check "cat '$MNT'/keep/*/inner '$MNT'/lost+found/*/inner 2>/dev/null | grep -qx inner" \
			"the subdirectory keeps its tree, in place or in /lost+found"
		check_eq "$(cat "$MNT/outside")" outside "the rest of the tree is untouched"
		check_eq "$(ls "$MNT/keep" | grep -c zz-lonely)" 0 "the damaged directory no longer names the file"
		fs_umount
	else
		fail "the mended pool mounts"
	fi
else
	fail "the test file's name is in the pool once" "found at: $offs"
fi

# -- every damaged pool that fsck -y says it mended mounts and checks clean:
# bytes flipped next to directory entries (found by their names)
fs_create 64M
fs_mount || abort_test "mount"
mkdir -p "$MNT/m/sub"
for i in $(seq 1 40); do
	echo "$i" >"$MNT/m/mend-entry-$i"
	mkdir "$MNT/m/sub/mend-entry-dir-$i"
	setfattr -n user.n -v "$i" "$MNT/m/mend-entry-$i"
done
fs_umount || abort_test "unmount"
MENDBASE=$POOL
grep -boa 'mend-entry-[a-z0-9-]*' "$MENDBASE" | cut -d: -f1 >"$WORK/names"
check "[ \$(grep -c . '$WORK/names') -ge 80 ]" "the entries' names are found in the pool ($(grep -c . "$WORK/names"))"
mended=0
for seed in 1 2 3 4 5 6 7 8; do
	cp "$MENDBASE" "$WORK/mend.pool"
	# 3 entries, 4 bytes each within 128 bytes of the name
	awk -v seed="$seed" 'BEGIN { srand(seed) } { off[NR] = $1 } END {
		for (k = 0; k < 3; k++) { o = off[int(rand() * NR) + 1]
			for (i = 0; i < 4; i++) printf "%d %d\n", o - 128 + int(rand() * 256), int(rand() * 255) + 1 } }' \
		"$WORK/names" | while read -r off val; do
			printf "$(printf '\\%03o' "$val")" | dd of="$WORK/mend.pool" bs=1 seek="$off" conv=notrunc status=none
		done
	"$FSCK" -y "$WORK/mend.pool" >"$WORK/fsck.out" 2>&1
	rc=$?
	if [ $rc -le 1 ]; then
		"$FSCK" -n "$WORK/mend.pool" >"$WORK/fsck.out" 2>&1
		check_eq "$?" 0 "seed $seed: after fsck -y (exit $rc), fsck -n finds the pool clean"
		POOL=$WORK/mend.pool
		check "fs_mount" "seed $seed: the mended pool mounts"
		is_mounted && { timeout 60 ls -lR "$MNT" >/dev/null 2>&1; fs_umount; }
		POOL=$GOOD
		[ $rc -eq 1 ] && mended=$((mended + 1))
	else
		check "[ $rc -eq 4 ]" "seed $seed: fsck -y says what it could not mend (exit $rc: $(tail -n 1 "$WORK/fsck.out" | head -c 100))"
	fi
done
check "[ $mended -ge 4 ]" "fsck -y mended at least 4 of the 8 damaged pools ($mended)"
rm -f "$WORK/mend.pool"
check_eq "$(daemon_pids)" "" "no daemon left running"
finish
