# lib.sh -- helpers for the guest actions (busybox sh); sourced by init before
# each /kmemfs/ACTION.sh.
#
# Markers the host reads from the serial console:
#   KMEMFS-TEST: PASS name | KMEMFS-TEST: FAIL name reason     (pass, fail)
#   KMEMFS-SUM: path attributes... ~check                       (manifest lines)
#   KMEMFS-SYNCED: name md5 ~check                              (power-cut writer)
# The host reads the last two exactly, so they carry a check of their own text
# (marked): the serial port once doubled a character of a file name, which
# read as a lost fsync'ed file.

DEV=/dev/dax0.0
MNT=/mnt/pm
CMDLOG=/tmp/cmd.log

# Debian's busybox shell runs its own applets before searching PATH; these need
# util-linux's full versions (busybox fallocate has no -p).
fallocate() { /usr/bin/fallocate "$@"; }

pass() { echo "KMEMFS-TEST: PASS $1"; }

# marked KIND -- print each stdin line as "KMEMFS-KIND: line ~check", check being
# the first 8 hex digits of the line's md5 (busybox here has no cksum)
marked() {
	while IFS= read -r l; do
		echo "KMEMFS-$1: $l ~$(printf '%s' "$l" | md5sum | cut -c1-8)"
	done
}

# fail NAME REASON... -- report a failure; init stops after the current action
fail() {
	n=$1
	shift
	echo "KMEMFS-TEST: FAIL $n $*"
	: >/tmp/failed
}

# fail_out NAME REASON... -- fail, and show the output of the last run command
fail_out() {
	fail "$@"
	sed 's/^/    | /' "$CMDLOG"
}

# run CMD... -- run quietly; output kept in $CMDLOG for fail_out; returns CMD's status
run() {
	"$@" >"$CMDLOG" 2>&1
}

# mount_fs [DEV [MNT]] -- mount kmemfs (it daemonizes) and check the mount appeared
mount_fs() {
	d=${1:-$DEV} m=${2:-$MNT}
	run kmemfs "$d" "$m" || return 1
	grep -q " $m fuse" /proc/mounts || {
		echo "kmemfs returned 0 but $m is not mounted" >>"$CMDLOG"
		return 1
	}
}

# umount_fs [MNT] -- unmount and wait (up to 30 s) until no kmemfs daemon is left
umount_fs() {
	m=${1:-$MNT}
	run umount "$m" || return 1
	i=0
	while pidof kmemfs >/dev/null; do
		[ $i -ge 300 ] && {
			echo "kmemfs daemon $(pidof kmemfs) still running 30 s after umount" >>"$CMDLOG"
			return 1
		}
		sleep 0.1
		i=$((i + 1))
	done
}

# fsck_clean NAME [DEV] -- fsck.kmemfs -n must exit 0
fsck_clean() {
	run fsck.kmemfs -n "${2:-$DEV}"
	rc=$?
	if [ $rc -eq 0 ]; then
		pass "$1"
	else
		fail_out "$1" "fsck.kmemfs -n exited $rc"
	fi
	return $rc
}

# manifest DIR -- one line per object below DIR (sorted by path, relative to DIR):
# raw mode (type and permissions), owner, size, blocks, links, mtime, and the md5
# of a file's bytes or a symlink's target; then one line per extended attribute.
manifest() {
	(
		cd "$1" || exit 1
		find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
			a=$(stat -c 'mode=%f owner=%u:%g size=%s blocks=%b links=%h mtime=%Y' "$p")
			if [ -L "$p" ]; then
				x="link=$(readlink "$p")"
			elif [ -f "$p" ]; then
				x="md5=$(md5sum <"$p" | cut -d' ' -f1)"
			else
				x=""
			fi
			echo "$p $a $x"
			getfattr -h -d -m - -e hex "$p" 2>/dev/null | grep -v '^#' | grep . |
				LC_ALL=C sort | sed "s|^|$p xattr |"
		done
	)
}

# second_mount_refused -- with $MNT mounted, a second kmemfs on the same device
# must exit non-zero and mount nothing; the first mount must keep working
second_mount_refused() {
	pid=$(pidof kmemfs)
	run kmemfs "$DEV" /mnt/pm2
	rc=$?
	if [ $rc -eq 0 ] || grep -q " /mnt/pm2 " /proc/mounts; then
		umount /mnt/pm2 2>/dev/null
		fail_out second-mount "second kmemfs on $DEV while mounted exited $rc"
		return 1
	fi
	if [ "$(pidof kmemfs)" != "$pid" ] || ! ls "$MNT" >/dev/null; then
		fail second-mount "the first mount broke after a refused second mount"
		return 1
	fi
	pass second-mount-refused
}
