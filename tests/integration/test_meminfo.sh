#!/bin/bash
# test_meminfo.sh -- with the pool in /dev/shm, freed space goes back to the host:
# after writing 256 MiB and removing it, Shmem in /proc/meminfo drops by at least
# 200 MiB (free 4 MiB units are hole-punched in the pool file).
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
finish
