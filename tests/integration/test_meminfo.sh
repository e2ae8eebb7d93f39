#!/bin/bash
# test_meminfo.sh -- with the pool in /dev/shm, freed space goes back to the host:
# after writing 256 MiB and removing it, Shmem in /proc/meminfo drops by at least
# 200 MiB (free 4 MiB units are hole-punched in the pool file); a file punched
# every other 64 KiB gives that memory back too (freed pages are punched).
. "$(dirname "$0")/lib.sh" "$@"
fs_setup 512M "" /dev/shm
shmem_kib() { awk '/^Shmem:/ { print $2 }' /proc/meminfo; }

sleep 1
s0=$(shmem_kib)
dd if=/dev/urandom of="$MNT/blob" bs=1M count=256 conv=fsync status=none
check_eq "$(stat -c %s "$MNT/blob")" 268435456 "256 MiB written"
s1=$(shmem_kib)
note "Shmem: before ${s0} kB, after writing ${s1} kB"
on_kmemfs && note "pool file: $(du -k "$POOL" | cut -f1) KiB allocated of $(($(stat -c %s "$POOL") / 1024)) KiB"
rm "$MNT/blob"
sync
dropped() { echo $(((s1 - $(shmem_kib)) / 1024)); }
wait_until 20 '[ $(dropped) -ge 200 ]'
s2=$(shmem_kib)
note "Shmem after rm: ${s2} kB"
check "[ $(((s1 - s2) / 1024)) -ge 200 ]" "Shmem dropped by $(((s1 - s2) / 1024)) MiB after rm (want >= 200)"
on_kmemfs && note "pool file after rm: $(du -k "$POOL" | cut -f1) KiB allocated"

# the space is reusable after being given back
check_cmd "write 64 MiB into the returned space" dd if=/dev/zero of="$MNT/again" bs=1M count=64 conv=fsync status=none
check_eq "$(tr -d '\0' <"$MNT/again" | wc -c)" 0 "reused pages read what was written (zeros), not old data"

# a file punched every other 64 KiB gives that memory back at once, although
# no 4 MiB unit becomes wholly free (freed pages are hole-punched one by one)
if on_kmemfs; then
	head -c 32M /dev/urandom >"$WORK/orig"
	cp "$WORK/orig" "$MNT/holey"
	cp "$WORK/orig" "$WORK/expect"
	sync
	k0=$(du -k "$POOL" | cut -f1)
	r0=$("$BIN_DIR/kmemfsctl" stat --json "$MNT" | jq .pages_released)
	for ((off = 0; off < 32 * 1048576; off += 131072)); do
		fallocate -p -o $off -l 65536 "$MNT/holey" || break
		dd if=/dev/zero of="$WORK/expect" bs=64k seek=$((off / 65536)) count=1 \
			conv=notrunc status=none
	done
	# the last punch's pages go back just after its reply
	released() { echo $(($("$BIN_DIR/kmemfsctl" stat --json "$MNT" | jq .pages_released) - r0)); }
	wait_until 5 '[ $(released) -ge 4096 ]'
	k1=$(du -k "$POOL" | cut -f1)
	r1=$(($(released) + r0))
	note "pool file: ${k0} KiB before punching half of 32 MiB, ${k1} KiB after"
	check "[ $((k0 - k1)) -ge $((15 * 1024)) ]" \
		"pool file gave back $(((k0 - k1) / 1024)) MiB of the 16 MiB punched (want >= 15)"
	check "[ $((r1 - r0)) -ge 4096 ]" "kmemfsctl counts $((r1 - r0)) pages handed back (want >= 4096)"
	check_cmd "what was not punched is intact, the holes read zeros" cmp "$WORK/expect" "$MNT/holey"
	# write into the holes again: the pages come back with the new data
	dd if="$WORK/orig" of="$MNT/holey" bs=64k count=8 conv=notrunc,fsync status=none
	dd if="$WORK/orig" of="$WORK/expect" bs=64k count=8 conv=notrunc status=none
	check_cmd "rewritten holes read the new data" cmp "$WORK/expect" "$MNT/holey"
fi
finish
