# kmod-reclaim-fail.sh -- a unit the kernel will not give back: with kmemfs.ko's
# test hook fail_reclaim set, every RECLAIM fails with EBUSY as a real
# alloc_contig_range failure would. A write that needs a lent unit must get
# ENOSPC; the daemon stays up and counts the failure, earlier files are intact,
# the short file holds only the bytes written (or zeroes, never foreign data).
# With the hook cleared the same write succeeds; fsck is clean after unmount.
. /kmemfs/kmod-lib.sh

PARAM=/sys/module/kmemfs/parameters/fail_reclaim
# stat_json KEY -- a number from kmemfsctl stat --json
stat_json() { kmemfsctl stat "$MNT" --json | sed "s/.*\"$1\": \([0-9]*\).*/\1/"; }
# write_chunks FILE N -- FILE = N copies of /tmp/r8 (8 MiB); stops at the first
# failed cat, whose message stays in /tmp/write.err
write_chunks() {
	i=0
	while [ $i -lt "$2" ]; do
		cat /tmp/r8 2>/tmp/write.err || return 1
		i=$((i + 1))
	done >"$1"
}
# check_prefix NAME FILE -- every byte of FILE is the byte written there (copy
# i/8 MiB of /tmp/r8) or zero; a non-zero byte that differs is foreign data
check_prefix() {
	size=$(stat -c %s "$2")
	foreign=0 zeroes=0 c=0
	while [ $((c * 8388608)) -lt "$size" ]; do
		dd if="$2" bs=1M skip=$((c * 8)) count=8 2>/dev/null >/tmp/chunk
		cmp -l /tmp/chunk /tmp/r8 2>/dev/null >/tmp/cmp.out
		f=$(awk '$2 != 0' /tmp/cmp.out | wc -l)
		z=$(awk '$2 == 0' /tmp/cmp.out | wc -l)
		foreign=$((foreign + f)) zeroes=$((zeroes + z))
		c=$((c + 1))
	done
	echo "kmod-reclaim-fail: $2: $size bytes, $foreign foreign, $zeroes zeroed"
	[ "$foreign" -eq 0 ] || { fail "$1" "$2 holds $foreign bytes that were never written there"; exit 1; }
	pass "$1"
}
daemon_up() {
	pidof kmemfs >/dev/null && grep -q " $MNT fuse" /proc/mounts && ls "$MNT" >/dev/null ||
		{ cat /tmp/kmemfs.log; fail "$1" "the daemon died or the mount broke"; exit 1; }
}

run mkfs.kmemfs "$DEV" || { fail_out kmod-reclaim-fail-mkfs "mkfs.kmemfs $DEV"; exit 1; }
kmod_load
[ -e "$PARAM" ] && [ "$(cat "$PARAM")" = N ] || { fail kmod-reclaim-fail-param "$PARAM missing or set"; exit 1; }
# a small reserve: what is free and not lent fills first, then writes need reclaims
kmemfs -f -o reserve=4M "$DEV" "$MNT" >/tmp/kmemfs.log 2>&1 &
i=0
while ! grep -q " $MNT fuse" /proc/mounts && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q " $MNT fuse" /proc/mounts || { cat /tmp/kmemfs.log; fail kmod-reclaim-fail-mount "kmemfs -o reserve=4M $DEV $MNT with kmemfs.ko loaded"; exit 1; }

dd if=/dev/urandom of=/tmp/r8 bs=1M count=8 2>/dev/null
write_chunks "$MNT/before" 2 || { cat /tmp/write.err; fail kmod-reclaim-fail-before "writing 16 MiB"; exit 1; }
sync
before=$(md5sum <"$MNT/before" | cut -d' ' -f1)
free_kb=$(($(stat_json free_pages) * 4))
lent=$(($(stat_json lent_pages) / 1024))
recl0=$(stat_json units_reclaimed)
fails0=$(stat_json reclaim_failures)
m0=$(memfree)
# 64 MiB more than fits without taking a unit back
n=$(((free_kb / 1024 + 64) / 8))
echo "kmod-reclaim-fail: ${free_kb} kB free and not lent, $lent units lent, node 1 MemFree $m0 kB; writing $((n * 8)) MiB"
[ "$lent" -gt 16 ] || { fail kmod-reclaim-fail-mount "only $lent units lent"; exit 1; }

echo 1 >"$PARAM"
write_chunks "$MNT/big" "$n" && { fail kmod-reclaim-fail-enospc "writing $((n * 8)) MiB succeeded with fail_reclaim=1"; exit 1; }
sed 's/^/    /' /tmp/write.err
grep -q "No space left on device" /tmp/write.err ||
	{ fail kmod-reclaim-fail-enospc "the write failed, but not with ENOSPC: $(cat /tmp/write.err)"; exit 1; }
pass kmod-reclaim-fail-enospc
daemon_up kmod-reclaim-fail-daemon
pass kmod-reclaim-fail-daemon
fails1=$(stat_json reclaim_failures)
lent1=$(($(stat_json lent_pages) / 1024))
recl1=$(stat_json units_reclaimed)
echo "kmod-reclaim-fail: reclaim_failures $fails0 -> $fails1, units lent $lent -> $lent1, MemFree $(memfree) kB"
[ "$fails1" -gt "$fails0" ] || { fail kmod-reclaim-fail-stat "reclaim_failures $fails0 -> $fails1"; exit 1; }
[ "$lent1" -eq "$lent" ] && [ "$recl1" -eq "$recl0" ] ||
	{ fail kmod-reclaim-fail-stat "units lent $lent -> $lent1, reclaimed $recl0 -> $recl1 although nothing could be reclaimed"; exit 1; }
pass kmod-reclaim-fail-stat
sync
got=$(md5sum <"$MNT/before" | cut -d' ' -f1)
[ "$got" = "$before" ] || { fail kmod-reclaim-fail-intact "before: md5 $got, want $before"; exit 1; }
pass kmod-reclaim-fail-intact
check_prefix kmod-reclaim-fail-no-foreign "$MNT/big"

echo 0 >"$PARAM"
write_chunks "$MNT/big" "$n" || { sed 's/^/    /' /tmp/write.err; fail kmod-reclaim-fail-retry "writing $((n * 8)) MiB with fail_reclaim=0"; exit 1; }
sync
daemon_up kmod-reclaim-fail-retry
fails2=$(stat_json reclaim_failures)
[ "$fails2" -eq "$fails1" ] || { fail kmod-reclaim-fail-retry "reclaim_failures $fails1 -> $fails2 with the hook cleared"; exit 1; }
want=$(i=0; while [ $i -lt "$n" ]; do cat /tmp/r8; i=$((i + 1)); done | md5sum | cut -d' ' -f1)
got=$(md5sum <"$MNT/big" | cut -d' ' -f1)
[ "$got" = "$want" ] || { fail kmod-reclaim-fail-retry "big ($(stat -c %s "$MNT/big") bytes): md5 $got, want $want"; exit 1; }
pass kmod-reclaim-fail-retry
echo "kmod-reclaim-fail: units lent $(($(stat_json lent_pages) / 1024)), reclaimed $(stat_json units_reclaimed), MemFree $(memfree) kB after the retry"
got=$(md5sum <"$MNT/before" | cut -d' ' -f1)
[ "$got" = "$before" ] || { fail kmod-reclaim-fail-intact "before: md5 $got after the retry, want $before"; exit 1; }
kmemfsctl stat "$MNT" | sed 's/^/    /'

umount_fs || { fail_out kmod-reclaim-fail-umount "umount"; exit 1; }
fsck_clean kmod-reclaim-fail-fsck || exit 1
run rmmod kmemfs || { fail_out kmod-reclaim-fail-unload "rmmod after unmount"; exit 1; }
pass kmod-reclaim-fail
