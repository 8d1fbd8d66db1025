/*
 * bench_peers.c -- SQLite, LMDB and RocksDB appending the same records as alog.
 *
 * Each peer is configured for "fsync never" and its fastest honest append path:
 *   SQLite   WAL, synchronous=OFF, table log(offset INTEGER PRIMARY KEY, ts, key, value),
 *            one prepared INSERT; chunk 1 = autocommit (one transaction per record),
 *            chunk 100 = BEGIN, 100 inserts, COMMIT.
 *   LMDB     MDB_NOSYNC | MDB_NOMETASYNC, 16 GiB map, MDB_APPEND with 8-byte big-endian
 *            offset keys; one write transaction per chunk.
 *   RocksDB  WAL on, sync = false, no compression (alog's runs are uncompressed too);
 *            chunk 1 = one Put per record, chunk 100 = one WriteBatch of 100 records.
 * Only the appends are timed: opening, creating tables and closing are outside.
 */
#include "bench.h"

#include <inttypes.h>
#include <lmdb.h>
#include <rocksdb/c.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static run_result done(const workload *w, double secs, uint64_t disk) {
    run_result r = {1, secs, w->n, w->n * w->vlen, disk};
    return r;
}

/* ---- SQLite ---- */

static int sq_exec(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fail("sqlite: %s: %s", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int sq_step(sqlite3 *db, sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        fail("sqlite: step: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

run_result sqlite_run(const workload *w, const char *dir) {
    run_result r = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/log.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL, *begin = NULL, *commit = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fail("sqlite: open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return r;
    }
    if (sq_exec(db, "PRAGMA journal_mode=WAL") || sq_exec(db, "PRAGMA synchronous=OFF") ||
        sq_exec(db, "CREATE TABLE log(offset INTEGER PRIMARY KEY, ts INTEGER, key BLOB, "
                    "value BLOB)"))
        goto out;
    if (sqlite3_prepare_v2(db, "INSERT INTO log(offset, ts, key, value) VALUES(?1,?2,?3,?4)",
                           -1, &ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "BEGIN", -1, &begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK) {
        fail("sqlite: prepare: %s", sqlite3_errmsg(db));
        goto out;
    }

    double t0 = now_sec();
    int err = 0;
    for (uint64_t i = 0; i < w->n && !err;) {
        size_t k = (w->n - i) < w->chunk ? (size_t)(w->n - i) : w->chunk;
        if (k > 1 && sq_step(db, begin)) break;
        for (size_t j = 0; j < k; j++, i++) {
            sqlite3_bind_int64(ins, 1, (sqlite3_int64)i);
            sqlite3_bind_int64(ins, 2, wl_ts(i));
            sqlite3_bind_null(ins, 3);
            sqlite3_bind_blob(ins, 4, wl_value(w, i), (int)w->vlen, SQLITE_STATIC);
            if (sq_step(db, ins)) {
                err = 1;
                break;
            }
        }
        if (!err && k > 1 && sq_step(db, commit)) err = 1;
    }
    double t1 = now_sec();
    if (!err) r = done(w, t1 - t0, path_bytes(dir));
out:
    sqlite3_finalize(ins);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_close(db);
    return r;
}

/* ---- LMDB ---- */

static int mdb_fail(const char *what, int rc) {
    return fail("lmdb: %s: %s", what, mdb_strerror(rc));
}

run_result lmdb_run(const workload *w, const char *dir) {
    run_result r = {0};
    MDB_env *env = NULL;
    MDB_dbi dbi;
    MDB_txn *txn = NULL;
    int rc;
    if ((rc = mdb_env_create(&env)) != 0) {
        mdb_fail("env_create", rc);
        return r;
    }
    if ((rc = mdb_env_set_mapsize(env, (size_t)16 << 30)) != 0 ||
        (rc = mdb_env_open(env, dir, MDB_NOSYNC | MDB_NOMETASYNC | MDB_NOTLS, 0644)) != 0) {
        mdb_fail("env_open", rc);
        goto out;
    }
    if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        mdb_fail("dbi_open", rc);
        goto out;
    }
    txn = NULL;

    uint8_t kb[8];
    MDB_val key = {8, kb}, val;
    double t0 = now_sec();
    rc = 0;
    for (uint64_t i = 0; i < w->n && rc == 0;) {
        size_t k = (w->n - i) < w->chunk ? (size_t)(w->n - i) : w->chunk;
        if ((rc = mdb_txn_begin(env, NULL, 0, &txn)) != 0) break;
        for (size_t j = 0; j < k && rc == 0; j++, i++) {
            wl_key_be(i, kb);
            val.mv_size = w->vlen;
            val.mv_data = (void *)wl_value(w, i);
            rc = mdb_put(txn, dbi, &key, &val, MDB_APPEND);
        }
        if (rc != 0) break;
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    double t1 = now_sec();
    if (rc != 0) {
        mdb_fail("append", rc);
        goto out;
    }
    r = done(w, t1 - t0, path_bytes(dir));
out:
    if (txn) mdb_txn_abort(txn);
    mdb_env_close(env);
    return r;
}

/* ---- RocksDB ---- */

run_result rocksdb_run(const workload *w, const char *dir) {
    run_result r = {0};
    char *err = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_compression(o, rocksdb_no_compression);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, 0);
    rocksdb_writeoptions_disable_WAL(wo, 0);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_t *db = rocksdb_open(o, dir, &err);
    if (!db) {
        fail("rocksdb: open %s: %s", dir, err ? err : "?");
        goto out;
    }

    uint8_t kb[8];
    double t0 = now_sec();
    for (uint64_t i = 0; i < w->n && !err;) {
        size_t k = (w->n - i) < w->chunk ? (size_t)(w->n - i) : w->chunk;
        if (k == 1) {
            wl_key_be(i, kb);
            rocksdb_put(db, wo, (const char *)kb, 8, (const char *)wl_value(w, i), w->vlen,
                        &err);
            i++;
            continue;
        }
        rocksdb_writebatch_clear(wb);
        for (size_t j = 0; j < k; j++, i++) {
            wl_key_be(i, kb);
            rocksdb_writebatch_put(wb, (const char *)kb, 8, (const char *)wl_value(w, i),
                                   w->vlen);
        }
        rocksdb_write(db, wo, wb, &err);
    }
    double t1 = now_sec();
    if (err) {
        fail("rocksdb: write: %s", err);
        goto out;
    }
    r = done(w, t1 - t0, path_bytes(dir));
out:
    if (db) rocksdb_close(db);
    rocksdb_free(err);
    rocksdb_writebatch_destroy(wb);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_options_destroy(o);
    return r;
}
