# namespace.sh -- guest action: turn the emulated NVDIMM into a devdax namespace
# (DESIGN.md recipe) and check /dev/dax0.0 is on NUMA node 1.
# Labels live in the NVDIMM's label area (the tail of PMEM.img), so this runs
# once per fresh PMEM.img; namespace-persist.sh checks they survive a reboot.

ns_fail() {
	fail_out namespace "$@"
	exit 1
}

run ndctl disable-region region0 || ns_fail "ndctl disable-region region0"
run ndctl init-labels -f nmem0 || ns_fail "ndctl init-labels -f nmem0"
run ndctl enable-region region0 || ns_fail "ndctl enable-region region0"
# NS_MAP (namespace-mapmem.sh): where the kernel keeps the device's struct pages
run ndctl create-namespace -r region0 -m devdax -a 2M ${NS_MAP:+--map=$NS_MAP} ||
	ns_fail "ndctl create-namespace"
grep -q '"mode":"devdax"' "$CMDLOG" || ns_fail "namespace is not devdax"

# devtmpfs makes the node when the device_dax driver binds: give it a moment
i=0
while [ ! -c "$DEV" ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -c "$DEV" ] || ns_fail "$DEV missing after create-namespace"

node=$(cat /sys/bus/dax/devices/dax0.0/target_node 2>/dev/null)
[ "$node" = 1 ] || ns_fail "dax0.0 target_node is '$node', want 1"
size=$(cat /sys/bus/dax/devices/dax0.0/size 2>/dev/null)
[ "${size:-0}" -ge $((512 << 20)) ] || ns_fail "dax0.0 size '$size' is under 512 MiB"
align=$(cat /sys/bus/dax/devices/dax0.0/align 2>/dev/null)
[ "$align" = $((2 << 20)) ] || ns_fail "dax0.0 align is '$align', want 2M"

# the label must be on the DIMM, not only in the kernel: read it back
run ndctl read-labels -j nmem0 || ns_fail "ndctl read-labels nmem0"
grep -q '"uuid"' "$CMDLOG" || ns_fail "no namespace label on nmem0 after create"

phys=$(cat /sys/bus/dax/devices/dax0.0/resource 2>/dev/null)
# --map=mem: the 8 KiB info block rounded up to 2 MiB puts the device 2 MiB
# past a 4 MiB boundary (what kmod-fs-phase needs)
[ "${NS_MAP:-}" != mem ] || [ $((phys % (4 << 20))) = $((2 << 20)) ] ||
	ns_fail "dax0.0 starts at '$phys', want 2 MiB past a 4 MiB boundary"
echo "namespace: dax0.0 size=$size align=$align target_node=$node phys=$phys"
pass namespace
