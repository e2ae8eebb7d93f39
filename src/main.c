// SPDX-License-Identifier: BSD-3-Clause
/*
 * main.c -- kmemfs: options, mount, the session loop, clean unmount.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs.h"
#include "fuse_ops.h"
#include "log.h"
#include "loop.h"
#include "uring.h"
#include "wire.h"

struct options {
	const char *source;
	const char *mountpoint;
	char *size;
	char *reserve;
	char *lend_max;
	char *detach_timeout;
	char *readahead;
	char *max_threads;
	char *cache;
	char *poll;
	int nolend;
	int uring;
	int foreground;
	int debug;
	int ro;
	int noatime, nodiratime;
	int help;
	int version;
	char *max_read; /* kept for libfuse too: INIT must repeat it */
};

enum { KEY_HELP, KEY_VERSION, KEY_FG, KEY_DEBUG, KEY_RO, KEY_NOATIME, KEY_NODIRATIME,
       KEY_MAX_READ };

#define OPT(t, p) { t, offsetof(struct options, p), 1 }
static const struct fuse_opt spec[] = {
	/* fuse_opt applies every template that matches, and "--size %s" also
	 * takes "--size=64M" (as "=64M"): the "=" form must come after it */
	OPT("--size %s", size),
	OPT("--size=%s", size),
	OPT("reserve=%s", reserve),
	OPT("lend_max=%s", lend_max),
	OPT("detach_timeout=%s", detach_timeout),
	OPT("readahead=%s", readahead),
	OPT("max_threads=%s", max_threads),
	OPT("cache=%s", cache),
	OPT("poll=%s", poll),
	OPT("nolend", nolend),
	OPT("uring", uring),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FG),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("noatime", KEY_NOATIME),
	FUSE_OPT_KEY("nodiratime", KEY_NODIRATIME),
	FUSE_OPT_KEY("max_read=", KEY_MAX_READ),
	FUSE_OPT_END
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: kmemfs [-f] [-d] [-o OPTS] [--size SIZE] PATH MOUNTPOINT\n"
"\n"
"Mount the kmemfs pool at PATH (a pool file or /dev/daxX.Y) on MOUNTPOINT.\n"
"On /dev/daxX.Y with kmemfs.ko loaded, pages that hold no file data are\n"
"lent to the kernel as RAM while mounted.\n"
"\n"
"  --size SIZE      create and format a pool file of SIZE (e.g. 1G) when\n"
"                   PATH does not exist (an existing pool keeps its size)\n"
"  -f               stay in the foreground (else kmemfs returns once the\n"
"                   mount answers, and the daemon logs to syslog)\n"
"  -d               debug output (implies -f)\n"
"  -o OPTS          comma-separated mount options:\n"
"       ro                  read-only\n"
"       noatime             reads never change the access time (else\n"
"                           relatime, as Linux mounts by default)\n"
"       nodiratime          listing a directory never changes its access time\n"
"       allow_other         let other users in (permission checks apply)\n"
"       reserve=SIZE        free space kept unlent for fast growth (32M)\n"
"       lend_max=SIZE       lend at most SIZE (default: no limit)\n"
"       nolend              never lend free 4 MiB units (to the host, or\n"
"                           with kmemfs.ko loaded, to the kernel as RAM)\n"
"       detach_timeout=SECS with kmemfs.ko: at unmount, stop waiting for the\n"
"                           kernel to take the device's memory offline after\n"
"                           SECS and exit 1, the device left attached as\n"
"                           System RAM (default 0: wait until a signal)\n"
"       readahead=SIZE      how far the kernel reads ahead of a sequential\n"
"                           reader (1M: one request of max_write; the\n"
"                           kernel's own default is 128K)\n"
"       cache=MODE          which opens of a file bypass the kernel's page\n"
"                           cache (file data is in memory already):\n"
"                           auto: opens for writing (default); reads keep\n"
"                           it, for read-ahead; direct: all; page: none.\n"
"                           Bypassing needs Linux 6.6+ (mmap still works)\n"
"       poll=USEC           after its answer, a worker polls for the next\n"
"                           request for up to USEC microseconds (<= 1000)\n"
"                           before it sleeps, while requests come that fast\n"
"                           (default 0: never; never on one CPU): faster 4 KiB\n"
"                           I/O one request at a time, slower create/unlink,\n"
"                           a busy CPU meanwhile (README, \"Polling\")\n"
"       max_threads=N       at most N worker threads (16); one per CPU serve\n"
"                           requests, more start only while all are blocked;\n"
"                           with uring, also the most ring entries per CPU\n"
"                           (two, and spares while all are blocked; <= 16)\n"
"       uring               take requests through FUSE over io_uring when\n"
"                           the kernel offers it (Linux 6.14+, as root:\n"
"                           echo Y > /sys/module/fuse/parameters/enable_uring):\n"
"                           faster small requests, slower big reads; not\n"
"                           with kmemfs.ko (README, \"FUSE over io_uring\")\n"
"     and the standard FUSE options (fsname, ...).\n"
"  -h, --help       this text\n"
"  -V, --version    version\n"
"\n"
"Permission checks are always done by the kernel (default_permissions),\n"
"with POSIX ACLs. Unmount with: fusermount3 -u MOUNTPOINT (or SIGTERM).\n");
}

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct options *o = data;

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!o->source)
			o->source = arg;
		else if (!o->mountpoint)
			o->mountpoint = arg;
		else {
			log_err("unexpected argument '%s'", arg);
			return -1;
		}
		return 0;
	case KEY_HELP: o->help = 1; return 0;
	case KEY_VERSION: o->version = 1; return 0;
	case KEY_FG: o->foreground = 1; return 0;
	case KEY_DEBUG: o->debug = o->foreground = 1; return 1;
	case KEY_RO: o->ro = 1; return 1;
	case KEY_NOATIME: o->noatime = 1; return 1; /* the kernel's too */
	case KEY_NODIRATIME: o->nodiratime = 1; return 0; /* libfuse knows it not */
	case KEY_MAX_READ:
		/* libfuse passes it to the kernel, then refuses an INIT that
		 * does not ask for the same: keep it for fuse_ops.c too */
		free(o->max_read);
		o->max_read = strdup(arg + strlen("max_read="));
		return o->max_read ? 1 : -1;
	case FUSE_OPT_KEY_OPT:
		if (arg[0] == '-' && arg[1] == '-') {
			log_err("unknown option '%s' (see --help)", arg);
			return -1;
		}
		return 1;
	}
	return 1;
}

/*
 * libfuse's own error messages, held while mounting so that a failure is
 * one line with its cause ("cannot mount on M: mount failed: ..."); after
 * that, and at every other level, they go to stderr as libfuse's would.
 */
static char fuse_said[512];
static bool fuse_hold = true;

static void fuse_log_held(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char piece[256], *p = piece;
	size_t used = strlen(fuse_said);

	if (!fuse_hold || level > FUSE_LOG_ERR) {
		vfprintf(stderr, fmt, ap);
		return;
	}
	/* a message may come in pieces; it ends with a newline */
	vsnprintf(piece, sizeof(piece), fmt, ap);
	bool starts = used == 0 || fuse_said[used - 1] == '\n';
	if (starts && !strncmp(p, "fuse: ", 6))
		p += 6;
	if (starts && used)
		fuse_said[used - 1] = ';'; /* "first; second" */
	snprintf(fuse_said + used, sizeof(fuse_said) - used, "%s%s",
		 starts && used ? " " : "", p);
}

/* what libfuse said since the last call, or ALT */
static const char *fuse_told(const char *alt)
{
	static char told[sizeof(fuse_said)];
	size_t n = strlen(fuse_said);

	while (n && fuse_said[n - 1] == '\n')
		fuse_said[--n] = '\0';
	snprintf(told, sizeof(told), "%s", n ? fuse_said : alt);
	fuse_said[0] = '\0';
	return told;
}

/* ring entries (each its own thread) per CPU queue with FUSE over io_uring */
#define URING_PER_QUEUE 2

static volatile sig_atomic_t stop_signal;

static void note_stop(int sig)
{
	stop_signal = sig;
}

/*
 * interruptible_teardown -- once FUSE's handlers are gone, SIGINT, SIGTERM
 * and SIGHUP must not kill us silently: a detach stuck offlining memory
 * (media_detach) is stopped by the signal, and we say what was left behind.
 */
static void interruptible_teardown(void)
{
	struct sigaction sa = { .sa_handler = note_stop };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* parse_uint -- a decimal number from MIN to MAX, digits only */
static int parse_uint(const char *s, unsigned long min, unsigned long max,
		      unsigned int *out)
{
	unsigned long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return -ERANGE;
	}
	if (v < min)
		return -ERANGE;
	*out = (unsigned int)v;
	return 0;
}

/* The FUSE session as loop.c's request source; a slot is a struct fuse_buf. */
struct session {
	struct fuse_session *se;
	struct kmfs_fs *fs;
};

static int session_receive(void *arg, void *slot)
{
	return fuse_session_receive_buf(((struct session *)arg)->se, slot);
}

/*
 * Going to the background: the parent of the fork waits until the daemon's
 * FUSE handshake (INIT) has been answered, or the daemon ended, and exits
 * with the outcome, so that `kmemfs` fails when the mount does not come up
 * (libfuse's fuse_daemonize lets the parent exit 0 before INIT). Until then
 * the daemon keeps the user's stderr, so what went wrong is printed there.
 */
static _Atomic int start_pipe = -1; /* the daemon's end, until it has told */
static pid_t daemon_pid; /* in the waiting parent */

/* the waiting parent passes a stop on to the daemon (in its own session
 * now, out of reach of the terminal), and goes on waiting for its outcome */
static void pass_on_signal(int sig)
{
	kill(daemon_pid, sig);
}

static int go_background(void)
{
	static const int stops[] = { SIGINT, SIGTERM, SIGHUP };
	sigset_t block, old;
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
		sigaddset(&block, stops[i]);
	/* until the parent passes them on: none is lost in between */
	sigprocmask(SIG_BLOCK, &block, &old);
	pid = fork();
	if (pid < 0) {
		int e = errno;
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid > 0) {
		struct sigaction sa = { .sa_handler = pass_on_signal };
		unsigned char status = 1; /* the daemon ended without a word */

		daemon_pid = pid;
		sigemptyset(&sa.sa_mask);
		for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++)
			sigaction(stops[i], &sa, NULL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(p[1]);
		while (read(p[0], &status, 1) < 0 && errno == EINTR)
			;
		_exit(status);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(p[0]);
	if (setsid() < 0)
		log_debug("setsid: %s", strerror(errno));
	if (chdir("/") != 0)
		log_debug("chdir /: %s", strerror(errno));
	atomic_store(&start_pipe, p[1]);
	return 0;
}

/* Tell the waiting parent STATUS (0: mounted and answering), once. On
 * success the daemon lets go of the terminal: messages go to syslog. */
static void tell_parent(int status)
{
	int fd = atomic_exchange(&start_pipe, -1);
	unsigned char c = (unsigned char)status;

	if (fd < 0)
		return;
	if (status == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		log_use_syslog(true);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
			if (null > STDERR_FILENO)
				close(null);
		}
	}
	while (write(fd, &c, 1) < 0 && errno == EINTR)
		;
	close(fd);
}

/* the INIT answer is written (wire.c): on an error, end the session, which
 * main() reports; on success, the parent may go */
static void init_answered(void *arg, int error)
{
	struct fuse_session *se = arg;

	if (error)
		fuse_session_exit(se);
	else
		tell_parent(0);
}

/* pages a request frees are handed back after its reply is written */
static void session_process(void *arg, void *slot)
{
	struct session *s = arg;

	pages_defer_release(&s->fs->pages, true);
	fuse_session_process_buf(s->se, slot);
	pages_defer_release(&s->fs->pages, false);
}

static bool session_exited(void *arg)
{
	return fuse_session_exited(((struct session *)arg)->se) != 0;
}

static void session_slot_free(void *slot)
{
	free(((struct fuse_buf *)slot)->mem);
}

static const struct loop_ops session_loop_ops = {
	.receive = session_receive,
	.process = session_process,
	.exited = session_exited,
	.slot_free = session_slot_free,
	.slot_size = sizeof(struct fuse_buf),
};

/* Undo mountinfo's octal escapes (\\040 for a space) in place. */
static void unescape_mountinfo(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/*
 * find_mount_dev -- the device number of our own mount (the st_dev of its
 * files), from the last fuse.kmemfs line for MOUNTPOINT in mountinfo: a
 * stat of MOUNTPOINT would wait on this daemon, whose loop is not running
 * yet. The clone ioctl uses it to tell our files from others.
 */
static int find_mount_dev(const char *mountpoint, dev_t *dev)
{
	char line[2 * PATH_MAX], mpoint[PATH_MAX];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	unsigned maj, min;
	bool found = false;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mpoint) != 3)
			continue;
		unescape_mountinfo(mpoint);
		if (strcmp(mpoint, mountpoint) == 0 && strstr(line, " - fuse.kmemfs ")) {
			*dev = makedev(maj, min); /* the last one is ours */
			found = true;
		}
	}
	fclose(f);
	return found ? 0 : -ENOENT;
}

/*
 * set_readahead -- the FUSE superblock's backing device starts with the
 * kernel's 128 KiB read-ahead window, and the INIT reply can only lower it,
 * so this runs before the loop answers INIT (which then asks for the same).
 * Reads from the pool are cheap: page-cache readers gain from whole 1 MiB
 * requests (1.9-2.0 against 2.4-2.7 GiB/s, docs/performance.md). Only root
 * may write it.
 */
static int set_readahead(dev_t dev, uint64_t bytes)
{
	char path[64];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 major(dev), minor(dev));
	f = fopen(path, "w");
	if (!f)
		return -errno;
	if (fprintf(f, "%llu\n", (unsigned long long)(bytes >> 10)) < 0)
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* Is the pool at PATH (the same file) the source of a mounted kmemfs? */
static bool pool_is_mounted(const char *path)
{
	char line[2 * PATH_MAX], src[PATH_MAX];
	struct stat want, got;
	bool found = false;
	FILE *f;

	if (stat(path, &want) != 0 || !(f = fopen("/proc/self/mountinfo", "r")))
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *sep = strstr(line, " - fuse.kmemfs ");

		if (!sep)
			continue;
		sep += strlen(" - fuse.kmemfs ");
		/* kmemfs:SOURCE, or the user's own fsname (a path, if any) */
		if (strncmp(sep, "kmemfs:", 7) == 0)
			sep += 7;
		if (sscanf(sep, "%4095s", src) != 1)
			continue;
		unescape_mountinfo(src);
		found = stat(src, &got) == 0 && got.st_dev == want.st_dev &&
			got.st_ino == want.st_ino && got.st_rdev == want.st_rdev;
	}
	fclose(f);
	return found;
}

/*
 * wait_for_pool -- a kmemfs that was just unmounted holds its pool
 * (libpmemobj's flock) until it has closed it, and umount(8) does not wait
 * for that: an immediate remount would fail as "in use". So while PATH is
 * locked and no mount serves it, wait up to 10 s for the holder to let go.
 * A pool that is mounted fails at once, in fs_mount, as before.
 */
static void wait_for_pool(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < 100; i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			flock(fd, LOCK_UN);
			break;
		}
		if (errno != EWOULDBLOCK || pool_is_mounted(path))
			break;
		/* a daemon that was just unmounted lets go within about
		 * 0.2 s: only a longer wait is worth a word */
		if (i == 10)
			log_info("%s: held by a program that is not a mounted kmemfs "
				 "(one still closing it?): waiting up to 10 s", path);
		usleep(100 * 1000);
	}
	close(fd);
}

/* Is PATH already the root of a mount? */
static bool is_mount_point(const char *path)
{
	char parent[PATH_MAX];
	struct stat a, b;

	if (snprintf(parent, sizeof(parent), "%s/..", path) >= (int)sizeof(parent))
		return false;
	if (stat(path, &a) != 0 || stat(parent, &b) != 0)
		return false;
	return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

static int parse_cache(const char *s, enum fs_cache *out)
{
	static const char *const names[] = {
		[FS_CACHE_AUTO] = "auto",
		[FS_CACHE_PAGE] = "page",
		[FS_CACHE_DIRECT] = "direct",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum fs_cache)i;
			return 0;
		}
	return -1;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options o = {0};
	struct fs_opts fo = { .lend = true, .reserve = 32ull << 20 };
	struct fuse_session *se;
	struct session session;
	struct loop *loop;
	struct uring *uring = NULL;
	struct kmfs_fs *fs;
	char fsname[PATH_MAX + 64], abs_source[PATH_MAX];
	struct stat st;
	unsigned int detach_timeout = 0;
	uint64_t readahead = 1u << 20;
	unsigned int max_threads = 16;
	unsigned int poll_us = 0;
	unsigned int max_read = 0;
	enum fs_cache cache = FS_CACHE_AUTO;
	bool fs_mounted = false;
	int rc = 1;

	log_set_prog("kmemfs");
	fuse_set_log_func(fuse_log_held);
	if (fuse_opt_parse(&args, &o, spec, opt_proc) != 0) {
		if (fuse_said[0])
			log_err("%s", fuse_told(""));
		rc = 2;
		goto out_args;
	}
	if (o.help) {
		usage(stdout);
		rc = 0;
		goto out_args;
	}
	if (o.version) {
		printf("kmemfs %s (format %u.%u), FUSE %s\n", KMEMFS_VERSION,
		       KMFS_VERSION_MAJOR, KMFS_VERSION_MINOR, fuse_pkgversion());
		rc = 0;
		goto out_args;
	}
	if (!o.source || !o.mountpoint) {
		usage(stderr);
		rc = 2;
		goto out_args;
	}
	if (o.reserve && parse_size(o.reserve, &fo.reserve) < 0) {
		log_err("bad reserve size '%s'", o.reserve);
		rc = 2;
		goto out_args;
	}
	if (o.lend_max && parse_size(o.lend_max, &fo.lend_max) < 0) {
		log_err("bad lend_max size '%s'", o.lend_max);
		rc = 2;
		goto out_args;
	}
	if (o.detach_timeout && parse_uint(o.detach_timeout, 0, 366ul * 86400, &detach_timeout) < 0) {
		log_err("bad detach_timeout '%s' (whole seconds, 0 = no limit)",
			o.detach_timeout);
		rc = 2;
		goto out_args;
	}
	if (o.readahead && (parse_size(o.readahead, &readahead) < 0 ||
			    readahead > (1ull << 30))) {
		log_err("bad readahead size '%s' (0 to 1G)", o.readahead);
		rc = 2;
		goto out_args;
	}
	if (o.max_threads && parse_uint(o.max_threads, 1, 1024, &max_threads) < 0) {
		log_err("bad max_threads '%s' (1 to 1024)", o.max_threads);
		rc = 2;
		goto out_args;
	}
	if (o.cache && parse_cache(o.cache, &cache) < 0) {
		log_err("bad cache mode '%s' (auto, page or direct)", o.cache);
		rc = 2;
		goto out_args;
	}
	if (o.max_read && parse_uint(o.max_read, 4096, UINT32_MAX, &max_read) < 0) {
		log_err("bad max_read '%s' (a number of bytes, at least 4096)",
			o.max_read);
		rc = 2;
		goto out_args;
	}
	if (o.poll && parse_uint(o.poll, 0, 1000, &poll_us) < 0) {
		log_err("bad poll '%s' (0 to 1000 microseconds)", o.poll);
		rc = 2;
		goto out_args;
	}
	/* polling takes a CPU while the caller needs one */
	if (loop_cpus() >= 2)
		wire_poll_before_read(poll_us * 1000ull);
	else if (poll_us)
		log_info("poll=%u ignored: this process may run on one CPU only", poll_us);
	wire_want_direct_io(cache != FS_CACHE_PAGE);
	fo.lend = !o.nolend;
	fo.readonly = o.ro;
	if (stat(o.mountpoint, &st) != 0) {
		log_err("mount point %s: %s", o.mountpoint, strerror(errno));
		rc = 1;
		goto out_args;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_err("mount point %s: not a directory", o.mountpoint);
		rc = 1;
		goto out_args;
	}
	/* libfuse unmounts (SIGTERM, SIGINT) by the path it mounted, after the
	 * daemon has moved to /: a relative one would name another directory */
	static char mnt_abs[PATH_MAX];
	if (!realpath(o.mountpoint, mnt_abs)) {
		log_err("mount point %s: %s", o.mountpoint, strerror(errno));
		rc = 1;
		goto out_args;
	}
	o.mountpoint = mnt_abs;
	if (is_mount_point(o.mountpoint)) {
		log_err("mount point %s: busy (something is mounted there)",
			o.mountpoint);
		rc = 1;
		goto out_args;
	}
	/* the session first: it checks the -o options, and a bad one must
	 * fail before the pool is opened (opening writes pmemobj's header) */
	fs = calloc(1, sizeof(*fs));
	if (!fs) {
		log_err("out of memory");
		goto out_args;
	}
	/* an absolute source, so that pool_is_mounted finds it from anywhere */
	if (o.source[0] != '/' && getcwd(abs_source, sizeof(abs_source)) &&
	    strlen(abs_source) + strlen(o.source) + 2 <= sizeof(abs_source)) {
		strcat(abs_source, "/");
		strcat(abs_source, o.source);
	} else {
		snprintf(abs_source, sizeof(abs_source), "%s", o.source);
	}
	/* kmemfs:SOURCE names the mount unless the user's -o fsname= does
	 * (the last one given wins); subtype and permission checks are fixed */
	snprintf(fsname, sizeof(fsname), "-ofsname=kmemfs:%s", abs_source);
	if (fuse_opt_insert_arg(&args, 1, fsname) != 0 ||
	    fuse_opt_add_arg(&args, "-osubtype=kmemfs,default_permissions") != 0) {
		log_err("out of memory");
		free(fs);
		goto out_args;
	}
	se = fuse_session_new(&args, &kmemfs_ops, sizeof(kmemfs_ops), fs);
	if (!se) {
		log_err("%s", fuse_told("cannot start a FUSE session"));
		free(fs);
		rc = 2;
		goto out_args;
	}
	if (o.size) {
		struct pool_format_opts po = { .meta_pct = POOL_DEFAULT_META_PCT };
		if (parse_size(o.size, &po.size) < 0 || po.size == 0) {
			log_err("bad size '%s'", o.size);
			rc = 2;
			goto out_session;
		}
		if (access(o.source, F_OK) == 0) {
			/* never resized or formatted behind the user's back */
			log_info("%s exists: --size %s ignored", o.source, o.size);
		} else if (pool_format(o.source, &po) < 0) {
			rc = 1;
			goto out_session;
		} else {
			log_info("created %s (%s)", o.source, o.size);
		}
	}
	wait_for_pool(o.source);
	/*
	 * A pool file is checked through a private mapping first, and opened
	 * for writing only once the kernel has taken the mount: a mount that
	 * fails leaves it as it was. (Device DAX cannot be mapped privately.)
	 */
	struct stat pst, now;
	bool check_first = !o.ro && stat(o.source, &pst) == 0 && S_ISREG(pst.st_mode);
	struct fs_opts first = fo;
	first.readonly = first.readonly || check_first;
	log_progress_begin(o.source);
	bool mount_failed = fs_mount(fs, o.source, &first) < 0;
	log_progress_end();
	if (mount_failed) {
		rc = 1;
		goto out_session;
	}
	fs_mounted = true;
	if (fs->unkeyed_dirs) /* a format 1 pool, or an upgrade cut short */
		log_info("%s: %llu directories hash names without a secret key, so "
			 "users who list one can make names collide; "
			 "fsck.kmemfs --upgrade (unmounted) keys them", o.source,
			 (unsigned long long)fs->unkeyed_dirs);
	if (!pool_has_unwritten(&fs->pool))
		log_info("%s: format %u.%u: fallocate stores zeroes as data, which "
			 "SEEK_DATA finds; fsck.kmemfs --upgrade (unmounted) brings the "
			 "pool to format %u.%u", o.source, fs->pool.sb->major,
			 fs->pool.sb->minor, KMFS_VERSION_MAJOR, KMFS_VERSION_MINOR);
	if (fuse_set_signal_handlers(se) != 0) {
		log_err("%s", fuse_told("cannot set the signal handlers"));
		goto out_destroy;
	}
	if (fuse_session_mount(se, o.mountpoint) != 0) {
		log_err("cannot mount on %s: %s", o.mountpoint, fuse_told("refused"));
		goto out_signals;
	}
	/* mounted: what libfuse says from now on is printed as it comes */
	if (fuse_said[0])
		log_err("%s", fuse_told(""));
	fuse_hold = false;
	if (check_first) {
		/* requests wait for INIT, which the loop answers: none is lost */
		fs_unmount(fs);
		fs_mounted = false;
		/* the checks hold unless someone wrote the pool in between */
		fo.checked = stat(o.source, &now) == 0 && now.st_ino == pst.st_ino &&
			     now.st_size == pst.st_size &&
			     !memcmp(&now.st_mtim, &pst.st_mtim, sizeof(now.st_mtim)) &&
			     !memcmp(&now.st_ctim, &pst.st_ctim, sizeof(now.st_ctim));
		if (!fo.checked)
			log_info("%s changed while it was checked: checking it again", o.source);
		log_progress_begin(o.source);
		mount_failed = fs_mount(fs, o.source, &fo) < 0;
		log_progress_end();
		if (mount_failed)
			goto out_fuse_unmount;
		fs_mounted = true;
	}
	fs->pool.media.detach_timeout = detach_timeout;
	if (o.debug) {
		char desc[256];
		log_set_debug(true);
		media_describe(&fs->pool.media, desc, sizeof(desc));
		log_info("%s", desc);
	}
	if (wire_install(se) != 0) {
		log_err("cannot route FUSE requests through the protocol hooks");
		goto out_fuse_unmount;
	}
	fs->session = se;
	if (!realpath(o.mountpoint, fs->mountpoint))
		snprintf(fs->mountpoint, sizeof(fs->mountpoint), "%s", o.mountpoint);
	fs->readahead = (uint32_t)readahead;
	fs->max_read = max_read;
	fs->cache = cache;
	fs->noatime = o.noatime;
	fs->nodiratime = o.nodiratime;
	if ((rc = find_mount_dev(fs->mountpoint, &fs->mount_dev)) < 0) {
		/* mount_dev stays 0, which no file has: clones become copies */
		log_err("warning: %s not found in /proc/self/mountinfo (%s): cp will "
			"copy instead of clone, and read-ahead stays the kernel's",
			fs->mountpoint, strerror(-rc));
	} else if ((rc = set_readahead(fs->mount_dev, readahead)) < 0) {
		/* a user's mount keeps the kernel's window: no need to shout */
		if (o.readahead)
			log_err("cannot set readahead=%s: %s", o.readahead, strerror(-rc));
		else
			log_debug("cannot set the read-ahead window: %s", strerror(-rc));
	}
	/* said before daemonizing, so that the user sees it */
	if (o.uring && fs->pool.media.kind == MEDIA_KMOD) {
		/* a RECLAIM waits on pages the kernel keeps locked until a READ
		 * is answered: the ring's rescue would have to free it, and the
		 * VM rig's kernels (6.1, 6.12) cannot test that */
		log_err("-o uring: not with kmemfs.ko (untested: a page reclaim can wait on a "
			"request queued behind a blocked ring entry); using /dev/fuse");
		o.uring = 0;
	} else if (o.uring && !uring_kernel_offers()) {
		log_err("-o uring: this kernel does not offer FUSE over io_uring (Linux "
			"6.14+ with CONFIG_FUSE_IO_URING, and as root: echo Y > "
			"/sys/module/fuse/parameters/enable_uring); using /dev/fuse");
		o.uring = 0;
	} else if (o.uring && !uring_cpus_reachable()) {
		o.uring = 0;
	}
	rc = 1;
	if (!o.foreground) {
		int e = go_background();
		if (e < 0) {
			log_err("cannot go to the background: %s", strerror(-e));
			goto out_fuse_unmount;
		}
	}
	wire_on_init(init_answered, se);
	session.se = se;
	session.fs = fs;
	loop = loop_new(&session_loop_ops, &session, loop_base_workers(max_threads),
			max_threads);
	if (!loop) {
		log_err("out of memory");
		goto out_fuse_unmount;
	}
	/* rings for the kernel to take up at INIT (threads: after the fork) */
	if (o.uring)
		uring = uring_new(se, fs->mountpoint, URING_PER_QUEUE, max_threads);
	/* an unmount or a signal that asked us to stop is a clean exit */
	rc = loop_run(loop) < 0 ? 1 : 0;
	if (wire_init_error()) {
		log_err("the FUSE handshake with the kernel failed (%s): unmounted",
			strerror(wire_init_error()));
		rc = 1;
	}
	uring_stop(uring);
	loop_free(loop);
out_fuse_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	se = NULL;
	interruptible_teardown();
	if (fs_mounted)
		fs_unmount(fs);
	if (fs->pool.media.left_attached) {
		if (stop_signal)
			log_err("the detach was stopped by signal %d (%s)", (int)stop_signal,
				strsignal(stop_signal));
		rc = 1;
	}
out_session:
	if (se)
		fuse_session_destroy(se);
	free(fs);
out_args:
	fuse_opt_free_args(&args);
	/* the "%s" options are copies made by fuse_opt_parse */
	free(o.size);
	free(o.reserve);
	free(o.lend_max);
	free(o.detach_timeout);
	free(o.readahead);
	free(o.max_threads);
	free(o.cache);
	free(o.poll);
	free(o.max_read);
	/* ended before the handshake was answered: the parent exits with RC */
	tell_parent(rc ? rc : 1);
	return rc;
}
