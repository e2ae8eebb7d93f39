# lib.sh -- harness for the kmemfs integration tests; sourced by test_*.sh.
#
#   . "$(dirname "$0")/lib.sh" "$@"     # $1: BIN_DIR holding kmemfs, mkfs.kmemfs, ...
#   fs_setup 256M allow_other,default_permissions
#   check '[ -d "$MNT" ]' "mount point is a directory"
#   expect_errno ENOENT "stat of a missing name" probe stat "$MNT/nope"
#   finish
#
# Output is one line per check ("ok N - ..." / "not ok N - ..." / "skip N - ...");
# the script exits 1 if any check failed, 77 (ctest SKIP_RETURN_CODE) if the whole
# test does not apply to the target, else 0.
#
# KMEMFS_TEST_TARGET=tmpfs runs the same POSIX checks on a tmpfs, reached through
# a bind mount so that unmount/remount keeps the data, to prove the checks right
# without the daemon. Checks that only make sense on kmemfs are skipped there.
# KMEMFS_TEST_KEEP=1 keeps the work directory for inspection.
# KMEMFS_TEST_URING=1 makes the kernel offer FUSE over io_uring for the test's
# duration (the fuse module's enable_uring, put back at the end) and mounts with
# -o uring, so that kmemfs takes its requests from the rings (src/uring.c);
# every mount then checks that it does. A kernel without it makes the test a
# skip.
# KMEMFS_TEST_POOL_DIR puts the pool files elsewhere (default: the work directory
# under $TMPDIR). On a disk-backed file every kmemfs operation ends in an msync,
# so metadata-heavy tests put their pools in /dev/shm explicitly.

set -u
export LC_ALL=C

BIN_DIR=${1:-${KMEMFS_BIN_DIR:-}}
TARGET=${KMEMFS_TEST_TARGET:-kmemfs}
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEST_NAME=$(basename "$0" .sh)
N_PASS=0 N_FAIL=0 N_SKIP=0 N_CHECK=0
WATCHDOG_PID=""
POOL=""
MNT=""
MOUNT_OPTS=""

case "$TARGET" in
kmemfs | tmpfs) ;;
*) echo "$TEST_NAME: unknown KMEMFS_TEST_TARGET '$TARGET'" >&2; exit 2 ;;
esac
# without root or /dev/fuse nothing here can run: report a skip, never a pass
if [ "$(id -u)" -ne 0 ]; then
	echo "skip - $TEST_NAME: needs root (mounts, mknod, setpriv)"
	exit 77
fi
if [ "$TARGET" = kmemfs ] && [ ! -c /dev/fuse ]; then
	echo "skip - $TEST_NAME: no /dev/fuse"
	exit 77
fi

# World-traversable, so the non-root checks can reach the mount point.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kmemfs-it.XXXXXX") || exit 2
chmod 755 "$WORK"
MNT=$WORK/mnt
mkdir "$MNT"

# ---- reporting ---------------------------------------------------------------

note() { echo "# $*"; }

pass() {
	N_CHECK=$((N_CHECK + 1)); N_PASS=$((N_PASS + 1))
	echo "ok $N_CHECK - $1"
}

# fail MESSAGE [DETAIL...]: DETAIL lines are printed indented under the failure
fail() {
	local msg=$1
	shift
	N_CHECK=$((N_CHECK + 1)); N_FAIL=$((N_FAIL + 1))
	echo "not ok $N_CHECK - $msg"
	local d
	for d in "$@"; do
		printf '%s\n' "$d" | head -n 15 | sed 's/^/#     /'
	done
}

skip() {
	N_CHECK=$((N_CHECK + 1)); N_SKIP=$((N_SKIP + 1))
	echo "skip $N_CHECK - $1"
}

# check CONDITION MESSAGE: CONDITION is shell code, evaluated; its output is shown
# only when it fails.
check() {
	local out
	if out=$(eval "$1" 2>&1); then
		pass "$2"
	else
		fail "$2" "condition: $1" "$out"
	fi
}

# check_eq ACTUAL EXPECTED MESSAGE (multi-line values are shown as a diff)
check_eq() {
	if [ "$1" = "$2" ]; then
		pass "$3"
	elif [[ "$1$2" == *$'\n'* ]]; then
		fail "$3" "diff expected actual:" "$(diff <(printf '%s\n' "$2") <(printf '%s\n' "$1") | head -n 14)"
	else
		fail "$3" "expected: $2" "actual:   $1"
	fi
}

# check_cmd MESSAGE CMD...: passes when CMD exits 0 (no eval, arguments as given)
check_cmd() {
	local msg=$1 out
	shift
	if out=$(run_cmd "$@" 2>&1); then
		pass "$msg"
	else
		fail "$msg" "command: $*" "$out"
	fi
}

# expect_errno WANT MESSAGE CMD...: CMD is normally "probe OP ..." or
# "as_user UID probe OP ..."; WANT is an errno name (EACCES) or OK for success.
expect_errno() {
	local want=$1 msg=$2 out rc got
	shift 2
	out=$(run_cmd "$@" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		got=OK
	else
		got=$(printf '%s\n' "$out" | sed -n 's/^errno=//p' | tail -n 1)
		[ -n "$got" ] || got="exit $rc: $(printf '%s' "$out" | head -n 1)"
	fi
	if [ "$got" = "$want" ]; then
		pass "$msg"
	else
		fail "$msg" "command: $*" "expected: $want" "actual:   $got"
	fi
}

# finish: summary line and exit status
finish() {
	echo "# $TEST_NAME [$TARGET]: $N_PASS passed, $N_FAIL failed, $N_SKIP skipped"
	if [ $N_FAIL -gt 0 ]; then
		exit 1
	fi
	if [ $N_PASS -eq 0 ]; then
		# nothing was proven: never report that as a pass
		[ $N_SKIP -gt 0 ] && exit 77
		echo "# $TEST_NAME: no checks ran" >&2
		exit 1
	fi
	exit 0
}

# abort_test MESSAGE: a failure that makes the rest meaningless
abort_test() {
	fail "$1" "${@:2}"
	finish
}

# kmemfs_only: for tests that only mean something on kmemfs
kmemfs_only() {
	if [ "$TARGET" != kmemfs ]; then
		skip "$TEST_NAME is specific to kmemfs (target is $TARGET)"
		finish
	fi
}

on_kmemfs() { [ "$TARGET" = kmemfs ]; }

# ---- running things ------------------------------------------------------------

# test_tool NAME: $WORK/NAME, a helper program of these tests (fsprobe,
# fsexercise, ...): the build's copy when there is one, else compiled from
# $LIB_DIR/NAME.c (the tmpfs target needs no build). Copied into $WORK so other
# users may run it.
test_tool() {
	if [ -n "$BIN_DIR" ] && [ -x "$BIN_DIR/$1" ]; then
		cp "$BIN_DIR/$1" "$WORK/$1"
	else
		${CC:-cc} -O2 -Wall -pthread -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
			-I"$LIB_DIR/../../include" -o "$WORK/$1" \
			"$LIB_DIR/$1.c"
	fi && chmod 755 "$WORK/$1"
}

FSPROBE=$WORK/fsprobe
test_tool fsprobe || { echo "$TEST_NAME: cannot build fsprobe" >&2; exit 2; }

probe() { "$FSPROBE" "$@"; }

# run_cmd CMD...: like "$@" but maps the word "probe" to the helper binary, so
# the same spelling works under as_user
run_cmd() {
	if [ "$1" = probe ]; then
		shift
		"$FSPROBE" "$@"
	else
		"$@"
	fi
}

# as_user UID CMD...: run as UID:UID with no supplementary groups
# as_user UID:GID[:G1,G2] CMD...: explicit group and supplementary groups
as_user() {
	local spec=$1 uid gid groups
	shift
	IFS=: read -r uid gid groups <<<"$spec"
	gid=${gid:-$uid}
	local grp=(--clear-groups)
	[ -n "$groups" ] && grp=(--groups "$groups")
	if [ "$1" = probe ]; then
		shift
		setpriv --reuid="$uid" --regid="$gid" "${grp[@]}" -- "$FSPROBE" "$@"
	else
		setpriv --reuid="$uid" --regid="$gid" "${grp[@]}" -- "$@"
	fi
}

# without_cap CAP CMD...: CMD as root without capability CAP (e.g. fsetid):
# it leaves the inheritable and bounding sets, so the exec'd CMD never has it
without_cap() {
	local cap=$1
	shift
	[ "$1" = probe ] && { shift; set -- "$FSPROBE" "$@"; }
	setpriv --inh-caps "-$cap" --bounding-set "-$cap" -- "$@"
}

# stat_field PATH KEY: one field of "fsprobe lstat" (ino mode nlink uid gid size
# blocks rdev atime mtime ctime); empty when the lstat fails
stat_field() {
	probe lstat "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# wait_until SECONDS CONDITION: poll until CONDITION (shell code) holds
wait_until() {
	local deadline=$((SECONDS + $1))
	while ! eval "$2" >/dev/null 2>&1; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.2
	done
	return 0
}

# mib N -> bytes
mib() { echo $(($1 * 1024 * 1024)); }

# used_bytes: bytes in use on the mounted fs as statfs reports them
used_bytes() {
	stat -f -c '%b %f %S' "$MNT" | awk '{ printf "%d\n", ($1 - $2) * $3 }'
}

# used_inodes: inodes in use on the mounted fs as statfs reports them (df -i)
used_inodes() {
	stat -f -c '%c %d' "$MNT" | awk '{ print $1 - $2 }'
}

# manifest DIR [noino]: every name with type, mode, owner, size, links, blocks,
# mtime/ctime in ns, symlink target, content hash, xattrs and ACLs; one line per
# entry, sorted. Equal manifests mean equal trees (atime left out: reads move it).
# noino leaves out inode numbers and ctime, for comparing copies.
manifest() {
	local dir=$1 mode=${2:-}
	(
		cd "$dir" || exit 1
		if [ "$mode" = noino ]; then
			# directory sizes are the filesystem's own business
			find . -mindepth 1 ! -type d -printf '%P|%y|%m|%U|%G|%s|%n|%T@|%l\n'
			find . -mindepth 1 -type d -printf '%P|%y|%m|%U|%G|%n|%T@\n'
		else
			find . -mindepth 1 -printf '%P|%y|%m|%U|%G|%s|%n|%b|%i|%T@|%C@|%l\n'
		fi | sort
		find . -mindepth 1 -type f -print0 | sort -z | xargs -0r sha256sum
		# both tools print one blank-line separated block per file, in readdir
		# order: make each block one line and sort them
		getfattr -R -P -d -m - -e hex . 2>/dev/null | awk -v RS= '{ gsub(/\n/, " ; "); print }' | sort
		getfacl -R -P -n . 2>/dev/null | awk -v RS= '{ gsub(/\n/, " ; "); print }' | sort
	)
}

# ---- the filesystem under test --------------------------------------------------

# daemon_pids: kmemfs processes serving our pool (matched by its unique path)
daemon_pids() {
	local p args
	[ -n "$POOL" ] || return 0
	for p in /proc/[0-9]*; do
		mapfile -d '' -t args 2>/dev/null <"$p/cmdline" || continue
		[ ${#args[@]} -gt 0 ] || continue
		[ "$(basename -- "${args[0]}")" = kmemfs ] || continue
		local a
		for a in "${args[@]:1}"; do
			if [ "$a" = "$POOL" ]; then
				echo "${p#/proc/}"
				break
			fi
		done
	done
}

is_mounted() { mountpoint -q "$MNT"; }

# fs_create SIZE [DIR]: a fresh pool (kmemfs) or tmpfs of SIZE; DIR holds the pool
fs_create() {
	local size=$1 dir=${2:-${KMEMFS_TEST_POOL_DIR:-$WORK}}
	if on_kmemfs; then
		POOL=$dir/kmemfs-it.$$.$RANDOM.pool
		"$BIN_DIR/mkfs.kmemfs" --size "$size" "$POOL" >"$WORK/mkfs.out" 2>&1 ||
			abort_test "mkfs.kmemfs --size $size $POOL" "$(cat "$WORK/mkfs.out")"
	else
		POOL=$WORK/backing
		mkdir -p "$POOL"
		mount -t tmpfs -o "size=$size,mode=755" kmemfs-it "$POOL" ||
			abort_test "mount tmpfs of $size"
	fi
}

# fs_mount [OPTS]: mount the pool on $MNT with -o OPTS (daemonized kmemfs)
fs_mount() {
	MOUNT_OPTS=${1:-}
	if on_kmemfs; then
		local o=() opts=$MOUNT_OPTS
		[ "${KMEMFS_TEST_URING:-0}" = 1 ] && opts=uring${opts:+,$opts}
		[ -n "$opts" ] && o=(-o "$opts")
		if ! "$BIN_DIR/kmemfs" "${o[@]}" "$POOL" "$MNT" >"$WORK/mount.out" 2>&1; then
			fail "kmemfs ${o[*]} POOL MNT" "$(cat "$WORK/mount.out")"
			return 1
		fi
	else
		mount --bind "$POOL" "$MNT" || { fail "bind mount of tmpfs"; return 1; }
		case ",$MOUNT_OPTS," in
		*,ro,*) mount -o remount,bind,ro "$MNT" ;;
		esac
	fi
	if ! wait_until 10 is_mounted; then
		fail "mount appears on $MNT" "$(cat "$WORK/mount.out" 2>/dev/null)"
		return 1
	fi
	if [ "${KMEMFS_TEST_URING:-0}" = 1 ] && on_kmemfs; then
		stat "$MNT" >/dev/null
		local n
		n=$(requests_ring)
		[ "${n:-0}" -gt 0 ] || { fail "the mount takes its requests from io_uring (requests_ring $n)"; return 1; }
	fi
	return 0
}

# fs_umount: unmount and, on kmemfs, wait for the daemon to exit so the pool is
# closed before anyone opens it again
fs_umount() {
	if on_kmemfs; then
		local pids
		pids=$(daemon_pids)
		fusermount3 -u "$MNT" 2>"$WORK/umount.out" || umount "$MNT" 2>>"$WORK/umount.out" || {
			fail "unmount $MNT" "$(cat "$WORK/umount.out")"
			return 1
		}
		if [ -n "$pids" ] && ! wait_until 30 "! kill -0 $(echo $pids) 2>/dev/null"; then
			fail "daemon $pids exits after unmount"
			return 1
		fi
	else
		umount "$MNT" || { fail "unmount $MNT"; return 1; }
	fi
	return 0
}

# fs_remount [OPTS]: unmount and mount again (persistence checks)
fs_remount() {
	fs_umount && fs_mount "${1-$MOUNT_OPTS}"
}

# fs_setup SIZE [OPTS] [DIR]: fresh filesystem mounted on $MNT, or abort the test
fs_setup() {
	fs_create "$1" "${3:-}"
	fs_mount "${2:-}" || abort_test "cannot mount the filesystem under test"
}

# ---- watchdog and cleanup -------------------------------------------------------

# abort_fuse: fail every pending request of our FUSE mount so nothing hangs
abort_fuse() {
	local dev conn
	on_kmemfs || return 0
	# from mountinfo, not stat(2): a stat of a hung mount would hang too
	dev=$(awk -v m="$MNT" '$5 == m && / - fuse/ { d = $3 } END { print d }' \
		/proc/self/mountinfo)
	[ -n "$dev" ] || return 0
	conn=${dev#*:}
	if [ ! -d /sys/fs/fuse/connections/"$conn" ]; then
		mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null
	fi
	[ -w /sys/fs/fuse/connections/"$conn"/abort ] &&
		echo 1 >/sys/fs/fuse/connections/"$conn"/abort
}

# watchdog SECONDS: (re)arm the deadline. When it passes, abort the FUSE
# connection and stop the test, so a hung daemon fails the test instead of
# hanging ctest. The watcher polls a file, so re-arming never signals it.
watchdog() {
	printf '%(%s)T' -1 >"$WORK/deadline.new"
	echo $(($(cat "$WORK/deadline.new") + $1)) >"$WORK/deadline.new"
	mv "$WORK/deadline.new" "$WORK/deadline"
}

start_watchdog() {
	local me=$$
	(
		while sleep 1; do
			[ -f "$WORK/deadline" ] || exit 0
			local now deadline
			printf -v now '%(%s)T' -1
			deadline=$(<"$WORK/deadline")
			[ "$now" -ge "$deadline" ] && break
		done
		echo "not ok - $TEST_NAME: watchdog deadline passed, aborting"
		abort_fuse
		kill -TERM $me
	) &
	WATCHDOG_PID=$!
	disown $WATCHDOG_PID
}

# stop_mount: unmount MNT and see its daemon gone, whatever state a failure
# left them in (a no-op when neither is there)
stop_mount() {
	if is_mounted; then
		if on_kmemfs; then
			fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT" 2>/dev/null ||
				{ abort_fuse; umount -l "$MNT" 2>/dev/null; }
		else
			umount "$MNT" 2>/dev/null || umount -l "$MNT"
		fi
	fi
	if on_kmemfs; then
		local pids
		pids=$(daemon_pids)
		if [ -n "$pids" ] && ! wait_until 10 "! kill -0 $(echo $pids) 2>/dev/null"; then
			kill -TERM $pids 2>/dev/null
			wait_until 5 "! kill -0 $(echo $pids) 2>/dev/null" || kill -KILL $pids 2>/dev/null
		fi
	fi
}

cleanup() {
	local rc=$?
	trap - EXIT
	# SIGKILL: the watcher has no trap that could run in it
	[ -n "$WATCHDOG_PID" ] && kill -KILL "$WATCHDOG_PID" 2>/dev/null
	cd /
	stop_mount
	if on_kmemfs; then
		[ -n "$POOL" ] && [ "${KMEMFS_TEST_KEEP:-0}" != 1 ] && rm -f "$POOL"
	elif mountpoint -q "$WORK/backing" 2>/dev/null; then
		umount "$WORK/backing" 2>/dev/null || umount -l "$WORK/backing"
	fi
	[ -n "$URING_SAVED" ] && echo "$URING_SAVED" >"$URING_PARAM"
	# a small filesystem a test mounted for itself (test_cli: a full one)
	mountpoint -q "$WORK/small" 2>/dev/null && umount -l "$WORK/small"
	if [ "${KMEMFS_TEST_KEEP:-0}" = 1 ]; then
		echo "# kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
# the watcher starts before any trap exists, so it inherits none
# (two tests run at a time, and the ASan build is slower: the longest took
# 155 s of the 170 this was)
watchdog "${KMEMFS_TEST_WATCHDOG:-280}"
start_watchdog
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# kmemfs needs its binaries; a missing build is a failure, not a skip
if on_kmemfs; then
	for b in kmemfs mkfs.kmemfs; do
		if [ -z "$BIN_DIR" ] || [ ! -x "$BIN_DIR/$b" ]; then
			abort_test "binary $b present in BIN_DIR '${BIN_DIR}'"
		fi
	done
fi

URING_PARAM=/sys/module/fuse/parameters/enable_uring
URING_SAVED=""
# uring_offer Y|N: whether the kernel offers FUSE over io_uring to new mounts
# (the old value comes back at exit); false when this kernel has no such thing
uring_offer() {
	[ -w "$URING_PARAM" ] || return 1
	[ -n "$URING_SAVED" ] || URING_SAVED=$(cat "$URING_PARAM")
	echo "$1" >"$URING_PARAM"
}
# requests_ring / requests_dev: requests the mounted daemon took each way
requests_ring() { "$BIN_DIR/kmemfsctl" stat "$MNT" --json | jq -r .requests_ring; }
requests_dev() { "$BIN_DIR/kmemfsctl" stat "$MNT" --json | jq -r .requests_dev; }
if [ "${KMEMFS_TEST_URING:-0}" = 1 ] && on_kmemfs; then
	if ! uring_offer Y; then
		skip "$TEST_NAME over io_uring: this kernel has no FUSE over io_uring ($URING_PARAM)"
		finish
	fi
fi

note "$TEST_NAME on $TARGET, work dir $WORK"
