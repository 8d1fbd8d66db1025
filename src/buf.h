/*
 * buf.h -- a growable byte buffer, used wherever the engine builds bytes of unknown
 * size (batch encoding, decompression). Capacity only grows, so one buffer reused per
 * cursor or per log costs no allocation in steady state.
 */
#ifndef ALOG_BUF_H
#define ALOG_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alog.h"

typedef struct abuf {
    uint8_t *data;
    size_t len;
    size_t cap;
} abuf;

/* Ensures room for extra more bytes past len. ALOG_ENOMEM on failure (no message). */
static inline alog_err abuf_reserve(abuf *b, size_t extra) {
    if (b->cap - b->len >= extra) return ALOG_OK;
    size_t need = b->len + extra;
    if (need < b->len) return ALOG_ENOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) return ALOG_ENOMEM;
    b->data = p;
    b->cap = cap;
    return ALOG_OK;
}

static inline alog_err abuf_append(abuf *b, const void *p, size_t n) {
    alog_err e = abuf_reserve(b, n);
    if (e) return e;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return ALOG_OK;
}

static inline void abuf_free(abuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

#endif
