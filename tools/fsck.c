// SPDX-License-Identifier: BSD-3-Clause
/* fsck.kmemfs -- check and repair a kmemfs pool offline. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "upgrade.h"
#include "log.h"
#include "pool.h"

/* exit codes as e2fsck */
enum { FSCK_OK = 0, FSCK_FIXED = 1, FSCK_ERRORS = 4, FSCK_OPERROR = 8,
       FSCK_USAGE = 16 };

static void usage(FILE *f)
{
	fprintf(f,
"usage: fsck.kmemfs [-n | -y | -p | -a] [-f] [-v] [--progress] [--upgrade] PATH\n"
"\n"
"Check the kmemfs pool at PATH (not mounted) and repair it: link counts,\n"
"block counts, page reference counts, lent units holding data, objects\n"
"nothing refers to. A broken extent map or xattr set is dropped (the file\n"
"stays, empty); a broken directory is rebuilt from its sound entries; a\n"
"symlink whose target is lost is removed; files and directories that no\n"
"directory names any more are named in /lost+found as #INODE. The pool is\n"
"checked again after repairs until a check finds nothing.\n"
"\n"
"  -n              check only: nothing is written to a pool file (it is\n"
"                  mapped copy-on-write; the check sees what a mount would,\n"
"                  interrupted transactions undone). On a devdax device\n"
"                  libpmemobj still undoes those and notes the open in its\n"
"                  header. Either way PATH must be writable by the caller:\n"
"                  libpmemobj opens it read-write and locks it\n"
"  -y              repair (the default; -p and -a are accepted as synonyms)\n"
"  -f              accepted for fsck(8); every check is a full one\n"
"  -v              print every finding\n"
"  --progress      report progress on stderr from the start (on a terminal\n"
"                  it is shown anyway once a check takes over a second)\n"
"  --upgrade       after a check that leaves no error, bring a pool of an\n"
"                  older format to this kmemfs's format (3.0), after which\n"
"                  older kmemfs no longer mount it. From 2.x: fallocated\n"
"                  ranges no write has reached stay holes for SEEK_DATA\n"
"                  and SEEK_HOLE (fallocate on 2.x stores zeroes as data).\n"
"                  From 1.x also: directory names hashed under a secret\n"
"                  key, so that users who list a directory cannot make\n"
"                  names collide; every directory's readdir offsets\n"
"                  change. Safe to interrupt and run again; a directory it\n"
"                  cannot rehash (metadata space: it needs its entries\n"
"                  twice) keeps its old hash, exit status 8\n"
"  -h, --help      this text\n"
"  -V, --version   version\n"
"\n"
"Exit status: 0 clean, 1 errors corrected, 4 errors left,\n"
"8 operational error (cannot open), 16 usage error.\n");
}

/* Is PATH a devdax device unbound from device_dax while kmemfs.ko is loaded? */
static bool attached_to_kmod(const char *path)
{
	char sys[PATH_MAX];
	const char *base = strrchr(path, '/');
	struct stat st;

	base = base ? base + 1 : path;
	if (stat(path, &st) != 0 || !S_ISCHR(st.st_mode) || strncmp(base, "dax", 3))
		return false;
	snprintf(sys, sizeof(sys), "/sys/bus/dax/devices/%s/driver", base);
	return access(sys, F_OK) != 0 && media_kmod_available();
}

/* opens of the pool a repair may take before it must have settled */
#define FSCK_ROUNDS 10

/* open PATH (through kmemfs.ko, copy-on-write when not REPAIR, else for
 * writing); a daemon just unmounted may still be closing it */
static int open_pool(const char *path, bool via_kmod, bool repair,
		     struct kmfs_pool *pool)
{
	int rc;

	for (int tries = 0; ; tries++) {
		if (via_kmod)
			rc = pool_open_kmod(path, pool, true);
		else if (!repair)
			rc = pool_open_private(path, pool, tries < 50);
		else
			rc = pool_open_quiet(path, pool, tries < 50);
		if ((rc != -EWOULDBLOCK && rc != -EAGAIN) || tries >= 50)
			return rc;
		usleep(100 * 1000);
	}
}

/*
 * Open PATH, check it (repairing when O says), print the counts and
 * close it. Returns 0, -EUCLEAN (damaged beyond repair, said), or another
 * -errno (cannot open or check, said).
 */
static int check_once(const char *path, bool via_kmod, const struct check_opts *o,
		      bool again, struct check_result *r)
{
	struct kmfs_pool pool;
	int rc;

	log_progress_begin(path); /* from the open: it walks the heap too */
	rc = open_pool(path, via_kmod, o->repair, &pool);
	if (rc < 0) {
		log_progress_end();
		return rc;
	}
	log_progress_clear();
	if (again)
		printf("fsck.kmemfs: checking again after the repairs\n");
	else
		printf("fsck.kmemfs: checking %s\n", path);
	fflush(stdout); /* before the findings, on stderr */
	rc = check_pool(&pool, o, r);
	log_progress_end();
	if (rc < 0) {
		log_err("cannot check: %s", strerror(-rc));
		pool_close(&pool);
		return rc == -EUCLEAN ? -EIO : rc;
	}
	if (pool.sb->mounted_pid && o->repair) {
		/* the last daemon died: the pool is consistent, say so */
		pool.sb->mounted_pid = 0;
		pool.sb->flags &= ~KMFS_SF_DIRTY;
		pool_persist(&pool, pool.sb, sizeof(*pool.sb));
	}
	pool_close(&pool);
	return 0;
}

/* --upgrade, on a pool just found sound; returns the exit status */
static int upgrade_pool(const char *path, bool via_kmod, int status)
{
	struct upgrade_result r;
	struct kmfs_pool pool;
	int rc = open_pool(path, via_kmod, true, &pool);

	if (rc < 0) {
		printf("fsck.kmemfs: not upgraded: the pool did not open again\n");
		return status | FSCK_OPERROR;
	}
	rc = pool_upgrade(&pool, &r);
	pool_close(&pool);
	if (rc < 0) {
		printf("fsck.kmemfs: not upgraded\n");
		return status | FSCK_OPERROR;
	}
	if (!r.keyed && !r.versioned && !r.rehashed && !r.failed) {
		printf("fsck.kmemfs: already format %u.x with every directory keyed: "
		       "nothing to upgrade\n", KMFS_VERSION_MAJOR);
		return status;
	}
	if (r.versioned)
		printf("fsck.kmemfs: upgraded to format %u.%u: fallocate keeps "
		       "unwritten ranges as holes\n", KMFS_VERSION_MAJOR,
		       KMFS_VERSION_MINOR);
	if (!r.keyed && !r.rehashed && !r.failed)
		return status;
	printf("fsck.kmemfs: %s format %u.%u: %llu directories rehashed with the "
	       "pool's key\n", r.keyed ? "upgraded to" : "went on upgrading to",
	       KMFS_VERSION_MAJOR, KMFS_VERSION_MINOR, (unsigned long long)r.rehashed);
	if (!r.failed)
		return status;
	/* the pool is sound: those keep their old hash (said why above) */
	printf("fsck.kmemfs: %llu directories stay unkeyed\n",
	       (unsigned long long)r.failed);
	return status | FSCK_OPERROR;
}

int main(int argc, char **argv)
{
	struct check_opts o = { .repair = true, .max_print = 50 };
	struct check_result r;
	bool said_n = false, upgrade = false;
	int c, rc, said_y = 0;

	log_set_prog("fsck.kmemfs");
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "upgrade", no_argument, NULL, 'U' },
		{ "progress", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	opterr = 0; /* one line of our own, not getopt's and the whole usage */
	while ((c = getopt_long(argc, argv, ":nypafvhV", lopts, NULL)) != -1) {
		switch (c) {
		case 'n': o.repair = false; said_n = true; break;
		case 'y': case 'p': case 'a': o.repair = true; said_y = c; break;
		case 'f': break;
		case 'v': o.verbose = true; break;
		case 'U': upgrade = true; break;
		case 'P': log_set_progress(LOG_PROGRESS_LINES); break;
		case 'h': usage(stdout); return FSCK_OK;
		case 'V':
			printf("fsck.kmemfs %s (format %u.%u)\n", KMEMFS_VERSION,
			       KMFS_VERSION_MAJOR, KMFS_VERSION_MINOR);
			return FSCK_OK;
		default: log_bad_option(argv, c); return FSCK_USAGE;
		}
	}
	if (said_n && said_y) {
		log_err("-n and -%c contradict each other: check only, or repair?", said_y);
		return FSCK_USAGE;
	}
	if (said_n && upgrade) {
		log_err("-n and --upgrade contradict each other: check only, or upgrade?");
		return FSCK_USAGE;
	}
	if (optind == argc) {
		usage(stderr);
		return FSCK_USAGE;
	}
	if (optind != argc - 1) {
		log_err("unexpected argument '%s' (one PATH; see --help)",
			argv[optind + 1]);
		return FSCK_USAGE;
	}
	/* a device a crashed daemon left attached to kmemfs.ko is read
	 * through the module (and given back to device_dax afterwards) */
	bool via_kmod = attached_to_kmod(argv[optind]);
	if (via_kmod)
		printf("fsck.kmemfs: %s is attached to kmemfs.ko; checking through it\n",
		       argv[optind]);
	rc = check_once(argv[optind], via_kmod, &o, false, &r);
	if (rc < 0)
		return rc == -EUCLEAN ? FSCK_ERRORS : FSCK_OPERROR;
	/*
	 * libpmemobj rebuilds its view of the heap at open: what repairs
	 * change can show there only then (objects a damaged run had hidden).
	 * So check again from a fresh open until a run finds nothing.
	 */
	uint64_t errors = r.errors;
	bool settled = r.errors == 0;
	for (int round = 2; o.repair && !settled && !r.fatal &&
	     (r.fixed == r.errors || r.unsettled) && round <= FSCK_ROUNDS; round++) {
		rc = check_once(argv[optind], via_kmod, &o, true, &r);
		if (rc < 0)
			return rc == -EUCLEAN ? FSCK_ERRORS : FSCK_OPERROR;
		errors += r.errors;
		settled = r.errors == 0 && !r.unsettled;
	}
	printf("fsck.kmemfs: %llu inodes (%llu files, %llu directories), "
	       "%llu extents, %llu pages in use, %llu orphans pending\n",
	       (unsigned long long)r.inodes, (unsigned long long)r.files,
	       (unsigned long long)r.dirs, (unsigned long long)r.extents,
	       (unsigned long long)r.pages_used, (unsigned long long)r.orphans);
	if (r.unkeyed && !upgrade)
		printf("fsck.kmemfs: %llu directories hash names without a secret key "
		       "(format 1): --upgrade keys them\n", (unsigned long long)r.unkeyed);
	if (errors == 0) {
		printf("fsck.kmemfs: clean\n");
		return upgrade ? upgrade_pool(argv[optind], via_kmod, FSCK_OK) : FSCK_OK;
	}
	/* left: what the last run found and did not fix (all of it when it
	 * fixed everything yet the runs never settled) */
	uint64_t left;
	if (!o.repair)
		left = errors;
	else if (r.fatal || (r.fixed < r.errors && !r.unsettled))
		left = r.errors > r.fixed ? r.errors - r.fixed : 1;
	else
		left = settled ? 0 : r.errors;
	if (left) {
		printf("fsck.kmemfs: %llu errors, %llu corrected, %llu left%s\n",
		       (unsigned long long)errors, (unsigned long long)(errors - left),
		       (unsigned long long)left, upgrade ? "; not upgraded" : "");
		return FSCK_ERRORS;
	}
	printf("fsck.kmemfs: %llu errors corrected\n", (unsigned long long)errors);
	return upgrade ? upgrade_pool(argv[optind], via_kmod, FSCK_FIXED) : FSCK_FIXED;
}
