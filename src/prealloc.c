/*
 * prealloc.c -- zero-filled space ahead of the active segment, so that durable appends
 * overwrite blocks the filesystem already has instead of growing the file.
 *
 * Why: an fdatasync after an append that grew the file must also make the new size
 * and the new blocks durable, which on ext4 (and XFS) is a journal commit: a second
 * device write and flush. Measured on the project's 2-vCPU VM (ext4, virtio): 6,400
 * bytes appended then fdatasync ~155 us; the same bytes written over zero-filled,
 * already-synced blocks ~95 us. Group commit waits for one fsync per round, so this
 * is most of a durable append's latency. (fallocate() does not help: it leaves
 * "unwritten" extents whose conversion is a journal commit again.)
 *
 * How: once the log is used durably (log.c calls prealloc_enable), every reservation
 * that comes within half a step of the zeroed end asks the log's own thread for the
 * next step (opts.preallocate_bytes). That thread claims [from, to) past the
 * reservation frontier under the writer lock, then writes zeros there one 64 KiB
 * piece per turn of its loop, between its other work (fsyncs, durability callbacks:
 * alogd's acknowledgements waited behind whole steps, p99 x2), with no lock held;
 * then it fdatasyncs them and publishes the new zeroed end. A reservation that would
 * reach into the range being zeroed -- appends outrunning the zeroing -- ends the step
 * there and waits only for the piece being written (prealloc_conflict): the zeros
 * must never land on data, and the writer lock must not wait for the log's thread,
 * which may itself be waiting for that lock.
 *
 * The zeros are never data. A roll and a clean close cut the file back to its last
 * batch (prealloc_trim), so sealed segments and cleanly closed logs are exactly
 * Kafka's layout. After a crash the active segment may end in zeros: recovery,
 * read-only opens and verify treat a remainder of zeros as the end of the log, not as a
 * torn batch (prealloc_data_end), and a writable open keeps it as preallocated space.
 *
 * Locks: mu (the writer lock) then zero_mu, which guards the step in progress; the
 * writes themselves hold neither. The zeros are written and synced through the log
 * thread's own descriptor of the file (zero_fd_for says why). A failed zero write (a
 * full disk) or write-back only stops preallocating that segment; a failed fdatasync
 * fails the log like any other, since it may have been the report of a failed write
 * of appended data.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>

#include "error.h"
#include "io.h"
#include "log.h"

#define ZERO_PIECE (64u << 10)
#define PAGE 4096u

static const uint8_t zeros[ZERO_PIECE];

void prealloc_enable(alog *log) {
    if (log->opts.preallocate_bytes && !log->opts.read_only &&
        !atomic_load_explicit(&log->pa_on, memory_order_relaxed))
        atomic_store_explicit(&log->pa_on, 1, memory_order_relaxed);
}

/* With zero_mu held: ends the step in progress on a, if any, without publishing it,
 * once the piece being written (if one is) has landed. */
static void stop_step_locked(alog *log, segment *a) {
    if (!atomic_load_explicit(&log->zeroing, memory_order_relaxed) || log->zero_seg != a)
        return;
    log->zero_cancel = 1;
    while (log->zero_writing) pthread_cond_wait(&log->zero_cv, &log->zero_mu);
}

void prealloc_conflict(alog *log, segment *a, uint64_t end) {
    /* zeroing is set only under mu (which the caller holds), so a 0 here is current. */
    if (!atomic_load_explicit(&log->zeroing, memory_order_acquire)) return;
    pthread_mutex_lock(&log->zero_mu);
    if (log->zero_seg == a && end > log->zero_from) stop_step_locked(log, a);
    pthread_mutex_unlock(&log->zero_mu);
}

void prealloc_note(alog *log, segment *a) {
    if (!atomic_load_explicit(&log->pa_on, memory_order_relaxed) ||
        atomic_load_explicit(&a->pa_stop, memory_order_relaxed) ||
        atomic_load_explicit(&log->pa_pending, memory_order_relaxed))
        return;
    uint64_t step = log->opts.preallocate_bytes;
    uint64_t zeroed = atomic_load_explicit(&a->alloc_end, memory_order_relaxed);
    if (a->resv_pos + step / 2 < zeroed || zeroed >= log->opts.segment_bytes) return;
    atomic_store_explicit(&log->pa_pending, 1, memory_order_relaxed);
    pthread_mutex_lock(&log->pub_mu);
    log->pa_wanted = 1;
    pthread_cond_signal(&log->flusher_cv);
    pthread_mutex_unlock(&log->pub_mu);
}

/* Claims the next step past the reservations: with mu, then zero_mu. 1 if claimed. */
static int claim_step(alog *log) {
    pthread_mutex_lock(&log->mu);
    segment *a = log_active(log);
    uint64_t step = log->opts.preallocate_bytes, front = a->resv_pos;
    uint64_t zeroed = atomic_load_explicit(&a->alloc_end, memory_order_relaxed);
    /* Past what is zeroed; if the appends are already past that, leave them a quarter
     * step to go on into while this runs. */
    uint64_t from = zeroed > front ? zeroed : front + step / 4;
    uint64_t align = step < PAGE ? step : PAGE; /* whole pages, unless steps are tiny */
    from = (from + align - 1) / align * align;
    uint64_t to = from + step;
    if (to > log->opts.segment_bytes) to = log->opts.segment_bytes;
    int ok = !atomic_load(&log->failed) && !log->rewind && !atomic_load(&a->pa_stop) && to > from;
    if (ok) {
        pthread_mutex_lock(&log->zero_mu);
        segment_ref(a);
        log->zero_seg = a;
        log->zero_from = log->zero_next = from;
        log->zero_to = to;
        log->zero_cancel = 0;
        atomic_store_explicit(&log->zeroing, 1, memory_order_release);
        pthread_mutex_unlock(&log->zero_mu);
    }
    pthread_mutex_unlock(&log->mu);
    return ok;
}

/* Ends the step (published = its zeros are synced: the zeroed end moves). */
static void end_step(alog *log, int published) {
    pthread_mutex_lock(&log->zero_mu);
    segment *a = log->zero_seg;
    if (published && !log->zero_cancel)
        atomic_store_explicit(&a->alloc_end, log->zero_to, memory_order_relaxed);
    log->zero_seg = NULL;
    atomic_store_explicit(&log->zeroing, 0, memory_order_release);
    pthread_cond_broadcast(&log->zero_cv);
    pthread_mutex_unlock(&log->zero_mu);
    atomic_store(&log->pa_pending, 0);
    /* Sealed, closing or full: no more steps on it, so let its descriptor go. */
    if (log->zero_fd_seg == a && atomic_load(&a->pa_stop)) prealloc_abandon_fd(log);
    segment_release(a);
}

/* The log's thread: its own descriptor of a's .log, opened on first use. Linux reports
 * a failed write-back once per open file description, to whichever of its syncs asks
 * first: the zero-fill's syncs on the appends' fd could take the error of a lost
 * append, and the group commit's next fdatasync would then return 0 for it. On their
 * own descriptor they take only their copy of the error; the appends' fd still gets
 * its own. -1 if it cannot be opened. */
static int zero_fd_for(alog *log, segment *a) {
    if (log->zero_fd_seg == a) return log->zero_fd;
    prealloc_abandon_fd(log);
    int fd = io->open(a->path, O_WRONLY, 0);
    if (fd < 0) return -1;
    segment_ref(a);
    log->zero_fd = fd;
    log->zero_fd_seg = a;
    return fd;
}

void prealloc_abandon_fd(alog *log) {
    if (!log->zero_fd_seg) return;
    io->close(log->zero_fd);
    segment_release(log->zero_fd_seg);
    log->zero_fd = -1;
    log->zero_fd_seg = NULL;
}

int prealloc_run(alog *log) {
    if (log->zero_fd_seg && atomic_load(&log->zero_fd_seg->pa_stop)) prealloc_abandon_fd(log);
    if (!atomic_load_explicit(&log->zeroing, memory_order_acquire) && !claim_step(log)) {
        atomic_store(&log->pa_pending, 0);
        return 0;
    }
    /* Only this thread changes zero_next and zero_seg while a step runs. */
    pthread_mutex_lock(&log->zero_mu);
    segment *a = log->zero_seg;
    uint64_t off = log->zero_next, to = log->zero_to;
    int cancelled = log->zero_cancel;
    if (!cancelled && off < to) log->zero_writing = 1;
    pthread_mutex_unlock(&log->zero_mu);
    if (cancelled) {
        end_step(log, 0);
        return 0;
    }
    int zfd = zero_fd_for(log, a);
    if (zfd < 0) { /* no descriptor (out of them?): no preallocation for this segment */
        pthread_mutex_lock(&log->zero_mu);
        log->zero_writing = 0;
        pthread_cond_broadcast(&log->zero_cv);
        pthread_mutex_unlock(&log->zero_mu);
        atomic_store(&a->pa_stop, 1);
        err_clear();
        end_step(log, 0);
        return 0;
    }
    if (off < to) {
        /* One piece per call: the log's thread also runs fsyncs and durability
         * callbacks (alogd's acknowledgements) and must not leave them for a whole
         * step. Each piece is written back before the next, so an append's fdatasync
         * (which writes back every dirty page of the file) finds at most one piece of
         * zeros in its way. Only pacing: durability comes from the fdatasync below. */
        size_t n = to - off < ZERO_PIECE ? (size_t)(to - off) : ZERO_PIECE;
        alog_err e = io_pwrite_all(zfd, zeros, n, off, a->path);
        /* A failure here may be the report of a lost append (see zero_fd_for): the
         * appends' own fdatasync reports it too. Here it only stops preallocating. */
        if (!e && io->sync_file_range(zfd, (off_t)off, (off_t)n,
                                      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                          SYNC_FILE_RANGE_WAIT_AFTER) != 0 &&
            errno != ENOSYS && errno != EINVAL && errno != ESPIPE) /* not there: no pacing */
            e = err_sys(errno, "writing back zeros at byte %" PRIu64 " of %s", off, a->path);
        pthread_mutex_lock(&log->zero_mu);
        log->zero_writing = 0;
        log->zero_next = off + n;
        pthread_cond_broadcast(&log->zero_cv);
        pthread_mutex_unlock(&log->zero_mu);
        if (e) {
            /* A full disk (or another write error) costs only the preallocation:
             * appends go on growing the file. The zeros that got written are harmless. */
            atomic_store(&a->pa_stop, 1);
            err_clear();
            end_step(log, 0);
            return 0;
        }
        return 1;
    }
    /* All written: make the size and blocks durable, then the zeros are usable. A
     * failure fails the log: it may be a lost append's too (the appends' fd would
     * report it as well; failing at once is simply earlier). */
    if (io_fdatasync(zfd) != 0) {
        err_sys(errno, "fdatasync %s (zero-filling bytes %" PRIu64 "-%" PRIu64 " ahead of the "
                "appends)", a->path, log->zero_from, to);
        log_fail(log, ALOG_EIO);
        end_step(log, 0);
        return 0;
    }
    end_step(log, 1);
    return 0;
}

void prealloc_cut(alog *log, segment *a, uint64_t pos) {
    pthread_mutex_lock(&log->zero_mu);
    /* A step under way on a would publish a zeroed end the cut has removed: end it
     * unpublished (a piece being written lands past the cut, where it is harmless:
     * appends reaching it wait for it, prealloc_conflict). */
    if (atomic_load_explicit(&log->zeroing, memory_order_relaxed) && log->zero_seg == a)
        log->zero_cancel = 1;
    if (atomic_load_explicit(&a->alloc_end, memory_order_relaxed) > pos)
        atomic_store_explicit(&a->alloc_end, pos, memory_order_relaxed);
    pthread_mutex_unlock(&log->zero_mu);
}

void prealloc_abandon(alog *log) {
    if (atomic_load_explicit(&log->zeroing, memory_order_acquire)) end_step(log, 0);
    prealloc_abandon_fd(log);
}

alog_err prealloc_trim(alog *log, segment *a) {
    atomic_store(&a->pa_stop, 1);
    pthread_mutex_lock(&log->zero_mu);
    stop_step_locked(log, a);
    pthread_mutex_unlock(&log->zero_mu);
    uint64_t size;
    alog_err e = segment_file_size(a, &size);
    if (e || size <= a->st.position) return e;
    if (io->ftruncate(a->fd, (off_t)a->st.position) != 0)
        return err_sys(errno, "cutting the preallocated space of %s back to %" PRIu64 " bytes",
                       a->path, a->st.position);
    /* The new size must be on disk before a successor segment or a clean checkpoint
     * says this one ends here: fsync, not fdatasync. */
    e = log_data_sync(log, a, 1);
    if (e) return e;
    atomic_store_explicit(&a->alloc_end, 0, memory_order_relaxed);
    return ALOG_OK;
}

uint64_t prealloc_data_end(const uint8_t *p, uint64_t n) {
    /* Word at a time from the end: the zeros are usually most of it. */
    while (n && ((uintptr_t)(p + n) & 7)) {
        if (p[n - 1]) return n;
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p + n - 8, 8);
        if (w) break;
        n -= 8;
    }
    while (n && !p[n - 1]) n--;
    return n;
}
