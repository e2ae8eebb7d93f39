# systems.sh -- mount and unmount the systems under test; sourced by run.sh.
#
# Every system NAME has sys_NAME_mount and sys_NAME_umount. A mount leaves the
# mount point in $MNT and, for the FUSE systems, the daemon's pid in $DAEMON_PID
# (empty for tmpfs). Everything mounted is also pushed on MOUNTS and every daemon
# on DAEMONS, so that run.sh's exit trap can take it down even when a job hangs.
#
#   kmemfs          build/bin/kmemfs on a pool file in /dev/shm (tmpfs-backed)
#   tmpfs           a fresh kernel tmpfs: the ceiling
#   passthrough_ll  libfuse's example daemon over a fresh tmpfs: the FUSE floor

MOUNTS=()
DAEMONS=()
MNT=""
DAEMON_PID=""

is_mounted() { mountpoint -q "$1" 2>/dev/null; }

# wait_for SECONDS CMD...: poll CMD every 10 ms until it succeeds or SECONDS
# (wall clock, so slow polls on a busy machine do not stretch it) have passed
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while [ "$SECONDS" -le "$end" ]; do
		"$@" && return 0
		sleep 0.01
	done
	return 1
}

pid_alive() { kill -0 "$1" 2>/dev/null; }
pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# fuse_abort MNT: fail every pending request of the FUSE mount on MNT, so that
# processes stuck in it return and the mount can be taken down
fuse_abort() {
	local dev conn
	dev=$(mountpoint -d "$1" 2>/dev/null) || return 0
	conn=${dev#*:}
	[ -d /sys/fs/fuse/connections/"$conn" ] ||
		mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null
	[ -w /sys/fs/fuse/connections/"$conn"/abort ] &&
		echo 1 >/sys/fs/fuse/connections/"$conn"/abort
	return 0
}

# unmount_path MNT: polite unmount, retried a few times (a job's last close may
# still be in flight); if it stays busy, abort the connection and detach it
unmount_path() {
	local m=$1 i
	for ((i = 0; i < 5; i++)); do
		is_mounted "$m" || return 0
		fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null
		is_mounted "$m" || return 0
		sleep 1
	done
	log "unmount of $m stays busy: aborting and detaching it"
	fuse_abort "$m"
	umount -l "$m" 2>/dev/null
	! is_mounted "$m"
}

# stop_daemon PID: wait for a daemon to exit after its unmount, then insist
stop_daemon() {
	local pid=$1
	[ -n "$pid" ] || return 0
	wait_for 30 pid_gone "$pid" && return 0
	log "daemon $pid still running 30 s after unmount: SIGTERM"
	kill -TERM "$pid" 2>/dev/null
	wait_for 10 pid_gone "$pid" && return 0
	kill -KILL "$pid" 2>/dev/null
	wait_for 5 pid_gone "$pid"
}

# cleanup_systems: the exit trap's half for mounts and daemons, newest first
cleanup_systems() {
	local i
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		unmount_path "${MOUNTS[i]}"
	done
	for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
		pid_alive "${DAEMONS[i]}" && stop_daemon "${DAEMONS[i]}"
	done
	MOUNTS=()
	DAEMONS=()
}

# ---- kmemfs ----------------------------------------------------------------------

sys_kmemfs_available() { [ -x "$KMEMFS_BIN" ]; }

# kmemfs_pid: the daemon serving $POOL (it daemonizes, so $! is not it)
kmemfs_pid() {
	local p args a
	for p in /proc/[0-9]*; do
		mapfile -d "" -t args 2>/dev/null <"$p/cmdline" || continue
		[ ${#args[@]} -gt 1 ] || continue
		[ "$(basename -- "${args[0]}")" = kmemfs ] || continue
		for a in "${args[@]:1}"; do
			if [ "$a" = "$POOL" ]; then
				echo "${p#/proc/}"
				return 0
			fi
		done
	done
	return 1
}

# kmemfs_ready: mounted and the root answers (what a user waits for)
kmemfs_ready() { is_mounted "$MNT" && stat "$MNT" >/dev/null 2>&1; }

# kmemfs_start: mount $POOL on $MNT; --size only when the pool must be created
kmemfs_start() {
	local size=()
	[ -e "$POOL" ] || size=(--size "$POOL_SIZE")
	# KMEMFS_MOUNT_OPTS: mount options for kmemfs (run.sh --uring on: uring)
	[ -n "${KMEMFS_MOUNT_OPTS:-}" ] && size+=(-o "$KMEMFS_MOUNT_OPTS")
	if ! timeout -k 5 120 "$KMEMFS_BIN" "${size[@]}" "$POOL" "$MNT" >>"$LOG" 2>&1; then
		log "kmemfs ${size[*]} $POOL $MNT failed"
		return 1
	fi
	wait_for 30 kmemfs_ready || { log "kmemfs did not appear on $MNT"; return 1; }
	MOUNTS+=("$MNT")
	DAEMON_PID=$(kmemfs_pid) || DAEMON_PID=""
	[ -n "$DAEMON_PID" ] && DAEMONS+=("$DAEMON_PID")
	return 0
}

kmemfs_stop() {
	# which way the requests came (io_uring or /dev/fuse), for the log
	[ -x "$ROOT/build/bin/kmemfsctl" ] &&
		log "kmemfs requests: $("$ROOT/build/bin/kmemfsctl" stat "$MNT" --json 2>&1 |
			jq -c '{requests_ring, requests_dev}' 2>&1)"
	unmount_path "$MNT" || return 1
	stop_daemon "$DAEMON_PID"
}

sys_kmemfs_mount() {
	MNT=$WORK/mnt-kmemfs
	mkdir -p "$MNT"
	rm -f "$POOL" # a fresh pool each run: no run inherits another's layout
	kmemfs_start
}

sys_kmemfs_umount() {
	kmemfs_stop
	rm -f "$POOL"
}

# ---- tmpfs -------------------------------------------------------------------------

sys_tmpfs_available() { true; }

sys_tmpfs_mount() {
	MNT=$WORK/mnt-tmpfs
	DAEMON_PID=""
	mkdir -p "$MNT"
	mount -t tmpfs -o "size=$TMPFS_SIZE,mode=755" kmemfs-bench "$MNT" || return 1
	MOUNTS+=("$MNT")
}

sys_tmpfs_umount() { unmount_path "$MNT"; }

# ---- passthrough_ll --------------------------------------------------------------------

sys_passthrough_ll_available() { [ -x "$PLL_BIN" ]; }

sys_passthrough_ll_mount() {
	MNT=$WORK/mnt-passthrough_ll
	PLL_SRC=$WORK/src-passthrough_ll
	mkdir -p "$MNT" "$PLL_SRC"
	mount -t tmpfs -o "size=$TMPFS_SIZE,mode=755" kmemfs-bench-src "$PLL_SRC" || return 1
	MOUNTS+=("$PLL_SRC")
	# -f keeps it in the foreground so that $! is the daemon; defaults otherwise
	"$PLL_BIN" -f -o "source=$PLL_SRC" "$MNT" >>"$LOG" 2>&1 &
	DAEMON_PID=$!
	DAEMONS+=("$DAEMON_PID")
	wait_for 30 is_mounted "$MNT" || { log "passthrough_ll did not mount"; return 1; }
	MOUNTS+=("$MNT")
}

sys_passthrough_ll_umount() {
	unmount_path "$MNT"
	stop_daemon "$DAEMON_PID"
	unmount_path "$PLL_SRC"
}

# backing_path FILE: where a file under $MNT really lives (for block counts)
backing_path() {
	case "$SYS" in
	kmemfs) echo "$POOL" ;;
	passthrough_ll) echo "$PLL_SRC/${1#"$MNT"/}" ;;
	*) echo "$1" ;;
	esac
}
