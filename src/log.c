// SPDX-License-Identifier: BSD-3-Clause
/* log.c -- "prog: message" on stderr, or syslog when daemonized. */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "log.h"

static const char *prog = "kmemfs";
static bool use_syslog;
static bool debug;

void log_set_prog(const char *p) { prog = p; }
void log_use_syslog(bool on)
{
	use_syslog = on;
	if (on)
		openlog(prog, LOG_PID, LOG_DAEMON);
}
void log_set_debug(bool on) { debug = on; }

static void vlog(int prio, const char *fmt, va_list ap)
{
	if (use_syslog) {
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
