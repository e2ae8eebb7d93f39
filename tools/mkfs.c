// SPDX-License-Identifier: BSD-3-Clause
/* mkfs.kmemfs -- format a pool file or a devdax device. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pool.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: mkfs.kmemfs [--size SIZE] [--force] [--meta-percent N] PATH\n"
"\n"
"Format PATH (a pool file, created at SIZE when missing, or /dev/daxX.Y)\n"
"as an empty kmemfs. Refuses to overwrite an existing kmemfs or any\n"
"non-empty device or file without --force.\n"
"\n"
"  -s, --size SIZE        size of a new pool file (e.g. 1G; at least 64M)\n"
"  -f, --force            overwrite whatever PATH holds\n"
"  -m, --meta-percent N   share of the pool kept for metadata (default %d)\n"
"  -h, --help             this text\n"
"  -V, --version          version\n", POOL_DEFAULT_META_PCT);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },
		{ "meta-percent", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct pool_format_opts o = { .meta_pct = POOL_DEFAULT_META_PCT };
	int c;

	log_set_prog("mkfs.kmemfs");
	opterr = 0; /* one line of our own, not getopt's and the whole usage */
	while ((c = getopt_long(argc, argv, ":s:fm:hV", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
			/* 0 would read as "no --size" further down */
			if (parse_size(optarg, &o.size) < 0 || o.size == 0) {
				log_err("bad size '%s'", optarg);
				return 2;
			}
			break;
		case 'f':
			o.force = true;
			break;
		case 'm': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end || v < 1 || v > 90) {
				log_err("bad metadata percentage '%s' (1-90)", optarg);
				return 2;
			}
			o.meta_pct = (unsigned)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("mkfs.kmemfs %s (format %u.%u)\n", KMEMFS_VERSION,
			       KMFS_VERSION_MAJOR, KMFS_VERSION_MINOR);
			return 0;
		default:
			log_bad_option(argv, c);
			return 2;
		}
	}
	if (optind == argc) {
		usage(stderr);
		return 2;
	}
	if (optind != argc - 1) {
		log_err("unexpected argument '%s' (one PATH; see --help)",
			argv[optind + 1]);
		return 2;
	}
	if (pool_format(argv[optind], &o) < 0)
		return 1;
	printf("mkfs.kmemfs: formatted %s\n", argv[optind]);
	return 0;
}
