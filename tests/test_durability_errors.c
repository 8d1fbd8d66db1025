/*
 * test_durability_errors.c -- fsync errors as Linux really reports them, and syncs that
 * must not overlap.
 *
 * Linux reports a failed write-back (the page cache could not write a page: EIO, or
 * ENOSPC on a thin device) once per open file description (errseq, since 4.13): the
 * first fsync/fdatasync/sync_file_range(WAIT) on a descriptor after the failure gets the
 * error, later ones on that descriptor return 0 although the page never reached the
 * disk. So two syncs of one descriptor at once can split an error between them, and a
 * sync issued for another purpose (writing back preallocated zeros) can swallow the
 * report a durable append was waiting for. The fake io table below models exactly that:
 * "lose" a write-back on a file, and every descriptor of it opened before reports EIO
 * once at its next sync. It also counts syncs in flight per descriptor.
 *
 * It checks behaviour, never time:
 *  - no two syncs of one descriptor ever run at once, through rolls, checkpoints,
 *    group commits and zero-fills;
 *  - a lost write-back is reported to the appends even when the zero-fill syncs first;
 *  - a full disk while a roll writes the indexes is an error for that append only: the
 *    log goes on once space is back (DURABILITY.md).
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "log.h"
#include "testutil.h"

#define MAXFD 4096

static struct {
    atomic_int inflight[MAXFD]; /* syncs running on each descriptor */
    atomic_int max_inflight;    /* the most ever seen on one descriptor */
    atomic_int slow_us;         /* each sync of a .log takes this long */
    atomic_int is_log[MAXFD], is_index[MAXFD];
    /* errseq model: one file (inode lost_ino) has had lost_seq write-backs fail; each
     * descriptor has reported cursor[fd] of them. */
    _Atomic unsigned long lost_ino;
    atomic_uint lost_seq;
    atomic_uint cursor[MAXFD];
    _Atomic unsigned long ino[MAXFD];
    atomic_int eio_reported; /* syncs that returned the lost write-back */
    atomic_int eio_first_fd, eio_first_sfr; /* the first of them: its fd, sync_file_range? */
    atomic_int sfr_calls, slow_sfr_us;      /* sync_file_range calls; each takes this long */
    atomic_int index_enospc; /* writes to .index/.timeindex files fail with ENOSPC */
    atomic_int fail_my_next_write; /* the test thread's next pwrite fails with ENOSPC */
    pthread_t tester;
    atomic_int index_refused;
} fk;

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

static int fake_open(const char *path, int flags, mode_t mode) {
    int fd = io_posix.open(path, flags, mode);
    if (fd >= 0 && fd < MAXFD) {
        struct stat st;
        atomic_store(&fk.ino[fd], fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : 0);
        atomic_store(&fk.cursor[fd], atomic_load(&fk.lost_seq));
        atomic_store(&fk.is_log[fd], ends_with(path, ".log"));
        atomic_store(&fk.is_index[fd], ends_with(path, ".index") || ends_with(path, ".timeindex"));
    }
    return fd;
}

static ssize_t fake_pwrite(int fd, const void *buf, size_t n, off_t off) {
    if (atomic_load(&fk.fail_my_next_write) && pthread_equal(pthread_self(), fk.tester) &&
        atomic_exchange(&fk.fail_my_next_write, 0)) {
        errno = ENOSPC;
        return -1;
    }
    if (fd >= 0 && fd < MAXFD && atomic_load(&fk.is_index[fd]) && atomic_load(&fk.index_enospc)) {
        atomic_fetch_add(&fk.index_refused, 1);
        errno = ENOSPC;
        return -1;
    }
    return pwrite(fd, buf, n, off);
}

/* Every kind of sync: counts it in flight, optionally slows it, then reports a lost
 * write-back once per descriptor like errseq_check_and_advance. */
static int fake_sync(int fd, int (*real)(int fd), off_t off, off_t n, unsigned flags) {
    int in = fd >= 0 && fd < MAXFD;
    if (in) {
        int now = atomic_fetch_add(&fk.inflight[fd], 1) + 1;
        int m = atomic_load(&fk.max_inflight);
        while (now > m && !atomic_compare_exchange_weak(&fk.max_inflight, &m, now)) {
        }
        int us = real ? atomic_load(&fk.slow_us) : atomic_load(&fk.slow_sfr_us);
        if (us && atomic_load(&fk.is_log[fd])) {
            struct timespec ts = {0, (long)us * 1000};
            nanosleep(&ts, NULL);
        }
    }
    int rc = real ? real(fd) : sync_file_range(fd, off, n, flags);
    if (in) {
        unsigned seq = atomic_load(&fk.lost_seq);
        int waits = real || (flags & (SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WAIT_AFTER));
        if (rc == 0 && waits && atomic_load(&fk.ino[fd]) == atomic_load(&fk.lost_ino) &&
            atomic_exchange(&fk.cursor[fd], seq) != seq) {
            if (atomic_fetch_add(&fk.eio_reported, 1) == 0) {
                atomic_store(&fk.eio_first_fd, fd);
                atomic_store(&fk.eio_first_sfr, !real);
            }
            errno = EIO;
            rc = -1;
        }
        atomic_fetch_sub(&fk.inflight[fd], 1);
        if (!real) atomic_fetch_add(&fk.sfr_calls, 1);
    }
    return rc;
}
static int fake_fdatasync(int fd) { return fake_sync(fd, fdatasync, 0, 0, 0); }
static int fake_fsync(int fd) { return fake_sync(fd, fsync, 0, 0, 0); }
static int fake_sfr(int fd, off_t off, off_t n, unsigned flags) {
    return fake_sync(fd, NULL, off, n, flags);
}

static int setup(void **state) {
    (void)state;
    memset(&fk, 0, sizeof fk);
    io_ops *t = tu_fake_io_install();
    t->open = fake_open;
    t->pwrite = fake_pwrite;
    t->fdatasync = fake_fdatasync;
    t->fsync = fake_fsync;
    t->sync_file_range = fake_sfr;
    return 0;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static alog_record rec_of(char *buf, size_t len, int i) {
    memset(buf, 'a' + i % 26, len);
    snprintf(buf, len, "rec-%d-", i);
    alog_record r = {0};
    r.value = buf;
    r.value_len = len;
    r.timestamp = 1700000000000 + i;
    return r;
}

/* ---- no two syncs of one descriptor at once -------------------------------------- */

typedef struct {
    alog *log;
    int id, n, errors;
    unsigned flags;
} writer;

static void *writer_main(void *arg) {
    writer *w = arg;
    char v[300];
    for (int i = 0; i < w->n; i++) {
        alog_record r = rec_of(v, sizeof v, w->id * 100000 + i);
        if (alog_append_ex(w->log, &r, 1, w->flags, NULL) != ALOG_OK) w->errors++;
    }
    return NULL;
}

static atomic_int syncer_stop, syncer_calls, syncer_errors;
static void *syncer(void *arg) {
    while (!atomic_load(&syncer_stop)) {
        if (alog_sync(arg) != ALOG_OK) atomic_fetch_add(&syncer_errors, 1);
        atomic_fetch_add(&syncer_calls, 1);
    }
    return NULL;
}

static void test_one_sync_per_descriptor(void **state) {
    (void)state;
    char *dir = tu_tmpdir("errs_gate");
    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.segment_bytes = 24 << 10;   /* a roll (seal: index writes, fsyncs) every ~70 records */
    o.preallocate_bytes = 4096;   /* zero-fills with their own syncs */
    atomic_store(&fk.slow_us, 300); /* syncs long enough to meet each other */
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    enum { T = 8, N = 120 };
    pthread_t th[T];
    writer w[T];
    /* Half append durably (group commit), half plainly: their appends roll the log
     * while the syncer's fsyncs run. */
    for (int i = 0; i < T; i++) {
        w[i] = (writer){log, i, N, 0, i % 2 ? ALOG_APPEND_DURABLE : 0};
        pthread_create(&th[i], NULL, writer_main, &w[i]);
    }
    /* And a user's alog_sync in a loop from another thread. */
    atomic_store(&syncer_stop, 0);
    pthread_t st;
    pthread_create(&st, NULL, syncer, log);
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].errors, 0);
    }
    atomic_store(&syncer_stop, 1);
    pthread_join(st, NULL);
    assert_true(atomic_load(&syncer_calls) > 0);
    assert_int_equal(atomic_load(&syncer_errors), 0);
    assert_int_equal(alog_next_offset(log), T * N);
    size_t nsegs = 0;
    alog_segment_info *segs;
    TU_OK(alog_segments(log, &segs, &nsegs));
    alog_free(segs);
    TU_OK(alog_close(log));
    printf("  %zu segments, at most %d sync(s) at once on one descriptor\n", nsegs,
           atomic_load(&fk.max_inflight));
    assert_true(nsegs >= 10);
    assert_int_equal(atomic_load(&fk.max_inflight), 1);
    tu_rmrf(dir);
    free(dir);
}

/* ---- a lost write-back reaches the appends ---------------------------------------- */

static void test_lost_writeback_reported_to_appends(void **state) {
    (void)state;
    char *dir = tu_tmpdir("errs_lost");
    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.preallocate_bytes = 1 << 20; /* 16 pieces of zeros, each written back on its own */
    atomic_store(&fk.slow_sfr_us, 3000);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    char v[1000];
    alog_record r = rec_of(v, sizeof v, 0);
    TU_OK(alog_append_ex(log, &r, 1, ALOG_APPEND_DURABLE, NULL)); /* preallocation on */
    /* The log's thread is zero-filling: it has written back a piece, more will follow. */
    for (int i = 0; i < 5000 && atomic_load(&fk.sfr_calls) < 1; i++) sleep_ms(1);
    assert_true(atomic_load(&fk.sfr_calls) >= 1);
    int64_t x;
    r = rec_of(v, sizeof v, 1);
    TU_OK(alog_append(log, &r, &x));
    /* The page holding record x is "lost" on its way to the disk. */
    int afd = log_active(log)->fd;
    struct stat st;
    assert_int_equal(fstat(afd, &st), 0);
    atomic_store(&fk.lost_ino, (unsigned long)st.st_ino);
    atomic_fetch_add(&fk.lost_seq, 1);
    /* The zero-fill's next write-back learns of it first. */
    for (int i = 0; i < 5000 && !atomic_load(&fk.eio_reported); i++) sleep_ms(1);
    assert_true(atomic_load(&fk.eio_reported) >= 1);
    printf("  first told: fd %d by %s (the appends' fd is %d)\n", atomic_load(&fk.eio_first_fd),
           atomic_load(&fk.eio_first_sfr) ? "sync_file_range" : "fdatasync", afd);
    assert_true(atomic_load(&fk.eio_first_sfr));
    /* The appends' own fdatasync must still report it: x is not durable. */
    alog_err e = alog_sync(log);
    printf("  alog_sync: %s (%s)\n", alog_err_name(e), alog_last_error());
    assert_int_equal(e, ALOG_EFAILED);
    assert_true(alog_durable_offset(log) <= x);
    alog_close(log);
    tu_rmrf(dir);
    free(dir);
}

/* ---- a full disk while a roll writes the indexes ---------------------------------- */

static void test_roll_on_full_disk_goes_on(void **state) {
    (void)state;
    char *dir = tu_tmpdir("errs_roll");
    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.segment_bytes = 16 << 10;
    o.index_interval_bytes = 1024;
    o.preallocate_bytes = 0;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    char v[700];
    int n = 0;
    for (; n < 10; n++) {
        alog_record r = rec_of(v, sizeof v, n);
        TU_OK(alog_append(log, &r, NULL));
    }
    /* The disk fills: the next roll cannot write the sealed segment's indexes. */
    atomic_store(&fk.index_enospc, 1);
    alog_err e = ALOG_OK;
    int tries = 0;
    while (e == ALOG_OK && tries++ < 100) {
        alog_record r = rec_of(v, sizeof v, n);
        e = alog_append(log, &r, NULL);
        if (e == ALOG_OK) n++;
    }
    printf("  the roll failed with %s: %s\n", alog_err_name(e), alog_last_error());
    assert_true(atomic_load(&fk.index_refused) > 0);
    assert_int_not_equal(e, ALOG_OK);
    assert_int_not_equal(e, ALOG_EFAILED);
    assert_non_null(strstr(alog_last_error(), "index"));
    /* Still full: still refused, still not failed for good. */
    alog_record r = rec_of(v, sizeof v, n);
    e = alog_append(log, &r, NULL);
    assert_int_not_equal(e, ALOG_OK);
    assert_int_not_equal(e, ALOG_EFAILED);
    /* Space is back: the roll happens and appends go on, without a reopen. */
    atomic_store(&fk.index_enospc, 0);
    for (int k = 0; k < 40; k++, n++) {
        r = rec_of(v, sizeof v, n);
        TU_OK(alog_append(log, &r, NULL));
    }
    assert_int_equal(alog_next_offset(log), n);
    TU_OK(alog_close(log));
    /* Every record is there, in order, and the log verifies. */
    o.read_only = 1;
    TU_OK(alog_open(dir, &o, &log));
    alog_cursor *c;
    TU_OK(alog_cursor_open(log, 0, &c));
    alog_record got;
    int k = 0;
    while ((e = alog_cursor_next(c, &got)) == ALOG_OK) {
        char want[700];
        alog_record w = rec_of(want, sizeof want, k);
        assert_int_equal(got.offset, k);
        assert_memory_equal(got.value, w.value, w.value_len);
        k++;
    }
    assert_int_equal(e, ALOG_EOF);
    assert_int_equal(k, n);
    alog_cursor_close(c);
    alog_close(log);
    alog_verify_report rep;
    TU_OK(alog_verify(dir, &rep, NULL, NULL));
    assert_int_equal(rep.records, (uint64_t)n);
    tu_rmrf(dir);
    free(dir);
}

/* ---- a failed write cuts the zeros too; preallocation goes on ------------------- */

static void test_cut_after_failed_write_resumes_zeros(void **state) {
    (void)state;
    char *dir = tu_tmpdir("errs_cut");
    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.preallocate_bytes = 64 << 10;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    char v[1000];
    int i = 0;
    int64_t file;
    uint64_t logical;
    /* Durable appends until zeros lie ahead. */
    for (int k = 0; k < 5000; k++) {
        alog_record r = rec_of(v, sizeof v, i++);
        TU_OK(alog_append_ex(log, &r, 1, ALOG_APPEND_DURABLE, NULL));
        tu_active_sizes(log, dir, &file, &logical);
        if (file >= (int64_t)logical + (32 << 10)) break;
    }
    assert_true(file >= (int64_t)logical + (32 << 10));
    /* A plain append meets a full disk: its bytes, and the zeros after them, are cut. */
    fk.tester = pthread_self();
    atomic_store(&fk.fail_my_next_write, 1);
    alog_record r = rec_of(v, sizeof v, i);
    assert_int_equal(alog_append(log, &r, NULL), ALOG_ENOSPC);
    alog_err e = alog_append(log, &r, NULL); /* the next append does the cut, and goes in */
    TU_OK(e);
    i++;
    segment *a = log_active(log);
    printf("  after the cut: zeroed end %llu, data end %llu\n",
           (unsigned long long)atomic_load(&a->alloc_end), (unsigned long long)a->st.position);
    assert_true(atomic_load(&a->alloc_end) <= a->st.position);
    /* Durable appends go on, and so does the zero-filling ahead of them. */
    int back = 0;
    for (int k = 0; k < 200 && !back; k++) {
        r = rec_of(v, sizeof v, i++);
        TU_OK(alog_append_ex(log, &r, 1, ALOG_APPEND_DURABLE, NULL));
        tu_active_sizes(log, dir, &file, &logical);
        back = file > (int64_t)logical;
        if (!back) sleep_ms(2);
    }
    assert_true(back);
    TU_OK(alog_close(log));
    alog_verify_report rep;
    TU_OK(alog_verify(dir, &rep, NULL, NULL));
    assert_int_equal(rep.records, (uint64_t)i);
    tu_rmrf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_sync_per_descriptor, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_lost_writeback_reported_to_appends, setup,
                                        tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_roll_on_full_disk_goes_on, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_cut_after_failed_write_resumes_zeros, setup,
                                        tu_fake_io_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
