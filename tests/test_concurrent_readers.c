/*
 * test_concurrent_readers.c -- readers of a log that a writer is changing under them:
 * read-only handles following a writer whose retention deletes segments (they notice:
 * ALOG_ERANGE behind retention, the first offset moves, the deleted files are closed,
 * an open racing retention succeeds), and alog_verify while a writer appends and rolls
 * (no false damage, no SIGBUS; real damage still found).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "testutil.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Descriptors of this process open on files that were deleted. */
static int deleted_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        char p[300], t[4096];
        snprintf(p, sizeof p, "/proc/self/fd/%s", de->d_name);
        ssize_t k = readlink(p, t, sizeof t - 1);
        if (k > 0) {
            t[k] = '\0';
            if (strstr(t, " (deleted)")) n++;
        }
    }
    closedir(d);
    return n;
}

static void append_n(alog *log, int n, size_t value_len) {
    static char v[4096];
    alog_record r;
    memset(&r, 0, sizeof r);
    r.value = v;
    r.value_len = value_len;
    r.timestamp = ALOG_TIMESTAMP_NOW;
    for (int i = 0; i < n; i++) TU_OK(alog_append(log, &r, NULL));
}

/* A follower that falls behind retention gets ALOG_ERANGE (not ALOG_EOF forever), its
 * handle's first offset follows the writer's, and the deleted segments' files are
 * closed. */
static void test_follower_behind_retention(void **state) {
    (void)state;
    char *dir = tu_tmpdir("ro_retention");
    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.segment_bytes = 64 << 10;
    o.retention_bytes = 256 << 10;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    append_n(log, 200, 1000);

    alog_options ro;
    alog_options_init(&ro);
    ro.read_only = 1;
    alog *rl;
    TU_OK(alog_open(dir, &ro, &rl));
    alog_cursor *c;
    TU_OK(alog_cursor_open(rl, 0, &c));
    alog_record rec;
    TU_OK(alog_cursor_next(c, &rec));
    assert_int_equal(rec.offset, 0);

    append_n(log, 3000, 1000); /* ~3 MiB: retention deletes all but ~5 segments */
    int64_t first = alog_first_offset(log);
    assert_true(first > 200);

    alog_err e;
    int64_t last = 0;
    while ((e = alog_cursor_next(c, &rec)) == ALOG_OK) last = rec.offset;
    if (e != ALOG_ERANGE)
        fail_msg("a follower behind retention got %s after offset %" PRId64 " (first offset "
                 "%" PRId64 "), not ERANGE: %s", alog_err_name(e), last, first,
                 alog_last_error());
    assert_int_equal(alog_cursor_next(c, &rec), ALOG_ERANGE);
    assert_int_equal(alog_first_offset(rl), first);
    assert_int_equal(alog_next_offset(rl), alog_next_offset(log));
    alog_cursor_close(c);

    /* Deleted offsets are out of range for the read-only handle too. */
    assert_int_equal(alog_cursor_open(rl, 5, &c), ALOG_ERANGE);
    /* Reading on from the first offset works. */
    TU_OK(alog_cursor_open(rl, first, &c));
    TU_OK(alog_cursor_next(c, &rec));
    assert_int_equal(rec.offset, first);
    alog_cursor_close(c);

    /* No descriptor of the handle keeps a deleted segment's disk space. */
    int n = deleted_fds();
    if (n) fail_msg("%d descriptors still open on deleted files", n);

    /* The writer deletes more, the segment of a cursor that was at the end included:
     * the cursor is behind retention again, and the first offset follows. */
    TU_OK(alog_cursor_open(rl, alog_next_offset(rl), &c));
    append_n(log, 1000, 1000);
    assert_int_equal(alog_cursor_next(c, &rec), ALOG_ERANGE);
    assert_int_equal(alog_first_offset(rl), alog_first_offset(log));
    assert_int_equal(alog_next_offset(rl), alog_next_offset(log));
    alog_cursor_close(c);
    assert_int_equal(deleted_fds(), 0);

    TU_OK(alog_close(rl));
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    free(dir);
}

typedef struct writer_ctx {
    alog *log;
    atomic_int stop;
    int sync_every; /* alog_sync after this many appends (turns preallocation on), 0: never */
    int threads;
    size_t value_len;
    int pace_us; /* sleep this long after each batch (keeps the bytes written small), 0: none */
} writer_ctx;

static void *writer_main(void *arg) {
    writer_ctx *w = arg;
    static char v[8192];
    alog_record r[8];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 8; i++) {
        r[i].value = v;
        r[i].value_len = w->value_len;
        r[i].timestamp = ALOG_TIMESTAMP_NOW;
    }
    for (long k = 1; !atomic_load(&w->stop); k++) {
        TU_OK(alog_append_batch(w->log, r, 1 + (size_t)(k % 8), NULL));
        if (w->sync_every && k % w->sync_every == 0) TU_OK(alog_sync(w->log));
        if (w->pace_us) usleep((useconds_t)w->pace_us);
    }
    return NULL;
}

static void writers_start(writer_ctx *w, pthread_t *t) {
    atomic_init(&w->stop, 0);
    for (int i = 0; i < w->threads; i++) assert_int_equal(pthread_create(&t[i], NULL, writer_main, w), 0);
}

static void writers_stop(writer_ctx *w, pthread_t *t) {
    atomic_store(&w->stop, 1);
    for (int i = 0; i < w->threads; i++) pthread_join(t[i], NULL);
}

/* Read-only opens racing the writer's retention (readdir, then open) never fail. */
static void test_open_racing_retention(void **state) {
    (void)state;
    char *dir = tu_tmpdir("ro_open_race");
    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.segment_bytes = 16 << 10;
    o.retention_bytes = 256 << 10;
    o.preallocate_bytes = 0;
    writer_ctx w = {.threads = 2, .value_len = 500};
    TU_OK(alog_open(dir, &o, &w.log));
    pthread_t t[2];
    writers_start(&w, t);
    alog_options ro;
    alog_options_init(&ro);
    ro.read_only = 1;
    int opens = 0, fails = 0;
    char first_fail[600] = "";
    for (double end = now_s() + 3; now_s() < end || opens < 100; opens++) {
        alog *rl;
        alog_err e = alog_open(dir, &ro, &rl);
        if (e) {
            if (!fails++)
                snprintf(first_fail, sizeof first_fail, "%s: %s", alog_err_name(e),
                         alog_last_error());
            continue;
        }
        TU_OK(alog_close(rl));
    }
    writers_stop(&w, t);
    TU_OK(alog_close(w.log));
    if (fails) fail_msg("%d of %d read-only opens failed; first: %s", fails, opens, first_fail);
    tu_rmrf(dir);
    free(dir);
}

/* A verifier in its own PID namespace with its own /proc (as in another container):
 * /proc/locks there does not list the writer's lock. Forked before the writer threads
 * start; waits for a byte on go, then verifies dir for 3 s. Exit status: the number of
 * runs that reported damage (at most 250; the first message goes to msg_fd), 251 if
 * namespaces are not available here, 252-253 if the child itself failed. */
static pid_t verifier_in_other_pidns(const char *dir, int go_fd, int msg_fd) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    char c;
    if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) {
        if (read(go_fd, &c, 1) < 0) _exit(252);
        _exit(251);
    }
    pid_t inner = fork();
    if (inner == 0) {
        if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("proc", "/proc", "proc", 0, NULL) != 0) {
            if (read(go_fd, &c, 1) < 0) _exit(252);
            _exit(251);
        }
        if (read(go_fd, &c, 1) != 1) _exit(252);
        int bad = 0, runs = 0;
        for (double end = now_s() + 3; now_s() < end || runs < 20; runs++) {
            alog_verify_report r;
            alog_err e = alog_verify(dir, &r, NULL, NULL);
            if (e && !bad++) {
                char m[700];
                int n = snprintf(m, sizeof m, "%s: %s", alog_err_name(e), alog_last_error());
                if (write(msg_fd, m, (size_t)n) < 0) _exit(252);
            }
        }
        _exit(bad > 250 ? 250 : bad);
    }
    int st;
    if (inner < 0 || waitpid(inner, &st, 0) != inner || !WIFEXITED(st)) _exit(253);
    _exit(WEXITSTATUS(st));
}

/* alog_verify in a loop next to writer threads that append and roll: never damage.
 * other_pidns: the verifier runs where it cannot see the writer's lock in /proc/locks. */
static void verify_during_writes_ns(int prealloc, int other_pidns) {
    char *dir = tu_tmpdir(prealloc ? "verify_live_pa" : "verify_live");
    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.segment_bytes = 512 << 10;
    o.retention_bytes = 4 << 20;
    o.preallocate_bytes = prealloc ? 64 << 10 : 0;
    writer_ctx w = {.threads = 3, .value_len = 3000, .sync_every = prealloc ? 16 : 0};
    TU_OK(alog_open(dir, &o, &w.log));
    if (prealloc) TU_OK(alog_sync(w.log));
    int go[2] = {-1, -1}, msg[2] = {-1, -1};
    pid_t vpid = -1;
    if (other_pidns) {
        assert_int_equal(pipe(go), 0);
        assert_int_equal(pipe(msg), 0);
        vpid = verifier_in_other_pidns(dir, go[0], msg[1]);
        assert_true(vpid > 0);
        close(go[0]);
        close(msg[1]);
    }
    pthread_t t[3];
    writers_start(&w, t);
    int runs = 0, bad = 0;
    char first_bad[700] = "";
    if (other_pidns) {
        int st = 0, wrote = write(go[1], "g", 1) == 1;
        int waited = waitpid(vpid, &st, 0) == vpid && WIFEXITED(st);
        ssize_t k = read(msg[0], first_bad, sizeof first_bad - 1);
        first_bad[k > 0 ? k : 0] = '\0';
        close(go[1]);
        close(msg[0]);
        bad = waited ? WEXITSTATUS(st) : 253;
        runs = -1;
        if (!wrote || bad > 250) {
            writers_stop(&w, t);
            TU_OK(alog_close(w.log));
            tu_rmrf(dir);
            free(dir);
            if (bad == 251) {
                printf("  skipped: no PID and mount namespaces here\n");
                skip();
            }
            fail_msg("the verifier child failed (status %d)", bad);
        }
        printf("  verifier in another PID namespace: %d runs reported damage\n", bad);
    }
    for (double end = now_s() + 3; !other_pidns && (now_s() < end || runs < 20); runs++) {
        alog_verify_report r;
        alog_err e = alog_verify(dir, &r, NULL, NULL);
        if (e && !bad++)
            snprintf(first_bad, sizeof first_bad, "%s: %s", alog_err_name(e), alog_last_error());
    }
    alog_segment_info *segs;
    size_t nsegs;
    TU_OK(alog_segments(w.log, &segs, &nsegs));
    alog_free(segs);
    writers_stop(&w, t);
    TU_OK(alog_close(w.log));
    if (bad) fail_msg("verify reported %d of %d runs on a sound log; first: %s", bad, runs, first_bad);
    alog_verify_report r;
    TU_OK(alog_verify(dir, &r, NULL, NULL));
    tu_rmrf(dir);
    free(dir);
}

static void verify_during_writes(int prealloc) { verify_during_writes_ns(prealloc, 0); }

static void test_verify_during_writes(void **state) {
    (void)state;
    verify_during_writes(0);
}

static void test_verify_during_writes_other_pidns(void **state) {
    (void)state;
    verify_during_writes_ns(0, 1);
}

static void test_verify_during_writes_prealloc(void **state) {
    (void)state;
    verify_during_writes(1);
}

/* With a writer appending, damage in a sealed segment and in the middle of the active
 * segment is still reported, naming the file. */
static int64_t base_of_active(alog *log) {
    alog_segment_info *segs;
    size_t n;
    TU_OK(alog_segments(log, &segs, &n));
    int64_t b = segs[n - 1].base_offset;
    alog_free(segs);
    return b;
}

static void test_verify_finds_damage_while_writing(void **state) {
    (void)state;
    char *dir = tu_tmpdir("verify_live_damage");
    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.segment_bytes = 256 << 10;
    writer_ctx w = {.threads = 2, .value_len = 1000, .pace_us = 500};
    TU_OK(alog_open(dir, &o, &w.log));
    append_n(w.log, 700, 1000); /* two sealed segments and more */
    TU_OK(alog_sync(w.log));
    char seg0[4096];
    tu_segment_path(seg0, sizeof seg0, dir, 0, "log");
    tu_flip_byte(seg0, tu_file_size(seg0) / 2);
    pthread_t t[2];
    writers_start(&w, t);
    alog_verify_report r;
    assert_int_equal(alog_verify(dir, &r, NULL, NULL), ALOG_ECORRUPT);
    assert_string_equal(r.bad_file, seg0);
    writers_stop(&w, t);
    TU_OK(alog_close(w.log));
    tu_flip_byte(seg0, tu_file_size(seg0) / 2);
    TU_OK(alog_verify(dir, &r, NULL, NULL));

    /* The active segment: a big one, so that the writer does not roll meanwhile. */
    o.segment_bytes = 64 << 20;
    TU_OK(alog_open(dir, &o, &w.log));
    append_n(w.log, 200, 1000);
    TU_OK(alog_sync(w.log)); /* index entries written: the published end is known */
    alog_segment_info *segs;
    size_t nsegs;
    TU_OK(alog_segments(w.log, &segs, &nsegs));
    char act[4096];
    tu_segment_path(act, sizeof act, dir, segs[nsegs - 1].base_offset, "log");
    uint64_t mid = segs[nsegs - 1].size_bytes / 2;
    alog_free(segs);
    tu_flip_byte(act, (int64_t)mid);
    writers_start(&w, t);
    assert_int_equal(alog_verify(dir, &r, NULL, NULL), ALOG_ECORRUPT);
    assert_string_equal(r.bad_file, act);
    assert_true(r.bad_position <= mid);
    writers_stop(&w, t);
    tu_flip_byte(act, (int64_t)mid);

    /* An entry in the middle of the active segment's offset index pointing far past
     * the end (entries after it are in order): damage, not entries of batches being
     * written, which can only come after the others. The writer holds the log (so
     * verify treats the segment as being written) but does not append: the segment
     * stays the active one. */
    /* The writers above may have filled the big segment and rolled while verify ran
     * (a slow machine, 64 MiB in a few seconds), leaving a fresh active segment with
     * few entries: append until the active one has enough. */
    int64_t abase, entries;
    char aix[4096];
    for (int round = 0;; round++) {
        assert_true(round < 1000);
        append_n(w.log, 50, 1000);
        TU_OK(alog_flush(w.log));
        abase = base_of_active(w.log);
        tu_segment_path(aix, sizeof aix, dir, abase, "index");
        entries = tu_file_size(aix) / 8;
        if (entries >= 8) break;
    }
    tu_segment_path(act, sizeof act, dir, abase, "log");
    int fd = open(aix, O_WRONLY);
    assert_true(fd >= 0);
    const uint8_t far[4] = {0x7f, 0xff, 0xff, 0xf0};
    assert_int_equal(pwrite(fd, far, 4, (off_t)(entries / 2 * 8 + 4)), 4);
    close(fd);
    alog_err e = alog_verify(dir, &r, NULL, NULL);
    printf("  a bad index entry with a writer active: %s (%s)\n", alog_err_name(e), alog_last_error());
    assert_int_equal(e, ALOG_ECORRUPT);
    assert_string_equal(r.bad_file, act);
    TU_OK(alog_close(w.log));
    tu_rmrf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follower_behind_retention),
        cmocka_unit_test(test_open_racing_retention),
        cmocka_unit_test(test_verify_during_writes),
        cmocka_unit_test(test_verify_during_writes_other_pidns),
        cmocka_unit_test(test_verify_during_writes_prealloc),
        cmocka_unit_test(test_verify_finds_damage_while_writing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
