/*
 * test_recovery.c -- what alog_open() makes of what a crash, a torn write or outside
 * damage leaves in a log directory, and what alog_recovery() reports about it.
 *
 * The logs here have several small segments, records with keys (some null), values
 * (some null, some empty), headers (some with null values) and non-monotonic
 * timestamps; every read-back is byte for byte.
 *
 *   - Torn tail at every byte: the last segment's file cut at each position from the
 *     start of its last batch (a multi-record batch of a few hundred bytes) to its end
 *     minus one, in three situations: a crash (files copied while the writer is open, so
 *     the checkpoint is an older point inside the active segment and recovery scans from
 *     there), a clean close followed by the cut (the file is shorter than the
 *     checkpoint: the active segment is rescanned), and no checkpoint at all (everything
 *     is scanned). Recovery must keep exactly the whole batches before the cut, report
 *     the bytes and the first offset it cut and the bytes/segments it scanned, leave the
 *     file cut on disk, accept the same batch again at the same offset, and end up
 *     byte-identical (log and index files) to a log that never crashed.
 *   - Garbage after the last batch (random bytes of many lengths and seeds, a fake
 *     header announcing a huge length, a fake batch with a bad CRC, a stale copy of the
 *     last batch, a valid batch after an offset gap, a valid batch with one flipped byte),
 *     zero-filled tails (appended or as a sparse "preallocated" extension): cut and
 *     reported; a valid complete batch after the checkpoint is kept. A read-only open
 *     sees the same log and changes nothing.
 *   - A flipped bit at every byte of a batch in a SEALED segment: alog_open still
 *     succeeds without scanning it; a cursor returns every record before the damaged
 *     batch and then ALOG_ECORRUPT naming the segment file and the byte position, never
 *     a record of the damaged batch (nor one under a wrong offset); other segments stay
 *     readable; alog_verify() reports the file, byte position and offset. Flips in the
 *     leader epoch (outside Kafka's CRC by design) change nothing.
 *   - Damage in the region recovery does scan cuts there and drops every later segment.
 *   - .index/.timeindex files missing, emptied, filled with garbage or zeros, with
 *     entries out of order, duplicated, pointing past the end, or of the wrong size (a
 *     partial entry appended, the last entry cut in two, half the entries gone), in
 *     every segment, the sealed ones or the active one: the log opens, every seek and
 *     time lookup and each segment's largest timestamp are right, appends continue,
 *     alog_verify() passes, and the files are rebuilt byte-identical to the originals --
 *     except what is sound and so kept: a shorter prefix, and in the active segment
 *     empty files or a torn last entry (what a crash can leave there).
 *   - recovery-point missing, empty, garbage, with a bad CRC, truncated, of an unknown
 *     version, naming a missing segment, pointing past the end of the file, stale
 *     (naming an older segment): the log opens with nothing lost and scans what it
 *     should.
 *   - Recovery work is the unsynced tail, not the log: a log 12 times larger with the
 *     same tail scans exactly the same bytes, one segment; a clean reopen scans nothing.
 *
 * Crashes are simulated by copying or cutting files, never by losing the page cache, so
 * fsync is stubbed out through the io.h seam (it would only cost time here).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "bytes.h"
#include "crc32c.h"
#include "io.h"
#include "testutil.h"

static char g_ctx[256]; /* the case being checked, for failure messages */

#define CHECK_EQ(a, b)                                                                  \
    do {                                                                                \
        long long a_ = (long long)(a), b_ = (long long)(b);                             \
        if (a_ != b_)                                                                   \
            fail_msg("[%s] %s = %lld, expected %s = %lld", g_ctx, #a, a_, #b, b_);      \
    } while (0)

#define OK_CTX(expr)                                                                    \
    do {                                                                                \
        alog_err e_ = (expr);                                                           \
        if (e_ != ALOG_OK)                                                              \
            fail_msg("[%s] %s -> %s: %s", g_ctx, #expr, alog_err_name(e_),              \
                     alog_last_error());                                                \
    } while (0)

#define TS0 INT64_C(1700000000000)
#define SEG_BYTES 4096

/* ---- records ----------------------------------------------------------------------- */

typedef struct rec_buf {
    char key[32];
    uint8_t val[128];
    char hk[3][8];
    char hv[3][40];
    alog_header hdrs[3];
    alog_record r;
} rec_buf;

/* Not monotonic: falls by 2 ms six times in seven, then jumps. */
static int64_t ts_of(int64_t off) { return TS0 + off * 3 - (off % 7) * 5; }

/* Record off: null key every 5th, null value every 13th (+7), empty value every 13th
 * (+3), 0-3 headers (the second with a null value), binary value bytes. */
static void make_rec(int64_t off, rec_buf *b) {
    uint32_t x = (uint32_t)off * 2654435761u;
    size_t vlen = 16 + (x >> 7) % 64;
    for (size_t i = 0; i < vlen; i++) b->val[i] = (uint8_t)(off * 31 + (int64_t)i * 17);
    int kl = snprintf(b->key, sizeof b->key, "key-%" PRId64, off);
    size_t nh = (size_t)(off % 4);
    for (size_t j = 0; j < nh; j++) {
        snprintf(b->hk[j], sizeof b->hk[j], "h%zu", j);
        int hl = snprintf(b->hv[j], sizeof b->hv[j], "hv-%" PRId64 "-%zu", off, j);
        b->hdrs[j] = (alog_header){b->hk[j], strlen(b->hk[j]), j == 1 ? NULL : b->hv[j],
                                   j == 1 ? 0 : (size_t)hl};
    }
    int null_key = off % 5 == 0, null_val = off % 13 == 7, empty_val = off % 13 == 3;
    b->r = (alog_record){0,
                         ts_of(off),
                         null_key ? NULL : b->key,
                         null_key ? 0 : (size_t)kl,
                         null_val ? NULL : b->val,
                         null_val || empty_val ? 0 : vlen,
                         nh ? b->hdrs : NULL,
                         nh};
}

static void check_rec(const alog_record *got, int64_t off) {
    rec_buf b;
    make_rec(off, &b);
    const alog_record *w = &b.r;
    CHECK_EQ(got->offset, off);
    CHECK_EQ(got->timestamp, w->timestamp);
    CHECK_EQ(got->key == NULL, w->key == NULL);
    CHECK_EQ(got->key_len, w->key_len);
    if (w->key_len) assert_memory_equal(got->key, w->key, w->key_len);
    CHECK_EQ(got->value == NULL, w->value == NULL);
    CHECK_EQ(got->value_len, w->value_len);
    if (w->value_len) assert_memory_equal(got->value, w->value, w->value_len);
    CHECK_EQ(got->header_count, w->header_count);
    for (size_t j = 0; j < w->header_count; j++) {
        const alog_header *g = &got->headers[j], *h = &w->headers[j];
        CHECK_EQ(g->key_len, h->key_len);
        assert_memory_equal(g->key, h->key, h->key_len);
        CHECK_EQ(g->value == NULL, h->value == NULL);
        CHECK_EQ(g->value_len, h->value_len);
        if (h->value_len) assert_memory_equal(g->value, h->value, h->value_len);
    }
}

/* Appends records [first, first + n) as one batch. */
static void append_recs(alog *log, int64_t first, int n) {
    rec_buf b[8];
    alog_record recs[8];
    assert_true(n >= 1 && n <= 8);
    for (int i = 0; i < n; i++) {
        make_rec(first + i, &b[i]);
        recs[i] = b[i].r;
    }
    int64_t got = -1;
    OK_CTX(alog_append_batch(log, recs, (size_t)n, &got));
    CHECK_EQ(got, first);
}

/* Encodes records [first, first + n) as one batch with base offset `base`. */
static void encode_recs(abuf *out, int64_t first, int n, int64_t base) {
    rec_buf b[8];
    alog_record recs[8];
    for (int i = 0; i < n; i++) {
        make_rec(first + i, &b[i]);
        recs[i] = b[i].r;
    }
    abuf scratch = {0};
    out->len = 0;
    TU_OK(batch_encode(out, recs, (size_t)n, ALOG_COMPRESSION_NONE, 0, 1 << 20, &scratch));
    batch_set_base_offset(out->data, base);
    abuf_free(&scratch);
}

/* Reads [from, to) and expects EOF at to. */
static void read_check(alog *log, int64_t from, int64_t to) {
    alog_cursor *c;
    OK_CTX(alog_cursor_open(log, from, &c));
    alog_record r;
    alog_err e;
    int64_t want = from;
    while ((e = alog_cursor_next(c, &r)) == ALOG_OK) check_rec(&r, want++);
    if (e != ALOG_EOF)
        fail_msg("[%s] reading at %" PRId64 ": %s: %s", g_ctx, want, alog_err_name(e),
                 alog_last_error());
    CHECK_EQ(want, to);
    alog_cursor_close(c);
}

/* ---- files --------------------------------------------------------------------------- */

static void join(char *buf, size_t n, const char *dir, const char *name) {
    int w = snprintf(buf, n, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= n) fail_msg("path too long: %s/%s", dir, name);
}

static void copy_dir(const char *from, const char *to) {
    if (mkdir(to, 0755) != 0 && errno != EEXIST) fail_msg("mkdir %s: %s", to, strerror(errno));
    DIR *d = opendir(from);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        char a[4096], b[4096];
        struct stat st;
        join(a, sizeof a, from, de->d_name);
        if (stat(a, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        join(b, sizeof b, to, de->d_name);
        tu_copy_file(a, b);
    }
    closedir(d);
}

static void fresh_copy(const char *from, const char *to) {
    tu_rmrf(to);
    copy_dir(from, to);
}

/* Puts the active segment's files and the checkpoint of src back into work, a copy of
 * src in which a case changed nothing else. (Copying whole directories thousands of
 * times would make these tests slow.) */
static void restore_active(const char *src, const char *work, int64_t active_base) {
    static const char *const exts[] = {"log", "index", "timeindex"};
    char a[4096], b[4096];
    for (int i = 0; i < 3; i++) {
        tu_segment_path(a, sizeof a, src, active_base, exts[i]);
        tu_segment_path(b, sizeof b, work, active_base, exts[i]);
        tu_copy_file(a, b);
    }
    join(a, sizeof a, src, "recovery-point");
    join(b, sizeof b, work, "recovery-point");
    tu_copy_file(a, b);
}

static void xor_byte(const char *path, int64_t pos, uint8_t mask) {
    int fd = open(path, O_RDWR);
    if (fd < 0) fail_msg("open %s: %s", path, strerror(errno));
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, pos), 1);
    c ^= mask;
    assert_int_equal(pwrite(fd, &c, 1, pos), 1);
    close(fd);
}

static void write_file(const char *path, const void *p, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) fail_msg("open %s: %s", path, strerror(errno));
    if (n) assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static int files_equal(const char *a, const char *b) {
    size_t la, lb;
    uint8_t *pa = tu_read_file(a, &la), *pb = tu_read_file(b, &lb);
    int eq = la == lb && (la == 0 || memcmp(pa, pb, la) == 0);
    free(pa);
    free(pb);
    return eq;
}

static void expect_same_file(const char *dir_a, const char *dir_b, int64_t base, const char *ext) {
    char a[4096], b[4096];
    tu_segment_path(a, sizeof a, dir_a, base, ext);
    tu_segment_path(b, sizeof b, dir_b, base, ext);
    if (!files_equal(a, b))
        fail_msg("[%s] %s (%" PRId64 " bytes) differs from %s (%" PRId64 " bytes)", g_ctx, a,
                 tu_file_size(a), b, tu_file_size(b));
}

/* Positions and offsets of the batches of a .log file. */
typedef struct batch_pos {
    uint64_t pos, size;
    int64_t base, last;
} batch_pos;

static size_t list_batches(const char *path, batch_pos *out, size_t cap) {
    size_t len, n = 0;
    uint8_t *data = tu_read_file(path, &len);
    for (uint64_t pos = 0; pos < len;) {
        batch_header h;
        char why[160];
        const char *bad = batch_check(data + pos, len - pos, &h, why, sizeof why);
        if (bad) fail_msg("%s: %s at %" PRIu64, path, bad, pos);
        assert_true(n < cap);
        out[n++] = (batch_pos){pos, batch_size(&h), h.base_offset, batch_last_offset(&h)};
        pos += batch_size(&h);
    }
    free(data);
    return n;
}

/* ---- the log under test ----------------------------------------------------------- */

static alog_options rec_opts(void) {
    alog_options o;
    alog_options_init(&o);
    o.segment_bytes = SEG_BYTES;
    o.index_interval_bytes = 128;
    o.fsync_policy = ALOG_FSYNC_NEVER;
    return o;
}

typedef struct built {
    int64_t next;       /* next offset */
    int64_t last_base;  /* base offset of the last batch (4 records) */
    uint64_t last_pos;  /* its position in the active segment */
    uint64_t end;       /* size of the active segment */
    uint64_t ckpt_pos;  /* the checkpoint position (active segment) of the crash copy */
    int64_t active_base;
    size_t nsegs;
    uint64_t sealed_bytes;
    int64_t seg_base[64];
    uint64_t seg_size[64];
    /* A checkpoint file written by an earlier open, naming segment 1. */
    char stale_cp[512];
    size_t stale_cp_len;
    uint64_t stale_pos;
} built;

static void snapshot_segments(alog *log, built *b) {
    alog_segment_info *s;
    size_t n;
    TU_OK(alog_segments(log, &s, &n));
    assert_true(n <= 64);
    b->nsegs = n;
    b->sealed_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        b->seg_base[i] = s[i].base_offset;
        b->seg_size[i] = s[i].size_bytes;
        if (i + 1 < n) b->sealed_bytes += s[i].size_bytes;
    }
    b->active_base = s[n - 1].base_offset;
    b->end = s[n - 1].size_bytes;
    alog_free(s);
}

/* Builds a log of >= min_segs segments in dir and closes it cleanly. If crash_copy is
 * given, it gets a copy of the directory taken while the writer was open after the last
 * append (what a killed process leaves): its checkpoint is the one written when the
 * writer was opened, at ckpt_pos inside the active segment. */
static void build_log(const char *dir, const char *crash_copy, size_t min_segs, built *b) {
    memset(b, 0, sizeof *b);
    alog_options o = rec_opts();
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    int64_t next = 0;
    int active_batches = 0, took_stale = 0;
    size_t nsegs = 1;
    for (int i = 0;; i++) {
        int n = i % 3 + 1;
        append_recs(log, next, n);
        next += n;
        snapshot_segments(log, b);
        active_batches = b->nsegs != nsegs ? 1 : active_batches + 1;
        nsegs = b->nsegs;
        if (!took_stale && nsegs == 2 && active_batches == 2) {
            /* Reopen early in segment 1 and keep the checkpoint that open writes. */
            TU_OK(alog_close(log));
            TU_OK(alog_open(dir, &o, &log));
            char p[4096];
            join(p, sizeof p, dir, "recovery-point");
            size_t len;
            uint8_t *cp = tu_read_file(p, &len);
            assert_true(len < sizeof b->stale_cp);
            memcpy(b->stale_cp, cp, len);
            b->stale_cp_len = len;
            free(cp);
            b->stale_pos = b->end;
            took_stale = 1;
        }
        if (nsegs >= min_segs && active_batches >= 3 && b->end <= SEG_BYTES - 1600) break;
    }
    TU_OK(alog_close(log));
    TU_OK(alog_open(dir, &o, &log));
    snapshot_segments(log, b);
    b->ckpt_pos = b->end;
    append_recs(log, next, 2);
    append_recs(log, next + 2, 1);
    next += 3;
    snapshot_segments(log, b);
    b->last_pos = b->end;
    b->last_base = next;
    append_recs(log, next, 4);
    next += 4;
    b->next = next;
    size_t before = b->nsegs;
    snapshot_segments(log, b);
    assert_int_equal(b->nsegs, before); /* no roll: the tail is in the same segment */
    assert_true(b->end - b->last_pos >= 200 && b->end - b->last_pos <= 700);
    TU_OK(alog_flush(log));
    if (crash_copy) copy_dir(dir, crash_copy);
    TU_OK(alog_close(log));
    assert_true(b->nsegs >= min_segs);
}

static uint64_t total_bytes(const built *b) { return b->sealed_bytes + b->end; }

/* ---- torn tail at every byte ------------------------------------------------------- */

/* What recovery reports cut of a tail: up to its last non-zero byte (a remainder of
 * zeros is preallocated space, not data). */
static uint64_t held_bytes(const uint8_t *p, uint64_t n) {
    while (n && !p[n - 1]) n--;
    return n;
}

enum scenario { SC_CRASH, SC_CLEAN_THEN_CUT, SC_NO_CHECKPOINT };

static void torn_tail_sweep(enum scenario sc) {
    static const char *const names[] = {"crash", "clean close then cut", "no checkpoint"};
    char *root = tu_tmpdir("torn");
    char pristine[4096], crash[4096], work[4096], p[4096], cp[4096];
    join(pristine, sizeof pristine, root, "pristine");
    join(crash, sizeof crash, root, "crash");
    join(work, sizeof work, root, "work");
    built b;
    build_log(pristine, crash, 3, &b);
    const char *src = sc == SC_CRASH ? crash : pristine;
    tu_segment_path(p, sizeof p, work, b.active_base, "log");
    join(cp, sizeof cp, work, "recovery-point");
    alog_options o = rec_opts();
    fresh_copy(src, work);
    char srcp[4096];
    tu_segment_path(srcp, sizeof srcp, src, b.active_base, "log");
    size_t srclen;
    uint8_t *srcbytes = tu_read_file(srcp, &srclen);
    assert_true(srcbytes && srclen >= b.end);
    for (uint64_t c = b.last_pos; c < b.end; c++) {
        snprintf(g_ctx, sizeof g_ctx, "%s: cut at %" PRIu64 " (last batch %" PRIu64 "..%" PRIu64
                 ")", names[sc], c, b.last_pos, b.end);
        restore_active(src, work, b.active_base);
        tu_truncate(p, (int64_t)c);
        if (sc == SC_NO_CHECKPOINT) assert_int_equal(unlink(cp), 0);
        alog *log;
        OK_CTX(alog_open(work, &o, &log));
        const alog_recovery_info *ri = alog_recovery(log);
        CHECK_EQ(ri->clean, 0);
        uint64_t held = held_bytes(srcbytes + b.last_pos, c - b.last_pos);
        CHECK_EQ(ri->bytes_truncated, held);
        CHECK_EQ(ri->first_cut_offset, held ? b.last_base : -1);
        switch (sc) {
        case SC_CRASH: /* from the checkpoint to the end of the file */
            CHECK_EQ(ri->segments_checked, 1);
            CHECK_EQ(ri->bytes_checked, b.last_pos - b.ckpt_pos);
            CHECK_EQ(ri->indexes_rebuilt, 0);
            break;
        case SC_CLEAN_THEN_CUT: /* shorter than the checkpoint: the whole active segment */
            CHECK_EQ(ri->segments_checked, 1);
            CHECK_EQ(ri->bytes_checked, b.last_pos);
            break;
        case SC_NO_CHECKPOINT: /* everything */
            CHECK_EQ(ri->segments_checked, b.nsegs);
            CHECK_EQ(ri->bytes_checked, b.sealed_bytes + b.last_pos);
            break;
        }
        CHECK_EQ(alog_first_offset(log), 0);
        CHECK_EQ(alog_next_offset(log), b.last_base);
        CHECK_EQ(tu_file_size(p), held ? b.last_pos : c); /* cut on disk, or kept as zeros */
        read_check(log, 0, b.last_base);
        /* Seeks into the recovered active segment. */
        alog_cursor *cur;
        OK_CTX(alog_cursor_open(log, b.active_base, &cur));
        for (int64_t off = b.last_base - 1; off >= b.active_base; off--) {
            alog_record r;
            OK_CTX(alog_cursor_seek(cur, off));
            OK_CTX(alog_cursor_next(cur, &r));
            check_rec(&r, off);
        }
        alog_cursor_close(cur);
        /* The lost batch can be written again, at the same offsets. */
        append_recs(log, b.last_base, 4);
        CHECK_EQ(alog_next_offset(log), b.next);
        read_check(log, b.active_base, b.next);
        OK_CTX(alog_close(log));
        /* Now the log is exactly the one that never crashed, indexes included. */
        expect_same_file(work, pristine, b.active_base, "log");
        expect_same_file(work, pristine, b.active_base, "index");
        expect_same_file(work, pristine, b.active_base, "timeindex");
        /* Near the edges and every 8th cut: it reopens cleanly, appends, verifies. */
        if (c < b.last_pos + 3 || c + 3 >= b.end || (c - b.last_pos) % 8 == 0) {
            OK_CTX(alog_open(work, &o, &log));
            CHECK_EQ(alog_recovery(log)->clean, 1);
            CHECK_EQ(alog_recovery(log)->bytes_checked, 0);
            append_recs(log, b.next, 1);
            OK_CTX(alog_close(log));
            alog_verify_report rep;
            OK_CTX(alog_verify(work, &rep, NULL, NULL));
            CHECK_EQ(rep.records, b.next + 1);
            CHECK_EQ(rep.segments, b.nsegs);
        }
    }
    /* Recovery never changed a sealed segment (it may have rewritten their indexes, to
     * the same bytes). */
    for (size_t i = 0; i + 1 < b.nsegs; i++) {
        expect_same_file(work, pristine, b.seg_base[i], "log");
        expect_same_file(work, pristine, b.seg_base[i], "index");
        expect_same_file(work, pristine, b.seg_base[i], "timeindex");
    }
    free(srcbytes);
    tu_rmrf(root);
    free(root);
}

static void test_torn_tail_every_byte_after_crash(void **state) {
    (void)state;
    torn_tail_sweep(SC_CRASH);
}

static void test_torn_tail_every_byte_after_clean_close(void **state) {
    (void)state;
    torn_tail_sweep(SC_CLEAN_THEN_CUT);
}

static void test_torn_tail_every_byte_without_checkpoint(void **state) {
    (void)state;
    torn_tail_sweep(SC_NO_CHECKPOINT);
}

/* ---- garbage and zeros after the last batch ---------------------------------------- */

/* Appends junk[0..n) to the active segment of a copy of src and checks recovery keeps
 * the first keep_bytes of it (keep_recs records) and cuts the rest -- unless the rest
 * is zeros only: preallocated space, reported as nothing cut, kept by a writable open
 * (for its appends) and cut by its clean close. extend_sparse: the junk is zeros made
 * by extending the file (a sparse preallocated tail). */
static void tail_case(const char *src, const char *work, const built *b, int crash,
                      const uint8_t *junk, size_t n, int extend_sparse, uint64_t keep_bytes,
                      int64_t keep_recs) {
    char p[4096];
    tu_segment_path(p, sizeof p, work, b->active_base, "log");
    restore_active(src, work, b->active_base);
    if (extend_sparse) tu_truncate(p, (int64_t)(b->end + n));
    else tu_append_bytes(p, junk, n);
    uint64_t cut = extend_sparse ? 0 : held_bytes(junk + keep_bytes, n - keep_bytes);
    int64_t next = b->next + keep_recs;

    /* A read-only open sees the same log and changes nothing. */
    alog_options o = rec_opts();
    o.read_only = 1;
    alog *log;
    OK_CTX(alog_open(work, &o, &log));
    CHECK_EQ(alog_next_offset(log), next);
    CHECK_EQ(alog_recovery(log)->bytes_truncated, cut);
    read_check(log, b->active_base, next);
    alog_close(log);
    CHECK_EQ(tu_file_size(p), b->end + n);

    o.read_only = 0;
    OK_CTX(alog_open(work, &o, &log));
    const alog_recovery_info *ri = alog_recovery(log);
    CHECK_EQ(ri->clean, 0);
    CHECK_EQ(ri->bytes_truncated, cut);
    CHECK_EQ(ri->first_cut_offset, cut ? next : -1);
    CHECK_EQ(ri->segments_checked, 1);
    CHECK_EQ(ri->bytes_checked, (crash ? b->end - b->ckpt_pos : 0) + keep_bytes);
    CHECK_EQ(alog_next_offset(log), next);
    CHECK_EQ(tu_file_size(p), b->end + (cut ? keep_bytes : n));
    read_check(log, b->active_base, next);
    append_recs(log, next, 2);
    read_check(log, next, next + 2);
    int64_t file;
    uint64_t logical;
    tu_active_sizes(log, work, &file, &logical);
    OK_CTX(alog_close(log));
    CHECK_EQ(tu_file_size(p), logical); /* a clean close ends the file at its last batch */
    alog_verify_report rep;
    OK_CTX(alog_verify(work, &rep, NULL, NULL));
    CHECK_EQ(rep.records, next + 2);
    CHECK_EQ(rep.segments, b->nsegs);
}

static uint64_t rng;
static uint8_t rnd8(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint8_t)(rng >> 24);
}

static void garbage_cases(const char *src, const char *work, const built *b, int crash) {
    const char *sit = crash ? "crash" : "clean";
    fresh_copy(src, work);
    uint8_t *junk = malloc(1 << 16);
    assert_non_null(junk);
    /* Random bytes. */
    const size_t lens[] = {1, 7, 12, 60, 61, 62, 200, 1000, 5000};
    for (uint64_t seed = 1; seed <= 3; seed++) {
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            rng = seed * 7919 + lens[i];
            for (size_t k = 0; k < lens[i]; k++) junk[k] = rnd8();
            snprintf(g_ctx, sizeof g_ctx, "%s: %zu random bytes, seed %" PRIu64, sit, lens[i], seed);
            tail_case(src, work, b, crash, junk, lens[i], 0, 0, 0);
        }
    }
    /* A plausible header announcing a huge batch (and one of 1 MiB), with or without
     * bytes after it. */
    const int32_t huge[] = {0x7ffffff0, 1 << 20, 100000};
    for (size_t i = 0; i < 3; i++) {
        for (size_t extra = 0; extra <= 300; extra += 300) {
            rng = 99 + extra;
            for (size_t k = 0; k < 61 + extra; k++) junk[k] = rnd8();
            be64_store(junk, (uint64_t)b->next);
            be32_store(junk + BATCH_OFF_LENGTH, (uint32_t)huge[i]);
            be32_store(junk + BATCH_OFF_LEADER_EPOCH, 0);
            junk[BATCH_OFF_MAGIC] = BATCH_MAGIC;
            be32_store(junk + BATCH_OFF_LAST_OFFSET_DELTA, 0);
            be32_store(junk + BATCH_OFF_RECORDS_COUNT, 1);
            snprintf(g_ctx, sizeof g_ctx, "%s: header claiming %d bytes + %zu", sit, huge[i], extra);
            tail_case(src, work, b, crash, junk, 61 + extra, 0, 0, 0);
        }
    }
    /* A whole batch whose CRC does not match. */
    abuf bb = {0};
    encode_recs(&bb, b->next, 3, b->next);
    memcpy(junk, bb.data, bb.len);
    junk[bb.len - 5] ^= 0x20;
    snprintf(g_ctx, sizeof g_ctx, "%s: batch with a bad CRC", sit);
    tail_case(src, work, b, crash, junk, bb.len, 0, 0, 0);
    /* A stale copy of the last batch (its offsets are not the next ones). */
    encode_recs(&bb, b->last_base, 4, b->last_base);
    snprintf(g_ctx, sizeof g_ctx, "%s: stale copy of the last batch", sit);
    tail_case(src, work, b, crash, bb.data, bb.len, 0, 0, 0);
    /* A valid batch after a gap in the offsets. */
    encode_recs(&bb, b->next + 5, 2, b->next + 5);
    snprintf(g_ctx, sizeof g_ctx, "%s: batch after an offset gap", sit);
    tail_case(src, work, b, crash, bb.data, bb.len, 0, 0, 0);
    /* A complete valid batch (written, then the process died): kept. */
    encode_recs(&bb, b->next, 3, b->next);
    snprintf(g_ctx, sizeof g_ctx, "%s: complete valid batch", sit);
    tail_case(src, work, b, crash, bb.data, bb.len, 0, bb.len, 3);
    /* ...followed by garbage: the batch is kept, the garbage cut. */
    memcpy(junk, bb.data, bb.len);
    rng = 5;
    for (size_t k = 0; k < 333; k++) junk[bb.len + k] = rnd8();
    snprintf(g_ctx, sizeof g_ctx, "%s: valid batch then garbage", sit);
    tail_case(src, work, b, crash, junk, bb.len + 333, 0, bb.len, 3);
    /* ...followed by the start of another batch. */
    memcpy(junk + bb.len, bb.data, 40);
    be64_store(junk + bb.len, (uint64_t)(b->next + 3));
    snprintf(g_ctx, sizeof g_ctx, "%s: valid batch then a torn one", sit);
    tail_case(src, work, b, crash, junk, bb.len + 40, 0, bb.len, 3);
    abuf_free(&bb);

    /* Zeros: appended, or as a sparse extension like a preallocated file. */
    memset(junk, 0, 1 << 16);
    const size_t zl[] = {1, 8, 12, 61, 62, 512, 4096, 1 << 16};
    for (size_t i = 0; i < sizeof zl / sizeof zl[0]; i++) {
        for (int sparse = 0; sparse < 2; sparse++) {
            snprintf(g_ctx, sizeof g_ctx, "%s: %zu zero bytes%s", sit, zl[i], sparse ? " (sparse)" : "");
            tail_case(src, work, b, crash, junk, zl[i], sparse, 0, 0);
        }
    }
    free(junk);
}

static void test_garbage_and_zeros_after_last_batch(void **state) {
    (void)state;
    char *root = tu_tmpdir("garbage");
    char pristine[4096], crash[4096], work[4096];
    join(pristine, sizeof pristine, root, "pristine");
    join(crash, sizeof crash, root, "crash");
    join(work, sizeof work, root, "work");
    built b;
    build_log(pristine, crash, 3, &b);
    garbage_cases(pristine, work, &b, 0);
    garbage_cases(crash, work, &b, 1);
    tu_rmrf(root);
    free(root);
}

/* ---- a flipped bit in a sealed segment --------------------------------------------- */

static void test_flip_in_sealed_segment(void **state) {
    (void)state;
    char *root = tu_tmpdir("flip");
    char pristine[4096], work[4096], p[4096];
    join(pristine, sizeof pristine, root, "pristine");
    join(work, sizeof work, root, "work");
    built b;
    build_log(pristine, NULL, 4, &b);
    /* A batch of several records inside segment 1 (a sealed one), not its first. */
    int64_t base1 = b.seg_base[1], base2 = b.seg_base[2];
    char name[64];
    snprintf(name, sizeof name, "%020" PRId64 ".log", base1);
    tu_segment_path(p, sizeof p, pristine, base1, "log");
    batch_pos bp[64];
    size_t nb = list_batches(p, bp, 64);
    assert_true(nb >= 3);
    size_t vi = 1;
    while (vi < nb && bp[vi].last == bp[vi].base) vi++; /* one with several records */
    assert_true(vi + 1 < nb);
    const batch_pos victim = bp[vi];
    tu_segment_path(p, sizeof p, work, base1, "log");
    alog_options o = rec_opts();
    char want_pos[64];
    snprintf(want_pos, sizeof want_pos, "position %" PRIu64, victim.pos);
    char orig[4096];
    tu_segment_path(orig, sizeof orig, pristine, base1, "log");
    fresh_copy(pristine, work);
    for (uint64_t i = 0; i < victim.size; i++) {
        uint8_t mask = (uint8_t)(1u << (i % 8));
        int epoch = i >= BATCH_OFF_LEADER_EPOCH && i < BATCH_OFF_MAGIC;
        snprintf(g_ctx, sizeof g_ctx, "bit 0x%02x of byte %" PRIu64 " of the batch at %" PRIu64
                 " (offset %" PRId64 ") of %s", mask, i, victim.pos, victim.base, name);
        tu_copy_file(orig, p);
        xor_byte(p, (int64_t)(victim.pos + i), mask);
        alog *log;
        OK_CTX(alog_open(work, &o, &log));
        CHECK_EQ(alog_recovery(log)->clean, 1); /* sealed segments are not rescanned */
        CHECK_EQ(alog_next_offset(log), b.next);
        alog_cursor *c;
        OK_CTX(alog_cursor_open(log, base1, &c));
        alog_record r;
        alog_err e;
        int64_t want = base1;
        while ((e = alog_cursor_next(c, &r)) == ALOG_OK) check_rec(&r, want++);
        alog_cursor_close(c);
        alog_verify_report rep;
        if (epoch) {
            /* Outside the CRC by Kafka's design; nothing else depends on it. */
            CHECK_EQ(e, ALOG_EOF);
            CHECK_EQ(want, b.next);
            alog_close(log);
            OK_CTX(alog_verify(work, &rep, NULL, NULL));
            continue;
        }
        if (e != ALOG_ECORRUPT)
            fail_msg("[%s] read ended with %s after offset %" PRId64, g_ctx, alog_err_name(e), want);
        CHECK_EQ(want, victim.base); /* nothing of the damaged batch came out */
        const char *msg = alog_last_error();
        if (!strstr(msg, name) || !strstr(msg, want_pos))
            fail_msg("[%s] message does not name the file and position: %s", g_ctx, msg);
        /* The damage is local: the next segments read fine. */
        read_check(log, base2, b.next);
        alog_close(log);
        CHECK_EQ(alog_verify(work, &rep, NULL, NULL), ALOG_ECORRUPT);
        if (!strstr(rep.bad_file, name))
            fail_msg("[%s] verify names %s", g_ctx, rep.bad_file);
        CHECK_EQ(rep.bad_position, victim.pos);
        CHECK_EQ(rep.bad_offset, victim.base);
        if (!strstr(alog_last_error(), name))
            fail_msg("[%s] verify message: %s", g_ctx, alog_last_error());
    }
    tu_rmrf(root);
    free(root);
}

/* Damage inside the region recovery scans: cut there, later segments dropped. */
static void test_damage_in_scanned_region_drops_later_segments(void **state) {
    (void)state;
    char *root = tu_tmpdir("dropseg");
    char pristine[4096], work[4096], p[4096], cp[4096];
    join(pristine, sizeof pristine, root, "pristine");
    join(work, sizeof work, root, "work");
    built b;
    build_log(pristine, NULL, 4, &b);
    int64_t base1 = b.seg_base[1];
    tu_segment_path(p, sizeof p, pristine, base1, "log");
    batch_pos bp[64];
    size_t nb = list_batches(p, bp, 64);
    size_t k = 0;
    while (k < nb && bp[k].pos < b.stale_pos) k++;
    assert_true(k + 1 < nb);
    k++; /* one good batch after the checkpoint, then the damaged one */
    alog_options o = rec_opts();
    for (int variant = 0; variant < 2; variant++) {
        snprintf(g_ctx, sizeof g_ctx, "%s in the batch at %" PRIu64 " of segment %" PRId64
                 " after a stale checkpoint at %" PRIu64, variant ? "torn end" : "flipped byte",
                 bp[k].pos, base1, b.stale_pos);
        fresh_copy(pristine, work);
        join(cp, sizeof cp, work, "recovery-point");
        write_file(cp, b.stale_cp, b.stale_cp_len);
        tu_segment_path(p, sizeof p, work, base1, "log");
        if (variant == 0) xor_byte(p, (int64_t)(bp[k].pos + bp[k].size - 3), 0x10);
        else tu_truncate(p, (int64_t)(bp[k].pos + bp[k].size - 1));
        uint64_t size1 = variant == 0 ? b.seg_size[1] : bp[k].pos + bp[k].size - 1;
        uint64_t later = 0;
        for (size_t i = 2; i < b.nsegs; i++) later += b.seg_size[i];
        size_t len1;
        uint8_t *bytes1 = tu_read_file(p, &len1);
        assert_true(bytes1 && len1 == size1);
        uint64_t held = held_bytes(bytes1 + bp[k].pos, size1 - bp[k].pos);
        free(bytes1);
        alog *log;
        OK_CTX(alog_open(work, &o, &log));
        const alog_recovery_info *ri = alog_recovery(log);
        CHECK_EQ(ri->first_cut_offset, bp[k].base);
        CHECK_EQ(ri->bytes_truncated, held + later);
        CHECK_EQ(ri->segments_checked, 1);
        CHECK_EQ(ri->bytes_checked, bp[k].pos - b.stale_pos);
        CHECK_EQ(alog_next_offset(log), bp[k].base);
        alog_segment_info *s;
        size_t n;
        OK_CTX(alog_segments(log, &s, &n));
        CHECK_EQ(n, 2);
        CHECK_EQ(s[1].active, 1);
        alog_free(s);
        for (size_t i = 2; i < b.nsegs; i++) {
            tu_segment_path(p, sizeof p, work, b.seg_base[i], "log");
            CHECK_EQ(tu_file_size(p), -1);
            tu_segment_path(p, sizeof p, work, b.seg_base[i], "index");
            CHECK_EQ(tu_file_size(p), -1);
        }
        read_check(log, 0, bp[k].base);
        append_recs(log, bp[k].base, 2);
        OK_CTX(alog_close(log));
        alog_verify_report rep;
        OK_CTX(alog_verify(work, &rep, NULL, NULL));
        CHECK_EQ(rep.records, bp[k].base + 2);
    }
    tu_rmrf(root);
    free(root);
}

/* ---- index files ------------------------------------------------------------------- */

enum ix_damage {
    IX_RM_BOTH,
    IX_RM_OFFSET,
    IX_RM_TIME,
    IX_EMPTY_BOTH,
    IX_GARBAGE,
    IX_ZEROS,
    IX_SWAP,
    IX_DUP_LAST,
    IX_PAST_END,
    IX_JUNK_ENTRY,
    IX_PARTIAL_TAIL,
    IX_CUT_MID_ENTRY,
    IX_HALF_OFFSET,
    IX_COUNT
};
static const char *const ix_names[] = {
    "both files missing", ".index missing", ".timeindex missing", "both files empty",
    "garbage", "zeros", "entries swapped", "last entry duplicated",
    "position past the end", "0xff entry appended", "partial entry appended",
    "cut in the middle of the last entry", ".index cut to half its entries"};

/* Whether the damage must be noticed and the files rebuilt exactly as they were. Kept
 * as they are: a sound prefix (a shorter sparse index is still correct), and in the
 * active segment empty files and a torn last entry (what a crash may leave; the
 * checkpoint vouches for the data, not for the index). */
static int ix_rebuilt_exactly(enum ix_damage d, int sealed) {
    switch (d) {
    case IX_HALF_OFFSET: return 0;
    case IX_EMPTY_BOTH:
    case IX_PARTIAL_TAIL:
    case IX_CUT_MID_ENTRY: return sealed;
    default: return 1;
    }
}

static void damage_index(const char *path, size_t esize, enum ix_damage d, int is_time) {
    size_t len;
    uint8_t *f = tu_read_file(path, &len);
    size_t n = len / esize;
    switch (d) {
    case IX_RM_BOTH: assert_int_equal(unlink(path), 0); break;
    case IX_RM_OFFSET:
        if (!is_time) assert_int_equal(unlink(path), 0);
        break;
    case IX_RM_TIME:
        if (is_time) assert_int_equal(unlink(path), 0);
        break;
    case IX_EMPTY_BOTH: tu_truncate(path, 0); break;
    case IX_GARBAGE:
        rng = len * 31 + (uint64_t)is_time;
        for (size_t i = 0; i < len; i++) f[i] = rnd8();
        write_file(path, f, len);
        break;
    case IX_ZEROS:
        memset(f, 0, len);
        write_file(path, f, len);
        break;
    case IX_SWAP:
        if (n >= 2) {
            uint8_t t[12];
            memcpy(t, f, esize);
            memcpy(f, f + esize, esize);
            memcpy(f + esize, t, esize);
            write_file(path, f, len);
        }
        break;
    case IX_DUP_LAST:
        if (n >= 1) tu_append_bytes(path, f + (n - 1) * esize, esize);
        break;
    case IX_PAST_END:
        if (n >= 1) {
            /* offset index: position; time index: relative offset */
            be32_store(f + (n - 1) * esize + (is_time ? 8 : 4), 0x7ffffff0);
            write_file(path, f, len);
        }
        break;
    case IX_JUNK_ENTRY: {
        uint8_t ff[12];
        memset(ff, 0xff, sizeof ff);
        tu_append_bytes(path, ff, esize);
        break;
    }
    case IX_PARTIAL_TAIL: tu_append_bytes(path, "\x01\x02\x03\x04\x05", is_time ? 5 : 3); break;
    case IX_CUT_MID_ENTRY:
        if (n >= 1) tu_truncate(path, (int64_t)(len - esize / 2));
        break;
    case IX_HALF_OFFSET:
        if (!is_time) tu_truncate(path, (int64_t)(n / 2 * esize));
        break;
    case IX_COUNT: break;
    }
    free(f);
}

/* The first offset in [0, next) whose timestamp is >= ts, else next (Kafka's rule). */
static int64_t time_oracle(int64_t next, int64_t ts) {
    for (int64_t o = 0; o < next; o++)
        if (ts_of(o) >= ts) return o;
    return next;
}

/* Every seek and time lookup over the whole log, and the segments' sizes and largest
 * timestamps, against what was written (b, plus whatever was appended since). */
static void check_lookups(alog *log, const built *b) {
    int64_t next = alog_next_offset(log);
    /* Every offset, from a fresh seek. */
    alog_cursor *c;
    OK_CTX(alog_cursor_open(log, 0, &c));
    for (int64_t off = next - 1; off >= 0; off--) {
        alog_record r;
        OK_CTX(alog_cursor_seek(c, off));
        OK_CTX(alog_cursor_next(c, &r));
        check_rec(&r, off);
    }
    alog_cursor_close(c);
    /* Every timestamp, and between them. */
    for (int64_t off = 0; off < next; off++) {
        for (int d = -1; d <= 1; d++) {
            int64_t got;
            OK_CTX(alog_offset_for_time(log, ts_of(off) + d, &got));
            CHECK_EQ(got, time_oracle(next, ts_of(off) + d));
        }
    }
    /* Per-segment largest timestamps (a sealed segment's comes from its time index). */
    alog_segment_info *s;
    size_t n;
    OK_CTX(alog_segments(log, &s, &n));
    CHECK_EQ(n, b->nsegs);
    for (size_t i = 0; i < n; i++) {
        int64_t hi = INT64_MIN;
        for (int64_t off = s[i].base_offset; off < s[i].next_offset; off++)
            if (ts_of(off) > hi) hi = ts_of(off);
        CHECK_EQ(s[i].max_timestamp, hi);
        CHECK_EQ(s[i].base_offset, b->seg_base[i]);
        if (i + 1 < n) CHECK_EQ(s[i].size_bytes, b->seg_size[i]);
    }
    alog_free(s);
}

static void test_index_files_missing_or_corrupt(void **state) {
    (void)state;
    char *root = tu_tmpdir("ixdamage");
    char pristine[4096], work[4096], p[4096];
    join(pristine, sizeof pristine, root, "pristine");
    join(work, sizeof work, root, "work");
    built b;
    build_log(pristine, NULL, 4, &b);
    alog_options o = rec_opts();
    for (int d = 0; d < IX_COUNT; d++) {
        for (int which = 0; which < 3; which++) { /* 0 all segments, 1 sealed, 2 active */
            static const char *const wn[] = {"every segment", "sealed segments", "active segment"};
            snprintf(g_ctx, sizeof g_ctx, "index damage: %s, %s", ix_names[d], wn[which]);
            fresh_copy(pristine, work);
            for (size_t i = 0; i < b.nsegs; i++) {
                int active = i + 1 == b.nsegs;
                if ((which == 1 && active) || (which == 2 && !active)) continue;
                tu_segment_path(p, sizeof p, work, b.seg_base[i], "index");
                damage_index(p, 8, (enum ix_damage)d, 0);
                tu_segment_path(p, sizeof p, work, b.seg_base[i], "timeindex");
                damage_index(p, 12, (enum ix_damage)d, 1);
            }
            alog *log;
            OK_CTX(alog_open(work, &o, &log));
            CHECK_EQ(alog_next_offset(log), b.next);
            CHECK_EQ(alog_recovery(log)->bytes_truncated, 0);
            check_lookups(log, &b);
            uint64_t must = 0;
            for (size_t i = 0; i < b.nsegs; i++) {
                int sealed = i + 1 < b.nsegs;
                if ((which == 1 && !sealed) || (which == 2 && sealed)) continue;
                must += (uint64_t)ix_rebuilt_exactly((enum ix_damage)d, sealed);
            }
            if (alog_recovery(log)->indexes_rebuilt < must)
                fail_msg("[%s] %" PRIu64 " indexes rebuilt, expected at least %" PRIu64, g_ctx,
                         alog_recovery(log)->indexes_rebuilt, must);
            /* Appends continue and are indexed. */
            append_recs(log, b.next, 2);
            read_check(log, b.next - 3, b.next + 2);
            OK_CTX(alog_close(log));
            alog_verify_report rep;
            OK_CTX(alog_verify(work, &rep, NULL, NULL));
            CHECK_EQ(rep.records, b.next + 2);
            /* Rebuilt exactly, or untouched. */
            if (ix_rebuilt_exactly((enum ix_damage)d, 1) || which == 2) {
                for (size_t i = 0; i + 1 < b.nsegs; i++) {
                    expect_same_file(work, pristine, b.seg_base[i], "index");
                    expect_same_file(work, pristine, b.seg_base[i], "timeindex");
                }
            }
            if (ix_rebuilt_exactly((enum ix_damage)d, 0) || which == 1) {
                /* The active segment's files are the originals plus the new append's. */
                for (int t = 0; t < 2; t++) {
                    char a[4096], pa[4096];
                    const char *ext = t ? "timeindex" : "index";
                    tu_segment_path(a, sizeof a, work, b.active_base, ext);
                    tu_segment_path(pa, sizeof pa, pristine, b.active_base, ext);
                    size_t la, lp;
                    uint8_t *fa = tu_read_file(a, &la), *fp = tu_read_file(pa, &lp);
                    if (la < lp || memcmp(fa, fp, lp) != 0)
                        fail_msg("[%s] %s: %zu bytes, not the original %zu bytes + new entries",
                                 g_ctx, a, la, lp);
                    free(fa);
                    free(fp);
                }
            }
            /* And once more from what is on disk now. */
            OK_CTX(alog_open(work, &o, &log));
            CHECK_EQ(alog_next_offset(log), b.next + 2);
            read_check(log, 0, b.next + 2);
            OK_CTX(alog_close(log));
        }
    }
    tu_rmrf(root);
    free(root);
}

/* ---- the recovery-point file ------------------------------------------------------- */

static void write_checkpoint(const char *path, const char *body) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s", body);
    n += snprintf(buf + n, sizeof buf - (size_t)n, " crc=%08x\n", crc32c(buf, (size_t)n));
    write_file(path, buf, (size_t)n);
}

static void test_recovery_point_missing_or_corrupt(void **state) {
    (void)state;
    char *root = tu_tmpdir("ckpt");
    char pristine[4096], work[4096], cp[4096], body[400];
    join(pristine, sizeof pristine, root, "pristine");
    join(work, sizeof work, root, "work");
    join(cp, sizeof cp, work, "recovery-point");
    built b;
    build_log(pristine, NULL, 4, &b);
    size_t real_len;
    char real[512];
    {
        char pp[4096];
        join(pp, sizeof pp, pristine, "recovery-point");
        uint8_t *f = tu_read_file(pp, &real_len);
        assert_true(real_len < sizeof real);
        memcpy(real, f, real_len);
        real[real_len] = '\0';
        free(f);
        assert_non_null(strstr(real, "clean=1"));
    }
    alog_options o = rec_opts();
    enum { MISSING, EMPTY, GARBAGE, BAD_CRC, TRUNCATED, VERSION2, NO_SUCH_SEGMENT, PAST_END,
           FROM_START, STALE, NCASES };
    static const char *const names[] = {"missing", "empty", "garbage", "bad CRC", "truncated",
                                        "version 2", "names a missing segment",
                                        "position past the end of the file",
                                        "clean=0 at the start of the first segment",
                                        "stale: written by an earlier open, in segment 1"};
    for (int cs = 0; cs < NCASES; cs++) {
        snprintf(g_ctx, sizeof g_ctx, "recovery-point %s", names[cs]);
        fresh_copy(pristine, work);
        /* Expected scan: everything, unless the case says otherwise. */
        uint64_t segs = b.nsegs, bytes = total_bytes(&b);
        switch (cs) {
        case MISSING: assert_int_equal(unlink(cp), 0); break;
        case EMPTY: write_file(cp, "", 0); break;
        case GARBAGE: write_file(cp, "hello, world\n", 13); break;
        case BAD_CRC: {
            char *q = strstr(real, "position=");
            assert_non_null(q);
            char copy[512];
            memcpy(copy, real, real_len + 1);
            copy[q - real + 9] = copy[q - real + 9] == '1' ? '2' : '1';
            write_file(cp, copy, real_len);
            break;
        }
        case TRUNCATED: write_file(cp, real, real_len / 2); break;
        case VERSION2:
            snprintf(body, sizeof body, "alog-checkpoint 2 clean=1 segment=%" PRId64
                     " position=%" PRIu64 " next=%" PRId64 " first_ts=%" PRId64
                     " max_ts=%" PRId64 " max_ts_offset=%" PRId64 " since_index=0",
                     b.active_base, b.end, b.next, ts_of(b.active_base), ts_of(b.next - 1),
                     b.next - 1);
            write_checkpoint(cp, body);
            break;
        case NO_SUCH_SEGMENT:
            snprintf(body, sizeof body, "alog-checkpoint 1 clean=1 segment=%" PRId64
                     " position=0 next=%" PRId64 " first_ts=-1 max_ts=-1 max_ts_offset=-1"
                     " since_index=0", b.next + 1000, b.next + 1000);
            write_checkpoint(cp, body);
            break;
        case PAST_END:
            snprintf(body, sizeof body, "alog-checkpoint 1 clean=1 segment=%" PRId64
                     " position=%" PRIu64 " next=%" PRId64 " first_ts=-1 max_ts=-1"
                     " max_ts_offset=-1 since_index=0", b.active_base, b.end + 1000,
                     b.next + 50);
            write_checkpoint(cp, body);
            segs = 1;
            bytes = b.end;
            break;
        case FROM_START:
            snprintf(body, sizeof body, "alog-checkpoint 1 clean=0 segment=0 position=0 next=0"
                     " first_ts=-1 max_ts=-1 max_ts_offset=-1 since_index=0");
            write_checkpoint(cp, body);
            break;
        case STALE:
            write_file(cp, b.stale_cp, b.stale_cp_len);
            segs = b.nsegs - 1;
            bytes = total_bytes(&b) - b.seg_size[0] - b.stale_pos;
            break;
        }
        alog *log;
        OK_CTX(alog_open(work, &o, &log));
        const alog_recovery_info *ri = alog_recovery(log);
        CHECK_EQ(ri->clean, 0);
        CHECK_EQ(ri->bytes_truncated, 0);
        CHECK_EQ(ri->first_cut_offset, -1);
        CHECK_EQ(ri->segments_checked, segs);
        CHECK_EQ(ri->bytes_checked, bytes);
        CHECK_EQ(alog_first_offset(log), 0);
        CHECK_EQ(alog_next_offset(log), b.next);
        read_check(log, 0, b.next);
        OK_CTX(alog_close(log));
        /* Rescanned segments were re-indexed exactly as they were. */
        for (size_t i = 0; i < b.nsegs; i++) {
            expect_same_file(work, pristine, b.seg_base[i], "log");
            expect_same_file(work, pristine, b.seg_base[i], "index");
            expect_same_file(work, pristine, b.seg_base[i], "timeindex");
        }
        OK_CTX(alog_open(work, &o, &log));
        CHECK_EQ(alog_recovery(log)->clean, 1);
        append_recs(log, b.next, 3);
        check_lookups(log, &b);
        OK_CTX(alog_close(log));
        alog_verify_report rep;
        OK_CTX(alog_verify(work, &rep, NULL, NULL));
        CHECK_EQ(rep.records, b.next + 3);
    }
    tu_rmrf(root);
    free(root);
}

/* ---- recovery work is the unsynced tail -------------------------------------------- */

/* n records of fixed size and timestamp, so that two logs get byte-identical tails. */
static void append_fixed(alog *log, int64_t first, int n) {
    static const uint8_t v[100] = {1, 2, 3};
    alog_record recs[8];
    for (int i = 0; i < n; i++) recs[i] = (alog_record){0, TS0, NULL, 0, v, sizeof v, NULL, 0};
    int64_t got;
    OK_CTX(alog_append_batch(log, recs, (size_t)n, &got));
    CHECK_EQ(got, first);
}

typedef struct tail_log {
    uint64_t total, ckpt_pos, end;
    size_t nsegs;
    int64_t next;
} tail_log;

/* A log of at least min_segs segments, closed, reopened (a checkpoint at ckpt_pos), then
 * tail_batches more batches; crash_copy gets the directory as a crash leaves it. */
static void build_tail_log(const char *dir, const char *crash_copy, size_t min_segs,
                           int tail_batches, tail_log *t) {
    alog_options o = rec_opts();
    o.segment_bytes = 8192;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    built b;
    int64_t next = 0;
    for (;;) {
        append_fixed(log, next, 3);
        next += 3;
        snapshot_segments(log, &b);
        if (b.nsegs >= min_segs) break; /* just rolled: the active segment is short */
    }
    TU_OK(alog_close(log));
    TU_OK(alog_open(dir, &o, &log));
    snapshot_segments(log, &b);
    t->ckpt_pos = b.end;
    for (int i = 0; i < tail_batches; i++) {
        append_fixed(log, next, 2);
        next += 2;
    }
    TU_OK(alog_sync(log)); /* durable, but no new checkpoint: that waits for 64 MiB */
    snapshot_segments(log, &b);
    assert_int_equal(b.nsegs, min_segs);
    t->end = b.end;
    t->total = total_bytes(&b);
    t->nsegs = b.nsegs;
    t->next = next;
    copy_dir(dir, crash_copy);
    TU_OK(alog_close(log));
}

static void test_recovery_scans_only_the_unsynced_tail(void **state) {
    (void)state;
    char *root = tu_tmpdir("tail");
    char small[4096], small_c[4096], large[4096], large_c[4096];
    join(small, sizeof small, root, "small");
    join(small_c, sizeof small_c, root, "small-crash");
    join(large, sizeof large, root, "large");
    join(large_c, sizeof large_c, root, "large-crash");
    tail_log ts, tl;
    build_tail_log(small, small_c, 2, 12, &ts);
    build_tail_log(large, large_c, 24, 12, &tl);
    assert_true(tl.total > 10 * ts.total / 2);
    alog_options o = rec_opts();
    o.segment_bytes = 8192;
    uint64_t checked[2];
    const char *dirs[2] = {small_c, large_c};
    const tail_log *tls[2] = {&ts, &tl};
    for (int i = 0; i < 2; i++) {
        snprintf(g_ctx, sizeof g_ctx, "%s log after a crash", i ? "large" : "small");
        alog *log;
        OK_CTX(alog_open(dirs[i], &o, &log));
        const alog_recovery_info *ri = alog_recovery(log);
        CHECK_EQ(ri->clean, 0);
        CHECK_EQ(ri->segments_checked, 1);
        CHECK_EQ(ri->bytes_checked, tls[i]->end - tls[i]->ckpt_pos);
        CHECK_EQ(ri->bytes_truncated, 0);
        CHECK_EQ(ri->indexes_rebuilt, 0);
        CHECK_EQ(alog_next_offset(log), tls[i]->next);
        checked[i] = ri->bytes_checked;
        alog_cursor *c;
        OK_CTX(alog_cursor_open(log, tls[i]->next - 24, &c));
        alog_record r;
        int got = 0;
        while (alog_cursor_next(c, &r) == ALOG_OK) {
            CHECK_EQ(r.offset, tls[i]->next - 24 + got);
            CHECK_EQ(r.value_len, 100);
            got++;
        }
        CHECK_EQ(got, 24);
        alog_cursor_close(c);
        OK_CTX(alog_close(log));
    }
    /* The same tail costs the same, however large the log. */
    CHECK_EQ(checked[0], checked[1]);
    assert_true(checked[1] < tl.total / 10);
    /* After a clean close nothing is scanned at all. */
    const char *clean_dirs[2] = {small, large};
    for (int i = 0; i < 2; i++) {
        snprintf(g_ctx, sizeof g_ctx, "%s log after a clean close", i ? "large" : "small");
        alog *log;
        OK_CTX(alog_open(clean_dirs[i], &o, &log));
        CHECK_EQ(alog_recovery(log)->clean, 1);
        CHECK_EQ(alog_recovery(log)->segments_checked, 0);
        CHECK_EQ(alog_recovery(log)->bytes_checked, 0);
        OK_CTX(alog_close(log));
    }
    tu_rmrf(root);
    free(root);
}

static int no_sync(int fd) {
    (void)fd;
    return 0;
}

int main(void) {
    /* Crashes are simulated here by copying and cutting files, never by losing the page
     * cache, so fsync only costs time (thousands of opens); the I/O seam lets it go. */
    static io_ops fast_io;
    fast_io = io_posix;
    fast_io.fsync = no_sync;
    fast_io.fdatasync = no_sync;
    io = &fast_io;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torn_tail_every_byte_after_crash),
        cmocka_unit_test(test_torn_tail_every_byte_after_clean_close),
        cmocka_unit_test(test_torn_tail_every_byte_without_checkpoint),
        cmocka_unit_test(test_garbage_and_zeros_after_last_batch),
        cmocka_unit_test(test_flip_in_sealed_segment),
        cmocka_unit_test(test_damage_in_scanned_region_drops_later_segments),
        cmocka_unit_test(test_index_files_missing_or_corrupt),
        cmocka_unit_test(test_recovery_point_missing_or_corrupt),
        cmocka_unit_test(test_recovery_scans_only_the_unsynced_tail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
