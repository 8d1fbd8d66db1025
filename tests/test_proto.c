/*
 * test_proto.c -- alogd's wire codec (src/server/proto.c, kafka_msgs.c) against byte
 * layouts built here by hand, field by field, from the Kafka message schemas
 * (clients/src/main/resources/common/message/<Name>.json in apache/kafka):
 *   - primitives: big-endian integers, unsigned varints, (compact) strings, bytes,
 *     arrays, tagged fields, and their failures;
 *   - every request alogd decodes, at the versions whose layouts differ, decoded from
 *     the hand-built bytes and re-encoded to the same bytes;
 *   - every response alogd encodes, compared with the hand-built bytes, and decoded back;
 *   - malformed input: every truncation of a valid request, trailing bytes, bad
 *     lengths and counts, a null where none is allowed, unknown keys and versions,
 *     and the arena limit. None may crash; each gets a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_msgs.h"
#include "proto.h"
#include "testutil.h"

/* ---- a byte builder, independent of the codec under test --------------------------- */

typedef struct bb {
    uint8_t d[8192];
    size_t n;
} bb;

static void put_be(bb *b, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) b->d[b->n++] = (uint8_t)(v >> (8 * i));
}
static void b_i8(bb *b, int v) { put_be(b, (uint8_t)v, 1); }
static void b_i16(bb *b, int v) { put_be(b, (uint16_t)v, 2); }
static void b_i32(bb *b, int32_t v) { put_be(b, (uint32_t)v, 4); }
static void b_i64(bb *b, int64_t v) { put_be(b, (uint64_t)v, 8); }
static void b_raw(bb *b, const void *p, size_t n) {
    memcpy(b->d + b->n, p, n);
    b->n += n;
}
static void b_str(bb *b, const char *s) {
    if (!s) {
        b_i16(b, -1);
        return;
    }
    b_i16(b, (int)strlen(s));
    b_raw(b, s, strlen(s));
}
static void b_uv(bb *b, uint32_t v) {
    while (v >= 0x80) {
        b->d[b->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b->d[b->n++] = (uint8_t)v;
}
static void b_cstr(bb *b, const char *s) {
    b_uv(b, (uint32_t)strlen(s) + 1);
    b_raw(b, s, strlen(s));
}
/* Request header v1: key, version, correlation id, client id. */
static void b_hdr(bb *b, int key, int version, int32_t corr, const char *client) {
    b_i16(b, key);
    b_i16(b, version);
    b_i32(b, corr);
    b_str(b, client);
}

static int kstr_is(kstr s, const char *c) { return kstr_eq(s, c); }

/* Decodes b as a request; fails the test unless it decodes. */
static void decode_ok(const bb *b, karena *a, kreq *q) {
    char err[300];
    kdec_result d = kafka_decode_request(b->d, b->n, a, q, err, sizeof err);
    if (d != KDEC_OK) fail_msg("decode failed (%d): %s", d, err);
}

/* Re-encodes q and checks the frame is the size prefix plus exactly b. */
static void reencode_same(const kreq *q, const bb *b) {
    kbuf out = {0};
    char err[300];
    assert_int_equal(kafka_encode_request(&out, q, err, sizeof err), 0);
    assert_int_equal(out.len, b->n + 4);
    uint32_t size = (uint32_t)out.data[0] << 24 | (uint32_t)out.data[1] << 16 |
                    (uint32_t)out.data[2] << 8 | out.data[3];
    assert_int_equal(size, b->n);
    assert_memory_equal(out.data + 4, b->d, b->n);
    kbuf_free(&out);
}

/* Encodes a response and checks it is: size, correlation id, then exactly body. */
static void encode_is(int16_t key, int16_t version, const kresp_body *body, const bb *want) {
    kbuf out = {0};
    char err[300];
    if (kafka_encode_response(&out, key, version, 99, body, err, sizeof err) != 0)
        fail_msg("encode failed: %s", err);
    assert_int_equal(out.len, 4 + 4 + want->n);
    assert_int_equal(out.data[7], 99);
    assert_memory_equal(out.data + 8, want->d, want->n);
    /* and it decodes back to the same bytes */
    karena a;
    karena_init(&a, 0);
    kresp_body back;
    int32_t corr;
    if (kafka_decode_response(out.data + 4, out.len - 4, key, version, &a, &corr, &back, err,
                              sizeof err) != 0)
        fail_msg("decode of own response failed: %s", err);
    assert_int_equal(corr, 99);
    kbuf again = {0};
    assert_int_equal(kafka_encode_response(&again, key, version, 99, &back, err, sizeof err), 0);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);
    kbuf_free(&again);
    kbuf_free(&out);
    karena_free(&a);
}

/* ---- primitives --------------------------------------------------------------------- */

static void test_integers_and_varints(void **state) {
    (void)state;
    kbuf out = {0};
    kio w;
    kio_writer(&w, &out);
    int8_t a = -2;
    int16_t b = 0x1234;
    int32_t c = -5;
    int64_t d = 0x0102030405060708LL;
    uint32_t u[] = {0, 1, 127, 128, 300, 16384, UINT32_MAX};
    kio_i8(&w, &a);
    kio_i16(&w, &b);
    kio_i32(&w, &c);
    kio_i64(&w, &d);
    for (size_t i = 0; i < 7; i++) kio_uvarint(&w, &u[i]);
    assert_false(w.failed);
    static const uint8_t want[] = {0xfe, 0x12, 0x34, 0xff, 0xff, 0xff, 0xfb, 1, 2, 3, 4, 5, 6, 7,
                                   8, 0x00, 0x01, 0x7f, 0x80, 0x01, 0xac, 0x02, 0x80, 0x80, 0x01,
                                   0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(out.len, sizeof want);
    assert_memory_equal(out.data, want, sizeof want);

    kio r;
    kio_reader(&r, out.data, out.len, NULL);
    int8_t a2;
    int16_t b2;
    int32_t c2;
    int64_t d2;
    assert_int_equal(kio_i8(&r, &a2), 0);
    assert_int_equal(kio_i16(&r, &b2), 0);
    assert_int_equal(kio_i32(&r, &c2), 0);
    assert_int_equal(kio_i64(&r, &d2), 0);
    assert_int_equal(a2, a);
    assert_int_equal(b2, b);
    assert_int_equal(c2, c);
    assert_true(d2 == d);
    for (size_t i = 0; i < 7; i++) {
        uint32_t v;
        assert_int_equal(kio_uvarint(&r, &v), 0);
        assert_int_equal(v, u[i]);
    }
    assert_int_equal(kio_expect_end(&r, "test"), 0);
    /* Truncated: the failure is sticky and says where. */
    int32_t x;
    assert_int_equal(kio_i32(&r, &x), -1);
    assert_non_null(strstr(r.err, "truncated"));
    assert_int_equal(kio_i8(&r, &a2), -1);
    kbuf_free(&out);

    /* A varint past 32 bits, or longer than 5 bytes, is refused. */
    static const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0x1f};
    static const uint8_t longv[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    uint32_t v;
    kio_reader(&r, big, sizeof big, NULL);
    assert_int_equal(kio_uvarint(&r, &v), -1);
    kio_reader(&r, longv, sizeof longv, NULL);
    assert_int_equal(kio_uvarint(&r, &v), -1);
    /* A bool is 0 or 1. */
    static const uint8_t two = 2;
    int8_t bo;
    kio_reader(&r, &two, 1, NULL);
    assert_int_equal(kio_bool(&r, &bo), -1);
}

static void test_strings_bytes_arrays(void **state) {
    (void)state;
    bb b = {.n = 0};
    b_str(&b, "abc");
    b_str(&b, NULL);
    b_cstr(&b, "xy");
    b_uv(&b, 0); /* compact null */
    b_i32(&b, 2);
    b_raw(&b, "\x01\x02", 2);
    b_i32(&b, -1); /* null bytes */
    b_i32(&b, 3);  /* array of 3 int16 */
    b_i16(&b, 1);
    b_i16(&b, 2);
    b_i16(&b, 3);
    b_uv(&b, 2); /* tagged fields: 2 of them */
    b_uv(&b, 0);
    b_uv(&b, 1);
    b_i8(&b, 9);
    b_uv(&b, 5);
    b_uv(&b, 0);

    karena a;
    karena_init(&a, 0);
    kio r;
    kio_reader(&r, b.d, b.n, &a);
    kstr s1, s2, s3, s4;
    kbytes y1, y2;
    int32_t n;
    int16_t *arr = NULL;
    void *arrv = NULL;
    assert_int_equal(kio_string(&r, &s1, 0), 0);
    assert_int_equal(kio_string(&r, &s2, 1), 0);
    assert_int_equal(kio_compact_string(&r, &s3, 0), 0);
    assert_int_equal(kio_compact_string(&r, &s4, 1), 0);
    assert_int_equal(kio_bytes(&r, &y1, 0), 0);
    assert_int_equal(kio_bytes(&r, &y2, 1), 0);
    assert_int_equal(kio_array(&r, &n, &arrv, sizeof(int16_t), 2, 0), 0);
    arr = arrv;
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) assert_int_equal(kio_i16(&r, &arr[i]), 0);
    assert_int_equal(kio_tagged_fields(&r), 0);
    assert_int_equal(kio_expect_end(&r, "test"), 0);
    assert_true(kstr_is(s1, "abc"));
    assert_int_equal(s2.len, -1);
    assert_true(kstr_is(s3, "xy"));
    assert_int_equal(s4.len, -1);
    assert_int_equal(y1.len, 2);
    assert_int_equal(y2.len, -1);
    assert_int_equal(arr[2], 3);

    /* The same values written give the same bytes. */
    kbuf out = {0};
    kio w;
    kio_writer(&w, &out);
    kio_string(&w, &s1, 0);
    kio_string(&w, &s2, 1);
    kio_compact_string(&w, &s3, 0);
    kio_compact_string(&w, &s4, 1);
    kio_bytes(&w, &y1, 0);
    kio_bytes(&w, &y2, 1);
    kio_array(&w, &n, &arrv, sizeof(int16_t), 2, 0);
    for (int i = 0; i < 3; i++) kio_i16(&w, &arr[i]);
    assert_false(w.failed);
    /* (tagged fields are written empty) */
    assert_memory_equal(out.data, b.d, out.len);
    kbuf_free(&out);

    /* Nulls where none is allowed, negative lengths, and counts that cannot fit. */
    bb bad = {.n = 0};
    b_i16(&bad, -1);
    kio_reader(&r, bad.d, bad.n, &a);
    assert_int_equal(kio_string(&r, &s1, 0), -1);
    bad.n = 0;
    b_i16(&bad, -7);
    kio_reader(&r, bad.d, bad.n, &a);
    assert_int_equal(kio_string(&r, &s1, 1), -1);
    bad.n = 0;
    b_i32(&bad, 1000000); /* a million elements in 4 bytes */
    b_i32(&bad, 0);
    size_t used = a.used;
    kio_reader(&r, bad.d, bad.n, &a);
    assert_int_equal(kio_array(&r, &n, &arrv, 64, 4, 0), -1);
    assert_non_null(strstr(r.err, "cannot fit"));
    assert_int_equal(a.used, used); /* nothing allocated */
    bad.n = 0;
    b_i32(&bad, -1);
    kio_reader(&r, bad.d, bad.n, &a);
    assert_int_equal(kio_array(&r, &n, &arrv, 4, 4, 0), -1);
    bad.n = 0;
    b_uv(&bad, 3); /* 3 tagged fields, then a field whose size runs past the end */
    b_uv(&bad, 0);
    b_uv(&bad, 100);
    kio_reader(&r, bad.d, bad.n, &a);
    assert_int_equal(kio_tagged_fields(&r), -1);
    /* A string longer than int16 cannot be written. */
    static char longs[40000];
    memset(longs, 'a', sizeof longs);
    kstr ls = {longs, (int32_t)sizeof longs};
    kio_writer(&w, &out);
    assert_int_equal(kio_string(&w, &ls, 0), -1);
    kbuf_free(&out);
    karena_free(&a);
}

static void test_arena_limit(void **state) {
    (void)state;
    karena a;
    karena_init(&a, 100); /* sizes round up to 16 bytes */
    assert_non_null(karena_alloc(&a, 50));
    assert_null(karena_alloc(&a, 60));
    assert_non_null(karena_alloc(&a, 30));
    assert_null(karena_alloc(&a, 1));
    karena_free(&a);
    karena_init(&a, 0);
    for (int i = 0; i < 1000; i++) assert_non_null(karena_alloc(&a, 100));
    karena_free(&a);
}

/* ---- requests ----------------------------------------------------------------------- */

static void test_request_api_versions(void **state) {
    (void)state;
    karena a;
    karena_init(&a, 0);
    kreq q;
    bb b = {.n = 0};
    b_hdr(&b, 18, 2, 7, "cli");
    decode_ok(&b, &a, &q);
    assert_int_equal(q.h.api_key, 18);
    assert_int_equal(q.h.api_version, 2);
    assert_int_equal(q.h.correlation_id, 7);
    assert_true(kstr_is(q.h.client_id, "cli"));
    reencode_same(&q, &b);

    /* v3: header v2 (tagged fields after the client id), compact strings, tags. */
    b.n = 0;
    b_hdr(&b, 18, 3, 8, NULL);
    b_uv(&b, 0);
    b_cstr(&b, "librdkafka");
    b_cstr(&b, "2.0.2");
    b_uv(&b, 0);
    decode_ok(&b, &a, &q);
    assert_int_equal(q.h.client_id.len, -1);
    assert_true(kstr_is(q.u.api_versions.client_software_name, "librdkafka"));
    assert_true(kstr_is(q.u.api_versions.client_software_version, "2.0.2"));
    reencode_same(&q, &b);
    /* with tagged fields in the header and body, as a newer client may send */
    b.n = 0;
    b_hdr(&b, 18, 3, 8, "c");
    b_uv(&b, 1);
    b_uv(&b, 3);
    b_uv(&b, 2);
    b_raw(&b, "zz", 2);
    b_cstr(&b, "n");
    b_cstr(&b, "v");
    b_uv(&b, 1);
    b_uv(&b, 0);
    b_uv(&b, 0);
    decode_ok(&b, &a, &q);
    assert_true(kstr_is(q.u.api_versions.client_software_version, "v"));
    karena_free(&a);
}

static void test_request_metadata(void **state) {
    (void)state;
    karena a;
    karena_init(&a, 0);
    kreq q;
    bb b = {.n = 0};
    /* v0: an empty array (all topics); no auto-creation flag (implied true) */
    b_hdr(&b, 3, 0, 1, "c");
    b_i32(&b, 0);
    decode_ok(&b, &a, &q);
    assert_int_equal(q.u.metadata.ntopics, 0);
    assert_int_equal(q.u.metadata.allow_auto_topic_creation, 1);
    reencode_same(&q, &b);
    /* v1: null (all topics) */
    b.n = 0;
    b_hdr(&b, 3, 1, 1, "c");
    b_i32(&b, -1);
    decode_ok(&b, &a, &q);
    assert_int_equal(q.u.metadata.ntopics, -1);
    reencode_same(&q, &b);
    /* v0 may not send null */
    b.n = 0;
    b_hdr(&b, 3, 0, 1, "c");
    b_i32(&b, -1);
    char err[300];
    assert_int_equal(kafka_decode_request(b.d, b.n, &a, &q, err, sizeof err), KDEC_MALFORMED);
    /* v4: two topics and the flag */
    b.n = 0;
    b_hdr(&b, 3, 4, 1, "c");
    b_i32(&b, 2);
    b_str(&b, "a");
    b_str(&b, "topic.b");
    b_i8(&b, 0);
    decode_ok(&b, &a, &q);
    assert_int_equal(q.u.metadata.ntopics, 2);
    assert_true(kstr_is(q.u.metadata.topics[1], "topic.b"));
    assert_int_equal(q.u.metadata.allow_auto_topic_creation, 0);
    reencode_same(&q, &b);
    karena_free(&a);
}

static void test_request_produce(void **state) {
    (void)state;
    karena a;
    karena_init(&a, 0);
    kreq q;
    bb b = {.n = 0};
    b_hdr(&b, 0, 7, 5, "rdkafka");
    b_str(&b, NULL); /* transactional id */
    b_i16(&b, -1);   /* acks */
    b_i32(&b, 30000);
    b_i32(&b, 1); /* topics */
    b_str(&b, "demo");
    b_i32(&b, 2); /* partitions */
    b_i32(&b, 0);
    b_i32(&b, 5);
    b_raw(&b, "BATCH", 5);
    b_i32(&b, 3);
    b_i32(&b, -1); /* null records */
    decode_ok(&b, &a, &q);
    const kreq_produce *p = &q.u.produce;
    assert_int_equal(p->transactional_id.len, -1);
    assert_int_equal(p->acks, -1);
    assert_int_equal(p->timeout_ms, 30000);
    assert_int_equal(p->ntopics, 1);
    assert_true(kstr_is(p->topics[0].name, "demo"));
    assert_int_equal(p->topics[0].nparts, 2);
    assert_int_equal(p->topics[0].parts[0].records.len, 5);
    assert_memory_equal(p->topics[0].parts[0].records.p, "BATCH", 5);
    assert_int_equal(p->topics[0].parts[1].index, 3);
    assert_int_equal(p->topics[0].parts[1].records.len, -1);
    reencode_same(&q, &b);
    /* v2 has no transactional id */
    b.n = 0;
    b_hdr(&b, 0, 2, 5, "c");
    b_i16(&b, 1);
    b_i32(&b, 100);
    b_i32(&b, 0);
    decode_ok(&b, &a, &q);
    assert_int_equal(q.u.produce.acks, 1);
    assert_int_equal(q.u.produce.ntopics, 0);
    reencode_same(&q, &b);
    karena_free(&a);
}

static void test_request_fetch(void **state) {
    (void)state;
    karena a;
    karena_init(&a, 0);
    kreq q;
    bb b = {.n = 0};
    b_hdr(&b, 1, 11, 9, "c");
    b_i32(&b, -1);  /* replica */
    b_i32(&b, 500); /* max wait */
    b_i32(&b, 1);   /* min bytes */
    b_i32(&b, 52428800);
    b_i8(&b, 1);   /* read_committed */
    b_i32(&b, 0);  /* session id */
    b_i32(&b, -1); /* session epoch */
    b_i32(&b, 1);
    b_str(&b, "demo");
    b_i32(&b, 1);
    b_i32(&b, 0);          /* partition */
    b_i32(&b, -1);         /* current leader epoch */
    b_i64(&b, 42);         /* fetch offset */
    b_i64(&b, -1);         /* log start offset */
    b_i32(&b, 1048576);    /* partition max bytes */
    b_i32(&b, 1);          /* forgotten topics */
    b_str(&b, "old");
    b_i32(&b, 1);
    b_i32(&b, 4);
    b_str(&b, "rack1");
    decode_ok(&b, &a, &q);
    const kreq_fetch *f = &q.u.fetch;
    assert_int_equal(f->replica_id, -1);
    assert_int_equal(f->max_wait_ms, 500);
    assert_int_equal(f->min_bytes, 1);
    assert_int_equal(f->max_bytes, 52428800);
    assert_int_equal(f->isolation_level, 1);
    assert_int_equal(f->session_epoch, -1);
    assert_true(kstr_is(f->topics[0].topic, "demo"));
    assert_true(f->topics[0].parts[0].fetch_offset == 42);
    assert_int_equal(f->topics[0].parts[0].partition_max_bytes, 1048576);
    assert_int_equal(f->nforgotten, 1);
    assert_int_equal(f->forgotten[0].parts[0], 4);
    assert_true(kstr_is(f->rack_id, "rack1"));
    reencode_same(&q, &b);
    /* v4: no session, no log start offset, no leader epoch, no rack */
    b.n = 0;
    b_hdr(&b, 1, 4, 9, "c");
    b_i32(&b, -1);
    b_i32(&b, 100);
    b_i32(&b, 10);
    b_i32(&b, 1000);
    b_i8(&b, 0);
    b_i32(&b, 1);
    b_str(&b, "t");
    b_i32(&b, 1);
    b_i32(&b, 2);
    b_i64(&b, 7);
    b_i32(&b, 500);
    decode_ok(&b, &a, &q);
    assert_int_equal(q.u.fetch.topics[0].parts[0].partition, 2);
    assert_int_equal(q.u.fetch.topics[0].parts[0].current_leader_epoch, -1);
    assert_true(q.u.fetch.topics[0].parts[0].log_start_offset == -1);
    assert_int_equal(q.u.fetch.session_epoch, -1);
    reencode_same(&q, &b);
    /* v0: not even max_bytes (defaults to int32 max) */
    b.n = 0;
    b_hdr(&b, 1, 0, 9, "c");
    b_i32(&b, -1);
    b_i32(&b, 100);
    b_i32(&b, 10);
    b_i32(&b, 0);
    decode_ok(&b, &a, &q);
    assert_int_equal(q.u.fetch.max_bytes, INT32_MAX);
    reencode_same(&q, &b);
    karena_free(&a);
}

static void test_request_list_offsets(void **state) {
    (void)state;
    karena a;
    karena_init(&a, 0);
    kreq q;
    bb b = {.n = 0};
    b_hdr(&b, 2, 0, 1, "c");
    b_i32(&b, -1);
    b_i32(&b, 1);
    b_str(&b, "t");
    b_i32(&b, 1);
    b_i32(&b, 0);
    b_i64(&b, -2);
    b_i32(&b, 5); /* max num offsets, v0 only */
    decode_ok(&b, &a, &q);
    assert_true(q.u.list_offsets.topics[0].parts[0].timestamp == -2);
    assert_int_equal(q.u.list_offsets.topics[0].parts[0].max_num_offsets, 5);
    reencode_same(&q, &b);
    b.n = 0;
    b_hdr(&b, 2, 2, 1, "c");
    b_i32(&b, -1);
    b_i8(&b, 1);
    b_i32(&b, 1);
    b_str(&b, "t");
    b_i32(&b, 1);
    b_i32(&b, 3);
    b_i64(&b, 1700000000000LL);
    decode_ok(&b, &a, &q);
    assert_int_equal(q.u.list_offsets.isolation_level, 1);
    assert_int_equal(q.u.list_offsets.topics[0].parts[0].partition_index, 3);
    assert_true(q.u.list_offsets.topics[0].parts[0].timestamp == 1700000000000LL);
    reencode_same(&q, &b);
    karena_free(&a);
}

static void test_request_create_delete_topics(void **state) {
    (void)state;
    karena a;
    karena_init(&a, 0);
    kreq q;
    bb b = {.n = 0};
    b_hdr(&b, 19, 4, 1, "c");
    b_i32(&b, 1);
    b_str(&b, "new");
    b_i32(&b, -1);
    b_i16(&b, -1);
    b_i32(&b, 1); /* assignments */
    b_i32(&b, 0);
    b_i32(&b, 1);
    b_i32(&b, 0);
    b_i32(&b, 2); /* configs */
    b_str(&b, "retention.ms");
    b_str(&b, "1000");
    b_str(&b, "x");
    b_str(&b, NULL);
    b_i32(&b, 30000);
    b_i8(&b, 1); /* validate only */
    decode_ok(&b, &a, &q);
    const kct_topic *t = &q.u.create_topics.topics[0];
    assert_true(kstr_is(t->name, "new"));
    assert_int_equal(t->num_partitions, -1);
    assert_int_equal(t->replication_factor, -1);
    assert_int_equal(t->nassignments, 1);
    assert_int_equal(t->assignments[0].broker_ids[0], 0);
    assert_true(kstr_is(t->configs[0].value, "1000"));
    assert_int_equal(t->configs[1].value.len, -1);
    assert_int_equal(q.u.create_topics.validate_only, 1);
    reencode_same(&q, &b);
    /* v0: no validate_only */
    b.n = 0;
    b_hdr(&b, 19, 0, 1, "c");
    b_i32(&b, 0);
    b_i32(&b, 100);
    decode_ok(&b, &a, &q);
    reencode_same(&q, &b);

    b.n = 0;
    b_hdr(&b, 20, 3, 1, "c");
    b_i32(&b, 2);
    b_str(&b, "a");
    b_str(&b, "b");
    b_i32(&b, 5000);
    decode_ok(&b, &a, &q);
    assert_int_equal(q.u.delete_topics.nnames, 2);
    assert_true(kstr_is(q.u.delete_topics.names[1], "b"));
    assert_int_equal(q.u.delete_topics.timeout_ms, 5000);
    reencode_same(&q, &b);
    karena_free(&a);
}

/* ---- responses ---------------------------------------------------------------------- */

static void test_response_api_versions(void **state) {
    (void)state;
    kapi_range apis[2] = {{0, 0, 7}, {18, 0, 3}};
    kresp_body r;
    memset(&r, 0, sizeof r);
    r.api_versions.napis = 2;
    r.api_versions.apis = apis;
    r.api_versions.throttle_time_ms = 3;
    bb b = {.n = 0};
    b_i16(&b, 0);
    b_i32(&b, 2);
    b_i16(&b, 0), b_i16(&b, 0), b_i16(&b, 7);
    b_i16(&b, 18), b_i16(&b, 0), b_i16(&b, 3);
    encode_is(18, 0, &r, &b); /* v0: no throttle time */
    b_i32(&b, 3);
    encode_is(18, 2, &r, &b);
    /* v3: compact array, a tag section per entry and at the end */
    b.n = 0;
    b_i16(&b, 0);
    b_uv(&b, 3);
    b_i16(&b, 0), b_i16(&b, 0), b_i16(&b, 7), b_uv(&b, 0);
    b_i16(&b, 18), b_i16(&b, 0), b_i16(&b, 3), b_uv(&b, 0);
    b_i32(&b, 3);
    b_uv(&b, 0);
    encode_is(18, 3, &r, &b);

    /* Kafka's answer to an unknown version: error 35, v0 body, ApiVersions only. */
    kbuf out = {0};
    assert_int_equal(kafka_encode_api_versions_unsupported(&out, 77), 0);
    bb w = {.n = 0};
    b_i32(&w, 4 + 2 + 4 + 6);
    b_i32(&w, 77);
    b_i16(&w, 35);
    b_i32(&w, 1);
    b_i16(&w, 18), b_i16(&w, 0), b_i16(&w, 3);
    assert_int_equal(out.len, w.n);
    assert_memory_equal(out.data, w.d, w.n);
    kbuf_free(&out);

    /* The table alogd advertises: every minimum 0, the maxima of the brief. */
    size_t n;
    const kapi_range *t = kafka_supported_apis(&n);
    assert_int_equal(n, 7);
    for (size_t i = 0; i < n; i++) assert_int_equal(t[i].min_version, 0);
    assert_true(kafka_version_supported(0, 7) && !kafka_version_supported(0, 8));
    assert_true(kafka_version_supported(1, 11) && !kafka_version_supported(1, 12));
    assert_true(kafka_version_supported(2, 2) && !kafka_version_supported(2, 3));
    assert_true(kafka_version_supported(3, 4) && !kafka_version_supported(3, 5));
    assert_true(kafka_version_supported(18, 3) && !kafka_version_supported(18, 4));
    assert_true(kafka_version_supported(19, 4) && !kafka_version_supported(19, 5));
    assert_true(kafka_version_supported(20, 3) && !kafka_version_supported(20, 4));
}

static void test_response_metadata(void **state) {
    (void)state;
    int32_t node[1] = {0};
    kmeta_partition parts[1] = {{0, 0, 0, 1, node, 1, node}};
    kmeta_topic topics[2] = {{0, kstr_c("demo"), 0, 1, parts}, {3, kstr_c("gone"), 0, 0, NULL}};
    kmeta_broker broker = {0, kstr_c("127.0.0.1"), 9092, KSTR_NULL};
    kresp_body r;
    memset(&r, 0, sizeof r);
    kresp_metadata *m = &r.metadata;
    m->nbrokers = 1;
    m->brokers = &broker;
    m->cluster_id = kstr_c("alogd");
    m->controller_id = 0;
    m->ntopics = 2;
    m->topics = topics;
    for (int v = 0; v <= 4; v++) {
        bb b = {.n = 0};
        if (v >= 3) b_i32(&b, 0); /* throttle */
        b_i32(&b, 1);
        b_i32(&b, 0);
        b_str(&b, "127.0.0.1");
        b_i32(&b, 9092);
        if (v >= 1) b_str(&b, NULL); /* rack */
        if (v >= 2) b_str(&b, "alogd");
        if (v >= 1) b_i32(&b, 0); /* controller */
        b_i32(&b, 2);
        b_i16(&b, 0);
        b_str(&b, "demo");
        if (v >= 1) b_i8(&b, 0);
        b_i32(&b, 1);
        b_i16(&b, 0), b_i32(&b, 0), b_i32(&b, 0);
        b_i32(&b, 1), b_i32(&b, 0); /* replicas */
        b_i32(&b, 1), b_i32(&b, 0); /* isr */
        b_i16(&b, 3);
        b_str(&b, "gone");
        if (v >= 1) b_i8(&b, 0);
        b_i32(&b, 0);
        encode_is(3, (int16_t)v, &r, &b);
    }
}

static void test_response_produce(void **state) {
    (void)state;
    kproduce_part_resp p = {0, 0, 42, -1, 7};
    kproduce_topic_resp t = {kstr_c("demo"), 1, &p};
    kresp_body r;
    memset(&r, 0, sizeof r);
    r.produce.ntopics = 1;
    r.produce.topics = &t;
    r.produce.throttle_time_ms = 0;
    for (int v = 0; v <= 7; v++) {
        bb b = {.n = 0};
        b_i32(&b, 1);
        b_str(&b, "demo");
        b_i32(&b, 1);
        b_i32(&b, 0);
        b_i16(&b, 0);
        b_i64(&b, 42);
        if (v >= 2) b_i64(&b, -1);
        if (v >= 5) b_i64(&b, 7);
        if (v >= 1) b_i32(&b, 0);
        encode_is(0, (int16_t)v, &r, &b);
    }
}

static void test_response_fetch(void **state) {
    (void)state;
    kbytes chunks[2] = {{(const uint8_t *)"AAAA", 4}, {(const uint8_t *)"BB", 2}};
    kfetch_part_resp parts[2];
    memset(parts, 0, sizeof parts);
    parts[0] = (kfetch_part_resp){0, 0, 10, 10, 2, -1, NULL, -1, 0, 2, chunks};
    parts[1] = (kfetch_part_resp){1, 1, 10, 10, 0, -1, NULL, -1, 0, 0, NULL};
    kfetch_topic_resp t = {kstr_c("demo"), 2, parts};
    kresp_body r;
    memset(&r, 0, sizeof r);
    r.fetch.ntopics = 1;
    r.fetch.topics = &t;
    for (int v = 4; v <= 11; v++) {
        bb b = {.n = 0};
        b_i32(&b, 0); /* throttle */
        if (v >= 7) b_i16(&b, 0), b_i32(&b, 0);
        b_i32(&b, 1);
        b_str(&b, "demo");
        b_i32(&b, 2);
        b_i32(&b, 0), b_i16(&b, 0), b_i64(&b, 10), b_i64(&b, 10);
        if (v >= 5) b_i64(&b, 2);
        b_i32(&b, -1); /* aborted: null */
        if (v >= 11) b_i32(&b, -1);
        b_i32(&b, 6); /* the chunks, concatenated */
        b_raw(&b, "AAAABB", 6);
        b_i32(&b, 1), b_i16(&b, 1), b_i64(&b, 10), b_i64(&b, 10);
        if (v >= 5) b_i64(&b, 0);
        b_i32(&b, -1);
        if (v >= 11) b_i32(&b, -1);
        b_i32(&b, 0); /* empty records */
        /* Two chunks decode as one, so compare the encoding only. */
        kbuf out = {0};
        char err[300];
        assert_int_equal(kafka_encode_response(&out, 1, (int16_t)v, 99, &r, err, sizeof err), 0);
        assert_int_equal(out.len, 8 + b.n);
        assert_memory_equal(out.data + 8, b.d, b.n);
        kbuf_free(&out);
    }
    /* A single chunk round-trips through the decoder too. */
    parts[0].nchunks = 1;
    bb b = {.n = 0};
    b_i32(&b, 0);
    b_i16(&b, 0), b_i32(&b, 0);
    b_i32(&b, 1);
    b_str(&b, "demo");
    b_i32(&b, 2);
    b_i32(&b, 0), b_i16(&b, 0), b_i64(&b, 10), b_i64(&b, 10), b_i64(&b, 2), b_i32(&b, -1),
        b_i32(&b, -1), b_i32(&b, 4), b_raw(&b, "AAAA", 4);
    b_i32(&b, 1), b_i16(&b, 1), b_i64(&b, 10), b_i64(&b, 10), b_i64(&b, 0), b_i32(&b, -1),
        b_i32(&b, -1), b_i32(&b, 0);
    encode_is(1, 11, &r, &b);
}

static void test_response_list_offsets(void **state) {
    (void)state;
    int64_t old[1] = {5};
    klo_part_resp p = {0, 0, 1, old, 1700000000000LL, 5};
    klo_topic_resp t = {kstr_c("t"), 1, &p};
    kresp_body r;
    memset(&r, 0, sizeof r);
    r.list_offsets.ntopics = 1;
    r.list_offsets.topics = &t;
    for (int v = 0; v <= 2; v++) {
        bb b = {.n = 0};
        if (v >= 2) b_i32(&b, 0);
        b_i32(&b, 1);
        b_str(&b, "t");
        b_i32(&b, 1);
        b_i32(&b, 0);
        b_i16(&b, 0);
        if (v == 0) {
            b_i32(&b, 1);
            b_i64(&b, 5);
        } else {
            b_i64(&b, 1700000000000LL);
            b_i64(&b, 5);
        }
        encode_is(2, (int16_t)v, &r, &b);
    }
}

static void test_response_create_delete_topics(void **state) {
    (void)state;
    kct_result res[2] = {{kstr_c("a"), 0, KSTR_NULL}, {kstr_c("b"), 36, kstr_c("exists")}};
    kresp_body r;
    memset(&r, 0, sizeof r);
    r.create_topics.ntopics = 2;
    r.create_topics.topics = res;
    for (int v = 0; v <= 4; v++) {
        bb b = {.n = 0};
        if (v >= 2) b_i32(&b, 0);
        b_i32(&b, 2);
        b_str(&b, "a");
        b_i16(&b, 0);
        if (v >= 1) b_str(&b, NULL);
        b_str(&b, "b");
        b_i16(&b, 36);
        if (v >= 1) b_str(&b, "exists");
        encode_is(19, (int16_t)v, &r, &b);
    }
    kdt_result dres[1] = {{kstr_c("a"), 3}};
    memset(&r, 0, sizeof r);
    r.delete_topics.nresults = 1;
    r.delete_topics.results = dres;
    for (int v = 0; v <= 3; v++) {
        bb b = {.n = 0};
        if (v >= 1) b_i32(&b, 0);
        b_i32(&b, 1);
        b_str(&b, "a");
        b_i16(&b, 3);
        encode_is(20, (int16_t)v, &r, &b);
    }
}

/* ---- malformed input ---------------------------------------------------------------- */

static void test_malformed_requests(void **state) {
    (void)state;
    karena a;
    karena_init(&a, 0);
    kreq q;
    char err[300];
    /* A full Produce v7, then every prefix of it: each fails cleanly, with a message. */
    bb b = {.n = 0};
    b_hdr(&b, 0, 7, 5, "rdkafka");
    b_str(&b, NULL);
    b_i16(&b, 1);
    b_i32(&b, 1000);
    b_i32(&b, 1);
    b_str(&b, "demo");
    b_i32(&b, 1);
    b_i32(&b, 0);
    b_i32(&b, 3);
    b_raw(&b, "xyz", 3);
    decode_ok(&b, &a, &q);
    for (size_t n = 0; n < b.n; n++) {
        err[0] = '\0';
        kdec_result d = kafka_decode_request(b.d, n, &a, &q, err, sizeof err);
        assert_int_equal(d, KDEC_MALFORMED);
        assert_true(err[0] != '\0');
    }
    /* Trailing bytes. */
    bb t = b;
    b_i8(&t, 0);
    assert_int_equal(kafka_decode_request(t.d, t.n, &a, &q, err, sizeof err), KDEC_MALFORMED);
    assert_non_null(strstr(err, "1 unexpected bytes"));
    assert_non_null(strstr(err, "Produce v7 request"));
    /* A records length past the end. */
    bb r = {.n = 0};
    b_hdr(&r, 0, 7, 5, "c");
    b_str(&r, NULL);
    b_i16(&r, 1);
    b_i32(&r, 1000);
    b_i32(&r, 1);
    b_str(&r, "demo");
    b_i32(&r, 1);
    b_i32(&r, 0);
    b_i32(&r, 1 << 30);
    assert_int_equal(kafka_decode_request(r.d, r.n, &a, &q, err, sizeof err), KDEC_MALFORMED);
    /* A huge topic count in a small request: refused before allocating. */
    bb h = {.n = 0};
    b_hdr(&h, 3, 4, 1, "c");
    b_i32(&h, INT32_MAX);
    karena small;
    karena_init(&small, 1024);
    assert_int_equal(kafka_decode_request(h.d, h.n, &small, &q, err, sizeof err), KDEC_MALFORMED);
    assert_int_equal(small.used, 0);
    /* The arena limit: many real elements, too little arena. */
    bb m = {.n = 0};
    b_hdr(&m, 3, 4, 1, "c");
    b_i32(&m, 500);
    for (int i = 0; i < 500; i++) b_str(&m, "t");
    b_i8(&m, 1);
    assert_int_equal(kafka_decode_request(m.d, m.n, &small, &q, err, sizeof err), KDEC_MALFORMED);
    assert_non_null(strstr(err, "too much memory"));
    karena_free(&small);
    /* Unknown key and unsupported versions: the header is still there. */
    bb u = {.n = 0};
    b_hdr(&u, 999, 0, 31, "c");
    assert_int_equal(kafka_decode_request(u.d, u.n, &a, &q, err, sizeof err), KDEC_UNSUPPORTED);
    assert_int_equal(q.h.correlation_id, 31);
    u.n = 0;
    b_hdr(&u, 18, 4, 32, "c");
    b_uv(&u, 0);
    assert_int_equal(kafka_decode_request(u.d, u.n, &a, &q, err, sizeof err), KDEC_UNSUPPORTED);
    assert_int_equal(q.h.api_key, 18);
    assert_int_equal(q.h.correlation_id, 32);
    u.n = 0;
    b_hdr(&u, 3, 9, 33, "c"); /* Metadata v9 (flexible): not implemented */
    assert_int_equal(kafka_decode_request(u.d, u.n, &a, &q, err, sizeof err), KDEC_UNSUPPORTED);
    /* Too short for a header. */
    assert_int_equal(kafka_decode_request(u.d, 7, &a, &q, err, sizeof err), KDEC_MALFORMED);
    /* A bad bool. */
    bb bo = {.n = 0};
    b_hdr(&bo, 3, 4, 1, "c");
    b_i32(&bo, 0);
    b_i8(&bo, 2);
    assert_int_equal(kafka_decode_request(bo.d, bo.n, &a, &q, err, sizeof err), KDEC_MALFORMED);
    assert_non_null(strstr(err, "boolean"));
    /* ApiVersions v3 with a non-compact (int16) string where a compact one belongs. */
    bb av = {.n = 0};
    b_hdr(&av, 18, 3, 1, "c");
    b_uv(&av, 0);
    b_str(&av, "librdkafka");
    b_str(&av, "2.0.2");
    b_uv(&av, 0);
    assert_int_equal(kafka_decode_request(av.d, av.n, &a, &q, err, sizeof err), KDEC_MALFORMED);
    karena_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers_and_varints),
        cmocka_unit_test(test_strings_bytes_arrays),
        cmocka_unit_test(test_arena_limit),
        cmocka_unit_test(test_request_api_versions),
        cmocka_unit_test(test_request_metadata),
        cmocka_unit_test(test_request_produce),
        cmocka_unit_test(test_request_fetch),
        cmocka_unit_test(test_request_list_offsets),
        cmocka_unit_test(test_request_create_delete_topics),
        cmocka_unit_test(test_response_api_versions),
        cmocka_unit_test(test_response_metadata),
        cmocka_unit_test(test_response_produce),
        cmocka_unit_test(test_response_fetch),
        cmocka_unit_test(test_response_list_offsets),
        cmocka_unit_test(test_response_create_delete_topics),
        cmocka_unit_test(test_malformed_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
