/*
 * kafka_msgs.c -- the schemas of the Kafka requests and responses alogd implements,
 * each written once as a function that walks its fields through a kio (proto.h), so
 * the same code decodes and encodes it. The field lists follow apache/kafka's
 * clients/src/main/resources/common/message/<Name>{Request,Response}.json: a field
 * with "versions": "3+" is present from version 3 on, and so on.
 *
 * Versions implemented, and why these:
 *   ApiVersions 0-3   librdkafka sends v3 first (flexible: compact forms, tagged
 *                     fields, request header v2); kafkajs sends v2. An unknown
 *                     version (v4+) gets Kafka's own answer: a v0 body with error 35
 *                     listing ApiVersions, and the client retries lower.
 *   Metadata 0-4, Produce 0-7, Fetch 0-11, ListOffsets 0-2, CreateTopics 0-4,
 *   DeleteTopics 0-3  the newest non-flexible version of each: both clients pick the
 *                     highest version they share with the broker, so they use exactly
 *                     these (librdkafka: Metadata v4, Produce v7, Fetch v11,
 *                     ListOffsets v2), and no flexible encoding is needed past
 *                     ApiVersions.
 * Every minimum is advertised as 0 because librdkafka checks that ranges overlap
 * (Produce must include 3 and Fetch 4 for RecordBatch v2, ListOffsets 1 for offsets by
 * time); the lower versions decode and encode here too, and the server decides what
 * to answer to them (see api.c).
 *
 * Header versions: requests use header v1 (int16 key, int16 version, int32
 * correlation id, nullable client id) and v2 (the same plus tagged fields) for flexible
 * versions, here only ApiVersions v3. Every response alogd sends uses header v0 (the
 * correlation id alone): ApiVersions always does, and nothing else is flexible.
 *
 * Fetch responses may leave records out of line (kafka_encode_fetch_response): the
 * records' and the frame's sizes count them, no bytes are written for them, and the
 * caller learns where they go; alogd sends them from the segment files (net.c).
 */
#include "kafka_msgs.h"

#include <stdio.h>
#include <string.h>

/* ---- the API table ------------------------------------------------------------------ */

static const kapi_range g_apis[] = {
    {KAPI_PRODUCE, 0, 7},       {KAPI_FETCH, 0, 11},        {KAPI_LIST_OFFSETS, 0, 2},
    {KAPI_METADATA, 0, 4},      {KAPI_API_VERSIONS, 0, 3},  {KAPI_CREATE_TOPICS, 0, 4},
    {KAPI_DELETE_TOPICS, 0, 3},
};

const kapi_range *kafka_supported_apis(size_t *n) {
    *n = sizeof g_apis / sizeof g_apis[0];
    return g_apis;
}

const char *kafka_api_name(int16_t api_key) {
    switch (api_key) {
    case KAPI_PRODUCE: return "Produce";
    case KAPI_FETCH: return "Fetch";
    case KAPI_LIST_OFFSETS: return "ListOffsets";
    case KAPI_METADATA: return "Metadata";
    case KAPI_API_VERSIONS: return "ApiVersions";
    case KAPI_CREATE_TOPICS: return "CreateTopics";
    case KAPI_DELETE_TOPICS: return "DeleteTopics";
    default: return NULL;
    }
}

int kafka_version_supported(int16_t api_key, int16_t version) {
    for (size_t i = 0; i < sizeof g_apis / sizeof g_apis[0]; i++)
        if (g_apis[i].api_key == api_key)
            return version >= g_apis[i].min_version && version <= g_apis[i].max_version;
    return 0;
}

const char *kafka_err_name(int16_t code) {
    switch (code) {
    case KERR_UNKNOWN_SERVER_ERROR: return "UNKNOWN_SERVER_ERROR";
    case KERR_NONE: return "NONE";
    case KERR_OFFSET_OUT_OF_RANGE: return "OFFSET_OUT_OF_RANGE";
    case KERR_CORRUPT_MESSAGE: return "CORRUPT_MESSAGE";
    case KERR_UNKNOWN_TOPIC_OR_PARTITION: return "UNKNOWN_TOPIC_OR_PARTITION";
    case KERR_LEADER_NOT_AVAILABLE: return "LEADER_NOT_AVAILABLE";
    case KERR_REQUEST_TIMED_OUT: return "REQUEST_TIMED_OUT";
    case KERR_MESSAGE_TOO_LARGE: return "MESSAGE_TOO_LARGE";
    case KERR_INVALID_TOPIC_EXCEPTION: return "INVALID_TOPIC_EXCEPTION";
    case KERR_INVALID_REQUIRED_ACKS: return "INVALID_REQUIRED_ACKS";
    case KERR_UNSUPPORTED_VERSION: return "UNSUPPORTED_VERSION";
    case KERR_TOPIC_ALREADY_EXISTS: return "TOPIC_ALREADY_EXISTS";
    case KERR_INVALID_PARTITIONS: return "INVALID_PARTITIONS";
    case KERR_INVALID_REPLICATION_FACTOR: return "INVALID_REPLICATION_FACTOR";
    case KERR_INVALID_REPLICA_ASSIGNMENT: return "INVALID_REPLICA_ASSIGNMENT";
    case KERR_INVALID_CONFIG: return "INVALID_CONFIG";
    case KERR_INVALID_REQUEST: return "INVALID_REQUEST";
    case KERR_POLICY_VIOLATION: return "POLICY_VIOLATION";
    case KERR_KAFKA_STORAGE_ERROR: return "KAFKA_STORAGE_ERROR";
    case KERR_INVALID_RECORD: return "INVALID_RECORD";
    default: return "?";
    }
}

/* ---- helpers ----------------------------------------------------------------------- */

#define TRY(x)                                                                          \
    do {                                                                                \
        if ((x) != 0) return -1;                                                        \
    } while (0)

/* An array header, typed: elems is a pointer lvalue of the element type. */
#define ARRAY(io, n, elems, min_wire, nullable)                                        \
    do {                                                                                \
        void *arr_ = (elems);                                                           \
        TRY(kio_array((io), &(n), &arr_, sizeof *(elems), (min_wire), (nullable)));     \
        (elems) = arr_;                                                                 \
    } while (0)

#define COMPACT_ARRAY(io, n, elems, min_wire, nullable)                                \
    do {                                                                                \
        void *arr_ = (elems);                                                           \
        TRY(kio_compact_array((io), &(n), &arr_, sizeof *(elems), (min_wire), (nullable))); \
        (elems) = arr_;                                                                 \
    } while (0)

/* An array of int32 (non-nullable). */
static int io_i32_array(kio *io, int32_t *n, int32_t **v) {
    ARRAY(io, *n, *v, 4, 0);
    for (int32_t i = 0; i < *n; i++) TRY(kio_i32(io, &(*v)[i]));
    return 0;
}

static int io_i64_array(kio *io, int32_t *n, int64_t **v) {
    ARRAY(io, *n, *v, 8, 0);
    for (int32_t i = 0; i < *n; i++) TRY(kio_i64(io, &(*v)[i]));
    return 0;
}

static int request_header_version(int16_t api_key, int16_t version) {
    return api_key == KAPI_API_VERSIONS && version >= 3 ? 2 : 1;
}

static int io_request_header(kio *io, kreq_header *h, int hv) {
    TRY(kio_i16(io, &h->api_key));
    TRY(kio_i16(io, &h->api_version));
    TRY(kio_i32(io, &h->correlation_id));
    if (hv >= 1) TRY(kio_string(io, &h->client_id, 1));
    if (hv >= 2) TRY(kio_tagged_fields(io));
    return 0;
}

/* ---- ApiVersions ------------------------------------------------------------------- */

static int io_api_versions_req(kio *io, kreq_api_versions *r, int v) {
    if (v >= 3) {
        TRY(kio_compact_string(io, &r->client_software_name, 0));
        TRY(kio_compact_string(io, &r->client_software_version, 0));
        TRY(kio_tagged_fields(io));
    }
    return 0;
}

static int io_api_versions_resp(kio *io, kresp_api_versions *r, int v) {
    TRY(kio_i16(io, &r->error_code));
    if (v >= 3)
        COMPACT_ARRAY(io, r->napis, r->apis, 7, 0);
    else
        ARRAY(io, r->napis, r->apis, 6, 0);
    for (int32_t i = 0; i < r->napis; i++) {
        kapi_range *a = &r->apis[i];
        TRY(kio_i16(io, &a->api_key));
        TRY(kio_i16(io, &a->min_version));
        TRY(kio_i16(io, &a->max_version));
        if (v >= 3) TRY(kio_tagged_fields(io));
    }
    if (v >= 1) TRY(kio_i32(io, &r->throttle_time_ms));
    if (v >= 3) TRY(kio_tagged_fields(io));
    return 0;
}

/* ---- Metadata ---------------------------------------------------------------------- */

static int io_metadata_req(kio *io, kreq_metadata *r, int v) {
    ARRAY(io, r->ntopics, r->topics, 2, v >= 1);
    for (int32_t i = 0; i < r->ntopics; i++) TRY(kio_string(io, &r->topics[i], 0));
    if (v >= 4)
        TRY(kio_bool(io, &r->allow_auto_topic_creation));
    else if (!io->writing)
        r->allow_auto_topic_creation = 1;
    return 0;
}

static int io_metadata_resp(kio *io, kresp_metadata *r, int v) {
    if (v >= 3) TRY(kio_i32(io, &r->throttle_time_ms));
    ARRAY(io, r->nbrokers, r->brokers, v >= 1 ? 12 : 10, 0);
    for (int32_t i = 0; i < r->nbrokers; i++) {
        kmeta_broker *b = &r->brokers[i];
        TRY(kio_i32(io, &b->node_id));
        TRY(kio_string(io, &b->host, 0));
        TRY(kio_i32(io, &b->port));
        if (v >= 1) TRY(kio_string(io, &b->rack, 1));
    }
    if (v >= 2) TRY(kio_string(io, &r->cluster_id, 1));
    if (v >= 1) TRY(kio_i32(io, &r->controller_id));
    ARRAY(io, r->ntopics, r->topics, v >= 1 ? 9 : 8, 0);
    for (int32_t i = 0; i < r->ntopics; i++) {
        kmeta_topic *t = &r->topics[i];
        TRY(kio_i16(io, &t->error_code));
        TRY(kio_string(io, &t->name, 0));
        if (v >= 1) TRY(kio_bool(io, &t->is_internal));
        ARRAY(io, t->npartitions, t->partitions, 18, 0);
        for (int32_t j = 0; j < t->npartitions; j++) {
            kmeta_partition *p = &t->partitions[j];
            TRY(kio_i16(io, &p->error_code));
            TRY(kio_i32(io, &p->partition_index));
            TRY(kio_i32(io, &p->leader_id));
            TRY(io_i32_array(io, &p->nreplicas, &p->replicas));
            TRY(io_i32_array(io, &p->nisr, &p->isr));
        }
    }
    return 0;
}

/* ---- Produce ----------------------------------------------------------------------- */

static int io_produce_req(kio *io, kreq_produce *r, int v) {
    if (v >= 3)
        TRY(kio_string(io, &r->transactional_id, 1));
    else if (!io->writing)
        r->transactional_id = KSTR_NULL;
    TRY(kio_i16(io, &r->acks));
    TRY(kio_i32(io, &r->timeout_ms));
    ARRAY(io, r->ntopics, r->topics, 6, 0);
    for (int32_t i = 0; i < r->ntopics; i++) {
        kproduce_topic *t = &r->topics[i];
        TRY(kio_string(io, &t->name, 0));
        ARRAY(io, t->nparts, t->parts, 8, 0);
        for (int32_t j = 0; j < t->nparts; j++) {
            TRY(kio_i32(io, &t->parts[j].index));
            TRY(kio_bytes(io, &t->parts[j].records, 1));
        }
    }
    return 0;
}

static int io_produce_resp(kio *io, kresp_produce *r, int v) {
    ARRAY(io, r->ntopics, r->topics, 6, 0);
    for (int32_t i = 0; i < r->ntopics; i++) {
        kproduce_topic_resp *t = &r->topics[i];
        TRY(kio_string(io, &t->name, 0));
        ARRAY(io, t->nparts, t->parts, 14, 0);
        for (int32_t j = 0; j < t->nparts; j++) {
            kproduce_part_resp *p = &t->parts[j];
            TRY(kio_i32(io, &p->index));
            TRY(kio_i16(io, &p->error_code));
            TRY(kio_i64(io, &p->base_offset));
            if (v >= 2) TRY(kio_i64(io, &p->log_append_time_ms));
            if (v >= 5) TRY(kio_i64(io, &p->log_start_offset));
        }
    }
    if (v >= 1) TRY(kio_i32(io, &r->throttle_time_ms));
    return 0;
}

/* ---- Fetch ------------------------------------------------------------------------- */

static int io_fetch_req(kio *io, kreq_fetch *r, int v) {
    if (!io->writing) { /* the schema's defaults for fields older versions lack */
        r->max_bytes = INT32_MAX;
        r->session_epoch = -1;
        r->rack_id = kstr_c("");
    }
    TRY(kio_i32(io, &r->replica_id));
    TRY(kio_i32(io, &r->max_wait_ms));
    TRY(kio_i32(io, &r->min_bytes));
    if (v >= 3) TRY(kio_i32(io, &r->max_bytes));
    if (v >= 4) TRY(kio_i8(io, &r->isolation_level));
    if (v >= 7) {
        TRY(kio_i32(io, &r->session_id));
        TRY(kio_i32(io, &r->session_epoch));
    }
    ARRAY(io, r->ntopics, r->topics, 6, 0);
    for (int32_t i = 0; i < r->ntopics; i++) {
        kfetch_topic *t = &r->topics[i];
        TRY(kio_string(io, &t->topic, 0));
        ARRAY(io, t->nparts, t->parts, 16, 0);
        for (int32_t j = 0; j < t->nparts; j++) {
            kfetch_part *p = &t->parts[j];
            if (!io->writing) {
                p->current_leader_epoch = -1;
                p->log_start_offset = -1;
            }
            TRY(kio_i32(io, &p->partition));
            if (v >= 9) TRY(kio_i32(io, &p->current_leader_epoch));
            TRY(kio_i64(io, &p->fetch_offset));
            if (v >= 5) TRY(kio_i64(io, &p->log_start_offset));
            TRY(kio_i32(io, &p->partition_max_bytes));
        }
    }
    if (v >= 7) {
        ARRAY(io, r->nforgotten, r->forgotten, 6, 0);
        for (int32_t i = 0; i < r->nforgotten; i++) {
            TRY(kio_string(io, &r->forgotten[i].topic, 0));
            TRY(io_i32_array(io, &r->forgotten[i].nparts, &r->forgotten[i].parts));
        }
    }
    if (v >= 11) TRY(kio_string(io, &r->rack_id, 0));
    return 0;
}

/* The out-of-line records chunks of a Fetch response being encoded (see
 * kafka_encode_fetch_response): where each goes, and their bytes. NULL everywhere
 * else, where every chunk must be in line. */
typedef struct fetch_gaps {
    size_t *pos;
    size_t n, cap;
    int64_t bytes;
} fetch_gaps;

static int io_fetch_records(kio *io, kfetch_part_resp *p, fetch_gaps *g) {
    if (!io->writing) {
        kbytes b;
        TRY(kio_bytes(io, &b, 1));
        p->records_null = b.len < 0;
        p->nchunks = 0;
        p->chunks = NULL;
        if (b.len >= 0) {
            p->chunks = karena_alloc(io->arena, sizeof *p->chunks);
            if (!p->chunks) return kio_fail(io, "out of memory");
            p->chunks[0] = b;
            p->nchunks = 1;
        }
        return 0;
    }
    if (p->records_null) {
        int32_t null = -1;
        return kio_i32(io, &null);
    }
    int64_t total = 0;
    for (int32_t i = 0; i < p->nchunks; i++) total += p->chunks[i].len > 0 ? p->chunks[i].len : 0;
    if (total > INT32_MAX)
        return kio_fail(io, "records of %lld bytes are too large", (long long)total);
    int32_t n = (int32_t)total;
    TRY(kio_i32(io, &n));
    for (int32_t i = 0; i < p->nchunks; i++) {
        if (p->chunks[i].len <= 0) continue;
        if (p->chunks[i].p) {
            TRY(kio_raw(io, p->chunks[i].p, (size_t)p->chunks[i].len));
        } else {
            if (!g || g->n == g->cap)
                return kio_fail(io, "an out-of-line records chunk was not announced");
            g->pos[g->n++] = io->out->len;
            g->bytes += p->chunks[i].len;
        }
    }
    return 0;
}

static int io_fetch_resp(kio *io, kresp_fetch *r, int v, fetch_gaps *g) {
    if (v >= 1) TRY(kio_i32(io, &r->throttle_time_ms));
    if (v >= 7) {
        TRY(kio_i16(io, &r->error_code));
        TRY(kio_i32(io, &r->session_id));
    }
    ARRAY(io, r->ntopics, r->topics, 6, 0);
    for (int32_t i = 0; i < r->ntopics; i++) {
        kfetch_topic_resp *t = &r->topics[i];
        TRY(kio_string(io, &t->topic, 0));
        ARRAY(io, t->nparts, t->parts, 18, 0);
        for (int32_t j = 0; j < t->nparts; j++) {
            kfetch_part_resp *p = &t->parts[j];
            TRY(kio_i32(io, &p->partition_index));
            TRY(kio_i16(io, &p->error_code));
            TRY(kio_i64(io, &p->high_watermark));
            if (v >= 4) TRY(kio_i64(io, &p->last_stable_offset));
            if (v >= 5) TRY(kio_i64(io, &p->log_start_offset));
            if (v >= 4) {
                ARRAY(io, p->naborted, p->aborted, 16, 1);
                for (int32_t k = 0; k < p->naborted; k++) {
                    TRY(kio_i64(io, &p->aborted[k].producer_id));
                    TRY(kio_i64(io, &p->aborted[k].first_offset));
                }
            }
            if (v >= 11) TRY(kio_i32(io, &p->preferred_read_replica));
            TRY(io_fetch_records(io, p, g));
        }
    }
    return 0;
}

/* ---- ListOffsets ------------------------------------------------------------------- */

static int io_list_offsets_req(kio *io, kreq_list_offsets *r, int v) {
    TRY(kio_i32(io, &r->replica_id));
    if (v >= 2) TRY(kio_i8(io, &r->isolation_level));
    ARRAY(io, r->ntopics, r->topics, 6, 0);
    for (int32_t i = 0; i < r->ntopics; i++) {
        klo_topic *t = &r->topics[i];
        TRY(kio_string(io, &t->name, 0));
        ARRAY(io, t->nparts, t->parts, v == 0 ? 16 : 12, 0);
        for (int32_t j = 0; j < t->nparts; j++) {
            klo_part *p = &t->parts[j];
            TRY(kio_i32(io, &p->partition_index));
            TRY(kio_i64(io, &p->timestamp));
            if (v == 0)
                TRY(kio_i32(io, &p->max_num_offsets));
            else if (!io->writing)
                p->max_num_offsets = 1;
        }
    }
    return 0;
}

static int io_list_offsets_resp(kio *io, kresp_list_offsets *r, int v) {
    if (v >= 2) TRY(kio_i32(io, &r->throttle_time_ms));
    ARRAY(io, r->ntopics, r->topics, 6, 0);
    for (int32_t i = 0; i < r->ntopics; i++) {
        klo_topic_resp *t = &r->topics[i];
        TRY(kio_string(io, &t->name, 0));
        ARRAY(io, t->nparts, t->parts, v == 0 ? 10 : 22, 0);
        for (int32_t j = 0; j < t->nparts; j++) {
            klo_part_resp *p = &t->parts[j];
            TRY(kio_i32(io, &p->partition_index));
            TRY(kio_i16(io, &p->error_code));
            if (v == 0) {
                TRY(io_i64_array(io, &p->nold, &p->old_style_offsets));
            } else {
                TRY(kio_i64(io, &p->timestamp));
                TRY(kio_i64(io, &p->offset));
            }
        }
    }
    return 0;
}

/* ---- CreateTopics ------------------------------------------------------------------ */

static int io_create_topics_req(kio *io, kreq_create_topics *r, int v) {
    ARRAY(io, r->ntopics, r->topics, 16, 0);
    for (int32_t i = 0; i < r->ntopics; i++) {
        kct_topic *t = &r->topics[i];
        TRY(kio_string(io, &t->name, 0));
        TRY(kio_i32(io, &t->num_partitions));
        TRY(kio_i16(io, &t->replication_factor));
        ARRAY(io, t->nassignments, t->assignments, 8, 0);
        for (int32_t j = 0; j < t->nassignments; j++) {
            TRY(kio_i32(io, &t->assignments[j].partition_index));
            TRY(io_i32_array(io, &t->assignments[j].nbrokers, &t->assignments[j].broker_ids));
        }
        ARRAY(io, t->nconfigs, t->configs, 4, 0);
        for (int32_t j = 0; j < t->nconfigs; j++) {
            TRY(kio_string(io, &t->configs[j].name, 0));
            TRY(kio_string(io, &t->configs[j].value, 1));
        }
    }
    TRY(kio_i32(io, &r->timeout_ms));
    if (v >= 1) TRY(kio_bool(io, &r->validate_only));
    return 0;
}

static int io_create_topics_resp(kio *io, kresp_create_topics *r, int v) {
    if (v >= 2) TRY(kio_i32(io, &r->throttle_time_ms));
    ARRAY(io, r->ntopics, r->topics, v >= 1 ? 6 : 4, 0);
    for (int32_t i = 0; i < r->ntopics; i++) {
        kct_result *t = &r->topics[i];
        TRY(kio_string(io, &t->name, 0));
        TRY(kio_i16(io, &t->error_code));
        if (v >= 1) TRY(kio_string(io, &t->error_message, 1));
    }
    return 0;
}

/* ---- DeleteTopics ------------------------------------------------------------------ */

static int io_delete_topics_req(kio *io, kreq_delete_topics *r, int v) {
    (void)v;
    ARRAY(io, r->nnames, r->names, 2, 0);
    for (int32_t i = 0; i < r->nnames; i++) TRY(kio_string(io, &r->names[i], 0));
    TRY(kio_i32(io, &r->timeout_ms));
    return 0;
}

static int io_delete_topics_resp(kio *io, kresp_delete_topics *r, int v) {
    if (v >= 1) TRY(kio_i32(io, &r->throttle_time_ms));
    ARRAY(io, r->nresults, r->results, 4, 0);
    for (int32_t i = 0; i < r->nresults; i++) {
        TRY(kio_string(io, &r->results[i].name, 0));
        TRY(kio_i16(io, &r->results[i].error_code));
    }
    return 0;
}

/* ---- dispatch ---------------------------------------------------------------------- */

static int io_request_body(kio *io, kreq *r) {
    int v = r->h.api_version;
    switch (r->h.api_key) {
    case KAPI_API_VERSIONS: return io_api_versions_req(io, &r->u.api_versions, v);
    case KAPI_METADATA: return io_metadata_req(io, &r->u.metadata, v);
    case KAPI_PRODUCE: return io_produce_req(io, &r->u.produce, v);
    case KAPI_FETCH: return io_fetch_req(io, &r->u.fetch, v);
    case KAPI_LIST_OFFSETS: return io_list_offsets_req(io, &r->u.list_offsets, v);
    case KAPI_CREATE_TOPICS: return io_create_topics_req(io, &r->u.create_topics, v);
    case KAPI_DELETE_TOPICS: return io_delete_topics_req(io, &r->u.delete_topics, v);
    default: return kio_fail(io, "API key %d is not implemented", r->h.api_key);
    }
}

static int io_response_body(kio *io, int16_t key, int v, kresp_body *b) {
    switch (key) {
    case KAPI_API_VERSIONS: return io_api_versions_resp(io, &b->api_versions, v);
    case KAPI_METADATA: return io_metadata_resp(io, &b->metadata, v);
    case KAPI_PRODUCE: return io_produce_resp(io, &b->produce, v);
    case KAPI_FETCH: return io_fetch_resp(io, &b->fetch, v, NULL);
    case KAPI_LIST_OFFSETS: return io_list_offsets_resp(io, &b->list_offsets, v);
    case KAPI_CREATE_TOPICS: return io_create_topics_resp(io, &b->create_topics, v);
    case KAPI_DELETE_TOPICS: return io_delete_topics_resp(io, &b->delete_topics, v);
    default: return kio_fail(io, "API key %d is not implemented", key);
    }
}

static void set_err(char *err, size_t errlen, int16_t key, int16_t version, const char *kind,
                    const char *what) {
    if (!err || !errlen) return;
    const char *name = kafka_api_name(key);
    if (name)
        snprintf(err, errlen, "%s v%d %s: %s", name, version, kind, what);
    else
        snprintf(err, errlen, "API key %d v%d %s: %s", key, version, kind, what);
}

kdec_result kafka_decode_request(const void *buf, size_t len, karena *arena, kreq *out,
                                 char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->h.client_id = KSTR_NULL;
    if (err && errlen) err[0] = '\0';
    const uint8_t *b = buf;
    if (len < 8) {
        snprintf(err, errlen, "request of %zu bytes is shorter than a request header", len);
        return KDEC_MALFORMED;
    }
    out->h.api_key = (int16_t)((b[0] << 8) | b[1]);
    out->h.api_version = (int16_t)((b[2] << 8) | b[3]);
    out->h.correlation_id = (int32_t)(((uint32_t)b[4] << 24) | ((uint32_t)b[5] << 16) |
                                      ((uint32_t)b[6] << 8) | b[7]);
    if (!kafka_version_supported(out->h.api_key, out->h.api_version)) {
        set_err(err, errlen, out->h.api_key, out->h.api_version, "request",
                "this API or version is not implemented");
        return KDEC_UNSUPPORTED;
    }
    kio io;
    kio_reader(&io, buf, len, arena);
    kreq_header h;
    io_request_header(&io, &h, request_header_version(out->h.api_key, out->h.api_version));
    if (!io.failed) out->h.client_id = h.client_id;
    if (!io.failed) io_request_body(&io, out);
    kio_expect_end(&io, "request body");
    if (io.failed) {
        set_err(err, errlen, out->h.api_key, out->h.api_version, "request", io.err);
        return KDEC_MALFORMED;
    }
    return KDEC_OK;
}

int kafka_encode_request(kbuf *out, const kreq *req, char *err, size_t errlen) {
    const kreq_header *h = &req->h;
    if (!kafka_version_supported(h->api_key, h->api_version)) {
        set_err(err, errlen, h->api_key, h->api_version, "request", "not implemented");
        return -1;
    }
    size_t start = out->len;
    kio io;
    kio_writer(&io, out);
    size_t at = kio_size_placeholder(&io);
    kreq copy = *req; /* the kio functions take non-const pointers; writing reads only */
    io_request_header(&io, &copy.h, request_header_version(h->api_key, h->api_version));
    io_request_body(&io, &copy);
    kio_patch_size(&io, at, 0);
    if (io.failed) {
        out->len = start;
        set_err(err, errlen, h->api_key, h->api_version, "request", io.err);
        return -1;
    }
    return 0;
}

/* Encodes a response frame (size, correlation id, body). g: a Fetch whose records
 * chunks with a NULL pointer are left out of out (their places go to g), else NULL. */
static int encode_response(kbuf *out, int16_t api_key, int16_t version, int32_t correlation_id,
                           kresp_body *body, fetch_gaps *g, char *err, size_t errlen) {
    size_t start = out->len;
    kio io;
    kio_writer(&io, out);
    size_t at = kio_size_placeholder(&io);
    kio_i32(&io, &correlation_id);
    if (g) {
        io_fetch_resp(&io, &body->fetch, version, g);
        if (!io.failed && g->n != g->cap)
            kio_fail(&io, "%zu out-of-line records chunks, %zu announced", g->n, g->cap);
    } else {
        io_response_body(&io, api_key, version, body);
    }
    kio_patch_size(&io, at, g ? (uint64_t)g->bytes : 0); /* the gaps count in the size */
    if (io.failed) {
        out->len = start;
        set_err(err, errlen, api_key, version, "response", io.err);
        return -1;
    }
    return 0;
}

int kafka_encode_response(kbuf *out, int16_t api_key, int16_t version, int32_t correlation_id,
                          const kresp_body *body, char *err, size_t errlen) {
    kresp_body copy = *body;
    return encode_response(out, api_key, version, correlation_id, &copy, NULL, err, errlen);
}

int kafka_encode_fetch_response(kbuf *out, int16_t version, int32_t correlation_id,
                                const kresp_fetch *body, size_t *gap_pos, size_t ngaps,
                                char *err, size_t errlen) {
    kresp_body copy;
    memset(&copy, 0, sizeof copy);
    copy.fetch = *body;
    fetch_gaps g = {gap_pos, 0, ngaps, 0};
    return encode_response(out, KAPI_FETCH, version, correlation_id, &copy, &g, err, errlen);
}

int kafka_decode_response(const void *buf, size_t len, int16_t api_key, int16_t version,
                          karena *arena, int32_t *correlation_id, kresp_body *body, char *err,
                          size_t errlen) {
    memset(body, 0, sizeof *body);
    kio io;
    kio_reader(&io, buf, len, arena);
    kio_i32(&io, correlation_id);
    io_response_body(&io, api_key, version, body);
    kio_expect_end(&io, "response body");
    if (io.failed) {
        set_err(err, errlen, api_key, version, "response", io.err);
        return -1;
    }
    return 0;
}

int kafka_encode_api_versions_unsupported(kbuf *out, int32_t correlation_id) {
    size_t n;
    const kapi_range *apis = kafka_supported_apis(&n);
    kapi_range self = {KAPI_API_VERSIONS, 0, 0};
    for (size_t i = 0; i < n; i++)
        if (apis[i].api_key == KAPI_API_VERSIONS) self = apis[i];
    kresp_body b;
    memset(&b, 0, sizeof b);
    b.api_versions.error_code = KERR_UNSUPPORTED_VERSION;
    b.api_versions.napis = 1;
    b.api_versions.apis = &self;
    return kafka_encode_response(out, KAPI_API_VERSIONS, 0, correlation_id, &b, NULL, 0);
}
