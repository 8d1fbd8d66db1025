/*
 * log.h -- the alog handle's internals, shared by log.c, recovery.c and cursor.c.
 */
#ifndef ALOG_LOG_H
#define ALOG_LOG_H

#include <pthread.h>
#include <stdint.h>

#include "alog.h"
#include "buf.h"
#include "segment.h"

#define LOG_META_FILE "alog.meta"
#define LOG_LOCK_FILE "alog.lock"
#define LOG_CHECKPOINT_FILE "recovery-point"

/* The recovery checkpoint: everything before (segment, st.position) is known durable.
 * clean: the log was closed cleanly at exactly that point. */
typedef struct log_checkpoint {
    int clean;
    int64_t segment;
    seg_state st;
} log_checkpoint;

struct alog {
    char *dir;
    alog_options opts;
    int lock_fd;
    pthread_mutex_t mu; /* serializes appends and changes to the segment list */
    segment **segs;     /* oldest first; the last is the active segment */
    size_t nsegs, segs_cap;
    abuf enc, scratch;
    alog_recovery_info recovery;
    int64_t last_sync_ms;
    uint64_t checkpoint_pos; /* st.position of the active segment at the last checkpoint */
    int64_t checkpoint_seg;
    int64_t synced_seg;  /* the active segment's data is durable up to synced_pos */
    uint64_t synced_pos;
    /* ALOG_FSYNC_INTERVAL: a thread syncs what appends left unsynced once the interval
     * has passed, so that an idle writer's last records do not wait for the next append. */
    pthread_t flusher;
    int flusher_on, stop;
    pthread_cond_t flusher_cv; /* CLOCK_MONOTONIC; signalled by close */
    alog_err failed; /* sticky: after a failed fsync or an uncuttable partial write */
    char failed_msg[512];
    int cursors;
};

static inline segment *log_active(const alog *log) { return log->segs[log->nsegs - 1]; }

/* Index of the segment holding offset (first <= offset < next), or -1. */
long log_find_segment(const alog *log, int64_t offset);
/* Read-only handles: looks for batches and segments another process appended since. */
alog_err log_refresh(alog *log);
int64_t log_now_ms(void);

/* recovery.c */
alog_err checkpoint_read(const char *dir, log_checkpoint *cp, int *found);
alog_err checkpoint_write(alog *log, int clean);
/* Whether the durable point moved far enough past the last checkpoint to write one. */
int checkpoint_due(const alog *log);
alog_err log_recover(alog *log);

#endif
