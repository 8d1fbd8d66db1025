/*
 * alog.c -- the alog command-line tool.
 *
 * Written only against the public API in include/alog.h. Subcommands:
 *
 *   alog append DIR [options] [VALUE...]   append records (one atomic batch per call,
 *                                          or batches of stdin lines)
 *   alog read   DIR [options]              print records (text, json or hex)
 *   alog tail   DIR [-f] [-n N]            the last N records; -f follows new ones
 *   alog info   DIR [--json]               offsets, counts, segments
 *   alog verify DIR [--json] [--quiet]     check every batch and index
 *   alog dump   FILE [--json]              batch-by-batch view of one segment file
 *
 * Exit status: 0 success, 1 failure (including damage found), 2 usage error.
 * Errors go to stderr as "alog <cmd>: <message>".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alog.h"

/* ---------------------------------------------------------------------------------
 * Messages and exit codes
 * ------------------------------------------------------------------------------- */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char *g_cmd = "alog"; /* "alog <cmd>" once a subcommand is chosen */

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: ", g_cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* A usage error: message, a hint, exit status 2. */
static int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_err(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: ", g_cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", g_cmd);
    return EXIT_USAGE;
}

/* A library failure: "<context>: <alog_last_error()>" (or the generic text). Must be
 * called right after the failing alog_ call, before any other. */
static void lib_err(alog_err err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lib_err(alog_err err, const char *fmt, ...) {
    char detail[1100];
    const char *le = alog_last_error();
    if (le && *le)
        snprintf(detail, sizeof detail, "%s", le);
    else
        snprintf(detail, sizeof detail, "%s", alog_strerror(err));
    char ctx[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    msg("%s: %s [%s]", ctx, detail, alog_err_name(err));
}

/* ---------------------------------------------------------------------------------
 * Output helpers: stdout errors, EPIPE
 * ------------------------------------------------------------------------------- */
static int g_out_epipe; /* stdout's reader went away: stop quietly */

/* 0 if stdout is fine; otherwise remembers why and returns -1. Call right after
 * writing (errno still belongs to the failed write). */
static int out_failed(void) {
    if (!ferror(stdout)) return 0;
    if (errno == EPIPE) g_out_epipe = 1;
    return -1;
}

/* Flushes stdout. Returns 0 if everything was written or the reader went away (EPIPE,
 * a clean stop), else prints an error and returns -1. */
static int out_finish(void) {
    int failed = 0;
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) failed = 1;
    if (!failed) return 0;
    if (errno == EPIPE || g_out_epipe) return 0;
    msg("error writing to standard output: %s", strerror(errno ? errno : EIO));
    return -1;
}

/* ---------------------------------------------------------------------------------
 * Numbers and times
 * ------------------------------------------------------------------------------- */

/* A decimal integer in [min, max]; the whole string must be the number. */
static int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out) {
    if (!s) return -1;
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    if (!isdigit((unsigned char)*p)) return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE || end == s || *end != '\0') return -1;
    if (v < min || v > max) return -1;
    *out = (int64_t)v;
    return 0;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t yy = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static unsigned days_in_month(int64_t y, unsigned m) {
    static const unsigned dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly n digits at *p; advances *p. */
static int take_digits(const char **p, int n, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + (unsigned)((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/*
 * TIME: milliseconds since the epoch (all digits), or ISO 8601:
 *   2024-01-15                       midnight UTC
 *   2024-01-15T09:00Z                minutes, seconds optional
 *   2024-01-15T09:00:00Z
 *   2024-01-15T09:00:00.123Z         fraction of any length (truncated to ms)
 *   2024-01-15T09:00:00+01:00        also +0100, +01, -05:00, -0500
 * A date-time needs a zone (Z or an offset): local time is never guessed.
 * On failure writes the reason into why.
 */
static int parse_time(const char *s, int64_t *out, char *why, size_t whylen) {
    if (!s || !*s) {
        snprintf(why, whylen, "empty time");
        return -1;
    }
    size_t n = strlen(s);
    if (strspn(s, "0123456789") == n) {
        if (parse_i64(s, 0, INT64_MAX, out) != 0) {
            snprintf(why, whylen, "'%s': milliseconds out of range", s);
            return -1;
        }
        return 0;
    }
    const char *p = s;
    unsigned year, mon, day, hh = 0, mi = 0, ss = 0, ms = 0;
    int64_t zone_min = 0;
    if (take_digits(&p, 4, &year) != 0 || *p++ != '-' || take_digits(&p, 2, &mon) != 0 ||
        *p++ != '-' || take_digits(&p, 2, &day) != 0)
        goto bad;
    if (mon < 1 || mon > 12) {
        snprintf(why, whylen, "'%s': month %u out of range", s, mon);
        return -1;
    }
    if (day < 1 || day > days_in_month(year, mon)) {
        snprintf(why, whylen, "'%s': day %u out of range for %04u-%02u", s, day, year, mon);
        return -1;
    }
    if (*p != '\0') {
        if (*p != 'T' && *p != 't') goto bad;
        p++;
        if (take_digits(&p, 2, &hh) != 0 || *p++ != ':' || take_digits(&p, 2, &mi) != 0)
            goto bad;
        if (*p == ':') {
            p++;
            if (take_digits(&p, 2, &ss) != 0) goto bad;
            if (*p == '.' || *p == ',') {
                p++;
                if (!isdigit((unsigned char)*p)) goto bad;
                int nd = 0;
                while (isdigit((unsigned char)*p)) {
                    if (nd < 3) ms = ms * 10 + (unsigned)(*p - '0');
                    nd++;
                    p++;
                }
                for (; nd < 3; nd++) ms *= 10;
            }
        }
        if (hh > 23 || mi > 59 || ss > 59) {
            snprintf(why, whylen, "'%s': time of day out of range", s);
            return -1;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            unsigned zh, zm = 0;
            p++;
            if (take_digits(&p, 2, &zh) != 0) goto bad;
            if (*p == ':') {
                p++;
                if (take_digits(&p, 2, &zm) != 0) goto bad;
            } else if (isdigit((unsigned char)*p)) {
                if (take_digits(&p, 2, &zm) != 0) goto bad;
            }
            if (zh > 23 || zm > 59) {
                snprintf(why, whylen, "'%s': time zone offset out of range", s);
                return -1;
            }
            zone_min = sign * (int64_t)(zh * 60 + zm);
        } else if (*p == '\0') {
            snprintf(why, whylen,
                     "'%s': missing time zone (add 'Z' for UTC or an offset like +01:00)", s);
            return -1;
        } else {
            goto bad;
        }
        if (*p != '\0') goto bad;
    }
    int64_t days = days_from_civil(year, mon, day);
    int64_t secs = days * 86400 + (int64_t)hh * 3600 + (int64_t)mi * 60 + ss - zone_min * 60;
    *out = secs * 1000 + ms;
    return 0;
bad:
    snprintf(why, whylen,
             "invalid time '%s' (expected milliseconds since the epoch, or ISO 8601 like "
             "2024-01-15, 2024-01-15T09:00:00Z, 2024-01-15T09:00:00.123+01:00)",
             s);
    return -1;
}

/* ms since the epoch as "2024-01-15T09:00:00.000Z"; plain digits if out of 0..9999. */
static void format_time(int64_t ms, char *buf, size_t len) {
    if (ms < 0 || ms >= INT64_C(253402300800000)) {
        snprintf(buf, len, "%" PRId64, ms);
        return;
    }
    int64_t secs = ms / 1000, days = secs / 86400, rem = secs % 86400;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, len, "%04" PRId64 "-%02u-%02uT%02u:%02u:%02u.%03uZ", y, m, d,
             (unsigned)(rem / 3600), (unsigned)(rem / 60 % 60), (unsigned)(rem % 60),
             (unsigned)(ms % 1000));
}

/* ---------------------------------------------------------------------------------
 * Encoding: UTF-8 check, JSON strings, base64, readable escapes, hexdump
 * ------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one (strict: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

static int utf8_valid(const void *p, size_t n) {
    const unsigned char *s = p;
    size_t i = 0;
    while (i < n) {
        size_t l = utf8_seq(s + i, n - i);
        if (l == 0) return 0;
        i += l;
    }
    return 1;
}

/* A JSON string literal of valid UTF-8 bytes. */
static void json_str(FILE *f, const void *p, size_t n) {
    const unsigned char *s = p;
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(f, "\\u%04x", c);
            else
                fputc((int)c, f);
        }
    }
    fputc('"', f);
}

static void json_cstr(FILE *f, const char *s) { json_str(f, s, strlen(s)); }

static void base64(FILE *f, const void *p, size_t n) {
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    fputc('"', f);
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        fputc(tbl[v >> 18 & 63], f);
        fputc(tbl[v >> 12 & 63], f);
        fputc(tbl[v >> 6 & 63], f);
        fputc(tbl[v & 63], f);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        fputc(tbl[v >> 18 & 63], f);
        fputc(tbl[v >> 12 & 63], f);
        fputs("==", f);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        fputc(tbl[v >> 18 & 63], f);
        fputc(tbl[v >> 12 & 63], f);
        fputc(tbl[v >> 6 & 63], f);
        fputc('=', f);
    }
    fputc('"', f);
}

/* "name":"utf-8 text" | "name_base64":"..." | "name":null */
static void json_bytes_field(FILE *f, const char *name, const void *p, size_t n) {
    if (!p) {
        fprintf(f, "\"%s\":null", name);
    } else if (utf8_valid(p, n)) {
        fprintf(f, "\"%s\":", name);
        json_str(f, p, n);
    } else {
        fprintf(f, "\"%s_base64\":", name);
        base64(f, p, n);
    }
}

/* Readable quoted form for text output: "..." with C escapes for quotes, backslash,
 * control characters and bytes that are not valid UTF-8 (\xHH); null as null. */
static void text_bytes(FILE *f, const void *p, size_t n) {
    if (!p) {
        fputs("null", f);
        return;
    }
    const unsigned char *s = p;
    fputc('"', f);
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t l = utf8_seq(s + i, n - i);
            if (l == 0) {
                fprintf(f, "\\x%02x", c);
                i++;
            } else {
                fwrite(s + i, 1, l, f);
                i += l;
            }
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(f, "\\x%02x", c);
            else
                fputc((int)c, f);
        }
        i++;
    }
    fputc('"', f);
}

/* hexdump -C style lines, indented. */
static void hexdump(FILE *f, const void *p, size_t n, const char *indent) {
    const unsigned char *s = p;
    for (size_t off = 0; off < n; off += 16) {
        fprintf(f, "%s%08zx  ", indent, off);
        for (size_t i = 0; i < 16; i++) {
            if (off + i < n)
                fprintf(f, "%02x ", s[off + i]);
            else
                fputs("   ", f);
            if (i == 7) fputc(' ', f);
        }
        fputs(" |", f);
        for (size_t i = 0; i < 16 && off + i < n; i++) {
            unsigned c = s[off + i];
            fputc(c >= 0x20 && c < 0x7f ? (int)c : '.', f);
        }
        fputs("|\n", f);
    }
}

/* ---------------------------------------------------------------------------------
 * Record formats
 * ------------------------------------------------------------------------------- */
enum fmt { FMT_TEXT, FMT_JSON, FMT_HEX };

static int parse_format(const char *s, enum fmt *out) {
    if (strcmp(s, "text") == 0)
        *out = FMT_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = FMT_JSON;
    else if (strcmp(s, "hex") == 0)
        *out = FMT_HEX;
    else
        return -1;
    return 0;
}

static void print_record(FILE *f, const alog_record *r, enum fmt fmt) {
    char ts[64];
    switch (fmt) {
    case FMT_JSON:
        fprintf(f, "{\"offset\":%" PRId64 ",\"timestamp\":%" PRId64 ",", r->offset,
                r->timestamp);
        json_bytes_field(f, "key", r->key, r->key_len);
        fputc(',', f);
        json_bytes_field(f, "value", r->value, r->value_len);
        fputs(",\"headers\":[", f);
        for (size_t i = 0; i < r->header_count; i++) {
            const alog_header *h = &r->headers[i];
            if (i) fputc(',', f);
            fputc('{', f);
            json_bytes_field(f, "key", h->key ? h->key : "", h->key ? h->key_len : 0);
            fputc(',', f);
            json_bytes_field(f, "value", h->value, h->value_len);
            fputc('}', f);
        }
        fputs("]}\n", f);
        break;
    case FMT_TEXT:
        format_time(r->timestamp, ts, sizeof ts);
        fprintf(f, "%" PRId64 " %s ", r->offset, ts);
        text_bytes(f, r->key, r->key_len);
        fputc(' ', f);
        text_bytes(f, r->value, r->value_len);
        if (r->header_count) {
            fputs(" [", f);
            for (size_t i = 0; i < r->header_count; i++) {
                const alog_header *h = &r->headers[i];
                if (i) fputc(' ', f);
                text_bytes(f, h->key ? h->key : "", h->key ? h->key_len : 0);
                fputc('=', f);
                text_bytes(f, h->value, h->value_len);
            }
            fputc(']', f);
        }
        fputc('\n', f);
        break;
    case FMT_HEX:
        format_time(r->timestamp, ts, sizeof ts);
        fprintf(f, "offset %" PRId64 "  timestamp %s (%" PRId64 ")\n", r->offset, ts,
                r->timestamp);
        if (r->key) {
            fprintf(f, "  key: %zu bytes\n", r->key_len);
            hexdump(f, r->key, r->key_len, "    ");
        } else {
            fputs("  key: null\n", f);
        }
        if (r->value) {
            fprintf(f, "  value: %zu bytes\n", r->value_len);
            hexdump(f, r->value, r->value_len, "    ");
        } else {
            fputs("  value: null\n", f);
        }
        for (size_t i = 0; i < r->header_count; i++) {
            const alog_header *h = &r->headers[i];
            fputs("  header ", f);
            text_bytes(f, h->key ? h->key : "", h->key ? h->key_len : 0);
            if (h->value) {
                fprintf(f, ": %zu bytes\n", h->value_len);
                hexdump(f, h->value, h->value_len, "    ");
            } else {
                fputs(": null\n", f);
            }
        }
        break;
    }
}

/* ---------------------------------------------------------------------------------
 * Option parsing glue
 * ------------------------------------------------------------------------------- */
static void reset_getopt(void) {
    optind = 1;
    opterr = 1; /* getopt prints "alog <cmd>: unrecognized option ..." via argv[0] */
}

static int bad_opt(void) {
    fprintf(stderr, "Try '%s --help' for more information.\n", g_cmd);
    return EXIT_USAGE;
}

static alog_err open_log(const char *dir, int read_only, alog_options *opts, alog **out) {
    if (read_only) {
        opts->read_only = 1;
        opts->create_if_missing = 0;
    }
    return alog_open(dir, opts, out);
}

/* ---------------------------------------------------------------------------------
 * append
 * ------------------------------------------------------------------------------- */
static const char append_help[] =
    "Usage: alog append DIR [OPTIONS] [VALUE...]\n"
    "\n"
    "Appends records to the log in DIR (created if missing) and prints the offset of each,\n"
    "one per line. All VALUEs of one call go in as ONE atomic batch. Without VALUEs, reads\n"
    "standard input and appends one record per line (the trailing newline is stripped,\n"
    "nothing else), in batches of up to 1000 lines or 1 MiB. Use -- before values that\n"
    "start with '-'.\n"
    "\n"
    "Options (apply to every record of the call):\n"
    "  -k, --key K             record key (default: null key)\n"
    "  -H, --header K=V        add a header; split at the first '='; may repeat, also with\n"
    "                          the same K; '--header K' without '=' gives a null value\n"
    "  -t, --timestamp TIME    record timestamp (default: now); TIME is milliseconds since\n"
    "                          the epoch or ISO 8601 (2024-01-15, 2024-01-15T09:00:00Z,\n"
    "                          2024-01-15T09:00:00.123+01:00)\n"
    "  -c, --compression C     none, gzip, snappy, lz4 or zstd (default none)\n"
    "      --segment-bytes N   roll to a new segment past N bytes (64 to 2147483647;\n"
    "                          default 1 GiB)\n"
    "      --fsync P           never, always or interval (default interval)\n"
    "      --retention-bytes N delete oldest segments while the log is larger than N\n"
    "      --retention-ms N    delete segments whose newest record is older than N ms\n"
    "  -h, --help              show this help\n";

enum {
    OPT_SEGMENT_BYTES = 256,
    OPT_FSYNC,
    OPT_RETENTION_BYTES,
    OPT_RETENTION_MS,
    OPT_FROM_OFFSET,
    OPT_FROM_TIME,
    OPT_COUNT,
    OPT_FORMAT,
    OPT_JSON,
    OPT_QUIET,
};

struct append_ctx {
    alog *log;
    const char *dir;
    alog_record tmpl; /* key, timestamp, headers shared by all records */
};

/* Appends n values as one batch and prints their offsets. */
static int append_values(struct append_ctx *a, char **vals, const size_t *lens, size_t n) {
    if (n == 0) return 0;
    alog_record *recs = calloc(n, sizeof *recs);
    if (!recs) {
        msg("out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        recs[i] = a->tmpl;
        recs[i].value = vals[i];
        recs[i].value_len = lens[i];
    }
    int64_t first = -1;
    alog_err e = alog_append_batch(a->log, recs, n, &first);
    free(recs);
    if (e != ALOG_OK) {
        lib_err(e, "%s: append of %zu record%s failed", a->dir, n, n == 1 ? "" : "s");
        return -1;
    }
    for (size_t i = 0; i < n; i++) printf("%" PRId64 "\n", first + (int64_t)i);
    if (fflush(stdout) != 0 && errno != EPIPE) {
        msg("error writing to standard output: %s", strerror(errno));
        return -1;
    }
    return 0;
}

#define STDIN_BATCH_LINES 1000
#define STDIN_BATCH_BYTES (1u << 20)

static int append_stdin(struct append_ctx *a) {
    char *vals[STDIN_BATCH_LINES];
    size_t lens[STDIN_BATCH_LINES];
    size_t n = 0, bytes = 0;
    int rc = 0;
    for (;;) {
        char *line = NULL;
        size_t cap = 0;
        errno = 0;
        ssize_t len = getline(&line, &cap, stdin);
        if (len < 0) {
            free(line);
            if (ferror(stdin)) {
                msg("error reading standard input: %s", strerror(errno ? errno : EIO));
                rc = -1;
            }
            break;
        }
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        if (n > 0 && (n == STDIN_BATCH_LINES || bytes + (size_t)len > STDIN_BATCH_BYTES)) {
            rc = append_values(a, vals, lens, n);
            for (size_t i = 0; i < n; i++) free(vals[i]);
            n = bytes = 0;
            if (rc != 0) {
                free(line);
                return rc;
            }
        }
        vals[n] = line;
        lens[n] = (size_t)len;
        n++;
        bytes += (size_t)len;
    }
    if (rc == 0) rc = append_values(a, vals, lens, n);
    for (size_t i = 0; i < n; i++) free(vals[i]);
    return rc;
}

static int cmd_append(int argc, char **argv) {
    static const struct option lopts[] = {
        {"key", required_argument, NULL, 'k'},
        {"header", required_argument, NULL, 'H'},
        {"timestamp", required_argument, NULL, 't'},
        {"compression", required_argument, NULL, 'c'},
        {"segment-bytes", required_argument, NULL, OPT_SEGMENT_BYTES},
        {"fsync", required_argument, NULL, OPT_FSYNC},
        {"retention-bytes", required_argument, NULL, OPT_RETENTION_BYTES},
        {"retention-ms", required_argument, NULL, OPT_RETENTION_MS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    alog_options opts;
    alog_options_init(&opts);
    opts.create_if_missing = 1;
    const char *key = NULL;
    int64_t ts = ALOG_TIMESTAMP_NOW;
    alog_header *hdrs = NULL;
    size_t nhdrs = 0;
    int retention = 0;
    int rc = EXIT_OK;
    char why[512];
    int64_t v;
    int c;

    reset_getopt();
    while ((c = getopt_long(argc, argv, "k:H:t:c:h", lopts, NULL)) != -1) {
        switch (c) {
        case 'k': key = optarg; break;
        case 'H': {
            alog_header *nh = realloc(hdrs, (nhdrs + 1) * sizeof *nh);
            if (!nh) {
                msg("out of memory");
                rc = EXIT_FAIL;
                goto out;
            }
            hdrs = nh;
            char *eq = strchr(optarg, '=');
            alog_header *h = &hdrs[nhdrs++];
            h->key = optarg;
            if (eq) {
                h->key_len = (size_t)(eq - optarg);
                h->value = eq + 1;
                h->value_len = strlen(eq + 1);
            } else {
                h->key_len = strlen(optarg);
                h->value = NULL;
                h->value_len = 0;
            }
            break;
        }
        case 't':
            if (parse_time(optarg, &ts, why, sizeof why) != 0) {
                rc = usage_err("--timestamp: %s", why);
                goto out;
            }
            break;
        case 'c':
            if (strcmp(optarg, "none") == 0)
                opts.compression = ALOG_COMPRESSION_NONE;
            else if (strcmp(optarg, "gzip") == 0)
                opts.compression = ALOG_COMPRESSION_GZIP;
            else if (strcmp(optarg, "snappy") == 0)
                opts.compression = ALOG_COMPRESSION_SNAPPY;
            else if (strcmp(optarg, "lz4") == 0)
                opts.compression = ALOG_COMPRESSION_LZ4;
            else if (strcmp(optarg, "zstd") == 0)
                opts.compression = ALOG_COMPRESSION_ZSTD;
            else {
                rc = usage_err("--compression: '%s' is not one of none, gzip, snappy, lz4, "
                               "zstd",
                               optarg);
                goto out;
            }
            break;
        case OPT_SEGMENT_BYTES:
            if (parse_i64(optarg, 64, INT32_MAX, &v) != 0) {
                rc = usage_err("--segment-bytes: '%s' is not an integer from 64 to %d", optarg,
                               INT32_MAX);
                goto out;
            }
            opts.segment_bytes = (uint64_t)v;
            break;
        case OPT_FSYNC:
            if (strcmp(optarg, "never") == 0)
                opts.fsync_policy = ALOG_FSYNC_NEVER;
            else if (strcmp(optarg, "always") == 0)
                opts.fsync_policy = ALOG_FSYNC_ALWAYS;
            else if (strcmp(optarg, "interval") == 0)
                opts.fsync_policy = ALOG_FSYNC_INTERVAL;
            else {
                rc = usage_err("--fsync: '%s' is not one of never, always, interval", optarg);
                goto out;
            }
            break;
        case OPT_RETENTION_BYTES:
            if (parse_i64(optarg, 1, INT64_MAX, &v) != 0) {
                rc = usage_err("--retention-bytes: '%s' is not a positive integer", optarg);
                goto out;
            }
            opts.retention_bytes = (uint64_t)v;
            retention = 1;
            break;
        case OPT_RETENTION_MS:
            if (parse_i64(optarg, 1, INT64_MAX, &v) != 0) {
                rc = usage_err("--retention-ms: '%s' is not a positive integer", optarg);
                goto out;
            }
            opts.retention_ms = (uint64_t)v;
            retention = 1;
            break;
        case 'h': fputs(append_help, stdout); goto out;
        default: rc = bad_opt(); goto out;
        }
    }
    if (optind >= argc) {
        rc = usage_err("missing DIR");
        goto out;
    }
    const char *dir = argv[optind++];

    struct append_ctx a = {.dir = dir};
    a.tmpl.timestamp = ts;
    a.tmpl.key = key;
    a.tmpl.key_len = key ? strlen(key) : 0;
    a.tmpl.headers = hdrs;
    a.tmpl.header_count = nhdrs;

    alog_err e = alog_open(dir, &opts, &a.log);
    if (e != ALOG_OK) {
        lib_err(e, "cannot open log '%s'", dir);
        rc = EXIT_FAIL;
        goto out;
    }
    /* Recovery after an unclean shutdown says what it cut (never silently). */
    const alog_recovery_info *ri = alog_recovery(a.log);
    if (ri->bytes_truncated)
        msg("recovered '%s': cut %" PRIu64 " bytes of unfinished or damaged tail, from offset "
            "%" PRId64, dir, ri->bytes_truncated, ri->first_cut_offset);
    int r;
    if (optind < argc) {
        size_t n = (size_t)(argc - optind);
        size_t *lens = malloc(n * sizeof *lens);
        if (!lens) {
            msg("out of memory");
            r = -1;
        } else {
            for (size_t i = 0; i < n; i++) lens[i] = strlen(argv[optind + (int)i]);
            r = append_values(&a, argv + optind, lens, n);
            free(lens);
        }
    } else {
        r = append_stdin(&a);
    }
    if (r != 0) rc = EXIT_FAIL;
    if (r == 0 && retention) {
        e = alog_retention_run(a.log, NULL);
        if (e != ALOG_OK) {
            lib_err(e, "%s: retention failed", dir);
            rc = EXIT_FAIL;
        }
    }
    e = alog_close(a.log);
    if (e != ALOG_OK) {
        lib_err(e, "%s: close failed", dir);
        rc = EXIT_FAIL;
    }
    if (out_finish() != 0) rc = EXIT_FAIL;
out:
    free(hdrs);
    return rc;
}

/* ---------------------------------------------------------------------------------
 * read
 * ------------------------------------------------------------------------------- */
static const char read_help[] =
    "Usage: alog read DIR [--from-offset N | --from-time TIME] [--count N]\n"
    "                     [--format text|json|hex]\n"
    "\n"
    "Prints records of the log in DIR (opened read-only), from the first one unless told\n"
    "otherwise, to the end of the log or until N records are printed.\n"
    "\n"
    "Options:\n"
    "  -o, --from-offset N   start at offset N (error if below the first offset or above\n"
    "                        the next one)\n"
    "  -T, --from-time TIME  start at the first record with timestamp >= TIME (milliseconds\n"
    "                        since the epoch, or ISO 8601 like 2024-01-15T09:00:00Z)\n"
    "  -n, --count N         print at most N records\n"
    "  -F, --format FMT      text (default): 'OFFSET TIME KEY VALUE [HK=HV ...]', key and\n"
    "                        value quoted with C escapes, null as null;\n"
    "                        json: one object per line,\n"
    "                          {\"offset\":N,\"timestamp\":MS,\"key\":S|null,\"value\":S|null,\n"
    "                           \"headers\":[{\"key\":S,\"value\":S|null},...]}\n"
    "                        where bytes that are not valid UTF-8 appear base64-encoded\n"
    "                        as \"key_base64\" / \"value_base64\" instead;\n"
    "                        hex: a hexdump of key, value and header values\n"
    "  -h, --help            show this help\n";

/* Prints records from cur until EOF or count; returns EXIT_* . *printed counts. */
static int print_until_eof(alog_cursor *cur, const char *dir, enum fmt fmt, int64_t count,
                           int64_t *printed, int *eof) {
    alog_record r;
    *eof = 0;
    while (count < 0 || *printed < count) {
        alog_err e = alog_cursor_next(cur, &r);
        if (e == ALOG_EOF) {
            *eof = 1;
            return EXIT_OK;
        }
        if (e != ALOG_OK) {
            lib_err(e, "%s: read failed", dir);
            return EXIT_FAIL;
        }
        print_record(stdout, &r, fmt);
        (*printed)++;
        if (out_failed()) return EXIT_OK;
    }
    return EXIT_OK;
}

static int cmd_read(int argc, char **argv) {
    static const struct option lopts[] = {
        {"from-offset", required_argument, NULL, 'o'},
        {"from-time", required_argument, NULL, 'T'},
        {"count", required_argument, NULL, 'n'},
        {"format", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int have_off = 0, have_time = 0;
    int64_t from_off = 0, from_time = 0, count = -1;
    enum fmt fmt = FMT_TEXT;
    char why[512];
    int c;

    reset_getopt();
    while ((c = getopt_long(argc, argv, "o:T:n:F:h", lopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (parse_i64(optarg, INT64_MIN, INT64_MAX, &from_off) != 0)
                return usage_err("--from-offset: '%s' is not an integer", optarg);
            have_off = 1;
            break;
        case 'T':
            if (parse_time(optarg, &from_time, why, sizeof why) != 0)
                return usage_err("--from-time: %s", why);
            have_time = 1;
            break;
        case 'n':
            if (parse_i64(optarg, 0, INT64_MAX, &count) != 0)
                return usage_err("--count: '%s' is not a non-negative integer", optarg);
            break;
        case 'F':
            if (parse_format(optarg, &fmt) != 0)
                return usage_err("--format: '%s' is not one of text, json, hex", optarg);
            break;
        case 'h': fputs(read_help, stdout); return EXIT_OK;
        default: return bad_opt();
        }
    }
    if (have_off && have_time) return usage_err("--from-offset and --from-time exclude each other");
    if (optind >= argc) return usage_err("missing DIR");
    if (argc - optind > 1) return usage_err("unexpected argument '%s'", argv[optind + 1]);
    const char *dir = argv[optind];

    alog_options opts;
    alog_options_init(&opts);
    alog *log = NULL;
    alog_cursor *cur = NULL;
    int rc = EXIT_OK;
    alog_err e = open_log(dir, 1, &opts, &log);
    if (e != ALOG_OK) {
        lib_err(e, "cannot open log '%s'", dir);
        return EXIT_FAIL;
    }
    int64_t start;
    if (have_time) {
        e = alog_offset_for_time(log, from_time, &start);
        if (e != ALOG_OK) {
            lib_err(e, "%s: cannot find the offset for time %" PRId64, dir, from_time);
            rc = EXIT_FAIL;
            goto out;
        }
    } else if (have_off) {
        start = from_off;
    } else {
        start = alog_first_offset(log);
    }
    e = alog_cursor_open(log, start, &cur);
    if (e != ALOG_OK) {
        lib_err(e, "%s: cannot read from offset %" PRId64 " (log has offsets %" PRId64
                   " to %" PRId64 ")",
                dir, start, alog_first_offset(log), alog_next_offset(log) - 1);
        rc = EXIT_FAIL;
        goto out;
    }
    if (count != 0) {
        int64_t printed = 0;
        int eof;
        rc = print_until_eof(cur, dir, fmt, count, &printed, &eof);
    }
out:
    alog_cursor_close(cur);
    alog_close(log);
    if (out_finish() != 0) rc = EXIT_FAIL;
    return rc;
}

/* ---------------------------------------------------------------------------------
 * tail
 * ------------------------------------------------------------------------------- */
static const char tail_help[] =
    "Usage: alog tail DIR [-f] [-n N] [--format text|json|hex]\n"
    "\n"
    "Prints the last N records of the log in DIR (opened read-only). With -f, keeps\n"
    "printing records as another process appends them, until interrupted (SIGINT or\n"
    "SIGTERM) or standard output is closed.\n"
    "\n"
    "Options:\n"
    "  -f, --follow          follow new records (alog_cursor_wait: inotify, no polling)\n"
    "  -n, --lines N         how many of the last records to print first (default 10)\n"
    "  -F, --format FMT      text (default), json or hex, as for 'alog read'\n"
    "  -h, --help            show this help\n";

static volatile sig_atomic_t g_stop;

static void on_stop_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* Whether the reader of our stdout (a pipe or socket) has gone away. */
static int stdout_gone(void) {
    struct pollfd p = {STDOUT_FILENO, 0, 0}; /* only POLLERR/POLLHUP */
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

static int cmd_tail(int argc, char **argv) {
    static const struct option lopts[] = {
        {"follow", no_argument, NULL, 'f'},
        {"lines", required_argument, NULL, 'n'},
        {"format", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int follow = 0;
    int64_t lines = 10;
    enum fmt fmt = FMT_TEXT;
    int c;

    reset_getopt();
    while ((c = getopt_long(argc, argv, "fn:F:h", lopts, NULL)) != -1) {
        switch (c) {
        case 'f': follow = 1; break;
        case 'n':
            if (parse_i64(optarg, 0, INT64_MAX, &lines) != 0)
                return usage_err("-n: '%s' is not a non-negative integer", optarg);
            break;
        case 'F':
            if (parse_format(optarg, &fmt) != 0)
                return usage_err("--format: '%s' is not one of text, json, hex", optarg);
            break;
        case 'h': fputs(tail_help, stdout); return EXIT_OK;
        default: return bad_opt();
        }
    }
    if (optind >= argc) return usage_err("missing DIR");
    if (argc - optind > 1) return usage_err("unexpected argument '%s'", argv[optind + 1]);
    const char *dir = argv[optind];

    int watch_stdout = 0;
    if (follow) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; /* no SA_RESTART: interrupt the wait */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        struct stat st;
        if (fstat(STDOUT_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
            watch_stdout = 1;
    }

    alog_options opts;
    alog_options_init(&opts);
    alog *log = NULL;
    alog_cursor *cur = NULL;
    int rc = EXIT_OK;
    alog_err e = open_log(dir, 1, &opts, &log);
    if (e != ALOG_OK) {
        lib_err(e, "cannot open log '%s'", dir);
        rc = EXIT_FAIL;
        goto out;
    }
    int64_t first = alog_first_offset(log), next = alog_next_offset(log);
    int64_t start = next - first > lines ? next - lines : first;
    e = alog_cursor_open(log, start, &cur);
    if (e != ALOG_OK) {
        lib_err(e, "%s: cannot read from offset %" PRId64, dir, start);
        rc = EXIT_FAIL;
        goto out;
    }
    int64_t printed = 0;
    int eof = 0;
    if (!follow) {
        rc = print_until_eof(cur, dir, fmt, -1, &printed, &eof);
        goto out;
    }
    while (!g_stop) {
        rc = print_until_eof(cur, dir, fmt, -1, &printed, &eof);
        if (rc != EXIT_OK) break;
        if (out_failed()) break;
        if (!eof) continue; /* stopped early only on output errors, handled above */
        errno = 0;
        if (fflush(stdout) != 0) {
            if (errno != EPIPE) {
                msg("error writing to standard output: %s", strerror(errno));
                rc = EXIT_FAIL;
            }
            break;
        }
        if (watch_stdout && stdout_gone()) break;
        /* The library waits for the writer without polling (inotify on the log's
         * directory); a signal or the timeout brings us back to check g_stop and
         * whether our reader is still there. */
        e = alog_cursor_wait(cur, 1000);
        if (e != ALOG_OK && e != ALOG_ETIMEDOUT) {
            lib_err(e, "%s: waiting for new records", dir);
            rc = EXIT_FAIL;
            break;
        }
    }
out:
    alog_cursor_close(cur);
    alog_close(log);
    if (out_finish() != 0) rc = EXIT_FAIL;
    return rc;
}

/* ---------------------------------------------------------------------------------
 * info
 * ------------------------------------------------------------------------------- */
static const char info_help[] =
    "Usage: alog info DIR [--json]\n"
    "\n"
    "Shows the log in DIR (opened read-only): first and next offset, record count, total\n"
    "size, time range, and every segment with its base offset, next offset, size,\n"
    "min/max timestamp and whether it is the active one.\n"
    "\n"
    "Options:\n"
    "  -j, --json   print one JSON object:\n"
    "               {\"dir\":S,\"first_offset\":N,\"next_offset\":N,\"records\":N,\n"
    "                \"segment_count\":N,\"total_bytes\":N,\"min_timestamp\":MS|null,\n"
    "                \"max_timestamp\":MS|null,\"segments\":[{\"file\":S,\"base_offset\":N,\n"
    "                \"next_offset\":N,\"records\":N,\"size_bytes\":N,\"min_timestamp\":MS|null,\n"
    "                \"max_timestamp\":MS|null,\"active\":BOOL},...]}\n"
    "  -h, --help   show this help\n";

static void json_ts_or_null(FILE *f, int64_t ts) {
    if (ts < 0)
        fputs("null", f);
    else
        fprintf(f, "%" PRId64, ts);
}

static int cmd_info(int argc, char **argv) {
    static const struct option lopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, c;
    reset_getopt();
    while ((c = getopt_long(argc, argv, "jh", lopts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'h': fputs(info_help, stdout); return EXIT_OK;
        default: return bad_opt();
        }
    }
    if (optind >= argc) return usage_err("missing DIR");
    if (argc - optind > 1) return usage_err("unexpected argument '%s'", argv[optind + 1]);
    const char *dir = argv[optind];

    alog_options opts;
    alog_options_init(&opts);
    alog *log = NULL;
    alog_segment_info *segs = NULL;
    size_t nseg = 0;
    int rc = EXIT_OK;
    alog_err e = open_log(dir, 1, &opts, &log);
    if (e != ALOG_OK) {
        lib_err(e, "cannot open log '%s'", dir);
        return EXIT_FAIL;
    }
    e = alog_segments(log, &segs, &nseg);
    if (e != ALOG_OK) {
        lib_err(e, "%s: cannot list segments", dir);
        rc = EXIT_FAIL;
        goto out;
    }
    int64_t first = alog_first_offset(log), next = alog_next_offset(log);
    uint64_t total = 0;
    int64_t tmin = -1, tmax = -1;
    for (size_t i = 0; i < nseg; i++) {
        total += segs[i].size_bytes;
        if (segs[i].min_timestamp >= 0 && (tmin < 0 || segs[i].min_timestamp < tmin))
            tmin = segs[i].min_timestamp;
        if (segs[i].max_timestamp >= 0 && segs[i].max_timestamp > tmax)
            tmax = segs[i].max_timestamp;
    }
    char name[64];
    if (json) {
        fputs("{\"dir\":", stdout);
        json_cstr(stdout, dir);
        printf(",\"first_offset\":%" PRId64 ",\"next_offset\":%" PRId64 ",\"records\":%" PRId64
               ",\"segment_count\":%zu,\"total_bytes\":%" PRIu64
               ",\"unfinished_tail_bytes\":%" PRIu64 ",\"min_timestamp\":",
               first, next, next - first, nseg, total, alog_recovery(log)->bytes_truncated);
        json_ts_or_null(stdout, tmin);
        fputs(",\"max_timestamp\":", stdout);
        json_ts_or_null(stdout, tmax);
        fputs(",\"segments\":[", stdout);
        for (size_t i = 0; i < nseg; i++) {
            const alog_segment_info *s = &segs[i];
            snprintf(name, sizeof name, "%020" PRId64 ".log", s->base_offset);
            printf("%s{\"file\":\"%s\",\"base_offset\":%" PRId64 ",\"next_offset\":%" PRId64
                   ",\"records\":%" PRId64 ",\"size_bytes\":%" PRIu64 ",\"min_timestamp\":",
                   i ? "," : "", name, s->base_offset, s->next_offset,
                   s->next_offset - s->base_offset, s->size_bytes);
            json_ts_or_null(stdout, s->min_timestamp);
            fputs(",\"max_timestamp\":", stdout);
            json_ts_or_null(stdout, s->max_timestamp);
            printf(",\"active\":%s}", s->active ? "true" : "false");
        }
        fputs("]}\n", stdout);
    } else {
        char t1[64], t2[64];
        printf("log:           %s\n", dir);
        printf("first offset:  %" PRId64 "\n", first);
        printf("next offset:   %" PRId64 "\n", next);
        printf("records:       %" PRId64 "\n", next - first);
        printf("segments:      %zu\n", nseg);
        printf("total bytes:   %" PRIu64 "\n", total);
        if (alog_recovery(log)->bytes_truncated)
            printf("unfinished:    %" PRIu64 " bytes from offset %" PRId64 " on are not a complete "
                   "batch (cut at the next writable open)\n",
                   alog_recovery(log)->bytes_truncated, alog_recovery(log)->first_cut_offset);
        if (tmin >= 0) {
            format_time(tmin, t1, sizeof t1);
            format_time(tmax, t2, sizeof t2);
            printf("time range:    %s .. %s (%" PRId64 " .. %" PRId64 ")\n", t1, t2, tmin, tmax);
        } else {
            printf("time range:    none\n");
        }
        if (nseg) {
            printf("\n%-24s %20s %20s %14s %-24s %-24s %s\n", "FILE", "BASE OFFSET",
                   "NEXT OFFSET", "BYTES", "MIN TIMESTAMP", "MAX TIMESTAMP", "ACTIVE");
            for (size_t i = 0; i < nseg; i++) {
                const alog_segment_info *s = &segs[i];
                snprintf(name, sizeof name, "%020" PRId64 ".log", s->base_offset);
                if (s->min_timestamp >= 0) {
                    format_time(s->min_timestamp, t1, sizeof t1);
                    format_time(s->max_timestamp, t2, sizeof t2);
                } else {
                    snprintf(t1, sizeof t1, "-");
                    snprintf(t2, sizeof t2, "-");
                }
                printf("%-24s %20" PRId64 " %20" PRId64 " %14" PRIu64 " %-24s %-24s %s\n", name,
                       s->base_offset, s->next_offset, s->size_bytes, t1, t2,
                       s->active ? "yes" : "no");
            }
        }
    }
out:
    alog_free(segs);
    alog_close(log);
    if (out_finish() != 0) rc = EXIT_FAIL;
    return rc;
}

/* ---------------------------------------------------------------------------------
 * verify
 * ------------------------------------------------------------------------------- */
static const char verify_help[] =
    "Usage: alog verify DIR [--json] [--quiet]\n"
    "\n"
    "Checks every batch of every segment of the log in DIR and that each index agrees\n"
    "with its data (read-only; safe while a writer runs). Shows a progress bar on stderr\n"
    "when stderr is a terminal. Exit status 0 if the log is intact, 1 if it is damaged\n"
    "(the first damage is printed as '<file>: <message>, at byte position P (offset O)')\n"
    "or could not be checked.\n"
    "\n"
    "Options:\n"
    "  -j, --json    print the report as one JSON object:\n"
    "                {\"dir\":S,\"ok\":BOOL,\"segments\":N,\"batches\":N,\"records\":N,\n"
    "                 \"bytes\":N,\"error\":null|{\"file\":S,\"position\":N,\"offset\":N|null,\n"
    "                 \"message\":S}}\n"
    "  -q, --quiet   no progress bar and no summary; damage goes to stderr\n"
    "  -h, --help    show this help\n";

struct progress {
    int enabled;
    int drawn;
    int last_permille;
};

static void progress_cb(uint64_t done, uint64_t total, void *ctx) {
    struct progress *p = ctx;
    if (!p->enabled) return;
    int permille = total ? (int)((double)(done > total ? total : done) * 1000.0 / (double)total)
                         : 1000;
    if (p->drawn && permille == p->last_permille) return;
    p->last_permille = permille;
    p->drawn = 1;
    enum { WIDTH = 30 };
    int fill = permille * WIDTH / 1000;
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '-';
    bar[WIDTH] = '\0';
    fprintf(stderr, "\rverifying [%s] %5.1f%%  %.1f / %.1f MiB", bar, permille / 10.0,
            (double)done / 1048576.0, (double)total / 1048576.0);
    fflush(stderr);
}

/* The damage line's file: as reported, under dir if it has no directory part. */
static void bad_file_path(const char *dir, const char *bad, char *buf, size_t len) {
    if (strchr(bad, '/'))
        snprintf(buf, len, "%s", bad);
    else
        snprintf(buf, len, "%s/%s", dir, bad);
}

/* The library message without a leading "<file>: " that would repeat the file. */
static const char *strip_file_prefix(const char *m, const char *bad) {
    const char *base = strrchr(bad, '/');
    base = base ? base + 1 : bad;
    const char *cands[2] = {bad, base};
    for (int i = 0; i < 2; i++) {
        size_t l = strlen(cands[i]);
        if (l && strncmp(m, cands[i], l) == 0 && m[l] == ':' && m[l + 1] == ' ')
            return m + l + 2;
    }
    return m;
}

static int cmd_verify(int argc, char **argv) {
    static const struct option lopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, quiet = 0, c;
    reset_getopt();
    while ((c = getopt_long(argc, argv, "jqh", lopts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(verify_help, stdout); return EXIT_OK;
        default: return bad_opt();
        }
    }
    if (optind >= argc) return usage_err("missing DIR");
    if (argc - optind > 1) return usage_err("unexpected argument '%s'", argv[optind + 1]);
    const char *dir = argv[optind];

    struct progress prog = {.enabled = !quiet && isatty(STDERR_FILENO), .last_permille = -1};
    alog_verify_report rep;
    memset(&rep, 0, sizeof rep);
    rep.bad_offset = -1;
    alog_err e = alog_verify(dir, &rep, progress_cb, &prog);
    char lastmsg[1100];
    snprintf(lastmsg, sizeof lastmsg, "%s", alog_last_error());
    if (prog.drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    rep.bad_file[sizeof rep.bad_file - 1] = '\0';
    int damaged = e != ALOG_OK && (e == ALOG_ECORRUPT || rep.bad_file[0] != '\0');
    if (e != ALOG_OK && !damaged) {
        msg("cannot verify '%s': %s [%s]", dir, lastmsg[0] ? lastmsg : alog_strerror(e),
            alog_err_name(e));
        return EXIT_FAIL;
    }
    char path[1200];
    const char *detail = lastmsg[0] ? lastmsg : alog_strerror(e);
    if (damaged) {
        if (rep.bad_file[0])
            bad_file_path(dir, rep.bad_file, path, sizeof path);
        else
            snprintf(path, sizeof path, "%s", dir);
        detail = strip_file_prefix(detail, rep.bad_file);
    }
    if (json) {
        fputs("{\"dir\":", stdout);
        json_cstr(stdout, dir);
        printf(",\"ok\":%s,\"segments\":%" PRIu64 ",\"batches\":%" PRIu64 ",\"records\":%" PRIu64
               ",\"bytes\":%" PRIu64 ",\"error\":",
               damaged ? "false" : "true", rep.segments, rep.batches, rep.records, rep.bytes);
        if (damaged) {
            fputs("{\"file\":", stdout);
            json_cstr(stdout, path);
            printf(",\"position\":%" PRIu64 ",\"offset\":", rep.bad_position);
            if (rep.bad_offset >= 0)
                printf("%" PRId64, rep.bad_offset);
            else
                fputs("null", stdout);
            fputs(",\"message\":", stdout);
            if (utf8_valid(detail, strlen(detail)))
                json_cstr(stdout, detail);
            else
                json_cstr(stdout, alog_strerror(e));
            fputs("}}\n", stdout);
        } else {
            fputs("null}\n", stdout);
        }
    } else if (damaged) {
        char off[32];
        if (rep.bad_offset >= 0)
            snprintf(off, sizeof off, "%" PRId64, rep.bad_offset);
        else
            snprintf(off, sizeof off, "unknown");
        /* The library's message usually says where already; say it once. */
        char where[96] = "";
        if (!strstr(detail, "at byte position"))
            snprintf(where, sizeof where, ", at byte position %" PRIu64 " (offset %s)",
                     rep.bad_position, off);
        if (quiet)
            msg("%s: %s%s", path, detail, where);
        else
            printf("%s: %s%s\n", path, detail, where);
    } else if (!quiet) {
        printf("%s: OK: %" PRIu64 " segment%s, %" PRIu64 " batch%s, %" PRIu64 " record%s, %" PRIu64
               " bytes\n",
               dir, rep.segments, rep.segments == 1 ? "" : "s", rep.batches,
               rep.batches == 1 ? "" : "es", rep.records, rep.records == 1 ? "" : "s", rep.bytes);
    }
    if (out_finish() != 0) return EXIT_FAIL;
    return damaged ? EXIT_FAIL : EXIT_OK;
}

/* ---------------------------------------------------------------------------------
 * dump
 * ------------------------------------------------------------------------------- */
static const char dump_help[] =
    "Usage: alog dump FILE [--json]\n"
    "\n"
    "Prints one line per batch of a segment file (DIR/<20-digit base offset>.log), checking\n"
    "each batch fully: position, baseOffset, lastOffset, count, length (bytes after the\n"
    "length field), CRC, codec, timestamps, producer id/epoch, base sequence. On damage,\n"
    "prints the valid batches, then the error on stderr, and exits 1.\n"
    "\n"
    "Options:\n"
    "  -j, --json   one JSON object per batch and line:\n"
    "               {\"position\":N,\"base_offset\":N,\"last_offset\":N,\"count\":N,\n"
    "                \"length\":N,\"crc\":N,\"magic\":N,\"attributes\":N,\"codec\":S,\n"
    "                \"transactional\":BOOL,\"control\":BOOL,\"base_timestamp\":MS,\n"
    "                \"max_timestamp\":MS,\"producer_id\":N,\"producer_epoch\":N,\n"
    "                \"base_sequence\":N,\"leader_epoch\":N}\n"
    "  -h, --help   show this help\n";

struct dump_ctx {
    int json;
    uint64_t batches;
};

static const char *codec_name(int c) {
    static const char *names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    return c >= 0 && c <= 4 ? names[c] : "unknown";
}

static int dump_batch(const alog_batch_info *b, void *ctx) {
    struct dump_ctx *d = ctx;
    int codec = b->attributes & 7;
    int txn = (b->attributes >> 4) & 1, ctl = (b->attributes >> 5) & 1;
    int64_t last = b->base_offset + b->last_offset_delta;
    if (d->json) {
        printf("{\"position\":%" PRIu64 ",\"base_offset\":%" PRId64 ",\"last_offset\":%" PRId64
               ",\"count\":%" PRId32 ",\"length\":%" PRId32 ",\"crc\":%" PRIu32
               ",\"magic\":%d,\"attributes\":%d,\"codec\":\"%s\",\"transactional\":%s"
               ",\"control\":%s,\"base_timestamp\":%" PRId64 ",\"max_timestamp\":%" PRId64
               ",\"producer_id\":%" PRId64 ",\"producer_epoch\":%d,\"base_sequence\":%" PRId32
               ",\"leader_epoch\":%" PRId32 "}\n",
               b->position, b->base_offset, last, b->record_count, b->batch_length, b->crc,
               (int)b->magic, (int)b->attributes, codec_name(codec), txn ? "true" : "false",
               ctl ? "true" : "false", b->base_timestamp, b->max_timestamp, b->producer_id,
               (int)b->producer_epoch, b->base_sequence, b->leader_epoch);
    } else {
        printf("position: %" PRIu64 " baseOffset: %" PRId64 " lastOffset: %" PRId64
               " count: %" PRId32 " length: %" PRId32 " crc: 0x%08" PRIx32
               " magic: %d attributes: 0x%04x codec: %s isTransactional: %s isControl: %s"
               " baseTimestamp: %" PRId64 " maxTimestamp: %" PRId64 " producerId: %" PRId64
               " producerEpoch: %d baseSequence: %" PRId32 " leaderEpoch: %" PRId32 "\n",
               b->position, b->base_offset, last, b->record_count, b->batch_length, b->crc,
               (int)b->magic, (unsigned)(uint16_t)b->attributes, codec_name(codec),
               txn ? "true" : "false", ctl ? "true" : "false", b->base_timestamp,
               b->max_timestamp, b->producer_id, (int)b->producer_epoch, b->base_sequence,
               b->leader_epoch);
    }
    d->batches++;
    return out_failed() ? 1 : 0;
}

static int cmd_dump(int argc, char **argv) {
    static const struct option lopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct dump_ctx d = {0, 0};
    int c;
    reset_getopt();
    while ((c = getopt_long(argc, argv, "jh", lopts, NULL)) != -1) {
        switch (c) {
        case 'j': d.json = 1; break;
        case 'h': fputs(dump_help, stdout); return EXIT_OK;
        default: return bad_opt();
        }
    }
    if (optind >= argc) return usage_err("missing FILE");
    if (argc - optind > 1) return usage_err("unexpected argument '%s'", argv[optind + 1]);
    const char *file = argv[optind];

    uint64_t valid = 0;
    int rc = EXIT_OK;
    alog_err e = alog_scan_segment_file(file, dump_batch, &d, &valid);
    if (e == ALOG_ECORRUPT && !g_out_epipe) {
        /* The library's message names the file, position and offset already. */
        char detail[1100];
        snprintf(detail, sizeof detail, "%s", alog_last_error());
        const char *base = strrchr(file, '/');
        base = base ? base + 1 : file;
        msg("%s%s%s [ECORRUPT]; %" PRIu64 " valid batch%s (%" PRIu64 " bytes) before it",
            strstr(detail, base) ? "" : file, strstr(detail, base) ? "" : ": ",
            detail[0] ? detail : alog_strerror(e), d.batches, d.batches == 1 ? "" : "es", valid);
        rc = EXIT_FAIL;
    } else if (e != ALOG_OK && !g_out_epipe) {
        lib_err(e, "cannot scan segment file '%s'", file);
        rc = EXIT_FAIL;
    }
    if (out_finish() != 0) rc = EXIT_FAIL;
    return rc;
}

/* ---------------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------------- */
struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
};

static const struct command commands[] = {
    {"append", cmd_append, "append records (arguments or stdin lines)"},
    {"read", cmd_read, "print records from an offset or a time"},
    {"tail", cmd_tail, "print the last records; -f follows new ones"},
    {"info", cmd_info, "offsets, counts, segments, time range"},
    {"verify", cmd_verify, "check every batch and index of a log"},
    {"dump", cmd_dump, "batch-by-batch view of one segment file"},
};

static void main_usage(FILE *f) {
    fputs("Usage: alog COMMAND [ARGS...]\n"
          "       alog COMMAND --help\n"
          "       alog --version\n"
          "\n"
          "alog works on a durable append-only log kept in a directory (Kafka RecordBatch v2\n"
          "segments).\n"
          "\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "TIME arguments are milliseconds since the epoch or ISO 8601 (2024-01-15,\n"
          "2024-01-15T09:00:00Z, 2024-01-15T09:00:00.123+01:00).\n"
          "Exit status: 0 success, 1 failure, 2 usage error.\n",
          f);
}

int main(int argc, char **argv) {
    /* A closed stdout is reported as EPIPE and handled as a clean stop. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        main_usage(stderr);
        return EXIT_USAGE;
    }
    const char *c = argv[1];
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
        main_usage(stdout);
        return out_finish() == 0 ? EXIT_OK : EXIT_FAIL;
    }
    if (strcmp(c, "--version") == 0 || strcmp(c, "-V") == 0 || strcmp(c, "version") == 0) {
        printf("alog %s (libalog %s, on-disk format %d)\n", ALOG_VERSION_STRING, alog_version(),
               ALOG_FORMAT_VERSION);
        return out_finish() == 0 ? EXIT_OK : EXIT_FAIL;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(c, commands[i].name) == 0) {
            static char prog[32];
            snprintf(prog, sizeof prog, "alog %s", commands[i].name);
            g_cmd = prog;
            argv[1] = prog;
            return commands[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "alog: unknown command '%s'\nTry 'alog --help' for more information.\n", c);
    return EXIT_USAGE;
}
