#!/bin/bash
# experiments.sh -- A/B checks behind the findings in docs/performance.md, each
# changing one thing from the outside (no kmemfs source change):
#
#   xattr   passthrough_ll without / with -o xattr: what the GETXATTR
#           (security.capability) round trip the kernel sends before every
#           WRITE costs, on 4 KiB O_DIRECT random writes at QD1
#   lend    kmemfs default / -o nolend: what taking 4 MiB units back from the
#           host (fallocate + MADV_POPULATE_WRITE) costs a 1 GiB sequential write
#   splice  kmemfs with fs.pipe-max-size 1 MiB (default) / 2 MiB: libfuse can
#           only splice requests when its 1 MiB + 4 KiB pipe fits, which needs
#           CAP_SYS_RESOURCE or a larger pipe-max-size; the value is restored
#
#   flush   kmemfs as started / with PMEM_NO_FLUSH=1 already in its environment:
#           libpmem reads PMEM_NO_FLUSH in its constructor, before main() can
#           setenv() it, so on a tmpfs pool every persist still runs CLWB per line
#
#   uring   kmemfs -o uring / without it, the kernel offering FUSE over io_uring
#           (fuse.enable_uring set for the run, then restored): 4 KiB O_DIRECT
#           random read and write at QD1 and QD16, 1 MiB O_DIRECT read; the
#           two mounts alternate within each run
#
#   bench/experiments.sh [--runs N] [xattr] [lend] [splice] [flush] [uring]   (default: all, 3 runs)
#
# Prints one line per variant: median (min-max) over the runs.
set -u
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
RUNS=3
WHICH=()
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) RUNS=${2:?}; shift ;;
	xattr | lend | splice | flush | uring) WHICH+=("$1") ;;
	*) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
	shift
done
[ ${#WHICH[@]} -gt 0 ] || WHICH=(xattr lend splice flush uring)

WORK=$(mktemp -d /tmp/kmemfs-exp.XXXXXX) || exit 1
LOG=$WORK/log
POOL=/dev/shm/kmemfs-exp.$$.img
POOL_SIZE=3G
TMPFS_SIZE=4G
log() { printf '%s %s\n' "$(date +%T)" "$*" >>"$LOG"; }
. "$BENCH_DIR/systems.sh"

PIPE_MAX_ORIG=$(cat /proc/sys/fs/pipe-max-size)
URING_PARAM=/sys/module/fuse/parameters/enable_uring
URING_ORIG=$(cat "$URING_PARAM" 2>/dev/null)
cleanup() {
	trap - EXIT INT TERM
	cleanup_systems
	echo "$PIPE_MAX_ORIG" >/proc/sys/fs/pipe-max-size
	[ -n "$URING_ORIG" ] && echo "$URING_ORIG" >"$URING_PARAM"
	rm -f "$POOL"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

KMEMFS_BIN=$WORK/kmemfs.d/kmemfs
mkdir -p "$WORK/kmemfs.d"
cp "$ROOT/build/bin/kmemfs" "$KMEMFS_BIN" || exit 1
PLL_BIN=$WORK/passthrough_ll
cp /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c \
	/usr/share/doc/libfuse3-dev/examples/passthrough_helpers.h "$WORK/" &&
	cc -O2 -DHAVE_FALLOCATE -DHAVE_POSIX_FALLOCATE -DHAVE_COPY_FILE_RANGE -o "$PLL_BIN" \
		"$WORK/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) || exit 1
MNT=$WORK/mnt
PLL_SRC=$WORK/src
mkdir -p "$MNT" "$PLL_SRC"

# stats VALUES...: "median (min-max)"
stats() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.3g (%.3g-%.3g)", m, v[1], v[NR] }'
}

fio_val() { # fio_val JQ ARGS...: run fio in $MNT, print one number
	local q=$1
	shift
	(cd "$MNT" && timeout -k 5 300 fio --output-format=json --output="$WORK/f.json" \
		--fallocate=none --group_reporting "$@") >>"$LOG" 2>&1 || { echo 0; return; }
	jq -r ".jobs[0]$q" "$WORK/f.json"
}

pll_up() {
	mount -t tmpfs -o "size=$TMPFS_SIZE" exp-src "$PLL_SRC" && MOUNTS+=("$PLL_SRC")
	"$PLL_BIN" -f -o "source=$PLL_SRC$1" "$MNT" >>"$LOG" 2>&1 &
	DAEMON_PID=$!
	DAEMONS+=("$DAEMON_PID")
	wait_for 30 is_mounted "$MNT" && MOUNTS+=("$MNT")
}
pll_down() { unmount_path "$MNT"; stop_daemon "$DAEMON_PID"; unmount_path "$PLL_SRC"; cleanup_systems; }

km_up() { # km_up [-o OPTS]; KM_ENV: extra environment (VAR=value ...)
	rm -f "$POOL"
	env ${KM_ENV:-} "$KMEMFS_BIN" "$@" --size "$POOL_SIZE" "$POOL" "$MNT" >>"$LOG" 2>&1 &&
		wait_for 30 is_mounted "$MNT" && MOUNTS+=("$MNT") && DAEMON_PID=$(kmemfs_pid)
}
km_down() { unmount_path "$MNT"; stop_daemon "$DAEMON_PID"; cleanup_systems; rm -f "$POOL"; }

randwrite_iops() { # extra fio arguments override the psync QD1 default
	fio_val .write.iops --name=r --filename=r.dat --size=256M --rw=randwrite --bs=4k \
		--direct=1 --ioengine=psync --norandommap --time_based --runtime=5 "$@"
}
# seqwrite_gibs: 1 GiB sequential write; GiB/s, and the daemon's CPU ms for it
# appended to $WORK/cpu
seqwrite_gibs() {
	local t0
	rm -f "$MNT/s.dat"
	t0=$(awk '{ print $14 + $15 }' /proc/"$DAEMON_PID"/stat)
	fio_val .write.bw_bytes --name=s --filename=s.dat --size=1G --rw=write --bs=1M \
		--end_fsync=1 | awk '{ printf "%.3f", $1 / 1073741824 }'
	awk -v t0="$t0" -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15 - t0) * 1000 / hz }' \
		/proc/"$DAEMON_PID"/stat >>"$WORK/cpu"
}
cpu_stats() { stats $(cat "$WORK/cpu"); rm -f "$WORK/cpu"; }

exp_xattr() {
	local opt a b
	for opt in "" ",xattr"; do
		a=()
		pll_up "$opt" || { echo "xattr: passthrough_ll did not mount"; return; }
		fio_val .write.iops --name=p --filename=r.dat --size=256M --rw=write --bs=1M >/dev/null
		b=()
		for ((i = 0; i < RUNS; i++)); do
			a+=("$(randwrite_iops)")
			b+=("$(randwrite_iops --ioengine=io_uring --iodepth=16)")
		done
		pll_down
		echo "xattr  passthrough_ll${opt:+ -o ${opt#,}}  4k randwrite IOPS QD1: $(stats "${a[@]}"), io_uring QD16: $(stats "${b[@]}")"
	done
}

exp_lend() {
	local o a
	for o in "" nolend; do
		a=()
		for ((i = 0; i < RUNS; i++)); do
			if [ -n "$o" ]; then km_up -o "$o"; else km_up; fi || { echo "lend: no mount"; return; }
			a+=("$(seqwrite_gibs)")
			km_down
		done
		echo "lend   kmemfs${o:+ -o $o}  1 GiB seq write GiB/s: $(stats "${a[@]}"), daemon CPU ms: $(cpu_stats)"
	done
}

exp_splice() {
	local sz a
	for sz in 1048576 2097152; do
		a=()
		echo "$sz" >/proc/sys/fs/pipe-max-size || { echo "splice: cannot set pipe-max-size"; return; }
		for ((i = 0; i < RUNS; i++)); do
			km_up || { echo "splice: no mount"; return; }
			a+=("$(seqwrite_gibs)")
			km_down
		done
		echo "splice kmemfs, pipe-max-size $sz  1 GiB seq write GiB/s: $(stats "${a[@]}"), daemon CPU ms: $(cpu_stats)"
	done
	echo "$PIPE_MAX_ORIG" >/proc/sys/fs/pipe-max-size
}

exp_flush() {
	local e a
	for e in "" PMEM_NO_FLUSH=1; do
		a=()
		for ((i = 0; i < RUNS; i++)); do
			KM_ENV=$e km_up || { echo "flush: no mount"; return; }
			a+=("$(seqwrite_gibs)")
			km_down
		done
		echo "flush  kmemfs${e:+ with $e}  1 GiB seq write GiB/s: $(stats "${a[@]}"), daemon CPU ms: $(cpu_stats)"
	done
}

exp_uring() {
	local o i job
	local -A v
	local -a a
	local jobs="randread randread16 randwrite randwrite16 read1m"
	echo Y >"$URING_PARAM" 2>/dev/null || { echo "uring: this kernel has no FUSE over io_uring"; return; }
	for ((i = 0; i < RUNS; i++)); do
		for o in uring nouring; do
			if [ $o = uring ]; then km_up -o uring; else km_up; fi || { echo "uring: no mount"; return; }
			fio_val .write.iops --name=p --filename=r.dat --size=512M --rw=write --bs=1M >/dev/null
			for job in $jobs; do
				case $job in
				randread) a=(--rw=randread) ;;
				randread16) a=(--rw=randread --ioengine=io_uring --iodepth=16) ;;
				randwrite) a=(--rw=randwrite) ;;
				randwrite16) a=(--rw=randwrite --ioengine=io_uring --iodepth=16) ;;
				read1m) a=(--rw=read --bs=1M --time_based=0) ;;
				esac
				v[$o.$job]+=" $(fio_val '| .read.iops + .write.iops' --name=r --filename=r.dat \
					--size=512M --bs=4k --direct=1 --ioengine=psync --norandommap \
					--time_based --runtime=3 "${a[@]}")"
			done
			km_down
		done
	done
	for job in $jobs; do
		echo "uring  kmemfs $job (IOPS; read1m: 1 MiB requests/s)  io_uring: $(stats ${v[uring.$job]}), /dev/fuse: $(stats ${v[nouring.$job]})"
	done
}

echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg), $RUNS runs each"
for w in "${WHICH[@]}"; do
	"exp_$w"
done
echo "# load at end $(cut -d' ' -f1-3 /proc/loadavg)"
