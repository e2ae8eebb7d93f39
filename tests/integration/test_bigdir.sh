#!/bin/bash
# test_bigdir.sh -- one directory with 100k entries: create, lookup (in another
# order), readdir count, unlink all; each phase timed and bounded.
. "$(dirname "$0")/lib.sh" "$@"
watchdog 400
# the pool lives in /dev/shm: on a disk-backed pool file each create/unlink costs
# an msync (~5 ms), and 100k of them would take many minutes (timed below)
fs_setup 512M "" /dev/shm
N=${KMEMFS_BIGDIR_ENTRIES:-100000}
mkdir "$MNT/big"

start=$SECONDS
out=$(probe bigdir "$MNT/big" "$N" 2>&1)
rc=$?
elapsed=$((SECONDS - start))
note "bigdir: $out"
if [ $rc -eq 0 ]; then
	pass "create, lookup, readdir ($N entries counted) and unlink of $N entries"
else
	fail "create, lookup, readdir and unlink of $N entries" "$out"
fi
check "[ $elapsed -le 180 ]" "the $N-entry cycle finished in ${elapsed}s (limit 180s)"
check_eq "$(ls -A "$MNT/big" | wc -l)" 0 "the directory is empty afterwards"
check_eq "$(stat_field "$MNT/big" nlink)" 2 "nlink of the emptied directory"
expect_errno OK "rmdir of the emptied directory" probe rmdir "$MNT/big"

# the same through everyday tools, on a smaller scale: xargs touch, ls, find, rm
mkdir "$MNT/tools"
start=$SECONDS
(cd "$MNT/tools" && seq -f 'f%06g' 1 20000 | xargs touch)
check_eq "$(ls -f "$MNT/tools" | grep -c '^f')" 20000 "ls -f sees 20000 files made by touch"
check_eq "$(find "$MNT/tools" -type f -name 'f*5' | wc -l)" 2000 "find filters by name over 20000 entries"
rm -rf "$MNT/tools"
check "[ ! -e '$MNT/tools' ]" "rm -rf of a 20000-entry directory"
note "20000 entries with touch/ls/find/rm: $((SECONDS - start))s"

# the same cycle, smaller, on a pool file on disk ($TMPDIR): report the cost
fs_umount
rm -f "$POOL" # the /dev/shm pool: cleanup only knows the last one (64 MiB leaked a run)
fs_create 128M "${KMEMFS_TEST_POOL_DIR:-$WORK}"
fs_mount || abort_test "mount of a disk-backed pool"
mkdir "$MNT/disk"
start=$SECONDS
out=$(probe bigdir "$MNT/disk" 2000 2>&1)
rc=$?
note "bigdir on a pool in ${KMEMFS_TEST_POOL_DIR:-${TMPDIR:-/tmp}}: $out"
check "[ $rc -eq 0 ] && [ $((SECONDS - start)) -le 150 ]" "2000-entry cycle on a disk-backed pool (an msync per persist) within 150s ($((SECONDS - start))s)"
finish
