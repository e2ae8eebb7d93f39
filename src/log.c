// SPDX-License-Identifier: BSD-3-Clause
/* log.c -- "prog: message" on stderr, or syslog when daemonized. */
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>
#include <syslog.h>

#include "log.h"

static const char *prog = "kmemfs";
/* switched on by whichever thread sees the daemon started (main.c), while
 * others may log: set after the kernel log is open, read once per message */
static atomic_bool use_syslog;
static _Atomic int kmsg_fd = -1; /* daemonized with no syslog daemon: the kernel log */
static bool debug;

void log_set_prog(const char *p) { prog = p; }
void log_use_syslog(bool on)
{
	if (on) {
		if (access("/dev/log", W_OK) != 0)
			atomic_store(&kmsg_fd, open("/dev/kmsg", O_WRONLY | O_CLOEXEC));
		if (atomic_load(&kmsg_fd) < 0)
			openlog(prog, LOG_PID, LOG_DAEMON);
	}
	atomic_store(&use_syslog, on);
}
void log_set_debug(bool on) { debug = on; }

static void vlog(int prio, const char *fmt, va_list ap)
{
	bool to_syslog = atomic_load(&use_syslog);
	int kmsg = atomic_load(&kmsg_fd);

	if (to_syslog && kmsg >= 0) {
		char line[1024];
		int n = snprintf(line, sizeof(line), "<%d>%s[%d]: ", prio, prog,
				 (int)getpid());
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		/* a lost log line has nowhere better to go */
		ssize_t written = write(kmsg, line, strlen(line));
		(void)written;
		return;
	}
	if (to_syslog) {
		vsyslog(prio, fmt, ap);
		return;
	}
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void log_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;
	if (!debug)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

/*
 * log_bad_option -- one line for what getopt_long refused: C is '?' (unknown
 * option) or ':' (missing argument). The caller sets opterr = 0 and starts
 * its optstring with ':', so getopt itself prints nothing.
 */
void log_bad_option(char *const argv[], int c)
{
	const char *arg = argv[optind - 1];
	bool is_long = arg[0] == '-' && arg[1] == '-';

	if (c == ':' && is_long)
		log_err("option '%s' needs an argument (see --help)", arg);
	else if (c == ':')
		log_err("option '-%c' needs an argument (see --help)", optopt);
	else if (!is_long && optopt)
		log_err("unknown option '-%c' (see --help)", optopt);
	else
		log_err("unknown option '%s' (see --help)", arg);
}
