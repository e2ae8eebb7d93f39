#!/bin/bash
# test_rename.sh -- rename(2) and renameat2 with RENAME_NOREPLACE / RENAME_EXCHANGE.
. "$(dirname "$0")/lib.sh" "$@"
fs_setup 128M
cd "$MNT" || abort_test "cd into the mount"

mkdir -p a/sub b empty1 empty2 full
echo A >fa
echo B >fb
echo x >full/x

# -- plain rename
ino=$(stat_field fa ino)
expect_errno OK "rename a file" probe rename2 fa fa2 none
check "[ ! -e fa ] && [ \"\$(cat fa2)\" = A ]" "old name gone, new name has the data"
check_eq "$(stat_field fa2 ino)" "$ino" "rename keeps the inode"
echo C >fc
expect_errno OK "rename over an existing file" probe rename2 fa2 fc none
check_eq "$(cat fc)" A "the target was replaced"
check_eq "$(ls | grep -c '^fa2$')" 0 "the source name is gone"
ln fb fb.link
expect_errno OK "rename onto a hard link of itself is a no-op" probe rename2 fb fb.link none
check "[ -e fb ] && [ -e fb.link ]" "both hard links still exist after the no-op rename"
rm fb.link

# -- directories
a_links=$(stat_field a nlink)
b_links=$(stat_field b nlink)
expect_errno OK "move a directory to another parent" probe rename2 a/sub b/sub none
check_eq "$(stat_field a nlink)" $((a_links - 1)) "old parent loses a link"
check_eq "$(stat_field b nlink)" $((b_links + 1)) "new parent gains a link"
check_eq "$(stat_field b/sub/.. ino)" "$(stat_field b ino)" ".. follows the moved directory"
expect_errno OK "rename a directory over an empty directory" probe rename2 empty1 empty2 none
check "[ ! -e empty1 ] && [ -d empty2 ]" "empty target replaced"
expect_errno ENOTEMPTY "rename a directory over a non-empty directory" probe rename2 empty2 full none
expect_errno ENOTDIR "rename a directory over a file" probe rename2 empty2 fc none
expect_errno EISDIR "rename a file over a directory" probe rename2 fc empty2 none
expect_errno EINVAL "rename a directory into its own subdirectory" probe rename2 b b/sub/x none
expect_errno ENOENT "rename of a missing name" probe rename2 missing x none
expect_errno ENOENT "rename into a missing directory" probe rename2 fc nodir/x none

# -- RENAME_NOREPLACE
echo N >n1
echo M >n2
expect_errno EEXIST "RENAME_NOREPLACE over an existing file" probe rename2 n1 n2 noreplace
check_eq "$(cat n1)$(cat n2)" NM "both files untouched after the refused rename"
expect_errno OK "RENAME_NOREPLACE to a free name" probe rename2 n1 n3 noreplace
check "[ ! -e n1 ] && [ \"\$(cat n3)\" = N ]" "RENAME_NOREPLACE moved the file"

# -- RENAME_EXCHANGE
expect_errno OK "RENAME_EXCHANGE of two files" probe rename2 n2 n3 exchange
check_eq "$(cat n2)$(cat n3)" NM "contents swapped"
mkdir -p xd/inner
echo file >xf
xd_ino=$(stat_field xd ino)
expect_errno OK "RENAME_EXCHANGE of a file and a directory" probe rename2 xf xd exchange
check "[ -d xf ] && [ -f xd ]" "types swapped"
check_eq "$(stat_field xf ino)" "$xd_ino" "the directory keeps its inode under its new name"
check_eq "$(cat xd)" file "the file reads the same under its new name"
mkdir -p p1/c1 p2
echo in-p2 >p2/f
p1_links=$(stat_field p1 nlink)
p2_links=$(stat_field p2 nlink)
expect_errno OK "RENAME_EXCHANGE of a directory and a file across parents" probe rename2 p1/c1 p2/f exchange
check_eq "$(stat_field p1 nlink) $(stat_field p2 nlink)" "$((p1_links - 1)) $((p2_links + 1))" \
	"parents' link counts follow the exchanged directory"
check_eq "$(stat_field p2/f/.. ino)" "$(stat_field p2 ino)" ".. of the exchanged directory is its new parent"
expect_errno ENOENT "RENAME_EXCHANGE with a missing target" probe rename2 n2 missing exchange
check_eq "$(cat n2)" N "source untouched after the failed exchange"

# -- RENAME_WHITEOUT (what overlayfs does to its upper layer): the old name
# becomes a character device 0:0, the file moves, both in one step
echo W >w1
mkdir wd && echo in >wd/x
expect_errno OK "RENAME_WHITEOUT of a file" probe rename2 w1 w2 whiteout
check_eq "$(stat -c '%F %t:%T %a' w1 2>&1)" "character special file 0:0 0" "the old name is a whiteout (char device 0:0, mode 0)"
check_eq "$(cat w2)" W "the file is under its new name"
links=$(stat_field . nlink)
expect_errno OK "RENAME_WHITEOUT of a directory" probe rename2 wd wd2 whiteout
check_eq "$(cat wd2/x)" in "the directory moved with its contents"
check_eq "$(stat -c %F wd)" "character special file" "a whiteout where the directory was"
check_eq "$(stat_field . nlink)" "$links" "the parent's link count: one subdirectory still"
expect_errno EISDIR "RENAME_WHITEOUT of a file over a directory" probe rename2 w2 wd2 whiteout
check_eq "$(cat w2)" W "the file stays where it was"
expect_errno OK "RENAME_WHITEOUT over an existing file" probe rename2 w2 n2 whiteout
check_eq "$(cat n2)" W "the target was replaced"
# overlayfs with kmemfs as its upper layer: a file of the lower layer removed
# through the overlay leaves a whiteout in kmemfs, and is gone from the merge
if on_kmemfs && mkdir -p "$WORK/lower" "$MNT/ov/up" "$MNT/ov/work" "$WORK/merged" &&
	echo low >"$WORK/lower/lf" && echo low2 >"$WORK/lower/lf2" &&
	mount -t overlay overlay -o "lowerdir=$WORK/lower,upperdir=$MNT/ov/up,workdir=$MNT/ov/work" \
		"$WORK/merged" 2>"$WORK/ov.err"; then
	rm "$WORK/merged/lf"
	mv "$WORK/merged/lf2" "$WORK/merged/lf3"
	check "[ ! -e '$WORK/merged/lf' ] && [ \"\$(cat '$WORK/merged/lf3')\" = low2 ]" "overlayfs on kmemfs: rm and mv of lower files show in the merged view"
	check_eq "$(stat -c '%F %t:%T' "$MNT/ov/up/lf" "$MNT/ov/up/lf2" 2>&1 | tr '\n' ,)" \
		"character special file 0:0,character special file 0:0," "overlayfs left whiteouts in kmemfs for both"
	umount "$WORK/merged"
elif on_kmemfs; then
	fail "overlayfs mounts with kmemfs as the upper layer" "$(cat "$WORK/ov.err")"
fi

# -- many renames keep the directory consistent
mkdir r
for i in $(seq 200); do echo $i >r/f$i; done
for i in $(seq 200); do mv r/f$i r/g$i; done
check_eq "$(ls r | grep -c '^g')" 200 "200 renames: all new names listed"
check_eq "$(ls r | grep -c '^f')" 0 "200 renames: no old name left"
check_eq "$(cat r/g137)" 137 "renamed file content"

cd /
finish
