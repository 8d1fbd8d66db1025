/*
 * verify.c -- checking everything on disk: alog_scan_segment_file() for one .log file
 * and alog_verify() for a whole log.
 *
 * Independent of the open path on purpose: recovery trusts what a checkpoint vouches
 * for, verification trusts nothing. It reads every byte of every segment (through a
 * private read-only mapping, never changing a file), checks each batch's header,
 * CRC-32C and the framing of every record (decompressing compressed batches), that
 * offsets run without gap across segment boundaries, and that every offset-index and
 * time-index entry points at what it claims. It stops at the first damage and reports
 * the file, the byte position and the offset.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "bytes.h"
#include "error.h"
#include "index.h"
#include "io.h"
#include "log.h"

#define VERIFY_MAX_DECOMPRESSED (1u << 30)

typedef struct batch_mark {
    uint64_t position;
    int64_t last_offset;
    int64_t max_ts_so_far; /* largest timestamp in the segment up to this batch */
} batch_mark;

typedef struct scan_ctx {
    const char *path;
    int64_t expect_base; /* -1: any increasing offsets */
    alog_batch_fn fn;
    void *fn_ctx;
    batch_mark *marks; /* if collect */
    size_t nmarks, cap;
    int collect;
    uint64_t batches, records;
    alog_progress_fn progress;
    void *progress_ctx;
    uint64_t done_before, total;
    int zero_tail_ok; /* zeros after the last batch end the file (preallocated space) */
} scan_ctx;

static void info_from(const batch_header *h, uint64_t pos, alog_batch_info *bi) {
    *bi = (alog_batch_info){pos, h->base_offset, h->length, h->leader_epoch, h->magic, h->crc,
                            h->attributes, h->last_offset_delta, h->base_timestamp,
                            h->max_timestamp, h->producer_id, h->producer_epoch,
                            h->base_sequence, h->records_count};
}

/* Scans one file; returns ALOG_OK or the first error, *valid the good prefix. */
static alog_err scan_file(scan_ctx *sc, uint64_t *valid, int64_t *next_offset) {
    int fd = io->open(sc->path, O_RDONLY, 0);
    if (fd < 0) return err_sys(errno, "open %s", sc->path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        alog_err e = err_sys(errno, "stat %s", sc->path);
        io->close(fd);
        return e;
    }
    uint64_t size = (uint64_t)st.st_size;
    const uint8_t *map = NULL;
    if (size) {
        void *m = io->mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            alog_err e = err_sys(errno, "mmap %s", sc->path);
            io->close(fd);
            return e;
        }
        map = m;
        madvise(m, size, MADV_SEQUENTIAL);
    }
    io->close(fd);
    alog_err e = ALOG_OK;
    uint64_t pos = 0;
    int64_t expect = sc->expect_base, prev_last = -1, max_ts = -1;
    abuf decomp = {0};
    while (pos < size) {
        batch_header h;
        char why_buf[160];
        const char *why = batch_check(map + pos, size - pos, &h, why_buf, sizeof why_buf);
        int64_t at_offset = why ? (expect >= 0 ? expect : prev_last + 1) : h.base_offset;
        if (!why && expect >= 0 && h.base_offset != expect) {
            snprintf(why_buf, sizeof why_buf, "batch has base offset %" PRId64 ", expected %" PRId64,
                     h.base_offset, expect);
            why = why_buf;
        }
        if (!why && h.base_offset <= prev_last) why = "offsets go backwards";
        if (why && sc->zero_tail_ok && prealloc_data_end(map + pos, size - pos) == 0)
            break; /* the rest is zeros: preallocated space, not data (prealloc.c) */
        if (why) {
            e = err_set(ALOG_ECORRUPT, 0, "%s: %s, at byte position %" PRIu64 " (offset %" PRId64 ")",
                        sc->path, why, pos, at_offset);
            break;
        }
        int64_t bmax;
        e = batch_validate_records(map + pos, &h, &decomp, VERIFY_MAX_DECOMPRESSED, 0, &bmax);
        if (e) {
            err_prefix(e, "%s: batch at byte position %" PRIu64 " (offset %" PRId64 ")", sc->path,
                       pos, h.base_offset);
            break;
        }
        if (h.max_timestamp > max_ts) max_ts = h.max_timestamp;
        if (sc->collect) {
            if (sc->nmarks == sc->cap) {
                size_t c = sc->cap ? sc->cap * 2 : 1024;
                batch_mark *m = realloc(sc->marks, c * sizeof *m);
                if (!m) { e = err_set(ALOG_ENOMEM, 0, "out of memory"); break; }
                sc->marks = m;
                sc->cap = c;
            }
            sc->marks[sc->nmarks++] = (batch_mark){pos, batch_last_offset(&h), max_ts};
        }
        sc->batches++;
        sc->records += (uint64_t)h.records_count;
        if (sc->fn) {
            alog_batch_info bi;
            info_from(&h, pos, &bi);
            if (sc->fn(&bi, sc->fn_ctx)) { pos += batch_size(&h); break; }
        }
        prev_last = batch_last_offset(&h);
        if (expect >= 0) expect = prev_last + 1;
        pos += batch_size(&h);
        if (sc->progress && (sc->batches & 1023) == 0)
            sc->progress(sc->done_before + pos, sc->total, sc->progress_ctx);
    }
    abuf_free(&decomp);
    if (map) io->munmap((void *)map, size);
    *valid = pos;
    if (next_offset) *next_offset = expect >= 0 ? expect : prev_last + 1;
    return e;
}

alog_err alog_scan_segment_file(const char *path, alog_batch_fn fn, void *ctx,
                                uint64_t *valid_bytes_out) {
    err_clear();
    if (!path) return err_set(ALOG_EINVAL, 0, "alog_scan_segment_file: no path");
    scan_ctx sc = {.path = path, .expect_base = -1, .fn = fn, .fn_ctx = ctx, .zero_tail_ok = 1};
    uint64_t valid = 0;
    alog_err e = scan_file(&sc, &valid, NULL);
    if (valid_bytes_out) *valid_bytes_out = valid;
    return e;
}

/* Checks the index files of one segment against the batches seen in it. */
static alog_err check_indexes(const char *dir, int64_t base, const batch_mark *m, size_t n,
                              int64_t seg_next) {
    char opath[4096], tpath[4096];
    snprintf(opath, sizeof opath, "%s/%020" PRId64 ".index", dir, base);
    snprintf(tpath, sizeof tpath, "%s/%020" PRId64 ".timeindex", dir, base);
    int ofd = io->open(opath, O_RDONLY, 0), tfd = io->open(tpath, O_RDONLY, 0);
    seg_index ix = {0};
    alog_err e = ALOG_OK;
    /* index_load checks order and bounds; a missing or rejected file is rebuilt on
     * use, so it is reported only when present and inconsistent. */
    uint64_t end = n ? m[n - 1].position + 1 : 0;
    int rc = index_load(&ix, ofd, tfd, end ? end : 1, (uint64_t)(seg_next - base), 0, opath,
                        tpath);
    if (rc < 0) {
        e = (alog_err)-rc;
        goto out;
    }
    struct stat st;
    if (rc == 0 && ((ofd >= 0 && fstat(ofd, &st) == 0 && st.st_size > 0) ||
                    (tfd >= 0 && fstat(tfd, &st) == 0 && st.st_size > 0))) {
        e = err_set(ALOG_ECORRUPT, 0, "%s: index entries out of order or out of bounds", opath);
        goto out;
    }
    for (size_t i = 0; i < ix.on; i++) {
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (m[mid].position < ix.o[i].position) lo = mid + 1;
            else hi = mid;
        }
        if (lo == n || m[lo].position != ix.o[i].position ||
            m[lo].last_offset != base + ix.o[i].rel_offset) {
            e = err_set(ALOG_ECORRUPT, 0, "%s: entry %zu (offset %" PRId64 " at byte %u) does not "
                        "match the batch there", opath, i, base + ix.o[i].rel_offset,
                        ix.o[i].position);
            goto out;
        }
    }
    for (size_t i = 0; i < ix.tn; i++) {
        int64_t off = base + ix.t[i].rel_offset;
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (m[mid].last_offset < off) lo = mid + 1;
            else hi = mid;
        }
        if (lo == n || m[lo].max_ts_so_far != ix.t[i].timestamp) {
            e = err_set(ALOG_ECORRUPT, 0, "%s: entry %zu (timestamp %" PRId64 ", offset %" PRId64
                        ") does not match the data", tpath, i, ix.t[i].timestamp, off);
            goto out;
        }
    }
out:
    if (ofd >= 0) io->close(ofd);
    if (tfd >= 0) io->close(tfd);
    index_free(&ix);
    return e;
}

static void set_bad_file(alog_verify_report *r, const char *path) {
    size_t n = strlen(path);
    if (n >= sizeof r->bad_file) n = sizeof r->bad_file - 1;
    memcpy(r->bad_file, path, n);
    r->bad_file[n] = '\0';
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

alog_err alog_verify(const char *dir, alog_verify_report *report, alog_progress_fn progress,
                     void *progress_ctx) {
    err_clear();
    if (!dir || !report) return err_set(ALOG_EINVAL, 0, "alog_verify: bad arguments");
    memset(report, 0, sizeof *report);
    report->bad_offset = -1;
    /* Opening read-only checks the format version and that this is a log at all. */
    alog_options o;
    alog_options_init(&o);
    o.read_only = 1;
    alog *log;
    alog_err e = alog_open(dir, &o, &log);
    if (e) return e;
    alog_close(log);

    DIR *d = opendir(dir);
    if (!d) return err_sys(errno, "open directory %s", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    uint64_t total = 0;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len != 24 || strcmp(de->d_name + 20, ".log") != 0) continue;
        if (strspn(de->d_name, "0123456789") != 20) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) { e = err_set(ALOG_ENOMEM, 0, "out of memory"); break; }
            names = nn;
        }
        names[n] = strdup(de->d_name);
        if (!names[n]) { e = err_set(ALOG_ENOMEM, 0, "out of memory"); break; }
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, names[n]);
        if (stat(p, &st) == 0) total += (uint64_t)st.st_size;
        n++;
    }
    closedir(d);
    if (!e && n) qsort(names, n, sizeof *names, cmp_name);
    scan_ctx sc = {.collect = 1, .progress = progress, .progress_ctx = progress_ctx, .total = total};
    int64_t expect = -1;
    for (size_t i = 0; !e && i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int64_t base = strtoll(names[i], NULL, 10);
        if (expect >= 0 && base != expect) {
            e = err_set(ALOG_ECORRUPT, 0, "%s: segment starts at offset %" PRId64 " but the "
                        "previous one ended before offset %" PRId64, path, base, expect);
            set_bad_file(report, path);
            report->bad_offset = expect;
            break;
        }
        sc.path = path;
        sc.expect_base = base;
        sc.zero_tail_ok = i + 1 == n; /* only the active segment is preallocated */
        sc.nmarks = 0;
        uint64_t valid = 0;
        int64_t next = base;
        e = scan_file(&sc, &valid, &next);
        if (!e) e = check_indexes(dir, base, sc.marks, sc.nmarks, next);
        if (e) {
            set_bad_file(report, path);
            report->bad_position = valid;
            report->bad_offset = next;
            break;
        }
        report->segments++;
        report->bytes += valid;
        sc.done_before += valid;
        expect = next;
    }
    report->batches = sc.batches;
    report->records = sc.records;
    if (progress && !e) progress(total, total, progress_ctx);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    free(sc.marks);
    return e;
}
