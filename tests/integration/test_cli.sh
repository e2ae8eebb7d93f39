#!/bin/bash
# test_cli.sh -- the command lines: --help, -V, bad options, sizes and paths,
# bad mount points, --size creation, refusing a second daemon and mkfs over a
# pool, signals, daemonizing, allow_other, fsck exit codes.
. "$(dirname "$0")/lib.sh" "$@"
kmemfs_only
K=$BIN_DIR/kmemfs
MKFS=$BIN_DIR/mkfs.kmemfs
FSCK=$BIN_DIR/fsck.kmemfs
CTL=$BIN_DIR/kmemfsctl

# run_tool OUTFILE CMD...: stdout+stderr into OUTFILE, returns the exit status
run_tool() { local o=$1; shift; timeout 60 "$@" >"$o" 2>&1; }
lines() { grep -c . "$1"; }
# expect_refusal MESSAGE CMD...: non-zero exit and exactly one line of output
expect_refusal() {
	local msg=$1 rc
	shift
	run_tool "$WORK/out" "$@"
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -lt 128 ] && [ "$(lines "$WORK/out")" -eq 1 ]; then
		pass "$msg (exit $rc: $(head -c 150 "$WORK/out"))"
	else
		fail "$msg" "command: $*" "exit status $rc (want non-zero, no signal, no timeout), $(lines "$WORK/out") output lines (want 1):" "$(cat "$WORK/out")"
	fi
}

# -- --help and bad options
for t in "$K" "$MKFS" "$FSCK" "$CTL"; do
	if [ -x "$t" ]; then
		run_tool "$WORK/out" "$t" --help
		rc=$?
		check "[ $rc -eq 0 ] && grep -qi usage '$WORK/out'" "$(basename "$t") --help exits 0 with a usage text (exit $rc)"
		run_tool "$WORK/out" "$t" --no-such-option
		rc=$?
		check "[ $rc -ne 0 ] && [ $rc -lt 128 ] && [ -s '$WORK/out' ]" "$(basename "$t") refuses an unknown option (exit $rc)"
	else
		fail "$(basename "$t") is built"
	fi
done

# -V, and one line naming the mistake for a bad option or argument
for t in "$MKFS" "$FSCK" "$CTL"; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	for v in -V --version; do
		run_tool "$WORK/out" "$t" $v
		rc=$?
		check "[ $rc -eq 0 ] && grep -q '^$name [0-9]' '$WORK/out'" "$name $v prints its version (exit $rc: $(head -c 80 "$WORK/out"))"
	done
	check "'$t' --help | grep -q -- '-V, --version\|--version'" "$name --help lists --version"
	expect_refusal "$name -z says what is wrong in one line" "$t" -z
	expect_refusal "$name --no-such-option says what is wrong in one line" "$t" --no-such-option
done
expect_refusal "mkfs.kmemfs --size without a value" "$MKFS" --size
expect_refusal "mkfs.kmemfs with two paths" "$MKFS" "$WORK/a.pool" "$WORK/b.pool"
expect_refusal "fsck.kmemfs with two paths" "$FSCK" -n "$WORK/a.pool" "$WORK/b.pool"
expect_refusal "kmemfsctl with an unknown command" "$CTL" frobnicate "$WORK"
check "'$FSCK' --help | grep -q -- '-f'" "fsck.kmemfs --help lists -f, which it accepts"
for sz in 0 -1 1x 99999999T 1M; do
	expect_refusal "mkfs.kmemfs --size $sz" "$MKFS" --size "$sz" "$WORK/bad.pool"
	check "[ ! -e '$WORK/bad.pool' ]" "mkfs.kmemfs --size $sz leaves no file behind"
done
check "! '$MKFS' --size 0 '$WORK/bad.pool' 2>&1 | grep -q 'give --size'" "mkfs.kmemfs --size 0 does not ask for the --size it was given"
mkdir "$WORK/adir"
expect_refusal "mkfs.kmemfs on a directory" "$MKFS" "$WORK/adir"
check "grep -q directory '$WORK/out'" "... and says it is a directory: $(cat "$WORK/out")"
run_tool "$WORK/out" "$FSCK" -n "$WORK/adir"
check "[ $? -eq 8 ] && grep -q directory '$WORK/out'" "fsck.kmemfs on a directory: exit 8, says it is a directory: $(cat "$WORK/out")"
expect_refusal "mkfs.kmemfs on /dev/null" "$MKFS" --force /dev/null
truncate -s 100M "$WORK/zero.img"
expect_refusal "mkfs.kmemfs --size 200M over an existing 100M file" "$MKFS" --size 200M "$WORK/zero.img"
check_eq "$(stat -c %s "$WORK/zero.img"):$(tr -d '\0' <"$WORK/zero.img" | wc -c)" "104857600:0" "the refused mkfs --size left the file as it was"
rm -f "$WORK/zero.img"
# data anywhere in a file, not only where a pool keeps its header
{ head -c 3M /dev/zero; echo user-data; } >"$WORK/late.img"
truncate -s 100M "$WORK/late.img"
printf 'more' | dd of="$WORK/late.img" bs=1M seek=90 conv=notrunc 2>/dev/null
sum=$(sha256sum <"$WORK/late.img")
expect_refusal "mkfs.kmemfs over a file whose data starts past 2 MiB" "$MKFS" "$WORK/late.img"
check_eq "$(sha256sum <"$WORK/late.img")" "$sum" "... and leaves it as it was"
rm -f "$WORK/late.img"
truncate -s 100M "$WORK/late.img"
printf 'tail' | dd of="$WORK/late.img" bs=1M seek=90 conv=notrunc 2>/dev/null
expect_refusal "mkfs.kmemfs over a sparse file with data only at 90 MiB" "$MKFS" "$WORK/late.img"
rm -f "$WORK/late.img"
truncate -s 100M "$WORK/zero.img"
run_tool "$WORK/out" "$MKFS" "$WORK/zero.img"
check_eq "$?" 0 "mkfs.kmemfs formats a file of zeroes without --force: $(cat "$WORK/out")"
rm -f "$WORK/zero.img"

fs_create 64M
expect_refusal "mount on a missing mount point" "$K" "$POOL" "$WORK/no/such/dir"
touch "$WORK/notadir"
expect_refusal "mount on a regular file as mount point" "$K" "$POOL" "$WORK/notadir"
expect_refusal "mount of a missing pool without --size" "$K" "$WORK/missing.pool" "$MNT"
check "[ ! -e '$WORK/missing.pool' ]" "a failed mount creates no pool file"
sum=$(sha256sum <"$POOL")
expect_refusal "an unknown -o option" "$K" -o no_such_mount_option "$POOL" "$MNT"
check_eq "$(sha256sum <"$POOL")" "$sum" "a bad -o option fails before the pool is opened (pool unchanged)"
expect_refusal "an unknown -o option with --size" "$K" -o no_such_mount_option --size 64M "$WORK/new.pool" "$MNT"
check "[ ! -e '$WORK/new.pool' ]" "... and creates no pool file"
for o in reserve=abc lend_max=1x detach_timeout=abc detach_timeout=-1 detach_timeout=1.5 \
	readahead=1x readahead=2G max_threads=0 max_threads=4x max_threads=2000 \
	cache=none cache= poll=abc poll=2000 poll=-1 max_read=abc max_read=0 max_read=1M; do
	expect_refusal "kmemfs -o $o" "$K" -o "$o" "$POOL" "$MNT"
	check "grep -q \"bad .*'\" '$WORK/out'" "... names the bad value: $(cat "$WORK/out")"
done
check_eq "$(sha256sum <"$POOL")" "$sum" "bad kmemfs option values leave the pool unchanged"
expect_refusal "kmemfs --size 0" "$K" --size 0 "$WORK/new.pool" "$MNT"
check "grep -q \"bad size '0'\" '$WORK/out'" "kmemfs --size 0 says the size is bad: $(cat "$WORK/out")"
check "[ ! -e '$WORK/new.pool' ]" "... and creates no pool file"
# a mount the kernel refuses (here /dev/fuse is /dev/null) comes after the
# pool's checks but before anything is written to it
expect_refusal "a mount the kernel refuses" unshare -m sh -c \
	'mount --bind /dev/null /dev/fuse && exec "$0" "$@"' "$K" "$POOL" "$MNT"
check "grep -q 'cannot mount on $MNT: ..' '$WORK/out'" "... names the mount point and the cause: $(cat "$WORK/out")"
check_eq "$(sha256sum <"$POOL")" "$sum" "... and leaves the pool unchanged"
check "! is_mounted" "nothing mounted after the refusals"
check_eq "$(daemon_pids)" "" "no daemon left behind by the refusals"

# -- mkfs refuses an existing pool
sum=$(sha256sum <"$POOL")
expect_refusal "mkfs.kmemfs without --force over an existing pool" "$MKFS" "$POOL"
check_eq "$(sha256sum <"$POOL")" "$sum" "the refused mkfs left the pool untouched"

# -- a second daemon on the same pool (mounted with every policy option set)
fs_mount reserve=8M,lend_max=16M,detach_timeout=5,max_threads=4 || abort_test "mount with reserve, lend_max, detach_timeout, max_threads"
echo first >"$MNT/first"
mkdir "$WORK/mnt2"
t0=$(date +%s%N)
expect_refusal "a second daemon on a mounted pool" "$K" "$POOL" "$WORK/mnt2"
ms=$((($(date +%s%N) - t0) / 1000000))
check "[ $ms -lt 3000 ]" "... refused at once, without waiting for the pool ($ms ms)"
check "! mountpoint -q '$WORK/mnt2'" "the second mount point stays unmounted"
check_eq "$(cat "$MNT/first")" first "the first mount still serves"
expect_refusal "mkfs --force of a pool in use" "$MKFS" --force "$POOL"
check_eq "$(cat "$MNT/first")" first "the mounted filesystem survived the refused mkfs"
check "pgrep -x kmemfs >/dev/null && [ -n \"\$(daemon_pids)\" ]" "kmemfs daemonized (no -f) and runs"
pid=$(daemon_pids)
check "[ \"\$(ps -o ppid= -p $pid | tr -d ' ')\" != $$ ]" "the daemon is not a child of the shell that started it"
# the read-ahead window of the mount's backing device (the kernel's is 128 KiB)
ra_kb() { cat "/sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb"; }
check_eq "$(ra_kb)" 1024 "the mount reads ahead 1 MiB by default (one max_write request)"
# without allow_other, other users are kept out (FUSE rule)
expect_errno EACCES "without allow_other uid 1000 cannot enter the mount" as_user 1000 probe stat "$MNT/first"
fs_umount
fs_mount readahead=4M || abort_test "mount with readahead=4M"
check_eq "$(ra_kb)" 4096 "-o readahead=4M sets a 4 MiB window (INIT did not lower it)"
fs_umount
# max_read is libfuse's option, passed to the kernel; INIT must ask for the same
fs_mount max_read=65536 || abort_test "mount with max_read=65536"
head -c 300000 /dev/urandom >"$WORK/r.bin"
cp "$WORK/r.bin" "$MNT/r.bin"
# the file's cached pages go (POSIX_FADV_DONTNEED); not drop_caches, which
# would empty the caches of tests running beside this one
dd if="$MNT/r.bin" iflag=nocache count=0 status=none
check "cmp -s '$WORK/r.bin' '$MNT/r.bin'" "-o max_read=65536 mounts, and reads come back whole"
fs_umount
# the user's fsname names the mount (xfstests finds its device so); a
# second daemon on the pool is still refused at once
fs_mount "fsname=$POOL" || abort_test "mount with fsname=$POOL"
check_eq "$(findmnt -n -o SOURCE "$MNT")" "$POOL" "-o fsname= names the mount"
check_eq "$(findmnt -n -o FSTYPE "$MNT")" fuse.kmemfs "... and the type stays fuse.kmemfs"
t0=$(date +%s%N)
expect_refusal "a second daemon on a pool mounted under its own fsname" "$K" "$POOL" "$WORK/mnt2"
ms=$((($(date +%s%N) - t0) / 1000000))
check "[ $ms -lt 3000 ]" "... refused at once ($ms ms)"
fs_umount

# a handshake that fails after kmemfs went to the background (badinit.so makes
# libfuse refuse the kernel's INIT): the command waits for it and fails
badinit=$BIN_DIR/badinit.so
[ -f "$badinit" ] || abort_test "$badinit is built"
# the ASan build's runtime must come first among the preloaded libraries
asan_ok="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
run_tool "$WORK/out" env LD_PRELOAD="$badinit" ASAN_OPTIONS="$asan_ok" "$K" "$POOL" "$MNT"
rc=$?
check "[ $rc -eq 1 ] && grep -q 'handshake with the kernel failed' '$WORK/out'" \
	"a FUSE handshake refused in the background: kmemfs exits 1 and says why (exit $rc: $(tr '\n' ' ' <"$WORK/out" | head -c 200))"
check "! is_mounted" "... and leaves nothing mounted"
for _ in $(seq 20); do [ -z "$(daemon_pids)" ] && break; sleep 0.1; done
check "[ -z \"$(daemon_pids)\" ]" "... and no daemon behind"
# a late handshake (held 2 s): kmemfs returns only once it is answered, and
# a SIGTERM to kmemfs meanwhile (timeout 1) reaches the daemon, which stops
t0=$(date +%s%N)
run_tool "$WORK/out" env LD_PRELOAD="$badinit" ASAN_OPTIONS="$asan_ok" BADINIT_SLOW=1 "$K" "$POOL" "$MNT"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "[ $rc -eq 0 ] && [ $ms -ge 1900 ] && is_mounted && ls '$MNT' >/dev/null" \
	"a late handshake: kmemfs returns 0 once it is answered (after $ms ms, exit $rc)"
is_mounted && fs_umount
t0=$(date +%s%N)
timeout 1 env LD_PRELOAD="$badinit" ASAN_OPTIONS="$asan_ok" BADINIT_SLOW=1 "$K" "$POOL" "$MNT" >"$WORK/out" 2>&1
rc=$?
for _ in $(seq 30); do [ -z "$(daemon_pids)" ] && ! is_mounted && break; sleep 0.1; done
ms=$((($(date +%s%N) - t0) / 1000000))
check "[ $rc -eq 124 ] && [ -z \"$(daemon_pids)\" ] && ! is_mounted" \
	"a SIGTERM to kmemfs while it waits stops the daemon too: nothing mounted, no daemon (exit $rc, gone after $ms ms)"
# what a failure above left would hold the pool for the next section
stop_mount

# -- a pool held by something that is not a mounted kmemfs (a daemon still
# closing it after umount returned): kmemfs waits for it instead of failing
flock "$POOL" sleep 2 &
holder=$!
sleep 0.3
t0=$(date +%s%N)
run_tool "$WORK/out" "$K" "$POOL" "$MNT"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "[ $rc -eq 0 ] && [ $ms -ge 1000 ] && is_mounted" "a pool locked by another program (flock, 2 s) is waited for, then mounted (exit $rc after $ms ms)"
check "grep -q 'waiting up to 10 s' '$WORK/out'" "... and kmemfs says it waits: $(head -c 150 "$WORK/out")"
wait "$holder"
check_eq "$(cat "$MNT/first")" first "... with the data of before"
# umount(8) returns before the daemon has closed the pool; mount again at once
for i in 1 2 3; do
	umount "$MNT"
	run_tool "$WORK/out" "$K" "$POOL" "$MNT"
	rc=$?
	[ $rc -eq 0 ] && is_mounted || break
done
check "[ $rc -eq 0 ] && is_mounted" "an immediate remount after umount(8) succeeds, 3 times (exit $rc: $(head -c 150 "$WORK/out"))"
check "[ ! -s '$WORK/out' ]" "... and says nothing about the short wait: $(head -c 150 "$WORK/out")"
fs_umount
if [ -x "$FSCK" ]; then
	run_tool "$WORK/out" "$FSCK" -n "$POOL"
	check_eq "$?" 0 "fsck.kmemfs -n of a cleanly unmounted pool (that survived a refused mkfs --force): $(tail -n 1 "$WORK/out")"
	run_tool "$WORK/out" "$FSCK" -y "$POOL"
	check_eq "$?" 0 "fsck.kmemfs -y of a clean pool"
	check "! grep -q 'checking inodes' '$WORK/out'" "fsck.kmemfs shows no progress when stderr is no terminal and the check is quick"
	# --progress: a line per phase from the start, wherever stderr goes
	"$FSCK" -n --progress "$POOL" >"$WORK/out" 2>"$WORK/progress"
	rc=$?
	check "[ $rc -eq 0 ] && grep -q 'heap' '$WORK/progress' && grep -Eq 'checking inodes [0-9]+ of [0-9]+ \([0-9]+%\)' '$WORK/progress' && grep -q 'looking for leaks' '$WORK/progress' && ! grep -q 'checking inodes' '$WORK/out'" \
		"fsck.kmemfs --progress reports each phase on stderr (exit $rc: $(tr '\n' '|' <"$WORK/progress" | head -c 300))"
	# on a terminal (script(1) gives one) the line is rewritten in place:
	# carriage return, the line, erase to its end
	script -qec "'$FSCK' -n --progress '$POOL'" /dev/null >"$WORK/out" 2>&1
	tr '\r\033' '@#' <"$WORK/out" >"$WORK/out.vis"
	check "grep -q '@fsck.kmemfs: .*: checking inodes [0-9]* of .*#\[K' '$WORK/out.vis'" \
		"fsck.kmemfs --progress on a terminal rewrites one line ($(head -c 200 "$WORK/out.vis"))"
	run_tool "$WORK/out" "$FSCK" -n "$WORK/missing.pool"
	check_eq "$?" 8 "fsck.kmemfs of a missing file is an operational error (8)"
	for o in "-n -y" "-p -n"; do
		run_tool "$WORK/out" "$FSCK" $o "$POOL"
		rc=$?
		check "[ $rc -eq 16 ] && [ \$(lines '$WORK/out') -eq 1 ]" "fsck.kmemfs $o is a usage error, one line (exit $rc: $(cat "$WORK/out"))"
	done
	# a pool the user may not write: say so, not "not a valid pool"
	cp "$POOL" "$WORK/ro.pool"
	chmod 444 "$WORK/ro.pool"
	run_tool "$WORK/out" setpriv --reuid=1000 --regid=1000 --clear-groups "$FSCK" -n "$WORK/ro.pool"
	rc=$?
	check "[ $rc -eq 8 ] && [ \$(lines '$WORK/out') -eq 1 ] && grep -q 'Permission denied' '$WORK/out' && ! grep -q 'not a valid' '$WORK/out'" \
		"fsck.kmemfs of a pool the user cannot write names the permission (exit $rc: $(cat "$WORK/out"))"
	rm -f "$WORK/ro.pool"
fi

if fs_mount; then
	check_eq "$(cat "$MNT/first" 2>&1)" first "data survives a refused mkfs --force and a remount"
	fs_umount
fi

# -- mkfs --force gives an empty filesystem
run_tool "$WORK/out" "$MKFS" --force "$POOL"
check_eq "$?" 0 "mkfs.kmemfs --force over an existing pool"
fs_mount || abort_test "mount after mkfs --force"
check_eq "$(ls -A "$MNT" | grep -v '^lost+found$' | wc -l)" 0 "the re-formatted filesystem is empty"
fs_umount

# -- --size creates and formats a missing pool
NEWPOOL=$WORK/created.pool
run_tool "$WORK/out" "$K" --size 80M "$NEWPOOL" "$MNT"
rc=$?
check "[ $rc -eq 0 ] && wait_until 10 is_mounted" "kmemfs --size creates, formats and mounts (exit $rc)"
check_eq "$(stat -c %s "$NEWPOOL" 2>/dev/null)" 83886080 "the created pool has the requested size"
echo hi >"$MNT/x" 2>/dev/null
check_eq "$(cat "$MNT/x" 2>/dev/null)" hi "the new filesystem works"
P=$POOL; POOL=$NEWPOOL
fs_umount
# --size larger than the free space: refused before anything is written
mkdir -p "$WORK/small"
mount -t tmpfs -o size=80M tmpfs "$WORK/small" || abort_test "mount a small tmpfs"
for t in "$MKFS --size 1G $WORK/small/p.pool" "$K --size 1G $WORK/small/p.pool $MNT"; do
	expect_refusal "$(basename "${t%% *}") --size beyond the free space" $t
	check "grep -q 'not enough free space for a 1024 MiB pool (80 MiB free there)' '$WORK/out'" \
		"... says how much it needs and how much is free"
	check_eq "$(ls -A "$WORK/small")" "" "... and leaves no file behind"
done
umount "$WORK/small"

# -o ro serves the pool from a private mapping: nothing reaches the file
sum=$(sha256sum <"$NEWPOOL")
run_tool "$WORK/out" "$K" -o ro "$NEWPOOL" "$MNT"
rc=$?
check "[ $rc -eq 0 ] && wait_until 10 is_mounted" "kmemfs -o ro mounts (exit $rc: $(head -c 150 "$WORK/out"))"
check_eq "$(cat "$MNT/x" 2>/dev/null)" hi "-o ro serves the files"
check "! touch '$MNT/y' 2>/dev/null && [ ! -e '$MNT/y' ]" "-o ro refuses a new file"
fs_umount
check_eq "$(sha256sum <"$NEWPOOL")" "$sum" "a read-only mount and its unmount leave the pool file unchanged"
# the "--size=SIZE" form
run_tool "$WORK/out" "$K" --size=64M "$WORK/eq.pool" "$MNT"
rc=$?
check "[ $rc -eq 0 ] && wait_until 10 is_mounted && [ \$(stat -c %s '$WORK/eq.pool') -eq 67108864 ]" \
	"kmemfs --size=64M creates a 64 MiB pool and mounts (exit $rc: $(head -c 150 "$WORK/out"))"
POOL=$WORK/eq.pool
is_mounted && fs_umount
# --size on a pool that exists: mounted as it is, and said so
run_tool "$WORK/out" "$K" --size 200M "$WORK/eq.pool" "$MNT"
rc=$?
check "[ $rc -eq 0 ] && wait_until 10 is_mounted && [ \$(stat -c %s '$WORK/eq.pool') -eq 67108864 ]" \
	"kmemfs --size on an existing pool mounts it unchanged (exit $rc)"
check "grep -q 'eq.pool exists: --size 200M ignored' '$WORK/out'" "... and says --size was ignored"
is_mounted && fs_umount
expect_refusal "kmemfs --size with a bad size on an existing pool" "$K" --size 12Q "$WORK/eq.pool" "$MNT"
check "grep -q \"bad size '12Q'\" '$WORK/out'" "... names the bad size"
run_tool "$WORK/out" "$K" --size 12Q "$WORK/eq.pool" "$MNT"
check_eq "$?" 2 "... with exit status 2, as any bad option"
POOL=$P

# -- foreground mode and signals
# the shell starts background jobs with SIGINT ignored, and libfuse leaves
# ignored signals alone: give the daemon default dispositions explicitly
for sig in TERM INT; do
	env --default-signal=INT,TERM "$K" -f "$POOL" "$MNT" >"$WORK/fg.out" 2>&1 &
	fg=$!
	if ! wait_until 10 is_mounted; then
		fail "kmemfs -f mounts" "$(cat "$WORK/fg.out")"
		kill -KILL $fg 2>/dev/null
		continue
	fi
	echo "$sig" >"$MNT/sig.$sig"
	kill -$sig $fg
	if wait_until 15 "! kill -0 $fg 2>/dev/null"; then
		wait $fg
		rc=$?
		check "! is_mounted" "SIG$sig unmounts and the daemon exits"
		check_eq "$rc" 0 "exit status after SIG$sig is 0"
	else
		fail "SIG$sig unmounts and the daemon exits" "still running after 15s"
		kill -KILL $fg
		wait $fg
		fusermount3 -u -z "$MNT" 2>/dev/null
	fi
	if [ -x "$FSCK" ]; then
		run_tool "$WORK/out" "$FSCK" -n "$POOL"
		check_eq "$?" 0 "pool is clean after SIG$sig"
	fi
done
# a daemon in the background (it moves to /) mounted on a relative path
(cd "$(dirname "$MNT")" && "$K" "$POOL" "$(basename "$MNT")") >"$WORK/bg.out" 2>&1 ||
	fail "kmemfs on a relative mount point" "$(cat "$WORK/bg.out")"
bg=$(daemon_pids)
if [ -n "$bg" ] && is_mounted; then
	kill -TERM $bg
	wait_until 15 '[ -z "$(daemon_pids)" ]'
	check "! is_mounted" "SIGTERM unmounts a background daemon mounted on a relative path"
	mountpoint -q "$MNT" && fusermount3 -u -z "$MNT" 2>/dev/null
else
	fail "kmemfs on a relative mount point mounts" "$(cat "$WORK/bg.out")"
fi
fs_mount || abort_test "mount after signals"
check_eq "$(cat "$MNT/sig.TERM" "$MNT/sig.INT" 2>&1)" "$(printf 'TERM\nINT')" "files written before the signals persist"
check_cmd "umount(8) works too" umount "$MNT"
wait_until 15 '[ -z "$(daemon_pids)" ]'
check_eq "$(daemon_pids)" "" "the daemon exits after umount(8)"

# -- cmake --install puts the four programs where a system looks for them
# (the daemon and kmemfsctl in bin/, mkfs and fsck in sbin/), and they run
run_tool "$WORK/out" cmake --install "$BIN_DIR/.." --prefix "$WORK/inst"
check_eq "$?" 0 "cmake --install into a prefix ($(tail -n 1 "$WORK/out"))"
for f in bin/kmemfs bin/kmemfsctl sbin/mkfs.kmemfs sbin/fsck.kmemfs; do
	check "[ -x '$WORK/inst/$f' ] && '$WORK/inst/$f' --help >/dev/null 2>&1" \
		"cmake --install puts $f, and it runs"
done
run_tool "$WORK/out" "$WORK/inst/sbin/mkfs.kmemfs" --size 64M "$WORK/inst.pool"
check_eq "$?" 0 "the installed mkfs.kmemfs formats a pool"
run_tool "$WORK/out" "$WORK/inst/sbin/fsck.kmemfs" -n "$WORK/inst.pool"
check_eq "$?" 0 "the installed fsck.kmemfs finds it clean"
# --upgrade of a pool already of this format: checked, nothing to do
run_tool "$WORK/out" "$FSCK" --upgrade "$WORK/inst.pool"
check_eq "$?" 0 "fsck.kmemfs --upgrade of a current pool exits 0"
check "grep -q 'already format 3.x with every directory keyed: nothing to upgrade' '$WORK/out'" "... and says there was nothing to upgrade"
run_tool "$WORK/out" "$FSCK" -n --upgrade "$WORK/inst.pool"
check_eq "$?" 16 "fsck.kmemfs -n --upgrade is a usage error ($(head -c 120 "$WORK/out"))"
# a pool of format 1.1 (unkeyed directory hashes): said at mount and by
# fsck, keyed by --upgrade with every file kept
OLD=$WORK/old.pool
run_tool "$WORK/out" "$MKFS" --size 64M "$OLD" && run_tool "$WORK/out" "$BIN_DIR/oldpool" "$OLD" ||
	abort_test "make a format 1.1 pool: $(cat "$WORK/out")"
P=$POOL; POOL=$OLD
run_tool "$WORK/out" "$K" "$OLD" "$MNT"
check "[ $? -eq 0 ] && wait_until 10 is_mounted" "kmemfs mounts a format 1.1 pool"
check "grep -q '1 directories hash names without a secret key.*fsck.kmemfs --upgrade' '$WORK/out'" \
	"... and says its directories are not keyed ($(head -c 150 "$WORK/out"))"
mkdir -p "$MNT/a/b" && echo one >"$MNT/a/one" && echo two >"$MNT/a/b/two" && ln "$MNT/a/one" "$MNT/a/b/link"
for i in $(seq 1 300); do : >"$MNT/a/f$i"; done
fs_umount
run_tool "$WORK/out" "$FSCK" -n "$OLD"
check "[ $? -eq 0 ] && grep -q '3 directories hash names without a secret key (format 1): --upgrade keys them' '$WORK/out'" \
	"fsck.kmemfs -n finds it clean and says 3 directories are not keyed"
run_tool "$WORK/out" "$FSCK" --upgrade "$OLD"
check_eq "$?" 0 "fsck.kmemfs --upgrade of a format 1.1 pool exits 0"
check "grep -q 'upgraded to format 3.0: 3 directories rehashed' '$WORK/out'" \
	"... and says it rehashed 3 directories ($(tail -n 1 "$WORK/out"))"
run_tool "$WORK/out" "$FSCK" -n "$OLD"
check "[ $? -eq 0 ] && ! grep -q 'without a secret key' '$WORK/out'" "after it, fsck finds every directory keyed"
run_tool "$WORK/out" "$K" "$OLD" "$MNT"
check "[ $? -eq 0 ] && wait_until 10 is_mounted && ! grep -q 'secret key\\|format' '$WORK/out'" \
	"the upgraded pool mounts with nothing to say ($(head -c 150 "$WORK/out"))"
check_eq "$(cat "$MNT/a/one" "$MNT/a/b/two" "$MNT/a/b/link" 2>&1 | tr '\n' ' ')" "one two one " \
	"its files, directories and hard links are all there"
check_eq "$(ls "$MNT/a" | wc -l)" 302 "... every name of the large directory too"
fs_umount
# a pool of format 2.0 (fallocate stored zeroes as data): said at mount;
# --upgrade changes only the version, and fallocate then leaves holes
run_tool "$WORK/out" "$MKFS" --force --size 64M "$OLD" &&
	run_tool "$WORK/out" "$BIN_DIR/oldpool" "$OLD" 2 ||
	abort_test "make a format 2.0 pool: $(cat "$WORK/out")"
run_tool "$WORK/out" "$K" "$OLD" "$MNT"
check "[ $? -eq 0 ] && wait_until 10 is_mounted" "kmemfs mounts a format 2.0 pool"
check "grep -q 'format 2.0: fallocate stores zeroes as data.*fsck.kmemfs --upgrade' '$WORK/out'" \
	"... and says what --upgrade would change ($(head -c 150 "$WORK/out"))"
fallocate -l 1M "$MNT/pre"
check_eq "$(probe seek "$MNT/pre" data 0)" 0 "on it a fallocated range is data"
fs_umount
run_tool "$WORK/out" "$FSCK" --upgrade "$OLD"
check "[ $? -eq 0 ] && grep -q 'upgraded to format 3.0: fallocate keeps unwritten ranges as holes' '$WORK/out'" \
	"fsck.kmemfs --upgrade brings it to format 3.0 ($(tail -n 1 "$WORK/out"))"
check "! grep -q 'rehashed' '$WORK/out'" "... and rehashes nothing"
run_tool "$WORK/out" "$K" "$OLD" "$MNT"
check "[ $? -eq 0 ] && wait_until 10 is_mounted && ! grep -q 'format' '$WORK/out'" \
	"the upgraded pool mounts with nothing to say ($(head -c 150 "$WORK/out"))"
check_eq "$(probe seek "$MNT/pre" data 0)" 0 "the file fallocated before is still data"
fallocate -l 1M "$MNT/new"
expect_errno ENXIO "a new fallocated range is a hole" probe seek "$MNT/new" data 0
fs_umount
POOL=$P
finish
