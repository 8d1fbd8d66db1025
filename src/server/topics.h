/*
 * topics.h -- alogd's topics: a registry of named topics, each a fixed number of
 * partitions, each partition one alog log in DATA/<topic>-<partition>/, and each topic
 * described by its metadata file DATA/<topic>.topic (partition count and topic
 * configs; docs/FORMAT.md §13). topics.c has the on-disk protocol.
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
#include "topic_meta.h" /* TOPIC_PARTITIONS_MAX */

typedef struct topics topics;
typedef struct topic topic;

typedef struct topics_config {
    const char *data_dir;
    int default_partitions; /* for auto-created topics and CreateTopics with -1 */
    int auto_create;        /* create unknown topics on Metadata and Produce */
    /* The server-wide default of flush.messages=1 (--fsync always): a Produce with
     * acks 1/-1 is answered once its records are fsynced. A topic's own flush.messages
     * overrides it. */
    int fsync_always;
    /* How every partition's log is opened, before the topic's configs are applied
     * (fsync_policy/fsync_interval_ms are the default of flush.ms). */
    alog_options log_opts;
    /* Period of the background retention check (Kafka's
     * log.retention.check.interval.ms); 0 = none (retention then runs only at rolls). */
    int retention_check_ms;
    /* Partitions open at most, over every topic (--max-partitions); 0 = no limit. Each
     * open partition holds a thread (its log's fsync thread) and its segments' files
     * (3 descriptors a segment, 1 more for the log): a peer that may create topics
     * (CreateTopics, or auto-creation by naming them in Metadata/Produce) would
     * otherwise exhaust the process's descriptors and threads. Creation past it gets
     * POLICY_VIOLATION; the topics found at start are opened whatever their count. */
    int max_partitions;
} topics_config;

/* One topic config of a CreateTopics request: name and value, not NUL-terminated;
 * value NULL for a null value. */
typedef struct topic_kv {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} topic_kv;

/* Opens the registry: creates data_dir if missing, takes a lock file in it (a second
 * alogd on the same directory fails), cleans up interrupted creations and deletions,
 * and opens every topic found there: a topic with a metadata file as the file says,
 * a legacy one (partition directories only, from an alogd before metadata files) with
 * the highest partition found plus one (missing ones created), writing its metadata
 * file. A topic that cannot be opened, or whose directories contradict its metadata
 * file, is reported on stderr and kept unavailable (KAFKA_STORAGE_ERROR) while the
 * others are served. On failure (the directory or its lock) returns non-zero with a
 * message in err. *out is freed with topics_close(). */
int topics_open(const topics_config *cfg, topics **out, char *err, size_t errlen);

/* Stops the retention thread, closes every log cleanly (so the next start needs no
 * recovery) and frees the registry. Every topic reference must have been dropped,
 * except by requests that a log's closing completes (alog_on_durable callbacks run
 * with ALOG_EFAILED). */
void topics_close(topics *t);

const topics_config *topics_cfg(const topics *t);

/* Kafka's rule: 1-249 characters of [a-zA-Z0-9._-], not "." or "..". Returns NULL if
 * valid, else the reason. */
const char *topic_name_invalid(const char *name, size_t len);

/* Looks a topic up by name; with create, creates it with the default partition count
 * if it does not exist (auto-creation). Returns a Kafka error code: 0 with *out a
 * reference; UNKNOWN_TOPIC_OR_PARTITION; INVALID_TOPIC_EXCEPTION (bad name, only when
 * creating); LEADER_NOT_AVAILABLE (being deleted, retry); KAFKA_STORAGE_ERROR (the
 * logs could not be created, or the topic is unavailable: see topics_open);
 * POLICY_VIOLATION (creating it would pass max_partitions). */
int16_t topics_get(topics *t, const char *name, size_t len, int create, topic **out);

/* CreateTopics: partitions < 0 means the default; configs are Kafka topic configs
 * (INVALID_CONFIG for unknown or unsupported ones and bad values). validate_only
 * checks only. POLICY_VIOLATION if the partitions open would pass max_partitions.
 * Returns a Kafka error code; msg (msglen bytes) gets a message for errors. */
int16_t topics_create(topics *t, const char *name, size_t len, int32_t partitions,
                      const topic_kv *configs, size_t nconfigs, int validate_only, char *msg,
                      size_t msglen);

/* DeleteTopics: removes the topic from the registry and its metadata file at once;
 * its directories are deleted once the last reference is dropped. Returns a Kafka
 * error code. */
int16_t topics_delete(topics *t, const char *name, size_t len);

/* References to every available topic, sorted by name. *list is freed with
 * topics_list_free() (which drops the references). Returns 0, or -1 when out of
 * memory. */
int topics_list(topics *t, topic ***list, size_t *n);
void topics_list_free(topic **list, size_t n);

void topic_unref(topic *tp);
const char *topic_name(const topic *tp);
int32_t topic_partitions(const topic *tp);
/* The log of partition p (0 <= p < topic_partitions), valid while the reference is. */
alog *topic_log(const topic *tp, int32_t p);
/* 1 if a Produce with acks 1/-1 is answered only once its records are fsynced
 * (flush.messages=1, or --fsync always without a flush.messages of its own). */
int topic_fsync_always(const topic *tp);
/* 1 if message.timestamp.type=LogAppendTime: the broker stamps each batch. */
int topic_log_append_time(const topic *tp);

#endif
