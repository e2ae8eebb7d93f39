/* SPDX-License-Identifier: BSD-3-Clause */
/* log.h -- one-line messages to stderr (or syslog once daemonized). */
#ifndef KMEMFS_LOG_H
#define KMEMFS_LOG_H

#include <stdbool.h>

void log_set_prog(const char *prog);
void log_use_syslog(bool on);
void log_set_debug(bool on);
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_bad_option(char *const argv[], int c);

#endif
