/*
 * bench_alog.c -- alog's side of the benchmark: appends, the write() loop that replays
 * exactly the bytes alog wrote, sequential scans, and time-index seeks.
 *
 * Every system opens its files before the clock starts and closes them after it stops:
 * the figures are the cost of the appends (or reads) themselves. alog_close() syncs the
 * log, which is why it stays outside the timed part for the "fsync never" runs.
 */
#include "bench.h"

#include <alog.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK_MAX 1024

static void alog_opts(alog_options *o) {
    alog_options_init(o);
    o->fsync_policy = ALOG_FSYNC_NEVER;
    o->compression = ALOG_COMPRESSION_NONE;
    o->verify_reads = 1;
}

static int alog_fail(const char *what, const char *dir, alog_err e) {
    return fail("alog: %s (%s): %s: %s", what, dir, alog_err_name(e), alog_last_error());
}

run_result alog_append_run(const workload *w, const char *dir) {
    run_result r = {0};
    alog_options o;
    alog_opts(&o);
    alog *log = NULL;
    alog_err e = alog_open(dir, &o, &log);
    if (e != ALOG_OK) {
        alog_fail("open", dir, e);
        return r;
    }
    alog_record recs[CHUNK_MAX];
    memset(recs, 0, sizeof recs);
    size_t chunk = w->chunk < CHUNK_MAX ? w->chunk : CHUNK_MAX;

    double t0 = now_sec();
    uint64_t i = 0;
    if (chunk == 1) {
        alog_record rec = {0};
        for (; i < w->n; i++) {
            rec.timestamp = wl_ts(i);
            rec.value = wl_value(w, i);
            rec.value_len = w->vlen;
            e = alog_append(log, &rec, NULL);
            if (e != ALOG_OK) break;
        }
    } else {
        while (i < w->n) {
            size_t k = (w->n - i) < chunk ? (size_t)(w->n - i) : chunk;
            for (size_t j = 0; j < k; j++) {
                recs[j].timestamp = wl_ts(i + j);
                recs[j].value = wl_value(w, i + j);
                recs[j].value_len = w->vlen;
            }
            e = alog_append_batch(log, recs, k, NULL);
            if (e != ALOG_OK) break;
            i += k;
        }
    }
    double t1 = now_sec();

    if (e != ALOG_OK) {
        alog_fail("append", dir, e);
        alog_close(log);
        return r;
    }
    if (alog_next_offset(log) != (int64_t)w->n) {
        fail("alog: next offset %" PRId64 " after %" PRIu64 " records", alog_next_offset(log),
             w->n);
        alog_close(log);
        return r;
    }
    r.disk_bytes = path_bytes(dir);
    e = alog_close(log);
    if (e != ALOG_OK) {
        alog_fail("close", dir, e);
        return r;
    }
    r.ok = 1;
    r.secs = t1 - t0;
    r.records = w->n;
    r.payload_bytes = w->n * w->vlen;
    return r;
}

run_result alog_scan_run(const workload *w, const char *dir) {
    run_result r = {0};
    alog_options o;
    alog_opts(&o);
    o.create_if_missing = 0;
    alog *log = NULL;
    alog_cursor *cur = NULL;
    alog_err e = alog_open(dir, &o, &log);
    if (e != ALOG_OK) {
        alog_fail("open for scan", dir, e);
        return r;
    }
    uint64_t n = 0, payload = 0, bad = 0;
    alog_record rec;
    double t0 = now_sec();
    e = alog_cursor_open(log, alog_first_offset(log), &cur);
    if (e == ALOG_OK) {
        while ((e = alog_cursor_next(cur, &rec)) == ALOG_OK) {
            payload += rec.key_len + rec.value_len;
            /* Cheap checks on every record, the value bytes on one in 1024. */
            if (rec.offset != (int64_t)n || rec.timestamp != wl_ts(n) || rec.key != NULL ||
                rec.value_len != w->vlen)
                bad++;
            else if ((n & 1023) == 0 && memcmp(rec.value, wl_value(w, n), w->vlen) != 0)
                bad++;
            n++;
        }
    }
    double t1 = now_sec();
    alog_cursor_close(cur);
    if (e != ALOG_EOF) {
        alog_fail("scan", dir, e);
        alog_close(log);
        return r;
    }
    r.disk_bytes = path_bytes(dir);
    alog_close(log);
    if (n != w->n || bad != 0) {
        fail("alog: scan read %" PRIu64 " records (%" PRIu64 " wrong), expected %" PRIu64, n,
             bad, w->n);
        return r;
    }
    r.ok = 1;
    r.secs = t1 - t0;
    r.records = n;
    r.payload_bytes = payload;
    return r;
}

/* ---- alog's bytes, for the write loop ---- */

static int is_segment_name(const char *name) {
    size_t len = strlen(name);
    if (len != 24 || strcmp(name + 20, ".log") != 0) return 0;
    for (int i = 0; i < 20; i++)
        if (name[i] < '0' || name[i] > '9') return 0;
    return 1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct batch_list {
    uint64_t base; /* position of this file's first byte in the concatenation */
    uint64_t *off;
    uint32_t *len;
    size_t n, cap;
    int oom;
} batch_list;

static int collect_batch(const alog_batch_info *b, void *ctx) {
    batch_list *bl = ctx;
    if (bl->n == bl->cap) {
        size_t cap = bl->cap ? bl->cap * 2 : 4096;
        uint64_t *o = realloc(bl->off, cap * sizeof *o);
        if (o) bl->off = o;
        uint32_t *l = realloc(bl->len, cap * sizeof *l);
        if (l) bl->len = l;
        if (!o || !l) {
            bl->oom = 1;
            return 1;
        }
        bl->cap = cap;
    }
    bl->off[bl->n] = bl->base + b->position;
    bl->len[bl->n] = (uint32_t)b->batch_length + 12u;
    bl->n++;
    return 0;
}

static int read_whole(const char *path, uint8_t *dst, size_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("open %s: %s", path, strerror(errno)), -1;
    size_t done = 0;
    while (done < len) {
        ssize_t k = read(fd, dst + done, len - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            fail("read %s: %s", path, k < 0 ? strerror(errno) : "short file");
            close(fd);
            return -1;
        }
        done += (size_t)k;
    }
    close(fd);
    return 0;
}

int alog_bytes_load(const char *dir, alog_bytes *out) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return fail("opendir %s: %s", dir, strerror(errno)), -1;
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!is_segment_name(de->d_name)) continue;
        if (nn == cap) {
            cap = cap ? cap * 2 : 8;
            char **t = realloc(names, cap * sizeof *t);
            if (!t) break;
            names = t;
        }
        names[nn++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, nn, sizeof *names, cmp_str);

    int rc = -1;
    batch_list bl = {0};
    char path[4096];
    uint64_t total = 0;
    uint64_t *sizes = calloc(nn ? nn : 1, sizeof *sizes);
    if (!sizes) goto out;
    for (size_t i = 0; i < nn; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) != 0) {
            fail("stat %s: %s", path, strerror(errno));
            goto out;
        }
        sizes[i] = (uint64_t)st.st_size;
        uint64_t valid = 0;
        bl.base = total;
        alog_err e = alog_scan_segment_file(path, collect_batch, &bl, &valid);
        if (e != ALOG_OK || bl.oom || valid != sizes[i]) {
            fail("alog_scan_segment_file %s: %s: %s (valid %" PRIu64 " of %" PRIu64 " bytes)",
                 path, alog_err_name(e), alog_last_error(), valid, sizes[i]);
            goto out;
        }
        total += sizes[i];
    }
    out->data = malloc(total ? total : 1);
    if (!out->data) {
        fail("out of memory for %" PRIu64 " bytes", total);
        goto out;
    }
    for (size_t i = 0, pos = 0; i < nn; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (read_whole(path, out->data + pos, sizes[i]) != 0) goto out;
        pos += sizes[i];
    }
    out->len = total;
    out->batch_off = bl.off;
    out->batch_len = bl.len;
    out->nbatches = bl.n;
    bl.off = NULL;
    bl.len = NULL;
    rc = 0;
out:
    for (size_t i = 0; i < nn; i++) free(names[i]);
    free(names);
    free(sizes);
    free(bl.off);
    free(bl.len);
    if (rc != 0) alog_bytes_free(out);
    return rc;
}

void alog_bytes_free(alog_bytes *b) {
    free(b->data);
    free(b->batch_off);
    free(b->batch_len);
    memset(b, 0, sizeof *b);
}

run_result writeloop_run(const alog_bytes *b, uint64_t records, uint64_t payload,
                         const char *path) {
    run_result r = {0};
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fail("open %s: %s", path, strerror(errno));
        return r;
    }
    int err = 0;
    double t0 = now_sec();
    for (size_t k = 0; k < b->nbatches && !err; k++) {
        const uint8_t *p = b->data + b->batch_off[k];
        size_t left = b->batch_len[k];
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w < 0) {
                if (errno == EINTR) continue;
                err = errno;
                break;
            }
            p += w;
            left -= (size_t)w;
        }
    }
    double t1 = now_sec();
    if (err) {
        fail("write %s: %s", path, strerror(err));
        close(fd);
        return r;
    }
    r.disk_bytes = path_bytes(path);
    close(fd);
    r.ok = 1;
    r.secs = t1 - t0;
    r.records = records;
    r.payload_bytes = payload;
    return r;
}

run_result readback_run(const char *path, uint64_t records, uint64_t payload) {
    run_result r = {0};
    enum { BUFSZ = 1 << 20 };
    uint8_t *buf = malloc(BUFSZ);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (!buf || fd < 0) {
        fail("open %s: %s", path, strerror(errno));
        free(buf);
        if (fd >= 0) close(fd);
        return r;
    }
    uint64_t total = 0, sum = 0;
    double t0 = now_sec();
    for (;;) {
        ssize_t k = read(fd, buf, BUFSZ);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            fail("read %s: %s", path, strerror(errno));
            break;
        }
        if (k == 0) {
            r.ok = 1;
            break;
        }
        sum += buf[k - 1]; /* touch the data once so the read cannot be elided */
        total += (uint64_t)k;
    }
    double t1 = now_sec();
    close(fd);
    free(buf);
    (void)sum;
    r.secs = t1 - t0;
    r.records = records;
    r.payload_bytes = payload;
    r.disk_bytes = total;
    return r;
}

/* ---- time index ---- */

int timeindex_build(const char *dir, const uint8_t *pool, size_t pool_len, uint64_t records) {
    workload w = {"time index", 100, 100, records, pool, pool_len};
    run_result r = alog_append_run(&w, dir);
    return r.ok ? 0 : -1;
}

ti_result timeindex_measure(const char *dir, uint64_t records, uint64_t lookups, uint64_t seed) {
    ti_result res = {0};
    alog_options o;
    alog_opts(&o);
    o.create_if_missing = 0;
    alog *log = NULL;
    alog_err e = alog_open(dir, &o, &log);
    if (e != ALOG_OK) {
        alog_fail("open for time index", dir, e);
        return res;
    }
    double *tf = malloc(lookups * sizeof *tf);
    double *to = malloc(lookups * sizeof *to);
    int64_t *found = malloc(lookups * sizeof *found);
    int64_t *want = malloc(lookups * sizeof *want);
    if (!tf || !to || !found || !want) {
        fail("out of memory");
        goto out;
    }
    uint64_t st = seed;
    for (uint64_t k = 0; k < lookups; k++) want[k] = (int64_t)(rng_next(&st) % records);

    for (uint64_t k = 0; k < lookups; k++) {
        double t0 = now_sec();
        e = alog_offset_for_time(log, wl_ts((uint64_t)want[k]), &found[k]);
        double t1 = now_sec();
        if (e != ALOG_OK) {
            alog_fail("alog_offset_for_time", dir, e);
            goto out;
        }
        if (found[k] != want[k]) {
            fail("alog_offset_for_time(%" PRId64 ") = %" PRId64 ", expected %" PRId64,
                 wl_ts((uint64_t)want[k]), found[k], want[k]);
            goto out;
        }
        tf[k] = (t1 - t0) * 1e6;
    }
    for (uint64_t k = 0; k < lookups; k++) {
        alog_cursor *cur = NULL;
        alog_record rec;
        double t0 = now_sec();
        e = alog_cursor_open(log, found[k], &cur);
        if (e == ALOG_OK) e = alog_cursor_next(cur, &rec);
        double t1 = now_sec();
        if (e != ALOG_OK) {
            alog_fail("alog_cursor_open + next", dir, e);
            alog_cursor_close(cur);
            goto out;
        }
        if (rec.offset != found[k] || rec.timestamp != wl_ts((uint64_t)found[k])) {
            fail("cursor at %" PRId64 " read offset %" PRId64 " ts %" PRId64, found[k],
                 rec.offset, rec.timestamp);
            alog_cursor_close(cur);
            goto out;
        }
        alog_cursor_close(cur);
        to[k] = (t1 - t0) * 1e6;
    }
    sort_doubles(tf, lookups);
    sort_doubles(to, lookups);
    res.find_p50_us = percentile_sorted(tf, lookups, 50);
    res.find_p99_us = percentile_sorted(tf, lookups, 99);
    res.find_max_us = tf[lookups - 1];
    res.open_p50_us = percentile_sorted(to, lookups, 50);
    res.open_p99_us = percentile_sorted(to, lookups, 99);
    res.open_max_us = to[lookups - 1];
    res.ok = 1;
out:
    free(tf);
    free(to);
    free(found);
    free(want);
    alog_close(log);
    return res;
}
