/*
 * test_concurrent_readers.c -- readers next to a writer that keeps going: what they
 * may hold on to (mappings), what they may touch (files another process cuts), and
 * what they may pair up (the published end). Run in the release, ASan and TSan suites.
 *
 *   - Appending and reading back each record (alogd's Fetch pattern: alog_read_raw,
 *     a cursor opened at the new record, a cursor following the tail, a read-only
 *     handle following) through 64 MiB of one segment keeps the process's number of
 *     memory mappings of that segment's file small: mappings are replaced O(log size) times and the replaced
 *     ones are unmapped once no reader holds them.
 *   - A read-only follower in another process, opening the log again and again and
 *     following it with a cursor while the writer preallocates, rolls and closes (each
 *     of which cuts the active file back to its last batch), is never killed by SIGBUS
 *     and reads every record in order.
 *   - Cursors seeking to alog_next_offset() while a writer appends always land on that
 *     offset's position (never on the batch before it) and read without error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Lines of /proc/self/maps naming path: the process's memory mappings of that file. */
static int count_mappings(const char *path) {
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, path)) n++;
    fclose(f);
    return n;
}

/* ---- mappings stay few while one segment grows -------------------------------------- */

static void test_mappings_bounded_in_growing_segment(void **state) {
    (void)state;
    char *dir = tu_tmpdir("mapcount");
    alog_options o;
    alog_options_init(&o); /* 1 GiB segments: all of it stays in one */
    o.fsync_policy = ALOG_FSYNC_NEVER;
    alog *log, *ro;
    TU_OK(alog_open(dir, &o, &log));
    alog_options roo;
    alog_options_init(&roo);
    roo.read_only = 1;
    TU_OK(alog_open(dir, &roo, &ro));
    alog_cursor *tail, *rotail;
    TU_OK(alog_cursor_open(log, 0, &tail));
    TU_OK(alog_cursor_open(ro, 0, &rotail));

    static char val[1000];
    memset(val, 'v', sizeof val);
    alog_record rec = {.timestamp = 1700000000000, .value = val, .value_len = sizeof val};
    char path[4096], seg[PATH_MAX];
    tu_segment_path(path, sizeof path, dir, 0, "log");
    assert_non_null(realpath(path, seg)); /* as /proc/self/maps names it */
    int most = 0;
    int64_t ro_next = 0;
    enum { RECORDS = 64 * 1024 }; /* ~68 MiB of batches */
    for (int i = 0; i < RECORDS; i++) {
        int64_t off;
        TU_OK(alog_append(log, &rec, &off));
        assert_int_equal(off, i);
        alog_raw raw;
        TU_OK(alog_read_raw(log, off, 1 << 20, &raw));
        assert_int_equal(raw.base_offset, off);
        assert_int_equal(raw.next_offset, off + 1);
        assert_true(raw.length > sizeof val);
        alog_raw_release(&raw);
        alog_record r;
        if (i % 2 == 0) {
            alog_cursor *c;
            TU_OK(alog_cursor_open(log, off, &c));
            TU_OK(alog_cursor_next(c, &r));
            assert_int_equal(r.offset, off);
            alog_cursor_close(c);
        }
        TU_OK(alog_cursor_next(tail, &r));
        assert_int_equal(r.offset, off);
        /* The read-only handle sees the record once it rescans the file. */
        alog_err e;
        while ((e = alog_cursor_next(rotail, &r)) == ALOG_OK) {
            assert_int_equal(r.offset, ro_next);
            ro_next++;
        }
        assert_int_equal(e, ALOG_EOF);
        if (i % 1024 == 1023) {
            int n = count_mappings(seg);
            if (n > most) most = n;
            if (n > 8)
                fail_msg("after %d records (%" PRId64 " MiB in one segment) the process has %d "
                         "memory mappings of %s (at most 8 expected: a few per handle)",
                         i + 1, (int64_t)(i + 1) * 1070 >> 20, n, seg);
        }
    }
    assert_int_equal(ro_next, RECORDS);
    assert_true(most > 0); /* the file was found in /proc/self/maps */
    print_message("mappings of the segment: at most %d, through %d records\n", most, RECORDS);
    alog_cursor_close(tail);
    alog_cursor_close(rotail);
    TU_OK(alog_close(ro));
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    free(dir);
}

/* ---- a read-only follower while the writer cuts its files ----------------------------- */

/* The follower process: until stop_fd reports end of file, opens the log read-only (the
 * scan of the active segment's tail), follows it for a while with a cursor from near its
 * end, and closes it. Exits 0, or 3 after printing what went wrong. */
static void follower_main(const char *dir, int stop_fd, size_t value_len) {
    alog_options ro;
    alog_options_init(&ro);
    ro.read_only = 1;
    ro.segment_bytes = 2u << 20;
    long rounds = 0, records = 0;
    for (;;) {
        char b;
        if (read(stop_fd, &b, 1) == 0) break;
        alog *log;
        alog_err e = alog_open(dir, &ro, &log);
        if (e) {
            fprintf(stderr, "follower: alog_open: %s: %s\n", alog_err_name(e), alog_last_error());
            _exit(3);
        }
        int64_t want = alog_next_offset(log) - 16;
        if (want < alog_first_offset(log)) want = alog_first_offset(log);
        alog_cursor *c;
        e = alog_cursor_open(log, want, &c);
        for (int i = 0; !e && i < 4000; i++) {
            alog_record r;
            e = alog_cursor_next(c, &r);
            if (e == ALOG_EOF) {
                e = ALOG_OK;
                continue;
            }
            if (!e && (r.offset != want || r.value_len != value_len)) {
                fprintf(stderr, "follower: read offset %" PRId64 " (%zu bytes) where offset %"
                        PRId64 " (%zu bytes) was expected\n", r.offset, r.value_len, want,
                        value_len);
                _exit(3);
            }
            want++;
            records++;
        }
        if (e) {
            fprintf(stderr, "follower: %s: %s\n", alog_err_name(e), alog_last_error());
            _exit(3);
        }
        alog_cursor_close(c);
        alog_close(log);
        rounds++;
    }
    fprintf(stderr, "follower: %ld opens, %ld records read\n", rounds, records);
    _exit(0);
}

static void test_follower_survives_writer_cuts(void **state) {
    (void)state;
    char *dir = tu_tmpdir("cutfollow");
    alog_options o;
    alog_options_init(&o);
    /* 271 batches of 4096 bytes per segment; preallocation past the end, in 64 KiB
     * steps once the log is synced, which a roll or close cuts back. */
    o.segment_bytes = (1u << 20) + (64u << 10) - 1;
    o.preallocate_bytes = 64u << 10;
    o.fsync_policy = ALOG_FSYNC_NEVER;
    /* Batches of exactly one page, so that every batch boundary (where the follower's
     * scan stops) is page aligned and a cut there leaves the next page past the end. */
    static char val[8192];
    memset(val, 'x', sizeof val);
    alog_record rec = {.timestamp = 1700000000000, .value = val};
    alog *log;
    alog_segment_info *si;
    size_t ns;
    uint64_t prev = 0;
    TU_OK(alog_open(dir, &o, &log));
    for (rec.value_len = 3990; rec.value_len < 4096; rec.value_len++) {
        TU_OK(alog_append(log, &rec, NULL));
        TU_OK(alog_segments(log, &si, &ns));
        uint64_t size = si[ns - 1].size_bytes;
        alog_free(si);
        if (size - prev == 4096) break;
        prev = size;
    }
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    TU_OK(alog_open(dir, &o, &log));
    TU_OK(alog_append(log, &rec, NULL));
    TU_OK(alog_segments(log, &si, &ns));
    assert_int_equal(si[0].size_bytes, 4096);
    alog_free(si);
    TU_OK(alog_close(log)); /* no threads running at the fork */

    int stop[2];
    assert_int_equal(pipe(stop), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Not cmocka's handlers (they would carry on with its tests in this process): a
         * fault kills the follower, and the parent reports the signal. */
        signal(SIGBUS, SIG_DFL);
        signal(SIGSEGV, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        signal(SIGILL, SIG_DFL);
        signal(SIGFPE, SIG_DFL);
        close(stop[1]);
        fcntl(stop[0], F_SETFL, O_NONBLOCK);
        follower_main(dir, stop[0], rec.value_len);
    }
    close(stop[0]);

    /* The writer: page-sized batches, a sync every 16 (which keeps preallocation going),
     * rolls every 271, a clean close and reopen every 2000; for a few seconds, or until
     * the follower dies. */
    int64_t end = now_ms() + 3000;
    long n = 0, reopens = 0;
    int st = 0, died = 0;
    TU_OK(alog_open(dir, &o, &log));
    while (now_ms() < end && n < 40000) {
        TU_OK(alog_append(log, &rec, NULL));
        if (++n % 16 == 0) TU_OK(alog_sync(log));
        if (n % 2000 == 0) {
            TU_OK(alog_close(log));
            TU_OK(alog_open(dir, &o, &log));
            reopens++;
        }
        if (n % 64 == 0 && waitpid(pid, &st, WNOHANG) == pid) {
            died = 1;
            break;
        }
    }
    TU_OK(alog_close(log));
    close(stop[1]);
    if (!died) assert_int_equal(waitpid(pid, &st, 0), pid);
    print_message("writer: %ld batches of 4096 bytes, %ld rolls, %ld reopens\n", n, n / 271,
                  reopens);
    if (WIFSIGNALED(st))
        fail_msg("the read-only follower was killed by signal %d (%s) while the writer cut "
                 "its files", WTERMSIG(st), strsignal(WTERMSIG(st)));
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) != 0)
        fail_msg("the read-only follower failed (exit status %d, its error is above)",
                 WEXITSTATUS(st));
    tu_rmrf(dir);
    free(dir);
}

/* ---- seeks to the end while a writer appends ----------------------------------------- */

typedef struct seek_shared {
    alog *log;
    atomic_int stop;
    atomic_long seeks, errors;
    char why[512];
} seek_shared;

static void *seek_writer(void *arg) {
    seek_shared *s = arg;
    char v[100];
    memset(v, 'w', sizeof v);
    alog_record r = {.timestamp = 1, .value = v, .value_len = sizeof v};
    for (int i = 0; !atomic_load(&s->stop) && i < 4000000; i++) {
        alog_err e = alog_append(s->log, &r, NULL);
        if (e) {
            if (atomic_fetch_add(&s->errors, 1) == 0)
                snprintf(s->why, sizeof s->why, "append: %s: %s", alog_err_name(e),
                         alog_last_error());
            break;
        }
    }
    atomic_store(&s->stop, 1);
    return NULL;
}

/* Records the first error (with alog_last_error(), which the next call clears). */
static void seek_failed(seek_shared *s, const char *what, alog_err e) {
    if (atomic_fetch_add(&s->errors, 1) == 0)
        snprintf(s->why, sizeof s->why, "%s: %s: %s", what, alog_err_name(e), alog_last_error());
}

static void *seek_reader(void *arg) {
    seek_shared *s = arg;
    alog_cursor *c = NULL;
    alog_err e = alog_cursor_open(s->log, 0, &c);
    while (!e && !atomic_load(&s->stop)) {
        int64_t next = alog_next_offset(s->log);
        e = alog_cursor_seek(c, next);
        if (e == ALOG_ERANGE) { /* retention took it meanwhile */
            e = ALOG_OK;
            continue;
        }
        if (e) {
            seek_failed(s, "alog_cursor_seek", e);
            e = ALOG_OK;
            break;
        }
        atomic_fetch_add(&s->seeks, 1);
        alog_record r;
        int64_t want = next;
        while ((e = alog_cursor_next(c, &r)) == ALOG_OK) {
            if (r.offset != want) {
                if (atomic_fetch_add(&s->errors, 1) == 0)
                    snprintf(s->why, sizeof s->why, "after a seek to %" PRId64 " read offset %"
                             PRId64 " where %" PRId64 " was expected", next, r.offset, want);
                break;
            }
            want++;
        }
        if (e == ALOG_EOF || e == ALOG_ERANGE) e = ALOG_OK;
        if (e) {
            seek_failed(s, "alog_cursor_next after a seek to the end", e);
            e = ALOG_OK;
            break;
        }
        /* The raw read at the end: the batch there, or nothing. */
        alog_raw raw;
        int64_t at = alog_next_offset(s->log);
        alog_err e2 = alog_read_raw(s->log, at, 1 << 20, &raw);
        if (!e2 && raw.length && (raw.base_offset > at || raw.next_offset <= at)) {
            if (atomic_fetch_add(&s->errors, 1) == 0)
                snprintf(s->why, sizeof s->why, "alog_read_raw(%" PRId64 ") returned offsets "
                         "%" PRId64 "..%" PRId64, at, raw.base_offset, raw.next_offset - 1);
        }
        if (!e2) {
            alog_raw_release(&raw);
        } else if (e2 != ALOG_ERANGE) {
            seek_failed(s, "alog_read_raw at the end", e2);
            break;
        }
    }
    if (e) seek_failed(s, "alog_cursor_open", e);
    if (c) alog_cursor_close(c);
    return NULL;
}

static void test_seek_to_end_while_appending(void **state) {
    (void)state;
    char *dir = tu_tmpdir("seekend");
    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.segment_bytes = 64u << 20;
    o.retention_bytes = 128u << 20;
    seek_shared s = {0};
    TU_OK(alog_open(dir, &o, &s.log));
    enum { READERS = 2 };
    pthread_t w, r[READERS];
    assert_int_equal(pthread_create(&w, NULL, seek_writer, &s), 0);
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&r[i], NULL, seek_reader, &s), 0);
    int64_t end = now_ms() + 3000;
    while (now_ms() < end && !atomic_load(&s.stop) && !atomic_load(&s.errors)) usleep(10000);
    atomic_store(&s.stop, 1);
    pthread_join(w, NULL);
    for (int i = 0; i < READERS; i++) pthread_join(r[i], NULL);
    print_message("%ld seeks to the end, %ld errors\n", atomic_load(&s.seeks),
                  atomic_load(&s.errors));
    if (atomic_load(&s.errors)) fail_msg("%s", s.why);
    TU_OK(alog_close(s.log));
    tu_rmrf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mappings_bounded_in_growing_segment),
        cmocka_unit_test(test_follower_survives_writer_cuts),
        cmocka_unit_test(test_seek_to_end_while_appending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
