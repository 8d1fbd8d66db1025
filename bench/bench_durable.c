/*
 * bench_durable.c -- the durable-append benchmark: T writer threads each append
 * 100-byte records, one per call, and every call returns only once its record is
 * durable (fsynced), for a fixed wall time. It owns the writer threads, the per-call
 * latency samples and the durable write path of every system. It is kept apart from
 * bench_alog.c and bench_peers.c because those time "fsync never" appends from one
 * thread and configure every system the opposite way; here the figures are how many
 * acknowledged-durable records per second each system gets from T concurrent writers,
 * and how long each writer waits for its acknowledgement.
 *
 * The systems and what one call does:
 *   alog             one log (fsync policy never, so only the explicit durability
 *                    counts): alog_append_ex(log, &rec, 1, ALOG_APPEND_DURABLE, ...).
 *   write+fdatasync  one file shared by the threads, laid out beforehand (zero-filled and
 *                    fdatasynced, as fio lays out its file): pwrite() of the 100 bytes
 *                    at the next position, then fdatasync() (fio's --fdatasync=1). So
 *                    an fdatasync writes data only, with no size or block allocation
 *                    to journal: the device's limit per fsync, which a file growing by
 *                    appends does not reach (~155 us here instead of ~95 us; alog
 *                    preallocates for the same reason, src/prealloc.c). Its 1-thread
 *                    median latency is "one fsync".
 *   group fdatasync  the simplest group commit, as a reference for alog's: the same laid-
 *                    out file; a writer copies its 100 bytes into a shared buffer under
 *                    a mutex and waits; one flusher thread takes the buffer, pwrites it
 *                    at the next position and fdatasyncs, then wakes the writers it
 *                    carried. No record format, checksum, index or offsets, so it costs
 *                    a writer less CPU than any log can; what it reaches at 64 threads is
 *                    what this machine's CPUs and device allow a group commit of this
 *                    shape. Its waits are tuned as alog's are: a writer gives the CPU up
 *                    (sched_yield) up to 64 times, then sleeps on a futex; the flusher
 *                    takes the next group at once if every writer is in it, else after at
 *                    most GF_GATHER_US (measured at 64 threads on 2 vCPUs: 0, 20 and 45 us
 *                    gave ~340k, ~363k and ~331k records/s; sleeping at once gave ~150k).
 *   SQLite           WAL, synchronous=FULL, one autocommit INSERT (one transaction) per
 *                    record; each thread has its own connection to the same database
 *                    and waits for the write lock as busy_timeout does (the same sleeps
 *                    of 1 to 100 ms between tries): SQLite serializes writers, and the
 *                    figures show what that costs.
 *   RocksDB          one DB shared by the threads, WriteOptions sync = true, one Put.
 *   LMDB             one environment with the default durable commits (no MDB_NOSYNC):
 *                    one write transaction with one MDB_APPEND put, then commit. LMDB
 *                    serializes write transactions.
 * Opening and closing are outside the clock; the threads start together once every
 * thread has opened what it needs. A call's latency is clock_gettime around it. The
 * records/s is the records acknowledged within the cell's wall time over that time;
 * each thread then finishes the call in flight, whose latency counts too. Only SQLite
 * can keep a writer waiting far past the end (a writer that keeps losing the lock):
 * one still waiting max(cell time, 0.5 s) after the end gives up, is counted as
 * abandoned, and the time it waited counts as its latency (a lower bound). After the
 * run a cheap check confirms that every acknowledged record is there.
 */
#include "bench.h"

#include <alog.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *const dur_names[DUR_NSYS] = {"alog",    "write+fdatasync", "group fdatasync",
                                                "SQLite",  "RocksDB",         "LMDB"};
static const char *const dur_json_names[DUR_NSYS] = {"alog",   "write_fdatasync",
                                                     "group_fdatasync", "sqlite",
                                                     "rocksdb", "lmdb"};

const char *durable_sys_name(int sys) { return dur_names[sys]; }
const char *durable_sys_json(int sys) { return dur_json_names[sys]; }

/* How long past the end of the cell a SQLite writer keeps waiting for the lock: the
 * cell time, at least this. Before the clock starts (opening the connections), a
 * writer waits up to SQ_OPEN_WAIT_SECS. */
#define SQ_DRAIN_MIN_SECS 0.5
#define SQ_OPEN_WAIT_SECS 30.0

typedef struct dur_shared dur_shared;
typedef struct dur_thread dur_thread;

typedef struct dur_ops {
    int (*open)(dur_shared *s);         /* before the threads start; 0 = ok */
    int (*thread_open)(dur_thread *t);  /* in each thread before the clock; may be NULL */
    /* One durable record: 0 = acknowledged, 1 = abandoned (SQLite), -1 = failed. */
    int (*append)(dur_thread *t, const uint8_t *value);
    void (*thread_close)(dur_thread *t); /* may be NULL */
    int (*check)(dur_shared *s, uint64_t records); /* all acknowledged records there? */
    void (*close)(dur_shared *s);
} dur_ops;

struct dur_shared {
    const dur_ops *ops;
    const char *dir;
    int threads;
    char path[4096]; /* the system's file or directory inside dir */
    char msg[512];   /* what failed outside the threads */
    double secs;     /* wall time of the cell */
    const uint8_t *pool;
    size_t pool_len;

    /* The start gate: every thread opens, counts itself ready and waits for go. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready, go;
    double t0;
    atomic_int stop; /* a thread failed: the others stop after their current call */

    /* The systems' handles. */
    alog *log;
    int fd;
    rocksdb_options_t *ro;
    rocksdb_writeoptions_t *rwo;
    rocksdb_t *rdb;
    MDB_env *env;
    MDB_dbi dbi;
    atomic_uint_fast64_t next_key; /* RocksDB and LMDB keys, write+fdatasync positions:
                                    * the record's number */

    /* group fdatasync: the writers' buffer (two, swapped by the flusher), under gf_mu. */
    pthread_mutex_t gf_mu;
    pthread_cond_t gf_cv; /* the flusher sleeps on it while nothing is queued */
    pthread_t gf_thread;
    int gf_started, gf_quit, gf_idle;
    uint8_t *gf_buf[2];
    int gf_cur, gf_queued;
    size_t gf_len;
    int gf_next;          /* the round that takes what is queued now */
    atomic_int gf_queued_n; /* gf_queued, for the flusher's gather to read without the lock */
    atomic_int gf_done;   /* futex word: the last round written and synced (or failed) */
    atomic_int gf_sleepers;
    atomic_int gf_failed;
    char gf_msg[256];     /* why, set before gf_done moves */
    uint64_t gf_pos;      /* bytes written: the flusher's, read after it stopped */
};

struct dur_thread {
    dur_shared *s;
    int id;
    pthread_t tid;
    double *lat; /* microseconds per call */
    size_t n, cap;
    uint64_t in_window; /* calls acknowledged before the end of the cell */
    uint64_t acked;     /* calls acknowledged in all */
    int abandoned;      /* its last call gave up (SQLite) */
    int failed;
    char msg[512];
    sqlite3 *db;
    sqlite3_stmt *ins;
    double open_give_up; /* SQLite: the busy limit while opening, before the clock */
};

__attribute__((format(printf, 3, 4))) static int set_msg(char *msg, size_t cap,
                                                         const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return -1;
}
#define SFAIL(s, ...) set_msg((s)->msg, sizeof (s)->msg, __VA_ARGS__)
#define TFAIL(t, ...) set_msg((t)->msg, sizeof (t)->msg, __VA_ARGS__)

/* ---- alog ---- */

static int al_open(dur_shared *s) {
    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.compression = ALOG_COMPRESSION_NONE;
    snprintf(s->path, sizeof s->path, "%s/log", s->dir);
    alog_err e = alog_open(s->path, &o, &s->log);
    if (e != ALOG_OK)
        return SFAIL(s, "alog_open %s: %s: %s", s->path, alog_err_name(e), alog_last_error());
    return 0;
}

static int al_append(dur_thread *t, const uint8_t *value) {
    alog_record rec = {0};
    rec.timestamp = ALOG_TIMESTAMP_NOW;
    rec.value = value;
    rec.value_len = DUR_VLEN;
    int64_t off;
    alog_err e = alog_append_ex(t->s->log, &rec, 1, ALOG_APPEND_DURABLE, &off);
    if (e != ALOG_OK)
        return TFAIL(t, "alog_append_ex: %s: %s", alog_err_name(e), alog_last_error());
    return 0;
}

static int al_check(dur_shared *s, uint64_t records) {
    int64_t next = alog_next_offset(s->log);
    if (next != (int64_t)records)
        return SFAIL(s, "alog: next offset %" PRId64 " after %" PRIu64 " acknowledged appends",
                     next, records);
    if (alog_durable_offset(s->log) < (int64_t)records)
        return SFAIL(s, "alog: durable offset %" PRId64 " below %" PRIu64
                        " acknowledged appends", alog_durable_offset(s->log), records);
    return 0;
}

static void al_close(dur_shared *s) {
    alog_err e = alog_close(s->log);
    s->log = NULL;
    if (e != ALOG_OK) fail("alog_close: %s: %s", alog_err_name(e), alog_last_error());
}

/* ---- write + fdatasync ---- */

/* Creates dir/name laid out beforehand: zero-filled and fdatasynced. */
static int wf_layout(dur_shared *s, const char *name) {
    snprintf(s->path, sizeof s->path, "%s/%s", s->dir, name);
    s->fd = open(s->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0) return SFAIL(s, "open %s: %s", s->path, strerror(errno));
    /* Room for 600k records per second of the cell (more than any thread count
     * reaches here); past it the file would just grow. */
    uint64_t layout = (uint64_t)(s->secs * 600000.0) * DUR_VLEN + (1u << 20);
    static const uint8_t zeros[1 << 16];
    for (uint64_t off = 0; off < layout; off += sizeof zeros)
        if (pwrite(s->fd, zeros, sizeof zeros, (off_t)off) != (ssize_t)sizeof zeros)
            return SFAIL(s, "laying out %s: %s", s->path, strerror(errno));
    if (fdatasync(s->fd) != 0) return SFAIL(s, "fdatasync %s: %s", s->path, strerror(errno));
    return 0;
}

static int wf_open(dur_shared *s) {
    if (wf_layout(s, "records.bin") != 0) return -1;
    atomic_store(&s->next_key, 0);
    return 0;
}

static int wf_append(dur_thread *t, const uint8_t *value) {
    uint64_t at = atomic_fetch_add(&t->s->next_key, 1) * DUR_VLEN;
    ssize_t w;
    do
        w = pwrite(t->s->fd, value, DUR_VLEN, (off_t)at); /* one write, one record */
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)DUR_VLEN)
        return TFAIL(t, "write %s: %s", t->s->path, w < 0 ? strerror(errno) : "short write");
    if (fdatasync(t->s->fd) != 0) return TFAIL(t, "fdatasync %s: %s", t->s->path, strerror(errno));
    return 0;
}

static int wf_check(dur_shared *s, uint64_t records) {
    /* Every call that took a position wrote and synced its record (or failed). */
    uint64_t n = atomic_load(&s->next_key);
    if (n != records)
        return SFAIL(s, "%s: %" PRIu64 " positions handed out for %" PRIu64 " records",
                     s->path, n, records);
    return 0;
}

static void wf_close(dur_shared *s) {
    close(s->fd);
    s->fd = -1;
}

/* ---- group fdatasync ---- */

#define GF_GATHER_US 20
#define GF_SPINS 64

static int64_t gf_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Takes the queued records (waiting up to GF_GATHER_US for every writer to be among
 * them), writes and syncs them, publishes the round and wakes its writers. */
static void *gf_flusher(void *arg) {
    dur_shared *s = arg;
    for (;;) {
        int spins = 0;
        pthread_mutex_lock(&s->gf_mu);
        while (!s->gf_queued && !s->gf_quit) {
            if (spins++ < GF_SPINS) {
                pthread_mutex_unlock(&s->gf_mu);
                sched_yield();
                pthread_mutex_lock(&s->gf_mu);
                continue;
            }
            s->gf_idle = 1;
            pthread_cond_wait(&s->gf_cv, &s->gf_mu);
            s->gf_idle = 0;
        }
        if (!s->gf_queued) { /* quit, and every writer has had its answer */
            pthread_mutex_unlock(&s->gf_mu);
            return NULL;
        }
        pthread_mutex_unlock(&s->gf_mu);
        for (int64_t t0 = gf_ns();
             atomic_load_explicit(&s->gf_queued_n, memory_order_relaxed) < s->threads &&
             gf_ns() - t0 < GF_GATHER_US * 1000;)
            sched_yield();
        pthread_mutex_lock(&s->gf_mu);
        const uint8_t *buf = s->gf_buf[s->gf_cur];
        size_t len = s->gf_len;
        int round = s->gf_next++;
        s->gf_cur ^= 1;
        s->gf_len = 0;
        s->gf_queued = 0;
        atomic_store_explicit(&s->gf_queued_n, 0, memory_order_relaxed);
        pthread_mutex_unlock(&s->gf_mu);
        size_t done = 0;
        while (!atomic_load(&s->gf_failed) && done < len) {
            ssize_t w = pwrite(s->fd, buf + done, len - done, (off_t)(s->gf_pos + done));
            if (w > 0) {
                done += (size_t)w;
            } else if (w == 0 || errno != EINTR) {
                set_msg(s->gf_msg, sizeof s->gf_msg, "write %s: %s", s->path,
                        w ? strerror(errno) : "no progress");
                atomic_store(&s->gf_failed, 1);
            }
        }
        s->gf_pos += len;
        if (!atomic_load(&s->gf_failed) && fdatasync(s->fd) != 0) {
            set_msg(s->gf_msg, sizeof s->gf_msg, "fdatasync %s: %s", s->path, strerror(errno));
            atomic_store(&s->gf_failed, 1);
        }
        /* Published, then the sleepers counted (both seq_cst): a writer that counted
         * itself before this load is woken; one after it sees the round done. */
        atomic_store(&s->gf_done, round);
        if (atomic_load(&s->gf_sleepers))
            syscall(SYS_futex, &s->gf_done, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
    }
}

static int gf_open(dur_shared *s) {
    if (wf_layout(s, "group.bin") != 0) return -1;
    s->gf_buf[0] = malloc((size_t)s->threads * DUR_VLEN);
    s->gf_buf[1] = malloc((size_t)s->threads * DUR_VLEN);
    if (!s->gf_buf[0] || !s->gf_buf[1]) return SFAIL(s, "out of memory");
    s->gf_next = 1;
    int rc = pthread_create(&s->gf_thread, NULL, gf_flusher, s);
    if (rc != 0) return SFAIL(s, "pthread_create: %s", strerror(rc));
    s->gf_started = 1;
    return 0;
}

static int gf_append(dur_thread *t, const uint8_t *value) {
    dur_shared *s = t->s;
    pthread_mutex_lock(&s->gf_mu);
    memcpy(s->gf_buf[s->gf_cur] + s->gf_len, value, DUR_VLEN);
    s->gf_len += DUR_VLEN;
    s->gf_queued++;
    atomic_store_explicit(&s->gf_queued_n, s->gf_queued, memory_order_relaxed);
    int mine = s->gf_next;
    if (s->gf_idle) pthread_cond_signal(&s->gf_cv);
    pthread_mutex_unlock(&s->gf_mu);
    for (int spins = 0;;) {
        int d = atomic_load(&s->gf_done);
        if (d - mine >= 0) break;
        if (spins++ < GF_SPINS) {
            sched_yield();
            continue;
        }
        atomic_fetch_add(&s->gf_sleepers, 1);
        d = atomic_load(&s->gf_done);
        if (d - mine < 0) syscall(SYS_futex, &s->gf_done, FUTEX_WAIT_PRIVATE, d, NULL, NULL, 0);
        atomic_fetch_sub(&s->gf_sleepers, 1);
    }
    if (atomic_load(&s->gf_failed)) return TFAIL(t, "%s", s->gf_msg);
    return 0;
}

static int gf_check(dur_shared *s, uint64_t records) {
    /* Every acknowledged record was in a round written before its answer; the writers
     * have all returned, so nothing else was queued. */
    if (s->gf_pos != records * DUR_VLEN)
        return SFAIL(s, "%s: %" PRIu64 " bytes written for %" PRIu64 " records", s->path,
                     s->gf_pos, records);
    return 0;
}

static void gf_close(dur_shared *s) {
    if (s->gf_started) {
        pthread_mutex_lock(&s->gf_mu);
        s->gf_quit = 1;
        pthread_cond_signal(&s->gf_cv);
        pthread_mutex_unlock(&s->gf_mu);
        pthread_join(s->gf_thread, NULL);
        s->gf_started = 0;
    }
    free(s->gf_buf[0]);
    free(s->gf_buf[1]);
    s->gf_buf[0] = s->gf_buf[1] = NULL;
    wf_close(s);
}

/* ---- SQLite ---- */

/* When a writer stops waiting for the lock. t0 is set (under the gate's mutex) only
 * once every thread has opened, so a thread still opening reads 0 here. */
static double sq_give_up(const dur_thread *t) {
    const dur_shared *s = t->s;
    if (s->t0 == 0) return t->open_give_up;
    return s->t0 + s->secs + (s->secs > SQ_DRAIN_MIN_SECS ? s->secs : SQ_DRAIN_MIN_SECS);
}

static int sq_exec_msg(sqlite3 *db, const char *sql, char *msg, size_t cap) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        set_msg(msg, cap, "sqlite: %s: %s", sql, err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

static int sq_open(dur_shared *s) {
    snprintf(s->path, sizeof s->path, "%s/log.db", s->dir);
    sqlite3 *db = NULL;
    int rc = sqlite3_open(s->path, &db);
    if (rc != SQLITE_OK) {
        SFAIL(s, "sqlite: open %s: %s", s->path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    /* WAL is a property of the database file: set once, every connection uses it. */
    rc = sq_exec_msg(db, "PRAGMA journal_mode=WAL", s->msg, sizeof s->msg);
    if (rc == 0)
        rc = sq_exec_msg(db,
                         "CREATE TABLE log(offset INTEGER PRIMARY KEY, ts INTEGER, key BLOB, "
                         "value BLOB)",
                         s->msg, sizeof s->msg);
    sqlite3_close(db);
    return rc;
}

/* SQLite's own busy_timeout handler (sqliteDefaultBusyCallback), without the total
 * limit: sleep 1, 2, 5, ... 100 ms between tries of the lock; give up only once the
 * cell has ended and the drain time passed too. */
static int sq_busy(void *arg, int count) {
    static const int delays_ms[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
    const int ndelays = (int)(sizeof delays_ms / sizeof delays_ms[0]);
    const dur_thread *t = arg;
    if (now_sec() >= sq_give_up(t)) return 0;
    sqlite3_sleep(count < ndelays ? delays_ms[count] : delays_ms[ndelays - 1]);
    return 1;
}

static int sq_thread_open(dur_thread *t) {
    t->open_give_up = now_sec() + SQ_OPEN_WAIT_SECS;
    if (sqlite3_open_v2(t->s->path, &t->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        return TFAIL(t, "sqlite: open %s: %s", t->s->path,
                     t->db ? sqlite3_errmsg(t->db) : "out of memory");
    sqlite3_busy_handler(t->db, sq_busy, t);
    if (sq_exec_msg(t->db, "PRAGMA synchronous=FULL", t->msg, sizeof t->msg)) return -1;
    /* offset NULL: SQLite gives the next rowid, the log's next offset. */
    if (sqlite3_prepare_v2(t->db, "INSERT INTO log(offset, ts, key, value) VALUES(NULL,?1,NULL,?2)",
                           -1, &t->ins, NULL) != SQLITE_OK)
        return TFAIL(t, "sqlite: prepare: %s", sqlite3_errmsg(t->db));
    return 0;
}

static int sq_append(dur_thread *t, const uint8_t *value) {
    for (;;) {
        sqlite3_bind_int64(t->ins, 1, BENCH_T0 + (int64_t)t->n);
        sqlite3_bind_blob(t->ins, 2, value, DUR_VLEN, SQLITE_STATIC);
        int rc = sqlite3_step(t->ins);
        sqlite3_reset(t->ins);
        if (rc == SQLITE_DONE) return 0;
        if (rc != SQLITE_BUSY) return TFAIL(t, "sqlite: insert: %s", sqlite3_errmsg(t->db));
        if (now_sec() >= sq_give_up(t)) return 1; /* still no lock: abandoned */
        /* BUSY without the handler having run out (e.g. a stale snapshot): retry. */
    }
}

static void sq_thread_close(dur_thread *t) {
    sqlite3_finalize(t->ins);
    sqlite3_close(t->db);
    t->ins = NULL;
    t->db = NULL;
}

static int sq_check(dur_shared *s, uint64_t records) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT count(*) FROM log", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        SFAIL(s, "sqlite: count: %s", db ? sqlite3_errmsg(db) : "out of memory");
    } else if ((uint64_t)sqlite3_column_int64(st, 0) != records) {
        SFAIL(s, "sqlite: %lld rows after %" PRIu64 " acknowledged inserts",
              (long long)sqlite3_column_int64(st, 0), records);
    } else {
        rc = 0;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

static void sq_close(dur_shared *s) { (void)s; }

/* ---- RocksDB ---- */

static int rk_open(dur_shared *s) {
    char *err = NULL;
    snprintf(s->path, sizeof s->path, "%s/rocksdb", s->dir);
    s->ro = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(s->ro, 1);
    rocksdb_options_set_compression(s->ro, rocksdb_no_compression);
    s->rwo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->rwo, 1);
    rocksdb_writeoptions_disable_WAL(s->rwo, 0);
    s->rdb = rocksdb_open(s->ro, s->path, &err);
    if (!s->rdb) {
        SFAIL(s, "rocksdb: open %s: %s", s->path, err ? err : "?");
        rocksdb_free(err);
        return -1;
    }
    return 0;
}

static int rk_append(dur_thread *t, const uint8_t *value) {
    uint8_t kb[8];
    char *err = NULL;
    wl_key_be(atomic_fetch_add(&t->s->next_key, 1), kb);
    rocksdb_put(t->s->rdb, t->s->rwo, (const char *)kb, 8, (const char *)value, DUR_VLEN, &err);
    if (err) {
        TFAIL(t, "rocksdb: put: %s", err);
        rocksdb_free(err);
        return -1;
    }
    return 0;
}

static int rk_check(dur_shared *s, uint64_t records) {
    /* Every Put took one key; a failed Put fails the run, so the count is the keys. */
    if (atomic_load(&s->next_key) != records)
        return SFAIL(s, "rocksdb: %" PRIu64 " keys taken, %" PRIu64 " puts acknowledged",
                     (uint64_t)atomic_load(&s->next_key), records);
    return 0;
}

static void rk_close(dur_shared *s) {
    if (s->rdb) rocksdb_close(s->rdb);
    if (s->rwo) rocksdb_writeoptions_destroy(s->rwo);
    if (s->ro) rocksdb_options_destroy(s->ro);
    s->rdb = NULL;
    s->rwo = NULL;
    s->ro = NULL;
}

/* ---- LMDB ---- */

static int lm_open(dur_shared *s) {
    int rc;
    MDB_txn *txn = NULL;
    snprintf(s->path, sizeof s->path, "%s", s->dir);
    if ((rc = mdb_env_create(&s->env)) != 0) {
        s->env = NULL;
        return SFAIL(s, "lmdb: env_create: %s", mdb_strerror(rc));
    }
    if ((rc = mdb_env_set_mapsize(s->env, (size_t)4 << 30)) != 0 ||
        (rc = mdb_env_open(s->env, s->path, 0, 0644)) != 0)
        return SFAIL(s, "lmdb: env_open %s: %s", s->path, mdb_strerror(rc));
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, NULL, 0, &s->dbi)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        if (txn) mdb_txn_abort(txn);
        return SFAIL(s, "lmdb: dbi_open: %s", mdb_strerror(rc));
    }
    return 0;
}

static int lm_append(dur_thread *t, const uint8_t *value) {
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(t->s->env, NULL, 0, &txn);
    if (rc != 0) return TFAIL(t, "lmdb: txn_begin: %s", mdb_strerror(rc));
    /* Taken inside the write transaction, which LMDB serializes: keys come in order,
     * so MDB_APPEND holds. */
    uint8_t kb[8];
    wl_key_be(atomic_fetch_add(&t->s->next_key, 1), kb);
    MDB_val key = {8, kb}, val = {DUR_VLEN, (void *)value};
    rc = mdb_put(txn, t->s->dbi, &key, &val, MDB_APPEND);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return TFAIL(t, "lmdb: put: %s", mdb_strerror(rc));
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0) return TFAIL(t, "lmdb: commit: %s", mdb_strerror(rc));
    return 0;
}

static int lm_check(dur_shared *s, uint64_t records) {
    MDB_stat st;
    int rc = mdb_env_stat(s->env, &st);
    if (rc != 0) return SFAIL(s, "lmdb: env_stat: %s", mdb_strerror(rc));
    if ((uint64_t)st.ms_entries != records)
        return SFAIL(s, "lmdb: %zu entries after %" PRIu64 " acknowledged commits",
                     st.ms_entries, records);
    return 0;
}

static void lm_close(dur_shared *s) {
    if (s->env) mdb_env_close(s->env);
    s->env = NULL;
}

static const dur_ops dur_ops_of[DUR_NSYS] = {
    [DUR_ALOG] = {al_open, NULL, al_append, NULL, al_check, al_close},
    [DUR_FSYNC] = {wf_open, NULL, wf_append, NULL, wf_check, wf_close},
    [DUR_GROUP] = {gf_open, NULL, gf_append, NULL, gf_check, gf_close},
    [DUR_SQLITE] = {sq_open, sq_thread_open, sq_append, sq_thread_close, sq_check, sq_close},
    [DUR_ROCKSDB] = {rk_open, NULL, rk_append, NULL, rk_check, rk_close},
    [DUR_LMDB] = {lm_open, NULL, lm_append, NULL, lm_check, lm_close},
};

/* ---- the threads ---- */

/* The value of a thread's i-th record: 100 bytes of the pool, different per thread and
 * per record (the stride of wl_value). */
static const uint8_t *dur_value(const dur_shared *s, int id, uint64_t i) {
    uint64_t k = ((uint64_t)id << 40) + i;
    return s->pool + (size_t)((k * 4099u) % (uint64_t)(s->pool_len - DUR_VLEN));
}

static int lat_reserve(dur_thread *t) {
    if (t->n < t->cap) return 0;
    size_t cap = t->cap ? t->cap * 2 : 4096;
    double *p = realloc(t->lat, cap * sizeof *p);
    if (!p) return TFAIL(t, "out of memory for latency samples");
    t->lat = p;
    t->cap = cap;
    return 0;
}

static void *dur_thread_main(void *arg) {
    dur_thread *t = arg;
    dur_shared *s = t->s;
    if (s->ops->thread_open && s->ops->thread_open(t) != 0) t->failed = 1;
    if (lat_reserve(t) != 0) t->failed = 1;

    pthread_mutex_lock(&s->mu);
    s->ready++;
    pthread_cond_broadcast(&s->cv);
    while (!s->go) pthread_cond_wait(&s->cv, &s->mu);
    double deadline = s->t0 + s->secs;
    pthread_mutex_unlock(&s->mu);

    if (t->failed) atomic_store(&s->stop, 1);
    while (!t->failed && !atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        if (lat_reserve(t) != 0) {
            t->failed = 1;
            break;
        }
        const uint8_t *v = dur_value(s, t->id, t->n);
        double a = now_sec();
        int rc = s->ops->append(t, v);
        double b = now_sec();
        if (rc < 0) {
            t->failed = 1;
            break;
        }
        t->lat[t->n++] = (b - a) * 1e6;
        if (rc > 0) {
            t->abandoned = 1;
            break;
        }
        t->acked++;
        if (b <= deadline) t->in_window++;
        if (b >= deadline) break;
    }
    if (t->failed) atomic_store(&s->stop, 1);
    if (s->ops->thread_close) s->ops->thread_close(t);
    return NULL;
}

durable_result durable_run(int sys, int threads, double secs, const uint8_t *pool,
                           size_t pool_len, const char *dir) {
    durable_result res = {0};
    dur_shared *s = calloc(1, sizeof *s);
    dur_thread *th = calloc((size_t)threads, sizeof *th);
    if (!s || !th) {
        fail("out of memory");
        free(s);
        free(th);
        return res;
    }
    s->ops = &dur_ops_of[sys];
    s->dir = dir;
    s->threads = threads;
    s->secs = secs;
    s->pool = pool;
    s->pool_len = pool_len;
    s->fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->gf_mu, NULL);
    pthread_cond_init(&s->gf_cv, NULL);
    atomic_init(&s->stop, 0);
    atomic_init(&s->next_key, 0);
    const char *name = dur_names[sys];

    if (s->ops->open(s) != 0) {
        fail("%s: %s", name, s->msg);
        s->ops->close(s);
        goto out;
    }

    int started = 0;
    for (; started < threads; started++) {
        th[started].s = s;
        th[started].id = started;
        int rc = pthread_create(&th[started].tid, NULL, dur_thread_main, &th[started]);
        if (rc != 0) {
            fail("%s: pthread_create: %s", name, strerror(rc));
            atomic_store(&s->stop, 1);
            break;
        }
    }
    /* Everyone opened: start the clock and let them go. */
    pthread_mutex_lock(&s->mu);
    while (s->ready < started) pthread_cond_wait(&s->cv, &s->mu);
    s->t0 = now_sec();
    s->go = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < started; i++) pthread_join(th[i].tid, NULL);

    int failed = started < threads;
    uint64_t acked = 0, in_window = 0, samples = 0, abandoned = 0;
    for (int i = 0; i < started; i++) {
        if (th[i].failed && !failed) fail("%s, %d threads: %s", name, threads, th[i].msg);
        failed |= th[i].failed;
        acked += th[i].acked;
        in_window += th[i].in_window;
        samples += th[i].n;
        abandoned += (uint64_t)th[i].abandoned;
    }
    if (!failed && s->ops->check(s, acked) != 0) {
        fail("%s, %d threads: %s", name, threads, s->msg);
        failed = 1;
    }
    s->ops->close(s);
    if (failed || samples == 0) {
        if (!failed) fail("%s, %d threads: no call returned", name, threads);
        goto out;
    }

    double *all = malloc(samples * sizeof *all);
    if (!all) {
        fail("out of memory for %" PRIu64 " latency samples", samples);
        goto out;
    }
    size_t k = 0;
    for (int i = 0; i < started; i++) {
        memcpy(all + k, th[i].lat, th[i].n * sizeof *all);
        k += th[i].n;
    }
    sort_doubles(all, k);
    res.r.ok = 1;
    res.r.secs = s->secs;
    res.r.records = in_window;
    res.r.payload_bytes = in_window * DUR_VLEN;
    res.abandoned = abandoned;
    res.r.disk_bytes = path_bytes(dir);
    res.p50_us = percentile_sorted(all, k, 50);
    res.p99_us = percentile_sorted(all, k, 99);
    res.p999_us = percentile_sorted(all, k, 99.9);
    res.max_us = all[k - 1];
    free(all);
out:
    for (int i = 0; i < threads; i++) free(th[i].lat);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->gf_mu);
    pthread_cond_destroy(&s->gf_cv);
    free(th);
    free(s);
    return res;
}
