/*
 * test_durability_rewind.c -- a group commit round meets a failed plain append.
 *
 * A plain append whose write fails (a full disk) makes the log cut the file back and
 * hand its space out again (rewind). If that happened between two reservations of one
 * group-commit round, the round's first request would keep the old position while the
 * second got the rewound offsets: a hole in the file, an offset handed out twice, and
 * both durable appends acknowledged although recovery would cut them. The round must
 * end at such a point instead and leave the cut to the next one.
 *
 * The window is the leader's reservation loop, under the writer lock. It is opened on
 * purpose: the link wraps prealloc_conflict (called before each reservation) so that,
 * at the first reservation of the round under test, the plain append's write fails and
 * publishes its failure before the loop goes on. The io table only orders the threads
 * and injects the ENOSPC. The test then checks offsets, reads, and a crash copy.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "log.h"
#include "testutil.h"

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int d0_in_sync, d0_go, p_in_write, p_go, p_done; /* under m */
static atomic_int armed, block_sync;
static _Thread_local int i_am_p, i_am_d0;

static void wait_for(int *flag) {
    pthread_mutex_lock(&m);
    while (!*flag) pthread_cond_wait(&cv, &m);
    pthread_mutex_unlock(&m);
}
static void set(int *flag) {
    pthread_mutex_lock(&m);
    *flag = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&m);
}

static ssize_t f_pwrite(int fd, const void *b, size_t n, off_t off) {
    if (i_am_p) {
        set(&p_in_write);
        wait_for(&p_go);
        errno = ENOSPC; /* the plain append meets a full disk */
        return -1;
    }
    return pwrite(fd, b, n, off);
}
static int f_fdatasync(int fd) {
    if (atomic_load(&block_sync) && i_am_d0) {
        set(&d0_in_sync);
        wait_for(&d0_go);
    }
    return fdatasync(fd);
}

void __real_prealloc_conflict(alog *log, segment *a, uint64_t end);
void __wrap_prealloc_conflict(alog *log, segment *a, uint64_t end);
void __wrap_prealloc_conflict(alog *log, segment *a, uint64_t end) {
    if (!i_am_p && atomic_exchange(&armed, 0)) {
        /* The leader of the round under test, about to reserve its first request: let
         * the plain append fail now, and go on once its failure is published. */
        set(&p_go);
        wait_for(&p_done);
    }
    __real_prealloc_conflict(log, a, end);
}

static alog *L;
typedef struct {
    int durable, is_p, is_d0;
    char fill;
    alog_err e;
    int64_t off;
} job;

static void *run(void *arg) {
    job *j = arg;
    i_am_p = j->is_p;
    i_am_d0 = j->is_d0;
    char v[200];
    memset(v, j->fill, sizeof v);
    alog_record r = {.value = v, .value_len = sizeof v, .timestamp = 1};
    j->e = alog_append_ex(L, &r, 1, j->durable ? ALOG_APPEND_DURABLE : 0, &j->off);
    if (j->is_p) set(&p_done);
    return NULL;
}

static int setup(void **state) {
    (void)state;
    io_ops *t = tu_fake_io_install();
    t->pwrite = f_pwrite;
    t->fdatasync = f_fdatasync;
    return 0;
}

/* Reads log from offset 0: every record's first byte, into fills (NUL-terminated). */
static alog_err read_all(alog *log, char *fills, size_t cap) {
    alog_cursor *c;
    alog_err e = alog_cursor_open(log, 0, &c);
    if (e) return e;
    alog_record rec;
    size_t k = 0;
    while ((e = alog_cursor_next(c, &rec)) == ALOG_OK && k + 1 < cap) {
        if (rec.offset != (int64_t)k) {
            alog_cursor_close(c);
            return ALOG_ECORRUPT;
        }
        fills[k++] = ((const char *)rec.value)[0];
    }
    fills[k] = '\0';
    alog_cursor_close(c);
    return e == ALOG_EOF ? ALOG_OK : e;
}

static void test_round_never_rewinds_halfway(void **state) {
    (void)state;
    char *dir = tu_tmpdir("rewind_round");
    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.preallocate_bytes = 0;
    TU_OK(alog_open(dir, &o, &L));
    job pre = {0, 0, 0, 'a', 0, 0};
    for (int i = 0; i < 3; i++) run(&pre); /* offsets 0-2 */
    TU_OK(pre.e);

    job d0 = {1, 0, 1, 'x', 0, 0}, p = {0, 1, 0, 'p', 0, 0};
    job d1 = {1, 0, 0, 'y', 0, 0}, d2 = {1, 0, 0, 'z', 0, 0};
    pthread_t t0, tp, t1, t2;
    atomic_store(&block_sync, 1);
    pthread_create(&t0, NULL, run, &d0);
    wait_for(&d0_in_sync); /* D0 leads a round and is in its fdatasync */
    pthread_create(&tp, NULL, run, &p);
    wait_for(&p_in_write); /* P reserved the next offset and is writing */
    pthread_create(&t1, NULL, run, &d1);
    pthread_create(&t2, NULL, run, &d2);
    while (atomic_load(&L->g_inside) < 3) usleep(1000); /* D1 and D2 are queued */
    usleep(20000);
    atomic_store(&armed, 1);
    set(&d0_go);
    pthread_join(t0, NULL);
    pthread_join(tp, NULL);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    atomic_store(&block_sync, 0);
    assert_int_equal(atomic_load(&armed), 0); /* the window was really opened */

    printf("  D0 %s @%lld, P %s, D1 %s @%lld, D2 %s @%lld, next offset %lld\n",
           alog_err_name(d0.e), (long long)d0.off, alog_err_name(p.e), alog_err_name(d1.e),
           (long long)d1.off, alog_err_name(d2.e), (long long)d2.off,
           (long long)alog_next_offset(L));
    TU_OK(d0.e);
    assert_int_equal(d0.off, 3);
    assert_int_not_equal(p.e, ALOG_OK);
    /* What was acknowledged sits at its offset, offsets are not handed out twice, and
     * the log reads back without a gap. */
    job *ds[2] = {&d1, &d2};
    int ok = 0;
    for (int i = 0; i < 2; i++)
        if (ds[i]->e == ALOG_OK) ok++;
    assert_true(ok >= 1);
    if (ok == 2) assert_int_not_equal(d1.off, d2.off);
    char fills[64];
    TU_OK(read_all(L, fills, sizeof fills));
    assert_int_equal((int64_t)strlen(fills), alog_next_offset(L));
    assert_int_equal(fills[3], 'x');
    for (int i = 0; i < 2; i++)
        if (ds[i]->e == ALOG_OK) assert_int_equal(fills[ds[i]->off], ds[i]->fill);
    assert_int_equal((int)strlen(fills), 4 + ok);

    /* A crash now: every acknowledged durable record survives it. */
    char copy[600];
    snprintf(copy, sizeof copy, "%s.crash", dir);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", copy, dir, copy);
    assert_int_equal(system(cmd), 0);
    alog *R;
    TU_OK(alog_open(copy, &o, &R));
    assert_int_equal(alog_recovery(R)->bytes_truncated, 0);
    char fills2[64];
    TU_OK(read_all(R, fills2, sizeof fills2));
    assert_string_equal(fills2, fills);
    alog_close(R);
    TU_OK(alog_close(L));
    tu_rmrf(copy);
    tu_rmrf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_never_rewinds_halfway, setup,
                                        tu_fake_io_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
