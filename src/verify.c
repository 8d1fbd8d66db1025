/*
 * verify.c -- checking everything on disk: alog_scan_segment_file() for one .log file
 * and alog_verify() for a whole log.
 *
 * Independent of the open path on purpose: recovery trusts what a checkpoint vouches
 * for, verification trusts nothing. It reads every byte of every segment (with pread,
 * never through a mapping: a file the writer cuts meanwhile gives a short read, not
 * SIGBUS; it never changes a file), checks each batch's header,
 * CRC-32C and the framing of every record (decompressing compressed batches), that
 * offsets run without gap across segment boundaries, and that every offset-index and
 * time-index entry points at what it claims. It stops at the first damage and reports
 * the file, the byte position and the offset.
 *
 * It may run while a writer appends (the writer holds the flock on alog.lock). Then the
 * last segment is still being written: batches reserved and being written by the
 * writer's threads lie after the last published one, possibly half written, and index
 * entries are appended as batches are published. So in the last segment, with a writer
 * active, a batch that fails its checks at or past the published end the files vouch
 * for (the last offset-index entry, the checkpoint) is read again until it checks (the
 * write finished), the file ends before it or only zeros follow it (the end of the data
 * being written); only if it stays bad for VERIFY_SETTLE_MS is it reported as damage.
 * The scan stops at the file size seen when the segment was opened, and index entries
 * past the verified end are ignored. Damage in earlier segments, and before the
 * published end of the last, is reported at once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "bytes.h"
#include "error.h"
#include "index.h"
#include "io.h"
#include "log.h"

#define VERIFY_MAX_DECOMPRESSED (1u << 30)
#define VERIFY_READ_CHUNK (4u << 20)
/* How long a bad batch past the published end of a segment being written may take to
 * become whole before it is reported as damage. */
#define VERIFY_SETTLE_MS 5000

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
    const char *dir;  /* the log directory when the file is its last segment, else NULL */
    int live;         /* a writer holds the log: the last segment is being written */
    uint64_t published; /* live: a bad batch before this byte position is damage */
} scan_ctx;

/* Whether a writer holds the log (the flock on alog.lock). First from /proc/locks, by
 * the lock file's inode (not its device: overlay file systems report another one),
 * which never touches the lock. But /proc/locks lists only locks whose owner is in the
 * PID namespace of that /proc (a verifier in another container sees none), so when it
 * does not list one, by trying a shared lock, dropped at once: a writer opening in
 * that instant finds the lock taken and tries again (take_lock in log.c). */
static int writer_active(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, LOG_LOCK_FILE);
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    FILE *f = fopen("/proc/locks", "re");
    if (f) {
        char line[512];
        int found = 0;
        while (!found && fgets(line, sizeof line, f)) {
            char *q = strstr(line, "FLOCK");
            unsigned maj, min;
            unsigned long long ino;
            if (!q || strstr(line, "->")) continue; /* "->": waiting, not holding */
            if (sscanf(q, "FLOCK %*s %*s %*d %x:%x:%llu", &maj, &min, &ino) == 3 &&
                ino == (unsigned long long)st.st_ino)
                found = 1;
        }
        fclose(f);
        if (found) return 1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int busy = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return busy;
}

/* A file read with pread through a buffer: buf holds its bytes [off, off + len). */
typedef struct reader {
    int fd;
    const char *path;
    uint8_t *buf;
    size_t cap, len;
    uint64_t off;
} reader;

/* Points *p at the file's bytes [pos, pos + n); *got < n where the file ends first.
 * fresh: read them again even if buffered (bytes being written may have changed). */
static alog_err rd_get(reader *r, uint64_t pos, size_t n, int fresh, const uint8_t **p,
                       size_t *got) {
    *p = NULL; /* set on every path: -O3 cannot see that an error return leaves them unread */
    *got = 0;
    if (!fresh && pos >= r->off && pos + n <= r->off + r->len) {
        *p = r->buf + (pos - r->off);
        *got = n;
        return ALOG_OK;
    }
    size_t want = n > VERIFY_READ_CHUNK ? n : VERIFY_READ_CHUNK;
    if (want > r->cap) {
        uint8_t *b = realloc(r->buf, want);
        if (!b) return err_set(ALOG_ENOMEM, 0, "out of memory reading %s", r->path);
        r->buf = b;
        r->cap = want;
    }
    ssize_t k = io_pread_upto(r->fd, r->buf, want, pos);
    if (k < 0) {
        r->len = 0;
        return err_sys(errno, "read %s (%zu bytes at byte position %" PRIu64 ")", r->path, want,
                       pos);
    }
    size_t len = (size_t)k;
    r->off = pos;
    r->len = len;
    *p = r->buf;
    *got = len < n ? len : n;
    return ALOG_OK;
}

/* Whether [pos, end) of the file holds only zeros (or the file ends first). */
static alog_err rd_zeros(reader *r, uint64_t pos, uint64_t end, int fresh, int *zeros) {
    *zeros = 1;
    while (pos < end) {
        const uint8_t *p;
        size_t got, n = end - pos > VERIFY_READ_CHUNK ? VERIFY_READ_CHUNK : (size_t)(end - pos);
        alog_err e = rd_get(r, pos, n, fresh, &p, &got);
        if (e) return e;
        if (prealloc_data_end(p, got) != 0) {
            *zeros = 0;
            return ALOG_OK;
        }
        if (got < n) return ALOG_OK;
        pos += got;
    }
    return ALOG_OK;
}

/* Reads and checks the batch at pos of a file scanned up to end. Returns NULL if it is
 * sound (then *p points at it), else the reason. */
static const char *rd_batch(reader *r, uint64_t pos, uint64_t end, int fresh, batch_header *h,
                            const uint8_t **p, char *why_buf, size_t why_len, alog_err *err) {
    size_t got, n = end - pos < BATCH_HEADER_SIZE ? (size_t)(end - pos) : BATCH_HEADER_SIZE;
    *err = rd_get(r, pos, n, fresh, p, &got);
    if (*err) return "read error";
    if (got == BATCH_HEADER_SIZE) {
        batch_header_parse(*p, h);
        if (!batch_header_check(h)) {
            uint64_t size = batch_size(h);
            n = size > end - pos ? (size_t)(end - pos) : (size_t)size;
            if (n > got) {
                *err = rd_get(r, pos, n, 0, p, &got);
                if (*err) return "read error";
            }
        }
    }
    return batch_check(*p, got, h, why_buf, why_len);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Live scans: the batch at pos failed its checks past the published end. Waits for the
 * batch being written there to become whole. Returns NULL with *ends set when the data
 * ends at pos (the file was cut back to it, or only zeros follow), NULL with *ends clear
 * when the batch now checks (*p, *h filled), else the reason it still fails after
 * VERIFY_SETTLE_MS. *end becomes the file's current size (the batch may run past the
 * size seen before). */
static const char *settle(reader *r, uint64_t pos, uint64_t *end, batch_header *h,
                          const uint8_t **p, char *why_buf, size_t why_len, int *ends,
                          alog_err *err) {
    const char *why = "batch being written";
    *ends = 0;
    for (int waited = 0, step = 1;; waited += step, step = step < 64 ? step * 2 : step) {
        struct stat st;
        if (fstat(r->fd, &st) != 0) {
            *err = err_sys(errno, "stat %s", r->path);
            return "stat error";
        }
        *end = (uint64_t)st.st_size;
        if (pos >= *end) {
            *ends = 1;
            return NULL;
        }
        int zeros;
        *err = rd_zeros(r, pos, *end, 1, &zeros);
        if (*err) return "read error";
        if (zeros) {
            *ends = 1;
            return NULL;
        }
        why = rd_batch(r, pos, *end, 1, h, p, why_buf, why_len, err);
        if (*err || !why || waited >= VERIFY_SETTLE_MS) return why;
        sleep_ms(step);
    }
}

static void info_from(const batch_header *h, uint64_t pos, alog_batch_info *bi) {
    *bi = (alog_batch_info){pos, h->base_offset, h->length, h->leader_epoch, h->magic, h->crc,
                            h->attributes, h->last_offset_delta, h->base_timestamp,
                            h->max_timestamp, h->producer_id, h->producer_epoch,
                            h->base_sequence, h->records_count};
}

/* Scans one file; returns ALOG_OK or the first error, *valid the good prefix. */
static alog_err scan_file(scan_ctx *sc, uint64_t *valid, int64_t *next_offset) {
    reader rd = {.fd = io->open(sc->path, O_RDONLY, 0), .path = sc->path};
    if (rd.fd < 0) return err_sys(errno, "open %s", sc->path);
    struct stat st;
    if (fstat(rd.fd, &st) != 0) {
        alog_err e = err_sys(errno, "stat %s", sc->path);
        io->close(rd.fd);
        return e;
    }
    posix_fadvise(rd.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    /* Batches that start before limit are scanned (a live file grows on); size: what is
     * read, the file's size (live: as last seen). */
    uint64_t size = (uint64_t)st.st_size, limit = size;
    alog_err e = ALOG_OK;
    uint64_t pos = 0;
    int64_t expect = sc->expect_base, prev_last = -1, max_ts = -1;
    abuf decomp = {0};
    while (pos < limit) {
        batch_header h;
        char why_buf[160];
        const uint8_t *p = NULL;
        const char *why = rd_batch(&rd, pos, size, 0, &h, &p, why_buf, sizeof why_buf, &e);
        if (e) break;
        if (why && sc->dir && !sc->live) sc->live = writer_active(sc->dir);
        int settled = 0;
        if (why && sc->live && pos >= sc->published) {
            /* Past the published end of a segment being written: a batch being written
             * (or the end of the data) unless it stays bad. */
            int ends;
            why = settle(&rd, pos, &size, &h, &p, why_buf, sizeof why_buf, &ends, &e);
            if (size < limit) limit = size; /* cut back (a roll or close trims zeros) */
            if (e || ends) break;
            settled = 1;
        }
        int64_t at_offset = why ? (expect >= 0 ? expect : prev_last + 1) : h.base_offset;
        if (!why && expect >= 0 && h.base_offset != expect) {
            snprintf(why_buf, sizeof why_buf, "batch has base offset %" PRId64 ", expected %" PRId64,
                     h.base_offset, expect);
            why = why_buf;
        }
        if (!why && h.base_offset <= prev_last) why = "offsets go backwards";
        if (why && sc->zero_tail_ok) {
            int zeros;
            e = rd_zeros(&rd, pos, size, 0, &zeros);
            if (e || zeros) break; /* the rest is zeros: preallocated space, not data */
        }
        if (why) {
            e = err_set(ALOG_ECORRUPT, 0, "%s: %s, at byte position %" PRIu64 " (offset %" PRId64
                        ")%s", sc->path, why, pos, at_offset,
                        settled ? " (a writer is active, and the batch stayed bad)" : "");
            break;
        }
        int64_t bmax;
        e = batch_validate_records(p, &h, &decomp, VERIFY_MAX_DECOMPRESSED, 0, &bmax);
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
    free(rd.buf);
    io->close(rd.fd);
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
                              int64_t seg_next, int live, int writer) {
    char opath[4096], tpath[4096];
    snprintf(opath, sizeof opath, "%s/%020" PRId64 ".index", dir, base);
    snprintf(tpath, sizeof tpath, "%s/%020" PRId64 ".timeindex", dir, base);
    int ofd = io->open(opath, O_RDONLY, 0), tfd = io->open(tpath, O_RDONLY, 0);
    seg_index ix = {0};
    alog_err e = ALOG_OK;
    char lpath[4096];
    snprintf(lpath, sizeof lpath, "%s/%020" PRId64 ".log", dir, base);
    if (writer && (ofd < 0 || tfd < 0) && access(lpath, F_OK) != 0)
        goto out; /* deleted by the writer's retention after its .log was checked */
    /* index_load checks order and bounds; a missing or rejected file is rebuilt on
     * use, so it is reported only when present and inconsistent. live (the segment is
     * being written): entries past the verified batches were added for batches
     * published since they were read, so loading keeps the entries before them. */
    uint64_t end = n ? m[n - 1].position + 1 : 0;
    int rc = index_load(&ix, ofd, tfd, end ? end : 1, (uint64_t)(seg_next - base), live,
                        opath, tpath);
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

static alog_err check_format(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT) return err_set(ALOG_ENOENT, ENOENT, "%s: no such log", dir);
        return err_sys(errno, "stat %s", dir);
    }
    if (!S_ISDIR(st.st_mode)) return err_set(ALOG_EINVAL, ENOTDIR, "%s is not a directory", dir);
    char path[4096], buf[128];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", dir, LOG_META_FILE);
    alog_err e = io_read_small_file(path, buf, sizeof buf - 1, &len);
    if (e == ALOG_ENOENT) {
        err_clear();
        return err_set(ALOG_ENOENT, 0, "%s: not an alog log (no %s)", dir, LOG_META_FILE);
    }
    if (e) return e;
    return log_check_format_text(path, buf, len);
}

/* Live scans: a batch before the returned byte position of segment base is published
 * (so bytes there never change): the last offset-index entry points at a published
 * batch, and the checkpoint at a published end. */
static uint64_t published_end(const char *dir, int64_t base) {
    uint64_t end = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/%020" PRId64 ".index", dir, base);
    int fd = io->open(path, O_RDONLY, 0);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= OINDEX_ENTRY_SIZE) {
        uint8_t b[OINDEX_ENTRY_SIZE];
        uint64_t at = (uint64_t)st.st_size / OINDEX_ENTRY_SIZE * OINDEX_ENTRY_SIZE -
                      OINDEX_ENTRY_SIZE;
        if (io->pread(fd, b, sizeof b, (off_t)at) == (ssize_t)sizeof b)
            end = (uint64_t)be32_load(b + 4) + 1;
    }
    if (fd >= 0) io->close(fd);
    log_checkpoint cp;
    int found = 0;
    if (checkpoint_read(dir, &cp, &found) == ALOG_OK && found && cp.segment == base &&
        cp.st.position > end)
        end = cp.st.position;
    err_clear();
    return end;
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
    /* That this is a log at all, of a format version this build reads (as alog_open
     * checks; not opened, which would scan the active segment through a mapping). */
    alog_err e = check_format(dir);
    if (e) return e;
    int writer = writer_active(dir);

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
    if (!e && !n) e = err_set(ALOG_ENOENT, 0, "%s: the log has no segments", dir);
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
        sc.dir = i + 1 == n ? dir : NULL;
        sc.live = i + 1 == n && writer;
        sc.published = sc.live ? published_end(dir, base) : 0;
        sc.nmarks = 0;
        uint64_t valid = 0;
        int64_t next = base;
        e = scan_file(&sc, &valid, &next);
        if (e == ALOG_ENOENT && (writer || writer_active(dir))) {
            /* Deleted by the writer's retention since the directory was read (and so
             * were the older ones): the log starts later now. */
            err_clear();
            e = ALOG_OK;
            expect = -1;
            continue;
        }
        if (!e && sc.dir && !sc.live) sc.live = writer_active(dir);
        /* The last segment is being written (live); a writer's retention may delete
         * earlier ones meanwhile. */
        if (!e) e = check_indexes(dir, base, sc.marks, sc.nmarks, next, sc.live,
                                  writer || sc.live);
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
