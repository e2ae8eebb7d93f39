# bench.sh -- host side of the VM benchmarks; sourced by tests/vm/run.sh after
# kmod.sh. Not tests: run.sh runs them only when named (bench/kmod-vm.sh does).
#
#   bench-kmod     kmemfs with kmemfs.ko: lend at mount, reclaim 1 GiB by writing
#                  a file, lend 1 GiB again by removing it
#   bench-daxctl   the same device as plain kmem (daxctl system-ram) and back to devdax
#   bench-devdax   kmemfs on the device without the module (cannot lend)
#
# Each boots BENCH_RUNS times, every boot on a fresh BENCH_PMEM-sized NVDIMM (the
# tests' 1 GiB has only 768 MiB of whole memory blocks). The figures are the
# guest's "KMEMFS-BENCH: config key value" lines in $WORK/console-N.log.

BENCH_VM="bench-kmod bench-daxctl bench-devdax"
BENCH_RUNS=${KMEMFS_VM_BENCH_RUNS:-3}
BENCH_PMEM=${KMEMFS_VM_BENCH_PMEM:-2G}

# bench_boots ACTION -- BENCH_RUNS boots of namespace,ACTION, each on a new image
bench_boots() {
	local n
	for n in $(seq 1 "$BENCH_RUNS"); do
		rm -f "$WORK/PMEM.img"
		truncate -s "$BENCH_PMEM" "$WORK/PMEM.img"
		boot "$n" 900 "namespace,$1" || return 1
		log "$1: boot $n of $BENCH_RUNS done"
	done
}

t_bench_kmod() { need_kmod && need_kmemfs && bench_boots bench-kmod; }
t_bench_daxctl() { bench_boots bench-daxctl; }
t_bench_devdax() { need_kmemfs && bench_boots bench-devdax; }
