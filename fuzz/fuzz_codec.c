/*
 * fuzz_codec.c -- libFuzzer target for codec_decompress (codec.c): the gzip, snappy
 * (raw and xerial), lz4 frame and zstd decoders that unpack the records of compressed
 * batches read from disk or the network. Any input must be refused cleanly, and the
 * output bound (the decompression-bomb guard) must hold exactly.
 *
 * Input: byte 0 picks the codec (low 3 bits: 0-4 are the codecs, 5-7 unknown ones) and
 * whether the output buffer already holds bytes (bit 3: codec_decompress appends);
 * byte 1 picks the output limit from limits[]; the rest is the compressed data.
 * Checked on every input:
 *   - the result is OK, ECORRUPT (ENOMEM) or, for an unknown codec, EUNSUPPORTED;
 *   - bytes already in the buffer are untouched, a failure leaves out->len as it was,
 *     a success adds at most the limit;
 *   - a success repeats identically with the limit set to exactly the size produced,
 *     and fails with a limit one byte smaller;
 *   - compressing the data with the codec and decompressing it gives it back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "fuzz_codec: %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                             \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static const size_t limits[] = {0, 1, 2, 7, 64, 255, 256, 4096, 65535, 65536, 65537,
                                1u << 20, 4u << 20};
#define NLIMITS (sizeof limits / sizeof limits[0])

static const uint8_t prefix[] = {0xde, 0xad, 0xbe, 0xef, 0x01};

/* Decompresses with limit max_out into a buffer that holds pre bytes of prefix[]
 * first; checks the buffer contract. On success *out holds the output (caller frees). */
static alog_err run(alog_compression codec, const uint8_t *in, size_t len, size_t max_out,
                    size_t pre, abuf *out) {
    memset(out, 0, sizeof *out);
    CHECK(abuf_append(out, prefix, pre) == ALOG_OK);
    alog_err e = codec_decompress(codec, in, len, max_out, out);
    CHECK(out->len >= pre && (pre == 0 || memcmp(out->data, prefix, pre) == 0));
    if (e) {
        CHECK(out->len == pre);
        CHECK(e == ALOG_ECORRUPT || e == ALOG_ENOMEM ||
              (e == ALOG_EUNSUPPORTED && codec_name(codec) == NULL));
        CHECK(*alog_last_error() != '\0');
    } else {
        CHECK(codec_name(codec) != NULL);
        CHECK(out->len - pre <= max_out);
    }
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    alog_compression codec = (alog_compression)(data[0] & 7);
    size_t pre = (data[0] & 8) ? sizeof prefix : 0;
    size_t max_out = limits[data[1] % NLIMITS];
    const uint8_t *in = data + 2;
    size_t len = size - 2;

    abuf out;
    alog_err e = run(codec, in, len, max_out, pre, &out);
    if (codec == ALOG_COMPRESSION_NONE)
        CHECK((e == ALOG_OK) == (len <= max_out) &&
              (e || (out.len - pre == len && (len == 0 || memcmp(out.data + pre, in, len) == 0))));
    if (e == ALOG_OK) {
        size_t got = out.len - pre;
        abuf again;
        alog_err e2 = run(codec, in, len, got, 0, &again);
        if (e2 != ALOG_ENOMEM) {
            CHECK(e2 == ALOG_OK && again.len == got);
            CHECK(got == 0 || memcmp(again.data, out.data + pre, got) == 0);
        }
        abuf_free(&again);
        if (got > 0) {
            alog_err e3 = run(codec, in, len, got - 1, 0, &again);
            CHECK(e3 == ALOG_ECORRUPT || e3 == ALOG_ENOMEM);
            abuf_free(&again);
        }
    }
    abuf_free(&out);

    /* The compressors, on the same bytes. */
    if (codec_name(codec) != NULL) {
        abuf comp = {0}, back = {0};
        alog_err ec = codec_compress(codec, in, len, &comp);
        CHECK(ec == ALOG_OK || ec == ALOG_ENOMEM);
        if (ec == ALOG_OK) {
            alog_err ed = codec_decompress(codec, comp.data, comp.len, len, &back);
            CHECK(ed == ALOG_OK || ed == ALOG_ENOMEM);
            if (ed == ALOG_OK)
                CHECK(back.len == len && (len == 0 || memcmp(back.data, in, len) == 0));
        }
        abuf_free(&comp);
        abuf_free(&back);
    }
    return 0;
}
