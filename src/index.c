/*
 * index.c -- the sparse offset index and the time index of one segment, Kafka's layout.
 *
 *   <base>.index      8-byte entries: int32 relative offset, int32 byte position
 *   <base>.timeindex 12-byte entries: int64 timestamp, int32 relative offset
 *   (big-endian; relative offset = offset - segment base offset)
 *
 * An offset-index entry is added before a batch is appended once more than
 * index_interval_bytes have been written since the last entry (Kafka's LogSegment
 * rule); it maps the batch's last offset to the position where the batch starts. A
 * lookup takes the largest entry at or below the target and scans batch headers from
 * there, so at most one interval of headers is read. The time-index entry added at
 * the same moment records the largest timestamp seen so far in the segment and the
 * offset of the record that has it; its timestamps only increase.
 *
 * Both are kept whole in memory (the arrays below) and written to their files in
 * chunks: the files are an accelerator, not a source of truth. Neither has a
 * checksum; on open they are checked for order and bounds against the .log file and
 * rebuilt from it when they fail (or are missing), exactly as Kafka does. Unlike Kafka
 * the files are not preallocated and mmapped: appending entries keeps the file length
 * meaningful after a crash and costs one small write per ~hundred entries.
 */
#include "index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "error.h"
#include "io.h"

static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need) c *= 2;
    void *p = realloc(*arr, c * elem);
    if (!p) return -1;
    *arr = p;
    *cap = c;
    return 0;
}

alog_err index_add(seg_index *ix, uint32_t rel_offset, uint32_t position) {
    if (grow((void **)&ix->o, &ix->ocap, ix->on + 1, sizeof *ix->o))
        return err_set(ALOG_ENOMEM, 0, "out of memory for the offset index");
    ix->o[ix->on++] = (oindex_entry){rel_offset, position};
    return ALOG_OK;
}

alog_err tindex_maybe_add(seg_index *ix, int64_t timestamp, uint32_t rel_offset) {
    if (ix->tn && timestamp <= ix->t[ix->tn - 1].timestamp) return ALOG_OK;
    if (grow((void **)&ix->t, &ix->tcap, ix->tn + 1, sizeof *ix->t))
        return err_set(ALOG_ENOMEM, 0, "out of memory for the time index");
    ix->t[ix->tn++] = (tindex_entry){timestamp, rel_offset};
    return ALOG_OK;
}

uint32_t index_lookup(const seg_index *ix, uint32_t rel_offset) {
    /* Largest entry with rel_offset < target: the batch it points at ends before the
     * target, so the target's batch starts at or after it. An entry equal to the target
     * points at the batch that holds it, which is fine too. */
    size_t lo = 0, hi = ix->on;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ix->o[mid].rel_offset <= rel_offset) lo = mid + 1;
        else hi = mid;
    }
    return lo ? ix->o[lo - 1].position : 0;
}

uint32_t tindex_lookup(const seg_index *ix, int64_t ts) {
    size_t lo = 0, hi = ix->tn;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ix->t[mid].timestamp < ts) lo = mid + 1;
        else hi = mid;
    }
    return lo ? ix->t[lo - 1].rel_offset : 0;
}

void index_truncate(seg_index *ix, uint32_t position, uint32_t rel_offset) {
    while (ix->on && ix->o[ix->on - 1].position >= position) ix->on--;
    while (ix->tn && ix->t[ix->tn - 1].rel_offset >= rel_offset) ix->tn--;
    if (ix->o_flushed > ix->on) ix->o_flushed = ix->on;
    if (ix->t_flushed > ix->tn) ix->t_flushed = ix->tn;
}

/* Reads a whole index file; *n gets the number of complete entries. */
static int read_entries(int fd, size_t esize, uint8_t **out, size_t *n, const char *path) {
    struct stat st;
    *out = NULL;
    *n = 0;
    if (fd < 0) return 0;
    if (fstat(fd, &st) != 0) return -(int)err_sys(errno, "stat %s", path);
    size_t cnt = (size_t)st.st_size / esize;
    if (cnt == 0) return 0;
    uint8_t *buf = malloc(cnt * esize);
    if (!buf) return -(int)err_set(ALOG_ENOMEM, 0, "out of memory reading %s", path);
    alog_err e = io_pread_all(fd, buf, cnt * esize, 0, path);
    if (e) {
        free(buf);
        return -(int)e;
    }
    *out = buf;
    *n = cnt;
    return 0;
}

int index_load(seg_index *ix, int ofd, int tfd, uint64_t log_size, uint64_t rel_limit,
               int keep_prefix, const char *opath, const char *tpath) {
    uint8_t *ob = NULL, *tb = NULL;
    size_t on = 0, tn = 0;
    int rc = read_entries(ofd, OINDEX_ENTRY_SIZE, &ob, &on, opath);
    if (rc == 0) rc = read_entries(tfd, TINDEX_ENTRY_SIZE, &tb, &tn, tpath);
    if (rc < 0) goto out;
    ix->on = ix->tn = ix->o_flushed = ix->t_flushed = 0;
    rc = (ofd >= 0 && tfd >= 0) ? 1 : 0;
    for (size_t i = 0; i < on; i++) {
        uint32_t rel = be32_load(ob + i * 8), pos = be32_load(ob + i * 8 + 4);
        if (ix->on && (rel <= ix->o[ix->on - 1].rel_offset || pos <= ix->o[ix->on - 1].position)) {
            rc = 0;
            break;
        }
        if (pos >= log_size || rel >= rel_limit) {
            /* keep_prefix: entries past the end were appended later, for batches past
             * it; they must all be, in order. One out of bounds with an in-order one
             * within bounds after it is damage, not a later append. */
            if (keep_prefix) {
                for (size_t j = i + 1; j < on; j++) {
                    uint32_t r2 = be32_load(ob + j * 8), p2 = be32_load(ob + j * 8 + 4);
                    uint32_t r1 = be32_load(ob + (j - 1) * 8), p1 = be32_load(ob + (j - 1) * 8 + 4);
                    if (r2 <= r1 || p2 <= p1) {
                        rc = 0;
                        break;
                    }
                }
                break;
            }
            rc = 0;
            break;
        }
        if (index_add(ix, rel, pos)) { rc = -(int)ALOG_ENOMEM; goto out; }
    }
    for (size_t i = 0; rc == 1 && i < tn; i++) {
        int64_t ts = (int64_t)be64_load(tb + i * 12);
        uint32_t rel = be32_load(tb + i * 12 + 8);
        if (ix->tn && (ts <= ix->t[ix->tn - 1].timestamp || rel < ix->t[ix->tn - 1].rel_offset)) {
            rc = 0;
            break;
        }
        if (rel >= rel_limit) {
            if (keep_prefix) { /* as above: the rest must follow on, in order */
                for (size_t j = i + 1; j < tn; j++) {
                    int64_t t2 = (int64_t)be64_load(tb + j * 12), t1 = (int64_t)be64_load(tb + (j - 1) * 12);
                    uint32_t r2 = be32_load(tb + j * 12 + 8), r1 = be32_load(tb + (j - 1) * 12 + 8);
                    if (t2 <= t1 || r2 < r1) {
                        rc = 0;
                        break;
                    }
                }
                break;
            }
            rc = 0;
            break;
        }
        if (tindex_maybe_add(ix, ts, rel)) { rc = -(int)ALOG_ENOMEM; goto out; }
    }
    if (rc == 0) ix->on = ix->tn = 0;
    ix->o_flushed = ix->on;
    ix->t_flushed = ix->tn;
out:
    free(ob);
    free(tb);
    return rc;
}

static alog_err write_from(seg_index *ix, int ofd, int tfd, const char *opath,
                           const char *tpath, size_t ofrom, size_t tfrom) {
    alog_err e = ALOG_OK;
    if (ofd >= 0 && ix->on > ofrom) {
        size_t n = ix->on - ofrom;
        uint8_t *b = malloc(n * OINDEX_ENTRY_SIZE);
        if (!b) return err_set(ALOG_ENOMEM, 0, "out of memory writing %s", opath);
        for (size_t i = 0; i < n; i++) {
            be32_store(b + i * 8, ix->o[ofrom + i].rel_offset);
            be32_store(b + i * 8 + 4, ix->o[ofrom + i].position);
        }
        e = io_pwrite_all(ofd, b, n * 8, (uint64_t)ofrom * 8, opath);
        free(b);
        if (e) return e;
        ix->o_flushed = ix->on;
    }
    if (tfd >= 0 && ix->tn > tfrom) {
        size_t n = ix->tn - tfrom;
        uint8_t *b = malloc(n * TINDEX_ENTRY_SIZE);
        if (!b) return err_set(ALOG_ENOMEM, 0, "out of memory writing %s", tpath);
        for (size_t i = 0; i < n; i++) {
            be64_store(b + i * 12, (uint64_t)ix->t[tfrom + i].timestamp);
            be32_store(b + i * 12 + 8, ix->t[tfrom + i].rel_offset);
        }
        e = io_pwrite_all(tfd, b, n * 12, (uint64_t)tfrom * 12, tpath);
        free(b);
        if (e) return e;
        ix->t_flushed = ix->tn;
    }
    return ALOG_OK;
}

alog_err index_write(seg_index *ix, int ofd, int tfd, const char *opath, const char *tpath) {
    return write_from(ix, ofd, tfd, opath, tpath, ix->o_flushed, ix->t_flushed);
}

alog_err index_rewrite(seg_index *ix, int ofd, int tfd, const char *opath, const char *tpath) {
    if (ofd >= 0 && io->ftruncate(ofd, (off_t)(ix->on * OINDEX_ENTRY_SIZE)) != 0)
        return err_sys(errno, "truncate %s", opath);
    if (tfd >= 0 && io->ftruncate(tfd, (off_t)(ix->tn * TINDEX_ENTRY_SIZE)) != 0)
        return err_sys(errno, "truncate %s", tpath);
    return write_from(ix, ofd, tfd, opath, tpath, 0, 0);
}

void index_free(seg_index *ix) {
    free(ix->o);
    free(ix->t);
    memset(ix, 0, sizeof *ix);
}
