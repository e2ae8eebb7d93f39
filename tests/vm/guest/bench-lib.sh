# bench-lib.sh -- helpers for the bench-* guest actions (sourced by them, not an
# action itself): a nanosecond clock, MemFree of the device's node and of the
# system, and the figures the host collects (tests/vm/lib/bench.sh).
#
#   KMEMFS-BENCH: CONFIG KEY VALUE      one figure (times in s, memory in kB)
#
# The action sets BENCH (the configuration's name) before sourcing this.
. /kmemfs/kmod-lib.sh

GIB_KB=$((1024 * 1024))
DAX=/sys/bus/dax/devices/dax0.0
NODE=$(cat $DAX/target_node)

# busybox date has no %N: coreutils' is in the initramfs for this
now_ns() { /usr/bin/date +%s%N; }
# dt A B -- seconds from A to B (nanoseconds), 3 decimals; since A -- from A to now
dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
since() { dt "$1" "$(now_ns)"; }
# node_free / total_free -- MemFree (kB) of the device's node (0 while it has no
# memory) and of the whole system
node_free() {
	f=/sys/devices/system/node/node$NODE/meminfo
	[ -e "$f" ] || { echo 0; return; }
	# shell builtins only: wait_node polls this, and every exec costs under TCG
	while read -r _ _ k v _; do
		[ "$k" = MemFree: ] && { echo "$v"; return; }
	done <"$f"
}
total_free() { sed -n 's/^MemFree: *\([0-9]*\) kB$/\1/p' /proc/meminfo; }

fig() { echo "KMEMFS-BENCH: $BENCH $1 $2"; }
# memfig WHEN -- both MemFree figures, as node_free_WHEN and total_free_WHEN
memfig() {
	fig "node_free_$1" "$(node_free)"
	fig "total_free_$1" "$(total_free)"
}
# bfail STEP REASON... -- fail loudly and end the action
bfail() {
	s=$1
	shift
	fail "$BENCH-$s" "$*"
	exit 1
}
# bfail_out STEP REASON... -- the same, with the last run command's output
bfail_out() {
	s=$1
	shift
	fail_out "$BENCH-$s" "$*"
	exit 1
}

# wait_node FROM KB SECS -- poll (every 20 ms) until the node's MemFree has moved
# by KB from FROM (KB < 0: fallen); returns 1 after about SECS seconds. No clock
# inside: the caller reads one right after it returns.
wait_node() {
	wn=$(($3 * 50))
	while [ $wn -gt 0 ]; do
		d=$(($(node_free) - $1))
		if [ "$2" -ge 0 ]; then
			[ "$d" -ge "$2" ] && return 0
		else
			[ "$d" -le "$2" ] && return 0
		fi
		sleep 0.02
		wn=$((wn - 1))
	done
	return 1
}

# geometry -- the device and its memory-block-aligned ("hot") part, as figures;
# fails when the hot part is under 1 GiB (the benchmark would not measure 1 GiB)
geometry() {
	bs=$((0x$(cat /sys/devices/system/memory/block_size_bytes)))
	start=$(($(cat $DAX/resource)))
	size=$(cat $DAX/size)
	hs=$(((start + bs - 1) / bs * bs))
	he=$(((start + size) / bs * bs))
	fig dev_mib $((size >> 20))
	fig block_mib $((bs >> 20))
	fig hot_mib $(((he - hs) >> 20))
	echo "bench: dax0.0 $((size >> 20)) MiB at $(printf 0x%x "$start"), node $NODE," \
		"memory blocks of $((bs >> 20)) MiB, hot part $(printf 0x%x "$hs")-$(printf 0x%x "$he")" \
		"= $(((he - hs) >> 20)) MiB"
	[ $((he - hs)) -ge $((1 << 30)) ] || bfail geometry "hot part $(((he - hs) >> 20)) MiB < 1 GiB (NVDIMM too small)"
}

# stat_json KEY -- a number from kmemfsctl stat --json of $MNT
stat_json() {
	kmemfsctl stat "$MNT" --json | sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p"
}

# write_gib FILE -- write 1 GiB of zeroes (kmemfs stores zeroes like any data)
# in 1 MiB writes, fsync'ed; figure write_1g_s
write_gib() {
	t=$(now_ns)
	run dd if=/dev/zero of="$1" bs=1M count=1024 conv=fsync || bfail_out write "dd of 1 GiB to $1"
	fig write_1g_s "$(since "$t")"
}
