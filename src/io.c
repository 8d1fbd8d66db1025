/*
 * io.c -- the production I/O table and the helpers of io.h.
 *
 * Kept deliberately thin: each entry is the system call itself, so the seam costs one
 * indirect call per operation and changes no behaviour.
 */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

static int posix_open(const char *path, int flags, mode_t mode) {
    return open(path, flags | O_CLOEXEC, mode);
}

static int posix_sync_file_range(int fd, off_t off, off_t n, unsigned flags) {
    return sync_file_range(fd, off, n, flags);
}

const io_ops io_posix = {
    .open = posix_open,
    .close = close,
    .pread = pread,
    .pwrite = pwrite,
    .fsync = fsync,
    .fdatasync = fdatasync,
    .ftruncate = ftruncate,
    .rename = rename,
    .unlink = unlink,
    .mkdir = mkdir,
    .mmap = mmap,
    .munmap = munmap,
    .sync_file_range = posix_sync_file_range,
};

const io_ops *io = &io_posix;

alog_err io_pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *path) {
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = io->pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return err_sys(errno, "write %s at byte %llu", path, (unsigned long long)off);
        }
        if (w == 0) return err_set(ALOG_EIO, 0, "write %s at byte %llu: wrote nothing", path,
                                   (unsigned long long)off);
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return ALOG_OK;
}

ssize_t io_pread_upto(int fd, void *buf, size_t n, uint64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = io->pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

alog_err io_pread_all(int fd, void *buf, size_t n, uint64_t off, const char *path) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = io->pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return err_sys(errno, "read %s at byte %llu", path, (unsigned long long)off);
        }
        if (r == 0)
            return err_set(ALOG_EIO, 0, "read %s at byte %llu: unexpected end of file", path,
                           (unsigned long long)off);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return ALOG_OK;
}

/* EINTR means the call was interrupted before it completed, not that it failed: the
 * sync is simply asked for again (anything else is a real failure, never retried). */
int io_fdatasync(int fd) {
    int r;
    do {
        r = io->fdatasync(fd);
    } while (r != 0 && errno == EINTR);
    return r;
}

int io_fsync(int fd) {
    int r;
    do {
        r = io->fsync(fd);
    } while (r != 0 && errno == EINTR);
    return r;
}

alog_err io_fsync_dir(const char *dir) {
    int fd = io->open(dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) return err_sys(errno, "open directory %s", dir);
    alog_err e = ALOG_OK;
    if (io_fsync(fd) != 0) e = err_sys(errno, "fsync directory %s", dir);
    io->close(fd);
    return e;
}

alog_err io_make_dirs(const char *dir) {
    char p[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof p) return err_set(ALOG_EINVAL, 0, "bad directory name '%s'", dir);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (io->mkdir(p, 0755) != 0 && errno != EEXIST) return err_sys(errno, "create directory %s", p);
        p[i] = c;
    }
    return ALOG_OK;
}

alog_err io_replace_file(const char *dir, const char *name, const void *data, size_t len) {
    char tmp[4096], dst[4096];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    int fd = io->open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return err_sys(errno, "create %s", tmp);
    alog_err e = io_pwrite_all(fd, data, len, 0, tmp);
    if (!e && io_fsync(fd) != 0) e = err_sys(errno, "fsync %s", tmp);
    if (io->close(fd) != 0 && !e) e = err_sys(errno, "close %s", tmp);
    if (!e && io->rename(tmp, dst) != 0) e = err_sys(errno, "rename %s to %s", tmp, dst);
    if (!e) e = io_fsync_dir(dir);
    if (e) io->unlink(tmp);
    return e;
}

alog_err io_read_small_file(const char *path, char *buf, size_t cap, size_t *len) {
    int fd = io->open(path, O_RDONLY, 0);
    if (fd < 0) return err_sys(errno, "open %s", path);
    size_t got = 0;
    alog_err e = ALOG_OK;
    while (got < cap) {
        ssize_t r = io->pread(fd, buf + got, cap - got, (off_t)got);
        if (r < 0) {
            if (errno == EINTR) continue;
            e = err_sys(errno, "read %s", path);
            break;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    io->close(fd);
    *len = got;
    return e;
}
