/*
 * testutil.c -- see testutil.h.
 */
#include "testutil.h"

#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(p);
}

void tu_rmrf(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

char *tu_tmpdir(const char *name) {
    const char *base = getenv("ALOG_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0755);
    char *p = malloc(4096);
    assert_non_null(p);
    static int seq;
    snprintf(p, 4096, "%s/%s.%d.%d", base, name, (int)getpid(), seq++);
    tu_rmrf(p);
    if (mkdir(p, 0755) != 0) fail_msg("mkdir %s: %s", p, strerror(errno));
    return p;
}

void tu_segment_path(char *buf, size_t n, const char *dir, int64_t base, const char *ext) {
    snprintf(buf, n, "%s/%020" PRId64 ".%s", dir, base, ext);
}

int64_t tu_file_size(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return st.st_size;
}

void tu_truncate(const char *path, int64_t size) {
    if (truncate(path, size) != 0) fail_msg("truncate %s: %s", path, strerror(errno));
}

void tu_append_bytes(const char *path, const void *p, size_t n) {
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0) fail_msg("open %s: %s", path, strerror(errno));
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

void tu_flip_byte(const char *path, int64_t pos) {
    int fd = open(path, O_RDWR);
    if (fd < 0) fail_msg("open %s: %s", path, strerror(errno));
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, pos), 1);
    c ^= 0xFF;
    assert_int_equal(pwrite(fd, &c, 1, pos), 1);
    close(fd);
}

uint8_t *tu_read_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) fail_msg("open %s: %s", path, strerror(errno));
    struct stat st;
    fstat(fd, &st);
    uint8_t *p = malloc((size_t)st.st_size + 1);
    assert_non_null(p);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return p;
}

void tu_copy_file(const char *from, const char *to) {
    size_t n;
    uint8_t *p = tu_read_file(from, &n);
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) fail_msg("open %s: %s", to, strerror(errno));
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
    free(p);
}

/* ---- seeded records ------------------------------------------------------------------ */

uint64_t tu_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void tu_srec_make(tu_srec *s, uint64_t seed) {
    uint64_t st = seed;
    uint64_t h = tu_splitmix64(&st), h2 = tu_splitmix64(&st);
    snprintf(s->key, sizeof s->key, "k%016" PRIx64, seed);
    for (int i = 0; i < 8; i++) s->seed_be[i] = (uint8_t)(seed >> (56 - 8 * i));

    /* Value: "r<seed>-" then extra pseudo-random bytes. */
    char prefix[32];
    size_t plen = (size_t)snprintf(prefix, sizeof prefix, "r%" PRIu64 "-", seed);
    size_t extra;
    unsigned pick = (unsigned)(h % 1000);
    if (pick < 700) extra = (size_t)(h2 % 49);
    else if (pick < 997) extra = 48 + (size_t)(h2 % 353);
    else extra = 16384 + (size_t)(h2 % 4097); /* larger than a small segment */
    if (seed & TU_SREC_BIG) extra = 65536 + (size_t)(h2 % 65537);
    size_t vlen = plen + extra;
    if (vlen > s->val_cap) {
        uint8_t *p = realloc(s->val, vlen);
        assert_non_null(p);
        s->val = p;
        s->val_cap = vlen;
    }
    memcpy(s->val, prefix, plen);
    uint64_t vs = seed ^ 0x5EEDF00DCAFEBABEull, w = 0;
    for (size_t i = 0; i < extra; i++) {
        if (i % 8 == 0) w = tu_splitmix64(&vs);
        s->val[plen + i] = (uint8_t)(w >> (8 * (i % 8)));
    }
    int null_value = (h >> 20) % 31 == 0;

    /* Headers: none, the seed, or the seed and a second one (whose value may be null). */
    size_t nh = (size_t)((h >> 28) % 3);
    s->hdrs[0] = (alog_header){"seed", 4, s->seed_be, 8};
    size_t hl = (size_t)((h >> 32) % 41);
    for (size_t i = 0; i < hl; i++) s->hval[i] = (uint8_t)('a' + (h2 >> (i % 40)) % 26);
    int null_h = ((h >> 40) & 7) == 0;
    s->hdrs[1] = (alog_header){"x-h", 3, null_h ? NULL : s->hval, null_h ? 0 : hl};

    s->rec = (alog_record){
        .offset = 0,
        .timestamp = 1600000000000ll + (int64_t)((h >> 8) % 100000000),
        .key = s->key,
        .key_len = 17,
        .value = null_value ? NULL : s->val,
        .value_len = null_value ? 0 : vlen,
        .headers = nh ? s->hdrs : NULL,
        .header_count = nh,
    };
}

void tu_srec_free(tu_srec *s) {
    free(s->val);
    s->val = NULL;
    s->val_cap = 0;
}

static int same_bytes(const void *a, size_t al, const void *b, size_t bl) {
    if ((a == NULL) != (b == NULL) || al != bl) return 0;
    return al == 0 || memcmp(a, b, al) == 0;
}

int tu_srec_check(tu_srec *scratch, const alog_record *r, uint64_t *seed_out, char *why,
                  size_t why_len) {
    if (!r->key || r->key_len != 17 || ((const char *)r->key)[0] != 'k') {
        snprintf(why, why_len, "key is not a seeded record's key (%zu bytes)", r->key_len);
        return 0;
    }
    uint64_t seed = 0;
    for (int i = 1; i < 17; i++) {
        char c = ((const char *)r->key)[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) {
            snprintf(why, why_len, "key has a non-hex digit");
            return 0;
        }
        seed = seed << 4 | (uint64_t)d;
    }
    *seed_out = seed;
    tu_srec_make(scratch, seed);
    const alog_record *x = &scratch->rec;
    const char *bad = NULL;
    if (r->timestamp != x->timestamp) bad = "timestamp";
    else if (!same_bytes(r->value, r->value_len, x->value, x->value_len)) bad = "value";
    else if (r->header_count != x->header_count) bad = "header count";
    for (size_t i = 0; !bad && i < r->header_count; i++) {
        const alog_header *a = &r->headers[i], *b = &x->headers[i];
        if (!same_bytes(a->key, a->key_len, b->key, b->key_len)) bad = "header key";
        else if (!same_bytes(a->value, a->value_len, b->value, b->value_len)) bad = "header value";
    }
    if (bad) {
        snprintf(why, why_len, "seed %016" PRIx64 ": %s differs (value %zu bytes, expected %zu%s)",
                 seed, bad, r->value_len, x->value_len, x->value ? "" : " null");
        return 0;
    }
    return 1;
}

void tu_active_sizes(alog *log, const char *dir, int64_t *file, uint64_t *logical) {
    alog_segment_info *s;
    size_t n;
    TU_OK(alog_segments(log, &s, &n));
    char p[4096];
    tu_segment_path(p, sizeof p, dir, s[n - 1].base_offset, "log");
    *file = tu_file_size(p);
    *logical = s[n - 1].size_bytes;
    alog_free(s);
}

/* ---- fault-injecting io tables -------------------------------------------------------- */

static io_ops tu_fake_io;

io_ops *tu_fake_io_install(void) {
    tu_fake_io = io_posix;
    io = &tu_fake_io;
    return &tu_fake_io;
}

int tu_fake_io_restore(void **state) {
    (void)state;
    io = &io_posix;
    return 0;
}
