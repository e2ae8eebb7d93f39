#!/bin/bash
# test_acl.sh -- POSIX ACLs with -o default_permissions: setfacl/getfacl, the mask,
# default ACL inheritance, and enforcement for non-root users.
. "$(dirname "$0")/lib.sh" "$@"
fs_setup 128M allow_other,default_permissions
cd "$MNT" || abort_test "cd into the mount"
umask 022
chmod 0755 .

acl() { getfacl -acpnE "$1" 2>/dev/null | grep -v '^$' | tr '\n' ' '; }
dacl() { getfacl -cpnEd "$1" 2>/dev/null | grep -v '^$' | tr '\n' ' '; }

# -- access ACL grants
echo secret >f
chmod 0640 f
expect_errno EACCES "without an ACL, uid 1000 cannot read a 0640 root file" as_user 1000 probe read f
expect_errno OK "removing an access ACL a file does not have" probe removexattr f system.posix_acl_access
mkdir noacl.d
expect_errno OK "removing a default ACL a directory does not have" probe removexattr noacl.d system.posix_acl_default
rmdir noacl.d
check_cmd "setfacl -m u:1000:r" setfacl -m u:1000:r f
check_eq "$(acl f)" "user::rw- user:1000:r-- group::r-- mask::r-- other::--- " "getfacl shows the entries"
check_eq "$(as_user 1000 probe read f)" secret "a named-user entry grants read"
expect_errno EACCES "the named-user entry does not grant write" as_user 1000 probe open f wronly
expect_errno EACCES "other users are still refused" as_user 1001 probe read f
check_eq "$(stat_field f mode)" 100640 "group bits show the mask"
check "ls -l f | grep -q '^-rw-r-----+'" "ls marks the file with +"

# -- named-user deny beats the other bits
echo public >g
chmod 0644 g
setfacl -m u:1000:- g
expect_errno EACCES "a named-user entry with no rights denies despite o+r" as_user 1000 probe read g
check_eq "$(as_user 1001 probe read g)" public "other users keep o+r"

# -- the mask limits named entries; chmod changes the mask
setfacl -m u:1000:rw,m::r f
expect_errno EACCES "mask r-- limits a rw- named entry (write refused)" as_user 1000 probe open f wronly
expect_errno OK "mask r-- still allows read" as_user 1000 probe open f rdonly
chmod 0660 f
check_eq "$(getfacl -cp f | sed -n 's/^mask:://p')" rw- "chmod g+w sets the mask"
expect_errno OK "after chmod 0660 the named entry may write" as_user 1000 probe open f wronly
chmod 0600 f
check_eq "$(getfacl -cp f | sed -n 's/^mask:://p')" --- "chmod 0600 clears the mask"
expect_errno EACCES "mask --- refuses the named user" as_user 1000 probe open f rdonly

# -- named group
echo grp >h
chmod 0600 h
setfacl -m g:2000:r h
expect_errno OK "named-group entry grants read to a member" as_user 1001:1001:2000 probe read h
expect_errno EACCES "named-group entry does not help non-members" as_user 1001:1001 probe read h

# -- removal
setfacl -b f
check_eq "$(acl f)" "user::rw- group::--- other::--- " "setfacl -b leaves the base entries"
expect_errno ENODATA "setfacl -b removes system.posix_acl_access" probe getxattr f system.posix_acl_access

# -- default ACL inheritance
mkdir d
chmod 0755 d
setfacl -m u:1000:rwx d
setfacl -d -m u::rwx,g::r-x,o::-,u:1000:rwx d
check_eq "$(dacl d)" "user::rwx user:1000:rwx group::r-x mask::rwx other::--- " "getfacl -d shows the default ACL"
probe open d/new wronly,creat 0666 >/dev/null
check_eq "$(acl d/new)" "user::rw- user:1000:rwx group::r-x mask::rw- other::--- " \
	"a new file inherits the default ACL, masked by its create mode"
check_eq "$(stat_field d/new mode)" 100660 "umask is ignored when a default ACL applies"
check_eq "$(dacl d/new)" "" "a file gets no default ACL"
mkdir d/sub
check_eq "$(dacl d/sub)" "user::rwx user:1000:rwx group::r-x mask::rwx other::--- " \
	"a new subdirectory inherits the default ACL"
check_eq "$(acl d/sub)" "user::rwx user:1000:rwx group::r-x mask::rwx other::--- " \
	"a new subdirectory gets it as access ACL too"
expect_errno OK "uid 1000 writes the inherited file" as_user 1000 probe pwrite d/new 0 by-1000
expect_errno EACCES "uid 1001 is refused by the inherited other::---" as_user 1001 probe read d/new
expect_errno OK "uid 1000 creates in the directory via its ACL" as_user 1000 probe open d/sub/mine wronly,creat 0644
check_eq "$(stat_field d/sub/mine uid):$(stat_field d/sub/mine gid)" 1000:1000 "the creator owns the file"
check_eq "$(acl d/sub/mine)" "user::rw- user:1000:rwx group::r-x mask::r-- other::--- " \
	"file made by a user with mode 0644 inherits the masked ACL"
expect_errno EACCES "uid 1001 cannot create in the ACL'd directory" as_user 1001 probe open d/x wronly,creat 0644
mkdir nodef
probe open nodef/plain wronly,creat 0666 >/dev/null
check_eq "$(stat_field nodef/plain mode)" 100644 "without a default ACL the umask applies"
check_eq "$(acl nodef/plain)" "user::rw- group::r-- other::r-- " "without a default ACL nothing is inherited"

# -- ACLs as xattrs
check "probe getxattr d system.posix_acl_default 0" "the default ACL is the system.posix_acl_default xattr"
check_cmd "getfacl -R | setfacl --restore round-trips" bash -c "getfacl -R -p d >'$WORK/acl.dump' && setfacl --restore='$WORK/acl.dump'"
check_eq "$(acl d/new)" "user::rw- user:1000:rwx group::r-x mask::rw- other::--- " \
	"ACL unchanged after restore"

# -- setting an access ACL clears setgid unless the caller is in the file's
# group or privileged (posix_acl_update_mode), as chmod does
for who in 1000 1000:1000:2000 0; do
	rm -f sg
	touch sg
	chown 1000:2000 sg
	chmod 02770 sg
	check_cmd "setfacl -m u:1001:r by $who" as_user "$who" setfacl -m u:1001:r sg
	mode=$(stat -c %a sg)
	case $who in
	1000) check_eq "$mode" 770 "an owner outside the file's group loses setgid on setfacl" ;;
	*) check_eq "$mode" 2770 "setfacl by $who (in the group, or root) keeps setgid" ;;
	esac
	check_eq "$(acl sg)" "user::rwx user:1001:r-- group::rwx mask::rwx other::--- " \
		"... and the ACL set by $who is there"
done

cd /
finish
