#!/bin/bash
# test_files.sh -- regular files, directories, hard links, symlinks, device nodes,
# FIFOs, attributes (chmod/chown/utimens with ns), truncate, O_APPEND, fsync.
. "$(dirname "$0")/lib.sh" "$@"
fs_setup 256M
cd "$MNT" || abort_test "cd into the mount"

# -- regular files
printf 'hello kmemfs\n' >f
check_eq "$(cat f)" "hello kmemfs" "write then read a small file"
check_eq "$(stat_field f size)" 13 "size of a small file"
check_eq "$(stat_field f mode)" 100644 "new file mode honours umask 022"
head -c 3000000 /dev/urandom >big
check_eq "$(sha256sum <big | cut -d' ' -f1)" "$(sha256sum <big | cut -d' ' -f1)" "re-reading a 3 MB file is stable"
cp big big.copy
check_cmd "cp of a 3 MB file compares equal" cmp big big.copy
probe pwrite big 1000000 PATCHED >/dev/null
check_eq "$(probe pread big 1000000 7)" PATCHED "pwrite in the middle of a file"
check_eq "$(stat_field big size)" 3000000 "pwrite in the middle keeps the size"
check "cmp -n 1000000 big big.copy" "bytes before the patch unchanged"
check "cmp -i 1000007 big big.copy" "bytes after the patch unchanged"
blocks=$(stat_field big blocks)
check "[ $blocks -ge $((3000000 / 512)) ]" "st_blocks covers the data of a dense file ($blocks)"
expect_errno EEXIST "O_CREAT|O_EXCL on an existing file" probe open f wronly,creat,excl
expect_errno ENOENT "open of a missing file" probe open nope rdonly
expect_errno EISDIR "open a directory for writing" probe open . wronly
expect_errno ENOTDIR "O_DIRECTORY on a file" probe open f rdonly,directory
expect_errno ENOTDIR "path walk through a file" probe stat f/x
: >f
check_eq "$(stat_field f size)" 0 "O_TRUNC empties a file"

# -- directories
mkdir -p d1/d2/d3
check_eq "$(stat_field d1 nlink)" 3 "nlink of a directory with one subdirectory"
check_eq "$(stat_field d1/d2/d3 nlink)" 2 "nlink of an empty directory"
rootlinks=$(stat_field . nlink)
mkdir d4
empty_size=$(stat_field d4 size)
touch d4/a d4/b d4/c
check_eq "$(( $(stat_field d4 size) > empty_size ))" 1 "a directory's size grows with its entries"
rm d4/a d4/b d4/c
check_eq "$(stat_field d4 size)" "$empty_size" "and shrinks back when they go"
check_eq "$(stat_field . nlink)" $((rootlinks + 1)) "mkdir raises the parent's nlink"
rmdir d4
check_eq "$(stat_field . nlink)" "$rootlinks" "rmdir lowers the parent's nlink"
expect_errno ENOTEMPTY "rmdir of a non-empty directory" probe rmdir d1
expect_errno EEXIST "mkdir over an existing name" probe mkdir d1 0755
expect_errno ENOTDIR "rmdir of a file" probe rmdir f
expect_errno EISDIR "unlink of a directory" probe unlink d1
expect_errno EINVAL "rmdir of ." probe rmdir d1/.
probe mkdir d5 01777 >/dev/null
check_eq "$(stat_field d5 mode)" 41755 "mkdir mode is masked by umask 022 (sticky kept)"
check_eq "$(ls -a d1 | tr '\n' ' ')" ". .. d2 " "readdir lists . .. and the child"
check_eq "$(stat_field d1/.. ino)" "$(stat_field . ino)" ".. of a subdirectory is its parent"

# -- hard links
echo linked >h1
ln h1 h2
check_eq "$(stat_field h1 nlink)" 2 "link raises nlink"
check_eq "$(stat_field h1 ino)" "$(stat_field h2 ino)" "hard links share the inode number"
echo more >>h2
check_eq "$(cat h1)" "$(printf 'linked\nmore')" "a write through one link shows through the other"
ctime_before=$(stat_field h1 ctime)
sleep 0.01
rm h2
check_eq "$(stat_field h1 nlink)" 1 "unlink lowers nlink"
check "[ '$(stat_field h1 ctime)' != '$ctime_before' ]" "unlink of a link changes the inode's ctime"
expect_errno EPERM "hard link to a directory" probe link d1 dlink
expect_errno EEXIST "hard link over an existing name" probe link h1 f

# -- symlinks
ln -s h1 s1
check_eq "$(probe readlink s1)" h1 "readlink returns the target"
check_eq "$(cat s1)" "$(cat h1)" "reading through a symlink"
check_eq "$(stat_field s1 mode)" 120777 "symlink mode"
check_eq "$(stat_field s1 size)" 2 "symlink size is the target length"
ln -s /nonexistent/dangling s2
expect_errno ENOENT "dangling symlink fails to open" probe open s2 rdonly
check_eq "$(probe readlink s2)" /nonexistent/dangling "dangling symlink readlink"
long=$(printf 'x%.0s' $(seq 4000))
ln -s "$long" s3
check_eq "$(probe readlink s3)" "$long" "4000-byte symlink target round-trips"
ln -s s4 s4
expect_errno ELOOP "symlink loop" probe open s4 rdonly
expect_errno ELOOP "O_NOFOLLOW on a symlink" probe open s1 rdonly,nofollow
probe lchown s1 1234 5678 >/dev/null
check_eq "$(stat_field s1 uid):$(stat_field s1 gid)" 1234:5678 "lchown changes the link, not the target"
check_eq "$(stat_field h1 uid)" 0 "lchown leaves the target alone"

# -- device nodes, FIFOs, sockets
expect_errno OK "mknod character device" probe mknod cdev chr 0640 1 3
check_eq "$(stat_field cdev mode) $(stat_field cdev rdev)" "20640 1:3" "character device type, mode and rdev"
# FUSE mounts default to nodev: then opening the node must fail with EACCES
if findmnt -no OPTIONS "$MNT" | tr ',' '\n' | grep -qx nodev; then
	expect_errno EACCES "opening a device node on a nodev mount" probe open cdev rdonly
else
	check_eq "$(head -c 4 cdev | wc -c)" 0 "reading the char device reaches /dev/null's driver"
fi
expect_errno OK "mknod block device" probe mknod bdev blk 0600 7 200
check_eq "$(stat_field bdev mode) $(stat_field bdev rdev)" "60600 7:200" "block device type, mode and rdev"
expect_errno OK "mknod big device numbers" probe mknod cdev2 chr 0600 300 70000
check_eq "$(stat_field cdev2 rdev)" 300:70000 "large major:minor round-trips"
mkfifo fifo
check_eq "$(stat_field fifo mode)" 10644 "mkfifo makes a FIFO"
(echo through-the-fifo >fifo) &
fifo_writer=$!
check_eq "$(timeout 10 cat fifo)" through-the-fifo "data flows through a FIFO on the fs"
wait $fifo_writer
expect_errno OK "mknod socket" probe mknod sock sock 0755
check_eq "$(stat_field sock mode)" 140755 "socket node type"

# -- chmod, chown, utimens
probe chmod f 04751 >/dev/null
check_eq "$(stat_field f mode)" 104751 "chmod with setuid"
probe chown f 1000 1000 >/dev/null
check_eq "$(stat_field f uid):$(stat_field f gid)" 1000:1000 "chown"
check_eq "$(stat_field f mode)" 100751 "chown clears setuid"
probe chown f -1 2000 >/dev/null
check_eq "$(stat_field f uid):$(stat_field f gid)" 1000:2000 "chown with uid -1 changes only the group"
probe utimens f 1000000000 987654321 1234567890 123456789 >/dev/null
check_eq "$(stat_field f atime) $(stat_field f mtime)" "1000000000.987654321 1234567890.123456789" \
	"utimensat keeps nanoseconds"
probe utimens f 0 omit 2000000000 1 >/dev/null
check_eq "$(stat_field f atime) $(stat_field f mtime)" "1000000000.987654321 2000000000.000000001" \
	"UTIME_OMIT leaves atime alone"
probe utimens f -1 500000000 0 0 >/dev/null
check_eq "$(stat_field f atime)" -1.500000000 "pre-1970 timestamp"

# -- birth time (statx STATX_BTIME; FUSE_STATX, which kmemfs answers itself):
# set at creation, within the creation's time, and never moved by a change
t0=$(date +%s.%N)
printf born >bt
t1=$(date +%s.%N)
born=$(stat -c %.9W bt)
check "awk -v b=$born -v a=$t0 -v c=$t1 'BEGIN { exit !(b >= a - 0.01 && b <= c + 0.01) }'" \
	"a new file's birth time is when it was created, within 10 ms ($t0, $born, $t1)"
sleep 0.05
printf more >>bt
chmod 600 bt
probe utimens bt 1000 0 2000 0 >/dev/null
ln bt bt.link
check_eq "$(stat -c %.9W bt)" "$born" "writes, chmod, utimens and link leave the birth time"
mkdir btd
mkfifo btd/fifo
ln -s bt btd/sym
for n in btd btd/fifo btd/sym; do
	check "[ \"\$(stat -c %W $n)\" -gt 0 ]" "$n has a birth time"
done

# -- access and change times of reads and fallocate: a read moves an access
# time older than the last change (relatime), but not through O_NOATIME; a
# fallocate that keeps the size changes mtime too, as any fallocate
for n in 1 2; do printf data >at$n; probe utimens at$n 1000 0 0 omit >/dev/null; done
probe readf at1 rdonly,noatime >/dev/null
check_eq "$(stat_field at1 atime)" 1000.000000000 "a read through O_NOATIME leaves the access time"
probe readf at2 rdonly >/dev/null
check "[ \"\$(stat_field at2 atime | cut -d. -f1)\" -gt 1000 ]" "a read moves an access time older than the last change"
# ... before the read returns: a stat right after it never sees the old time
# (the daemon moved it after its answer: about 1 stat in 500 did)
check_eq "$(probe readatime at2 1500 buffered)" 0 "a stat right after a page-cache read sees the new access time"
check_eq "$(probe readatime at2 500)" 0 "a stat right after an O_DIRECT read sees the new access time"
# ... and so does copy_file_range of the source it reads
probe utimens at2 1000 0 0 omit >/dev/null
stat at2 >/dev/null # the kernel caches the old time
probe cfr at2 0 at2.copy 0 4 >/dev/null
check "[ \"\$(stat_field at2 atime | cut -d. -f1)\" -gt 1000 ]" "copy_file_range moves its source's access time older than the last change"
probe utimens at2 1000 0 0 omit >/dev/null
probe cfr at2 0 at2.copy 0 4 noatime >/dev/null
check_eq "$(stat_field at2 atime)" 1000.000000000 "... but not from a source opened O_NOATIME"
# ... and so do a readdir and a readlink (the kernel leaves them to the daemon)
mkdir atd
ln -s at1 atl
probe utimens atd 1000 0 0 omit >/dev/null
probe utimens atl 1000 0 0 omit nofollow >/dev/null
ls atd >/dev/null
readlink atl >/dev/null
check "[ \"\$(stat_field atd atime | cut -d. -f1)\" -gt 1000 ]" "a readdir moves a directory's access time older than its last change"
check "[ \"\$(stat_field atl atime | cut -d. -f1)\" -gt 1000 ]" "a readlink moves a symlink's access time older than its last change"
if on_kmemfs; then
	# the kernel's nodiratime never reaches FUSE: the daemon keeps it too
	cd / && fs_remount nodiratime && cd "$MNT" || abort_test "remount with -o nodiratime"
	probe utimens atd 1000 0 0 omit >/dev/null
	probe utimens at2 1000 0 0 omit >/dev/null
	ls atd >/dev/null
	probe readf at2 rdonly >/dev/null
	check_eq "$(stat_field atd atime)" 1000.000000000 "-o nodiratime: a readdir leaves the access time"
	check "[ \"\$(stat_field at2 atime | cut -d. -f1)\" -gt 1000 ]" "-o nodiratime: a read still moves it"
	cd / && fs_remount "" && cd "$MNT" || abort_test "remount"
fi
probe utimens at2 0 omit 1000 0 >/dev/null
probe falloc at2 keep 0 65536 >/dev/null
check "[ \"\$(stat_field at2 mtime | cut -d. -f1)\" -gt 1000 ]" "fallocate -n (KEEP_SIZE) changes mtime"
probe utimens f 0 now 0 now >/dev/null
now=$(date +%s)
m=$(stat_field f mtime)
check "[ ${m%.*} -ge $((now - 5)) ] && [ ${m%.*} -le $((now + 1)) ]" "UTIME_NOW sets the current time"
probe utimens s1 5 0 6 0 nofollow >/dev/null
check_eq "$(stat_field s1 mtime)" 6.000000000 "utimensat AT_SYMLINK_NOFOLLOW sets the link's time"
c1=$(stat_field f ctime)
sleep 0.01
chmod 0644 f
c2=$(stat_field f ctime)
check "[ '$c1' != '$c2' ]" "chmod updates ctime"
m1=$(stat_field f mtime)
echo x >>f
check "[ '$(stat_field f mtime)' != '$m1' ]" "write updates mtime"
: >empty-trunc
probe utimens empty-trunc 5 0 5 0 >/dev/null
: >empty-trunc
check "[ '$(stat_field empty-trunc mtime)' != 5.000000000 ]" "an O_TRUNC open of an already empty file updates mtime"
rm -f empty-trunc
# truncate(2) to the size a file already has is still a change of its data
echo data >same-size
probe utimens same-size 5 0 5 0 >/dev/null
truncate -s 5 same-size
check "[ '$(stat_field same-size mtime)' != 5.000000000 ]" "truncate to the same size updates mtime"
rm -f same-size
dm=$(stat_field d1 mtime)
sleep 0.01
touch d1/newfile
check "[ '$(stat_field d1 mtime)' != '$dm' ]" "create updates the directory's mtime"

# -- truncate
printf '%8000s' '' | tr ' ' x >t
truncate -s 100 t
check_eq "$(stat_field t size)" 100 "truncate down"
truncate -s 8000 t
check_eq "$(tail -c 7900 t | tr -d '\0' | wc -c)" 0 "truncate down then up reads zeros, not old data"
check_eq "$(head -c 100 t | tr -d x | wc -c)" 0 "truncate keeps the bytes below the cut"
head -c 20000 /dev/urandom >t2
truncate -s 4096 t2
truncate -s 20000 t2
check_eq "$(tail -c 15904 t2 | tr -d '\0' | wc -c)" 0 "truncate at a page boundary then up reads zeros"
truncate -s 10M t3
check_eq "$(stat_field t3 size)" 10485760 "truncate up a new file"
check "[ $(stat_field t3 blocks) -lt 2048 ]" "truncate up allocates no data"
check_eq "$(tr -d '\0' <t3 | wc -c)" 0 "truncated-up file reads zeros"
expect_errno EINVAL "truncate to a negative size" probe truncate t -1
expect_errno EISDIR "truncate a directory" probe truncate d1 0

# -- O_APPEND
printf 'base' >a
check_eq "$(probe append a +one)" pos=8 "O_APPEND write goes to the end despite lseek(0)"
probe pwrite_append a 0 +two >/dev/null
check_eq "$(cat a)" base+one+two "pwrite on an O_APPEND fd appends (Linux)"
(for i in $(seq 50); do probe append a "[A$i]" >/dev/null; done) &
appender=$!
for i in $(seq 50); do probe append a "[B$i]" >/dev/null; done
wait $appender
check_eq "$(grep -o '\[[AB][0-9]*\]' a | wc -l)" 100 "concurrent O_APPEND writers lose nothing"

# -- fsync / fdatasync
expect_errno OK "fsync of a file" probe pwrite fs 0 synced sync
expect_errno OK "fdatasync of a file" probe pwrite fs 6 -data dsync
expect_errno OK "fsync of a directory" probe fsync d1
expect_errno OK "fdatasync opened read-only" probe fdatasync fs
check_eq "$(cat fs)" synced-data "data after fsync/fdatasync"
check_cmd "sync -f on the filesystem" sync -f "$MNT/fs"

# -- O_TMPFILE: a file no directory names, until linkat names it or its close frees it
mkdir tmpd
used0=$(used_bytes) inodes0=$(used_inodes)
out=$(probe tmpfile tmpd 0640 3000000 7 - - 2>&1)
check_eq "$(echo "$out" | tr ' ' '\n' | sed -n 's/^nlink=//p')" 0 "O_TMPFILE: the open file has no link"
check_eq "$(echo "$out" | tr ' ' '\n' | sed -n 's/^mode=//p')" 100640 "O_TMPFILE: a regular file with the mode asked for"
check_eq "$(echo "$out" | tr ' ' '\n' | sed -n 's/^size=//p')" 3000000 "O_TMPFILE: it takes writes"
check_eq "$(ls -A tmpd)" "" "O_TMPFILE: the directory stays empty"
check "wait_until 10 '[ \$(used_bytes) -le $used0 ] && [ \$(used_inodes) -eq $inodes0 ]'" \
	"O_TMPFILE: its space and inode are free again once it is closed"
out=$(probe tmpfile tmpd 0600 100000 9 tmpd/named 2>&1)
check_eq "$(echo "$out" | tail -n 1 | tr ' ' '\n' | sed -n 's/^nlink=//p')" 1 "O_TMPFILE then linkat: one link"
check_cmd "O_TMPFILE then linkat: the named file holds what was written" probe patcheck tmpd/named 100000 9
check_eq "$(stat_field tmpd/named mode)" 100600 "O_TMPFILE then linkat: the mode"
expect_errno ENOENT "O_TMPFILE|O_EXCL cannot be linked" probe tmpfile tmpd 0600 10 1 tmpd/never excl
check "[ ! -e tmpd/never ]" "O_TMPFILE|O_EXCL: no name appeared"
expect_errno EEXIST "O_TMPFILE: linkat over an existing name" probe tmpfile tmpd 0600 10 1 tmpd/named
check_cmd "O_TMPFILE: the existing name kept its file" probe patcheck tmpd/named 100000 9
expect_errno ENOTDIR "O_TMPFILE on a file" probe tmpfile f 0600 1 1
mkdir tmpd/gone
check_eq "$(cd tmpd/gone && rmdir ../gone && "$FSPROBE" tmpfile . 0600 1 1 | sed -n 's/.* nlink=\([0-9]*\) .*/\1/p')" 0 \
	"O_TMPFILE in a directory already removed (as Linux allows)"

cd /
finish
