/*
 * test_durability_realdisk.c -- a write-back that really fails, on a real kernel.
 *
 * test_durability_errors models Linux's error reporting in a fake io table; this test
 * checks the model against the kernel. It makes an ext4 file system on a loop device
 * whose backing file lives on a small tmpfs, fills the tmpfs, and appends: the page
 * cache takes the record, and its write-back then fails for want of space below the
 * file system. Linux reports that once per open file description and keeps the page,
 * marked clean, holding bytes the disk does not have. The test checks that
 *  - the appends' fdatasync still reports the loss although the zero-fill (which runs
 *    its own syncs) ran after it: alog_sync fails, the record is never durable;
 *  - a reopen recovers what the disk holds, not what the page cache remembers.
 *
 * It needs root (mount, losetup) and mkfs.ext4; without them it says why and skips.
 * The fake io table only orders things: it holds the zero-fill's writes back until the
 * write-back has failed. It changes no result.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "testutil.h"

static char *top;
static char tmpfs_dir[600], mnt_dir[600], loopdev[128];
static int mounted_tmpfs, have_loop, mounted_fs, ready;

static int sh(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = out ? fread(out, 1, cap - 1, p) : 0;
    if (out) out[n] = '\0';
    char sink[256];
    while (!out && fread(sink, 1, sizeof sink, p) > 0) {
    }
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int group_setup(void **state) {
    (void)state;
    if (geteuid() != 0) {
        printf("  skipped: needs root (mount, losetup)\n");
        return 0;
    }
    top = tu_tmpdir("realdisk");
    snprintf(tmpfs_dir, sizeof tmpfs_dir, "%s/backing", top);
    snprintf(mnt_dir, sizeof mnt_dir, "%s/fs", top);
    mkdir(tmpfs_dir, 0755);
    mkdir(mnt_dir, 0755);
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=48m tmpfs '%s' 2>&1", tmpfs_dir);
    if (sh(cmd, NULL, 0) != 0) {
        printf("  skipped: cannot mount a tmpfs\n");
        return 0;
    }
    mounted_tmpfs = 1;
    snprintf(cmd, sizeof cmd, "truncate -s 256M '%s/img' && losetup -f --show '%s/img' 2>/dev/null",
             tmpfs_dir, tmpfs_dir);
    if (sh(cmd, loopdev, sizeof loopdev) != 0 || strncmp(loopdev, "/dev/loop", 9) != 0) {
        printf("  skipped: no loop device\n");
        return 0;
    }
    loopdev[strcspn(loopdev, "\n")] = '\0';
    have_loop = 1;
    snprintf(cmd, sizeof cmd,
             "mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,lazy_journal_init=0 -J size=8 %s "
             ">/dev/null 2>&1 && mount %s '%s'", loopdev, loopdev, mnt_dir);
    if (sh(cmd, NULL, 0) != 0) {
        printf("  skipped: cannot make or mount ext4 on %s\n", loopdev);
        return 0;
    }
    mounted_fs = 1;
    ready = 1;
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    char cmd[2000];
    /* Lazy unmounts: a failed test may have left a log open on the file system; the
     * loop device then detaches itself once nothing uses it. */
    if (mounted_fs) {
        snprintf(cmd, sizeof cmd, "umount -l '%s'", mnt_dir);
        sh(cmd, NULL, 0);
    }
    if (have_loop) {
        snprintf(cmd, sizeof cmd, "losetup -d %s", loopdev);
        sh(cmd, NULL, 0);
    }
    if (mounted_tmpfs) {
        snprintf(cmd, sizeof cmd, "umount -l '%s'", tmpfs_dir);
        sh(cmd, NULL, 0);
    }
    if (top) {
        tu_rmrf(top);
        free(top);
    }
    return 0;
}

/* The zero-fill (the log's thread, not the test's) waits for go before each write. */
static pthread_t main_thread;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int go = 1;
static ssize_t gated_pwrite(int fd, const void *b, size_t n, off_t off) {
    if (!pthread_equal(pthread_self(), main_thread)) {
        pthread_mutex_lock(&m);
        while (!go) pthread_cond_wait(&cv, &m);
        pthread_mutex_unlock(&m);
    }
    return pwrite(fd, b, n, off);
}
static void set_go(int v) {
    pthread_mutex_lock(&m);
    go = v;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&m);
}

static void test_lost_writeback_on_a_real_kernel(void **state) {
    (void)state;
    if (!ready) skip();
    main_thread = pthread_self();
    io_ops *t = tu_fake_io_install();
    t->pwrite = gated_pwrite;
    char dir[700], filler[700], seg[800], cmd[2000];
    snprintf(dir, sizeof dir, "%s/log", mnt_dir);
    snprintf(filler, sizeof filler, "%s/filler", tmpfs_dir);
    snprintf(seg, sizeof seg, "%s/00000000000000000000.log", dir);

    alog_options o;
    alog_options_init(&o);
    o.fsync_policy = ALOG_FSYNC_NEVER;
    o.preallocate_bytes = 256 << 10;
    alog *log;
    TU_OK(alog_open(dir, &o, &log));
    TU_OK(alog_sync(log)); /* used durably: the log's thread will zero-fill ahead */
    set_go(0);
    /* Nothing is left below the file system. */
    snprintf(cmd, sizeof cmd, "dd if=/dev/zero of='%s' bs=1M >/dev/null 2>&1", filler);
    sh(cmd, NULL, 0);
    char v[1000];
    memset(v, 'R', sizeof v);
    alog_record r = {.value = v, .value_len = sizeof v, .timestamp = 1};
    int64_t off;
    TU_OK(alog_append(log, &r, &off)); /* in the page cache; the zero-fill is asked for */
    usleep(100 * 1000);
    /* The kernel writes the page back and fails (stood for by an fsync of another
     * descriptor, which takes only its own copy of the report). */
    int fd2 = open(seg, O_RDONLY);
    assert_true(fd2 >= 0);
    int rc = fsync(fd2), err = errno;
    close(fd2);
    printf("  write-back of the record: %s\n", rc ? strerror(err) : "succeeded");
    unlink(filler); /* space again */
    if (rc == 0) {
        set_go(1);
        alog_close(log);
        tu_fake_io_restore(NULL);
        skip(); /* the write-back did not fail here: nothing to check */
    }
    set_go(1); /* now the zero-fill writes and syncs its zeros */
    usleep(300 * 1000);
    alog_err e = alog_sync(log);
    printf("  alog_sync: %s (%s)\n", alog_err_name(e), e ? alog_last_error() : "");
    assert_int_equal(e, ALOG_EFAILED);
    assert_true(alog_durable_offset(log) <= off);
    alog_close(log);

    /* The page is still cached (clean, with the record); the disk has zeros there. A
     * reopen must recover the disk's state. */
    TU_OK(alog_open(dir, &o, &log));
    printf("  after reopen: next offset %lld (the lost record was offset %lld)\n",
           (long long)alog_next_offset(log), (long long)off);
    assert_int_equal(alog_next_offset(log), off);
    TU_OK(alog_close(log));
    tu_fake_io_restore(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lost_writeback_on_a_real_kernel),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
