/*
 * alog.h -- the public interface of libalog, a durable append-only log.
 *
 * This is the only public header. Everything here is prefixed alog_ / ALOG_.
 *
 * A log lives in one directory. Records are appended to its end and never changed;
 * each gets a 64-bit offset, one more than the record before it. On disk the log is a
 * sequence of segments, each a file of Kafka RecordBatch v2 batches (byte for byte as a
 * Kafka broker stores them) plus a sparse offset index and a time index; docs/FORMAT.md
 * describes every byte.
 *
 * Conventions (read these once; each function below only says where it differs):
 *   - Functions return an alog_err; ALOG_OK (0) is success. Outputs go through pointers.
 *     On failure, alog_last_error() gives a message that says what was wrong and where
 *     (file, byte position, offset), and alog_last_errno() the system errno if a system
 *     call failed. Both are per thread.
 *   - Ownership: the library never keeps a pointer the caller passed once the call has
 *     returned. Pointers the library returns are valid for the lifetime stated at the
 *     function; "owned by the caller" means the caller frees it with the named function.
 *   - Every *_close() / *_free() accepts NULL.
 *   - The library never prints, exits or aborts on bad data.
 *   - Threads: every function on an alog handle may be called from any number of
 *     threads at once, except alog_close() (call it last, once the other threads are
 *     done with the handle and their cursors are closed). Appends from many threads
 *     are ordered by a short reservation (offsets and file space); encoding, checksums
 *     and the write itself run in parallel, and records become visible strictly in
 *     offset order. Readers never take the writer's lock. A cursor belongs to one
 *     thread at a time; use one cursor per reading thread. Only one process may open
 *     a log for writing (ALOG_ELOCKED names the holder); read-only opens from other
 *     processes are always allowed and follow the writer.
 *
 * Stability: everything in this header is the stable API of major version 0 while the
 * project is young; error values are never renumbered (retired ones stay as gaps).
 */
#ifndef ALOG_H
#define ALOG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the public functions: the library is built with hidden visibility, so only
 * these are exported from libalog.so. */
#if defined(__GNUC__) || defined(__clang__)
#define ALOG_API __attribute__((visibility("default")))
#else
#define ALOG_API
#endif

#define ALOG_VERSION_MAJOR 0
#define ALOG_VERSION_MINOR 1
#define ALOG_VERSION_PATCH 0
#define ALOG_VERSION_STRING "0.1.0"

/* The on-disk format version this build writes and the newest it can read. */
#define ALOG_FORMAT_VERSION 1

/* Returns ALOG_VERSION_STRING of the library actually linked. Static storage. */
ALOG_API const char *alog_version(void);

/* ---------------------------------------------------------------------------------
 * Errors. One list generates the enum, alog_strerror() and alog_err_name().
 * ------------------------------------------------------------------------------- */
#define ALOG_ERRORS(X)                                                                  \
    X(OK, 0, "success")                                                                 \
    X(EINVAL, 1, "invalid argument")                                                    \
    X(ENOMEM, 2, "out of memory")                                                       \
    X(EIO, 3, "input/output error")                                                     \
    X(ECORRUPT, 4, "corrupt data")                                                      \
    X(EOF, 5, "no more records")                                                        \
    X(ERANGE, 6, "offset out of range")                                                 \
    X(EFORMAT, 7, "unsupported on-disk format version")                                 \
    X(ELOCKED, 8, "log is locked by another writer")                                    \
    X(EREADONLY, 9, "log is open read-only")                                            \
    X(ETOOBIG, 10, "record or batch too large")                                         \
    X(EUNSUPPORTED, 11, "unsupported feature")                                          \
    X(ENOSPC, 12, "no space left on device")                                            \
    X(EFAILED, 13, "log has failed and must be reopened")                               \
    X(ETIMEDOUT, 14, "timed out")                                                       \
    X(ENOENT, 15, "no such log")                                                        \
    X(EEXIST, 16, "already exists")

typedef enum alog_err {
#define ALOG_ERR_ENUM_(name, value, text) ALOG_##name = value,
    ALOG_ERRORS(ALOG_ERR_ENUM_)
#undef ALOG_ERR_ENUM_
} alog_err;

/* A short English description of err ("corrupt data"). Static storage. */
ALOG_API const char *alog_strerror(alog_err err);
/* The enum name of err without the prefix ("ECORRUPT"). Static storage. */
ALOG_API const char *alog_err_name(alog_err err);
/* The detailed message of the last error returned to this thread, e.g.
 * "00000000000000000000.log: CRC mismatch in batch at position 4096 (offset 57)".
 * Valid until the next alog_ call on this thread; "" if none. */
ALOG_API const char *alog_last_error(void);
/* The errno of the failed system call behind the last error on this thread, or 0. */
ALOG_API int alog_last_errno(void);

/* ---------------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------------- */
typedef enum alog_fsync_policy {
    ALOG_FSYNC_NEVER = 0,    /* leave it to the OS; alog_sync() and close still sync */
    ALOG_FSYNC_INTERVAL = 1, /* fsync when fsync_interval_ms has passed since the last */
    ALOG_FSYNC_ALWAYS = 2,   /* fsync before every append returns */
} alog_fsync_policy;

typedef enum alog_compression {
    ALOG_COMPRESSION_NONE = 0,
    ALOG_COMPRESSION_GZIP = 1,
    ALOG_COMPRESSION_SNAPPY = 2,
    ALOG_COMPRESSION_LZ4 = 3,
    ALOG_COMPRESSION_ZSTD = 4,
} alog_compression;

typedef struct alog_options {
    /* Set by alog_options_init(); lets fields be added without breaking callers. */
    size_t struct_size;
    /* Roll to a new segment when the active one would pass this size. Default 1 GiB.
     * At least 64. A single batch larger than this still goes into a segment of its own. */
    uint64_t segment_bytes;
    /* Add an offset-index and a time-index entry every this many bytes of log.
     * Default 4096 (Kafka's index.interval.bytes). */
    uint32_t index_interval_bytes;
    /* Default ALOG_FSYNC_INTERVAL with fsync_interval_ms = 1000: the log's own thread
     * fsyncs what was appended once the interval has passed since the last sync (an
     * append that finds a sync due wakes it, and it also syncs what is left when
     * appends stop), so no record stays unsynced much longer than the interval and no
     * append waits for an fsync. A failed fsync fails the log (ALOG_EFAILED) until it
     * is reopened. fsync_interval_ms = 0 with ALOG_FSYNC_INTERVAL syncs as soon as
     * possible after every append, in the background. */
    alog_fsync_policy fsync_policy;
    uint32_t fsync_interval_ms;
    /* Retention: delete whole oldest segments once the log is larger than
     * retention_bytes, or once a segment's newest timestamp is older than retention_ms.
     * The active segment is never deleted. 0 = no limit (the default for both). */
    uint64_t retention_bytes;
    uint64_t retention_ms;
    /* Codec of the batches alog_append*() writes. Default none. */
    alog_compression compression;
    /* Largest batch alog_append_batch() or alog_append_raw() accepts. Default 64 MiB. */
    uint32_t max_batch_bytes;
    /* Open read-only: no lock taken, nothing on disk changed, a torn tail is ignored
     * rather than cut. Default 0. */
    int read_only;
    /* Create the directory and an empty log if there is none. Default 1. */
    int create_if_missing;
    /* Check the CRC32C of every batch a cursor reads. Default 1. */
    int verify_reads;
    /* Once records are made durable one call at a time (ALOG_FSYNC_ALWAYS, durable
     * appends, alog_wait_durable(), alog_on_durable() or alog_sync()), the log's own
     * thread keeps up to this many bytes zero-filled and synced past the end of the
     * active segment, in steps of this size, so that an fsync finds the file's size and
     * blocks already on disk and needs no filesystem journal commit (measured on ext4:
     * one fdatasync of 6,400 appended bytes ~95 us instead of ~155 us). The zeros are
     * never data: a clean close, and every segment roll, cut the file back to its last
     * batch; after a crash, open keeps them as preallocated space. Default 1 MiB;
     * 0 = off. At most 1 GiB. */
    uint64_t preallocate_bytes;
} alog_options;

/* Fills *opts with the defaults above. */
ALOG_API void alog_options_init(alog_options *opts);

/* ---------------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------------- */

/* Timestamp meaning "the current wall-clock time" on append. */
#define ALOG_TIMESTAMP_NOW INT64_MIN

typedef struct alog_header {
    const char *key; /* never NULL (Kafka header keys are non-null UTF-8) */
    size_t key_len;
    const void *value; /* NULL = null value */
    size_t value_len;
} alog_header;

typedef struct alog_record {
    int64_t offset;    /* set by reads; ignored by appends */
    int64_t timestamp; /* ms since the Unix epoch; ALOG_TIMESTAMP_NOW on append */
    const void *key;   /* NULL = null key (distinct from an empty key) */
    size_t key_len;
    const void *value; /* NULL = null value (a tombstone) */
    size_t value_len;
    const alog_header *headers;
    size_t header_count;
} alog_record;

/* ---------------------------------------------------------------------------------
 * The log
 * ------------------------------------------------------------------------------- */
typedef struct alog alog;

/* What recovery found when the log was opened. */
typedef struct alog_recovery_info {
    int clean;                  /* 1 if the log was closed cleanly and nothing was checked */
    uint64_t segments_checked;  /* segments scanned past the recovery point */
    uint64_t bytes_checked;     /* bytes scanned */
    uint64_t bytes_truncated;   /* bytes cut from the tail (torn or corrupt); zeros after
                                 * the last batch are preallocated space, not counted */
    int64_t first_cut_offset;   /* first offset no longer in the log, or -1 if none cut */
    uint64_t indexes_rebuilt;   /* offset/time indexes rebuilt because missing or damaged */
} alog_recovery_info;

/* Opens the log in directory dir, creating it if allowed (opts->create_if_missing).
 * opts may be NULL for the defaults; it is copied. A writable open takes an exclusive
 * lock on the directory: a second writer gets ALOG_ELOCKED with the holder's pid in
 * alog_last_error(). After an unclean shutdown the unsynced tail is checked and a torn
 * or corrupt tail is cut (see alog_recovery()). *out is owned by the caller and freed
 * with alog_close(). */
ALOG_API alog_err alog_open(const char *dir, const alog_options *opts, alog **out);

/* Syncs and closes the log (a clean close: the next open checks nothing), then frees
 * it. Returns the error of the final sync, if any, or ALOG_EFAILED if the log had
 * failed earlier (appends since the failure may not be on disk; the next open
 * recovers); the handle is freed either way. Cursors must be closed first. */
ALOG_API alog_err alog_close(alog *log);

/* What recovery did at open. Valid until alog_close(). */
ALOG_API const alog_recovery_info *alog_recovery(const alog *log);

/* The offset of the oldest record still in the log, and the offset the next appended
 * record will get. Equal when the log is empty. Safe from any thread. */
ALOG_API int64_t alog_first_offset(const alog *log);
ALOG_API int64_t alog_next_offset(const alog *log);

/* Appends one record; *offset_out (may be NULL) gets its offset. The record is in the
 * OS page cache when this returns, durable according to the fsync policy. */
ALOG_API alog_err alog_append(alog *log, const alog_record *rec, int64_t *offset_out);

/* Appends n records as one batch, atomically: after a crash either all of them are in
 * the log or none. *first_offset_out (may be NULL) gets the first record's offset; the
 * others follow contiguously. */
ALOG_API alog_err alog_append_batch(alog *log, const alog_record *recs, size_t n,
                           int64_t *first_offset_out);

/* Appends one Kafka RecordBatch v2 exactly as a client sent it. The batch is checked
 * (sizes, magic 2, CRC32C, record count against lastOffsetDelta, each record's framing)
 * and stored with only its baseOffset and partitionLeaderEpoch rewritten; compressed
 * batches stay compressed. buf is not modified (the log writes a copy).
 * ALOG_ECORRUPT if the batch is invalid (nothing stored). *base_offset_out may be NULL. */
ALOG_API alog_err alog_append_raw(alog *log, const void *buf, size_t len, int32_t leader_epoch,
                         int64_t *base_offset_out);

/* Flags of alog_append_ex(). */
#define ALOG_APPEND_DURABLE 1u /* return only once the records are durable (fsynced) */

/* alog_append_batch() with flags. With ALOG_APPEND_DURABLE the call returns once an
 * fsync that covers the batch has succeeded, whatever the fsync policy; concurrent
 * durable appends share fsyncs (group commit: while one fsync runs, the next group
 * gathers). Safe from any number of threads. */
ALOG_API alog_err alog_append_ex(alog *log, const alog_record *recs, size_t n, unsigned flags,
                                 int64_t *first_offset_out);

/* Every record below this offset is known durable (covered by a successful fsync). */
ALOG_API int64_t alog_durable_offset(const alog *log);

/* Waits until the record at offset is durable, starting an fsync if none is running
 * (group commit with concurrent waiters). timeout_ms < 0 waits without limit.
 * ALOG_OK once durable; ALOG_ETIMEDOUT; ALOG_EFAILED if the fsync failed (the log then
 * accepts no more writes until reopened); ALOG_ERANGE if offset was never appended. */
ALOG_API alog_err alog_wait_durable(alog *log, int64_t offset, int timeout_ms);

/* Called once the record at `offset` is durable (err ALOG_OK) or can no longer become
 * durable (err ALOG_EFAILED, or the log was closed first: ALOG_EFAILED too). */
typedef void (*alog_durable_fn)(void *ctx, int64_t offset, alog_err err);

/* Registers fn to be called when the record at offset is durable; returns at once.
 * fn runs on the log's own fsync thread (or in this call if the record already is
 * durable) and must not call back into the log's write functions. ALOG_ERANGE if
 * offset was never appended. */
ALOG_API alog_err alog_on_durable(alog *log, int64_t offset, alog_durable_fn fn, void *ctx);

/* Hands written data to the OS (no-op today: appends are written directly). */
ALOG_API alog_err alog_flush(alog *log);
/* Makes everything appended so far durable (fdatasync of the active segment). */
ALOG_API alog_err alog_sync(alog *log);

/* The first offset whose record timestamp is at or after ts (ms). If no record is,
 * *offset_out is the next offset. Uses the time index, then scans one index interval. */
ALOG_API alog_err alog_offset_for_time(alog *log, int64_t ts, int64_t *offset_out);

/* Applies retention now (it also runs at every segment roll). *deleted_out (may be NULL)
 * gets the number of segments deleted. */
ALOG_API alog_err alog_retention_run(alog *log, uint64_t *deleted_out);

/* ---------------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------------- */
typedef struct alog_cursor alog_cursor;

/* Opens a cursor positioned at offset (which may be alog_next_offset(), to read what
 * is appended later). ALOG_ERANGE if offset is below the first offset or above the
 * next. *out is owned by the caller, freed with alog_cursor_close(), and must be closed
 * before the log. */
ALOG_API alog_err alog_cursor_open(alog *log, int64_t offset, alog_cursor **out);

/* Reads the next record into *rec. ALOG_EOF at the end of the log (call again later
 * to see records appended since). ALOG_ECORRUPT if a batch fails its checks (the
 * message names the segment file, position and offset). ALOG_ERANGE if retention
 * deleted the segment under the cursor. The pointers in *rec stay valid until the next
 * call on this cursor or its close. */
ALOG_API alog_err alog_cursor_next(alog_cursor *cur, alog_record *rec);

/* Blocks until a record past the cursor's position is there to read, or timeout_ms
 * passes (< 0: no limit). ALOG_OK: the next alog_cursor_next() will not return
 * ALOG_EOF (unless retention removes the record first). ALOG_ETIMEDOUT otherwise (and,
 * on a read-only handle, when a signal interrupts the wait). No
 * polling: a condition variable wakes readers of the writer's own handle; a read-only
 * handle (another process's writer) waits with inotify on the log directory, one
 * inotify instance per waiting call (when the user's instances or watches run out,
 * fs.inotify.max_user_instances, that wait looks every 20 ms instead of failing). */
ALOG_API alog_err alog_cursor_wait(alog_cursor *cur, int timeout_ms);

/* Raw batches, for a server that sends segment bytes as they are (Kafka's Fetch). */
typedef struct alog_raw {
    int fd;               /* the segment file; valid until alog_raw_release() */
    uint64_t position;    /* byte position of the first batch in that file */
    uint64_t length;      /* bytes of whole batches from there; 0 at the end of the log */
    const void *data;     /* the same bytes, mapped read-only */
    int64_t base_offset;  /* base offset of the first batch (may be below the offset asked) */
    int64_t next_offset;  /* one past the last offset in these batches */
    void *internal;
} alog_raw;

/* Whole batches starting with the one that holds offset, from one segment, as many as
 * fit in max_bytes but at least one (Kafka's rule: a batch larger than max_bytes is
 * still returned whole). offset == alog_next_offset(): length 0. ALOG_ERANGE below the
 * first offset or above the next; ALOG_ECORRUPT if a batch fails its checks (CRC when
 * verify_reads is on). On success *out holds a reference to the segment (its file
 * stays open and mapped even if retention deletes it) until alog_raw_release(). */
ALOG_API alog_err alog_read_raw(alog *log, int64_t offset, size_t max_bytes, alog_raw *out);
ALOG_API void alog_raw_release(alog_raw *raw);

/* Moves the cursor to offset (same rules as alog_cursor_open). */
ALOG_API alog_err alog_cursor_seek(alog_cursor *cur, int64_t offset);

ALOG_API void alog_cursor_close(alog_cursor *cur);

/* ---------------------------------------------------------------------------------
 * Inspection, verification
 * ------------------------------------------------------------------------------- */
typedef struct alog_segment_info {
    int64_t base_offset;
    int64_t next_offset;   /* one past its last record */
    uint64_t size_bytes;   /* of the .log file */
    int64_t min_timestamp; /* baseTimestamp of its first batch (its first record's create
                            * time): its earliest when timestamps never go back; records
                            * with older create times may follow. -1 if empty */
    int64_t max_timestamp; /* -1 if the segment is empty */
    uint64_t batches;      /* only filled by alog_verify; else 0 */
    int active;            /* 1 for the segment appends go to */
} alog_segment_info;

/* A snapshot of the log's segments, oldest first. *segs is owned by the caller and
 * freed with alog_free(). */
ALOG_API alog_err alog_segments(alog *log, alog_segment_info **segs, size_t *count);

/* Frees memory the library handed to the caller. */
ALOG_API void alog_free(void *p);

/* One batch of a segment file, as alog_scan_segment_file() sees it. */
typedef struct alog_batch_info {
    uint64_t position; /* byte position in the file */
    int64_t base_offset;
    int32_t batch_length; /* bytes after the length field */
    int32_t leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
} alog_batch_info;

/* Called for each valid batch; return non-zero to stop the scan. */
typedef int (*alog_batch_fn)(const alog_batch_info *batch, void *ctx);

/* Reads a segment .log file batch by batch, checking each batch fully (framing, CRC,
 * records). Calls fn for every valid batch in order. Stops at the first invalid batch:
 * returns ALOG_ECORRUPT with the file, position and offset in alog_last_error(), and
 * *valid_bytes_out (may be NULL) holds the bytes before it. ALOG_OK if the whole file
 * is valid. Does not modify the file. */
ALOG_API alog_err alog_scan_segment_file(const char *path, alog_batch_fn fn, void *ctx,
                                uint64_t *valid_bytes_out);

/* Progress of alog_verify: bytes checked so far out of the total. */
typedef void (*alog_progress_fn)(uint64_t done, uint64_t total, void *ctx);

typedef struct alog_verify_report {
    uint64_t segments;
    uint64_t batches;
    uint64_t records;
    uint64_t bytes;
    /* On damage: the first damaged segment file, the byte position and the offset of
     * the batch that failed (offset -1 if unknown). */
    char bad_file[512];
    uint64_t bad_position;
    int64_t bad_offset;
} alog_verify_report;

/* Checks every batch of every segment of the log in dir (read-only; safe while a writer
 * runs), and that each index agrees with its data. Returns ALOG_ECORRUPT at the first
 * damage, with *report filled; ALOG_OK if everything checks. progress may be NULL. */
ALOG_API alog_err alog_verify(const char *dir, alog_verify_report *report, alog_progress_fn progress,
                     void *progress_ctx);

#ifdef __cplusplus
}
#endif
#endif /* ALOG_H */
