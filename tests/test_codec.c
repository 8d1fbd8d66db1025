/*
 * test_codec.c -- codec.c on its own: the four Kafka compression codecs and "none".
 *
 * Covers: round trips through codec_compress/codec_decompress of every codec at sizes
 * 0, 1, 100, 32 KiB +- 1, 64 KiB +- 1 and 1 MiB, compressible and incompressible,
 * appending to a buffer that already holds bytes; the max_out limit (exactly at the
 * size passes, one below fails, a 16 MiB "bomb" is refused without allocating anything
 * near its size, a raw snappy block declaring 4 GiB is refused before allocating);
 * truncated inputs at every length (always an error, except xerial snappy cut at a block
 * boundary, which its framing cannot tell); bit flips and random garbage (an error or a
 * bounded output, never a crash or out-of-bounds access -- run it under ASan; gzip's CRC
 * must catch every flip past its header); the framings other clients write: xerial
 * snappy exactly as snappy-java writes it (byte for byte for "hello"), raw snappy, xerial
 * with other block sizes, concatenated and header-only xerial streams; LZ4 frames with
 * every LZ4F option, concatenated and skippable frames, and the frame header alog writes
 * (Kafka's: independent 64 KiB blocks, no checksums); gzip multi-member, zlib-wrapped,
 * with a file name, and strict about trailing bytes; zstd without content size, with a
 * checksum, concatenated and skippable frames; and batches encoded with each codec
 * through batch_encode and read back through rec_iter (also with a too small max_out and
 * with a damaged compressed body behind a valid CRC).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "batch.h"
#include "bytes.h"
#include "codec.h"
#include "crc32c.h"
#include "testutil.h"

static const alog_compression codecs[] = {ALOG_COMPRESSION_NONE, ALOG_COMPRESSION_GZIP,
                                          ALOG_COMPRESSION_SNAPPY, ALOG_COMPRESSION_LZ4,
                                          ALOG_COMPRESSION_ZSTD};
#define NCODECS (sizeof codecs / sizeof codecs[0])

static uint64_t rng;
static uint64_t rnd(void) {
    /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * UINT64_C(2685821657736338717);
}
static void seed(uint64_t s) { rng = s * UINT64_C(0x9E3779B97F4A7C15) + 1; }

static void fill_random(uint8_t *p, size_t n, uint64_t s) {
    seed(s);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(rnd() >> 56);
}

/* Text-like, compressible but not trivially so. */
static void fill_text(uint8_t *p, size_t n, uint64_t s) {
    static const char *const words[] = {"offset", "segment", "batch",  "record", "kafka",
                                        "index",  "time",    "durable", "log",   "append",
                                        "the",    "a",       "of",      "zstd",  "snappy"};
    seed(s);
    size_t i = 0;
    while (i < n) {
        const char *w = words[rnd() % (sizeof words / sizeof words[0])];
        for (size_t j = 0; w[j] && i < n; j++) p[i++] = (uint8_t)w[j];
        if (i < n) p[i++] = (rnd() % 8) ? ' ' : (uint8_t)('0' + rnd() % 10);
    }
}

static uint8_t *xmalloc(size_t n) {
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* Decompresses into a buffer prefilled with two bytes; checks the prefix survives and,
 * on failure, that the length was put back. Returns the error; *out gets the output. */
static alog_err decomp(alog_compression c, const uint8_t *in, size_t len, size_t max_out,
                       abuf *out) {
    out->len = 0;
    assert_int_equal(abuf_append(out, "pq", 2), ALOG_OK);
    alog_err e = codec_decompress(c, in, len, max_out, out);
    assert_true(out->len >= 2);
    assert_memory_equal(out->data, "pq", 2);
    if (e != ALOG_OK) {
        assert_int_equal(out->len, 2);
        assert_true(alog_last_error()[0] != '\0');
    } else {
        assert_true(out->len - 2 <= max_out);
    }
    return e;
}

/* Compresses in[0..n) with c into *comp (cleared first). */
static void comp(alog_compression c, const uint8_t *in, size_t n, abuf *out) {
    out->len = 0;
    TU_OK(codec_compress(c, in, n, out));
}

/* ---- names -------------------------------------------------------------------- */

static void test_names_and_unknown_codec(void **state) {
    (void)state;
    const char *names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
    for (size_t i = 0; i < NCODECS; i++) {
        assert_string_equal(codec_name(codecs[i]), names[i]);
        assert_int_equal(codec_from_name(names[i]), (int)codecs[i]);
    }
    assert_null(codec_name((alog_compression)5));
    assert_int_equal(codec_from_name("brotli"), -1);
    assert_int_equal(codec_from_name(NULL), -1);
    abuf b = {0};
    uint8_t x[4] = {1, 2, 3, 4};
    assert_int_equal(codec_compress((alog_compression)5, x, 4, &b), ALOG_EUNSUPPORTED);
    assert_int_equal(codec_compress((alog_compression)-1, x, 4, &b), ALOG_EUNSUPPORTED);
    assert_int_equal(codec_decompress((alog_compression)7, x, 4, 100, &b), ALOG_EUNSUPPORTED);
    assert_int_equal(b.len, 0);
    assert_int_equal(codec_compress(ALOG_COMPRESSION_GZIP, NULL, 4, &b), ALOG_EINVAL);
    assert_int_equal(codec_decompress(ALOG_COMPRESSION_GZIP, NULL, 4, 100, &b), ALOG_EINVAL);
    abuf_free(&b);
}

/* ---- round trips -------------------------------------------------------------- */

static void test_round_trip_all_sizes(void **state) {
    (void)state;
    const size_t sizes[] = {0, 1, 100, 32767, 32768, 32769, 65535, 65536, 65537, 1 << 20};
    const size_t nsizes = sizeof sizes / sizeof sizes[0];
    uint8_t *in = xmalloc(1 << 20);
    abuf c = {0}, d = {0};
    for (int kind = 0; kind < 2; kind++) {
        for (size_t si = 0; si < nsizes; si++) {
            size_t n = sizes[si];
            if (kind == 0) fill_random(in, n, n + 1);
            else fill_text(in, n, n + 1);
            for (size_t ci = 0; ci < NCODECS; ci++) {
                alog_compression codec = codecs[ci];
                /* Compression appends after what the buffer already holds. */
                c.len = 0;
                assert_int_equal(abuf_append(&c, "xyz", 3), ALOG_OK);
                TU_OK(codec_compress(codec, in, n, &c));
                assert_memory_equal(c.data, "xyz", 3);
                const uint8_t *cp = c.data + 3;
                size_t clen = c.len - 3;
                if (codec == ALOG_COMPRESSION_NONE) {
                    assert_int_equal(clen, n);
                    if (n) assert_memory_equal(cp, in, n);
                } else {
                    assert_true(clen > 0); /* every framing has a header */
                }
                if (kind == 1 && n >= 65536 && codec != ALOG_COMPRESSION_NONE)
                    assert_true(clen < n / 2);
                /* Incompressible data grows by at most a little framing. */
                if (kind == 0 && n >= 65536) assert_true(clen < n + n / 50 + 64);

                /* The limit at exactly the size passes... */
                TU_OK(decomp(codec, cp, clen, n, &d));
                assert_int_equal(d.len, n + 2);
                if (n) assert_memory_equal(d.data + 2, in, n);
                /* ...and also with room to spare... */
                TU_OK(decomp(codec, cp, clen, n + 12345, &d));
                assert_int_equal(d.len, n + 2);
                /* ...one byte less is refused, and nothing is left behind. */
                if (n > 0) {
                    assert_int_equal(decomp(codec, cp, clen, n - 1, &d), ALOG_ECORRUPT);
                    assert_non_null(strstr(alog_last_error(), "exceeds"));
                }
            }
        }
    }
    /* A NULL input of length 0 is an empty input. */
    for (size_t ci = 0; ci < NCODECS; ci++) {
        c.len = 0;
        TU_OK(codec_compress(codecs[ci], NULL, 0, &c));
        TU_OK(decomp(codecs[ci], c.data, c.len, 0, &d));
        assert_int_equal(d.len, 2);
    }
    free(in);
    abuf_free(&c);
    abuf_free(&d);
}

/* ---- decompression bombs ------------------------------------------------------ */

static void test_bomb_is_refused_without_allocating(void **state) {
    (void)state;
    const size_t big = (size_t)16 << 20, limit = (size_t)1 << 20;
    uint8_t *zeros = calloc(1, big);
    assert_non_null(zeros);
    for (size_t ci = 1; ci < NCODECS; ci++) {
        abuf c = {0};
        comp(codecs[ci], zeros, big, &c);
        assert_true(c.len < big / 16); /* it really is a bomb */
        abuf d = {0};
        assert_int_equal(codec_decompress(codecs[ci], c.data, c.len, limit, &d), ALOG_ECORRUPT);
        assert_non_null(strstr(alog_last_error(), "exceeds"));
        assert_int_equal(d.len, 0);
        /* Never allocated anything near the 16 MiB it would expand to. */
        assert_true(d.cap <= 2 * limit + (256 << 10));
        /* A zero limit refuses any output at all. */
        abuf_free(&d);
        assert_int_equal(codec_decompress(codecs[ci], c.data, c.len, 0, &d), ALOG_ECORRUPT);
        assert_true(d.cap <= (256 << 10));
        abuf_free(&d);
        abuf_free(&c);
    }
    /* "none" refuses input longer than the limit. */
    abuf d = {0};
    assert_int_equal(codec_decompress(ALOG_COMPRESSION_NONE, zeros, 1000, 999, &d), ALOG_ECORRUPT);
    assert_int_equal(d.len, 0);
    free(zeros);

    /* A raw snappy block declaring 4 GiB - 1 in its preamble: refused up front. */
    uint8_t raw[64] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(codec_decompress(ALOG_COMPRESSION_SNAPPY, raw, sizeof raw, limit, &d),
                     ALOG_ECORRUPT);
    assert_true(d.cap <= 4096);
    /* Even under a huge limit: 64 bytes cannot hold 4 GiB of snappy output. */
    assert_int_equal(codec_decompress(ALOG_COMPRESSION_SNAPPY, raw, sizeof raw, SIZE_MAX, &d),
                     ALOG_ECORRUPT);
    assert_true(d.cap <= 4096);
    /* The same inside a xerial block. */
    uint8_t x[16 + 4 + 64] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    be32_store(x + 16, 64);
    memcpy(x + 20, raw, sizeof raw);
    assert_int_equal(codec_decompress(ALOG_COMPRESSION_SNAPPY, x, sizeof x, limit, &d),
                     ALOG_ECORRUPT);
    assert_true(d.cap <= 4096);
    /* A zstd frame whose header declares 64 KiB of content, far above the limit. */
    size_t zb = ZSTD_compressBound(1 << 16);
    uint8_t *z = xmalloc(zb);
    uint8_t *src = calloc(1, 1 << 16);
    assert_non_null(src);
    size_t zl = ZSTD_compress(z, zb, src, 1 << 16, 3);
    assert_false(ZSTD_isError(zl));
    assert_int_equal(codec_decompress(ALOG_COMPRESSION_ZSTD, z, zl, 1000, &d), ALOG_ECORRUPT);
    assert_true(d.cap <= (256 << 10));
    free(z);
    free(src);
    abuf_free(&d);
}

/* ---- truncation ----------------------------------------------------------------- */

static void test_truncated_inputs_are_errors(void **state) {
    (void)state;
    const size_t sizes[] = {100, 3000, 70000};
    abuf c = {0}, d = {0};
    for (size_t si = 0; si < 3; si++) {
        size_t n = sizes[si];
        uint8_t *in = xmalloc(n);
        if (si == 1) fill_random(in, n, 77);
        else fill_text(in, n, 5 + si);
        for (size_t ci = 1; ci < NCODECS; ci++) {
            alog_compression codec = codecs[ci];
            comp(codec, in, n, &c);
            for (size_t cut = 0; cut < c.len; cut++) {
                /* A private copy of exactly cut bytes, so ASan sees any over-read. */
                uint8_t *t = xmalloc(cut);
                memcpy(t, c.data, cut);
                alog_err e = decomp(codec, t, cut, n, &d);
                free(t);
                if (e == ALOG_OK) {
                    /* Only xerial can end cleanly early: at a block boundary (its header
                     * alone is a valid empty stream). The batch CRC covers this case. */
                    if (codec != ALOG_COMPRESSION_SNAPPY)
                        fail_msg("%s: cut at %zu of %zu decoded", codec_name(codec), cut, c.len);
                    size_t got = d.len - 2;
                    assert_true(got < n);
                    assert_int_equal(got % 32768, 0);
                    if (got) assert_memory_equal(d.data + 2, in, got);
                } else {
                    assert_int_equal(e, ALOG_ECORRUPT);
                }
            }
        }
        free(in);
    }
    abuf_free(&c);
    abuf_free(&d);
}

/* ---- bit flips and garbage ------------------------------------------------------ */

static void test_bit_flips_and_garbage_never_crash(void **state) {
    (void)state;
    const size_t n = 2500;
    uint8_t *in = xmalloc(n);
    fill_text(in, 2000, 9);
    fill_random(in + 2000, 500, 10);
    abuf c = {0}, d = {0};
    for (size_t ci = 1; ci < NCODECS; ci++) {
        alog_compression codec = codecs[ci];
        comp(codec, in, n, &c);
        uint8_t *t = xmalloc(c.len);
        for (size_t i = 0; i < c.len; i++) {
            const uint8_t masks[2] = {(uint8_t)(1u << (i % 8)), 0xff};
            for (int m = 0; m < 2; m++) {
                memcpy(t, c.data, c.len);
                t[i] ^= masks[m];
                alog_err e = decomp(codec, t, c.len, 2 * n, &d);
                assert_true(e == ALOG_OK || e == ALOG_ECORRUPT);
                /* gzip: everything past the 10-byte header is covered by the deflate
                 * structure, the CRC-32 and ISIZE of the trailer. */
                if (codec == ALOG_COMPRESSION_GZIP && i >= 10 && e == ALOG_OK)
                    fail_msg("gzip: flip 0x%02x at byte %zu of %zu not detected", masks[m], i,
                             c.len);
                /* And the gzip magic and method bytes are always checked. */
                if (codec == ALOG_COMPRESSION_GZIP && i < 3) assert_int_equal(e, ALOG_ECORRUPT);
            }
        }
        free(t);
    }
    /* Random garbage of every length up to 300, and garbage behind each format's magic. */
    static const uint8_t magics[5][8] = {{0}, {0x1f, 0x8b, 0x08, 0}, {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0},
                                         {0x04, 0x22, 0x4d, 0x18}, {0x28, 0xb5, 0x2f, 0xfd}};
    static const size_t magic_len[5] = {0, 4, 8, 4, 4};
    for (size_t len = 0; len <= 300; len++) {
        for (uint64_t s = 0; s < 3; s++) {
            uint8_t *g = xmalloc(len);
            for (size_t ci = 1; ci < NCODECS; ci++) {
                fill_random(g, len, len * 7 + s);
                if (s == 2 && len >= magic_len[ci]) memcpy(g, magics[ci], magic_len[ci]);
                alog_err e = decomp(codecs[ci], g, len, 4096, &d);
                assert_true(e == ALOG_OK || e == ALOG_ECORRUPT);
                /* Only raw snappy has no magic, so only it may decode random bytes. */
                if (codecs[ci] != ALOG_COMPRESSION_SNAPPY && len >= 4 && e == ALOG_OK)
                    fail_msg("%s decoded %zu random bytes", codec_name(codecs[ci]), len);
            }
            free(g);
        }
    }
    free(in);
    abuf_free(&c);
    abuf_free(&d);
}

/* ---- snappy framings ------------------------------------------------------------ */

/* Builds a xerial stream the way snappy-java's SnappyOutputStream does. */
static void xerial_build(const uint8_t *in, size_t n, size_t block, abuf *out) {
    static const uint8_t hdr[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    assert_int_equal(abuf_append(out, hdr, sizeof hdr), ALOG_OK);
    for (size_t pos = 0; pos < n; pos += block) {
        size_t blk = n - pos < block ? n - pos : block;
        size_t cl = snappy_max_compressed_length(blk);
        assert_int_equal(abuf_reserve(out, 4 + cl), ALOG_OK);
        assert_int_equal(snappy_compress((const char *)in + pos, blk,
                                         (char *)out->data + out->len + 4, &cl),
                         SNAPPY_OK);
        be32_store(out->data + out->len, (uint32_t)cl);
        out->len += 4 + cl;
    }
}

static void test_snappy_xerial_and_raw(void **state) {
    (void)state;
    abuf c = {0}, d = {0};
    /* snappy-java's output for "hello": magic, version 1, compatible 1, one block of 7
     * bytes: preamble 5, literal tag (5-1)<<2, "hello". */
    static const uint8_t hello_xerial[] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1,
                                           0, 0, 0, 1, 0, 0, 0, 7, 0x05, 0x10, 'h', 'e', 'l',
                                           'l', 'o'};
    TU_OK(decomp(ALOG_COMPRESSION_SNAPPY, hello_xerial, sizeof hello_xerial, 5, &d));
    assert_int_equal(d.len, 7);
    assert_memory_equal(d.data + 2, "hello", 5);
    comp(ALOG_COMPRESSION_SNAPPY, (const uint8_t *)"hello", 5, &c);
    assert_int_equal(c.len, sizeof hello_xerial);
    assert_memory_equal(c.data, hello_xerial, sizeof hello_xerial); /* what Java writes */
    /* The same "hello" as librdkafka writes it: one raw block. */
    TU_OK(decomp(ALOG_COMPRESSION_SNAPPY, hello_xerial + 20, 7, 5, &d));
    assert_memory_equal(d.data + 2, "hello", 5);

    const size_t n = 100000;
    uint8_t *in = xmalloc(n);
    fill_text(in, n, 3);
    /* alog writes exactly what snappy-java would: 32 KiB blocks. */
    abuf x = {0};
    xerial_build(in, n, 32768, &x);
    comp(ALOG_COMPRESSION_SNAPPY, in, n, &c);
    assert_int_equal(c.len, x.len);
    assert_memory_equal(c.data, x.data, x.len);
    /* Other block sizes are read too (the reader assumes none). */
    const size_t blocks[] = {1, 1000, 8192, 65536, 100000};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        x.len = 0;
        xerial_build(in, i == 0 ? 300 : n, blocks[i], &x);
        TU_OK(decomp(ALOG_COMPRESSION_SNAPPY, x.data, x.len, n, &d));
        assert_int_equal(d.len - 2, i == 0 ? 300 : n);
        assert_memory_equal(d.data + 2, in, d.len - 2);
    }
    /* Raw snappy of the whole input (librdkafka's producer). */
    size_t rl = snappy_max_compressed_length(n);
    uint8_t *raw = xmalloc(rl);
    assert_int_equal(snappy_compress((const char *)in, n, (char *)raw, &rl), SNAPPY_OK);
    TU_OK(decomp(ALOG_COMPRESSION_SNAPPY, raw, rl, n, &d));
    assert_int_equal(d.len - 2, n);
    assert_memory_equal(d.data + 2, in, n);
    assert_int_equal(decomp(ALOG_COMPRESSION_SNAPPY, raw, rl, n - 1, &d), ALOG_ECORRUPT);
    /* The empty raw block is its preamble alone; anything after it is corrupt. */
    TU_OK(decomp(ALOG_COMPRESSION_SNAPPY, (const uint8_t *)"\0", 1, 10, &d));
    assert_int_equal(d.len, 2);
    assert_int_equal(decomp(ALOG_COMPRESSION_SNAPPY, (const uint8_t *)"\0\0", 2, 10, &d),
                     ALOG_ECORRUPT);
    assert_int_equal(decomp(ALOG_COMPRESSION_SNAPPY, (const uint8_t *)"", 0, 10, &d),
                     ALOG_ECORRUPT);
    /* A header with no blocks is an empty stream; two streams back to back (snappy-java
     * reads concatenated streams) give both contents. */
    TU_OK(decomp(ALOG_COMPRESSION_SNAPPY, hello_xerial, 16, 10, &d));
    assert_int_equal(d.len, 2);
    x.len = 0;
    xerial_build(in, 40000, 32768, &x);
    xerial_build(in + 40000, 50000, 32768, &x);
    TU_OK(decomp(ALOG_COMPRESSION_SNAPPY, x.data, x.len, 90000, &d));
    assert_int_equal(d.len - 2, 90000);
    assert_memory_equal(d.data + 2, in, 90000);
    assert_int_equal(decomp(ALOG_COMPRESSION_SNAPPY, x.data, x.len, 89999, &d), ALOG_ECORRUPT);
    /* Version fields are not interpreted. */
    uint8_t v[sizeof hello_xerial];
    memcpy(v, hello_xerial, sizeof v);
    v[11] = 2;
    TU_OK(decomp(ALOG_COMPRESSION_SNAPPY, v, sizeof v, 5, &d));
    /* A block length past the end, or an empty block length field, is corrupt. */
    memcpy(v, hello_xerial, sizeof v);
    be32_store(v + 16, 8);
    assert_int_equal(decomp(ALOG_COMPRESSION_SNAPPY, v, sizeof v, 100, &d), ALOG_ECORRUPT);
    assert_int_equal(decomp(ALOG_COMPRESSION_SNAPPY, v, 18, 100, &d), ALOG_ECORRUPT);
    /* A block whose data disagrees with its preamble. */
    memcpy(v, hello_xerial, sizeof v);
    v[20] = 0x06;
    assert_int_equal(decomp(ALOG_COMPRESSION_SNAPPY, v, sizeof v, 100, &d), ALOG_ECORRUPT);
    free(raw);
    free(in);
    abuf_free(&x);
    abuf_free(&c);
    abuf_free(&d);
}

/* ---- lz4 frames ----------------------------------------------------------------- */

static void test_lz4_frames(void **state) {
    (void)state;
    const size_t n = 300000;
    uint8_t *in = xmalloc(n);
    fill_text(in, n, 11);
    abuf c = {0}, d = {0};
    /* The frame alog writes is the one Kafka's KafkaLZ4BlockOutputStream writes. */
    comp(ALOG_COMPRESSION_LZ4, in, n, &c);
    static const uint8_t magic[4] = {0x04, 0x22, 0x4d, 0x18};
    assert_memory_equal(c.data, magic, 4);
    assert_int_equal(c.data[4], 0x60); /* version 01, independent blocks, no checksums/size */
    assert_int_equal(c.data[5], 0x40); /* 64 KiB maximum block size */
    LZ4F_dctx *dc;
    assert_false(LZ4F_isError(LZ4F_createDecompressionContext(&dc, LZ4F_VERSION)));
    LZ4F_frameInfo_t fi;
    size_t hl = c.len;
    assert_false(LZ4F_isError(LZ4F_getFrameInfo(dc, &fi, c.data, &hl)));
    assert_int_equal(fi.blockMode, LZ4F_blockIndependent);
    assert_int_equal(fi.blockSizeID, LZ4F_max64KB);
    assert_int_equal(fi.contentChecksumFlag, LZ4F_noContentChecksum);
    LZ4F_freeDecompressionContext(dc);

    /* Every option another writer may choose is read. */
    for (int opt = 0; opt < 6; opt++) {
        LZ4F_preferences_t p;
        memset(&p, 0, sizeof p);
        p.frameInfo.blockMode = opt & 1 ? LZ4F_blockLinked : LZ4F_blockIndependent;
        p.frameInfo.contentChecksumFlag = opt & 2 ? LZ4F_contentChecksumEnabled : LZ4F_noContentChecksum;
        p.frameInfo.blockChecksumFlag = opt >= 2 ? LZ4F_blockChecksumEnabled : LZ4F_noBlockChecksum;
        p.frameInfo.blockSizeID = opt == 4 ? LZ4F_max4MB : opt == 5 ? LZ4F_max256KB : LZ4F_max64KB;
        p.frameInfo.contentSize = opt >= 3 ? n : 0;
        p.compressionLevel = opt == 5 ? 9 : 0;
        size_t b = LZ4F_compressFrameBound(n, &p);
        c.len = 0;
        assert_int_equal(abuf_reserve(&c, 2 * b + 64), ALOG_OK);
        size_t r = LZ4F_compressFrame(c.data, b, in, n, &p);
        assert_false(LZ4F_isError(r));
        c.len = r;
        TU_OK(decomp(ALOG_COMPRESSION_LZ4, c.data, c.len, n, &d));
        assert_int_equal(d.len - 2, n);
        assert_memory_equal(d.data + 2, in, n);
        assert_int_equal(decomp(ALOG_COMPRESSION_LZ4, c.data, c.len, n - 1, &d), ALOG_ECORRUPT);
        if (opt & 2) {
            /* With a content checksum, damage in the data is always caught. */
            c.data[c.len / 2] ^= 0x10;
            assert_int_equal(decomp(ALOG_COMPRESSION_LZ4, c.data, c.len, 2 * n, &d), ALOG_ECORRUPT);
            c.data[c.len / 2] ^= 0x10;
        }
        /* Two frames back to back, with skippable frames before, between and after. */
        uint8_t skip[8 + 5] = {0x5a, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 'j', 'u', 'n', 'k', '!'};
        abuf cat = {0};
        assert_int_equal(abuf_append(&cat, skip, sizeof skip), ALOG_OK);
        assert_int_equal(abuf_append(&cat, c.data, c.len), ALOG_OK);
        assert_int_equal(abuf_append(&cat, skip, sizeof skip), ALOG_OK);
        assert_int_equal(abuf_append(&cat, c.data, c.len), ALOG_OK);
        assert_int_equal(abuf_append(&cat, skip, sizeof skip), ALOG_OK);
        TU_OK(decomp(ALOG_COMPRESSION_LZ4, cat.data, cat.len, 2 * n, &d));
        assert_int_equal(d.len - 2, 2 * n);
        assert_memory_equal(d.data + 2, in, n);
        assert_memory_equal(d.data + 2 + n, in, n);
        assert_int_equal(decomp(ALOG_COMPRESSION_LZ4, cat.data, cat.len, 2 * n - 1, &d), ALOG_ECORRUPT);
        /* Trailing bytes that are not a frame are corrupt. */
        cat.len = 0;
        assert_int_equal(abuf_append(&cat, c.data, c.len), ALOG_OK);
        assert_int_equal(abuf_append(&cat, "\0\0\0\0\0\0", 6), ALOG_OK);
        assert_int_equal(decomp(ALOG_COMPRESSION_LZ4, cat.data, cat.len, 2 * n, &d), ALOG_ECORRUPT);
        abuf_free(&cat);
    }
    free(in);
    abuf_free(&c);
    abuf_free(&d);
}

/* ---- gzip ----------------------------------------------------------------------- */

static void test_gzip_members_and_wrappers(void **state) {
    (void)state;
    const size_t n = 50000;
    uint8_t *in = xmalloc(n);
    fill_text(in, n, 21);
    abuf a = {0}, b = {0}, e0 = {0}, cat = {0}, d = {0};
    comp(ALOG_COMPRESSION_GZIP, in, 30000, &a);
    assert_int_equal(a.data[0], 0x1f);
    assert_int_equal(a.data[1], 0x8b);
    assert_int_equal(a.data[2], 8); /* deflate */
    comp(ALOG_COMPRESSION_GZIP, in + 30000, n - 30000, &b);
    comp(ALOG_COMPRESSION_GZIP, in, 0, &e0);
    /* Members one after another decode as the concatenation (gzip(1), Java). */
    assert_int_equal(abuf_append(&cat, a.data, a.len), ALOG_OK);
    assert_int_equal(abuf_append(&cat, e0.data, e0.len), ALOG_OK);
    assert_int_equal(abuf_append(&cat, b.data, b.len), ALOG_OK);
    TU_OK(decomp(ALOG_COMPRESSION_GZIP, cat.data, cat.len, n, &d));
    assert_int_equal(d.len - 2, n);
    assert_memory_equal(d.data + 2, in, n);
    assert_int_equal(decomp(ALOG_COMPRESSION_GZIP, cat.data, cat.len, n - 1, &d), ALOG_ECORRUPT);
    /* Trailing garbage or zero padding after a member is corrupt (strict by design). */
    size_t l = cat.len;
    assert_int_equal(abuf_append(&cat, "\0\0\0\0", 4), ALOG_OK);
    assert_int_equal(decomp(ALOG_COMPRESSION_GZIP, cat.data, cat.len, 2 * n, &d), ALOG_ECORRUPT);
    cat.len = l;
    assert_int_equal(abuf_append(&cat, "\x1f\x8b", 2), ALOG_OK);
    assert_int_equal(decomp(ALOG_COMPRESSION_GZIP, cat.data, cat.len, 2 * n, &d), ALOG_ECORRUPT);

    /* A zlib-wrapped stream (RFC 1950) is accepted too. */
    uLongf zl = compressBound(n);
    uint8_t *z = xmalloc(zl);
    assert_int_equal(compress2(z, &zl, in, n, 6), Z_OK);
    TU_OK(decomp(ALOG_COMPRESSION_GZIP, z, zl, n, &d));
    assert_memory_equal(d.data + 2, in, n);
    /* Raw deflate (no header at all) is not a gzip stream. */
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zl = compressBound(n);
    zs.next_in = in;
    zs.avail_in = (uInt)n;
    zs.next_out = z;
    zs.avail_out = (uInt)zl;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    zl = zs.total_out;
    deflateEnd(&zs);
    assert_int_equal(decomp(ALOG_COMPRESSION_GZIP, z, zl, 2 * n, &d), ALOG_ECORRUPT);
    /* A gzip header with a file name, a comment and a header CRC (gzip(1) writes the
     * name) is read. */
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    gz_header gh;
    memset(&gh, 0, sizeof gh);
    gh.name = (Bytef *)"records.bin";
    gh.comment = (Bytef *)"from a test";
    gh.hcrc = 1;
    gh.time = 1234567890;
    assert_int_equal(deflateSetHeader(&zs, &gh), Z_OK);
    zl = compressBound(n) + 64;
    free(z);
    z = xmalloc(zl);
    zs.next_in = in;
    zs.avail_in = (uInt)n;
    zs.next_out = z;
    zs.avail_out = (uInt)zl;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    zl = zs.total_out;
    deflateEnd(&zs);
    TU_OK(decomp(ALOG_COMPRESSION_GZIP, z, zl, n, &d));
    assert_int_equal(d.len - 2, n);
    assert_memory_equal(d.data + 2, in, n);
    /* The header CRC protects the name: damage there is caught. */
    z[12] ^= 1;
    assert_int_equal(decomp(ALOG_COMPRESSION_GZIP, z, zl, 2 * n, &d), ALOG_ECORRUPT);
    free(z);
    free(in);
    abuf_free(&a);
    abuf_free(&b);
    abuf_free(&e0);
    abuf_free(&cat);
    abuf_free(&d);
}

/* ---- zstd ----------------------------------------------------------------------- */

static size_t zstd_with(const uint8_t *in, size_t n, int content_size, int checksum,
                        abuf *out) {
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    assert_non_null(cc);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, content_size)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, checksum)));
    size_t b = ZSTD_compressBound(n);
    assert_int_equal(abuf_reserve(out, b), ALOG_OK);
    /* Streamed without a pledged size, as Kafka's Java producer does. */
    ZSTD_outBuffer ob = {out->data + out->len, b, 0};
    ZSTD_inBuffer ib = {in, n, 0};
    size_t r;
    do {
        r = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end);
        assert_false(ZSTD_isError(r));
    } while (r != 0);
    out->len += ob.pos;
    ZSTD_freeCCtx(cc);
    return ob.pos;
}

static void test_zstd_frames(void **state) {
    (void)state;
    const size_t n = 200000;
    uint8_t *in = xmalloc(n);
    fill_text(in, n, 31);
    abuf c = {0}, d = {0};
    for (int opt = 0; opt < 4; opt++) {
        c.len = 0;
        zstd_with(in, n, opt & 1, (opt >> 1) & 1, &c);
        unsigned long long cs = ZSTD_getFrameContentSize(c.data, c.len);
        if (!(opt & 1)) assert_true(cs == ZSTD_CONTENTSIZE_UNKNOWN);
        TU_OK(decomp(ALOG_COMPRESSION_ZSTD, c.data, c.len, n, &d));
        assert_int_equal(d.len - 2, n);
        assert_memory_equal(d.data + 2, in, n);
        assert_int_equal(decomp(ALOG_COMPRESSION_ZSTD, c.data, c.len, n - 1, &d), ALOG_ECORRUPT);
        if (opt & 2) {
            /* With the checksum, a flip in the last block's data is caught. */
            c.data[c.len - 10] ^= 0x04;
            assert_int_equal(decomp(ALOG_COMPRESSION_ZSTD, c.data, c.len, 2 * n, &d), ALOG_ECORRUPT);
            c.data[c.len - 10] ^= 0x04;
        }
    }
    /* alog's own frames record the content size. */
    comp(ALOG_COMPRESSION_ZSTD, in, n, &c);
    assert_true(ZSTD_getFrameContentSize(c.data, c.len) == n);
    /* Frames back to back, and skippable frames, as the format allows. */
    abuf cat = {0};
    uint8_t skip[8 + 3] = {0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'x', 'y', 'z'};
    assert_int_equal(abuf_append(&cat, skip, sizeof skip), ALOG_OK);
    zstd_with(in, 1000, 0, 0, &cat);
    assert_int_equal(abuf_append(&cat, skip, sizeof skip), ALOG_OK);
    zstd_with(in + 1000, n - 1000, 1, 1, &cat);
    assert_int_equal(abuf_append(&cat, skip, sizeof skip), ALOG_OK);
    TU_OK(decomp(ALOG_COMPRESSION_ZSTD, cat.data, cat.len, n, &d));
    assert_int_equal(d.len - 2, n);
    assert_memory_equal(d.data + 2, in, n);
    /* Garbage after the last frame is corrupt. */
    assert_int_equal(abuf_append(&cat, "\x01\x02\x03\x04\x05", 5), ALOG_OK);
    assert_int_equal(decomp(ALOG_COMPRESSION_ZSTD, cat.data, cat.len, 2 * n, &d), ALOG_ECORRUPT);
    abuf_free(&cat);
    free(in);
    abuf_free(&c);
    abuf_free(&d);
}

/* ---- batches with each codec ---------------------------------------------------- */

static void test_batches_with_each_codec(void **state) {
    (void)state;
    enum { N = 120 };
    alog_record recs[N];
    static uint8_t vals[N][300];
    uint8_t *big = xmalloc(200000);
    fill_text(big, 200000, 41);
    alog_header hdrs[2] = {{"trace", 5, "abc", 3}, {"nullval", 7, NULL, 0}};
    char keys[N][16];
    for (int i = 0; i < N; i++) {
        size_t vl = (size_t)(i * 37 % 300);
        if (i % 2) fill_text(vals[i], vl, (uint64_t)i);
        else fill_random(vals[i], vl, (uint64_t)i);
        int kl = snprintf(keys[i], sizeof keys[i], "key%d", i);
        recs[i] = (alog_record){0, 1000000 + i * 5 - (i % 3) * 7, i % 4 ? keys[i] : NULL,
                                i % 4 ? (size_t)kl : 0, i % 9 == 4 ? NULL : vals[i], vl,
                                hdrs, (size_t)(i % 3)};
    }
    recs[N - 1].value = big; /* one large compressible value */
    recs[N - 1].value_len = 200000;
    abuf plain = {0}, out = {0}, scratch = {0}, dec = {0}, hb = {0};
    TU_OK(batch_encode(&plain, recs, N, ALOG_COMPRESSION_NONE, 0, 1 << 24, &scratch));
    size_t records_size = plain.len - BATCH_HEADER_SIZE;
    for (size_t ci = 0; ci < NCODECS; ci++) {
        alog_compression codec = codecs[ci];
        out.len = 0;
        TU_OK(batch_encode(&out, recs, N, codec, 0, 1 << 24, &scratch));
        batch_header h;
        char why[160];
        assert_null(batch_check(out.data, out.len, &h, why, sizeof why));
        assert_int_equal(h.attributes & BATCH_ATTR_CODEC_MASK, (int)codec);
        assert_int_equal(h.records_count, N);
        assert_int_equal(batch_size(&h), out.len);
        if (codec != ALOG_COMPRESSION_NONE) assert_true(out.len < plain.len);
        /* The compressed blob is exactly the codec's form of the plain records. */
        if (codec != ALOG_COMPRESSION_NONE) {
            abuf raw = {0};
            TU_OK(codec_decompress(codec, out.data + BATCH_HEADER_SIZE,
                                   out.len - BATCH_HEADER_SIZE, records_size, &raw));
            assert_int_equal(raw.len, records_size);
            assert_memory_equal(raw.data, plain.data + BATCH_HEADER_SIZE, records_size);
            abuf_free(&raw);
        }
        int64_t maxts;
        TU_OK(batch_validate_records(out.data, &h, &dec, records_size, 1, &maxts));
        assert_int_equal(maxts, h.max_timestamp);
        rec_iter it;
        TU_OK(rec_iter_init(&it, out.data, &h, &dec, records_size));
        alog_record r;
        const char *w;
        for (int i = 0; i < N; i++) {
            assert_int_equal(rec_iter_next(&it, &r, &hb, &w), 1);
            assert_int_equal(r.offset, i);
            assert_int_equal(r.timestamp, recs[i].timestamp);
            assert_true((r.key == NULL) == (recs[i].key == NULL));
            assert_int_equal(r.key_len, recs[i].key_len);
            if (r.key_len) assert_memory_equal(r.key, recs[i].key, r.key_len);
            assert_true((r.value == NULL) == (recs[i].value == NULL));
            if (r.value) {
                assert_int_equal(r.value_len, recs[i].value_len);
                if (r.value_len) assert_memory_equal(r.value, recs[i].value, r.value_len);
            }
            assert_int_equal(r.header_count, recs[i].header_count);
            for (size_t j = 0; j < r.header_count; j++) {
                assert_int_equal(r.headers[j].key_len, hdrs[j].key_len);
                assert_memory_equal(r.headers[j].key, hdrs[j].key, hdrs[j].key_len);
                assert_true((r.headers[j].value == NULL) == (hdrs[j].value == NULL));
                if (hdrs[j].value) assert_memory_equal(r.headers[j].value, hdrs[j].value, 3);
            }
        }
        assert_int_equal(rec_iter_next(&it, &r, &hb, &w), 0);
        if (codec == ALOG_COMPRESSION_NONE) continue;
        /* One byte less room than the records need: refused, as a corrupt batch. */
        assert_int_equal(rec_iter_init(&it, out.data, &h, &dec, records_size - 1), ALOG_ECORRUPT);
        assert_int_equal(batch_validate_records(out.data, &h, &dec, records_size - 1, 1, NULL),
                         ALOG_ECORRUPT);
        /* A damaged compressed body behind a recomputed (valid) CRC, as a buggy producer
         * could send: an error or records that fail their framing, never a crash. */
        for (size_t pos = BATCH_HEADER_SIZE; pos < out.len; pos += (out.len - BATCH_HEADER_SIZE) / 37 + 1) {
            uint8_t *copy = xmalloc(out.len);
            memcpy(copy, out.data, out.len);
            copy[pos] ^= 0x5a;
            be32_store(copy + BATCH_OFF_CRC, crc32c(copy + BATCH_CRC_START, out.len - BATCH_CRC_START));
            assert_null(batch_check(copy, out.len, &h, why, sizeof why));
            alog_err e = batch_validate_records(copy, &h, &dec, records_size * 2, 1, NULL);
            assert_true(e == ALOG_OK || e == ALOG_ECORRUPT);
            if (rec_iter_init(&it, copy, &h, &dec, records_size * 2) == ALOG_OK) {
                int rc;
                int count = 0;
                while ((rc = rec_iter_next(&it, &r, &hb, &w)) == 1) count++;
                assert_true(count <= N);
                if (e != ALOG_OK) assert_int_equal(rc, -1);
            }
            free(copy);
        }
    }
    free(big);
    abuf_free(&plain);
    abuf_free(&out);
    abuf_free(&scratch);
    abuf_free(&dec);
    abuf_free(&hb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_unknown_codec),
        cmocka_unit_test(test_round_trip_all_sizes),
        cmocka_unit_test(test_bomb_is_refused_without_allocating),
        cmocka_unit_test(test_truncated_inputs_are_errors),
        cmocka_unit_test(test_bit_flips_and_garbage_never_crash),
        cmocka_unit_test(test_snappy_xerial_and_raw),
        cmocka_unit_test(test_lz4_frames),
        cmocka_unit_test(test_gzip_members_and_wrappers),
        cmocka_unit_test(test_zstd_frames),
        cmocka_unit_test(test_batches_with_each_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
