// SPDX-License-Identifier: BSD-3-Clause
/*
 * badinit.so -- LD_PRELOADed into a test daemon: the kernel's FUSE INIT
 * request, as read from /dev/fuse, claims protocol 6.x, which libfuse
 * answers with EPROTO. Stands in for a handshake that fails after kmemfs
 * went to the background; test_cli checks that the command still fails.
 * With BADINIT_SLOW=1 the request is only held for 2 s instead, for a
 * handshake that is late.
 */
#include <dlfcn.h>
#include <linux/fuse.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

ssize_t read(int fd, void *buf, size_t len)
{
	static ssize_t (*real)(int, void *, size_t);
	struct fuse_in_header *h = buf;
	struct fuse_init_in *in = (struct fuse_init_in *)(h + 1);
	struct stat st;
	ssize_t n;

	if (!real)
		real = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	n = real(fd, buf, len);
	if (n >= (ssize_t)(sizeof(*h) + sizeof(in->major)) && h->opcode == FUSE_INIT &&
	    fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(10, 229)) {
		const char *slow = getenv("BADINIT_SLOW");
		if (slow && *slow == '1')
			sleep(2);
		else
			in->major = 6;
	}
	return n;
}
