/*
 * fsprobe -- one system call (or a small fixed sequence) per invocation, for the
 * integration scripts: the shell cannot reach renameat2 flags, SEEK_DATA, exact
 * errnos, nanosecond timestamps and friends.
 *
 * Usage: fsprobe OP ARGS...   (fsprobe help lists the ops)
 * Success: exit 0, op-specific output on stdout.
 * Syscall failure: "errno=ENAME" on stdout (last line), exit 1.
 * Logical failure (a multi-step op found wrong data): message on stderr, exit 2.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "kmemfs/ioctl.h"

/* returned by an op when the data, not a syscall, was wrong */
#define LOGICAL_FAIL (-1)

static int fail(const char *fmt, const char *a)
{
	fprintf(stderr, "fsprobe: ");
	fprintf(stderr, fmt, a);
	fprintf(stderr, "\n");
	return LOGICAL_FAIL;
}

static long long num(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno || *end) {
		fprintf(stderr, "fsprobe: bad number '%s'\n", s);
		exit(3);
	}
	return v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* write all of buf or return the errno */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static void print_stat(const struct stat *st)
{
	printf("ino=%" PRIu64 " mode=%o nlink=%" PRIu64 " uid=%u gid=%u size=%" PRId64
	       " blocks=%" PRId64 " rdev=%u:%u atime=%" PRId64 ".%09ld mtime=%" PRId64
	       ".%09ld ctime=%" PRId64 ".%09ld\n",
	       (uint64_t)st->st_ino, st->st_mode, (uint64_t)st->st_nlink, st->st_uid,
	       st->st_gid, (int64_t)st->st_size, (int64_t)st->st_blocks,
	       major(st->st_rdev), minor(st->st_rdev), (int64_t)st->st_atim.tv_sec,
	       st->st_atim.tv_nsec, (int64_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec,
	       (int64_t)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
}

static int op_stat(char **a)
{
	struct stat st;

	if (stat(a[0], &st))
		return errno;
	print_stat(&st);
	return 0;
}

static int op_lstat(char **a)
{
	struct stat st;

	if (lstat(a[0], &st))
		return errno;
	print_stat(&st);
	return 0;
}

/* "rdonly,creat,excl" -> open flags */
static int parse_oflags(const char *s)
{
	static const struct { const char *name; int flag; } tab[] = {
		{ "rdonly", O_RDONLY }, { "wronly", O_WRONLY }, { "rdwr", O_RDWR },
		{ "creat", O_CREAT }, { "excl", O_EXCL }, { "trunc", O_TRUNC },
		{ "append", O_APPEND }, { "directory", O_DIRECTORY },
		{ "nofollow", O_NOFOLLOW }, { "noatime", O_NOATIME },
		{ "sync", O_SYNC }, { "dsync", O_DSYNC }, { "direct", O_DIRECT },
	};
	char buf[256], *tok, *save;
	int flags = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t i;
		for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
			if (!strcmp(tok, tab[i].name))
				break;
		if (i == sizeof(tab) / sizeof(tab[0])) {
			fprintf(stderr, "fsprobe: unknown open flag '%s'\n", tok);
			exit(3);
		}
		flags |= tab[i].flag;
	}
	return flags;
}

static int op_open(char **a)
{
	int fd = open(a[0], parse_oflags(a[1]), a[2] ? (mode_t)num(a[2]) : 0644);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/* read the whole file to stdout, opened with open flags FLAGS (O_RDONLY) */
static int read_flags(const char *path, int flags)
{
	char buf[65536];
	ssize_t n;
	int fd = open(path, flags);

	if (fd < 0)
		return errno;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, stdout);
	if (n < 0) {
		n = errno;
		close(fd);
		return n;
	}
	close(fd);
	return 0;
}

static int op_read(char **a)
{
	return read_flags(a[0], O_RDONLY);
}

/* the same, with FLAGS as for open (noatime, direct, ...) */
static int op_readf(char **a)
{
	return read_flags(a[0], parse_oflags(a[1]));
}

/*
 * readatime PATH N [buffered]: N times, set the access time to 1000 s, read a page
 * O_DIRECT (or, buffered, after dropping the cached pages) and stat at once; prints
 * how many stats still saw the old time: the kernel drops its cached
 * access time when a read returns, so the new one must be there by then
 */
static int op_readatime(char **a)
{
	const struct timespec old[2] = { { 1000, 0 }, { 0, UTIME_OMIT } };
	long n = num(a[1]), stale = 0;
	void *buf;
	int rc = 0;

	if (posix_memalign(&buf, 4096, 4096))
		return ENOMEM;
	for (long i = 0; i < n && !rc; i++) {
		struct stat st;
		int fd;

		if (utimensat(AT_FDCWD, a[0], old, 0) ||
		    (fd = open(a[0], O_RDONLY | (a[2] ? 0 : O_DIRECT))) < 0) {
			rc = errno;
			break;
		}
		if (a[2])
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		if (pread(fd, buf, 4096, 0) < 0 || fstat(fd, &st))
			rc = errno;
		else if (st.st_atime <= 1000)
			stale++;
		close(fd);
	}
	free(buf);
	if (!rc)
		printf("%ld\n", stale);
	return rc;
}

/* pwrite PATH OFFSET STRING [sync|dsync]: create if missing, never truncate */
static int op_pwrite(char **a)
{
	size_t len = strlen(a[2]);
	int fd = open(a[0], O_WRONLY | O_CREAT, 0644);
	int rc = 0;

	if (fd < 0)
		return errno;
	if (pwrite(fd, a[2], len, num(a[1])) != (ssize_t)len)
		rc = errno ? errno : EIO;
	else if (a[3] && !strcmp(a[3], "sync") && fsync(fd))
		rc = errno;
	else if (a[3] && !strcmp(a[3], "dsync") && fdatasync(fd))
		rc = errno;
	if (close(fd) && !rc)
		rc = errno;
	return rc;
}

/* pread PATH OFFSET LEN: raw bytes to stdout (short at EOF) */
static int op_pread(char **a)
{
	size_t len = num(a[2]);
	char *buf = malloc(len ? len : 1);
	ssize_t n;
	int fd = open(a[0], O_RDONLY);

	if (fd < 0)
		return errno;
	n = pread(fd, buf, len, num(a[1]));
	if (n < 0) {
		n = errno;
		close(fd);
		return n;
	}
	fwrite(buf, 1, n, stdout);
	free(buf);
	close(fd);
	return 0;
}

/* append PATH STRING: O_APPEND, seek to 0 first, write; print the offset after */
static int op_append(char **a)
{
	int fd = open(a[0], O_WRONLY | O_APPEND);
	int rc;

	if (fd < 0)
		return errno;
	lseek(fd, 0, SEEK_SET);
	rc = write_all(fd, a[1], strlen(a[1]));
	if (!rc)
		printf("pos=%lld\n", (long long)lseek(fd, 0, SEEK_CUR));
	close(fd);
	return rc;
}

/* pwrite_append PATH OFFSET STRING: pwrite on an O_APPEND fd (Linux appends) */
static int op_pwrite_append(char **a)
{
	size_t len = strlen(a[2]);
	int fd = open(a[0], O_WRONLY | O_APPEND);
	int rc = 0;

	if (fd < 0)
		return errno;
	if (pwrite(fd, a[2], len, num(a[1])) != (ssize_t)len)
		rc = errno ? errno : EIO;
	close(fd);
	return rc;
}

static int op_truncate(char **a)
{
	return truncate(a[0], num(a[1])) ? errno : 0;
}

/* seek PATH data|hole OFFSET: print the resulting offset */
static int op_seek(char **a)
{
	int whence = !strcmp(a[1], "data") ? SEEK_DATA : SEEK_HOLE;
	int fd = open(a[0], O_RDONLY);
	off_t off;

	if (fd < 0)
		return errno;
	off = lseek(fd, num(a[2]), whence);
	if (off < 0) {
		int e = errno;
		close(fd);
		return e;
	}
	printf("%lld\n", (long long)off);
	close(fd);
	return 0;
}

/* falloc PATH 0|keep|punch|zero|zerokeep OFFSET LEN */
static int op_falloc(char **a)
{
	int mode = 0;
	int fd, rc = 0;

	if (!strcmp(a[1], "keep"))
		mode = FALLOC_FL_KEEP_SIZE;
	else if (!strcmp(a[1], "punch"))
		mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	else if (!strcmp(a[1], "zero"))
		mode = FALLOC_FL_ZERO_RANGE;
	else if (!strcmp(a[1], "zerokeep"))
		mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	else if (strcmp(a[1], "0"))
		return fail("unknown fallocate mode %s", a[1]);
	fd = open(a[0], O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		return errno;
	if (fallocate(fd, mode, num(a[2]), num(a[3])))
		rc = errno;
	close(fd);
	return rc;
}

/* handle PATH: name_to_handle_at's file handle: TYPE:HEXBYTES */
static int op_handle(char **a)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} h;
	int mount_id;

	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(AT_FDCWD, a[0], &h.fh, &mount_id, 0))
		return errno;
	printf("%d:", h.fh.handle_type);
	for (unsigned i = 0; i < h.fh.handle_bytes; i++)
		printf("%02x", (unsigned char)h.fh.f_handle[i]);
	printf("\n");
	return 0;
}

/* openhandle MOUNTDIR TYPE:HEXBYTES: open_by_handle_at (read-only), then
 * the inode number and the first line of the file */
static int op_openhandle(char **a)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
	} h;
	const char *hex = strchr(a[1], ':');
	char line[256] = "";
	int mfd, fd, rc = 0;
	struct stat st;
	ssize_t n;

	if (!hex)
		return fail("handle %s: no TYPE:", a[1]);
	h.fh.handle_type = atoi(a[1]);
	h.fh.handle_bytes = 0;
	for (hex++; hex[0] && hex[1] && h.fh.handle_bytes < MAX_HANDLE_SZ; hex += 2)
		if (sscanf(hex, "%2hhx", (unsigned char *)&h.fh.f_handle[h.fh.handle_bytes++]) != 1)
			return fail("handle %s: bad hex", a[1]);
	mfd = open(a[0], O_RDONLY | O_DIRECTORY);
	if (mfd < 0)
		return errno;
	fd = open_by_handle_at(mfd, &h.fh, O_RDONLY);
	if (fd < 0) {
		rc = errno;
		close(mfd);
		return rc;
	}
	if (fstat(fd, &st))
		rc = errno;
	else if ((n = pread(fd, line, sizeof(line) - 1, 0)) < 0)
		rc = S_ISDIR(st.st_mode) ? 0 : errno;
	if (rc == 0) {
		line[strcspn(line, "\n")] = 0;
		printf("ino=%llu %s\n", (unsigned long long)st.st_ino, line);
	}
	close(fd);
	close(mfd);
	return rc;
}

/* getflags PATH: the attribute flags (FS_IOC_GETFLAGS), in hex */
static int op_getflags(char **a)
{
	int fd = open(a[0], O_RDONLY | O_NONBLOCK), flags, rc = 0;

	if (fd < 0)
		return errno;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags))
		rc = errno;
	else
		printf("%#x\n", (unsigned)flags);
	close(fd);
	return rc;
}

/* setflags PATH HEX: FS_IOC_SETFLAGS on a read-only descriptor, as chattr */
static int op_setflags(char **a)
{
	int flags = (int)strtoul(a[1], NULL, 16), rc = 0;
	int fd = open(a[0], O_RDONLY | O_NONBLOCK);

	if (fd < 0)
		return errno;
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags))
		rc = errno;
	close(fd);
	return rc;
}

/* fsxflags PATH [HEX]: FS_IOC_FSGETXATTR's xflags in hex, or set them
 * through FS_IOC_FSSETXATTR (xfs_io's chattr) */
static int op_fsxflags(char **a)
{
	int fd = open(a[0], O_RDONLY | O_NONBLOCK), rc = 0;
	struct fsxattr fa;

	if (fd < 0)
		return errno;
	if (ioctl(fd, FS_IOC_FSGETXATTR, &fa))
		rc = errno;
	else if (!a[1])
		printf("%#x\n", fa.fsx_xflags);
	else {
		fa.fsx_xflags = (unsigned)strtoul(a[1], NULL, 16);
		if (ioctl(fd, FS_IOC_FSSETXATTR, &fa))
			rc = errno;
	}
	close(fd);
	return rc;
}

/*
 * heldchange PATH HEX write|punch|alloc OFFSET LEN: through a descriptor
 * opened O_RDWR|O_APPEND before the flags HEX are set on the file, try a
 * change: a write of LEN bytes at OFFSET with O_APPEND taken off first (as
 * fcntl may on a kernel that does not know the file is append-only), or a
 * fallocate. Prints nothing; the errno is the first step's that failed.
 * The flags are cleared again at the end.
 */
static int op_heldchange(char **a)
{
	int flags = (int)strtoul(a[1], NULL, 16), rc = 0, none = 0;
	long long off = num(a[3]), len = num(a[4]);
	int fd = open(a[0], O_RDWR | O_APPEND);

	if (fd < 0)
		return errno;
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags)) {
		rc = fail("setting the flags: %s", strerror(errno));
		close(fd);
		return rc;
	}
	if (!strcmp(a[2], "write")) {
		char *buf = calloc(1, (size_t)len + 1);

		if (fcntl(fd, F_SETFL, 0) || pwrite(fd, buf, (size_t)len, off) < 0)
			rc = errno;
		free(buf);
	} else if (!strcmp(a[2], "punch")) {
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len))
			rc = errno;
	} else if (!strcmp(a[2], "alloc")) {
		if (fallocate(fd, 0, off, len))
			rc = errno;
	} else {
		rc = fail("unknown change %s", a[2]);
	}
	if (ioctl(fd, FS_IOC_SETFLAGS, &none) && rc == 0)
		rc = fail("clearing the flags: %s", strerror(errno));
	close(fd);
	return rc;
}

/* cfr SRC OFF_IN DST OFF_OUT LEN: copy_file_range until LEN or EOF; print bytes */
static int op_cfr(char **a)
{
	loff_t in_off = num(a[1]), out_off = num(a[3]);
	long long left = num(a[4]), total = 0;
	int in = open(a[0], O_RDONLY | (a[5] && !strcmp(a[5], "noatime") ? O_NOATIME : 0));
	int out = open(a[2], O_WRONLY | O_CREAT, 0644);
	int rc = 0;

	if (in < 0 || out < 0)
		return errno;
	while (left > 0) {
		ssize_t n = copy_file_range(in, &in_off, out, &out_off, left, 0);
		if (n < 0) {
			rc = errno;
			break;
		}
		if (n == 0)
			break;
		left -= n;
		total += n;
	}
	if (!rc)
		printf("%lld\n", total);
	close(in);
	if (close(out) && !rc)
		rc = errno;
	return rc;
}

/* kmemfs's clone ioctl: DST (existing) shares all of SRC's pages */
static int op_kclone(char **a)
{
	struct kmemfs_clone_range cr = { 0 };
	int in = open(a[0], O_RDONLY);
	int out = open(a[1], O_WRONLY);
	int rc = 0;

	if (in < 0 || out < 0)
		return errno;
	cr.src_fd = in;
	if (ioctl(out, KMEMFS_IOC_CLONE_RANGE, &cr) != 0)
		rc = errno;
	close(in);
	if (close(out) && !rc)
		rc = errno;
	return rc;
}

/* timespec from "SEC NSEC" where NSEC may be now or omit */
static struct timespec ts_arg(const char *sec, const char *nsec)
{
	struct timespec ts = { 0, 0 };

	if (!strcmp(nsec, "now"))
		ts.tv_nsec = UTIME_NOW;
	else if (!strcmp(nsec, "omit"))
		ts.tv_nsec = UTIME_OMIT;
	else {
		ts.tv_sec = num(sec);
		ts.tv_nsec = num(nsec);
	}
	return ts;
}

/* utimens PATH ASEC ANSEC MSEC MNSEC [nofollow] */
static int op_utimens(char **a)
{
	struct timespec ts[2] = { ts_arg(a[1], a[2]), ts_arg(a[3], a[4]) };
	int flags = a[5] && !strcmp(a[5], "nofollow") ? AT_SYMLINK_NOFOLLOW : 0;

	return utimensat(AT_FDCWD, a[0], ts, flags) ? errno : 0;
}

/* mknod PATH fifo|chr|blk|sock|reg MODE [MAJOR MINOR] */
static int op_mknod(char **a)
{
	mode_t type;
	dev_t dev = 0;

	if (!strcmp(a[1], "fifo"))
		type = S_IFIFO;
	else if (!strcmp(a[1], "chr"))
		type = S_IFCHR;
	else if (!strcmp(a[1], "blk"))
		type = S_IFBLK;
	else if (!strcmp(a[1], "sock"))
		type = S_IFSOCK;
	else if (!strcmp(a[1], "reg"))
		type = S_IFREG;
	else
		return fail("unknown node type %s", a[1]);
	if (a[3] && a[4])
		dev = makedev(num(a[3]), num(a[4]));
	return mknod(a[0], type | (mode_t)num(a[2]), dev) ? errno : 0;
}

/* rename2 OLD NEW none|noreplace|exchange|whiteout */
static int op_rename2(char **a)
{
	unsigned int flags = 0;

	if (!strcmp(a[2], "noreplace"))
		flags = RENAME_NOREPLACE;
	else if (!strcmp(a[2], "exchange"))
		flags = RENAME_EXCHANGE;
	else if (!strcmp(a[2], "whiteout"))
		flags = RENAME_WHITEOUT;
	else if (strcmp(a[2], "none"))
		return fail("unknown rename flag %s", a[2]);
	return renameat2(AT_FDCWD, a[0], AT_FDCWD, a[1], flags) ? errno : 0;
}

static int op_unlink(char **a) { return unlink(a[0]) ? errno : 0; }
static int op_rmdir(char **a) { return rmdir(a[0]) ? errno : 0; }
static int op_mkdir(char **a) { return mkdir(a[0], num(a[1])) ? errno : 0; }
static int op_link(char **a) { return link(a[0], a[1]) ? errno : 0; }
static int op_symlink(char **a) { return symlink(a[0], a[1]) ? errno : 0; }
static int op_chmod(char **a) { return chmod(a[0], num(a[1])) ? errno : 0; }
static int op_chown(char **a) { return chown(a[0], num(a[1]), num(a[2])) ? errno : 0; }
static int op_lchown(char **a) { return lchown(a[0], num(a[1]), num(a[2])) ? errno : 0; }
static int op_access(char **a)
{
	int mode = 0;

	if (strchr(a[1], 'r'))
		mode |= R_OK;
	if (strchr(a[1], 'w'))
		mode |= W_OK;
	if (strchr(a[1], 'x'))
		mode |= X_OK;
	return access(a[0], mode) ? errno : 0;
}

static int op_readlink(char **a)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlink(a[0], buf, PATH_MAX);

	if (n < 0)
		return errno;
	printf("%.*s\n", (int)n, buf);
	return 0;
}

/* setxattr PATH NAME VALUE [create|replace]; lsetxattr semantics are not needed */
static int op_setxattr(char **a)
{
	int flags = 0;

	if (a[3] && !strcmp(a[3], "create"))
		flags = XATTR_CREATE;
	else if (a[3] && !strcmp(a[3], "replace"))
		flags = XATTR_REPLACE;
	return setxattr(a[0], a[1], a[2], strlen(a[2]), flags) ? errno : 0;
}

/* getxattr PATH NAME [SIZE]: print the value, or its length when SIZE is 0 */
static int op_getxattr(char **a)
{
	size_t size = a[2] ? (size_t)num(a[2]) : 65536;
	char *buf = malloc(size ? size : 1);
	ssize_t n = getxattr(a[0], a[1], size ? buf : NULL, size);

	if (n < 0) {
		free(buf);
		return errno;
	}
	if (size == 0)
		printf("%zd\n", n);
	else
		printf("%.*s\n", (int)n, buf);
	free(buf);
	return 0;
}

/* listxattr PATH [SIZE]: names one per line, or the list length when SIZE is 0 */
static int op_listxattr(char **a)
{
	size_t size = a[1] ? (size_t)num(a[1]) : 65536;
	char *buf = malloc(size ? size : 1);
	ssize_t n = listxattr(a[0], size ? buf : NULL, size);

	if (n < 0) {
		free(buf);
		return errno;
	}
	if (size == 0)
		printf("%zd\n", n);
	else
		for (char *p = buf; p < buf + n; p += strlen(p) + 1)
			printf("%s\n", p);
	free(buf);
	return 0;
}

static int op_removexattr(char **a) { return removexattr(a[0], a[1]) ? errno : 0; }

static int op_fsync_common(const char *path, bool data)
{
	int fd = open(path, O_RDONLY);
	int rc = 0;

	if (fd < 0)
		return errno;
	if (data ? fdatasync(fd) : fsync(fd))
		rc = errno;
	close(fd);
	return rc;
}

/* mmapwrite PATH LEN: make PATH LEN bytes long, fill it through a shared
 * mapping, msync: the error of its writeback, if any */
static int op_mmapwrite(char **a)
{
	size_t len = (size_t)num(a[1]);
	int fd = open(a[0], O_RDWR | O_CREAT, 0644), rc = 0;
	char *m;

	if (fd < 0)
		return errno;
	if (ftruncate(fd, (off_t)len)) {
		rc = errno;
		close(fd);
		return rc;
	}
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		rc = errno;
		close(fd);
		return rc;
	}
	memset(m, 0xab, len);
	if (msync(m, len, MS_SYNC))
		rc = errno;
	munmap(m, len);
	if (close(fd) && !rc)
		rc = errno;
	return rc;
}

static int op_fsync(char **a) { return op_fsync_common(a[0], false); }
static int op_fdatasync(char **a) { return op_fsync_common(a[0], true); }

static int op_statfs(char **a)
{
	struct statfs s;

	if (statfs(a[0], &s))
		return errno;
	printf("bsize=%ld frsize=%ld blocks=%llu bfree=%llu bavail=%llu files=%llu ffree=%llu namelen=%ld\n",
	       (long)s.f_bsize, (long)s.f_frsize, (unsigned long long)s.f_blocks,
	       (unsigned long long)s.f_bfree, (unsigned long long)s.f_bavail,
	       (unsigned long long)s.f_files, (unsigned long long)s.f_ffree, (long)s.f_namelen);
	return 0;
}

/*
 * fill PATH CHUNK_KIB: write a pattern until a write fails; print written=N.
 * Returns the errno that stopped it (close/fsync errors count too).
 */
static int op_fill(char **a)
{
	size_t chunk = num(a[1]) * 1024;
	char *buf = malloc(chunk);
	long long written = 0;
	int fd, rc = 0;

	memset(buf, 0x5a, chunk);
	fd = open(a[0], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return errno;
	for (;;) {
		ssize_t n = write(fd, buf, chunk);
		if (n < 0) {
			rc = errno;
			break;
		}
		written += n;
		if ((size_t)n < chunk) {
			/* a short write means the next one reports why */
			continue;
		}
	}
	if (fsync(fd) && !rc)
		rc = errno;
	if (close(fd) && !rc)
		rc = errno;
	printf("written=%lld\n", written);
	free(buf);
	return rc;
}

/*
 * fillfiles DIR SIZE MAX: create files of SIZE bytes until one fails or MAX exist;
 * print files=N. Returns the errno that stopped it.
 */
static int op_fillfiles(char **a)
{
	size_t size = num(a[1]);
	long max = num(a[2]), n;
	char *buf = calloc(1, size ? size : 1);
	char path[PATH_MAX];
	int rc = 0;

	memset(buf, 'x', size);
	for (n = 0; n < max && !rc; n++) {
		int fd;
		snprintf(path, sizeof(path), "%s/s%07ld", a[0], n);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0) {
			rc = errno;
			break;
		}
		rc = write_all(fd, buf, size);
		if (close(fd) && !rc)
			rc = errno;
	}
	printf("files=%ld\n", n);
	free(buf);
	return rc;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* DIR + hex-encoded name -> path; exits on malformed hex */
static void hexpath(char *out, size_t outsz, const char *dir, const char *hex)
{
	size_t len = strlen(hex), off;

	if (len % 2) {
		fprintf(stderr, "fsprobe: odd hex length\n");
		exit(3);
	}
	off = snprintf(out, outsz, "%s/", dir);
	for (size_t i = 0; i < len; i += 2) {
		int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);
		if (hi < 0 || lo < 0 || off + 1 >= outsz) {
			fprintf(stderr, "fsprobe: bad hex name\n");
			exit(3);
		}
		out[off++] = (char)(hi << 4 | lo);
	}
	out[off] = 0;
}

/* mkname DIR HEX: create a file whose name is the decoded bytes */
static int op_mkname(char **a)
{
	char path[PATH_MAX * 2];
	int fd;

	hexpath(path, sizeof(path), a[0], a[1]);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int op_statname(char **a)
{
	char path[PATH_MAX * 2];
	struct stat st;

	hexpath(path, sizeof(path), a[0], a[1]);
	return lstat(path, &st) ? errno : 0;
}

static int op_unlinkname(char **a)
{
	char path[PATH_MAX * 2];

	hexpath(path, sizeof(path), a[0], a[1]);
	return unlink(path) ? errno : 0;
}

/* lsdirhex DIR: every entry except . and .. as lowercase hex, one per line */
static int op_lsdirhex(char **a)
{
	DIR *d = opendir(a[0]);
	struct dirent *de;

	if (!d)
		return errno;
	while ((errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		for (const unsigned char *p = (const unsigned char *)de->d_name; *p; p++)
			printf("%02x", *p);
		printf("\n");
	}
	if (errno) {
		int e = errno;
		closedir(d);
		return e;
	}
	closedir(d);
	return 0;
}

/* count entries of DIR other than . and ..; -1 with errno on failure */
static long count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	long n = 0;

	if (!d)
		return -1;
	while ((errno = 0, de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	if (errno) {
		int e = errno;
		closedir(d);
		errno = e;
		return -1;
	}
	closedir(d);
	return n;
}

/*
 * bigdir DIR N: create N empty files, stat each, count them with readdir, unlink
 * them all, check the directory is empty; print the time of each phase.
 */
static int op_bigdir(char **a)
{
	long n = num(a[1]), cnt;
	char path[PATH_MAX];
	double t0, t_create, t_lookup, t_readdir, t_unlink;
	struct stat st;

	t0 = now();
	for (long i = 0; i < n; i++) {
		int fd;
		snprintf(path, sizeof(path), "%s/entry-%07ld-with-a-longer-name", a[0], i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0) {
			fprintf(stderr, "fsprobe: create %s\n", path);
			return errno;
		}
		close(fd);
	}
	t_create = now() - t0;
	t0 = now();
	/* look the names up in a different order than they were made */
	for (long k = 0; k < n; k++) {
		long i = (k * 7919) % n;
		snprintf(path, sizeof(path), "%s/entry-%07ld-with-a-longer-name", a[0], i);
		if (stat(path, &st)) {
			fprintf(stderr, "fsprobe: lookup %s\n", path);
			return errno;
		}
	}
	t_lookup = now() - t0;
	t0 = now();
	cnt = count_entries(a[0]);
	if (cnt < 0)
		return errno;
	t_readdir = now() - t0;
	if (cnt != n) {
		fprintf(stderr, "fsprobe: readdir counted %ld entries, expected %ld\n", cnt, n);
		return LOGICAL_FAIL;
	}
	t0 = now();
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/entry-%07ld-with-a-longer-name", a[0], i);
		if (unlink(path)) {
			fprintf(stderr, "fsprobe: unlink %s\n", path);
			return errno;
		}
	}
	t_unlink = now() - t0;
	cnt = count_entries(a[0]);
	if (cnt != 0) {
		fprintf(stderr, "fsprobe: %ld entries left after unlinking all\n", cnt);
		return LOGICAL_FAIL;
	}
	printf("entries=%ld create=%.2fs lookup=%.2fs readdir=%.2fs unlink=%.2fs\n", n,
	       t_create, t_lookup, t_readdir, t_unlink);
	return 0;
}

/*
 * churn DIR N: with N "stable-*" files and N "victim-*" files present, read the
 * directory with getdents64 through a small buffer (many calls) while removing
 * victims and adding "new-*" files between calls. POSIX: every entry present for
 * the whole scan is returned exactly once; entries added or removed meanwhile may
 * or may not appear, but never twice, and no name that never existed may appear.
 * Three rounds, each with a fresh open of the directory.
 */
struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static int churn_mutate(const char *dir, int r, long n, long step)
{
	char path[PATH_MAX];
	int fd;

	/* step*37 mod n may repeat when n shares a factor with 37: ENOENT is fine */
	snprintf(path, sizeof(path), "%s/victim-%d-%06ld", dir, r, (step * 37) % n);
	if (unlink(path) && errno != ENOENT)
		return errno;
	snprintf(path, sizeof(path), "%s/new-%d-%06ld", dir, r, step);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int make_empty(const char *fmt, const char *dir, int r, long i)
{
	char path[PATH_MAX];
	int fd;

	if (r < 0)
		snprintf(path, sizeof(path), fmt, dir, i);
	else
		snprintf(path, sizeof(path), fmt, dir, r, i);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int op_churn(char **a)
{
	long n = num(a[1]);
	const int rounds = 3;
	char path[PATH_MAX];
	int rc;

	for (long i = 0; i < n; i++)
		if ((rc = make_empty("%s/stable-%06ld", a[0], -1, i)))
			return rc;
	for (int r = 0; r < rounds; r++) {
		char *seen = calloc(n, 1), *seen_victim = calloc(n, 1);
		char *seen_new = calloc((size_t)n * rounds, 1);
		char buf[1024];
		long step = 0, got;
		int fd;

		for (long i = 0; i < n; i++)
			if ((rc = make_empty("%s/victim-%d-%06ld", a[0], r, i)))
				return rc;
		fd = open(a[0], O_RDONLY | O_DIRECTORY);
		if (fd < 0)
			return errno;
		while ((got = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
			for (long off = 0; off < got;) {
				struct linux_dirent64 *de = (void *)(buf + off);
				const char *nm = de->d_name;
				long idx;
				int rr;

				off += de->d_reclen;
				if (!strcmp(nm, ".") || !strcmp(nm, ".."))
					continue;
				if (sscanf(nm, "stable-%ld", &idx) == 1 && idx >= 0 && idx < n) {
					if (seen[idx]++)
						return fail("%s returned twice", nm);
				} else if (sscanf(nm, "victim-%d-%ld", &rr, &idx) == 2 && rr == r &&
					   idx >= 0 && idx < n) {
					if (seen_victim[idx]++)
						return fail("%s returned twice", nm);
				} else if (sscanf(nm, "new-%d-%ld", &rr, &idx) == 2 && rr >= 0 &&
					   rr <= r && idx >= 0 && idx < n) {
					/* earlier rounds' new files are stable now */
					if (seen_new[(size_t)rr * n + idx]++)
						return fail("%s returned twice", nm);
				} else {
					return fail("unexpected entry '%s'", nm);
				}
			}
			if (step < n && (rc = churn_mutate(a[0], r, n, step)))
				return rc;
			step++;
		}
		if (got < 0)
			return errno;
		close(fd);
		for (long i = 0; i < n; i++) {
			if (!seen[i]) {
				snprintf(path, sizeof(path), "round %d: stable-%06ld never returned", r, i);
				return fail("%s", path);
			}
			for (int rr = 0; rr < r; rr++)
				if (!seen_new[(size_t)rr * n + i]) {
					snprintf(path, sizeof(path), "round %d: new-%d-%06ld never returned",
						 r, rr, i);
					return fail("%s", path);
				}
		}
		/* finish this round: all victims gone, N new files present */
		for (; step < n; step++)
			if ((rc = churn_mutate(a[0], r, n, step)))
				return rc;
		for (long i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/victim-%d-%06ld", a[0], r, i);
			if (unlink(path) && errno != ENOENT)
				return errno;
		}
		free(seen);
		free(seen_victim);
		free(seen_new);
	}
	{
		long expect = n + (long)rounds * n, cnt = count_entries(a[0]);
		if (cnt != expect) {
			fprintf(stderr, "fsprobe: final listing has %ld entries, expected %ld\n", cnt,
				expect);
			return LOGICAL_FAIL;
		}
	}
	printf("ok\n");
	return 0;
}

/*
 * patwrite PATH SIZE SEED: write SIZE bytes of a reproducible pattern, fsync;
 * patcheck PATH SIZE SEED: verify size and content.
 */
static void pattern(char *buf, size_t len, uint64_t pos, uint64_t seed)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t x = (pos + i) / 8 * 0x9e3779b97f4a7c15ull ^ seed;
		buf[i] = (char)(x >> (8 * ((pos + i) % 8)));
	}
}

/* SIZE pattern bytes into FD from its start, fsync'ed; 0 or the errno */
static int pattern_fill(int fd, long long size, uint64_t seed)
{
	long long pos = 0;
	char buf[65536];
	int rc = 0;

	while (pos < size && !rc) {
		size_t len = size - pos < (long long)sizeof(buf) ? (size_t)(size - pos) : sizeof(buf);
		pattern(buf, len, pos, seed);
		rc = write_all(fd, buf, len);
		pos += len;
	}
	if (!rc && fsync(fd))
		rc = errno;
	return rc;
}

static int op_patwrite(char **a)
{
	int fd = open(a[0], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int rc;

	if (fd < 0)
		return errno;
	rc = pattern_fill(fd, num(a[1]), num(a[2]));
	if (close(fd) && !rc)
		rc = errno;
	return rc;
}

/*
 * tmpfile DIR MODE SIZE SEED [LINKPATH|-] [excl|-] [hold]: open(DIR, O_TMPFILE)
 * (with O_EXCL: never to be linked), write SIZE pattern bytes and print its
 * fstat; with LINKPATH, name it there with linkat through /proc/self/fd and
 * print the fstat again; with hold, print "held" and wait to be killed with
 * the file still open.
 */
static int op_tmpfile(char **a)
{
	bool excl = a[4] && a[5] && !strcmp(a[5], "excl");
	int fd = open(a[0], O_TMPFILE | O_RDWR | (excl ? O_EXCL : 0), (mode_t)num(a[1]));
	struct stat st;
	char proc[64];
	int rc;

	if (fd < 0)
		return errno;
	rc = pattern_fill(fd, num(a[2]), num(a[3]));
	if (rc || fstat(fd, &st))
		return rc ? rc : errno;
	print_stat(&st);
	if (a[4] && strcmp(a[4], "-")) {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, a[4], AT_SYMLINK_FOLLOW) || fstat(fd, &st))
			return errno;
		print_stat(&st);
	}
	if (a[4] && a[5] && a[6] && !strcmp(a[6], "hold")) {
		printf("held\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	return close(fd) ? errno : 0;
}

static int op_patcheck(char **a)
{
	long long size = num(a[1]), pos = 0;
	uint64_t seed = num(a[2]);
	char buf[65536], want[65536];
	struct stat st;
	int fd = open(a[0], O_RDONLY);

	if (fd < 0)
		return errno;
	if (fstat(fd, &st))
		return errno;
	if (st.st_size != size) {
		fprintf(stderr, "fsprobe: %s: size %lld, expected %lld\n", a[0],
			(long long)st.st_size, size);
		close(fd);
		return LOGICAL_FAIL;
	}
	while (pos < size) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0) {
			close(fd);
			return n < 0 ? errno : fail("short read on %s", a[0]);
		}
		pattern(want, n, pos, seed);
		if (memcmp(buf, want, n)) {
			fprintf(stderr, "fsprobe: %s: wrong data near offset %lld\n", a[0], pos);
			close(fd);
			return LOGICAL_FAIL;
		}
		pos += n;
	}
	close(fd);
	return 0;
}

struct op {
	const char *name;
	int nargs; /* required; extra optional ones are allowed */
	int (*fn)(char **a);
	const char *usage;
};

static const struct op ops[] = {
	{ "stat", 1, op_stat, "PATH" },
	{ "lstat", 1, op_lstat, "PATH" },
	{ "open", 2, op_open, "PATH FLAGS[,FLAGS] [MODE]" },
	{ "read", 1, op_read, "PATH" },
	{ "readf", 2, op_readf, "PATH FLAGS[,FLAGS] (read, opened so)" },
	{ "readatime", 2, op_readatime, "PATH N [buffered] (stale access times after reads)" },
	{ "pwrite", 3, op_pwrite, "PATH OFFSET STRING [sync|dsync]" },
	{ "pread", 3, op_pread, "PATH OFFSET LEN" },
	{ "append", 2, op_append, "PATH STRING" },
	{ "pwrite_append", 3, op_pwrite_append, "PATH OFFSET STRING" },
	{ "truncate", 2, op_truncate, "PATH LEN" },
	{ "seek", 3, op_seek, "PATH data|hole OFFSET" },
	{ "falloc", 4, op_falloc, "PATH 0|keep|punch|zero|zerokeep OFFSET LEN" },
	{ "getflags", 1, op_getflags, "PATH (FS_IOC_GETFLAGS, hex)" },
	{ "handle", 1, op_handle, "PATH (name_to_handle_at: TYPE:HEX)" },
	{ "openhandle", 2, op_openhandle,
	  "MOUNTDIR TYPE:HEX (open_by_handle_at: ino=N FIRSTLINE)" },
	{ "setflags", 2, op_setflags, "PATH HEX (FS_IOC_SETFLAGS)" },
	{ "fsxflags", 1, op_fsxflags, "PATH [HEX] (FS_IOC_FS[GS]ETXATTR's xflags)" },
	{ "heldchange", 5, op_heldchange,
	  "PATH HEX write|punch|alloc OFFSET LEN (through a descriptor opened before the flags)" },
	{ "cfr", 5, op_cfr, "SRC OFF_IN DST OFF_OUT LEN [noatime]" },
	{ "kclone", 2, op_kclone, "SRC DST (kmemfs's clone ioctl)" },
	{ "utimens", 5, op_utimens, "PATH ASEC ANSEC|now|omit MSEC MNSEC|now|omit [nofollow]" },
	{ "mknod", 3, op_mknod, "PATH fifo|chr|blk|sock|reg MODE [MAJOR MINOR]" },
	{ "rename2", 3, op_rename2, "OLD NEW none|noreplace|exchange|whiteout" },
	{ "unlink", 1, op_unlink, "PATH" },
	{ "rmdir", 1, op_rmdir, "PATH" },
	{ "mkdir", 2, op_mkdir, "PATH MODE" },
	{ "link", 2, op_link, "OLD NEW" },
	{ "symlink", 2, op_symlink, "TARGET LINKPATH" },
	{ "readlink", 1, op_readlink, "PATH" },
	{ "chmod", 2, op_chmod, "PATH MODE" },
	{ "chown", 3, op_chown, "PATH UID GID" },
	{ "lchown", 3, op_lchown, "PATH UID GID" },
	{ "access", 2, op_access, "PATH [r][w][x]" },
	{ "setxattr", 3, op_setxattr, "PATH NAME VALUE [create|replace]" },
	{ "getxattr", 2, op_getxattr, "PATH NAME [SIZE]" },
	{ "listxattr", 1, op_listxattr, "PATH [SIZE]" },
	{ "removexattr", 2, op_removexattr, "PATH NAME" },
	{ "fsync", 1, op_fsync, "PATH" },
	{ "mmapwrite", 2, op_mmapwrite, "PATH LEN (through a shared mapping, then msync)" },
	{ "fdatasync", 1, op_fdatasync, "PATH" },
	{ "statfs", 1, op_statfs, "PATH" },
	{ "fill", 2, op_fill, "PATH CHUNK_KIB" },
	{ "fillfiles", 3, op_fillfiles, "DIR SIZE MAX" },
	{ "mkname", 2, op_mkname, "DIR HEXNAME" },
	{ "statname", 2, op_statname, "DIR HEXNAME" },
	{ "unlinkname", 2, op_unlinkname, "DIR HEXNAME" },
	{ "lsdirhex", 1, op_lsdirhex, "DIR" },
	{ "bigdir", 2, op_bigdir, "DIR N" },
	{ "churn", 2, op_churn, "DIR N" },
	{ "patwrite", 3, op_patwrite, "PATH SIZE SEED" },
	{ "patcheck", 3, op_patcheck, "PATH SIZE SEED" },
	{ "tmpfile", 4, op_tmpfile, "DIR MODE SIZE SEED [LINKPATH|-] [excl|-] [hold]" },
};

int main(int argc, char **argv)
{
	size_t i;
	int rc;

	if (argc < 2 || !strcmp(argv[1], "help")) {
		for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			printf("fsprobe %s %s\n", ops[i].name, ops[i].usage);
		return argc < 2 ? 3 : 0;
	}
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(argv[1], ops[i].name))
			break;
	if (i == sizeof(ops) / sizeof(ops[0])) {
		fprintf(stderr, "fsprobe: unknown op '%s'\n", argv[1]);
		return 3;
	}
	if (argc - 2 < ops[i].nargs) {
		fprintf(stderr, "usage: fsprobe %s %s\n", ops[i].name, ops[i].usage);
		return 3;
	}
	rc = ops[i].fn(argv + 2);
	fflush(stdout);
	if (rc == LOGICAL_FAIL)
		return 2;
	if (rc) {
		const char *name = strerrorname_np(rc);
		printf("errno=%s\n", name ? name : "UNKNOWN");
		return 1;
	}
	return 0;
}
