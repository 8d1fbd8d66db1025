/*
 * test_index.c -- offset-index and time-index lookups at every boundary, through the
 * public API, checked against brute-force oracles.
 *
 * A log of 1000 records in ~40 small segments with many sparse index entries (small
 * index_interval_bytes; batches of 1-5 records, so most lookups land inside a batch and
 * some walk a few batch headers). For every offset from first to next-1 a cursor seek
 * (ascending, descending, shuffled; reusing one cursor and opening fresh ones) lands
 * exactly on that record and reads on correctly across batch and segment boundaries;
 * a seek to next_offset is valid and reads ALOG_EOF (then sees a later append); below
 * first / above next is ALOG_ERANGE. alog_offset_for_time is compared with the Kafka
 * definition (first offset whose timestamp is >= T, else next_offset; alog.h's
 * contract) for every timestamp present, every T-1 and T+1, before the first, after the
 * last, INT64_MIN/MAX, with timestamps that rise, stay equal across several segment
 * rolls, fall, and jump around at random. Every check is repeated in the writer that
 * built the indexes in memory, after a clean reopen (indexes loaded from disk), in a
 * read-only handle, with all index files deleted (rebuilt), and after retention moved
 * the first offset. The .index/.timeindex files themselves are compared byte for byte
 * with Kafka's rule (an entry before each batch once more than index_interval_bytes were
 * written since the last, mapping the batch's last offset to its position; the time
 * entry holds the largest timestamp so far; a sealed segment ends with its maximum),
 * also after reopen cycles in the middle of a segment, crash recovery and rebuilds.
 * Also: segments holding a single batch larger than segment_bytes, and an empty log.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "bytes.h"
#include "testutil.h"

#define NREC 1000

static char g_ctx[200]; /* what is being checked, for failure messages */

#define CHECK_EQ(a, b)                                                                  \
    do {                                                                                \
        long long a_ = (long long)(a), b_ = (long long)(b);                             \
        if (a_ != b_)                                                                   \
            fail_msg("[%s] %s = %lld, expected %s = %lld", g_ctx, #a, a_, #b, b_);      \
    } while (0)

static uint32_t hash32(uint64_t x) {
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return (uint32_t)x;
}

/* The timestamp of record o: rising, then equal over several segments, then falling,
 * then random, then runs of ten equal values. */
static int64_t ts_of(int64_t o) {
    if (o < 150) return 10000 + o * 10;
    if (o < 400) return 20000;
    if (o < 600) return 30000 - (o - 400) * 7;
    if (o < 900) return 25000 + hash32((uint64_t)o) % 15000;
    return 50000 + (o / 10) * 10;
}

typedef struct rec_buf {
    char key[16], val[96], hv[24];
    alog_header h;
    alog_record r;
} rec_buf;

static void make_rec(int64_t o, size_t pad, rec_buf *b) {
    int kl = snprintf(b->key, sizeof b->key, "k%d", (int)(o % 11));
    int vl = snprintf(b->val, sizeof b->val, "v%" PRId64 "-", o);
    size_t extra = pad ? pad : (size_t)(hash32((uint64_t)o * 3) % 50);
    if (extra > sizeof b->val - (size_t)vl - 1) extra = sizeof b->val - (size_t)vl - 1;
    memset(b->val + vl, 'a' + (int)(o % 26), extra);
    int hl = snprintf(b->hv, sizeof b->hv, "%" PRId64, o);
    b->h = (alog_header){"o", 1, b->hv, (size_t)hl};
    b->r = (alog_record){0, ts_of(o), b->key, (size_t)kl, b->val, (size_t)vl + extra, &b->h, 1};
}

static void check_rec(const alog_record *r, int64_t o) {
    rec_buf b;
    make_rec(o, 0, &b);
    CHECK_EQ(r->offset, o);
    CHECK_EQ(r->timestamp, b.r.timestamp);
    CHECK_EQ(r->key_len, b.r.key_len);
    assert_memory_equal(r->key, b.r.key, b.r.key_len);
    CHECK_EQ(r->value_len, b.r.value_len);
    assert_memory_equal(r->value, b.r.value, b.r.value_len);
    CHECK_EQ(r->header_count, 1);
    CHECK_EQ(r->headers[0].value_len, b.h.value_len);
    assert_memory_equal(r->headers[0].value, b.h.value, b.h.value_len);
}

static alog_options idx_opts(void) {
    alog_options o;
    alog_options_init(&o);
    o.segment_bytes = 2048;
    o.index_interval_bytes = 150;
    o.fsync_policy = ALOG_FSYNC_NEVER;
    return o;
}

static const int batch_sizes[] = {1, 3, 2, 5, 1, 4, 1, 1, 2};

/* Appends records [from, to) in batches of the sizes above (cycled). */
static void append_range(alog *log, int64_t from, int64_t to) {
    static size_t k;
    int64_t o = from;
    while (o < to) {
        int n = batch_sizes[k++ % (sizeof batch_sizes / sizeof batch_sizes[0])];
        if (o + n > to) n = (int)(to - o);
        rec_buf b[5];
        alog_record recs[5];
        for (int i = 0; i < n; i++) {
            make_rec(o + i, 0, &b[i]);
            recs[i] = b[i].r;
        }
        int64_t first;
        TU_OK(alog_append_batch(log, recs, (size_t)n, &first));
        CHECK_EQ(first, o);
        o += n;
    }
}

/* Builds the standard log in dir; closes and reopens every reopen_every records (0:
 * never). Returns the open writer. */
static alog *build(const char *dir, int64_t reopen_every) {
    alog_options o = idx_opts();
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    for (int64_t at = 0; at < NREC;) {
        int64_t to = reopen_every ? at + reopen_every : NREC;
        if (to > NREC) to = NREC;
        append_range(log, at, to);
        at = to;
        if (reopen_every && at < NREC) {
            TU_OK(alog_close(log));
            TU_OK(alog_open(dir, &o, &log));
            CHECK_EQ(alog_next_offset(log), at);
        }
    }
    return log;
}

/* ---- the checks ------------------------------------------------------------------ */

static void expect_range_error(alog *log, alog_cursor *c, int64_t off) {
    alog_cursor *c2 = NULL;
    alog_err e = alog_cursor_open(log, off, &c2);
    if (e != ALOG_ERANGE) fail_msg("[%s] open at %" PRId64 ": %s", g_ctx, off, alog_err_name(e));
    assert_null(c2);
    assert_non_null(strstr(alog_last_error(), "out of range"));
    e = alog_cursor_seek(c, off);
    if (e != ALOG_ERANGE) fail_msg("[%s] seek to %" PRId64 ": %s", g_ctx, off, alog_err_name(e));
}

static void seek_and_read(alog_cursor *c, int64_t o, int64_t next, int follow) {
    alog_err e = alog_cursor_seek(c, o);
    if (e) fail_msg("[%s] seek %" PRId64 ": %s: %s", g_ctx, o, alog_err_name(e), alog_last_error());
    alog_record r;
    for (int i = 0; i <= follow && o + i < next; i++) {
        e = alog_cursor_next(c, &r);
        if (e) fail_msg("[%s] next after seek %" PRId64 ": %s: %s", g_ctx, o, alog_err_name(e),
                        alog_last_error());
        check_rec(&r, o + i);
    }
}

/* Every offset, three orders, plus the edges. */
static void check_seeks(alog *log, const char *phase) {
    int64_t first = alog_first_offset(log), next = alog_next_offset(log);
    snprintf(g_ctx, sizeof g_ctx, "%s: seeks in [%" PRId64 ", %" PRId64 ")", phase, first, next);
    alog_cursor *c;
    TU_OK(alog_cursor_open(log, first, &c));
    /* Ascending, reading on across the following records. */
    for (int64_t o = first; o < next; o++) seek_and_read(c, o, next, 3);
    /* Descending. */
    for (int64_t o = next - 1; o >= first; o--) seek_and_read(c, o, next, 1);
    /* Shuffled. */
    int64_t n = next - first;
    for (int64_t i = 0; i < n; i++) seek_and_read(c, first + (int64_t)(hash32((uint64_t)i) % (uint64_t)n), next, 0);
    /* Fresh cursors at every offset. */
    for (int64_t o = first; o < next; o += 1) {
        alog_cursor *c2;
        alog_err e = alog_cursor_open(log, o, &c2);
        if (e) fail_msg("[%s] open %" PRId64 ": %s: %s", g_ctx, o, alog_err_name(e), alog_last_error());
        alog_record r;
        TU_OK(alog_cursor_next(c2, &r));
        check_rec(&r, o);
        alog_cursor_close(c2);
    }
    /* A whole read from first sees every record once, in order. */
    TU_OK(alog_cursor_seek(c, first));
    alog_record r;
    alog_err e;
    int64_t want = first;
    while ((e = alog_cursor_next(c, &r)) == ALOG_OK) check_rec(&r, want++);
    CHECK_EQ(e, ALOG_EOF);
    CHECK_EQ(want, next);
    /* next_offset is a valid position: EOF, not an error. */
    TU_OK(alog_cursor_seek(c, next));
    CHECK_EQ(alog_cursor_next(c, &r), ALOG_EOF);
    CHECK_EQ(alog_cursor_next(c, &r), ALOG_EOF);
    alog_cursor *c3;
    TU_OK(alog_cursor_open(log, next, &c3));
    CHECK_EQ(alog_cursor_next(c3, &r), ALOG_EOF);
    alog_cursor_close(c3);
    /* Outside [first, next]. */
    expect_range_error(log, c, first - 1);
    expect_range_error(log, c, next + 1);
    expect_range_error(log, c, next + 1000000);
    expect_range_error(log, c, INT64_MAX);
    expect_range_error(log, c, INT64_MIN);
    if (first > 0) expect_range_error(log, c, 0);
    /* The cursor is still usable after refused seeks. */
    seek_and_read(c, first, next, 2);
    alog_cursor_close(c);
}

/* Kafka's ListOffsets by timestamp: the first offset in [first, next) whose timestamp
 * is >= ts, else next (alog.h). */
static int64_t oracle(int64_t first, int64_t next, int64_t ts) {
    for (int64_t o = first; o < next; o++)
        if (ts_of(o) >= ts) return o;
    return next;
}

static void check_time_one(alog *log, int64_t first, int64_t next, int64_t ts) {
    int64_t got = -2;
    alog_err e = alog_offset_for_time(log, ts, &got);
    if (e) fail_msg("[%s] offset_for_time(%" PRId64 "): %s: %s", g_ctx, ts, alog_err_name(e),
                    alog_last_error());
    int64_t want = oracle(first, next, ts);
    if (got != want)
        fail_msg("[%s] offset_for_time(%" PRId64 ") = %" PRId64 ", expected %" PRId64, g_ctx, ts,
                 got, want);
}

static void check_times(alog *log, const char *phase) {
    int64_t first = alog_first_offset(log), next = alog_next_offset(log);
    snprintf(g_ctx, sizeof g_ctx, "%s: times over [%" PRId64 ", %" PRId64 ")", phase, first, next);
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (int64_t o = first; o < next; o++) {
        int64_t t = ts_of(o);
        if (t < lo) lo = t;
        if (t > hi) hi = t;
        check_time_one(log, first, next, t);
        check_time_one(log, first, next, t - 1);
        check_time_one(log, first, next, t + 1);
    }
    const int64_t edges[] = {INT64_MIN, -1, 0, lo - 1, lo, hi, hi + 1, INT64_MAX};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        check_time_one(log, first, next, edges[i]);
    /* Before the first timestamp: the first offset; after the last: next. */
    int64_t got;
    TU_OK(alog_offset_for_time(log, lo - 1000, &got));
    CHECK_EQ(got, first);
    TU_OK(alog_offset_for_time(log, hi + 1, &got));
    CHECK_EQ(got, next);
    assert_int_equal(alog_offset_for_time(log, 0, NULL), ALOG_EINVAL);
}

/* The log must have segment boundaries inside the run of equal timestamps, or the test
 * would not test what it says. */
static void assert_equal_ts_across_rolls(alog *log) {
    alog_segment_info *s;
    size_t n;
    TU_OK(alog_segments(log, &s, &n));
    int across = 0;
    for (size_t i = 1; i < n; i++) {
        int64_t b = s[i].base_offset;
        if (b > 150 && b < 400) across++;
        CHECK_EQ(s[i - 1].next_offset, b);
    }
    assert_true(n >= 20);
    assert_true(across >= 3);
    alog_free(s);
}

/* dir + "/" + name into buf (fails the test if it does not fit). */
static void join(char *buf, size_t n, const char *dir, const char *name) {
    int w = snprintf(buf, n, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= n) fail_msg("path too long: %s/%s", dir, name);
}

static void rm_index_files(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if ((l > 6 && strcmp(de->d_name + l - 6, ".index") == 0) ||
            (l > 10 && strcmp(de->d_name + l - 10, ".timeindex") == 0)) {
            char p[4096];
            join(p, sizeof p, dir, de->d_name);
            assert_int_equal(unlink(p), 0);
        }
    }
    closedir(d);
}

static void test_seek_every_offset(void **state) {
    (void)state;
    char *dir = tu_tmpdir("seek");
    alog *log = build(dir, 0);
    assert_equal_ts_across_rolls(log);
    check_seeks(log, "writer, in-memory indexes");
    TU_OK(alog_close(log));

    alog_options o = idx_opts();
    TU_OK(alog_open(dir, &o, &log));
    assert_int_equal(alog_recovery(log)->clean, 1);
    check_seeks(log, "reopened, indexes from disk");
    assert_int_equal(alog_recovery(log)->indexes_rebuilt, 0);
    TU_OK(alog_close(log));

    alog_options ro = idx_opts();
    ro.read_only = 1;
    TU_OK(alog_open(dir, &ro, &log));
    check_seeks(log, "read-only");
    alog_close(log);

    rm_index_files(dir);
    TU_OK(alog_open(dir, &ro, &log));
    check_seeks(log, "read-only, index files deleted");
    assert_true(alog_recovery(log)->indexes_rebuilt > 0);
    alog_close(log);

    TU_OK(alog_open(dir, &o, &log));
    check_seeks(log, "writer, index files deleted");
    TU_OK(alog_close(log));
    alog_verify_report rep;
    TU_OK(alog_verify(dir, &rep, NULL, NULL));
    CHECK_EQ(rep.records, NREC);

    /* Retention moves the first offset: below it is out of range. */
    o.retention_bytes = 20000;
    TU_OK(alog_open(dir, &o, &log));
    uint64_t deleted;
    TU_OK(alog_retention_run(log, &deleted));
    assert_true(deleted > 0);
    assert_true(alog_first_offset(log) > 0);
    check_seeks(log, "after retention");
    /* A cursor at next sees what is appended later. */
    alog_cursor *c;
    TU_OK(alog_cursor_open(log, NREC, &c));
    alog_record r;
    CHECK_EQ(alog_cursor_next(c, &r), ALOG_EOF);
    append_range(log, NREC, NREC + 7);
    for (int64_t i = NREC; i < NREC + 7; i++) {
        TU_OK(alog_cursor_next(c, &r));
        check_rec(&r, i);
    }
    CHECK_EQ(alog_cursor_next(c, &r), ALOG_EOF);
    alog_cursor_close(c);
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    free(dir);
}

static void test_offset_for_time(void **state) {
    (void)state;
    char *dir = tu_tmpdir("time");
    alog *log = build(dir, 0);
    assert_equal_ts_across_rolls(log);
    check_times(log, "writer");
    TU_OK(alog_close(log));

    alog_options o = idx_opts();
    TU_OK(alog_open(dir, &o, &log));
    check_times(log, "reopened");
    assert_int_equal(alog_recovery(log)->indexes_rebuilt, 0);
    TU_OK(alog_close(log));

    alog_options ro = idx_opts();
    ro.read_only = 1;
    TU_OK(alog_open(dir, &ro, &log));
    check_times(log, "read-only");
    alog_close(log);

    rm_index_files(dir);
    TU_OK(alog_open(dir, &ro, &log));
    check_times(log, "read-only, index files deleted");
    alog_close(log);
    TU_OK(alog_open(dir, &o, &log));
    check_times(log, "writer, index files deleted");
    TU_OK(alog_close(log));
    TU_OK(alog_open(dir, &o, &log));
    check_times(log, "writer, rebuilt index files");
    assert_int_equal(alog_recovery(log)->indexes_rebuilt, 0);

    o.retention_bytes = 25000;
    TU_OK(alog_close(log));
    TU_OK(alog_open(dir, &o, &log));
    TU_OK(alog_retention_run(log, NULL));
    assert_true(alog_first_offset(log) > 150);
    check_times(log, "after retention");
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    free(dir);
}

/* ---- the index files against Kafka's rule ---------------------------------------- */

/* Computes from a .log file the exact .index and .timeindex files Kafka's rule gives
 * (sealed: with the final time entry). */
static void expected_index(const char *logpath, int64_t base, uint32_t interval, int sealed,
                           abuf *oix, abuf *tix) {
    size_t len;
    uint8_t *data = tu_read_file(logpath, &len);
    uint64_t pos = 0, since = 0;
    int64_t max_ts = -1, max_off = -1, last_t = INT64_MIN;
    int have_t = 0;
    oix->len = tix->len = 0;
    while (pos < len) {
        batch_header h;
        char why[160];
        const char *bad = batch_check(data + pos, len - pos, &h, why, sizeof why);
        if (bad) fail_msg("%s: %s at %" PRIu64, logpath, bad, pos);
        int64_t last = batch_last_offset(&h);
        if (h.max_timestamp > max_ts) {
            max_ts = h.max_timestamp;
            max_off = last;
        }
        if (since > interval) {
            uint8_t e[12];
            be32_store(e, (uint32_t)(last - base));
            be32_store(e + 4, (uint32_t)pos);
            assert_int_equal(abuf_append(oix, e, 8), ALOG_OK);
            if (max_ts >= 0 && (!have_t || max_ts > last_t)) {
                be64_store(e, (uint64_t)max_ts);
                be32_store(e + 8, (uint32_t)(max_off - base));
                assert_int_equal(abuf_append(tix, e, 12), ALOG_OK);
                last_t = max_ts;
                have_t = 1;
            }
            since = 0;
        }
        since += batch_size(&h);
        pos += batch_size(&h);
    }
    if (sealed && max_ts >= 0 && (!have_t || max_ts > last_t)) {
        uint8_t e[12];
        be64_store(e, (uint64_t)max_ts);
        be32_store(e + 8, (uint32_t)(max_off - base));
        assert_int_equal(abuf_append(tix, e, 12), ALOG_OK);
    }
    free(data);
}

static void check_file_equals(const char *path, const abuf *want) {
    size_t len;
    uint8_t *got = tu_read_file(path, &len);
    if (len != want->len)
        fail_msg("[%s] %s: %zu bytes, expected %zu", g_ctx, path, len, want->len);
    if (len && memcmp(got, want->data, len) != 0)
        fail_msg("[%s] %s: contents differ from Kafka's rule", g_ctx, path);
    free(got);
}

/* Compares every segment's index files with the rule. The log must be closed. */
static void check_index_files(const char *dir, const char *phase) {
    alog_options ro = idx_opts();
    ro.read_only = 1;
    alog *log;
    TU_OK(alog_open(dir, &ro, &log));
    alog_segment_info *s;
    size_t n;
    TU_OK(alog_segments(log, &s, &n));
    alog_close(log);
    abuf oix = {0}, tix = {0};
    size_t entries = 0;
    for (size_t i = 0; i < n; i++) {
        char lp[4096], op[4096], tp[4096];
        tu_segment_path(lp, sizeof lp, dir, s[i].base_offset, "log");
        tu_segment_path(op, sizeof op, dir, s[i].base_offset, "index");
        tu_segment_path(tp, sizeof tp, dir, s[i].base_offset, "timeindex");
        snprintf(g_ctx, sizeof g_ctx, "%s: segment %zu of %zu", phase, i, n);
        expected_index(lp, s[i].base_offset, idx_opts().index_interval_bytes, i + 1 < n, &oix, &tix);
        check_file_equals(op, &oix);
        check_file_equals(tp, &tix);
        entries += oix.len / 8;
    }
    assert_true(entries > 3 * n); /* many entries per segment */
    alog_free(s);
    abuf_free(&oix);
    abuf_free(&tix);
}

static void copy_dir(const char *from, const char *to) {
    mkdir(to, 0755);
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

static void test_index_files_follow_kafka_rule(void **state) {
    (void)state;
    char *root = tu_tmpdir("ixrule");
    char a[4096], b[4096];
    join(a, sizeof a, root, "a");
    join(b, sizeof b, root, "b");
    /* Uninterrupted. */
    alog *log = build(a, 0);
    TU_OK(alog_close(log));
    check_index_files(a, "uninterrupted");
    tu_rmrf(a);
    /* Closed and reopened every 37 records, i.e. mostly in the middle of a segment: the
     * checkpoint carries the indexing state so the files come out the same. */
    log = build(a, 37);
    /* A crash: a copy taken while the writer is open, recovered by the next open. */
    TU_OK(alog_flush(log));
    copy_dir(a, b);
    TU_OK(alog_close(log));
    check_index_files(a, "reopened every 37 records");
    alog_options o = idx_opts();
    TU_OK(alog_open(b, &o, &log));
    assert_int_equal(alog_recovery(log)->bytes_truncated, 0);
    TU_OK(alog_close(log));
    check_index_files(b, "recovered after a crash");
    /* Rebuilt from nothing, by a writer touching every segment. */
    rm_index_files(b);
    TU_OK(alog_open(b, &o, &log));
    alog_segment_info *s;
    size_t n;
    TU_OK(alog_segments(log, &s, &n));
    alog_free(s);
    assert_true(alog_recovery(log)->indexes_rebuilt >= n);
    TU_OK(alog_close(log));
    check_index_files(b, "rebuilt");
    tu_rmrf(root);
    free(root);
}

/* Batches larger than segment_bytes get a segment each; records inside one batch. */
static void test_single_batch_segments(void **state) {
    (void)state;
    char *dir = tu_tmpdir("bigbatch");
    alog_options o = idx_opts();
    o.segment_bytes = 128; /* every batch is larger */
    o.index_interval_bytes = 1;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    for (int64_t at = 0; at < 60;) {
        int n = 1 + (int)(at % 4);
        if (at + n > 60) n = (int)(60 - at);
        rec_buf bb[4];
        alog_record recs[4];
        for (int i = 0; i < n; i++) {
            make_rec(at + i, 90, &bb[i]);
            recs[i] = bb[i].r;
        }
        int64_t first;
        TU_OK(alog_append_batch(log, recs, (size_t)n, &first));
        CHECK_EQ(first, at);
        at += n;
    }
    alog_segment_info *s;
    size_t n;
    TU_OK(alog_segments(log, &s, &n));
    for (size_t i = 0; i < n; i++) assert_true(s[i].size_bytes > o.segment_bytes);
    alog_free(s);
    for (int round = 0; round < 2; round++) {
        int64_t next = alog_next_offset(log);
        snprintf(g_ctx, sizeof g_ctx, "single-batch segments, round %d", round);
        alog_cursor *c;
        TU_OK(alog_cursor_open(log, 0, &c));
        for (int64_t off = next - 1; off >= 0; off--) {
            rec_buf bb;
            make_rec(off, 90, &bb);
            TU_OK(alog_cursor_seek(c, off));
            alog_record r;
            TU_OK(alog_cursor_next(c, &r));
            CHECK_EQ(r.offset, off);
            CHECK_EQ(r.value_len, bb.r.value_len);
            assert_memory_equal(r.value, bb.r.value, bb.r.value_len);
            int64_t got;
            TU_OK(alog_offset_for_time(log, ts_of(off), &got));
            CHECK_EQ(got, oracle(0, next, ts_of(off)));
        }
        alog_cursor_close(c);
        TU_OK(alog_close(log));
        TU_OK(alog_open(dir, &o, &log));
    }
    TU_OK(alog_close(log));
    alog_verify_report rep;
    TU_OK(alog_verify(dir, &rep, NULL, NULL));
    CHECK_EQ(rep.records, 60);
    tu_rmrf(dir);
    free(dir);
}

static void test_empty_log(void **state) {
    (void)state;
    char *dir = tu_tmpdir("emptyix");
    alog_options o = idx_opts();
    for (int round = 0; round < 2; round++) {
        alog *log;
        TU_OK(alog_open(dir, &o, &log));
        snprintf(g_ctx, sizeof g_ctx, "empty log, round %d", round);
        CHECK_EQ(alog_first_offset(log), 0);
        CHECK_EQ(alog_next_offset(log), 0);
        alog_cursor *c;
        TU_OK(alog_cursor_open(log, 0, &c));
        alog_record r;
        CHECK_EQ(alog_cursor_next(c, &r), ALOG_EOF);
        expect_range_error(log, c, 1);
        expect_range_error(log, c, -1);
        alog_cursor_close(c);
        int64_t got = -5;
        TU_OK(alog_offset_for_time(log, 0, &got));
        CHECK_EQ(got, 0);
        TU_OK(alog_offset_for_time(log, INT64_MIN, &got));
        CHECK_EQ(got, 0);
        TU_OK(alog_close(log));
    }
    tu_rmrf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seek_every_offset),
        cmocka_unit_test(test_offset_for_time),
        cmocka_unit_test(test_index_files_follow_kafka_rule),
        cmocka_unit_test(test_single_batch_segments),
        cmocka_unit_test(test_empty_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
