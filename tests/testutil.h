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

#endif
