# bench-kmod.sh -- benchmark action: kmemfs with kmemfs.ko on the whole device.
# Mount (attach, online, lend every free unit beyond the reserve); fill the free
# pages that are not lent, so that writing a 1 GiB file must take 1 GiB back from
# the kernel (reclaim); rm it (lend 1 GiB again); unmount (detach). Times, node
# and total MemFree at each step, and the daemon's lend/reclaim counters.
BENCH=kmemfs-kmod
. /kmemfs/bench-lib.sh

geometry
run mkfs.kmemfs "$DEV" || bfail_out mkfs "mkfs.kmemfs $DEV"
kmod_load

# mount: the daemon checks the pool, attaches, onlines and lends before it returns
memfig before
n0=$(node_free)
t=$(now_ns)
mount_fs || bfail_out mount "kmemfs $DEV $MNT with kmemfs.ko loaded"
fig mount_s "$(since "$t")"
wait_node "$n0" "$GIB_KB" 30 || bfail mount "node $NODE MemFree rose by $(($(node_free) - n0)) kB after mount, want >= 1 GiB"
memfig mounted
n1=$(node_free)
lent=$(stat_json lent_pages)
fig lent_mount_mib $((lent / 256))
fig lend_mount_ns "$(stat_json lend_ns)"
fig units_lent_mount "$(stat_json units_lent)"
kmemfsctl stat "$MNT" | sed 's/^/    /'

# the free pages that are not lent (unaligned ends of the device, the reserve)
# fill first: take them, so that the timed write is all reclaim
free=$(stat_json free_pages)
fig filler_mib $((free / 256))
run dd if=/dev/zero of="$MNT/filler" bs=1M count=$((free / 256)) conv=fsync ||
	bfail_out filler "dd of $((free / 256)) MiB"
n2=$(node_free)
r0=$(stat_json units_reclaimed) rns0=$(stat_json reclaim_ns)
fig node_free_filled "$n2"

# reclaim 1 GiB: the write's time includes taking its units back
write_gib "$MNT/f1g"
memfig written
n3=$(node_free)
r1=$(stat_json units_reclaimed) rns1=$(stat_json reclaim_ns)
fig reclaimed_mib $(((r1 - r0) * 4))
fig reclaim_only_s "$(dt "$rns0" "$rns1")"
fig reclaim_unit_ms "$(awk -v a="$rns0" -v b="$rns1" -v n=$((r1 - r0)) 'BEGIN { if (n) printf "%.2f", (b - a) / 1e6 / n }')"
fig reclaim_failures "$(stat_json reclaim_failures)"
[ $(((r1 - r0) * 4)) -ge $((1024 * 9 / 10)) ] ||
	bfail reclaim "writing 1 GiB reclaimed only $(((r1 - r0) * 4)) MiB"
[ $((n2 - n3)) -ge $((GIB_KB * 9 / 10)) ] ||
	bfail reclaim "node $NODE MemFree fell by $((n2 - n3)) kB writing 1 GiB, want >= 90% of 1 GiB"

# lend 1 GiB: rm frees its units (the first ones refill the 32 MiB reserve)
l0=$(stat_json units_lent) lns0=$(stat_json lend_ns)
t=$(now_ns)
rm "$MNT/f1g" || bfail rm "rm $MNT/f1g"
rm_done=$(now_ns)
wait_node "$n3" $((GIB_KB * 9 / 10)) 60 ||
	bfail lend "node $NODE MemFree rose by $(($(node_free) - n3)) kB in 60 s after rm, want >= 90% of 1 GiB"
fig lend_1g_s "$(since "$t")"
fig rm_s "$(dt "$t" "$rm_done")"
sleep 1
memfig removed
l1=$(stat_json units_lent) lns1=$(stat_json lend_ns)
fig lent_rm_mib $(((l1 - l0) * 4))
fig lend_only_s "$(dt "$lns0" "$lns1")"
fig lend_unit_ms "$(awk -v a="$lns0" -v b="$lns1" -v n=$((l1 - l0)) 'BEGIN { if (n) printf "%.3f", (b - a) / 1e6 / n }')"
kmemfsctl stat "$MNT" | sed 's/^/    /'

# unmount: the module offlines the memory (lent units migrate) and detaches
t=$(now_ns)
umount_fs || bfail_out umount "umount $MNT"
fig umount_s "$(since "$t")"
memfig unmounted
[ -e $DAX/driver ] || bfail umount "dax0.0 not bound to device_dax again after unmount"
pass bench-kmod
