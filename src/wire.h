/* wire.h -- the FUSE protocol below libfuse, where libfuse 3.14 falls short. */
#ifndef KMEMFS_WIRE_H
#define KMEMFS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct iovec;

struct fuse_session;

/*
 * Route the session's reads and writes of /dev/fuse through wire.c, after
 * fuse_session_mount. Returns 0 or a negative errno.
 */
int wire_install(struct fuse_session *se);

/* the errno libfuse answered the kernel's INIT with, or that writing the
 * answer failed with; 0 if it was accepted or none came */
int wire_init_error(void);
/*
 * Call ANSWERED once the INIT answer has been written, on the thread that
 * wrote it, with that errno (0: the kernel took an accepting answer). Before
 * the session starts.
 */
void wire_on_init(void (*answered)(void *arg, int error), void *arg);
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

/*
 * Whether the GETATTR this thread is handling was a STATX (FUSE_STATX,
 * which libfuse 3.14 does not know): the handler then gives the birth time
 * with wire_statx_btime before it replies, and the reply goes out as STATX's.
 * So getattr must reply on the thread that read the request, as every
 * handler does now.
 */
bool wire_statx(void);
void wire_statx_btime(struct timespec btime);

/*
 * Note what the request in BUF (N bytes, fuse_in_header first) asks of the
 * handler (above), on the thread about to handle it, and count it; RING: it
 * came through io_uring (uring.c calls this; /dev/fuse reads go through it
 * already).
 */
void wire_inspect(void *buf, size_t n, bool ring);

/* Requests received through io_uring (RING) or /dev/fuse, since mount. */
uint64_t wire_requests(bool ring);

/*
 * Before a /dev/fuse reader sleeps in read(), let it poll for up to NS
 * nanoseconds (0: never) while requests keep coming that soon after the
 * replies: one request in flight then costs no wake-up of the daemon. Before
 * the session starts. wire_requests_polled: requests a poll found.
 */
void wire_poll_before_read(uint64_t ns);
uint64_t wire_requests_polled(void);

/*
 * Offer FUSE over io_uring at INIT when the kernel does; STARTED is called
 * once INIT is answered, ACCEPTED saying whether the ring is now expected.
 * Before the session starts.
 */
void wire_offer_uring(void (*started)(void *arg, bool accepted), void *arg);

/*
 * Ask at INIT for shared mappings of files opened for direct I/O
 * (FUSE_DIRECT_IO_ALLOW_MMAP), before the session starts; wire_direct_io()
 * then says whether the kernel agreed, so that opens may bypass its page
 * cache (FOPEN_DIRECT_IO) without losing mmap.
 */
void wire_want_direct_io(bool want);
bool wire_direct_io(void);
/* whether INIT offered it: known from INIT's read, before op_init */
bool wire_kernel_maps_direct_io(void);

/* Offer this thread's replies (not notifications) to CAPTURE first; NULL to
 * stop. CAPTURE returns the bytes it took, -1/errno, or 0 to leave the reply
 * to /dev/fuse. */
void wire_capture_replies(ssize_t (*capture)(void *ctx, const struct iovec *iov,
					     int count),
			  void *ctx);

#endif
