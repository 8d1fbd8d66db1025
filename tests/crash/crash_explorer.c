/*
 * crash_explorer.c -- proves crash consistency by building the file states a power cut
 * could leave, at every point of a recorded workload, and opening the log on each.
 *
 * Phase 1 runs a workload through a recording io table (src/io.h, the engine's one I/O
 * seam): appends with every fsync policy and with durable acknowledgement, segment
 * rolls, index writes, checkpoints, a clean close and reopen, retention deleting
 * segments. Every mutating operation is logged with its data, and the workload notes
 * when each record was acknowledged as durable (after which operation).
 *
 * Phase 2 replays the log into a model of what a file system guarantees (the model of
 * SQLite's crash-test VFS and of ALICE): a file's content is durable as of its last
 * fsync/fdatasync, and any subset of the writes and truncations since may have reached
 * the disk, each write possibly torn at 512-byte sector granularity; names created,
 * renamed or removed since the directory's last fsync may be lost (a prefix of them,
 * in order, survives). After each operation k it builds several such states (always the
 * one with only durable data and the one with everything, then random ones; seeded),
 * writes each to a directory, and checks:
 *   - alog_open succeeds;
 *   - every record acknowledged durable before operation k is present, byte-identical;
 *   - no record is returned that was never appended (or whose append had not started);
 *   - offsets are contiguous from the first offset, which retention may only have
 *     moved as far as the segments it had deleted;
 *   - alog_verify passes after close (indexes agree with the data, CRCs hold).
 * Any violation fails the test with the state's description; the counts are printed.
 * ALOG_LONG=1 explores ten times as many states; ALOG_SEED picks the random seed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alog.h"
#include "io.h"

/* ---- the operation log ---------------------------------------------------------- */

enum op_kind { OP_CREATE, OP_WRITE, OP_TRUNC, OP_SYNC, OP_RENAME, OP_UNLINK, OP_DIRSYNC };

typedef struct op {
    enum op_kind kind;
    int file;          /* file id (create, write, trunc, sync) */
    uint64_t off, len; /* write: offset and length; trunc: new length */
    uint8_t *data;     /* write */
    char name[64], name2[64]; /* create/unlink: name; rename: name -> name2 */
} op;

static struct {
    pthread_mutex_t mu;
    op *ops;
    size_t n, cap;
    int nfiles;
    char dir[700];
    int fd_file[65536]; /* fd -> file id + 1 (0: not ours), -1: the directory */
    char names[4096][64]; /* current name of each file id while recording, for lookups */
    int live[4096];       /* file id currently bound to its name */
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void fail_now(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail_now(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "crash_explorer: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static op *op_add(enum op_kind k) {
    if (rec.n == rec.cap) {
        rec.cap = rec.cap ? rec.cap * 2 : 1024;
        rec.ops = realloc(rec.ops, rec.cap * sizeof *rec.ops);
        if (!rec.ops) fail_now("out of memory");
    }
    op *o = &rec.ops[rec.n++];
    memset(o, 0, sizeof *o);
    o->kind = k;
    return o;
}

/* The file name of path inside the log directory, or NULL if it is the directory or
 * outside it. */
static const char *base_name(const char *path) {
    size_t n = strlen(rec.dir);
    if (strncmp(path, rec.dir, n) != 0) return NULL;
    if (path[n] == '\0') return NULL;
    if (path[n] != '/') return NULL;
    return path + n + 1;
}

static int find_live(const char *name) {
    for (int i = 0; i < rec.nfiles; i++)
        if (rec.live[i] && !strcmp(rec.names[i], name)) return i;
    return -1;
}

static int r_open(const char *path, int flags, mode_t mode) {
    pthread_mutex_lock(&rec.mu);
    const char *name = base_name(path);
    int existed = name && find_live(name) >= 0;
    int fd = io_posix.open(path, flags, mode);
    if (fd >= 0 && fd < 65536) {
        if (!name) {
            rec.fd_file[fd] = (flags & O_DIRECTORY) ? -1 : 0;
        } else {
            int id = find_live(name);
            if (!existed && (flags & O_CREAT)) {
                if (rec.nfiles >= 4096) fail_now("too many files");
                id = rec.nfiles++;
                snprintf(rec.names[id], sizeof rec.names[id], "%s", name);
                rec.live[id] = 1;
                op *o = op_add(OP_CREATE);
                o->file = id;
                snprintf(o->name, sizeof o->name, "%s", name);
            } else if (id >= 0 && (flags & O_TRUNC)) {
                op *o = op_add(OP_TRUNC);
                o->file = id;
                o->len = 0;
            }
            rec.fd_file[fd] = id >= 0 ? id + 1 : 0;
        }
    }
    pthread_mutex_unlock(&rec.mu);
    return fd;
}

static int fd_id(int fd) { return fd >= 0 && fd < 65536 ? rec.fd_file[fd] : 0; }

static ssize_t r_pwrite(int fd, const void *buf, size_t n, off_t off) {
    pthread_mutex_lock(&rec.mu);
    ssize_t w = io_posix.pwrite(fd, buf, n, off);
    int id = fd_id(fd);
    if (w > 0 && id > 0) {
        op *o = op_add(OP_WRITE);
        o->file = id - 1;
        o->off = (uint64_t)off;
        o->len = (uint64_t)w;
        o->data = malloc((size_t)w);
        if (!o->data) fail_now("out of memory");
        memcpy(o->data, buf, (size_t)w);
    }
    pthread_mutex_unlock(&rec.mu);
    return w;
}

static int r_ftruncate(int fd, off_t len) {
    pthread_mutex_lock(&rec.mu);
    int r = io_posix.ftruncate(fd, len);
    int id = fd_id(fd);
    if (r == 0 && id > 0) {
        op *o = op_add(OP_TRUNC);
        o->file = id - 1;
        o->len = (uint64_t)len;
    }
    pthread_mutex_unlock(&rec.mu);
    return r;
}

static int r_sync(int fd, int data_only) {
    pthread_mutex_lock(&rec.mu);
    int r = data_only ? io_posix.fdatasync(fd) : io_posix.fsync(fd);
    int id = fd_id(fd);
    if (r == 0 && id > 0) op_add(OP_SYNC)->file = id - 1;
    if (r == 0 && id == -1) op_add(OP_DIRSYNC);
    pthread_mutex_unlock(&rec.mu);
    return r;
}
static int r_fsync(int fd) { return r_sync(fd, 0); }
static int r_fdatasync(int fd) { return r_sync(fd, 1); }

static int r_rename(const char *from, const char *to) {
    pthread_mutex_lock(&rec.mu);
    int r = io_posix.rename(from, to);
    const char *a = base_name(from), *b = base_name(to);
    if (r == 0 && a && b) {
        int ida = find_live(a), idb = find_live(b);
        if (idb >= 0) rec.live[idb] = 0;
        if (ida >= 0) snprintf(rec.names[ida], sizeof rec.names[ida], "%s", b);
        op *o = op_add(OP_RENAME);
        snprintf(o->name, sizeof o->name, "%s", a);
        snprintf(o->name2, sizeof o->name2, "%s", b);
    }
    pthread_mutex_unlock(&rec.mu);
    return r;
}

static int r_unlink(const char *path) {
    pthread_mutex_lock(&rec.mu);
    int r = io_posix.unlink(path);
    const char *a = base_name(path);
    if (r == 0 && a) {
        int id = find_live(a);
        if (id >= 0) rec.live[id] = 0;
        snprintf(op_add(OP_UNLINK)->name, sizeof rec.ops[0].name, "%s", a);
    }
    pthread_mutex_unlock(&rec.mu);
    return r;
}

static int r_close(int fd) {
    pthread_mutex_lock(&rec.mu);
    if (fd >= 0 && fd < 65536) rec.fd_file[fd] = 0;
    int r = io_posix.close(fd);
    pthread_mutex_unlock(&rec.mu);
    return r;
}

static size_t op_count(void) {
    pthread_mutex_lock(&rec.mu);
    size_t n = rec.n;
    pthread_mutex_unlock(&rec.mu);
    return n;
}

/* ---- the workload --------------------------------------------------------------- */

typedef struct expect {
    size_t started; /* ops before its append started */
    size_t acked;   /* ops before it was known durable; SIZE_MAX: never */
} expect;

static expect *ex;
static size_t nrec, ex_cap;

static void record_content(size_t i, char *key, size_t *kl, char *val, size_t *vl) {
    *kl = (size_t)snprintf(key, 32, "k%zu", i);
    uint64_t x = i * 0x9E3779B97F4A7C15ull + 1;
    size_t n = 20 + i % 90;
    int p = snprintf(val, 160, "v%zu:", i);
    for (size_t j = (size_t)p; j < n; j++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        val[j] = (char)('a' + x % 26);
    }
    *vl = n > (size_t)p ? n : (size_t)p;
}

static void ack_upto(int64_t next) {
    size_t now = op_count();
    for (size_t i = 0; i < nrec && (int64_t)i < next; i++)
        if (ex[i].acked == SIZE_MAX) ex[i].acked = now;
}

/* Appends n records (one batch) with the given flags. */
static void append_batch(alog *log, size_t n, unsigned flags) {
    alog_record recs[16];
    char keys[16][32], vals[16][160];
    alog_header hdr = {"h", 1, "x", 1};
    if (nrec + n > ex_cap) {
        ex_cap = (nrec + n) * 2;
        ex = realloc(ex, ex_cap * sizeof *ex);
        if (!ex) fail_now("out of memory");
    }
    size_t started = op_count();
    for (size_t j = 0; j < n; j++) {
        size_t i = nrec + j, kl, vl;
        record_content(i, keys[j], &kl, vals[j], &vl);
        recs[j] = (alog_record){0, 1000 + (int64_t)i, keys[j], kl, vals[j], vl,
                                i % 3 ? NULL : &hdr, i % 3 ? 0 : 1};
        ex[i] = (expect){started, SIZE_MAX};
    }
    int64_t first;
    alog_err e = alog_append_ex(log, recs, n, flags, &first);
    if (e) fail_now("workload append: %s", alog_last_error());
    if (first != (int64_t)nrec) fail_now("workload: offset %" PRId64 ", expected %zu", first, nrec);
    nrec += n;
    if (flags & ALOG_APPEND_DURABLE) ack_upto((int64_t)nrec);
    ack_upto(alog_durable_offset(log));
}

static alog_options wl_opts(alog_fsync_policy p) {
    alog_options o;
    alog_options_init(&o);
    o.segment_bytes = 3000;
    o.index_interval_bytes = 300;
    o.fsync_policy = p;
    o.fsync_interval_ms = 1;
    o.preallocate_bytes = 1024; /* zero-filled space ahead, in steps the segments fit */
    return o;
}

static void run_workload(const char *dir) {
    alog *log;
    /* 1. fsync never, explicit syncs now and then. */
    alog_options o = wl_opts(ALOG_FSYNC_NEVER);
    if (alog_open(dir, &o, &log)) fail_now("open: %s", alog_last_error());
    for (int i = 0; i < 40; i++) {
        append_batch(log, 1 + (size_t)(i % 4), 0);
        if (i % 9 == 8) {
            if (alog_sync(log)) fail_now("sync: %s", alog_last_error());
            ack_upto(alog_durable_offset(log));
        }
    }
    /* 2. durable appends (group commit path). */
    for (int i = 0; i < 40; i++) append_batch(log, 1 + (size_t)(i % 3), ALOG_APPEND_DURABLE);
    if (alog_close(log)) fail_now("close: %s", alog_last_error());
    ack_upto((int64_t)nrec); /* a clean close is durable */
    /* 3. fsync always. */
    o = wl_opts(ALOG_FSYNC_ALWAYS);
    if (alog_open(dir, &o, &log)) fail_now("reopen: %s", alog_last_error());
    for (int i = 0; i < 30; i++) append_batch(log, 1 + (size_t)(i % 2), 0);
    if (alog_close(log)) fail_now("close: %s", alog_last_error());
    ack_upto((int64_t)nrec);
    /* 4. fsync every 1 ms (the log's thread syncs too), then retention. */
    o = wl_opts(ALOG_FSYNC_INTERVAL);
    o.retention_bytes = 9000;
    if (alog_open(dir, &o, &log)) fail_now("reopen: %s", alog_last_error());
    for (int i = 0; i < 60; i++) {
        append_batch(log, 1 + (size_t)(i % 5), 0);
        if (i % 10 == 9) {
            struct timespec ts = {0, 3 * 1000 * 1000};
            nanosleep(&ts, NULL);
            ack_upto(alog_durable_offset(log));
        }
    }
    /* Left open: the last records stay unsynced at the end of the recording. */
    ack_upto(alog_durable_offset(log));
    io = &io_posix;
    alog_close(log);
}

/* ---- the model ------------------------------------------------------------------ */

typedef struct fbuf {
    uint8_t *p;
    size_t len, cap;
} fbuf;

static void fb_resize(fbuf *b, size_t len) {
    if (len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < len) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) fail_now("out of memory");
        b->cap = cap;
    }
    if (len > b->len) memset(b->p + b->len, 0, len - b->len);
    b->len = len;
}

static void fb_write(fbuf *b, uint64_t off, const uint8_t *d, uint64_t n) {
    if (off + n > b->len) fb_resize(b, (size_t)(off + n));
    memcpy(b->p + off, d, (size_t)n);
}

typedef struct mfile {
    fbuf durable;   /* as of the last sync */
    size_t *pend;   /* indexes of write/trunc ops since */
    size_t npend, cap;
} mfile;

typedef struct nsent {
    char name[64];
    int file;
} nsent;

typedef struct model {
    mfile files[4096];
    nsent durable_ns[256];
    int ndurable;
    size_t *ns_pend; /* indexes of create/rename/unlink ops since the last dir sync */
    size_t nns, ns_cap;
    int64_t allowed_first; /* how far retention may have moved the first offset */
} model;

static model M;

static void push_idx(size_t **v, size_t *n, size_t *cap, size_t x) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = realloc(*v, *cap * sizeof **v);
        if (!*v) fail_now("out of memory");
    }
    (*v)[(*n)++] = x;
}

static void apply_file_op(fbuf *b, const op *o) {
    if (o->kind == OP_WRITE) fb_write(b, o->off, o->data, o->len);
    else if (o->kind == OP_TRUNC) fb_resize(b, (size_t)o->len);
}

/* Applies a namespace op to a name table. */
static void ns_apply(nsent *ns, int *n, const op *o) {
    if (o->kind == OP_CREATE) {
        for (int i = 0; i < *n; i++)
            if (!strcmp(ns[i].name, o->name)) {
                ns[i].file = o->file;
                return;
            }
        if (*n >= 256) fail_now("too many names");
        snprintf(ns[*n].name, sizeof ns[*n].name, "%s", o->name);
        ns[(*n)++].file = o->file;
    } else if (o->kind == OP_UNLINK) {
        for (int i = 0; i < *n; i++)
            if (!strcmp(ns[i].name, o->name)) {
                ns[i] = ns[--*n];
                return;
            }
    } else if (o->kind == OP_RENAME) {
        int from = -1;
        for (int i = 0; i < *n; i++)
            if (!strcmp(ns[i].name, o->name)) from = i;
        if (from < 0) return;
        int file = ns[from].file;
        ns[from] = ns[--*n];
        op c = {.kind = OP_CREATE, .file = file};
        snprintf(c.name, sizeof c.name, "%s", o->name2);
        ns_apply(ns, n, &c);
    }
}

static int64_t seg_base(const char *name) {
    size_t n = strlen(name);
    if (n != 24 || strcmp(name + 20, ".log")) return -1;
    return strtoll(name, NULL, 10);
}

/* The current namespace (durable + all pending), for retention bookkeeping. */
static void current_ns(nsent *ns, int *n) {
    memcpy(ns, M.durable_ns, sizeof M.durable_ns);
    *n = M.ndurable;
    for (size_t i = 0; i < M.nns; i++) ns_apply(ns, n, &rec.ops[M.ns_pend[i]]);
}

static void model_apply(size_t k) {
    const op *o = &rec.ops[k];
    switch (o->kind) {
    case OP_WRITE:
    case OP_TRUNC: {
        mfile *f = &M.files[o->file];
        push_idx(&f->pend, &f->npend, &f->cap, k);
        break;
    }
    case OP_SYNC: {
        mfile *f = &M.files[o->file];
        for (size_t i = 0; i < f->npend; i++) apply_file_op(&f->durable, &rec.ops[f->pend[i]]);
        f->npend = 0;
        break;
    }
    case OP_UNLINK: {
        int64_t b = seg_base(o->name);
        if (b >= 0) { /* retention: the next segment's base is the lowest first offset */
            nsent ns[256];
            int n;
            current_ns(ns, &n);
            int64_t next = INT64_MAX;
            for (int i = 0; i < n; i++) {
                int64_t x = seg_base(ns[i].name);
                if (x > b && x < next) next = x;
            }
            if (next != INT64_MAX && next > M.allowed_first) M.allowed_first = next;
        }
        push_idx(&M.ns_pend, &M.nns, &M.ns_cap, k);
        break;
    }
    case OP_CREATE:
    case OP_RENAME:
        push_idx(&M.ns_pend, &M.nns, &M.ns_cap, k);
        break;
    case OP_DIRSYNC:
        for (size_t i = 0; i < M.nns; i++) ns_apply(M.durable_ns, &M.ndurable, &rec.ops[M.ns_pend[i]]);
        M.nns = 0;
        break;
    }
}

/* ---- building and checking crash states ----------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

enum mode { ONLY_DURABLE, EVERYTHING, RANDOM };

/* Content of file f in a crash state: durable, then each pending op kept or lost (and
 * a kept write torn at 512-byte sectors half of the time). */
static void file_state(const mfile *f, enum mode m, fbuf *out) {
    fb_resize(out, 0);
    fb_resize(out, f->durable.len);
    if (f->durable.len) memcpy(out->p, f->durable.p, f->durable.len);
    for (size_t i = 0; i < f->npend; i++) {
        const op *o = &rec.ops[f->pend[i]];
        if (m == ONLY_DURABLE) break;
        if (m == RANDOM && rnd() % 2) continue;
        if (o->kind == OP_WRITE && m == RANDOM && rnd() % 2) {
            /* torn: each 512-byte sector of the write reached the disk or not */
            uint64_t s = o->off, end = o->off + o->len;
            while (s < end) {
                uint64_t se = (s / 512 + 1) * 512;
                if (se > end) se = end;
                if (rnd() % 2) fb_write(out, s, o->data + (s - o->off), se - s);
                s = se;
            }
            continue;
        }
        apply_file_op(out, o);
    }
}

static void rm_dir_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char p[2048];
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
}

static struct {
    size_t states, records_checked, durable_checked, cut_bytes_states;
} stats;

/* Builds one state after ops [0, k) into dir and checks it. Returns 0 if sound. */
static int check_state(const char *dir, size_t k, enum mode m, char *why, size_t whylen) {
    nsent ns[256];
    int n = M.ndurable;
    memcpy(ns, M.durable_ns, sizeof M.durable_ns);
    size_t keep = M.nns;
    if (m == ONLY_DURABLE) keep = 0;
    if (m == RANDOM) keep = (size_t)(rnd() % (M.nns + 1));
    for (size_t i = 0; i < keep; i++) ns_apply(ns, &n, &rec.ops[M.ns_pend[i]]);
    rm_dir_files(dir);
    fbuf fb = {0};
    char p[2048];
    for (int i = 0; i < n; i++) {
        file_state(&M.files[ns[i].file], m, &fb);
        snprintf(p, sizeof p, "%.1900s/%.63s", dir, ns[i].name);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) fail_now("create %s: %s", p, strerror(errno));
        if (fb.len && write(fd, fb.p, fb.len) != (ssize_t)fb.len) fail_now("write %s", p);
        close(fd);
    }
    free(fb.p);
    stats.states++;

    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.create_if_missing = 1;
    alog *log;
    if (alog_open(dir, &o, &log)) {
        snprintf(why, whylen, "open failed: %s", alog_last_error());
        return -1;
    }
    if (alog_recovery(log)->bytes_truncated) stats.cut_bytes_states++;
    int64_t first = alog_first_offset(log), next = alog_next_offset(log);
    int rc = 0;
    if (first > M.allowed_first) {
        snprintf(why, whylen, "first offset %" PRId64 ", but retention had deleted only "
                 "below %" PRId64, first, M.allowed_first);
        rc = -1;
    }
    alog_cursor *c = NULL;
    if (!rc && alog_cursor_open(log, first, &c)) {
        snprintf(why, whylen, "cursor at %" PRId64 ": %s", first, alog_last_error());
        rc = -1;
    }
    int64_t want = first;
    alog_record r;
    alog_err e = ALOG_OK;
    while (!rc && (e = alog_cursor_next(c, &r)) == ALOG_OK) {
        char key[32], val[160];
        size_t kl, vl;
        if (r.offset != want) {
            snprintf(why, whylen, "offset %" PRId64 " where %" PRId64 " was expected", r.offset,
                     want);
            rc = -1;
            break;
        }
        if ((size_t)r.offset >= nrec || ex[r.offset].started >= k) {
            snprintf(why, whylen, "record at offset %" PRId64 " was never appended (by op %zu)",
                     r.offset, k);
            rc = -1;
            break;
        }
        record_content((size_t)r.offset, key, &kl, val, &vl);
        if (r.key_len != kl || memcmp(r.key, key, kl) || r.value_len != vl ||
            memcmp(r.value, val, vl) || r.timestamp != 1000 + r.offset ||
            r.header_count != (r.offset % 3 ? 0u : 1u)) {
            snprintf(why, whylen, "record at offset %" PRId64 " differs from what was appended",
                     r.offset);
            rc = -1;
            break;
        }
        stats.records_checked++;
        want++;
    }
    if (!rc && e != ALOG_EOF) {
        snprintf(why, whylen, "read at %" PRId64 ": %s", want, alog_last_error());
        rc = -1;
    }
    if (!rc && want != next) {
        snprintf(why, whylen, "read up to %" PRId64 " but next offset is %" PRId64, want, next);
        rc = -1;
    }
    for (size_t i = 0; !rc && i < nrec; i++) {
        if (ex[i].acked > k) continue;
        if ((int64_t)i < first) continue; /* deleted by retention (bounded above) */
        stats.durable_checked++;
        if ((int64_t)i >= next) {
            snprintf(why, whylen, "record %zu was acknowledged durable before op %zu (at op "
                     "%zu) but is missing (log ends at %" PRId64 ")", i, k, ex[i].acked, next);
            rc = -1;
        }
    }
    alog_cursor_close(c);
    if (alog_close(log) && !rc) {
        snprintf(why, whylen, "close: %s", alog_last_error());
        rc = -1;
    }
    alog_verify_report rep;
    memset(&rep, 0, sizeof rep);
    if (!rc && alog_verify(dir, &rep, NULL, NULL)) {
        snprintf(why, whylen, "verify: %s", alog_last_error());
        rc = -1;
    }
    return rc;
}

static const char *mode_name(enum mode m) {
    return m == ONLY_DURABLE ? "only durable data" : m == EVERYTHING ? "everything written"
                                                                      : "random subset";
}

int main(void) {
    const char *tmp = getenv("ALOG_TEST_TMP");
    char base[512], wdir[600], sdir[600];
    snprintf(base, sizeof base, "%s/crash-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    mkdir(tmp && *tmp ? tmp : "/tmp", 0755);
    if (mkdir(base, 0755) != 0) fail_now("mkdir %s: %s", base, strerror(errno));
    snprintf(wdir, sizeof wdir, "%s/workload", base);
    /* States are many small directories: tmpfs if there is one (fsync costs nothing). */
    struct stat st;
    if (stat("/dev/shm", &st) == 0 && access("/dev/shm", W_OK) == 0)
        snprintf(sdir, sizeof sdir, "/dev/shm/alog-crash-%d", (int)getpid());
    else
        snprintf(sdir, sizeof sdir, "%s/state", base);
    if (mkdir(wdir, 0755) != 0 || mkdir(sdir, 0755) != 0) fail_now("mkdir: %s", strerror(errno));

    const char *seed_env = getenv("ALOG_SEED");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 10) : (uint64_t)time(NULL);
    rng_state = seed * 0x9E3779B97F4A7C15ull | 1;
    int long_mode = getenv("ALOG_LONG") && atoi(getenv("ALOG_LONG")) > 0;
    size_t target = long_mode ? 100000 : 10000;

    /* Phase 1: record. */
    snprintf(rec.dir, sizeof rec.dir, "%s", wdir);
    io_ops recorder = io_posix;
    recorder.open = r_open;
    recorder.pwrite = r_pwrite;
    recorder.ftruncate = r_ftruncate;
    recorder.fsync = r_fsync;
    recorder.fdatasync = r_fdatasync;
    recorder.rename = r_rename;
    recorder.unlink = r_unlink;
    recorder.close = r_close;
    io = &recorder;
    run_workload(wdir);
    io = &io_posix;
    size_t K = rec.n;
    size_t acked = 0;
    for (size_t i = 0; i < nrec; i++) acked += ex[i].acked != SIZE_MAX;
    /* Zero-filled space ahead of the appends (prealloc.c) must be in the recording,
     * or its crash states are not explored. */
    size_t zero_writes = 0;
    for (size_t i = 0; i < K; i++) {
        const op *o = &rec.ops[i];
        if (o->kind != OP_WRITE || o->len < 64) continue;
        size_t z = 0;
        while (z < o->len && !o->data[z]) z++;
        zero_writes += z == o->len;
    }
    printf("crash explorer: seed %" PRIu64 "; workload: %zu records (%zu acknowledged durable), "
           "%zu recorded operations (%zu zero-fills ahead of the appends)\n", seed, nrec, acked,
           K, zero_writes);
    if (zero_writes == 0) fail_now("the workload preallocated nothing: prealloc.c is not explored");

    /* Phase 2: every crash point, several states each. */
    size_t per_point = (target + K) / (K + 1);
    if (per_point < 3) per_point = 3;
    char why[768];
    size_t violations = 0;
    for (size_t k = 0; k <= K; k++) {
        for (size_t s = 0; s < per_point; s++) {
            enum mode m = s == 0 ? ONLY_DURABLE : s == 1 ? EVERYTHING : RANDOM;
            uint64_t state_seed = rng_state;
            if (check_state(sdir, k, m, why, sizeof why) != 0) {
                violations++;
                if (violations <= 10)
                    fprintf(stderr, "VIOLATION after op %zu of %zu (%s, rng %" PRIu64 "): %s\n",
                            k, K, mode_name(m), state_seed, why);
            }
        }
        if (k < K) model_apply(k);
    }
    rm_dir_files(sdir);
    rmdir(sdir);
    printf("crash explorer: %zu crash states over %zu crash points; %zu records read back, "
           "%zu acknowledged-durable records checked present, %zu states needed a cut; "
           "%zu violations\n", stats.states, K + 1, stats.records_checked, stats.durable_checked,
           stats.cut_bytes_states, violations);
    if (violations) return 1;
    rm_dir_files(wdir);
    rmdir(wdir);
    rmdir(base);
    return 0;
}
