/*
 * recovery.c -- what happens between an unclean shutdown and the first append: find
 * the end of the valid data, cut what is torn or corrupt after it, rebuild indexes.
 *
 * The recovery checkpoint (file "recovery-point", rewritten durably with temp file,
 * fsync, rename, directory fsync) names a batch boundary below which everything is
 * known to be on disk: it is written only after the .log and its index files were
 * fsynced up to that point (at a segment roll, at a clean close, and after a sync
 * that moved the durable point 64 MiB or more past the last checkpoint). It also
 * carries the indexing state at that point (largest timestamp so far, bytes since the
 * last index entry), so that indexing resumes exactly where it stood. One line of text:
 *
 *   alog-checkpoint 1 clean=C segment=B position=P next=N first_ts=T0 max_ts=T
 *       max_ts_offset=O since_index=S crc=XXXXXXXX
 *
 * with crc the CRC-32C (hex) of the text before " crc=". clean=1 is written by a clean
 * close and means the active segment ended exactly at P; a writable open rewrites it
 * with clean=0 before the first append.
 *
 * Opening a log therefore reads only what could be unfinished:
 *   - clean, and the last segment's size is still P: nothing is scanned;
 *   - otherwise the segment named by the checkpoint is scanned from P (from 0 if the
 *     file is now shorter than P, which only outside damage can cause), and every later
 *     segment from 0: each batch's header, CRC-32C and offset contiguity are checked;
 *   - at the first batch that fails, the file is cut there and every later segment is
 *     deleted (their offsets could no longer follow on), as Kafka's LogLoader does.
 * Recovery time grows with the data written since the last checkpoint, not with the
 * size of the log. Sealed segments before the checkpoint are trusted and their indexes
 * are loaded (and checked, and rebuilt if needed) only when first used.
 *
 * A read-only open runs the same scan but changes nothing: a torn tail is simply where
 * its view of the log ends. The scan and the check for zeros read the file with pread
 * (segment_scan, data_end_after), so a writing process that cuts the file meanwhile
 * only shortens what is read, never faults the reader.
 *
 * Zeros after the last batch are not a torn tail but preallocated space (prealloc.c):
 * a writable open keeps them for its appends, and nothing is reported cut.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "error.h"
#include "io.h"
#include "log.h"

#define CHECKPOINT_EVERY_BYTES (64u << 20)

alog_err checkpoint_read(const char *dir, log_checkpoint *cp, int *found) {
    char path[4096], buf[512];
    size_t len;
    *found = 0;
    snprintf(path, sizeof path, "%s/%s", dir, LOG_CHECKPOINT_FILE);
    alog_err e = io_read_small_file(path, buf, sizeof buf - 1, &len);
    if (e == ALOG_ENOENT) {
        err_clear();
        return ALOG_OK;
    }
    if (e) return e;
    buf[len] = '\0';
    char *crcp = strstr(buf, " crc=");
    unsigned crc;
    int version, n = 0;
    if (!crcp || sscanf(crcp, " crc=%8x\n%n", &crc, &n) != 1 || crcp[n] != '\0' ||
        crc != crc32c(buf, (size_t)(crcp - buf))) {
        /* A damaged checkpoint only costs a longer scan: recover everything. */
        return ALOG_OK;
    }
    *crcp = '\0';
    if (sscanf(buf,
               "alog-checkpoint %d clean=%d segment=%" SCNd64 " position=%" SCNu64
               " next=%" SCNd64 " first_ts=%" SCNd64 " max_ts=%" SCNd64
               " max_ts_offset=%" SCNd64 " since_index=%" SCNu64 "%n",
               &version, &cp->clean, &cp->segment, &cp->st.position, &cp->st.next_offset,
               &cp->st.first_ts, &cp->st.max_ts, &cp->st.max_ts_offset,
               &cp->st.bytes_since_index, &n) != 9 ||
        buf[n] != '\0' || version != 1 || cp->segment < 0 || cp->st.next_offset < cp->segment)
        return ALOG_OK;
    *found = 1;
    return ALOG_OK;
}

alog_err checkpoint_write(alog *log, int clean) {
    segment *a = log_active(log);
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "alog-checkpoint 1 clean=%d segment=%" PRId64 " position=%" PRIu64
                     " next=%" PRId64 " first_ts=%" PRId64 " max_ts=%" PRId64
                     " max_ts_offset=%" PRId64 " since_index=%" PRIu64,
                     clean, a->base, a->st.position, a->st.next_offset, a->st.first_ts,
                     a->st.max_ts, a->st.max_ts_offset, a->st.bytes_since_index);
    n += snprintf(buf + n, sizeof buf - (size_t)n, " crc=%08x\n", crc32c(buf, (size_t)n));
    alog_err e = io_replace_file(log->dir, LOG_CHECKPOINT_FILE, buf, (size_t)n);
    if (!e) {
        /* Read under pub_mu by the group-commit fsync (is a checkpoint due?). */
        pthread_mutex_lock(&log->pub_mu);
        log->checkpoint_seg = a->base;
        log->checkpoint_pos = a->st.position;
        pthread_mutex_unlock(&log->pub_mu);
    }
    return e;
}

int checkpoint_due_at(const alog *log, int64_t seg, uint64_t pos) {
    return seg != log->checkpoint_seg || pos - log->checkpoint_pos >= CHECKPOINT_EVERY_BYTES;
}

int checkpoint_due(const alog *log) {
    const segment *a = log->pub_active;
    return checkpoint_due_at(log, a->base, a->st.position);
}

/* Removes segments [from, nsegs) from the log (deleting their files if writable). */
static alog_err drop_segments_from(alog *log, size_t from) {
    alog_err e = ALOG_OK;
    for (size_t i = log->nsegs; i > from; i--) {
        segment *s = log->segs[i - 1];
        uint64_t size = 0;
        segment_file_size(s, &size);
        log->recovery.bytes_truncated += size;
        if (log->recovery.first_cut_offset < 0 || s->base < log->recovery.first_cut_offset)
            log->recovery.first_cut_offset = s->base;
        if (!log->opts.read_only) {
            alog_err e2 = segment_unlink(s);
            if (!e) e = e2;
        }
        segment_release(s);
    }
    log->nsegs = from;
    return e;
}

/* Where the data in [st.position, size) of s ends: after its last nonzero byte, or at
 * st.position if it is all zeros (preallocated space). Read with pread, not through the
 * mapping: these bytes are not checked, and a writing process may cut them meanwhile
 * (a mapped page past the new end of the file raises SIGBUS); what a cut removed counts
 * as absent. */
static alog_err data_end_after(segment *s, uint64_t size, uint64_t *data_end) {
    enum { CHUNK = 64 << 10 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf) return err_set(ALOG_ENOMEM, 0, "out of memory checking the tail of %s", s->path);
    uint64_t pos = s->st.position;
    *data_end = pos;
    alog_err e = ALOG_OK;
    while (pos < size) {
        size_t n = size - pos < CHUNK ? (size_t)(size - pos) : CHUNK;
        ssize_t got = segment_pread(s, pos, buf, n);
        if (got < 0) {
            e = err_sys(errno, "read %s (%zu bytes at byte position %" PRIu64 ")", s->path, n, pos);
            break;
        }
        uint64_t k = prealloc_data_end(buf, (uint64_t)got);
        if (k) *data_end = pos + k;
        if ((size_t)got < n) break; /* cut meanwhile: the file ends here now */
        pos += (uint64_t)got;
    }
    free(buf);
    return e;
}

/* Scans segment i from its current state; cuts (or, read-only, ends the view) at the
 * first bad batch. Returns 1 if the log ends in this segment (cut or gap), else 0. */
static int scan_one(alog *log, size_t i, alog_err *err) {
    segment *s = log->segs[i];
    uint64_t size;
    char why_buf[200];
    const char *why;
    *err = segment_file_size(s, &size);
    if (*err) return 1;
    uint64_t from = s->st.position;
    *err = segment_scan(s, size, log->opts.index_interval_bytes, &why, why_buf, sizeof why_buf);
    if (*err) return 1;
    log->recovery.segments_checked++;
    log->recovery.bytes_checked += s->st.position - from;
    if (why) {
        /* Zeros after the last batch are preallocated space (prealloc.c), not a torn
         * batch: nothing was cut. The last segment keeps them for its appends; an
         * earlier one (only outside damage leaves it so) loses them and the scan goes
         * on. What is cut, and counted, is what held anything. */
        uint64_t data_end = size;
        *err = data_end_after(s, size, &data_end);
        if (*err) return 1;
        if (data_end == s->st.position) {
            if (i + 1 == log->nsegs) {
                atomic_store(&s->alloc_end, size);
                return 1;
            }
            if (!log->opts.read_only) {
                *err = segment_truncate_tail(s);
                if (*err) return 1;
            }
            return log->segs[i + 1]->base != s->st.next_offset;
        }
        uint64_t cut = data_end - s->st.position;
        log->recovery.bytes_truncated += cut;
        log->recovery.first_cut_offset = s->st.next_offset;
        if (!log->opts.read_only) {
            *err = segment_truncate_tail(s);
            if (*err) return 1;
        }
        return 1;
    }
    if (i + 1 < log->nsegs && log->segs[i + 1]->base != s->st.next_offset) return 1;
    return 0;
}

alog_err log_recover(alog *log) {
    alog_recovery_info *ri = &log->recovery;
    memset(ri, 0, sizeof *ri);
    ri->first_cut_offset = -1;
    log_checkpoint cp;
    int found;
    alog_err e = checkpoint_read(log->dir, &cp, &found);
    if (e) return e;

    /* Sealed segments are known by their neighbours. */
    for (size_t i = 0; i + 1 < log->nsegs; i++) log->segs[i]->st.next_offset = log->segs[i + 1]->base;

    size_t k = 0;
    int from_checkpoint = 0;
    if (found) {
        for (size_t i = 0; i < log->nsegs; i++)
            if (log->segs[i]->base == cp.segment) { k = i; from_checkpoint = 1; }
    }
    if (from_checkpoint) {
        segment *s = log->segs[k];
        uint64_t size;
        e = segment_file_size(s, &size);
        if (e) return e;
        if (size >= cp.st.position && cp.st.next_offset >= s->base) {
            /* Trust [0, P): load the index entries below P, resume indexing from there.
             * Entries past P were written after the checkpoint, except after a clean close
             * (nothing was), where they are damage: loaded strictly, the files are then
             * either sound and kept as they are, or rebuilt. */
            int clean_end = cp.clean && k == log->nsegs - 1 && size == cp.st.position;
            int rc = index_load(&s->ix, s->ofd, s->tfd, cp.st.position,
                                (uint64_t)(cp.st.next_offset - s->base), !clean_end, s->opath,
                                s->tpath);
            if (rc < 0) return (alog_err)-rc;
            if ((rc == 1 && !s->ix_missing) || cp.st.position == 0) {
                s->st = cp.st;
                if (clean_end) {
                    ri->clean = 1;
                    s->ix_ready = 1;
                    return ALOG_OK;
                }
            } else {
                /* Rebuilt by the scan from 0: drop what index_load kept (it keeps a sound
                 * .index when only the .timeindex is missing, and vice versa). */
                ri->indexes_rebuilt++;
                s->ix_missing = 0; /* counted here, not again by the scan below */
                s->ix.on = s->ix.tn = s->ix.o_flushed = s->ix.t_flushed = 0;
                s->st = (seg_state){0, s->base, -1, -1, -1, 0};
            }
        } else {
            s->st = (seg_state){0, s->base, -1, -1, -1, 0};
        }
    }
    /* A writer that failed an fsync may have left pages whose write-back failed: Linux
     * marks them clean and keeps them, so reading the file would show bytes the disk
     * does not hold, and a new writer would count them as recovered (its own fsyncs do
     * not report the old error). Drop the clean cached pages of what is scanned, so
     * the scan reads the disk (dirty pages, written by a writer that was killed, stay:
     * they are still on their way to the disk). */
    if (!log->opts.read_only)
        for (size_t i = k; i < log->nsegs; i++)
            (void)posix_fadvise(log->segs[i]->fd, 0, 0, POSIX_FADV_DONTNEED);
    /* Scan segment k from its state, and every later one from 0. */
    for (size_t i = k; i < log->nsegs; i++) {
        segment *s = log->segs[i];
        if (i > k || !from_checkpoint) {
            s->ix.on = s->ix.tn = s->ix.o_flushed = s->ix.t_flushed = 0;
            s->st = (seg_state){0, s->base, -1, -1, -1, 0};
        }
        int ends = scan_one(log, i, &e);
        if (e) return e;
        s->ix_ready = 1;
        if (!log->opts.read_only) {
            if (s->ix_missing) ri->indexes_rebuilt++;
            s->ix_missing = 0;
            if (i + 1 < log->nsegs && !ends && s->st.max_ts >= 0)
                tindex_maybe_add(&s->ix, s->st.max_ts, (uint32_t)(s->st.max_ts_offset - s->base));
            e = index_rewrite(&s->ix, s->ofd, s->tfd, s->opath, s->tpath);
            if (e) return e;
        }
        if (ends) {
            e = drop_segments_from(log, i + 1);
            if (e) return e;
            break;
        }
    }
    if (!log->opts.read_only && ri->bytes_truncated && log->nsegs)
        e = io_fsync_dir(log->dir);
    return e;
}
