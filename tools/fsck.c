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
#include "log.h"
#include "pool.h"

/* exit codes as e2fsck */
enum { FSCK_OK = 0, FSCK_FIXED = 1, FSCK_ERRORS = 4, FSCK_OPERROR = 8,
       FSCK_USAGE = 16 };

static void usage(FILE *f)
{
	fprintf(f,
"usage: fsck.kmemfs [-n | -y | -p | -a] [-f] [-v] PATH\n"
"\n"
"Check the kmemfs pool at PATH (not mounted) and repair what is safe:\n"
"link counts, block counts, page reference counts, lent units holding\n"
"data, objects nothing refers to.\n"
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

int main(int argc, char **argv)
{
	struct check_opts o = { .repair = true, .max_print = 50 };
	struct check_result r;
	struct kmfs_pool pool;
	int c, rc;

	log_set_prog("fsck.kmemfs");
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	opterr = 0; /* one line of our own, not getopt's and the whole usage */
	while ((c = getopt_long(argc, argv, ":nypafvhV", lopts, NULL)) != -1) {
		switch (c) {
		case 'n': o.repair = false; break;
		case 'y': case 'p': case 'a': o.repair = true; break;
		case 'f': break;
		case 'v': o.verbose = true; break;
		case 'h': usage(stdout); return FSCK_OK;
		case 'V':
			printf("fsck.kmemfs %s (format %u.%u)\n", KMEMFS_VERSION,
			       KMFS_VERSION_MAJOR, KMFS_VERSION_MINOR);
			return FSCK_OK;
		default: log_bad_option(argv, c); return FSCK_USAGE;
		}
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
	/* a daemon that was just unmounted may still be closing the pool */
	for (int tries = 0; ; tries++) {
		if (via_kmod)
			rc = pool_open_kmod(argv[optind], &pool, true);
		else if (!o.repair)
			rc = pool_open_private(argv[optind], &pool, tries < 50);
		else
			rc = pool_open_quiet(argv[optind], &pool, tries < 50);
		if ((rc != -EWOULDBLOCK && rc != -EAGAIN) || tries >= 50)
			break;
		usleep(100 * 1000);
	}
	if (rc == -EUCLEAN)
		return FSCK_ERRORS; /* superblock beyond repair; reason printed */
	if (rc < 0)
		return FSCK_OPERROR;
	printf("fsck.kmemfs: checking %s\n", argv[optind]);
	rc = check_pool(&pool, &o, &r);
	if (rc < 0) {
		log_err("cannot check: %s", strerror(-rc));
		pool_close(&pool);
		return FSCK_OPERROR;
	}
	if (pool.sb->mounted_pid && o.repair) {
		/* the last daemon died: the pool is consistent, say so */
		pool.sb->mounted_pid = 0;
		pool.sb->flags &= ~KMFS_SF_DIRTY;
		pool_persist(&pool, pool.sb, sizeof(*pool.sb));
	}
	printf("fsck.kmemfs: %llu inodes (%llu files, %llu directories), "
	       "%llu extents, %llu pages in use, %llu orphans pending\n",
	       (unsigned long long)r.inodes, (unsigned long long)r.files,
	       (unsigned long long)r.dirs, (unsigned long long)r.extents,
	       (unsigned long long)r.pages_used, (unsigned long long)r.orphans);
	pool_close(&pool);
	if (r.errors == 0) {
		printf("fsck.kmemfs: clean\n");
		return FSCK_OK;
	}
	if (r.fatal || r.fixed < r.errors) {
		printf("fsck.kmemfs: %llu errors, %llu corrected, %llu left\n",
		       (unsigned long long)r.errors, (unsigned long long)r.fixed,
		       (unsigned long long)(r.errors - r.fixed));
		return FSCK_ERRORS;
	}
	printf("fsck.kmemfs: %llu errors corrected\n", (unsigned long long)r.errors);
	return FSCK_FIXED;
}
