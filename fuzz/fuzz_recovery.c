/*
 * fuzz_recovery.c -- libFuzzer target for everything alog reads back from a log
 * directory: segment .log files (recovery's scan in recovery.c and segment.c, the
 * cursor in cursor.c, alog_scan_segment_file and alog_verify in verify.c), the
 * .index/.timeindex files (index.c) and the recovery-point checkpoint (recovery.c).
 * Those files are whatever a crash, bit rot or another program left on disk, so no
 * content may crash the engine or leak, and recovery must leave a log that keeps its
 * own invariants.
 *
 * Two input forms:
 *   raw        the bytes are the only segment, 00000000000000000000.log, beside an
 *              alog.meta and nothing else, so opening scans all of it;
 *   container  "ALOGFUZZ", a flags byte, then sections of (kind byte, 16-bit big-endian
 *              length, bytes) giving files of a log of up to two segments (kind % 8:
 *              0/1/2 = first segment's .log/.index/.timeindex, 3 = recovery-point,
 *              4 = alog.meta, 5/6/7 = second segment's, whose .log section starts with
 *              its 8-byte big-endian base offset). Seeds are whole log directories.
 *              Flags: FL_FIX_CRC recomputes the CRC of every batch whose framing
 *              holds and FL_FIX_CHECKPOINT the checkpoint's, after mutation, so that
 *              the fuzzer gets past the checksums; the others vary the options.
 *
 * Per input, in one directory per process (mkdtemp under $TMPDIR or /tmp, emptied
 * between inputs, removed at exit): the files are written; alog_scan_segment_file runs
 * on each segment file and alog_verify on the directory; a read-only open reads every
 * record; a writable open (which recovers: scans, cuts the tail, rebuilds indexes)
 * reads every record, lists segments, looks up by time, appends one record, reads
 * everything again and closes; a second writable open reads everything again;
 * alog_verify runs again. Where the input holds no checkpoint, recovery trusts nothing
 * and stronger checks apply: offsets in range, the appended record readable, the
 * reopen clean with the same records, and alog_verify passing on a log whose every
 * record and batch checked out.
 *
 * fsync and fdatasync are stubbed out through the io table (io.h), and the fsync
 * policy is "never": durability is not what is fuzzed here, and this keeps it fast.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alog.h"
#include "batch.h"
#include "bytes.h"
#include "crc32c.h"
#include "io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz_recovery: %s:%d: check failed: %s (last error: %s)\n",   \
                    __FILE__, __LINE__, #cond, alog_last_error());                         \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

#define MAGIC "ALOGFUZZ"
#define MAGIC_LEN 8

enum {
    FL_FIX_CRC = 1,        /* recompute batch CRCs in the .log files */
    FL_FIX_CHECKPOINT = 2, /* recompute the checkpoint's crc= */
    FL_NO_VERIFY_READS = 4,
    FL_SMALL_INDEX = 8,     /* index_interval_bytes 64 instead of 4096 */
    FL_SMALL_SEGMENTS = 16, /* segment_bytes 1024 instead of 1 MiB: appends roll */
};

enum { K_LOG_A, K_INDEX_A, K_TINDEX_A, K_CHECKPOINT, K_META, K_LOG_B, K_INDEX_B, K_TINDEX_B };

static char g_dir[4096];
static io_ops g_io;
static volatile uint8_t g_sink;

static int no_sync(int fd) {
    (void)fd;
    return 0;
}

/* Empties the (flat) work directory. */
static void empty_dir(void) {
    DIR *d = opendir(g_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static void remove_dir(void) {
    empty_dir();
    rmdir(g_dir);
}

static void setup_once(void) {
    if (g_dir[0]) return;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/alog-fuzz-recovery-XXXXXX", tmp);
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "fuzz_recovery: mkdtemp %s: %s\n", g_dir, strerror(errno));
        abort();
    }
    atexit(remove_dir);
    g_io = io_posix;
    g_io.fsync = no_sync;
    g_io.fdatasync = no_sync;
    io = &g_io;
}

static void write_file(const char *name, const uint8_t *p, size_t n) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        CHECK(w > 0);
        p += w;
        n -= (size_t)w;
    }
    close(fd);
}

static void seg_name(char *buf, size_t n, int64_t base, const char *ext) {
    snprintf(buf, n, "%020" PRId64 ".%s", base, ext);
}

/* Recomputes the CRC of each batch of a segment image whose framing holds. */
static void fix_batch_crcs(uint8_t *p, size_t n) {
    size_t pos = 0;
    while (n - pos >= BATCH_HEADER_SIZE) {
        batch_header h;
        batch_header_parse(p + pos, &h);
        if (h.length < BATCH_MIN_LENGTH || batch_size(&h) > n - pos) break;
        size_t bs = (size_t)batch_size(&h);
        be32_store(p + pos + BATCH_OFF_CRC,
                   crc32c(p + pos + BATCH_CRC_START, bs - BATCH_CRC_START));
        pos += bs;
    }
}

/* Writes a checkpoint whose " crc=" matches its text (appended if missing). */
static void write_fixed_checkpoint(const uint8_t *p, size_t n) {
    char *text = malloc(n + 1);
    CHECK(text != NULL);
    memcpy(text, p, n);
    text[n] = '\0';
    size_t body = strlen(text); /* stop at a NUL, as the parser would */
    char *crc = strstr(text, " crc=");
    if (crc) body = (size_t)(crc - text);
    char *out = malloc(body + 32);
    CHECK(out != NULL);
    memcpy(out, text, body);
    int m = snprintf(out + body, 32, " crc=%08x\n", crc32c(text, body));
    write_file("recovery-point", (const uint8_t *)out, body + (size_t)m);
    free(out);
    free(text);
}

static void touch(const void *p, size_t n) {
    const uint8_t *b = p;
    uint8_t x = 0;
    for (size_t i = 0; i < n; i++) x ^= b[i];
    g_sink ^= x;
}

/* What one pass of a cursor over the whole log saw. */
typedef struct pass {
    uint64_t records;
    alog_err end; /* ALOG_EOF if it reached the end, else the error that stopped it */
    int64_t last;
    uint32_t digest; /* over offsets, timestamps, keys and values */
} pass;

static uint32_t digest_add(uint32_t crc, const void *p, size_t n) {
    return p ? crc32c_extend(crc, p, n) : crc32c_extend(crc, "\xff", 1);
}

static void read_all(alog *log, int strict, pass *r) {
    memset(r, 0, sizeof *r);
    r->last = -1;
    int64_t first = alog_first_offset(log), next = alog_next_offset(log);
    CHECK(first >= 0 && first <= next);
    alog_cursor *c;
    alog_err e = alog_cursor_open(log, first, &c);
    if (e) {
        CHECK(!strict || e == ALOG_ECORRUPT);
        r->end = e;
        return;
    }
    alog_record rec;
    while ((e = alog_cursor_next(c, &rec)) == ALOG_OK) {
        CHECK(rec.offset > r->last && rec.offset >= first);
        if (strict) CHECK(rec.offset < next);
        if (rec.key) touch(rec.key, rec.key_len);
        if (rec.value) touch(rec.value, rec.value_len);
        for (size_t i = 0; i < rec.header_count; i++) {
            touch(rec.headers[i].key, rec.headers[i].key_len);
            if (rec.headers[i].value) touch(rec.headers[i].value, rec.headers[i].value_len);
        }
        r->digest = crc32c_extend(r->digest, &rec.offset, sizeof rec.offset);
        r->digest = crc32c_extend(r->digest, &rec.timestamp, sizeof rec.timestamp);
        r->digest = digest_add(r->digest, rec.key, rec.key_len);
        r->digest = digest_add(r->digest, rec.value, rec.value_len);
        r->records++;
        r->last = rec.offset;
    }
    CHECK(e == ALOG_EOF || e == ALOG_ECORRUPT || e == ALOG_ERANGE || e == ALOG_EUNSUPPORTED);
    r->end = e;
    /* At the end, the cursor stays there. */
    if (e == ALOG_EOF) CHECK(alog_cursor_next(c, &rec) == ALOG_EOF);
    alog_cursor_close(c);
}

static int stop_after(const alog_batch_info *b, void *ctx) {
    CHECK(b->magic == BATCH_MAGIC && b->batch_length >= BATCH_MIN_LENGTH);
    unsigned *left = ctx;
    return *left > 0 && --*left == 0;
}

/* alog_scan_segment_file on one file; *clean set to 0 if it found damage. */
static void scan_file(const char *name, unsigned stop, int *clean) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    if (access(path, F_OK) != 0) return;
    uint64_t valid = UINT64_MAX;
    unsigned left = stop;
    alog_err e = alog_scan_segment_file(path, stop_after, &left, &valid);
    CHECK(e == ALOG_OK || e == ALOG_ECORRUPT || e == ALOG_EUNSUPPORTED);
    CHECK(valid != UINT64_MAX);
    if (e && clean) *clean = 0;
}

/* The segment files present, for the final scans. */
static void scan_all(unsigned stop, int *clean) {
    DIR *d = opendir(g_dir);
    CHECK(d != NULL);
    struct dirent *e;
    char names[16][64];
    size_t n = 0;
    while ((e = readdir(d)) && n < 16) {
        size_t len = strlen(e->d_name);
        if (len == 24 && strcmp(e->d_name + 20, ".log") == 0) memcpy(names[n++], e->d_name, len + 1);
    }
    closedir(d);
    for (size_t i = 0; i < n; i++) scan_file(names[i], stop, clean);
}

/* Seeks to a few offsets across the log (through the offset index) and reads a little. */
static void seek_some(alog *log) {
    int64_t first = alog_first_offset(log), next = alog_next_offset(log);
    alog_cursor *c = NULL;
    for (int k = 1; k <= 4; k++) {
        int64_t off = first + (int64_t)((uint64_t)(next - first) / 4 * (uint64_t)k);
        alog_err e = c ? alog_cursor_seek(c, off) : alog_cursor_open(log, off, &c);
        CHECK(e == ALOG_OK || e == ALOG_ECORRUPT || e == ALOG_ERANGE || e == ALOG_EIO);
        if (e) continue;
        alog_record rec;
        for (int i = 0; i < 2 && (e = alog_cursor_next(c, &rec)) == ALOG_OK; i++)
            CHECK(rec.offset >= off);
        CHECK(e == ALOG_OK || e == ALOG_EOF || e == ALOG_ECORRUPT || e == ALOG_ERANGE ||
              e == ALOG_EUNSUPPORTED);
    }
    alog_cursor_close(c);
}

static void check_segments(alog *log, int strict) {
    alog_segment_info *segs = NULL;
    size_t n = 0;
    alog_err e = alog_segments(log, &segs, &n);
    if (e) {
        CHECK(!strict && (e == ALOG_ECORRUPT || e == ALOG_EIO));
        return;
    }
    CHECK(n >= 1);
    for (size_t i = 0; i < n; i++) {
        CHECK(segs[i].next_offset >= segs[i].base_offset);
        CHECK(segs[i].active == (i == n - 1));
        if (strict && i + 1 < n) CHECK(segs[i].next_offset == segs[i + 1].base_offset);
        int64_t off;
        if (segs[i].max_timestamp >= 0) {
            e = alog_offset_for_time(log, segs[i].max_timestamp, &off);
            CHECK(e == ALOG_OK || e == ALOG_ECORRUPT || e == ALOG_EUNSUPPORTED || e == ALOG_EIO);
            if (e == ALOG_OK && strict) CHECK(off >= alog_first_offset(log) && off <= alog_next_offset(log));
        }
    }
    alog_free(segs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setup_once();
    empty_dir();

    /* The files of the input. */
    const uint8_t *file[8] = {0};
    size_t flen[8] = {0};
    int have[8] = {0};
    unsigned flags = 0;
    int64_t base_b = 0;
    if (size >= MAGIC_LEN + 1 && memcmp(data, MAGIC, MAGIC_LEN) == 0) {
        flags = data[MAGIC_LEN];
        size_t pos = MAGIC_LEN + 1;
        while (size - pos >= 3) {
            int kind = data[pos] % 8;
            size_t n = be16_load(data + pos + 1);
            pos += 3;
            if (n > size - pos) n = size - pos;
            file[kind] = data + pos;
            flen[kind] = n;
            have[kind] = 1;
            pos += n;
        }
        if (have[K_LOG_B] && flen[K_LOG_B] >= 8) {
            base_b = (int64_t)(be64_load(file[K_LOG_B]) & INT64_MAX);
            file[K_LOG_B] += 8;
            flen[K_LOG_B] -= 8;
        }
        if (base_b == 0) have[K_LOG_B] = have[K_INDEX_B] = have[K_TINDEX_B] = 0;
    } else {
        file[K_LOG_A] = data;
        flen[K_LOG_A] = size;
        have[K_LOG_A] = 1;
    }

    static const char *const ext[3] = {"log", "index", "timeindex"};
    char name[64];
    for (int k = 0; k < 8; k++) {
        if (!have[k] || k == K_CHECKPOINT || k == K_META) continue;
        int64_t base = k < K_CHECKPOINT ? 0 : base_b;
        seg_name(name, sizeof name, base, ext[k < K_CHECKPOINT ? k : k - K_LOG_B]);
        if ((k == K_LOG_A || k == K_LOG_B) && (flags & FL_FIX_CRC) && flen[k]) {
            uint8_t *copy = malloc(flen[k]);
            CHECK(copy != NULL);
            memcpy(copy, file[k], flen[k]);
            fix_batch_crcs(copy, flen[k]);
            write_file(name, copy, flen[k]);
            free(copy);
        } else {
            write_file(name, file[k], flen[k]);
        }
    }
    if (have[K_META]) write_file("alog.meta", file[K_META], flen[K_META]);
    else write_file("alog.meta", (const uint8_t *)"alog-format 1\n", 14);
    int has_checkpoint = have[K_CHECKPOINT];
    if (has_checkpoint) {
        if (flags & FL_FIX_CHECKPOINT) write_fixed_checkpoint(file[K_CHECKPOINT], flen[K_CHECKPOINT]);
        else write_file("recovery-point", file[K_CHECKPOINT], flen[K_CHECKPOINT]);
    }
    /* With no checkpoint, recovery checks everything and the strict checks apply. */
    int strict = !has_checkpoint && !(flags & FL_NO_VERIFY_READS);
    unsigned stop = size ? data[size - 1] % 4 : 0;

    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.create_if_missing = 0;
    o.max_batch_bytes = 64u << 10; /* bounds decompression at 1 MiB per batch */
    o.segment_bytes = (flags & FL_SMALL_SEGMENTS) ? 1024 : (1u << 20);
    o.index_interval_bytes = (flags & FL_SMALL_INDEX) ? 64 : 4096;
    o.verify_reads = !(flags & FL_NO_VERIFY_READS);

    /* 1. Read-only tools on the files as given. */
    seg_name(name, sizeof name, 0, "log");
    scan_file(name, stop, NULL);
    if (have[K_LOG_B]) {
        seg_name(name, sizeof name, base_b, "log");
        scan_file(name, stop, NULL);
    }
    alog_verify_report rep;
    alog_err e = alog_verify(g_dir, &rep, NULL, NULL);
    CHECK(e == ALOG_OK || e == ALOG_ECORRUPT || e == ALOG_ENOENT || e == ALOG_EFORMAT ||
          e == ALOG_EUNSUPPORTED || e == ALOG_EIO);

    /* 2. A read-only open: recovers in memory only. */
    alog *log;
    alog_options ro = o;
    ro.read_only = 1;
    if (alog_open(g_dir, &ro, &log) == ALOG_OK) {
        pass p;
        read_all(log, strict, &p);
        seek_some(log);
        check_segments(log, strict);
        CHECK(alog_append(log, &(alog_record){.timestamp = 1}, NULL) == ALOG_EREADONLY);
        alog_close(log);
    }

    /* 3. A writable open: recovery cuts and rebuilds for real. */
    e = alog_open(g_dir, &o, &log);
    if (e) {
        CHECK(e == ALOG_ECORRUPT || e == ALOG_ENOENT || e == ALOG_EFORMAT || e == ALOG_EIO ||
              e == ALOG_EINVAL);
        return 0;
    }
    const alog_recovery_info *ri = alog_recovery(log);
    CHECK(ri->first_cut_offset >= -1);
    pass before;
    read_all(log, strict, &before);
    seek_some(log);
    check_segments(log, strict);
    int64_t next = alog_next_offset(log), off = -1;
    static const char key[] = "fuzz-key", val[] = "fuzz-value";
    alog_record rec = {.timestamp = 1700000000000, .key = key, .key_len = 8,
                       .value = val, .value_len = 10};
    e = alog_append(log, &rec, &off);
    if (e == ALOG_OK) {
        CHECK(off == next && alog_next_offset(log) == next + 1);
        if (strict) {
            alog_cursor *c;
            CHECK(alog_cursor_open(log, off, &c) == ALOG_OK);
            alog_record got;
            CHECK(alog_cursor_next(c, &got) == ALOG_OK);
            CHECK(got.offset == off && got.timestamp == rec.timestamp);
            CHECK(got.key_len == 8 && memcmp(got.key, key, 8) == 0);
            CHECK(got.value_len == 10 && memcmp(got.value, val, 10) == 0);
            CHECK(alog_cursor_next(c, &got) == ALOG_EOF);
            alog_cursor_close(c);
        }
    } else {
        /* No offsets left (next offset at INT64_MAX). */
        CHECK(e == ALOG_ERANGE);
    }
    pass after;
    read_all(log, strict, &after);
    next = alog_next_offset(log);
    CHECK(alog_close(log) == ALOG_OK);

    /* 4. Reopen: a clean log with the same records. (Only without a checkpoint in the
     * input: one vouching for damaged bytes or index files can make a later open
     * rebuild, rescan and cut, as designed.) */
    CHECK(alog_open(g_dir, &o, &log) == ALOG_OK);
    pass again;
    read_all(log, strict, &again);
    if (strict) {
        CHECK(alog_recovery(log)->clean == 1);
        CHECK(alog_next_offset(log) == next);
        CHECK(again.records == after.records && again.end == after.end &&
              again.last == after.last && again.digest == after.digest);
    }
    CHECK(alog_close(log) == ALOG_OK);

    /* 5. Verify what recovery left. Where recovery trusted nothing, and every batch
     * and record checks out, the offsets and indexes it rebuilt must verify. */
    int clean = 1;
    scan_all(0, &clean);
    e = alog_verify(g_dir, &rep, NULL, NULL);
    CHECK(e == ALOG_OK || e == ALOG_ECORRUPT || e == ALOG_EUNSUPPORTED);
    if (strict && clean && after.end == ALOG_EOF) {
        if (e) fprintf(stderr, "fuzz_recovery: alog_verify: %s\n", alog_last_error());
        CHECK(e == ALOG_OK);
    }
    return 0;
}
