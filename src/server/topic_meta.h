/*
 * topic_meta.h -- a topic's metadata as alogd keeps it in DATA/<topic>.topic: its
 * partition count and the Kafka topic configs it was created with (topic_meta.c;
 * docs/FORMAT.md section 13 has the file format).
 *
 * Apart from topics.c (which owns the files and the registry) because it is a parser
 * of bytes alogd did not necessarily write (a damaged or foreign file in the data
 * directory, a CreateTopics request's configs): it has no engine or file access, so
 * that the fuzz target fuzz/fuzz_topic_meta.c can drive it alone.
 */
#ifndef ALOGD_TOPIC_META_H
#define ALOGD_TOPIC_META_H

#include <stddef.h>
#include <stdint.h>

#define TOPIC_PARTITIONS_MAX 1000
#define TOPIC_META_VERSION 1

/* In the order they are written to the metadata file (by name). */
enum {
    CFG_CLEANUP_POLICY,
    CFG_FLUSH_MESSAGES,
    CFG_FLUSH_MS,
    CFG_TIMESTAMP_TYPE,
    CFG_RETENTION_BYTES,
    CFG_RETENTION_MS,
    CFG_SEGMENT_BYTES,
    CFG_N
};

/* A topic's metadata: partition count and the configs it was given. */
typedef struct topic_meta {
    int32_t partitions;
    unsigned set;         /* bit i: config i was given */
    int64_t val[CFG_N];   /* its value (timestamp type: 1 = LogAppendTime) */
} topic_meta;

#define CFG_IS_SET(m, i) (((m)->set >> (i)) & 1u)

/* The name of config i (CFG_*). */
const char *topic_config_name(int i);

/* Sets config name=value (not NUL-terminated; value NULL is Kafka's null) in m, after
 * checking it is a config alogd supports with a valid value. Returns KERR_NONE, or
 * KERR_INVALID_CONFIG with a message for the client in msg. */
int16_t topic_config_set(topic_meta *m, const char *name, size_t nlen, const char *value,
                         size_t vlen, char *msg, size_t msglen);

/* Writes m's file text into buf (n bytes); returns its length, or -1 if it does not fit. */
int topic_meta_format(const topic_meta *m, char *buf, size_t n);

/* Parses a metadata file's text (NUL-terminated; modified in place) into m. Returns 0,
 * or -1 with the reason in why. */
int topic_meta_parse(char *text, topic_meta *m, char *why, size_t whylen);

#endif
