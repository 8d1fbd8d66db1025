/*
 * proto.c -- the Kafka protocol's primitive types (int8..int64, unsigned varints,
 * strings, bytes, arrays, their compact forms and tagged fields), read and written
 * through one bounds-checked stream; and the byte buffer and arena that go with it.
 *
 * The encodings, from the Kafka protocol guide and the message schemas
 * (clients/src/main/resources/common/message/<Name>.json in apache/kafka):
 *   INT8/16/32/64         big-endian two's complement
 *   BOOLEAN               one byte, 0 or 1
 *   UNSIGNED_VARINT       LEB128, 7 bits a byte, low group first (at most 5 bytes here)
 *   STRING                INT16 length N >= 0, then N bytes of UTF-8
 *   NULLABLE_STRING       the same; length -1 is null
 *   COMPACT_STRING        UNSIGNED_VARINT N+1, then N bytes; 0 is null (nullable form)
 *   BYTES, RECORDS        INT32 length N (-1 null where nullable), then N bytes
 *   ARRAY                 INT32 count N (-1 null where nullable), then N elements
 *   COMPACT_ARRAY         UNSIGNED_VARINT N+1 (0 null), then N elements
 *   TAGGED_FIELDS         UNSIGNED_VARINT count, then per field: UNSIGNED_VARINT tag,
 *                         UNSIGNED_VARINT size, size bytes
 * Non-flexible message versions use the first forms; flexible ones ("flexibleVersions"
 * in the schema) use the compact forms and end every struct with TAGGED_FIELDS.
 *
 * Why one stream for both directions: see proto.h. Why the arena: a decoded request is
 * a tree of arrays whose sizes come from the peer; the arena frees them in one call and
 * its limit caps what one request may make us allocate.
 */
#include "proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- kbuf -------------------------------------------------------------------------- */

int kbuf_reserve(kbuf *b, size_t extra) {
    if (b->oom) return -1;
    if (b->cap - b->len >= extra) return 0;
    size_t need = b->len + extra;
    if (need < b->len) {
        b->oom = 1;
        return -1;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int kbuf_append(kbuf *b, const void *p, size_t n) {
    if (kbuf_reserve(b, n)) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void kbuf_free(kbuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- karena ------------------------------------------------------------------------ */

struct karena_chunk {
    karena_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char mem[];
};

#define KARENA_CHUNK 4096

void karena_init(karena *a, size_t limit) {
    a->chunks = NULL;
    a->used = 0;
    a->limit = limit;
}

void *karena_alloc(karena *a, size_t n) {
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n) return NULL;
    if (a->limit && (need > a->limit || a->used > a->limit - need)) return NULL;
    karena_chunk *c = a->chunks;
    if (!c || c->size - c->used < need) {
        size_t size = need > KARENA_CHUNK ? need : KARENA_CHUNK;
        if (size > SIZE_MAX - sizeof *c) return NULL;
        c = malloc(sizeof *c + size);
        if (!c) return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->chunks;
        a->chunks = c;
    }
    void *p = c->mem + c->used;
    c->used += need;
    a->used += need;
    memset(p, 0, n);
    return p;
}

void karena_free(karena *a) {
    karena_chunk *c = a->chunks;
    while (c) {
        karena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->chunks = NULL;
    a->used = 0;
}

/* ---- kstr -------------------------------------------------------------------------- */

kstr kstr_c(const char *s) {
    size_t n = strlen(s);
    return (kstr){s, n > INT32_MAX ? INT32_MAX : (int32_t)n};
}

int kstr_eq(kstr a, const char *s) {
    if (a.len < 0) return 0;
    size_t n = strlen(s);
    return (size_t)a.len == n && (n == 0 || memcmp(a.p, s, n) == 0);
}

/* ---- the stream -------------------------------------------------------------------- */

void kio_reader(kio *io, const void *p, size_t n, karena *arena) {
    memset(io, 0, sizeof *io);
    io->start = io->p = p;
    io->end = io->start + n;
    io->arena = arena;
}

void kio_writer(kio *io, kbuf *out) {
    memset(io, 0, sizeof *io);
    io->writing = 1;
    io->out = out;
}

int kio_fail(kio *io, const char *fmt, ...) {
    if (io->failed) return -1;
    io->failed = 1;
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (io->writing)
        snprintf(io->err, sizeof io->err, "%s", what);
    else
        snprintf(io->err, sizeof io->err, "%s at byte %zu of %zu", what,
                 (size_t)(io->p - io->start), (size_t)(io->end - io->start));
    return -1;
}

size_t kio_left(const kio *io) { return io->writing ? 0 : (size_t)(io->end - io->p); }

int kio_expect_end(kio *io, const char *what) {
    if (io->failed) return -1;
    if (io->writing || io->p == io->end) return 0;
    return kio_fail(io, "%zu unexpected bytes after the %s", (size_t)(io->end - io->p), what);
}

/* Reading: n bytes are there, or the stream fails. */
static int need(kio *io, size_t n, const char *what) {
    if (io->failed) return -1;
    if ((size_t)(io->end - io->p) < n)
        return kio_fail(io, "truncated: %s needs %zu bytes, %zu left", what, n,
                        (size_t)(io->end - io->p));
    return 0;
}

/* Writing: appends n bytes. */
static int put(kio *io, const void *p, size_t n) {
    if (io->failed) return -1;
    if (kbuf_append(io->out, p, n)) return kio_fail(io, "out of memory");
    return 0;
}

static uint64_t load_be(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static void store_be(uint8_t *p, uint64_t v, size_t n) {
    for (size_t i = n; i-- > 0;) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* Moves an n-byte big-endian integer between *v (as uint64) and the stream. */
static int io_int(kio *io, uint64_t *v, size_t n, const char *what) {
    if (io->failed) return -1;
    uint8_t b[8];
    if (io->writing) {
        store_be(b, *v, n);
        return put(io, b, n);
    }
    if (need(io, n, what)) return -1;
    *v = load_be(io->p, n);
    io->p += n;
    return 0;
}

int kio_i8(kio *io, int8_t *v) {
    uint64_t u = io->writing ? (uint8_t)*v : 0;
    if (io_int(io, &u, 1, "an int8")) return -1;
    *v = (int8_t)(uint8_t)u;
    return 0;
}

int kio_i16(kio *io, int16_t *v) {
    uint64_t u = io->writing ? (uint16_t)*v : 0;
    if (io_int(io, &u, 2, "an int16")) return -1;
    *v = (int16_t)(uint16_t)u;
    return 0;
}

int kio_i32(kio *io, int32_t *v) {
    uint64_t u = io->writing ? (uint32_t)*v : 0;
    if (io_int(io, &u, 4, "an int32")) return -1;
    *v = (int32_t)(uint32_t)u;
    return 0;
}

int kio_i64(kio *io, int64_t *v) {
    uint64_t u = io->writing ? (uint64_t)*v : 0;
    if (io_int(io, &u, 8, "an int64")) return -1;
    *v = (int64_t)u;
    return 0;
}

int kio_bool(kio *io, int8_t *v) {
    if (io->writing && *v != 0 && *v != 1) return kio_fail(io, "boolean value %d", *v);
    if (kio_i8(io, v)) return -1;
    if (*v != 0 && *v != 1) return kio_fail(io, "boolean byte %d is neither 0 nor 1", *v);
    return 0;
}

int kio_uvarint(kio *io, uint32_t *v) {
    if (io->failed) return -1;
    if (io->writing) {
        uint8_t b[5];
        size_t n = 0;
        uint32_t u = *v;
        while (u >= 0x80) {
            b[n++] = (uint8_t)(u | 0x80);
            u >>= 7;
        }
        b[n++] = (uint8_t)u;
        return put(io, b, n);
    }
    uint32_t u = 0;
    for (int i = 0; i < 5; i++) {
        if (need(io, 1, "an unsigned varint")) return -1;
        uint8_t b = *io->p++;
        if (i == 4 && (b & 0xf0)) return kio_fail(io, "unsigned varint longer than 32 bits");
        u |= (uint32_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = u;
            return 0;
        }
    }
    return kio_fail(io, "unsigned varint longer than 5 bytes"); /* not reached */
}

/* Reading: takes len bytes as the payload of a string or byte field. */
static int take(kio *io, int64_t len, const void **p, const char *what) {
    if (need(io, (size_t)len, what)) return -1;
    *p = len ? io->p : NULL;
    io->p += len;
    return 0;
}

int kio_string(kio *io, kstr *s, int nullable) {
    if (io->failed) return -1;
    if (io->writing) {
        if (s->len < 0 && !nullable) return kio_fail(io, "null for a non-nullable string");
        if (s->len > INT16_MAX) return kio_fail(io, "string of %d bytes is too long", s->len);
        int16_t n = s->len < 0 ? -1 : (int16_t)s->len;
        if (kio_i16(io, &n)) return -1;
        return n > 0 ? put(io, s->p, (size_t)n) : 0;
    }
    int16_t n = 0;
    if (kio_i16(io, &n)) return -1;
    if (n < -1 || (n == -1 && !nullable))
        return kio_fail(io, "invalid string length %d", n);
    if (n == -1) {
        *s = KSTR_NULL;
        return 0;
    }
    const void *p;
    if (take(io, n, &p, "a string")) return -1;
    *s = (kstr){p, n};
    return 0;
}

int kio_compact_string(kio *io, kstr *s, int nullable) {
    if (io->failed) return -1;
    if (io->writing) {
        if (s->len < 0 && !nullable) return kio_fail(io, "null for a non-nullable string");
        if (s->len >= INT32_MAX) return kio_fail(io, "string too long");
        uint32_t n = s->len < 0 ? 0 : (uint32_t)s->len + 1;
        if (kio_uvarint(io, &n)) return -1;
        return s->len > 0 ? put(io, s->p, (size_t)s->len) : 0;
    }
    uint32_t n = 0;
    if (kio_uvarint(io, &n)) return -1;
    if (n == 0) {
        if (!nullable) return kio_fail(io, "null for a non-nullable compact string");
        *s = KSTR_NULL;
        return 0;
    }
    if (n - 1 > INT16_MAX) return kio_fail(io, "compact string of %u bytes is too long", n - 1);
    const void *p;
    if (take(io, (int64_t)n - 1, &p, "a compact string")) return -1;
    *s = (kstr){p, (int32_t)(n - 1)};
    return 0;
}

int kio_bytes(kio *io, kbytes *b, int nullable) {
    if (io->failed) return -1;
    if (io->writing) {
        if (b->len < 0 && !nullable) return kio_fail(io, "null for non-nullable bytes");
        int32_t n = b->len < 0 ? -1 : b->len;
        if (kio_i32(io, &n)) return -1;
        return n > 0 ? put(io, b->p, (size_t)n) : 0;
    }
    int32_t n = 0;
    if (kio_i32(io, &n)) return -1;
    if (n < -1 || (n == -1 && !nullable)) return kio_fail(io, "invalid bytes length %d", n);
    if (n == -1) {
        *b = (kbytes){NULL, -1};
        return 0;
    }
    const void *p;
    if (take(io, n, &p, "a byte field")) return -1;
    *b = (kbytes){p, n};
    return 0;
}

/* Reading, after the count: checks it and allocates the elements. */
static int array_alloc(kio *io, int32_t n, void **elems, size_t elem_size, size_t min_wire) {
    *elems = NULL;
    if (n <= 0) return 0;
    if (min_wire && (size_t)n > kio_left(io) / min_wire)
        return kio_fail(io, "array of %d elements cannot fit in the %zu bytes left", n,
                        kio_left(io));
    if (!io->arena) return kio_fail(io, "no arena to decode an array into");
    if ((size_t)n > SIZE_MAX / elem_size) return kio_fail(io, "array too large");
    *elems = karena_alloc(io->arena, (size_t)n * elem_size);
    if (!*elems) return kio_fail(io, "array of %d elements needs too much memory", n);
    return 0;
}

int kio_array(kio *io, int32_t *n, void **elems, size_t elem_size, size_t min_wire, int nullable) {
    if (io->failed) return -1;
    if (io->writing) {
        if (*n < 0 && !nullable) return kio_fail(io, "null for a non-nullable array");
        int32_t c = *n < 0 ? -1 : *n;
        return kio_i32(io, &c);
    }
    int32_t c = 0;
    if (kio_i32(io, &c)) return -1;
    if (c < -1 || (c == -1 && !nullable)) return kio_fail(io, "invalid array length %d", c);
    *n = c;
    return array_alloc(io, c, elems, elem_size, min_wire);
}

int kio_compact_array(kio *io, int32_t *n, void **elems, size_t elem_size, size_t min_wire,
                      int nullable) {
    if (io->failed) return -1;
    if (io->writing) {
        if (*n < 0 && !nullable) return kio_fail(io, "null for a non-nullable array");
        uint32_t c = *n < 0 ? 0 : (uint32_t)*n + 1;
        return kio_uvarint(io, &c);
    }
    uint32_t c = 0;
    if (kio_uvarint(io, &c)) return -1;
    if (c == 0) {
        if (!nullable) return kio_fail(io, "null for a non-nullable compact array");
        *n = -1;
        *elems = NULL;
        return 0;
    }
    if (c - 1 > INT32_MAX) return kio_fail(io, "invalid compact array length %u", c);
    *n = (int32_t)(c - 1);
    return array_alloc(io, *n, elems, elem_size, min_wire);
}

int kio_tagged_fields(kio *io) {
    if (io->failed) return -1;
    uint32_t count = 0;
    if (io->writing) return kio_uvarint(io, &count);
    if (kio_uvarint(io, &count)) return -1;
    /* Each field takes at least 2 bytes (tag, size). */
    if (count > kio_left(io) / 2)
        return kio_fail(io, "%u tagged fields cannot fit in the %zu bytes left", count,
                        kio_left(io));
    uint32_t prev = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t tag = 0, size = 0;
        if (kio_uvarint(io, &tag) || kio_uvarint(io, &size)) return -1;
        if (i > 0 && tag <= prev) return kio_fail(io, "tagged fields out of order (tag %u)", tag);
        prev = tag;
        const void *p;
        if (take(io, size, &p, "a tagged field")) return -1;
    }
    return 0;
}

size_t kio_size_placeholder(kio *io) {
    size_t at = io->out->len;
    int32_t zero = 0;
    (void)kio_i32(io, &zero);
    return at;
}

void kio_patch_size(kio *io, size_t at, uint64_t extra) {
    if (io->failed || !io->writing) return;
    uint64_t n = (uint64_t)(io->out->len - at - 4) + extra;
    if (n > INT32_MAX) {
        kio_fail(io, "message of %llu bytes is too large", (unsigned long long)n);
        return;
    }
    store_be(io->out->data + at, n, 4);
}

int kio_raw(kio *io, const void *p, size_t n) {
    if (!io->writing) return kio_fail(io, "kio_raw on a reader");
    return put(io, p, n);
}
