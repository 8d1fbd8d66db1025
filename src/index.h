/*
 * index.h -- a segment's sparse offset index (.index) and time index (.timeindex).
 * Layout and rules at the top of index.c and in docs/FORMAT.md.
 */
#ifndef ALOG_INDEX_H
#define ALOG_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "alog.h"

#define OINDEX_ENTRY_SIZE 8
#define TINDEX_ENTRY_SIZE 12

typedef struct oindex_entry {
    uint32_t rel_offset; /* last offset of the indexed batch, minus the segment base */
    uint32_t position;   /* byte position where that batch starts */
} oindex_entry;

typedef struct tindex_entry {
    int64_t timestamp;   /* largest timestamp in the segment up to rel_offset */
    uint32_t rel_offset; /* offset (minus base) of the record holding that timestamp */
} tindex_entry;

typedef struct seg_index {
    oindex_entry *o;
    size_t on, ocap, o_flushed; /* o_flushed: entries already in the .index file */
    tindex_entry *t;
    size_t tn, tcap, t_flushed;
} seg_index;

alog_err index_add(seg_index *ix, uint32_t rel_offset, uint32_t position);
/* Adds a time entry only if timestamp is larger than the last one (Kafka's rule:
 * time index timestamps only increase). */
alog_err tindex_maybe_add(seg_index *ix, int64_t timestamp, uint32_t rel_offset);

/* Byte position to start scanning batch headers from to find rel_offset: that of the
 * largest entry whose offset is <= rel_offset, or 0 if there is none. */
uint32_t index_lookup(const seg_index *ix, uint32_t rel_offset);
/* The offset to start scanning from to find the first record with timestamp >= ts:
 * the rel_offset of the largest entry with timestamp < ts, or 0 if none. */
uint32_t tindex_lookup(const seg_index *ix, int64_t ts);

/* Drops entries at or past position (offset index) / rel_offset (time index). */
void index_truncate(seg_index *ix, uint32_t position, uint32_t rel_offset);

/* Loads both files, checking them against the segment: entries strictly increasing,
 * positions below log_size, offsets below rel_limit. A torn trailing partial entry
 * is ignored. With keep_prefix (recovery from a checkpoint), entries at or past the
 * limits are not damage but entries written after the checkpoint: loading stops there
 * and keeps the sound prefix, which the scan from the checkpoint then extends.
 * Returns 1 if both files were present and sound, 0 if the index must be rebuilt
 * (missing, damaged), <0 (an alog_err negated) on an I/O error. */
int index_load(seg_index *ix, int ofd, int tfd, uint64_t log_size, uint64_t rel_limit,
               int keep_prefix, const char *opath, const char *tpath);

/* Writes entries not yet in the files. */
alog_err index_write(seg_index *ix, int ofd, int tfd, const char *opath, const char *tpath);
/* Rewrites both files entirely from memory (after a rebuild or a truncation). */
alog_err index_rewrite(seg_index *ix, int ofd, int tfd, const char *opath, const char *tpath);

void index_free(seg_index *ix);

#endif
