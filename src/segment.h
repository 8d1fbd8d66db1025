/*
 * segment.h -- one segment of a log: <base>.log, <base>.index, <base>.timeindex.
 */
#ifndef ALOG_SEGMENT_H
#define ALOG_SEGMENT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "alog.h"
#include "batch.h"
#include "index.h"

#define SEG_PATH_MAX 4096

/* The state at a batch boundary that lets indexing continue from there exactly as if
 * the segment had been appended to without interruption (saved in the checkpoint). */
typedef struct seg_state {
    uint64_t position;
    int64_t next_offset;
    int64_t first_ts;
    int64_t max_ts;
    int64_t max_ts_offset;
    uint64_t bytes_since_index;
} seg_state;

/* One mmap of the .log file, counted: refs is 1 while it is the segment's current
 * mapping, plus one per reader holding it (segment_map_get / segment_map_put). When a
 * remap replaces it and its last holder lets go, it is unmapped and refs stays 0 for
 * good (it is never taken again). The struct itself stays on the segment's list until
 * the segment is freed, so a reader that loaded the current pointer just before a remap
 * can still look at refs safely. Mappings grow at least twofold, so a segment of n bytes
 * has made O(log n) of them. */
typedef struct seg_map {
    const uint8_t *p;
    size_t len;
    atomic_int refs;
    struct segment *seg; /* whose .log this maps */
    struct seg_map *older;
} seg_map;

typedef struct segment {
    int64_t base;
    /* What has been appended and checked: [0, st.position) holds whole valid batches
     * with offsets [base, st.next_offset). Changed only by whoever publishes batches
     * (the log's publication lock, or a single thread during recovery). */
    seg_state st;
    /* st.position and st.next_offset as readers may use them without any lock: stored
     * (release) after the bytes below them were written, loaded with acquire. pub_pos
     * and pub_next each give one of the two; pub gives both as one consistent pair
     * (segment_pub_pair), stored last: (next_offset - base) << 32 | position. */
    _Atomic uint64_t pub_pos;
    _Atomic int64_t pub_next;
    _Atomic uint64_t pub;
    /* The append point handed out to writers (the log's writer lock): may be ahead of
     * st while reserved batches are being written. */
    uint64_t resv_pos;
    int64_t resv_next;
    /* Preallocation (prealloc.c): [0, alloc_end) of the file exists on disk (data, then
     * synced zeros); pa_stop: no more zero-filling of this segment (sealed, closing,
     * or the disk was full). */
    _Atomic uint64_t alloc_end;
    atomic_int pa_stop;
    int fd, ofd, tfd; /* .log, .index, .timeindex; ofd/tfd -1 when absent */
    int writable;
    seg_index ix;
    int ix_ready; /* ix covers all of [0, st.position) */
    int ix_missing; /* an index file was absent at open (created empty): rebuild it */
    _Atomic(seg_map *) map; /* current mapping (NULL until first needed) */
    pthread_mutex_t map_mu; /* serializes remapping and the list of seg_maps */
    atomic_int refs;    /* the log's reference plus one per cursor or sync in flight */
    atomic_int deleted; /* removed by retention: reads get ALOG_ERANGE */
    char path[SEG_PATH_MAX], opath[SEG_PATH_MAX], tpath[SEG_PATH_MAX];
} segment;

/* Creates a new empty segment (the files must not exist). */
alog_err segment_create(const char *dir, int64_t base, segment **out);
/* Opens an existing segment. Its state is provisional (st.position = file size,
 * st.next_offset unknown = base) until segment_scan() or the log sets it. */
alog_err segment_open(const char *dir, int64_t base, int writable, segment **out);
/* Takes / drops a reference; the segment is freed (files closed, unmapped) at zero. */
void segment_ref(segment *seg);
void segment_release(segment *seg);
/* Publishes st.position / st.next_offset to lock-free readers (release stores). */
void segment_publish(segment *seg);
/* The published (next_offset, position) pair, both from the same publication. */
void segment_pub_pair(segment *seg, int64_t *next, uint64_t *pos);

/* Size of the .log file now. */
alog_err segment_file_size(segment *seg, uint64_t *size);

/* Reads up to n bytes of the .log at pos with pread. Returns how many were read (fewer
 * only where the file ends, which a concurrent cut by the writing process may move), or
 * -1 with errno set. Bytes not yet checked are read this way, never through the mapping:
 * a mapped page that a cut has put past the end of the file raises SIGBUS. */
ssize_t segment_pread(segment *seg, uint64_t pos, void *buf, size_t n);

/* *out is a mapping of the .log covering at least [0, need), held for the caller until
 * segment_map_put(). If a new mapping is needed it is at least want bytes and twice the
 * current one (so remaps are O(log size)); it may extend past the end of the file, and
 * callers only touch bytes below the published end. Thread-safe; lock-free when the
 * current mapping is large enough. */
alog_err segment_map_get(segment *seg, uint64_t need, uint64_t want, seg_map **out);
/* Lets go of a mapping from segment_map_get; a replaced one is unmapped by its last
 * holder. */
void segment_map_put(segment *seg, seg_map *m);

/* Accounts for the batch just written at pos == st.position (indexes it, advances st)
 * and publishes the new end to readers. The caller wrote it (log.c, outside locks). */
alog_err segment_add_batch(segment *seg, uint64_t pos, const batch_header *h,
                           uint32_t index_interval);

/* Scans batches from st (a batch boundary) to the end of the file, checking each
 * (header, CRC, contiguous offsets) and indexing it; stops at the first invalid one.
 * Updates seg->st to the end of the valid batches. *stop_reason is NULL if the scan
 * reached the end of the file cleanly, else why it stopped (the caller decides
 * whether to cut). file_size is the size to scan up to. The bytes are read with pread
 * (they are not checked yet): if another process cuts the file meanwhile, the scan
 * stops where the file now ends, as at a torn batch. */
alog_err segment_scan(segment *seg, uint64_t file_size, uint32_t index_interval,
                      const char **stop_reason, char *why_buf, size_t why_len);

/* Loads (or rebuilds) the indexes of a sealed segment whose st.next_offset is known.
 * *rebuilt is set to 1 if they had to be rebuilt from the .log. */
alog_err segment_load_index(segment *seg, uint32_t index_interval, int *rebuilt);

/* Position of the batch holding offset (base <= offset < st.next_offset). */
alog_err segment_find(segment *seg, int64_t offset, uint64_t *pos);
/* First offset in this segment with timestamp >= ts, or -1 if none. */
alog_err segment_find_time(segment *seg, int64_t ts, abuf *decomp, size_t max_out,
                           int64_t *offset);

/* Writes index entries not yet in the files. */
alog_err segment_flush_index(segment *seg);
/* Before a roll: the final time-index entry, and every index entry written to the
 * files (the caller then fsyncs the .log through the log, and segment_sync_index). */
alog_err segment_seal_index(segment *seg);
/* fdatasync of the .index and .timeindex files. */
alog_err segment_sync_index(segment *seg);
/* Cuts the .log file to st.position and the index files to match. */
alog_err segment_truncate_tail(segment *seg);
/* Unlinks the three files (the segment stays readable until released). */
alog_err segment_unlink(segment *seg);

#endif
