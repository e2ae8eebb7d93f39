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

#include "clock.h"
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

/* progress (log.h): one piece of work at a time, before the daemon serves */
static enum log_progress_mode progress_mode = LOG_PROGRESS_TTY;
static int progress_fd = STDERR_FILENO;
static char progress_what[256];
static const char *progress_phase;
static uint64_t progress_start, progress_last, progress_ticks;
static bool progress_on;       /* between begin and end */
static bool progress_rewrite;  /* a terminal: one line, rewritten */
static atomic_bool progress_shown; /* that line is there, to clear */

#define PROGRESS_DELAY_NS 1000000000ull  /* quiet for quick work */
#define PROGRESS_EVERY_NS 250000000ull

void log_set_progress(enum log_progress_mode mode)
{
	progress_mode = mode;
}

void log_progress_to(int fd)
{
	progress_fd = fd;
	if (fd < 0)
		progress_on = false;
}

void log_progress_begin(const char *what)
{
	progress_on = false;
	if (progress_mode == LOG_PROGRESS_OFF || atomic_load(&use_syslog))
		return;
	progress_rewrite = isatty(progress_fd);
	if (progress_mode == LOG_PROGRESS_TTY && !progress_rewrite)
		return;
	snprintf(progress_what, sizeof(progress_what), "%s", what);
	progress_phase = NULL;
	progress_start = mono_ns();
	progress_last = 0;
	progress_ticks = 0;
	progress_on = true;
}

void log_progress_clear(void)
{
	if (atomic_exchange(&progress_shown, false)) {
		ssize_t n = write(progress_fd, "\r\033[K", 4);
		(void)n; /* a progress line left standing is no error */
	}
}

void log_progress(const char *phase, uint64_t done, uint64_t total)
{
	bool new_phase = phase != progress_phase;
	uint64_t now;
	char line[512];

	if (!progress_on || (!new_phase && (++progress_ticks & 1023)))
		return;
	progress_phase = phase;
	now = mono_ns();
	if (progress_mode == LOG_PROGRESS_TTY && now - progress_start < PROGRESS_DELAY_NS)
		return;
	if (!new_phase && now - progress_last < PROGRESS_EVERY_NS)
		return;
	progress_last = now;
	if (total)
		snprintf(line, sizeof(line), "%s: %s: %s %llu of %llu (%u%%)", prog,
			 progress_what, phase, (unsigned long long)done,
			 (unsigned long long)total,
			 (unsigned)(done >= total ? 100 : 100.0 * (double)done / (double)total));
	else
		snprintf(line, sizeof(line), "%s: %s: %s %llu", prog, progress_what,
			 phase, (unsigned long long)done);
	if (progress_rewrite) {
		dprintf(progress_fd, "\r%s\033[K", line);
		atomic_store(&progress_shown, true);
	} else {
		dprintf(progress_fd, "%s\n", line);
	}
}

void log_progress_end(void)
{
	if (!progress_on)
		return;
	progress_on = false;
	log_progress_clear();
}

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
	log_progress_clear(); /* the message takes its line; progress comes back */
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
