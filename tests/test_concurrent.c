/*
 * test_concurrent.c -- one log handle shared by several threads (run under
 * ThreadSanitizer by `make test`): writer threads appending single records and batches
 * while the log rolls segments, reader threads following the tail with cursors, a
 * thread calling alog_sync, the log's own interval-fsync thread, and a read-only handle
 * following the same directory.
 *
 * Checks: every reader sees every record exactly once, offsets dense and in order, each
 * writer's records in the order that writer appended them, and each batch contiguous
 * (atomic: no other writer's record inside it).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

enum { WRITERS = 4, READERS = 3, PER_WRITER = 20000, BATCH = 7 };
#define TOTAL ((int64_t)WRITERS * PER_WRITER)

typedef struct shared {
    alog *log;
    const char *dir;
    atomic_int writers_done;
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

/* Writer w appends records keyed "w<id>" with value "<seq>": every third call a batch
 * of BATCH records, otherwise one record. */
static void *writer(void *arg) {
    wctx *w = arg;
    char key[8];
    int kl = snprintf(key, sizeof key, "w%d", w->id);
    int seq = 0;
    int call = 0;
    while (seq < PER_WRITER && !atomic_load(&w->s->failed)) {
        int n = (call++ % 3 == 2) ? BATCH : 1;
        if (n > PER_WRITER - seq) n = PER_WRITER - seq;
        alog_record recs[BATCH];
        char vals[BATCH][16];
        for (int j = 0; j < n; j++) {
            int vl = snprintf(vals[j], sizeof vals[j], "%d", seq + j);
            recs[j] = (alog_record){0, 1000 + seq + j, key, (size_t)kl, vals[j], (size_t)vl,
                                    NULL, 0};
        }
        int64_t off;
        alog_err e = alog_append_batch(w->s->log, recs, (size_t)n, &off);
        if (e) {
            set_failed(w->s, "writer %d: %s: %s", w->id, alog_err_name(e), alog_last_error());
            break;
        }
        seq += n;
    }
    atomic_fetch_add(&w->s->writers_done, 1);
    return NULL;
}

/* Follows the log from offset 0 until it has seen all TOTAL records. */
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
    while (want < TOTAL && !atomic_load(&s->failed)) {
        alog_record r;
        e = alog_cursor_next(c, &r);
        if (e == ALOG_EOF) {
            usleep(200);
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
        if (id < 0 || id >= WRITERS || r.value_len != (size_t)vl || memcmp(r.value, v, (size_t)vl)) {
            set_failed(s, "%s: offset %" PRId64 ": record out of its writer's order", who, want);
            break;
        }
        /* Batches are atomic: writer calls go single, single, batch of BATCH, ... so a
         * record at seq % (BATCH + 2) in 3..BATCH+1 sits inside a batch and must follow
         * its predecessor in that batch directly. */
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
        if (next_seq[i] != PER_WRITER)
            set_failed(s, "%s: saw %d records of writer %d", who, next_seq[i], i);
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
        usleep(1000);
    }
    return NULL;
}

static void test_writers_readers_one_handle(void **state) {
    (void)state;
    char *dir = tu_tmpdir("concurrent");
    alog_options o;
    alog_options_init(&o);
    o.segment_bytes = 16 * 1024; /* many rolls while the readers follow */
    o.index_interval_bytes = 512;
    o.fsync_policy = ALOG_FSYNC_INTERVAL; /* the log's fsync thread runs too */
    o.fsync_interval_ms = 2;
    shared s = {.dir = dir};
    TU_OK(alog_open(dir, &o, &s.log));

    pthread_t w[WRITERS], r[READERS], ro, sy;
    wctx wc[WRITERS];
    for (int i = 0; i < READERS; i++) pthread_create(&r[i], NULL, reader, &s);
    pthread_create(&ro, NULL, ro_reader, &s);
    pthread_create(&sy, NULL, syncer, &s);
    for (int i = 0; i < WRITERS; i++) {
        wc[i] = (wctx){&s, i};
        pthread_create(&w[i], NULL, writer, &wc[i]);
    }
    for (int i = 0; i < WRITERS; i++) pthread_join(w[i], NULL);
    for (int i = 0; i < READERS; i++) pthread_join(r[i], NULL);
    pthread_join(ro, NULL);
    pthread_join(sy, NULL);
    if (atomic_load(&s.failed)) fail_msg("%s", s.why);
    assert_int_equal(alog_next_offset(s.log), TOTAL);
    alog_segment_info *segs;
    size_t n;
    TU_OK(alog_segments(s.log, &segs, &n));
    assert_true(n > 5);
    alog_free(segs);
    TU_OK(alog_close(s.log));
    tu_rmrf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writers_readers_one_handle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
