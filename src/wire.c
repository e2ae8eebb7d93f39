/*
 * wire.c -- the FUSE protocol below libfuse, where libfuse 3.14 falls short.
 *
 * Debian 12's libfuse (3.14) cannot negotiate FUSE_HANDLE_KILLPRIV_V2 (kernel
 * 5.11+, libfuse 3.16+). Without it every WRITE costs the kernel a GETXATTR
 * round trip first (security.capability, file_remove_privs); with it the
 * superblock is SB_NOSEC, the kernel asks once per inode, and the filesystem
 * clears setuid/setgid itself when a request says the caller may not keep
 * them. So the session reads and writes /dev/fuse through these hooks
 * (fuse_session_custom_io): a read remembers the INIT request and, per
 * thread, the kill flag of the request the thread is about to handle (libfuse
 * handles a request on the thread that read it); the INIT reply gets the bit
 * when the kernel offered it.
 *
 * libfuse 3.14 also predates FUSE_TMPFILE (open(2) with O_TMPFILE, kernel
 * 6.1+) and would answer it ENOSYS. The request is a CREATE in all but its
 * opcode (the same arguments, the name "/", the same reply), so a read turns
 * it into one and marks the thread; the create handler asks wire_tmpfile().
 */
#include "wire.h"

#include <errno.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

static _Atomic uint64_t init_unique;   /* the INIT request, until answered */
static atomic_bool kernel_offers_v2;
static atomic_bool killpriv_v2;
static __thread bool req_kills_suidgid;
static __thread bool req_is_tmpfile;

/* The kill flag a request carries, by opcode; false when it has none. */
static bool request_kill_flag(const struct fuse_in_header *h, const void *arg,
			      size_t arglen)
{
	switch (h->opcode) {
	case FUSE_WRITE:
		return arglen >= sizeof(struct fuse_write_in) &&
		       (((const struct fuse_write_in *)arg)->write_flags &
			FUSE_WRITE_KILL_SUIDGID);
	case FUSE_SETATTR:
		return arglen >= sizeof(struct fuse_setattr_in) &&
		       (((const struct fuse_setattr_in *)arg)->valid &
			FATTR_KILL_SUIDGID);
	case FUSE_OPEN:
		return arglen >= sizeof(struct fuse_open_in) &&
		       (((const struct fuse_open_in *)arg)->open_flags &
			FUSE_OPEN_KILL_SUIDGID);
	case FUSE_CREATE:
		return arglen >= sizeof(struct fuse_create_in) &&
		       (((const struct fuse_create_in *)arg)->open_flags &
			FUSE_OPEN_KILL_SUIDGID);
	default:
		return false;
	}
}

static ssize_t wire_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *h = buf;
	const char *arg = (const char *)buf + sizeof(*h);

	(void)userdata;
	req_kills_suidgid = false;
	req_is_tmpfile = false;
	if (n < (ssize_t)sizeof(*h))
		return n;
	if (h->opcode == FUSE_TMPFILE) {
		((struct fuse_in_header *)buf)->opcode = FUSE_CREATE;
		req_is_tmpfile = true;
	}
	if (h->opcode == FUSE_INIT) {
		const struct fuse_init_in *in = (const void *)arg;
		if ((size_t)n >= sizeof(*h) + offsetof(struct fuse_init_in, flags2))
			atomic_store(&kernel_offers_v2,
				     (in->flags & FUSE_HANDLE_KILLPRIV_V2) != 0);
		atomic_store(&init_unique, h->unique);
		return n;
	}
	req_kills_suidgid = request_kill_flag(h, arg, (size_t)n - sizeof(*h));
	return n;
}

static ssize_t wire_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	const struct fuse_out_header *h = iov[0].iov_base;
	uint64_t init = atomic_load(&init_unique);

	(void)userdata;
	if (init && count >= 2 && iov[0].iov_len >= sizeof(*h) && h->unique == init) {
		atomic_store(&init_unique, 0);
		if (h->error == 0 && atomic_load(&kernel_offers_v2) &&
		    iov[1].iov_len >= offsetof(struct fuse_init_out, max_background)) {
			struct fuse_init_out *out = iov[1].iov_base;
			out->flags |= FUSE_HANDLE_KILLPRIV_V2;
			atomic_store(&killpriv_v2, true);
		}
	}
	return writev(fd, iov, count);
}

int wire_install(struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
		.read = wire_read,
		.writev = wire_writev,
	};

	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

bool wire_killpriv_v2(void)
{
	return atomic_load(&killpriv_v2);
}

bool wire_kill_suidgid(void)
{
	return req_kills_suidgid;
}

bool wire_tmpfile(void)
{
	return req_is_tmpfile;
}
