#!/bin/bash
# test_persist.sh -- every byte and attribute survives unmount/remount: contents
# (checksums), sizes, holes, modes, owners, ns times, links, xattrs, ACLs, special
# files, inode numbers; then a read-only mount refuses every change.
. "$(dirname "$0")/lib.sh" "$@"
fs_setup 256M allow_other,default_permissions
cd "$MNT" || abort_test "cd into the mount"
umask 022

mkdir -p tree/a/b/c tree/empty tree/many
for i in $(seq 1 300); do echo "entry $i" >tree/many/e$i; done
for s in 1 4095 4096 4097 65536 1000000 4194304 5000001; do
	head -c $s /dev/urandom >tree/a/size$s
done
truncate -s 256M tree/sparse
probe pwrite tree/sparse 134217728 middle >/dev/null
probe pwrite tree/sparse 268435400 at-the-end >/dev/null
head -c 2097152 /dev/urandom >tree/punched
fallocate -p -o 4096 -l 1048576 tree/punched
touch tree/prealloc
fallocate -n -l 1M tree/prealloc
head -c 1048576 /dev/urandom >tree/a/orig
cp tree/a/orig tree/a/clone
probe pwrite tree/a/clone 8192 diverged >/dev/null
ln tree/a/size1 tree/a/b/hard1
ln -s ../size4096 tree/a/b/sym
ln -s "$(printf 'long%.0s' $(seq 500))" tree/longsym
probe mknod tree/chr chr 0644 1 7 >/dev/null
probe mknod tree/blk blk 0600 8 1 >/dev/null
mkfifo tree/fifo
probe mknod tree/sock sock 0755 >/dev/null
for m in 0000 0600 0751 1777 2755 4711 6755; do
	touch tree/m$m
	chmod $m tree/m$m
done
chmod 1777 tree/empty
chown 1000:2000 tree/a/size4096
chown -h 3000:4000 tree/a/b/sym
setfattr -n user.k -v v tree/a/size1
setfattr -n trusted.t -v 0xdeadbeef00 tree/a/b
setfattr -n security.s -v sec tree/fifo
setfacl -m u:1000:rwx,g:2000:r tree/a/size65536
setfacl -d -m u:1000:rx tree/a/b/c
probe utimens tree/a/size4097 1111111111 111111111 1222222222 222222222 >/dev/null
probe utimens tree/a/b/sym 5 5 6 6 nofollow >/dev/null
# atime ahead of mtime and in the future: relatime will not move it on reads
future=$(($(date +%s) + 3600))
probe utimens tree/a/size4096 $future 123456789 1000000000 1 >/dev/null
sync

before=$(manifest "$MNT/tree")
births=$(cd "$MNT/tree" && find . -print0 | sort -z | xargs -0 stat -c '%n %.9W')
root_ino=$(stat_field "$MNT" ino)
check "[ \$(echo \"\$before\" | wc -l) -gt 330 ]" "manifest covers the tree ($(echo "$before" | wc -l) lines)"
cd /
fs_remount || abort_test "unmount and mount again"
check_eq "$(manifest "$MNT/tree")" "$before" "every byte and attribute survives a remount"
check_eq "$(stat_field "$MNT/tree/a/size4096" atime)" "$future.123456789" "atime survives a remount"
check_eq "$(cd "$MNT/tree" && find . -print0 | sort -z | xargs -0 stat -c '%n %.9W')" "$births" \
	"every birth time survives a remount"
check "! echo \"\$births\" | grep -q ' 0\\.0*\$'" "every entry has a birth time"
check_eq "$(stat_field "$MNT" ino)" "$root_ino" "root inode number is stable"
check_eq "$(probe pread "$MNT/tree/sparse" 268435400 10)" at-the-end "data at the end of a sparse file"
check_eq "$(probe seek "$MNT/tree/punched" hole 0)" 4096 "a punched hole is still a hole"
check "cmp -n 8192 '$MNT/tree/a/orig' '$MNT/tree/a/clone'" "a clone still shares the unchanged start"
check_eq "$(probe pread "$MNT/tree/a/clone" 8192 8)" diverged "a clone keeps its own write"

# change things, remount again: the second generation must also stick
rm -r "$MNT/tree/many"
mv "$MNT/tree/a/size1" "$MNT/tree/renamed"
echo appended >>"$MNT/tree/a/size4095"
setfattr -x user.k "$MNT/tree/renamed"
truncate -s 100 "$MNT/tree/a/size5000001"
before2=$(manifest "$MNT/tree")
fs_remount || abort_test "second remount"
check_eq "$(manifest "$MNT/tree")" "$before2" "changes after a remount survive another remount"

# file handles (open_by_handle_at, as NFS uses them) outlive the mount
# that made them; a removed file's is stale; made-up ones name nothing
mkdir -p "$MNT/handles/d"
echo handled >"$MNT/handles/f"
echo gone >"$MNT/handles/gone"
h_file=$(probe handle "$MNT/handles/f")
h_dir=$(probe handle "$MNT/handles/d")
h_gone=$(probe handle "$MNT/handles/gone")
ino_file=$(stat -c %i "$MNT/handles/f")
check_eq "$(probe openhandle "$MNT" "$h_file")" "ino=$ino_file handled" "a file handle opens its file"
rm "$MNT/handles/gone"
fs_remount || abort_test "remount for the handles"
check_eq "$(probe openhandle "$MNT" "$h_file")" "ino=$ino_file handled" \
	"... and again after a remount (the kernel asks kmemfs for the inode by number)"
check_eq "$(probe openhandle "$MNT" "$h_dir")" "ino=$(stat -c %i "$MNT/handles/d") " \
	"a directory's handle opens it after a remount"
expect_errno ESTALE "the handle of a removed file is stale after a remount" \
	probe openhandle "$MNT" "$h_gone"
# FUSE's handle: the node id's high and low 32 bits, then the generation,
# each little-endian
le32() { printf %08x "$((16#${1:6:2}${1:4:2}${1:2:2}${1:0:2}))"; }
to_le32() { local v; v=$(printf %08x "$1"); echo "${v:6:2}${v:4:2}${v:2:2}${v:0:2}"; }
type=${h_file%%:*} hex=${h_file#*:}
lo=$((16#$(le32 "${hex:8:8}"))) gen=$((16#$(le32 "${hex:16:8}")))
for forged in "${hex:0:8}$(to_le32 $((lo + 16)))${hex:16:8}" \
	"${hex:0:8}$(to_le32 $((lo - 256)))${hex:16:8}" \
	"${hex:0:16}$(to_le32 $((gen + 1)))" \
	"00000000$(to_le32 4096)$(to_le32 1)" "ffffffff$(to_le32 4294967040)$(to_le32 1)"; do
	expect_errno ESTALE "a made-up handle names nothing ($forged)" probe openhandle "$MNT" "$type:$forged"
done
check_eq "$(cat "$MNT/handles/f")" handled "the mount still serves after the made-up handles"
rm -r "$MNT/handles"

# read-only
fs_remount ro || abort_test "mount read-only"
check_eq "$(manifest "$MNT/tree")" "$before2" "a read-only mount shows the same tree"
expect_errno EROFS "create on a read-only mount" probe open "$MNT/new" wronly,creat
expect_errno EROFS "write on a read-only mount" probe open "$MNT/tree/renamed" wronly
expect_errno EROFS "mkdir on a read-only mount" probe mkdir "$MNT/d" 0755
expect_errno EROFS "unlink on a read-only mount" probe unlink "$MNT/tree/renamed"
expect_errno EROFS "rename on a read-only mount" probe rename2 "$MNT/tree/renamed" "$MNT/x" none
expect_errno EROFS "chmod on a read-only mount" probe chmod "$MNT/tree/renamed" 0600
expect_errno EROFS "setxattr on a read-only mount" probe setxattr "$MNT/tree/renamed" user.x y
expect_errno EROFS "truncate on a read-only mount" probe truncate "$MNT/tree/renamed" 0
expect_errno EROFS "utimens on a read-only mount" probe utimens "$MNT/tree/renamed" 1 0 1 0
expect_errno OK "read on a read-only mount" probe read "$MNT/tree/renamed"
fs_remount "" || abort_test "mount read-write again"
check_eq "$(manifest "$MNT/tree")" "$before2" "nothing changed through the read-only mount"
expect_errno OK "writable again after a read-write mount" probe open "$MNT/new" wronly,creat

if on_kmemfs && [ -x "$BIN_DIR/fsck.kmemfs" ]; then
	fs_umount
	"$BIN_DIR/fsck.kmemfs" -n "$POOL" >"$WORK/fsck.out" 2>&1
	check_eq "$?" 0 "fsck.kmemfs -n is clean after all that ($(tail -n 1 "$WORK/fsck.out"))"
elif on_kmemfs; then
	fail "fsck.kmemfs present in $BIN_DIR"
fi
finish
