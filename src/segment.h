/*
 * segment.h -- one segment of a log: <base>.log, <base>.index, <base>.timeindex.
 */
#ifndef ALOG_SEGMENT_H
#define ALOG_SEGMENT_H

#include <limits.h>
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

typedef struct segment {
    int64_t base;
    /* What has been appended and checked: [0, st.position) holds whole valid batches
     * with offsets [base, st.next_offset). */
    seg_state st;
    int fd, ofd, tfd; /* .log, .index, .timeindex; ofd/tfd -1 when absent */
    int writable;
    seg_index ix;
    int ix_ready; /* ix covers all of [0, st.position) */
    int ix_missing; /* an index file was absent at open (created empty): rebuild it */
    uint8_t *map;
    size_t map_len;
    void **old_maps; /* replaced mappings, kept until close (readers may hold pointers) */
    size_t *old_lens;
    size_t n_old;
    int refs;    /* the log's reference plus one per cursor on it */
    int deleted; /* removed by retention: reads get ALOG_ERANGE */
    char path[SEG_PATH_MAX], opath[SEG_PATH_MAX], tpath[SEG_PATH_MAX];
} segment;

/* Creates a new empty segment (the files must not exist). */
alog_err segment_create(const char *dir, int64_t base, segment **out);
/* Opens an existing segment. Its state is provisional (st.position = file size,
 * st.next_offset unknown = base) until segment_scan() or the log sets it. */
alog_err segment_open(const char *dir, int64_t base, int writable, segment **out);
/* Drops a reference; frees the segment (closing files, unmapping) at zero. */
void segment_release(segment *seg);

/* Size of the .log file now. */
alog_err segment_file_size(segment *seg, uint64_t *size);

/* Ensures seg->map covers [0, need). want is the length to map if a new mapping is
 * needed (at least need; larger avoids remapping as the segment grows). */
alog_err segment_map(segment *seg, uint64_t need, uint64_t want);

/* Appends one encoded batch (its base offset already stamped) at st.position and
 * indexes it. On a write error the partial bytes are cut off again. */
alog_err segment_append(segment *seg, const uint8_t *batch, size_t len, const batch_header *h,
                        uint32_t index_interval);

/* Scans batches from st (a batch boundary) to the end of the file, checking each
 * (header, CRC, contiguous offsets) and indexing it; stops at the first invalid one.
 * Updates seg->st to the end of the valid batches. *stop_reason is NULL if the scan
 * reached the end of the file cleanly, else why it stopped (the caller decides
 * whether to cut). file_size is the size to scan up to. */
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
/* Seals the segment: final time-index entry, indexes written, everything fsynced. */
alog_err segment_seal(segment *seg);
/* fdatasync of the .log file. */
alog_err segment_sync_data(segment *seg);
/* Cuts the .log file to st.position and the index files to match. */
alog_err segment_truncate_tail(segment *seg);
/* Unlinks the three files (the segment stays readable until released). */
alog_err segment_unlink(segment *seg);

#endif
