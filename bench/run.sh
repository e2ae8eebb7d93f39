#!/bin/bash
# run.sh -- kmemfs benchmark harness: the same jobs on kmemfs, tmpfs and libfuse's
# passthrough_ll, each several times, into docs/performance/results.{md,json,png}.
#
#   bench/run.sh [--quick] [--systems kmemfs,tmpfs,passthrough_ll] [--runs N]
#                [--jobs seq,rand,punch,clone,dbench,fcreate,mount] [--out DIR]
#                [--uring on|off]
#
# All systems are mounted at once, and every job runs on each of them in turn
# before the next job starts, so their figures for a job are seconds apart.
#
# --quick    small sizes, 1 run (about 2 minutes): for development
# --runs N   repeat every job N times (default 3); the report gives the median
#            and the spread (min-max)
# --jobs     run only these job groups (the report covers what ran)
# --out      where the report goes (default docs/performance)
# --uring    on: kmemfs mounts with -o uring and the kernel offers FUSE over
#            io_uring during the run (the fuse module's enable_uring, put back
#            at the end); off (default): kmemfs as it mounts by default.
#            passthrough_ll (libfuse 3.14) reads /dev/fuse either way.
#
# Needs root (mounts) and /dev/fuse. Installs fio, dbench, gnuplot-nox, jq and
# the libfuse example sources from Debian's archive when missing. kmemfs comes
# from build/bin/kmemfs (KMEMFS_BIN overrides); when it is not there its rows
# say "not built" and the other systems still run.
# The pool is /dev/shm/kmemfs-bench.img (KMEMFS_BENCH_POOL overrides); everything
# else lives in a temporary directory that the exit trap unmounts and removes.
set -u
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
PYTHON=/usr/bin/python3

QUICK=0
RUNS=3
RUNS_SET=0
SYSTEMS=kmemfs,tmpfs,passthrough_ll
JOB_GROUPS=seq,rand,punch,clone,dbench,fcreate,mount
OUT=$ROOT/docs/performance
URING=off
URING_PARAM=/sys/module/fuse/parameters/enable_uring
URING_SAVED=""

usage() {
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--runs) RUNS=${2:?}; RUNS_SET=1; shift ;;
	--runs=*) RUNS=${1#*=}; RUNS_SET=1 ;;
	--systems) SYSTEMS=${2:?}; shift ;;
	--systems=*) SYSTEMS=${1#*=} ;;
	--jobs) JOB_GROUPS=${2:?}; shift ;;
	--jobs=*) JOB_GROUPS=${1#*=} ;;
	--out) OUT=${2:?}; shift ;;
	--out=*) OUT=${1#*=} ;;
	--uring) URING=${2:?}; shift ;;
	--uring=*) URING=${1#*=} ;;
	-h | --help) usage ;;
	*) echo "run.sh: unknown argument '$1'" >&2; usage ;;
	esac
	shift
done
case "$URING" in on | off) ;; *) echo "run.sh: --uring wants on or off" >&2; exit 2 ;; esac
[[ "$RUNS" =~ ^[1-9][0-9]?$ ]] || { echo "run.sh: --runs wants 1..99" >&2; exit 2; }
for s in ${SYSTEMS//,/ }; do
	case "$s" in
	kmemfs | tmpfs | passthrough_ll) ;;
	*) echo "run.sh: unknown system '$s'" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "run.sh: must run as root (mounts)" >&2; exit 2; }

# ---- sizes -------------------------------------------------------------------------

if [ "$QUICK" -eq 1 ]; then
	[ "$RUNS_SET" -eq 1 ] || RUNS=1
	SEQ_SIZE=$((256 * 1048576))
	RAND_SIZE=$((128 * 1048576))
	RAND_TIME=2
	PUNCH_SIZE=$((128 * 1048576))
	CLONE_SIZE=$((256 * 1048576))
	NFILES=10000
	NFILES_SMALL=0
	DBENCH_TIME=3
else
	SEQ_SIZE=$((1024 * 1048576))
	RAND_SIZE=$((1024 * 1048576))
	RAND_TIME=10
	PUNCH_SIZE=$((1024 * 1048576))
	CLONE_SIZE=$((1024 * 1048576))
	NFILES=100000
	NFILES_SMALL=10000 # also run on 10k: passthrough_ll cannot hold 100k inodes with nofile 20000
	DBENCH_TIME=10
fi
FIO_TIMEOUT=300
POOL=${KMEMFS_BENCH_POOL:-/dev/shm/kmemfs-bench.img}
POOL_SIZE=3G
TMPFS_SIZE=4G
KMEMFS_BIN=${KMEMFS_BIN:-$ROOT/build/bin/kmemfs}

# ---- logging and results ---------------------------------------------------------------

WORK=$(mktemp -d /tmp/kmemfs-bench.XXXXXX) || exit 1
RAW=$WORK/raw
LOG=$WORK/bench.log
SAMPLES=$WORK/samples.tsv
mkdir -p "$RAW"
: >"$SAMPLES"

log() { printf '%s %s\n' "$(date +%T)" "$*" | tee -a "$LOG" >&2; }

SYS="" RUN=0
# record JOB VALUE: one sample of the current system and run
record() {
	[ -n "$2" ] && [ "$2" != null ] || { job_failed "$1" "empty value"; return; }
	printf '%s\t%s\t%s\tvalue\t%s\n' "$SYS" "$1" "$RUN" "$2" >>"$SAMPLES"
}
# job_failed JOB WHY: the job ran but produced no number
job_failed() {
	log "FAILED $SYS run $RUN $1: $2"
	printf '%s\t%s\t%s\tfailed\t%s\n' "$SYS" "$1" "$RUN" "$2" >>"$SAMPLES"
}
# sys_status SYSTEM STATUS: a whole system did not run (not built, mount failed)
sys_status() {
	printf '%s\t*\t%s\tstatus\t%s\n' "$1" "$RUN" "$2" >>"$SAMPLES"
}

. "$BENCH_DIR/systems.sh"
. "$BENCH_DIR/jobs.sh"

LOCK_FD=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	cleanup_systems
	rm -f "$POOL"
	[ -n "$URING_SAVED" ] && echo "$URING_SAVED" >"$URING_PARAM"
	if [ "${KEEP_WORK:-0}" = 1 ] || [ $rc -ne 0 ]; then
		echo "run.sh: work directory kept: $WORK (log: $LOG)" >&2
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# One harness at a time: two would share the pool path and fight for the CPUs.
exec {LOCK_FD}>/dev/shm/kmemfs-bench.lock
flock -n "$LOCK_FD" || { echo "run.sh: another run.sh holds /dev/shm/kmemfs-bench.lock" >&2; exit 1; }

# ---- dependencies and helpers ----------------------------------------------------------

# the project's installer (scripts/deps.sh) with the bench's extra tools
"$ROOT/scripts/deps.sh" fio dbench gnuplot-nox python3 >>"$LOG" 2>&1 ||
	{ echo "run.sh: cannot install the tools (see $LOG)" >&2; exit 1; }

# FUSE over io_uring: what the kernel offers new mounts during the run
URING_STATE="off (kmemfs's default)"
if [ "$URING" = on ]; then
	[ -w "$URING_PARAM" ] ||
		{ echo "run.sh: --uring on: this kernel has no FUSE over io_uring" >&2; exit 1; }
	URING_SAVED=$(cat "$URING_PARAM")
	echo Y >"$URING_PARAM"
	export KMEMFS_MOUNT_OPTS=uring
	URING_STATE="on (kmemfs -o uring, fuse.enable_uring=Y)"
fi
log "FUSE over io_uring: $URING_STATE"

# passthrough_ll keeps an open fd per inode it knows: give it as many as we may
ulimit -n "$(ulimit -Hn)" 2>/dev/null

BIN=$WORK/bin
mkdir -p "$BIN"
FCREATE_BIN=$BIN/fcreate
cc -O2 -Wall -Wextra -o "$FCREATE_BIN" "$BENCH_DIR/fcreate.c" 2>>"$LOG" ||
	{ echo "run.sh: cannot build fcreate (see $LOG)" >&2; exit 1; }

# passthrough_ll: built from the source Debian ships with libfuse3-dev, so it
# matches the installed library; the example's own headers sit next to it.
# The HAVE_* switches are what libfuse's own build sets on Linux: without them
# the example refuses PUNCH_HOLE and copy_file_range, and would lose those
# jobs for a reason that has nothing to do with FUSE.
build_passthrough_ll() {
	local ex=/usr/share/doc/libfuse3-dev/examples f
	mkdir -p "$BIN/pll"
	for f in passthrough_ll.c passthrough_helpers.h; do
		if [ -e "$ex/$f" ]; then
			cp "$ex/$f" "$BIN/pll/"
		elif [ -e "$ex/$f.gz" ]; then
			gzip -dc "$ex/$f.gz" >"$BIN/pll/$f"
		fi
	done
	cc -O2 -Wall -DHAVE_FALLOCATE -DHAVE_POSIX_FALLOCATE -DHAVE_COPY_FILE_RANGE \
		-o "$BIN/passthrough_ll" "$BIN/pll/passthrough_ll.c" \
		$(pkg-config --cflags --libs fuse3) >>"$LOG" 2>&1
}
PLL_BIN=$BIN/passthrough_ll
build_passthrough_ll || log "cannot build passthrough_ll (see $LOG)"

# kmemfs: run a private copy, so that a rebuild during the run (others work in
# the same tree) cannot mix two builds in one table; its identity goes in the report
KMEMFS_SHA=""
KMEMFS_MTIME=""
if [ -x "$KMEMFS_BIN" ]; then
	mkdir -p "$BIN/kmemfs.d"
	cp "$KMEMFS_BIN" "$BIN/kmemfs.d/kmemfs"
	KMEMFS_SHA=$(sha256sum "$KMEMFS_BIN" | cut -c1-12)
	KMEMFS_MTIME=$(date -u -r "$KMEMFS_BIN" +%Y-%m-%dT%H:%M:%SZ)
	KMEMFS_BIN=$BIN/kmemfs.d/kmemfs
fi

DBENCH_LOADFILE=/usr/share/dbench/client.txt
[ -r "$DBENCH_LOADFILE" ] || DBENCH_LOADFILE=$(dpkg -L dbench | grep -m1 'client.txt')

# QD16 engine: io_uring when this kernel and fio allow it, else libaio
QD_ENGINE=libaio
if fio --name=probe --filename="$WORK/probe" --size=1M --rw=read --ioengine=io_uring \
	--iodepth=4 --output="$WORK/probe.out" >/dev/null 2>&1; then
	QD_ENGINE=io_uring
fi
rm -f "$WORK/probe" "$WORK/probe.out"

# ---- the run ----------------------------------------------------------------------------

want_group() { [[ ",$JOB_GROUPS," == *",$1,"* ]]; }

# load: the 1-minute load average and the busiest other processes, so noisy
# figures can be told from real ones
note_load() {
	local l
	l=$(cut -d' ' -f1 /proc/loadavg)
	printf '%s\tload1\t%s\tvalue\t%s\n' "$SYS" "$RUN" "$l" >>"$SAMPLES"
	{
		echo "--- load before $SYS run $RUN: $(cat /proc/loadavg)"
		ps -eo pcpu=,comm= --sort=-pcpu | head -n 5
	} >>"$LOG"
}

# warm_memory: write and free a tmpfs file as large as the jobs' working set,
# at the start of each run. This machine is a VM with free page reporting
# (dmesg: "Free page reporting enabled"): memory the guest frees goes back to
# the host within seconds, and touching it again costs a hypervisor fault
# (0.5 GiB/s for such pages against 1.5-1.9 GiB/s for pages used a moment ago).
# Without this, whichever system happens to allocate first after a pause pays
# for it (within the run the systems take turns, so each pays alike).
warm_memory() {
	local mib avail
	avail=$(awk '/^MemAvailable/ { print int($2 / 1024) }' /proc/meminfo)
	mib=$((4 * 1024))
	[ "$mib" -gt $((avail / 2)) ] && mib=$((avail / 2))
	mkdir -p "$WORK/warm"
	mount -t tmpfs -o "size=${mib}m" kmemfs-bench-warm "$WORK/warm" || return 0
	dd if=/dev/zero of="$WORK/warm/f" bs=1M count="$mib" status=none 2>/dev/null
	umount "$WORK/warm"
	log "touched $mib MiB of memory, so that no system pays the host's first touch"
}

START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "work directory $WORK; systems $SYSTEMS; runs $RUNS; quick $QUICK; QD16 engine $QD_ENGINE"

# Every system stays mounted for the whole run, and each step of the plan
# (jobs.sh, plan_steps) runs on all of them in turn before the next step.
# S_* keep each system's mount point, daemon and source directory.
declare -A S_MNT=() S_PID=() S_SRC=() S_UP=()
select_system() {
	SYS=$1 MNT=${S_MNT[$1]} DAEMON_PID=${S_PID[$1]} PLL_SRC=${S_SRC[$1]}
}
keep_system() {
	S_MNT[$SYS]=$MNT S_PID[$SYS]=$DAEMON_PID S_SRC[$SYS]=${PLL_SRC:-}
}

# mount_systems: mount every available system for run $RUN; S_UP says which are
mount_systems() {
	local s
	for s in "${ORDER[@]}"; do
		SYS=$s S_UP[$s]=0
		if ! "sys_${s}_available"; then
			[ "$s" = kmemfs ] && sys_status "$s" "not built" || sys_status "$s" "not available"
			continue
		fi
		MNT="" DAEMON_PID="" PLL_SRC=""
		if ! "sys_${s}_mount"; then
			sys_status "$s" "mount failed"
			continue
		fi
		keep_system
		S_UP[$s]=1
		log "$s run $RUN: mounted on $MNT (daemon ${DAEMON_PID:-none})"
		rss_sample before
	done
}

umount_systems() {
	local s
	for s in "${ORDER[@]}"; do
		[ "${S_UP[$s]:-0}" = 1 ] || continue
		select_system "$s"
		"sys_${s}_umount" || log "$s: unmount failed"
		S_UP[$s]=0
	done
	cleanup_systems
}

# run_step K: step K of the plan on every mounted system. The order rotates
# with the step and the run, so no system is always the one that goes first
# after another's clean-up. A system whose mount dies sits out the rest of the run.
run_step() {
	local k=$1 step=${STEPS[$1]} i n=${#ORDER[@]} s
	for ((i = 0; i < n; i++)); do
		s=${ORDER[(i + k + RUN - 1) % n]}
		[ "${S_UP[$s]:-0}" = 1 ] || continue
		[ "$step" = job_mount ] && [ "$s" != kmemfs ] && continue
		select_system "$s"
		note_load
		log "$SYS run $RUN: $step"
		$step
		keep_system
		if ! is_mounted "$MNT"; then
			job_failed "${step%% *}" "mount lost"
			S_UP[$s]=0
		fi
	done
}

read -ra ORDER <<<"${SYSTEMS//,/ }"
plan_steps
for ((RUN = 1; RUN <= RUNS; RUN++)); do
	warm_memory
	mount_systems
	for ((K = 0; K < ${#STEPS[@]}; K++)); do
		run_step "$K"
	done
	umount_systems
done
SYS="" RUN=0

# ---- report -----------------------------------------------------------------------------

cat >"$WORK/meta.json" <<EOF
{
  "started": "$START",
  "finished": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "quick": $([ $QUICK -eq 1 ] && echo true || echo false),
  "runs": $RUNS,
  "systems": "$SYSTEMS",
  "job_groups": "$JOB_GROUPS",
  "kernel": "$(uname -r)",
  "cpu": "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)",
  "cpus": $(nproc),
  "mem_gib": $(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo),
  "fio": "$(fio --version)",
  "qd16_engine": "$QD_ENGINE",
  "fuse_uring": "$URING_STATE",
  "kmemfs_commit": "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)",
  "kmemfs_built": $([ -x "$KMEMFS_BIN" ] && echo true || echo false),
  "kmemfs_binary_sha256": "$KMEMFS_SHA",
  "kmemfs_binary_mtime": "$KMEMFS_MTIME",
  "nofile_limit": "$(ulimit -n)",
  "load_start": "$LOAD_START",
  "load_end": "$(cut -d' ' -f1-3 /proc/loadavg)",
  "sizes": {"seq": $SEQ_SIZE, "rand": $RAND_SIZE, "rand_time_s": $RAND_TIME,
            "punch": $PUNCH_SIZE, "clone": $CLONE_SIZE, "files": $NFILES, "files_small": $NFILES_SMALL,
            "dbench_time_s": $DBENCH_TIME}
}
EOF
mkdir -p "$OUT"
"$PYTHON" "$BENCH_DIR/report.py" --samples "$SAMPLES" --meta "$WORK/meta.json" --out "$OUT" ||
	{ echo "run.sh: report failed" >&2; exit 1; }
# the raw samples stay with the report, so it can be re-rendered:
#   bench/report.py --samples DIR/samples.tsv --meta DIR/meta.json --out DIR
cp "$SAMPLES" "$OUT/samples.tsv"
cp "$WORK/meta.json" "$OUT/meta.json"
cp "$LOG" "$OUT/last-run.log"
log "report in $OUT"
