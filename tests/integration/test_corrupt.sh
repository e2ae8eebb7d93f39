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
check_eq "$(daemon_pids)" "" "no daemon left running"
finish
