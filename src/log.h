/* SPDX-License-Identifier: BSD-3-Clause */
/* log.h -- one-line messages to stderr (or syslog once daemonized). */
#ifndef KMEMFS_LOG_H
#define KMEMFS_LOG_H

#include <stdbool.h>
#include <stdint.h>

void log_set_prog(const char *prog);
void log_use_syslog(bool on);
void log_set_debug(bool on);
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_bad_option(char *const argv[], int c);

/*
 * Progress of long work (checking a big pool): "prog: WHAT: PHASE DONE of
 * TOTAL (N%)", rewritten in place on a terminal once the work has taken a
 * second, at most four times a second; nothing when stderr is not a
 * terminal or the daemon logs to syslog. LOG_PROGRESS_LINES (fsck.kmemfs
 * --progress) prints from the start, and where stderr is no terminal, a
 * line each time.
 * log_progress() is cheap enough to call for every item: it looks at the
 * clock only every 1024 calls, or when PHASE changes.
 */
enum log_progress_mode { LOG_PROGRESS_TTY, LOG_PROGRESS_LINES, LOG_PROGRESS_OFF };
void log_set_progress(enum log_progress_mode mode);
void log_progress_to(int fd); /* instead of stderr */
void log_progress_begin(const char *what);
void log_progress(const char *phase, uint64_t done, uint64_t total);
void log_progress_end(void);
/* take the progress line away before printing other lines to the terminal
 * (log_err and log_info do); the next report brings it back */
void log_progress_clear(void);

#endif
