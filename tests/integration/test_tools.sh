#!/bin/bash
# test_tools.sh -- everyday tools on the mount: cp -a of a tree, mv, ln, find,
# stat, df, du, tar, diff.
. "$(dirname "$0")/lib.sh" "$@"
fs_setup 256M
umask 022

# a source tree outside the mount with the things cp -a and tar must carry
SRC=$WORK/src
mkdir -p "$SRC"/a/b/c "$SRC/empty" "$SRC/modes"
for i in $(seq 1 40); do head -c $((i * 997)) /dev/urandom >"$SRC/a/f$i"; done
head -c 3000000 /dev/urandom >"$SRC/a/b/large"
truncate -s 20M "$SRC/a/b/sparse"
printf 'tail' | dd of="$SRC/a/b/sparse" bs=1 seek=10000000 conv=notrunc status=none
echo deep >"$SRC/a/b/c/deep"
ln "$SRC/a/f1" "$SRC/a/b/hardlink-to-f1"
ln -s ../f2 "$SRC/a/b/rel-link"
ln -s /etc/hostname "$SRC/abs-link"
mkfifo "$SRC/fifo"
for m in 0600 0640 0755 0700 1777 2755 4755; do
	touch "$SRC/modes/m$m"
	chmod $m "$SRC/modes/m$m"
done
chown 1000:1000 "$SRC/a/f3"
chown 1234:5678 "$SRC/a/f4"
setfattr -n user.tag -v tree "$SRC/a/f5"
touch -h -d '2001-02-03 04:05:06.123456789' "$SRC/a/f6" "$SRC/a/b/rel-link"

check_cmd "cp -a of a tree into the mount" cp -a "$SRC" "$MNT/copy"
check_cmd "diff -r finds no difference" diff -r --no-dereference -x fifo "$SRC" "$MNT/copy"
check_eq "$(manifest "$MNT/copy" noino)" "$(manifest "$SRC" noino)" \
	"cp -a keeps modes, owners, ns mtimes, links, xattrs, sparse sizes"
check_eq "$(stat -c %i "$MNT/copy/a/f1")" "$(stat -c %i "$MNT/copy/a/b/hardlink-to-f1")" \
	"cp -a keeps hard links together"
check "[ \$(stat -c %b '$MNT/copy/a/b/sparse') -lt 1024 ]" "cp -a keeps the sparse file sparse"
check_cmd "cp -a back out of the mount" cp -a "$MNT/copy" "$WORK/back"
check_eq "$(manifest "$WORK/back" noino)" "$(manifest "$SRC" noino)" "the round trip out of the mount is exact"

# mv within the mount keeps inodes; mv across filesystems copies
ino=$(stat -c %i "$MNT/copy/a/b/large")
check_cmd "mv a directory within the mount" mv "$MNT/copy/a" "$MNT/moved"
check_eq "$(stat -c %i "$MNT/moved/b/large")" "$ino" "mv within the mount keeps the inode"
check_cmd "mv of a file from another filesystem" mv "$WORK/back/a/f7" "$MNT/moved/f7.new"
check_cmd "moved-in file matches" cmp "$MNT/moved/f7.new" "$SRC/a/f7"
check "[ ! -e '$WORK/back/a/f7' ]" "mv across filesystems removes the source"
check_cmd "mv back across filesystems" mv "$MNT/moved/f7.new" "$WORK/f7"
check "[ ! -e '$MNT/moved/f7.new' ] && cmp '$WORK/f7' '$SRC/a/f7'" "mv out of the mount"

# ln, find, stat, du, df
check_cmd "ln -s" ln -s moved/b/large "$MNT/lnk"
check_cmd "ln" ln "$MNT/moved/f8" "$MNT/f8.hard"
check_eq "$(stat -c %h "$MNT/moved/f8")" 2 "stat %h after ln"
check_eq "$(find "$MNT" -type l | wc -l)" 3 "find -type l counts the symlinks"
check_eq "$(find "$MNT" -type p | wc -l)" 1 "find -type p finds the FIFO"
check_eq "$(find "$MNT/moved" -maxdepth 1 -type f -size +20k | wc -l)" 20 "find -size"
check_eq "$(find "$MNT" -perm -4000 -type f | wc -l)" 1 "find -perm finds the setuid file"
check_eq "$(find "$MNT" -user 1234 | wc -l)" 1 "find -user"
check_eq "$(find "$MNT" -newermt '2002-01-01' -name f6 | wc -l)" 0 "find -newermt honours the old mtime"
check_eq "$(stat -c '%F|%s|%a' "$MNT/moved/b/c/deep")" "regular file|5|644" "stat -c"
check_eq "$(stat -L -c %s "$MNT/lnk")" 3000000 "stat -L follows the symlink"
check_eq "$(stat -c %y "$MNT/moved/f6")" "$(stat -c %y "$SRC/a/f6")" "stat shows the ns mtime"
check "df '$MNT' | tail -n 1 | grep -q ' $MNT\$'" "df lists the mount"
check "[ \$(du -sk '$MNT/moved/b/sparse' | cut -f1) -lt 512 ]" "du of a sparse file is small"
check "[ \$(du -sk '$MNT/moved/b/large' | cut -f1) -ge 2900 ]" "du of a dense file counts its data"

# tar in and out, with xattrs and ACLs
setfacl -m u:1000:rw "$SRC/a/f9"
check_cmd "tar -c of a tree into the mount" tar --xattrs --acls -C "$WORK" -cf "$MNT/src.tar" src
check_cmd "tar -x on the mount" bash -c "mkdir '$MNT/untar' && tar --xattrs --xattrs-include='*' --acls -C '$MNT/untar' -xpf '$MNT/src.tar'"
check_eq "$(manifest "$MNT/untar/src" noino)" "$(manifest "$SRC" noino)" "tar round trip on the mount is exact"
check_cmd "tar -c of the mount's tree" tar -C "$MNT" -cf "$WORK/out.tar" untar
check_eq "$(tar -tf "$WORK/out.tar" | wc -l)" "$(cd "$MNT" && find untar | wc -l)" "tar lists every entry of the mount"

# rm -r of it all
check_cmd "rm -rf of the trees" rm -rf "$MNT/copy" "$MNT/moved" "$MNT/untar" "$MNT/src.tar" "$MNT/lnk" "$MNT/f8.hard"
check_eq "$(ls -A "$MNT" | grep -v '^lost+found$' | wc -l)" 0 "the mount is empty again"
finish
