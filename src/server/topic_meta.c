/*
 * topic_meta.c -- the text of alogd's topic metadata files and the checking of topic
 * configs (topic_meta.h says why it stands apart from topics.c).
 *
 * The file is text, one name=value per line after an "alogd-topic <version>" line:
 * readable and fixable by an operator with an editor, and small (a handful of lines).
 * The parser is strict (every line name=value, ending in a newline; numbers plain
 * decimal in range; each config checked as CreateTopics checks it; a version newer
 * than this alogd refused): a file it accepts describes a topic alogd could have
 * created, and formatting what it parsed gives a file that parses to the same.
 */
#include "topic_meta.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_msgs.h"

#define META_VERSION TOPIC_META_VERSION

static const char *const cfg_names[CFG_N] = {
    "cleanup.policy", "flush.messages",  "flush.ms",     "message.timestamp.type",
    "retention.bytes", "retention.ms", "segment.bytes",
};

/* Kafka topic configs alogd knows but does not support: named as such in the error. */
static const char *const cfg_unsupported[] = {
    "compression.type", "delete.retention.ms", "file.delete.delay.ms",
    "follower.replication.throttled.replicas", "index.interval.bytes",
    "leader.replication.throttled.replicas", "local.retention.bytes", "local.retention.ms",
    "max.compaction.lag.ms", "max.message.bytes", "message.downconversion.enable",
    "message.format.version", "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms", "message.timestamp.difference.max.ms",
    "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "min.insync.replicas", "preallocate",
    "remote.storage.enable", "segment.index.bytes", "segment.jitter.ms",
    "unclean.leader.election.enable",
};

/* Strict decimal int64 (Kafka trims surrounding whitespace). */
static int parse_i64(const char *s, int64_t *out) {
    while (*s == ' ' || *s == '\t') s++;
    int neg = *s == '-';
    if (neg) s++;
    if (*s < '0' || *s > '9') return -1;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_C(1) << 63) / 10) return -1;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > (UINT64_C(1) << 63) - (neg ? 0 : 1)) return -1;
    }
    while (*s == ' ' || *s == '\t') s++;
    if (*s) return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* Sets config name=value in m. Returns KERR_NONE or KERR_INVALID_CONFIG with msg. */
int16_t topic_config_set(topic_meta *m, const char *name, size_t nlen, const char *value,
                          size_t vlen, char *msg, size_t msglen) {
    int i;
    for (i = 0; i < CFG_N; i++)
        if (strlen(cfg_names[i]) == nlen && memcmp(cfg_names[i], name, nlen) == 0) break;
    if (i == CFG_N) {
        for (size_t k = 0; k < sizeof cfg_unsupported / sizeof *cfg_unsupported; k++)
            if (strlen(cfg_unsupported[k]) == nlen && memcmp(cfg_unsupported[k], name, nlen) == 0) {
                snprintf(msg, msglen, "Topic config %.*s is not supported by alogd", (int)nlen,
                         name);
                return KERR_INVALID_CONFIG;
            }
        if (nlen == 10 && memcmp(name, "segment.ms", 10) == 0) {
            snprintf(msg, msglen, "Topic config segment.ms is not supported by alogd: alog "
                                  "rolls segments by size only (segment.bytes)");
            return KERR_INVALID_CONFIG;
        }
        snprintf(msg, msglen, "Unknown topic config name: %.*s", (int)(nlen > 255 ? 255 : nlen),
                 name);
        return KERR_INVALID_CONFIG;
    }
    if (CFG_IS_SET(m, i)) {
        snprintf(msg, msglen, "Topic config %s is given more than once", cfg_names[i]);
        return KERR_INVALID_CONFIG;
    }
    if (!value) {
        snprintf(msg, msglen, "Null value not supported for topic configs: %s", cfg_names[i]);
        return KERR_INVALID_CONFIG;
    }
    char v[256];
    if (vlen >= sizeof v || memchr(value, '\0', vlen) || memchr(value, '\n', vlen)) {
        snprintf(msg, msglen, "Invalid value for configuration %s: too long or not text",
                 cfg_names[i]);
        return KERR_INVALID_CONFIG;
    }
    memcpy(v, value, vlen);
    v[vlen] = '\0';
    int64_t n = 0;
    const char *why = NULL;
    switch (i) {
    case CFG_CLEANUP_POLICY:
        if (strcmp(v, "delete") != 0)
            why = "only 'delete' is supported (alog does not compact)";
        break;
    case CFG_TIMESTAMP_TYPE:
        if (!strcmp(v, "CreateTime"))
            n = 0;
        else if (!strcmp(v, "LogAppendTime"))
            n = 1;
        else
            why = "must be CreateTime or LogAppendTime";
        break;
    default:
        if (parse_i64(v, &n)) {
            why = "not a number";
            break;
        }
        switch (i) {
        case CFG_RETENTION_MS:
        case CFG_RETENTION_BYTES:
            if (n != -1 && n < 1) why = "must be -1 (no limit) or at least 1 (alog cannot express 0)";
            break;
        case CFG_SEGMENT_BYTES:
            if (n < 64 || n > INT32_MAX) why = "must be between 64 and 2147483647";
            break;
        case CFG_FLUSH_MESSAGES:
            if (n != 1 && n != INT64_MAX)
                why = "alog supports 1 (fsync before every acknowledgement) and "
                      "9223372036854775807 (no flush by count), nothing in between";
            break;
        case CFG_FLUSH_MS:
            if ((n < 0 || n > UINT32_MAX) && n != INT64_MAX)
                why = "must be between 0 and 4294967295, or 9223372036854775807 (never)";
            break;
        }
    }
    if (why) {
        snprintf(msg, msglen, "Invalid value %s for configuration %s: %s", v, cfg_names[i], why);
        return KERR_INVALID_CONFIG;
    }
    m->val[i] = n;
    m->set |= 1u << i;
    return KERR_NONE;
}

/* The metadata file's text. */
int topic_meta_format(const topic_meta *m, char *buf, size_t n) {
    int len = snprintf(buf, n, "alogd-topic %d\npartitions=%d\n", META_VERSION, m->partitions);
    for (int i = 0; i < CFG_N && len > 0 && (size_t)len < n; i++) {
        if (!CFG_IS_SET(m, i)) continue;
        if (i == CFG_CLEANUP_POLICY)
            len += snprintf(buf + len, n - (size_t)len, "%s=delete\n", cfg_names[i]);
        else if (i == CFG_TIMESTAMP_TYPE)
            len += snprintf(buf + len, n - (size_t)len, "%s=%s\n", cfg_names[i],
                            m->val[i] ? "LogAppendTime" : "CreateTime");
        else
            len += snprintf(buf + len, n - (size_t)len, "%s=%" PRId64 "\n", cfg_names[i],
                            m->val[i]);
    }
    return len > 0 && (size_t)len < n ? len : -1;
}

/* Parses a metadata file's text (NUL-terminated). Returns 0, or -1 with why. */
int topic_meta_parse(char *text, topic_meta *m, char *why, size_t whylen) {
    memset(m, 0, sizeof *m);
    int ver = 0, used = 0;
    if (sscanf(text, "alogd-topic %d%n", &ver, &used) != 1 || text[used] != '\n') {
        snprintf(why, whylen, "not a topic metadata file (no 'alogd-topic N' first line)");
        return -1;
    }
    if (ver > META_VERSION) {
        snprintf(why, whylen, "metadata version %d is newer than this alogd supports (%d)", ver,
                 META_VERSION);
        return -1;
    }
    if (ver < 1) {
        snprintf(why, whylen, "bad metadata version %d", ver);
        return -1;
    }
    char *line = text + used + 1;
    while (*line) {
        char *nl = strchr(line, '\n');
        if (!nl) {
            snprintf(why, whylen, "the last line does not end in a newline");
            return -1;
        }
        *nl = '\0';
        char *eq = strchr(line, '=');
        if (!eq) {
            snprintf(why, whylen, "line '%.100s' is not name=value", line);
            return -1;
        }
        *eq = '\0';
        if (!strcmp(line, "partitions")) {
            int64_t n;
            if (m->partitions || parse_i64(eq + 1, &n) || n < 1 || n > TOPIC_PARTITIONS_MAX) {
                snprintf(why, whylen, "bad or repeated partitions line");
                return -1;
            }
            m->partitions = (int32_t)n;
        } else {
            char msg[512];
            if (topic_config_set(m, line, strlen(line), eq + 1, strlen(eq + 1), msg, sizeof msg)) {
                snprintf(why, whylen, "%s", msg);
                return -1;
            }
        }
        line = nl + 1;
    }
    if (!m->partitions) {
        snprintf(why, whylen, "no partitions line");
        return -1;
    }
    return 0;
}


const char *topic_config_name(int i) { return i >= 0 && i < CFG_N ? cfg_names[i] : "?"; }
