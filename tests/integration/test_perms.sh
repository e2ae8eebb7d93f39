#!/bin/bash
# test_perms.sh -- permission checks as a kernel filesystem makes them, seen by
# non-root users (-o allow_other,default_permissions): modes, search permission,
# ownership rules for chmod/chown/utimens, sticky and setgid directories.
. "$(dirname "$0")/lib.sh" "$@"
fs_setup 128M allow_other,default_permissions
cd "$MNT" || abort_test "cd into the mount"
umask 022
chmod 0755 .

# -- file modes
echo private >p600
chmod 0600 p600
expect_errno EACCES "read of another user's 0600 file" as_user 1000 probe read p600
expect_errno EACCES "write of another user's 0600 file" as_user 1000 probe open p600 wronly
expect_errno EACCES "O_TRUNC of another user's 0600 file" as_user 1000 probe open p600 rdonly,trunc
check_eq "$(cat p600)" private "root reads a 0600 file of its own"
chmod 0000 p600
check_eq "$(cat p600)" private "root reads a 0000 file (CAP_DAC_OVERRIDE)"
echo public >p644
expect_errno OK "read of a 0644 file" as_user 1000 probe read p644
expect_errno EACCES "write of another user's 0644 file" as_user 1000 probe open p644 wronly
expect_errno EACCES "access(W_OK) agrees" as_user 1000 probe access p644 w
expect_errno OK "access(R_OK) agrees" as_user 1000 probe access p644 r
echo grp >p640
chown 0:1000 p640
chmod 0640 p640
expect_errno OK "group read through the primary group" as_user 1000 probe read p640
expect_errno OK "group read through a supplementary group" as_user 1001:1001:1000 probe read p640
expect_errno EACCES "no group read for a non-member" as_user 1001 probe read p640
chown 1000:1000 p640
chmod 0460 p640
expect_errno EACCES "the owner class wins over the group class" as_user 1000 probe open p640 wronly

# -- execute
printf '#!/bin/sh\necho ran\n' >script
chmod 0755 script
check_eq "$(as_user 1000 ./script)" ran "a 0755 script runs for another user"
chmod 0644 script
as_user 1000 ./script >/dev/null 2>&1
check_eq "$?" 126 "a 0644 script does not run (EACCES, exit 126)"

# -- directories: read and search
mkdir d700 d711 d755
echo in >d700/f
echo in >d711/f
chmod 0700 d700
chmod 0711 d711
expect_errno EACCES "lookup inside a 0700 directory of another user" as_user 1000 probe stat d700/f
expect_errno EACCES "readdir of a 0700 directory of another user" as_user 1000 probe lsdirhex d700
expect_errno OK "lookup inside a 0711 directory (search only)" as_user 1000 probe stat d711/f
expect_errno EACCES "readdir of a 0711 directory" as_user 1000 probe lsdirhex d711
expect_errno EACCES "create in another user's 0755 directory" as_user 1000 probe open d755/new wronly,creat
expect_errno EACCES "mkdir in another user's 0755 directory" as_user 1000 probe mkdir d755/new 0755
touch d755/victim
expect_errno EACCES "unlink in another user's 0755 directory" as_user 1000 probe unlink d755/victim
expect_errno EACCES "rename out of another user's 0755 directory" as_user 1000 probe rename2 d755/victim victim none

# -- a user's own tree
mkdir home
chown 1000:1000 home
expect_errno OK "create in one's own directory" as_user 1000 probe open home/mine wronly,creat 0644
check_eq "$(stat_field home/mine uid):$(stat_field home/mine gid)" 1000:1000 "new file belongs to the caller"
as_user 1000 probe mkdir home/sub 0755 >/dev/null
check_eq "$(stat_field home/sub uid):$(stat_field home/sub gid)" 1000:1000 "new directory belongs to the caller"
as_user 1000 probe symlink mine home/link >/dev/null
check_eq "$(stat_field home/link uid)" 1000 "new symlink belongs to the caller"
expect_errno OK "chmod of one's own file" as_user 1000 probe chmod home/mine 0600
expect_errno EPERM "chmod of another user's file" as_user 1000 probe chmod p644 0666
expect_errno EPERM "chown of one's own file to another user" as_user 1000 probe chown home/mine 1001 -1
expect_errno EPERM "chgrp to a group one is not in" as_user 1000 probe chown home/mine -1 2000
expect_errno OK "chgrp to a supplementary group" as_user 1000:1000:2000 probe chown home/mine -1 2000
check_eq "$(stat_field home/mine gid)" 2000 "chgrp took effect"
touch shared666
chmod 0666 shared666
expect_errno OK "touch (UTIME_NOW) of a writable file of another user" as_user 1000 probe utimens shared666 0 now 0 now
expect_errno EPERM "explicit times on another user's file" as_user 1000 probe utimens shared666 1 0 1 0
expect_errno EACCES "UTIME_NOW on a non-writable file of another user" as_user 1000 probe utimens p644 0 now 0 now
expect_errno OK "explicit times on one's own file" as_user 1000 probe utimens home/mine 1 0 2 0

# -- setuid/setgid dropped on write by another user, setgid bit on chmod
echo suid >suid
chmod 04777 suid
as_user 1000 probe pwrite suid 0 X >/dev/null
check_eq "$(stat_field suid mode)" 100777 "a write by another user clears setuid"
# (the kernel leaves these to the filesystem under FUSE_HANDLE_KILLPRIV_V2)
chmod 06777 suid
as_user 1000 probe pwrite suid 0 X >/dev/null
check_eq "$(stat_field suid mode)" 100777 "a write by another user clears setgid of a group-executable file"
chmod 06767 suid
as_user 1000:1000:0 probe pwrite suid 0 X >/dev/null
check_eq "$(stat_field suid mode)" 102767 "setgid stays on a file the group cannot execute, for a writer in its group"
chmod 06767 suid
as_user 1000 probe pwrite suid 0 X >/dev/null
check_eq "$(stat_field suid mode)" 100767 "... and goes for a writer outside its group (Linux 6.2+)"
chmod 02767 suid
as_user 1000 probe truncate suid 1 >/dev/null
check_eq "$(stat_field suid mode)" 100767 "... as for a truncate by a user outside its group"
chmod 06777 suid
as_user 1000 probe truncate suid 1 >/dev/null
check_eq "$(stat_field suid mode)" 100777 "a truncate by another user clears setuid/setgid"
chmod 06777 suid
as_user 1000 probe open suid wronly,trunc >/dev/null
check_eq "$(stat_field suid mode)" 100777 "an O_TRUNC open by another user clears setuid/setgid"
chmod 06777 suid
as_user 1000 probe falloc suid 0 0 8192 >/dev/null
check_eq "$(stat_field suid mode)" 100777 "an fallocate by another user clears setuid/setgid"
chmod 06777 suid
as_user 1000 probe falloc suid punch 0 2 >/dev/null
check_eq "$(stat_field suid mode)" 100777 "a hole punch by another user clears setuid/setgid"
# -- chown(f, -1, -1) changes no owner, but clears setuid/setgid as any
# chown does: a mode change, so the owner's (or root's) to make
echo noop >noop
chown 1000:1000 noop
chmod 06777 noop
expect_errno OK "chown -1 -1 by the owner" as_user 1000 probe chown noop -1 -1
check_eq "$(stat_field noop mode)" 100777 "... clears setuid and the group-executable setgid"
chmod 02767 noop
as_user 1000 probe chown noop -1 -1 >/dev/null
check_eq "$(stat_field noop mode)" 102767 "... keeps setgid of a file the group cannot execute, for its group's member"
chmod 04755 noop
# (kmemfs cannot tell this chown from an fallocate's request to clear the
# bits before it, and answers 0; the bits stay all the same)
on_kmemfs || expect_errno EPERM "chown -1 -1 of a setuid file by another user" \
	as_user 1001 probe chown noop -1 -1
on_kmemfs && as_user 1001 probe chown noop -1 -1 >/dev/null
check_eq "$(stat_field noop mode)" 104755 "chown -1 -1 of a setuid file by another user changes nothing"
probe chown noop -1 -1 >/dev/null
check_eq "$(stat_field noop mode)" 100755 "chown -1 -1 by root clears setuid too"
expect_errno OK "chown -1 -1 of a plain file by another user" as_user 1001 probe chown noop -1 -1
chmod 06777 suid
echo src >cfrsrc
chmod 644 cfrsrc
as_user 1000 probe cfr cfrsrc 0 suid 0 4 >/dev/null
check_eq "$(stat_field suid mode)" 100777 "a copy_file_range into the file by another user clears setuid/setgid"
check_eq "$(head -c 3 suid)" src "... and copies"
if on_kmemfs; then
	chmod 06777 suid
	as_user 1000 probe kclone cfrsrc suid >/dev/null
	check_eq "$(stat_field suid mode)" 100777 "a clone ioctl into the file by another user clears setuid/setgid"
	check_eq "$(head -c 3 suid)" src "... and clones"
	chmod 06777 suid
	probe kclone cfrsrc suid >/dev/null
	check_eq "$(stat_field suid mode)" 106777 "a clone ioctl by root (CAP_FSETID) keeps setuid/setgid"
	without_cap fsetid probe kclone cfrsrc suid >/dev/null
	check_eq "$(stat_field suid mode)" 100777 "a clone ioctl by root without CAP_FSETID clears setuid/setgid"
	chmod 06777 suid
	setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= suid
	probe kclone cfrsrc suid >/dev/null
	check_eq "$(getfattr --absolute-names -n security.capability suid 2>&1 | grep -c 'No such attribute')" 1 \
		"a clone ioctl drops security.capability"
fi
chmod 06777 suid
probe falloc suid 0 0 16384 >/dev/null
check_eq "$(stat_field suid mode)" 106777 "an fallocate by root (CAP_FSETID) keeps setuid/setgid"
without_cap fsetid probe falloc suid 0 0 16384 >/dev/null
check_eq "$(stat_field suid mode)" 100777 "an fallocate by root without CAP_FSETID clears setuid/setgid"
chmod 06777 suid
echo root >>suid
check_eq "$(stat_field suid mode)" 106777 "a write by root (CAP_FSETID) keeps setuid/setgid"
chown 1000 suid
check_eq "$(stat_field suid mode)" 100777 "chown clears setuid/setgid"
setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= suid
echo more >>suid
check_eq "$(getfattr --absolute-names -n security.capability suid 2>&1 | grep -c 'No such attribute')" 1 \
	"a write drops security.capability"
as_user 1000 probe chmod home/mine 02755 >/dev/null
check_eq "$(stat_field home/mine mode)" 100755 "chmod g+s by a non-member of the file's group drops setgid"

# -- sticky directory (like /tmp)
mkdir sticky
chmod 1777 sticky
as_user 1000 probe open sticky/of1000 wronly,creat 0666 >/dev/null
as_user 1001 probe open sticky/of1001 wronly,creat 0666 >/dev/null
expect_errno EPERM "sticky: another user cannot unlink" as_user 1001 probe unlink sticky/of1000
expect_errno EPERM "sticky: another user cannot rename it away" as_user 1001 probe rename2 sticky/of1000 sticky/moved none
expect_errno EPERM "sticky: another user cannot replace it by rename" as_user 1001 probe rename2 sticky/of1001 sticky/of1000 none
expect_errno OK "sticky: the owner of the file can unlink" as_user 1000 probe unlink sticky/of1000
as_user 1000 probe open sticky/again wronly,creat 0666 >/dev/null
chown 1002 sticky
expect_errno OK "sticky: the owner of the directory can unlink" as_user 1002 probe unlink sticky/again
chmod 0666 sticky/of1001
expect_errno OK "sticky: opening another user's 0666 file for writing is allowed" as_user 1000 probe open sticky/of1001 wronly

# -- setgid directory
mkdir sgid
chown 0:3000 sgid
chmod 2777 sgid
as_user 1000 probe open sgid/f wronly,creat 0644 >/dev/null
check_eq "$(stat_field sgid/f gid)" 3000 "a file in a setgid directory takes the directory's group"
as_user 1000 probe mkdir sgid/sub 0755 >/dev/null
check_eq "$(stat_field sgid/sub gid) $(stat_field sgid/sub mode)" "3000 42755" \
	"a subdirectory of a setgid directory inherits group and setgid"

# -- O_TMPFILE: the directory's write permission, the caller's ids, setgid
mkdir tmpd
chmod 0755 tmpd
expect_errno EACCES "O_TMPFILE in a directory the caller may not write" as_user 1000 probe tmpfile tmpd 0600 1 1
chmod 1777 tmpd
expect_errno OK "O_TMPFILE in a directory the caller may write, then linkat" as_user 1000 probe tmpfile tmpd 0600 1 1 tmpd/user
check_eq "$(stat_field tmpd/user uid):$(stat_field tmpd/user gid)" 1000:1000 "an O_TMPFILE is owned by its creator"
expect_errno OK "O_TMPFILE in a setgid directory, then linkat" as_user 1000 probe tmpfile sgid 0600 1 1 sgid/tmp
check_eq "$(stat_field sgid/tmp gid)" 3000 "an O_TMPFILE in a setgid directory takes the directory's group"

# -- root's overrides
expect_errno OK "root creates in a 0700 directory of another user" probe open home/by-root wronly,creat
chmod 0000 d700
expect_errno OK "root searches a 0000 directory" probe stat d700/f

cd /
finish
