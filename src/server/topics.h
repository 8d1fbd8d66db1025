/*
 * topics.h -- alogd's topics: a registry of named topics, each a fixed number of
 * partitions, each partition one alog log in DATA/<topic>-<partition>/ (topics.c).
 *
 * Threads: every function may be called from any thread. A topic handed out by
 * topics_get() or topics_list() is a reference: it stays usable (its logs open) until
 * topic_unref(), even if it is deleted meanwhile.
 */
#ifndef ALOGD_TOPICS_H
#define ALOGD_TOPICS_H

#include <stddef.h>
#include <stdint.h>

#include "alog.h"

#define TOPIC_NAME_MAX 249
#define TOPIC_PARTITIONS_MAX 1000

typedef struct topics topics;
typedef struct topic topic;

typedef struct topics_config {
    const char *data_dir;
    int default_partitions; /* for auto-created topics and CreateTopics with -1 */
    int auto_create;        /* create unknown topics on Metadata and Produce */
    alog_options log_opts;  /* how every partition's log is opened */
} topics_config;

/* Opens the registry: creates data_dir if missing, takes a lock file in it (a second
 * alogd on the same directory fails), and opens every topic found there (a directory
 * <topic>-<n> for a valid topic name; partitions missing below the highest found are
 * created). Leftovers of interrupted deletions are removed. On failure returns non-zero
 * with a message in err. *out is freed with topics_close(). */
int topics_open(const topics_config *cfg, topics **out, char *err, size_t errlen);

/* Closes every log cleanly (so the next start needs no recovery) and frees the
 * registry. Every topic reference must have been dropped, except by requests that a
 * log's closing completes (alog_on_durable callbacks run with ALOG_EFAILED). */
void topics_close(topics *t);

const topics_config *topics_cfg(const topics *t);

/* Kafka's rule: 1-249 characters of [a-zA-Z0-9._-], not "." or "..". Returns NULL if
 * valid, else the reason. */
const char *topic_name_invalid(const char *name, size_t len);

/* Looks a topic up by name; with create, creates it with the default partition count
 * if it does not exist (auto-creation). Returns a Kafka error code: 0 with *out a
 * reference; UNKNOWN_TOPIC_OR_PARTITION; INVALID_TOPIC_EXCEPTION (bad name, only when
 * creating); LEADER_NOT_AVAILABLE (being deleted, retry); KAFKA_STORAGE_ERROR (the
 * logs could not be created; logged to stderr). */
int16_t topics_get(topics *t, const char *name, size_t len, int create, topic **out);

/* CreateTopics: partitions < 0 means the default. validate_only checks only. Returns
 * a Kafka error code; msg (msglen bytes) gets a message for errors. */
int16_t topics_create(topics *t, const char *name, size_t len, int32_t partitions,
                      int validate_only, char *msg, size_t msglen);

/* DeleteTopics: removes the topic from the registry at once; its directories are
 * deleted once the last reference is dropped. Returns a Kafka error code. */
int16_t topics_delete(topics *t, const char *name, size_t len);

/* References to every topic, sorted by name. *list is freed with topics_list_free()
 * (which drops the references). Returns 0, or -1 when out of memory. */
int topics_list(topics *t, topic ***list, size_t *n);
void topics_list_free(topic **list, size_t n);

void topic_unref(topic *tp);
const char *topic_name(const topic *tp);
int32_t topic_partitions(const topic *tp);
/* The log of partition p (0 <= p < topic_partitions), valid while the reference is. */
alog *topic_log(const topic *tp, int32_t p);

#endif
