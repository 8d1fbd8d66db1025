/*
 * error.c -- alog_strerror() and the per-thread detailed error message.
 *
 * The enum and its strings come from one X-macro list in alog.h (as libuv does), so
 * they cannot drift apart. The detailed message is thread-local so that concurrent
 * callers never see each other's errors and no handle is needed (alog_open can fail
 * before there is one).
 */
#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char tl_msg[1024];
static _Thread_local int tl_errno;

const char *alog_version(void) { return ALOG_VERSION_STRING; }

const char *alog_strerror(alog_err err) {
    switch (err) {
#define ALOG_ERR_STR_(name, value, text) \
    case ALOG_##name: return text;
        ALOG_ERRORS(ALOG_ERR_STR_)
#undef ALOG_ERR_STR_
    }
    return "unknown error";
}

const char *alog_err_name(alog_err err) {
    switch (err) {
#define ALOG_ERR_NAME_(name, value, text) \
    case ALOG_##name: return #name;
        ALOG_ERRORS(ALOG_ERR_NAME_)
#undef ALOG_ERR_NAME_
    }
    return "UNKNOWN";
}

const char *alog_last_error(void) { return tl_msg; }
int alog_last_errno(void) { return tl_errno; }

void err_clear(void) {
    tl_msg[0] = '\0';
    tl_errno = 0;
}

alog_err err_set(alog_err err, int sys_errno, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    va_end(ap);
    tl_errno = sys_errno;
    return err;
}

alog_err err_sys(int sys_errno, const char *fmt, ...) {
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    alog_err err;
    switch (sys_errno) {
    case ENOSPC:
    case EDQUOT: err = ALOG_ENOSPC; break;
    case ENOMEM: err = ALOG_ENOMEM; break;
    case ENOENT: err = ALOG_ENOENT; break;
    default: err = ALOG_EIO; break;
    }
    snprintf(tl_msg, sizeof tl_msg, "%s: %s", what, strerror(sys_errno));
    tl_errno = sys_errno;
    return err;
}

alog_err err_prefix(alog_err err, const char *fmt, ...) {
    char ctx[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    /* "<ctx>: <old message>", truncating the old message if it no longer fits. */
    size_t cl = strlen(ctx), ol = strlen(tl_msg);
    size_t room = sizeof tl_msg - 1 - cl - 2;
    if (ol > room) ol = room;
    memmove(tl_msg + cl + 2, tl_msg, ol);
    memcpy(tl_msg, ctx, cl);
    tl_msg[cl] = ':';
    tl_msg[cl + 1] = ' ';
    tl_msg[cl + 2 + ol] = '\0';
    return err;
}
