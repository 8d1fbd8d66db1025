/*
 * kafka_msgs.h -- the Kafka requests and responses alogd speaks, as C structs, with
 * their decoders and encoders (kafka_msgs.c), and the protocol's error codes.
 *
 * Versions (what ApiVersions advertises; every minimum is 0, see kafka_msgs.c):
 *   Produce 0-7, Fetch 0-11, ListOffsets 0-2, Metadata 0-4, ApiVersions 0-3,
 *   CreateTopics 0-4, DeleteTopics 0-3.
 * All of them are non-flexible except ApiVersions v3.
 *
 * Ownership: a decoded message points into the bytes it was decoded from (strings,
 * record batches) and into the arena it was given (arrays); it is valid while both
 * are. Encoders copy everything into the output buffer.
 */
#ifndef ALOGD_KAFKA_MSGS_H
#define ALOGD_KAFKA_MSGS_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

enum {
    KAPI_PRODUCE = 0,
    KAPI_FETCH = 1,
    KAPI_LIST_OFFSETS = 2,
    KAPI_METADATA = 3,
    KAPI_API_VERSIONS = 18,
    KAPI_CREATE_TOPICS = 19,
    KAPI_DELETE_TOPICS = 20,
};

/* Kafka error codes used here (org.apache.kafka.common.protocol.Errors). */
enum {
    KERR_UNKNOWN_SERVER_ERROR = -1,
    KERR_NONE = 0,
    KERR_OFFSET_OUT_OF_RANGE = 1,
    KERR_CORRUPT_MESSAGE = 2,
    KERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    KERR_LEADER_NOT_AVAILABLE = 5,
    KERR_REQUEST_TIMED_OUT = 7,
    KERR_MESSAGE_TOO_LARGE = 10,
    KERR_INVALID_TOPIC_EXCEPTION = 17,
    KERR_INVALID_REQUIRED_ACKS = 21,
    KERR_UNSUPPORTED_VERSION = 35,
    KERR_TOPIC_ALREADY_EXISTS = 36,
    KERR_INVALID_PARTITIONS = 37,
    KERR_INVALID_REPLICATION_FACTOR = 38,
    KERR_INVALID_REPLICA_ASSIGNMENT = 39,
    KERR_INVALID_CONFIG = 40,
    KERR_INVALID_REQUEST = 42,
    KERR_POLICY_VIOLATION = 44,
    KERR_KAFKA_STORAGE_ERROR = 56,
    KERR_UNSUPPORTED_COMPRESSION_TYPE = 76,
    KERR_INVALID_RECORD = 87,
};

/* The name of a Kafka error code ("CORRUPT_MESSAGE"), or "UNKNOWN(n)" style "?". */
const char *kafka_err_name(int16_t code);

/* One API and the versions alogd implements. */
typedef struct kapi_range {
    int16_t api_key;
    int16_t min_version;
    int16_t max_version;
} kapi_range;

/* The table ApiVersions advertises (static storage), and its length. */
const kapi_range *kafka_supported_apis(size_t *n);
/* "Produce", "Fetch", ... or NULL for a key alogd does not implement. */
const char *kafka_api_name(int16_t api_key);
/* 1 if alogd implements this key at this version. */
int kafka_version_supported(int16_t api_key, int16_t version);

/* ---- headers --------------------------------------------------------------------- */

typedef struct kreq_header {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    kstr client_id; /* nullable */
} kreq_header;

/* ---- ApiVersions (18) ------------------------------------------------------------ */
typedef struct kreq_api_versions {
    kstr client_software_name;    /* v3+ */
    kstr client_software_version; /* v3+ */
} kreq_api_versions;

typedef struct kresp_api_versions {
    int16_t error_code;
    int32_t napis;
    kapi_range *apis;
    int32_t throttle_time_ms; /* v1+ */
} kresp_api_versions;

/* ---- Metadata (3) ---------------------------------------------------------------- */
typedef struct kreq_metadata {
    int32_t ntopics; /* -1: null (all topics, v1+); v0 sends 0 for all topics */
    kstr *topics;
    int8_t allow_auto_topic_creation; /* v4+; 1 for older versions */
} kreq_metadata;

typedef struct kmeta_broker {
    int32_t node_id;
    kstr host;
    int32_t port;
    kstr rack; /* v1+, nullable */
} kmeta_broker;

typedef struct kmeta_partition {
    int16_t error_code;
    int32_t partition_index;
    int32_t leader_id;
    int32_t nreplicas;
    int32_t *replicas;
    int32_t nisr;
    int32_t *isr;
} kmeta_partition;

typedef struct kmeta_topic {
    int16_t error_code;
    kstr name;
    int8_t is_internal; /* v1+ */
    int32_t npartitions;
    kmeta_partition *partitions;
} kmeta_topic;

typedef struct kresp_metadata {
    int32_t throttle_time_ms; /* v3+ */
    int32_t nbrokers;
    kmeta_broker *brokers;
    kstr cluster_id;       /* v2+, nullable */
    int32_t controller_id; /* v1+ */
    int32_t ntopics;
    kmeta_topic *topics;
} kresp_metadata;

/* ---- Produce (0) ----------------------------------------------------------------- */
typedef struct kproduce_part {
    int32_t index;
    kbytes records; /* nullable; RecordBatches as sent */
} kproduce_part;

typedef struct kproduce_topic {
    kstr name;
    int32_t nparts;
    kproduce_part *parts;
} kproduce_topic;

typedef struct kreq_produce {
    kstr transactional_id; /* v3+, nullable */
    int16_t acks;
    int32_t timeout_ms;
    int32_t ntopics;
    kproduce_topic *topics;
} kreq_produce;

typedef struct kproduce_part_resp {
    int32_t index;
    int16_t error_code;
    int64_t base_offset;
    int64_t log_append_time_ms; /* v2+ */
    int64_t log_start_offset;   /* v5+ */
} kproduce_part_resp;

typedef struct kproduce_topic_resp {
    kstr name;
    int32_t nparts;
    kproduce_part_resp *parts;
} kproduce_topic_resp;

typedef struct kresp_produce {
    int32_t ntopics;
    kproduce_topic_resp *topics;
    int32_t throttle_time_ms; /* v1+ */
} kresp_produce;

/* ---- Fetch (1) ------------------------------------------------------------------- */
typedef struct kfetch_part {
    int32_t partition;
    int32_t current_leader_epoch; /* v9+ */
    int64_t fetch_offset;
    int64_t log_start_offset; /* v5+ */
    int32_t partition_max_bytes;
} kfetch_part;

typedef struct kfetch_topic {
    kstr topic;
    int32_t nparts;
    kfetch_part *parts;
} kfetch_topic;

typedef struct kfetch_forgotten {
    kstr topic;
    int32_t nparts;
    int32_t *parts;
} kfetch_forgotten;

typedef struct kreq_fetch {
    int32_t replica_id;
    int32_t max_wait_ms;
    int32_t min_bytes;
    int32_t max_bytes;       /* v3+ */
    int8_t isolation_level;  /* v4+ */
    int32_t session_id;      /* v7+ */
    int32_t session_epoch;   /* v7+ */
    int32_t ntopics;
    kfetch_topic *topics;
    int32_t nforgotten; /* v7+ */
    kfetch_forgotten *forgotten;
    kstr rack_id; /* v11+ */
} kreq_fetch;

typedef struct kaborted_txn {
    int64_t producer_id;
    int64_t first_offset;
} kaborted_txn;

typedef struct kfetch_part_resp {
    int32_t partition_index;
    int16_t error_code;
    int64_t high_watermark;
    int64_t last_stable_offset; /* v4+ */
    int64_t log_start_offset;   /* v5+ */
    int32_t naborted;           /* v4+; -1 = null */
    kaborted_txn *aborted;
    int32_t preferred_read_replica; /* v11+ */
    /* The records field: null if records_null, else the concatenation of the chunks
     * (batches from one or more segments, sent unchanged). Decoding gives one chunk.
     * A chunk with p NULL and len > 0 is out of line: only
     * kafka_encode_fetch_response() takes it (its bytes are sent from a file). */
    int records_null;
    int32_t nchunks;
    kbytes *chunks;
} kfetch_part_resp;

typedef struct kfetch_topic_resp {
    kstr topic;
    int32_t nparts;
    kfetch_part_resp *parts;
} kfetch_topic_resp;

typedef struct kresp_fetch {
    int32_t throttle_time_ms; /* v1+ */
    int16_t error_code;       /* v7+ */
    int32_t session_id;       /* v7+ */
    int32_t ntopics;
    kfetch_topic_resp *topics;
} kresp_fetch;

/* ---- ListOffsets (2) ------------------------------------------------------------- */
#define KAFKA_OFFSET_LATEST (-1)
#define KAFKA_OFFSET_EARLIEST (-2)

typedef struct klo_part {
    int32_t partition_index;
    int64_t timestamp;
    int32_t max_num_offsets; /* v0 only */
} klo_part;

typedef struct klo_topic {
    kstr name;
    int32_t nparts;
    klo_part *parts;
} klo_topic;

typedef struct kreq_list_offsets {
    int32_t replica_id;
    int8_t isolation_level; /* v2+ */
    int32_t ntopics;
    klo_topic *topics;
} kreq_list_offsets;

typedef struct klo_part_resp {
    int32_t partition_index;
    int16_t error_code;
    int32_t nold; /* v0 only: old_style_offsets */
    int64_t *old_style_offsets;
    int64_t timestamp; /* v1+ */
    int64_t offset;    /* v1+ */
} klo_part_resp;

typedef struct klo_topic_resp {
    kstr name;
    int32_t nparts;
    klo_part_resp *parts;
} klo_topic_resp;

typedef struct kresp_list_offsets {
    int32_t throttle_time_ms; /* v2+ */
    int32_t ntopics;
    klo_topic_resp *topics;
} kresp_list_offsets;

/* ---- CreateTopics (19) ----------------------------------------------------------- */
typedef struct kct_assignment {
    int32_t partition_index;
    int32_t nbrokers;
    int32_t *broker_ids;
} kct_assignment;

typedef struct kct_config {
    kstr name;
    kstr value; /* nullable */
} kct_config;

typedef struct kct_topic {
    kstr name;
    int32_t num_partitions;
    int16_t replication_factor;
    int32_t nassignments;
    kct_assignment *assignments;
    int32_t nconfigs;
    kct_config *configs;
} kct_topic;

typedef struct kreq_create_topics {
    int32_t ntopics;
    kct_topic *topics;
    int32_t timeout_ms;
    int8_t validate_only; /* v1+ */
} kreq_create_topics;

typedef struct kct_result {
    kstr name;
    int16_t error_code;
    kstr error_message; /* v1+, nullable */
} kct_result;

typedef struct kresp_create_topics {
    int32_t throttle_time_ms; /* v2+ */
    int32_t ntopics;
    kct_result *topics;
} kresp_create_topics;

/* ---- DeleteTopics (20) ----------------------------------------------------------- */
typedef struct kreq_delete_topics {
    int32_t nnames;
    kstr *names;
    int32_t timeout_ms;
} kreq_delete_topics;

typedef struct kdt_result {
    kstr name;
    int16_t error_code;
} kdt_result;

typedef struct kresp_delete_topics {
    int32_t throttle_time_ms; /* v1+ */
    int32_t nresults;
    kdt_result *results;
} kresp_delete_topics;

/* ---- whole messages -------------------------------------------------------------- */

typedef struct kreq {
    kreq_header h;
    union {
        kreq_api_versions api_versions;
        kreq_metadata metadata;
        kreq_produce produce;
        kreq_fetch fetch;
        kreq_list_offsets list_offsets;
        kreq_create_topics create_topics;
        kreq_delete_topics delete_topics;
    } u;
} kreq;

typedef union kresp_body {
    kresp_api_versions api_versions;
    kresp_metadata metadata;
    kresp_produce produce;
    kresp_fetch fetch;
    kresp_list_offsets list_offsets;
    kresp_create_topics create_topics;
    kresp_delete_topics delete_topics;
} kresp_body;

/* Results of kafka_decode_request. */
typedef enum kdec_result {
    KDEC_OK = 0,
    KDEC_MALFORMED = 1,   /* err says what; header may be partly filled */
    KDEC_UNSUPPORTED = 2, /* header filled; this key or version is not implemented */
} kdec_result;

/* Decodes one request (header and body, without the 4-byte size prefix) from buf.
 * Arrays come from arena. On KDEC_MALFORMED, err (errlen bytes) gets a message such
 * as "Produce v7 request: truncated: an int32 needs 4 bytes, 2 left at byte 58 of 60".
 * On KDEC_UNSUPPORTED the header (at least key, version and correlation id) is
 * filled and the body is not read. */
kdec_result kafka_decode_request(const void *buf, size_t len, karena *arena, kreq *out,
                                 char *err, size_t errlen);

/* Appends one request frame (4-byte size, header v1 or v2, body) to out. The version
 * must be one alogd implements. 0 on success, -1 (err filled) on failure. For tests,
 * tools and the fuzzer's round trip. */
int kafka_encode_request(kbuf *out, const kreq *req, char *err, size_t errlen);

/* Appends one response frame (4-byte size, response header, body) to out for a
 * request of this key and version. ApiVersions responses always use header v0, the
 * others header v0 as well (no flexible versions are implemented besides ApiVersions
 * v3). 0 on success, -1 (err filled) on failure. */
int kafka_encode_response(kbuf *out, int16_t api_key, int16_t version, int32_t correlation_id,
                          const kresp_body *body, char *err, size_t errlen);

/* A Fetch response whose records may be partly out of line (alogd sends them with
 * sendfile): a chunk with p NULL and len > 0 is counted in its records' size and in
 * the frame's size, but no bytes are written for it; gap_pos[k] gets the position in
 * out where the k-th such chunk's bytes belong, in encoding order (topics, partitions,
 * chunks). ngaps must be the number of such chunks. The frame is then out's bytes
 * with each gap's bytes inserted at its position. 0 on success, -1 (err filled). */
int kafka_encode_fetch_response(kbuf *out, int16_t version, int32_t correlation_id,
                                const kresp_fetch *body, size_t *gap_pos, size_t ngaps,
                                char *err, size_t errlen);

/* Decodes a response body (after the 4-byte size: header and body) for a request of
 * this key and version, into *body (arrays from arena); *correlation_id gets the id.
 * For tests and clients. 0 on success, -1 with err filled. */
int kafka_decode_response(const void *buf, size_t len, int16_t api_key, int16_t version,
                          karena *arena, int32_t *correlation_id, kresp_body *body, char *err,
                          size_t errlen);

/* The body of Kafka's answer to an ApiVersions request of a version it does not know:
 * a v0 body, error UNSUPPORTED_VERSION, listing only ApiVersions and its range, so the
 * client retries with a version both know. Appends the whole frame to out. */
int kafka_encode_api_versions_unsupported(kbuf *out, int32_t correlation_id);

#endif
