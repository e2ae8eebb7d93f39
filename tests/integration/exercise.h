/*
 * exercise.h -- what fsexercise.c and nsexercise.c share: a seeded random
 * sequence, a ring of the last operations, and the failure report that
 * prints them. Each includes it once, after defining EXERCISE_NAME.
 */
#ifndef KMEMFS_EXERCISE_H
#define KMEMFS_EXERCISE_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_SIZE 24 /* operations shown when a check fails */

static uint64_t rng_state; /* the seed, then the generator's state */
static uint64_t op_no;     /* the operation under way */
static char oplog[LOG_SIZE][600];

static inline uint64_t rnd(void)
{
	/* xorshift64*: small, fast, and the same sequence for the same seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static inline uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* logop -- what operation op_no is about to do, for the failure report */
static inline void logop(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void logop(const char *fmt, ...)
{
	va_list ap;
	char *slot = oplog[op_no % LOG_SIZE];
	int n = snprintf(slot, sizeof(oplog[0]), "%6" PRIu64 " ", op_no);

	va_start(ap, fmt);
	vsnprintf(slot + n, sizeof(oplog[0]) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* logop_append -- add to op_no's line (an outcome worth knowing) */
static inline void logop_append(const char *what)
{
	char *slot = oplog[op_no % LOG_SIZE];
	size_t n = strlen(slot);

	snprintf(slot + n, sizeof(oplog[0]) - n, "%s", what);
}

/* die -- a check failed: say which, and the operations that led there */
static inline void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, EXERCISE_NAME ": FAILED at operation %" PRIu64 ": ", op_no);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n" EXERCISE_NAME ": the last operations:\n");
	for (uint64_t i = op_no >= LOG_SIZE - 1 ? op_no - (LOG_SIZE - 1) : 0; i <= op_no; i++)
		fprintf(stderr, "  %s\n", oplog[i % LOG_SIZE]);
	exit(1);
}

/* number -- an unsigned option value (decimal, 0x hex), or exit 2 */
static inline uint64_t number(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || end == s) {
		fprintf(stderr, EXERCISE_NAME ": bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

#endif
