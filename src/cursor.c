/*
 * cursor.c -- reading records in offset order, across segments.
 *
 * A cursor holds a reference on the segment it is in (so retention can delete the
 * files under it without pulling the memory away), a byte position at a batch
 * boundary, and the iterator over the records of the current batch. Batches are read
 * straight from the segment's mapping; only compressed ones are copied, into the
 * cursor's decompression buffer. Every batch is checked before use (header and
 * bounds always, CRC-32C unless verify_reads is off), so damage is reported as
 * ALOG_ECORRUPT with the segment file, byte position and offset, never returned as
 * records. Control batches (transaction markers) are skipped.
 *
 * The log's lock is taken only to read the segment list and the published end of the
 * segment; the bytes below that end never change, so they are read without it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"

struct alog_cursor {
    alog *log;
    segment *seg;      /* referenced */
    uint64_t pos;      /* next batch to load */
    uint64_t batch_pos;
    int64_t want;      /* next offset to return; earlier records are skipped */
    int in_seq;        /* the batch at pos must start at want (0 right after a seek) */
    int in_batch;
    rec_iter it;
    abuf decomp, hdrs;
};

static void set_segment(alog_cursor *c, segment *s) {
    if (s) s->refs++;
    if (c->seg) segment_release(c->seg);
    c->seg = s;
}

/* With the log locked: positions the cursor at offset. */
static alog_err seek_locked(alog_cursor *c, int64_t offset) {
    alog *log = c->log;
    int64_t first = log->segs[0]->base, next = log_active(log)->st.next_offset;
    if (offset < first || offset > next)
        return err_set(ALOG_ERANGE, 0, "offset %" PRId64 " is out of range: the log holds [%"
                       PRId64 ", %" PRId64 ")", offset, first, next);
    segment *s;
    uint64_t pos;
    if (offset == next) {
        s = log_active(log);
        pos = s->st.position;
    } else {
        long i = log_find_segment(log, offset);
        if (i < 0) return err_set(ALOG_ERANGE, 0, "offset %" PRId64 " is in no segment", offset);
        s = log->segs[i];
        int rebuilt;
        alog_err e = segment_load_index(s, log->opts.index_interval_bytes, &rebuilt);
        if (e) return e;
        log->recovery.indexes_rebuilt += (uint64_t)rebuilt;
        e = segment_find(s, offset, &pos);
        if (e) return e;
    }
    set_segment(c, s);
    c->pos = pos;
    c->want = offset;
    c->in_seq = 0;
    c->in_batch = 0;
    return ALOG_OK;
}

alog_err alog_cursor_seek(alog_cursor *c, int64_t offset) {
    err_clear();
    if (!c) return err_set(ALOG_EINVAL, 0, "alog_cursor_seek: no cursor");
    pthread_mutex_lock(&c->log->mu);
    alog_err e = seek_locked(c, offset);
    pthread_mutex_unlock(&c->log->mu);
    return e;
}

alog_err alog_cursor_open(alog *log, int64_t offset, alog_cursor **out) {
    err_clear();
    if (!log || !out) return err_set(ALOG_EINVAL, 0, "alog_cursor_open: bad arguments");
    alog_cursor *c = calloc(1, sizeof *c);
    if (!c) return err_set(ALOG_ENOMEM, 0, "out of memory");
    c->log = log;
    pthread_mutex_lock(&log->mu);
    alog_err e = seek_locked(c, offset);
    if (!e) log->cursors++;
    pthread_mutex_unlock(&log->mu);
    if (e) {
        set_segment(c, NULL);
        free(c);
        return e;
    }
    *out = c;
    return ALOG_OK;
}

void alog_cursor_close(alog_cursor *c) {
    if (!c) return;
    pthread_mutex_lock(&c->log->mu);
    c->log->cursors--;
    set_segment(c, NULL);
    pthread_mutex_unlock(&c->log->mu);
    abuf_free(&c->decomp);
    abuf_free(&c->hdrs);
    free(c);
}

/* Finds the segment after c->seg in the log. With the log locked. */
static segment *successor(alog *log, const segment *s) {
    for (size_t i = 0; i + 1 < log->nsegs; i++)
        if (log->segs[i] == s) return log->segs[i + 1];
    return NULL;
}

/* Loads the batch at c->pos into the iterator. Returns ALOG_EOF at the end. */
static alog_err load_batch(alog_cursor *c) {
    alog *log = c->log;
    for (;;) {
        if (c->seg->deleted)
            return err_set(ALOG_ERANGE, 0, "offset %" PRId64 " is out of range: its segment "
                           "was deleted by retention", c->want);
        pthread_mutex_lock(&log->mu);
        segment *s = c->seg;
        uint64_t end = s->st.position;
        if (c->pos >= end) {
            segment *n = successor(log, s);
            if (!n && log->opts.read_only && s == log_active(log)) {
                alog_err e = log_refresh(log);
                if (e) {
                    pthread_mutex_unlock(&log->mu);
                    return e;
                }
                end = s->st.position;
                n = c->pos >= end ? successor(log, s) : NULL;
            }
            if (c->pos >= end) {
                if (n) {
                    set_segment(c, n);
                    c->pos = 0;
                }
                pthread_mutex_unlock(&log->mu);
                if (n) continue;
                return ALOG_EOF;
            }
        }
        int active = s == log_active(log);
        alog_err e = segment_map(s, end, active ? log->opts.segment_bytes : end);
        pthread_mutex_unlock(&log->mu);
        if (e) return e;

        const uint8_t *p = s->map + c->pos;
        batch_header h;
        char why_buf[160];
        const char *why;
        if (log->opts.verify_reads) {
            why = batch_check(p, end - c->pos, &h, why_buf, sizeof why_buf);
        } else {
            batch_header_parse(p, &h);
            why = batch_header_check(&h);
            if (!why && batch_size(&h) > end - c->pos) why = "batch runs past the end of the segment";
        }
        /* baseOffset is outside the CRC: only the sequence of offsets vouches for it. Right
         * after a seek the batch holds want (segment_find chose it by its offsets); after
         * that each batch starts where the previous one ended. */
        if (!why && (c->in_seq ? h.base_offset != c->want
                               : h.base_offset > c->want || batch_last_offset(&h) < c->want)) {
            snprintf(why_buf, sizeof why_buf, "batch has offsets %" PRId64 "..%" PRId64
                     " where offset %" PRId64 " was expected", h.base_offset,
                     batch_last_offset(&h), c->want);
            why = why_buf;
        }
        if (why)
            return err_set(ALOG_ECORRUPT, 0, "%s: %s, in the batch at byte position %" PRIu64
                           " (offset %" PRId64 ")", s->path, why, c->pos, c->want);
        uint64_t at = c->pos;
        c->pos += batch_size(&h);
        c->in_seq = 1;
        if (h.attributes & BATCH_ATTR_CONTROL) {
            c->want = batch_last_offset(&h) + 1;
            continue;
        }
        e = rec_iter_init(&c->it, p, &h, &c->decomp, (size_t)log->opts.max_batch_bytes * 16u);
        if (e)
            return err_prefix(e, "%s: batch at byte position %" PRIu64 " (offset %" PRId64 ")",
                              s->path, at, h.base_offset);
        c->batch_pos = at;
        c->in_batch = 1;
        return ALOG_OK;
    }
}

alog_err alog_cursor_next(alog_cursor *c, alog_record *rec) {
    err_clear();
    if (!c || !rec) return err_set(ALOG_EINVAL, 0, "alog_cursor_next: bad arguments");
    for (;;) {
        if (!c->in_batch) {
            alog_err e = load_batch(c);
            if (e) return e;
        }
        const char *why;
        int rc = rec_iter_next(&c->it, rec, &c->hdrs, &why);
        if (rc == 1) {
            if (rec->offset < c->want) continue;
            c->want = rec->offset + 1;
            return ALOG_OK;
        }
        c->in_batch = 0;
        if (rc == 0) {
            /* The next batch starts after lastOffsetDelta, even if the last records are
             * gone (compaction keeps lastOffsetDelta). */
            int64_t end = c->it.base_offset + c->it.last_offset_delta + 1;
            if (end > c->want) c->want = end;
        }
        if (rc < 0)
            return err_set(ALOG_ECORRUPT, 0, "%s: %s, in the batch at byte position %" PRIu64
                           " (offset %" PRId64 ")", c->seg->path, why, c->batch_pos, c->want);
    }
}
