/*
 * codec.c -- Kafka's four compression codecs (gzip, snappy, lz4, zstd) for the records
 * blob of a compressed RecordBatch v2, on top of zlib, snappy-c, liblz4's frame API and
 * libzstd. It owns the exact framing of each codec, so that what alog writes is what
 * Kafka's Java producer writes (readable by every Kafka client), and what alog reads is
 * everything the common clients write.
 *
 * Decompression parses untrusted bytes (segment files, batches from the network), so it
 * is built around one bounded output "sink": every decoder writes straight into the
 * caller's abuf, but is never offered more than max_out + 1 bytes in total. Producing
 * that one extra byte is how a decompression bomb is detected, without ever allocating
 * more than about max_out. The libraries all take explicit input lengths and are
 * documented safe on corrupt input; around them nothing here reads past in[0..len).
 * On any failure out->len is put back where it was (the bytes past it are unspecified),
 * so a caller's buffer never holds a half-decoded tail.
 *
 * Framing decisions, codec by codec:
 *
 *   gzip   Written as one RFC 1952 member (deflate level 6, zlib's default and Kafka's),
 *          like Kafka's GZIPOutputStream and librdkafka (deflateInit2 15+16). Read with
 *          windowBits 15+32, so a zlib-wrapped stream is accepted too. Concatenated
 *          members are decoded one after another (as gzip(1) and Java's GZIPInputStream
 *          do), but strictly: every byte after a member must start another valid member.
 *          Java silently ignores trailing garbage; we call it corrupt, since no client
 *          writes it and the log's job is to notice damage.
 *
 *   snappy Written in the xerial/snappy-java framing, because that is what Kafka's Java
 *          producer writes (SnappyFactory wraps a snappy-java SnappyOutputStream): the
 *          8-byte magic "\x82SNAPPY\0", int32 BE version 1, int32 BE min-compatible
 *          version 1, then blocks of at most 32 KiB of input (snappy-java's default
 *          block size), each an int32 BE compressed length and a raw snappy block.
 *          Every client reads it: Java natively, librdkafka via
 *          rd_kafka_snappy_java_uncompress. librdkafka itself *writes* bare raw snappy
 *          (rd_kafka_msgset_writer_compress_snappy calls rd_kafka_snappy_compress_iov,
 *          no framing), which Java's SnappyInputStream only reads through its
 *          "no magic, so treat it all as one raw block" fallback; raw would be a few
 *          bytes smaller but xerial is the reference client's format. Decompression
 *          accepts both: input starting with the magic is xerial (a raw snappy stream
 *          can never start with it: the varint "\x82S" is followed by 'N', a copy tag,
 *          and a stream cannot start with a copy), anything else is one raw block. Like
 *          librdkafka we do not interpret the version fields; like snappy-java we accept
 *          a header with no blocks (empty output) and a second xerial header where a
 *          block length would be (snappy-java reads concatenated streams). A 0-byte
 *          input is neither framing and is corrupt. Note xerial has no end marker: a
 *          stream cut exactly at a block boundary decodes (shorter); the batch CRC is
 *          what catches that. Raw blocks declare their size up front, so a declared size
 *          above the limit, or above the 64/3 expansion a snappy block can reach at most
 *          (a 3-byte copy yields at most 64 bytes), is refused before any allocation.
 *
 *   lz4    The standard LZ4 frame format (LZ4F), with a correct header checksum (magic
 *          v0/v1 Kafka had a broken one; v2 batches never do). Written the way Kafka's
 *          Lz4BlockOutputStream does: 64 KiB independent blocks, no block or content
 *          checksum, no content size. Independent blocks are required: Java's reader
 *          refuses linked ones, and LZ4F's default is linked. Read with LZ4F_decompress
 *          in a loop; all LZ4F features are accepted (checksums are verified), as are
 *          concatenated and skippable frames.
 *
 *   zstd   Written with ZSTD_compress at level 3 (zstd's and Kafka's default), which
 *          records the content size. Read with ZSTD_decompressStream, so frames without a
 *          content size (Kafka's Java producer streams and writes none) work, as do
 *          concatenated and skippable frames. The window limit is libzstd's default
 *          (2^27), the same as Kafka's and librdkafka's readers.
 *
 * ALOG_COMPRESSION_NONE is a plain copy in both directions (still bounded by max_out).
 */
#include "codec.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "bytes.h"
#include "error.h"

/* Output is grown at least this much at a time while streaming. */
#define SINK_CHUNK ((size_t)64 * 1024)

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16
#define XERIAL_VERSION 1
#define XERIAL_MIN_COMPAT 1
#define XERIAL_BLOCK_SIZE ((size_t)32 * 1024)

/* ---- names ------------------------------------------------------------------- */

static const char *const codec_names[] = {"none", "gzip", "snappy", "lz4", "zstd"};
#define CODEC_COUNT (sizeof codec_names / sizeof codec_names[0])

const char *codec_name(alog_compression codec) {
    if ((unsigned)codec >= CODEC_COUNT) return NULL;
    return codec_names[codec];
}

int codec_from_name(const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < CODEC_COUNT; i++)
        if (strcmp(name, codec_names[i]) == 0) return (int)i;
    return -1;
}

/* ---- the bounded output sink -------------------------------------------------- */

typedef struct sink {
    abuf *out;
    size_t start;   /* out->len on entry: output produced = out->len - start */
    size_t max_out; /* the caller's limit */
    const char *name;
} sink;

static size_t sink_produced(const sink *s) { return s->out->len - s->start; }

/* Makes room for the decoder to write into: *dst gets the write position and *n how
 * much it may write, at most max_out + 1 - produced in total (the +1 is what exposes a
 * bomb) and at least 1. want is how much is worth reserving now. */
static alog_err sink_space(sink *s, size_t want, uint8_t **dst, size_t *n) {
    size_t room = s->max_out - sink_produced(s);
    if (room < SIZE_MAX) room++;
    if (want < 1) want = 1;
    if (want > room) want = room;
    if (s->out->cap - s->out->len < want && abuf_reserve(s->out, want) != ALOG_OK)
        return err_set(ALOG_ENOMEM, 0, "%s: out of memory growing the output past %zu bytes",
                       s->name, sink_produced(s));
    size_t avail = s->out->cap - s->out->len;
    *n = avail < room ? avail : room;
    *dst = s->out->data + s->out->len;
    return ALOG_OK;
}

/* Call after the decoder has added its output to out->len. */
static alog_err sink_check(const sink *s) {
    if (sink_produced(s) > s->max_out)
        return err_set(ALOG_ECORRUPT, 0, "%s: decompressed size exceeds limit of %zu bytes",
                       s->name, s->max_out);
    return ALOG_OK;
}

static alog_err too_big(const sink *s) {
    return err_set(ALOG_ECORRUPT, 0, "%s: decompressed size exceeds limit of %zu bytes",
                   s->name, s->max_out);
}

static alog_err nomem(const char *name) {
    return err_set(ALOG_ENOMEM, 0, "%s: out of memory", name);
}

/* ---- gzip (zlib) -------------------------------------------------------------- */

static uInt uint_chunk(size_t n) { return n > UINT_MAX ? UINT_MAX : (uInt)n; }

static alog_err gzip_compress(const uint8_t *in, size_t len, abuf *out) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int r = deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    if (r == Z_MEM_ERROR) return nomem("gzip");
    if (r != Z_OK) return err_set(ALOG_EIO, 0, "gzip: deflateInit2 failed (%d)", r);
    alog_err e = ALOG_OK;
    uLong bound = deflateBound(&zs, (uLong)len);
    if (abuf_reserve(out, (size_t)bound) != ALOG_OK) {
        e = nomem("gzip");
        goto done;
    }
    size_t fed = 0;
    for (;;) {
        if (zs.avail_in == 0 && fed < len) {
            zs.next_in = (Bytef *)(uintptr_t)(in + fed);
            zs.avail_in = uint_chunk(len - fed);
            fed += zs.avail_in;
        }
        if (out->cap == out->len && abuf_reserve(out, SINK_CHUNK) != ALOG_OK) {
            e = nomem("gzip");
            goto done;
        }
        zs.next_out = out->data + out->len;
        zs.avail_out = uint_chunk(out->cap - out->len);
        uInt before = zs.avail_out;
        r = deflate(&zs, fed == len ? Z_FINISH : Z_NO_FLUSH);
        out->len += before - zs.avail_out;
        if (r == Z_STREAM_END) break;
        if (r != Z_OK && r != Z_BUF_ERROR) {
            e = err_set(ALOG_EIO, 0, "gzip: deflate failed: %s (%d)", zs.msg ? zs.msg : "", r);
            goto done;
        }
    }
done:
    deflateEnd(&zs);
    return e;
}

static alog_err gzip_decompress(const uint8_t *in, size_t len, sink *s) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int r = inflateInit2(&zs, 15 + 32); /* gzip or zlib header, detected */
    if (r == Z_MEM_ERROR) return nomem("gzip");
    if (r != Z_OK) return err_set(ALOG_EIO, 0, "gzip: inflateInit2 failed (%d)", r);
    alog_err e = ALOG_OK;
    size_t fed = 0;
    unsigned members = 0;
    for (;;) {
        if (zs.avail_in == 0 && fed < len) {
            zs.next_in = (Bytef *)(uintptr_t)(in + fed);
            zs.avail_in = uint_chunk(len - fed);
            fed += zs.avail_in;
        }
        uint8_t *dst;
        size_t n;
        if ((e = sink_space(s, SINK_CHUNK, &dst, &n))) goto done;
        zs.next_out = dst;
        zs.avail_out = uint_chunk(n);
        uInt before = zs.avail_out;
        r = inflate(&zs, Z_NO_FLUSH);
        s->out->len += before - zs.avail_out;
        if ((e = sink_check(s))) goto done;
        if (r == Z_STREAM_END) {
            members++;
            if (zs.avail_in == 0 && fed == len) break; /* all input used: done */
            /* More input: it must be another member. */
            if ((r = inflateReset(&zs)) != Z_OK) {
                e = err_set(ALOG_EIO, 0, "gzip: inflateReset failed (%d)", r);
                goto done;
            }
            continue;
        }
        if (r == Z_OK) continue;
        size_t pos = fed - zs.avail_in;
        switch (r) {
        case Z_BUF_ERROR: /* no progress possible: we always give output room, so input ran out */
            e = err_set(ALOG_ECORRUPT, 0,
                        "gzip: truncated input: the %zu bytes end inside member %u", len,
                        members + 1);
            break;
        case Z_MEM_ERROR: e = nomem("gzip"); break;
        case Z_NEED_DICT:
            e = err_set(ALOG_ECORRUPT, 0, "gzip: stream needs a preset dictionary (at byte %zu)",
                        pos);
            break;
        default: /* Z_DATA_ERROR, Z_STREAM_ERROR */
            e = err_set(ALOG_ECORRUPT, 0, "gzip: invalid data in member %u near byte %zu: %s",
                        members + 1, pos, zs.msg ? zs.msg : "unknown zlib error");
            break;
        }
        goto done;
    }
done:
    inflateEnd(&zs);
    return e;
}

/* ---- snappy ------------------------------------------------------------------- */

static alog_err snappy_compress_xerial(const uint8_t *in, size_t len, abuf *out) {
    if (abuf_reserve(out, XERIAL_HEADER_SIZE) != ALOG_OK) return nomem("snappy");
    uint8_t *h = out->data + out->len;
    memcpy(h, xerial_magic, sizeof xerial_magic);
    be32_store(h + 8, XERIAL_VERSION);
    be32_store(h + 12, XERIAL_MIN_COMPAT);
    out->len += XERIAL_HEADER_SIZE;
    for (size_t pos = 0; pos < len;) {
        size_t blk = len - pos < XERIAL_BLOCK_SIZE ? len - pos : XERIAL_BLOCK_SIZE;
        size_t clen = snappy_max_compressed_length(blk);
        if (abuf_reserve(out, 4 + clen) != ALOG_OK) return nomem("snappy");
        uint8_t *dst = out->data + out->len;
        snappy_status st = snappy_compress((const char *)in + pos, blk, (char *)dst + 4, &clen);
        if (st != SNAPPY_OK || clen > UINT32_MAX)
            return err_set(ALOG_EIO, 0, "snappy: snappy_compress failed (status %d)", (int)st);
        be32_store(dst, (uint32_t)clen);
        out->len += 4 + clen;
        pos += blk;
    }
    return ALOG_OK;
}

static const char *snappy_status_name(snappy_status st) {
    switch (st) {
    case SNAPPY_OK: return "ok";
    case SNAPPY_INVALID_INPUT: return "invalid input";
    case SNAPPY_BUFFER_TOO_SMALL: return "buffer too small";
    }
    return "unknown status";
}

/* Decodes one raw snappy block p[0..n) into the sink. what names it in messages. */
static alog_err snappy_block(const uint8_t *p, size_t n, sink *s, const char *what) {
    size_t ulen;
    snappy_status st = snappy_uncompressed_length((const char *)p, n, &ulen);
    if (st != SNAPPY_OK)
        return err_set(ALOG_ECORRUPT, 0, "snappy: %s: bad length preamble (%s)", what,
                       snappy_status_name(st));
    if (ulen > s->max_out - sink_produced(s)) return too_big(s);
    /* A snappy element expands at most 64/3 times (3-byte copy of 64 bytes). */
    if (ulen / 22 > n)
        return err_set(ALOG_ECORRUPT, 0,
                       "snappy: %s declares %zu bytes, more than its %zu bytes can hold", what,
                       ulen, n);
    if (ulen == 0) {
        /* Nothing to write. The only valid empty block is its 1-byte preamble; anything
         * after it would be elements producing bytes it does not declare. */
        if (n != 1)
            return err_set(ALOG_ECORRUPT, 0, "snappy: %s: %zu bytes of data after an empty "
                           "block's preamble", what, n - 1);
        return ALOG_OK;
    }
    uint8_t *dst;
    size_t room;
    alog_err e = sink_space(s, ulen, &dst, &room);
    if (e) return e;
    if (room < ulen) return too_big(s); /* cannot happen: ulen <= max_out - produced */
    size_t got = ulen;
    st = snappy_uncompress((const char *)p, n, (char *)dst, &got);
    if (st != SNAPPY_OK || got != ulen)
        return err_set(ALOG_ECORRUPT, 0, "snappy: %s: %s", what, snappy_status_name(st));
    s->out->len += got;
    return sink_check(s);
}

static alog_err snappy_decompress(const uint8_t *in, size_t len, sink *s) {
    if (len < sizeof xerial_magic || memcmp(in, xerial_magic, sizeof xerial_magic) != 0)
        return snappy_block(in, len, s, "raw block");
    /* xerial/snappy-java framing */
    size_t pos = 0, blocks = 0;
    char what[64];
    for (;;) {
        /* At pos: a header (magic, version, compat). Versions are not interpreted. */
        if (len - pos < XERIAL_HEADER_SIZE)
            return err_set(ALOG_ECORRUPT, 0,
                           "snappy: truncated xerial header at byte %zu (%zu of %d bytes)", pos,
                           len - pos, XERIAL_HEADER_SIZE);
        pos += XERIAL_HEADER_SIZE;
        while (pos < len) {
            if (len - pos >= XERIAL_HEADER_SIZE &&
                memcmp(in + pos, xerial_magic, sizeof xerial_magic) == 0)
                break; /* a concatenated stream's header */
            if (len - pos < 4)
                return err_set(ALOG_ECORRUPT, 0,
                               "snappy: truncated xerial block length at byte %zu", pos);
            size_t clen = be32_load(in + pos);
            pos += 4;
            if (clen > len - pos)
                return err_set(ALOG_ECORRUPT, 0,
                               "snappy: xerial block %zu at byte %zu claims %zu bytes, only %zu "
                               "remain",
                               blocks, pos - 4, clen, len - pos);
            snprintf(what, sizeof what, "xerial block %zu at byte %zu", blocks, pos - 4);
            alog_err e = snappy_block(in + pos, clen, s, what);
            if (e) return e;
            pos += clen;
            blocks++;
        }
        if (pos == len) return ALOG_OK;
    }
}

/* ---- lz4 (frame format) -------------------------------------------------------- */

static alog_err lz4_compress(const uint8_t *in, size_t len, abuf *out) {
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
    prefs.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum;
    prefs.compressionLevel = 0; /* default (fast) */
    size_t bound = LZ4F_compressFrameBound(len, &prefs);
    if (LZ4F_isError(bound))
        return err_set(ALOG_EIO, 0, "lz4: %s", LZ4F_getErrorName(bound));
    if (abuf_reserve(out, bound) != ALOG_OK) return nomem("lz4");
    size_t r = LZ4F_compressFrame(out->data + out->len, bound, in, len, &prefs);
    if (LZ4F_isError(r)) return err_set(ALOG_EIO, 0, "lz4: %s", LZ4F_getErrorName(r));
    out->len += r;
    return ALOG_OK;
}

static alog_err lz4_decompress(const uint8_t *in, size_t len, sink *s) {
    LZ4F_dctx *dctx = NULL;
    size_t r = LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION);
    if (LZ4F_isError(r)) return nomem("lz4");
    alog_err e = ALOG_OK;
    size_t pos = 0;
    unsigned frames = 0;
    for (;;) {
        uint8_t *dst;
        size_t n;
        if ((e = sink_space(s, SINK_CHUNK, &dst, &n))) break;
        size_t src_n = len - pos, dst_n = n;
        r = LZ4F_decompress(dctx, dst, &dst_n, in + pos, &src_n, NULL);
        pos += src_n;
        s->out->len += dst_n;
        if (LZ4F_isError(r)) {
            const char *msg = LZ4F_getErrorName(r);
            if (strcmp(msg, "ERROR_allocation_failed") == 0)
                e = nomem("lz4");
            else
                e = err_set(ALOG_ECORRUPT, 0, "lz4: invalid frame %u near byte %zu: %s",
                            frames + 1, pos, msg);
            break;
        }
        if ((e = sink_check(s))) break;
        if (r == 0) { /* a frame ended (and was fully flushed) */
            frames++;
            if (pos == len) break;
            continue; /* the context starts over on the next frame */
        }
        if (src_n == 0 && dst_n == 0) {
            /* No progress with output room available: the input has run out. */
            e = err_set(ALOG_ECORRUPT, 0,
                        "lz4: truncated input: the %zu bytes end inside frame %u", len,
                        frames + 1);
            break;
        }
    }
    LZ4F_freeDecompressionContext(dctx);
    return e;
}

/* ---- zstd --------------------------------------------------------------------- */

#define ZSTD_LEVEL 3

static alog_err zstd_compress(const uint8_t *in, size_t len, abuf *out) {
    size_t bound = ZSTD_compressBound(len);
    if (ZSTD_isError(bound)) return err_set(ALOG_EIO, 0, "zstd: %s", ZSTD_getErrorName(bound));
    if (abuf_reserve(out, bound) != ALOG_OK) return nomem("zstd");
    size_t r = ZSTD_compress(out->data + out->len, bound, in, len, ZSTD_LEVEL);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation) return nomem("zstd");
        return err_set(ALOG_EIO, 0, "zstd: %s", ZSTD_getErrorName(r));
    }
    out->len += r;
    return ALOG_OK;
}

static alog_err zstd_decompress(const uint8_t *in, size_t len, sink *s) {
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx) return nomem("zstd");
    alog_err e = ALOG_OK;
    ZSTD_inBuffer ib = {in, len, 0};
    unsigned frames = 0;
    for (;;) {
        uint8_t *dst;
        size_t n;
        if ((e = sink_space(s, SINK_CHUNK, &dst, &n))) break;
        ZSTD_outBuffer ob = {dst, n, 0};
        size_t r = ZSTD_decompressStream(dctx, &ob, &ib);
        s->out->len += ob.pos;
        if (ZSTD_isError(r)) {
            if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
                e = nomem("zstd");
            else
                e = err_set(ALOG_ECORRUPT, 0, "zstd: invalid frame %u near byte %zu: %s",
                            frames + 1, ib.pos, ZSTD_getErrorName(r));
            break;
        }
        if ((e = sink_check(s))) break;
        if (r == 0) { /* a frame ended and is fully flushed */
            frames++;
            if (ib.pos == ib.size) break;
            continue; /* the next frame follows */
        }
        if (ib.pos == ib.size && ob.pos < ob.size) {
            /* Output room left over and no input: the frame is incomplete. */
            e = err_set(ALOG_ECORRUPT, 0,
                        "zstd: truncated input: the %zu bytes end inside frame %u", len,
                        frames + 1);
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    return e;
}

/* ---- entry points ------------------------------------------------------------- */

alog_err codec_compress(alog_compression codec, const uint8_t *in, size_t len, abuf *out) {
    if (!out || (!in && len)) return err_set(ALOG_EINVAL, 0, "codec_compress: NULL buffer");
    if (!in) in = (const uint8_t *)"";
    size_t start = out->len;
    alog_err e;
    switch (codec) {
    case ALOG_COMPRESSION_NONE:
        e = abuf_append(out, in, len) ? nomem("none") : ALOG_OK;
        break;
    case ALOG_COMPRESSION_GZIP: e = gzip_compress(in, len, out); break;
    case ALOG_COMPRESSION_SNAPPY: e = snappy_compress_xerial(in, len, out); break;
    case ALOG_COMPRESSION_LZ4: e = lz4_compress(in, len, out); break;
    case ALOG_COMPRESSION_ZSTD: e = zstd_compress(in, len, out); break;
    default:
        return err_set(ALOG_EUNSUPPORTED, 0, "unknown compression codec %d", (int)codec);
    }
    if (e) out->len = start;
    return e;
}

alog_err codec_decompress(alog_compression codec, const uint8_t *in, size_t len,
                          size_t max_out, abuf *out) {
    if (!out || (!in && len)) return err_set(ALOG_EINVAL, 0, "codec_decompress: NULL buffer");
    if (!in) in = (const uint8_t *)"";
    const char *name = codec_name(codec);
    if (!name) return err_set(ALOG_EUNSUPPORTED, 0, "unknown compression codec %d", (int)codec);
    sink s = {out, out->len, max_out, name};
    alog_err e;
    switch (codec) {
    case ALOG_COMPRESSION_NONE:
        if (len > max_out)
            e = too_big(&s);
        else
            e = abuf_append(out, in, len) ? nomem("none") : ALOG_OK;
        break;
    case ALOG_COMPRESSION_GZIP: e = gzip_decompress(in, len, &s); break;
    case ALOG_COMPRESSION_SNAPPY: e = snappy_decompress(in, len, &s); break;
    case ALOG_COMPRESSION_LZ4: e = lz4_decompress(in, len, &s); break;
    case ALOG_COMPRESSION_ZSTD: e = zstd_decompress(in, len, &s); break;
    default: e = err_set(ALOG_EUNSUPPORTED, 0, "unknown compression codec %d", (int)codec);
    }
    if (e) out->len = s.start;
    return e;
}
