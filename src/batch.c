/*
 * batch.c -- the Kafka RecordBatch v2 codec. A batch is the unit alog writes, checks,
 * indexes and serves: byte for byte what a Kafka broker keeps in its .log files, so the
 * server can hand segment bytes to a Kafka consumer without re-encoding them.
 *
 * Layout (big-endian; from Kafka's DefaultRecordBatch.java):
 *
 *   off size field
 *     0  8   baseOffset            offset of the first record       \ not covered
 *     8  4   batchLength           bytes after this field           | by the CRC
 *    12  4   partitionLeaderEpoch                                   |
 *    16  1   magic = 2                                              /
 *    17  4   crc                   CRC-32C of bytes 21 .. end
 *    21  2   attributes            bits 0-2 codec, 3 LogAppendTime, 4 transactional,
 *                                  5 control, 6 delete horizon
 *    23  4   lastOffsetDelta       last record's offset - baseOffset
 *    27  8   baseTimestamp         first record's timestamp
 *    35  8   maxTimestamp          largest record timestamp
 *    43  8   producerId            -1 = none
 *    51  2   producerEpoch
 *    53  4   baseSequence
 *    57  4   recordsCount
 *    61  ... records, or one compressed blob holding all of them
 *
 * A record (ZigZag varints; "vi" = varint <= 5 bytes, "vl" = varlong <= 10 bytes):
 *   length vi | attributes int8 (0) | timestampDelta vl | offsetDelta vi |
 *   keyLength vi (-1 = null) | key | valueLength vi (-1 = null) | value |
 *   headerCount vi | per header: keyLength vi, key (UTF-8, never null),
 *                                valueLength vi (-1 = null), value
 *
 * The CRC covers everything from attributes on, so the two fields a broker rewrites
 * on append (baseOffset and partitionLeaderEpoch) can change without recomputing it:
 * alog encodes a batch, checksums it once, and then only stamps its base offset.
 * Everything here parses untrusted bytes (segment files, network batches): every read
 * is bounded by an explicit end, and every length is checked before it is used.
 */
#include "batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "codec.h"
#include "crc32c.h"
#include "error.h"

void batch_header_parse(const uint8_t *p, batch_header *h) {
    h->base_offset = (int64_t)be64_load(p + BATCH_OFF_BASE_OFFSET);
    h->length = (int32_t)be32_load(p + BATCH_OFF_LENGTH);
    h->leader_epoch = (int32_t)be32_load(p + BATCH_OFF_LEADER_EPOCH);
    h->magic = (int8_t)p[BATCH_OFF_MAGIC];
    h->crc = be32_load(p + BATCH_OFF_CRC);
    h->attributes = (int16_t)be16_load(p + BATCH_OFF_ATTRIBUTES);
    h->last_offset_delta = (int32_t)be32_load(p + BATCH_OFF_LAST_OFFSET_DELTA);
    h->base_timestamp = (int64_t)be64_load(p + BATCH_OFF_BASE_TIMESTAMP);
    h->max_timestamp = (int64_t)be64_load(p + BATCH_OFF_MAX_TIMESTAMP);
    h->producer_id = (int64_t)be64_load(p + BATCH_OFF_PRODUCER_ID);
    h->producer_epoch = (int16_t)be16_load(p + BATCH_OFF_PRODUCER_EPOCH);
    h->base_sequence = (int32_t)be32_load(p + BATCH_OFF_BASE_SEQUENCE);
    h->records_count = (int32_t)be32_load(p + BATCH_OFF_RECORDS_COUNT);
}

const char *batch_header_check(const batch_header *h) {
    if (h->magic != BATCH_MAGIC) return "bad magic (not a RecordBatch v2)";
    if (h->length < BATCH_MIN_LENGTH) return "batch length too small";
    if (h->base_offset < 0) return "negative base offset";
    if (h->last_offset_delta < 0) return "negative lastOffsetDelta";
    if (h->records_count < 0) return "negative record count";
    /* The last offset must leave room for a next one (next = last + 1 everywhere). */
    if (h->base_offset >= INT64_MAX - h->last_offset_delta) return "offset overflow";
    return NULL;
}

const char *batch_check(const uint8_t *p, uint64_t avail, batch_header *h, char *why_buf,
                        size_t why_len) {
    if (avail < BATCH_HEADER_SIZE) return "truncated batch header";
    batch_header_parse(p, h);
    const char *why = batch_header_check(h);
    if (why) return why;
    if (batch_size(h) > avail) {
        snprintf(why_buf, why_len, "truncated batch (%" PRIu64 " bytes, %" PRIu64 " present)",
                 batch_size(h), avail);
        return why_buf;
    }
    uint32_t crc = crc32c(p + BATCH_CRC_START, batch_size(h) - BATCH_CRC_START);
    if (crc != h->crc) {
        snprintf(why_buf, why_len, "CRC mismatch (stored %08x, computed %08x)", h->crc, crc);
        return why_buf;
    }
    return NULL;
}

void batch_set_base_offset(uint8_t *p, int64_t base) {
    be64_store(p + BATCH_OFF_BASE_OFFSET, (uint64_t)base);
}

void batch_set_leader_epoch(uint8_t *p, int32_t epoch) {
    be32_store(p + BATCH_OFF_LEADER_EPOCH, (uint32_t)epoch);
}

/* ---- encoding ---------------------------------------------------------------- */

static size_t bytes_field_size(const void *p, size_t len) {
    return p ? varlong_size((int64_t)len) + len : 1;
}

static uint8_t *bytes_field_put(uint8_t *w, const void *p, size_t len) {
    if (!p) return w + varlong_put(w, -1);
    w += varlong_put(w, (int64_t)len);
    memcpy(w, p, len);
    return w + len;
}

/* The body size of one record (everything after its length varint), or 0 if a field
 * is too large for Kafka's int32 lengths. */
static size_t record_body_size(const alog_record *r, int64_t ts_delta, int32_t off_delta) {
    if (r->key_len > INT32_MAX || r->value_len > INT32_MAX || r->header_count > INT32_MAX)
        return 0;
    size_t n = 1 + varlong_size(ts_delta) + varlong_size(off_delta) +
               bytes_field_size(r->key, r->key_len) + bytes_field_size(r->value, r->value_len) +
               varlong_size((int64_t)r->header_count);
    for (size_t i = 0; i < r->header_count; i++) {
        const alog_header *hd = &r->headers[i];
        if (hd->key_len > INT32_MAX || hd->value_len > INT32_MAX) return 0;
        n += varlong_size((int64_t)hd->key_len) + hd->key_len +
             bytes_field_size(hd->value, hd->value_len);
    }
    return n > INT32_MAX ? 0 : n;
}

static int64_t record_ts(const alog_record *r, int64_t now_ms) {
    return r->timestamp == ALOG_TIMESTAMP_NOW ? now_ms : r->timestamp;
}

/* Writes the records of the batch to out: sizes first (so the buffer grows once and
 * the limit is checked before any byte is written), then the bytes. */
static alog_err encode_records(abuf *out, const alog_record *recs, size_t n, int64_t now_ms,
                               int64_t base_ts, uint64_t limit) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t body = record_body_size(&recs[i], record_ts(&recs[i], now_ms) - base_ts,
                                       (int32_t)i);
        if (!body) return err_set(ALOG_ETOOBIG, 0, "record %zu: a field exceeds 2 GiB", i);
        total += varlong_size((int64_t)body) + body;
        if (total > limit)
            return err_set(ALOG_ETOOBIG, 0, "batch exceeds the limit of %" PRIu64 " bytes",
                           limit);
    }
    if (abuf_reserve(out, total)) return err_set(ALOG_ENOMEM, 0, "out of memory encoding batch");
    uint8_t *w = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        const alog_record *r = &recs[i];
        int64_t delta = record_ts(r, now_ms) - base_ts;
        size_t body = record_body_size(r, delta, (int32_t)i);
        w += varlong_put(w, (int64_t)body);
        *w++ = 0; /* attributes */
        w += varlong_put(w, delta);
        w += varlong_put(w, (int64_t)i);
        w = bytes_field_put(w, r->key, r->key_len);
        w = bytes_field_put(w, r->value, r->value_len);
        w += varlong_put(w, (int64_t)r->header_count);
        for (size_t j = 0; j < r->header_count; j++) {
            const alog_header *hd = &r->headers[j];
            w = bytes_field_put(w, hd->key ? hd->key : "", hd->key_len);
            w = bytes_field_put(w, hd->value, hd->value_len);
        }
    }
    out->len = (size_t)(w - out->data);
    return ALOG_OK;
}

alog_err batch_encode(abuf *out, const alog_record *recs, size_t n, alog_compression codec,
                      int64_t now_ms, uint32_t max_bytes, abuf *scratch) {
    if (n == 0 || n > INT32_MAX) return err_set(ALOG_EINVAL, 0, "a batch needs 1 to 2^31-1 records");
    if ((unsigned)codec > ALOG_COMPRESSION_ZSTD)
        return err_set(ALOG_EUNSUPPORTED, 0, "unknown compression codec %d", (int)codec);
    /* baseTimestamp is the first record's; deltas may be negative (CreateTime is the
     * producer's clock, not necessarily monotonic). */
    int64_t base_ts = record_ts(&recs[0], now_ms), max_ts = base_ts;
    for (size_t i = 1; i < n; i++) {
        int64_t t = record_ts(&recs[i], now_ms);
        if (t > max_ts) max_ts = t;
    }
    size_t start = out->len;
    if (abuf_reserve(out, BATCH_HEADER_SIZE)) return err_set(ALOG_ENOMEM, 0, "out of memory");
    out->len += BATCH_HEADER_SIZE;
    uint64_t limit = max_bytes > BATCH_HEADER_SIZE ? max_bytes - BATCH_HEADER_SIZE : 0;
    alog_err e;
    if (codec == ALOG_COMPRESSION_NONE) {
        e = encode_records(out, recs, n, now_ms, base_ts, limit);
    } else {
        scratch->len = 0;
        e = encode_records(scratch, recs, n, now_ms, base_ts, (uint64_t)INT32_MAX);
        if (!e) e = codec_compress(codec, scratch->data, scratch->len, out);
        if (!e && out->len - start > max_bytes)
            e = err_set(ALOG_ETOOBIG, 0, "compressed batch exceeds the limit of %u bytes",
                        max_bytes);
    }
    if (e) {
        out->len = start;
        return e;
    }
    uint8_t *h = out->data + start;
    size_t total = out->len - start;
    be64_store(h + BATCH_OFF_BASE_OFFSET, 0);
    be32_store(h + BATCH_OFF_LENGTH, (uint32_t)(total - BATCH_LOG_OVERHEAD));
    be32_store(h + BATCH_OFF_LEADER_EPOCH, 0);
    h[BATCH_OFF_MAGIC] = BATCH_MAGIC;
    be16_store(h + BATCH_OFF_ATTRIBUTES, (uint16_t)codec);
    be32_store(h + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(n - 1));
    be64_store(h + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)base_ts);
    be64_store(h + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_ts);
    be64_store(h + BATCH_OFF_PRODUCER_ID, (uint64_t)-1);
    be16_store(h + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)-1);
    be32_store(h + BATCH_OFF_BASE_SEQUENCE, (uint32_t)-1);
    be32_store(h + BATCH_OFF_RECORDS_COUNT, (uint32_t)n);
    be32_store(h + BATCH_OFF_CRC, crc32c(h + BATCH_CRC_START, total - BATCH_CRC_START));
    return ALOG_OK;
}

/* ---- decoding ---------------------------------------------------------------- */

alog_err rec_iter_init(rec_iter *it, const uint8_t *p, const batch_header *h, abuf *decomp,
                       size_t max_out) {
    const uint8_t *body = p + BATCH_HEADER_SIZE;
    size_t body_len = batch_size(h) - BATCH_HEADER_SIZE;
    int codec = h->attributes & BATCH_ATTR_CODEC_MASK;
    if (codec != ALOG_COMPRESSION_NONE) {
        decomp->len = 0;
        alog_err e = codec_decompress((alog_compression)codec, body, body_len, max_out, decomp);
        if (e) return e;
        body_len = decomp->len;
        /* An empty output may leave decomp unallocated: never do NULL + 0. */
        body = decomp->data ? decomp->data : p + BATCH_HEADER_SIZE;
    }
    it->p = body;
    it->end = body + body_len;
    it->base_offset = h->base_offset;
    it->base_timestamp = h->base_timestamp;
    it->last_offset_delta = h->last_offset_delta;
    it->remaining = h->records_count;
    it->prev_delta = -1;
    it->log_append_time = (h->attributes & BATCH_ATTR_LOG_APPEND_TIME) != 0;
    it->max_timestamp = h->max_timestamp;
    return ALOG_OK;
}

/* Reads a length-prefixed field; len -1 means null. */
static int get_bytes(const uint8_t **pp, const uint8_t *end, const void **out, size_t *len,
                     int allow_null) {
    int64_t n;
    if (varlong_get(pp, end, 5, &n)) return -1;
    if (n < 0) {
        if (n != -1 || !allow_null) return -1;
        *out = NULL;
        *len = 0;
        return 0;
    }
    if ((uint64_t)n > (uint64_t)(end - *pp)) return -1;
    *out = *pp;
    *len = (size_t)n;
    *pp += n;
    return 0;
}

int rec_iter_next(rec_iter *it, alog_record *rec, abuf *hdrs, const char **why) {
    if (it->remaining == 0) {
        if (it->p != it->end) {
            *why = "bytes left after the last record";
            return -1;
        }
        return 0;
    }
    int64_t len, ts_delta, off_delta, hcount;
    const uint8_t *p = it->p;
    if (varlong_get(&p, it->end, 5, &len) || len < 1 || len > it->end - p) {
        *why = it->p == it->end ? "fewer records than recordsCount" : "bad record length";
        return -1;
    }
    const uint8_t *rend = p + len;
    p++; /* record attributes, unused */
    if (varlong_get(&p, rend, 10, &ts_delta) || varlong_get(&p, rend, 5, &off_delta)) {
        *why = "bad record timestamp or offset delta";
        return -1;
    }
    if (off_delta <= it->prev_delta || off_delta > it->last_offset_delta) {
        *why = "record offset delta out of order or past lastOffsetDelta";
        return -1;
    }
    it->prev_delta = (int32_t)off_delta;
    if (get_bytes(&p, rend, &rec->key, &rec->key_len, 1) ||
        get_bytes(&p, rend, &rec->value, &rec->value_len, 1)) {
        *why = "bad record key or value length";
        return -1;
    }
    if (varlong_get(&p, rend, 5, &hcount) || hcount < 0 || hcount > (rend - p) / 2) {
        *why = "bad header count";
        return -1;
    }
    hdrs->len = 0;
    if (hcount > 0 && abuf_reserve(hdrs, (size_t)hcount * sizeof(alog_header))) {
        *why = "out of memory for headers";
        return -1;
    }
    alog_header *hv = (alog_header *)(void *)hdrs->data;
    for (int64_t i = 0; i < hcount; i++) {
        const void *k;
        if (get_bytes(&p, rend, &k, &hv[i].key_len, 0) ||
            get_bytes(&p, rend, &hv[i].value, &hv[i].value_len, 1)) {
            *why = "bad header length";
            return -1;
        }
        hv[i].key = k;
    }
    if (p != rend) {
        *why = "record length does not match its fields";
        return -1;
    }
    hdrs->len = (size_t)hcount * sizeof(alog_header);
    rec->headers = hcount ? hv : NULL;
    rec->header_count = (size_t)hcount;
    rec->offset = it->base_offset + off_delta;
    /* Wraps on overflow, as Kafka's Java reader does (and without undefined behaviour). */
    rec->timestamp = it->log_append_time
                         ? it->max_timestamp
                         : (int64_t)((uint64_t)it->base_timestamp + (uint64_t)ts_delta);
    it->p = rend;
    it->remaining--;
    return 1;
}

alog_err batch_validate_records(const uint8_t *p, const batch_header *h, abuf *decomp,
                                size_t max_out, int strict, int64_t *max_ts_out) {
    if ((h->attributes & BATCH_ATTR_CODEC_MASK) > ALOG_COMPRESSION_ZSTD)
        return err_set(ALOG_ECORRUPT, 0, "unknown compression codec %d",
                       h->attributes & BATCH_ATTR_CODEC_MASK);
    if (strict && (int64_t)h->records_count != (int64_t)h->last_offset_delta + 1)
        return err_set(ALOG_ECORRUPT, 0,
                       "recordsCount %d does not match lastOffsetDelta %d + 1",
                       h->records_count, h->last_offset_delta);
    rec_iter it;
    alog_err e = rec_iter_init(&it, p, h, decomp, max_out);
    if (e) return e == ALOG_EUNSUPPORTED ? e : ALOG_ECORRUPT;
    abuf hdrs = {0};
    alog_record r;
    const char *why = NULL;
    int64_t max_ts = INT64_MIN, n = 0;
    int rc;
    while ((rc = rec_iter_next(&it, &r, &hdrs, &why)) == 1) {
        if (r.timestamp > max_ts) max_ts = r.timestamp;
        n++;
    }
    abuf_free(&hdrs);
    if (rc < 0)
        return err_set(ALOG_ECORRUPT, 0, "record %" PRId64 " of the batch: %s", n, why);
    if (strict && it.prev_delta != h->last_offset_delta)
        return err_set(ALOG_ECORRUPT, 0, "last record's offset delta %d is not lastOffsetDelta %d",
                       it.prev_delta, h->last_offset_delta);
    if (max_ts_out) *max_ts_out = max_ts;
    return ALOG_OK;
}
