/*
 * io.h -- the one seam between the engine and the operating system's file calls.
 *
 * Every file operation of the engine goes through the table `io` (SQLite's VFS idea):
 * production uses the plain system calls, tests swap in a table that records, delays
 * or fails operations to prove crash safety and error handling. Helpers below add what
 * every caller needs: loops over short reads/writes and EINTR, directory fsync, and the
 * durable replacement of a small file (write temp, fsync, rename, fsync directory).
 */
#ifndef ALOG_IO_H
#define ALOG_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "alog.h"

typedef struct io_ops {
    int (*open)(const char *path, int flags, mode_t mode);
    int (*close)(int fd);
    ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    int (*fsync)(int fd);
    int (*fdatasync)(int fd);
    int (*ftruncate)(int fd, off_t len);
    int (*rename)(const char *from, const char *to);
    int (*unlink)(const char *path);
    int (*mkdir)(const char *path, mode_t mode);
    void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd, off_t off);
    int (*munmap)(void *addr, size_t len);
    int (*sync_file_range)(int fd, off_t off, off_t n, unsigned flags);
} io_ops;

/* The table in use. Tests may point it elsewhere before opening logs. */
extern const io_ops *io;
extern const io_ops io_posix;

/* Writes all n bytes at off, retrying short writes and EINTR. On failure returns an
 * alog_err with a message naming path, and the bytes that did get written may be
 * anywhere in [off, off+n): the caller cuts them. */
alog_err io_pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *path);
/* Reads up to n bytes at off, retrying short reads and EINTR: fewer only where the file
 * ends. -1 with errno set on failure. */
ssize_t io_pread_upto(int fd, void *buf, size_t n, uint64_t off);
/* Reads exactly n bytes at off (ALOG_EIO on a short read, naming path). */
alog_err io_pread_all(int fd, void *buf, size_t n, uint64_t off, const char *path);
/* fdatasync / fsync through the table, asked again after EINTR. */
int io_fdatasync(int fd);
int io_fsync(int fd);
/* fsync of a directory, so that file creations, renames and removals in it persist. */
alog_err io_fsync_dir(const char *dir);
/* mkdir -p: creates dir and any missing parents (not made durable: the caller fsyncs
 * what must survive). */
alog_err io_make_dirs(const char *dir);
/* Durably replaces dir/name with data: dir/name.tmp, fsync, rename, fsync dir. */
alog_err io_replace_file(const char *dir, const char *name, const void *data, size_t len);
/* Reads a small whole file into buf (at most cap bytes); *len gets its size.
 * ALOG_ENOENT if it does not exist. */
alog_err io_read_small_file(const char *path, char *buf, size_t cap, size_t *len);

#endif
