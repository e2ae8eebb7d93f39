// SPDX-License-Identifier: BSD-3-Clause
/* kmemfsctl -- talk to a mounted kmemfs: figures (and clones, later). */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kmemfs/ioctl.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: kmemfsctl stat MOUNTPOINT [--json]\n"
"       kmemfsctl clone SRC DST\n"
"       kmemfsctl snapshot SRCDIR DSTDIR\n"
"       kmemfsctl -h | --help | -V | --version\n"
"\n"
"  stat      pages used by files, shared pages, free, lent to the host or\n"
"            kernel, lending counters, FUSE requests by way in (io_uring\n"
"            or /dev/fuse), and the pool's metadata use\n"
"  clone     make DST a copy-on-write clone of file SRC (same kmemfs);\n"
"            fails rather than copying when pages cannot be shared;\n"
"            refuses to replace an existing DST\n"
"  snapshot  clone a whole tree: directories, files (cloned), symlinks,\n"
"            special files, owners, modes, times and xattrs; DSTDIR must\n"
"            not exist\n");
}

static int open_mount(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		fprintf(stderr, "kmemfsctl: %s: %s\n", path, strerror(errno));
	return fd;
}

static double mib(__u64 pages, __u32 psz)
{
	return (double)pages * psz / (1024.0 * 1024.0);
}

static int cmd_stat(const char *path, int json)
{
	struct kmemfs_stat s;
	int fd = open_mount(path);

	if (fd < 0)
		return 1;
	memset(&s, 0, sizeof(s));
	if (ioctl(fd, KMEMFS_IOC_STAT, &s) != 0) {
		fprintf(stderr, "kmemfsctl: %s: not a kmemfs mount (%s)\n", path,
			strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	if (s.version != KMEMFS_IOCTL_VERSION) {
		fprintf(stderr, "kmemfsctl: %s: daemon speaks ioctl version %u, "
			"this tool %u\n", path, s.version, KMEMFS_IOCTL_VERSION);
		return 1;
	}
	if (json) {
		printf("{\"page_size\": %u, \"total_pages\": %llu, \"used_pages\": %llu, "
		       "\"shared_pages\": %llu, \"free_pages\": %llu, \"lent_pages\": %llu, "
		       "\"units_lent\": %llu, \"units_reclaimed\": %llu, "
		       "\"reclaim_failures\": %llu, \"meta_bytes_total\": %llu, "
		       "\"meta_bytes_used\": %llu, \"lend_ns\": %llu, "
		       "\"reclaim_ns\": %llu, \"requests_ring\": %llu, "
		       "\"requests_dev\": %llu, \"opens_direct\": %llu, "
		       "\"opens_cached\": %llu, \"pages_released\": %llu, "
		       "\"requests_polled\": %llu}\n", s.page_size,
		       (unsigned long long)s.total_pages, (unsigned long long)s.used_pages,
		       (unsigned long long)s.shared_pages, (unsigned long long)s.free_pages,
		       (unsigned long long)s.lent_pages, (unsigned long long)s.units_lent,
		       (unsigned long long)s.units_reclaimed,
		       (unsigned long long)s.reclaim_failures,
		       (unsigned long long)s.meta_bytes_total,
		       (unsigned long long)s.meta_bytes_used,
		       (unsigned long long)s.lend_ns, (unsigned long long)s.reclaim_ns,
		       (unsigned long long)s.requests_ring,
		       (unsigned long long)s.requests_dev,
		       (unsigned long long)s.opens_direct,
		       (unsigned long long)s.opens_cached,
		       (unsigned long long)s.pages_released,
		       (unsigned long long)s.requests_polled);
		return 0;
	}
	printf("%-22s %12s %12s\n", "", "pages", "MiB");
#define ROW(name, v) printf("%-22s %12llu %12.1f\n", name, (unsigned long long)(v), mib(v, s.page_size))
	ROW("data total", s.total_pages);
	ROW("used by files", s.used_pages);
	ROW("  of which shared", s.shared_pages);
	ROW("free", s.free_pages);
	ROW("lent", s.lent_pages);
#undef ROW
	/* events, not a state: "lent" above is what is lent now */
	printf("since mount:\n");
	printf("%-22s %12llu\n", "  units lent", (unsigned long long)s.units_lent);
	printf("%-22s %12llu\n", "  units reclaimed", (unsigned long long)s.units_reclaimed);
	printf("%-22s %12llu\n", "  reclaim failures", (unsigned long long)s.reclaim_failures);
	printf("%-22s %12llu\n", "  pages handed back", (unsigned long long)s.pages_released);
	if (s.units_lent)
		printf("%-22s %12.1f us\n", "  mean lend time",
		       s.lend_ns / 1000.0 / (double)s.units_lent);
	if (s.units_reclaimed)
		printf("%-22s %12.1f us\n", "  mean reclaim time",
		       s.reclaim_ns / 1000.0 / (double)s.units_reclaimed);
	printf("%-22s %12llu\n", "  requests (io_uring)", (unsigned long long)s.requests_ring);
	printf("%-22s %12llu\n", "  requests (/dev/fuse)", (unsigned long long)s.requests_dev);
	printf("%-22s %12llu\n", "    taken by polling", (unsigned long long)s.requests_polled);
	printf("%-22s %12llu\n", "  opens, direct I/O", (unsigned long long)s.opens_direct);
	printf("%-22s %12llu\n", "  opens, page cache", (unsigned long long)s.opens_cached);
	printf("%-22s %12.1f of %.1f MiB\n", "metadata",
	       s.meta_bytes_used / 1048576.0, s.meta_bytes_total / 1048576.0);
	return 0;
}

/* clone_file -- DST (new) shares SRC's pages; keeps mode, owner, times */
static int clone_file(const char *src, const char *dst, const struct stat *st)
{
	struct kmemfs_clone_range cr = {0};
	struct timespec ts[2];
	int in, out, rc = 0;

	in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0) {
		fprintf(stderr, "kmemfsctl: %s: %s\n", src, strerror(errno));
		return 1;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 07777);
	if (out < 0) {
		fprintf(stderr, "kmemfsctl: %s: %s\n", dst, strerror(errno));
		close(in);
		return 1;
	}
	cr.src_fd = in;
	if (st->st_size && ioctl(out, KMEMFS_IOC_CLONE_RANGE, &cr) != 0) {
		fprintf(stderr, "kmemfsctl: clone %s -> %s: %s\n", src, dst,
			errno == EXDEV ? "not on the same kmemfs" :
			errno == ENOTTY ? "not a kmemfs" : strerror(errno));
		unlink(dst);
		rc = 1;
	}
	if (rc == 0) {
		if (fchown(out, st->st_uid, st->st_gid) != 0 && geteuid() == 0)
			rc = 1;
		fchmod(out, st->st_mode & 07777);
		ts[0] = st->st_atim;
		ts[1] = st->st_mtim;
		futimens(out, ts);
	}
	close(out);
	close(in);
	return rc;
}

static int copy_xattrs(const char *src, const char *dst)
{
	char names[65536], value[65536];
	ssize_t n = llistxattr(src, names, sizeof(names));

	for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(names + i) + 1) {
		ssize_t v = lgetxattr(src, names + i, value, sizeof(value));
		if (v >= 0 && lsetxattr(dst, names + i, value, (size_t)v, 0) != 0) {
			fprintf(stderr, "kmemfsctl: %s: xattr %s: %s\n", dst,
				names + i, strerror(errno));
			return 1;
		}
	}
	return 0;
}

static const char *snap_src, *snap_dst;
static int snap_errors;
static unsigned long snap_files;

static int snap_one(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	char dst[PATH_MAX], target[PATH_MAX];
	const char *rel = path + strlen(snap_src);
	ssize_t n;
	int rc = 0;

	if (snprintf(dst, sizeof(dst), "%s%s", snap_dst, rel) >= (int)sizeof(dst)) {
		fprintf(stderr, "kmemfsctl: %s: name too long\n", path);
		snap_errors++;
		return 0;
	}
	switch (st->st_mode & S_IFMT) {
	case S_IFDIR:
		if (mkdir(dst, 0700) != 0 && !(errno == EEXIST && ftw->level == 0))
			rc = 1;
		break;
	case S_IFREG:
		rc = clone_file(path, dst, st);
		snap_files++;
		if (snap_files % 1000 == 0 && isatty(STDERR_FILENO))
			fprintf(stderr, "\rkmemfsctl: %lu files cloned", snap_files);
		break;
	case S_IFLNK:
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			rc = 1;
		else {
			target[n] = 0;
			rc = symlink(target, dst) != 0;
		}
		break;
	default:
		rc = mknod(dst, st->st_mode, st->st_rdev) != 0;
	}
	if (rc) {
		/* clone_file has said why */
		if (!S_ISREG(st->st_mode) && errno)
			fprintf(stderr, "kmemfsctl: %s: %s\n", dst, strerror(errno));
		snap_errors++;
		return 0;
	}
	copy_xattrs(path, dst);
	lchown(dst, st->st_uid, st->st_gid);
	return 0;
}

/* Directory modes and times last: files created inside change them. */
static int snap_fix_dir(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	char dst[PATH_MAX];
	struct timespec ts[2] = { st->st_atim, st->st_mtim };

	if (!S_ISDIR(st->st_mode))
		return 0;
	snprintf(dst, sizeof(dst), "%s%s", snap_dst, path + strlen(snap_src));
	chmod(dst, st->st_mode & 07777);
	utimensat(AT_FDCWD, dst, ts, AT_SYMLINK_NOFOLLOW);
	return 0;
}

/* on_kmemfs -- does directory DIR answer kmemfs's ioctl? */
static bool on_kmemfs(const char *dir)
{
	struct kmemfs_stat s;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool yes;

	if (fd < 0)
		return false;
	memset(&s, 0, sizeof(s));
	yes = ioctl(fd, KMEMFS_IOC_STAT, &s) == 0;
	close(fd);
	return yes;
}

/* Would new path DST lie under directory SRC (a walk that never ends)? */
static bool inside(const char *src, const char *dst)
{
	char rs[PATH_MAX], parent[PATH_MAX], rp[PATH_MAX];
	size_t n;

	snprintf(parent, sizeof(parent), "%s", dst);
	if (!realpath(src, rs) || !realpath(dirname(parent), rp))
		return false;
	n = strlen(rs);
	return n == 1 || (!strncmp(rp, rs, n) && (rp[n] == '\0' || rp[n] == '/'));
}

static int cmd_snapshot(const char *src, const char *dst)
{
	char parent[PATH_MAX];
	struct stat st, pst;

	if (lstat(src, &st) != 0) {
		fprintf(stderr, "kmemfsctl: %s: %s\n", src, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "kmemfsctl: %s: not a directory\n", src);
		return 1;
	}
	if (access(dst, F_OK) == 0) {
		fprintf(stderr, "kmemfsctl: %s: exists; a snapshot makes a new tree\n", dst);
		return 1;
	}
	/* refuse before creating anything: a tree half made of failed clones
	 * helps nobody */
	if (!on_kmemfs(src)) {
		fprintf(stderr, "kmemfsctl: %s: not on a kmemfs\n", src);
		return 1;
	}
	snprintf(parent, sizeof(parent), "%s", dst);
	if (stat(dirname(parent), &pst) != 0) {
		fprintf(stderr, "kmemfsctl: %s: %s\n", parent, strerror(errno));
		return 1;
	}
	if (pst.st_dev != st.st_dev) {
		fprintf(stderr, "kmemfsctl: %s: not on the same kmemfs as %s\n",
			dst, src);
		return 1;
	}
	if (inside(src, dst)) {
		fprintf(stderr, "kmemfsctl: cannot snapshot %s into itself (%s)\n",
			src, dst);
		return 1;
	}
	snap_src = src;
	snap_dst = dst;
	if (nftw(src, snap_one, 64, FTW_PHYS) != 0 ||
	    nftw(src, snap_fix_dir, 64, FTW_PHYS | FTW_DEPTH) != 0) {
		fprintf(stderr, "kmemfsctl: walking %s: %s\n", src, strerror(errno));
		return 1;
	}
	if (isatty(STDERR_FILENO) && snap_files >= 1000)
		fputc('\n', stderr);
	printf("kmemfsctl: snapshot of %s at %s: %lu files cloned, %d errors\n",
	       src, dst, snap_files, snap_errors);
	return snap_errors ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc >= 2 ? argv[1] : NULL;

	if (!cmd) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		printf("kmemfsctl %s (ioctl version %u)\n", KMEMFS_VERSION,
		       KMEMFS_IOCTL_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "stat") &&
	    (argc == 3 || (argc == 4 && !strcmp(argv[3], "--json"))))
		return cmd_stat(argv[2], argc == 4);
	if (!strcmp(cmd, "stat") && argc == 4 && !strcmp(argv[2], "--json"))
		return cmd_stat(argv[3], true); /* the option first, as most tools allow */
	if (!strcmp(cmd, "clone") && argc == 4) {
		struct stat st;
		if (stat(argv[2], &st) != 0) {
			fprintf(stderr, "kmemfsctl: %s: %s\n", argv[2], strerror(errno));
			return 1;
		}
		if (!S_ISREG(st.st_mode)) {
			fprintf(stderr, "kmemfsctl: %s: not a regular file\n", argv[2]);
			return 1;
		}
		return clone_file(argv[2], argv[3], &st);
	}
	if (!strcmp(cmd, "snapshot") && argc == 4)
		return cmd_snapshot(argv[2], argv[3]);
	if (strcmp(cmd, "stat") && strcmp(cmd, "clone") && strcmp(cmd, "snapshot"))
		fprintf(stderr, "kmemfsctl: unknown command '%s' (see --help)\n", cmd);
	else
		fprintf(stderr, "kmemfsctl: %s: wrong arguments (see --help)\n", cmd);
	return 2;
}
