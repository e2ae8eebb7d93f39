#!/bin/bash
# test_statfs.sh -- statfs/df tell the truth: used space grows by what is written,
# shrinks after rm and punch, holes and hard links cost nothing, sizes are sane.
. "$(dirname "$0")/lib.sh" "$@"
fs_setup 256M
MiB=1048576
slack=$((2 * MiB)) # metadata, rounding

read -r bsize frsize blocks <<<"$(probe statfs "$MNT" | sed 's/[a-z]*=//g' | cut -d' ' -f1-3)"
total=$((blocks * frsize))
check "[ $total -le $((256 * MiB)) ] && [ $total -ge $((200 * MiB)) ]" \
	"statfs size ($((total / MiB)) MiB) is at most the pool and most of it"
check "[ $bsize -ge 512 ] && [ $frsize -ge 512 ]" "block sizes are sane ($bsize/$frsize)"
check_eq "$(df -B1 --output=size "$MNT" | tail -n 1 | tr -d ' ')" "$total" "df size agrees with statfs"

base=$(used_bytes)
dd if=/dev/urandom of="$MNT/w" bs=1M count=64 conv=fsync status=none
grew=$(($(used_bytes) - base))
check "[ $grew -ge $((64 * MiB)) ] && [ $grew -le $((64 * MiB + slack)) ]" \
	"used grows by the 64 MiB written (grew $((grew / 1024)) KiB)"
dfused=$(df -B1 --output=used "$MNT" | tail -n 1 | tr -d ' ')
check_eq "$dfused" "$(used_bytes)" "df used agrees with statfs"
avail_before=$(df -B1 --output=avail "$MNT" | tail -n 1 | tr -d ' ')

ln "$MNT/w" "$MNT/w.link"
check "[ $(($(used_bytes) - base - grew)) -le $slack ]" "a hard link costs no data space"
rm "$MNT/w.link"

truncate -s 1G "$MNT/sparse"
probe pwrite "$MNT/sparse" 500000000 x >/dev/null
check "[ $(($(used_bytes) - base - grew)) -le $slack ]" "a 1 GiB sparse file costs no space"
rm "$MNT/sparse"

fallocate -p -o 16M -l 16M "$MNT/w"
check "wait_until 10 '[ \$(( $base + $grew - \$(used_bytes) )) -ge $((16 * MiB)) ]'" \
	"punching 16 MiB frees 16 MiB (used now $((($(used_bytes) - base) / 1024)) KiB over base)"

rm "$MNT/w"
check "wait_until 10 '[ \$(used_bytes) -le $((base + slack)) ]'" \
	"rm gives the space back (used $(( ($(used_bytes) - base) / 1024)) KiB over base)"
avail_after=$(df -B1 --output=avail "$MNT" | tail -n 1 | tr -d ' ')
check "[ $((avail_after - avail_before)) -ge $((60 * MiB)) ]" "df avail grows back after rm"

fallocate -l 32M "$MNT/pre"
check "[ $(($(used_bytes) - base)) -ge $((32 * MiB)) ]" "fallocate counts as used"
rm "$MNT/pre"

# inodes
iused() { df --output=iused "$MNT" | tail -n 1 | tr -d ' '; }
# an inode goes when the kernel FORGETs it, a moment after the rm above: the
# FORGET comes through /dev/fuse, and with FUSE over io_uring the statfs can
# overtake it (space above is waited for the same way)
check "wait_until 10 '[ \$(iused) -eq \$(find \"\$MNT\" | wc -l) ]'" \
	"df -i counts every inode there is ($(iused) used, $(find "$MNT" | wc -l) found)"
iused1=$(iused)
read -r files ffree <<<"$(probe statfs "$MNT" | tr ' ' '\n' | sed -n 's/^files=//p;s/^ffree=//p' | tr '\n' ' ')"
check "[ $files -gt 0 ] && [ $ffree -le $files ]" "inode counts are sane (files=$files ffree=$ffree)"
mkdir "$MNT/many"
(cd "$MNT/many" && seq -f 'i%04g' 1 1000 | xargs touch)
ffree2=$(probe statfs "$MNT" | tr ' ' '\n' | sed -n 's/^ffree=//p')
check "[ $ffree2 -lt $ffree ]" "free inodes drop after 1000 creates ($ffree -> $ffree2)"
check_eq "$(iused)" "$((iused1 + 1001))" "df -i: a directory and 1000 files are 1001 inodes more"
ln "$MNT/many/i0001" "$MNT/many/link"
check_eq "$(iused)" "$((iused1 + 1001))" "df -i: a hard link is no new inode"
rm -rf "$MNT/many"
check "wait_until 10 '[ \$(iused) -eq $iused1 ]'" "df -i: the inodes are gone after rm -rf ($(iused), want $iused1)"
check "wait_until 10 '[ \$(probe statfs $MNT | tr \" \" \"\\n\" | sed -n s/^ffree=//p) -ge $((ffree - 16)) ]'" \
	"free inodes come back after rm (within 16 of $ffree: $(probe statfs "$MNT" | tr ' ' '\n' | sed -n 's/^ffree=//p'))"

# the count is rebuilt at mount, read-only mounts included
touch "$MNT/a" "$MNT/b"
want=$(find "$MNT" | wc -l)
fs_remount
check_eq "$(iused)" "$want" "df -i after a remount"
fs_remount ro
check_eq "$(iused)" "$want" "df -i on a read-only mount"
finish
