/*
 * error.h -- how the engine reports errors.
 *
 * Every failing internal function returns an alog_err and, at the place that found the
 * problem, records a message saying what was wrong and where (file, byte position,
 * offset) in thread-local storage, together with the system errno if a system call
 * failed. alog_last_error()/alog_last_errno() read them back. The message is set once
 * where the error is found; callers that add context use err_prefix().
 */
#ifndef ALOG_ERROR_H
#define ALOG_ERROR_H

#include "alog.h"

/* Records message and errno (0 if none) for this thread and returns err. */
alog_err err_set(alog_err err, int sys_errno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records a failed system call: maps errno to an alog_err (ENOSPC, ENOMEM, ENOENT,
 * else EIO), and formats "<what>: <strerror(errno)>". */
alog_err err_sys(int sys_errno, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "<context>: " to this thread's current message; returns err. */
alog_err err_prefix(alog_err err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears this thread's message. */
void err_clear(void);

#endif
