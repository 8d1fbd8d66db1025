/*
 * proto.h -- the primitive types of the Kafka wire protocol, read and written through
 * one bounds-checked stream (kio), plus the byte buffer and the arena they use.
 *
 * Every message schema in kafka_msgs.c is written once, as a function that walks the
 * fields through a kio: in reading mode each call decodes the next field into the
 * variable it is given, in writing mode it encodes that variable. So the decoder and
 * the encoder of a message cannot disagree about field order or presence.
 *
 * Reading parses untrusted bytes from the network: every read checks the bytes that
 * are left, every length is checked against them before it is used, and every array
 * count is checked against the smallest size its elements can take on the wire before
 * anything is allocated, so memory is bounded by a small multiple of the request size.
 * The first failure is sticky: later calls do nothing and return -1, and err holds a
 * message with the byte position ("truncated: an int32 needs 4 bytes at byte 37 of
 * 40"). Decoded strings and byte fields point into the input; they live as long as it.
 */
#ifndef ALOGD_PROTO_H
#define ALOGD_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer. oom is set (and stays set) when an allocation failed. */
typedef struct kbuf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int oom;
} kbuf;

/* Room for extra more bytes past len; 0 on success, -1 (and oom set) on failure. */
int kbuf_reserve(kbuf *b, size_t extra);
int kbuf_append(kbuf *b, const void *p, size_t n);
void kbuf_free(kbuf *b);

/* A bump allocator for the arrays of one decoded message, freed all at once.
 * limit bounds the total bytes it hands out (0: no limit). */
typedef struct karena_chunk karena_chunk;
typedef struct karena {
    karena_chunk *chunks;
    size_t used;  /* bytes handed out so far */
    size_t limit; /* 0 = none */
} karena;

void karena_init(karena *a, size_t limit);
/* n zeroed bytes aligned for any field type, or NULL (out of memory, or past limit). */
void *karena_alloc(karena *a, size_t n);
void karena_free(karena *a);

/* A string or byte field. len -1 is null (p NULL); otherwise p[0..len) (p may be NULL
 * when len is 0). Strings are not NUL-terminated. */
typedef struct kstr {
    const char *p;
    int32_t len;
} kstr;
typedef struct kbytes {
    const uint8_t *p;
    int32_t len;
} kbytes;

#define KSTR_NULL ((kstr){NULL, -1})
/* A kstr for a C string literal or variable (not null). */
kstr kstr_c(const char *s);
/* 1 if a equals the C string s. */
int kstr_eq(kstr a, const char *s);

typedef struct kio {
    int writing;
    /* reading */
    const uint8_t *start, *p, *end;
    karena *arena;
    /* writing */
    kbuf *out;
    int failed;
    char err[200];
} kio;

void kio_reader(kio *io, const void *p, size_t n, karena *arena);
void kio_writer(kio *io, kbuf *out);
/* Marks the stream failed with a message (printf format) and the byte position;
 * returns -1. Only the first failure is kept. */
int kio_fail(kio *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bytes left to read. */
size_t kio_left(const kio *io);
/* Reading: fails unless every byte was consumed ("N unexpected bytes after ..."). */
int kio_expect_end(kio *io, const char *what);

/* Fixed-size integers (big-endian). bool is an int8 that must be 0 or 1 on read. */
int kio_i8(kio *io, int8_t *v);
int kio_i16(kio *io, int16_t *v);
int kio_i32(kio *io, int32_t *v);
int kio_i64(kio *io, int64_t *v);
int kio_bool(kio *io, int8_t *v);
/* Unsigned LEB128 (flexible versions' lengths and tags), at most 5 bytes, 32 bits. */
int kio_uvarint(kio *io, uint32_t *v);

/* STRING / NULLABLE_STRING: int16 length (-1 null), then bytes. Writing a value longer
 * than 32767 bytes fails. nullable 0 rejects a null on read and write. */
int kio_string(kio *io, kstr *s, int nullable);
/* COMPACT_(NULLABLE_)STRING: uvarint length+1 (0 null). */
int kio_compact_string(kio *io, kstr *s, int nullable);
/* BYTES / NULLABLE_BYTES / RECORDS: int32 length (-1 null), then bytes. */
int kio_bytes(kio *io, kbytes *b, int nullable);

/* ARRAY / COMPACT_ARRAY header. Reading: reads the count into *n (-1 for null, only
 * if nullable) and, for n > 0, allocates *elems as n zeroed elements of elem_size from
 * the arena, after checking that n elements of at least min_wire bytes each fit in
 * what is left. Writing: writes *n (-1 writes null; *elems is not touched). */
int kio_array(kio *io, int32_t *n, void **elems, size_t elem_size, size_t min_wire, int nullable);
int kio_compact_array(kio *io, int32_t *n, void **elems, size_t elem_size, size_t min_wire,
                      int nullable);

/* A tagged-field section of a flexible version. Reading: skips every field (their
 * tags are all unknown to us). Writing: writes an empty section. */
int kio_tagged_fields(kio *io);

/* Reserves 4 bytes in the output for a size to be patched later; returns their
 * position. kio_patch_size writes there the bytes written after them plus extra (bytes
 * of the message sent from elsewhere: a Fetch's out-of-line records); a total above
 * INT32_MAX fails. */
size_t kio_size_placeholder(kio *io);
void kio_patch_size(kio *io, size_t at, uint64_t extra);

/* Raw bytes (writing only), for payloads already in wire form. */
int kio_raw(kio *io, const void *p, size_t n);

#endif
