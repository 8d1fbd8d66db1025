/*
 * segment.c -- one segment: a .log file of RecordBatch v2 batches with contiguous
 * offsets, named by its base offset (20 digits), and its two indexes (index.c).
 *
 * Invariants (the ones every other file relies on):
 *   - [0, st.position) of the .log holds only whole batches that passed batch_check,
 *     whose offsets run without gap from base to st.next_offset - 1.
 *   - Appends write at st.position and only then advance it; a failed write is cut off
 *     again, so the file never keeps a partial batch that the state does not know of.
 *   - Relative offsets and positions fit Kafka's int32 index fields: the log rolls to a
 *     new segment before either would overflow.
 *
 * Reads of checked bytes go through a read-only shared mapping of the .log file. A
 * mapping may be larger than the file (the active segment is mapped up to the segment
 * size, and every remap at least doubles the length), so that a growing segment is
 * remapped O(log size) times; readers only touch bytes below the published end
 * (pub_pos), which are on disk or in the page cache, never past the end of the file.
 * Each mapping is reference-counted: readers hold the one they use (segment_map_get /
 * segment_map_put), and a replaced one is unmapped when its last holder lets go. The
 * current mapping is an atomic pointer that readers take without a lock; only a remap
 * takes the segment's map_mu.
 *
 * Bytes not checked yet (the scan for new or torn batches) are read with pread, never
 * through the mapping: another process writing the log may cut the file (preallocated
 * zeros at a roll or close, a failed write, a recovery cut), and a mapped page past the
 * new end of the file raises SIGBUS, where pread just returns fewer bytes.
 *
 * Concurrency: st and the indexes belong to whoever publishes batches (the log's
 * publication lock); pub_pos/pub_next carry the published end to lock-free readers;
 * refs and deleted are atomics, so cursors in any thread can hold a segment.
 */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "io.h"

static void seg_paths(segment *seg, const char *dir, int64_t base) {
    snprintf(seg->path, sizeof seg->path, "%s/%020" PRId64 ".log", dir, base);
    snprintf(seg->opath, sizeof seg->opath, "%s/%020" PRId64 ".index", dir, base);
    snprintf(seg->tpath, sizeof seg->tpath, "%s/%020" PRId64 ".timeindex", dir, base);
}

static segment *seg_new(const char *dir, int64_t base) {
    segment *seg = calloc(1, sizeof *seg);
    if (!seg) return NULL;
    seg->base = base;
    seg->fd = seg->ofd = seg->tfd = -1;
    atomic_init(&seg->refs, 1);
    atomic_init(&seg->deleted, 0);
    atomic_init(&seg->alloc_end, 0);
    atomic_init(&seg->pa_stop, 0);
    atomic_init(&seg->map, NULL);
    atomic_init(&seg->pub_pos, 0);
    atomic_init(&seg->pub_next, base);
    atomic_init(&seg->pub, 0);
    pthread_mutex_init(&seg->map_mu, NULL);
    seg->st = (seg_state){0, base, -1, -1, -1, 0};
    seg->resv_next = base;
    seg_paths(seg, dir, base);
    return seg;
}

static void seg_free(segment *seg) {
    /* No reader holds a mapping any more (each holds the segment too): only the current
     * one is still mapped. */
    for (seg_map *m = atomic_load(&seg->map), *o; m; m = o) {
        o = m->older;
        if (atomic_load(&m->refs) > 0) io->munmap((void *)m->p, m->len);
        free(m);
    }
    pthread_mutex_destroy(&seg->map_mu);
    if (seg->fd >= 0) io->close(seg->fd);
    if (seg->ofd >= 0) io->close(seg->ofd);
    if (seg->tfd >= 0) io->close(seg->tfd);
    index_free(&seg->ix);
    free(seg);
}

void segment_ref(segment *seg) { atomic_fetch_add_explicit(&seg->refs, 1, memory_order_relaxed); }

void segment_release(segment *seg) {
    if (seg && atomic_fetch_sub_explicit(&seg->refs, 1, memory_order_acq_rel) == 1) seg_free(seg);
}

/* pub is stored after pub_pos and pub_next: a reader that acquired a pair from pub
 * then sees pub_pos and pub_next at least as far. Positions and relative offsets fit
 * 32 bits (segment_scan and the log's roll rule keep them there). */
void segment_publish(segment *seg) {
    uint64_t rel = (uint64_t)(seg->st.next_offset - seg->base);
    atomic_store_explicit(&seg->pub_next, seg->st.next_offset, memory_order_release);
    atomic_store_explicit(&seg->pub_pos, seg->st.position, memory_order_release);
    atomic_store_explicit(&seg->pub, rel << 32 | (uint32_t)seg->st.position, memory_order_release);
}

void segment_pub_pair(segment *seg, int64_t *next, uint64_t *pos) {
    uint64_t v = atomic_load_explicit(&seg->pub, memory_order_acquire);
    *next = seg->base + (int64_t)(v >> 32);
    *pos = (uint32_t)v;
}

alog_err segment_create(const char *dir, int64_t base, segment **out) {
    segment *seg = seg_new(dir, base);
    if (!seg) return err_set(ALOG_ENOMEM, 0, "out of memory");
    alog_err e = ALOG_OK;
    seg->writable = 1;
    seg->fd = io->open(seg->path, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (seg->fd < 0) { e = err_sys(errno, "create %s", seg->path); goto fail; }
    seg->ofd = io->open(seg->opath, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (seg->ofd < 0) { e = err_sys(errno, "create %s", seg->opath); goto fail; }
    seg->tfd = io->open(seg->tpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (seg->tfd < 0) { e = err_sys(errno, "create %s", seg->tpath); goto fail; }
    seg->ix_ready = 1;
    *out = seg;
    return ALOG_OK;
fail:
    if (seg->fd >= 0) io->unlink(seg->path);
    seg_free(seg);
    return e;
}

alog_err segment_open(const char *dir, int64_t base, int writable, segment **out) {
    segment *seg = seg_new(dir, base);
    if (!seg) return err_set(ALOG_ENOMEM, 0, "out of memory");
    seg->writable = writable;
    seg->fd = io->open(seg->path, writable ? O_RDWR : O_RDONLY, 0);
    if (seg->fd < 0) {
        alog_err e = err_sys(errno, "open %s", seg->path);
        seg_free(seg);
        return e;
    }
    /* Index files are optional: a missing one is rebuilt. */
    int iflags = writable ? O_RDWR : O_RDONLY;
    seg->ofd = io->open(seg->opath, iflags, 0);
    if (seg->ofd < 0) {
        seg->ix_missing = 1;
        if (writable) seg->ofd = io->open(seg->opath, O_RDWR | O_CREAT, 0644);
    }
    seg->tfd = io->open(seg->tpath, iflags, 0);
    if (seg->tfd < 0) {
        seg->ix_missing = 1;
        if (writable) seg->tfd = io->open(seg->tpath, O_RDWR | O_CREAT, 0644);
    }
    uint64_t size;
    alog_err e = segment_file_size(seg, &size);
    if (e) {
        seg_free(seg);
        return e;
    }
    seg->st.position = size;
    *out = seg;
    return ALOG_OK;
}

alog_err segment_file_size(segment *seg, uint64_t *size) {
    struct stat st;
    if (fstat(seg->fd, &st) != 0) return err_sys(errno, "stat %s", seg->path);
    *size = (uint64_t)st.st_size;
    return ALOG_OK;
}

ssize_t segment_pread(segment *seg, uint64_t pos, void *buf, size_t n) {
    return io_pread_upto(seg->fd, buf, n, pos);
}

/* Takes a reference on m unless it has already been replaced and unmapped (refs 0). */
static int map_tryref(seg_map *m) {
    int r = atomic_load_explicit(&m->refs, memory_order_relaxed);
    while (r > 0 && !atomic_compare_exchange_weak_explicit(&m->refs, &r, r + 1,
                                                           memory_order_acquire,
                                                           memory_order_relaxed)) {
    }
    return r > 0;
}

void segment_map_put(segment *seg, seg_map *m) {
    (void)seg;
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        io->munmap((void *)m->p, m->len);
}

alog_err segment_map_get(segment *seg, uint64_t need, uint64_t want, seg_map **out) {
    for (;;) {
        seg_map *m = atomic_load_explicit(&seg->map, memory_order_acquire);
        if (m && need <= m->len) {
            if (map_tryref(m)) {
                *out = m;
                return ALOG_OK;
            }
            continue; /* replaced and unmapped meanwhile: seg->map has moved on */
        }
        pthread_mutex_lock(&seg->map_mu);
        alog_err e = ALOG_OK;
        m = atomic_load_explicit(&seg->map, memory_order_acquire);
        if (!m || need > m->len) {
            if (want < need) want = need;
            if (m && want < 2 * (uint64_t)m->len) want = 2 * (uint64_t)m->len;
            uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
            uint64_t len = want ? (want + page - 1) / page * page : page;
            seg_map *n = len <= SIZE_MAX ? malloc(sizeof *n) : NULL;
            void *p = n ? io->mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, seg->fd, 0) : MAP_FAILED;
            if (!n) {
                e = err_set(ALOG_ENOMEM, 0, "out of memory mapping %s (%" PRIu64 " bytes)",
                            seg->path, len);
            } else if (p == MAP_FAILED) {
                e = err_sys(errno, "mmap %s (%" PRIu64 " bytes)", seg->path, len);
                free(n);
            } else {
                n->p = p;
                n->len = (size_t)len;
                atomic_init(&n->refs, 1); /* the segment's: it is current */
                n->seg = seg;
                n->older = m;
                atomic_store_explicit(&seg->map, n, memory_order_release);
                segment_map_put(seg, m); /* no longer current */
            }
        }
        pthread_mutex_unlock(&seg->map_mu);
        if (e) return e;
    }
}

/* Accounts for one valid batch at pos: the index rule of Kafka's LogSegment.append. */
static alog_err seg_account(segment *seg, uint64_t pos, const batch_header *h,
                            uint32_t index_interval) {
    seg_state *st = &seg->st;
    int64_t last = batch_last_offset(h);
    if (st->first_ts < 0 && st->position == 0) st->first_ts = h->base_timestamp;
    if (h->max_timestamp > st->max_ts) {
        st->max_ts = h->max_timestamp;
        st->max_ts_offset = last;
    }
    if (st->bytes_since_index > index_interval) {
        alog_err e = index_add(&seg->ix, (uint32_t)(last - seg->base), (uint32_t)pos);
        if (!e && st->max_ts >= 0)
            e = tindex_maybe_add(&seg->ix, st->max_ts, (uint32_t)(st->max_ts_offset - seg->base));
        if (e) return e;
        st->bytes_since_index = 0;
    }
    st->bytes_since_index += batch_size(h);
    st->position = pos + batch_size(h);
    st->next_offset = last + 1;
    return ALOG_OK;
}

alog_err segment_add_batch(segment *seg, uint64_t pos, const batch_header *h,
                           uint32_t index_interval) {
    alog_err e = seg_account(seg, pos, h, index_interval);
    if (e) return e;
    segment_publish(seg);
    /* Index entries go to their files in chunks; the in-memory index is complete. */
    if (seg->ix.on - seg->ix.o_flushed >= 128) return segment_flush_index(seg);
    return ALOG_OK;
}

/* The scan reads the file in windows that start at a page and double with each read up to
 * SCAN_WINDOW (larger when one batch is): a follower that polls a tail of zeros reads a
 * page each time, a recovery scan soon reads a MiB at a time. */
#define SCAN_FIRST_WINDOW 4096u
#define SCAN_WINDOW (1u << 20)

/* How many bytes from p the scan needs in order to check the batch there (have bytes
 * are at hand, left remain in the file): the batch's size if its header is at hand,
 * sane and fits, else as much of a header as the file holds. */
static uint64_t scan_want(const uint8_t *p, uint64_t have, uint64_t left) {
    uint64_t hdr = left < BATCH_HEADER_SIZE ? left : BATCH_HEADER_SIZE;
    if (have < BATCH_HEADER_SIZE) return hdr;
    batch_header h;
    batch_header_parse(p, &h);
    if (batch_header_check(&h) || batch_size(&h) > left) return hdr;
    return batch_size(&h);
}

alog_err segment_scan(segment *seg, uint64_t file_size, uint32_t index_interval,
                      const char **stop_reason, char *why_buf, size_t why_len) {
    *stop_reason = NULL;
    if (file_size <= seg->st.position) {
        if (file_size < seg->st.position) *stop_reason = "file is shorter than expected";
        return ALOG_OK;
    }
    /* win holds the file's bytes [wpos, wpos + wlen). */
    uint8_t *win = NULL;
    size_t cap = 0, wlen = 0, step = SCAN_FIRST_WINDOW;
    uint64_t wpos = 0, end = file_size;
    alog_err e = ALOG_OK;
    while (seg->st.position < end) {
        uint64_t pos = seg->st.position, left = end - pos;
        uint64_t have = pos >= wpos && pos < wpos + wlen ? wpos + wlen - pos : 0;
        uint64_t want = scan_want(have ? win + (pos - wpos) : NULL, have, left);
        /* At most twice: the header and the window after it, then a batch larger than
         * the window, whole. */
        for (int pass = 0; pass < 2 && have < want; pass++) {
            size_t n = (size_t)(left < step ? left : step);
            if (n < want) n = (size_t)want;
            if (step < SCAN_WINDOW) step *= 2;
            if (n > cap) {
                uint8_t *w = realloc(win, n);
                if (!w) {
                    e = err_set(ALOG_ENOMEM, 0, "out of memory scanning %s (%zu bytes at byte "
                                "position %" PRIu64 ")", seg->path, n, pos);
                    goto out;
                }
                win = w;
                cap = n;
            }
            ssize_t got = segment_pread(seg, pos, win, n);
            if (got < 0) {
                e = err_sys(errno, "read %s (%zu bytes at byte position %" PRIu64 ")", seg->path,
                            n, pos);
                goto out;
            }
            wpos = pos;
            wlen = (size_t)got;
            have = wlen;
            if (wlen < n) { /* the file was cut meanwhile: it ends here now */
                end = pos + wlen;
                left = wlen;
            }
            want = scan_want(win, have, left);
        }
        if (have == 0) continue; /* cut at pos: the loop ends */
        if (have > left) have = left;
        /* A batch that runs past the end of the file is reported as truncated with what
         * the file holds (batch_check reads no more than the header then). */
        const uint8_t *p = win + (pos - wpos);
        uint64_t avail = have;
        batch_header h;
        if (have >= BATCH_HEADER_SIZE) {
            batch_header_parse(p, &h);
            if (!batch_header_check(&h) && batch_size(&h) > left) avail = left;
        }
        const char *why = batch_check(p, avail, &h, why_buf, why_len);
        if (!why && h.base_offset != seg->st.next_offset) {
            snprintf(why_buf, why_len, "batch has base offset %" PRId64 ", expected %" PRId64,
                     h.base_offset, seg->st.next_offset);
            why = why_buf;
        }
        if (!why && (batch_last_offset(&h) - seg->base > (int64_t)INT32_MAX ||
                     pos > INT32_MAX || pos + batch_size(&h) > UINT32_MAX))
            why = "batch does not fit the segment's 32-bit relative offsets or positions";
        if (why) {
            *stop_reason = why;
            break;
        }
        e = seg_account(seg, pos, &h, index_interval);
        if (e) goto out;
    }
    if (!*stop_reason && end < file_size) *stop_reason = "file is shorter than expected";
    segment_publish(seg);
out:
    free(win);
    return e;
}

/* Walks the batch headers of a sealed segment to rebuild its indexes. */
static alog_err seg_rebuild_index(segment *seg, uint32_t index_interval) {
    seg_state want = seg->st;
    seg->ix.on = seg->ix.tn = seg->ix.o_flushed = seg->ix.t_flushed = 0;
    seg->st = (seg_state){0, seg->base, -1, -1, -1, 0};
    char why_buf[160];
    const char *why;
    alog_err e = segment_scan(seg, want.position, index_interval, &why, why_buf, sizeof why_buf);
    if (e) return e;
    if (why || seg->st.next_offset != want.next_offset) {
        uint64_t at = seg->st.position;
        seg->st = want;
        segment_publish(seg);
        return err_set(ALOG_ECORRUPT, 0, "%s: %s at byte position %" PRIu64 " (offset %" PRId64
                       ")", seg->path, why ? why : "segment ends before the next one starts",
                       at, seg->st.next_offset);
    }
    return ALOG_OK;
}

/* Whether the file holds whole entries only. A sealed segment's index files are written
 * whole (and fsynced before the roll), so a partial entry there is damage (or a rewrite
 * cut short), not a torn append; it may have taken the final time entry, the segment's
 * largest timestamp, with it. */
static int whole_entries(int fd, size_t entry_size) {
    struct stat st;
    return fd < 0 || (fstat(fd, &st) == 0 && (uint64_t)st.st_size % entry_size == 0);
}

alog_err segment_load_index(segment *seg, uint32_t index_interval, int *rebuilt) {
    *rebuilt = 0;
    if (seg->ix_ready) return ALOG_OK;
    uint64_t rel_limit = (uint64_t)(seg->st.next_offset - seg->base);
    int rc = index_load(&seg->ix, seg->ofd, seg->tfd, seg->st.position, rel_limit, 0,
                        seg->opath, seg->tpath);
    if (rc < 0) return (alog_err)-rc;
    if (rc == 0 || seg->ix.tn == 0 || seg->ix_missing ||
        !whole_entries(seg->ofd, OINDEX_ENTRY_SIZE) ||
        !whole_entries(seg->tfd, TINDEX_ENTRY_SIZE)) {
        /* Missing or damaged (or a segment sealed without its final time entry). */
        alog_err e = seg_rebuild_index(seg, index_interval);
        if (e) return e;
        if (seg->st.max_ts >= 0) /* as segment_seal_index: no entry for "no timestamp" */
            tindex_maybe_add(&seg->ix, seg->st.max_ts,
                             (uint32_t)(seg->st.max_ts_offset - seg->base));
        *rebuilt = 1;
        if (seg->writable) {
            e = index_rewrite(&seg->ix, seg->ofd, seg->tfd, seg->opath, seg->tpath);
            if (e) return e;
            seg->ix_missing = 0;
        }
    } else {
        /* A sealed segment's last time entry holds its largest timestamp. */
        seg->st.max_ts = seg->ix.t[seg->ix.tn - 1].timestamp;
        seg->st.max_ts_offset = seg->base + seg->ix.t[seg->ix.tn - 1].rel_offset;
    }
    seg->ix_ready = 1;
    return ALOG_OK;
}

/* segment_find in map, a mapping covering [0, st.position). */
static alog_err seg_find_in(segment *seg, const uint8_t *map, int64_t offset,
                            uint64_t *pos_out) {
    uint64_t end = seg->st.position;
    uint64_t pos = index_lookup(&seg->ix, (uint32_t)(offset - seg->base));
    while (pos < end) {
        batch_header h;
        if (end - pos < BATCH_HEADER_SIZE) break;
        batch_header_parse(map + pos, &h);
        if (batch_header_check(&h) || pos + batch_size(&h) > end) break;
        if (batch_last_offset(&h) >= offset) {
            if (h.base_offset > offset) break;
            *pos_out = pos;
            return ALOG_OK;
        }
        pos += batch_size(&h);
    }
    return err_set(ALOG_ECORRUPT, 0, "%s: offset %" PRId64 " not found from byte position %" PRIu64
                   " (index and data disagree)", seg->path, offset, pos);
}

alog_err segment_find(segment *seg, int64_t offset, uint64_t *pos_out) {
    seg_map *m;
    alog_err e = segment_map_get(seg, seg->st.position, seg->st.position, &m);
    if (e) return e;
    e = seg_find_in(seg, m->p, offset, pos_out);
    segment_map_put(seg, m);
    return e;
}

alog_err segment_find_time(segment *seg, int64_t ts, abuf *decomp, size_t max_out,
                           int64_t *offset) {
    *offset = -1;
    if (seg->st.max_ts < ts || seg->st.next_offset == seg->base) return ALOG_OK;
    int64_t from = seg->base + tindex_lookup(&seg->ix, ts);
    uint64_t end = seg->st.position;
    seg_map *m;
    alog_err e = segment_map_get(seg, end, end, &m);
    if (e) return e;
    const uint8_t *map = m->p;
    uint64_t pos;
    e = seg_find_in(seg, map, from, &pos);
    if (e) {
        segment_map_put(seg, m);
        return e;
    }
    abuf hdrs = {0};
    while (pos < end) {
        batch_header h;
        char why_buf[160];
        const char *why = batch_check(map + pos, end - pos, &h, why_buf, sizeof why_buf);
        if (why) {
            e = err_set(ALOG_ECORRUPT, 0, "%s: %s at byte position %" PRIu64, seg->path, why, pos);
            break;
        }
        if (h.max_timestamp >= ts && !(h.attributes & BATCH_ATTR_CONTROL)) {
            rec_iter it;
            e = rec_iter_init(&it, map + pos, &h, decomp, max_out);
            if (e) {
                err_prefix(e, "%s: batch at byte position %" PRIu64, seg->path, pos);
                break;
            }
            alog_record r;
            int rc;
            while ((rc = rec_iter_next(&it, &r, &hdrs, &why)) == 1) {
                if (r.timestamp >= ts && r.offset >= from) {
                    *offset = r.offset;
                    abuf_free(&hdrs);
                    segment_map_put(seg, m);
                    return ALOG_OK;
                }
            }
            if (rc < 0) {
                e = err_set(ALOG_ECORRUPT, 0, "%s: batch at byte position %" PRIu64 ": %s",
                            seg->path, pos, why);
                break;
            }
        }
        pos += batch_size(&h);
    }
    abuf_free(&hdrs);
    segment_map_put(seg, m);
    return e;
}

alog_err segment_flush_index(segment *seg) {
    if (!seg->writable) return ALOG_OK;
    return index_write(&seg->ix, seg->ofd, seg->tfd, seg->opath, seg->tpath);
}

alog_err segment_seal_index(segment *seg) {
    if (seg->st.max_ts >= 0) {
        alog_err e = tindex_maybe_add(&seg->ix, seg->st.max_ts,
                                      (uint32_t)(seg->st.max_ts_offset - seg->base));
        if (e) return e;
    }
    return segment_flush_index(seg);
}

alog_err segment_sync_index(segment *seg) {
    if (seg->ofd >= 0 && io_fdatasync(seg->ofd) != 0) return err_sys(errno, "fdatasync %s", seg->opath);
    if (seg->tfd >= 0 && io_fdatasync(seg->tfd) != 0) return err_sys(errno, "fdatasync %s", seg->tpath);
    return ALOG_OK;
}

alog_err segment_truncate_tail(segment *seg) {
    if (io->ftruncate(seg->fd, (off_t)seg->st.position) != 0)
        return err_sys(errno, "truncate %s to %" PRIu64 " bytes", seg->path, seg->st.position);
    index_truncate(&seg->ix, (uint32_t)seg->st.position,
                   (uint32_t)(seg->st.next_offset - seg->base));
    return index_rewrite(&seg->ix, seg->ofd, seg->tfd, seg->opath, seg->tpath);
}

alog_err segment_unlink(segment *seg) {
    atomic_store(&seg->deleted, 1);
    alog_err e = ALOG_OK;
    if (io->unlink(seg->path) != 0 && errno != ENOENT) e = err_sys(errno, "unlink %s", seg->path);
    if (io->unlink(seg->opath) != 0 && errno != ENOENT && !e)
        e = err_sys(errno, "unlink %s", seg->opath);
    if (io->unlink(seg->tpath) != 0 && errno != ENOENT && !e)
        e = err_sys(errno, "unlink %s", seg->tpath);
    return e;
}
