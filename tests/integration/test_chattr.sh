#!/bin/bash
# test_chattr.sh -- attribute flags (chattr, lsattr; FS_IOC_[GS]ETFLAGS and
# FS_IOC_FS[GS]ETXATTR): immutable and append-only refuse, with EPERM, what a
# kernel filesystem refuses; nodump and noatime; who may set them; new inodes
# take nodump and noatime from their directory; all of it survives a remount.
. "$(dirname "$0")/lib.sh" "$@"
fs_setup 128M allow_other,default_permissions
cd "$MNT" || abort_test "cd into the mount"

# the letters lsattr shows, without its dashes
letters() { lsattr -d "$1" 2>&1 | cut -d' ' -f1 | tr -d -; }

# -- an immutable file
echo data >f
setfattr -n user.k -v v f
echo other >other
check_eq "$(letters f)" "" "a new file has no flags"
check_cmd "chattr +i" chattr +i f
check_eq "$(letters f)" i "lsattr shows i"
check_eq "$(probe getflags f)" 0x10 "FS_IOC_GETFLAGS says FS_IMMUTABLE_FL"
check_eq "$(probe fsxflags f)" 0x8 "FS_IOC_FSGETXATTR says FS_XFLAG_IMMUTABLE"
before=$(stat -c '%a %u %g %s %Y' f)
expect_errno EPERM "immutable: open for writing" probe open f wronly
expect_errno EPERM "immutable: open for appending" probe open f wronly,append
expect_errno EPERM "immutable: open with O_TRUNC" probe open f rdonly,trunc
expect_errno OK "immutable: open for reading" probe open f rdonly
check_eq "$(cat f)" data "immutable: reads"
expect_errno EPERM "immutable: truncate" probe truncate f 0
expect_errno EPERM "immutable: chmod" probe chmod f 0600
expect_errno EPERM "immutable: chown" probe chown f 1000 1000
expect_errno EPERM "immutable: utimensat to a time" probe utimens f 1 0 2 0
expect_errno EPERM "immutable: utimensat to now (touch)" probe utimens f 0 now 0 now
expect_errno EPERM "immutable: setxattr" probe setxattr f user.n v
expect_errno EPERM "immutable: removexattr" probe removexattr f user.k
check "! setfacl -m u:1000:r f 2>'$WORK/err' && grep -q 'Operation not permitted' '$WORK/err'" \
	"immutable: setfacl says Operation not permitted"
expect_errno EPERM "immutable: unlink" probe unlink f
expect_errno EPERM "immutable: rename" probe rename2 f g none
expect_errno EPERM "immutable: renamed over" probe rename2 other f none
expect_errno EPERM "immutable: exchanged" probe rename2 other f exchange
expect_errno EPERM "immutable: hard link" probe link f h
# a descriptor opened before the flag came: the change is refused all the
# same (tmpfs lets such a descriptor write; ext4 and xfs refuse, as kmemfs)
chattr -i f
if on_kmemfs; then
	expect_errno EPERM "immutable: a write through an earlier descriptor" probe heldchange f 0x10 write 0 4
fi
expect_errno EPERM "immutable: a fallocate through an earlier descriptor" probe heldchange f 0x10 alloc 0 8192
expect_errno EPERM "immutable: a punch through an earlier descriptor" probe heldchange f 0x10 punch 0 4096
chattr +i f
check_eq "$(stat -c '%a %u %g %s %Y' f) $(cat f) $(getfattr -n user.k --only-values f)" \
	"$before data v" "nothing about the immutable file changed"
check "[ -e other ] && [ ! -e g ] && [ ! -e h ]" "no name came or went"
check_cmd "chattr -i" chattr -i f
check_eq "$(letters f)" "" "lsattr shows no flag again"
expect_errno OK "writable again" probe pwrite f 0 DATA
check_eq "$(cat f)" DATA "the write landed"

# -- an append-only file
printf 'one\n' >a
setfattr -n user.k -v v a
check_cmd "chattr +a" chattr +a a
check_eq "$(letters a)" a "lsattr shows a"
check_cmd "append-only: >> appends" sh -c 'echo two >>a'
check_eq "$(cat a)" "one
two" "the appended bytes landed"
expect_errno EPERM "append-only: open for writing without O_APPEND" probe open a wronly
expect_errno EPERM "append-only: open with O_TRUNC" probe open a wronly,append,trunc
expect_errno OK "append-only: open with O_APPEND" probe open a wronly,append
expect_errno EPERM "append-only: truncate" probe truncate a 0
expect_errno EPERM "append-only: chmod" probe chmod a 0600
expect_errno EPERM "append-only: utimensat to a time" probe utimens a 1 0 2 0
expect_errno OK "append-only: utimensat to now (touch)" probe utimens a 0 now 0 now
expect_errno EPERM "append-only: utimensat of one time to now (touch -a)" probe utimens a 0 now 0 omit
expect_errno EPERM "append-only: chown" probe chown a 1000 1000
expect_errno EPERM "append-only: setxattr" probe setxattr a user.n v
expect_errno EPERM "append-only: removexattr" probe removexattr a user.k
expect_errno EPERM "append-only: unlink" probe unlink a
expect_errno EPERM "append-only: rename" probe rename2 a g none
expect_errno EPERM "append-only: hard link" probe link a h
# through descriptors opened before the flag, one with O_APPEND taken off
# (tmpfs refuses that fcntl; kmemfs refuses the write)
chattr -a a
expect_errno EPERM "append-only: an overwrite through an earlier descriptor" probe heldchange a 0x20 write 0 3
expect_errno EPERM "append-only: a punch through an earlier descriptor" probe heldchange a 0x20 punch 0 4096
expect_errno OK "append-only: an allocation through an earlier descriptor" probe heldchange a 0x20 alloc 0 8192
chattr +a a
check_eq "$(head -c 8 a)" "one
two" "the append-only file's bytes are as written"
chattr -a a
# an append by a user without CAP_FSETID clears setuid, as tmpfs does
printf 'x' >su
chmod 4777 su
chattr +a su
expect_errno OK "append-only: another user appends to a setuid file" as_user 1000 probe append su y
check_eq "$(stat -c %a su) $(cat su)" "777 xy" "the append landed and setuid went"
chattr -a su

# -- directories
mkdir di da
echo old >di/old
echo old >da/old
touch x y
chattr +i di
chattr +a da
check_eq "$(letters di) $(letters da)" "i a" "lsattr -d shows the directories' flags"
expect_errno EPERM "immutable directory: create" probe open di/new wronly,creat
expect_errno EPERM "immutable directory: mkdir" probe mkdir di/sub 0755
expect_errno EPERM "immutable directory: symlink" probe symlink x di/sym
expect_errno EPERM "immutable directory: mknod" probe mknod di/fifo fifo 0644
expect_errno EEXIST "immutable directory: mkdir of a name it has" probe mkdir di/old 0755
expect_errno EPERM "immutable directory: unlink" probe unlink di/old
expect_errno EPERM "immutable directory: rename out" probe rename2 di/old z none
expect_errno EPERM "immutable directory: rename in" probe rename2 x di/x none
expect_errno EPERM "immutable directory: hard link in" probe link x di/l
expect_errno OK "immutable directory: its files stay writable" probe pwrite di/old 0 OLD
expect_errno EPERM "immutable directory: rmdir of it" probe rmdir di
expect_errno OK "append-only directory: create" probe open da/new wronly,creat
expect_errno OK "append-only directory: rename in" probe rename2 x da/x none
expect_errno EPERM "append-only directory: unlink" probe unlink da/old
expect_errno EPERM "append-only directory: rename out" probe rename2 da/new z none
expect_errno EPERM "append-only directory: rename over a name in it" probe rename2 y da/x none
check_eq "$(ls di | tr '\n' ' ')/$(ls da | tr '\n' ' ')" "old /new old x " "the directories hold what they should"

# -- who may set them
echo u >owned
chown 1000:1000 owned
expect_errno EPERM "the owner may not set immutable (CAP_LINUX_IMMUTABLE)" as_user 1000 probe setflags owned 0x10
expect_errno EPERM "the owner may not set append-only" as_user 1000 probe setflags owned 0x20
expect_errno OK "the owner may set nodump" as_user 1000 probe setflags owned 0x40
expect_errno EPERM "another user may not set nodump" as_user 1001 probe setflags owned 0
expect_errno EPERM "root without CAP_LINUX_IMMUTABLE may not set immutable" \
	without_cap linux_immutable probe setflags owned 0x50
check_eq "$(probe getflags owned)" 0x40 "only the allowed change took"
expect_errno EOPNOTSUPP "a flag the filesystem does not keep (compress)" probe setflags owned 0x4
expect_errno OK "FS_IOC_FSSETXATTR sets append-only and noatime" probe fsxflags owned 0x50
check_eq "$(letters owned)" aA "and lsattr shows them"
expect_errno EOPNOTSUPP "FS_IOC_FSSETXATTR of an xflag not kept (realtime)" probe fsxflags owned 0x1
probe setflags owned 0 >/dev/null
ct0=$(stat -c %Z owned)
sleep 1.1
chattr +d owned
check "[ \"\$(stat -c %Z owned)\" -gt $ct0 ]" "chattr moves the change time"

# -- nodump and noatime, and what new inodes inherit
for n in at1 at2; do printf data >$n; probe utimens $n 1000 0 0 omit >/dev/null; done
chattr +A at1
probe read at1 >/dev/null
probe read at2 >/dev/null
check_eq "$(stat_field at1 atime)" 1000.000000000 "noatime: a read leaves the access time"
check "[ \"\$(stat_field at2 atime | cut -d. -f1)\" -gt 1000 ]" "without it the same read moves it"
mkdir inh
chattr +A +d +a inh
touch inh/file
mkdir inh/sub
check_eq "$(letters inh/file) $(letters inh/sub)" "dA dA" "new inodes take nodump and noatime, not append-only"
chattr -a inh

# -- lsattr -v: each inode's generation, which no other inode had
if on_kmemfs; then
	gen_f=$(lsattr -vd f 2>&1 | awk '{print $1}')
	gen_a=$(lsattr -vd a 2>&1 | awk '{print $1}')
	check "[[ '$gen_f' =~ ^[0-9]+$ && '$gen_a' =~ ^[0-9]+$ && '$gen_f' != '$gen_a' ]]" \
		"lsattr -v shows two files' generations, different ($gen_f, $gen_a)"
fi

# -- the flags survive a remount, and still bind
chattr +i f
chattr +a a
cd "$WORK" && fs_remount && cd "$MNT" || abort_test "remount"
check_eq "$(letters f) $(letters a) $(letters di) $(letters da) $(letters at1)" "i a i a A" \
	"the flags survive a remount"
expect_errno EPERM "immutable after the remount" probe open f wronly
expect_errno EPERM "append-only after the remount" probe unlink a
chattr -i f di
chattr -a a da
expect_errno OK "all removable once the flags are off" rm -rf f a di da

cd "$WORK"
if on_kmemfs; then
	fs_umount
	"$BIN_DIR/fsck.kmemfs" -n "$POOL" >"$WORK/fsck.out" 2>&1
	check_eq "$?" 0 "fsck.kmemfs -n is clean after all that ($(tail -n 1 "$WORK/fsck.out"))"
fi
finish
