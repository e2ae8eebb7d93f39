// SPDX-License-Identifier: BSD-3-Clause
/*
 * forcesync.so -- LD_PRELOADed into a test daemon: statx of a descriptor
 * (AT_EMPTY_PATH) or of a /proc path with AT_STATX_DONT_SYNC is sent with
 * AT_STATX_FORCE_SYNC instead. The
 * clone ioctl's handler then asks the kernel, and so its own mount, for its
 * source's attributes from inside a request: a GETATTR queued behind the
 * ring entries that wait for it. test_uring uses it to block every entry of
 * a CPU queue at once, which only the monitor's spare entry can undo.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

int statx(int dirfd, const char *restrict path, int flags, unsigned int mask,
	  struct statx *restrict buf)
{
	static int (*real)(int, const char *, int, unsigned int, struct statx *);

	if (!real)
		real = (int (*)(int, const char *, int, unsigned int,
				struct statx *))dlsym(RTLD_NEXT, "statx");
	/* the handler's statx of its copy of the source descriptor (and of
	 * /proc paths, as it did before it took a copy) */
	if ((strncmp(path, "/proc/", 6) == 0 ||
	     (path[0] == '\0' && (flags & AT_EMPTY_PATH))) &&
	    (flags & AT_STATX_DONT_SYNC))
		flags = (flags & ~AT_STATX_SYNC_TYPE) | AT_STATX_FORCE_SYNC;
	return real(dirfd, path, flags, mask, buf);
}
