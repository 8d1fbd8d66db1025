/*
 * test_kill9.c -- kill -9 torture: the process appending to a log dies at a random
 * moment, over and over, and every record it was told was appended is still there,
 * byte for byte, after recovery.
 *
 * Why: a crash may come at any instruction -- in the middle of a pwrite, between a
 * write and its publication, during a segment roll (seal, new files, directory fsync,
 * checkpoint), during group commit, even during the recovery of the previous crash.
 * The API promises that an acknowledged record is in the page cache (plain appends)
 * or on disk (ALOG_APPEND_DURABLE, ALOG_FSYNC_ALWAYS); a SIGKILL keeps the page
 * cache, so after a process crash every acknowledged record must survive, and
 * recovery may only cut what was never acknowledged.
 *
 * Each round forks a child that opens the log and appends from 1-4 threads (single
 * records and batches of up to 10, now and then a single 64-128 KiB record; durable
 * through the flag, or through the ALOG_FSYNC_ALWAYS policy; a quarter of the flag
 * rounds' appends plain; random compression; 16 KiB segments, so segments roll all
 * the time; 4 KiB preallocation steps, so crashes leave zero-filled tails too). After every acknowledged append the child writes (first offset, count,
 * first seed) to a pipe. Every record is made from its seed alone (tu_srec_make: the seed is in the key, the
 * value is "r<seed>-" plus bytes from the seed), and a thread's seeds run 0, 1, 2, ...
 * The parent SIGKILLs the child after a random 0-30 ms or after a random number of
 * acknowledgements, reads every acknowledgement, opens the log for writing (recovery)
 * and checks: the open succeeds; offsets run without a gap from 0; every record is
 * self-consistent (exactly what its seed makes); each child thread's records appear in
 * the order it appended them, with none missing before its last present one (so no
 * record is duplicated or made up); every acknowledged record is at its acknowledged
 * offset; and alog_verify() passes once the log is closed. The next round appends to
 * the same log (one round in five skips the parent's check, so the next child's own
 * open recovers the crash -- and may itself be killed while doing so). A fresh log is
 * started every 50 rounds.
 *
 * 200 rounds; ALOG_LONG=1: 10000. ALOG_KILL9_ROUNDS=N overrides both. The parent's
 * PRNG seed is printed; ALOG_SEED=N repeats a run's choices (not its timing).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

enum {
    EPOCH_ROUNDS = 50, /* a fresh log every this many rounds */
    MAX_THREADS = 4,
    MAX_BATCH = 10,
    SEGMENT_BYTES = 16 * 1024,
    MAX_DELAY_US = 30000,
    MAX_ACKS_BEFORE_KILL = 300,
    ACK_WAIT_LIMIT_MS = 30000, /* a child that makes no progress for this long fails */
};

/* What the child tells the parent, one message per acknowledged append (or error). A
 * write of a whole message to a pipe is atomic (< PIPE_BUF), so threads share it. */
enum { MSG_DURABLE = 1, MSG_PLAIN = 2, MSG_ERROR = 9 };
typedef struct ack_msg {
    int64_t first_offset;
    uint64_t first_seed;
    uint32_t count; /* MSG_ERROR: length of the text that follows */
    uint32_t kind;
} ack_msg;

/* Seeds: round + 1 (so never 0), thread, and the thread's record counter. */
static uint64_t make_seed(int round, int thread, uint32_t counter) {
    return (uint64_t)(round + 1) << 32 | (uint64_t)thread << 28 | counter;
}
static int seed_round(uint64_t s) { return (int)((s & ~TU_SREC_BIG) >> 32) - 1; }
static int seed_thread(uint64_t s) { return (int)((s >> 28) & 0xF); }
static uint32_t seed_counter(uint64_t s) { return (uint32_t)(s & 0x0FFFFFFF); }

typedef struct round_params {
    int round;
    int nthreads;
    alog_fsync_policy policy; /* ALWAYS: plain calls are durable; else the flag */
    uint32_t interval_ms;
    alog_compression compression;
    int kill_after_acks; /* > 0: kill after this many acks; else after delay_us */
    int delay_us;
    int chained; /* skip the parent's check: the next child recovers this crash */
    uint64_t child_seed;
} round_params;

static alog_options round_options(const round_params *p) {
    alog_options o;
    alog_options_init(&o);
    o.segment_bytes = SEGMENT_BYTES;
    o.index_interval_bytes = 1024;
    o.fsync_policy = p->policy;
    o.fsync_interval_ms = p->interval_ms;
    o.compression = p->compression;
    o.preallocate_bytes = 4096; /* zero-filled steps that 16 KiB segments fit */
    return o;
}

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the child -------------------------------------------------------------------- */

typedef struct child_ctx {
    alog *log;
    const round_params *p;
    int wfd;
    int thread;
} child_ctx;

static void child_send(int wfd, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(wfd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(5); /* the parent is gone */
        b += w;
        n -= (size_t)w;
    }
}

__attribute__((noreturn)) static void child_fail(int wfd, alog_err e, const char *what) {
    struct {
        ack_msg m;
        char text[400];
    } msg;
    int n = snprintf(msg.text, sizeof msg.text, "%s -> %s: %s", what, alog_err_name(e),
                     alog_last_error());
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof msg.text) n = (int)sizeof msg.text - 1;
    msg.m = (ack_msg){-1, 0, (uint32_t)n, MSG_ERROR};
    child_send(wfd, &msg, sizeof msg.m + (size_t)n);
    _exit(3);
}

static void *child_thread(void *arg) {
    child_ctx *c = arg;
    const round_params *p = c->p;
    uint64_t rng = p->child_seed ^ ((uint64_t)c->thread * 0x9E3779B97F4A7C15ull);
    tu_srec recs[MAX_BATCH];
    alog_record rr[MAX_BATCH];
    memset(recs, 0, sizeof recs);
    uint32_t counter = 0;
    int64_t stop_at = mono_us() + 120 * 1000000ll; /* never reached: the parent kills */
    while (mono_us() < stop_at) {
        uint64_t r = tu_splitmix64(&rng);
        size_t n = r % 2 ? 1 : 2 + (size_t)((r >> 8) % (MAX_BATCH - 1));
        uint64_t first_seed = make_seed(p->round, c->thread, counter);
        /* Now and then one record of 64-128 KiB: a write of many pages, which a kill
         * can tear (the kernel stops copying at a page boundary). */
        if ((r >> 24) % 32 == 0) {
            n = 1;
            first_seed |= TU_SREC_BIG;
        }
        for (size_t i = 0; i < n; i++) {
            tu_srec_make(&recs[i], first_seed + i);
            rr[i] = recs[i].rec;
        }
        int durable = p->policy == ALOG_FSYNC_ALWAYS || (r >> 16) % 4 != 0;
        unsigned flags = durable && p->policy != ALOG_FSYNC_ALWAYS ? ALOG_APPEND_DURABLE : 0;
        int64_t off = -1;
        alog_err e;
        if (n == 1 && !flags && (r >> 20) % 2)
            e = alog_append(c->log, &rr[0], &off);
        else if (!flags && (r >> 20) % 2)
            e = alog_append_batch(c->log, rr, n, &off);
        else
            e = alog_append_ex(c->log, rr, n, flags, &off);
        if (e) child_fail(c->wfd, e, "append");
        counter += (uint32_t)n;
        ack_msg m = {off, first_seed, (uint32_t)n, durable ? MSG_DURABLE : MSG_PLAIN};
        child_send(c->wfd, &m, sizeof m);
    }
    for (int i = 0; i < MAX_BATCH; i++) tu_srec_free(&recs[i]);
    return NULL;
}

__attribute__((noreturn)) static void child_main(const char *dir, const round_params *p,
                                                 int wfd, pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(6);
    alog_options o = round_options(p);
    alog *log;
    alog_err e = alog_open(dir, &o, &log);
    if (e) child_fail(wfd, e, "alog_open");
    child_ctx ctx[MAX_THREADS];
    pthread_t t[MAX_THREADS];
    for (int i = 0; i < p->nthreads; i++) {
        ctx[i] = (child_ctx){log, p, wfd, i};
        if (pthread_create(&t[i], NULL, child_thread, &ctx[i]) != 0)
            child_fail(wfd, ALOG_ENOMEM, "pthread_create");
    }
    for (int i = 0; i < p->nthreads; i++) pthread_join(t[i], NULL);
    _exit(4); /* ran out of time without being killed */
}

/* ---- the parent's model of one log ------------------------------------------------- */

typedef struct model {
    char *dir;
    int first_round;     /* the log's first round */
    uint64_t *ack;       /* ack[offset]: acknowledged seed, 0 = none */
    uint8_t *ack_kind;
    size_t cap;
    int64_t acked_next;  /* one past the highest acknowledged offset */
    int64_t checked_next; /* next offset at the last check */
    int nthreads[EPOCH_ROUNDS];
    uint32_t expect[EPOCH_ROUNDS][MAX_THREADS]; /* per check: next counter per thread */
} model;

static struct {
    uint64_t seed;
    int rounds;
    uint64_t acks, acked_durable, acked_plain, checks, records_checked, acked_checked;
    uint64_t beyond, cut_recoveries, cut_bytes, unclean, chained, killed_before_ack;
    uint64_t kill_by_delay, kill_by_acks;
    uint64_t max_records, max_segments;
    uint64_t zero_tails; /* recoveries that found preallocated zeros after the last batch */
} stats;

static void model_reset(model *m, int first_round) {
    if (m->dir) {
        tu_rmrf(m->dir);
        free(m->dir);
    }
    free(m->ack);
    free(m->ack_kind);
    memset(m, 0, sizeof *m);
    m->dir = tu_tmpdir("kill9");
    m->first_round = first_round;
}

static void model_ack(model *m, const ack_msg *a, int round) {
    if (a->first_offset < 0 || a->count == 0 || a->count > MAX_BATCH)
        fail_msg("round %d: bad acknowledgement (offset %" PRId64 ", count %u)", round,
                 a->first_offset, a->count);
    int64_t end = a->first_offset + a->count;
    if ((size_t)end > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < (size_t)end) cap *= 2;
        m->ack = realloc(m->ack, cap * sizeof *m->ack);
        m->ack_kind = realloc(m->ack_kind, cap);
        assert_non_null(m->ack);
        assert_non_null(m->ack_kind);
        memset(m->ack + m->cap, 0, (cap - m->cap) * sizeof *m->ack);
        memset(m->ack_kind + m->cap, 0, cap - m->cap);
        m->cap = cap;
    }
    for (uint32_t i = 0; i < a->count; i++) {
        int64_t off = a->first_offset + i;
        uint64_t s = a->first_seed + i;
        /* A process crash keeps the page cache: an acknowledged record is never lost,
         * so its offset is never handed out again. */
        if (m->ack[off] && m->ack[off] != s)
            fail_msg("round %d: offset %" PRId64 " acknowledged twice: seed %016" PRIx64
                     " (round %d) and now %016" PRIx64 " (log %s)", round, off, m->ack[off],
                     seed_round(m->ack[off]), s, m->dir);
        m->ack[off] = s;
        m->ack_kind[off] = (uint8_t)a->kind;
    }
    if (end > m->acked_next) m->acked_next = end;
    stats.acks += a->count;
    if (a->kind == MSG_DURABLE) stats.acked_durable += a->count;
    else stats.acked_plain += a->count;
}

/* Opens (recovers) the log and checks everything the header comment lists. */
static void model_check(model *m, int round, const alog_options *o) {
    alog *log;
    alog_err e = alog_open(m->dir, o, &log);
    if (e) fail_msg("round %d: alog_open after kill -> %s: %s (log %s, ALOG_SEED=%" PRIu64 ")",
                    round, alog_err_name(e), alog_last_error(), m->dir, stats.seed);
    const alog_recovery_info *ri = alog_recovery(log);
    if (!ri->clean) stats.unclean++;
    int64_t file;
    uint64_t logical;
    tu_active_sizes(log, m->dir, &file, &logical);
    if (file > (int64_t)logical) stats.zero_tails++;
    if (ri->bytes_truncated) {
        stats.cut_recoveries++;
        stats.cut_bytes += ri->bytes_truncated;
    }
    assert_int_equal(alog_first_offset(log), 0);
    int64_t next = alog_next_offset(log);
    memset(m->expect, 0, sizeof m->expect);
    tu_srec scratch = {0};
    alog_cursor *c;
    TU_OK(alog_cursor_open(log, 0, &c));
    alog_record r;
    int64_t want = 0;
    while ((e = alog_cursor_next(c, &r)) == ALOG_OK) {
        char why[256];
        uint64_t seed;
        if (r.offset != want)
            fail_msg("round %d: offset %" PRId64 " follows %" PRId64 " (log %s)", round,
                     r.offset, want - 1, m->dir);
        if (!tu_srec_check(&scratch, &r, &seed, why, sizeof why))
            fail_msg("round %d: record at offset %" PRId64 " was never produced: %s (log %s)",
                     round, r.offset, why, m->dir);
        int sr = seed_round(seed), st = seed_thread(seed);
        uint32_t sc = seed_counter(seed);
        if (sr < m->first_round || sr > round || st >= m->nthreads[sr - m->first_round])
            fail_msg("round %d: record at offset %" PRId64 " has seed %016" PRIx64
                     " of no writer of this log (log %s)", round, r.offset, seed, m->dir);
        uint32_t *x = &m->expect[sr - m->first_round][st];
        if (sc != *x)
            fail_msg("round %d: offset %" PRId64 ": round %d thread %d record %u where its "
                     "record %u was expected (a record lost, duplicated or reordered; log %s)",
                     round, r.offset, sr, st, sc, *x, m->dir);
        (*x)++;
        if ((size_t)r.offset < m->cap && m->ack[r.offset]) {
            if (m->ack[r.offset] != seed)
                fail_msg("round %d: offset %" PRId64 " holds seed %016" PRIx64 " but %016" PRIx64
                         " was acknowledged there (log %s)", round, r.offset, seed,
                         m->ack[r.offset], m->dir);
            stats.acked_checked++;
        } else if (r.offset >= m->checked_next) {
            stats.beyond++; /* appended (maybe durable) but killed before it was told */
        }
        stats.records_checked++;
        want++;
    }
    if (e != ALOG_EOF)
        fail_msg("round %d: reading offset %" PRId64 " -> %s: %s (log %s)", round, want,
                 alog_err_name(e), alog_last_error(), m->dir);
    alog_cursor_close(c);
    tu_srec_free(&scratch);
    assert_int_equal(want, next);
    if (m->acked_next > next) {
        int64_t off = next;
        while (!m->ack[off]) off++;
        fail_msg("round %d: acknowledged (%s) record at offset %" PRId64 " (seed %016" PRIx64
                 ") lost: the log ends at %" PRId64 " (log %s, ALOG_SEED=%" PRIu64 ")", round,
                 m->ack_kind[off] == MSG_DURABLE ? "durable" : "in page cache", off, m->ack[off],
                 next, m->dir, stats.seed);
    }
    alog_segment_info *segs;
    size_t nsegs;
    TU_OK(alog_segments(log, &segs, &nsegs));
    alog_free(segs);
    TU_OK(alog_close(log));
    alog_verify_report rep;
    e = alog_verify(m->dir, &rep, NULL, NULL);
    if (e) fail_msg("round %d: alog_verify -> %s: %s (log %s)", round, alog_err_name(e),
                    alog_last_error(), m->dir);
    assert_int_equal(rep.records, (uint64_t)next);
    m->checked_next = next;
    stats.checks++;
    if ((uint64_t)next > stats.max_records) stats.max_records = (uint64_t)next;
    if (nsegs > stats.max_segments) stats.max_segments = nsegs;
}

/* ---- the rounds ---------------------------------------------------------------------- */

/* Parses whole messages out of buf[0, *len); keeps a partial one. */
static void take_msgs(model *m, uint8_t *buf, size_t *len, int round, int *acks_seen,
                      char *child_err, size_t err_len) {
    size_t at = 0;
    while (*len - at >= sizeof(ack_msg)) {
        ack_msg a;
        memcpy(&a, buf + at, sizeof a);
        if (a.kind == MSG_ERROR) {
            if (*len - at - sizeof a < a.count) break;
            size_t n = a.count < err_len - 1 ? a.count : err_len - 1;
            memcpy(child_err, buf + at + sizeof a, n);
            child_err[n] = '\0';
            at += sizeof a + a.count;
            continue;
        }
        model_ack(m, &a, round);
        (*acks_seen)++;
        at += sizeof a;
    }
    memmove(buf, buf + at, *len - at);
    *len -= at;
}

static void run_round(model *m, const round_params *p) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_main(m->dir, p, fds[1], parent);
    }
    close(fds[1]);
    uint8_t buf[8192];
    size_t len = 0;
    int acks = 0, eof = 0;
    char child_err[512] = "";
    int64_t t0 = mono_us();
    int64_t limit = p->kill_after_acks > 0 ? t0 + ACK_WAIT_LIMIT_MS * 1000ll : t0 + p->delay_us;
    for (;;) {
        if (p->kill_after_acks > 0 && acks >= p->kill_after_acks) break;
        int64_t now = mono_us();
        if (now >= limit) {
            if (p->kill_after_acks > 0)
                fail_msg("round %d: the child acknowledged only %d appends in %d ms (%s)",
                         p->round, acks, ACK_WAIT_LIMIT_MS, child_err);
            break;
        }
        struct pollfd pf = {fds[0], POLLIN, 0};
        int64_t left = limit - now;
        struct timespec ts = {(time_t)(left / 1000000), (long)(left % 1000000) * 1000};
        int rc = ppoll(&pf, 1, &ts, NULL);
        if (rc < 0 && errno == EINTR) continue;
        assert_true(rc >= 0);
        if (rc == 0) continue;
        ssize_t r = read(fds[0], buf + len, sizeof buf - len);
        if (r < 0 && errno == EINTR) continue;
        assert_true(r >= 0);
        if (r == 0) {
            eof = 1; /* the child ended by itself: an error */
            break;
        }
        len += (size_t)r;
        take_msgs(m, buf, &len, p->round, &acks, child_err, sizeof child_err);
    }
    kill(pid, SIGKILL);
    int st;
    while (waitpid(pid, &st, 0) < 0) assert_int_equal(errno, EINTR);
    /* Everything the child wrote before it died is in the pipe. */
    while (!eof) {
        ssize_t r = read(fds[0], buf + len, sizeof buf - len);
        if (r < 0 && errno == EINTR) continue;
        assert_true(r >= 0);
        if (r == 0) break;
        len += (size_t)r;
        take_msgs(m, buf, &len, p->round, &acks, child_err, sizeof child_err);
    }
    close(fds[0]);
    if (child_err[0])
        fail_msg("round %d: the child failed: %s (log %s, ALOG_SEED=%" PRIu64 ")", p->round,
                 child_err, m->dir, stats.seed);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
        fail_msg("round %d: the child ended by itself (status 0x%x)", p->round, st);
    /* A partial message cannot be: pipe writes of under PIPE_BUF bytes are atomic. */
    assert_int_equal(len, 0);
    if (acks == 0) stats.killed_before_ack++;
}

static void test_kill9_torture(void **state) {
    (void)state;
    const char *s = getenv("ALOG_SEED");
    stats.seed = s && *s ? strtoull(s, NULL, 10)
                         : (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid() << 20 ^
                               (uint64_t)mono_us();
    int rounds = 200;
    const char *lg = getenv("ALOG_LONG");
    if (lg && !strcmp(lg, "1")) rounds = 10000;
    const char *rn = getenv("ALOG_KILL9_ROUNDS");
    if (rn && *rn) rounds = atoi(rn) > 0 ? atoi(rn) : 1;
    stats.rounds = rounds;
    print_message("kill -9 torture: %d rounds, ALOG_SEED=%" PRIu64 "\n", rounds, stats.seed);
    uint64_t rng = stats.seed;
    model m = {0};
    int64_t t0 = mono_us();
    for (int round = 0; round < rounds; round++) {
        if (round % EPOCH_ROUNDS == 0) model_reset(&m, round);
        round_params p = {0};
        uint64_t r = tu_splitmix64(&rng);
        p.round = round;
        p.nthreads = 1 + (int)(r % MAX_THREADS);
        switch ((r >> 4) % 3) {
        case 0: p.policy = ALOG_FSYNC_ALWAYS; break;
        case 1: p.policy = ALOG_FSYNC_NEVER; break;
        default:
            p.policy = ALOG_FSYNC_INTERVAL;
            p.interval_ms = 1 + (uint32_t)((r >> 8) % 20);
            break;
        }
        static const alog_compression codecs[] = {
            ALOG_COMPRESSION_NONE, ALOG_COMPRESSION_NONE, ALOG_COMPRESSION_NONE,
            ALOG_COMPRESSION_LZ4,  ALOG_COMPRESSION_ZSTD, ALOG_COMPRESSION_SNAPPY,
            ALOG_COMPRESSION_GZIP};
        p.compression = codecs[(r >> 16) % (sizeof codecs / sizeof *codecs)];
        uint64_t r2 = tu_splitmix64(&rng);
        if (r2 % 2) {
            p.kill_after_acks = 1 + (int)((r2 >> 8) % MAX_ACKS_BEFORE_KILL);
            stats.kill_by_acks++;
        } else {
            p.delay_us = (int)((r2 >> 8) % (MAX_DELAY_US + 1));
            stats.kill_by_delay++;
        }
        int last_of_log = round % EPOCH_ROUNDS == EPOCH_ROUNDS - 1 || round == rounds - 1;
        p.chained = !last_of_log && (r2 >> 40) % 5 == 0;
        p.child_seed = tu_splitmix64(&rng);
        m.nthreads[round - m.first_round] = p.nthreads;

        run_round(&m, &p);
        if (p.chained) {
            stats.chained++;
        } else {
            alog_options o = round_options(&p);
            model_check(&m, round, &o);
        }
    }
    double secs = (double)(mono_us() - t0) / 1e6;
    print_message("kill -9 torture: %d rounds in %.1f s (ALOG_SEED=%" PRIu64 ")\n", rounds, secs,
                  stats.seed);
    print_message("  kills: %" PRIu64 " after a random delay, %" PRIu64 " after a random number "
                  "of acks; %" PRIu64 " before any ack; %" PRIu64 " left to the next child's "
                  "recovery\n", stats.kill_by_delay, stats.kill_by_acks, stats.killed_before_ack,
                  stats.chained);
    print_message("  acknowledged records: %" PRIu64 " (%" PRIu64 " durable, %" PRIu64
                  " page cache); checked at their offsets: %" PRIu64 " times\n", stats.acks,
                  stats.acked_durable, stats.acked_plain, stats.acked_checked);
    print_message("  records found beyond the acknowledged ones: %" PRIu64 "\n", stats.beyond);
    print_message("  recoveries: %" PRIu64 " checks, %" PRIu64 " unclean, %" PRIu64
                  " cut bytes (%" PRIu64 " bytes in all)\n", stats.checks, stats.unclean,
                  stats.cut_recoveries, stats.cut_bytes);
    print_message("  records read and checked: %" PRIu64 "; largest log: %" PRIu64
                  " records in %" PRIu64 " segments\n", stats.records_checked, stats.max_records,
                  stats.max_segments);
    print_message("  recoveries that found preallocated zeros after the last batch: %" PRIu64
                  "\n", stats.zero_tails);
    /* Durable rounds zero-fill ahead (prealloc.c): the crash states must include it. */
    if (rounds >= 100) assert_true(stats.zero_tails > 0);
    tu_rmrf(m.dir);
    free(m.dir);
    free(m.ack);
    free(m.ack_kind);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_torture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
