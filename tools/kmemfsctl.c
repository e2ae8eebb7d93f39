// SPDX-License-Identifier: BSD-3-Clause
/* kmemfsctl -- talk to a mounted kmemfs: figures (and clones, later). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kmemfs/ioctl.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: kmemfsctl stat MOUNTPOINT [--json]\n"
"\n"
"  stat   pages used by files, shared pages, free, lent to the host or\n"
"         kernel, lending counters, and the pool's metadata use\n");
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
		printf("{\"page_size\": %u, \"total_pages\": %llu, \"file_pages\": %llu, "
		       "\"shared_pages\": %llu, \"free_pages\": %llu, \"lent_pages\": %llu, "
		       "\"units_lent\": %llu, \"units_reclaimed\": %llu, "
		       "\"reclaim_failures\": %llu, \"meta_bytes_total\": %llu, "
		       "\"meta_bytes_used\": %llu}\n", s.page_size,
		       (unsigned long long)s.total_pages, (unsigned long long)s.used_pages,
		       (unsigned long long)s.shared_pages, (unsigned long long)s.free_pages,
		       (unsigned long long)s.lent_pages, (unsigned long long)s.units_lent,
		       (unsigned long long)s.units_reclaimed,
		       (unsigned long long)s.reclaim_failures,
		       (unsigned long long)s.meta_bytes_total,
		       (unsigned long long)s.meta_bytes_used);
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
	printf("%-22s %12llu\n", "units lent", (unsigned long long)s.units_lent);
	printf("%-22s %12llu\n", "units reclaimed", (unsigned long long)s.units_reclaimed);
	printf("%-22s %12llu\n", "reclaim failures", (unsigned long long)s.reclaim_failures);
	printf("%-22s %12.1f of %.1f MiB\n", "metadata",
	       s.meta_bytes_used / 1048576.0, s.meta_bytes_total / 1048576.0);
	return 0;
}

int main(int argc, char **argv)
{
	int json = 0;

	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "stat")) {
		if (argc == 4 && !strcmp(argv[3], "--json"))
			json = 1;
		else if (argc != 3) {
			usage(stderr);
			return 2;
		}
		return cmd_stat(argv[2], json);
	}
	usage(stderr);
	return 2;
}
