#!/bin/bash
# test_xattr.sh -- extended attributes: user.*, trusted.*, security.*; the errnos of
# getxattr/setxattr/removexattr/listxattr; setfattr/getfattr.
. "$(dirname "$0")/lib.sh" "$@"
fs_setup 128M allow_other,default_permissions
cd "$MNT" || abort_test "cd into the mount"

echo data >f
mkdir d
chmod 0666 f

# -- the tools
check_cmd "setfattr user.*" setfattr -n user.color -v blue f
check_eq "$(getfattr -n user.color --only-values f)" blue "getfattr user.*"
check_cmd "setfattr trusted.*" setfattr -n trusted.owner -v kmemfs f
check_eq "$(getfattr -n trusted.owner --only-values f)" kmemfs "getfattr trusted.*"
check_cmd "setfattr security.*" setfattr -n security.label -v lbl f
check_eq "$(getfattr -n security.label --only-values f)" lbl "getfattr security.*"
check_cmd "setfattr on a directory" setfattr -n user.dir -v yes d
check_eq "$(getfattr -n user.dir --only-values d)" yes "getfattr on a directory"
check_eq "$(getfattr -d -m '^user\.' --absolute-names f | grep -c '^user\.')" 1 "getfattr -d lists the user attribute"
setfattr -n user.color -v red f
check_eq "$(getfattr -n user.color --only-values f)" red "setfattr replaces a value"
setfattr -n user.bin -v 0x00ff0100fe f
check_eq "$(getfattr -n user.bin -e hex --absolute-names f | sed -n 's/^user.bin=//p')" 0x00ff0100fe \
	"binary value with NUL bytes round-trips"
setfattr -n user.empty f
check_eq "$(probe getxattr f user.empty 0)" 0 "empty value has length 0"
setfattr -x user.bin f
expect_errno ENODATA "removed attribute is gone" probe getxattr f user.bin
check_eq "$(cat f)" data "file data unaffected by xattr changes"

# -- the syscalls and their errnos
expect_errno ENODATA "getxattr of a missing attribute" probe getxattr f user.missing
expect_errno ENODATA "removexattr of a missing attribute" probe removexattr f user.missing
for ns in user. trusted. security.; do
	expect_errno EINVAL "setxattr of the bare prefix $ns" probe setxattr f "$ns" v
done
check_eq "$(probe getxattr f user.color 0)" 3 "getxattr with size 0 returns the length"
expect_errno ERANGE "getxattr into a too small buffer" probe getxattr f user.color 2
check_eq "$(probe getxattr f user.color 3)" red "getxattr into an exact-size buffer"
expect_errno EEXIST "XATTR_CREATE on an existing attribute" probe setxattr f user.color green create
check_eq "$(probe getxattr f user.color)" red "the refused XATTR_CREATE changed nothing"
expect_errno OK "XATTR_CREATE of a new attribute" probe setxattr f user.new v1 create
expect_errno ENODATA "XATTR_REPLACE of a missing attribute" probe setxattr f user.nothere v replace
expect_errno ENODATA "the refused XATTR_REPLACE created nothing" probe getxattr f user.nothere
expect_errno OK "XATTR_REPLACE of an existing attribute" probe setxattr f user.new v2 replace
check_eq "$(probe getxattr f user.new)" v2 "XATTR_REPLACE changed the value"
expect_errno EOPNOTSUPP "unknown namespace" probe setxattr f bogus.name v
# every call refuses a name no namespace takes, as tmpfs and ext4 do
for name in bogus.name system.foo; do
	expect_errno EOPNOTSUPP "getxattr of $name" probe getxattr f "$name"
	expect_errno EOPNOTSUPP "removexattr of $name" probe removexattr f "$name"
done
expect_errno EINVAL "getxattr of the bare prefix user." probe getxattr f user.
expect_errno ERANGE "name longer than 255 bytes" probe setxattr f "user.$(printf 'n%.0s' $(seq 251))" v
long_name="user.$(printf 'n%.0s' $(seq 250))"
expect_errno OK "name of exactly 255 bytes" probe setxattr f "$long_name" v255
check_eq "$(probe getxattr f "$long_name")" v255 "255-byte name reads back"
probe removexattr f "$long_name" >/dev/null
big=$(head -c 3000 /dev/urandom | base64 -w0)
expect_errno OK "4 KB value" probe setxattr f user.big "$big"
check_eq "$(probe getxattr f user.big)" "$big" "4 KB value reads back"

# -- listxattr
want=$(printf '%s\n' security.label trusted.owner user.big user.color user.empty user.new | sort)
check_eq "$(probe listxattr f | sort)" "$want" "listxattr names every attribute once"
len=$(probe listxattr f 0)
check_eq "$len" "$(printf '%s\n' $want | awk '{ n += length($0) + 1 } END { print n }')" \
	"listxattr with size 0 returns the list length"
expect_errno ERANGE "listxattr into a too small buffer" probe listxattr f 5
for i in $(seq 100); do setfattr -n "user.many$i" -v "$i" d; done
check_eq "$(probe listxattr d | grep -c '^user\.many')" 100 "100 attributes on one inode are listed"
check_eq "$(probe getxattr d user.many77)" 77 "lookup among 100 attributes"

# -- permissions (allow_other,default_permissions) and namespaces for non-root
expect_errno OK "user.* on a world-writable file by another user" as_user 1000 probe setxattr f user.by1000 x
chmod 0644 f
expect_errno EACCES "user.* on a read-only file by another user" as_user 1000 probe setxattr f user.deny x
check_eq "$(as_user 1000 probe getxattr f user.color)" red "user.* readable by another user"
expect_errno EPERM "trusted.* cannot be set by a non-root user" as_user 1000 probe setxattr f trusted.x y
check_eq "$(as_user 1000 probe listxattr f | grep -c '^trusted\.')" 0 "trusted.* hidden from non-root listxattr"
# it is the capability that counts, not the uid
check_eq "$(without_cap sys_admin probe listxattr f | grep -c '^trusted\.')" 0 \
	"trusted.* hidden from root without CAP_SYS_ADMIN"
check "[ \"\$(setpriv --reuid 1000 --regid 1000 --clear-groups --inh-caps +sys_admin \
	--ambient-caps +sys_admin -- \"\$FSPROBE\" listxattr f | grep -c '^trusted\.')\" -ge 1 ]" \
	"trusted.* listed to a non-root caller with CAP_SYS_ADMIN"
expect_errno ENODATA "trusted.* unreadable by non-root" as_user 1000 probe getxattr f trusted.owner

# -- user.* is not allowed on symlinks and special files (kernel rule)
ln -s f sl
check_cmd "trusted.* on a symlink itself" setfattr -h -n trusted.sl -v on sl
check_eq "$(getfattr -h -n trusted.sl --only-values sl)" on "trusted.* on a symlink reads back"
expect_errno ENODATA "the symlink's xattr is not the target's" probe getxattr f trusted.sl

# -- lifetime
ln f f.link
check_eq "$(probe getxattr f.link user.color)" red "hard links share the attributes"
rm f f.link
echo fresh >f
expect_errno ENODATA "a new file with a reused name has no old attributes" probe getxattr f user.color

cd /
finish
