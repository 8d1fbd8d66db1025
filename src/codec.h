/*
 * codec.h -- Kafka's compression codecs for the records section of a RecordBatch v2.
 *
 * A compressed v2 batch holds its records as one compressed blob after the 61-byte
 * header (attributes bits 0-2 name the codec). The framings are Kafka's:
 *   gzip   RFC 1952 gzip stream (zlib)
 *   snappy either raw snappy, or the xerial/snappy-java framing Kafka's Java client
 *          writes (magic "\x82SNAPPY\0", version, compat, then blocks each with a 4-byte
 *          big-endian length); both are accepted on decompress, xerial is written
 *   lz4    the standard LZ4 frame format (liblz4 frame API)
 *   zstd   a standard zstd frame (content size may be absent)
 */
#ifndef ALOG_CODEC_H
#define ALOG_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "alog.h"
#include "buf.h"

/* Appends the compressed form of in[0..len) to out. ALOG_EUNSUPPORTED for an unknown
 * codec, ALOG_ENOMEM, ALOG_EIO if the library fails. */
alog_err codec_compress(alog_compression codec, const uint8_t *in, size_t len, abuf *out);

/* Appends the decompressed form of in[0..len) to out, refusing to produce more than
 * max_out bytes (a decompression bomb is ALOG_ECORRUPT, as is malformed input).
 * Safe on any input bytes: never reads outside in[0..len). */
alog_err codec_decompress(alog_compression codec, const uint8_t *in, size_t len,
                          size_t max_out, abuf *out);

/* "none", "gzip", "snappy", "lz4", "zstd"; NULL for an unknown value. */
const char *codec_name(alog_compression codec);
/* Parses a codec name; -1 if unknown. */
int codec_from_name(const char *name);

#endif
