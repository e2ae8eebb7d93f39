# bench-daxctl.sh -- benchmark action: the same device as plain kmem. daxctl
# onlines the whole device as System RAM (it can then hold no files), then tries
# to give it back as devdax; what that does is reported, not hidden.
BENCH=daxctl
. /kmemfs/bench-lib.sh

geometry
memfig before
n0=$(node_free)
t=$(now_ns)
run daxctl reconfigure-device --mode=system-ram dax0.0 ||
	bfail_out online "daxctl reconfigure-device --mode=system-ram dax0.0"
fig online_s "$(since "$t")"
memfig online
n1=$(node_free)
fig online_mib $(((n1 - n0) / 1024))
[ $((n1 - n0)) -ge "$GIB_KB" ] || bfail online "node $NODE MemFree rose by $((n1 - n0)) kB, want >= 1 GiB"
sed 's/^/    daxctl: /' "$CMDLOG" | head -n 12

# back to devdax: offlining needs every page of the device free or movable
t=$(now_ns)
run daxctl reconfigure-device --mode=devdax -f dax0.0
rc=$?
secs=$(since "$t")
fig offline_s "$secs"
fig offline_rc $rc
memfig back
sed 's/^/    daxctl: /' "$CMDLOG" | head -n 12
if [ $rc -eq 0 ]; then
	[ -c "$DEV" ] || bfail offline "daxctl --mode=devdax returned 0 but $DEV is missing"
	echo "bench: daxctl: back to devdax in $secs s, node $NODE MemFree $(node_free) kB"
else
	echo "bench: daxctl: --mode=devdax -f failed with $rc (the memory stays System RAM)"
fi
pass bench-daxctl
