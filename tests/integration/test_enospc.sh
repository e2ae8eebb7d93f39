#!/bin/bash
# test_enospc.sh -- a full 64 MiB filesystem: writes fail with ENOSPC, nothing
# crashes, the daemon keeps serving, and removing files makes room again.
. "$(dirname "$0")/lib.sh" "$@"
# /dev/shm: the small-file fill does thousands of metadata operations
fs_setup 64M "" /dev/shm
MiB=1048576
echo keep >"$MNT/keep"
head -c $((2 * MiB)) /dev/urandom >"$WORK/ref"
cp "$WORK/ref" "$MNT/before"
head -c $((3 * MiB + 20 * 1024)) /dev/zero >"$MNT/spare" # not whole 1 MiB requests

out=$(probe fill "$MNT/fill" 1024 2>&1)
written=$(sed -n 's/^written=//p' <<<"$out")
check_eq "$(sed -n 's/^errno=//p' <<<"$out")" ENOSPC "filling up ends in ENOSPC"
check "[ -n '$written' ] && [ '$written' -ge $((24 * MiB)) ] && [ '$written' -le $((64 * MiB)) ]" \
	"most of the space was usable before ENOSPC ($((${written:-0} / MiB)) MiB)"
avail=$(df -B1 --output=avail "$MNT" | tail -n 1 | tr -d ' ')
check_eq "$avail" 0 "df shows the filesystem full: the last write took what was left"
check "is_mounted && ls '$MNT' >/dev/null" "daemon still serves after ENOSPC"
check_eq "$(cat "$MNT/keep")" keep "old small file still readable"
check_cmd "old large file still intact" cmp "$MNT/before" "$WORK/ref"
check_eq "$(probe pread "$MNT/fill" 0 4 | od -An -tx1 | tr -d ' ')" 5a5a5a5a "the filled file reads back"
check "[ \$(stat -c %s '$MNT/fill') -le $written ]" "size of the filled file is not beyond what was written"
# one write larger than the space left stores what fits and returns that
# count, as tmpfs does; only the next write fails
rm -f "$MNT/spare"
wait_until 10 '[ $(df -B1 --output=avail $MNT | tail -n 1) -ge $((3 * MiB)) ]'
room=$(df -B1 --output=avail "$MNT" | tail -n 1 | tr -d ' ')
out=$(dd if=/dev/zero of="$MNT/short" bs=8M count=1 2>&1)
check "grep -q 'No space left on device' <<<'$out' && grep -q '^$room bytes' <<<'$out'" \
	"an 8 MiB write with $((room / 1024)) KiB free stores $room bytes, then ENOSPC ($(tr '\n' ' ' <<<"$out"))"
check_eq "$(stat -c %s "$MNT/short")" "$room" "... and the file holds them"
rm -f "$MNT/short"
# but the writeback of a shared mapping that gets only part of its pages
# must fail whole: the kernel takes a short WRITE from writeback as all
# written, and msync would report success for pages never stored (on tmpfs
# the store itself would fault: SIGBUS)
if on_kmemfs; then
	check "wait_until 10 '[ \$(df -B1 --output=avail $MNT | tail -n 1) -ge $room ]'" \
		"the $((room / 1024)) KiB are free again"
	expect_errno ENOSPC "msync of a 4 MiB shared mapping with $((room / 1024)) KiB free" \
		probe mmapwrite "$MNT/mapped" $((4 * MiB))
	rm -f "$MNT/mapped"
fi

expect_errno ENOSPC "fallocate beyond the free space" probe falloc "$MNT/pre" 0 0 $((128 * MiB))
check "[ \$(stat -c %s '$MNT/pre' 2>/dev/null || echo 0) -eq 0 ]" "a failed fallocate does not change the size"
out=$(probe fill "$MNT/more" 64 2>&1)
check_eq "$(sed -n 's/^errno=//p' <<<"$out")" ENOSPC "a second writer also gets ENOSPC"
# metadata operations may or may not fit; they must not fail any other way
for op in "mkdir $MNT/newdir 0755" "open $MNT/newfile wronly,creat" "setxattr $MNT/keep user.big $(head -c 2000 /dev/zero | tr '\0' x)"; do
	r=$(probe $op 2>&1 | sed -n 's/^errno=//p')
	check "[ -z '$r' ] || [ '$r' = ENOSPC ]" "on a full fs '${op%% *}' succeeds or fails with ENOSPC (${r:-OK})"
done

check_cmd "rm of the big files on a full fs" rm -f "$MNT/fill" "$MNT/more" "$MNT/pre"
check "wait_until 10 '[ \$(df -B1 --output=avail $MNT | tail -n 1) -ge $((20 * MiB)) ]'" "space comes back after rm"
check_cmd "writing 16 MiB after making room" dd if=/dev/urandom of="$WORK/ref2" bs=1M count=16 status=none
check_cmd "copy into the freed space" cp "$WORK/ref2" "$MNT/after"
check_cmd "the new file reads back" cmp "$MNT/after" "$WORK/ref2"
check_cmd "the old file is still intact" cmp "$MNT/before" "$WORK/ref"

# many small files until full: metadata exhaustion, then cleanup
mkdir -p "$MNT/small"
out=$(probe fillfiles "$MNT/small" 4096 100000 2>&1)
err=$(sed -n 's/^errno=//p' <<<"$out")
n=$(sed -n 's/^files=//p' <<<"$out")
check_eq "$err" ENOSPC "4 KiB files until full end in ENOSPC (after $n files)"
check_cmd "rm -rf of the small files" rm -rf "$MNT/small"
check_cmd "create after the cleanup" probe pwrite "$MNT/final" 0 final sync
check "is_mounted" "still mounted at the end"

# empty files until the metadata share is full: df -i says so then
if on_kmemfs; then
	mkdir -p "$MNT/empty"
	out=$(probe fillfiles "$MNT/empty" 0 500000 2>&1)
	check_eq "$(sed -n 's/^errno=//p' <<<"$out")" ENOSPC \
		"empty files until full end in ENOSPC (after $(sed -n 's/^files=//p' <<<"$out") files)"
	iavail() { df --output=iavail "$MNT" | tail -n 1 | tr -d ' '; }
	check_eq "$(iavail)" 0 "df -i shows no inode free once a create found no room"
	check_cmd "rm -rf of the empty files" rm -rf "$MNT/empty"
	check "wait_until 10 '[ \$(iavail) -gt 1000 ]'" "df -i shows inodes free again after the rm ($(iavail))"
	check_cmd "create after the cleanup" probe pwrite "$MNT/final2" 0 final sync
fi

# The pool file's own filesystem fills up part way through a write (another
# file took its space): the write fails with ENOSPC, as on a full disk, not EIO.
if on_kmemfs; then
	fs_umount && rm -f "$POOL"
	mkdir -p "$WORK/small"
	mount -t tmpfs -o size=80m kmemfs-it-small "$WORK/small" || abort_test "mount a small tmpfs"
	fs_setup 64M "" "$WORK/small"
	# leave 512 KiB of the tmpfs free: a 1 MiB write gets half of it
	free_kb=$(df -k --output=avail "$WORK/small" | tail -n 1 | tr -d ' ')
	dd if=/dev/zero of="$WORK/small/hog" bs=1K count=$((free_kb - 512)) status=none 2>/dev/null
	for flag in direct ""; do
		out=$(dd if=/dev/urandom of="$MNT/half$flag" bs=1M count=4 ${flag:+oflag=$flag} 2>&1)
		got=$(grep -q 'No space left on device' <<<"$out" && echo ENOSPC || head -n 1 <<<"$out")
		check_eq "$got" ENOSPC \
			"a ${flag:-page-cache} write the pool file's tmpfs can take only half of fails with ENOSPC"
	done
	avail_kb=$(df -k --output=avail "$WORK/small" | tail -n 1 | tr -d ' ')
	check "[ $avail_kb -ge 256 ]" "the failed writes gave the pages they had filled back to the tmpfs ($avail_kb KiB free of 512)"
	rm -f "$WORK/small/hog" "$MNT"/half*
	check_cmd "a write after the tmpfs has room again" dd if=/dev/urandom of="$MNT/again" bs=1M count=4 oflag=direct status=none
	check "is_mounted" "still mounted after the pool file's tmpfs was full"
fi
finish
