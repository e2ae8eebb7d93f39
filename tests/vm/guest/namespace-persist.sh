# namespace-persist.sh -- guest action for a second boot on the same PMEM.img:
# the devdax namespace made by namespace.sh must come back by itself from the
# labels, with nothing re-created.

np_fail() {
	fail_out namespace-persist "$@"
	exit 1
}

i=0
while [ ! -c "$DEV" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
run ndctl list -N -r region0
[ -c "$DEV" ] || np_fail "$DEV did not come back on reboot"
grep -q '"mode":"devdax"' "$CMDLOG" || np_fail "namespace is no longer devdax"
node=$(cat /sys/bus/dax/devices/dax0.0/target_node 2>/dev/null)
[ "$node" = 1 ] || np_fail "dax0.0 target_node is '$node', want 1"
pass namespace-persist
