/*
 * testutil.h -- shared helpers for the cmocka tests: fresh temporary directories,
 * recursive removal, file surgery (truncate, append garbage, flip a byte).
 */
#ifndef ALOG_TESTUTIL_H
#define ALOG_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alog.h"

/* A new empty directory for one test, under $ALOG_TEST_TMP (or /tmp). Caller frees. */
char *tu_tmpdir(const char *name);
/* Removes a directory tree. */
void tu_rmrf(const char *path);
/* path of "<dir>/<20-digit base>.<ext>" into buf. */
void tu_segment_path(char *buf, size_t n, const char *dir, int64_t base, const char *ext);
int64_t tu_file_size(const char *path);
void tu_truncate(const char *path, int64_t size);
void tu_append_bytes(const char *path, const void *p, size_t n);
void tu_flip_byte(const char *path, int64_t pos);
/* Reads a whole file; caller frees. */
uint8_t *tu_read_file(const char *path, size_t *len);
void tu_copy_file(const char *from, const char *to);

/* Fails the test with alog_last_error() if e is not ALOG_OK. */
#define TU_OK(expr)                                                                   \
    do {                                                                              \
        alog_err tu_e_ = (expr);                                                      \
        if (tu_e_ != ALOG_OK)                                                         \
            fail_msg("%s -> %s: %s", #expr, alog_err_name(tu_e_), alog_last_error()); \
    } while (0)

/* The active segment of log (in dir): its .log file's size on disk, and the log's
 * size of it (they differ by preallocated zeros, src/prealloc.c). */
void tu_active_sizes(alog *log, const char *dir, int64_t *file, uint64_t *logical);

/* ---- fault-injecting io tables (src/io.h) -----------------------------------------
 * A test's own table of file calls: starts as the real ones (io_posix) and is made the
 * engine's table; the test then points the calls it fakes at its wrappers.
 * tu_fake_io_restore is a cmocka teardown that puts the real calls back. */
struct io_ops;
struct io_ops *tu_fake_io_install(void);
int tu_fake_io_restore(void **state);

/* ---- seeded records (crash and fault tests) ----------------------------------------
 * A record made from a 64-bit seed alone: key "k" + the seed in 16 hex digits, a
 * timestamp, value "r<seed in decimal>-" followed by pseudo-random bytes (a null value
 * for about one seed in 31; a 16-20 KiB value for about one in 400; a 64-128 KiB one
 * when bit 62 of the seed is set: TU_SREC_BIG), and 0-2 headers (one holds the seed
 * again). tu_srec_check() regenerates the record from the seed in its key and
 * compares every field, so a reader can tell whether a record it found is byte for
 * byte one that a writer produced. */
#define TU_SREC_BIG (1ull << 62)
uint64_t tu_splitmix64(uint64_t *state);
typedef struct tu_srec {
    alog_record rec; /* points into this struct; valid until the next make or free */
    alog_header hdrs[2];
    char key[24];
    uint8_t seed_be[8];
    uint8_t hval[48];
    uint8_t *val;
    size_t val_cap;
} tu_srec;
/* Fills s->rec with the record of seed. s starts zeroed; free with tu_srec_free. */
void tu_srec_make(tu_srec *s, uint64_t seed);
void tu_srec_free(tu_srec *s);
/* 1 if r is exactly the record of the seed its key names (*seed_out gets the seed);
 * else 0 with what differs in why. scratch is a tu_srec the check may reuse. */
int tu_srec_check(tu_srec *scratch, const alog_record *r, uint64_t *seed_out, char *why,
                  size_t why_len);

#endif
