/*
 * test_durability.c -- the fsync policies and what happens when the OS says no.
 *
 * A fake io table (src/io.h, SQLite's VFS idea) wraps the real calls: it counts
 * fdatasync/fsync on segment files and can make the next pwrite fail with ENOSPC (after
 * writing part of its bytes, as a full disk does) or make fdatasync fail with EIO. The
 * tests check behaviour, never time: which policy syncs when, that a full disk loses
 * nothing already appended and leaves no partial batch, and that a failed fsync stops
 * all further writes (the data's state in the page cache is unknown after it: the
 * PostgreSQL "fsyncgate" lesson) until the log is reopened and recovered.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "testutil.h"

static struct {
    atomic_int data_syncs;       /* fdatasync + fsync calls of any file (any thread) */
    atomic_int fail_next_pwrite; /* 1: the next pwrite writes half its bytes, the one
                                  * after fails with ENOSPC */
    atomic_int fail_fdatasync;   /* 1: every fdatasync fails with EIO */
    atomic_int slow_ms;          /* each fdatasync of a .log file takes this long */
    atomic_int in_fsync;         /* a .log fdatasync is running */
    atomic_int log_syncs;        /* fdatasync calls on .log files */
    /* What reached the .log files: one past the last offset of every batch written
     * before the latest fdatasync started that has returned (synced), and of every
     * batch written (written). A durable append must never return before synced
     * covers it. */
    _Atomic int64_t written_next, synced_next;
    atomic_char is_log[4096]; /* fds of .log files */
} fk;

static void atomic_max64(_Atomic int64_t *v, int64_t x) {
    int64_t cur = atomic_load(v);
    while (cur < x && !atomic_compare_exchange_weak(v, &cur, x)) {
    }
}

static int fake_open(const char *path, int flags, mode_t mode) {
    int fd = io_posix.open(path, flags, mode);
    size_t n = strlen(path);
    if (fd >= 0 && fd < 4096) atomic_store(&fk.is_log[fd], n > 4 && !strcmp(path + n - 4, ".log"));
    return fd;
}

static ssize_t fake_pwrite(int fd, const void *buf, size_t n, off_t off) {
    int f = atomic_load(&fk.fail_next_pwrite);
    if (f == 1 && n > 1) {
        /* A full disk takes part of a write, then refuses the rest. */
        atomic_store(&fk.fail_next_pwrite, 2);
        return pwrite(fd, buf, n / 2, off);
    }
    if (f) {
        atomic_store(&fk.fail_next_pwrite, 0);
        errno = ENOSPC;
        return -1;
    }
    ssize_t w = pwrite(fd, buf, n, off);
    /* One write may hold several batches back to back (a group commit). */
    const uint8_t *b = buf;
    size_t at = 0;
    while (w == (ssize_t)n && fd >= 0 && fd < 4096 && atomic_load(&fk.is_log[fd]) &&
           n - at >= 61 && b[at + 16] == 2) {
        const uint8_t *q = b + at;
        int64_t base = 0;
        for (int i = 0; i < 8; i++) base = (base << 8) | q[i];
        uint32_t blen = (uint32_t)q[8] << 24 | (uint32_t)q[9] << 16 | (uint32_t)q[10] << 8 | q[11];
        int32_t lod = (int32_t)((uint32_t)q[23] << 24 | (uint32_t)q[24] << 16 |
                                (uint32_t)q[25] << 8 | q[26]);
        atomic_max64(&fk.written_next, base + lod + 1);
        at += 12 + (size_t)blen;
    }
    return w;
}

static int fake_fdatasync(int fd) {
    atomic_fetch_add(&fk.data_syncs, 1);
    int is_log = fd >= 0 && fd < 4096 && atomic_load(&fk.is_log[fd]);
    int64_t covered = atomic_load(&fk.written_next);
    if (is_log) {
        atomic_fetch_add(&fk.log_syncs, 1);
        atomic_store(&fk.in_fsync, 1);
        int ms = atomic_load(&fk.slow_ms);
        if (ms) {
            struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    int rc;
    if (atomic_load(&fk.fail_fdatasync)) {
        errno = EIO;
        rc = -1;
    } else {
        rc = fdatasync(fd);
    }
    if (is_log) {
        if (rc == 0) atomic_max64(&fk.synced_next, covered);
        atomic_store(&fk.in_fsync, 0);
    }
    return rc;
}

static int fake_fsync(int fd) {
    atomic_fetch_add(&fk.data_syncs, 1);
    if (atomic_load(&fk.fail_fdatasync)) {
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}

static int64_t mono_ms_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state) {
    (void)state;
    memset(&fk, 0, sizeof fk);
    io_ops *t = tu_fake_io_install();
    t->open = fake_open;
    t->pwrite = fake_pwrite;
    t->fdatasync = fake_fdatasync;
    t->fsync = fake_fsync;
    return 0;
}

static alog_options opts(alog_fsync_policy p, uint32_t interval_ms) {
    alog_options o;
    alog_options_init(&o);
    o.segment_bytes = 1 << 20;
    o.fsync_policy = p;
    o.fsync_interval_ms = interval_ms;
    /* Faults here target the appends' own writes and fsyncs, which they count; the
     * zero-filling ahead of durable appends has its own fault tests
     * (test_durability_prealloc.c). */
    o.preallocate_bytes = 0;
    return o;
}

static void append_one(alog *log, int i, int64_t *off) {
    char v[32];
    int vl = snprintf(v, sizeof v, "value-%d", i);
    alog_record r = {0, 1000 + i, NULL, 0, v, (size_t)vl, NULL, 0};
    TU_OK(alog_append(log, &r, off));
}

/* Counts the records in the log and checks they are value-0, value-1, ... */
static int64_t count_check(alog *log) {
    alog_cursor *c;
    TU_OK(alog_cursor_open(log, alog_first_offset(log), &c));
    alog_record r;
    alog_err e;
    int64_t n = 0;
    while ((e = alog_cursor_next(c, &r)) == ALOG_OK) {
        char v[32];
        int vl = snprintf(v, sizeof v, "value-%" PRId64, n);
        assert_int_equal(r.offset, n);
        assert_int_equal(r.value_len, (size_t)vl);
        assert_memory_equal(r.value, v, (size_t)vl);
        n++;
    }
    assert_int_equal(e, ALOG_EOF);
    alog_cursor_close(c);
    return n;
}

/* Every step-th offset below n: a seek lands on it, and its timestamp (1000 + offset,
 * as append_one writes) finds it through the time index. */
static void check_lookups(alog *log, int64_t n, int64_t step) {
    for (int64_t off = 0; off < n; off += step) {
        alog_cursor *c;
        alog_record r;
        TU_OK(alog_cursor_open(log, off, &c));
        TU_OK(alog_cursor_next(c, &r));
        assert_int_equal(r.offset, off);
        alog_cursor_close(c);
        int64_t found;
        TU_OK(alog_offset_for_time(log, 1000 + off, &found));
        assert_int_equal(found, off);
    }
}

static void test_fsync_always_syncs_every_append(void **state) {
    (void)state;
    char *dir = tu_tmpdir("always");
    alog_options o = opts(ALOG_FSYNC_ALWAYS, 0);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    for (int i = 0; i < 50; i++) {
        int before = fk.data_syncs;
        append_one(log, i, NULL);
        assert_true(fk.data_syncs > before); /* synced before the append returned */
    }
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    free(dir);
}

static void test_fsync_never_leaves_it_to_sync_and_close(void **state) {
    (void)state;
    char *dir = tu_tmpdir("never");
    alog_options o = opts(ALOG_FSYNC_NEVER, 0);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    int before = fk.data_syncs;
    for (int i = 0; i < 500; i++) append_one(log, i, NULL);
    assert_int_equal(fk.data_syncs, before);
    TU_OK(alog_sync(log));
    assert_true(fk.data_syncs > before);
    before = fk.data_syncs;
    TU_OK(alog_close(log));
    assert_true(fk.data_syncs > before); /* a clean close is durable */
    tu_rmrf(dir);
    free(dir);
}

static void test_fsync_interval(void **state) {
    (void)state;
    char *dir = tu_tmpdir("interval");
    /* A long interval: appends in a burst do not sync. */
    alog_options o = opts(ALOG_FSYNC_INTERVAL, 3600 * 1000);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    int before = fk.data_syncs;
    for (int i = 0; i < 200; i++) append_one(log, i, NULL);
    assert_int_equal(fk.data_syncs, before);
    TU_OK(alog_close(log));

    /* A short one: a writer appending without pause gets synced as it goes (inline,
     * or by the log's thread, whichever comes first). Bounded at 10 s of appends. */
    o = opts(ALOG_FSYNC_INTERVAL, 5);
    TU_OK(alog_open(dir, &o, &log));
    before = atomic_load(&fk.data_syncs);
    int i = 200;
    for (int64_t t0 = mono_ms_now(); atomic_load(&fk.data_syncs) < before + 3 &&
                                     mono_ms_now() - t0 < 10000;)
        append_one(log, i++, NULL);
    assert_true(atomic_load(&fk.data_syncs) >= before + 3);
    TU_OK(alog_close(log));
    o = opts(ALOG_FSYNC_INTERVAL, 3600 * 1000);
    TU_OK(alog_open(dir, &o, &log));
    assert_int_equal(count_check(log), i);
    TU_OK(alog_close(log));

    /* A writer that goes idle: its last records are synced by the log's own thread,
     * without another append. (Waits up to 10 s for it; normally 20-40 ms.) */
    o = opts(ALOG_FSYNC_INTERVAL, 20);
    TU_OK(alog_open(dir, &o, &log));
    before = atomic_load(&fk.data_syncs);
    append_one(log, i, NULL);
    for (int w = 0; w < 1000 && atomic_load(&fk.data_syncs) == before; w++) {
        struct timespec t10 = {0, 10 * 1000 * 1000};
        nanosleep(&t10, NULL);
    }
    assert_true(atomic_load(&fk.data_syncs) > before);
    /* And once synced, an idle log is not synced again and again. */
    struct timespec t100 = {0, 100 * 1000 * 1000};
    nanosleep(&t100, NULL);
    before = atomic_load(&fk.data_syncs);
    nanosleep(&t100, NULL);
    assert_int_equal(atomic_load(&fk.data_syncs), before);
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    free(dir);
}

static void test_full_disk_loses_nothing(void **state) {
    (void)state;
    char *dir = tu_tmpdir("enospc");
    alog_options o = opts(ALOG_FSYNC_NEVER, 0);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    for (int i = 0; i < 100; i++) append_one(log, i, NULL);
    char seg[4096];
    tu_segment_path(seg, sizeof seg, dir, 0, "log");
    int64_t size_before = tu_file_size(seg);

    /* The disk fills in the middle of the next batch. */
    atomic_store(&fk.fail_next_pwrite, 1);
    char v[32];
    int vl = snprintf(v, sizeof v, "value-%d", 100);
    alog_record r = {0, 1100, NULL, 0, v, (size_t)vl, NULL, 0};
    int64_t off = -1;
    alog_err e = alog_append(log, &r, &off);
    assert_int_equal(e, ALOG_ENOSPC);
    assert_non_null(strstr(alog_last_error(), seg)); /* names the file */
    assert_int_equal(off, -1);
    /* The half-written batch was cut: the file ends at the last complete batch. */
    assert_int_equal(tu_file_size(seg), size_before);
    assert_int_equal(alog_next_offset(log), 100);

    /* Space comes back: appending goes on at the same offset. */
    append_one(log, 100, &off);
    assert_int_equal(off, 100);
    assert_int_equal(count_check(log), 101);
    TU_OK(alog_close(log));

    TU_OK(alog_open(dir, &o, &log));
    assert_int_equal(count_check(log), 101);
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    free(dir);
}

static void test_failed_fsync_is_sticky(void **state) {
    (void)state;
    char *dir = tu_tmpdir("eio");
    alog_options o = opts(ALOG_FSYNC_ALWAYS, 0);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    for (int i = 0; i < 10; i++) append_one(log, i, NULL);

    atomic_store(&fk.fail_fdatasync, 1);
    char v[32];
    int vl = snprintf(v, sizeof v, "value-%d", 10);
    alog_record r = {0, 1010, NULL, 0, v, (size_t)vl, NULL, 0};
    alog_err e = alog_append(log, &r, NULL);
    assert_int_equal(e, ALOG_EFAILED);
    assert_non_null(strstr(alog_last_error(), "fdatasync"));

    /* Even once the device answers again, this handle refuses writes: after a failed
     * fsync the kernel may have dropped the dirty pages, so nothing it wrote is known
     * to be on disk. */
    atomic_store(&fk.fail_fdatasync, 0);
    assert_int_equal(alog_append(log, &r, NULL), ALOG_EFAILED);
    assert_int_equal(alog_sync(log), ALOG_EFAILED);
    /* Reads of what was acknowledged still work. */
    assert_true(count_check(log) >= 10);
    alog_close(log);

    /* Reopening recovers: the acknowledged records are there and appends resume. */
    TU_OK(alog_open(dir, &o, &log));
    int64_t n = count_check(log);
    assert_true(n == 10 || n == 11); /* the unacknowledged one may or may not be */
    int64_t off;
    TU_OK(alog_append(log, &(alog_record){0, 2000, NULL, 0, "after", 5, NULL, 0}, &off));
    assert_int_equal(off, n);
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    free(dir);
}

/* A process killed after appending: the next open scans only what was written since
 * the last checkpoint (here: the writable open), not the whole segment, even though
 * index entries past that point had reached the index files. */
static void test_recovery_scans_only_the_tail(void **state) {
    (void)state;
    char *dir = tu_tmpdir("tailscan");
    alog_options o = opts(ALOG_FSYNC_NEVER, 0);
    o.index_interval_bytes = 256;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    for (int i = 0; i < 2000; i++) append_one(log, i, NULL);
    TU_OK(alog_close(log));
    char seg[4096];
    tu_segment_path(seg, sizeof seg, dir, 0, "log");
    int64_t clean_size = tu_file_size(seg);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alog *l2;
        if (alog_open(dir, &o, &l2)) _exit(2);
        for (int i = 2000; i < 2300; i++) {
            char v[32];
            int vl = snprintf(v, sizeof v, "value-%d", i);
            alog_record r = {0, 1000 + i, NULL, 0, v, (size_t)vl, NULL, 0};
            if (alog_append(l2, &r, NULL)) _exit(3);
        }
        if (alog_sync(l2)) _exit(4); /* data and index entries on disk, no checkpoint */
        _exit(0);                     /* killed: no close */
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int64_t crash_size = tu_file_size(seg);
    assert_true(crash_size > clean_size);

    TU_OK(alog_open(dir, &o, &log));
    const alog_recovery_info *ri = alog_recovery(log);
    assert_int_equal(ri->clean, 0);
    assert_int_equal(ri->bytes_checked, (uint64_t)(crash_size - clean_size));
    assert_int_equal(ri->bytes_truncated, 0);
    assert_int_equal(ri->indexes_rebuilt, 0);
    assert_int_equal(count_check(log), 2300);
    /* Lookups through the index are right on both sides of the checkpoint. */
    check_lookups(log, 2300, 97);
    TU_OK(alog_close(log));
    tu_rmrf(dir);
    free(dir);
}

/* Index files deleted behind the log's back are rebuilt, not taken as empty. */
static void test_missing_index_files_rebuilt(void **state) {
    (void)state;
    char *dir = tu_tmpdir("noindex");
    alog_options o = opts(ALOG_FSYNC_NEVER, 0);
    o.segment_bytes = 8192;
    o.index_interval_bytes = 256;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    for (int i = 0; i < 2000; i++) append_one(log, i, NULL);
    TU_OK(alog_close(log));
    /* The first (sealed) segment's and the last (active) segment's offset indexes. */
    alog_segment_info *segs;
    size_t n;
    TU_OK(alog_open(dir, &o, &log));
    TU_OK(alog_segments(log, &segs, &n));
    TU_OK(alog_close(log));
    assert_true(n >= 3);
    char p[4096];
    tu_segment_path(p, sizeof p, dir, segs[0].base_offset, "index");
    int64_t sealed_index_size = tu_file_size(p);
    assert_true(sealed_index_size > 0);
    assert_int_equal(unlink(p), 0);
    tu_segment_path(p, sizeof p, dir, segs[n - 1].base_offset, "timeindex");
    assert_int_equal(unlink(p), 0);
    TU_OK(alog_open(dir, &o, &log));
    check_lookups(log, 2000, 37);
    TU_OK(alog_close(log));
    tu_segment_path(p, sizeof p, dir, segs[0].base_offset, "index");
    assert_int_equal(tu_file_size(p), sealed_index_size); /* rebuilt as it was */
    alog_free(segs);
    tu_rmrf(dir);
    free(dir);
}

/* ---- group commit ------------------------------------------------------------------ */

enum { GC_THREADS = 16, GC_EACH = 25 };

typedef struct gc_ctx {
    alog *log;
    int each; /* appends per writer; 0: GC_EACH */
    atomic_int early, errors, done;
} gc_ctx;

static void *durable_appender(void *arg) {
    gc_ctx *g = arg;
    for (int i = 0; i < (g->each ? g->each : GC_EACH); i++) {
        alog_record r = {0, 1000, NULL, 0, "durable", 7, NULL, 0};
        int64_t off;
        alog_err e = alog_append_ex(g->log, &r, 1, ALOG_APPEND_DURABLE, &off);
        if (e) {
            atomic_fetch_add(&g->errors, 1);
            continue;
        }
        /* The fsync that covers off must have returned before we were told. */
        if (atomic_load(&fk.synced_next) <= off) atomic_fetch_add(&g->early, 1);
        if (alog_durable_offset(g->log) <= off) atomic_fetch_add(&g->early, 1);
        atomic_fetch_add(&g->done, 1);
    }
    return NULL;
}

/* With a slow fsync (20 ms), durable appends from 16 threads: none returns before an
 * fsync covering it has returned, and they share fsyncs. */
static void test_group_commit_never_early(void **state) {
    (void)state;
    char *dir = tu_tmpdir("groupcommit");
    alog_options o = opts(ALOG_FSYNC_NEVER, 0);
    gc_ctx g = {0};
    TU_OK(alog_open(dir, &o, &g.log));
    atomic_store(&fk.slow_ms, 20);
    int syncs_before = atomic_load(&fk.log_syncs);
    pthread_t t[GC_THREADS];
    for (int i = 0; i < GC_THREADS; i++) pthread_create(&t[i], NULL, durable_appender, &g);
    for (int i = 0; i < GC_THREADS; i++) pthread_join(t[i], NULL);
    int syncs = atomic_load(&fk.log_syncs) - syncs_before;
    atomic_store(&fk.slow_ms, 0);
    assert_int_equal(atomic_load(&g.errors), 0);
    assert_int_equal(atomic_load(&g.done), GC_THREADS * GC_EACH);
    assert_int_equal(atomic_load(&g.early), 0);
    print_message("group commit: %d durable appends, %d fsyncs\n", GC_THREADS * GC_EACH, syncs);
    assert_true(syncs > 0);
    assert_true(syncs * 4 <= GC_THREADS * GC_EACH); /* shared: at least 4 per fsync */
    TU_OK(alog_close(g.log));
    tu_rmrf(dir);
    free(dir);
}

/* Closed-loop writers (each appends its next record as soon as the last is durable)
 * make every fsync, not every other one: when a round's fsync returns, the next round
 * waits (gathers) for the writers just told, instead of starting with none of them.
 * 8 writers x 60 appends with a 20 ms fsync: about 60 fsyncs (a few more while the
 * threads start); without the gather each writer makes only every other round (120). */
static void test_group_commit_gathers_every_writer(void **state) {
    (void)state;
    enum { W = 8, EACH = 60 };
    char *dir = tu_tmpdir("gather");
    alog_options o = opts(ALOG_FSYNC_NEVER, 0);
    gc_ctx g = {.each = EACH};
    TU_OK(alog_open(dir, &o, &g.log));
    atomic_store(&fk.slow_ms, 20);
    int syncs_before = atomic_load(&fk.log_syncs);
    pthread_t t[W];
    for (int i = 0; i < W; i++) pthread_create(&t[i], NULL, durable_appender, &g);
    for (int i = 0; i < W; i++) pthread_join(t[i], NULL);
    int syncs = atomic_load(&fk.log_syncs) - syncs_before;
    atomic_store(&fk.slow_ms, 0);
    assert_int_equal(atomic_load(&g.errors), 0);
    assert_int_equal(atomic_load(&g.done), W * EACH);
    assert_int_equal(atomic_load(&g.early), 0);
    print_message("gather: %d writers x %d durable appends, %d fsyncs\n", W, EACH, syncs);
    assert_true(syncs <= EACH * 3 / 2); /* halfway between 60 and 120 */
    TU_OK(alog_close(g.log));
    tu_rmrf(dir);
    free(dir);
}

static void *sync_thread(void *arg) {
    alog *log = arg;
    return (void *)(intptr_t)alog_sync(log);
}

typedef struct cb_rec {
    atomic_int called;
    atomic_int err;
    _Atomic int64_t synced_at_call;
} cb_rec;

static void on_durable_cb(void *ctx, int64_t offset, alog_err err) {
    (void)offset;
    cb_rec *c = ctx;
    atomic_store(&c->synced_at_call, atomic_load(&fk.synced_next));
    atomic_store(&c->err, (int)err);
    atomic_store(&c->called, 1);
}

static int wait_called(cb_rec *c) {
    for (int i = 0; i < 2000 && !atomic_load(&c->called); i++) usleep(5000);
    return atomic_load(&c->called);
}

/* alog_wait_durable times out while someone else's fsync runs; alog_on_durable calls
 * back once the record is durable, and with ALOG_EFAILED when it never can be. */
static void test_wait_timeout_and_callbacks(void **state) {
    (void)state;
    char *dir = tu_tmpdir("durablecb");
    alog_options o = opts(ALOG_FSYNC_NEVER, 0);
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    int64_t off0, off1;
    append_one(log, 0, &off0);

    /* Another thread's fsync takes 300 ms; a record appended meanwhile cannot be
     * durable within 10 ms. */
    atomic_store(&fk.slow_ms, 300);
    pthread_t t;
    pthread_create(&t, NULL, sync_thread, log);
    for (int i = 0; i < 2000 && !atomic_load(&fk.in_fsync); i++) usleep(1000);
    assert_true(atomic_load(&fk.in_fsync));
    append_one(log, 1, &off1);
    assert_int_equal(alog_wait_durable(log, off1, 10), ALOG_ETIMEDOUT);
    void *rv;
    pthread_join(t, &rv);
    assert_int_equal((alog_err)(intptr_t)rv, ALOG_OK);
    atomic_store(&fk.slow_ms, 0);
    assert_int_equal(alog_wait_durable(log, off1 + 5, 10), ALOG_ERANGE);

    /* A callback: called on the log's thread after the fsync covering it. */
    cb_rec c1 = {0};
    TU_OK(alog_on_durable(log, off1, on_durable_cb, &c1));
    assert_true(wait_called(&c1));
    assert_int_equal(atomic_load(&c1.err), ALOG_OK);
    assert_true(atomic_load(&c1.synced_at_call) > off1);
    assert_true(alog_durable_offset(log) > off1);
    /* Already durable: called at once. */
    cb_rec c2 = {0};
    TU_OK(alog_on_durable(log, off0, on_durable_cb, &c2));
    assert_true(atomic_load(&c2.called));

    /* The fsync fails: the callback hears so, durable appends too. */
    int64_t off2;
    append_one(log, 2, &off2);
    atomic_store(&fk.fail_fdatasync, 1);
    cb_rec c3 = {0};
    TU_OK(alog_on_durable(log, off2, on_durable_cb, &c3));
    assert_true(wait_called(&c3));
    assert_int_equal(atomic_load(&c3.err), ALOG_EFAILED);
    alog_record r = {0, 1000, NULL, 0, "x", 1, NULL, 0};
    assert_int_equal(alog_append_ex(log, &r, 1, ALOG_APPEND_DURABLE, NULL), ALOG_EFAILED);
    atomic_store(&fk.fail_fdatasync, 0);
    alog_close(log);
    tu_rmrf(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fsync_always_syncs_every_append, setup,
                                        tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_fsync_never_leaves_it_to_sync_and_close, setup,
                                        tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_fsync_interval, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_full_disk_loses_nothing, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_failed_fsync_is_sticky, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_recovery_scans_only_the_tail, setup,
                                        tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_missing_index_files_rebuilt, setup,
                                        tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_group_commit_never_early, setup, tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_group_commit_gathers_every_writer, setup,
                                        tu_fake_io_restore),
        cmocka_unit_test_setup_teardown(test_wait_timeout_and_callbacks, setup, tu_fake_io_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
