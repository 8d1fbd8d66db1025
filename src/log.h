/*
 * log.h -- the alog handle's internals, shared by log.c, recovery.c and cursor.c.
 */
#ifndef ALOG_LOG_H
#define ALOG_LOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

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

/* A reserved batch on its way to publication (the ring of struct alog). */
enum { PEND_FREE, PEND_RESERVED, PEND_WRITTEN, PEND_WRITE_FAILED, PEND_PUBLISHED, PEND_FAILED };
#define LOG_RING 1024 /* batches reserved but not yet published, at most */
typedef struct pend {
    uint64_t ticket;
    int state;
    segment *seg;
    uint64_t pos;
    batch_header h;   /* a single append's header */
    batch_header *hs; /* the batches written at pos, back to back (h, or a group's) */
    size_t nh;
} pend;

struct greq;

/* A callback waiting for an offset to become durable (alog_on_durable). */
typedef struct durable_cb {
    int64_t offset;
    alog_durable_fn fn;
    void *ctx;
    struct durable_cb *next;
} durable_cb;

/*
 * Locks, always taken in this order (never the reverse):
 *   mu         the writer lock: reserving space and offsets, segment roll, retention,
 *              checkpoints. Held only for bookkeeping; no copying, checksumming or
 *              writing of batch bytes under it. Readers never take it.
 *   list_lock  (rwlock) the segment array; readers hold it shared for a moment when
 *              they look a segment up or move to the next one.
 *   pub_mu     publication: batches become visible in reservation order (tickets),
 *              the segments' st and indexes, durability state. Readers take it only to
 *              look offsets or times up in an index.
 *   zero_mu    the zero-fill in progress (prealloc.c); taken under mu, under pub_mu
 *              (a cut after a failed write) or alone.
 */
struct alog {
    char *dir;
    alog_options opts;
    int lock_fd;
    pthread_mutex_t mu;
    pthread_rwlock_t list_lock;
    pthread_mutex_t pub_mu;
    segment **segs; /* oldest first; the last is the active segment */
    size_t nsegs, segs_cap;
    segment *pub_active; /* the active segment, for pub_mu holders (updated under both) */
    alog_recovery_info recovery;

    /* Reservation tickets (resv_seq under mu) and publication (pub_seq and ring under
     * pub_mu): a written batch waits in ring[ticket % LOG_RING] until every earlier
     * one is written too; whichever writer completes the run publishes it, so readers
     * see offsets in order and no writer waits for its turn to publish. */
    uint64_t resv_seq, pub_seq;
    pend *ring;
    pthread_cond_t turn_cv;  /* pub_seq moved (broadcast only if pub_waiters) */
    int pub_waiters;
    int rewind;              /* a write failed: reservations restart from the published end */
    pthread_cond_t data_cv;  /* new data published (alog_cursor_wait) */
    int data_waiters;

    /* Durable appends: a lock-free stack of waiting requests and the leader flag
     * (log.c, group commit); gbuf/ghs belong to the current leader. */
    _Atomic(struct greq *) gq_head;
    atomic_int g_leader;
    atomic_int g_wake_seq;   /* futex word every durable waiter sleeps on; bumped per round */
    atomic_int g_sleepers;   /* waiters asleep on it (no wake-up syscall when none) */
    atomic_int g_inside;     /* threads inside a durable append (what a gather waits for) */
    int g_last_round;        /* requests in the last round (the leader's, like gbuf) */
    atomic_llong g_sync_ns;  /* recent fsync time, a moving average (bounds a gather) */
    abuf gbuf;
    batch_header *ghs;
    size_t ghs_cap;

    /* Durability (under pub_mu). Everything below durable_next is fsynced. */
    int64_t durable_next;
    int sync_running; /* a group-commit fsync is in flight */
    pthread_cond_t dur_cv;
    durable_cb *cbs;  /* pending alog_on_durable callbacks */
    int64_t last_sync_ms;
    int ckpt_wanted;  /* the durable point moved far past the last checkpoint */

    uint64_t checkpoint_pos; /* st.position of the active segment at the last checkpoint */
    int64_t checkpoint_seg;

    /* The log's own fsync thread: ALOG_FSYNC_INTERVAL syncs when appends stop,
     * alog_on_durable callbacks, checkpoints. Sleeps on flusher_cv (under pub_mu). */
    pthread_t flusher;
    int flusher_on, stop;
    pthread_cond_t flusher_cv;

    /* Preallocation (prealloc.c). pa_on: the log is used durably; pa_pending: the log's
     * thread was asked for (or is zero-filling) the next step; pa_wanted (under pub_mu):
     * the ask. zero_seg/zero_from (under zero_mu, set under mu too): the range being
     * zero-filled starts there; zeroing says one is in progress. */
    atomic_int pa_on, pa_pending, zeroing;
    int pa_wanted;
    pthread_mutex_t zero_mu;
    pthread_cond_t zero_cv;
    segment *zero_seg;
    uint64_t zero_from, zero_to, zero_next; /* the step, and where its next piece goes */
    int zero_writing; /* a piece is being written (a stop waits for it) */
    int zero_cancel;  /* the step was stopped: end it unpublished */
    /* The log's thread's own descriptor of zero_fd_seg's .log (with a reference): its
     * syncs must not take a write-back error from the appends' fd (prealloc.c). */
    int zero_fd;
    segment *zero_fd_seg;

    _Atomic int failed; /* sticky alog_err: after a failed fsync or write */
    pthread_mutex_t fail_mu; /* guards failed_msg */
    char failed_msg[512];
    atomic_int cursors;
};

static inline segment *log_active(const alog *log) { return log->segs[log->nsegs - 1]; }

/* Index of the segment holding offset (first <= offset < next), or -1. */
long log_find_segment(const alog *log, int64_t offset);
/* Read-only handles: looks for batches and segments another process appended since. */
alog_err log_refresh(alog *log);
int64_t log_now_ms(void);
/* CLOCK_MONOTONIC milliseconds, and a deadline ms from now on that clock (the one the
 * log's condition variables use). */
int64_t log_mono_ms(void);
void log_deadline_in(struct timespec *ts, int64_t ms);

/* Checks the text of the format file (alog.meta) read from path: len bytes in buf,
 * which has room for one more. ALOG_ECORRUPT if it is not "alog-format N\n", ALOG_EFORMAT
 * if N is newer than this build reads. */
alog_err log_check_format_text(const char *path, char *buf, size_t len);

/* Fails the log (sticky, until reopened) with the current error as the cause;
 * returns ALOG_EFAILED with that message. */
alog_err log_fail(alog *log, alog_err e);
/* fsync (full) or fdatasync of seg's .log through seg->fd, one at a time with the
 * group commit's (log.c explains why): a failure fails the log. pub_mu not held. */
alog_err log_data_sync(alog *log, segment *seg, int full);

/* prealloc.c (see there) */
/* Turns preallocation on: the log is being used durably. */
void prealloc_enable(alog *log);
/* With mu held, before reserving up to byte `end` of the active segment a: if that
 * reaches into the step being zero-filled, ends the step and waits for the piece
 * being written, so that no zeros land on the reservation. */
void prealloc_conflict(alog *log, segment *a, uint64_t end);
/* With mu held, after a reservation: asks the log's thread for the next zeroed step
 * if the reservations came within half a step of the zeroed end. */
void prealloc_note(alog *log, segment *a);
/* The log's thread, no lock held: claims a step if none runs, writes its next piece
 * or, all written, syncs and publishes it. 1 if the step needs more calls. */
int prealloc_run(alog *log);
/* After a cut of a's file at pos (a failed write): the zeroed end is at most pos, and
 * a step under way on a ends unpublished. With pub_mu or mu held (takes zero_mu). */
void prealloc_cut(alog *log, segment *a, uint64_t pos);
/* The log's thread, stopping: ends a step left unfinished, closes its descriptor. */
void prealloc_abandon(alog *log);
/* The log's thread: closes its descriptor of a segment's .log (and drops its ref). */
void prealloc_abandon_fd(alog *log);
/* With mu held and everything published (roll, close): stops preallocating a, ends
 * its step (waiting for the piece being written), cuts the file back to st.position
 * and fsyncs that. */
alog_err prealloc_trim(alog *log, segment *a);
/* The length of p[0, n) up to its last non-zero byte (0: all zeros). */
uint64_t prealloc_data_end(const uint8_t *p, uint64_t n);

/* recovery.c */
alog_err checkpoint_read(const char *dir, log_checkpoint *cp, int *found);
alog_err checkpoint_write(alog *log, int clean);
/* Whether the durable point moved far enough past the last checkpoint to write one. */
int checkpoint_due(const alog *log);
/* The same for a durable point (segment base, position) other than the current end. */
int checkpoint_due_at(const alog *log, int64_t seg, uint64_t pos);
alog_err log_recover(alog *log);

#endif
