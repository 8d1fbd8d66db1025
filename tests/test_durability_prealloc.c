/*
 * test_durability_prealloc.c -- zero-filled space ahead of durable appends
 * (src/prealloc.c): it is there while the log is used durably, it is never data, and
 * it never costs a record.
 *
 * Why these cases: the log's own thread writes zeros into the active segment while
 * appenders write batches into the same file, so the one thing that must never happen
 * is zeros landing on a batch (appends that outrun the zero-fill must wait for it);
 * and since the file is longer than the log, every reader of the files (recovery,
 * read-only opens, verify, a segment roll, a clean close) must know where the log
 * really ends. A full disk while zero-filling only stops the preallocation; a failed
 * fdatasync of the zeros fails the log like any other failed fsync (it may have been
 * the report of a failed write of appended data).
 *
 * A fake io table wraps the real calls: it recognises the zero-fill's writes (all
 * zeros, at least 256 bytes: no batch is all zeros), and can make them slow, fail with
 * ENOSPC, or make the fdatasync that follows them in the same thread fail with EIO.
 * These tests wait for the log's thread to do its work (polling, with a generous
 * limit) but assert no time.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "testutil.h"

static struct {
    atomic_int zero_writes;   /* zero-fill writes seen */
    atomic_int zero_slow_ms;  /* each zero-fill write takes this long */
    atomic_int zero_enospc;   /* zero-fill writes fail with ENOSPC */
    atomic_int eio_after_zero; /* the next fdatasync after a zero-fill write fails (EIO) */
    atomic_int eio_injected;
    atomic_int max_waiting;   /* most appends seen in flight while a zero-fill write ran */
    atomic_int in_flight;     /* appends in flight (the test's writers count themselves) */
} F;

/* This thread wrote zeros since its last fdatasync (the log's thread, zero-filling). */
static __thread int tl_zero_pending;

static int all_zero(const void *buf, size_t n) {
    const uint8_t *p = buf;
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static ssize_t f_pwrite(int fd, const void *buf, size_t n, off_t off) {
    if (n >= 256 && all_zero(buf, n)) {
        atomic_fetch_add(&F.zero_writes, 1);
        if (atomic_load(&F.zero_enospc)) {
            errno = ENOSPC;
            return -1;
        }
        int ms = atomic_load(&F.zero_slow_ms);
        if (ms) {
            struct timespec ts = {0, (long)ms * 1000000L};
            nanosleep(&ts, NULL);
            int w = atomic_load(&F.in_flight);
            if (w > atomic_load(&F.max_waiting)) atomic_store(&F.max_waiting, w);
        }
        tl_zero_pending = 1;
    }
    return io_posix.pwrite(fd, buf, n, off);
}

static int f_fdatasync(int fd) {
    int after_zero = tl_zero_pending;
    tl_zero_pending = 0;
    if (after_zero && atomic_load(&F.eio_after_zero)) {
        atomic_store(&F.eio_after_zero, 0);
        atomic_fetch_add(&F.eio_injected, 1);
        errno = EIO;
        return -1;
    }
    return io_posix.fdatasync(fd);
}

static int setup(void **state) {
    (void)state;
    memset(&F, 0, sizeof F);
    io_ops *t = tu_fake_io_install();
    t->pwrite = f_pwrite;
    t->fdatasync = f_fdatasync;
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------ */

static alog_options popts(uint64_t step, uint64_t segment_bytes) {
    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.preallocate_bytes = step;
    o.segment_bytes = segment_bytes;
    return o;
}

/* Record i: value "v<i>" padded with a pattern of i to 100 bytes. */
static void make_value(int64_t i, uint8_t *v) {
    int n = snprintf((char *)v, 100, "v%" PRId64 "-", i);
    for (int k = n; k < 100; k++) v[k] = (uint8_t)('a' + (i + k) % 26);
}

static int64_t append_one(alog *log, int64_t i, unsigned flags) {
    uint8_t v[100];
    make_value(i, v);
    alog_record r = {0};
    r.timestamp = ALOG_TIMESTAMP_NOW;
    r.value = v;
    r.value_len = sizeof v;
    int64_t off;
    TU_OK(alog_append_ex(log, &r, 1, flags, &off));
    return off;
}

/* Every record in [0, n) is there, in order, each with the value its offset names
 * (single-writer tests: record i at offset i). */
static void read_all(alog *log, int64_t n) {
    alog_cursor *c;
    TU_OK(alog_cursor_open(log, 0, &c));
    for (int64_t i = 0; i < n; i++) {
        alog_record r;
        TU_OK(alog_cursor_next(c, &r));
        assert_int_equal(r.offset, i);
        uint8_t v[100];
        make_value(i, v);
        assert_int_equal(r.value_len, sizeof v);
        assert_memory_equal(r.value, v, sizeof v);
    }
    alog_cursor_close(c);
}

/* Waits (up to 20 s) until the active segment's file is longer than its log. */
static int wait_preallocated(alog *log, const char *dir) {
    for (int i = 0; i < 20000; i++) {
        int64_t file;
        uint64_t logical;
        tu_active_sizes(log, dir, &file, &logical);
        if (file > (int64_t)logical) return 1;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void verify_ok(const char *dir, int64_t records) {
    alog_verify_report rep;
    TU_OK(alog_verify(dir, &rep, NULL, NULL));
    assert_int_equal(rep.records, records);
}

/* ---- tests -------------------------------------------------------------------------- */

/* Durable appends get zeroed space ahead; readers of every kind see exactly the log;
 * a clean close cuts the zeros and the next open checks nothing. */
static void test_zeros_ahead_are_never_data(void **state) {
    (void)state;
    char *dir = tu_tmpdir("pa-basic");
    alog_options o = popts(64 << 10, 64 << 20);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    for (int64_t i = 0; i < 50; i++) assert_int_equal(append_one(log, i, 0), i);
    int64_t file;
    uint64_t logical;
    tu_active_sizes(log, dir, &file, &logical);
    assert_int_equal(file, (int64_t)logical); /* not used durably yet: nothing ahead */
    for (int64_t i = 50; i < 300; i++)
        assert_int_equal(append_one(log, i, ALOG_APPEND_DURABLE), i);
    assert_true(wait_preallocated(log, dir));
    tu_active_sizes(log, dir, &file, &logical);
    printf("preallocated: log %" PRIu64 " bytes, file %" PRId64 " bytes, %d zero-fill "
           "writes\n", logical, file, atomic_load(&F.zero_writes));
    char p[4096];
    tu_segment_path(p, sizeof p, dir, 0, "log");
    size_t len;
    uint8_t *bytes = tu_read_file(p, &len);
    assert_non_null(bytes);
    assert_true(all_zero(bytes + logical, len - logical));
    free(bytes);

    /* Another handle, read-only (as another process would): the same 300 records,
     * nothing reported cut. */
    alog_options ro;
    alog_options_init(&ro);
    ro.read_only = 1;
    alog *r;
    TU_OK(alog_open(dir, &ro, &r));
    assert_int_equal(alog_next_offset(r), 300);
    assert_int_equal(alog_recovery(r)->bytes_truncated, 0);
    assert_int_equal(alog_recovery(r)->first_cut_offset, -1);
    read_all(r, 300);
    /* ...and it follows new appends written over the zeros. */
    alog_cursor *c;
    TU_OK(alog_cursor_open(r, 300, &c));
    for (int64_t i = 300; i < 310; i++) append_one(log, i, ALOG_APPEND_DURABLE);
    for (int64_t i = 300; i < 310; i++) {
        alog_record rec;
        TU_OK(alog_cursor_next(c, &rec));
        assert_int_equal(rec.offset, i);
    }
    alog_cursor_close(c);
    TU_OK(alog_close(r));
    verify_ok(dir, 310); /* a live log, zeros and all */

    TU_OK(alog_close(log));
    TU_OK(alog_open(dir, &o, &log));
    assert_int_equal(alog_recovery(log)->clean, 1);
    tu_active_sizes(log, dir, &file, &logical);
    assert_int_equal(file, (int64_t)logical); /* cut back at the clean close */
    read_all(log, 310);
    TU_OK(alog_close(log));
    verify_ok(dir, 310);
    tu_rmrf(dir);
    free(dir);
}

/* preallocate_bytes = 0: the file never runs ahead of the log. Bad sizes are refused. */
static void test_off_and_bad_options(void **state) {
    (void)state;
    char *dir = tu_tmpdir("pa-off");
    alog_options o = popts(0, 64 << 20);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    for (int64_t i = 0; i < 200; i++) append_one(log, i, ALOG_APPEND_DURABLE);
    TU_OK(alog_sync(log));
    int64_t file;
    uint64_t logical;
    tu_active_sizes(log, dir, &file, &logical);
    assert_int_equal(file, (int64_t)logical);
    assert_int_equal(atomic_load(&F.zero_writes), 0);
    TU_OK(alog_close(log));
    o.preallocate_bytes = (1ull << 30) + 1;
    assert_int_equal(alog_open(dir, &o, &log), ALOG_EINVAL);
    assert_non_null(strstr(alog_last_error(), "preallocate_bytes"));
    tu_rmrf(dir);
    free(dir);
}

/* A crash (the files copied as they are while the log is open) leaves zeros after the
 * last batch: the next open reports nothing cut, keeps them for its appends, and its
 * clean close cuts them. A torn batch before the zeros is cut, and counted. */
static void test_crash_leaves_zeros(void **state) {
    (void)state;
    char *root = tu_tmpdir("pa-crash");
    char dir[4096], copy[4096], cmd[9000];
    snprintf(dir, sizeof dir, "%s/live", root);
    snprintf(copy, sizeof copy, "%s/copy", root);
    alog_options o = popts(64 << 10, 64 << 20);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    for (int64_t i = 0; i < 200; i++) append_one(log, i, ALOG_APPEND_DURABLE);
    assert_true(wait_preallocated(log, dir));
    int64_t file;
    uint64_t logical;
    tu_active_sizes(log, dir, &file, &logical);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", dir, copy);
    assert_int_equal(system(cmd), 0);
    TU_OK(alog_close(log));

    char p[4096];
    tu_segment_path(p, sizeof p, copy, 0, "log");
    assert_int_equal(tu_file_size(p), file);
    /* A copy of the copy, with a torn batch written over the start of the zeros. */
    char torn[4096];
    snprintf(torn, sizeof torn, "%s/torn", root);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", copy, torn);
    assert_int_equal(system(cmd), 0);

    TU_OK(alog_open(copy, &o, &log));
    const alog_recovery_info *ri = alog_recovery(log);
    assert_int_equal(ri->clean, 0);
    assert_int_equal(ri->bytes_truncated, 0);
    assert_int_equal(ri->first_cut_offset, -1);
    assert_int_equal(alog_next_offset(log), 200);
    assert_int_equal(tu_file_size(p), file); /* kept as preallocated space */
    for (int64_t i = 200; i < 260; i++) append_one(log, i, 0); /* over the zeros */
    read_all(log, 260);
    TU_OK(alog_close(log));
    int64_t f2;
    uint64_t l2;
    TU_OK(alog_open(copy, &o, &log));
    tu_active_sizes(log, copy, &f2, &l2);
    assert_int_equal(f2, (int64_t)l2);
    read_all(log, 260);
    TU_OK(alog_close(log));
    verify_ok(copy, 260);

    char tp[4096];
    tu_segment_path(tp, sizeof tp, torn, 0, "log");
    int fd = open(tp, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t junk[40];
    memset(junk, 0x5a, sizeof junk);
    assert_int_equal(pwrite(fd, junk, sizeof junk, (off_t)logical), (ssize_t)sizeof junk);
    close(fd);
    TU_OK(alog_open(torn, &o, &log));
    ri = alog_recovery(log);
    assert_int_equal(ri->bytes_truncated, sizeof junk);
    assert_int_equal(ri->first_cut_offset, 200);
    assert_int_equal(tu_file_size(tp), (int64_t)logical);
    read_all(log, 200);
    TU_OK(alog_close(log));
    verify_ok(torn, 200);
    tu_rmrf(root);
    free(root);
}

/* Segment rolls while zeros are ahead: every sealed segment ends at its last batch. */
static void test_roll_cuts_the_zeros(void **state) {
    (void)state;
    char *dir = tu_tmpdir("pa-roll");
    alog_options o = popts(8 << 10, 48 << 10);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    const int64_t n = 3000; /* ~500 KiB: about 10 segments */
    for (int64_t i = 0; i < n; i++) append_one(log, i, ALOG_APPEND_DURABLE);
    alog_segment_info *s;
    size_t ns;
    TU_OK(alog_segments(log, &s, &ns));
    assert_true(ns >= 5);
    for (size_t i = 0; i + 1 < ns; i++) {
        char p[4096];
        tu_segment_path(p, sizeof p, dir, s[i].base_offset, "log");
        assert_int_equal(tu_file_size(p), (int64_t)s[i].size_bytes);
    }
    alog_free(s);
    printf("%zu segments, %d zero-fill writes\n", ns, atomic_load(&F.zero_writes));
    assert_true(atomic_load(&F.zero_writes) > 0);
    read_all(log, n);
    TU_OK(alog_close(log));
    verify_ok(dir, n);
    tu_rmrf(dir);
    free(dir);
}

/* Appends that outrun a (slow) zero-fill wait for it rather than have their batches
 * overwritten with zeros: 8 threads, small steps, every zero write takes 20 ms. */
typedef struct {
    alog *log;
    int id, n;
    int64_t *offs;
} writer;

static void *writer_main(void *arg) {
    writer *w = arg;
    for (int i = 0; i < w->n; i++) {
        uint8_t v[100];
        make_value((int64_t)w->id * 1000000 + i, v);
        alog_record r = {0};
        r.value = v;
        r.value_len = sizeof v;
        atomic_fetch_add(&F.in_flight, 1);
        alog_err e = alog_append_ex(w->log, &r, 1, (i % 3) ? ALOG_APPEND_DURABLE : 0,
                                    &w->offs[i]);
        atomic_fetch_sub(&F.in_flight, 1);
        if (e) fail_msg("append: %s", alog_last_error());
    }
    return NULL;
}

/* step: one piece a step (4 KiB), or several (256 KiB: the appends stop a step
 * midway, and wait only for the piece being written). */
static void outrun(uint64_t step) {
    char *dir = tu_tmpdir("pa-race");
    alog_options o = popts(step, 64 << 20);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    atomic_store(&F.zero_slow_ms, 20);
    enum { W = 8, N = 300 };
    writer ws[W];
    pthread_t t[W];
    for (int i = 0; i < W; i++) {
        ws[i] = (writer){log, i, N, calloc(N, sizeof(int64_t))};
        assert_non_null(ws[i].offs);
        assert_int_equal(pthread_create(&t[i], NULL, writer_main, &ws[i]), 0);
    }
    for (int i = 0; i < W; i++) pthread_join(t[i], NULL);
    atomic_store(&F.zero_slow_ms, 0);
    printf("steps of %" PRIu64 " bytes: %d zero-fill writes; up to %d appends in flight "
           "during one\n", step, atomic_load(&F.zero_writes), atomic_load(&F.max_waiting));
    assert_true(atomic_load(&F.zero_writes) >= 2);
    /* Every record at the offset its append returned, byte for byte. */
    alog_cursor *c;
    TU_OK(alog_cursor_open(log, 0, &c));
    int64_t *who = calloc(W * N, sizeof *who);
    assert_non_null(who);
    for (int i = 0; i < W; i++)
        for (int k = 0; k < N; k++) who[ws[i].offs[k]] = (int64_t)i * 1000000 + k + 1;
    for (int64_t off = 0; off < W * N; off++) {
        alog_record r;
        TU_OK(alog_cursor_next(c, &r));
        assert_int_equal(r.offset, off);
        assert_true(who[off] > 0);
        uint8_t v[100];
        make_value(who[off] - 1, v);
        assert_int_equal(r.value_len, sizeof v);
        assert_memory_equal(r.value, v, sizeof v);
    }
    alog_cursor_close(c);
    free(who);
    for (int i = 0; i < W; i++) free(ws[i].offs);
    TU_OK(alog_close(log));
    verify_ok(dir, W * N);
    tu_rmrf(dir);
    free(dir);
}

static void test_appends_outrunning_the_zero_fill_wait(void **state) {
    (void)state;
    outrun(4096);
    memset(&F, 0, sizeof F);
    outrun(256 << 10);
}

/* The log's thread also runs fsyncs and durability callbacks (alogd's acknowledgements
 * are such callbacks): it zero-fills a piece at a time between them, so a callback
 * does not wait for a whole step. Zero writes take 30 ms here; a 1 MiB step is 16 of
 * them; the callback must come while the step is still being written. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, zero_writes_then;
    alog_err err;
} cb_state;

static void on_durable(void *ctx, int64_t offset, alog_err err) {
    (void)offset;
    cb_state *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->done = 1;
    c->err = err;
    c->zero_writes_then = atomic_load(&F.zero_writes);
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void test_callbacks_between_zero_pieces(void **state) {
    (void)state;
    char *dir = tu_tmpdir("pa-cb");
    alog_options o = popts(1 << 20, 64 << 20);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    atomic_store(&F.zero_slow_ms, 30);
    append_one(log, 0, ALOG_APPEND_DURABLE); /* durable use: a 1 MiB step starts */
    for (int i = 0; i < 2000 && atomic_load(&F.zero_writes) == 0; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_true(atomic_load(&F.zero_writes) > 0);
    int64_t off = append_one(log, 1, 0);
    cb_state c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, ALOG_OK};
    TU_OK(alog_on_durable(log, off, on_durable, &c));
    pthread_mutex_lock(&c.mu);
    while (!c.done) pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
    printf("callback after %d of the step's 16 zero writes\n", c.zero_writes_then);
    assert_int_equal(c.err, ALOG_OK);
    assert_true(c.zero_writes_then < 16);
    atomic_store(&F.zero_slow_ms, 0);
    TU_OK(alog_close(log));
    verify_ok(dir, 2);
    tu_rmrf(dir);
    free(dir);
}

/* A full disk while zero-filling only stops the preallocation. */
static void test_full_disk_while_zero_filling(void **state) {
    (void)state;
    char *dir = tu_tmpdir("pa-enospc");
    alog_options o = popts(16 << 10, 64 << 20);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    atomic_store(&F.zero_enospc, 1);
    for (int64_t i = 0; i < 500; i++) append_one(log, i, ALOG_APPEND_DURABLE);
    TU_OK(alog_sync(log));
    assert_true(atomic_load(&F.zero_writes) >= 1);
    printf("%d zero-fill writes refused (ENOSPC); appends went on\n",
           atomic_load(&F.zero_writes));
    read_all(log, 500);
    atomic_store(&F.zero_enospc, 0);
    TU_OK(alog_close(log));
    verify_ok(dir, 500);
    tu_rmrf(dir);
    free(dir);
}

/* The fdatasync of the zeros fails: the log fails (until reopened), as for any failed
 * fsync, and says what it was doing; reopening finds every acknowledged record. */
static void test_failed_sync_of_zeros_fails_the_log(void **state) {
    (void)state;
    char *dir = tu_tmpdir("pa-eio");
    alog_options o = popts(16 << 10, 64 << 20);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    atomic_store(&F.eio_after_zero, 1);
    int64_t acked = 0;
    alog_err e = ALOG_OK;
    for (int64_t i = 0; i < 100000 && !e; i++) {
        uint8_t v[100];
        make_value(i, v);
        alog_record r = {0};
        r.value = v;
        r.value_len = sizeof v;
        e = alog_append_ex(log, &r, 1, ALOG_APPEND_DURABLE, NULL);
        if (!e) acked = i + 1;
    }
    assert_int_equal(e, ALOG_EFAILED);
    assert_int_equal(atomic_load(&F.eio_injected), 1);
    printf("after %" PRId64 " durable appends: %s\n", acked, alog_last_error());
    assert_non_null(strstr(alog_last_error(), "zero-filling"));
    assert_int_equal(alog_close(log), ALOG_EFAILED);
    TU_OK(alog_open(dir, &o, &log));
    assert_true(alog_next_offset(log) >= acked);
    read_all(log, acked);
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_zeros_ahead_are_never_data, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_off_and_bad_options, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_crash_leaves_zeros, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_roll_cuts_the_zeros, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_appends_outrunning_the_zero_fill_wait, setup,
                                        tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_callbacks_between_zero_pieces, setup,
                                        tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_full_disk_while_zero_filling, setup,
                                        tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_failed_sync_of_zeros_fails_the_log, setup,
                                        tu_fake_io_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
