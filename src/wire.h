/* wire.h -- the FUSE protocol below libfuse, where libfuse 3.14 falls short. */
#ifndef KMEMFS_WIRE_H
#define KMEMFS_WIRE_H

#include <stdbool.h>

struct fuse_session;

/*
 * Route the session's reads and writes of /dev/fuse through wire.c, after
 * fuse_session_mount. Returns 0 or a negative errno.
 */
int wire_install(struct fuse_session *se);

/* Whether the kernel agreed to FUSE_HANDLE_KILLPRIV_V2 at INIT. */
bool wire_killpriv_v2(void);

/*
 * Whether the request this thread is handling asks the filesystem to clear
 * setuid/setgid (a WRITE, truncating SETATTR or O_TRUNC OPEN by a caller
 * without CAP_FSETID).
 */
bool wire_kill_suidgid(void);

/*
 * Whether the CREATE this thread is handling was an O_TMPFILE open: the new
 * inode gets no name (FUSE_TMPFILE, which libfuse 3.14 does not know).
 */
bool wire_tmpfile(void);

#endif
