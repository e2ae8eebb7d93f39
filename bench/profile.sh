#!/bin/bash
# profile.sh -- where kmemfs spends its time on short jobs, as text the lead can
# read: instructions per function (valgrind callgrind), system calls per request
# (strace -c) and CPU samples of the whole machine, kernel included (perf, with
# the cpu-clock software event: this VM exposes no hardware counters).
#
#   bench/profile.sh [--tools callgrind,strace,perf] [--jobs LIST] [--out DIR]
#
# LIST from seqwrite,seqread,randwrite,randread,create (default: all).
# Output: DIR/<job>.<tool>.txt (default docs/performance/profile) and a line
# per job and tool in DIR/summary.tsv. Every job runs on a fresh pool in /dev/shm.
set -u
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
TOOLS=callgrind,strace,perf
JOBS=seqwrite,seqread,randwrite,randread,create
OUT=$ROOT/docs/performance/profile

while [ $# -gt 0 ]; do
	case "$1" in
	--tools) TOOLS=${2:?}; shift ;;
	--jobs) JOBS=${2:?}; shift ;;
	--out) OUT=${2:?}; shift ;;
	*) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
	esac
	shift
done

KMEMFS_BIN=${KMEMFS_BIN:-$ROOT/build/bin/kmemfs}
[ -x "$KMEMFS_BIN" ] || { echo "profile.sh: $KMEMFS_BIN is not built" >&2; exit 2; }
for p in valgrind strace linux-perf fio; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
done

WORK=$(mktemp -d /tmp/kmemfs-profile.XXXXXX) || exit 1
LOG=$WORK/profile.log
RAW=$WORK
POOL=/dev/shm/kmemfs-profile.$$.img
POOL_SIZE=2G
log() { printf '%s %s\n' "$(date +%T)" "$*" | tee -a "$LOG" >&2; }
. "$BENCH_DIR/systems.sh"
MNT=$WORK/mnt
mkdir -p "$MNT" "$OUT"

TOOL_PID=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$TOOL_PID" ] && kill -INT "$TOOL_PID" 2>/dev/null
	cleanup_systems
	rm -f "$POOL"
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 -Wall -o "$WORK/fcreate" "$BENCH_DIR/fcreate.c" || exit 1

# start_daemon TOOL: a fresh pool mounted by kmemfs in the foreground, under
# valgrind for callgrind (the only tool that must start the process itself)
start_daemon() {
	local pre=()
	rm -f "$POOL"
	[ "$1" = callgrind ] && pre=(valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out"
		--dump-instr=no --separate-threads=no)
	"${pre[@]}" "$KMEMFS_BIN" -f --size "$POOL_SIZE" "$POOL" "$MNT" >>"$LOG" 2>&1 &
	DAEMON_PID=$!
	DAEMONS+=("$DAEMON_PID")
	wait_for 60 is_mounted "$MNT" || { log "kmemfs did not mount: $(tail -n 3 "$LOG")"; return 1; }
	MOUNTS+=("$MNT")
}

stop_daemon_now() {
	unmount_path "$MNT"
	stop_daemon "$DAEMON_PID"
	cleanup_systems
	rm -f "$POOL"
}

# prepare JOB: unmeasured setup (files to read)
prepare() {
	case "$1" in
	seqread) fio --name=p --directory="$MNT" --filename=f --rw=write --bs=1M --size="$SEQ" \
		--output=/dev/null >>"$LOG" 2>&1 ;;
	randwrite | randread) fio --name=p --directory="$MNT" --filename=f --rw=write --bs=1M \
		--size=64M --output=/dev/null >>"$LOG" 2>&1 ;;
	esac
}

# run_job JOB: the measured part; prints the number of file operations done
run_job() {
	local j=$1 out=$WORK/job.json
	case "$j" in
	seqwrite) fio --name=j --directory="$MNT" --filename=f --rw=write --bs=1M --size="$SEQ" \
		--end_fsync=1 --output-format=json --output="$out" >>"$LOG" 2>&1 ;;
	seqread) fio --name=j --directory="$MNT" --filename=f --rw=read --bs=1M --size="$SEQ" \
		--direct=1 --output-format=json --output="$out" >>"$LOG" 2>&1 ;;
	randwrite) fio --name=j --directory="$MNT" --filename=f --rw=randwrite --bs=4k \
		--size=64M --direct=1 --number_ios="$NIOS" --output-format=json --output="$out" \
		>>"$LOG" 2>&1 ;;
	randread) fio --name=j --directory="$MNT" --filename=f --rw=randread --bs=4k \
		--size=64M --direct=1 --number_ios="$NIOS" --output-format=json --output="$out" \
		>>"$LOG" 2>&1 ;;
	create)
		mkdir -p "$MNT/d"
		"$WORK/fcreate" -n "$NFILES" "$MNT/d" >"$WORK/fc.txt" 2>>"$LOG"
		cat "$WORK/fc.txt" >>"$LOG"
		echo $((NFILES * 3))
		return
		;;
	esac
	jq -r '.jobs[0] | .read.total_ios + .write.total_ios' "$out"
}

# summary line: job, tool, ops, figure
sum() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$OUT/summary.tsv"; }

profile_one() {
	local tool=$1 j=$2 f=$OUT/$2.$1.txt ops
	case "$tool" in
	callgrind) SEQ=64M NIOS=5000 NFILES=2000 ;;
	*) SEQ=512M NIOS=20000 NFILES=20000 ;;
	esac
	log "profile $j with $tool"
	start_daemon "$tool" || return 1
	prepare "$j"
	case "$tool" in
	callgrind)
		# count only the job: zero the counters, run, dump
		callgrind_control -z "$DAEMON_PID" >/dev/null 2>&1
		ops=$(run_job "$j")
		callgrind_control -d "$DAEMON_PID" >/dev/null 2>&1
		sleep 1
		stop_daemon_now
		# the dump asked for above is part 1; the final one (exit) is not ours
		local dump=$WORK/cg.out.1
		{
			echo "# kmemfs under callgrind, job $j: $ops file operations"
			echo "# exclusive (self) instructions per function, then inclusive"
			callgrind_annotate --auto=no --threshold=98 "$dump" 2>/dev/null | head -n 60
			echo
			callgrind_annotate --auto=no --inclusive=yes --threshold=98 "$dump" 2>/dev/null | head -n 60
		} >"$f"
		local ir
		ir=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
		sum "$j" callgrind "$ops" "instructions/op=$(awk -v a="$ir" -v b="$ops" 'BEGIN { printf "%.0f", a / b }')"
		rm -f "$WORK"/cg.out*
		;;
	strace)
		strace -c -f -p "$DAEMON_PID" -o "$WORK/strace.txt" 2>>"$LOG" &
		TOOL_PID=$!
		sleep 1
		ops=$(run_job "$j")
		kill -INT "$TOOL_PID"
		wait "$TOOL_PID" 2>/dev/null
		TOOL_PID=""
		stop_daemon_now
		local calls
		calls=$(awk '$NF == "total" { print $(NF - 2) }' "$WORK/strace.txt")
		{
			echo "# kmemfs daemon system calls (strace -c -f), job $j: $ops file operations"
			echo "# calls per operation: $(awk -v a="$calls" -v b="$ops" 'BEGIN { printf "%.2f", a / b }')"
			cat "$WORK/strace.txt"
		} >"$f"
		sum "$j" strace "$ops" "syscalls/op=$(awk -v a="$calls" -v b="$ops" 'BEGIN { printf "%.2f", a / b }')"
		;;
	perf)
		perf record -e cpu-clock -F 1999 -a -g -o "$WORK/perf.data" >>"$LOG" 2>&1 &
		TOOL_PID=$!
		sleep 1
		ops=$(run_job "$j")
		kill -INT "$TOOL_PID"
		wait "$TOOL_PID" 2>/dev/null
		TOOL_PID=""
		stop_daemon_now
		{
			echo "# whole machine, cpu-clock samples during job $j ($ops file operations)"
			echo "# (other users of the machine show up as other commands)"
			echo "## by command"
			perf report -i "$WORK/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null |
				grep -v '^#' | grep -v '^$' | head -n 12
			echo "## top symbols of kmemfs threads and fio (kernel and user)"
			perf report -i "$WORK/perf.data" --no-children --comms kmemfs,fio,fcreate \
				--sort comm,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' |
				head -n 45
		} >"$f"
		sum "$j" perf "$ops" "see $j.perf.txt"
		rm -f "$WORK/perf.data"
		;;
	esac
	# which build, when, and how busy the machine was
	sed -i "1i # kmemfs sha256 $BUILD_ID, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" "$f"
}
BUILD_ID=$(sha256sum "$KMEMFS_BIN" | cut -c1-12)

: >"$OUT/summary.tsv"
for t in ${TOOLS//,/ }; do
	for j in ${JOBS//,/ }; do
		profile_one "$t" "$j" || log "profile of $j with $t failed"
	done
done
column -t -s $'\t' "$OUT/summary.tsv"
