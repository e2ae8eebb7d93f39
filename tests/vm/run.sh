#!/bin/bash
# run.sh -- boot Debian's 6.1 kernel in QEMU (TCG) with an emulated NVDIMM and run
# the kmemfs VM tests on /dev/dax0.0. See docs/vm-rig.md.
#
#   tests/vm/run.sh [--build-dir DIR] [TEST...]     run all tests, or those named
#   tests/vm/run.sh [--build-dir DIR] --shell [--pmem FILE]
#                                                  interactive guest shell
#   tests/vm/run.sh --list                         list the tests
#   tests/vm/run.sh [--build-dir DIR] bench-kmod ...  a VM benchmark (lib/bench.sh;
#                                                  not in the default run)
#
# Prints "PASS name" / "FAIL name: reason" per test (with the guest's console log
# on failure) and ends with "N passed, N failed"; exit 0 only when all passed.
#
# Environment: KMEMFS_VM_CACHE (downloads, unpacked kernel; default
# ~/.cache/kmemfs-vm), KMEMFS_VM_WORK (per-test PMEM.img and console logs, kept for
# inspection; default $TMPDIR/kmemfs-vm), KMEMFS_VM_TRACE=1 (guest actions under sh -x),
# KMEMFS_VM_PC_DELAYS (seconds into writing of each power cut; default "3 7 12"),
# KMEMFS_VM_BENCH_RUNS / KMEMFS_VM_BENCH_PMEM (benchmarks: boots, NVDIMM size).

set -u

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$VM_DIR/../.." && pwd)
BUILD_DIR=$SRC_DIR/build
CACHE=${KMEMFS_VM_CACHE:-$HOME/.cache/kmemfs-vm}
WORK_ROOT=${KMEMFS_VM_WORK:-${TMPDIR:-/tmp}/kmemfs-vm}
TESTS_ALL="namespace devdax-basic powercut reboot"
VM_PID=""
TRACE=""
[ "${KMEMFS_VM_TRACE:-0}" = 1 ] && TRACE=kmemfs.trace=1

. "$VM_DIR/lib/host.sh"
. "$VM_DIR/lib/kmod.sh" # kmod-* tests (kernel module)
TESTS_ALL="$TESTS_ALL $TESTS_KMOD"
. "$VM_DIR/lib/bench.sh" # bench-* (run by name only, see bench/kmod-vm.sh)

usage() {
	sed -n '3,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
	exit 2
}

# ---- boot helpers for the tests ------------------------------------------------

# boot N TIMEOUT ACTIONS [GEN] -- boot the test's PMEM.img once running the guest
# actions (comma-separated); console in $WORK/console-N.log, checked by check_log
boot() {
	local n=$1 tmo=$2 actions=$3 gen=${4:-0}
	LOGS="$LOGS $WORK/console-$n.log"
	vm_boot "$WORK/console-$n.log" "$tmo" "$WORK/PMEM.img" \
		"kmemfs.run=$actions" "kmemfs.gen=$gen" "kmemfs.timeout=$((tmo - 30))" $TRACE
	check_log "$WORK/console-$n.log" "$tmo"
}

# markers LOG KIND -- the KMEMFS-KIND: lines of LOG, without the tag and any CR
markers() {
	tr -d '\r' <"$1" | sed -n "s/.*KMEMFS-$2: //p"
}

# sort_markers LOG KIND -- the KIND markers printed by the guest's marked(),
# as "ok TEXT" (check stripped) or "garbled LINE" (the serial port garbled it,
# or the power cut cut it short): see checked and garbled
sort_markers() {
	local l text
	markers "$1" "$2" | while IFS= read -r l; do
		text=${l% \~*}
		if [ "$l" = "$text ~$(printf '%s' "$text" | md5sum | cut -c1-8)" ]; then
			printf 'ok %s\n' "$text"
		else
			printf 'garbled %s\n' "$l"
		fi
	done
}

# checked LOG KIND -- the markers whose check holds, each once, without it
checked() { sort_markers "$1" "$2" | sed -n 's/^ok //p' | sort -u; }

# garbled LOG KIND -- the markers whose check fails
garbled() { sort_markers "$1" "$2" | sed -n 's/^garbled //p'; }

# check_log LOG TIMEOUT -- a boot passed if the guest said DONE, reported at least
# one PASS and no FAIL. Sets REASON otherwise.
check_log() {
	local logf=$1 tmo=$2 f
	f=$(markers "$logf" TEST | grep -m 1 '^FAIL ')
	if [ -n "$f" ]; then
		REASON="guest: ${f#FAIL }"
	elif ! markers "$logf" TEST | grep -q '^DONE'; then
		if grep -qa 'Kernel panic' "$logf"; then
			REASON="guest kernel panicked ($(basename "$logf"))"
		else
			REASON="no DONE marker: guest crashed, hung or ran over ${tmo}s ($(basename "$logf"))"
		fi
	elif ! markers "$logf" TEST | grep -v '^PASS dmesg$' | grep -q '^PASS '; then
		REASON="guest reported no PASS ($(basename "$logf"))"
	else
		return 0
	fi
	return 1
}

# need_kmemfs -- the kmemfs tests cannot run without the programs
need_kmemfs() {
	local p
	for p in kmemfs mkfs.kmemfs fsck.kmemfs; do
		[ -x "$BUILD_DIR/bin/$p" ] || {
			REASON="$BUILD_DIR/bin/$p is missing (build kmemfs first)"
			return 1
		}
	done
}

# ---- the tests (each sets REASON and returns 1 on failure) ----------------------

# namespace: labels initialised, devdax namespace on node 1 (DESIGN.md recipe)
t_namespace() {
	boot 1 120 namespace
}

# devdax-basic: mkfs, a workload, remount, everything checked, fsck clean
t_devdax_basic() {
	need_kmemfs || return 1
	boot 1 300 namespace,devdax-basic
}

# reboot: data written, cleanly unmounted and powered off, must be there after a
# second boot (compared host-side from the two boots' manifests); a second kmemfs
# on the mounted device is refused in both boots
t_reboot() {
	local a b
	need_kmemfs || return 1
	boot 1 300 namespace,mkfs,reboot-write || return 1
	boot 2 300 namespace-persist,reboot-check || return 1
	a=$(checked "$WORK/console-1.log" SUM)
	b=$(checked "$WORK/console-2.log" SUM)
	if [ -z "$a" ]; then
		REASON="first boot printed no manifest"
		return 1
	fi
	if [ "$a" != "$b" ]; then
		REASON="data or attributes changed across reboot: $(diff <(echo "$a") <(echo "$b") |
			grep '^[<>]' | head -n 6 | tr '\n' ';')"
		return 1
	fi
}

# pc_verify LOG -- every file whose fsync returned before the cuts so far
# ($WORK/synced) must be listed in LOG's KMEMFS-SUM lines with that md5
pc_verify() {
	local sums f sum got bad
	sums=$(checked "$1" SUM)
	while read -r f sum; do
		got=$(echo "$sums" | awk -v f="$f" '$1 == f { print $2 }')
		if [ "$got" != "$sum" ]; then
			REASON="$(basename "$1"): fsync'ed file $f: want md5 $sum, got '${got:-missing}'"
			bad=$(garbled "$1" SUM)
			[ -n "$bad" ] &&
				REASON="$REASON; garbled SUM lines: $(echo "$bad" | head -n 4 | tr '\n' ';')"
			return 1
		fi
	done <"$WORK/synced"
}

# powercut: kill -9 QEMU at three points while the guest writes; each next boot
# must pass fsck -n as the cut left the device, mount, hold every file whose fsync
# had returned before any cut, and fsck clean after umount
PC_DELAYS=${KMEMFS_VM_PC_DELAYS:-3 7 12}
t_powercut() {
	need_kmemfs || return 1
	pc_run namespace,mkfs,powercut-write \
		namespace-persist,powercut-check,powercut-write \
		namespace-persist,powercut-check
}

# pc_run FIRST NEXT FINAL -- the power-cut cycle with these guest actions for
# the first boot, the boots after each cut, and the last (checking) boot
pc_run() {
	local n=1 d logf actions=$1 next=$2 final=$3
	: >"$WORK/synced"
	for d in $PC_DELAYS; do
		logf=$WORK/console-$n.log
		LOGS="$LOGS $logf"
		vm_boot_bg "$logf" 300 "$WORK/PMEM.img" "kmemfs.run=$actions" "kmemfs.gen=$n" \
			kmemfs.timeout=270 $TRACE
		if ! vm_wait_for "$logf" 'KMEMFS-WRITING' 240; then
			vm_kill
			check_log "$logf" 300 || true
			REASON="boot $n: writer did not start: ${REASON:-guest ended early}"
			return 1
		fi
		sleep "$d"
		vm_kill
		# the boot's check (boots 2, 3) and its writer must not have reported a failure
		if markers "$logf" TEST | grep -q '^FAIL '; then
			check_log "$logf" 300 || true
			REASON="boot $n: $REASON"
			return 1
		fi
		if [ $n -gt 1 ]; then
			pc_verify "$logf" || return 1
		fi
		sort_markers "$logf" SYNCED >"$WORK/synced.new"
		sed -n 's/^ok //p' "$WORK/synced.new" | sort -u >>"$WORK/synced"
		log "power cut $n, ${d}s into writing: $(grep -c '^ok ' "$WORK/synced.new") more files fsync'ed, $(wc -l <"$WORK/synced") in all"
		# a promise the console garbled cannot be checked; say so rather than guess
		sed -n 's/^garbled //p' "$WORK/synced.new" | while IFS= read -r l; do
			log "boot $n: promise line cut by the power cut or garbled, left out: $l"
		done
		n=$((n + 1))
		# the next boot checks what the cut left, then writes again
		actions=$next
	done
	boot "$n" 300 "$final" "$n" || return 1
	if [ ! -s "$WORK/synced" ]; then
		REASON="no fsync completed before any power cut (nothing was tested)"
		return 1
	fi
	pc_verify "$WORK/console-$n.log" || return 1
	log "all $(wc -l <"$WORK/synced") fsync'ed files intact after $((n - 1)) power cuts"
}

# ---- main ----------------------------------------------------------------------

SHELL_MODE=0 PMEM=""
TESTS=""
while [ $# -gt 0 ]; do
	case "$1" in
	--build-dir) BUILD_DIR=$(cd "$2" && pwd) || die "no build dir $2"; shift ;;
	--build-dir=*) BUILD_DIR=$(cd "${1#*=}" && pwd) || die "no build dir ${1#*=}" ;;
	--shell) SHELL_MODE=1 ;;
	--pmem) PMEM=$2; shift ;;
	--list) echo "$TESTS_ALL" | tr ' ' '\n'; exit 0 ;;
	-h | --help) usage ;;
	-*) usage ;;
	*) TESTS="$TESTS $1" ;;
	esac
	shift
done
[ "$(id -u)" -eq 0 ] || die "run as root (apt-get, depmod into the cache)"
for t in $TESTS; do
	case " $TESTS_ALL $BENCH_VM " in *" $t "*) ;; *) die "unknown test '$t' (try --list)" ;; esac
done
TESTS=${TESTS:-$TESTS_ALL}

# never leave a QEMU behind, whatever ends this script
trap '[ -n "$VM_PID" ] && vm_kill' EXIT
trap 'exit 130' INT TERM

vm_deps
mkdir -p "$CACHE" "$WORK_ROOT"
vm_kernel
kmod_build # kmemfs.ko for $KREL, before vm_initrd picks it up
INITRD=$WORK_ROOT/initrd.cpio
vm_initrd "$INITRD"
log "kernel $KREL, initrd $(du -h "$INITRD" | cut -f1), kmemfs programs:" \
	"$(cd "$BUILD_DIR/bin" 2>/dev/null && ls $VM_KMEMFS_PROGS 2>/dev/null | tr '\n' ' ')"

if [ "$SHELL_MODE" = 1 ]; then
	WORK=$WORK_ROOT/shell
	mkdir -p "$WORK"
	PMEM=${PMEM:-$WORK/PMEM.img}
	[ -e "$PMEM" ] || truncate -s 1G "$PMEM"
	log "shell on $PMEM (Ctrl-A X quits QEMU; 'action namespace' makes /dev/dax0.0)"
	qemu_cmd "$PMEM" kmemfs.shell=1
	exec "${QEMU[@]}" -display none -serial mon:stdio
fi

npass=0 nfail=0
for t in $TESTS; do
	WORK=$WORK_ROOT/$t
	rm -rf "$WORK"
	mkdir -p "$WORK"
	# a fresh, sparse NVDIMM per test: all zeroes, no labels
	truncate -s 1G "$WORK/PMEM.img"
	REASON="" LOGS=""
	start=$(date +%s)
	if "t_${t//-/_}"; then
		echo "PASS $t ($(($(date +%s) - start))s)"
		npass=$((npass + 1))
	else
		echo "FAIL $t: $REASON ($(($(date +%s) - start))s)"
		for l in $LOGS; do
			[ -e "$l" ] || continue
			echo "---- $l ----"
			tr -d '\r' <"$l" | grep -av -e '^KMEMFS-SUM: ' -e '^KMEMFS-SYNCED: ' | head -n 300
		done
		echo "---- end of $t logs (work dir $WORK) ----"
		nfail=$((nfail + 1))
	fi
done
echo "$npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
