#!/bin/bash
# test_sparse.sh -- sparse files, files beyond 4 GiB, SEEK_DATA/SEEK_HOLE,
# fallocate (default, KEEP_SIZE, PUNCH_HOLE) and copy_file_range (clone) semantics.
. "$(dirname "$0")/lib.sh" "$@"
fs_setup 256M
cd "$MNT" || abort_test "cd into the mount"

page_a=$(printf 'a%.0s' $(seq 4096))
page_b=$(printf 'b%.0s' $(seq 4096))
zeros() { head -c "$1" /dev/zero | sha256sum | cut -d' ' -f1; }
sum_range() { probe pread "$1" "$2" "$3" | sha256sum | cut -d' ' -f1; }

# -- a sparse file: data, 1 MiB hole, data
probe pwrite s 0 "$page_a" >/dev/null
probe pwrite s 1048576 "$page_b" >/dev/null
check_eq "$(stat_field s size)" 1052672 "sparse file size"
check_eq "$(sum_range s 4096 1044480)" "$(zeros 1044480)" "the hole reads zeros"
check_eq "$(probe pread s 1048576 4096)" "$page_b" "data after the hole"
check "[ $(stat_field s blocks) -le 64 ]" "a hole takes no blocks ($(stat_field s blocks) blocks for 8 KiB of data)"
check_eq "$(probe seek s data 0)" 0 "SEEK_DATA at data stays"
check_eq "$(probe seek s hole 0)" 4096 "SEEK_HOLE finds the hole after the first page"
check_eq "$(probe seek s data 4096)" 1048576 "SEEK_DATA skips the hole"
check_eq "$(probe seek s hole 1048576)" 1052672 "SEEK_HOLE in the last extent is EOF"
expect_errno ENXIO "SEEK_DATA at EOF" probe seek s data 1052672
expect_errno ENXIO "SEEK_HOLE beyond EOF" probe seek s hole 2000000
truncate -s 2M s
check_eq "$(probe seek s hole 1048576)" 1052672 "after truncate up, the new tail is a hole"
expect_errno ENXIO "SEEK_DATA in a trailing hole" probe seek s data 1052672

# -- beyond 4 GiB
g4=4294967296
probe pwrite big $((5 * g4 / 4)) beyond-5GiB >/dev/null
check_eq "$(stat_field big size)" $((5 * g4 / 4 + 11)) "size of a 5 GiB sparse file"
check_eq "$(probe pread big $((5 * g4 / 4)) 11)" beyond-5GiB "read back at 5 GiB"
probe pwrite big $((g4 - 4)) ABCDEFGH >/dev/null
check_eq "$(probe pread big $((g4 - 4)) 8)" ABCDEFGH "a write straddling the 4 GiB offset"
check_eq "$(sum_range big $((g4 + 4)) 65536)" "$(zeros 65536)" "hole above 4 GiB reads zeros"
check_eq "$(sum_range big $((g4 / 2)) 65536)" "$(zeros 65536)" "hole at 2 GiB reads zeros"
check "[ $(stat_field big blocks) -le 128 ]" "5 GiB sparse file takes a few blocks ($(stat_field big blocks))"
d=$(probe seek big data 0)
check "[ $d -ge $((g4 - 8192)) ] && [ $d -le $((g4 - 4)) ]" "SEEK_DATA from 0 lands on the 4 GiB page ($d)"
check_eq "$(probe seek big data $((g4 + 4096)))" $((5 * g4 / 4)) "SEEK_DATA beyond 4 GiB"
truncate -s $((3 * g4)) big
check_eq "$(stat_field big size)" $((3 * g4)) "truncate a file up to 12 GiB"
truncate -s $((g4 + 2)) big
check_eq "$(probe pread big $((g4 - 4)) 100)" ABCDEF "truncate down to just above 4 GiB keeps the bytes below"
truncate -s $((5 * g4 / 4 + 100)) big
check_eq "$(sum_range big $((5 * g4 / 4)) 100)" "$(zeros 100)" "old data past the cut is gone after growing again"

# -- fallocate: default mode
fallocate -l 8M fa
check_eq "$(stat_field fa size)" 8388608 "fallocate -l 8M sets the size"
check "[ $(stat_field fa blocks) -ge 16384 ]" "fallocate allocates blocks ($(stat_field fa blocks))"
check_eq "$(sha256sum <fa | cut -d' ' -f1)" "$(zeros 8388608)" "fallocated range reads zeros"
# what fallocate reserved and nothing wrote is a hole to SEEK_DATA and
# SEEK_HOLE (as on tmpfs, ext4 and XFS); a write makes its pages data
check_eq "$(probe seek fa hole 0)" 0 "SEEK_HOLE finds an unwritten fallocated range"
expect_errno ENXIO "SEEK_DATA in a file only fallocated" probe seek fa data 0
probe pwrite fa $((3 * 1048576 + 5)) written >/dev/null
check_eq "$(probe seek fa data 0)" 3145728 "SEEK_DATA lands on the page a write reached"
check_eq "$(probe seek fa hole 3145728)" 3149824 "SEEK_HOLE: the next page is unwritten again"
check_eq "$(sum_range fa 3145728 4096)" \
	"$({ head -c 5 /dev/zero; printf written; head -c 4084 /dev/zero; } | sha256sum | cut -d' ' -f1)" \
	"the written page holds the bytes, zeroes around them"
check_cmd "cp --sparse=always of it is identical" cp --sparse=always fa fa.cp
check_cmd "... byte for byte" cmp fa fa.cp
check "[ $(stat_field fa.cp blocks) -le 64 ]" "... and keeps only the written page ($(stat_field fa.cp blocks) blocks)"
rm fa.cp
# -- KEEP_SIZE
fallocate -n -o 8M -l 4M fa
check_eq "$(stat_field fa size)" 8388608 "fallocate --keep-size leaves the size"
check "[ $(stat_field fa blocks) -ge 24576 ]" "fallocate --keep-size allocates beyond EOF ($(stat_field fa blocks))"
probe pwrite fa 10485760 past-eof >/dev/null
check_eq "$(probe pread fa 10485760 8)" past-eof "writing into a preallocated range beyond EOF"
check_eq "$(sum_range fa 8388608 2097152)" "$(zeros 2097152)" "preallocated range below the write reads zeros"
# -- PUNCH_HOLE
head -c 8388608 /dev/urandom >pd
cp pd pd.orig
before=$(stat_field pd blocks)
fallocate -p -o 1M -l 2M pd
check_eq "$(stat_field pd size)" 8388608 "punch hole keeps the size"
check_eq "$(sum_range pd 1048576 2097152)" "$(zeros 2097152)" "punched range reads zeros"
check "cmp -n 1048576 pd pd.orig" "data before the punched range intact"
check "cmp -i 3145728 pd pd.orig" "data after the punched range intact"
after=$(stat_field pd blocks)
check "[ $after -le $((before - 4096)) ]" "punch hole frees the blocks ($before -> $after)"
check_eq "$(probe seek pd hole 0)" 1048576 "SEEK_HOLE finds the punched hole"
check_eq "$(probe seek pd data 1048576)" 3145728 "SEEK_DATA skips the punched hole"
fallocate -p -o 5000 -l 3000 pd
check_eq "$(sum_range pd 5000 3000)" "$(zeros 3000)" "unaligned punch zeroes exactly its bytes"
check_eq "$(sum_range pd 0 5000)" "$(sum_range pd.orig 0 5000)" "bytes before an unaligned punch intact"
check_eq "$(sum_range pd 8000 4096)" "$(sum_range pd.orig 8000 4096)" "bytes after an unaligned punch intact"
fallocate -p -o 7M -l 4M pd
check_eq "$(stat_field pd size)" 8388608 "punch past EOF keeps the size"
check_eq "$(sum_range pd 7340032 1048576)" "$(zeros 1048576)" "punch through EOF zeroes the tail"
probe pwrite pd 1572864 refill >/dev/null
check_eq "$(probe pread pd 1572864 6)" refill "writing into a punched hole"
check_eq "$(sum_range pd 1048576 524288)" "$(zeros 524288)" "rest of the punched hole still zeros"
# -- ZERO_RANGE (as ext4 and XFS; tmpfs has none): zeroes read through the
# page cache, whole pages unwritten, the partial ones zeroed in place
if on_kmemfs; then
	head -c 1048576 /dev/urandom >zr
	cp zr zr.orig
	cat zr >/dev/null
	blocks=$(stat_field zr blocks)
	expect_errno OK "fallocate ZERO_RANGE" probe falloc zr zero 5000 20000
	check_eq "$(sum_range zr 5000 20000)" "$(zeros 20000)" "the zeroed range reads zeros, cached pages too"
	check "cmp -n 5000 zr zr.orig" "bytes before the zeroed range intact"
	check "cmp -i 25000 zr zr.orig" "bytes after the zeroed range intact"
	check_eq "$(stat_field zr blocks)" "$blocks" "ZERO_RANGE keeps its pages allocated"
	check_eq "$(probe seek zr hole 0)" 8192 "its whole pages are a hole to SEEK_HOLE"
	check_eq "$(probe seek zr data 8192)" 24576 "... and data resumes at its last, partial page"
	expect_errno OK "ZERO_RANGE past the end" probe falloc zr zero 1048576 4096
	check_eq "$(stat_field zr size)" 1052672 "... grows the file"
	expect_errno OK "ZERO_RANGE with KEEP_SIZE past the end" probe falloc zr zerokeep 2097152 65536
	check_eq "$(stat_field zr size)" 1052672 "... keeps the size"
	check_eq "$(stat_field zr blocks)" $((blocks + 8 + 128)) "... and allocates"
	rm zr zr.orig
fi
expect_errno OK "fallocate(2) KEEP_SIZE via syscall" probe falloc fk keep 0 65536
check_eq "$(stat_field fk size)" 0 "KEEP_SIZE on an empty file keeps size 0"

# -- copy_file_range (kmemfs clones page-aligned ranges copy-on-write)
# references live outside the mount so no clone can share their pages
ref=$WORK/src.ref
head -c 5244114 /dev/urandom >"$ref"
dd if="$ref" of=src bs=1M status=none
check_eq "$(probe cfr src 0 dst 0 99999999)" 5244114 "copy_file_range copies the whole file"
check_cmd "copy is identical" cmp src dst
probe pwrite dst 4096 DST-EDIT >/dev/null
check_cmd "writing the copy leaves the source alone" cmp src "$ref"
check_eq "$(probe pread dst 4096 8)" DST-EDIT "the copy took the write"
probe pwrite src 8192 SRC-EDIT >/dev/null
check_eq "$(sum_range dst 8192 4096)" "$(sum_range "$ref" 8192 4096)" "writing the source leaves the copy alone"
check "cmp -n 4096 dst $ref" "untouched first page of the copy intact"
check_eq "$(probe cfr src 4097 dst2 100 1048576)" 1048576 "copy_file_range with unaligned offsets"
check_eq "$(sum_range dst2 100 1048576)" "$(sum_range src 4097 1048576)" "unaligned copy has the right bytes"
check_eq "$(sum_range dst2 0 100)" "$(zeros 100)" "bytes before the unaligned destination are zeros"
check_eq "$(probe cfr src 5242880 dst3 0 100000)" 1234 "copy_file_range stops at EOF"
check_eq "$(probe cfr src 1048576 dst4 2097152 1048576)" 1048576 "aligned copy into a hole of a new file"
check_eq "$(sum_range dst4 2097152 1048576)" "$(sum_range "$ref" 1048576 1048576)" "aligned copy lands at its offset"
check_eq "$(stat_field dst4 size)" 3145728 "destination grows to the copy's end"
probe cfr src 0 dst4 2097152 4096 >/dev/null
check_eq "$(sum_range dst4 2097152 4096)" "$(sum_range "$ref" 0 4096)" "copy over an already shared page"
cp s s.cp
check_cmd "cp of a sparse file is identical" cmp s s.cp
cp src src.cp
check_cmd "cp of a 5 MiB file is identical" cmp src src.cp
cp src "$WORK/src.now"
rm src
check_cmd "copies survive the removal of their source" cmp src.cp "$WORK/src.now"
check "cmp -i 8192:8192 -n 4096 dst $ref" "the first copy is unchanged after the source is gone"

# -- offsets up to the largest Linux allows (MAX_LFS_FILESIZE = 2^63 - 1)
max=9223372036854775807
expect_errno OK "pwrite ending at the largest file size" probe pwrite huge $((max - 5)) hello
check_eq "$(stat_field huge size)" $max "size is the largest file size"
expect_errno OK "pwrite beyond 2^62" probe pwrite huge $((1 << 62)) again
check_eq "$(probe pread huge $((max - 5)) 5)$(probe pread huge $((1 << 62)) 5)" helloagain "both read back"
check_eq "$(probe seek huge hole $((1 << 62)))" $(((1 << 62) + 4096)) "SEEK_HOLE after the page beyond 2^62"
expect_errno EINVAL "a write past the largest offset" probe pwrite huge $max x
expect_errno OK "copy_file_range to the last bytes" probe cfr huge $((1 << 62)) huge2 $((max - 5)) 5
check_eq "$(probe pread huge2 $((max - 5)) 5)" again "the copy reads back at the end"
expect_errno OK "punch everything below the last page" probe falloc huge punch 0 $((max - 4095))
# (tmpfs itself finds no data this far out: SEEK_DATA says ENXIO)
on_kmemfs && check_eq "$(probe seek huge data 0)" $((max - 4095)) "only the last page holds data"
expect_errno OK "truncate to the largest size, then down" probe truncate huge2 0
rm huge huge2

cd /
finish
