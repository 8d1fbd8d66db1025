/*
 * bench_util.c -- clock, random bytes, files, progress and statistics for alog-bench.
 */
#include "bench.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64: fast, good enough for payload bytes and lookup targets. */
uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void fill_random(uint8_t *buf, size_t len, uint64_t seed) {
    uint64_t st = seed;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t r = rng_next(&st);
        memcpy(buf + i, &r, 8);
    }
    if (i < len) {
        uint64_t r = rng_next(&st);
        memcpy(buf + i, &r, len - i);
    }
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    int r = (type == FTW_DP) ? rmdir(path) : unlink(path);
    if (r != 0 && errno != ENOENT) {
        fail("cannot remove %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int rm_rf(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int mkdir_p(const char *dir) {
    char tmp[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof tmp) return -1;
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

static uint64_t bytes_acc;

static int add_one(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    (void)path;
    (void)ftw;
    if (type == FTW_F && S_ISREG(sb->st_mode)) {
        uint64_t size = (uint64_t)sb->st_size;
        uint64_t alloc = (uint64_t)sb->st_blocks * 512u;
        bytes_acc += size < alloc ? size : alloc;
    }
    return 0;
}

uint64_t path_bytes(const char *path) {
    bytes_acc = 0;
    nftw(path, add_one, 16, FTW_PHYS);
    return bytes_acc;
}

void settle(unsigned pause_ms) {
    sync();
    struct timespec ts = {pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int progress_on;
static int progress_shown;

void progress_enable(int on) { progress_on = on && isatty(STDERR_FILENO); }

void progress(const char *fmt, ...) {
    if (!progress_on) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    progress_shown = 1;
}

void progress_done(void) {
    if (progress_on && progress_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    progress_shown = 0;
}

int fail(const char *fmt, ...) {
    progress_done();
    va_list ap;
    va_start(ap, fmt);
    fputs("alog-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void sort_doubles(double *v, size_t n) { qsort(v, n, sizeof *v, cmp_double); }

double median(const double *v, size_t n) {
    if (n == 0) return NAN;
    double *c = malloc(n * sizeof *c);
    if (!c) return NAN;
    memcpy(c, v, n * sizeof *c);
    sort_doubles(c, n);
    double m = (n % 2) ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

double percentile_sorted(double *v, size_t n, double p) {
    if (n == 0) return NAN;
    /* nearest rank */
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}
