#!/bin/bash
# test_uring.sh -- FUSE over io_uring (-o uring, src/uring.c): with the
# kernel offering it, every request after INIT comes through the rings, and
# what only the ring path does is right: requests rebuilt from header +
# payload (1 MiB writes, unaligned sizes, names, xattrs), replies captured
# whole (1 MiB reads, a big readdir), what wire.c reads off a request or
# rewrites (the setuid kill, O_TMPFILE, STATX), clone ioctls racing on one CPU, kill -9 with
# requests in the rings, SIGTERM likewise. And without -o uring, or without
# the offer, none is.
. "$(dirname "$0")/lib.sh" "$@"
kmemfs_only
[ -x "$BIN_DIR/kmemfsctl" ] || abort_test "kmemfsctl is built"
if ! uring_offer Y; then
	skip "this kernel has no FUSE over io_uring ($URING_PARAM): Linux 6.14+ with CONFIG_FUSE_IO_URING"
	finish
fi
fs_setup 512M uring,allow_other /dev/shm
cd "$MNT" || abort_test "cd $MNT"

n0=$(requests_ring)
check "[ '$n0' -gt 0 ]" "the kernel took the offer: requests come through io_uring ($n0 so far)"

# data through the ring: page cache and O_DIRECT, whole and odd sizes
head -c $((5 * 1048576 + 123)) /dev/urandom >"$WORK/odd"
head -c $((32 * 1048576)) /dev/urandom >"$WORK/big"
cp "$WORK/odd" odd
dd if="$WORK/big" of=big bs=1M oflag=direct status=none
dd if="$WORK/big" of=big.pc bs=1M conv=fsync status=none
sync
# their cached pages go (POSIX_FADV_DONTNEED); not drop_caches, which would
# empty the caches of tests running beside this one
for f in odd big big.pc; do dd if="$f" iflag=nocache count=0 status=none; done
check_cmd "a 5 MiB + 123 byte file reads back equal" cmp "$WORK/odd" odd
check_cmd "32 MiB written in 1 MiB O_DIRECT requests reads back equal (O_DIRECT)" \
	sh -c "dd if=big bs=1M iflag=direct status=none | cmp - '$WORK/big'"
check_cmd "32 MiB written through the page cache reads back equal" cmp "$WORK/big" big.pc
probe pwrite odd 1048570 hello >/dev/null
check_eq "$(dd if=odd bs=1 skip=1048570 count=5 status=none)" hello "a 5-byte write across a 1 MiB boundary lands"

# names, a big directory, xattrs
long=$(printf 'n%.0s' $(seq 255))
touch "$long"
check "[ -e '$long' ]" "a 255-byte name goes through the ring"
mkdir many
for i in $(seq 3000); do echo -n >"many/file-with-a-longish-name-$i"; done
check_eq "$(ls many | wc -l)" 3000 "readdir of 3000 entries (replies of many pages)"
val=$(head -c 60000 /dev/zero | tr '\0' v)
setfattr -n user.big -v "$val" odd
check_eq "$(getfattr --only-values -n user.big odd | wc -c)" 60000 "a 60000-byte xattr value round-trips"

# what wire.c reads off a request, on the ring path too
probe tmpfile . 0644 4096 7 tmpfile-link >/dev/null
check "[ -f tmpfile-link ] && [ \$(stat -c %s tmpfile-link) -eq 4096 ]" "O_TMPFILE works (FUSE_TMPFILE rewritten into a CREATE)"
echo suid >suid
chmod 04777 suid
as_user 1000 probe pwrite suid 0 X >/dev/null
check_eq "$(stat_field suid mode)" 100777 "a write by another user clears setuid (the kill flag read off the ring)"
t0=$(date +%s)
touch born
check "[ \"\$(stat -c %W born)\" -ge $((t0 - 1)) ]" "a birth time (FUSE_STATX answered as a GETATTR, the reply rewritten)"

n1=$(requests_ring)
d1=$(requests_dev)
check "[ $((n1 - n0)) -gt 3000 ]" "the work above came through io_uring ($((n1 - n0)) requests)"
note "requests through /dev/fuse: $d1 (INIT, FORGETs, INTERRUPTs)"

# clone ioctls from one CPU at once, with the daemon on that CPU too: a
# handler that asked the kernel about its source (a GETATTR to this very
# mount, sent from the ring thread's CPU) waited for a ring entry that only
# it could free, and hung the mount
cd /
fs_umount
taskset -c 0 "$BIN_DIR/kmemfs" -o uring,allow_other "$POOL" "$MNT" >"$WORK/mount.out" 2>&1 &&
	wait_until 10 is_mounted || abort_test "kmemfs on CPU 0 mounts" "$(cat "$WORK/mount.out")"
cd "$MNT" || abort_test "cd $MNT"
dd if=/dev/urandom of=csrc bs=1M count=4 status=none
ok=1 hung=0
for round in 1 2 3 4 5 6 7 8; do
	taskset -c 0 "$BIN_DIR/clonestorm" csrc "c$round" 4 &
	storm=$!
	if ! wait_until 15 "! kill -0 $storm 2>/dev/null"; then
		hung=1
		abort_fuse # the callers wait in D state: only an abort frees them
		break
	fi
	wait $storm || ok=0
	for i in 0 1 2 3; do cmp -s csrc "c$round.$i" || ok=0; done
done
check "[ $hung = 0 ] && [ $ok = 1 ]" "32 clone ioctls, four threads at once on CPU 0 against a daemon on CPU 0, finish and match their source (hung: $hung)"
[ $hung = 0 ] || abort_test "the mount hung"
cd /

# the same storm with that hang put back (forcesync.so turns the handler's
# cached statx into a GETATTR to this mount): both entries of CPU queue 0
# wait for requests queued behind them, and only the monitor's rescue (a
# spare entry, and a request from CPU 0 for it to answer) frees them
forcesync=${KMEMFS_FORCESYNC:-$BIN_DIR/forcesync.so}
[ -f "$forcesync" ] || abort_test "$forcesync is built"
# forcesync_mount OPTS: the daemon on CPU 0, in the foreground, its log in
# $WORK/rescue.out; its pid in $forced
forcesync_mount() {
	LD_PRELOAD="$forcesync" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		taskset -c 0 "$BIN_DIR/kmemfs" -f -o "$1" "$POOL" "$MNT" >"$WORK/rescue.out" 2>&1 &
	forced=$!
	wait_until 10 is_mounted || abort_test "kmemfs with forcesync.so mounts" "$(cat "$WORK/rescue.out")"
}
# storm ROUND SECONDS: four clone ioctls on CPU 0; false if they hang
storm() {
	taskset -c 0 "$BIN_DIR/clonestorm" "$MNT/csrc" "$MNT/$1" 4 &
	local pid=$!
	wait_until "$2" "! kill -0 $pid 2>/dev/null" || return 1
	wait $pid || ok=0
	for i in 0 1 2 3; do cmp -s "$MNT/csrc" "$MNT/$1.$i" || ok=0; done
}
fs_umount

# first without room for a spare (max_threads=2: the two entries of each
# queue): the storm must hang, or this test would prove nothing
forcesync_mount uring,allow_other,max_threads=2
ok=1
storm n1 8
check "[ $? = 1 ]" "without room for spare entries, clone ioctls that block both entries of a queue hang it"
check "wait_until 15 'grep -q \"entries of CPU queue 0 are blocked and no other can be added\" $WORK/rescue.out'" "... and the daemon says so"
abort_fuse
umount -l "$MNT" 2>/dev/null
wait_until 15 "! kill -0 $forced 2>/dev/null" || kill -KILL $forced 2>/dev/null
wait $forced 2>/dev/null
"$BIN_DIR/fsck.kmemfs" -y "$POOL" >/dev/null 2>&1
rm -f "$WORK/rescue.out"

forcesync_mount uring,allow_other
ok=1 hung=0
for round in 1 2 3; do
	storm "r$round" 30 || { hung=1; abort_fuse; break; }
done
spares=$(grep -c 'io_uring: all entries of CPU queue 0 busy for .* ms: added entry' "$WORK/rescue.out")
check "[ $hung = 0 ] && [ $ok = 1 ]" "with spare entries, 12 clone ioctls whose handlers block their ring entries finish and match their source (hung: $hung)"
check "[ $spares -ge 1 ]" "the monitor rescued CPU queue 0 with spare entries ($spares)"
[ $hung = 0 ] || abort_test "the mount hung"
fs_umount
check "wait_until 15 '! kill -0 $forced 2>/dev/null'" "the daemon with spare entries exits at unmount"
wait $forced
check "[ $? -eq 0 ]" "... with status 0"

# a cpuset that keeps the daemon off a CPU: a blocked queue of that CPU
# could not be kicked, so -o uring says so and keeps /dev/fuse
cg=/sys/fs/cgroup/cpuset/kmemfs-test.$$
if [ "$(nproc --all)" -ge 2 ] && mkdir "$cg" 2>/dev/null; then
	cat /sys/fs/cgroup/cpuset/cpuset.mems >"$cg/cpuset.mems"
	echo 0 >"$cg/cpuset.cpus"
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg" \
		"$BIN_DIR/kmemfs" -o uring "$POOL" "$MNT" >"$WORK/cpuset.out" 2>&1
	wait_until 10 is_mounted
	check_eq "$(requests_ring)" 0 "a daemon kept off CPU 1 by a cpuset takes no ring"
	check "grep -q 'may not run on CPU 1 (a cpuset)' '$WORK/cpuset.out'" "... and says why"
	fs_umount
	rmdir "$cg"
else
	skip "no cgroup v1 cpuset hierarchy to keep the daemon off a CPU"
fi
fs_mount uring,allow_other

# kill -9 with requests in the rings, then a clean remount
dd if=/dev/zero of="$MNT/stream" bs=1M count=400 status=none 2>/dev/null &
writer=$!
sleep 0.3
kill -KILL $(daemon_pids)
wait $writer 2>/dev/null
check "! ls '$MNT' >/dev/null 2>&1" "after kill -9 the mount answers no more"
umount -l "$MNT" 2>/dev/null
"$BIN_DIR/fsck.kmemfs" "$POOL" >"$WORK/fsck.out" 2>&1
check "[ $? -eq 0 ]" "fsck.kmemfs finds the pool clean after kill -9 ($(tail -n 1 "$WORK/fsck.out"))"
fs_mount uring,allow_other
check_cmd "data written before the kill is intact" cmp "$WORK/big" "$MNT/big.pc"
check "[ \$(requests_ring) -gt 0 ]" "the remount takes the rings again"

# SIGTERM with requests in the rings: the daemon finishes what its entries
# hold, unmounts and exits; the writer gets an error, not a hang
dd if=/dev/zero of="$MNT/stream2" bs=1M count=4000 status=none 2>/dev/null &
writer=$!
sleep 0.3
pids=$(daemon_pids)
kill -TERM $pids
check "wait_until 15 '! kill -0 $pids 2>/dev/null'" "SIGTERM with requests in the rings: the daemon exits"
check "wait_until 15 '! kill -0 $writer 2>/dev/null'" "SIGTERM with requests in the rings: the writer is not left hanging"
check "! is_mounted" "SIGTERM with requests in the rings: unmounted"
wait $writer 2>/dev/null
"$BIN_DIR/fsck.kmemfs" "$POOL" >"$WORK/fsck.out" 2>&1
check "[ $? -eq 0 ]" "fsck.kmemfs finds the pool clean after SIGTERM ($(tail -n 1 "$WORK/fsck.out"))"

# no ring unless both sides want one
fs_mount
ls "$MNT" >/dev/null
check_eq "$(requests_ring)" 0 "without -o uring: no request through io_uring"
check "[ \$(requests_dev) -gt 1 ]" "without -o uring: requests through /dev/fuse"
fs_umount
uring_offer N
fs_mount uring
cat "$MNT/odd" >/dev/null
check_eq "$(requests_ring)" 0 "-o uring, kernel not offering it: no request through io_uring"
check "grep -q 'does not offer FUSE over io_uring' '$WORK/mount.out'" \
	"-o uring, kernel not offering it: kmemfs says so ($(head -n 1 "$WORK/mount.out"))"
fs_umount
check "[ -z \"\$(daemon_pids)\" ]" "the daemon exits after unmount"
finish
