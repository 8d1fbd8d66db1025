/*
 * topics.c -- alogd's topics and partitions on disk.
 *
 * Layout of the data directory (--data):
 *   alogd.lock               flock()ed by the running alogd; holds its pid
 *   <topic>-<partition>/     one alog log per partition (include/alog.h), as Kafka
 *                            names its partition directories; the partition count of a
 *                            topic is the highest partition number found plus one
 *   deleting.<pid>.<n>/      a partition directory being deleted (renamed first, so a
 *                            crash half-way through a deletion never leaves half a
 *                            log under a topic's name); removed at the next start
 * A topic name is 1-249 characters of [a-zA-Z0-9._-] (Kafka's rule), so a directory
 * name is split at its last '-': "my-topic-12" is partition 12 of "my-topic". A name
 * that does not end in -<digits> is never a partition.
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
 */
#include "topics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kafka_msgs.h"

struct topic {
    topics *reg;
    char *name;
    int32_t nparts;
    alog **logs;
    int refs;    /* under reg->mu */
    int deleted; /* under reg->mu */
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
};

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...) {
    va_list ap;
    char line[1200];
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

static void part_dir(char *buf, size_t n, const topics *t, const char *name, int32_t p) {
    snprintf(buf, n, "%s/%s-%d", t->data_dir, name, p);
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

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    if (fsync(fd) != 0) logmsg("fsync of %s failed: %s", dir, strerror(errno));
    close(fd);
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

/* ---- topic objects ----------------------------------------------------------------- */

static void topic_free(topic *tp) {
    if (!tp) return;
    free(tp->logs);
    free(tp->name);
    free(tp);
}

/* Closes the logs of tp (those opened). */
static void topic_close_logs(topic *tp) {
    for (int32_t p = 0; p < tp->nparts; p++) {
        if (!tp->logs[p]) continue;
        if (alog_close(tp->logs[p]) != ALOG_OK)
            logmsg("closing %s-%d: %s", tp->name, p, alog_last_error());
        tp->logs[p] = NULL;
    }
}

/* Opens (creating if missing) the nparts logs of a topic. On failure, closes what it
 * opened; the directories it created are removed if remove_created. */
static int16_t topic_open_logs(topics *t, const char *name, size_t len, int32_t nparts,
                               int remove_created, topic **out, char *msg, size_t msglen) {
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
    char *created = calloc((size_t)nparts, 1);
    int16_t rc = KERR_NONE;
    for (int32_t p = 0; p < nparts && created; p++) {
        char dir[4096];
        part_dir(dir, sizeof dir, t, tp->name, p);
        struct stat st;
        created[p] = stat(dir, &st) != 0;
        alog_options o = t->cfg.log_opts;
        o.create_if_missing = 1;
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
    fsync_dir(t->data_dir);
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
    for (int32_t p = 0; p < tp->nparts; p++) {
        char dir[4096];
        part_dir(dir, sizeof dir, t, tp->name, p);
        remove_partition_dir(t, dir);
    }
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

/* ---- the registry ------------------------------------------------------------------ */

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

typedef struct found {
    char *name;
    int32_t max_part;
} found;

static int cmp_found(const void *a, const void *b) {
    return strcmp(((const found *)a)->name, ((const found *)b)->name);
}

/* Scans the data directory: removes trash, lists topics with their highest partition. */
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
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        if (is_trash(e->d_name)) {
            logmsg("removing %s, left by an interrupted topic deletion", path);
            rmrf(path);
            continue;
        }
        size_t len;
        int32_t p;
        if (!parse_part_dir(e->d_name, &len, &p)) continue;
        size_t i;
        for (i = 0; i < n; i++)
            if (strlen(f[i].name) == len && memcmp(f[i].name, e->d_name, len) == 0) break;
        if (i == n) {
            if (n == cap) {
                size_t c = cap ? cap * 2 : 16;
                found *nf = realloc(f, c * sizeof *nf);
                if (!nf) { rc = -1; break; }
                f = nf;
                cap = c;
            }
            f[n].name = strndup(e->d_name, len);
            if (!f[n].name) { rc = -1; break; }
            f[n].max_part = p;
            n++;
        } else if (p > f[i].max_part) {
            f[i].max_part = p;
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

static int mkdir_p(const char *dir) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

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
    if (!t->data_dir) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (mkdir_p(t->data_dir) != 0) {
        snprintf(err, errlen, "cannot create the data directory %s: %s", t->data_dir,
                 strerror(errno));
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
            int32_t nparts = f[i].max_part + 1;
            for (int32_t p = 0; p < nparts; p++) {
                char dir[4096];
                struct stat st;
                part_dir(dir, sizeof dir, t, f[i].name, p);
                if (stat(dir, &st) != 0)
                    logmsg("topic %s: partition %d is missing; creating it empty", f[i].name, p);
            }
            topic *tp;
            char msg[1024];
            if (topic_open_logs(t, f[i].name, strlen(f[i].name), nparts, 0, &tp, msg,
                                sizeof msg) != KERR_NONE) {
                snprintf(err, errlen, "topic %s: %s", f[i].name, msg);
                rc = -1;
            } else if (insert_live(t, tp)) {
                topic_close_logs(tp);
                topic_free(tp);
                snprintf(err, errlen, "out of memory");
                rc = -1;
            }
        }
        free(f[i].name);
    }
    free(f);
    if (rc) goto fail;
    *out = t;
    return 0;
fail:
    topics_close(t);
    return -1;
}

void topics_close(topics *t) {
    if (!t) return;
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
    free(t->data_dir);
    free(t);
}

/* With mu held: a new reference to a live topic, or NULL. */
static topic *ref_live(topics *t, const char *name, size_t len) {
    long i = find_live(t, name, len);
    if (i < 0) return NULL;
    topic *tp = t->live[i];
    tp->refs++;
    return tp;
}

int16_t topics_create(topics *t, const char *name, size_t len, int32_t partitions,
                      int validate_only, char *msg, size_t msglen) {
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
    pthread_mutex_lock(&t->create_mu);
    pthread_mutex_lock(&t->mu);
    int exists = find_live(t, name, len) >= 0, dying = is_dying(t, name, len);
    pthread_mutex_unlock(&t->mu);
    int16_t rc = KERR_NONE;
    if (exists || dying) {
        snprintf(msg, msglen, dying ? "topic '%.*s' is marked for deletion"
                                    : "topic '%.*s' already exists",
                 (int)len, name);
        rc = KERR_TOPIC_ALREADY_EXISTS;
    } else if (!validate_only) {
        topic *tp;
        rc = topic_open_logs(t, name, len, partitions, 1, &tp, msg, msglen);
        if (rc == KERR_NONE) {
            pthread_mutex_lock(&t->mu);
            int bad = insert_live(t, tp);
            pthread_mutex_unlock(&t->mu);
            if (bad) {
                topic_close_logs(tp);
                topic_free(tp);
                snprintf(msg, msglen, "out of memory");
                rc = KERR_KAFKA_STORAGE_ERROR;
            } else {
                logmsg("topic %.*s created with %d partition%s", (int)len, name, partitions,
                       partitions == 1 ? "" : "s");
            }
        } else {
            logmsg("creating topic %.*s: %s", (int)len, name, msg);
        }
    }
    pthread_mutex_unlock(&t->create_mu);
    return rc;
}

int16_t topics_get(topics *t, const char *name, size_t len, int create, topic **out) {
    *out = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_mutex_lock(&t->mu);
        topic *tp = ref_live(t, name, len);
        int dying = !tp && is_dying(t, name, len);
        pthread_mutex_unlock(&t->mu);
        if (tp) {
            *out = tp;
            return KERR_NONE;
        }
        if (!create || attempt > 0) return KERR_UNKNOWN_TOPIC_OR_PARTITION;
        if (dying) return KERR_LEADER_NOT_AVAILABLE;
        if (topic_name_invalid(name, len)) return KERR_INVALID_TOPIC_EXCEPTION;
        char msg[1024];
        int16_t rc = topics_create(t, name, len, -1, 0, msg, sizeof msg);
        if (rc != KERR_NONE && rc != KERR_TOPIC_ALREADY_EXISTS) return rc;
    }
    return KERR_UNKNOWN_TOPIC_OR_PARTITION;
}

int16_t topics_delete(topics *t, const char *name, size_t len) {
    pthread_mutex_lock(&t->create_mu);
    pthread_mutex_lock(&t->mu);
    long i = find_live(t, name, len);
    topic *tp = NULL;
    int16_t rc = KERR_UNKNOWN_TOPIC_OR_PARTITION;
    if (i >= 0 && grow(&t->dying, &t->cap_dying, t->ndying + 1) == 0) {
        tp = t->live[i];
        memmove(&t->live[i], &t->live[i + 1], (t->nlive - (size_t)i - 1) * sizeof *t->live);
        t->nlive--;
        tp->deleted = 1;
        t->dying[t->ndying++] = tp;
        rc = KERR_NONE;
    } else if (i >= 0) {
        rc = KERR_KAFKA_STORAGE_ERROR;
    }
    pthread_mutex_unlock(&t->mu);
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
    for (size_t i = 0; i < t->nlive; i++) {
        l[i] = t->live[i];
        l[i]->refs++;
    }
    *n = t->nlive;
    pthread_mutex_unlock(&t->mu);
    *list = l;
    return 0;
}

void topics_list_free(topic **list, size_t n) {
    for (size_t i = 0; i < n; i++) topic_unref(list[i]);
    free(list);
}
