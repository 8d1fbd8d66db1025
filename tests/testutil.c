/*
 * testutil.c -- see testutil.h.
 */
#include "testutil.h"

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
