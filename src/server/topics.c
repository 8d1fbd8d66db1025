/*
 * topics.c -- alogd's topics and partitions on disk.
 *
 * Layout of the data directory (--data; docs/FORMAT.md §13 has the file formats):
 *   alogd.lock               flock()ed by the running alogd; holds its pid
 *   <topic>.topic            the topic's metadata: partition count and the topic
 *                            configs given at creation; trusted at start
 *   <topic>-<partition>/     one alog log per partition (include/alog.h), as Kafka
 *                            names its partition directories
 *   <topic>+new              a creation in progress (its content is the metadata to be)
 *   <topic>+del              a deletion in progress
 *   <topic>+tmp              a metadata file being replaced (write, fsync, rename)
 *   deleting.<pid>.<n>/      a partition directory being deleted (renamed first, so a
 *                            crash half-way through a deletion never leaves half a
 *                            log under a topic's name); removed at the next start
 * A topic name is 1-249 characters of [a-zA-Z0-9._-] (Kafka's rule), so a directory
 * name is split at its last '-': "my-topic-12" is partition 12 of "my-topic". A name
 * that does not end in -<digits> is never a partition. '+' is never in a topic name,
 * so the marker files cannot belong to another topic, and with 249 characters every
 * name above still fits the 255 bytes a file name may have.
 *
 * Creation, crash-safe: write <topic>+new (fsync it and the directory), create and open
 * every partition's log, fsync the directory, then rename <topic>+new to <topic>.topic
 * and fsync the directory: that rename is the commit point, and the topic is answered
 * for and visible only after it. A start that finds <topic>+new without <topic>.topic
 * removes the marker and every <topic>-<n>/ directory: a half-created topic never
 * appears, and no client was ever told it exists. Deletion: rename <topic>.topic to
 * <topic>+del (the commit point: the topic is gone at the next start whatever happens
 * after), then, once the last reference is dropped, remove the directories and the
 * marker; a start that finds <topic>+del finishes the deletion.
 *
 * At start the metadata file is trusted. If the directories contradict it (a partition
 * directory missing, or one beyond the partition count), or it cannot be read, or a
 * log does not open, the topic is reported on stderr and kept in the registry as
 * unavailable: every request naming it gets KAFKA_STORAGE_ERROR, creating it again gets
 * TOPIC_ALREADY_EXISTS (so auto-creation never makes a fresh, empty topic over it), and
 * DeleteTopics removes it. The other topics are served. A missing partition is not
 * recreated: it existed when the metadata was committed, so its records were lost
 * outside alogd, and an empty log in its place would restart its offsets at 0 under
 * consumers that have read past them (Kafka too marks partitions whose log directory
 * is lost offline rather than serving them from 0). The operator restores the
 * directory and restarts, or deletes the topic. A topic with partition directories but
 * no metadata file (and no marker) was made by an alogd before metadata files: it is
 * opened as before (partition count = highest partition found + 1, missing ones
 * created empty) and its metadata file is written.
 *
 * Topic configs (Kafka's names, docs/FORMAT.md §13.2): retention.ms, retention.bytes,
 * segment.bytes, flush.messages, flush.ms, message.timestamp.type, cleanup.policy.
 * They are the topic's overrides; what is not set follows the server's options, as a
 * Kafka topic follows the broker's log.* defaults. They become the alog_options of
 * each partition's log. flush.messages=1 (or --fsync always) opens the logs with
 * ALOG_FSYNC_NEVER: api.c then asks each Produce's fsync with alog_on_durable(), so
 * that no append waits for the disk on the event loop. Retention also runs every
 * retention_check_ms on a thread of its own (Kafka's log.retention.check.interval.ms),
 * so that a topic nobody writes to still loses its expired segments.
 *
 * The registry: live topics in an array sorted by name, behind a mutex held only for
 * lookups and reference counts. Creation and deletion are serialised by a second mutex
 * (they create or close logs, which fsyncs, and must not block lookups meanwhile).
 * Each topic is reference counted; the registry holds one reference while it is live.
 * A deleted topic leaves the live array at once and waits in the dying list until its
 * last reference is dropped: then its logs are closed and its directories removed,
 * and only then may a topic of the same name be created again (until then creation
 * answers TOPIC_ALREADY_EXISTS, and auto-creation LEADER_NOT_AVAILABLE, which clients
 * retry). That is why no path of a dying topic can ever be reused by a new one.
 *
 * Partitions open (live and dying topics' logs) are counted against max_partitions
 * (--max-partitions): each holds a thread and descriptors, and any peer may create
 * topics, so creation past it gets POLICY_VIOLATION. Topics found at start are opened
 * whatever their count (they exist; refusing them would hide their records).
 */
#include "topics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../io.h" /* the engine's file helpers */
#include "kafka_msgs.h"
#include "topic_meta.h"

#define META_MAX_BYTES 65536

/* The options of a partition's log under topic metadata m and the server defaults. */
static void meta_options(const topics_config *cfg, const topic_meta *m, alog_options *o,
                         int *fsync_always) {
    *o = cfg->log_opts;
    o->create_if_missing = 1;
    if (CFG_IS_SET(m, CFG_RETENTION_MS))
        o->retention_ms = m->val[CFG_RETENTION_MS] < 0 ? 0 : (uint64_t)m->val[CFG_RETENTION_MS];
    if (CFG_IS_SET(m, CFG_RETENTION_BYTES))
        o->retention_bytes =
            m->val[CFG_RETENTION_BYTES] < 0 ? 0 : (uint64_t)m->val[CFG_RETENTION_BYTES];
    if (CFG_IS_SET(m, CFG_SEGMENT_BYTES)) o->segment_bytes = (uint64_t)m->val[CFG_SEGMENT_BYTES];
    if (CFG_IS_SET(m, CFG_FLUSH_MS)) {
        if (m->val[CFG_FLUSH_MS] == INT64_MAX) {
            o->fsync_policy = ALOG_FSYNC_NEVER; /* Kafka's default: leave it to the OS */
        } else {
            o->fsync_policy = ALOG_FSYNC_INTERVAL;
            o->fsync_interval_ms = (uint32_t)m->val[CFG_FLUSH_MS];
        }
    }
    *fsync_always = CFG_IS_SET(m, CFG_FLUSH_MESSAGES) ? m->val[CFG_FLUSH_MESSAGES] == 1
                                                     : cfg->fsync_always != 0;
    /* Each acknowledgement asks for its fsync (api.c, alog_on_durable): the append path
     * itself never waits for the disk. */
    if (*fsync_always) o->fsync_policy = ALOG_FSYNC_NEVER;
}

/* ---- the registry's types ------------------------------------------------------------ */

struct topic {
    topics *reg;
    char *name;
    int32_t nparts;
    alog **logs;
    topic_meta meta;
    int fsync_always;
    int log_append_time;
    int has_retention;
    char *broken; /* set: unavailable, why (no logs open) */
    int refs;     /* under reg->mu */
    int deleted;  /* under reg->mu */
    int counted;  /* its nparts are in reg->nparts_open (its logs are open) */
};

struct topics {
    topics_config cfg;
    char *data_dir;
    int lock_fd;
    pthread_mutex_t mu;        /* live, dying, refs */
    pthread_mutex_t create_mu; /* serialises creation and deletion */
    topic **live;              /* sorted by name */
    size_t nlive, cap_live;
    topic **dying;
    size_t ndying, cap_dying;
    unsigned long trash_seq;
    int64_t nparts_open; /* under mu: partitions of topics with open logs (max_partitions) */
    /* the retention thread */
    pthread_t ret_thread;
    int ret_started;
    pthread_mutex_t ret_mu;
    pthread_cond_t ret_cv;
    int ret_stop; /* under ret_mu */
};

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...) {
    va_list ap;
    char line[1600];
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "alogd: %s\n", line);
}

const char *topic_name_invalid(const char *name, size_t len) {
    if (len == 0) return "the topic name is empty";
    if (len > TOPIC_NAME_MAX) return "the topic name is longer than 249 characters";
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return "the topic name cannot be \".\" or \"..\"";
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return "the topic name contains a character other than ASCII alphanumerics, "
                   "'.', '_' and '-'";
    }
    return NULL;
}

const topics_config *topics_cfg(const topics *t) { return &t->cfg; }
const char *topic_name(const topic *tp) { return tp->name; }
int32_t topic_partitions(const topic *tp) { return tp->nparts; }
alog *topic_log(const topic *tp, int32_t p) { return tp->logs[p]; }
int topic_fsync_always(const topic *tp) { return tp->fsync_always; }
int topic_log_append_time(const topic *tp) { return tp->log_append_time; }

static void part_dir(char *buf, size_t n, const topics *t, const char *name, int32_t p) {
    snprintf(buf, n, "%s/%s-%d", t->data_dir, name, p);
}

/* DATA/<name><suffix>: ".topic", "+new", "+del", "+tmp". */
static void meta_path(char *buf, size_t n, const topics *t, const char *name, const char *suffix) {
    snprintf(buf, n, "%s/%s%s", t->data_dir, name, suffix);
}

static int cmp_name(const char *a, size_t alen, const char *b) {
    size_t blen = strlen(b);
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c) return c;
    return alen < blen ? -1 : alen > blen;
}

/* With mu held: the index of name in live, or -(insertion point) - 1. */
static long find_live(const topics *t, const char *name, size_t len) {
    size_t lo = 0, hi = t->nlive;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_name(name, len, t->live[mid]->name);
        if (c == 0) return (long)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -(long)lo - 1;
}

static int is_dying(const topics *t, const char *name, size_t len) {
    for (size_t i = 0; i < t->ndying; i++)
        if (cmp_name(name, len, t->dying[i]->name) == 0) return 1;
    return 0;
}

static int grow(void *arrp, size_t *cap, size_t want) {
    topic ***arr = arrp;
    if (want <= *cap) return 0;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < want) c *= 2;
    topic **p = realloc(*arr, c * sizeof *p);
    if (!p) return -1;
    *arr = p;
    *cap = c;
    return 0;
}

/* ---- files ------------------------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT) logmsg("cannot remove %s: %s", path, strerror(errno));
    return 0;
}

static void rmrf(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* The engine's file helpers (src/io.h: through its I/O seam, EINTR retried) with this
 * file's conventions: 0, or -1 with errno set (callers name the file and errno). */
static int fsync_dir(const char *dir) {
    if (io_fsync_dir(dir) == ALOG_OK) return 0;
    logmsg("%s", alog_last_error());
    errno = alog_last_errno() ? alog_last_errno() : EIO;
    return -1;
}

/* Writes path whole and fsyncs it (not its directory). */
static int write_file_synced(const char *path, const char *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    int e = 0;
    if (io_pwrite_all(fd, data, len, 0, path) != ALOG_OK)
        e = alog_last_errno() ? alog_last_errno() : EIO;
    else if (io_fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e) e = errno;
    errno = e;
    return e ? -1 : 0;
}

/* Reads a metadata file (at most META_MAX_BYTES) and parses it. 0, or -1 with why. */
static int meta_read(const char *path, topic_meta *m, char *why, size_t whylen) {
    char *buf = malloc(META_MAX_BYTES + 1);
    size_t len = 0;
    if (!buf) {
        snprintf(why, whylen, "cannot read %s: out of memory", path);
        return -1;
    }
    if (io_read_small_file(path, buf, META_MAX_BYTES, &len) != ALOG_OK) {
        snprintf(why, whylen, "%s", alog_last_error()); /* "open PATH: ..." */
        free(buf);
        return -1;
    }
    buf[len] = '\0';
    int rc = 0;
    if (len == META_MAX_BYTES || strlen(buf) != len) {
        snprintf(why, whylen, "%s: not a topic metadata file (too large or binary)", path);
        rc = -1;
    } else {
        char w[512];
        if (topic_meta_parse(buf, m, w, sizeof w)) {
            snprintf(why, whylen, "%s: %s", path, w);
            rc = -1;
        }
    }
    free(buf);
    return rc;
}

/* Renames a partition directory out of the way, then removes it. */
static void remove_partition_dir(topics *t, const char *dir) {
    char trash[4096];
    pthread_mutex_lock(&t->mu);
    unsigned long seq = ++t->trash_seq;
    pthread_mutex_unlock(&t->mu);
    snprintf(trash, sizeof trash, "%s/deleting.%ld.%lu", t->data_dir, (long)getpid(), seq);
    if (rename(dir, trash) == 0) {
        fsync_dir(t->data_dir);
        rmrf(trash);
    } else if (errno != ENOENT) {
        logmsg("cannot rename %s for deletion: %s; removing it in place", dir, strerror(errno));
        rmrf(dir);
    }
}

/* A directory entry "<topic>-<n>": fills the name length and partition, or returns 0. */
static int parse_part_dir(const char *ent, size_t *name_len, int32_t *part) {
    const char *dash = strrchr(ent, '-');
    if (!dash || dash == ent || !dash[1]) return 0;
    long p = 0;
    for (const char *c = dash + 1; *c; c++) {
        if (*c < '0' || *c > '9') return 0;
        p = p * 10 + (*c - '0');
        if (p >= TOPIC_PARTITIONS_MAX) return 0;
    }
    if (dash[1] == '0' && dash[2]) return 0; /* "t-01" is not ours */
    if (topic_name_invalid(ent, (size_t)(dash - ent))) return 0;
    *name_len = (size_t)(dash - ent);
    *part = (int32_t)p;
    return 1;
}

/* Removes every partition directory of topic name (any partition number). */
static void remove_topic_dirs(topics *t, const char *name) {
    DIR *d = opendir(t->data_dir);
    if (!d) {
        logmsg("cannot read %s: %s", t->data_dir, strerror(errno));
        return;
    }
    size_t nlen = strlen(name);
    char **dirs = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len;
        int32_t p;
        if (!parse_part_dir(e->d_name, &len, &p) || len != nlen || memcmp(e->d_name, name, len))
            continue;
        if (n == cap) {
            size_t c = cap ? cap * 2 : 16;
            char **nd = realloc(dirs, c * sizeof *nd);
            if (!nd) break;
            dirs = nd;
            cap = c;
        }
        if (!(dirs[n] = strdup(e->d_name))) break;
        n++;
    }
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", t->data_dir, dirs[i]);
        remove_partition_dir(t, dir);
        free(dirs[i]);
    }
    free(dirs);
}

/* Removes a marker file (and makes that durable). */
static void unlink_durable(topics *t, const char *path) {
    if (unlink(path) != 0 && errno != ENOENT)
        logmsg("cannot remove %s: %s", path, strerror(errno));
    fsync_dir(t->data_dir);
}

/* Writes <name>.topic for m through <name>+tmp (write, fsync, rename, fsync the
 * directory). 0, or -1 with errno. */
static int meta_write(topics *t, const char *name, const topic_meta *m) {
    char text[2048], tmp[4096], final[4096];
    int len = topic_meta_format(m, text, sizeof text);
    if (len < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    meta_path(tmp, sizeof tmp, t, name, "+tmp");
    meta_path(final, sizeof final, t, name, ".topic");
    if (write_file_synced(tmp, text, (size_t)len) != 0 || rename(tmp, final) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return fsync_dir(t->data_dir);
}

/* ---- topic objects ----------------------------------------------------------------- */

static void topic_free(topic *tp) {
    if (!tp) return;
    free(tp->logs);
    free(tp->name);
    free(tp->broken);
    free(tp);
}

/* Closes the logs of tp (those opened). */
static void topic_close_logs(topic *tp) {
    if (tp->counted) {
        pthread_mutex_lock(&tp->reg->mu);
        tp->reg->nparts_open -= tp->nparts;
        pthread_mutex_unlock(&tp->reg->mu);
        tp->counted = 0;
    }
    for (int32_t p = 0; p < tp->nparts && tp->logs; p++) {
        if (!tp->logs[p]) continue;
        if (alog_close(tp->logs[p]) != ALOG_OK)
            logmsg("closing %s-%d: %s", tp->name, p, alog_last_error());
        tp->logs[p] = NULL;
    }
}

/* An unavailable topic: in the registry under its name, with no logs. */
static topic *topic_new_broken(topics *t, const char *name, const char *why) {
    topic *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->reg = t;
    tp->name = strdup(name);
    tp->broken = strdup(why);
    if (!tp->name || !tp->broken) {
        topic_free(tp);
        return NULL;
    }
    tp->refs = 1;
    return tp;
}

/* Opens (creating if missing) the logs of a topic with metadata m. On failure, closes
 * what it opened; the directories it created are removed if remove_created. */
static int16_t topic_open_logs(topics *t, const char *name, size_t len, const topic_meta *m,
                               int remove_created, topic **out, char *msg, size_t msglen) {
    int32_t nparts = m->partitions;
    topic *tp = calloc(1, sizeof *tp);
    if (tp) tp->name = strndup(name, len);
    if (tp && tp->name) tp->logs = calloc((size_t)nparts, sizeof *tp->logs);
    if (!tp || !tp->name || !tp->logs) {
        topic_free(tp);
        snprintf(msg, msglen, "out of memory");
        return KERR_KAFKA_STORAGE_ERROR;
    }
    tp->reg = t;
    tp->nparts = nparts;
    tp->meta = *m;
    tp->log_append_time = CFG_IS_SET(m, CFG_TIMESTAMP_TYPE) && m->val[CFG_TIMESTAMP_TYPE] == 1;
    alog_options o;
    meta_options(&t->cfg, m, &o, &tp->fsync_always);
    tp->has_retention = o.retention_ms > 0 || o.retention_bytes > 0;
    char *created = calloc((size_t)nparts, 1);
    int16_t rc = KERR_NONE;
    for (int32_t p = 0; p < nparts && created; p++) {
        char dir[4096];
        part_dir(dir, sizeof dir, t, tp->name, p);
        struct stat st;
        created[p] = stat(dir, &st) != 0;
        if (alog_open(dir, &o, &tp->logs[p]) != ALOG_OK) {
            snprintf(msg, msglen, "cannot open the log of partition %d: %s", p, alog_last_error());
            tp->logs[p] = NULL;
            rc = KERR_KAFKA_STORAGE_ERROR;
            break;
        }
    }
    if (!created && rc == KERR_NONE) {
        snprintf(msg, msglen, "out of memory");
        rc = KERR_KAFKA_STORAGE_ERROR;
    }
    if (rc == KERR_NONE && fsync_dir(t->data_dir) != 0) {
        snprintf(msg, msglen, "cannot fsync %s: %s", t->data_dir, strerror(errno));
        rc = KERR_KAFKA_STORAGE_ERROR;
    }
    if (rc != KERR_NONE) {
        topic_close_logs(tp);
        for (int32_t p = 0; remove_created && created && p < nparts; p++) {
            if (!created[p]) continue;
            char dir[4096];
            part_dir(dir, sizeof dir, t, tp->name, p);
            rmrf(dir);
        }
        topic_free(tp);
        free(created);
        return rc;
    }
    free(created);
    pthread_mutex_lock(&t->mu);
    t->nparts_open += nparts;
    pthread_mutex_unlock(&t->mu);
    tp->counted = 1;
    tp->refs = 1; /* the registry's */
    *out = tp;
    return KERR_NONE;
}

/* With mu held: inserts tp into live (its name is not there). */
static int insert_live(topics *t, topic *tp) {
    long i = find_live(t, tp->name, strlen(tp->name));
    if (i >= 0 || grow(&t->live, &t->cap_live, t->nlive + 1)) return -1;
    size_t at = (size_t)(-i - 1);
    memmove(&t->live[at + 1], &t->live[at], (t->nlive - at) * sizeof *t->live);
    t->live[at] = tp;
    t->nlive++;
    return 0;
}

/* The last reference of a deleted topic is gone: close, remove, forget. */
static void topic_destroy_deleted(topic *tp) {
    topics *t = tp->reg;
    topic_close_logs(tp);
    remove_topic_dirs(t, tp->name);
    char marker[4096];
    meta_path(marker, sizeof marker, t, tp->name, "+new"); /* only next to a .topic */
    if (access(marker, F_OK) == 0) unlink_durable(t, marker);
    meta_path(marker, sizeof marker, t, tp->name, "+del");
    unlink_durable(t, marker);
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->ndying; i++) {
        if (t->dying[i] == tp) {
            t->dying[i] = t->dying[--t->ndying];
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    logmsg("topic %s deleted", tp->name);
    topic_free(tp);
}

void topic_unref(topic *tp) {
    if (!tp) return;
    topics *t = tp->reg;
    pthread_mutex_lock(&t->mu);
    int last = --tp->refs == 0;
    int deleted = tp->deleted;
    pthread_mutex_unlock(&t->mu);
    if (last && deleted) topic_destroy_deleted(tp);
}

/* ---- start: what the data directory holds -------------------------------------------- */

static int is_trash(const char *ent) {
    if (strncmp(ent, "deleting.", 9) != 0) return 0;
    int dots = 0;
    for (const char *c = ent + 9; *c; c++) {
        if (*c == '.')
            dots++;
        else if (*c < '0' || *c > '9')
            return 0;
    }
    return dots == 1;
}

enum { F_META = 1, F_NEW = 2, F_DEL = 4 };

typedef struct found {
    char *name;
    int32_t max_part; /* -1: no partition directory */
    int files;        /* F_* */
} found;

static int cmp_found(const void *a, const void *b) {
    return strcmp(((const found *)a)->name, ((const found *)b)->name);
}

/* The entry of name in f (adding it). NULL when out of memory. */
static found *found_get(found **f, size_t *n, size_t *cap, const char *name, size_t len) {
    for (size_t i = 0; i < *n; i++)
        if (strlen((*f)[i].name) == len && memcmp((*f)[i].name, name, len) == 0) return &(*f)[i];
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        found *nf = realloc(*f, c * sizeof *nf);
        if (!nf) return NULL;
        *f = nf;
        *cap = c;
    }
    found *e = &(*f)[*n];
    if (!(e->name = strndup(name, len))) return NULL;
    e->max_part = -1;
    e->files = 0;
    (*n)++;
    return e;
}

/* A file name "<topic><suffix>" with a valid topic name: its length, else 0. */
static size_t strip_suffix(const char *ent, const char *suffix) {
    size_t len = strlen(ent), slen = strlen(suffix);
    if (len <= slen || strcmp(ent + len - slen, suffix) != 0) return 0;
    if (topic_name_invalid(ent, len - slen)) return 0;
    return len - slen;
}

/* Scans the data directory: removes trash and <topic>+tmp leftovers, lists topics with
 * their highest partition directory and their metadata and marker files. */
static int scan_dir(topics *t, found **out, size_t *nout, char *err, size_t errlen) {
    DIR *d = opendir(t->data_dir);
    if (!d) {
        snprintf(err, errlen, "cannot read %s: %s", t->data_dir, strerror(errno));
        return -1;
    }
    found *f = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", t->data_dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        found *fe = NULL;
        size_t len;
        if (S_ISDIR(st.st_mode)) {
            if (is_trash(e->d_name)) {
                logmsg("removing %s, left by an interrupted topic deletion", path);
                rmrf(path);
                continue;
            }
            int32_t p;
            if (!parse_part_dir(e->d_name, &len, &p)) continue;
            if (!(fe = found_get(&f, &n, &cap, e->d_name, len))) { rc = -1; break; }
            if (p > fe->max_part) fe->max_part = p;
        } else if (S_ISREG(st.st_mode)) {
            int flag = 0;
            if ((len = strip_suffix(e->d_name, ".topic")))
                flag = F_META;
            else if ((len = strip_suffix(e->d_name, "+new")))
                flag = F_NEW;
            else if ((len = strip_suffix(e->d_name, "+del")))
                flag = F_DEL;
            else if (strip_suffix(e->d_name, "+tmp")) {
                logmsg("removing %s, left by an interrupted metadata update", path);
                unlink(path);
                continue;
            }
            if (!flag) continue;
            if (!(fe = found_get(&f, &n, &cap, e->d_name, len))) { rc = -1; break; }
            fe->files |= flag;
        }
    }
    closedir(d);
    if (rc) {
        for (size_t i = 0; i < n; i++) free(f[i].name);
        free(f);
        snprintf(err, errlen, "out of memory scanning %s", t->data_dir);
        return -1;
    }
    if (n) qsort(f, n, sizeof *f, cmp_found);
    *out = f;
    *nout = n;
    return 0;
}

/* Opens one topic found at start (see the top comment). Returns the topic (live or
 * unavailable), or NULL if there is none (cleaned up) or when out of memory (*oom). */
static topic *open_found(topics *t, const found *f, int *oom) {
    char path[4096], why[10000];
    *oom = 0;
    if ((f->files & (F_NEW | F_DEL)) && !(f->files & F_META)) {
        int del = (f->files & F_DEL) != 0;
        logmsg("topic %s: removing %s, left by an interrupted %s", f->name,
               f->max_part >= 0 ? "its partition directories" : "its marker",
               del ? "deletion" : "creation (the topic was never created)");
        remove_topic_dirs(t, f->name);
        meta_path(path, sizeof path, t, f->name, "+new");
        if (f->files & F_NEW) unlink_durable(t, path);
        meta_path(path, sizeof path, t, f->name, "+del");
        if (del) unlink_durable(t, path);
        return NULL;
    }
    topic_meta m;
    memset(&m, 0, sizeof m);
    int legacy = !(f->files & F_META);
    if (f->files & (F_NEW | F_DEL)) {
        snprintf(why, sizeof why, "both %s.topic and %s%s exist (alogd never leaves both): "
                 "remove the one that is wrong", f->name, f->name,
                 (f->files & F_NEW) ? "+new" : "+del");
        goto broken;
    }
    if (legacy) {
        /* Partition directories without a metadata file: an alogd before metadata files
         * made them. Opened as it opened them; the metadata file is written after. */
        m.partitions = f->max_part + 1;
        for (int32_t p = 0; p < m.partitions; p++) {
            struct stat st;
            part_dir(path, sizeof path, t, f->name, p);
            if (stat(path, &st) != 0)
                logmsg("topic %s: partition %d is missing; creating it empty", f->name, p);
        }
    } else {
        meta_path(path, sizeof path, t, f->name, ".topic");
        if (meta_read(path, &m, why, sizeof why)) goto broken;
        for (int32_t p = 0; p < m.partitions; p++) {
            struct stat st;
            part_dir(path, sizeof path, t, f->name, p);
            if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
                snprintf(why, sizeof why, "its metadata file says %d partition%s, but "
                         "partition %d has no directory (%s): its records are lost, and "
                         "alogd does not restart a partition at offset 0 under its consumers",
                         m.partitions, m.partitions == 1 ? "" : "s", p, path);
                goto broken;
            }
        }
        if (f->max_part >= m.partitions) {
            snprintf(why, sizeof why, "its metadata file says %d partition%s, but there is a "
                     "directory for partition %d: restore the right %s.topic or move the "
                     "directory away", m.partitions, m.partitions == 1 ? "" : "s", f->max_part,
                     f->name);
            goto broken;
        }
    }
    topic *tp;
    char msg[1024];
    if (topic_open_logs(t, f->name, strlen(f->name), &m, 0, &tp, msg, sizeof msg) != KERR_NONE) {
        snprintf(why, sizeof why, "%s", msg);
        goto broken;
    }
    if (legacy) {
        if (meta_write(t, f->name, &m) == 0)
            logmsg("topic %s: no metadata file (made by an older alogd); wrote %s.topic "
                   "with %d partition%s", f->name, f->name, m.partitions,
                   m.partitions == 1 ? "" : "s");
        else
            logmsg("topic %s: cannot write its metadata file: %s (served all the same; "
                   "retried at the next start)", f->name, strerror(errno));
    }
    return tp;
broken:
    logmsg("topic %s is unavailable: %s. The other topics are served; fix it and restart, "
           "or delete the topic", f->name, why);
    tp = topic_new_broken(t, f->name, why);
    if (!tp) *oom = 1;
    return tp;
}

/* ---- retention --------------------------------------------------------------------- */

static void retention_pass(topics *t) {
    topic **list;
    size_t n;
    if (topics_list(t, &list, &n)) return;
    for (size_t i = 0; i < n; i++) {
        if (!list[i]->has_retention) continue;
        for (int32_t p = 0; p < list[i]->nparts; p++) {
            uint64_t deleted = 0;
            if (alog_retention_run(list[i]->logs[p], &deleted) != ALOG_OK)
                logmsg("retention of %s-%d: %s", list[i]->name, p, alog_last_error());
            else if (deleted)
                logmsg("retention deleted %" PRIu64 " segment%s of %s-%d", deleted,
                       deleted == 1 ? "" : "s", list[i]->name, p);
        }
    }
    topics_list_free(list, n);
}

static void *retention_main(void *arg) {
    topics *t = arg;
    pthread_mutex_lock(&t->ret_mu);
    while (!t->ret_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (int64_t)(t->cfg.retention_check_ms % 1000) * 1000000;
        ts.tv_sec += t->cfg.retention_check_ms / 1000 + ns / 1000000000;
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!t->ret_stop && pthread_cond_timedwait(&t->ret_cv, &t->ret_mu, &ts) != ETIMEDOUT) {
        }
        if (t->ret_stop) break;
        pthread_mutex_unlock(&t->ret_mu);
        retention_pass(t);
        pthread_mutex_lock(&t->ret_mu);
    }
    pthread_mutex_unlock(&t->ret_mu);
    return NULL;
}

/* ---- the registry ------------------------------------------------------------------ */

int topics_open(const topics_config *cfg, topics **out, char *err, size_t errlen) {
    *out = NULL;
    topics *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->cfg = *cfg;
    t->lock_fd = -1;
    t->data_dir = strdup(cfg->data_dir);
    t->cfg.data_dir = t->data_dir;
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->create_mu, NULL);
    pthread_mutex_init(&t->ret_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->ret_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!t->data_dir) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (io_make_dirs(t->data_dir) != ALOG_OK) {
        snprintf(err, errlen, "cannot create the data directory %s: %s", t->data_dir,
                 alog_last_errno() ? strerror(alog_last_errno()) : alog_last_error());
        goto fail;
    }
    char lock_path[4096];
    snprintf(lock_path, sizeof lock_path, "%s/alogd.lock", t->data_dir);
    t->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (t->lock_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", lock_path, strerror(errno));
        goto fail;
    }
    if (flock(t->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(t->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, errlen, "%s is in use by another alogd (pid %s)", t->data_dir,
                 *pid ? pid : "unknown");
        goto fail;
    }
    char pid[32];
    int pn = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(t->lock_fd, 0) != 0 || pwrite(t->lock_fd, pid, (size_t)pn, 0) != pn) {
        snprintf(err, errlen, "cannot write %s: %s", lock_path, strerror(errno));
        goto fail;
    }

    found *f = NULL;
    size_t n = 0;
    if (scan_dir(t, &f, &n, err, errlen)) goto fail;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            int oom;
            topic *tp = open_found(t, &f[i], &oom);
            if (oom || (tp && insert_live(t, tp))) {
                if (tp) {
                    topic_close_logs(tp);
                    topic_free(tp);
                }
                snprintf(err, errlen, "out of memory");
                rc = -1;
            }
        }
        free(f[i].name);
    }
    free(f);
    if (rc) goto fail;
    if (t->cfg.retention_check_ms > 0) {
        if (pthread_create(&t->ret_thread, NULL, retention_main, t) != 0) {
            snprintf(err, errlen, "cannot start the retention thread");
            goto fail;
        }
        t->ret_started = 1;
    }
    *out = t;
    return 0;
fail:
    topics_close(t);
    return -1;
}

void topics_close(topics *t) {
    if (!t) return;
    if (t->ret_started) {
        pthread_mutex_lock(&t->ret_mu);
        t->ret_stop = 1;
        pthread_cond_signal(&t->ret_cv);
        pthread_mutex_unlock(&t->ret_mu);
        pthread_join(t->ret_thread, NULL);
    }
    for (size_t i = 0; i < t->nlive; i++) {
        topic_close_logs(t->live[i]);
        topic_free(t->live[i]);
    }
    for (size_t i = 0; i < t->ndying; i++) { /* references were leaked: just close */
        topic_close_logs(t->dying[i]);
        topic_free(t->dying[i]);
    }
    free(t->live);
    free(t->dying);
    if (t->lock_fd >= 0) close(t->lock_fd);
    pthread_mutex_destroy(&t->mu);
    pthread_mutex_destroy(&t->create_mu);
    pthread_mutex_destroy(&t->ret_mu);
    pthread_cond_destroy(&t->ret_cv);
    free(t->data_dir);
    free(t);
}

/* With mu held: a new reference to a live, available topic, or NULL (*broken set if
 * it is there but unavailable). */
static topic *ref_live(topics *t, const char *name, size_t len, int *broken) {
    long i = find_live(t, name, len);
    *broken = 0;
    if (i < 0) return NULL;
    topic *tp = t->live[i];
    if (tp->broken) {
        *broken = 1;
        return NULL;
    }
    tp->refs++;
    return tp;
}

int16_t topics_create(topics *t, const char *name, size_t len, int32_t partitions,
                      const topic_kv *configs, size_t nconfigs, int validate_only, char *msg,
                      size_t msglen) {
    msg[0] = '\0';
    const char *why = topic_name_invalid(name, len);
    if (why) {
        snprintf(msg, msglen, "%s", why);
        return KERR_INVALID_TOPIC_EXCEPTION;
    }
    if (partitions < 0) partitions = t->cfg.default_partitions;
    if (partitions == 0 || partitions > TOPIC_PARTITIONS_MAX) {
        snprintf(msg, msglen, "the number of partitions must be between 1 and %d",
                 TOPIC_PARTITIONS_MAX);
        return KERR_INVALID_PARTITIONS;
    }
    topic_meta m;
    memset(&m, 0, sizeof m);
    m.partitions = partitions;
    for (size_t i = 0; i < nconfigs; i++) {
        int16_t e = topic_config_set(&m, configs[i].name, configs[i].name_len, configs[i].value,
                               configs[i].value_len, msg, msglen);
        if (e) return e;
    }
    pthread_mutex_lock(&t->create_mu);
    pthread_mutex_lock(&t->mu);
    long at = find_live(t, name, len);
    int exists = at >= 0, dying = is_dying(t, name, len);
    const char *broken = exists ? t->live[at]->broken : NULL;
    if (broken) snprintf(msg, msglen, "topic '%.*s' exists but is unavailable: %s", (int)len,
                         name, broken);
    /* Creation is serialised (create_mu) and deletion only lowers the count: what is
     * checked here still holds when the logs are opened. */
    int64_t open_parts = t->nparts_open;
    pthread_mutex_unlock(&t->mu);
    int16_t rc = KERR_NONE;
    if (exists || dying) {
        if (!broken)
            snprintf(msg, msglen, dying ? "topic '%.*s' is marked for deletion"
                                        : "topic '%.*s' already exists",
                     (int)len, name);
        rc = KERR_TOPIC_ALREADY_EXISTS;
    } else if (t->cfg.max_partitions > 0 && open_parts + partitions > t->cfg.max_partitions) {
        snprintf(msg, msglen, "topic '%.*s' with %d partition%s would make %" PRId64
                 " partitions open, more than the %d alogd serves at most (--max-partitions)",
                 (int)len, name, partitions, partitions == 1 ? "" : "s",
                 open_parts + partitions, t->cfg.max_partitions);
        rc = KERR_POLICY_VIOLATION;
    } else if (!validate_only) {
        char tname[TOPIC_NAME_MAX + 1], marker[4096], final[4096], text[2048];
        snprintf(tname, sizeof tname, "%.*s", (int)len, name);
        meta_path(marker, sizeof marker, t, tname, "+new");
        meta_path(final, sizeof final, t, tname, ".topic");
        int tlen = topic_meta_format(&m, text, sizeof text);
        topic *tp = NULL;
        /* 1. the marker, durable before any directory exists */
        if (tlen < 0 || write_file_synced(marker, text, (size_t)tlen) != 0 ||
            fsync_dir(t->data_dir) != 0) {
            /* (a path too long for msg is cut short there; the code still says what failed) */
            if (snprintf(msg, msglen, "cannot write %s: %s", marker, strerror(errno)) < 0)
                msg[0] = 0;
            rc = KERR_KAFKA_STORAGE_ERROR;
        }
        /* 2. the logs (topic_open_logs fsyncs the data directory after them) */
        if (rc == KERR_NONE) rc = topic_open_logs(t, name, len, &m, 1, &tp, msg, msglen);
        /* 3. the commit point */
        if (rc == KERR_NONE && (rename(marker, final) != 0 || fsync_dir(t->data_dir) != 0)) {
            if (snprintf(msg, msglen, "cannot rename %s to %s: %s", marker, final,
                         strerror(errno)) < 0)
                msg[0] = 0;
            topic_close_logs(tp);
            topic_free(tp);
            tp = NULL;
            remove_topic_dirs(t, tname);
            rc = KERR_KAFKA_STORAGE_ERROR;
        }
        if (rc != KERR_NONE) {
            if (access(final, F_OK) != 0) unlink_durable(t, marker);
            logmsg("creating topic %.*s: %s", (int)len, name, msg);
        } else {
            pthread_mutex_lock(&t->mu);
            int bad = insert_live(t, tp);
            pthread_mutex_unlock(&t->mu);
            if (bad) {
                /* Committed on disk: it is there at the next start. */
                topic_close_logs(tp);
                topic_free(tp);
                snprintf(msg, msglen, "out of memory");
                rc = KERR_KAFKA_STORAGE_ERROR;
            } else {
                char cfgs[1024] = "";
                size_t cl = 0;
                for (int i = 0; i < CFG_N && cl < sizeof cfgs; i++)
                    if (CFG_IS_SET(&m, i))
                        cl += (size_t)snprintf(cfgs + cl, sizeof cfgs - cl, "%s%s", cl ? ", " : "",
                                               topic_config_name(i));
                logmsg("topic %.*s created with %d partition%s%s%s%s", (int)len, name, partitions,
                       partitions == 1 ? "" : "s", cl ? " (" : "", cfgs, cl ? ")" : "");
            }
        }
    }
    pthread_mutex_unlock(&t->create_mu);
    return rc;
}

int16_t topics_get(topics *t, const char *name, size_t len, int create, topic **out) {
    *out = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        int broken;
        pthread_mutex_lock(&t->mu);
        topic *tp = ref_live(t, name, len, &broken);
        int dying = !tp && is_dying(t, name, len);
        pthread_mutex_unlock(&t->mu);
        if (tp) {
            *out = tp;
            return KERR_NONE;
        }
        if (broken) return KERR_KAFKA_STORAGE_ERROR;
        if (!create || attempt > 0) return KERR_UNKNOWN_TOPIC_OR_PARTITION;
        if (dying) return KERR_LEADER_NOT_AVAILABLE;
        if (topic_name_invalid(name, len)) return KERR_INVALID_TOPIC_EXCEPTION;
        char msg[1024];
        int16_t rc = topics_create(t, name, len, -1, NULL, 0, 0, msg, sizeof msg);
        if (rc != KERR_NONE && rc != KERR_TOPIC_ALREADY_EXISTS) return rc;
    }
    return KERR_UNKNOWN_TOPIC_OR_PARTITION;
}

int16_t topics_delete(topics *t, const char *name, size_t len) {
    pthread_mutex_lock(&t->create_mu);
    pthread_mutex_lock(&t->mu);
    long i = find_live(t, name, len);
    int room = i >= 0 && grow(&t->dying, &t->cap_dying, t->ndying + 1) == 0;
    pthread_mutex_unlock(&t->mu);
    int16_t rc = i < 0 ? KERR_UNKNOWN_TOPIC_OR_PARTITION : KERR_KAFKA_STORAGE_ERROR;
    topic *tp = NULL;
    if (room) {
        /* The commit point: <topic>.topic becomes <topic>+del (a topic that has no
         * metadata file, unavailable since start, gets an empty marker). */
        char tname[TOPIC_NAME_MAX + 1], meta[4096], marker[4096];
        snprintf(tname, sizeof tname, "%.*s", (int)len, name);
        meta_path(meta, sizeof meta, t, tname, ".topic");
        meta_path(marker, sizeof marker, t, tname, "+del");
        int ok = rename(meta, marker) == 0 ||
                 (errno == ENOENT && write_file_synced(marker, "", 0) == 0);
        if (ok && fsync_dir(t->data_dir) == 0) {
            pthread_mutex_lock(&t->mu);
            i = find_live(t, name, len); /* unchanged: creation and deletion hold create_mu */
            tp = t->live[i];
            memmove(&t->live[i], &t->live[i + 1], (t->nlive - (size_t)i - 1) * sizeof *t->live);
            t->nlive--;
            tp->deleted = 1;
            t->dying[t->ndying++] = tp;
            pthread_mutex_unlock(&t->mu);
            rc = KERR_NONE;
        } else {
            logmsg("deleting topic %s: cannot rename %s to %s: %s", tname, meta, marker,
                   strerror(errno));
        }
    }
    pthread_mutex_unlock(&t->create_mu);
    if (tp) topic_unref(tp); /* the registry's reference */
    return rc;
}

int topics_list(topics *t, topic ***list, size_t *n) {
    pthread_mutex_lock(&t->mu);
    topic **l = malloc((t->nlive ? t->nlive : 1) * sizeof *l);
    if (!l) {
        pthread_mutex_unlock(&t->mu);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < t->nlive; i++) {
        if (t->live[i]->broken) continue;
        l[k] = t->live[i];
        l[k++]->refs++;
    }
    *n = k;
    pthread_mutex_unlock(&t->mu);
    *list = l;
    return 0;
}

void topics_list_free(topic **list, size_t n) {
    for (size_t i = 0; i < n; i++) topic_unref(list[i]);
    free(list);
}
