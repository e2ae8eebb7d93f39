// SPDX-License-Identifier: BSD-3-Clause
/*
 * fuse_ops.c -- the fuse_lowlevel_ops table and thin adapters: decode the
 * request, call the fs layer, turn -errno into fuse_reply_err. Nothing
 * else lives here and nothing below knows FUSE.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/fs.h>

#include <dirent.h>
#include "acl.h"
#include "fs.h"
#include "xattr.h"
#include "fuse_ops.h"
#include "log.h"
#include "kmemfs/ioctl.h"
#include "wire.h"

/*
 * The kernel may cache names and attributes for a minute: the daemon is the
 * only way to the pool, so every change but those the daemon makes on its own
 * (a clone into a file, the kill of setuid on a write) comes through the
 * kernel, and those two invalidate what it cached. A short timeout makes the
 * kernel ask again: a LOOKUP before the unlink of a file created more than a
 * timeout ago, a GETATTR before such a stat. Not longer than a minute: a
 * reply's attributes can land after a racing change invalidated them (an
 * O_TRUNC open racing a chmod), and the timeout bounds how long that lasts.
 */
#define ATTR_TIMEOUT 60.0
#define ENTRY_TIMEOUT 60.0

static struct kmfs_fs *FS(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fs_cred cred(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct fs_cred cr = { c->uid, c->gid, c->umask };
	return cr;
}

static void fill_entry(struct kmfs_fs *fs, uint64_t off, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = fs_ino(fs, off);
	e->generation = fs_inode(fs, off)->generation;
	e->attr_timeout = ATTR_TIMEOUT;
	e->entry_timeout = ENTRY_TIMEOUT;
	/* locked as GETATTR is, so not torn by a rename, create or write; the
	 * lookup that precedes every entry reply pinned the vnode, so this
	 * finds it and cannot fail */
	fs_getattr(fs, e->ino, &e->attr);
}

static void reply_entry(fuse_req_t req, int rc, uint64_t off)
{
	struct fuse_entry_param e;
	struct kmfs_fs *fs = FS(req);

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fill_entry(fs, off, &e);
	if (fuse_reply_entry(req, &e) < 0)
		fs_forget(fs, e.ino, 1); /* not written (aborted): no kernel ref */
}

/*
 * After privileges came off a file (RC from fs_kill_suidgid or
 * fs_kill_capability): the kernel keeps its cached mode and ctime through a
 * WRITE or OPEN, so when they changed the inode it is told to forget them.
 * Returns 0 or -errno.
 */
static int privs_killed(fuse_req_t req, fuse_ino_t ino, int rc)
{
	struct kmfs_fs *fs = FS(req);

	if (rc > 0) {
		pages_release_deferred(&fs->pages); /* the notify may wait */
		fuse_lowlevel_notify_inval_inode(fs->session, ino, -1, 0);
		rc = 0;
	}
	return rc;
}

static bool caller_in_group(fuse_req_t req, gid_t gid);

/* set by op_init: /proc shows the PID namespace the callers' pids are in
 * (else nobody counts as privileged), and the daemon's user namespace */
static bool proc_is_ours;
static struct stat own_userns;

/*
 * Whether the caller holds capability CAP where the kernel would ask
 * capable(CAP). FUSE sends the caller's ids, not its capabilities, so they
 * are read from /proc/PID/status (CapEff), and count only in the daemon's
 * user namespace. A caller the daemon cannot see (another PID namespace
 * sends pid 0) counts as unprivileged: a bit is cleared or a name hidden
 * rather than kept or shown. Asked only of files that have something to
 * lose.
 */
static bool caller_capable(fuse_req_t req, int cap)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat theirs;
	char path[64], line[256];
	bool capable = false;
	FILE *f;

	if (ctx->pid <= 0 || !proc_is_ours)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)ctx->pid);
	if (stat(path, &theirs) != 0 || theirs.st_ino != own_userns.st_ino ||
	    theirs.st_dev != own_userns.st_dev)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)ctx->pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long eff;

		if (sscanf(line, "CapEff: %llx", &eff) == 1) {
			capable = eff >> cap & 1;
			break;
		}
	}
	fclose(f);
	return capable;
}

/* in the file's group GID, or with CAP_FSETID: setgid without group-exec
 * then stays (in_group_or_capable) */
static bool in_group_or_capable(void *req, gid_t gid)
{
	return caller_in_group(req, gid) || caller_capable(req, CAP_FSETID);
}

/* the caller owns file INO, or holds CAP_FOWNER (inode_owner_or_capable) */
static bool caller_owns(fuse_req_t req, fuse_ino_t ino)
{
	struct stat st;

	if (fs_getattr(FS(req), ino, &st) < 0)
		return false;
	return fuse_req_ctx(req)->uid == st.st_uid || caller_capable(req, CAP_FOWNER);
}

/* Clear setuid/setgid when the request asks for it (wire.c). */
static int kill_suidgid(fuse_req_t req, fuse_ino_t ino)
{
	return privs_killed(req, ino, fs_kill_suidgid(FS(req), ino, in_group_or_capable, req));
}

/*
 * A change of the file's data the kernel does not see as a write (a clone)
 * clears setuid/setgid as file_remove_privs would: for a caller without
 * CAP_FSETID, asked only when the file has one of them.
 */
static int kill_suidgid_unless_capable(fuse_req_t req, fuse_ino_t ino)
{
	if (!fs_has_suidgid(FS(req), ino) || caller_capable(req, CAP_FSETID))
		return 0;
	return kill_suidgid(req, ino);
}

/*
 * FALLOCATE and COPY_FILE_RANGE carry no kill flag: under HANDLE_KILLPRIV_V2
 * the filesystem clears setuid/setgid itself.
 */
static int kill_suidgid_for_caller(fuse_req_t req, fuse_ino_t ino)
{
	return wire_killpriv_v2() ? kill_suidgid_unless_capable(req, ino) : 0;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	const struct kmfs_fs *fs = userdata;
	char self[32];
	ssize_t n = readlink("/proc/self", self, sizeof(self) - 1);

	/* a /proc of another PID namespace would show other processes under
	 * the callers' pids: then nobody counts as privileged */
	if (n > 0) {
		self[n] = '\0';
		proc_is_ours = strtol(self, NULL, 10) == (long)getpid() &&
			       stat("/proc/self/ns/user", &own_userns) == 0;
	}

	/* no FUSE_CAP_SPLICE_READ: libfuse offers it only to sessions that read
	 * /dev/fuse themselves, and wire.c's hooks must see every request */
	/* v1 would have us clear setuid on every write; wire.c offers v2 */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	if (conn->capable & FUSE_CAP_DONT_MASK)
		conn->want |= FUSE_CAP_DONT_MASK;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* file handles (open_by_handle_at, NFS) outlive the kernel's inode:
	 * it then asks for the inode by number, as a LOOKUP of "." */
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* every READDIR with attributes, not the first only (AUTO): `ls -l`,
	 * `du` or `rm -rf` of 100k files then sends no LOOKUP per name (1.2
	 * against 4.1 s, 7.2 against 9.5 s); a listing of names alone costs
	 * the kernel an inode per name (0.6 against 0.1 s), and names it
	 * knows go bare (readdirplus_one) */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (fs->cache == FS_CACHE_DIRECT && !wire_kernel_maps_direct_io())
		log_err("cache=direct: this kernel cannot map files opened for "
			"direct I/O (Linux 6.6+); files keep the page cache");
	conn->max_write = KMEMFS_MAX_WRITE;
	/* the kernel keeps the smaller of this and the window main.c set */
	conn->max_readahead = fs->readahead;
	conn->max_read = fs->max_read;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	uint64_t off = 0;
	/* "." comes only from a file handle, whose inode number is untrusted */
	int rc = strcmp(name, ".") == 0 ? fs_lookup_handle(FS(req), parent, &off)
					: fs_lookup(FS(req), parent, name, &off);

	if (rc == -ENOENT) {
		/* a negative entry: the kernel may remember the miss */
		struct fuse_entry_param e = { .ino = 0, .entry_timeout = ENTRY_TIMEOUT };
		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry(req, rc, off);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_forget(FS(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		fs_forget(FS(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int rc = fs_getattr(FS(req), ino, &st);

	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (wire_statx())
		wire_statx_btime(fs_birth_time(FS(req), ino));
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	static const struct { int fuse, fs; } map[] = {
		{ FUSE_SET_ATTR_MODE, FS_SET_MODE },
		{ FUSE_SET_ATTR_UID, FS_SET_UID },
		{ FUSE_SET_ATTR_GID, FS_SET_GID },
		{ FUSE_SET_ATTR_SIZE, FS_SET_SIZE },
		{ FUSE_SET_ATTR_ATIME, FS_SET_ATIME },
		{ FUSE_SET_ATTR_MTIME, FS_SET_MTIME },
		{ FUSE_SET_ATTR_ATIME_NOW, FS_SET_ATIME_NOW },
		{ FUSE_SET_ATTR_MTIME_NOW, FS_SET_MTIME_NOW },
		{ FUSE_SET_ATTR_CTIME, FS_SET_CTIME },
	};
	struct stat out;
	int set = 0, rc;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (to_set & map[i].fuse)
			set |= map[i].fs;
	/* a truncate by a caller without CAP_FSETID, or a chown (wire.c) */
	if (wire_kill_suidgid() ||
	    (wire_killpriv_v2() && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))) {
		set |= FS_KILL_SUIDGID;
		/* the group the file has now: the kernel's setattr_should_drop_sgid */
		if (fs_sgid_outsider(FS(req), ino, in_group_or_capable, req))
			set |= FS_KILL_SGID;
	}
	/* chown(f, -1, -1) arrives setting nothing: under KILLPRIV_V2 the
	 * kernel leaves us the setuid/setgid clearing of chown_common, a mode
	 * change the owner may make. So does the file_remove_privs of an
	 * fallocate or copy_file_range, by any writer, whose own request
	 * clears the bits next: from a caller who does not own the file, an
	 * empty SETATTR clears nothing (tmpfs refuses that chown with EPERM;
	 * we cannot tell it from the writer's) */
	if (to_set == 0 && wire_killpriv_v2()) {
		bool outsider = fs_sgid_outsider(FS(req), ino, in_group_or_capable, req);

		if (fs_suidgid_to_clear(FS(req), ino, outsider) && caller_owns(req, ino))
			set |= FS_KILL_SUIDGID | (outsider ? FS_KILL_SGID : 0);
	}
	rc = fs_setattr(FS(req), ino, attr, set, &out);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &out, ATTR_TIMEOUT);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[KMFS_SYMLINK_MAX + 1];
	int rc = fs_readlink(FS(req), ino, buf, sizeof(buf));

	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct fs_cred cr = cred(req);
	uint64_t off = 0;

	int rc = fs_mknod(FS(req), parent, name, mode, rdev, &cr, &off);

	reply_entry(req, rc, off);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	struct fs_cred cr = cred(req);
	uint64_t off = 0;

	int rc = fs_mkdir(FS(req), parent, name, mode, &cr, &off);

	reply_entry(req, rc, off);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct fs_cred cr = cred(req);
	uint64_t off = 0;

	int rc = fs_symlink(FS(req), parent, name, link, &cr, &off);

	reply_entry(req, rc, off);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	uint64_t off = 0;

	int rc = fs_link(FS(req), ino, newparent, newname, &off);

	reply_entry(req, rc, off);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -fs_unlink(FS(req), parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -fs_rmdir(FS(req), parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct fs_cred cr = cred(req);
	unsigned f = 0;

	if (flags & RENAME_NOREPLACE)
		f |= FS_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		f |= FS_RENAME_EXCHANGE;
	if (flags & RENAME_WHITEOUT)
		f |= FS_RENAME_WHITEOUT; /* the kernel checked CAP_MKNOD */
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_err(req, -fs_rename(FS(req), parent, name, newparent,
				       newname, f, &cr));
}

/* fi->fh: the open flags, and whether the open bypasses the page cache */
#define FH_DIRECT (1ull << 32)

/*
 * Whether an open of a regular file bypasses the kernel's page cache
 * (FOPEN_DIRECT_IO). File data already lives in memory, the pool's: a page
 * cache copy of it takes RAM twice, and writing through the page cache costs
 * the writer a copy, serialised with the daemon's. Reads keep the page cache
 * by default (cache=auto), as its read-ahead serves small reads without a
 * round trip each. Only when the kernel lets such files be mapped shared
 * (wire.c), so that mmap works on every open.
 */
static bool open_direct(const struct kmfs_fs *fs, int flags)
{
	if (!wire_direct_io())
		return false;
	switch (fs->cache) {
	case FS_CACHE_DIRECT:
		return true;
	case FS_CACHE_AUTO:
		return (flags & O_ACCMODE) != O_RDONLY;
	default:
		return false;
	}
}

/* file opens since mount: [0] kept the page cache, [1] bypassed it */
static _Atomic uint64_t opens[2];

static void set_open_reply(const struct kmfs_fs *fs, struct fuse_file_info *fi)
{
	bool direct = open_direct(fs, fi->flags);

	atomic_fetch_add_explicit(&opens[direct], 1, memory_order_relaxed);
	fi->keep_cache = 1;
	fi->direct_io = direct;
	/* no FLUSH on close: kmemfs has nothing to flush (no .flush), and the
	 * clone ioctl closes its copy of the source from inside a request,
	 * where a FLUSH to this mount could wait for the very worker */
	fi->noflush = 1;
	/* ioctl and write get only fh */
	fi->fh = (uint64_t)(unsigned)fi->flags | (direct ? FH_DIRECT : 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int rc = fs_open(FS(req), ino, fi->flags);

	if (rc == 0 && (fi->flags & O_TRUNC) && wire_kill_suidgid())
		rc = kill_suidgid(req, ino);
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	set_open_reply(FS(req), fi);
	if (fuse_reply_open(req, fi) < 0)
		fs_release(FS(req), ino);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct kmfs_fs *fs = FS(req);
	struct fs_cred cr = cred(req);
	struct fuse_entry_param e;
	uint64_t off = 0;
	int rc = wire_tmpfile()
		 ? fs_tmpfile(fs, parent, mode, !(fi->flags & O_EXCL), &cr, &off)
		 : fs_mknod(fs, parent, name, (mode & 07777) | S_IFREG, 0, &cr, &off);

	if (rc == 0) {
		rc = fs_open(fs, fs_ino(fs, off), fi->flags);
		if (rc < 0)
			fs_forget(fs, fs_ino(fs, off), 1); /* no reply: no kernel ref */
	}
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	fill_entry(fs, off, &e);
	set_open_reply(fs, fi);
	if (fuse_reply_create(req, &e, fi) < 0) {
		fs_release(fs, e.ino);
		fs_forget(fs, e.ino, 1);
	}
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_release(FS(req), ino);
	fuse_reply_err(req, 0);
}

static int reply_read(void *arg, const struct iovec *iov, int n)
{
	fuse_req_t req = arg;
	struct fuse_bufvec *bv;
	int rc;

	if (n == 0)
		return fuse_reply_buf(req, NULL, 0);
	if (n == 1) {
		struct fuse_bufvec one = FUSE_BUFVEC_INIT(iov[0].iov_len);
		one.buf[0].mem = iov[0].iov_base;
		return fuse_reply_data(req, &one, FUSE_BUF_SPLICE_MOVE);
	}
	bv = calloc(1, sizeof(*bv) + (size_t)n * sizeof(bv->buf[0]));
	if (!bv)
		return -ENOMEM;
	bv->count = (size_t)n;
	for (int i = 0; i < n; i++) {
		bv->buf[i].mem = iov[i].iov_base;
		bv->buf[i].size = iov[i].iov_len;
	}
	rc = fuse_reply_data(req, bv, FUSE_BUF_SPLICE_MOVE);
	free(bv);
	return rc;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	/* READ carries the open flags */
	int rc = fs_read_atime(FS(req), ino, (uint64_t)off, size, reply_read, req,
			       !(fi->flags & O_NOATIME));

	/* a failed reply (the caller went away) needs no other reply */
	if (rc < 0 && rc != -ENOENT && rc != -EPIPE)
		fuse_reply_err(req, -rc);
}

static int copy_from_bufvec(void *arg, void *dst, size_t len)
{
	struct fuse_bufvec *in = arg;
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(len);
	ssize_t n;

	out.buf[0].mem = dst;
	n = fuse_buf_copy(&out, in, 0);
	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

/* A short write (the pool file's filesystem filled up part way) is
 * written on from where it stopped, so that the caller gets its errno
 * (ENOSPC) rather than EIO; fuse_buf_copy has advanced IN past what it took. */
static int copy_bufvec_to_fd(void *arg, int fd, uint64_t off, size_t len)
{
	struct fuse_bufvec *in = arg;
	size_t done = 0;

	while (done < len) {
		struct fuse_bufvec out = FUSE_BUFVEC_INIT(len - done);
		ssize_t n;

		out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		out.buf[0].fd = fd;
		out.buf[0].pos = (off_t)(off + done);
		n = fuse_buf_copy(&out, in, FUSE_BUF_SPLICE_NONBLOCK);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EIO; /* the request holds less than it said */
		done += (size_t)n;
	}
	return 0;
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_bufvec *in, off_t off,
			 struct fuse_file_info *fi)
{
	int short_err = 0;
	struct data_src src = { copy_from_bufvec, in, copy_bufvec_to_fd,
				&short_err };
	ssize_t n;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* the refusals of chattr's flags come before the privileges go, as
	 * the kernel's write checks come before file_remove_privs */
	n = fs_may_write(FS(req), ino, (uint64_t)off, fi->flags & O_APPEND);
	if (n == 0 && wire_kill_suidgid())
		n = kill_suidgid(req, ino);
	/* the kernel's file_remove_privs drops security.capability before a
	 * page-cache write, but not before a direct one */
	if (n == 0 && (fi->fh & FH_DIRECT) && !fi->writepage)
		n = privs_killed(req, ino, fs_kill_capability(FS(req), ino));
	if (n == 0)
		n = fs_write(FS(req), ino, (uint64_t)off, fuse_buf_size(in), &src,
			     fi->flags & O_APPEND);
	/* the kernel ends a writeback WRITE on its error alone and marks every
	 * page clean: a short one must say what was lost, and why (a full
	 * filesystem, or a store that failed part way) */
	if (fi->writepage && n >= 0 && (size_t)n < fuse_buf_size(in))
		n = !short_err ? -ENOSPC
		    : short_err == -EAGAIN || short_err == -EINTR ? -EIO : short_err;
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

struct readdir_buf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
};

static int add_dirent(void *arg, const char *name, size_t len, uint64_t ino,
		      unsigned type, uint64_t next_off)
{
	struct readdir_buf *b = arg;
	char nm[KMFS_NAME_MAX + 1];
	struct stat st = { .st_ino = ino, .st_mode = DTTOIF(type) };
	size_t need;

	memcpy(nm, name, len);
	nm[len] = '\0';
	need = fuse_add_direntry(b->req, NULL, 0, nm, NULL, 0);
	if (b->used + need > b->size)
		return 1;
	fuse_add_direntry(b->req, b->buf + b->used, b->size - b->used, nm, &st,
			  (off_t)next_off);
	b->used += need;
	return 0;
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct readdir_buf b = { req, malloc(size), size, 0 };
	int rc;

	if (!b.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = fs_readdir(FS(req), ino, (uint64_t)off, add_dirent, &b);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, b.buf, b.used);
	free(b.buf);
}

struct readdirplus_buf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	uint64_t *looked_up; /* the entries that gained a lookup */
	size_t n;
};

static int add_direntplus(void *arg, const char *name, size_t len,
			  const struct stat *st, bool looked_up,
			  uint64_t next_off)
{
	struct readdirplus_buf *b = arg;
	char nm[KMFS_NAME_MAX + 1];
	/* node 0 (".", "..", names the kernel knows): the kernel links
	 * nothing and counts no lookup, but the entry still lists */
	struct fuse_entry_param e = {
		.ino = looked_up ? st->st_ino : 0,
		.attr = *st,
		.attr_timeout = ATTR_TIMEOUT,
		.entry_timeout = ENTRY_TIMEOUT,
	};
	size_t need;

	memcpy(nm, name, len);
	nm[len] = '\0';
	need = fuse_add_direntry_plus(b->req, NULL, 0, nm, NULL, 0);
	if (b->used + need > b->size)
		return 1;
	if (looked_up)
		e.generation = fs_inode(FS(b->req),
					fs_ino_off(FS(b->req), st->st_ino))->generation;
	fuse_add_direntry_plus(b->req, b->buf + b->used, b->size - b->used, nm,
			       &e, (off_t)next_off);
	b->used += need;
	if (looked_up)
		b->looked_up[b->n++] = st->st_ino;
	return 0;
}

/*
 * READDIRPLUS: the entries with their attributes, so that `ls -l`, `du` or
 * a copy of a tree does not send a LOOKUP per name. Each entry sent counts
 * a lookup; when the reply cannot be written (the request was aborted),
 * they are forgotten. Over io_uring the reply goes out later, unchecked.
 */
static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	struct kmfs_fs *fs = FS(req);
	/* no entry takes less than a fuse_direntplus with an 8-byte name */
	size_t most = size / fuse_add_direntry_plus(req, NULL, 0, "x", NULL, 0) + 1;
	struct readdirplus_buf b = { req, malloc(size), size, 0,
				     calloc(most, sizeof(uint64_t)), 0 };
	int rc = b.buf && b.looked_up ? 0 : -ENOMEM;

	(void)fi;
	if (rc == 0)
		rc = fs_readdirplus(fs, ino, (uint64_t)off, add_direntplus, &b);
	/* an error after some entries: send those (the next call gets it) */
	if (rc < 0 && b.used == 0)
		fuse_reply_err(req, -rc);
	else if (fuse_reply_buf(req, b.buf, b.used) < 0)
		for (size_t i = 0; i < b.n; i++)
			fs_forget(fs, b.looked_up[i], 1); /* aborted */
	free(b.looked_up);
	free(b.buf);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	fs_statfs(FS(req), &st);
	fuse_reply_statfs(req, &st);
}

/* Whether the caller's group or one of its supplementary groups is GID. */
static bool caller_in_group(fuse_req_t req, gid_t gid)
{
	gid_t few[64], *list = few;
	int n = fuse_req_getgroups(req, 64, few);
	bool in = fuse_req_ctx(req)->gid == gid;

	if (n > 64) {
		int cap = n;
		list = malloc((size_t)cap * sizeof(*list));
		/* the count is the caller's, which may have grown since */
		if (list && (n = fuse_req_getgroups(req, cap, list)) > cap)
			n = cap;
	}
	for (int i = 0; list && i < n && !in; i++)
		in = list[i] == gid;
	if (list != few)
		free(list);
	return in;
}

/*
 * Setting an access ACL clears setgid when the caller is neither in the
 * file's group nor privileged (posix_acl_update_mode). The kernel leaves
 * that to the filesystem, and says so only through FUSE_SETXATTR_EXT,
 * which libfuse 3.14 cannot negotiate; so kmemfs asks the same question.
 * The kernel holds the inode's lock across the request: no chgrp races it.
 */
static bool acl_kills_sgid(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct stat st;

	if (!acl_is_access_name(name))
		return false;
	if (fs_getattr(FS(req), ino, &st) < 0 || !(st.st_mode & S_ISGID))
		return false;
	return !in_group_or_capable(req, st.st_gid);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	int f = 0;

	if (flags & XATTR_CREATE)
		f |= XATTR_SET_CREATE;
	if (flags & XATTR_REPLACE)
		f |= XATTR_SET_REPLACE;
	if (acl_kills_sgid(req, ino, name))
		f |= FS_XATTR_KILL_SGID;
	fuse_reply_err(req, -fs_setxattr(FS(req), ino, name, value, size, f));
}

/* Answer a getxattr/listxattr: the length when asked for it (SIZE 0), the
 * bytes otherwise, or the error; frees BUF. */
static void reply_xattr(fuse_req_t req, char *buf, size_t size, ssize_t n)
{
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = fs_getxattr(FS(req), ino, name, buf, size);
	reply_xattr(req, buf, size, n);
}

/* trusted.* is listed to callers with CAP_SYS_ADMIN, as by kernel filesystems */
static bool lists_trusted(void *req)
{
	return caller_capable(req, CAP_SYS_ADMIN);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = fs_listxattr(FS(req), ino, buf, size, lists_trusted, req);
	reply_xattr(req, buf, size, n);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -fs_removexattr(FS(req), ino, name));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	int rc = fs_may_change_data(FS(req), ino, mode & ~FALLOC_FL_KEEP_SIZE);

	if (rc == 0)
		rc = kill_suidgid_for_caller(req, ino);
	if (rc == 0)
		rc = fs_fallocate(FS(req), ino, mode, (uint64_t)off, (uint64_t)len);
	fuse_reply_err(req, -rc);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	int64_t r;

	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	r = fs_lseek(FS(req), ino, off, whence);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_lseek(req, r);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			       off_t off_out, struct fuse_file_info *fi_out,
			       size_t len, int flags)
{
	ssize_t n;

	if (flags || off_in < 0 || off_out < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	n = fs_may_change_data(FS(req), ino_out, true);
	if (n == 0)
		n = kill_suidgid_for_caller(req, ino_out);
	if (n == 0)
		n = fs_clone(FS(req), ino_in, (uint64_t)off_in, ino_out,
			     (uint64_t)off_out, len, false);
	/* a copy reads its source, as the kernel's splice copy marks it (a
	 * clone ioctl does not); the kernel keeps the source's cached atime */
	if (n > 0 && !(fi_in && (fi_in->fh & O_NOATIME)) && fs_accessed(FS(req), ino_in))
		fuse_lowlevel_notify_inval_inode(FS(req)->session, ino_in, -1, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/*
 * A pidfd for the process of thread TID: FUSE names the calling thread,
 * and pidfd_open takes only a thread group's leader (without PIDFD_THREAD,
 * which Linux 6.9 added).
 * The threads of a group share its descriptor table.
 */
static int caller_pidfd(pid_t tid)
{
	char path[64], line[256];
	int pfd = (int)syscall(SYS_pidfd_open, tid, 0);
	pid_t tgid = 0;
	FILE *f;

	/* a thread that is not the leader: EINVAL, or ENOENT since 6.9 */
	if (pfd >= 0 || tid <= 0)
		return pfd;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid > 0 && tgid != tid ? (int)syscall(SYS_pidfd_open, tgid, 0) : -1;
}

/*
 * The source of a clone ioctl is a file descriptor of the calling process:
 * take a copy of it (pidfd_getfd), and check on that copy that it is a
 * file of this mount, open for reading, as the kernel would for
 * FICLONERANGE. The inode and the open flags come from one open file,
 * which the caller cannot swap between the two checks (through /proc they
 * came from two reads, and a dup2 in between let a file opened O_PATH
 * pass as the readable one). The copy also keeps the file open, so its
 * inode cannot be freed under the clone. Returns the copy, to close after
 * the clone, or -errno.
 */
static int clone_source(fuse_req_t req, int64_t fd, fuse_ino_t *ino)
{
	struct kmfs_fs *fs = FS(req);
	struct statx stx;
	int pfd, sfd, flags;

	if (fd < 0 || fd > INT32_MAX)
		return -EBADF;
	pfd = caller_pidfd(fuse_req_ctx(req)->pid);
	if (pfd < 0)
		return -EBADF;
	sfd = (int)syscall(SYS_pidfd_getfd, pfd, (int)fd, 0);
	close(pfd);
	if (sfd < 0)
		return errno == EPERM ? -EPERM : -EBADF;
	/* from the kernel's cache: a GETATTR sent to this mount from inside a
	 * request could wait for the very worker that sends it */
	if (statx(sfd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_INO, &stx) != 0 ||
	    (flags = fcntl(sfd, F_GETFL)) < 0) {
		close(sfd);
		return -EBADF;
	}
	if (makedev(stx.stx_dev_major, stx.stx_dev_minor) != fs->mount_dev) {
		close(sfd);
		return -EXDEV; /* not a file of this mount */
	}
	if ((flags & O_ACCMODE) == O_WRONLY || (flags & O_PATH)) {
		close(sfd);
		return -EBADF;
	}
	*ino = stx.stx_ino;
	return sfd;
}

/* chattr's flags are the kernel's FS_*_FL, as kept on the media */
_Static_assert(KMFS_AF_IMMUTABLE == FS_IMMUTABLE_FL &&
	       KMFS_AF_APPEND == FS_APPEND_FL && KMFS_AF_NODUMP == FS_NODUMP_FL &&
	       KMFS_AF_NOATIME == FS_NOATIME_FL, "attribute flags are FS_*_FL");

/* the same flags as FS_IOC_FSGETXATTR spells them (xfs_io's chattr) */
static const struct { uint32_t flag, xflag; } xflag_map[] = {
	{ KMFS_AF_IMMUTABLE, FS_XFLAG_IMMUTABLE },
	{ KMFS_AF_APPEND, FS_XFLAG_APPEND },
	{ KMFS_AF_NODUMP, FS_XFLAG_NODUMP },
	{ KMFS_AF_NOATIME, FS_XFLAG_NOATIME },
};

static uint32_t flags_to_xflags(uint32_t flags)
{
	uint32_t x = 0;

	for (size_t i = 0; i < sizeof(xflag_map) / sizeof(xflag_map[0]); i++)
		if (flags & xflag_map[i].flag)
			x |= xflag_map[i].xflag;
	return x;
}

/* -EOPNOTSUPP for an xflag or a field kmemfs does not keep */
static int64_t xflags_to_flags(const struct fsxattr *fa)
{
	uint32_t x = fa->fsx_xflags, flags = 0;

	for (size_t i = 0; i < sizeof(xflag_map) / sizeof(xflag_map[0]); i++)
		if (x & xflag_map[i].xflag) {
			flags |= xflag_map[i].flag;
			x &= ~xflag_map[i].xflag;
		}
	if (x || fa->fsx_extsize || fa->fsx_projid || fa->fsx_cowextsize)
		return -EOPNOTSUPP;
	return flags;
}

/*
 * FS_IOC_SETFLAGS and FS_IOC_FSSETXATTR reach us from the kernel's
 * vfs_fileattr_set, which has checked that the caller owns the file and
 * may change immutable and append-only (CAP_LINUX_IMMUTABLE). Checked
 * again: nothing is taken on trust that only the kernel's path ensures.
 */
static int set_attr_flags(fuse_req_t req, fuse_ino_t ino, int64_t flags)
{
	if (flags < 0)
		return (int)flags;
	if (!caller_owns(req, ino))
		return -EPERM;
	int rc = fs_set_attr_flags(FS(req), ino, (uint32_t)flags,
				   caller_capable(req, CAP_LINUX_IMMUTABLE));
	/* the kernel keeps the attributes it cached across the ioctl: the
	 * change time moved */
	if (rc == 0)
		fuse_lowlevel_notify_inval_inode(FS(req)->session, ino, -1, 0);
	return rc;
}

/* an ioctl that returns VALUE of SIZE bytes, into a caller's buffer of
 * OUT_BUFSZ */
static void reply_ioctl_value(fuse_req_t req, const void *value, size_t size,
			      size_t out_bufsz)
{
	if (out_bufsz < size)
		fuse_reply_err(req, EINVAL);
	else
		fuse_reply_ioctl(req, 0, value, size);
}

/* an ioctl that returns nothing but its result */
static void reply_ioctl_result(fuse_req_t req, int rc)
{
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_ioctl(req, 0, NULL, 0);
}

static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd,
		     void *arg, struct fuse_file_info *fi, unsigned flags,
		     const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct kmfs_fs *fs = FS(req);

	if (flags & FUSE_IOCTL_COMPAT) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	switch (cmd) {
	case KMEMFS_IOC_CLONE_RANGE: {
		const struct kmemfs_clone_range *cr = in_buf;
		fuse_ino_t src;
		ssize_t n;
		int rc;

		if (in_bufsz < sizeof(*cr)) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		if (!fi || ((int)fi->fh & O_ACCMODE) == O_RDONLY) {
			fuse_reply_err(req, EBADF);
			return;
		}
		int held = clone_source(req, cr->src_fd, &src);
		/* a clone changes the target's data as a write does: the same
		 * privileges come off as the kernel's file_remove_privs takes
		 * (setuid/setgid unless the caller has CAP_FSETID, security.capability
		 * always) */
		rc = held < 0 ? held : fs_may_change_data(fs, ino, true);
		if (rc == 0)
			rc = kill_suidgid_unless_capable(req, ino);
		if (rc == 0)
			rc = privs_killed(req, ino, fs_kill_capability(fs, ino));
		if (rc < 0) {
			if (held >= 0)
				close(held);
			fuse_reply_err(req, -rc);
			return;
		}
		n = fs_clone(fs, src, cr->src_offset, ino, cr->dest_offset,
			     cr->src_length ? cr->src_length : UINT64_MAX / 4,
			     true);
		/* sends no FLUSH (set_open_reply); a RELEASE, if this was the
		 * last reference, is queued without waiting */
		close(held);
		if (n < 0) {
			fuse_reply_err(req, (int)-n);
			return;
		}
		/* the kernel cached the old bytes of the target: drop them.
		 * That can wait on a request that needs the pages the clone
		 * freed, so they are made allocatable first. */
		pages_release_deferred(&fs->pages);
		fuse_lowlevel_notify_inval_inode(fs->session, ino,
						 (off_t)cr->dest_offset, n);
		fuse_reply_ioctl(req, 0, NULL, 0);
		return;
	}
	case KMEMFS_IOC_STAT: {
		struct kmemfs_stat ks;
		struct pages_stats ps;
		struct statvfs sv;

		pages_stats(&fs->pages, &ps);
		fs_statfs(fs, &sv);
		memset(&ks, 0, sizeof(ks));
		ks.version = KMEMFS_IOCTL_VERSION;
		ks.page_size = KMFS_PAGE_SIZE;
		ks.total_pages = ps.total_pages;
		ks.used_pages = ps.used_pages;
		ks.shared_pages = ps.shared_pages;
		ks.free_pages = ps.free_pages;
		ks.lent_pages = ps.lent_pages;
		ks.units_lent = ps.units_lent_total;
		ks.units_reclaimed = ps.units_reclaimed_total;
		ks.reclaim_failures = ps.reclaim_failures;
		ks.lend_ns = ps.lend_ns;
		ks.reclaim_ns = ps.reclaim_ns;
		ks.requests_ring = wire_requests(true);
		ks.requests_dev = wire_requests(false);
		ks.opens_direct = atomic_load(&opens[1]);
		ks.opens_cached = atomic_load(&opens[0]);
		ks.pages_released = ps.pages_released_total;
		ks.requests_polled = wire_requests_polled();
		ks.meta_bytes_total = sv.f_files * 512;
		ks.meta_bytes_used = (sv.f_files - sv.f_ffree) * 512;
		reply_ioctl_value(req, &ks, sizeof(ks), out_bufsz);
		return;
	}
	case FS_IOC_GETFLAGS: { /* the kernel's fileattr_get asks with an int */
		int flags = (int)fs_attr_flags(fs, ino);

		reply_ioctl_value(req, &flags, sizeof(flags), out_bufsz);
		return;
	}
	case FS_IOC_SETFLAGS: {
		int flags;
		int rc = -EINVAL;

		if (in_bufsz >= sizeof(flags)) {
			memcpy(&flags, in_buf, sizeof(flags));
			rc = set_attr_flags(req, ino, (int64_t)(uint32_t)flags);
		}
		reply_ioctl_result(req, rc);
		return;
	}
	case FS_IOC_GETVERSION: { /* an int, as ext4 writes (lsattr -v reads one) */
		int gen = (int)fs_generation(fs, ino);

		reply_ioctl_value(req, &gen, sizeof(gen), out_bufsz);
		return;
	}
	case FS_IOC_FSGETXATTR: {
		struct fsxattr fa = { .fsx_xflags = flags_to_xflags(fs_attr_flags(fs, ino)) };

		reply_ioctl_value(req, &fa, sizeof(fa), out_bufsz);
		return;
	}
	case FS_IOC_FSSETXATTR: {
		struct fsxattr fa;
		int rc = -EINVAL;

		if (in_bufsz >= sizeof(fa)) {
			memcpy(&fa, in_buf, sizeof(fa));
			rc = set_attr_flags(req, ino, xflags_to_flags(&fa));
		}
		reply_ioctl_result(req, rc);
		return;
	}
	default:
		fuse_reply_err(req, ENOTTY);
	}
}

const struct fuse_lowlevel_ops kmemfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.open = op_open,
	.create = op_create,
	.release = op_release,
	/* no .flush: nothing to flush, and ENOSYS once spares a round trip on
	 * every close() */
	/* no .fsync/.fsyncdir: data and metadata are persistent when a write or
	 * change returns, and ENOSYS once makes the kernel stop asking */
	.read = op_read,
	.write_buf = op_write_buf,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.ioctl = op_ioctl,
	.copy_file_range = op_copy_file_range,
};
