/*
 * batch.h -- Kafka RecordBatch v2 (magic 2): parse, check, encode, iterate records.
 * The byte layout is described at the top of batch.c and in docs/FORMAT.md.
 */
#ifndef ALOG_BATCH_H
#define ALOG_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "alog.h"
#include "buf.h"

#define BATCH_HEADER_SIZE 61   /* through recordsCount */
#define BATCH_LOG_OVERHEAD 12  /* baseOffset + batchLength: bytes not counted in length */
#define BATCH_MIN_LENGTH (BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD)
#define BATCH_CRC_START 21     /* the CRC covers attributes .. end of batch */
#define BATCH_MAGIC 2

/* Field positions within the batch. */
#define BATCH_OFF_BASE_OFFSET 0
#define BATCH_OFF_LENGTH 8
#define BATCH_OFF_LEADER_EPOCH 12
#define BATCH_OFF_MAGIC 16
#define BATCH_OFF_CRC 17
#define BATCH_OFF_ATTRIBUTES 21
#define BATCH_OFF_LAST_OFFSET_DELTA 23
#define BATCH_OFF_BASE_TIMESTAMP 27
#define BATCH_OFF_MAX_TIMESTAMP 35
#define BATCH_OFF_PRODUCER_ID 43
#define BATCH_OFF_PRODUCER_EPOCH 51
#define BATCH_OFF_BASE_SEQUENCE 53
#define BATCH_OFF_RECORDS_COUNT 57

#define BATCH_ATTR_CODEC_MASK 0x07
#define BATCH_ATTR_LOG_APPEND_TIME 0x08
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20

typedef struct batch_header {
    int64_t base_offset;
    int32_t length; /* bytes after the length field */
    int32_t leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
} batch_header;

/* Decodes the 61 header bytes at p (caller ensured they are there). */
void batch_header_parse(const uint8_t *p, batch_header *h);

/* Total bytes of the batch on disk (12 + length). Only meaningful after a check. */
static inline uint64_t batch_size(const batch_header *h) {
    return (uint64_t)BATCH_LOG_OVERHEAD + (uint32_t)h->length;
}
static inline int64_t batch_last_offset(const batch_header *h) {
    return h->base_offset + h->last_offset_delta;
}

/* Checks what the header alone can tell: magic, length range, deltas and counts.
 * Returns NULL if sound, else a static reason ("bad magic 1", ...). */
const char *batch_header_check(const batch_header *h);

/* Checks the batch starting at p with avail bytes readable: the header, that the whole
 * batch is there, and its CRC32C. Fills *h. Returns NULL if sound, else a reason, put
 * in *why_buf (why_len bytes) when it needs numbers. */
const char *batch_check(const uint8_t *p, uint64_t avail, batch_header *h, char *why_buf,
                        size_t why_len);

/* Sets baseOffset (not covered by the CRC, so no recompute). */
void batch_set_base_offset(uint8_t *p, int64_t base);
void batch_set_leader_epoch(uint8_t *p, int32_t epoch);

/* Encodes n records (n >= 1) as one batch appended to out, with baseOffset 0,
 * leader epoch 0, CreateTime timestamps (ALOG_TIMESTAMP_NOW replaced by now_ms), no
 * producer id, compressed with codec. scratch is a work buffer for compression.
 * ALOG_ETOOBIG if the batch would exceed max_bytes. */
alog_err batch_encode(abuf *out, const alog_record *recs, size_t n, alog_compression codec,
                      int64_t now_ms, uint32_t max_bytes, abuf *scratch);

/* Iterates the records of one checked batch. */
typedef struct rec_iter {
    const uint8_t *p, *end;
    int64_t base_offset;
    int64_t base_timestamp;
    int32_t last_offset_delta;
    int32_t remaining;
    int32_t prev_delta;
    int log_append_time;
    int64_t max_timestamp;
} rec_iter;

/* Starts iterating the records of the batch at p (already checked with batch_check).
 * For a compressed batch the records are decompressed into decomp (max max_out bytes)
 * and the iterator points into it. Errors: ALOG_ECORRUPT with a message (no file
 * context: the caller prefixes it), ALOG_EUNSUPPORTED for an unknown codec. */
alog_err rec_iter_init(rec_iter *it, const uint8_t *p, const batch_header *h, abuf *decomp,
                       size_t max_out);

/* Decodes the next record into *rec; headers go into *hdrs (an abuf of alog_header,
 * reused). Returns 1 for a record, 0 at the end (after checking that the batch held
 * exactly recordsCount records), -1 on malformed bytes with a static reason in *why. */
int rec_iter_next(rec_iter *it, alog_record *rec, abuf *hdrs, const char **why);

/* Full validation of a batch's records (framing of every record, record count, offset
 * deltas strictly increasing and ending at lastOffsetDelta when strict). On success
 * *max_ts_out (may be NULL) is the largest record timestamp. ALOG_ECORRUPT with a
 * message otherwise. */
alog_err batch_validate_records(const uint8_t *p, const batch_header *h, abuf *decomp,
                                size_t max_out, int strict, int64_t *max_ts_out);

#endif
