/*
 * test_concurrent.c -- many threads on one log (run under ThreadSanitizer by
 * `make test`, and in the release and ASan suites).
 *
 * The stress test: 8 writer threads append single records and batches (one call in
 * four durable, through group commit) for at least
 * 10 seconds (ALOG_STRESS_SECONDS overrides) while the log rolls segments; 8 reader
 * threads follow the tail with cursors, waiting with alog_cursor_wait (no polling); a
 * thread calls alog_sync, the log's own interval-fsync thread runs, and a read-only
 * handle on the same directory follows too. Every reader must see every record
 * exactly once, offsets dense and in order, each writer's records in the order that
 * writer appended them, and each batch contiguous (atomic).
 *
 * Also: readers running while retention deletes the segments under them get
 * ALOG_ERANGE (never a crash or garbage), and a reader in another process follows a
 * writer process through alog_cursor_wait (inotify).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sys/inotify.h>

#include "testutil.h"

enum { WRITERS = 8, READERS = 8, BATCH = 7, MAX_PER_WRITER = 1000000 };

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct shared {
    alog *log;
    const char *dir;
    int64_t stop_at_ms;
    atomic_int writers_done;
    atomic_int written[WRITERS]; /* records each writer appended */
    atomic_int failed;
    char why[256];
} shared;

static void set_failed(shared *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_failed(shared *s, const char *fmt, ...) {
    int expected = 0;
    if (atomic_compare_exchange_strong(&s->failed, &expected, 1)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->why, sizeof s->why, fmt, ap);
        va_end(ap);
    }
}

typedef struct wctx {
    shared *s;
    int id;
} wctx;

/* Writer w appends records keyed "w<id>" with value "<seq>": calls go single, single,
 * batch of BATCH, and so on, until the deadline. At most ~20,000 records a second per
 * writer, so that a long run does not fill the disk. */
static void *writer(void *arg) {
    wctx *w = arg;
    char key[8];
    int kl = snprintf(key, sizeof key, "w%d", w->id);
    int seq = 0, call = 0;
    int64_t t0 = now_ms();
    while (!atomic_load(&w->s->failed) && seq < MAX_PER_WRITER) {
        int64_t t = now_ms();
        if (t >= w->s->stop_at_ms) break;
        if (seq > (t - t0 + 1) * 20) {
            usleep(500);
            continue;
        }
        int n = (call++ % 3 == 2) ? BATCH : 1;
        alog_record recs[BATCH];
        char vals[BATCH][16];
        for (int j = 0; j < n; j++) {
            int vl = snprintf(vals[j], sizeof vals[j], "%d", seq + j);
            recs[j] = (alog_record){0, 1000 + seq + j, key, (size_t)kl, vals[j], (size_t)vl,
                                    NULL, 0};
        }
        int64_t off;
        /* One call in four durable: the group-commit path runs alongside. */
        unsigned flags = call % 4 == 3 ? ALOG_APPEND_DURABLE : 0;
        alog_err e = alog_append_ex(w->s->log, recs, (size_t)n, flags, &off);
        if (e) {
            set_failed(w->s, "writer %d: %s: %s", w->id, alog_err_name(e), alog_last_error());
            break;
        }
        seq += n;
        atomic_store(&w->s->written[w->id], seq);
    }
    atomic_fetch_add(&w->s->writers_done, 1);
    return NULL;
}

/* Follows the log from offset 0 until the writers are done and everything they wrote
 * has been read, checking the stream. */
static void check_stream(shared *s, alog *log, const char *who) {
    alog_cursor *c;
    alog_err e = alog_cursor_open(log, 0, &c);
    if (e) {
        set_failed(s, "%s: cursor_open: %s", who, alog_last_error());
        return;
    }
    int next_seq[WRITERS] = {0};
    int64_t want = 0;
    int prev_id = -1, prev_seq = -1;
    while (!atomic_load(&s->failed)) {
        alog_record r;
        e = alog_cursor_next(c, &r);
        if (e == ALOG_EOF) {
            if (atomic_load(&s->writers_done) == WRITERS) {
                int64_t total = 0;
                for (int i = 0; i < WRITERS; i++) total += atomic_load(&s->written[i]);
                if (want == total) break;
            }
            e = alog_cursor_wait(c, 100);
            if (e && e != ALOG_ETIMEDOUT) {
                set_failed(s, "%s: cursor_wait: %s", who, alog_last_error());
                break;
            }
            continue;
        }
        if (e) {
            set_failed(s, "%s: at %" PRId64 ": %s: %s", who, want, alog_err_name(e),
                       alog_last_error());
            break;
        }
        if (r.offset != want) {
            set_failed(s, "%s: offset %" PRId64 ", expected %" PRId64, who, r.offset, want);
            break;
        }
        const char *k = r.key;
        int id = (r.key_len == 2 && k[0] == 'w') ? k[1] - '0' : -1;
        char v[16];
        int vl = snprintf(v, sizeof v, "%d", id >= 0 && id < WRITERS ? next_seq[id] : -1);
        if (id < 0 || id >= WRITERS || r.value_len != (size_t)vl ||
            memcmp(r.value, v, (size_t)vl)) {
            set_failed(s, "%s: offset %" PRId64 ": record out of its writer's order", who, want);
            break;
        }
        /* Batches are atomic: a record at seq % (BATCH + 2) in 3..BATCH+1 sits inside a
         * batch and must follow its predecessor in that batch directly. */
        int seq = next_seq[id], phase = seq % (BATCH + 2);
        if (phase >= 3 && (prev_id != id || prev_seq != seq - 1)) {
            set_failed(s, "%s: a batch of writer %d was split at offset %" PRId64, who, id,
                       want);
            break;
        }
        prev_id = id;
        prev_seq = seq;
        next_seq[id]++;
        want++;
    }
    alog_cursor_close(c);
    for (int i = 0; i < WRITERS && !atomic_load(&s->failed); i++)
        if (next_seq[i] != atomic_load(&s->written[i]))
            set_failed(s, "%s: saw %d records of writer %d, it wrote %d", who, next_seq[i], i,
                       atomic_load(&s->written[i]));
}

static void *reader(void *arg) {
    shared *s = arg;
    check_stream(s, s->log, "reader");
    return NULL;
}

/* A second, read-only handle on the same directory follows the writer. */
static void *ro_reader(void *arg) {
    shared *s = arg;
    alog_options o;
    alog_options_init(&o);
    o.read_only = 1;
    alog *ro;
    alog_err e = alog_open(s->dir, &o, &ro);
    if (e) {
        set_failed(s, "read-only open: %s", alog_last_error());
        return NULL;
    }
    check_stream(s, ro, "read-only reader");
    alog_close(ro);
    return NULL;
}

static void *syncer(void *arg) {
    shared *s = arg;
    while (atomic_load(&s->writers_done) < WRITERS && !atomic_load(&s->failed)) {
        alog_err e = alog_sync(s->log);
        if (e) set_failed(s, "sync: %s", alog_last_error());
        usleep(5000);
    }
    return NULL;
}

static void test_stress_writers_and_readers(void **state) {
    (void)state;
    char *dir = tu_tmpdir("stress");
    alog_options o;
    alog_options_init(&o);
    o.segment_bytes = 256 * 1024; /* many rolls while the readers follow */
    o.index_interval_bytes = 1024;
    o.fsync_policy = ALOG_FSYNC_INTERVAL; /* the log's fsync thread runs too */
    o.fsync_interval_ms = 5;
    const char *secs = getenv("ALOG_STRESS_SECONDS");
    shared *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->dir = dir;
    s->stop_at_ms = now_ms() + 1000 * (secs ? atoi(secs) : 10);
    TU_OK(alog_open(dir, &o, &s->log));

    pthread_t w[WRITERS], r[READERS], ro, sy;
    wctx wc[WRITERS];
    for (int i = 0; i < READERS; i++) pthread_create(&r[i], NULL, reader, s);
    pthread_create(&ro, NULL, ro_reader, s);
    pthread_create(&sy, NULL, syncer, s);
    for (int i = 0; i < WRITERS; i++) {
        wc[i] = (wctx){s, i};
        pthread_create(&w[i], NULL, writer, &wc[i]);
    }
    for (int i = 0; i < WRITERS; i++) pthread_join(w[i], NULL);
    for (int i = 0; i < READERS; i++) pthread_join(r[i], NULL);
    pthread_join(ro, NULL);
    pthread_join(sy, NULL);
    if (atomic_load(&s->failed)) fail_msg("%s", s->why);
    int64_t total = 0;
    for (int i = 0; i < WRITERS; i++) total += atomic_load(&s->written[i]);
    print_message("stress: %" PRId64 " records from %d writers, read by %d readers and a "
                  "read-only handle\n", total, WRITERS, READERS);
    assert_true(total > 1000);
    assert_int_equal(alog_next_offset(s->log), total);
    alog_segment_info *segs;
    size_t n;
    TU_OK(alog_segments(s->log, &segs, &n));
    assert_true(n > 3);
    alog_free(segs);
    TU_OK(alog_close(s->log));
    free(s);
    tu_rmrf(dir);
    free(dir);
}

/* Readers that fall behind while retention deletes segments: every record they
 * return is right, and when their segment goes they get ALOG_ERANGE. */
typedef struct ret_ctx {
    alog *log;
    atomic_int stop;
    atomic_int ranged, bad;
} ret_ctx;

static void *slow_reader(void *arg) {
    ret_ctx *x = arg;
    while (!atomic_load(&x->stop)) {
        alog_cursor *c;
        alog_err e = alog_cursor_open(x->log, alog_first_offset(x->log), &c);
        if (e == ALOG_ERANGE) {
            atomic_fetch_add(&x->ranged, 1);
            continue;
        }
        if (e) {
            atomic_fetch_add(&x->bad, 1);
            break;
        }
        alog_record r;
        while ((e = alog_cursor_next(c, &r)) == ALOG_OK) {
            char v[24];
            int vl = snprintf(v, sizeof v, "%" PRId64, r.offset);
            if (r.value_len != (size_t)vl || memcmp(r.value, v, (size_t)vl))
                atomic_fetch_add(&x->bad, 1);
            usleep(20);
        }
        if (e == ALOG_ERANGE) atomic_fetch_add(&x->ranged, 1);
        else if (e != ALOG_EOF) atomic_fetch_add(&x->bad, 1);
        alog_cursor_close(c);
    }
    return NULL;
}

static void test_readers_during_retention(void **state) {
    (void)state;
    char *dir = tu_tmpdir("retention-race");
    alog_options o;
    alog_options_init(&o);
    o.segment_bytes = 4096;
    o.index_interval_bytes = 256;
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.retention_bytes = 3 * 4096;
    ret_ctx x = {0};
    TU_OK(alog_open(dir, &o, &x.log));
    pthread_t r[4];
    for (int i = 0; i < 4; i++) pthread_create(&r[i], NULL, slow_reader, &x);
    for (int64_t i = 0; i < 20000; i++) {
        char v[24];
        int vl = snprintf(v, sizeof v, "%" PRId64, i);
        alog_record rec = {0, 1000 + i, NULL, 0, v, (size_t)vl, NULL, 0};
        int64_t off;
        TU_OK(alog_append(x.log, &rec, &off));
        assert_int_equal(off, i);
    }
    atomic_store(&x.stop, 1);
    for (int i = 0; i < 4; i++) pthread_join(r[i], NULL);
    assert_int_equal(atomic_load(&x.bad), 0);
    assert_true(atomic_load(&x.ranged) > 0); /* the race did happen */
    assert_true(alog_first_offset(x.log) > 0);
    TU_OK(alog_close(x.log));
    tu_rmrf(dir);
    free(dir);
}

/* A writer process appends at its own pace; a reader in this process follows with a
 * read-only handle and alog_cursor_wait, and sees every record in order. */
static void cross_process_tail(void) {
    char *dir = tu_tmpdir("xproc");
    alog_options o;
    alog_options_init(&o);
    o.segment_bytes = 8192;
    o.fsync_policy = ALOG_FSYNC_NEVER;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    TU_OK(alog_close(log));
    enum { N = 3000 };
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alog *w;
        if (alog_open(dir, &o, &w)) _exit(2);
        for (int i = 0; i < N; i++) {
            char v[16];
            int vl = snprintf(v, sizeof v, "%d", i);
            alog_record rec = {0, 1000 + i, NULL, 0, v, (size_t)vl, NULL, 0};
            if (alog_append(w, &rec, NULL)) _exit(3);
            if (i % 100 == 0) usleep(2000);
        }
        _exit(alog_close(w) ? 4 : 0);
    }
    alog_options ro;
    alog_options_init(&ro);
    ro.read_only = 1;
    TU_OK(alog_open(dir, &ro, &log));
    alog_cursor *c;
    TU_OK(alog_cursor_open(log, 0, &c));
    int seen = 0, waits = 0;
    int64_t deadline = now_ms() + 60000;
    while (seen < N && now_ms() < deadline) {
        alog_record r;
        alog_err e = alog_cursor_next(c, &r);
        if (e == ALOG_EOF) {
            e = alog_cursor_wait(c, 1000);
            waits++;
            if (e == ALOG_ETIMEDOUT) continue;
            TU_OK(e);
            continue;
        }
        TU_OK(e);
        char v[16];
        int vl = snprintf(v, sizeof v, "%d", seen);
        assert_int_equal(r.offset, seen);
        assert_memory_equal(r.value, v, (size_t)vl);
        seen++;
    }
    assert_int_equal(seen, N);
    assert_true(waits > 0); /* it did wait for the writer */
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Nothing more: a wait times out. */
    assert_int_equal(alog_cursor_wait(c, 50), ALOG_ETIMEDOUT);
    alog_cursor_close(c);
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    free(dir);
}

static void test_cross_process_tail(void **state) {
    (void)state;
    cross_process_tail();
}

/* The same with every inotify instance of this user taken (the limit is 128 by
 * default, and each waiting cursor needs one): the waits must still see every record
 * (they look every few milliseconds instead). */
static void test_cross_process_tail_without_inotify(void **state) {
    (void)state;
    enum { MAXI = 100000 };
    int *fds = malloc(MAXI * sizeof *fds);
    assert_non_null(fds);
    int n = 0;
    while (n < MAXI && (fds[n] = inotify_init1(IN_CLOEXEC)) >= 0) n++;
    int exhausted = n < MAXI && (errno == EMFILE || errno == ENFILE);
    printf("  took %d inotify instances (%s)\n", n, exhausted ? "no more left" : strerror(errno));
    if (exhausted) cross_process_tail();
    for (int i = 0; i < n; i++) close(fds[i]);
    free(fds);
    if (!exhausted) skip();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_writers_and_readers),
        cmocka_unit_test(test_readers_during_retention),
        cmocka_unit_test(test_cross_process_tail),
        cmocka_unit_test(test_cross_process_tail_without_inotify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
