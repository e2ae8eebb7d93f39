# kmod.sh -- host side of the kmod-* VM tests (kernel module kmod/kmemfs.ko);
# sourced by tests/vm/run.sh after host.sh.
#
#   kmod_build     build kmemfs.ko against the guest kernel's headers ($KREL) and
#                  kmod/kmodtest; vm_initrd then puts both into the initramfs
#   t_kmod_*       the tests (guest actions tests/vm/guest/kmod-*.sh)

TESTS_KMOD="kmod-attach kmod-safety kmod-pressure kmod-detach kmod-fs kmod-crash kmod-powercut"
TESTS_KMOD="$TESTS_KMOD kmod-reclaim-fail kmod-callback-taken kmod-detach-busy kmod-exercise"
TESTS_KMOD="$TESTS_KMOD kmod-concurrent kmod-fs-phase"

kmod_build() {
	local h=/usr/src/linux-headers-$KREL blog=$WORK_ROOT/kmod-build.log
	rm -f "$SRC_DIR/kmod/kmemfs.ko"
	if [ ! -d "$h" ]; then
		log "warning: no $h: the kmod tests will fail"
		return 0
	fi
	if ! { make -C "$h" M="$SRC_DIR/kmod" modules &&
		make -C "$SRC_DIR/kmod" kmodtest; } >"$blog" 2>&1; then
		log "warning: building kmod/ failed (see $blog): the kmod tests will fail"
		rm -f "$SRC_DIR/kmod/kmemfs.ko"
		return 0
	fi
	log "kmod: kmemfs.ko built for $KREL"
}

# need_kmod -- the kmod tests cannot run without the module and kmodtest
need_kmod() {
	[ -e "$SRC_DIR/kmod/kmemfs.ko" ] && [ -x "$SRC_DIR/kmod/kmodtest" ] && return 0
	REASON="kmod/kmemfs.ko or kmod/kmodtest missing (see $WORK_ROOT/kmod-build.log)"
	return 1
}

# kmod_boot TIMEOUT ACTIONS -- boot() with init_on_alloc=0: Debian's kernel zeroes
# pages on allocation by default, which would hide a reclaim that forgets to zero
kmod_boot() {
	local tmo=$1 logf=$WORK/console-1.log
	LOGS="$LOGS $logf"
	vm_boot "$logf" "$tmo" "$WORK/PMEM.img" "kmemfs.run=$2" kmemfs.gen=0 \
		"kmemfs.timeout=$((tmo - 30))" init_on_alloc=0 $TRACE
	check_log "$logf" "$tmo"
}

# kmod-attach: MemFree of node 1 follows lend and reclaim; stray offline refused
t_kmod_attach() { need_kmod && boot 1 240 namespace,kmod-attach; }
# kmod-safety: data kept across lends, zeroes after reclaim, SIGBUS on lent units
t_kmod_safety() { need_kmod && kmod_boot 240 namespace,kmod-safety; }
# kmod-pressure: reclaim while a process fills node 1; the pattern never leaks
t_kmod_pressure() { need_kmod && kmod_boot 300 namespace,kmod-pressure; }
# kmod-detach: bad input, unload refused, detach with data intact, re-attach
t_kmod_detach() { need_kmod && boot 1 240 namespace,kmod-detach; }
# kmod-fs: kmemfs on devdax with the module: lends free units, reclaims for writes
t_kmod_fs() { need_kmod && boot 1 300 namespace,kmod-fs; }
# kmod-fs-phase: kmod-fs on a device that starts 2 MiB past a 4 MiB boundary
# (struct pages in RAM): mkfs places the pool's units on the device's 4 MiB
# boundaries, so they are lent as on an aligned device
t_kmod_fs_phase() { need_kmod && boot 1 300 namespace-mapmem,kmod-fs; }
# kmod-exercise: random file operations checked against an in-memory copy, on
# devdax with units reclaimed and lent as files grow and shrink
t_kmod_exercise() { need_kmod && need_kmemfs && kmod_boot 400 namespace,kmod-exercise; }
# kmod-crash: kill -9 of the daemon while lending; re-attach, reconcile, data intact
t_kmod_crash() { need_kmod && boot 1 300 namespace,kmod-crash; }
# kmod-powercut: power cuts while the filesystem lends and reclaims units through
# the module; every fsync'ed file intact, fsck clean, also when re-attached
t_kmod_powercut() {
	need_kmod && need_kmemfs || return 1
	pc_run namespace,mkfs,kmod-load,powercut-write \
		namespace-persist,powercut-check,kmod-load,powercut-write \
		namespace-persist,kmod-load,powercut-check
}
# kmod-reclaim-fail: a unit the kernel will not give back (module parameter
# fail_reclaim) makes the write fail with ENOSPC; no foreign data, daemon up,
# earlier files intact, the same write succeeds once reclaim works again
t_kmod_reclaim_fail() { need_kmod && need_kmemfs && boot 1 300 namespace,kmod-reclaim-fail; }
# kmod-concurrent: a LEND finishes while a slow RECLAIM runs (test hook
# reclaim_delay_ms); a RECLAIM of a unit with a folio locked for a pending READ
# (daemon stopped) fails with EBUSY instead of waiting for it
t_kmod_concurrent() { need_kmod && need_kmemfs && boot 1 300 namespace,kmod-concurrent; }
# kmod-callback-taken: with a virtio-mem device probed (it holds the online-page
# callback), mounting with kmemfs.ko fails saying so and leaves dax0.0 as it was.
# The virtio-mem device plugs nothing (requested-size=0); its region needs the
# maxmem headroom qemu_cmd gives (-m 1G,maxmem=8G).
t_kmod_callback_taken() {
	local QEMU_EXTRA=(-object memory-backend-ram,id=vmem0,size=256M
		-device virtio-mem-pci,id=vm0,memdev=vmem0,node=0,requested-size=0)
	need_kmod && need_kmemfs && boot 1 240 namespace,kmod-callback-taken
}
# kmod-detach-busy: unmount while a process pins lent pages (vmsplice into a
# pipe never read): the detach hangs offlining until SIGTERM, then the daemon
# exits 1 saying the device stays attached as System RAM, the module keeps it
# attached; after the pin is gone a remount re-attaches and unmount detaches.
# Then the rollback: only the last block pinned, the others offlined and
# onlined again; held units stay held (file data intact), lent ones lent
t_kmod_detach_busy() { need_kmod && need_kmemfs && boot 1 480 namespace,kmod-detach-busy; }
