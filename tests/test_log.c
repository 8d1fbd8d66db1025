/*
 * test_log.c -- the log through the public API: append and read back, segment roll,
 * retention, reopen after a clean close, read-only handles following a writer, the
 * writer lock, offset ranges, format version, compressed batches, raw batches.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "batch.h"
#include "bytes.h"
#include "crc32c.h"
#include "testutil.h"

static alog_options small_opts(void) {
    alog_options o;
    alog_options_init(&o);
    o.segment_bytes = 4096;
    o.index_interval_bytes = 200;
    o.fsync_policy = ALOG_FSYNC_NEVER;
    return o;
}

/* Appends n records "v<i>" with key "k<i % 7>" and timestamp ts0 + i. */
static void append_n(alog *log, int from, int n, int64_t ts0) {
    for (int i = from; i < from + n; i++) {
        char k[16], v[32];
        int kl = snprintf(k, sizeof k, "k%d", i % 7), vl = snprintf(v, sizeof v, "v%d", i);
        alog_header h = {"idx", 3, v, (size_t)vl};
        alog_record r = {0, ts0 + i, k, (size_t)kl, v, (size_t)vl, &h, 1};
        int64_t off;
        TU_OK(alog_append(log, &r, &off));
        assert_int_equal(off, i);
    }
}

/* Reads from `from` to the end and checks every record is the one append_n wrote. */
static int read_check(alog *log, int64_t from, int64_t ts0) {
    alog_cursor *c;
    TU_OK(alog_cursor_open(log, from, &c));
    alog_record r;
    alog_err e;
    int64_t want = from;
    while ((e = alog_cursor_next(c, &r)) == ALOG_OK) {
        char v[32];
        int vl = snprintf(v, sizeof v, "v%" PRId64, want);
        assert_int_equal(r.offset, want);
        assert_int_equal(r.timestamp, ts0 + want);
        assert_int_equal(r.value_len, (size_t)vl);
        assert_memory_equal(r.value, v, (size_t)vl);
        assert_int_equal(r.header_count, 1);
        assert_memory_equal(r.headers[0].value, v, (size_t)vl);
        want++;
    }
    if (e != ALOG_EOF) fail_msg("cursor: %s: %s", alog_err_name(e), alog_last_error());
    alog_cursor_close(c);
    return (int)(want - from);
}

static int count_segments(const char *dir) {
    alog_options o;
    alog_options_init(&o);
    o.read_only = 1;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    alog_segment_info *s;
    size_t n;
    TU_OK(alog_segments(log, &s, &n));
    alog_free(s);
    alog_close(log);
    return (int)n;
}

static void test_append_read_roll_reopen(void **state) {
    (void)state;
    char *dir = tu_tmpdir("roll");
    alog_options o = small_opts();
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    assert_int_equal(alog_first_offset(log), 0);
    assert_int_equal(alog_next_offset(log), 0);
    append_n(log, 0, 2000, 1000);
    assert_int_equal(alog_next_offset(log), 2000);
    assert_int_equal(read_check(log, 0, 1000), 2000);
    /* Every offset is a valid starting point, across all segment boundaries. */
    for (int64_t off = 0; off <= 2000; off += 1) {
        alog_cursor *c;
        TU_OK(alog_cursor_open(log, off, &c));
        alog_record r;
        alog_err e = alog_cursor_next(c, &r);
        if (off == 2000) assert_int_equal(e, ALOG_EOF);
        else {
            TU_OK(e);
            assert_int_equal(r.offset, off);
        }
        alog_cursor_close(c);
    }
    alog_segment_info *segs;
    size_t n;
    TU_OK(alog_segments(log, &segs, &n));
    assert_true(n > 10);
    for (size_t i = 0; i + 1 < n; i++) {
        assert_int_equal(segs[i].next_offset, segs[i + 1].base_offset);
        assert_true(segs[i].size_bytes <= 4096);
        assert_false(segs[i].active);
        assert_int_equal(segs[i].min_timestamp, 1000 + segs[i].base_offset);
        assert_int_equal(segs[i].max_timestamp, 1000 + segs[i].next_offset - 1);
    }
    assert_true(segs[n - 1].active);
    alog_free(segs);
    TU_OK(alog_close(log));

    /* Clean reopen: nothing scanned, everything there, appends continue. */
    TU_OK(alog_open(dir, &o, &log));
    assert_int_equal(alog_recovery(log)->clean, 1);
    assert_int_equal(alog_recovery(log)->bytes_checked, 0);
    assert_int_equal(alog_next_offset(log), 2000);
    append_n(log, 2000, 100, 1000);
    assert_int_equal(read_check(log, 1500, 1000), 600);
    TU_OK(alog_close(log));
    alog_verify_report rep;
    TU_OK(alog_verify(dir, &rep, NULL, NULL));
    assert_int_equal(rep.records, 2100);
    tu_rmrf(dir);
    free(dir);
}

static void test_batch_append_is_one_batch(void **state) {
    (void)state;
    char *dir = tu_tmpdir("batch");
    alog_options o = small_opts();
    o.segment_bytes = 1 << 20;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    alog_record recs[100];
    char vals[100][8];
    for (int i = 0; i < 100; i++) {
        snprintf(vals[i], sizeof vals[i], "b%d", i);
        recs[i] = (alog_record){0, ALOG_TIMESTAMP_NOW, NULL, 0, vals[i], strlen(vals[i]), NULL, 0};
    }
    int64_t first;
    TU_OK(alog_append_batch(log, recs, 100, &first));
    assert_int_equal(first, 0);
    TU_OK(alog_append_batch(log, recs, 50, &first));
    assert_int_equal(first, 100);
    TU_OK(alog_close(log));
    char p[4096];
    tu_segment_path(p, sizeof p, dir, 0, "log");
    struct { int n; int64_t base[4]; int32_t cnt[4]; } seen = {0};
    alog_batch_fn fn;
    (void)fn;
    uint64_t valid;
    /* Two batches on disk, of 100 and 50 records. */
    size_t len;
    uint8_t *bytes = tu_read_file(p, &len);
    size_t pos = 0;
    while (pos < len) {
        batch_header h;
        char why[160];
        assert_null(batch_check(bytes + pos, len - pos, &h, why, sizeof why));
        seen.base[seen.n] = h.base_offset;
        seen.cnt[seen.n++] = h.records_count;
        pos += batch_size(&h);
    }
    free(bytes);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.base[1], 100);
    assert_int_equal(seen.cnt[0], 100);
    assert_int_equal(seen.cnt[1], 50);
    TU_OK(alog_scan_segment_file(p, NULL, NULL, &valid));
    assert_int_equal(valid, len);
    tu_rmrf(dir);
    free(dir);
}

static void test_retention_bytes_and_time(void **state) {
    (void)state;
    char *dir = tu_tmpdir("retention");
    alog_options o = small_opts();
    o.retention_bytes = 3 * 4096;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    append_n(log, 0, 2000, 1000);
    /* Retention runs at each roll; records appended since the last roll are counted
     * by running it once more by hand. */
    TU_OK(alog_retention_run(log, NULL));
    int64_t first = alog_first_offset(log);
    assert_true(first > 0);
    alog_segment_info *segs;
    size_t n;
    TU_OK(alog_segments(log, &segs, &n));
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += segs[i].size_bytes;
    /* Deleting the oldest would bring it below the limit: Kafka's rule. */
    assert_true(total - segs[0].size_bytes < o.retention_bytes);
    assert_int_equal(segs[0].base_offset, first);
    alog_free(segs);
    /* Reading below the start is a clear range error, not garbage. */
    alog_cursor *c;
    assert_int_equal(alog_cursor_open(log, first - 1, &c), ALOG_ERANGE);
    assert_non_null(strstr(alog_last_error(), "out of range"));
    assert_int_equal(read_check(log, first, 1000), 2000 - first);
    /* Deleted files are gone. */
    char p[4096];
    tu_segment_path(p, sizeof p, dir, 0, "log");
    assert_int_equal(tu_file_size(p), -1);

    /* A cursor sitting in a segment that retention deletes gets ERANGE, not a crash. */
    TU_OK(alog_cursor_open(log, first, &c));
    alog_record r;
    TU_OK(alog_cursor_next(c, &r));
    append_n(log, 2000, 2000, 1000);
    alog_err e;
    int got = 0;
    while ((e = alog_cursor_next(c, &r)) == ALOG_OK) got++;
    assert_int_equal(e, ALOG_ERANGE);
    alog_cursor_close(c);
    TU_OK(alog_close(log));

    /* Time: timestamps far in the past expire on the next run. */
    o.retention_bytes = 0;
    o.retention_ms = 1000; /* records are from 1970 */
    TU_OK(alog_open(dir, &o, &log));
    uint64_t deleted;
    TU_OK(alog_retention_run(log, &deleted));
    assert_true(deleted > 0);
    TU_OK(alog_segments(log, &segs, &n));
    assert_int_equal(n, 1); /* the active segment always stays */
    alog_free(segs);
    int64_t next = alog_next_offset(log);
    assert_int_equal(next, 4000);
    assert_true(alog_first_offset(log) > first);
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    free(dir);
}

static void test_ranges_and_errors(void **state) {
    (void)state;
    char *dir = tu_tmpdir("ranges");
    alog_options o = small_opts();
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    append_n(log, 0, 10, 0);
    alog_cursor *c;
    assert_int_equal(alog_cursor_open(log, 11, &c), ALOG_ERANGE);
    assert_int_equal(alog_cursor_open(log, -1, &c), ALOG_ERANGE);
    TU_OK(alog_cursor_open(log, 10, &c));
    alog_record r;
    assert_int_equal(alog_cursor_next(c, &r), ALOG_EOF);
    append_n(log, 10, 1, 0); /* a cursor at the end sees what comes later */
    TU_OK(alog_cursor_next(c, &r));
    assert_int_equal(r.offset, 10);
    TU_OK(alog_cursor_seek(c, 3));
    TU_OK(alog_cursor_next(c, &r));
    assert_int_equal(r.offset, 3);
    assert_int_equal(alog_cursor_seek(c, 12), ALOG_ERANGE);
    alog_cursor_close(c);
    assert_int_equal(alog_append_batch(log, NULL, 0, NULL), ALOG_EINVAL);
    TU_OK(alog_close(log));

    /* Bad options are refused with a message. */
    o.segment_bytes = 10;
    assert_int_equal(alog_open(dir, &o, &log), ALOG_EINVAL);
    assert_non_null(strstr(alog_last_error(), "segment_bytes"));
    /* Read-only open of nothing. */
    alog_options ro;
    alog_options_init(&ro);
    ro.read_only = 1;
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    assert_int_equal(alog_open(missing, &ro, &log), ALOG_ENOENT);
    /* A newer format version is detected. */
    char meta[4096];
    snprintf(meta, sizeof meta, "%s/alog.meta", dir);
    FILE *f = fopen(meta, "w");
    fputs("alog-format 99\n", f);
    fclose(f);
    assert_int_equal(alog_open(dir, &ro, &log), ALOG_EFORMAT);
    assert_non_null(strstr(alog_last_error(), "99"));
    assert_string_equal(alog_strerror(ALOG_EFORMAT), "unsupported on-disk format version");
    assert_string_equal(alog_err_name(ALOG_ERANGE), "ERANGE");
    tu_rmrf(dir);
    free(dir);
}

static void test_writer_lock_and_read_only_follow(void **state) {
    (void)state;
    char *dir = tu_tmpdir("lock");
    alog_options o = small_opts();
    alog *w;
    TU_OK(alog_open(dir, &o, &w));
    append_n(w, 0, 5, 0);
    TU_OK(alog_flush(w));
    /* A second writer in another process gets ELOCKED naming our pid. */
    pid_t pid = fork();
    if (pid == 0) {
        alog *w2;
        alog_err e = alog_open(dir, &o, &w2);
        char want[64];
        snprintf(want, sizeof want, "process %d", (int)getppid());
        _exit(e == ALOG_ELOCKED && strstr(alog_last_error(), want) ? 0 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* Read-only handles are always allowed, and see records appended later, across a
     * segment roll. */
    alog_options ro = small_opts();
    ro.read_only = 1;
    alog *r;
    TU_OK(alog_open(dir, &ro, &r));
    alog_cursor *c;
    TU_OK(alog_cursor_open(r, 0, &c));
    alog_record rec;
    int got = 0;
    while (alog_cursor_next(c, &rec) == ALOG_OK) got++;
    assert_int_equal(got, 5);
    append_n(w, 5, 500, 0); /* rolls several times */
    alog_err e;
    while ((e = alog_cursor_next(c, &rec)) == ALOG_OK) {
        assert_int_equal(rec.offset, got);
        got++;
    }
    assert_int_equal(e, ALOG_EOF);
    assert_int_equal(got, 505);
    assert_int_equal(alog_next_offset(r), 505);
    assert_int_equal(alog_append(r, &rec, NULL), ALOG_EREADONLY);
    alog_cursor_close(c);
    alog_close(r);
    TU_OK(alog_close(w));
    tu_rmrf(dir);
    free(dir);
}

static void test_compressed_batches_each_codec(void **state) {
    (void)state;
    for (int codec = 0; codec <= 4; codec++) {
        char *dir = tu_tmpdir("codec");
        alog_options o = small_opts();
        o.segment_bytes = 1 << 20;
        o.compression = (alog_compression)codec;
        alog *log;
        TU_OK(alog_open(dir, &o, &log));
        alog_record recs[50];
        char vals[50][64];
        for (int i = 0; i < 50; i++) {
            int n = snprintf(vals[i], sizeof vals[i], "compressible value number %d %d %d", i, i, i);
            recs[i] = (alog_record){0, 1000 + i, "key", 3, vals[i], (size_t)n, NULL, 0};
        }
        for (int b = 0; b < 20; b++) TU_OK(alog_append_batch(log, recs, 50, NULL));
        TU_OK(alog_close(log));
        /* On disk: the codec is in the attributes. */
        char p[4096];
        tu_segment_path(p, sizeof p, dir, 0, "log");
        size_t len;
        uint8_t *bytes = tu_read_file(p, &len);
        assert_int_equal(be16_load(bytes + BATCH_OFF_ATTRIBUTES) & 7, codec);
        free(bytes);
        /* Read back through a fresh handle, from the middle of a batch too. */
        alog_options ro = small_opts();
        ro.read_only = 1;
        TU_OK(alog_open(dir, &ro, &log));
        alog_cursor *c;
        TU_OK(alog_cursor_open(log, 525, &c));
        alog_record r;
        int64_t want = 525;
        while (alog_cursor_next(c, &r) == ALOG_OK) {
            assert_int_equal(r.offset, want);
            assert_int_equal(r.timestamp, 1000 + want % 50);
            assert_memory_equal(r.value, vals[want % 50], strlen(vals[want % 50]));
            want++;
        }
        assert_int_equal(want, 1000);
        int64_t t;
        TU_OK(alog_offset_for_time(log, 1030, &t));
        assert_int_equal(t, 30);
        alog_cursor_close(c);
        alog_close(log);
        alog_verify_report rep;
        TU_OK(alog_verify(dir, &rep, NULL, NULL));
        assert_int_equal(rep.records, 1000);
        tu_rmrf(dir);
        free(dir);
    }
}

static void test_append_raw(void **state) {
    (void)state;
    char *dir = tu_tmpdir("raw");
    alog_options o = small_opts();
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    append_n(log, 0, 3, 0);
    /* A batch as a client would send it: base offset 0, leader epoch -1. */
    alog_record recs[3] = {{0, 5, "a", 1, "x", 1, NULL, 0}, {0, 6, "b", 1, "y", 1, NULL, 0},
                           {0, 7, "c", 1, "z", 1, NULL, 0}};
    abuf b = {0}, scratch = {0};
    TU_OK(batch_encode(&b, recs, 3, ALOG_COMPRESSION_ZSTD, 0, 1 << 20, &scratch));
    batch_set_leader_epoch(b.data, -1);
    uint8_t *orig = malloc(b.len);
    memcpy(orig, b.data, b.len);
    int64_t base;
    TU_OK(alog_append_raw(log, b.data, b.len, 4, &base));
    assert_int_equal(base, 3);
    assert_memory_equal(b.data, orig, b.len); /* the caller's buffer is untouched */
    TU_OK(alog_close(log));
    /* Stored byte for byte, except base offset and leader epoch. */
    char p[4096];
    tu_segment_path(p, sizeof p, dir, 0, "log");
    size_t len;
    uint8_t *file = tu_read_file(p, &len);
    assert_true(len >= b.len);
    uint8_t *stored = file + len - b.len;
    assert_int_equal((int64_t)be64_load(stored), 3);
    assert_int_equal((int32_t)be32_load(stored + 12), 4);
    assert_memory_equal(stored + 16, orig + 16, b.len - 16);
    free(file);

    TU_OK(alog_open(dir, &o, &log));
    /* Invalid batches are refused and nothing is stored. */
    b.data[b.len - 1] ^= 1;
    assert_int_equal(alog_append_raw(log, b.data, b.len, 0, NULL), ALOG_ECORRUPT);
    assert_non_null(strstr(alog_last_error(), "CRC"));
    b.data[b.len - 1] ^= 1;
    assert_int_equal(alog_append_raw(log, b.data, b.len - 1, 0, NULL), ALOG_ECORRUPT);
    b.data[BATCH_OFF_MAGIC] = 1;
    assert_int_equal(alog_append_raw(log, b.data, b.len, 0, NULL), ALOG_ECORRUPT);
    b.data[BATCH_OFF_MAGIC] = 2;
    be32_store(b.data + BATCH_OFF_LAST_OFFSET_DELTA, 5); /* count 3 vs delta 5 */
    be32_store(b.data + BATCH_OFF_CRC, crc32c(b.data + 21, b.len - 21));
    assert_int_equal(alog_append_raw(log, b.data, b.len, 0, NULL), ALOG_ECORRUPT);
    assert_int_equal(alog_next_offset(log), 6);
    TU_OK(alog_close(log));
    free(orig);
    abuf_free(&b);
    abuf_free(&scratch);
    tu_rmrf(dir);
    free(dir);
}

static void test_reopen_keeps_appending_many_times(void **state) {
    (void)state;
    char *dir = tu_tmpdir("reopen");
    alog_options o = small_opts();
    for (int round = 0; round < 20; round++) {
        alog *log;
        TU_OK(alog_open(dir, &o, &log));
        assert_int_equal(alog_next_offset(log), round * 37);
        append_n(log, round * 37, 37, 0);
        TU_OK(alog_close(log));
    }
    assert_true(count_segments(dir) > 1);
    alog_verify_report rep;
    TU_OK(alog_verify(dir, &rep, NULL, NULL));
    assert_int_equal(rep.records, 20 * 37);
    tu_rmrf(dir);
    free(dir);
}


/* Opening a directory that is not a log: nested paths are created; a directory with
 * other people's files is refused and left exactly as it was; a newer format version
 * is refused before anything in the directory is touched. */
static void test_open_directories(void **state) {
    (void)state;
    char *root = tu_tmpdir("dirs");
    char p[2048], q[4096];
    alog_options o = small_opts();
    alog *log;
    snprintf(p, sizeof p, "%s/a/b/c", root);
    TU_OK(alog_open(p, &o, &log));
    TU_OK(alog_close(log));

    snprintf(p, sizeof p, "%s/notalog", root);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(q, sizeof q, "%s/notes.tmp", p);
    FILE *f = fopen(q, "w");
    assert_non_null(f);
    fputs("mine", f);
    fclose(f);
    assert_int_equal(alog_open(p, &o, &log), ALOG_ENOENT);
    assert_non_null(strstr(alog_last_error(), "not an alog log"));
    assert_int_equal(tu_file_size(q), 4);
    snprintf(q, sizeof q, "%s/alog.lock", p);
    assert_int_equal(tu_file_size(q), -1);

    snprintf(p, sizeof p, "%s/future", root);
    TU_OK(alog_open(p, &o, &log));
    TU_OK(alog_close(log));
    snprintf(q, sizeof q, "%s/alog.meta", p);
    f = fopen(q, "w");
    assert_non_null(f);
    fputs("alog-format 2\n", f);
    fclose(f);
    snprintf(q, sizeof q, "%s/recovery-point.tmp", p);
    f = fopen(q, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(alog_open(p, &o, &log), ALOG_EFORMAT);
    assert_int_equal(tu_file_size(q), 0); /* not cleaned up by a build that cannot read it */

    /* A creation interrupted after the lock file, before alog.meta: still openable. */
    snprintf(p, sizeof p, "%s/interrupted", root);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(q, sizeof q, "%s/alog.lock", p);
    f = fopen(q, "w");
    assert_non_null(f);
    fclose(f);
    TU_OK(alog_open(p, &o, &log));
    TU_OK(alog_close(log));

    /* Segments deleted from outside: refused rather than restarting at offset 0. */
    snprintf(p, sizeof p, "%s/lost", root);
    TU_OK(alog_open(p, &o, &log));
    append_n(log, 0, 10, 1000);
    TU_OK(alog_close(log));
    tu_segment_path(q, sizeof q, p, 0, "log");
    assert_int_equal(unlink(q), 0);
    assert_int_equal(alog_open(p, &o, &log), ALOG_ECORRUPT);
    assert_non_null(strstr(alog_last_error(), "offsets up to 9"));
    tu_rmrf(root);
    free(root);
}

/* alog_read_raw: whole batches from the one holding the offset, within one segment,
 * at least one even past max_bytes, the bytes exactly as in the segment file. */
static void test_read_raw(void **state) {
    (void)state;
    char *dir = tu_tmpdir("raw");
    alog_options o = small_opts();
    o.segment_bytes = 2000;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    /* Batches of 5 records: offsets 5k..5k+4. */
    for (int b = 0; b < 20; b++) {
        alog_record recs[5];
        char vals[5][32];
        for (int j = 0; j < 5; j++) {
            int vl = snprintf(vals[j], sizeof vals[j], "value-%d", b * 5 + j);
            recs[j] = (alog_record){0, 1000 + b * 5 + j, NULL, 0, vals[j], (size_t)vl, NULL, 0};
        }
        TU_OK(alog_append_batch(log, recs, 5, NULL));
    }
    alog_raw r;
    /* Mid-batch offset: the whole batch holding it. */
    TU_OK(alog_read_raw(log, 7, 1, &r));
    assert_int_equal(r.base_offset, 5);
    assert_int_equal(r.next_offset, 10); /* one batch: max_bytes 1 is below its size */
    assert_true(r.length > 61);
    char p[4096];
    tu_segment_path(p, sizeof p, dir, 0, "log");
    size_t flen;
    uint8_t *file = tu_read_file(p, &flen);
    assert_true(r.position + r.length <= flen);
    assert_memory_equal(r.data, file + r.position, r.length);
    uint8_t buf[4096];
    assert_int_equal(pread(r.fd, buf, r.length, (off_t)r.position), (ssize_t)r.length);
    assert_memory_equal(buf, r.data, r.length);
    free(file);
    alog_raw_release(&r);
    /* A large max_bytes: every batch to the end of that segment, no further. */
    TU_OK(alog_read_raw(log, 0, 1 << 20, &r));
    assert_int_equal(r.base_offset, 0);
    alog_segment_info *segs;
    size_t n;
    TU_OK(alog_segments(log, &segs, &n));
    assert_true(n > 1);
    assert_int_equal(r.next_offset, segs[0].next_offset);
    assert_int_equal(r.length, segs[0].size_bytes);
    alog_free(segs);
    alog_raw_release(&r);
    /* At the end: nothing, and no error. Beyond it or below the start: range errors. */
    TU_OK(alog_read_raw(log, 100, 1 << 20, &r));
    assert_int_equal(r.length, 0);
    assert_int_equal(r.next_offset, 100);
    alog_raw_release(&r);
    assert_int_equal(alog_read_raw(log, 101, 100, &r), ALOG_ERANGE);
    assert_int_equal(alog_read_raw(log, -1, 100, &r), ALOG_ERANGE);
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    free(dir);
}

/* alogd sends an alog_raw's file range with sendfile while the response waits in a
 * socket queue: the range must stay readable through its fd, with the same bytes,
 * after retention has deleted the segment and after the log is closed (DeleteTopics
 * closes it while responses may still be queued), until alog_raw_release(). */
static void test_read_raw_outlives_retention_and_close(void **state) {
    (void)state;
    char *dir = tu_tmpdir("rawkeep");
    alog_options o = small_opts();
    o.retention_bytes = 2 * 4096;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    append_n(log, 0, 50, 1000);
    alog_raw r;
    TU_OK(alog_read_raw(log, 0, 1 << 20, &r));
    assert_int_equal(r.base_offset, 0);
    assert_true(r.length > 0);
    uint8_t *copy = malloc(r.length);
    assert_non_null(copy);
    memcpy(copy, r.data, r.length);
    char p[4096];
    tu_segment_path(p, sizeof p, dir, 0, "log");
    /* Enough appends for several rolls: retention deletes segment 0. */
    append_n(log, 50, 2000, 1000);
    TU_OK(alog_retention_run(log, NULL));
    assert_true(alog_first_offset(log) > r.next_offset);
    assert_int_equal(tu_file_size(p), -1);
    uint8_t *buf = malloc(r.length);
    assert_non_null(buf);
    assert_int_equal(pread(r.fd, buf, r.length, (off_t)r.position), (ssize_t)r.length);
    assert_memory_equal(buf, copy, r.length);
    assert_memory_equal(r.data, copy, r.length);
    TU_OK(alog_close(log));
    memset(buf, 0, r.length);
    assert_int_equal(pread(r.fd, buf, r.length, (off_t)r.position), (ssize_t)r.length);
    assert_memory_equal(buf, copy, r.length);
    alog_raw_release(&r);
    assert_int_equal(r.fd, -1);
    free(buf);
    free(copy);
    tu_rmrf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_read_roll_reopen),
        cmocka_unit_test(test_batch_append_is_one_batch),
        cmocka_unit_test(test_retention_bytes_and_time),
        cmocka_unit_test(test_ranges_and_errors),
        cmocka_unit_test(test_writer_lock_and_read_only_follow),
        cmocka_unit_test(test_compressed_batches_each_codec),
        cmocka_unit_test(test_append_raw),
        cmocka_unit_test(test_reopen_keeps_appending_many_times),
        cmocka_unit_test(test_open_directories),
        cmocka_unit_test(test_read_raw),
        cmocka_unit_test(test_read_raw_outlives_retention_and_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
