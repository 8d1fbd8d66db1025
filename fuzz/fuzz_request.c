/*
 * fuzz_request.c -- libFuzzer target for alogd's request decoder (src/server/proto.c
 * and kafka_msgs.c): the bytes of one request frame after its size prefix, header and
 * body, for every API key and version. Requests come from any network peer, so no
 * input may crash, leak, read out of bounds, hit undefined behaviour or make the
 * decoder allocate beyond its arena limit (a fixed multiple of the input size, as
 * alogd sets it).
 *
 * Checks:
 *   1. kafka_decode_request's verdict is consistent: KDEC_UNSUPPORTED only for keys and
 *      versions alogd does not implement, KDEC_MALFORMED always with a message, and
 *      every string and byte field of a decoded request lies inside the input.
 *   2. A decoded request re-encodes, and the encoding decodes to the same encoding (a
 *      round trip). For the non-flexible versions the encoding is canonical, so it
 *      must give back the input byte for byte.
 *   3. The same bytes, read as the response to the request named by their first four
 *      bytes (key, version), go through kafka_decode_response, with the same round
 *      trip for what decodes: the response decoders serve tests and clients, and the
 *      encoders are what alogd sends.
 * The seed corpus (fuzz/corpus/fuzz_request/) holds requests kcat (librdkafka 2.0.2)
 * really sent, captured through a proxy, and one request of every other key and
 * version built by tests/cli/alogd_client.py.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_msgs.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_request: %s:%d: check failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                                   \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static const uint8_t *g_lo, *g_hi;

/* A decoded string or byte field must point into the input. */
static void in_input(const void *p, int32_t len) {
    if (len <= 0) return;
    const uint8_t *b = p;
    CHECK(b >= g_lo && b + len <= g_hi);
}

static void check_fields(const kreq *q) {
    in_input(q->h.client_id.p, q->h.client_id.len);
    switch (q->h.api_key) {
    case KAPI_API_VERSIONS: {
        const kreq_api_versions *v = &q->u.api_versions;
        in_input(v->client_software_name.p, v->client_software_name.len);
        in_input(v->client_software_version.p, v->client_software_version.len);
        break;
    }
    case KAPI_METADATA:
        for (int32_t i = 0; i < q->u.metadata.ntopics; i++)
            in_input(q->u.metadata.topics[i].p, q->u.metadata.topics[i].len);
        break;
    case KAPI_PRODUCE:
        for (int32_t i = 0; i < q->u.produce.ntopics; i++) {
            const kproduce_topic *t = &q->u.produce.topics[i];
            in_input(t->name.p, t->name.len);
            for (int32_t j = 0; j < t->nparts; j++)
                in_input(t->parts[j].records.p, t->parts[j].records.len);
        }
        break;
    case KAPI_FETCH:
        for (int32_t i = 0; i < q->u.fetch.ntopics; i++)
            in_input(q->u.fetch.topics[i].topic.p, q->u.fetch.topics[i].topic.len);
        break;
    case KAPI_CREATE_TOPICS:
        for (int32_t i = 0; i < q->u.create_topics.ntopics; i++) {
            const kct_topic *t = &q->u.create_topics.topics[i];
            in_input(t->name.p, t->name.len);
            for (int32_t j = 0; j < t->nconfigs; j++) {
                in_input(t->configs[j].name.p, t->configs[j].name.len);
                in_input(t->configs[j].value.p, t->configs[j].value.len);
            }
        }
        break;
    default:
        break;
    }
}

static int is_flexible(int16_t key, int16_t version) {
    return key == KAPI_API_VERSIONS && version >= 3;
}

static void request_roundtrip(const uint8_t *data, size_t size) {
    karena a;
    karena_init(&a, 16 * size + 65536);
    kreq q;
    char err[300];
    kdec_result d = kafka_decode_request(data, size, &a, &q, err, sizeof err);
    if (d == KDEC_MALFORMED) {
        CHECK(err[0] != '\0');
    } else if (d == KDEC_UNSUPPORTED) {
        CHECK(!kafka_version_supported(q.h.api_key, q.h.api_version));
    } else {
        CHECK(kafka_version_supported(q.h.api_key, q.h.api_version));
        CHECK(a.used <= 16 * size + 65536);
        g_lo = data;
        g_hi = data + size;
        check_fields(&q);
        kbuf b1 = {0}, b2 = {0};
        CHECK(kafka_encode_request(&b1, &q, err, sizeof err) == 0);
        CHECK(b1.len >= 4);
        if (!is_flexible(q.h.api_key, q.h.api_version))
            CHECK(b1.len - 4 == size && memcmp(b1.data + 4, data, size) == 0);
        karena a2;
        karena_init(&a2, 0);
        kreq q2;
        CHECK(kafka_decode_request(b1.data + 4, b1.len - 4, &a2, &q2, err, sizeof err) == KDEC_OK);
        CHECK(kafka_encode_request(&b2, &q2, err, sizeof err) == 0);
        CHECK(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
        karena_free(&a2);
        kbuf_free(&b1);
        kbuf_free(&b2);
    }
    karena_free(&a);
}

static void response_roundtrip(const uint8_t *data, size_t size) {
    if (size < 4) return;
    int16_t key = (int16_t)((data[0] << 8) | data[1]);
    int16_t version = (int16_t)((data[2] << 8) | data[3]);
    if (!kafka_version_supported(key, version)) return;
    const uint8_t *p = data + 4;
    size_t n = size - 4;
    karena a;
    karena_init(&a, 16 * n + 65536);
    kresp_body b;
    int32_t corr = 0;
    char err[300];
    if (kafka_decode_response(p, n, key, version, &a, &corr, &b, err, sizeof err) == 0) {
        kbuf out = {0}, out2 = {0};
        CHECK(kafka_encode_response(&out, key, version, corr, &b, err, sizeof err) == 0);
        if (!is_flexible(key, version))
            CHECK(out.len - 4 == n && memcmp(out.data + 4, p, n) == 0);
        karena a2;
        karena_init(&a2, 0);
        kresp_body b2;
        int32_t corr2 = 0;
        CHECK(kafka_decode_response(out.data + 4, out.len - 4, key, version, &a2, &corr2, &b2,
                                    err, sizeof err) == 0);
        CHECK(corr2 == corr);
        CHECK(kafka_encode_response(&out2, key, version, corr2, &b2, err, sizeof err) == 0);
        CHECK(out.len == out2.len && memcmp(out.data, out2.data, out.len) == 0);
        karena_free(&a2);
        kbuf_free(&out);
        kbuf_free(&out2);
    } else {
        CHECK(err[0] != '\0');
    }
    karena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    request_roundtrip(data, size);
    response_roundtrip(data, size);
    return 0;
}
