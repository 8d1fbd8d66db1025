/*
 * test_faults.c -- what the engine does when the operating system's file calls fail
 * or behave in the unusual ways POSIX allows.
 *
 * Why: disks fill up, devices report I/O errors, writes come back short and calls are
 * interrupted by signals. Each case has one right answer: a failed write is reported
 * to its caller (naming the file) and cut off again without losing anything appended
 * before it, and appending goes on at the right offsets; short writes and EINTR are
 * retried and change nothing; a failed fsync is reported to every writer waiting for
 * it, never acknowledged as durable, and stops the log (ALOG_EFAILED, even once the
 * device answers again: the PostgreSQL "fsyncgate" lesson) until it is reopened,
 * which recovers every acknowledged record.
 *
 * A fake io table (src/io.h) wraps the real calls and injects, on command: a pwrite to
 * a .log file that writes half its bytes and then fails with EIO or ENOSPC (after a
 * number of good calls, for a number of calls; slowly, so that other writers reserve
 * space behind the failing batch meanwhile); short writes of 1-7 bytes on every
 * pwrite; EINTR from every other pwrite/pread/fsync; EINTR or EIO from fdatasync (EIO:
 * after a number of good .log syncs, then from every fdatasync/fsync until cleared).
 * It also tracks which offsets reached the .log files before the last successful
 * fdatasync began, to check that no durable append returns before its fsync.
 *
 * Every record is made from a seed (tu_srec_make: seed in the key, value "r<seed>-"
 * and bytes from the seed), so the checks compare each record byte for byte with
 * what its writer appended; each test keeps a journal of every append and its result
 * and, after a reopen, requires every acknowledged record at its offset, offsets
 * without gaps, and no record whose append reported failure (except after a failed
 * fsync, where a record written but not confirmed may be there -- whole batches only).
 * No timing is asserted. Each test prints what it injected and what came of it.
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

/* Three checks here guard behaviour these tests first found missing (since fixed):
 *   1. EINTR from fdatasync/fsync is asked again, not taken as a failed fsync (which
 *      would fail the log for good). POSIX allows fsync to return EINTR, which says
 *      the call was interrupted, not that write-back failed.
 *   2. alog_close() of a log that failed returns ALOG_EFAILED: what was appended
 *      after the failure was never synced.
 *   3. A durable append (group commit) that fails keeps the errno in
 *      alog_last_errno(), as a plain append does. */

/* ---- the fake io table ------------------------------------------------------------ */

enum { MAX_FD = 4096 };

static struct {
    atomic_char is_log[MAX_FD]; /* fds of .log files */
    atomic_int pwrite_calls;

    /* pwrite failures on .log files: once armed, pw_skip more calls go through, then
     * pw_fail calls each write half their bytes and fail with pw_errno. */
    atomic_int pw_armed, pw_skip, pw_fail, pw_errno, pw_injected;
    atomic_int pw_fail_us; /* a failing call takes this long (others get in meanwhile) */

    /* Short writes on every pwrite (any file): 1, 2, ... 7 bytes, round and round. */
    atomic_int short_on, short_calls;
    atomic_uint short_seq;

    /* EINTR before doing anything, from every other pwrite / pread / fdatasync and
     * fsync (any file). */
    atomic_int eintr_pwrite, eintr_pread, eintr_sync;
    atomic_uint eintr_wseq, eintr_rseq, eintr_sseq;
    atomic_int eintr_pwrite_injected, eintr_pread_injected, eintr_sync_injected;

    /* fdatasync of a .log file: the next fds_eintr calls fail with EINTR. */
    atomic_int fds_eintr, fds_eintr_injected;
    /* Once armed, fds_skip more .log fdatasyncs succeed; then every fdatasync and fsync
     * fails with EIO while fds_failing is set. */
    atomic_int fds_armed, fds_skip, fds_failing, fds_failed_calls;
    atomic_int log_syncs; /* .log fdatasync calls that succeeded */
    atomic_int slow_us;   /* each .log fdatasync takes this long */

    /* One past the last offset written to a .log file, and of what was written before
     * the latest successful .log fdatasync began. */
    _Atomic int64_t written_next, synced_next;
} fk;

static int fd_is_log(int fd) { return fd >= 0 && fd < MAX_FD && atomic_load(&fk.is_log[fd]); }

static void atomic_max64(_Atomic int64_t *v, int64_t x) {
    int64_t cur = atomic_load(v);
    while (cur < x && !atomic_compare_exchange_weak(v, &cur, x)) {
    }
}

static uint64_t be_load(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* Notes the offsets of the whole batches in a complete write to a .log file (a group
 * commit writes several back to back). */
static void track_written(const uint8_t *b, size_t n) {
    size_t at = 0;
    while (n - at >= 61 && b[at + 16] == 2) {
        int64_t base = (int64_t)be_load(b + at, 8);
        uint32_t blen = (uint32_t)be_load(b + at + 8, 4);
        int32_t lod = (int32_t)(uint32_t)be_load(b + at + 23, 4);
        if (12 + (size_t)blen > n - at) break;
        atomic_max64(&fk.written_next, base + lod + 1);
        at += 12 + (size_t)blen;
    }
}

static int fake_open(const char *path, int flags, mode_t mode) {
    int fd = io_posix.open(path, flags, mode);
    size_t n = strlen(path);
    if (fd >= 0 && fd < MAX_FD)
        atomic_store(&fk.is_log[fd], n > 4 && !strcmp(path + n - 4, ".log"));
    return fd;
}

static ssize_t fake_pwrite(int fd, const void *buf, size_t n, off_t off) {
    atomic_fetch_add(&fk.pwrite_calls, 1);
    if (atomic_load(&fk.eintr_pwrite) && atomic_fetch_add(&fk.eintr_wseq, 1) % 2 == 0) {
        atomic_fetch_add(&fk.eintr_pwrite_injected, 1);
        errno = EINTR;
        return -1;
    }
    int is_log = fd_is_log(fd);
    if (is_log && atomic_load(&fk.pw_armed) && atomic_fetch_sub(&fk.pw_skip, 1) <= 0) {
        if (atomic_fetch_sub(&fk.pw_fail, 1) > 0) {
            /* The device took some of the bytes, then failed. */
            if (n > 1 && pwrite(fd, buf, n / 2, off) < 0) return -1;
            int us = atomic_load(&fk.pw_fail_us);
            if (us) {
                struct timespec ts = {0, (long)us * 1000};
                nanosleep(&ts, NULL);
            }
            atomic_fetch_add(&fk.pw_injected, 1);
            errno = atomic_load(&fk.pw_errno);
            return -1;
        }
        atomic_store(&fk.pw_armed, 0);
    }
    size_t m = n;
    if (atomic_load(&fk.short_on) && n > 1) {
        size_t k = 1 + atomic_fetch_add(&fk.short_seq, 1) % 7;
        if (k < n) {
            m = k;
            atomic_fetch_add(&fk.short_calls, 1);
        }
    }
    ssize_t w = pwrite(fd, buf, m, off);
    if (is_log && w == (ssize_t)n) track_written(buf, n);
    return w;
}

static ssize_t fake_pread(int fd, void *buf, size_t n, off_t off) {
    if (atomic_load(&fk.eintr_pread) && atomic_fetch_add(&fk.eintr_rseq, 1) % 2 == 0) {
        atomic_fetch_add(&fk.eintr_pread_injected, 1);
        errno = EINTR;
        return -1;
    }
    return pread(fd, buf, n, off);
}

/* Every other fdatasync/fsync fails with EINTR while eintr_sync is set. */
static int sync_eintr(void) {
    if (atomic_load(&fk.eintr_sync) && atomic_fetch_add(&fk.eintr_sseq, 1) % 2 == 0) {
        atomic_fetch_add(&fk.eintr_sync_injected, 1);
        errno = EINTR;
        return 1;
    }
    return 0;
}

static int fake_fdatasync(int fd) {
    if (sync_eintr()) return -1;
    int is_log = fd_is_log(fd);
    if (is_log && atomic_load(&fk.fds_eintr) > 0 && atomic_fetch_sub(&fk.fds_eintr, 1) > 0) {
        atomic_fetch_add(&fk.fds_eintr_injected, 1);
        errno = EINTR;
        return -1;
    }
    int64_t covered = atomic_load(&fk.written_next);
    if (is_log) {
        int us = atomic_load(&fk.slow_us);
        if (us) {
            struct timespec ts = {0, (long)us * 1000};
            nanosleep(&ts, NULL);
        }
        if (atomic_load(&fk.fds_armed) && atomic_fetch_sub(&fk.fds_skip, 1) <= 0) {
            atomic_store(&fk.fds_failing, 1);
            atomic_store(&fk.fds_armed, 0);
        }
    }
    if (atomic_load(&fk.fds_failing)) {
        atomic_fetch_add(&fk.fds_failed_calls, 1);
        errno = EIO;
        return -1;
    }
    int rc = fdatasync(fd);
    if (is_log && rc == 0) {
        atomic_fetch_add(&fk.log_syncs, 1);
        atomic_max64(&fk.synced_next, covered);
    }
    return rc;
}

static int fake_fsync(int fd) {
    if (sync_eintr()) return -1;
    if (atomic_load(&fk.fds_failing)) {
        atomic_fetch_add(&fk.fds_failed_calls, 1);
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}

static int setup(void **state) {
    (void)state;
    memset(&fk, 0, sizeof fk);
    io_ops *t = tu_fake_io_install();
    t->open = fake_open;
    t->pwrite = fake_pwrite;
    t->pread = fake_pread;
    t->fdatasync = fake_fdatasync;
    t->fsync = fake_fsync;
    return 0;
}

/* ---- the journal of appends and the check against it ------------------------------- */

/* Seeds: writer thread + 1 above bit 40, the writer's record counter below. */
static uint64_t seed_of(int writer, uint64_t counter) {
    return (uint64_t)(writer + 1) << 40 | counter;
}

typedef struct jop {
    uint64_t seed; /* of the first record; the others follow */
    uint32_t n;
    int64_t off; /* first offset, if ok */
    alog_err err;
} jop;

typedef struct journal {
    pthread_mutex_t mu;
    jop *v;
    size_t n, cap;
} journal;

static void journal_init(journal *j) {
    memset(j, 0, sizeof *j);
    pthread_mutex_init(&j->mu, NULL);
}

static void journal_free(journal *j) {
    free(j->v);
    pthread_mutex_destroy(&j->mu);
}

static void journal_add(journal *j, uint64_t seed, uint32_t n, int64_t off, alog_err err) {
    pthread_mutex_lock(&j->mu);
    if (j->n == j->cap) {
        j->cap = j->cap ? j->cap * 2 : 256;
        j->v = realloc(j->v, j->cap * sizeof *j->v);
    }
    if (j->v) j->v[j->n++] = (jop){seed, n, off, err};
    pthread_mutex_unlock(&j->mu);
}

static uint64_t journal_acked(const journal *j) {
    uint64_t k = 0;
    for (size_t i = 0; i < j->n; i++)
        if (!j->v[i].err) k += j->v[i].n;
    return k;
}

/* One append of n seeded records (seeds first..first+n-1) through the chosen call. */
static alog_err append_seeded(alog *log, uint64_t first, size_t n, unsigned flags, tu_srec *bufs,
                              int64_t *off) {
    alog_record r[16];
    assert_true(n >= 1 && n <= 16);
    for (size_t i = 0; i < n; i++) {
        tu_srec_make(&bufs[i], first + i);
        r[i] = bufs[i].rec;
    }
    if (n == 1 && !flags) return alog_append(log, &r[0], off);
    if (!flags) return alog_append_batch(log, r, n, off);
    return alog_append_ex(log, r, n, flags, off);
}

static void free_bufs(tu_srec *bufs, size_t n) {
    for (size_t i = 0; i < n; i++) tu_srec_free(&bufs[i]);
}

enum { CHECK_EXACT = 0, CHECK_FAILED_MAY_BE_THERE = 1 };

/* Reads the whole log and checks it against the journal: offsets from 0 without a gap,
 * every record exactly what its seed makes, every acknowledged record at its offset.
 * CHECK_EXACT: nothing else is there. CHECK_FAILED_MAY_BE_THERE: a record whose append
 * reported failure may be there, but only with all the rest of its batch. Returns the
 * number of records found that were not acknowledged. */
static uint64_t check_log(alog *log, const journal *j, int mode) {
    int64_t next = alog_next_offset(log);
    assert_int_equal(alog_first_offset(log), 0);
    uint64_t *want = calloc((size_t)next + 1, sizeof *want);
    uint32_t *failed_seen = calloc(j->n + 1, sizeof *failed_seen);
    assert_non_null(want);
    assert_non_null(failed_seen);
    for (size_t i = 0; i < j->n; i++) {
        const jop *o = &j->v[i];
        if (o->err) continue;
        if (o->off < 0 || o->off + o->n > next)
            fail_msg("acknowledged batch at offset %" PRId64 " (%u records, seed %016" PRIx64
                     ") is not in the log, which ends at %" PRId64, o->off, o->n, o->seed, next);
        for (uint32_t k = 0; k < o->n; k++) {
            if (want[o->off + k])
                fail_msg("offset %" PRId64 " was acknowledged twice", o->off + (int64_t)k);
            want[o->off + k] = o->seed + k;
        }
    }
    tu_srec scratch = {0};
    alog_cursor *c;
    TU_OK(alog_cursor_open(log, 0, &c));
    alog_record r;
    alog_err e;
    int64_t at = 0;
    uint64_t extra = 0;
    while ((e = alog_cursor_next(c, &r)) == ALOG_OK) {
        char why[256];
        uint64_t seed;
        if (r.offset != at) fail_msg("offset %" PRId64 " follows %" PRId64, r.offset, at - 1);
        if (!tu_srec_check(&scratch, &r, &seed, why, sizeof why))
            fail_msg("offset %" PRId64 ": a record no writer made: %s", r.offset, why);
        if (want[at]) {
            if (want[at] != seed)
                fail_msg("offset %" PRId64 " holds seed %016" PRIx64 ", but %016" PRIx64
                         " was acknowledged there", at, seed, want[at]);
        } else {
            /* Not acknowledged: allowed only as part of a batch whose append failed. */
            size_t i = 0;
            while (i < j->n && !(j->v[i].err && seed >= j->v[i].seed &&
                                 seed < j->v[i].seed + j->v[i].n))
                i++;
            if (i == j->n)
                fail_msg("offset %" PRId64 ": seed %016" PRIx64 " was never appended", at, seed);
            if (mode == CHECK_EXACT)
                fail_msg("offset %" PRId64 ": seed %016" PRIx64 " is there although its append "
                         "failed with %s", at, seed, alog_err_name(j->v[i].err));
            failed_seen[i]++;
            extra++;
        }
        at++;
    }
    if (e != ALOG_EOF) fail_msg("reading offset %" PRId64 ": %s: %s", at, alog_err_name(e),
                                alog_last_error());
    alog_cursor_close(c);
    assert_int_equal(at, next);
    for (size_t i = 0; i < j->n; i++)
        if (failed_seen[i] && failed_seen[i] != j->v[i].n)
            fail_msg("failed batch of %u records (seed %016" PRIx64 ") is there in part: %u",
                     j->v[i].n, j->v[i].seed, failed_seen[i]);
    tu_srec_free(&scratch);
    free(want);
    free(failed_seen);
    return extra;
}

static void verify_dir(const char *dir, int64_t records) {
    alog_verify_report rep;
    alog_err e = alog_verify(dir, &rep, NULL, NULL);
    if (e) fail_msg("alog_verify: %s: %s", alog_err_name(e), alog_last_error());
    assert_int_equal(rep.records, (uint64_t)records);
}

static alog_options opts(alog_fsync_policy p, uint64_t segment_bytes) {
    alog_options o;
    alog_options_init(&o);
    o.segment_bytes = segment_bytes;
    o.fsync_policy = p;
    o.fsync_interval_ms = 1000;
    /* Faults here target the appends' own writes and fsyncs, which they count; the
     * zero-filling ahead of durable appends has its own fault tests
     * (test_durability_prealloc.c). */
    o.preallocate_bytes = 0;
    return o;
}

/* Appends ops batches from one thread (sizes 1..6; every durable_every-th durable, 0:
 * none), journaling each; all must succeed. */
static void append_ok_run(alog *log, journal *j, int writer, uint64_t *counter, int ops,
                          int durable_every) {
    tu_srec bufs[6] = {0};
    for (int i = 0; i < ops; i++) {
        size_t n = 1 + (size_t)((i * 7 + writer) % 6);
        if (i % 3 == 0) n = 1;
        unsigned flags = durable_every && i % durable_every == 0 ? ALOG_APPEND_DURABLE : 0;
        uint64_t s = seed_of(writer, *counter);
        int64_t off = -1;
        TU_OK(append_seeded(log, s, n, flags, bufs, &off));
        journal_add(j, s, (uint32_t)n, off, ALOG_OK);
        *counter += n;
    }
    free_bufs(bufs, 6);
}

/* ---- EIO from pwrite, one writer ---------------------------------------------------- */

/* A device error in the middle of a batch (half its bytes written): the append says
 * EIO and names the file, the partial batch is cut, nothing before it is lost, and the
 * next append gets the offset the failed one would have had. Once with a plain append,
 * once with a durable one (group commit). */
static void test_pwrite_eio_cuts_and_goes_on(void **state) {
    (void)state;
    char *dir = tu_tmpdir("faults-eio");
    alog_options o = opts(ALOG_FSYNC_NEVER, 1 << 20);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    journal j;
    journal_init(&j);
    uint64_t counter = 0;
    append_ok_run(log, &j, 0, &counter, 40, 0);
    char seg[4096];
    tu_segment_path(seg, sizeof seg, dir, 0, "log");
    tu_srec bufs[8] = {0};
    int failures = 0, errnos[2] = {0, 0};
    for (int round = 0; round < 2; round++) {
        unsigned flags = round ? ALOG_APPEND_DURABLE : 0;
        int64_t size_before = tu_file_size(seg), next_before = alog_next_offset(log);
        atomic_store(&fk.pw_errno, EIO);
        atomic_store(&fk.pw_skip, 0);
        atomic_store(&fk.pw_fail, 1);
        atomic_store(&fk.pw_armed, 1);
        uint64_t s = seed_of(0, counter);
        int64_t off = -1;
        alog_err e = append_seeded(log, s, 5, flags, bufs, &off);
        assert_int_equal(atomic_load(&fk.pw_injected), round + 1);
        if (e != ALOG_EIO)
            fail_msg("append during EIO: %s (%s)", alog_err_name(e), alog_last_error());
        assert_non_null(strstr(alog_last_error(), seg)); /* names the file */
        errnos[round] = alog_last_errno();
        assert_int_equal(errnos[round], EIO); /* check 3: durable appends keep it too */
        assert_int_equal(off, -1);
        journal_add(&j, s, 5, -1, e);
        counter += 5;
        failures++;
        /* The half-written batch is gone; nothing before it is. */
        assert_int_equal(tu_file_size(seg), size_before);
        assert_int_equal(alog_next_offset(log), next_before);
        /* Appending goes on where the failed batch would have gone. */
        s = seed_of(0, counter);
        TU_OK(append_seeded(log, s, 3, flags, bufs, &off));
        assert_int_equal(off, next_before);
        journal_add(&j, s, 3, off, ALOG_OK);
        counter += 3;
        append_ok_run(log, &j, 0, &counter, 20, round ? 2 : 0);
    }
    free_bufs(bufs, 8);
    assert_int_equal(check_log(log, &j, CHECK_EXACT), 0);
    TU_OK(alog_close(log));
    TU_OK(alog_open(dir, &o, &log));
    assert_int_equal(check_log(log, &j, CHECK_EXACT), 0);
    int64_t n = alog_next_offset(log);
    TU_OK(alog_close(log));
    verify_dir(dir, n);
    print_message("pwrite EIO: injected %d (half a batch written each time); %d appends failed "
                  "with EIO naming the file (alog_last_errno: plain %d, durable %d); %" PRId64
                  " acknowledged records, all there after reopen, none of the failed ones\n",
                  atomic_load(&fk.pw_injected), failures, errnos[0], errnos[1], n);
    journal_free(&j);
    tu_rmrf(dir);
    free(dir);
}

/* ---- short writes and EINTR: retried, nothing changes ------------------------------ */

/* A workload touching every kind of write: plain, batch and durable appends, rolls
 * (index files, checkpoints, directory), alog_sync, a clean close, then a reopen and
 * index lookups (preads of index and small files). */
static void mixed_workload(const char *dir, journal *j, int64_t *records) {
    alog_options o = opts(ALOG_FSYNC_NEVER, 8192);
    o.index_interval_bytes = 256;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    uint64_t counter = 0;
    for (int k = 0; k < 6; k++) {
        append_ok_run(log, j, 0, &counter, 40, 5);
        TU_OK(alog_sync(log));
    }
    TU_OK(alog_close(log));
    /* Reopen: reads the checkpoint and index files; look offsets up through them. */
    TU_OK(alog_open(dir, &o, &log));
    assert_int_equal(check_log(log, j, CHECK_EXACT), 0);
    int64_t n = alog_next_offset(log);
    for (int64_t off = 0; off < n; off += 13) {
        alog_cursor *c;
        alog_record r;
        TU_OK(alog_cursor_open(log, off, &c));
        TU_OK(alog_cursor_next(c, &r));
        assert_int_equal(r.offset, off);
        alog_cursor_close(c);
    }
    alog_segment_info *segs;
    size_t nsegs;
    TU_OK(alog_segments(log, &segs, &nsegs));
    assert_true(nsegs > 3); /* it did roll */
    alog_free(segs);
    TU_OK(alog_close(log));
    verify_dir(dir, n);
    *records = n;
}

static void test_short_writes(void **state) {
    (void)state;
    char *dir = tu_tmpdir("faults-short");
    journal j;
    journal_init(&j);
    atomic_store(&fk.short_on, 1);
    int64_t n;
    mixed_workload(dir, &j, &n);
    atomic_store(&fk.short_on, 0);
    assert_true(atomic_load(&fk.short_calls) > 100);
    print_message("short writes: %d of %d pwrite calls wrote only 1-7 bytes; %" PRId64
                  " records, all intact (data, indexes, checkpoints; alog_verify passes)\n",
                  atomic_load(&fk.short_calls), atomic_load(&fk.pwrite_calls), n);
    journal_free(&j);
    tu_rmrf(dir);
    free(dir);
}

static void test_eintr_pwrite_pread(void **state) {
    (void)state;
    char *dir = tu_tmpdir("faults-eintr");
    journal j;
    journal_init(&j);
    atomic_store(&fk.eintr_pwrite, 1);
    atomic_store(&fk.eintr_pread, 1);
    int64_t n;
    mixed_workload(dir, &j, &n);
    atomic_store(&fk.eintr_pwrite, 0);
    atomic_store(&fk.eintr_pread, 0);
    assert_true(atomic_load(&fk.eintr_pwrite_injected) > 100);
    assert_true(atomic_load(&fk.eintr_pread_injected) > 0);
    print_message("EINTR: %d from pwrite, %d from pread (every other call); %" PRId64
                  " records, all intact\n", atomic_load(&fk.eintr_pwrite_injected),
                  atomic_load(&fk.eintr_pread_injected), n);
    journal_free(&j);
    tu_rmrf(dir);
    free(dir);
}

/* EINTR from fsync is asked again (check 1 at the top). First one EINTR from the
 * fdatasync of a durable append: it succeeds, and only after an fsync that covers it
 * did. Then EINTR from every other fdatasync and fsync of any file through a workload
 * that syncs in every way (group commit, alog_sync, segment seals, directory fsyncs,
 * checkpoints, close): nothing fails and everything is there after a reopen. */
static void test_eintr_fsync(void **state) {
    (void)state;
    char *dir = tu_tmpdir("faults-eintr-sync");
    alog_options o = opts(ALOG_FSYNC_NEVER, 1 << 20);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    journal j;
    journal_init(&j);
    uint64_t counter = 0;
    append_ok_run(log, &j, 0, &counter, 20, 4);
    tu_srec bufs[4] = {0};
    atomic_store(&fk.fds_eintr, 1);
    uint64_t s = seed_of(0, counter);
    int64_t off = -1;
    alog_err e = append_seeded(log, s, 4, ALOG_APPEND_DURABLE, bufs, &off);
    free_bufs(bufs, 4);
    if (e) fail_msg("durable append after one EINTR from fdatasync: %s: %s", alog_err_name(e),
                    alog_last_error());
    assert_int_equal(atomic_load(&fk.fds_eintr_injected), 1);
    journal_add(&j, s, 4, off, e);
    counter += 4;
    /* The fsync that did succeed covers the batch. */
    assert_true(atomic_load(&fk.synced_next) >= off + 4);
    assert_true(alog_durable_offset(log) >= off + 4);
    append_ok_run(log, &j, 0, &counter, 10, 2);
    TU_OK(alog_close(log));
    TU_OK(alog_open(dir, &o, &log));
    assert_int_equal(check_log(log, &j, CHECK_EXACT), 0);
    int64_t n1 = alog_next_offset(log);
    TU_OK(alog_close(log));
    verify_dir(dir, n1);
    journal_free(&j);
    tu_rmrf(dir);
    free(dir);

    dir = tu_tmpdir("faults-eintr-sync2");
    journal_init(&j);
    atomic_store(&fk.eintr_sync, 1);
    int64_t n2;
    mixed_workload(dir, &j, &n2);
    atomic_store(&fk.eintr_sync, 0);
    assert_true(atomic_load(&fk.eintr_sync_injected) > 10);
    print_message("fsync EINTR: 1 from a durable append's fdatasync: retried, the append "
                  "succeeded after a covering fsync (%" PRId64 " records); then %d from every "
                  "other fdatasync/fsync of any file (group commit, sync, seals, directory, "
                  "checkpoints, close): nothing failed, %" PRId64 " records intact\n", n1,
                  atomic_load(&fk.eintr_sync_injected), n2);
    journal_free(&j);
    tu_rmrf(dir);
    free(dir);
}

/* ---- EIO from fdatasync with concurrent durable writers ----------------------------- */

enum { SYNC_WRITERS = 8, SYNC_MAX_OPS = 5000 };

typedef struct sync_writer {
    alog *log;
    journal *j;
    int id;
    int ok, efailed_first, efailed_after, other, early;
    alog_err other_err;
    char other_msg[256];
} sync_writer;

static void *durable_writer(void *arg) {
    sync_writer *w = arg;
    tu_srec bufs[5] = {0};
    uint64_t counter = 0;
    for (int i = 0; i < SYNC_MAX_OPS; i++) {
        size_t n = 1 + (size_t)((i + w->id) % 5);
        uint64_t s = seed_of(w->id, counter);
        int64_t off = -1;
        alog_err e = append_seeded(w->log, s, n, ALOG_APPEND_DURABLE, bufs, &off);
        journal_add(w->j, s, (uint32_t)n, off, e);
        counter += n;
        if (e == ALOG_OK) {
            w->ok++;
            /* Told durable: the fsync covering it must have succeeded. */
            if (atomic_load(&fk.synced_next) < off + (int64_t)n) w->early++;
            continue;
        }
        if (e != ALOG_EFAILED) {
            w->other++;
            w->other_err = e;
            snprintf(w->other_msg, sizeof w->other_msg, "%s", alog_last_error());
            break;
        }
        w->efailed_first = 1;
        /* And the log stays failed for this writer. */
        s = seed_of(w->id, counter);
        e = append_seeded(w->log, s, 1, ALOG_APPEND_DURABLE, bufs, &off);
        journal_add(w->j, s, 1, -1, e);
        counter++;
        if (e == ALOG_EFAILED) w->efailed_after++;
        break;
    }
    free_bufs(bufs, 5);
    return NULL;
}

typedef struct cb_state {
    atomic_int called;
    atomic_int err;
} cb_state;

static void on_durable(void *ctx, int64_t offset, alog_err err) {
    (void)offset;
    cb_state *c = ctx;
    atomic_store(&c->err, (int)err);
    atomic_store(&c->called, 1);
}

static int wait_cb(cb_state *c) {
    for (int i = 0; i < 4000 && !atomic_load(&c->called); i++) usleep(2500);
    return atomic_load(&c->called);
}

static void test_fsync_eio_concurrent_durable_writers(void **state) {
    (void)state;
    char *dir = tu_tmpdir("faults-fsync");
    alog_options o = opts(ALOG_FSYNC_NEVER, 1 << 20);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    journal j;
    journal_init(&j);
    atomic_store(&fk.slow_us, 300); /* lets groups form */
    int syncs_before = atomic_load(&fk.log_syncs);
    atomic_store(&fk.fds_skip, 25);
    atomic_store(&fk.fds_armed, 1);
    sync_writer w[SYNC_WRITERS];
    pthread_t t[SYNC_WRITERS];
    for (int i = 0; i < SYNC_WRITERS; i++) {
        w[i] = (sync_writer){.log = log, .j = &j, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, durable_writer, &w[i]), 0);
    }
    for (int i = 0; i < SYNC_WRITERS; i++) pthread_join(t[i], NULL);
    atomic_store(&fk.slow_us, 0);
    int good_syncs = atomic_load(&fk.log_syncs) - syncs_before;
    int ok = 0, efailed = 0, after = 0;
    for (int i = 0; i < SYNC_WRITERS; i++) {
        if (w[i].other)
            fail_msg("writer %d: %s: %s (expected ALOG_EFAILED)", i, alog_err_name(w[i].other_err),
                     w[i].other_msg);
        assert_int_equal(w[i].early, 0); /* never acknowledged before its fsync */
        assert_true(w[i].efailed_first);  /* every writer heard of the failure */
        ok += w[i].ok;
        efailed += w[i].efailed_first;
        after += w[i].efailed_after;
    }
    assert_true(atomic_load(&fk.fds_failing));
    assert_int_equal(after, SYNC_WRITERS);

    /* The device answers again; the handle still refuses (the kernel may have dropped
     * the pages the failed fsync was about). */
    atomic_store(&fk.fds_failing, 0);
    alog_record r = {0, 1000, NULL, 0, "x", 1, NULL, 0};
    assert_int_equal(alog_append(log, &r, NULL), ALOG_EFAILED);
    assert_int_equal(alog_append_ex(log, &r, 1, ALOG_APPEND_DURABLE, NULL), ALOG_EFAILED);
    assert_int_equal(alog_sync(log), ALOG_EFAILED);
    int64_t durable = alog_durable_offset(log), next = alog_next_offset(log);
    assert_true(durable < next); /* the batches the failed fsync was for */
    assert_true(durable <= atomic_load(&fk.synced_next));
    assert_int_equal(alog_wait_durable(log, next - 1, -1), ALOG_EFAILED);
    assert_int_equal(alog_wait_durable(log, next - 1, 50), ALOG_EFAILED);
    if (durable > 0) TU_OK(alog_wait_durable(log, durable - 1, -1)); /* was durable: still is */
    cb_state cb = {0};
    TU_OK(alog_on_durable(log, next - 1, on_durable, &cb));
    assert_true(wait_cb(&cb));
    assert_int_equal(atomic_load(&cb.err), ALOG_EFAILED);
    /* Acknowledged records read back from the failed handle too. */
    check_log(log, &j, CHECK_FAILED_MAY_BE_THERE);
    /* Check 2: the records past `durable` were never synced, and close says so. */
    alog_err ce = alog_close(log);
    assert_int_equal(ce, ALOG_EFAILED);

    /* Reopen: recovery keeps every acknowledged record. */
    TU_OK(alog_open(dir, &o, &log));
    uint64_t extra = check_log(log, &j, CHECK_FAILED_MAY_BE_THERE);
    int64_t n = alog_next_offset(log);
    uint64_t acked = journal_acked(&j);
    /* And appends resume after them. */
    uint64_t counter = 0;
    append_ok_run(log, &j, SYNC_WRITERS, &counter, 10, 2);
    assert_int_equal(check_log(log, &j, CHECK_FAILED_MAY_BE_THERE), extra);
    int64_t n2 = alog_next_offset(log);
    TU_OK(alog_close(log));
    verify_dir(dir, n2);
    print_message("fdatasync EIO: %d writers, %d good fsyncs, then %d failing fsync call(s); "
                  "%d durable appends acknowledged (%" PRIu64 " records), all %d writers got "
                  "ALOG_EFAILED and kept getting it, as did append, sync, wait_durable, "
                  "on_durable and close (%s); after reopen %" PRId64
                  " records (%" PRIu64 " written but unconfirmed)\n", SYNC_WRITERS, good_syncs,
                  atomic_load(&fk.fds_failed_calls), ok, acked, efailed, alog_err_name(ce), n,
                  extra);
    journal_free(&j);
    tu_rmrf(dir);
    free(dir);
}

/* ---- pwrite failures with concurrent writers ---------------------------------------- */

enum { PW_WRITERS = 6, PW_OPS = 300, PW_AFTER_OPS = 50 };

typedef struct pw_writer {
    alog *log;
    journal *j;
    int id;
    unsigned flags;
    int ops;
    uint64_t counter;
    int ok, direct, earlier, other, unnamed;
    alog_err other_err;
    char other_msg[256];
} pw_writer;

static void *pw_writer_main(void *arg) {
    pw_writer *w = arg;
    tu_srec bufs[6] = {0};
    for (int i = 0; i < w->ops; i++) {
        size_t n = i % 2 ? 1 : 2 + (size_t)((i / 2 + w->id) % 5);
        uint64_t s = seed_of(w->id, w->counter);
        int64_t off = -1;
        alog_err e = append_seeded(w->log, s, n, w->flags, bufs, &off);
        journal_add(w->j, s, (uint32_t)n, e ? -1 : off, e);
        w->counter += n;
        if (!e) {
            w->ok++;
            continue;
        }
        const char *msg = alog_last_error();
        if ((e == ALOG_ENOSPC || e == ALOG_EIO) && strstr(msg, "earlier append failed")) {
            w->earlier++; /* reserved behind the failed one: not appended either */
        } else if (e == ALOG_ENOSPC || e == ALOG_EIO) {
            w->direct++;
            if (!strstr(msg, ".log")) w->unnamed++;
        } else if (!w->other) {
            w->other++;
            w->other_err = e;
            snprintf(w->other_msg, sizeof w->other_msg, "%s", msg);
        }
    }
    free_bufs(bufs, 6);
    return NULL;
}

/* Writers append while the disk fails some .log writes (each writing half its batch
 * first): the appends that hit it get err naming the file, others succeed or fail as
 * "an earlier append failed"; once it clears, every append works; the log then holds
 * exactly the acknowledged records, before and after a reopen. */
static void run_pwrite_fault_threads(int err, unsigned durable_mask, int skip, int fail,
                                     const char *what) {
    char *dir = tu_tmpdir("faults-pw");
    alog_options o = opts(ALOG_FSYNC_NEVER, 64 * 1024); /* rolls too */
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    journal j;
    journal_init(&j);
    atomic_store(&fk.pw_errno, err);
    atomic_store(&fk.pw_skip, skip);
    atomic_store(&fk.pw_fail, fail);
    atomic_store(&fk.pw_fail_us, 2000);
    atomic_store(&fk.pw_armed, 1);
    pw_writer w[PW_WRITERS];
    pthread_t t[PW_WRITERS];
    for (int i = 0; i < PW_WRITERS; i++) {
        unsigned flags = durable_mask >> i & 1 ? ALOG_APPEND_DURABLE : 0;
        w[i] = (pw_writer){.log = log, .j = &j, .id = i, .flags = flags, .ops = PW_OPS};
        assert_int_equal(pthread_create(&t[i], NULL, pw_writer_main, &w[i]), 0);
    }
    for (int i = 0; i < PW_WRITERS; i++) pthread_join(t[i], NULL);
    int injected = atomic_load(&fk.pw_injected);
    atomic_store(&fk.pw_armed, 0);
    int ok = 0, direct = 0, earlier = 0;
    for (int i = 0; i < PW_WRITERS; i++) {
        if (w[i].other)
            fail_msg("%s: writer %d: unexpected %s: %s", what, i, alog_err_name(w[i].other_err),
                     w[i].other_msg);
        assert_int_equal(w[i].unnamed, 0); /* the error names the .log file */
        ok += w[i].ok;
        direct += w[i].direct;
        earlier += w[i].earlier;
    }
    assert_int_equal(injected, fail); /* the workload ran into every injected failure */
    /* One write per plain append: each failure fails exactly the append that made it.
     * A durable group is one write: each failure fails all of its group. */
    if (!durable_mask) assert_int_equal(direct, injected);
    else assert_true(direct >= injected);

    /* The disk has room again: every append works, from every writer. */
    for (int i = 0; i < PW_WRITERS; i++) {
        w[i].ops = PW_AFTER_OPS;
        w[i].ok = w[i].direct = w[i].earlier = 0;
        assert_int_equal(pthread_create(&t[i], NULL, pw_writer_main, &w[i]), 0);
    }
    for (int i = 0; i < PW_WRITERS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < PW_WRITERS; i++) {
        if (w[i].other || w[i].direct || w[i].earlier)
            fail_msg("%s: writer %d: an append failed after the fault cleared: %s: %s", what, i,
                     alog_err_name(w[i].other_err), w[i].other_msg);
        assert_int_equal(w[i].ok, PW_AFTER_OPS);
    }
    assert_int_equal(check_log(log, &j, CHECK_EXACT), 0);
    int64_t n = alog_next_offset(log);
    assert_int_equal((uint64_t)n, journal_acked(&j));
    TU_OK(alog_close(log));
    TU_OK(alog_open(dir, &o, &log));
    assert_int_equal(check_log(log, &j, CHECK_EXACT), 0);
    assert_int_equal(alog_next_offset(log), n);
    TU_OK(alog_close(log));
    verify_dir(dir, n);
    int durable_writers = 0;
    for (int i = 0; i < PW_WRITERS; i++) durable_writers += (int)(durable_mask >> i & 1);
    print_message("%s: %d writers (%d durable); injected %d failing .log writes after %d good "
                  "ones; %d appends acknowledged, %d failed with the error (named the file), %d "
                  "failed behind an earlier one; after the fault %d more from every writer; %"
                  PRId64 " records = exactly the acknowledged ones, before and after reopen\n",
                  what, PW_WRITERS, durable_writers, injected, skip, ok, direct, earlier,
                  PW_AFTER_OPS, n);
    journal_free(&j);
    tu_rmrf(dir);
    free(dir);
}

static void test_pwrite_enospc_concurrent(void **state) {
    (void)state;
    run_pwrite_fault_threads(ENOSPC, 0, 200, 20, "pwrite ENOSPC, plain appends");
}

static void test_pwrite_eio_mixed_durable(void **state) {
    (void)state;
    run_pwrite_fault_threads(EIO, 0x15, 100, 12, "pwrite EIO, durable and plain appends");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pwrite_eio_cuts_and_goes_on, setup,
                                        tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_short_writes, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_eintr_pwrite_pread, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_eintr_fsync, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_fsync_eio_concurrent_durable_writers, setup,
                                        tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_pwrite_enospc_concurrent, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_pwrite_eio_mixed_durable, setup, tu_fake_io_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
