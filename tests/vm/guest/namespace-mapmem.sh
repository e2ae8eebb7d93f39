# namespace-mapmem.sh -- guest action: namespace.sh with the struct pages in RAM
# (--map=mem). The device then starts 2 MiB past a 4 MiB boundary (the 8 KiB
# info block rounded up to the 2 MiB alignment), so kmemfs's 4 MiB units are
# not 4 MiB units of the device: what kmod-fs-phase checks the pool copes with.
NS_MAP=mem
. /kmemfs/namespace.sh
phys=$(cat /sys/bus/dax/devices/dax0.0/resource 2>/dev/null)
[ $((phys % (4 << 20))) = $((2 << 20)) ] ||
	ns_fail "dax0.0 starts at '$phys', want 2 MiB past a 4 MiB boundary (the test's premise)"
