/*
 * fuzz_batch.c -- libFuzzer target for the RecordBatch v2 decoder (batch.c, and through
 * it codec.c): batch_check, rec_iter_init/rec_iter_next over every record and header,
 * and batch_validate_records. Batches arrive from the network (alog_append_raw) and
 * from segment files, so no byte sequence may crash, leak, read out of bounds or hit
 * undefined behaviour, and the decoder's answers must agree with each other.
 *
 * The input is read as a run of batches, as in a segment file:
 *   1. batch_check on the raw bytes, to cover every rejection path including the CRC;
 *   2. each batch is then copied into a buffer of exactly its size (so that ASan sees
 *      any read past its end), its length field clamped to the bytes present and its
 *      CRC recomputed, so that mutations reach the record parsing behind the checksum;
 *   3. the records are iterated (every key, value and header byte is read) and the
 *      result is checked against batch_validate_records, strict and not;
 *   4. a batch that decodes is re-encoded with batch_encode in the same codec and must
 *      decode to the same records.
 * Decompression is bounded by FUZZ_MAX_OUT so that bombs are refused quickly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "bytes.h"
#include "codec.h"
#include "crc32c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_OUT ((size_t)4 << 20) /* decompressed records per batch */
#define FUZZ_MAX_BATCHES 64

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_batch: %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                             \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* Reads every byte of a field, so that ASan checks the decoder's pointers. */
static volatile uint8_t g_sink;
static void touch(const void *p, size_t n) {
    const uint8_t *b = p;
    uint8_t x = 0;
    for (size_t i = 0; i < n; i++) x ^= b[i];
    g_sink ^= x;
}

/* A decoded record with its own copy of the header array (the iterator reuses its own). */
typedef struct rec_copy {
    alog_record r;
    alog_header *hdrs;
} rec_copy;

typedef struct decoded {
    rec_copy *recs;
    size_t n, cap;
    int rc;             /* last rec_iter_next result: 0 = all records, -1 = malformed */
    int64_t max_ts;     /* largest record timestamp, INT64_MIN if none */
} decoded;

static void decoded_free(decoded *d) {
    for (size_t i = 0; i < d->n; i++) free(d->recs[i].hdrs);
    free(d->recs);
    memset(d, 0, sizeof *d);
}

static int same_bytes(const void *a, size_t an, const void *b, size_t bn) {
    if (!a || !b) return !a && !b && an == 0 && bn == 0;
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* Iterates the records of the checked batch p. Returns -1 if rec_iter_init refused it,
 * else 0 with d filled (record pointers valid while p and decomp are unchanged). */
static int decode(const uint8_t *p, const batch_header *h, abuf *decomp, decoded *d) {
    memset(d, 0, sizeof *d);
    d->max_ts = INT64_MIN;
    rec_iter it;
    alog_err e = rec_iter_init(&it, p, h, decomp, FUZZ_MAX_OUT);
    if (e) {
        int codec = h->attributes & BATCH_ATTR_CODEC_MASK;
        CHECK(e == ALOG_ECORRUPT || e == ALOG_ENOMEM ||
              (e == ALOG_EUNSUPPORTED && codec > ALOG_COMPRESSION_ZSTD));
        return -1;
    }
    CHECK(it.p <= it.end);
    abuf hdrs = {0};
    alog_record r;
    const char *why = NULL;
    int64_t prev = -1;
    for (;;) {
        int rc = rec_iter_next(&it, &r, &hdrs, &why);
        if (rc != 1) {
            CHECK(rc == 0 || (rc == -1 && why && *why));
            d->rc = rc;
            break;
        }
        CHECK(r.offset > prev);
        CHECK(r.offset >= h->base_offset && r.offset <= batch_last_offset(h));
        prev = r.offset;
        if (r.key) touch(r.key, r.key_len);
        else CHECK(r.key_len == 0);
        if (r.value) touch(r.value, r.value_len);
        else CHECK(r.value_len == 0);
        CHECK((r.header_count == 0) == (r.headers == NULL));
        CHECK(r.header_count * sizeof(alog_header) <= hdrs.len);
        for (size_t i = 0; i < r.header_count; i++) {
            CHECK(r.headers[i].key != NULL);
            touch(r.headers[i].key, r.headers[i].key_len);
            if (r.headers[i].value) touch(r.headers[i].value, r.headers[i].value_len);
        }
        if (r.timestamp > d->max_ts) d->max_ts = r.timestamp;
        if (d->n == d->cap) {
            size_t cap = d->cap ? d->cap * 2 : 16;
            rec_copy *nr = realloc(d->recs, cap * sizeof *nr);
            CHECK(nr != NULL);
            d->recs = nr;
            d->cap = cap;
        }
        rec_copy *c = &d->recs[d->n++];
        c->r = r;
        c->hdrs = NULL;
        if (r.header_count) {
            c->hdrs = malloc(r.header_count * sizeof *c->hdrs);
            CHECK(c->hdrs != NULL);
            memcpy(c->hdrs, r.headers, r.header_count * sizeof *c->hdrs);
            c->r.headers = c->hdrs;
        }
    }
    CHECK(d->n <= (size_t)h->records_count);
    if (d->rc == 0) CHECK(d->n == (size_t)h->records_count);
    abuf_free(&hdrs);
    return 0;
}

/* Whether batch_encode can take these timestamps (its deltas are plain int64
 * subtractions from the first record's, as Kafka's are). */
static int deltas_fit(const decoded *d) {
    int64_t base = d->recs[0].r.timestamp;
    for (size_t i = 0; i < d->n; i++) {
        int64_t t = d->recs[i].r.timestamp, delta;
        if (t == ALOG_TIMESTAMP_NOW || __builtin_sub_overflow(t, base, &delta)) return 0;
    }
    return 1;
}

/* Re-encodes the records d decoded from a batch in codec, and checks that the new
 * batch is sound and decodes to the same records. */
static void roundtrip(const decoded *d, alog_compression codec) {
    if (d->n == 0 || !deltas_fit(d)) return;
    alog_record *recs = malloc(d->n * sizeof *recs);
    CHECK(recs != NULL);
    for (size_t i = 0; i < d->n; i++) recs[i] = d->recs[i].r;
    abuf out = {0}, scratch = {0}, decomp = {0};
    alog_err e = batch_encode(&out, recs, d->n, codec, 0, UINT32_MAX, &scratch);
    CHECK(e == ALOG_OK || e == ALOG_ENOMEM);
    if (e == ALOG_OK) {
        batch_header h;
        char why_buf[160];
        CHECK(batch_check(out.data, out.len, &h, why_buf, sizeof why_buf) == NULL);
        CHECK(batch_size(&h) == out.len);
        CHECK((size_t)h.records_count == d->n && (size_t)h.last_offset_delta == d->n - 1);
        CHECK((h.attributes & BATCH_ATTR_CODEC_MASK) == (int)codec);
        decoded d2;
        if (decode(out.data, &h, &decomp, &d2) == 0) {
            CHECK(d2.rc == 0 && d2.n == d->n);
            CHECK(h.max_timestamp == d->max_ts);
            for (size_t i = 0; i < d->n; i++) {
                const alog_record *a = &d->recs[i].r, *b = &d2.recs[i].r;
                CHECK(b->offset == (int64_t)i);
                CHECK(a->timestamp == b->timestamp);
                CHECK(same_bytes(a->key, a->key_len, b->key, b->key_len));
                CHECK(same_bytes(a->value, a->value_len, b->value, b->value_len));
                CHECK(a->header_count == b->header_count);
                for (size_t j = 0; j < a->header_count; j++) {
                    const alog_header *x = &a->headers[j], *y = &b->headers[j];
                    CHECK(x->key_len == y->key_len &&
                          (x->key_len == 0 || memcmp(x->key, y->key, x->key_len) == 0));
                    CHECK(same_bytes(x->value, x->value_len, y->value, y->value_len));
                }
            }
            CHECK(batch_validate_records(out.data, &h, &decomp, FUZZ_MAX_OUT, 1, NULL) ==
                  ALOG_OK);
        } else {
            /* Only a decompressed size past the bound may refuse what we encoded. */
            CHECK(codec != ALOG_COMPRESSION_NONE);
        }
        decoded_free(&d2);
    }
    abuf_free(&out);
    abuf_free(&scratch);
    abuf_free(&decomp);
    free(recs);
}

/* Everything the decoder does with one batch p[0..n) whose CRC and length are right. */
static void one_batch(const uint8_t *p, size_t n) {
    batch_header h;
    char why_buf[160];
    const char *why = batch_check(p, n, &h, why_buf, sizeof why_buf);
    if (why) {
        /* Only the header's own fields can still be wrong. */
        CHECK(batch_header_check(&h) != NULL);
        return;
    }
    CHECK(batch_size(&h) <= n);
    abuf decomp = {0};
    decoded d;
    int ok_init = decode(p, &h, &decomp, &d) == 0;

    int64_t max_ts = 0;
    abuf decomp2 = {0};
    alog_err e = batch_validate_records(p, &h, &decomp2, FUZZ_MAX_OUT, 0, &max_ts);
    CHECK(e == ALOG_OK || e == ALOG_ECORRUPT || e == ALOG_EUNSUPPORTED || e == ALOG_ENOMEM);
    if (e != ALOG_ENOMEM) CHECK((e == ALOG_OK) == (ok_init && d.rc == 0));
    if (e == ALOG_OK) CHECK(max_ts == d.max_ts);
    alog_err es = batch_validate_records(p, &h, &decomp2, FUZZ_MAX_OUT, 1, NULL);
    if (es == ALOG_OK) {
        CHECK(e == ALOG_OK);
        CHECK((int64_t)h.records_count == (int64_t)h.last_offset_delta + 1);
        CHECK(d.n == (size_t)h.records_count);
        CHECK(d.n > 0 && d.recs[d.n - 1].r.offset == batch_last_offset(&h));
    }
    abuf_free(&decomp2);

    if (ok_init && d.rc == 0) {
        int codec = h.attributes & BATCH_ATTR_CODEC_MASK;
        roundtrip(&d, (alog_compression)codec);
    }
    decoded_free(&d);
    abuf_free(&decomp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    batch_header h;
    char why_buf[160];
    /* 1: the raw bytes, CRC and all. */
    const char *why = batch_check(data, size, &h, why_buf, sizeof why_buf);
    if (!why) CHECK(batch_size(&h) <= size && batch_header_check(&h) == NULL);

    /* 2-4: batch by batch, with length and CRC repaired. */
    size_t pos = 0;
    for (int k = 0; k < FUZZ_MAX_BATCHES && size - pos >= BATCH_HEADER_SIZE; k++) {
        size_t left = size - pos;
        batch_header_parse(data + pos, &h);
        uint64_t want = batch_size(&h);
        size_t n = (want >= BATCH_HEADER_SIZE && want <= left) ? (size_t)want : left;
        uint8_t *b = malloc(n);
        CHECK(b != NULL);
        memcpy(b, data + pos, n);
        be32_store(b + BATCH_OFF_LENGTH, (uint32_t)(n - BATCH_LOG_OVERHEAD));
        be32_store(b + BATCH_OFF_CRC, crc32c(b + BATCH_CRC_START, n - BATCH_CRC_START));
        one_batch(b, n);
        free(b);
        pos += n;
    }
    return 0;
}
