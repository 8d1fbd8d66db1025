/*
 * api.c -- what alogd answers to each Kafka request: the broker's side of ApiVersions,
 * Metadata, Produce, Fetch, ListOffsets, CreateTopics and DeleteTopics, on top of the
 * topics (topics.c) and their alog logs.
 *
 * alogd is a one-broker cluster: node 0 leads every partition and is its only replica
 * and in-sync replica, and is the controller. Offsets are alog's offsets; the high
 * watermark and the last stable offset are both alog_next_offset() (nothing is
 * replicated and there are no transactions), the log start offset alog_first_offset().
 *
 * Produce: each partition's records must be exactly one RecordBatch v2, as Kafka
 * requires of Produce v3+ (ProduceRequest.validateRecords: "Produce requests with
 * version N are only allowed to contain exactly one record batch", INVALID_RECORD, 87);
 * none, several, or one of another magic get INVALID_RECORD and nothing is appended.
 * alogd does the same rather than append several batches, because one batch is one
 * atomic alog_append_raw(): several would need an atomic multi-batch append the engine
 * does not have (appended one by one, a refused second batch would leave the first
 * stored under an error), and no Kafka client sends more than one. The batch goes to
 * alog_append_raw(), which checks it (sizes, magic, CRC-32C, record framing and count)
 * and stores it unchanged but for baseOffset and leader epoch; in a topic with
 * message.timestamp.type=LogAppendTime alogd first checks the client's CRC, then sets
 * the timestamp-type bit and maxTimestamp to the broker's clock and recomputes the CRC,
 * as Kafka's broker does (readers then take every record's timestamp from it).
 * Durability follows each topic's flush.messages (topics.c): a topic with
 * flush.messages=1 (or, without its own, the server's --fsync always) has logs opened
 * with ALOG_FSYNC_NEVER, so an append never waits for a disk flush on the event loop;
 * instead alog_on_durable() asks the log's own thread for the fsync, and its callback
 * posts back to the worker (eventfd), which answers once every such partition of the
 * request is durable (acks 1 and -1 mean the same thing here: there is one replica).
 * Other topics (flush.ms, by default 1000 ms: ALOG_FSYNC_INTERVAL) are answered right
 * after the append.
 *
 * Fetch: alog_read_raw() gives whole batches from the one holding the fetch offset,
 * below the segment's published end, checked (CRC-32C), as a file range (fd, position,
 * length) that holds a reference on its segment. A range of FETCH_SENDFILE_MIN (32 KiB)
 * or more stays out of the response buffer: the buffer gets the response's header and
 * fields, and net.c sends the range with sendfile(2) at its place, resuming after
 * partial sends, and keeps the reference until the range is out, so the bytes stay
 * readable even if retention deletes the segment meanwhile (the file is unlinked, the
 * open fd still reads it) or the topic is deleted. A smaller range is copied into the
 * buffer. Why 32 KiB: a range costs a send() of the bytes before it (MSG_MORE) and a
 * sendfile(), a copy costs a memcpy into the buffer and the kernel's copy in the one
 * send(). Measured on a 2-vCPU VM over loopback, sending responses of N file bytes
 * each (sender CPU per GB, median of 5 or 7): N = 4 KiB: copy 1.6 s, sendfile 2.0 s;
 * 16 KiB: even within the noise; 32 KiB: copy 0.43 s, sendfile 0.27 s; 64 KiB: copy
 * 0.30-0.54 s, sendfile 0.19-0.36 s; 1 MiB: even within the noise (the VM is shared:
 * rounds differed by 30%). What sendfile saves above
 * all is memory: a queued response holds no copy of its records (20 slow consumers
 * with 16 MiB responses queued: alogd's anonymous memory +0.1 MiB, where copies took
 * +316 MiB), nor does the socket's send queue (it references the page cache). Its CPU
 * gain in alogd is small as long as every batch is CRC-checked on the way out: the
 * check brings the bytes into the CPU cache just before, which makes the copies cheap
 * (1.65 GB fetched in 1 MiB responses: ~0.33 s of alogd CPU per GB either way; with
 * the check off, copy 0.26 s and sendfile 0.20 s). Kafka's broker sends the same way
 * (FileChannel.transferTo). If fewer than min_bytes are there, the request parks
 * (net.c) until a Produce appends to a partition it names or max_wait_ms passes, and
 * is rebuilt.
 *
 * Lower versions that alogd advertises (minimum 0 everywhere, see kafka_msgs.c) but
 * does not serve: Produce v0-2 and Fetch v0-3 carry the old message formats, which the
 * engine does not store; they get UNSUPPORTED_VERSION in each partition, in the body
 * of the version asked.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../batch.h"  /* the RecordBatch v2 layout (offsets, attribute bits) */
#include "../bytes.h"  /* big-endian loads and stores */
#include "../crc32c.h" /* the engine's CRC-32C (in libalog), for LogAppendTime */
#include "alog.h"
#include "server.h"

#define CLUSTER_ID "alogd"
#define NODE_ID 0

static int32_t g_node_list[1] = {NODE_ID};

#define ANEW(r, T, n) ((T *)karena_alloc(&(r)->arena, sizeof(T) * (size_t)((n) > 0 ? (n) : 1)))

static void oom(request *r) { request_close_conn(r, "out of memory building a response"); }

/* A topic lookup by a request's name. */
static int16_t get_topic(request *r, kstr name, int create, topic **out) {
    if (name.len < 0) return KERR_INVALID_TOPIC_EXCEPTION;
    return topics_get(r->srv->topics, name.p, (size_t)name.len, create, out);
}

/* ---- names repeated in a request ------------------------------------------------------ */

typedef struct name_ix {
    kstr name;
    int32_t ix;
} name_ix;

static int cmp_kstr(kstr x, kstr y) {
    int32_t ml = x.len < y.len ? x.len : y.len; /* len -1: null, before every string */
    int c = ml > 0 ? memcmp(x.p, y.p, (size_t)ml) : 0;
    if (c) return c;
    return x.len < y.len ? -1 : x.len > y.len;
}

/* By name, then by index (so the first occurrence of a name sorts first). */
static int cmp_name_ix(const void *a, const void *b) {
    const name_ix *x = a, *y = b;
    int c = cmp_kstr(x->name, y->name);
    if (c) return c;
    return x->ix < y->ix ? -1 : x->ix > y->ix;
}

/* For each of the n names (name(k) gives the k-th), first[k] = the index of its first
 * occurrence and, if multi is not NULL, multi[k] = 1 if it occurs more than once.
 * Sorting, not comparing every pair: a request of 100 MiB names millions of topics
 * (pairwise, 80,000 names took 19 s of a worker, which serves nothing meanwhile).
 * Returns -1 when out of memory. */
static int find_repeats(request *r, int32_t n, kstr (*name)(const void *, int32_t),
                        const void *arg, int32_t *first, uint8_t *multi) {
    name_ix *v = ANEW(r, name_ix, n);
    if (!v) return -1;
    for (int32_t k = 0; k < n; k++) v[k] = (name_ix){name(arg, k), k};
    if (n > 1) qsort(v, (size_t)n, sizeof *v, cmp_name_ix);
    for (int32_t k = 0; k < n;) {
        int32_t e = k + 1;
        while (e < n && cmp_kstr(v[k].name, v[e].name) == 0) e++;
        for (int32_t j = k; j < e; j++) {
            first[v[j].ix] = v[k].ix; /* ties sort by index: v[k] is the first */
            if (multi) multi[v[j].ix] = e - k > 1;
        }
        k = e;
    }
    return 0;
}

/* ---- ApiVersions -------------------------------------------------------------------- */

static void api_versions(request *r) {
    size_t n;
    const kapi_range *apis = kafka_supported_apis(&n);
    kresp_body b;
    memset(&b, 0, sizeof b);
    b.api_versions.apis = ANEW(r, kapi_range, n);
    if (!b.api_versions.apis) return oom(r);
    memcpy(b.api_versions.apis, apis, n * sizeof *apis);
    b.api_versions.napis = (int32_t)n;
    request_respond(r, &b);
}

/* ---- Metadata ----------------------------------------------------------------------- */

static void fill_meta_topic(request *r, kmeta_topic *mt, topic *tp) {
    int32_t n = topic_partitions(tp);
    mt->error_code = KERR_NONE;
    mt->name = kstr_c(topic_name(tp));
    mt->partitions = ANEW(r, kmeta_partition, n);
    if (!mt->partitions) return;
    mt->npartitions = n;
    for (int32_t p = 0; p < n; p++) {
        kmeta_partition *mp = &mt->partitions[p];
        mp->partition_index = p;
        mp->leader_id = NODE_ID;
        mp->nreplicas = mp->nisr = 1;
        mp->replicas = mp->isr = g_node_list;
    }
}

static kstr meta_name(const void *q, int32_t k) { return ((const kreq_metadata *)q)->topics[k]; }

static void metadata(request *r) {
    const kreq_metadata *q = &r->req.u.metadata;
    int v = r->req.h.api_version;
    kresp_body b;
    memset(&b, 0, sizeof b);
    kresp_metadata *m = &b.metadata;
    kmeta_broker broker = {NODE_ID, kstr_c(r->srv->host), r->srv->port, KSTR_NULL};
    m->nbrokers = 1;
    m->brokers = &broker;
    m->cluster_id = kstr_c(CLUSTER_ID);
    m->controller_id = NODE_ID;

    topic **refs = NULL;
    size_t nrefs = 0;
    int all = q->ntopics < 0 || (v == 0 && q->ntopics == 0);
    if (all) {
        if (topics_list(r->srv->topics, &refs, &nrefs)) return oom(r);
        m->topics = ANEW(r, kmeta_topic, nrefs);
        if (!m->topics) goto oom;
        m->ntopics = (int32_t)nrefs;
        for (size_t i = 0; i < nrefs; i++) {
            fill_meta_topic(r, &m->topics[i], refs[i]);
            if (!m->topics[i].partitions) goto oom;
        }
    } else {
        /* A topic named more than once is answered once, as Kafka does (it takes the
         * names as a set): otherwise a 1,000-partition topic named 20,000 times in a
         * 120 KB request made a 520 MB response. */
        int32_t *first = ANEW(r, int32_t, q->ntopics);
        refs = calloc(q->ntopics ? (size_t)q->ntopics : 1, sizeof *refs);
        m->topics = ANEW(r, kmeta_topic, q->ntopics);
        if (!first || !refs || !m->topics ||
            find_repeats(r, q->ntopics, meta_name, q, first, NULL))
            goto oom;
        int create = topics_cfg(r->srv->topics)->auto_create && q->allow_auto_topic_creation;
        for (int32_t i = 0; i < q->ntopics; i++) {
            if (first[i] != i) continue;
            kmeta_topic *mt = &m->topics[m->ntopics++];
            topic *tp = NULL;
            int16_t e = get_topic(r, q->topics[i], create, &tp);
            if (e) {
                mt->error_code = e;
                mt->name = q->topics[i];
                continue;
            }
            refs[nrefs++] = tp;
            fill_meta_topic(r, mt, tp);
            if (!mt->partitions) goto oom;
        }
    }
    request_respond(r, &b);
    topics_list_free(refs, nrefs);
    return;
oom:
    topics_list_free(refs, nrefs);
    oom(r);
}

/* ---- Produce ------------------------------------------------------------------------ */

/* One partition's wait for its records to be durable (--fsync always). */
typedef struct durable_wait {
    wtask task; /* first: the task pointer is the struct's */
    request *r;
    kproduce_part_resp *pr;
    alog_err err;
} durable_wait;

/* A Produce's response, kept in r->api_state while fsyncs are outstanding. */
typedef struct produce_state {
    kresp_body body;
    durable_wait *waits; /* one per partition of the request */
    uint64_t *appended;  /* the keys of the partitions appended to (server_data_arrived) */
    size_t nappended;
} produce_state;

static void durable_done(wtask *t) {
    durable_wait *dw = (durable_wait *)t;
    request *r = dw->r;
    if (dw->err != ALOG_OK) {
        dw->pr->error_code = KERR_KAFKA_STORAGE_ERROR;
        fprintf(stderr, "alogd: produce from %s: records could not be made durable (%s)\n",
                request_peer(r), alog_strerror(dw->err));
    }
    if (--r->pending == 0) request_respond(r, &((produce_state *)r->api_state)->body);
}

/* Runs on the log's fsync thread (or in alog_on_durable itself): hand over only. */
static void on_durable(void *ctx, int64_t offset, alog_err err) {
    (void)offset;
    durable_wait *dw = ctx;
    dw->err = err;
    worker_post(dw->r->w, &dw->task);
}

static void on_durable_ignore(void *ctx, int64_t offset, alog_err err) {
    (void)ctx;
    (void)offset;
    (void)err;
}

static int16_t append_error(alog_err e) {
    switch (e) {
    case ALOG_ECORRUPT: return KERR_CORRUPT_MESSAGE;
    case ALOG_ETOOBIG: return KERR_MESSAGE_TOO_LARGE;
    case ALOG_EIO:
    case ALOG_ENOSPC:
    case ALOG_EFAILED: return KERR_KAFKA_STORAGE_ERROR;
    default: return KERR_UNKNOWN_SERVER_ERROR;
    }
}

/* Checks that records is a run of whole batches (framing only; alog_append_raw checks
 * the rest). Returns the number of batches (0 for empty records), or -1 with why set. */
static int count_batches(kbytes records, const char **why) {
    if (records.len < 0) {
        *why = "null records";
        return -1;
    }
    size_t pos = 0, len = (size_t)records.len;
    int n = 0;
    while (pos < len) {
        if (len - pos < BATCH_HEADER_SIZE) {
            *why = "records end in a partial batch header";
            return -1;
        }
        uint32_t blen = be32_load(records.p + pos + BATCH_OFF_LENGTH);
        if (blen < BATCH_MIN_LENGTH || blen > len - pos - BATCH_LOG_OVERHEAD) {
            *why = "a batch length does not match the records' size";
            return -1;
        }
        pos += BATCH_LOG_OVERHEAD + (size_t)blen;
        n++;
    }
    return n;
}

/* message.timestamp.type=LogAppendTime: a copy of batch (in the request's arena) with
 * the LogAppendTime attribute bit, maxTimestamp = now and a new CRC, after checking
 * the client's CRC (so that a damaged batch is not given a valid one). NULL with
 * *err set on failure. */
static const uint8_t *stamp_log_append_time(request *r, const uint8_t *batch, size_t size,
                                            int64_t now, int16_t *err) {
    if (crc32c(batch + BATCH_CRC_START, size - BATCH_CRC_START) !=
        be32_load(batch + BATCH_OFF_CRC)) {
        *err = KERR_CORRUPT_MESSAGE;
        return NULL;
    }
    uint8_t *b = karena_alloc(&r->arena, size);
    if (!b) {
        *err = KERR_KAFKA_STORAGE_ERROR;
        return NULL;
    }
    memcpy(b, batch, size);
    be16_store(b + BATCH_OFF_ATTRIBUTES,
               be16_load(b + BATCH_OFF_ATTRIBUTES) | BATCH_ATTR_LOG_APPEND_TIME);
    be64_store(b + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)now);
    be32_store(b + BATCH_OFF_CRC, crc32c(b + BATCH_CRC_START, size - BATCH_CRC_START));
    return b;
}

/* Appends one partition's batch; registers the durability wait dw if needed. */
static void produce_partition(request *r, const kproduce_part *pp, kproduce_part_resp *pr,
                              topic *tp, durable_wait *dw, produce_state *st) {
    const kreq_produce *q = &r->req.u.produce;
    if (pp->index < 0 || pp->index >= topic_partitions(tp)) {
        pr->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return;
    }
    alog *log = topic_log(tp, pp->index);
    const char *why = NULL;
    int n = count_batches(pp->records, &why);
    if (n < 0) {
        pr->error_code = KERR_CORRUPT_MESSAGE;
    } else if (n != 1 || pp->records.p[BATCH_OFF_MAGIC] != BATCH_MAGIC) {
        /* Kafka's rule for Produce v3+ (see the top comment). */
        pr->error_code = KERR_INVALID_RECORD;
        why = n != 1 ? "Produce v3+ must carry exactly one record batch per partition"
                     : "Produce v3+ must carry a record batch with magic 2";
    } else if (r->req.h.api_version < 7 &&
               (be16_load(pp->records.p + BATCH_OFF_ATTRIBUTES) & BATCH_ATTR_CODEC_MASK) ==
                   ALOG_COMPRESSION_ZSTD) {
        /* Kafka's broker too: zstd came with Produce v7 (KIP-110), so an older request
         * cannot carry it (a client that sends it has not negotiated it). */
        pr->error_code = KERR_UNSUPPORTED_COMPRESSION_TYPE;
        why = "zstd needs Produce v7 or later";
    }
    if (pr->error_code) {
        char got[32] = "";
        if (n > 1) snprintf(got, sizeof got, " (got %d batches)", n);
        fprintf(stderr, "alogd: produce to %s-%d from %s rejected: %s%s\n", topic_name(tp),
                pp->index, request_peer(r), why, got);
        return;
    }
    const uint8_t *batch = pp->records.p;
    size_t size = (size_t)pp->records.len;
    if (topic_log_append_time(tp)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        int16_t err = KERR_NONE;
        batch = stamp_log_append_time(r, batch, size, now, &err);
        if (!batch) {
            pr->error_code = err;
            fprintf(stderr, "alogd: produce to %s-%d from %s rejected: %s\n", topic_name(tp),
                    pp->index, request_peer(r),
                    err == KERR_CORRUPT_MESSAGE ? "CRC mismatch" : "out of memory");
            return;
        }
        pr->log_append_time_ms = now;
    }
    int64_t base;
    alog_err e = alog_append_raw(log, batch, size, 0, &base);
    if (e != ALOG_OK) {
        pr->error_code = append_error(e);
        pr->log_append_time_ms = -1;
        fprintf(stderr, "alogd: produce to %s-%d from %s: %s\n", topic_name(tp), pp->index,
                request_peer(r), alog_last_error());
        return;
    }
    pr->base_offset = base;
    st->appended[st->nappended++] =
        server_partition_key(r->srv, topic_name(tp), strlen(topic_name(tp)), pp->index);
    int64_t last = base + (int32_t)be32_load(batch + BATCH_OFF_LAST_OFFSET_DELTA);
    pr->log_start_offset = alog_first_offset(log);
    if (!topic_fsync_always(tp)) return;
    if (q->acks == 0) {
        (void)alog_on_durable(log, last, on_durable_ignore, NULL); /* fsync it all the same */
        return;
    }
    dw->task.fn = durable_done;
    dw->r = r;
    dw->pr = pr;
    r->pending++;
    if (alog_on_durable(log, last, on_durable, dw) != ALOG_OK) {
        r->pending--;
        pr->error_code = KERR_KAFKA_STORAGE_ERROR;
        fprintf(stderr, "alogd: produce to %s-%d: %s\n", topic_name(tp), pp->index,
                alog_last_error());
    }
}

static void produce(request *r) {
    const kreq_produce *q = &r->req.u.produce;
    int v = r->req.h.api_version;
    /* Everything the response needs is allocated before the first append, so that no
     * allocation can fail once callbacks are outstanding. */
    produce_state *st = ANEW(r, produce_state, 1);
    if (!st) return oom(r);
    r->api_state = st;
    kresp_produce *resp = &st->body.produce;
    resp->topics = ANEW(r, kproduce_topic_resp, q->ntopics);
    if (!resp->topics) return oom(r);
    resp->ntopics = q->ntopics;
    size_t nparts = 0;
    for (int32_t i = 0; i < q->ntopics; i++) {
        const kproduce_topic *qt = &q->topics[i];
        kproduce_topic_resp *rt = &resp->topics[i];
        rt->name = qt->name;
        rt->parts = ANEW(r, kproduce_part_resp, qt->nparts);
        if (!rt->parts) return oom(r);
        rt->nparts = qt->nparts;
        for (int32_t j = 0; j < qt->nparts; j++) {
            rt->parts[j].index = qt->parts[j].index;
            rt->parts[j].base_offset = -1;
            rt->parts[j].log_append_time_ms = -1; /* CreateTime; LogAppendTime sets it */
            rt->parts[j].log_start_offset = -1;
        }
        nparts += (size_t)qt->nparts;
    }
    st->waits = ANEW(r, durable_wait, nparts);
    st->appended = ANEW(r, uint64_t, nparts);
    if (!st->waits || !st->appended) return oom(r);

    int16_t all_err = KERR_NONE;
    if (v < 3)
        all_err = KERR_UNSUPPORTED_VERSION; /* old message formats: not stored */
    else if (q->acks != 0 && q->acks != 1 && q->acks != -1)
        all_err = KERR_INVALID_REQUIRED_ACKS;
    int failed = 0;
    size_t k = 0;
    r->pending = 1; /* held while appending */
    int create = topics_cfg(r->srv->topics)->auto_create;
    for (int32_t i = 0; i < q->ntopics; i++) {
        const kproduce_topic *qt = &q->topics[i];
        kproduce_topic_resp *rt = &resp->topics[i];
        topic *tp = NULL;
        int16_t terr = all_err ? all_err : get_topic(r, qt->name, create, &tp);
        for (int32_t j = 0; j < qt->nparts; j++, k++) {
            kproduce_part_resp *pr = &rt->parts[j];
            if (terr)
                pr->error_code = terr;
            else
                produce_partition(r, &qt->parts[j], pr, tp, &st->waits[k], st);
            if (pr->error_code) failed = 1;
        }
        topic_unref(tp);
    }
    if (st->nappended) server_data_arrived(r->srv, st->appended, st->nappended);
    r->pending--;
    if (q->acks == 0) {
        /* No response. Kafka closes the connection when such a request fails: the one
         * way left to tell the client. (acks=0 registers no callback.) */
        if (failed) return request_close_conn(r, "a Produce with acks=0 failed");
        return request_no_response(r);
    }
    if (r->pending == 0) request_respond(r, &st->body);
}

/* ---- Fetch -------------------------------------------------------------------------- */

/* Records chunks of at least this many bytes go out with sendfile(2) from the
 * segment file; smaller ones are copied into the response. See the top comment. */
#ifndef FETCH_SENDFILE_MIN
#define FETCH_SENDFILE_MIN (32u << 10)
#endif

/* The raw reads a Fetch response points into: those it copies are released once it
 * is encoded, those it sends from their files go to net.c with it. */
typedef struct raw_list {
    alog_raw *v;
    size_t n, cap;
} raw_list;

static alog_raw *raw_push(raw_list *l) {
    if (l->n == l->cap) {
        size_t c = l->cap ? l->cap * 2 : 8;
        alog_raw *nv = realloc(l->v, c * sizeof *nv);
        if (!nv) return NULL;
        l->v = nv;
        l->cap = c;
    }
    return &l->v[l->n++];
}

static void raw_release_all(raw_list *l) {
    for (size_t i = 0; i < l->n; i++) alog_raw_release(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int from_file(const alog_raw *raw) { return raw->length >= FETCH_SENDFILE_MIN; }

/* Reads partition data for one partition into pr. budget: response bytes left. The
 * chunks of FETCH_SENDFILE_MIN bytes or more are out of line (p NULL: sent from the
 * file), the others point into the segment's mapping (copied). */
static int fetch_partition(karena *a, const kfetch_part *fp, kfetch_part_resp *pr,
                           topic *tp, int64_t *budget, int64_t *total, raw_list *raws) {
    pr->partition_index = fp->partition;
    pr->high_watermark = pr->last_stable_offset = pr->log_start_offset = -1;
    pr->naborted = -1;
    pr->preferred_read_replica = -1;
    if (!tp || fp->partition < 0 || fp->partition >= topic_partitions(tp)) {
        pr->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return 0;
    }
    alog *log = topic_log(tp, fp->partition);
    int64_t first = alog_first_offset(log), next = alog_next_offset(log);
    pr->high_watermark = pr->last_stable_offset = next;
    pr->log_start_offset = first;
    int64_t off = fp->fetch_offset;
    if (off < first || off > next) {
        pr->error_code = KERR_OFFSET_OUT_OF_RANGE;
        return 0;
    }
    if (off == next || fp->partition_max_bytes <= 0) return 0;
    int64_t limit = fp->partition_max_bytes;
    if (limit > *budget) limit = *budget;
    if (limit <= 0) {
        if (*total > 0) return 0; /* the response is full */
        limit = 1;                /* KIP-74: still one batch for the first partition */
    }
    int64_t got = 0;
    size_t first_chunk = raws->n;
    while (off < next && got < limit) {
        alog_raw raw;
        alog_err e = alog_read_raw(log, off, (size_t)(limit - got), &raw);
        if (e == ALOG_ERANGE) {
            if (got == 0) pr->error_code = KERR_OFFSET_OUT_OF_RANGE;
            break;
        }
        if (e != ALOG_OK) {
            fprintf(stderr, "alogd: fetch from %s-%d at offset %" PRId64 ": %s\n",
                    topic_name(tp), fp->partition, off, alog_last_error());
            if (got == 0) pr->error_code = KERR_KAFKA_STORAGE_ERROR;
            break;
        }
        /* Only what fits, but for the response's first batch (KIP-74, as Kafka's
         * minOneMessage: once a partition returned data, the others get only whole
         * batches that fit; alog_read_raw returns at least one). */
        if (raw.length == 0 || ((got > 0 || *total > 0) && (int64_t)raw.length > limit - got) ||
            raw.next_offset <= off) {
            alog_raw_release(&raw);
            break;
        }
        alog_raw *kept = raw_push(raws);
        if (!kept) {
            alog_raw_release(&raw);
            return -1;
        }
        *kept = raw;
        got += (int64_t)raw.length;
        off = raw.next_offset;
    }
    size_t nchunks = raws->n - first_chunk;
    if (nchunks) {
        pr->chunks = karena_alloc(a, nchunks * sizeof *pr->chunks);
        if (!pr->chunks) return -1;
        for (size_t i = 0; i < nchunks; i++) {
            const alog_raw *raw = &raws->v[first_chunk + i];
            pr->chunks[i] = (kbytes){from_file(raw) ? NULL : raw->data, (int32_t)raw->length};
        }
        pr->nchunks = (int32_t)nchunks;
    }
    *budget -= got;
    *total += got;
    return 0;
}

/* Builds the Fetch response; sends it if it has min_bytes, an error, or must go now
 * (force). Returns 1 if answered (r is gone), 0 if not (r untouched). */
static int fetch_try(request *r, int force) {
    const kreq_fetch *q = &r->req.u.fetch;
    int v = r->req.h.api_version;
    karena a; /* per attempt: a parked Fetch is rebuilt on every wake-up */
    karena_init(&a, 0);
    raw_list raws = {0};
    kresp_body b;
    memset(&b, 0, sizeof b);
    kresp_fetch *resp = &b.fetch;
    int64_t budget = q->max_bytes, total = 0;
    if (budget > (int64_t)r->srv->cfg.max_request_bytes)
        budget = (int64_t)r->srv->cfg.max_request_bytes;
    /* No more than the connection may still queue (net.c: memory per connection is
     * bounded even when many parked Fetches are answered at once); the first batch
     * still goes (KIP-74), so a consumer always progresses. */
    uint64_t room = request_out_room(r);
    if (budget > 0 && (uint64_t)budget > room) budget = (int64_t)room;
    int any_error = 0, bad = 0;
    resp->topics = karena_alloc(&a, sizeof *resp->topics * (size_t)(q->ntopics ? q->ntopics : 1));
    bad = !resp->topics;
    if (!bad) resp->ntopics = q->ntopics;
    for (int32_t i = 0; !bad && i < q->ntopics; i++) {
        const kfetch_topic *qt = &q->topics[i];
        kfetch_topic_resp *rt = &resp->topics[i];
        rt->topic = qt->topic;
        rt->parts = karena_alloc(&a, sizeof *rt->parts * (size_t)(qt->nparts ? qt->nparts : 1));
        if (!rt->parts) {
            bad = 1;
            break;
        }
        rt->nparts = qt->nparts;
        topic *tp = NULL;
        int16_t terr = v < 4 ? KERR_UNSUPPORTED_VERSION : get_topic(r, qt->topic, 0, &tp);
        for (int32_t j = 0; j < qt->nparts; j++) {
            kfetch_part_resp *pr = &rt->parts[j];
            if (terr) {
                pr->partition_index = qt->parts[j].partition;
                pr->error_code = terr;
                pr->high_watermark = pr->last_stable_offset = pr->log_start_offset = -1;
                pr->naborted = -1;
                pr->preferred_read_replica = -1;
            } else if (fetch_partition(&a, &qt->parts[j], pr, tp, &budget, &total, &raws)) {
                bad = 1;
                break;
            }
            if (pr->error_code) any_error = 1;
        }
        topic_unref(tp);
    }
    if (bad) {
        raw_release_all(&raws);
        karena_free(&a);
        oom(r);
        return 1;
    }
    int ready = force || any_error || total >= q->min_bytes || q->max_wait_ms <= 0 ||
                worker_draining(r->w);
    if (ready) {
        /* The reads sent from their files first, in their chunks' order (a stable
         * partition), for net.c, which takes their references; the others are copied
         * into the response, so they are released after it is encoded. */
        size_t nfiles = 0;
        for (size_t i = 0; i < raws.n; i++) {
            if (!from_file(&raws.v[i])) continue;
            alog_raw t = raws.v[nfiles];
            raws.v[nfiles++] = raws.v[i];
            raws.v[i] = t;
        }
        request_respond_fetch(r, &b.fetch, raws.v, nfiles);
    }
    raw_release_all(&raws);
    karena_free(&a);
    return ready;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The distinct partitions r names, for the index of parked Fetches (net.c): computed
 * when it first parks, kept for its later parkings. Distinct, because a Fetch may
 * name a partition 150,000 times: one node, not 150,000 for every append there to
 * walk (and their memory). The keys are sorted in a scratch array (8 bytes a
 * partition named, freed at once) to drop the repeats. Returns -1 when out of
 * memory. */
static int fetch_watch(request *r) {
    const kreq_fetch *q = &r->req.u.fetch;
    size_t n = 0, m = 0;
    for (int32_t i = 0; i < q->ntopics; i++) n += (size_t)q->topics[i].nparts;
    uint64_t *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys) return -1;
    n = 0;
    for (int32_t i = 0; i < q->ntopics; i++) {
        kstr name = q->topics[i].topic;
        size_t len = name.len > 0 ? (size_t)name.len : 0;
        for (int32_t j = 0; j < q->topics[i].nparts; j++)
            keys[n++] = server_partition_key(r->srv, name.p, len, q->topics[i].parts[j].partition);
    }
    if (n > 1) qsort(keys, n, sizeof *keys, cmp_u64);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || keys[i] != keys[i - 1]) keys[m++] = keys[i];
    park_watch *x = ANEW(r, park_watch, m);
    if (x) {
        for (size_t i = 0; i < m; i++) x[i].key = keys[i];
        r->watch = x;
        r->nwatch = m;
    }
    free(keys);
    return x ? 0 : -1;
}

/* Answers r if it can, else parks it; counted as parked from before the attempt
 * (request_park_begin says why). Returns 1 if answered. */
static int fetch_or_park(request *r, int force) {
    worker *w = r->w; /* r is gone once answered */
    request_park_begin(w);
    if (!fetch_try(r, force)) {
        if (r->watch || !fetch_watch(r)) {
            if (r->srv->test_park_delay_us) {
                int us = r->srv->test_park_delay_us;
                nanosleep(&(struct timespec){us / 1000000, (long)(us % 1000000) * 1000}, NULL);
            }
            request_park(r, r->deadline_ms);
            return 0;
        }
        fetch_try(r, 1); /* no memory to wait: answer now */
    }
    request_park_end(w);
    return 1;
}

static void fetch(request *r) {
    r->deadline_ms = mono_ms() + (r->req.u.fetch.max_wait_ms > 0 ? r->req.u.fetch.max_wait_ms : 0);
    fetch_or_park(r, 0);
}

int api_fetch_retry(request *r, int expired) { return fetch_or_park(r, expired); }

/* ---- ListOffsets -------------------------------------------------------------------- */

/* The timestamp of the record at offset, or -1. */
static int64_t record_timestamp(alog *log, int64_t offset) {
    alog_cursor *c;
    if (alog_cursor_open(log, offset, &c) != ALOG_OK) return -1;
    alog_record rec;
    int64_t ts = alog_cursor_next(c, &rec) == ALOG_OK ? rec.timestamp : -1;
    alog_cursor_close(c);
    return ts;
}

static void list_offsets_partition(request *r, const klo_part *qp, klo_part_resp *pr, topic *tp) {
    int v = r->req.h.api_version;
    pr->partition_index = qp->partition_index;
    pr->timestamp = pr->offset = -1;
    if (qp->partition_index < 0 || qp->partition_index >= topic_partitions(tp)) {
        pr->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
        return;
    }
    alog *log = topic_log(tp, qp->partition_index);
    int64_t off = -1, ts = -1;
    if (qp->timestamp == KAFKA_OFFSET_LATEST) {
        off = alog_next_offset(log);
    } else if (qp->timestamp == KAFKA_OFFSET_EARLIEST) {
        off = alog_first_offset(log);
    } else if (qp->timestamp < 0) {
        pr->error_code = KERR_INVALID_REQUEST;
        return;
    } else {
        alog_err e = alog_offset_for_time(log, qp->timestamp, &off);
        if (e != ALOG_OK) {
            fprintf(stderr, "alogd: offset lookup by time in %s-%d: %s\n", topic_name(tp),
                    qp->partition_index, alog_last_error());
            pr->error_code = KERR_KAFKA_STORAGE_ERROR;
            return;
        }
        if (off >= alog_next_offset(log)) {
            /* No record at or after that time: Kafka answers offset -1, timestamp -1
             * (v1+); the old v0 form answers the end of the log. */
            if (v >= 1) off = -1;
        } else {
            ts = record_timestamp(log, off);
        }
    }
    pr->offset = off;
    pr->timestamp = ts;
    if (v == 0) {
        pr->old_style_offsets = ANEW(r, int64_t, 1);
        if (!pr->old_style_offsets) return;
        pr->old_style_offsets[0] = off;
        pr->nold = qp->max_num_offsets > 0 ? 1 : 0;
    }
}

static void list_offsets(request *r) {
    const kreq_list_offsets *q = &r->req.u.list_offsets;
    kresp_body b;
    memset(&b, 0, sizeof b);
    kresp_list_offsets *resp = &b.list_offsets;
    resp->topics = ANEW(r, klo_topic_resp, q->ntopics);
    if (!resp->topics) return oom(r);
    resp->ntopics = q->ntopics;
    for (int32_t i = 0; i < q->ntopics; i++) {
        const klo_topic *qt = &q->topics[i];
        klo_topic_resp *rt = &resp->topics[i];
        rt->name = qt->name;
        rt->parts = ANEW(r, klo_part_resp, qt->nparts);
        if (!rt->parts) return oom(r);
        rt->nparts = qt->nparts;
        topic *tp = NULL;
        int16_t terr = get_topic(r, qt->name, 0, &tp);
        for (int32_t j = 0; j < qt->nparts; j++) {
            klo_part_resp *pr = &rt->parts[j];
            if (terr) {
                pr->partition_index = qt->parts[j].partition_index;
                pr->error_code = terr;
                pr->timestamp = pr->offset = -1;
            } else {
                list_offsets_partition(r, &qt->parts[j], pr, tp);
            }
        }
        topic_unref(tp);
    }
    request_respond(r, &b);
}

/* ---- CreateTopics / DeleteTopics ----------------------------------------------------- */

static int16_t check_create(const kct_topic *t, int32_t *partitions, char *msg, size_t msglen) {
    *partitions = t->num_partitions;
    if (t->replication_factor > 1) {
        snprintf(msg, msglen, "replication factor %d is larger than the 1 broker there is",
                 t->replication_factor);
        return KERR_INVALID_REPLICATION_FACTOR;
    }
    if (t->replication_factor == 0 || t->replication_factor < -1) {
        snprintf(msg, msglen, "replication factor must be 1 (or -1 for the default)");
        return KERR_INVALID_REPLICATION_FACTOR;
    }
    if (t->nassignments > 0) {
        if (t->num_partitions != -1 || t->replication_factor != -1) {
            snprintf(msg, msglen, "with replica assignments, both numPartitions and "
                                  "replicationFactor must be -1");
            return KERR_INVALID_REQUEST;
        }
        for (int32_t i = 0; i < t->nassignments; i++) {
            const kct_assignment *as = &t->assignments[i];
            if (as->partition_index < 0 || as->partition_index >= t->nassignments ||
                as->nbrokers != 1 || as->broker_ids[0] != NODE_ID) {
                snprintf(msg, msglen, "partition %d must be assigned to broker %d alone",
                         as->partition_index, NODE_ID);
                return KERR_INVALID_REPLICA_ASSIGNMENT;
            }
        }
        *partitions = t->nassignments;
    } else if (t->num_partitions == 0 || t->num_partitions < -1) {
        snprintf(msg, msglen, "the number of partitions must be at least 1");
        return KERR_INVALID_PARTITIONS;
    }
    return KERR_NONE;
}

static kstr ct_name(const void *q, int32_t k) {
    return ((const kreq_create_topics *)q)->topics[k].name;
}

static void create_topics(request *r) {
    const kreq_create_topics *q = &r->req.u.create_topics;
    kresp_body b;
    memset(&b, 0, sizeof b);
    kresp_create_topics *resp = &b.create_topics;
    resp->topics = ANEW(r, kct_result, q->ntopics);
    int32_t *first = ANEW(r, int32_t, q->ntopics);
    uint8_t *multi = ANEW(r, uint8_t, q->ntopics);
    if (!resp->topics || !first || !multi ||
        find_repeats(r, q->ntopics, ct_name, q, first, multi))
        return oom(r);
    resp->ntopics = q->ntopics;
    for (int32_t i = 0; i < q->ntopics; i++) {
        const kct_topic *t = &q->topics[i];
        kct_result *res = &resp->topics[i];
        res->name = t->name;
        res->error_message = KSTR_NULL;
        char msg[1024] = "";
        int dup = multi[i];
        int32_t partitions = -1;
        if (dup) {
            res->error_code = KERR_INVALID_REQUEST;
            snprintf(msg, sizeof msg, "the topic is named more than once in the request");
        } else {
            res->error_code = check_create(t, &partitions, msg, sizeof msg);
        }
        topic_kv *kv = ANEW(r, topic_kv, t->nconfigs);
        if (!kv) return oom(r);
        for (int32_t k = 0; k < t->nconfigs; k++) {
            const kct_config *c = &t->configs[k];
            kv[k] = (topic_kv){c->name.len > 0 ? c->name.p : "",
                               c->name.len > 0 ? (size_t)c->name.len : 0,
                               c->value.len >= 0 ? c->value.p : NULL,
                               c->value.len > 0 ? (size_t)c->value.len : 0};
            if (c->value.len == 0) kv[k].value = ""; /* empty, not null */
        }
        if (!res->error_code)
            res->error_code = topics_create(r->srv->topics, t->name.p, (size_t)t->name.len,
                                            partitions, kv, (size_t)t->nconfigs,
                                            q->validate_only, msg, sizeof msg);
        if (res->error_code && msg[0]) {
            size_t n = strlen(msg);
            char *m = ANEW(r, char, n);
            if (!m) return oom(r);
            memcpy(m, msg, n);
            res->error_message = (kstr){m, (int32_t)n};
        }
    }
    request_respond(r, &b);
}

static void delete_topics(request *r) {
    const kreq_delete_topics *q = &r->req.u.delete_topics;
    kresp_body b;
    memset(&b, 0, sizeof b);
    kresp_delete_topics *resp = &b.delete_topics;
    resp->results = ANEW(r, kdt_result, q->nnames);
    if (!resp->results) return oom(r);
    resp->nresults = q->nnames;
    for (int32_t i = 0; i < q->nnames; i++) {
        resp->results[i].name = q->names[i];
        resp->results[i].error_code =
            topics_delete(r->srv->topics, q->names[i].p, (size_t)q->names[i].len);
    }
    request_respond(r, &b);
}

void api_handle(request *r) {
    switch (r->req.h.api_key) {
    case KAPI_API_VERSIONS: return api_versions(r);
    case KAPI_METADATA: return metadata(r);
    case KAPI_PRODUCE: return produce(r);
    case KAPI_FETCH: return fetch(r);
    case KAPI_LIST_OFFSETS: return list_offsets(r);
    case KAPI_CREATE_TOPICS: return create_topics(r);
    case KAPI_DELETE_TOPICS: return delete_topics(r);
    default: return request_close_conn(r, "unexpected API key");
    }
}
