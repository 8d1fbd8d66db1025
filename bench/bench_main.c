/*
 * bench_main.c -- alog-bench: options, the interleaved schedule, medians, the table.
 *
 * Schedule. These machines are noisy (docs: /work/shared/ANCHORS.md): the same run can
 * differ 2-10x from one minute to the next. So every figure is measured `runs` times,
 * and each run goes through every workload and, within a workload, through every
 * system in turn (alog, write loop, SQLite, LMDB, RocksDB; then the next workload; then
 * the next run). Before each timed part the previous data is deleted, then sync() and
 * a short pause let writeback finish. The table shows the median of the runs; a ratio
 * is the median of the per-run ratios (each ratio compares two systems measured one
 * right after the other), which cancels drift better than a ratio of medians.
 *
 * The write loop replays exactly the bytes alog wrote, batch by batch, one write() per
 * batch: the same chunking as alog's appends. alog/write-loop is therefore the share of
 * the plain-file speed that alog keeps on the same bytes.
 *
 * Durable appends (bench_durable.c) are the last part of every run: for each thread
 * count (1, 4, 16, 64) each system in turn (alog, write+fdatasync, group fdatasync,
 * SQLite, RocksDB, LMDB) gets a fresh directory and a fixed wall time in which its threads append
 * 100-byte records one per call, each call fsynced before it returns. The table shows
 * the medians over runs of records/s and of each run's p50/p99/p999 call latency; the
 * ratios are medians of per-run ratios, as above. "One fsync" is the median latency
 * of the 1-thread write+fdatasync of the same run (a file laid out beforehand, so an
 * fdatasync writes data only: the device's limit per fsync).
 */
#include "bench.h"

#include <alog.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

enum { SYS_ALOG, SYS_WLOOP, SYS_SQLITE, SYS_LMDB, SYS_ROCKSDB, NSYS };
static const char *const sys_name[NSYS] = {"alog", "write loop", "SQLite", "LMDB", "RocksDB"};
static const char *const sys_ratio_name[NSYS] = {"", "write-loop", "SQLite", "LMDB", "RocksDB"};
static const char *const sys_json[NSYS] = {"alog", "write_loop", "sqlite", "lmdb", "rocksdb"};

enum { NCASES = 4, MAXRUNS = 15, NDT = 4 };
/* Writer threads of the durable-append cells; the goal compares the last with 1. */
static const int dur_threads[NDT] = {1, 4, 16, 64};
enum { SCAN_ALOG, SCAN_READ, NSCAN };

typedef struct config {
    const char *dir;
    int quick, json, runs, peers, timeindex;
    int cases;   /* the append/scan/time-index sections (off with --durable-only) */
    int durable; /* the durable-append section (off with --no-durable) */
    unsigned pause_ms;
    double scale;
    double durable_secs; /* wall time of one durable cell (one system, one T) */
    uint64_t n[NCASES];
    uint64_t ti_records, ti_lookups;
} config;

typedef struct results {
    run_result app[NCASES][NSYS][MAXRUNS];
    run_result scan[NCASES][NSCAN][MAXRUNS];
    ti_result ti[MAXRUNS];
    uint64_t ti_records, ti_lookups;
    int ti_done;
    durable_result dur[NDT][DUR_NSYS][MAXRUNS];
    double wall_secs;
} results;

static const struct {
    const char *name;
    size_t vlen, chunk;
} cases[NCASES] = {
    {"100 B x100", 100, 100},
    {"1 KiB x100", 1024, 100},
    {"100 B x1", 100, 1},
    {"1 KiB x1", 1024, 1},
};

static void usage(FILE *f) {
    fputs("usage: alog-bench [--quick] [--json] [--runs N] [--dir DIR] [--scale F]\n"
          "                  [--pause-ms MS] [--no-peers] [--no-timeindex]\n"
          "                  [--no-durable | --durable-only] [--durable-secs S] [--help]\n"
          "\n"
          "Appends the same records to alog, to a plain write() loop of exactly alog's\n"
          "bytes, to SQLite, LMDB and RocksDB (fsync never everywhere, no compression),\n"
          "scans the log, and times time-index seeks. Then durable appends: 1, 4, 16 and\n"
          "64 threads appending 100-byte records, each fsynced before the call returns,\n"
          "to alog, write()+fdatasync(), a minimal shared-buffer group commit (group\n"
          "fdatasync), SQLite, RocksDB and LMDB, with records/s and p50/p99/p999\n"
          "latency. Prints a table of medians and of alog's ratio to each of the others.\n"
          "\n"
          "  --quick         small sizes, 2 runs: a smoke test, not a measurement\n"
          "  --json          machine-readable output instead of the table\n"
          "  --runs N        runs per figure, interleaved (default 3, at most 15)\n"
          "  --dir DIR       where the data goes (default $ALOG_BENCH_DIR, else\n"
          "                  ./build/bench-data); only alog-bench's own subdirectories\n"
          "                  of DIR are created and deleted\n"
          "  --scale F       multiply every record count, and the time of each durable\n"
          "                  cell, by F\n"
          "  --pause-ms MS   pause after the sync() before each timed part (default 300)\n"
          "  --no-peers      alog and the plain-file baselines only (write loop,\n"
          "                  write+fdatasync), for profiling\n"
          "  --no-timeindex  skip the time-index seek measurement\n"
          "  --no-durable    skip the durable appends\n"
          "  --durable-only  only the durable appends\n"
          "  --durable-secs S  wall time of each durable cell, one system and one thread\n"
          "                  count (default 2, --quick 0.3, times --scale; at least 0.05)\n"
          "  --help          this text\n"
          "\n"
          "Progress goes to stderr when it is a terminal.\n",
          f);
}

static int parse_args(int argc, char **argv, config *c) {
    memset(c, 0, sizeof *c);
    c->runs = 0;
    c->peers = 1;
    c->timeindex = 1;
    c->cases = 1;
    c->durable = 1;
    double durable_secs = 0;
    c->pause_ms = 300;
    c->scale = 1.0;
    c->dir = getenv("ALOG_BENCH_DIR");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--quick")) {
            c->quick = 1;
        } else if (!strcmp(a, "--json")) {
            c->json = 1;
        } else if (!strcmp(a, "--no-peers")) {
            c->peers = 0;
        } else if (!strcmp(a, "--no-timeindex")) {
            c->timeindex = 0;
        } else if (!strcmp(a, "--no-durable")) {
            c->durable = 0;
        } else if (!strcmp(a, "--durable-only")) {
            c->cases = 0;
        } else if (!strcmp(a, "--durable-secs") && next) {
            durable_secs = atof(next);
            i++;
            if (!(durable_secs > 0)) return fail("--durable-secs must be > 0"), -1;
        } else if (!strcmp(a, "--runs") && next) {
            c->runs = atoi(next);
            i++;
            if (c->runs < 1 || c->runs > MAXRUNS) return fail("--runs must be 1..%d", MAXRUNS), -1;
        } else if (!strcmp(a, "--dir") && next) {
            c->dir = next;
            i++;
        } else if (!strcmp(a, "--scale") && next) {
            c->scale = atof(next);
            i++;
            if (!(c->scale > 0)) return fail("--scale must be > 0"), -1;
        } else if (!strcmp(a, "--pause-ms") && next) {
            c->pause_ms = (unsigned)atoi(next);
            i++;
        } else {
            fail("unknown or incomplete option: %s", a);
            usage(stderr);
            return -1;
        }
    }
    if (!c->dir || !*c->dir) c->dir = "build/bench-data";
    if (!c->cases && !c->durable)
        return fail("--durable-only with --no-durable leaves nothing to run"), -1;
    if (!c->cases) c->timeindex = 0;
    /* 24 durable cells per run (6 systems x 4 thread counts), each plus a sync, the
     * pause and opening/closing: about 60 s per run at 2 s per cell (the other parts
     * of a run take about 30 s). */
    c->durable_secs = durable_secs > 0 ? durable_secs : (c->quick ? 0.3 : 2.0) * c->scale;
    if (c->durable_secs < 0.05) c->durable_secs = 0.05;
    /* Record counts: the batch cases write ~250 MB of payload per alog run; the
     * one-record-per-call cases fewer records, since the per-record peers are slow.
     * Every system in a case gets the same count, so rates compare directly. */
    static const uint64_t full[NCASES] = {2500000, 250000, 500000, 150000};
    static const uint64_t quick[NCASES] = {50000, 10000, 20000, 5000};
    for (int k = 0; k < NCASES; k++) {
        double n = (double)(c->quick ? quick[k] : full[k]) * c->scale;
        c->n[k] = n < 100 ? 100 : (uint64_t)n;
    }
    c->ti_records = (uint64_t)((c->quick ? 200000 : 4000000) * c->scale);
    if (c->ti_records < 1000) c->ti_records = 1000;
    c->ti_lookups = c->quick ? 2000 : 20000;
    if (c->runs == 0) c->runs = c->quick ? 2 : 3;
    return 0;
}

/* ---- the schedule ---- */

static void path_join(char *out, size_t cap, const char *dir, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

static void run_case(const config *c, results *res, const uint8_t *pool, size_t pool_len,
                     int k, int run) {
    char adir[4096], wpath[4096], pdir[4096];
    workload w = {cases[k].name, cases[k].vlen, cases[k].chunk, c->n[k], pool, pool_len};
    path_join(adir, sizeof adir, c->dir, "alog");
    path_join(wpath, sizeof wpath, c->dir, "writeloop.bin");

    /* alog, then its scan, then the write loop on its bytes and the read() back. */
    rm_rf(adir);
    rm_rf(wpath);
    settle(c->pause_ms);
    progress("[run %d/%d] %s: alog appends", run + 1, c->runs, w.name);
    res->app[k][SYS_ALOG][run] = alog_append_run(&w, adir);
    if (res->app[k][SYS_ALOG][run].ok) {
        settle(c->pause_ms);
        progress("[run %d/%d] %s: alog scan", run + 1, c->runs, w.name);
        res->scan[k][SCAN_ALOG][run] = alog_scan_run(&w, adir);
        alog_bytes b;
        if (alog_bytes_load(adir, &b) == 0) {
            uint64_t payload = res->app[k][SYS_ALOG][run].payload_bytes;
            /* The write loop starts, as alog did, with the previous files deleted: on a
             * VM, page cache that was just freed is far cheaper to fill than memory never
             * touched since boot, and keeping alog's files cached while the loop runs
             * made the "limit" 2-5x slower than alog itself. Every system (the peers too)
             * starts from the same state: its predecessor's files gone, dirty data synced. */
            rm_rf(adir);
            settle(c->pause_ms);
            progress("[run %d/%d] %s: write loop", run + 1, c->runs, w.name);
            res->app[k][SYS_WLOOP][run] = writeloop_run(&b, w.n, payload, wpath);
            alog_bytes_free(&b);
            if (res->app[k][SYS_WLOOP][run].ok) {
                progress("[run %d/%d] %s: read() back", run + 1, c->runs, w.name);
                res->scan[k][SCAN_READ][run] = readback_run(wpath, w.n, payload);
            }
        }
    }
    rm_rf(adir);
    rm_rf(wpath);
    if (!c->peers) return;

    static const char *const sub[NSYS] = {NULL, NULL, "sqlite", "lmdb", "rocksdb"};
    for (int s = SYS_SQLITE; s < NSYS; s++) {
        path_join(pdir, sizeof pdir, c->dir, sub[s]);
        rm_rf(pdir);
        if (mkdir_p(pdir) != 0) {
            fail("cannot create %s: %s", pdir, strerror(errno));
            continue;
        }
        settle(c->pause_ms);
        progress("[run %d/%d] %s: %s", run + 1, c->runs, w.name, sys_name[s]);
        run_result r = {0};
        if (s == SYS_SQLITE) r = sqlite_run(&w, pdir);
        if (s == SYS_LMDB) r = lmdb_run(&w, pdir);
        if (s == SYS_ROCKSDB) r = rocksdb_run(&w, pdir);
        res->app[k][s][run] = r;
        rm_rf(pdir);
    }
}

static void run_timeindex(const config *c, results *res, const uint8_t *pool, size_t pool_len) {
    char tdir[4096];
    path_join(tdir, sizeof tdir, c->dir, "timeindex");
    rm_rf(tdir);
    settle(c->pause_ms);
    progress("time index: building a log of %" PRIu64 " records", c->ti_records);
    res->ti_records = c->ti_records;
    res->ti_lookups = c->ti_lookups;
    if (timeindex_build(tdir, pool, pool_len, c->ti_records) != 0) {
        rm_rf(tdir);
        return;
    }
    for (int run = 0; run < c->runs; run++) {
        settle(c->pause_ms);
        progress("[run %d/%d] time index: %" PRIu64 " seeks", run + 1, c->runs, c->ti_lookups);
        res->ti[run] = timeindex_measure(tdir, c->ti_records, c->ti_lookups,
                                         UINT64_C(0x5eed) + (uint64_t)run);
    }
    res->ti_done = 1;
    rm_rf(tdir);
}

static void run_durable(const config *c, results *res, const uint8_t *pool, size_t pool_len,
                        int run) {
    char ddir[4096];
    path_join(ddir, sizeof ddir, c->dir, "durable");
    for (int t = 0; t < NDT; t++)
        for (int s = 0; s < DUR_NSYS; s++) {
            if (!c->peers && s >= DUR_SQLITE) break;
            rm_rf(ddir);
            if (mkdir_p(ddir) != 0) {
                fail("cannot create %s: %s", ddir, strerror(errno));
                continue;
            }
            settle(c->pause_ms);
            progress("[run %d/%d] durable appends, %d thread%s: %s", run + 1, c->runs,
                     dur_threads[t], dur_threads[t] == 1 ? "" : "s", durable_sys_name(s));
            res->dur[t][s][run] =
                durable_run(s, dur_threads[t], c->durable_secs, pool, pool_len, ddir);
        }
    rm_rf(ddir);
}

/* ---- statistics over runs ---- */

typedef struct stat_set {
    int n;
    double rps, payload_mbps, disk_mbps, disk_mb;
    double spread; /* (max - min) / 2 / median of records/s, as a fraction */
} stat_set;

static double rate(const run_result *r, uint64_t what) { return (double)what / r->secs; }

static stat_set summarize(const run_result *rs, int runs) {
    double rps[MAXRUNS] = {0}, pm[MAXRUNS] = {0}, dm[MAXRUNS] = {0}, db[MAXRUNS] = {0};
    stat_set s = {0};
    double lo = INFINITY, hi = 0;
    for (int i = 0; i < runs; i++) {
        const run_result *r = &rs[i];
        if (!r->ok || !(r->secs > 0)) continue;
        rps[s.n] = rate(r, r->records);
        pm[s.n] = rate(r, r->payload_bytes) / 1e6;
        dm[s.n] = rate(r, r->disk_bytes) / 1e6;
        db[s.n] = (double)r->disk_bytes / 1e6;
        if (rps[s.n] < lo) lo = rps[s.n];
        if (rps[s.n] > hi) hi = rps[s.n];
        s.n++;
    }
    s.rps = median(rps, (size_t)s.n);
    s.payload_mbps = median(pm, (size_t)s.n);
    s.disk_mbps = median(dm, (size_t)s.n);
    s.disk_mb = median(db, (size_t)s.n);
    s.spread = s.n > 1 ? (hi - lo) / 2 / s.rps : 0;
    return s;
}

/* Median over runs of (records/s of a) / (records/s of b), pairing runs. */
static double ratio_median(const run_result *a, const run_result *b, int runs) {
    double v[MAXRUNS] = {0};
    size_t n = 0;
    for (int i = 0; i < runs; i++) {
        if (!a[i].ok || !b[i].ok || !(a[i].secs > 0) || !(b[i].secs > 0)) continue;
        v[n++] = rate(&a[i], a[i].records) / rate(&b[i], b[i].records);
    }
    return median(v, n);
}

/* Median over runs of (a's MB/s of bytes read) / (b's), for the scans. */
static double scan_ratio(const run_result *a, const run_result *b, int runs) {
    double v[MAXRUNS] = {0};
    size_t n = 0;
    for (int i = 0; i < runs; i++) {
        if (!a[i].ok || !b[i].ok || !(a[i].secs > 0) || !(b[i].secs > 0)) continue;
        v[n++] = b[i].secs / a[i].secs; /* same bytes: the time ratio */
    }
    return median(v, n);
}

/* Durable cells: medians over runs of records/s and of each run's latency figures. */
typedef struct dur_stat {
    int n;
    double rps, spread, p50, p99, p999, max;
} dur_stat;

static void dur_runs(const durable_result *d, int runs, run_result *out) {
    for (int i = 0; i < runs; i++) out[i] = d[i].r;
}

static dur_stat dur_summarize(const durable_result *d, int runs) {
    run_result rr[MAXRUNS];
    double v[4][MAXRUNS] = {{0}};
    size_t n = 0;
    dur_runs(d, runs, rr);
    for (int i = 0; i < runs; i++) {
        if (!d[i].r.ok) continue;
        v[0][n] = d[i].p50_us;
        v[1][n] = d[i].p99_us;
        v[2][n] = d[i].p999_us;
        v[3][n] = d[i].max_us;
        n++;
    }
    stat_set st = summarize(rr, runs);
    dur_stat ds = {st.n, st.rps, st.spread, median(v[0], n), median(v[1], n),
                   median(v[2], n), median(v[3], n)};
    return ds;
}

/* Median over runs of records/s of (system sa, thread index ta) / (sb, tb). */
static double dur_ratio(const results *res, int runs, int sa, int ta, int sb, int tb) {
    run_result a[MAXRUNS], b[MAXRUNS];
    dur_runs(res->dur[ta][sa], runs, a);
    dur_runs(res->dur[tb][sb], runs, b);
    return ratio_median(a, b, runs);
}

/* One fsync: the median of the runs' 1-thread write+fdatasync median latencies. */
static double dur_one_fsync(const results *res, int runs) {
    double v[MAXRUNS] = {0};
    size_t n = 0;
    for (int i = 0; i < runs; i++)
        if (res->dur[0][DUR_FSYNC][i].r.ok) v[n++] = res->dur[0][DUR_FSYNC][i].p50_us;
    return median(v, n);
}

/* Median over runs of system sys's p99 at thread index t / that run's one fsync. */
static double dur_p99_fsyncs(const results *res, int runs, int sys, int t) {
    double v[MAXRUNS] = {0};
    size_t n = 0;
    for (int i = 0; i < runs; i++) {
        const durable_result *a = &res->dur[t][sys][i], *f = &res->dur[0][DUR_FSYNC][i];
        if (a->r.ok && f->r.ok && f->p50_us > 0) v[n++] = a->p99_us / f->p50_us;
    }
    return median(v, n);
}

/* The three goals of the durable section, at the largest thread count. */
typedef struct dur_goal {
    double scaling, p99_fsyncs, over_sqlite, over_rocksdb;
    int scaling_met, p99_met, peers_met; /* -1: not measured */
} dur_goal;

static dur_goal dur_goals(const config *c, const results *res) {
    const int hi = NDT - 1;
    dur_goal g;
    g.scaling = dur_ratio(res, c->runs, DUR_ALOG, hi, DUR_ALOG, 0);
    g.p99_fsyncs = dur_p99_fsyncs(res, c->runs, DUR_ALOG, hi);
    g.over_sqlite = c->peers ? dur_ratio(res, c->runs, DUR_ALOG, hi, DUR_SQLITE, hi) : NAN;
    g.over_rocksdb = c->peers ? dur_ratio(res, c->runs, DUR_ALOG, hi, DUR_ROCKSDB, hi) : NAN;
    g.scaling_met = isfinite(g.scaling) ? g.scaling >= 30 : -1;
    g.p99_met = isfinite(g.p99_fsyncs) ? g.p99_fsyncs <= 3 : -1;
    g.peers_met = isfinite(g.over_sqlite) && isfinite(g.over_rocksdb)
                      ? g.over_sqlite >= 10 && g.over_rocksdb >= 10
                      : -1;
    return g;
}

/* ---- output ---- */

static void fmt_count(char *out, size_t cap, double v) {
    if (!isfinite(v)) {
        snprintf(out, cap, "-");
        return;
    }
    uint64_t x = (uint64_t)llround(v);
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%" PRIu64, x);
    size_t o = 0;
    for (int i = 0; i < len && o + 2 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0) out[o++] = ',';
        out[o++] = tmp[i];
    }
    out[o] = '\0';
}

static void fmt_num(char *out, size_t cap, double v, int prec) {
    if (!isfinite(v))
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%.*f", prec, v);
}

static void fmt_ratio(char *out, size_t cap, int sys, double r) {
    if (!isfinite(r))
        snprintf(out, cap, "alog/%s = -", sys_ratio_name[sys]);
    else if (sys == SYS_WLOOP)
        snprintf(out, cap, "alog/%s = %.2f", sys_ratio_name[sys], r);
    else
        snprintf(out, cap, "alog/%s = %.*fx", sys_ratio_name[sys], r < 10 ? 2 : 1, r);
}

static void fs_type(const char *dir, char *out, size_t cap) {
    snprintf(out, cap, "?");
    FILE *f = fopen("/proc/mounts", "r");
    if (!f) return;
    char rp[4096];
    if (!realpath(dir, rp)) {
        fclose(f);
        return;
    }
    char dev[512], mnt[1024], type[64];
    size_t best = 0;
    while (fscanf(f, "%511s %1023s %63s %*[^\n]", dev, mnt, type) == 3) {
        size_t ml = strlen(mnt);
        int under = strncmp(rp, mnt, ml) == 0 && (rp[ml] == '/' || rp[ml] == '\0' || ml == 1);
        if (under && ml >= best) {
            best = ml;
            snprintf(out, cap, "%s", type);
        }
    }
    fclose(f);
}

static void fmt_us(char *out, size_t cap, double v) {
    fmt_num(out, cap, v, isfinite(v) && v < 100 ? 1 : 0);
}

static const char *met(int m) { return m < 0 ? "-" : m ? "met" : "NOT met"; }

static void print_durable(const config *c, const results *res) {
    char one[32];
    double fs1 = dur_one_fsync(res, c->runs);
    fmt_us(one, sizeof one, fs1);
    printf("\nDurable appends: %d-byte records, one per call, each fsynced before the call "
           "returns;\nT writer threads for %.2g s per cell; records/s = records acknowledged "
           "within it / its time;\nlatency of each call in microseconds, p50/p99/p999 "
           "over all threads' calls\n",
           DUR_VLEN, c->durable_secs);
    printf("write+fdatasync: pwrite at the next position of a file laid out beforehand "
           "(zero-filled, synced), then fdatasync\n"
           "one fsync = %s us (median latency of 1-thread write+fdatasync); "
           "p99 in fsyncs = alog's p99 / one fsync\n",
           one);
    printf("  %7s  %-16s %11s %8s %9s %9s %9s   %s\n", "threads", "system", "records/s",
           "spread", "p50 us", "p99 us", "p999 us", "alog vs it");
    for (int t = 0; t < NDT; t++) {
        for (int s = 0; s < DUR_NSYS; s++) {
            if (!c->peers && s >= DUR_SQLITE) break;
            dur_stat st = dur_summarize(res->dur[t][s], c->runs);
            if (st.n == 0) {
                printf("  %7d  %-16s %11s\n", dur_threads[t], durable_sys_name(s), "failed");
                continue;
            }
            char rps[32], sp[16], p50[32], p99[32], p999[32], ratio[96] = "";
            fmt_count(rps, sizeof rps, st.rps);
            snprintf(sp, sizeof sp, "+-%.0f%%", st.spread * 100);
            fmt_us(p50, sizeof p50, st.p50);
            fmt_us(p99, sizeof p99, st.p99);
            fmt_us(p999, sizeof p999, st.p999);
            if (s == DUR_ALOG) {
                double f = dur_p99_fsyncs(res, c->runs, DUR_ALOG, t);
                size_t o = 0;
                if (t > 0) {
                    double up = dur_ratio(res, c->runs, DUR_ALOG, t, DUR_ALOG, 0);
                    o = (size_t)snprintf(ratio, sizeof ratio, "vs 1 thread = %.1fx, ", up);
                }
                snprintf(ratio + o, sizeof ratio - o, "p99 = %.2f fsyncs", f);
            } else {
                double r = dur_ratio(res, c->runs, DUR_ALOG, t, s, t);
                if (!isfinite(r))
                    snprintf(ratio, sizeof ratio, "alog/%s = -", durable_sys_name(s));
                else if (s == DUR_FSYNC || s == DUR_GROUP)
                    snprintf(ratio, sizeof ratio, "alog/%s = %.2f", durable_sys_name(s), r);
                else
                    snprintf(ratio, sizeof ratio, "alog/%s = %.*fx", durable_sys_name(s),
                             r < 10 ? 2 : 1, r);
            }
            printf("  %7d  %-16s %11s %8s %9s %9s %9s   %s\n", dur_threads[t],
                   durable_sys_name(s), rps, sp, p50, p99, p999, ratio);
        }
    }
    /* SQLite writers that never got the lock before the drain limit (bench_durable.c). */
    int noted = 0;
    for (int t = 0; t < NDT; t++)
        for (int s = 0; s < DUR_NSYS; s++) {
            uint64_t ab = 0;
            for (int i = 0; i < c->runs; i++) ab += res->dur[t][s][i].abandoned;
            if (ab == 0) continue;
            if (!noted)
                printf("abandoned calls (still waiting for the write lock well after the "
                       "cell's end; the wait so far\ncounts as their latency, a lower "
                       "bound):");
            printf("%s %s at %d threads: %" PRIu64 " in %d run%s", noted ? ";" : "",
                   durable_sys_name(s), dur_threads[t], ab, c->runs, c->runs == 1 ? "" : "s");
            noted = 1;
        }
    if (noted) printf("\n");
    dur_goal g = dur_goals(c, res);
    printf("\nGoal, durable appends at %d threads: alog %d threads/1 thread %.1fx (goal >= 30x: "
           "%s), p99 %.2f fsyncs (goal <= 3: %s)",
           dur_threads[NDT - 1], dur_threads[NDT - 1], g.scaling, met(g.scaling_met),
           g.p99_fsyncs, met(g.p99_met));
    if (c->peers)
        printf(", alog/SQLite %.1fx and alog/RocksDB %.1fx (goal >= 10x: %s)", g.over_sqlite,
               g.over_rocksdb, met(g.peers_met));
    printf("\n");
    /* The same figures for the reference loop: what the machine allows any group commit. */
    const int hi = NDT - 1;
    printf("The same for group fdatasync (the simplest group commit, no log format): %d "
           "threads = %.1fx alog's 1-thread rate, p99 %.2f fsyncs",
           dur_threads[hi], dur_ratio(res, c->runs, DUR_GROUP, hi, DUR_ALOG, 0),
           dur_p99_fsyncs(res, c->runs, DUR_GROUP, hi));
    if (c->peers)
        printf(", %.1fx SQLite, %.1fx RocksDB",
               dur_ratio(res, c->runs, DUR_GROUP, hi, DUR_SQLITE, hi),
               dur_ratio(res, c->runs, DUR_GROUP, hi, DUR_ROCKSDB, hi));
    printf("\n");
}

static void print_cases(const config *c, const results *res) {
    for (int k = 0; k < NCASES; k++) {
        char n[32];
        fmt_count(n, sizeof n, (double)c->n[k]);
        printf("\nAppends: %s-byte values, %zu record%s per call (%s records per run)\n",
               cases[k].vlen == 100 ? "100" : "1024", cases[k].chunk,
               cases[k].chunk == 1 ? "" : "s", n);
        printf("  %-11s %13s %9s %13s %10s %9s   %s\n", "system", "records/s", "spread",
               "payload MB/s", "disk MB/s", "disk MB", "alog vs it");
        for (int s = 0; s < NSYS; s++) {
            if (!c->peers && s >= SYS_SQLITE) break;
            stat_set st = summarize(res->app[k][s], c->runs);
            char rps[32], sp[16], pm[32], dm[32], db[32], ratio[64] = "";
            if (st.n == 0) {
                printf("  %-11s %13s\n", sys_name[s], "failed");
                continue;
            }
            fmt_count(rps, sizeof rps, st.rps);
            snprintf(sp, sizeof sp, "+-%.0f%%", st.spread * 100);
            fmt_num(pm, sizeof pm, st.payload_mbps, 1);
            fmt_num(dm, sizeof dm, st.disk_mbps, 1);
            fmt_num(db, sizeof db, st.disk_mb, 1);
            if (s != SYS_ALOG)
                fmt_ratio(ratio, sizeof ratio, s,
                          ratio_median(res->app[k][SYS_ALOG], res->app[k][s], c->runs));
            printf("  %-11s %13s %9s %13s %10s %9s   %s\n", sys_name[s], rps, sp, pm, dm, db,
                   ratio);
        }
    }

    printf("\nSequential scan of the logs above, page cache warm\n");
    printf("(alog: alog_cursor_next over the whole log, verify_reads=1; read(): the write "
           "loop's file, 1 MiB reads)\n");
    printf("  %-11s %13s %13s %10s %12s   %s\n", "case", "records/s", "payload MB/s",
           "disk MB/s", "read() MB/s", "alog vs read()");
    for (int k = 0; k < NCASES; k++) {
        stat_set a = summarize(res->scan[k][SCAN_ALOG], c->runs);
        stat_set r = summarize(res->scan[k][SCAN_READ], c->runs);
        char rps[32], pm[32], dm[32], rm[32], ratio[64];
        fmt_count(rps, sizeof rps, a.n ? a.rps : NAN);
        fmt_num(pm, sizeof pm, a.n ? a.payload_mbps : NAN, 1);
        fmt_num(dm, sizeof dm, a.n ? a.disk_mbps : NAN, 1);
        fmt_num(rm, sizeof rm, r.n ? r.disk_mbps : NAN, 1);
        double q = scan_ratio(res->scan[k][SCAN_ALOG], res->scan[k][SCAN_READ], c->runs);
        if (isfinite(q))
            snprintf(ratio, sizeof ratio, "alog/read() = %.2f", q);
        else
            snprintf(ratio, sizeof ratio, "-");
        printf("  %-11s %13s %13s %10s %12s   %s\n", cases[k].name, rps, pm, dm, rm, ratio);
    }

    if (res->ti_done) {
        double v[6][MAXRUNS] = {{0}};
        size_t n = 0;
        for (int i = 0; i < c->runs; i++) {
            const ti_result *t = &res->ti[i];
            if (!t->ok) continue;
            v[0][n] = t->find_p50_us;
            v[1][n] = t->find_p99_us;
            v[2][n] = t->find_max_us;
            v[3][n] = t->open_p50_us;
            v[4][n] = t->open_p99_us;
            v[5][n] = t->open_max_us;
            n++;
        }
        char nr[32], nl[32];
        fmt_count(nr, sizeof nr, (double)res->ti_records);
        fmt_count(nl, sizeof nl, (double)res->ti_lookups);
        printf("\nTime index: a log of %s records (100-byte values, batches of 100, one ms "
               "apart),\n%s random timestamps per run, each call timed alone (microseconds)\n",
               nr, nl);
        printf("  %-36s %9s %9s %9s\n", "operation", "p50 us", "p99 us", "max us");
        if (n == 0) {
            printf("  failed\n");
        } else {
            printf("  %-36s %9.2f %9.2f %9.1f\n", "alog_offset_for_time", median(v[0], n),
                   median(v[1], n), median(v[2], n));
            printf("  %-36s %9.2f %9.2f %9.1f\n", "alog_cursor_open + first cursor_next",
                   median(v[3], n), median(v[4], n), median(v[5], n));
        }
    }

    /* The goal for the headline case. */
    const int k = 0;
    double wl = ratio_median(res->app[k][SYS_ALOG], res->app[k][SYS_WLOOP], c->runs);
    printf("\nGoal, 100 B x100: alog/write-loop %.2f (goal >= 0.70: %s)", wl,
           isfinite(wl) ? (wl >= 0.7 ? "met" : "NOT met") : "-");
    if (c->peers) {
        double sq = ratio_median(res->app[k][SYS_ALOG], res->app[k][SYS_SQLITE], c->runs);
        double rk = ratio_median(res->app[k][SYS_ALOG], res->app[k][SYS_ROCKSDB], c->runs);
        printf(", alog/SQLite %.1fx and alog/RocksDB %.1fx (goal >= 5x: %s)", sq, rk,
               isfinite(sq) && isfinite(rk) ? (sq >= 5 && rk >= 5 ? "met" : "NOT met") : "-");
    }
    printf("\n");
}

static void print_table(const config *c, const results *res) {
    struct utsname u;
    char fs[64];
    uname(&u);
    fs_type(c->dir, fs, sizeof fs);
    printf("alog-bench (libalog %s)%s: %d runs, median shown; a ratio is the median of the "
           "per-run ratios\n",
           alog_version(), c->quick ? " --quick (smoke test, not a measurement)" : "", c->runs);
    printf("machine: %s %s, %ld CPUs; data: %s (%s)\n", u.sysname, u.release,
           sysconf(_SC_NPROCESSORS_ONLN), c->dir, fs);
    if (c->cases) {
        printf("appends and scans: fsync never everywhere, no compression, null keys, "
               "timestamps T0+i; MB = 10^6 bytes\n");
        printf("disk MB = bytes in the system's files right after the appends; ");
    }
    printf("spread = half the min-max range of records/s over the runs\n");
    if (c->cases) print_cases(c, res);
    if (c->durable) print_durable(c, res);
    printf("wall time %.0f s\n", res->wall_secs);
}

static void jnum(double v) {
    if (isfinite(v))
        printf("%.6g", v);
    else
        printf("null");
}

static void jsecs(const run_result *rs, int runs) {
    printf("[");
    for (int i = 0; i < runs; i++) {
        if (i) printf(", ");
        if (rs[i].ok)
            jnum(rs[i].secs);
        else
            printf("null");
    }
    printf("]");
}

static void json_timeindex(const config *c, const results *res);
static void json_durable(const config *c, const results *res);

static void print_json(const config *c, const results *res) {
    printf("{\n  \"tool\": \"alog-bench\", \"libalog\": \"%s\", \"quick\": %s, \"runs\": %d,\n",
           alog_version(), c->quick ? "true" : "false", c->runs);
    printf("  \"statistic\": \"median of runs; ratios are medians of per-run ratios\",\n");
    printf("  \"mb\": 1000000, \"wall_secs\": ");
    jnum(res->wall_secs);
    const int ncases = c->cases ? NCASES : 0;
    printf(",\n  \"append\": [\n");
    for (int k = 0; k < ncases; k++) {
        printf("    {\"case\": \"%s\", \"value_bytes\": %zu, \"records_per_call\": %zu, "
               "\"records\": %" PRIu64 ", \"systems\": [\n",
               cases[k].name, cases[k].vlen, cases[k].chunk, c->n[k]);
        int first = 1;
        for (int s = 0; s < NSYS; s++) {
            if (!c->peers && s >= SYS_SQLITE) break;
            stat_set st = summarize(res->app[k][s], c->runs);
            printf("%s      {\"system\": \"%s\", \"ok_runs\": %d, \"records_per_s\": ",
                   first ? "" : ",\n", sys_json[s], st.n);
            first = 0;
            jnum(st.n ? st.rps : NAN);
            printf(", \"payload_mb_per_s\": ");
            jnum(st.n ? st.payload_mbps : NAN);
            printf(", \"disk_mb_per_s\": ");
            jnum(st.n ? st.disk_mbps : NAN);
            printf(", \"disk_mb\": ");
            jnum(st.n ? st.disk_mb : NAN);
            printf(", \"alog_over_this\": ");
            jnum(s == SYS_ALOG ? NAN
                               : ratio_median(res->app[k][SYS_ALOG], res->app[k][s], c->runs));
            printf(", \"secs\": ");
            jsecs(res->app[k][s], c->runs);
            printf("}");
        }
        printf("\n    ]}%s\n", k + 1 < ncases ? "," : "");
    }
    printf("  ],\n  \"scan\": [\n");
    for (int k = 0; k < ncases; k++) {
        stat_set a = summarize(res->scan[k][SCAN_ALOG], c->runs);
        stat_set r = summarize(res->scan[k][SCAN_READ], c->runs);
        printf("    {\"case\": \"%s\", \"alog_records_per_s\": ", cases[k].name);
        jnum(a.n ? a.rps : NAN);
        printf(", \"alog_payload_mb_per_s\": ");
        jnum(a.n ? a.payload_mbps : NAN);
        printf(", \"alog_disk_mb_per_s\": ");
        jnum(a.n ? a.disk_mbps : NAN);
        printf(", \"read_mb_per_s\": ");
        jnum(r.n ? r.disk_mbps : NAN);
        printf(", \"alog_over_read\": ");
        jnum(scan_ratio(res->scan[k][SCAN_ALOG], res->scan[k][SCAN_READ], c->runs));
        printf(", \"alog_secs\": ");
        jsecs(res->scan[k][SCAN_ALOG], c->runs);
        printf(", \"read_secs\": ");
        jsecs(res->scan[k][SCAN_READ], c->runs);
        printf("}%s\n", k + 1 < ncases ? "," : "");
    }
    printf("  ],\n  \"timeindex\": ");
    json_timeindex(c, res);
    printf(",\n  \"durable\": ");
    json_durable(c, res);
    printf("\n}\n");
}

static void json_timeindex(const config *c, const results *res) {
    if (!res->ti_done) {
        printf("null");
        return;
    }
    double v[6][MAXRUNS] = {{0}};
    size_t n = 0;
    for (int i = 0; i < c->runs; i++) {
        const ti_result *t = &res->ti[i];
        if (!t->ok) continue;
        v[0][n] = t->find_p50_us;
        v[1][n] = t->find_p99_us;
        v[2][n] = t->find_max_us;
        v[3][n] = t->open_p50_us;
        v[4][n] = t->open_p99_us;
        v[5][n] = t->open_max_us;
        n++;
    }
    printf("{\"records\": %" PRIu64 ", \"lookups_per_run\": %" PRIu64 ", \"ok_runs\": %zu,\n",
           res->ti_records, res->ti_lookups, n);
    printf("    \"offset_for_time_us\": {\"p50\": ");
    jnum(median(v[0], n));
    printf(", \"p99\": ");
    jnum(median(v[1], n));
    printf(", \"max\": ");
    jnum(median(v[2], n));
    printf("},\n    \"cursor_open_first_next_us\": {\"p50\": ");
    jnum(median(v[3], n));
    printf(", \"p99\": ");
    jnum(median(v[4], n));
    printf(", \"max\": ");
    jnum(median(v[5], n));
    printf("}}");
}

static void jbool(int m) { printf("%s", m < 0 ? "null" : m ? "true" : "false"); }

static void json_durable(const config *c, const results *res) {
    if (!c->durable) {
        printf("null");
        return;
    }
    printf("{\"value_bytes\": %d, \"records_per_call\": 1, \"secs_per_cell\": ", DUR_VLEN);
    jnum(c->durable_secs);
    printf(", \"one_fsync_us\": ");
    jnum(dur_one_fsync(res, c->runs));
    printf(",\n    \"latency\": \"per call, microseconds, percentiles over all threads' "
           "calls, median of runs\",\n    \"records\": \"acknowledged within the cell's "
           "secs, per run\",\n    \"cells\": [\n");
    int first = 1;
    for (int t = 0; t < NDT; t++)
        for (int s = 0; s < DUR_NSYS; s++) {
            if (!c->peers && s >= DUR_SQLITE) break;
            const durable_result *d = res->dur[t][s];
            dur_stat st = dur_summarize(d, c->runs);
            printf("%s      {\"threads\": %d, \"system\": \"%s\", \"ok_runs\": %d, "
                   "\"records_per_s\": ",
                   first ? "" : ",\n", dur_threads[t], durable_sys_json(s), st.n);
            first = 0;
            jnum(st.n ? st.rps : NAN);
            printf(", \"p50_us\": ");
            jnum(st.p50);
            printf(", \"p99_us\": ");
            jnum(st.p99);
            printf(", \"p999_us\": ");
            jnum(st.p999);
            printf(", \"max_us\": ");
            jnum(st.max);
            printf(", \"alog_over_this\": ");
            jnum(s == DUR_ALOG ? NAN : dur_ratio(res, c->runs, DUR_ALOG, t, s, t));
            if (s == DUR_ALOG || s == DUR_GROUP) {
                printf(", \"over_alog_1_thread\": ");
                jnum(dur_ratio(res, c->runs, s, t, DUR_ALOG, 0));
                printf(", \"p99_over_one_fsync\": ");
                jnum(dur_p99_fsyncs(res, c->runs, s, t));
            }
            printf(", \"records\": [");
            for (int i = 0; i < c->runs; i++) {
                if (i) printf(", ");
                if (d[i].r.ok)
                    printf("%" PRIu64, d[i].r.records);
                else
                    printf("null");
            }
            printf("], \"abandoned\": [");
            for (int i = 0; i < c->runs; i++) {
                if (i) printf(", ");
                if (d[i].r.ok)
                    printf("%" PRIu64, d[i].abandoned);
                else
                    printf("null");
            }
            run_result rr[MAXRUNS];
            dur_runs(d, c->runs, rr);
            printf("], \"secs\": ");
            jsecs(rr, c->runs);
            printf("}");
        }
    dur_goal g = dur_goals(c, res);
    printf("\n    ],\n    \"goal\": {\"threads\": %d, \"alog_over_1_thread\": ",
           dur_threads[NDT - 1]);
    jnum(g.scaling);
    printf(", \"p99_over_one_fsync\": ");
    jnum(g.p99_fsyncs);
    printf(", \"alog_over_sqlite\": ");
    jnum(g.over_sqlite);
    printf(", \"alog_over_rocksdb\": ");
    jnum(g.over_rocksdb);
    printf(", \"scaling_met\": ");
    jbool(g.scaling_met);
    printf(", \"p99_met\": ");
    jbool(g.p99_met);
    printf(", \"peers_met\": ");
    jbool(g.peers_met);
    printf("}}");
}

int main(int argc, char **argv) {
    config c;
    if (parse_args(argc, argv, &c) != 0) return 2;
    progress_enable(1);
    if (mkdir_p(c.dir) != 0) {
        fail("cannot create %s: %s", c.dir, strerror(errno));
        return 1;
    }
    /* 1 MiB of random bytes: values are windows into it (see wl_value). The pool fits
     * in the CPU's cache, as a record an application has just produced does; a pool
     * far larger than the cache made every system pay a cache miss per value read,
     * which measured the workload generator's memory rather than the systems (the
     * write loop, which reads one contiguous buffer, never paid it). Values still
     * differ from record to record and are incompressible. */
    size_t pool_len = (size_t)1 << 20;
    uint8_t *pool = malloc(pool_len);
    results *res = calloc(1, sizeof *res);
    if (!pool || !res) {
        fail("out of memory");
        return 1;
    }
    fill_random(pool, pool_len, UINT64_C(0xa109));

    double t0 = now_sec();
    for (int run = 0; run < c.runs; run++) {
        if (c.cases)
            for (int k = 0; k < NCASES; k++) run_case(&c, res, pool, pool_len, k, run);
        if (c.durable) run_durable(&c, res, pool, pool_len, run);
    }
    if (c.timeindex) run_timeindex(&c, res, pool, pool_len);
    res->wall_secs = now_sec() - t0;
    progress_done();

    if (c.json)
        print_json(&c, res);
    else
        print_table(&c, res);

    /* Exit status: 1 if any timed part failed, so that scripts notice. */
    int failed = 0;
    for (int k = 0; k < (c.cases ? NCASES : 0); k++)
        for (int run = 0; run < c.runs; run++) {
            for (int s = 0; s < NSYS; s++)
                if ((c.peers || s < SYS_SQLITE) && !res->app[k][s][run].ok) failed = 1;
            for (int s = 0; s < NSCAN; s++)
                if (!res->scan[k][s][run].ok) failed = 1;
        }
    if (c.timeindex)
        for (int run = 0; run < c.runs; run++)
            if (!res->ti[run].ok) failed = 1;
    if (c.durable)
        for (int t = 0; t < NDT; t++)
            for (int s = 0; s < DUR_NSYS; s++)
                for (int run = 0; run < c.runs; run++)
                    if ((c.peers || s < DUR_SQLITE) && !res->dur[t][s][run].r.ok) failed = 1;
    free(pool);
    free(res);
    return failed;
}
