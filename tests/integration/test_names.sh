#!/bin/bash
# test_names.sh -- names of up to 255 arbitrary bytes (anything but '/' and NUL),
# ENAMETOOLONG at 256, and that such names survive readdir and a remount.
. "$(dirname "$0")/lib.sh" "$@"
fs_setup 64M
mkdir "$MNT/n"
D=$MNT/n

hexrep() { local out="" i; for ((i = 0; i < $2; i++)); do out+=$1; done; echo "$out"; }
# every byte value 0x01..0xff except '/', then 'A': 255 bytes
all=""
for i in $(seq 1 255); do [ $i -eq 47 ] || all+=$(printf '%02x' $i); done
all+=41
names=(
	"$all"
	"$(hexrep ff 255)"
	"$(hexrep 61 255)"
	"$(hexrep 0a 10)"                   # ten newlines
	"2d2d68656c70"                      # --help
	"$(printf 'caf\xc3\xa9 \xe2\x98\x83' | od -An -tx1 | tr -d ' \n')" # UTF-8 with a space
	"2e2e2e"                            # ...
	"2e6869646465"                      # .hidde
	"5c2a3f"                            # \*?
)
check_eq "${#all}" 510 "the all-bytes name is 255 bytes"
n_ok=0
for h in "${names[@]}"; do
	if out=$(probe mkname "$D" "$h" 2>&1); then
		n_ok=$((n_ok + 1))
	else
		fail "create name ${h:0:40}... (${#h} hex digits)" "$out"
	fi
done
check_eq "$n_ok" "${#names[@]}" "all unusual names created"
listing=$(probe lsdirhex "$D" | sort)
check_eq "$listing" "$(printf '%s\n' "${names[@]}" | sort)" "readdir returns every name byte for byte"
check "for h in ${names[*]}; do probe statname '$D' \$h || exit 1; done" "lookup of every unusual name"
check_eq "$(stat -f -c %l "$MNT")" 255 "statfs reports a 255-byte name limit"

# -- 256 bytes is too long for every operation that makes or finds a name
n256=$(printf 'b%.0s' $(seq 256))
n255=$(printf 'b%.0s' $(seq 255))
expect_errno ENAMETOOLONG "create with a 256-byte name" probe open "$D/$n256" wronly,creat
expect_errno ENAMETOOLONG "mkdir with a 256-byte name" probe mkdir "$D/$n256" 0755
expect_errno ENAMETOOLONG "lookup with a 256-byte name" probe stat "$D/$n256"
expect_errno ENAMETOOLONG "symlink with a 256-byte name" probe symlink x "$D/$n256"
expect_errno ENAMETOOLONG "mknod with a 256-byte name" probe mknod "$D/$n256" fifo 0644
touch "$D/short"
expect_errno ENAMETOOLONG "rename to a 256-byte name" probe rename2 "$D/short" "$D/$n256" none
expect_errno ENAMETOOLONG "link to a 256-byte name" probe link "$D/short" "$D/$n256"
expect_errno OK "rename to a 255-byte name" probe rename2 "$D/short" "$D/$n255" none
expect_errno OK "mkdir with a 255-byte name" probe mkdir "$D/d$(printf 'c%.0s' $(seq 254))" 0755
expect_errno OK "symlink with a 255-byte name" probe symlink "$n255" "$D/l$(printf 'c%.0s' $(seq 254))"

# -- unlink by the odd names, after a remount
fs_remount || abort_test "remount"
check_eq "$(probe lsdirhex "$D" | grep -c .)" $((${#names[@]} + 3)) "all names present after remount"
check_eq "$(probe lsdirhex "$D" | grep -cx "$all")" 1 "the all-bytes name survives the remount"
for h in "${names[@]}"; do probe unlinkname "$D" "$h" >/dev/null; done
check_eq "$(probe lsdirhex "$D" | grep -c .)" 3 "unlink by every unusual name"

finish
