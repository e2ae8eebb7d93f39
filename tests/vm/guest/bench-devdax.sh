# bench-devdax.sh -- benchmark action: kmemfs on the device without kmemfs.ko.
# It keeps files but cannot lend: the node's MemFree must not move through mount,
# a 1 GiB write, rm and unmount. The write's time is the comparison for kmemfs-kmod.
BENCH=devdax
. /kmemfs/bench-lib.sh

geometry
[ ! -c /dev/kmemfs ] || bfail setup "kmemfs.ko is loaded: this configuration runs without it"
run mkfs.kmemfs "$DEV" || bfail_out mkfs "mkfs.kmemfs $DEV"
memfig before
n0=$(node_free)
t=$(now_ns)
mount_fs || bfail_out mount "kmemfs $DEV $MNT without kmemfs.ko"
fig mount_s "$(since "$t")"
memfig mounted
[ "$(stat_json lent_pages)" = 0 ] || bfail mount "lent_pages $(stat_json lent_pages) without the module"

write_gib "$MNT/f1g"
memfig written
t=$(now_ns)
rm "$MNT/f1g" || bfail rm "rm $MNT/f1g"
sync
fig rm_s "$(since "$t")"
sleep 1
memfig removed
t=$(now_ns)
umount_fs || bfail_out umount "umount $MNT"
fig umount_s "$(since "$t")"
memfig unmounted
n1=$(node_free)
echo "bench: devdax: node $NODE MemFree $n0 -> $n1 kB (cannot lend)"
[ "$n1" -le $((n0 + 4096)) ] || bfail lend "node $NODE MemFree rose by $((n1 - n0)) kB without the module"
pass bench-devdax
