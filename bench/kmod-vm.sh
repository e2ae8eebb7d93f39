#!/bin/bash
# kmod-vm.sh [--runs N] [--pmem SIZE] [--build-dir DIR] [--report] -- whole-filesystem
# figures of kmemfs.ko in the VM rig (tests/vm/run.sh, QEMU TCG): time to lend
# and to reclaim 1 GiB and the device node's MemFree, for kmemfs with the module,
# the same device as plain kmem (daxctl system-ram) and kmemfs on devdax without
# the module. Each configuration boots N times (3) on a fresh SIZE (2G) NVDIMM.
# Prints every figure (median, range over the runs) and a Markdown table on
# stdout; the rig's own output goes to stderr. --report: no boots, only the
# figures of the last run's logs again. Run as root. See docs/kmod.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
runs=3
pmem=2G
report_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--runs) runs=$2; shift 2 ;;
	--pmem) pmem=$2; shift 2 ;;
	--build-dir) build=$2; shift 2 ;;
	--report) report_only=1; shift ;;
	*) echo "usage: $0 [--runs N] [--pmem SIZE] [--build-dir DIR] [--report]" >&2; exit 2 ;;
	esac
done
configs="bench-kmod bench-daxctl bench-devdax"
export KMEMFS_VM_WORK=${KMEMFS_VM_WORK:-${TMPDIR:-/tmp}/kmemfs-vm-bench}
export KMEMFS_VM_BENCH_RUNS=$runs KMEMFS_VM_BENCH_PMEM=$pmem

if [ "$report_only" = 0 ] && ! "$root/tests/vm/run.sh" --build-dir "$build" $configs >&2; then
	echo "kmod-vm.sh: a benchmark boot failed (its console log is above)" >&2
	exit 1
fi

# every "KMEMFS-BENCH: config key value" of every boot, as "config key value"
for c in $configs; do
	for l in "$KMEMFS_VM_WORK/$c"/console-*.log; do
		tr -d '\r' <"$l" | sed -n 's/.*KMEMFS-BENCH: //p'
	done
done | awk -v runs="$runs" -v pmem="$pmem" '
# med(k): "median (min-max)" of the values of k, "-" when there are none
function sorted(k,   n, i, j, t) {
	n = split(vals[k], v, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
	return n
}
function med(k,   n) {
	if (!(k in vals)) return "-"
	n = sorted(k)
	if (n == 1) return v[1]
	return v[int((n + 1) / 2)] " (" v[1] "-" v[n] ")"
}
# one(k): the median alone; mib(k): the median of a kB figure in MiB
function one(k,   n) {
	if (!(k in vals)) return "-"
	n = sorted(k)
	return v[int((n + 1) / 2)]
}
function mib(k) { return (k in vals) ? int(one(k) / 1024) : "-" }
{
	k = $1 " " $2
	if (k in vals) {
		vals[k] = vals[k] " " $3
	} else {
		order[++nk] = k
		vals[k] = $3
	}
}
END {
	printf "Figures, median (min-max) over %d boot(s) per configuration; s, kB, MiB:\n\n", runs
	for (i = 1; i <= nk; i++) printf "  %-14s %-22s %s\n", substr(order[i], 1, index(order[i], " ") - 1), substr(order[i], index(order[i], " ") + 1), med(order[i])
	a = "kmemfs-kmod"; d = "daxctl"; p = "devdax"
	printf "\nNVDIMM %s, device %s MiB, hot part %s MiB in %s MiB blocks (QEMU TCG).\n\n", pmem, one(a " dev_mib"), one(a " hot_mib"), one(a " block_mib")
	print "| configuration | lend 1 GiB | reclaim 1 GiB (write of a 1 GiB file) | node MemFree before -> after (MiB) | keeps files | lends |"
	print "|---|---|---|---|---|---|"
	printf "| kmemfs + kmemfs.ko | %s s after rm (mount: %s MiB in %s s) | %s s (reclaim alone %s s) | %s -> %s mounted -> %s written -> %s rm | yes | yes |\n", med(a " lend_1g_s"), mib(a " node_free_mounted"), med(a " mount_s"), med(a " write_1g_s"), med(a " reclaim_only_s"), mib(a " node_free_before"), mib(a " node_free_mounted"), mib(a " node_free_written"), mib(a " node_free_removed")
	printf "| daxctl system-ram | %s s (all %s MiB) | back to devdax: %s s (exit status %s) | %s -> %s online -> %s back | no | all or nothing |\n", med(d " online_s"), one(d " online_mib"), med(d " offline_s"), vals[d " offline_rc"], mib(d " node_free_before"), mib(d " node_free_online"), mib(d " node_free_back")
	printf "| kmemfs on devdax, no module | cannot | %s s (nothing to reclaim) | %s -> %s mounted -> %s written -> %s rm | yes | no |\n", med(p " write_1g_s"), mib(p " node_free_before"), mib(p " node_free_mounted"), mib(p " node_free_written"), mib(p " node_free_removed")
}'
