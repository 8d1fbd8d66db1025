/*
 * log.c -- the alog handle: a directory of segments, the append path, segment roll,
 * fsync policy, retention, and the public calls that tie them together.
 *
 * A log directory holds:
 *   alog.meta         "alog-format N": the on-disk format version (docs/FORMAT.md)
 *   alog.lock         flock()ed by the one writer; holds its pid for error messages
 *   recovery-point    the recovery checkpoint (recovery.c)
 *   <base>.log/.index/.timeindex   the segments, base offsets zero-padded to 20 digits
 *
 * Appends: a batch is encoded and checksummed by the caller's thread into the log's
 * encode buffer, stamped with the next offset, and written with one pwrite() at the
 * end of the active segment. The segment rolls when the batch would take it past
 * segment_bytes (or past Kafka's 32-bit relative offsets). Rolling seals the old
 * segment (indexes written, everything fsynced), creates the next one, fsyncs the
 * directory and writes a checkpoint, so that recovery never has to look further back
 * than the active segment.
 *
 * A failed fsync is not retried as if the data were safe (the 2018 PostgreSQL
 * lesson): the log records the failure and refuses further writes (ALOG_EFAILED)
 * until it is reopened, which recovers from what is really on disk.
 */
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "error.h"
#include "io.h"

#define DEFAULT_SEGMENT_BYTES (1ull << 30)
#define DEFAULT_MAX_BATCH_BYTES (64u << 20)

void alog_options_init(alog_options *o) {
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
    o->segment_bytes = DEFAULT_SEGMENT_BYTES;
    o->index_interval_bytes = 4096;
    o->fsync_policy = ALOG_FSYNC_INTERVAL;
    o->fsync_interval_ms = 1000;
    o->compression = ALOG_COMPRESSION_NONE;
    o->max_batch_bytes = DEFAULT_MAX_BATCH_BYTES;
    o->create_if_missing = 1;
    o->verify_reads = 1;
}

void alog_free(void *p) { free(p); }

int64_t log_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static alog_err check_options(alog_options *o) {
    if (o->segment_bytes < 64 || o->segment_bytes > INT32_MAX)
        return err_set(ALOG_EINVAL, 0, "segment_bytes must be between 64 and %d", INT32_MAX);
    if ((unsigned)o->fsync_policy > ALOG_FSYNC_ALWAYS)
        return err_set(ALOG_EINVAL, 0, "unknown fsync policy %d", (int)o->fsync_policy);
    if ((unsigned)o->compression > ALOG_COMPRESSION_ZSTD)
        return err_set(ALOG_EINVAL, 0, "unknown compression codec %d", (int)o->compression);
    if (o->max_batch_bytes < BATCH_HEADER_SIZE + 16)
        return err_set(ALOG_EINVAL, 0, "max_batch_bytes too small");
    return ALOG_OK;
}

/* ---- the directory: meta file, lock, segment list ------------------------------ */

static alog_err read_or_write_meta(alog *log, int is_new) {
    char path[4096], buf[128];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", log->dir, LOG_META_FILE);
    alog_err e = io_read_small_file(path, buf, sizeof buf - 1, &len);
    if (e == ALOG_ENOENT) {
        err_clear();
        if (log->opts.read_only || !is_new)
            return err_set(ALOG_ENOENT, 0, "%s: not an alog log (no %s)", log->dir, LOG_META_FILE);
        int n = snprintf(buf, sizeof buf, "alog-format %d\n", ALOG_FORMAT_VERSION);
        return io_replace_file(log->dir, LOG_META_FILE, buf, (size_t)n);
    }
    if (e) return e;
    buf[len] = '\0';
    int version, n = 0;
    if (sscanf(buf, "alog-format %d\n%n", &version, &n) != 1 || n != (int)len || version < 1)
        return err_set(ALOG_ECORRUPT, 0, "%s: not a valid format file", path);
    if (version > ALOG_FORMAT_VERSION)
        return err_set(ALOG_EFORMAT, 0, "%s: log format version %d is newer than this build "
                       "supports (%d)", path, version, ALOG_FORMAT_VERSION);
    return ALOG_OK;
}

/* mkdir -p: creates dir and any missing parents. */
static alog_err make_dirs(const char *dir) {
    char p[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof p) return err_set(ALOG_EINVAL, 0, "bad directory name '%s'", dir);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (io->mkdir(p, 0755) != 0 && errno != EEXIST) return err_sys(errno, "create directory %s", p);
        p[i] = c;
    }
    return ALOG_OK;
}

/* 1 if dir holds nothing, or only what a creation interrupted before alog.meta was
 * written can leave (the lock file, a temp file of alog.meta). */
static int dir_is_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    int empty = 1;
    while (empty && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
            strcmp(de->d_name, LOG_LOCK_FILE) && strcmp(de->d_name, LOG_META_FILE ".tmp"))
            empty = 0;
    closedir(d);
    return empty;
}

static alog_err take_lock(alog *log) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", log->dir, LOG_LOCK_FILE);
    int fd = io->open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) return err_sys(errno, "open %s", path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char pid[32] = "";
        ssize_t r = pread(fd, pid, sizeof pid - 1, 0);
        pid[r > 0 ? r : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        io->close(fd);
        if (err == EWOULDBLOCK)
            return err_set(ALOG_ELOCKED, err, "%s is locked for writing by process %s (%s)",
                           log->dir, pid[0] ? pid : "(unknown)", path);
        return err_sys(err, "lock %s", path);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (io->ftruncate(fd, 0) != 0 || io_pwrite_all(fd, pid, (size_t)n, 0, path) != ALOG_OK) {
        alog_err e = err_sys(errno, "write %s", path);
        io->close(fd);
        return e;
    }
    log->lock_fd = fd;
    return ALOG_OK;
}

static int parse_segment_name(const char *name, int64_t *base) {
    size_t n = strlen(name);
    if (n != 24 || strcmp(name + 20, ".log") != 0) return 0;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9') return 0;
        if (v > (INT64_MAX - (name[i] - '0')) / 10) return 0;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return 1;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static alog_err push_segment(alog *log, segment *s) {
    if (log->nsegs == log->segs_cap) {
        size_t cap = log->segs_cap ? log->segs_cap * 2 : 8;
        segment **p = realloc(log->segs, cap * sizeof *p);
        if (!p) return err_set(ALOG_ENOMEM, 0, "out of memory");
        log->segs = p;
        log->segs_cap = cap;
    }
    log->segs[log->nsegs++] = s;
    return ALOG_OK;
}

static alog_err open_segments(alog *log) {
    DIR *d = opendir(log->dir);
    if (!d) return err_sys(errno, "open directory %s", log->dir);
    int64_t *bases = NULL;
    size_t n = 0, cap = 0;
    alog_err e = ALOG_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        int64_t base;
        if (!log->opts.read_only && (!strcmp(de->d_name, LOG_CHECKPOINT_FILE ".tmp") ||
                                     !strcmp(de->d_name, LOG_META_FILE ".tmp"))) {
            /* An interrupted durable replace: the real file is intact. */
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", log->dir, de->d_name);
            io->unlink(p);
            continue;
        }
        if (!parse_segment_name(de->d_name, &base)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *nb = realloc(bases, cap * sizeof *nb);
            if (!nb) { e = err_set(ALOG_ENOMEM, 0, "out of memory"); break; }
            bases = nb;
        }
        bases[n++] = base;
    }
    closedir(d);
    if (!e && n) qsort(bases, n, sizeof *bases, cmp_i64);
    for (size_t i = 0; !e && i < n; i++) {
        segment *s;
        e = segment_open(log->dir, bases[i], !log->opts.read_only, &s);
        if (!e) {
            e = push_segment(log, s);
            if (e) segment_release(s);
        }
    }
    free(bases);
    return e;
}

/* ---- open / close --------------------------------------------------------------- */

static void log_free(alog *log) {
    for (size_t i = 0; i < log->nsegs; i++) segment_release(log->segs[i]);
    free(log->segs);
    if (log->lock_fd >= 0) io->close(log->lock_fd);
    abuf_free(&log->enc);
    abuf_free(&log->scratch);
    pthread_mutex_destroy(&log->mu);
    free(log->dir);
    free(log);
}

static alog_err log_sync_locked(alog *log, int force_checkpoint);

/* The ALOG_FSYNC_INTERVAL thread: wakes every interval and syncs if appends since the
 * last sync are still unsynced and the interval has passed since it. It holds the
 * writer's mutex during the fsync, like an inline interval sync does. A failure is
 * sticky (fail_log) and reported by the next append. */
static void *flusher_main(void *arg) {
    alog *log = arg;
    int64_t interval = (int64_t)log->opts.fsync_interval_ms;
    pthread_mutex_lock(&log->mu);
    while (!log->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (interval % 1000) * 1000000;
        ts.tv_sec += (time_t)(interval / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&log->flusher_cv, &log->mu, &ts);
        if (log->stop) break;
        segment *a = log_active(log);
        int dirty = a->base != log->synced_seg || a->st.position != log->synced_pos;
        if (dirty && !log->failed && mono_ms() - log->last_sync_ms >= interval)
            (void)log_sync_locked(log, 0);
    }
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

static void flusher_stop(alog *log) {
    if (!log->flusher_on) return;
    pthread_mutex_lock(&log->mu);
    log->stop = 1;
    pthread_cond_signal(&log->flusher_cv);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->flusher, NULL);
    pthread_cond_destroy(&log->flusher_cv);
    log->flusher_on = 0;
}

alog_err alog_open(const char *dir, const alog_options *opts, alog **out) {
    err_clear();
    if (!dir || !out) return err_set(ALOG_EINVAL, 0, "alog_open: dir and out are required");
    *out = NULL;
    alog *log = calloc(1, sizeof *log);
    if (!log) return err_set(ALOG_ENOMEM, 0, "out of memory");
    log->lock_fd = -1;
    pthread_mutex_init(&log->mu, NULL);
    alog_options_init(&log->opts);
    if (opts) {
        size_t n = opts->struct_size && opts->struct_size < sizeof *opts ? opts->struct_size
                                                                          : sizeof *opts;
        memcpy(&log->opts, opts, n);
        log->opts.struct_size = sizeof *opts;
    }
    log->dir = strdup(dir);
    alog_err e = log->dir ? check_options(&log->opts) : err_set(ALOG_ENOMEM, 0, "out of memory");
    if (e) goto fail;

    int is_new = 0;
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT) { e = err_sys(errno, "stat %s", dir); goto fail; }
        if (log->opts.read_only || !log->opts.create_if_missing) {
            e = err_set(ALOG_ENOENT, ENOENT, "%s: no such log", dir);
            goto fail;
        }
        e = make_dirs(dir);
        if (e) goto fail;
        is_new = 1;
    } else if (!S_ISDIR(st.st_mode)) {
        e = err_set(ALOG_EINVAL, ENOTDIR, "%s is not a directory", dir);
        goto fail;
    } else {
        /* An existing directory: its format version is checked before anything in it
         * is touched (lock file, leftovers). Without alog.meta it must be empty to
         * become a new log: any other directory is not ours to write into. */
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, LOG_META_FILE);
        if (access(p, F_OK) == 0) {
            e = read_or_write_meta(log, 0);
            if (e) goto fail;
        } else if (log->opts.read_only || !log->opts.create_if_missing || !dir_is_empty(dir)) {
            e = err_set(ALOG_ENOENT, 0, "%s: not an alog log (no %s)", dir, LOG_META_FILE);
            goto fail;
        } else {
            is_new = 1;
        }
    }
    if (!log->opts.read_only) {
        e = take_lock(log);
        if (e) goto fail;
    }
    e = open_segments(log);
    if (e) goto fail;
    if (is_new) {
        e = read_or_write_meta(log, 1);
        if (e) goto fail;
    }
    if (log->nsegs == 0) {
        if (log->opts.read_only) {
            e = err_set(ALOG_ENOENT, 0, "%s: the log has no segments", dir);
            goto fail;
        }
        /* No segment files. Fine for a creation interrupted before segment 0 was made;
         * but if the checkpoint says records were written, the segments were lost
         * (deleted from outside): starting over at offset 0 would reuse offsets. */
        log_checkpoint cp;
        int found = 0;
        if (!is_new && checkpoint_read(dir, &cp, &found) == ALOG_OK && found &&
            cp.st.next_offset > 0) {
            e = err_set(ALOG_ECORRUPT, 0, "%s: no segment files, but %s says the log held "
                        "offsets up to %" PRId64 "; refusing to start over at 0", dir,
                        LOG_CHECKPOINT_FILE, cp.st.next_offset - 1);
            goto fail;
        }
        segment *s;
        e = segment_create(dir, 0, &s);
        if (!e) e = push_segment(log, s);
        if (!e) e = io_fsync_dir(dir);
        if (e) goto fail;
        log->recovery.first_cut_offset = -1;
        log->recovery.clean = 1;
        e = checkpoint_write(log, 0);
        if (e) goto fail;
    } else {
        e = log_recover(log);
        if (e) goto fail;
        if (!log->opts.read_only) {
            /* Make what recovery kept durable before trusting it in a checkpoint, and
             * clear the clean flag before the first append. */
            segment *a = log_active(log);
            if (!log->recovery.clean) {
                e = segment_sync_data(a);
                if (!e && a->ofd >= 0 && io->fdatasync(a->ofd) != 0) e = err_sys(errno, "fdatasync %s", a->opath);
                if (!e && a->tfd >= 0 && io->fdatasync(a->tfd) != 0) e = err_sys(errno, "fdatasync %s", a->tpath);
            }
            if (!e) e = checkpoint_write(log, 0);
            if (e) goto fail;
        }
    }
    log->last_sync_ms = mono_ms();
    log->synced_seg = log_active(log)->base;
    log->synced_pos = log_active(log)->st.position;
    if (!log->opts.read_only && log->opts.fsync_policy == ALOG_FSYNC_INTERVAL &&
        log->opts.fsync_interval_ms > 0) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&log->flusher_cv, &ca);
        pthread_condattr_destroy(&ca);
        int rc = pthread_create(&log->flusher, NULL, flusher_main, log);
        if (rc != 0) {
            pthread_cond_destroy(&log->flusher_cv);
            e = err_set(ALOG_ENOMEM, rc, "cannot start the fsync thread: %s", strerror(rc));
            goto fail;
        }
        log->flusher_on = 1;
    }
    *out = log;
    return ALOG_OK;
fail:
    log_free(log);
    return e;
}

const alog_recovery_info *alog_recovery(const alog *log) { return &log->recovery; }


alog_err alog_close(alog *log) {
    if (!log) return ALOG_OK;
    alog_err e = ALOG_OK;
    flusher_stop(log);
    if (!log->opts.read_only && !log->failed) {
        pthread_mutex_lock(&log->mu);
        e = log_sync_locked(log, 1);
        if (!e) e = checkpoint_write(log, 1);
        pthread_mutex_unlock(&log->mu);
    }
    log_free(log);
    return e;
}

/* ---- offsets and segments ------------------------------------------------------- */

int64_t alog_first_offset(const alog *log) {
    alog *l = (alog *)log;
    pthread_mutex_lock(&l->mu);
    int64_t v = l->segs[0]->base;
    pthread_mutex_unlock(&l->mu);
    return v;
}

int64_t alog_next_offset(const alog *log) {
    alog *l = (alog *)log;
    pthread_mutex_lock(&l->mu);
    int64_t v = log_active(l)->st.next_offset;
    pthread_mutex_unlock(&l->mu);
    return v;
}

long log_find_segment(const alog *log, int64_t offset) {
    size_t lo = 0, hi = log->nsegs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (log->segs[mid]->base <= offset) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return -1;
    segment *s = log->segs[lo - 1];
    return offset < s->st.next_offset ? (long)(lo - 1) : -1;
}

/* ---- appends -------------------------------------------------------------------- */

static alog_err writable(alog *log) {
    if (log->opts.read_only) return err_set(ALOG_EREADONLY, 0, "%s is open read-only", log->dir);
    if (log->failed)
        return err_set(ALOG_EFAILED, 0, "%s: the log stopped accepting writes after an earlier "
                       "failure (%s); reopen it to recover", log->dir, log->failed_msg);
    return ALOG_OK;
}

static alog_err fail_log(alog *log, alog_err e) {
    log->failed = e;
    snprintf(log->failed_msg, sizeof log->failed_msg, "%s", alog_last_error());
    return err_set(ALOG_EFAILED, alog_last_errno(), "%s; the log accepts no more writes until "
                   "it is reopened", log->failed_msg);
}

static alog_err log_retention_locked(alog *log, uint64_t *deleted);

static alog_err log_roll(alog *log) {
    segment *a = log_active(log);
    alog_err e = segment_seal(a);
    if (e) return fail_log(log, e);
    segment *n;
    e = segment_create(log->dir, a->st.next_offset, &n);
    if (e) return e;
    e = push_segment(log, n);
    if (e) {
        segment_unlink(n);
        segment_release(n);
        return e;
    }
    e = io_fsync_dir(log->dir);
    if (e) return fail_log(log, e);
    log->synced_seg = n->base; /* the sealed segment was synced, the new one is empty */
    log->synced_pos = 0;
    e = checkpoint_write(log, 0);
    if (e) return e;
    return log_retention_locked(log, NULL);
}

static alog_err log_sync_locked(alog *log, int force_checkpoint) {
    segment *a = log_active(log);
    alog_err e = segment_flush_index(a);
    if (e) return e;
    e = segment_sync_data(a);
    if (e) return fail_log(log, e);
    log->last_sync_ms = mono_ms();
    log->synced_seg = a->base;
    log->synced_pos = a->st.position;
    if (force_checkpoint || checkpoint_due(log)) {
        if (a->ofd >= 0 && io->fdatasync(a->ofd) != 0)
            return fail_log(log, err_sys(errno, "fdatasync %s", a->opath));
        if (a->tfd >= 0 && io->fdatasync(a->tfd) != 0)
            return fail_log(log, err_sys(errno, "fdatasync %s", a->tpath));
        if (!force_checkpoint) return checkpoint_write(log, 0);
    }
    return ALOG_OK;
}

/* Appends the batch in buf (base offset to be stamped). Called with mu held. */
static alog_err append_locked(alog *log, uint8_t *buf, size_t len, int64_t *base_out) {
    batch_header h;
    batch_header_parse(buf, &h);
    segment *a = log_active(log);
    /* Offsets are int64: the batch's last offset must leave room for a next one. */
    if (a->st.next_offset >= INT64_MAX - h.last_offset_delta)
        return err_set(ALOG_ERANGE, 0, "%s: no offsets left after %" PRId64, log->dir,
                       a->st.next_offset - 1);
    if (a->st.position > 0 &&
        (a->st.position + len > log->opts.segment_bytes ||
         a->st.next_offset + h.last_offset_delta - a->base > (int64_t)INT32_MAX)) {
        alog_err e = log_roll(log);
        if (e) return e;
        a = log_active(log);
    }
    h.base_offset = a->st.next_offset;
    batch_set_base_offset(buf, h.base_offset);
    alog_err e = segment_append(a, buf, len, &h, log->opts.index_interval_bytes);
    if (e) return e == ALOG_EFAILED ? fail_log(log, e) : e;
    if (base_out) *base_out = h.base_offset;
    if (log->opts.fsync_policy == ALOG_FSYNC_ALWAYS ||
        (log->opts.fsync_policy == ALOG_FSYNC_INTERVAL &&
         mono_ms() - log->last_sync_ms >= (int64_t)log->opts.fsync_interval_ms))
        return log_sync_locked(log, 0);
    return ALOG_OK;
}

alog_err alog_append_batch(alog *log, const alog_record *recs, size_t n,
                           int64_t *first_offset_out) {
    err_clear();
    if (!log || (!recs && n)) return err_set(ALOG_EINVAL, 0, "alog_append_batch: bad arguments");
    pthread_mutex_lock(&log->mu);
    alog_err e = writable(log);
    if (!e) {
        log->enc.len = 0;
        e = batch_encode(&log->enc, recs, n, log->opts.compression, log_now_ms(),
                         log->opts.max_batch_bytes, &log->scratch);
    }
    if (!e) e = append_locked(log, log->enc.data, log->enc.len, first_offset_out);
    pthread_mutex_unlock(&log->mu);
    return e;
}

alog_err alog_append(alog *log, const alog_record *rec, int64_t *offset_out) {
    return alog_append_batch(log, rec, 1, offset_out);
}

alog_err alog_append_raw(alog *log, const void *buf, size_t len, int32_t leader_epoch,
                         int64_t *base_offset_out) {
    err_clear();
    if (!log || !buf) return err_set(ALOG_EINVAL, 0, "alog_append_raw: bad arguments");
    if (len > log->opts.max_batch_bytes)
        return err_set(ALOG_ETOOBIG, 0, "batch of %zu bytes exceeds the limit of %u", len,
                       log->opts.max_batch_bytes);
    batch_header h;
    char why_buf[160];
    const char *why = batch_check(buf, len, &h, why_buf, sizeof why_buf);
    if (!why && batch_size(&h) != len) why = "batch length does not match the bytes given";
    if (!why && (h.attributes & BATCH_ATTR_CONTROL)) why = "control batches cannot be appended";
    if (why) return err_set(ALOG_ECORRUPT, 0, "invalid batch: %s", why);
    pthread_mutex_lock(&log->mu);
    alog_err e = writable(log);
    if (!e) {
        e = batch_validate_records(buf, &h, &log->scratch,
                                   (size_t)log->opts.max_batch_bytes * 16u, 1,
                                   NULL);
        if (e == ALOG_ECORRUPT) err_prefix(e, "invalid batch");
    }
    if (!e) {
        log->enc.len = 0;
        if (abuf_append(&log->enc, buf, len)) e = err_set(ALOG_ENOMEM, 0, "out of memory");
    }
    if (!e) {
        batch_set_leader_epoch(log->enc.data, leader_epoch);
        e = append_locked(log, log->enc.data, log->enc.len, base_offset_out);
    }
    pthread_mutex_unlock(&log->mu);
    return e;
}

alog_err alog_flush(alog *log) {
    if (!log) return err_set(ALOG_EINVAL, 0, "alog_flush: no log");
    pthread_mutex_lock(&log->mu);
    alog_err e = log->opts.read_only ? ALOG_OK : segment_flush_index(log_active(log));
    pthread_mutex_unlock(&log->mu);
    return e;
}

alog_err alog_sync(alog *log) {
    err_clear();
    if (!log) return err_set(ALOG_EINVAL, 0, "alog_sync: no log");
    pthread_mutex_lock(&log->mu);
    alog_err e = writable(log);
    if (!e) e = log_sync_locked(log, 0);
    pthread_mutex_unlock(&log->mu);
    return e;
}

/* ---- retention ------------------------------------------------------------------ */

static alog_err log_retention_locked(alog *log, uint64_t *deleted) {
    uint64_t total = 0, n = 0;
    for (size_t i = 0; i < log->nsegs; i++) total += log->segs[i]->st.position;
    int64_t now = log_now_ms();
    alog_err e = ALOG_OK;
    while (log->nsegs > 1) {
        segment *s = log->segs[0];
        int by_bytes = log->opts.retention_bytes &&
                       total - s->st.position >= log->opts.retention_bytes;
        int by_time = 0;
        if (!by_bytes && log->opts.retention_ms) {
            int rebuilt;
            e = segment_load_index(s, log->opts.index_interval_bytes, &rebuilt);
            if (e) break;
            log->recovery.indexes_rebuilt += (uint64_t)rebuilt;
            by_time = s->st.max_ts >= 0 && now - s->st.max_ts > (int64_t)log->opts.retention_ms;
        }
        if (!by_bytes && !by_time) break;
        e = segment_unlink(s);
        if (e) break;
        total -= s->st.position;
        memmove(log->segs, log->segs + 1, (log->nsegs - 1) * sizeof *log->segs);
        log->nsegs--;
        segment_release(s);
        n++;
    }
    if (!e && n) e = io_fsync_dir(log->dir);
    if (deleted) *deleted = n;
    return e;
}

alog_err alog_retention_run(alog *log, uint64_t *deleted_out) {
    err_clear();
    if (!log) return err_set(ALOG_EINVAL, 0, "alog_retention_run: no log");
    pthread_mutex_lock(&log->mu);
    alog_err e = writable(log);
    if (!e) e = log_retention_locked(log, deleted_out);
    pthread_mutex_unlock(&log->mu);
    return e;
}

/* ---- time lookups, segment listing ---------------------------------------------- */

static alog_err ensure_index(alog *log, segment *s) {
    int rebuilt = 0;
    alog_err e = segment_load_index(s, log->opts.index_interval_bytes, &rebuilt);
    log->recovery.indexes_rebuilt += (uint64_t)rebuilt;
    return e;
}

alog_err alog_offset_for_time(alog *log, int64_t ts, int64_t *offset_out) {
    err_clear();
    if (!log || !offset_out) return err_set(ALOG_EINVAL, 0, "alog_offset_for_time: bad arguments");
    pthread_mutex_lock(&log->mu);
    alog_err e = ALOG_OK;
    int64_t found = -1;
    abuf decomp = {0};
    for (size_t i = 0; i < log->nsegs && found < 0 && !e; i++) {
        segment *s = log->segs[i];
        e = ensure_index(log, s);
        if (!e) e = segment_find_time(s, ts, &decomp, (size_t)log->opts.max_batch_bytes * 16u,
                                           &found);
    }
    if (!e) *offset_out = found >= 0 ? found : log_active(log)->st.next_offset;
    pthread_mutex_unlock(&log->mu);
    abuf_free(&decomp);
    return e;
}

/* Timestamp of the first record of a segment (the first batch's baseTimestamp). */
static int64_t first_timestamp(segment *s) {
    if (s->st.first_ts >= 0 || s->st.position < BATCH_HEADER_SIZE) return s->st.first_ts;
    if (segment_map(s, s->st.position, s->st.position)) return -1;
    batch_header h;
    batch_header_parse(s->map, &h);
    return h.base_timestamp;
}

alog_err alog_segments(alog *log, alog_segment_info **segs, size_t *count) {
    err_clear();
    if (!log || !segs || !count) return err_set(ALOG_EINVAL, 0, "alog_segments: bad arguments");
    pthread_mutex_lock(&log->mu);
    alog_err e = ALOG_OK;
    alog_segment_info *v = calloc(log->nsegs, sizeof *v);
    if (!v) e = err_set(ALOG_ENOMEM, 0, "out of memory");
    for (size_t i = 0; !e && i < log->nsegs; i++) {
        segment *s = log->segs[i];
        e = ensure_index(log, s);
        if (e) break;
        int empty = s->st.next_offset == s->base;
        v[i] = (alog_segment_info){
            .base_offset = s->base,
            .next_offset = s->st.next_offset,
            .size_bytes = s->st.position,
            .min_timestamp = empty ? -1 : first_timestamp(s),
            .max_timestamp = empty ? -1 : s->st.max_ts,
            .active = i == log->nsegs - 1,
        };
    }
    if (e) {
        free(v);
    } else {
        *segs = v;
        *count = log->nsegs;
    }
    pthread_mutex_unlock(&log->mu);
    return e;
}

/* ---- read-only handles following a writer --------------------------------------- */

alog_err log_refresh(alog *log) {
    if (!log->opts.read_only) return ALOG_OK;
    for (;;) {
        segment *a = log_active(log);
        uint64_t size;
        char why_buf[200];
        const char *why;
        alog_err e = segment_file_size(a, &size);
        if (e) return e;
        if (size > a->st.position) {
            e = segment_scan(a, size, log->opts.index_interval_bytes, &why, why_buf, sizeof why_buf);
            if (e) return e;
            if (why) return ALOG_OK; /* a batch being written: seen next time */
        }
        /* Did the writer roll to a new segment? Never from an empty one, whose next
         * segment would have its own name (and be found as such, forever). */
        if (a->st.next_offset == a->base) return ALOG_OK;
        char p[4096];
        snprintf(p, sizeof p, "%s/%020" PRId64 ".log", log->dir, a->st.next_offset);
        if (access(p, F_OK) != 0) return ALOG_OK;
        e = segment_file_size(a, &size);
        if (e) return e;
        if (size != a->st.position) continue; /* rescan what was added meanwhile */
        segment *n;
        e = segment_open(log->dir, a->st.next_offset, 0, &n);
        if (e) return e;
        n->st.position = 0;
        n->ix_ready = 1;
        if (a->st.max_ts >= 0)
            tindex_maybe_add(&a->ix, a->st.max_ts, (uint32_t)(a->st.max_ts_offset - a->base));
        e = push_segment(log, n);
        if (e) {
            segment_release(n);
            return e;
        }
    }
}
