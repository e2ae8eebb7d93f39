# kmod-attach.sh -- attach with every unit held: node 1's MemFree stays ~0;
# lending N units raises it by >= 90% of N*4 MiB at once (the ioctl is
# synchronous and must take < 1 s), reclaiming lowers it again. A stray
# "offline" of one of our blocks is refused.
. /kmemfs/kmod-lib.sh

kmod_attach
base=$(memfree)
echo "kmod-attach: $UNITS units held, node 1 MemFree ${base} kB"
[ "$base" -lt 4096 ] || { fail kmod-attach "node 1 MemFree $base kB with every unit held"; exit 1; }
kmt kmod-attach info
[ "$(kv held)" = "$UNITS" ] || { fail kmod-attach "QUERY: held $(kv held), want $UNITS"; exit 1; }

# lend 64 units (256 MiB)
kmt kmod-lend lend 0 64
secs=$(sed -n 's/.* in \([0-9.]*\) s$/\1/p' "$CMDLOG")
lent=$(memfree)
rise=$((lent - base)) want=$((64 * 4096 * 9 / 10))
echo "kmod-attach: lend 256 MiB took ${secs}s, MemFree ${base} -> ${lent} kB (+${rise})"
[ "$rise" -ge "$want" ] || { fail kmod-lend "MemFree rose by $rise kB, want >= $want"; exit 1; }
awk -v s="$secs" 'BEGIN { exit !(s < 1.0) }' || { fail kmod-lend "lend took ${secs}s"; exit 1; }
pass kmod-lend

# reclaim half of them
kmt kmod-reclaim reclaim 0 32
half=$(memfree)
drop=$((lent - half)) want=$((32 * 4096 * 9 / 10))
echo "kmod-attach: reclaim 128 MiB: MemFree ${lent} -> ${half} kB (-${drop})"
[ "$drop" -ge "$want" ] || { fail kmod-reclaim "MemFree fell by $drop kB, want >= $want"; exit 1; }
kmt kmod-reclaim info
[ "$(kv lent)" = 32 ] || { fail kmod-reclaim "QUERY: lent $(kv lent), want 32"; exit 1; }
pass kmod-reclaim

# nobody but the module may offline our blocks (held pages would be lost)
blk=$(kmodtest info | sed -n 's/.* first_block=\([0-9]*\) .*/\1/p')
st=/sys/devices/system/memory/memory$blk/state
if echo offline >"$st" 2>/dev/null; then
	fail kmod-offline-refused "offlining memory$blk succeeded behind the module's back"
	exit 1
fi
[ "$(cat "$st")" = online ] || { fail kmod-offline-refused "memory$blk is $(cat "$st")"; exit 1; }
pass kmod-offline-refused

kmt kmod-reclaim reclaim 32 32
end=$(memfree)
echo "kmod-attach: all reclaimed: MemFree ${end} kB"
[ "$end" -lt $((base + 8192)) ] || { fail kmod-reclaim "MemFree $end kB after reclaiming all"; exit 1; }
pass kmod-attach

# figures for docs/kmod.md: lend and reclaim every unit, three rounds
kmt kmod-bench bench 0 all

# the same device as plain kmem (daxctl system-ram) for comparison: no files
# possible, but all of it is RAM at once
kmt kmod-attach detach
t0=$(cut -d' ' -f1 /proc/uptime)
if run daxctl reconfigure-device --mode=system-ram dax0.0; then
	t1=$(cut -d' ' -f1 /proc/uptime)
	echo "kmod-attach: daxctl --mode=system-ram took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s; node 1 MemFree $(memfree) kB"
else
	echo "kmod-attach: daxctl reconfigure-device --mode=system-ram failed (not a kmod failure):"
	sed 's/^/    | /' "$CMDLOG"
fi
