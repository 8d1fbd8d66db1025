/*
 * bench.h -- what the files of alog-bench share.
 *
 * alog-bench appends the same records to alog, to a plain write() loop that writes
 * exactly the bytes alog wrote, and to three embedded peers (SQLite, LMDB, RocksDB),
 * interleaved run by run, and reports medians and ratios (bench_main.c). The files:
 *   bench_util.c   clock, random bytes, the record set, directories, progress, stats
 *   bench_alog.c   alog appends, the write() loop on alog's bytes, scans, time index
 *   bench_peers.c  SQLite, LMDB and RocksDB doing the same appends
 *   bench_durable.c  durable appends (acknowledged only once fsynced) from 1 to 64
 *                    writer threads: alog, write+fdatasync, group fdatasync (a
 *                    minimal group commit), SQLite, RocksDB, LMDB
 *
 * A workload is n records with a null key, no headers, a value of vlen bytes taken from
 * a pool of random (incompressible) bytes at a position that depends on the record
 * number, and timestamp BENCH_T0 + i, appended `chunk` records per call (1 or 100).
 * Every system gets byte-for-byte the same keys, values and timestamps.
 */
#ifndef ALOG_BENCH_H
#define ALOG_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* 2023-11-14T22:13:20Z in ms: the timestamp of record 0 of every workload. */
#define BENCH_T0 INT64_C(1700000000000)

typedef struct workload {
    const char *name; /* "100 B x1", ... */
    size_t vlen;      /* value bytes per record */
    size_t chunk;     /* records per append call / transaction / write batch */
    uint64_t n;       /* records per run */
    const uint8_t *pool;
    size_t pool_len;
} workload;

/* The value of record i: vlen bytes of the pool. The stride spreads records over the
 * pool so that consecutive values differ (nothing a codec or a dedup could exploit). */
static inline const uint8_t *wl_value(const workload *w, uint64_t i) {
    return w->pool + (size_t)((i * 4099u) % (uint64_t)(w->pool_len - w->vlen));
}
static inline int64_t wl_ts(uint64_t i) { return BENCH_T0 + (int64_t)i; }
/* The 8-byte big-endian key the ordered peers use for record i (its offset). */
static inline void wl_key_be(uint64_t i, uint8_t out[8]) {
    for (int b = 7; b >= 0; b--) {
        out[b] = (uint8_t)(i & 0xff);
        i >>= 8;
    }
}

/* The outcome of one timed run. */
typedef struct run_result {
    int ok;                 /* 0: the run failed (message already printed) */
    double secs;            /* wall time of the timed part */
    uint64_t records;       /* records appended or read */
    uint64_t payload_bytes; /* key + value bytes of those records */
    uint64_t disk_bytes;    /* bytes in the system's files right after the run */
} run_result;

/* ---- bench_util.c ---- */
double now_sec(void);
/* Fills buf with deterministic pseudo-random bytes. */
void fill_random(uint8_t *buf, size_t len, uint64_t seed);
uint64_t rng_next(uint64_t *state);
/* Removes path and everything under it; missing is fine. 0 on success. */
int rm_rf(const char *path);
/* Creates dir (and parents). 0 on success. */
int mkdir_p(const char *dir);
/* Bytes of the regular files under path: per file min(size, allocated), so that sparse
 * maps and preallocated-but-unwritten space both count what really holds data. */
uint64_t path_bytes(const char *path);
/* sync() and a pause, so that writeback of the previous run disturbs the next less. */
void settle(unsigned pause_ms);
/* Progress line on stderr, only when stderr is a terminal and progress is enabled. */
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void progress_enable(int on);
void progress_done(void);
/* Median of n values (sorts a copy); NAN if n == 0. */
double median(const double *v, size_t n);
/* The p-th percentile (0..100, nearest rank) of v, which must be sorted. */
double percentile_sorted(double *v, size_t n, double p);
void sort_doubles(double *v, size_t n);
/* Prints a failure on stderr (prefixed "alog-bench: "). Always returns 0 for `return`. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- bench_alog.c ---- */
/* Appends the workload to a new log in dir (fsync never, no compression). */
run_result alog_append_run(const workload *w, const char *dir);
/* Reads the whole log in dir with a cursor (verify_reads = 1), checking offsets,
 * timestamps and a sample of values against the workload. */
run_result alog_scan_run(const workload *w, const char *dir);

/* alog's segment files loaded into memory with the position and length of each batch,
 * so that the write loop can replay exactly those bytes with the same chunking. */
typedef struct alog_bytes {
    uint8_t *data;      /* all .log files, concatenated in offset order */
    size_t len;
    uint64_t *batch_off; /* start of batch k in data */
    uint32_t *batch_len; /* its total length (batchLength + 12) */
    size_t nbatches;
} alog_bytes;
int alog_bytes_load(const char *dir, alog_bytes *out);
void alog_bytes_free(alog_bytes *b);
/* write() of each batch in turn to a fresh file at path. */
run_result writeloop_run(const alog_bytes *b, uint64_t records, uint64_t payload,
                         const char *path);
/* Reads the file at path back with read() in 1 MiB chunks. */
run_result readback_run(const char *path, uint64_t records, uint64_t payload);

/* Time-index seek latency. Builds a log of `records` 100-byte records (timestamps
 * BENCH_T0 + i) in dir once, then each call of timeindex_measure does `lookups`
 * alog_offset_for_time calls at random timestamps and as many alog_cursor_open + first
 * alog_cursor_next at the found offsets, each timed on its own. */
typedef struct ti_result {
    int ok;
    double find_p50_us, find_p99_us, find_max_us;
    double open_p50_us, open_p99_us, open_max_us;
} ti_result;
int timeindex_build(const char *dir, const uint8_t *pool, size_t pool_len, uint64_t records);
ti_result timeindex_measure(const char *dir, uint64_t records, uint64_t lookups, uint64_t seed);

/* ---- bench_peers.c ---- */
run_result sqlite_run(const workload *w, const char *dir);
run_result lmdb_run(const workload *w, const char *dir);
run_result rocksdb_run(const workload *w, const char *dir);

/* ---- bench_durable.c ---- */
/* Durable appends: T threads each append DUR_VLEN-byte records, one per call, each
 * call returning only once its record is durable, for a fixed wall time. */
#define DUR_VLEN 100
enum { DUR_ALOG, DUR_FSYNC, DUR_GROUP, DUR_SQLITE, DUR_ROCKSDB, DUR_LMDB, DUR_NSYS };
typedef struct durable_result {
    run_result r; /* ok, secs (the cell's wall time), records acknowledged within it */
    double p50_us, p99_us, p999_us, max_us; /* latency of one call, all threads' calls */
    uint64_t abandoned; /* calls that gave up waiting for a lock (SQLite only) */
} durable_result;
/* "alog", "write+fdatasync", "SQLite", ... and the JSON names ("write_fdatasync"). */
const char *durable_sys_name(int sys);
const char *durable_sys_json(int sys);
/* One cell: system sys (DUR_*), `threads` writers for `secs` seconds, in dir (which
 * must exist and be empty; the system's files go inside it). Failures are printed and
 * give ok = 0. */
durable_result durable_run(int sys, int threads, double secs, const uint8_t *pool,
                           size_t pool_len, const char *dir);

#endif
