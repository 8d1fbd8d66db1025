/*
 * test_batch.c -- the RecordBatch v2 codec against Kafka's documented layout
 * (DefaultRecordBatch.java / DefaultRecord.java), byte for byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "bytes.h"
#include "crc32c.h"
#include "testutil.h"

static void test_crc32c_check_value(void **state) {
    (void)state;
    /* The standard CRC-32C check value. */
    assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c_extend(crc32c("1234", 4), "56789", 5), 0xE3069283u);
    assert_int_equal(crc32c("", 0), 0);
}

static void test_varints(void **state) {
    (void)state;
    /* ZigZag: 0->0, -1->1, 1->2, -2->3, 63->126, -64->127, 64->128 (two bytes). */
    struct { int64_t v; uint8_t bytes[10]; size_t n; } cases[] = {
        {0, {0x00}, 1},        {-1, {0x01}, 1},       {1, {0x02}, 1},
        {-2, {0x03}, 1},       {63, {0x7e}, 1},       {-64, {0x7f}, 1},
        {64, {0x80, 0x01}, 2}, {300, {0xd8, 0x04}, 2},
        {INT32_MAX, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5},
        {INT32_MIN, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[10];
        size_t n = varlong_put(buf, cases[i].v);
        assert_int_equal(n, cases[i].n);
        assert_int_equal(varlong_size(cases[i].v), cases[i].n);
        assert_memory_equal(buf, cases[i].bytes, n);
        const uint8_t *p = buf;
        int64_t back;
        assert_int_equal(varlong_get(&p, buf + n, 5, &back), 0);
        assert_int_equal(back, cases[i].v);
        /* Truncated input fails rather than reading past the end. */
        if (n > 1) {
            p = buf;
            assert_int_equal(varlong_get(&p, buf + n - 1, 5, &back), -1);
        }
    }
    /* A varint longer than 5 bytes, or above int32, is rejected. */
    uint8_t big[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    const uint8_t *p = big;
    int64_t v;
    assert_int_equal(varlong_get(&p, big + sizeof big, 5, &v), -1);
    uint8_t over[] = {0x80, 0x80, 0x80, 0x80, 0x10}; /* 2^32 zigzag -> 2^31 */
    p = over;
    assert_int_equal(varlong_get(&p, over + sizeof over, 5, &v), -1);
}

/* One record, key "k", value "v", header "h"="x", timestamp 1000, as Kafka lays it
 * out. Built here by hand from the spec, independently of the encoder. */
static void test_encode_matches_kafka_layout(void **state) {
    (void)state;
    alog_header hd = {"h", 1, "x", 1};
    alog_record r = {0, 1000, "k", 1, "v", 1, &hd, 1};
    abuf out = {0}, scratch = {0};
    TU_OK(batch_encode(&out, &r, 1, ALOG_COMPRESSION_NONE, 0, 1 << 20, &scratch));

    uint8_t rec[] = {
        0x18,       /* record length: 12 (zigzag 24) */
        0x00,       /* attributes */
        0x00,       /* timestampDelta 0 */
        0x00,       /* offsetDelta 0 */
        0x02, 'k',  /* key length 1, "k" */
        0x02, 'v',  /* value length 1, "v" */
        0x02,       /* 1 header */
        0x02, 'h',  /* header key */
        0x02, 'x',  /* header value */
    };
    uint8_t want[61 + sizeof rec];
    memset(want, 0, sizeof want);
    be64_store(want + 0, 0);                                   /* baseOffset */
    be32_store(want + 8, (uint32_t)(sizeof want - 12));        /* batchLength */
    be32_store(want + 12, 0);                                  /* partitionLeaderEpoch */
    want[16] = 2;                                              /* magic */
    be16_store(want + 21, 0);                                  /* attributes */
    be32_store(want + 23, 0);                                  /* lastOffsetDelta */
    be64_store(want + 27, 1000);                               /* baseTimestamp */
    be64_store(want + 35, 1000);                               /* maxTimestamp */
    be64_store(want + 43, (uint64_t)-1);                       /* producerId */
    be16_store(want + 51, (uint16_t)-1);                       /* producerEpoch */
    be32_store(want + 53, (uint32_t)-1);                       /* baseSequence */
    be32_store(want + 57, 1);                                  /* recordsCount */
    memcpy(want + 61, rec, sizeof rec);
    be32_store(want + 17, crc32c(want + 21, sizeof want - 21)); /* crc */

    assert_int_equal(out.len, sizeof want);
    assert_memory_equal(out.data, want, sizeof want);

    /* Base offset and leader epoch are outside the CRC: stamping them keeps it valid. */
    batch_set_base_offset(out.data, 123456789);
    batch_set_leader_epoch(out.data, 7);
    batch_header h;
    char why[160];
    assert_null(batch_check(out.data, out.len, &h, why, sizeof why));
    assert_int_equal(h.base_offset, 123456789);
    assert_int_equal(h.leader_epoch, 7);
    abuf_free(&out);
    abuf_free(&scratch);
}

/* Round trip of many records with null keys/values, empty values, headers with null
 * values, negative timestamp deltas. */
static void test_round_trip_records(void **state) {
    (void)state;
    enum { N = 300 };
    alog_record recs[N];
    alog_header hdrs[3] = {{"a", 1, "1", 1}, {"dup", 3, NULL, 0}, {"dup", 3, "", 0}};
    char *vals[N];
    for (int i = 0; i < N; i++) {
        vals[i] = malloc(i + 1);
        memset(vals[i], 'a' + i % 26, (size_t)i + 1);
        recs[i] = (alog_record){0, 5000 + (i % 7) * 100 - 300, i % 5 ? "key" : NULL,
                                i % 5 ? 3u : 0u, i % 11 ? vals[i] : NULL,
                                i % 11 ? (size_t)i + 1 : 0, hdrs, (size_t)(i % 4)};
    }
    abuf out = {0}, scratch = {0}, decomp = {0}, hb = {0};
    for (int codec = 0; codec <= 4; codec++) {
        out.len = 0;
        TU_OK(batch_encode(&out, recs, N, (alog_compression)codec, 0, 1 << 24, &scratch));
        batch_header h;
        char why[160];
        assert_null(batch_check(out.data, out.len, &h, why, sizeof why));
        assert_int_equal(h.attributes & 7, codec);
        assert_int_equal(h.records_count, N);
        assert_int_equal(h.last_offset_delta, N - 1);
        assert_int_equal(h.base_timestamp, recs[0].timestamp);
        assert_int_equal(h.max_timestamp, 5000 + 600 - 300);
        int64_t maxts;
        TU_OK(batch_validate_records(out.data, &h, &decomp, 1 << 24, 1, &maxts));
        assert_int_equal(maxts, h.max_timestamp);
        rec_iter it;
        TU_OK(rec_iter_init(&it, out.data, &h, &decomp, 1 << 24));
        alog_record r;
        const char *w;
        for (int i = 0; i < N; i++) {
            assert_int_equal(rec_iter_next(&it, &r, &hb, &w), 1);
            assert_int_equal(r.offset, i);
            assert_int_equal(r.timestamp, recs[i].timestamp);
            assert_true((r.key == NULL) == (recs[i].key == NULL));
            assert_int_equal(r.key_len, recs[i].key_len);
            assert_true((r.value == NULL) == (recs[i].value == NULL));
            assert_int_equal(r.value_len, recs[i].value_len);
            if (r.value) assert_memory_equal(r.value, recs[i].value, r.value_len);
            assert_int_equal(r.header_count, recs[i].header_count);
            for (size_t j = 0; j < r.header_count; j++) {
                assert_int_equal(r.headers[j].key_len, hdrs[j].key_len);
                assert_memory_equal(r.headers[j].key, hdrs[j].key, hdrs[j].key_len);
                assert_true((r.headers[j].value == NULL) == (hdrs[j].value == NULL));
                assert_int_equal(r.headers[j].value_len, hdrs[j].value_len);
            }
        }
        assert_int_equal(rec_iter_next(&it, &r, &hb, &w), 0);
    }
    for (int i = 0; i < N; i++) free(vals[i]);
    abuf_free(&out);
    abuf_free(&scratch);
    abuf_free(&decomp);
    abuf_free(&hb);
}

static void test_check_rejects_damage(void **state) {
    (void)state;
    alog_record r = {0, 1, "k", 1, "value", 5, NULL, 0};
    abuf out = {0}, scratch = {0};
    TU_OK(batch_encode(&out, &r, 1, ALOG_COMPRESSION_NONE, 0, 1 << 20, &scratch));
    batch_header h;
    char why[160];
    /* Every truncation is reported, never read past. */
    for (size_t n = 0; n < out.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, out.data, n);
        assert_non_null(batch_check(copy, n, &h, why, sizeof why));
        free(copy);
    }
    /* Every byte flip inside the CRC's coverage, or of magic/length, is caught. */
    for (size_t i = 8; i < out.len; i++) {
        if (i >= 12 && i < 16) continue; /* leader epoch: not covered, by design */
        out.data[i] ^= 0x40;
        assert_non_null(batch_check(out.data, out.len, &h, why, sizeof why));
        out.data[i] ^= 0x40;
    }
    assert_null(batch_check(out.data, out.len, &h, why, sizeof why));
    abuf_free(&out);
    abuf_free(&scratch);
}

static void test_encode_limits(void **state) {
    (void)state;
    abuf out = {0}, scratch = {0};
    char big[2000];
    memset(big, 'x', sizeof big);
    alog_record r = {0, 1, NULL, 0, big, sizeof big, NULL, 0};
    assert_int_equal(batch_encode(&out, &r, 1, ALOG_COMPRESSION_NONE, 0, 1000, &scratch),
                     ALOG_ETOOBIG);
    assert_int_equal(out.len, 0);
    assert_int_equal(batch_encode(&out, &r, 0, ALOG_COMPRESSION_NONE, 0, 1000, &scratch),
                     ALOG_EINVAL);
    assert_int_equal(batch_encode(&out, &r, 1, (alog_compression)9, 0, 1 << 20, &scratch),
                     ALOG_EUNSUPPORTED);
    abuf_free(&out);
    abuf_free(&scratch);
}

/* Records whose framing is wrong but whose CRC is right (a buggy producer). */
static void test_validate_records_rejects_bad_framing(void **state) {
    (void)state;
    alog_record recs[2] = {{0, 1, "k", 1, "v", 1, NULL, 0}, {0, 2, "k", 1, "w", 1, NULL, 0}};
    abuf out = {0}, scratch = {0}, decomp = {0};
    TU_OK(batch_encode(&out, recs, 2, ALOG_COMPRESSION_NONE, 0, 1 << 20, &scratch));
    batch_header h;
    char why[160];
    /* recordsCount says 3. */
    be32_store(out.data + BATCH_OFF_RECORDS_COUNT, 3);
    be32_store(out.data + BATCH_OFF_CRC, crc32c(out.data + 21, out.len - 21));
    assert_null(batch_check(out.data, out.len, &h, why, sizeof why));
    assert_int_equal(batch_validate_records(out.data, &h, &decomp, 1 << 20, 1, NULL), ALOG_ECORRUPT);
    assert_int_equal(batch_validate_records(out.data, &h, &decomp, 1 << 20, 0, NULL), ALOG_ECORRUPT);
    /* A key length running past the record. */
    be32_store(out.data + BATCH_OFF_RECORDS_COUNT, 2);
    out.data[61 + 4] = 0x7e; /* key length 63 */
    be32_store(out.data + BATCH_OFF_CRC, crc32c(out.data + 21, out.len - 21));
    assert_null(batch_check(out.data, out.len, &h, why, sizeof why));
    assert_int_equal(batch_validate_records(out.data, &h, &decomp, 1 << 20, 1, NULL), ALOG_ECORRUPT);
    abuf_free(&out);
    abuf_free(&scratch);
    abuf_free(&decomp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_value),
        cmocka_unit_test(test_varints),
        cmocka_unit_test(test_encode_matches_kafka_layout),
        cmocka_unit_test(test_round_trip_records),
        cmocka_unit_test(test_check_rejects_damage),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_validate_records_rejects_bad_framing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
