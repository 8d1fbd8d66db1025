/* rdkafka_check: a librdkafka client for the alogd interop tests (test_librdkafka.sh).
 *
 *   rdkafka_check produce BROKER TOPIC FIRST COUNT [prop=value...]
 *       Produces records FIRST..FIRST+COUNT-1 (see make_record) to partition 0 with
 *       acks=all, and checks every delivery report: each must succeed, at offset == id
 *       (the topic holds records 0.. in order).
 *   rdkafka_check consume BROKER TOPIC FROM HWM [prop=value...]
 *       Checks the partition's watermarks are 0 and HWM (ListOffsets), reads it from offset
 *       FROM (simple consumer) to the end and checks every record byte for byte (key,
 *       value, headers, null-ness, timestamp and its type), then looks offsets up by
 *       timestamp (offsets_for_times) for a sample of records.
 *   rdkafka_check produce-until BROKER TOPIC ACKFILE MAX_SECONDS RATE [prop=value...]
 *       Produces records continuously with acks=all, at most RATE a second, until
 *       SIGTERM/SIGINT (or MAX_SECONDS),
 *       appending "ID OFFSET" to ACKFILE for each record whose delivery report succeeded,
 *       flushed at once. Failed deliveries (the server was killed) are counted, not fatal.
 *   rdkafka_check verify-acked BROKER TOPIC ACKFILE
 *       Reads the whole partition and checks that each record is intact and that each
 *       acknowledged "ID OFFSET" is there: the record at OFFSET is record ID.
 *
 * Exit status 0 when every check passed; 1 with a "FAIL:" line otherwise; 2 on usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define TS_BASE 1700000000000LL /* record i has CreateTime TS_BASE + 10 * i */
#define MAX_VALUE 4096

static const char *prog = "rdkafka_check";
static int failures;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FAIL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

/* check_fail: one failed check; the first 20 are printed, all are counted. */
static void check_fail(const char *fmt, ...) {
  va_list ap;
  if (failures++ < 20) {
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
  }
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the records: record `id` is a function of id alone ---- */

struct record {
  int key_null, value_null;
  char key[32];
  size_t key_len;
  unsigned char value[MAX_VALUE];
  size_t value_len;
  int nhdrs; /* 0 or 4: "id"=decimal id, "bin"=4 bytes with a NUL, "nul"=NULL, "empty"="" */
  char id_str[24];
};

static uint32_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return (uint32_t)x;
}

static void make_record(int64_t id, struct record *r) {
  uint32_t h = mix((uint64_t)id);
  memset(r, 0, offsetof(struct record, value));
  r->key_null = id % 100 == 99;
  if (id % 100 == 42) {
    r->key_len = 0; /* an empty, not null, key */
  } else if (!r->key_null) {
    r->key_len = (size_t)snprintf(r->key, sizeof(r->key), "k%08" PRId64, id);
  }
  r->value_null = id % 333 == 5;
  r->value_len = 0;
  if (!r->value_null && id % 333 != 6) { /* id % 333 == 6: an empty value */
    size_t n = (size_t)snprintf((char *)r->value, 32, "v%010" PRId64 ":", id);
    size_t len = n + h % 400;
    if (id % 1000 == 17) len = MAX_VALUE; /* now and then a larger one */
    for (size_t i = n; i < len; i++) {
      /* binary bytes (NUL included) for odd ids, text for even ones */
      uint32_t b = mix((uint64_t)id * 7919u + i);
      r->value[i] = (id & 1) ? (unsigned char)b : (unsigned char)('a' + b % 26);
    }
    r->value_len = len;
  }
  r->nhdrs = id % 5 == 0 ? 0 : 4;
  snprintf(r->id_str, sizeof(r->id_str), "%" PRId64, id);
}

static const unsigned char BIN_HDR[4] = {0x00, 0xff, 0x7f, 0x00};

/* ---- configuration ---- */

static rd_kafka_conf_t *make_conf(const char *broker, int argc, char **argv) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  const char *defaults[][2] = {
      {"bootstrap.servers", broker},
      {"api.version.request", "true"},
      {"socket.timeout.ms", "10000"},
      {"reconnect.backoff.ms", "50"},
      {"reconnect.backoff.max.ms", "500"},
      {"log_level", "4"},
  };
  for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
    if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], err, sizeof(err)) !=
        RD_KAFKA_CONF_OK)
      die("conf %s: %s", defaults[i][0], err);
  }
  for (int i = 0; i < argc; i++) {
    char *eq = strchr(argv[i], '=');
    if (!eq) die("bad property '%s' (want name=value)", argv[i]);
    *eq = '\0';
    if (rd_kafka_conf_set(conf, argv[i], eq + 1, err, sizeof(err)) != RD_KAFKA_CONF_OK)
      die("conf %s: %s", argv[i], err);
    *eq = '=';
  }
  return conf;
}

static void conf_set(rd_kafka_conf_t *conf, const char *name, const char *value) {
  char err[512];
  if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK)
    die("conf %s: %s", name, err);
}

/* ---- producing ---- */

struct prod_state {
  int64_t delivered, failed, wrong_offset;
  FILE *ackf; /* produce-until: acknowledged "ID OFFSET" lines */
  rd_kafka_resp_err_t first_err;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  struct prod_state *st = opaque;
  int64_t id = (int64_t)(intptr_t)m->_private;
  (void)rk;
  if (m->err) {
    if (st->failed++ == 0) st->first_err = m->err;
    if (!st->ackf) check_fail("delivery report for record %" PRId64 ": %s", id, rd_kafka_err2str(m->err));
    return;
  }
  st->delivered++;
  if (m->partition != 0) check_fail("record %" PRId64 " delivered to partition %d", id, (int)m->partition);
  if (st->ackf) {
    fprintf(st->ackf, "%" PRId64 " %" PRId64 "\n", id, m->offset);
  } else if (m->offset != id) {
    if (st->wrong_offset++ < 5)
      check_fail("record %" PRId64 " delivered at offset %" PRId64 " (expected %" PRId64 ")", id,
                 m->offset, id);
  }
}

static rd_kafka_resp_err_t produce_one(rd_kafka_t *rk, const char *topic, int64_t id, int ts) {
  static struct record r;
  make_record(id, &r);
  rd_kafka_headers_t *hdrs = NULL;
  if (r.nhdrs) {
    hdrs = rd_kafka_headers_new(4);
    rd_kafka_header_add(hdrs, "id", -1, r.id_str, -1);
    rd_kafka_header_add(hdrs, "bin", -1, BIN_HDR, sizeof(BIN_HDR));
    rd_kafka_header_add(hdrs, "nul", -1, NULL, 0);
    rd_kafka_header_add(hdrs, "empty", -1, "", 0);
  }
  rd_kafka_resp_err_t err = rd_kafka_producev(
      rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY((r.key_null ? NULL : r.key), r.key_len),
      RD_KAFKA_V_VALUE((r.value_null ? NULL : r.value), r.value_len),
      RD_KAFKA_V_TIMESTAMP((ts ? TS_BASE + 10 * id : 0)), RD_KAFKA_V_HEADERS(hdrs),
      RD_KAFKA_V_OPAQUE((void *)(intptr_t)id), RD_KAFKA_V_END);
  if (err && hdrs) rd_kafka_headers_destroy(hdrs);
  return err;
}

static rd_kafka_t *new_producer(const char *broker, struct prod_state *st, int argc, char **argv) {
  char err[512];
  rd_kafka_conf_t *conf = make_conf(broker, 0, NULL);
  conf_set(conf, "acks", "all"); /* request.required.acks=-1 */
  conf_set(conf, "enable.idempotence", "false");
  conf_set(conf, "linger.ms", "5");
  conf_set(conf, "message.timeout.ms", "30000");
  for (int i = 0; i < argc; i++) { /* the caller's prop=value settings win */
    char *eq = strchr(argv[i], '=');
    if (!eq) die("bad property '%s' (want name=value)", argv[i]);
    *eq = '\0';
    conf_set(conf, argv[i], eq + 1);
    *eq = '=';
  }
  rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
  rd_kafka_conf_set_opaque(conf, st);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (!rk) die("rd_kafka_new(producer): %s", err);
  return rk;
}

static int cmd_produce(const char *broker, const char *topic, int64_t first, int64_t count,
                       int argc, char **argv) {
  struct prod_state st = {0};
  rd_kafka_t *rk = new_producer(broker, &st, argc, argv);
  double t0 = now_s();
  for (int64_t id = first; id < first + count; id++) {
    rd_kafka_resp_err_t err;
    while ((err = produce_one(rk, topic, id, 1)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(rk, 10);
    if (err) die("produce record %" PRId64 ": %s", id, rd_kafka_err2str(err));
    rd_kafka_poll(rk, 0);
  }
  rd_kafka_resp_err_t ferr = rd_kafka_flush(rk, 60000);
  if (ferr) check_fail("flush: %s (%d records still queued)", rd_kafka_err2str(ferr), rd_kafka_outq_len(rk));
  rd_kafka_destroy(rk);
  if (st.delivered != count)
    check_fail("%" PRId64 " of %" PRId64 " delivery reports succeeded (%" PRId64 " failed)", st.delivered, count,
               st.failed);
  printf("produced %" PRId64 " records (ids %" PRId64 "..%" PRId64 "), %" PRId64
         " delivery reports ok, %" PRId64 " failed, %.2f s\n",
         count, first, first + count - 1, st.delivered, st.failed, now_s() - t0);
  return failures ? 1 : 0;
}

static volatile sig_atomic_t stop_flag, report_flag;
static void on_signal(int sig) {
  if (sig == SIGUSR1)
    report_flag = 1;
  else
    stop_flag = 1;
}

static int cmd_produce_until(const char *broker, const char *topic, const char *ackpath, double max_s,
                             double rate, int argc, char **argv) {
  struct prod_state st = {0};
  st.ackf = fopen(ackpath, "w");
  if (!st.ackf) die("%s: %s", ackpath, strerror(errno));
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL); /* prints how many records are not yet acknowledged */
  rd_kafka_t *rk = new_producer(broker, &st, argc, argv);
  double t0 = now_s();
  int64_t id = 0;
  double tokens = 0, t_tok = t0; /* a token bucket: RATE a second, bursts of RATE/20 */
  while (!stop_flag && now_s() - t0 < max_s) {
    if (report_flag) {
      report_flag = 0;
      fprintf(stderr, "unacknowledged: %d records (%" PRId64 " produced, %" PRId64 " acknowledged)\n",
              rd_kafka_outq_len(rk), id, st.delivered);
    }
    if (tokens < 1) {
      double t = now_s();
      tokens += (t - t_tok) * rate;
      if (tokens > rate / 20) tokens = rate / 20;
      t_tok = t;
      if (tokens < 1) {
        rd_kafka_poll(rk, 1);
        fflush(st.ackf);
        continue;
      }
    }
    rd_kafka_resp_err_t err = produce_one(rk, topic, id, 0);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk, 10);
    } else if (err) {
      die("produce record %" PRId64 ": %s", id, rd_kafka_err2str(err));
    } else {
      id++;
      tokens -= 1;
    }
    if (rd_kafka_poll(rk, 0) > 0 || (id & 255) == 0) fflush(st.ackf);
  }
  /* Stop: whatever is acknowledged within a few seconds counts; the rest is dropped. */
  rd_kafka_flush(rk, 5000);
  rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(rk, 0);
  fflush(st.ackf);
  rd_kafka_destroy(rk);
  if (fclose(st.ackf) != 0) die("%s: %s", ackpath, strerror(errno));
  printf("produced %" PRId64 " records in %.1f s: %" PRId64 " acknowledged, %" PRId64
         " not (first error: %s)\n",
         id, now_s() - t0, st.delivered, st.failed, st.failed ? rd_kafka_err2str(st.first_err) : "none");
  if (st.delivered == 0) die("no record was acknowledged");
  return 0;
}

/* ---- consuming ---- */

static rd_kafka_t *new_consumer(const char *broker, int argc, char **argv) {
  char err[512];
  rd_kafka_conf_t *conf = make_conf(broker, argc, argv);
  conf_set(conf, "enable.partition.eof", "true");
  conf_set(conf, "fetch.wait.max.ms", "100");
  conf_set(conf, "check.crcs", "true");
  conf_set(conf, "auto.offset.reset", "error"); /* out of range is an error, not a jump */
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (!rk) die("rd_kafka_new(consumer): %s", err);
  return rk;
}

static void watermarks(rd_kafka_t *rk, const char *topic, int64_t *lo, int64_t *hi) {
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic, 0, lo, hi, 10000);
  if (err) die("query_watermark_offsets(%s, 0): %s", topic, rd_kafka_err2str(err));
}

/* consume_range: calls fn for each record from offset `from` until the end (hwm). */
typedef void (*record_fn)(const rd_kafka_message_t *m, void *arg);

static int64_t consume_range(rd_kafka_t *rk, const char *topic, int64_t from, int64_t hwm, record_fn fn,
                             void *arg) {
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  if (!rkt) die("topic_new: %s", rd_kafka_err2str(rd_kafka_last_error()));
  if (rd_kafka_consume_start(rkt, 0, from) == -1)
    die("consume_start: %s", rd_kafka_err2str(rd_kafka_last_error()));
  int64_t n = 0, next = from;
  double t_last = now_s();
  while (next < hwm) {
    rd_kafka_message_t *m = rd_kafka_consume(rkt, 0, 1000);
    if (!m) {
      if (now_s() - t_last > 30) {
        check_fail("no progress for 30 s reading %s at offset %" PRId64 " (end %" PRId64 ")", topic, next, hwm);
        break;
      }
      continue;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (m->offset < hwm) {
        /* An EOF below the high watermark we were told: keep reading, bounded. */
        if (now_s() - t_last > 30) {
          check_fail("partition EOF at %" PRId64 " below the high watermark %" PRId64, m->offset, hwm);
          rd_kafka_message_destroy(m);
          break;
        }
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    if (m->err) {
      check_fail("consume error at %" PRId64 ": %s", next, rd_kafka_message_errstr(m));
      rd_kafka_message_destroy(m);
      break;
    }
    if (m->offset != next) check_fail("expected offset %" PRId64 ", got %" PRId64, next, m->offset);
    fn(m, arg);
    next = m->offset + 1;
    n++;
    t_last = now_s();
    rd_kafka_message_destroy(m);
    if (failures > 100) break;
  }
  rd_kafka_consume_stop(rkt, 0);
  rd_kafka_topic_destroy(rkt);
  return n;
}

/* check_record: the message at offset o must be record o, exactly. */
static void check_record(const rd_kafka_message_t *m, void *arg) {
  static struct record r;
  int64_t id = m->offset;
  (void)arg;
  make_record(id, &r);
  if (r.key_null) {
    if (m->key) check_fail("offset %" PRId64 ": key should be null, is %zu bytes", id, m->key_len);
  } else if (!m->key || m->key_len != r.key_len || memcmp(m->key, r.key, r.key_len) != 0) {
    check_fail("offset %" PRId64 ": key %s (%zu bytes), expected '%.*s'", id, m->key ? "differs" : "is null",
               m->key_len, (int)r.key_len, r.key);
  }
  if (r.value_null) {
    if (m->payload) check_fail("offset %" PRId64 ": value should be null, is %zu bytes", id, m->len);
  } else if (!m->payload || m->len != r.value_len || memcmp(m->payload, r.value, r.value_len) != 0) {
    check_fail("offset %" PRId64 ": value %s (%zu bytes, expected %zu)", id, m->payload ? "differs" : "is null",
               m->len, r.value_len);
  }
  rd_kafka_timestamp_type_t tstype;
  int64_t ts = rd_kafka_message_timestamp(m, &tstype);
  if (tstype != RD_KAFKA_TIMESTAMP_CREATE_TIME || ts != TS_BASE + 10 * id)
    check_fail("offset %" PRId64 ": timestamp %" PRId64 " (type %d), expected CreateTime %" PRId64, id, ts,
               (int)tstype, TS_BASE + 10 * id);
  rd_kafka_headers_t *hdrs = NULL;
  rd_kafka_resp_err_t err = rd_kafka_message_headers(m, &hdrs);
  size_t nh = err == RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_header_cnt(hdrs) : 0;
  if (err && err != RD_KAFKA_RESP_ERR__NOENT)
    check_fail("offset %" PRId64 ": headers: %s", id, rd_kafka_err2str(err));
  if (nh != (size_t)r.nhdrs) {
    check_fail("offset %" PRId64 ": %zu headers, expected %d", id, nh, r.nhdrs);
    return;
  }
  if (!nh) return;
  struct {
    const char *name;
    const void *val;
    size_t len;
  } want[4] = {{"id", r.id_str, strlen(r.id_str)}, {"bin", BIN_HDR, 4}, {"nul", NULL, 0}, {"empty", "", 0}};
  for (size_t i = 0; i < 4; i++) {
    const char *name;
    const void *val;
    size_t len;
    if (rd_kafka_header_get_all(hdrs, i, &name, &val, &len) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      check_fail("offset %" PRId64 ": header %zu missing", id, i);
      continue;
    }
    int ok = strcmp(name, want[i].name) == 0 && (want[i].val == NULL) == (val == NULL) && len == want[i].len &&
             (len == 0 || memcmp(val, want[i].val, len) == 0);
    if (!ok) check_fail("offset %" PRId64 ": header %zu is '%s' (%zu bytes%s), expected '%s'", id, i, name, len,
                        val ? "" : ", null", want[i].name);
  }
}

static int64_t offset_for_time(rd_kafka_t *rk, const char *topic, int64_t ts) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic, 0)->offset = ts;
  rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, l, 10000);
  if (err) die("offsets_for_times(%" PRId64 "): %s", ts, rd_kafka_err2str(err));
  if (l->elems[0].err) die("offsets_for_times(%" PRId64 "): %s", ts, rd_kafka_err2str(l->elems[0].err));
  int64_t off = l->elems[0].offset;
  rd_kafka_topic_partition_list_destroy(l);
  return off;
}

static int cmd_consume(const char *broker, const char *topic, int64_t from, int64_t want_hwm, int argc,
                       char **argv) {
  rd_kafka_t *rk = new_consumer(broker, argc, argv);
  double t0 = now_s();
  int64_t lo, hi;
  watermarks(rk, topic, &lo, &hi);
  if (lo != 0 || hi != want_hwm)
    die("watermarks of %s [0] are %" PRId64 "..%" PRId64 ", expected 0..%" PRId64, topic, lo, hi, want_hwm);
  int64_t n = consume_range(rk, topic, from, hi, check_record, NULL);
  if (n != hi - from) check_fail("read %" PRId64 " records from offset %" PRId64 ", expected %" PRId64, n, from, hi - from);
  /* Offsets by timestamp: record i has CreateTime TS_BASE + 10 i. */
  int64_t probes[] = {0, 1, hi / 3, hi / 2, hi - 1};
  for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
    int64_t id = probes[i];
    int64_t got = offset_for_time(rk, topic, TS_BASE + 10 * id);
    if (got != id) check_fail("offsets_for_times(ts of record %" PRId64 ") = %" PRId64, id, got);
    if (id > 0 && (got = offset_for_time(rk, topic, TS_BASE + 10 * id - 5)) != id)
      check_fail("offsets_for_times(ts of record %" PRId64 " - 5 ms) = %" PRId64, id, got);
  }
  int64_t past = offset_for_time(rk, topic, TS_BASE + 10 * hi + 1000);
  if (past != -1)
    check_fail("offsets_for_times(after the last record) = %" PRId64 ", expected -1 (none)", past);
  rd_kafka_destroy(rk);
  printf("read %" PRId64 " records from offset %" PRId64 " (watermarks %" PRId64 "..%" PRId64
         "), offsets_for_times checked, %.2f s: %s\n",
         n, from, lo, hi, now_s() - t0, failures ? "MISMATCHES" : "all identical");
  return failures ? 1 : 0;
}

/* verify-acked: offset -> id of what the log holds. */
struct readback {
  int64_t *ids; /* by offset; -1 = unreadable */
  int64_t n;
};

static void note_record(const rd_kafka_message_t *m, void *arg) {
  struct readback *rb = arg;
  static struct record r;
  int64_t id = -1;
  if (m->key && m->key_len > 1 && m->key_len < 20) {
    char buf[24];
    memcpy(buf, m->key, m->key_len);
    buf[m->key_len] = '\0';
    id = strtoll(buf + 1, NULL, 10);
  } else {
    /* null or empty key: the id is in the "id" header (or, with none, the value) */
    const void *v;
    size_t len;
    rd_kafka_headers_t *hdrs;
    if (rd_kafka_message_headers(m, &hdrs) == 0 && rd_kafka_header_get_last(hdrs, "id", &v, &len) == 0 &&
        len < 20) {
      char buf[24];
      memcpy(buf, v, len);
      buf[len] = '\0';
      id = strtoll(buf, NULL, 10);
    } else if (m->payload && m->len > 11) {
      id = strtoll((const char *)m->payload + 1, NULL, 10);
    }
  }
  if (id >= 0) {
    make_record(id, &r);
    int ok = (r.key_null ? m->key == NULL : (m->key && m->key_len == r.key_len && !memcmp(m->key, r.key, r.key_len))) &&
             (r.value_null ? m->payload == NULL
                           : (m->payload && m->len == r.value_len && !memcmp(m->payload, r.value, r.value_len)));
    if (!ok) {
      check_fail("offset %" PRId64 ": record %" PRId64 " is not intact", m->offset, id);
      id = -1;
    }
  } else {
    check_fail("offset %" PRId64 ": unrecognisable record", m->offset);
  }
  if (m->offset >= 0 && m->offset < rb->n) rb->ids[m->offset] = id;
}

static int cmd_verify_acked(const char *broker, const char *topic, const char *ackpath) {
  FILE *f = fopen(ackpath, "r");
  if (!f) die("%s: %s", ackpath, strerror(errno));
  rd_kafka_t *rk = new_consumer(broker, 0, NULL);
  double t0 = now_s();
  int64_t lo, hi;
  watermarks(rk, topic, &lo, &hi);
  if (lo != 0) check_fail("log start offset is %" PRId64 ", expected 0", lo);
  struct readback rb = {calloc((size_t)(hi > 0 ? hi : 1), sizeof(int64_t)), hi};
  if (!rb.ids) die("out of memory");
  for (int64_t i = 0; i < hi; i++) rb.ids[i] = -2;
  int64_t n = consume_range(rk, topic, lo, hi, note_record, &rb);
  if (n != hi - lo)
    check_fail("read %" PRId64 " records, the watermarks are %" PRId64 "..%" PRId64, n, lo, hi);
  int64_t acked = 0, missing = 0, dups = 0;
  {
    /* records the log holds more than once (a retry of a write the server made but never
       acknowledged, as the kill cut the connection): allowed, counted */
    int64_t maxid = -1;
    for (int64_t i = 0; i < hi; i++)
      if (rb.ids[i] > maxid) maxid = rb.ids[i];
    unsigned char *seen = calloc((size_t)(maxid + 2), 1);
    if (!seen) die("out of memory");
    for (int64_t i = 0; i < hi; i++)
      if (rb.ids[i] >= 0 && seen[rb.ids[i]]++) dups++;
    free(seen);
  }
  long long id, off;
  int c;
  while ((c = fscanf(f, "%lld %lld", &id, &off)) == 2) {
    acked++;
    if (off < 0 || off >= hi) {
      if (missing++ < 20)
        fprintf(stderr, "FAIL: acknowledged record %lld (offset %lld) is past the end of the log (%" PRId64 ")\n", id,
                off, hi);
    } else if (rb.ids[off] != id) {
      if (missing++ < 20)
        fprintf(stderr, "FAIL: acknowledged record %lld at offset %lld: the log holds %s %" PRId64 " there\n", id, off,
                rb.ids[off] >= 0 ? "record" : "nothing readable,", rb.ids[off]);
    }
  }
  fclose(f);
  rd_kafka_destroy(rk);
  if (acked == 0) die("the ack file %s is empty", ackpath);
  printf("log holds %" PRId64 " records (%" PRId64 " of them repeats); %" PRId64
         " acknowledged records checked: %" PRId64 " missing, %d other problems; %.2f s\n",
         hi, dups, acked, missing, failures, now_s() - t0);
  free(rb.ids);
  return (missing || failures) ? 1 : 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: %s produce BROKER TOPIC FIRST COUNT [prop=value...]\n"
          "       %s consume BROKER TOPIC FROM HWM [prop=value...]\n"
          "       %s produce-until BROKER TOPIC ACKFILE MAX_SECONDS RATE [prop=value...]\n"
          "       %s verify-acked BROKER TOPIC ACKFILE\n",
          prog, prog, prog, prog);
  exit(2);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 4) usage();
  const char *cmd = argv[1], *broker = argv[2], *topic = argv[3];
  if (!strcmp(cmd, "produce") && argc >= 6)
    return cmd_produce(broker, topic, atoll(argv[4]), atoll(argv[5]), argc - 6, argv + 6);
  if (!strcmp(cmd, "consume") && argc >= 6)
    return cmd_consume(broker, topic, atoll(argv[4]), atoll(argv[5]), argc - 6, argv + 6);
  if (!strcmp(cmd, "produce-until") && argc >= 7)
    return cmd_produce_until(broker, topic, argv[4], atof(argv[5]), atof(argv[6]), argc - 7, argv + 7);
  if (!strcmp(cmd, "verify-acked") && argc == 5) return cmd_verify_acked(broker, topic, argv[4]);
  usage();
  return 2;
}
