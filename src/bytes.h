/*
 * bytes.h -- big-endian integers and Kafka's zigzag varints.
 *
 * Kafka's RecordBatch header is big-endian; its records use ZigZag-encoded LEB128
 * varints (varint for int32, varlong for int64), at most 5 and 10 bytes. Decoders take
 * an explicit end pointer and fail rather than read past it: they parse untrusted bytes.
 */
#ifndef ALOG_BYTES_H
#define ALOG_BYTES_H

#include <stddef.h>
#include <stdint.h>

static inline uint16_t be16_load(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t be32_load(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t be64_load(const uint8_t *p) {
    return ((uint64_t)be32_load(p) << 32) | be32_load(p + 4);
}
static inline void be16_store(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void be32_store(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void be64_store(uint8_t *p, uint64_t v) {
    be32_store(p, (uint32_t)(v >> 32));
    be32_store(p + 4, (uint32_t)v);
}

/* Unsigned LEB128 size of v. */
static inline size_t uvarint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) { v >>= 7; n++; }
    return n;
}
static inline uint64_t zigzag64(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t unzigzag64(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

static inline size_t varlong_size(int64_t v) { return uvarint_size(zigzag64(v)); }

/* Writes v as a zigzag varint at p; returns the bytes written (caller ensured room). */
static inline size_t varlong_put(uint8_t *p, int64_t v) {
    uint64_t u = zigzag64(v);
    size_t n = 0;
    while (u >= 0x80) {
        p[n++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    p[n++] = (uint8_t)u;
    return n;
}

/* Reads a zigzag varint of at most max_bytes (5 for varint, 10 for varlong) from
 * *pp, not past end. Returns 0 and advances *pp on success, -1 on malformed input. */
static inline int varlong_get(const uint8_t **pp, const uint8_t *end, int max_bytes,
                              int64_t *out) {
    const uint8_t *p = *pp;
    uint64_t u = 0;
    for (int i = 0; i < max_bytes; i++) {
        if (p >= end) return -1;
        uint8_t b = *p++;
        u |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            int64_t v = unzigzag64(u);
            if (max_bytes == 5 && (v > INT32_MAX || v < INT32_MIN)) return -1;
            *out = v;
            *pp = p;
            return 0;
        }
    }
    return -1;
}

#endif
