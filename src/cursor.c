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
 * Readers never take the writer's lock. Within a segment a cursor takes no lock at
 * all: it loads the segment's published end (an atomic, stored by the writer after
 * the bytes were written) and reads below it, where bytes never change. It holds the
 * segment mapping it reads through (segment_map_get), taking a larger one only when
 * the published end has outgrown it, so a replaced mapping is unmapped once no cursor
 * or raw read still holds it. The segment
 * list is held shared only for a moment, to look a segment up or move to the next
 * one; an index lookup (open, seek) takes the publication lock for its duration.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

struct alog_cursor {
    alog *log;
    segment *seg;      /* referenced */
    seg_map *map;      /* a mapping of seg, held (NULL until the first batch is read) */
    uint64_t pos;      /* next batch to load */
    uint64_t batch_pos;
    int64_t want;      /* next offset to return; earlier records are skipped */
    int in_seq;        /* the batch at pos must start at want (0 right after a seek) */
    int in_batch;
    rec_iter it;
    abuf decomp, hdrs;
};

/* Makes s the cursor's segment (NULL: none), letting go of the mapping of another. */
static void set_segment(alog_cursor *c, segment *s) {
    if (s) segment_ref(s);
    if (c->map && c->seg != s) {
        segment_map_put(c->seg, c->map);
        c->map = NULL;
    }
    if (c->seg) segment_release(c->seg);
    c->seg = s;
}

/* Positions the cursor at offset. With list_lock held shared; takes pub_mu for the
 * index lookup. */
static alog_err seek_listed(alog_cursor *c, int64_t offset) {
    alog *log = c->log;
    segment *act = log_active(log);
    int64_t first = log->segs[0]->base;
    /* One load gives next and the position where it starts, from the same publication. */
    int64_t next;
    uint64_t end_pos;
    segment_pub_pair(act, &next, &end_pos);
    if (offset < first || offset > next)
        return err_set(ALOG_ERANGE, 0, "offset %" PRId64 " is out of range: the log holds [%"
                       PRId64 ", %" PRId64 ")", offset, first, next);
    segment *s = NULL;
    uint64_t pos = end_pos;
    if (offset == next) s = act;
    if (!s) {
        long i = log_find_segment(log, offset);
        if (i < 0) return err_set(ALOG_ERANGE, 0, "offset %" PRId64 " is in no segment", offset);
        s = log->segs[i];
        pthread_mutex_lock(&log->pub_mu);
        int rebuilt;
        alog_err e = segment_load_index(s, log->opts.index_interval_bytes, &rebuilt);
        log->recovery.indexes_rebuilt += (uint64_t)rebuilt;
        if (!e) e = segment_find(s, offset, &pos);
        pthread_mutex_unlock(&log->pub_mu);
        if (e) return e;
    }
    set_segment(c, s);
    c->pos = pos;
    c->want = offset;
    c->in_seq = 0;
    c->in_batch = 0;
    return ALOG_OK;
}

static alog_err refresh(alog *log);

alog_err alog_cursor_seek(alog_cursor *c, int64_t offset) {
    err_clear();
    if (!c) return err_set(ALOG_EINVAL, 0, "alog_cursor_seek: no cursor");
    if (c->log->opts.read_only) {
        /* The range checked against is the writer's now (appends, retention). */
        alog_err e = refresh(c->log);
        if (e) return e;
    }
    pthread_rwlock_rdlock(&c->log->list_lock);
    alog_err e = seek_listed(c, offset);
    pthread_rwlock_unlock(&c->log->list_lock);
    return e;
}

alog_err alog_cursor_open(alog *log, int64_t offset, alog_cursor **out) {
    err_clear();
    if (!log || !out) return err_set(ALOG_EINVAL, 0, "alog_cursor_open: bad arguments");
    alog_cursor *c = calloc(1, sizeof *c);
    if (!c) return err_set(ALOG_ENOMEM, 0, "out of memory");
    c->log = log;
    alog_err e = log->opts.read_only ? refresh(log) : ALOG_OK;
    if (e) {
        free(c);
        return e;
    }
    pthread_rwlock_rdlock(&log->list_lock);
    e = seek_listed(c, offset);
    pthread_rwlock_unlock(&log->list_lock);
    if (e) {
        set_segment(c, NULL);
        free(c);
        return e;
    }
    atomic_fetch_add(&log->cursors, 1);
    *out = c;
    return ALOG_OK;
}

void alog_cursor_close(alog_cursor *c) {
    if (!c) return;
    atomic_fetch_sub(&c->log->cursors, 1);
    set_segment(c, NULL);
    abuf_free(&c->decomp);
    abuf_free(&c->hdrs);
    free(c);
}

/* Moves the cursor to the segment after its own if there is one (taking a reference
 * while the list is held). Returns 1 if it moved. */
static int to_successor(alog_cursor *c) {
    alog *log = c->log;
    int moved = 0;
    pthread_rwlock_rdlock(&log->list_lock);
    for (size_t i = 0; i + 1 < log->nsegs; i++)
        if (log->segs[i] == c->seg) {
            set_segment(c, log->segs[i + 1]);
            c->pos = 0;
            moved = 1;
            break;
        }
    pthread_rwlock_unlock(&log->list_lock);
    return moved;
}

/* Read-only handles: picks up what the writing process appended since (log.c). */
static alog_err refresh(alog *log) {
    pthread_mutex_lock(&log->mu);
    alog_err e = log_refresh(log);
    pthread_mutex_unlock(&log->mu);
    return e;
}

/* Loads the batch at c->pos into the iterator. Returns ALOG_EOF at the end. Takes no
 * lock while it stays within a segment: the published end is an atomic. */
static alog_err load_batch(alog_cursor *c) {
    alog *log = c->log;
    for (;;) {
        if (atomic_load(&c->seg->deleted))
            return err_set(ALOG_ERANGE, 0, "offset %" PRId64 " is out of range: its segment "
                           "was deleted by retention", c->want);
        segment *s = c->seg;
        uint64_t end = atomic_load_explicit(&s->pub_pos, memory_order_acquire);
        if (c->pos >= end) {
            if (log->opts.read_only) {
                alog_err e = refresh(log);
                if (e) return e;
                end = atomic_load_explicit(&s->pub_pos, memory_order_acquire);
            }
            if (c->pos >= end) {
                /* A successor exists only once this segment is sealed, and then its
                 * end is final: look at it again after seeing one, or records
                 * published just before the roll would be skipped. */
                uint64_t pos = c->pos;
                segment *was = s;
                segment_ref(was);
                int moved = to_successor(c);
                if (moved && pos < atomic_load_explicit(&was->pub_pos, memory_order_acquire)) {
                    set_segment(c, was);
                    c->pos = pos;
                }
                segment_release(was);
                /* Not moved because retention took the segment out of the list: the
                 * check at the top reports ALOG_ERANGE. */
                if (moved || atomic_load(&c->seg->deleted)) continue;
                return ALOG_EOF;
            }
        }
        /* The mapping held covers the published end, or a larger one replaces it: map
         * ahead (segment_bytes) so that a growing active segment is rarely remapped. No
         * record of the previous batch is in use any more (the caller asked for the next). */
        if (!c->map || c->map->len < end) {
            seg_map *m;
            alog_err e = segment_map_get(s, end, end > log->opts.segment_bytes
                                                     ? end : log->opts.segment_bytes, &m);
            if (e) return e;
            if (c->map) segment_map_put(s, c->map);
            c->map = m;
        }
        alog_err e;
        const uint8_t *p = c->map->p + c->pos;
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

/* Whether alog_cursor_next() has something to return: records left in the current
 * batch, or published offsets at or past the cursor's. locked: pub_mu is held. */
static int has_data(alog_cursor *c, int locked) {
    if (c->in_batch && c->it.remaining > 0) return 1;
    return c->want < (locked ? c->log->pub_active->st.next_offset : alog_next_offset(c->log));
}

/* Another process writes: inotify on the log directory reports writes to its files
 * and new segments; each wake-up re-reads what was appended. Where inotify is out of
 * instances or watches (fs.inotify.max_user_instances is 128 per user by default, and
 * every waiting cursor holds one), the wait looks every POLL_FALLBACK_MS instead of
 * failing. */
#define POLL_FALLBACK_MS 20
static alog_err wait_other_process(alog_cursor *c, int timeout_ms) {
    alog *log = c->log;
    int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (fd < 0 && errno != EMFILE && errno != ENFILE && errno != ENOMEM)
        return err_sys(errno, "inotify_init1");
    alog_err e = ALOG_OK;
    if (fd >= 0 && inotify_add_watch(fd, log->dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO) < 0) {
        if (errno != ENOSPC && errno != ENOMEM)
            e = err_sys(errno, "inotify_add_watch %s", log->dir);
        close(fd);
        fd = -1;
    }
    int64_t deadline = timeout_ms >= 0 ? log_mono_ms() + timeout_ms : -1;
    while (!e) {
        e = refresh(log);
        if (e || has_data(c, 0)) break;
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - log_mono_ms();
            if (left <= 0) {
                e = err_set(ALOG_ETIMEDOUT, 0, "no new records in %d ms", timeout_ms);
                break;
            }
            wait = left > INT32_MAX ? INT32_MAX : (int)left;
        }
        if (fd < 0 && (wait < 0 || wait > POLL_FALLBACK_MS)) wait = POLL_FALLBACK_MS;
        struct pollfd p = {fd, POLLIN, 0}; /* fd -1: poll only sleeps */
        int rc = poll(&p, 1, wait);
        if (rc < 0) {
            /* A signal: give the caller a chance to look at its flags. */
            e = errno == EINTR ? err_set(ALOG_ETIMEDOUT, EINTR, "wait interrupted by a signal")
                               : err_sys(errno, "poll");
            break;
        }
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        while (fd >= 0 && read(fd, buf, sizeof buf) > 0) {
        }
    }
    if (fd >= 0) close(fd);
    return e;
}

alog_err alog_cursor_wait(alog_cursor *c, int timeout_ms) {
    err_clear();
    if (!c) return err_set(ALOG_EINVAL, 0, "alog_cursor_wait: no cursor");
    alog *log = c->log;
    if (log->opts.read_only) return wait_other_process(c, timeout_ms);
    struct timespec dl;
    if (timeout_ms >= 0) log_deadline_in(&dl, timeout_ms);
    alog_err e = ALOG_OK;
    pthread_mutex_lock(&log->pub_mu);
    log->data_waiters++;
    while (!has_data(c, 1)) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&log->data_cv, &log->pub_mu);
        } else if (pthread_cond_timedwait(&log->data_cv, &log->pub_mu, &dl) == ETIMEDOUT &&
                   !has_data(c, 1)) {
            e = err_set(ALOG_ETIMEDOUT, 0, "no new records in %d ms", timeout_ms);
            break;
        }
    }
    log->data_waiters--;
    pthread_mutex_unlock(&log->pub_mu);
    return e;
}

/* ---- raw batches (a server's Fetch) ------------------------------------------------ */

alog_err alog_read_raw(alog *log, int64_t offset, size_t max_bytes, alog_raw *out) {
    err_clear();
    if (!log || !out) return err_set(ALOG_EINVAL, 0, "alog_read_raw: bad arguments");
    memset(out, 0, sizeof *out);
    out->fd = -1;
    if (log->opts.read_only) {
        alog_err e = refresh(log);
        if (e) return e;
    }
    /* A cursor positioned at offset knows the segment and the batch's position. */
    alog_cursor c;
    memset(&c, 0, sizeof c);
    c.log = log;
    pthread_rwlock_rdlock(&log->list_lock);
    alog_err e = seek_listed(&c, offset);
    pthread_rwlock_unlock(&log->list_lock);
    if (e) {
        set_segment(&c, NULL);
        return e;
    }
    segment *s = c.seg;
    uint64_t end = atomic_load_explicit(&s->pub_pos, memory_order_acquire);
    /* out holds the reference on s that seek_listed took and one on the mapping data
     * points into: internal is that mapping (whose seg is s). */
    seg_map *m;
    e = segment_map_get(s, end, end > log->opts.segment_bytes ? end : log->opts.segment_bytes, &m);
    if (e) {
        set_segment(&c, NULL);
        return e;
    }
    out->fd = s->fd;
    out->position = c.pos;
    out->base_offset = offset;
    out->next_offset = offset;
    out->internal = m;
    if (c.pos >= end) return ALOG_OK; /* at the end */
    const uint8_t *map = m->p;
    uint64_t pos = c.pos;
    while (!e && pos < end) {
        batch_header h;
        char why_buf[160];
        const char *why;
        if (log->opts.verify_reads) {
            why = batch_check(map + pos, end - pos, &h, why_buf, sizeof why_buf);
        } else {
            batch_header_parse(map + pos, &h);
            why = batch_header_check(&h);
            if (!why && batch_size(&h) > end - pos) why = "batch runs past the end of the segment";
        }
        if (why) {
            e = err_set(ALOG_ECORRUPT, 0, "%s: %s, in the batch at byte position %" PRIu64,
                        s->path, why, pos);
            break;
        }
        if (pos > c.pos && pos - c.pos + batch_size(&h) > max_bytes) break;
        if (pos == c.pos) out->base_offset = h.base_offset;
        out->next_offset = batch_last_offset(&h) + 1;
        pos += batch_size(&h);
    }
    if (e) {
        alog_raw_release(out);
        return e;
    }
    out->length = pos - c.pos;
    out->data = map + c.pos;
    return ALOG_OK;
}

void alog_raw_release(alog_raw *raw) {
    if (!raw || !raw->internal) return;
    seg_map *m = raw->internal;
    segment *s = m->seg;
    segment_map_put(s, m);
    segment_release(s);
    raw->internal = NULL;
    raw->fd = -1;
    raw->data = NULL;
}
