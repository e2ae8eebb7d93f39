# jobs.sh -- the benchmark jobs; sourced by run.sh.
#
# A job runs on the mounted system ($SYS on $MNT, run $RUN) and calls
#   record JOB VALUE          one sample (units: see bench/report.py's catalogue)
#   job_failed JOB WHY        the job ran but gave no number (reported, not hidden)
# Job ids are the contract with report.py; keep the two in step.
# Sizes come from run.sh: SEQ_SIZE RAND_SIZE RAND_TIME PUNCH_SIZE CLONE_SIZE
# NFILES DBENCH_TIME (bytes, seconds, files).

MIB=1048576
GIB=1073741824

# daemon_ticks: CPU time (user + system, clock ticks) the FUSE daemon has used,
# exited worker threads included; 0 for tmpfs
daemon_ticks() {
	if [ -n "$DAEMON_PID" ] && [ -r /proc/"$DAEMON_PID"/stat ]; then
		awk '{ print $14 + $15 }' /proc/"$DAEMON_PID"/stat
	else
		echo 0
	fi
}
CLK_TCK=$(getconf CLK_TCK)

# fio_job OUT ARGS...: one fio run, JSON to $RAW/OUT.json; bounded in time.
# Leaves the daemon's CPU ticks spent during the run in FIO_DAEMON_TICKS.
fio_job() {
	local out=$RAW/$1.json t0 rc
	shift
	t0=$(daemon_ticks)
	(cd "$MNT" && timeout -k 10 "$FIO_TIMEOUT" fio --output-format=json --output="$out" \
		--fallocate=none --group_reporting "$@") >>"$LOG" 2>&1
	rc=$?
	FIO_DAEMON_TICKS=$(($(daemon_ticks) - t0))
	return $rc
}

# record_cpu JOB OUT RW: CPU cost per request of the last fio_job, which does not
# depend on how busy the machine is the way throughput does: the daemon's
# (cpu-daemon:JOB) and the submitting process's, kernel included (cpu-client:JOB),
# in microseconds per I/O
record_cpu() {
	local ops client
	ops=$(fio_get "$2" ".$3.total_ios")
	[ -n "$ops" ] && [ "$ops" != null ] && [ "$ops" -gt 0 ] 2>/dev/null || return 0
	[ "$SYS" = tmpfs ] ||
		record "cpu-daemon:$1" "$(awk -v t="$FIO_DAEMON_TICKS" -v hz="$CLK_TCK" -v n="$ops" \
			'BEGIN { printf "%.2f", t * 1e6 / hz / n }')"
	client=$(jq -r '.jobs[0] | (.usr_cpu + .sys_cpu) * .job_runtime * 10' "$RAW/$2.json")
	record "cpu-client:$1" "$(awk -v c="$client" -v n="$ops" 'BEGIN { printf "%.2f", c / n }')"
}

# fio_get OUT JQ-EXPR: a number from a fio result (aggregated by group_reporting)
fio_get() {
	jq -r ".jobs[0]$2" "$RAW/$1.json" 2>/dev/null
}

meminfo_kb() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
# blocks_kb FILE: space the file really holds (holes excluded), in KiB
blocks_kb() { stat -c '%b %B' -- "$1" 2>/dev/null | awk '{ printf "%d", $1 * $2 / 1024 }'; }

# ---- sequential 1 MiB ----------------------------------------------------------

# seq_pass MODE JOBS: write then read SEQ_SIZE with 1 MiB requests, MODE buf
# (page cache) or direct (O_DIRECT), JOBS 1 or 2 (the size is split between
# them). The write goes to fresh files and ends with fsync; the read reuses the
# files just written (fio drops their page cache first, invalidate=1), so FUSE
# reads reach the daemon.
seq_pass() {
	local mode=$1 nj=$2 direct=0 rw id out bw extra
	[ "$mode" = direct ] && direct=1
	rm -f "$MNT"/seq.*
	for rw in write read; do
		id=seq-$rw-${nj}j-$mode
		out=$SYS.$RUN.$id
		extra=()
		[ "$rw" = write ] && extra=(--end_fsync=1)
		if ! fio_job "$out" --name=seq --filename_format='seq.$jobnum' \
			--rw="$rw" --bs=1M --ioengine=psync --direct="$direct" \
			--numjobs="$nj" --size=$((SEQ_SIZE / nj)) "${extra[@]}"; then
			job_failed "$id" "fio failed"
			continue
		fi
		bw=$(fio_get "$out" ".$rw.bw_bytes")
		record "$id" "$(awk -v b="$bw" -v g=$GIB 'BEGIN { printf "%.3f", b / g }')"
		record_cpu "$id" "$out" "$rw"
	done
	rm -f "$MNT"/seq.*
}

# ---- 4 KiB random ------------------------------------------------------------------

# 4 KiB random read/write on one RAND_SIZE file with O_DIRECT (so every request
# reaches the filesystem, not the page cache): rand_prep writes the file,
# rand_pass ENGINE RW runs QD1 with psync or QD16 with $QD_ENGINE, 1 job, and
# rand_fsync_pass (the last) 4 KiB random writes with fsync after each, then
# removes the file. RAND_READY names the systems whose file was written.
RAND_FILE=rand.dat
declare -A RAND_READY=()

rand_prep() {
	RAND_READY[$SYS]=0
	if fio_job "$SYS.$RUN.rand-prep" --name=prep --filename=$RAND_FILE --rw=write --bs=1M \
		--size="$RAND_SIZE" --end_fsync=1; then
		RAND_READY[$SYS]=1
	else
		job_failed rand-read-qd1 "could not write the file"
	fi
}

rand_pass() {
	local eng=$1 rw=$2 qd=1 id out
	[ "$eng" = psync ] || qd=16
	id=rand-$rw-qd$qd
	[ "${RAND_READY[$SYS]:-0}" = 1 ] || { job_failed "$id" "no file (rand-prep failed)"; return; }
	out=$SYS.$RUN.$id
	if fio_job "$out" --name=rand --filename=$RAND_FILE --rw=rand$rw --bs=4k \
		--ioengine="$eng" --iodepth=$qd --direct=1 --size="$RAND_SIZE" \
		--norandommap --time_based --runtime="$RAND_TIME"; then
		record "$id" "$(fio_get "$out" ".$rw.iops")"
		record_cpu "$id" "$out" "$rw"
	else
		job_failed "$id" "fio failed"
	fi
}

rand_fsync_pass() {
	local id=rand-write-fsync out
	out=$SYS.$RUN.$id
	if [ "${RAND_READY[$SYS]:-0}" != 1 ]; then
		job_failed "$id" "no file (rand-prep failed)"
	elif fio_job "$out" --name=rand --filename=$RAND_FILE --rw=randwrite --bs=4k --ioengine=psync \
		--fsync=1 --size="$RAND_SIZE" --norandommap --time_based --runtime="$RAND_TIME"; then
		record "$id" "$(fio_get "$out" ".write.iops")"
		record_cpu "$id" "$out" write
	else
		job_failed "$id" "fio failed"
	fi
	rm -f "$MNT/$RAND_FILE"
}

# ---- punch hole and memory given back ------------------------------------------------

# job_punch: write PUNCH_SIZE, punch every other 64 KiB range (half the file,
# fragmented), then the rest; after each step read how much shared memory
# (/proc/meminfo Shmem, where tmpfs and /dev/shm pages are counted) went back
# to the system, as % of the bytes punched. Shmem is system-wide, so the
# blocks of the backing object (pool file / tmpfs file) are kept as a cross-check.
job_punch() {
	local f=$MNT/punch.dat back s0 s1 s2 s3 b1 b2 b3 half=$((PUNCH_SIZE / 2))
	back=$(backing_path "$f")
	s0=$(meminfo_kb Shmem)
	if ! fio_job "$SYS.$RUN.punch-prep" --name=prep --filename=punch.dat --rw=write \
		--bs=1M --size="$PUNCH_SIZE" --end_fsync=1; then
		job_failed punch-64k "could not write the file"
		return
	fi
	sleep 1
	s1=$(meminfo_kb Shmem) b1=$(blocks_kb "$back")
	if ! fio_job "$SYS.$RUN.punch-64k" --name=punch --filename=punch.dat \
		--ioengine=falloc --rw=trim:64k --bs=64k --size="$PUNCH_SIZE" --io_size=$half; then
		job_failed punch-64k "fallocate(PUNCH_HOLE) failed"
		rm -f "$f"
		return
	fi
	record punch-64k "$(fio_get "$SYS.$RUN.punch-64k" ".trim.iops")"
	sleep 1 # lending may be deferred; give it a moment, not more
	s2=$(meminfo_kb Shmem) b2=$(blocks_kb "$back")
	if fio_job "$SYS.$RUN.punch-rest" --name=punch --filename=punch.dat \
		--ioengine=falloc --rw=trim:64k --bs=64k --offset=64k \
		--size=$((PUNCH_SIZE - 65536)) --io_size=$half; then
		sleep 1
		s3=$(meminfo_kb Shmem) b3=$(blocks_kb "$back")
		record punch-given-back-all "$(pct $((s1 - s3)) $((PUNCH_SIZE / 1024)))"
		record punch-backing-back-all "$(pct $((b1 - b3)) $((PUNCH_SIZE / 1024)))"
	else
		job_failed punch-given-back-all "second punch pass failed"
	fi
	record punch-given-back-half "$(pct $((s1 - s2)) $((half / 1024)))"
	record punch-backing-back-half "$(pct $((b1 - b2)) $((half / 1024)))"
	record punch-write-shmem "$(pct $((s1 - s0)) $((PUNCH_SIZE / 1024)))"
	log "punch $SYS: Shmem kB before=$s0 written=$s1 half=$s2 all=${s3:-?};" \
		"backing kB written=$b1 half=$b2 all=${b3:-?}"
	rm -f "$f"
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? 100 * a / b : 0) }'; }

# ---- clone slot ----------------------------------------------------------------------

# job_clone: time `cp` of a CLONE_SIZE file. A slot for clones: until kmemfs
# shares pages in copy_file_range this is a plain copy on every system.
job_clone() {
	local t0 t1 src=$MNT/clone-src dst=$MNT/clone-dst
	if ! fio_job "$SYS.$RUN.clone-prep" --name=prep --filename=clone-src --rw=write \
		--bs=1M --size="$CLONE_SIZE" --end_fsync=1; then
		job_failed clone-cp "could not write the source"
		return
	fi
	t0=$(now_ns)
	if timeout -k 5 300 cp "$src" "$dst" 2>>"$LOG" &&
		[ "$(stat -c %s "$dst")" = "$CLONE_SIZE" ]; then
		t1=$(now_ns)
		record clone-cp "$(secs "$t0" "$t1")"
	else
		job_failed clone-cp "cp failed"
	fi
	rm -f "$src" "$dst"
}

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", (b - a) / 1e9 }'; }

# ---- dbench ------------------------------------------------------------------------------

# job_dbench: the Samba NetBench mix (metadata + small I/O), 2 clients
job_dbench() {
	local out=$RAW/$SYS.$RUN.dbench.txt tp
	mkdir -p "$MNT/dbench"
	if timeout -k 10 $((DBENCH_TIME + 120)) dbench -D "$MNT/dbench" -t "$DBENCH_TIME" \
		-c "$DBENCH_LOADFILE" 2 >"$out" 2>&1; then
		tp=$(sed -n 's/^Throughput \([0-9.]*\) MB\/sec.*/\1/p' "$out" | tail -n 1)
		if [ -n "$tp" ]; then
			record dbench "$tp"
		else
			job_failed dbench "no throughput line"
		fi
	else
		job_failed dbench "dbench failed: $(tail -n 2 "$out" | tr '\n' ' ')"
	fi
	rm -rf "$MNT/dbench"
}

# ---- metadata -------------------------------------------------------------------------------

# fcreate_run ID FILES: one fcreate pass; samples ID-create, ID-stat, ID-unlink
fcreate_run() {
	local out=$RAW/$SYS.$RUN.$1.txt ph n sec rate t0
	mkdir -p "$MNT/fcreate"
	t0=$(daemon_ticks)
	if ! timeout -k 10 900 "$FCREATE_BIN" -n "$2" "$MNT/fcreate" >"$out" 2>>"$LOG"; then
		job_failed "$1-create" "$(tail -n 1 "$LOG")"
	elif [ "$SYS" != tmpfs ]; then
		# one figure for the whole life of a file: create + stat + unlink
		record "cpu-daemon:$1-create" "$(awk -v t=$(($(daemon_ticks) - t0)) -v hz="$CLK_TCK" \
			-v n="$2" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')"
	fi
	while read -r ph n sec rate; do
		record "$1-$ph" "$rate"
	done <"$out"
	rm -rf "$MNT/fcreate"
}

# job_mount: kmemfs only -- fill a pool with NFILES files, unmount, and time a
# mount until `stat MNT` answers, then a `du -s` of them; then check all the
# files are there
job_mount() {
	local t0 t1 n
	[ "$SYS" = kmemfs ] || return 0
	mkdir -p "$MNT/many"
	if ! timeout -k 10 900 "$FCREATE_BIN" -n "$NFILES" -p create "$MNT/many" \
		>>"$LOG" 2>&1; then
		job_failed mount-files "could not create the files"
		return
	fi
	kmemfs_stop || { job_failed mount-files "unmount failed"; return 1; }
	t0=$(now_ns)
	if ! kmemfs_start; then
		job_failed mount-files "remount failed"
		return 1
	fi
	t1=$(now_ns)
	record mount-files "$(secs "$t0" "$t1")"
	# a listing that stats every name, on names the kernel does not know
	t0=$(now_ns)
	if timeout 300 du -s "$MNT/many" >/dev/null; then
		record mount-list "$(secs "$t0" "$(now_ns)")"
	else
		job_failed mount-list "du -s failed"
	fi
	n=$(timeout 300 ls -f "$MNT/many" | grep -c '^f')
	[ "$n" = "$NFILES" ] || job_failed mount-files "after remount $n of $NFILES files"
}

# ---- daemon memory -----------------------------------------------------------------------------

# rss_sample WHEN: the FUSE daemon's anonymous and shared resident memory (kB).
# RssShmem of kmemfs is its mapping of the pool (file data), RssAnon its heap.
rss_sample() {
	local k v
	[ -n "$DAEMON_PID" ] && [ -r /proc/"$DAEMON_PID"/status ] || return 0
	while read -r k v _; do
		case "$k" in
		RssAnon:) record "rss-anon-$1" "$(awk -v v="$v" 'BEGIN { printf "%.1f", v / 1024 }')" ;;
		RssShmem:) record "rss-shmem-$1" "$(awk -v v="$v" 'BEGIN { printf "%.1f", v / 1024 }')" ;;
		esac
	done </proc/"$DAEMON_PID"/status
}

# ---- the plan -------------------------------------------------------------------------------

# plan_steps: fill STEPS with the selected jobs in running order, each a command
# line run on every system before the next step starts (run.sh). Splitting the
# groups into short steps keeps a job's figures for the systems seconds apart,
# so a host that grows busy for a minute hits all of them rather than one.
plan_steps() {
	local mode nj eng rw
	STEPS=()
	if want_group seq; then
		for mode in buf direct; do
			for nj in 1 2; do
				STEPS+=("seq_pass $mode $nj")
			done
		done
	fi
	if want_group rand; then
		STEPS+=(rand_prep)
		for eng in psync "$QD_ENGINE"; do
			for rw in read write; do
				STEPS+=("rand_pass $eng $rw")
			done
		done
		STEPS+=(rand_fsync_pass)
	fi
	want_group punch && STEPS+=(job_punch)
	# the daemon's memory after the data jobs (its growth is reported)
	STEPS+=("rss_sample after-data")
	want_group clone && STEPS+=(job_clone)
	want_group dbench && STEPS+=(job_dbench)
	if want_group fcreate; then
		STEPS+=("fcreate_run fcreate $NFILES")
		[ "${NFILES_SMALL:-0}" -gt 0 ] && STEPS+=("fcreate_run fcreate-small $NFILES_SMALL")
	fi
	want_group mount && STEPS+=(job_mount) # kmemfs only
	return 0
}
