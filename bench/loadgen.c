/*
 * loadgen.c -- alog-loadgen: a Kafka producer load generator on librdkafka, for the
 * server benchmark (bench/server_bench.sh runs it against alogd).
 *
 * --producers N threads, each with its own rd_kafka_t producer (its own connection),
 * together produce --records records of --size bytes (random, incompressible, null
 * key) to --topic; producer t writes to partition t % --partitions. Each producer
 * keeps at most --window records outstanding (produced but not yet acknowledged):
 * the analogue of redis-benchmark's clients x pipeline depth. A record's latency is
 * the time from its produce call to its delivery report (the broker's acknowledgement
 * at --acks). All producers first deliver one warm-up record each (metadata,
 * connection, topic auto-creation), then start together; the timed part ends when
 * the last producer has flushed.
 *
 * Output: one line "records=... secs=... records_per_s=... MB_per_s=... p50_us=...
 * p99_us=... errors=...", or a JSON object with --json. MB/s counts the record values
 * (10^6 bytes).
 *
 * --touch-topics K: instead, produce one record to each of the topics <topic>0 ..
 * <topic>K-1 (with alogd's auto-creation this creates them) and exit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct opts {
    const char *brokers, *topic;
    int producers, partitions, acks, size, linger_ms, window, json, touch;
    long long records;
} opts;

typedef struct producer {
    pthread_t th;
    int id;
    const opts *o;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    long long n;        /* records to produce (timed part) */
    float *lat_us;      /* one per delivered record */
    long long ndone;    /* delivery reports of the timed part */
    long long nerr;     /* failed deliveries */
    int timed;          /* 0 during the warm-up */
    int failed;         /* setup failed */
} producer;

static pthread_barrier_t start_barrier;
static const unsigned char *pool;
static size_t pool_len;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    producer *p = opaque;
    if (m->err) {
        p->nerr++;
        if (p->nerr <= 3)
            fprintf(stderr, "alog-loadgen: delivery failed: %s\n", rd_kafka_err2str(m->err));
        return;
    }
    if (!p->timed) return;
    uint64_t t0 = (uint64_t)(uintptr_t)m->_private;
    if (p->ndone < p->n) p->lat_us[p->ndone] = (float)((double)(now_ns() - t0) / 1000.0);
    p->ndone++;
}

static rd_kafka_t *make_producer(const opts *o, producer *p, char *err, size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char acks[16], linger[16], window[16];
    snprintf(acks, sizeof acks, "%d", o->acks);
    snprintf(linger, sizeof linger, "%d", o->linger_ms);
    snprintf(window, sizeof window, "%d", o->window);
    const char *kv[][2] = {
        {"bootstrap.servers", o->brokers},
        {"acks", acks},
        {"linger.ms", linger},
        {"queue.buffering.max.messages", window},
        {"batch.num.messages", "10000"},
        {"batch.size", "1000000"},
        {"compression.codec", "none"},
        {"enable.idempotence", "false"},
        {"max.in.flight.requests.per.connection", "5"},
        {"message.timeout.ms", "60000"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, errlen) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (!rk) rd_kafka_conf_destroy(conf);
    return rk;
}

/* Produces one record, waiting while the window is full. 0 on success. */
static int produce_one(producer *p, const char *topic_or_null, int32_t part, uint64_t i) {
    const opts *o = p->o;
    size_t off = (size_t)((i * 4099u + (uint64_t)p->id * 7919u) % (pool_len - (size_t)o->size));
    for (;;) {
        void *opaque = (void *)(uintptr_t)now_ns();
        int r;
        if (topic_or_null) {
            r = (int)rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic_or_null),
                                       RD_KAFKA_V_PARTITION(part),
                                       RD_KAFKA_V_VALUE((void *)(pool + off), (size_t)o->size),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        } else {
            r = rd_kafka_produce(p->rkt, part, RD_KAFKA_MSG_F_COPY, (void *)(pool + off),
                                 (size_t)o->size, NULL, 0, opaque) == 0
                    ? 0
                    : (int)rd_kafka_last_error();
        }
        if (r == 0) return 0;
        if (r == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p->rk, 1);
            continue;
        }
        fprintf(stderr, "alog-loadgen: produce: %s\n", rd_kafka_err2str((rd_kafka_resp_err_t)r));
        return -1;
    }
}

static void *run_producer(void *arg) {
    producer *p = arg;
    const opts *o = p->o;
    char err[512];
    int32_t part = (int32_t)(p->id % o->partitions);
    p->rk = make_producer(o, p, err, sizeof err);
    if (!p->rk) {
        fprintf(stderr, "alog-loadgen: producer: %s\n", err);
        p->failed = 1;
    } else {
        p->rkt = rd_kafka_topic_new(p->rk, o->topic, NULL);
        /* Warm-up: one record delivered before the clock starts. */
        if (!p->rkt || produce_one(p, NULL, part, 0) != 0 ||
            rd_kafka_flush(p->rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR || p->nerr)
            p->failed = 1;
    }
    pthread_barrier_wait(&start_barrier);
    if (p->failed) return NULL;
    p->timed = 1;
    for (long long i = 0; i < p->n; i++) {
        if (produce_one(p, NULL, part, (uint64_t)i + 1) != 0) {
            p->failed = 1;
            break;
        }
        if ((i & 63) == 0) rd_kafka_poll(p->rk, 0);
    }
    while (rd_kafka_flush(p->rk, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        if (rd_kafka_outq_len(p->rk) == 0) break;
    }
    return NULL;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: alog-loadgen --brokers HOST:PORT --topic T [options]\n"
            "  --producers N     producer threads, each its own client (default 8)\n"
            "  --partitions P    producer t writes to partition t %% P (default 1)\n"
            "  --records N       records in all (default 1000000)\n"
            "  --size B          value bytes per record (default 100)\n"
            "  --acks A          -1, 0 or 1 (default -1)\n"
            "  --linger-ms MS    librdkafka linger.ms (default 2)\n"
            "  --window W        records outstanding per producer at most (default 10000)\n"
            "  --touch-topics K  produce one record to each of topics T0..T(K-1) and exit\n"
            "  --json            print a JSON object\n");
}

static int touch_topics(const opts *o) {
    producer p;
    memset(&p, 0, sizeof p);
    p.o = o;
    char err[512], name[256];
    p.rk = make_producer(o, &p, err, sizeof err);
    if (!p.rk) {
        fprintf(stderr, "alog-loadgen: producer: %s\n", err);
        return 1;
    }
    for (int k = 0; k < o->touch; k++) {
        snprintf(name, sizeof name, "%s%d", o->topic, k);
        if (produce_one(&p, name, RD_KAFKA_PARTITION_UA, (uint64_t)k) != 0) return 1;
        rd_kafka_poll(p.rk, 0);
    }
    rd_kafka_flush(p.rk, 60000);
    int bad = p.nerr != 0 || rd_kafka_outq_len(p.rk) != 0;
    rd_kafka_destroy(p.rk);
    if (bad) fprintf(stderr, "alog-loadgen: touching topics failed\n");
    return bad;
}

int main(int argc, char **argv) {
    opts o = {.brokers = NULL, .topic = NULL, .producers = 8, .partitions = 1, .acks = -1,
              .size = 100, .linger_ms = 2, .window = 10000, .records = 1000000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) { o.json = 1; continue; }
        if (!strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!v) { usage(stderr); return 2; }
        i++;
        if (!strcmp(a, "--brokers")) o.brokers = v;
        else if (!strcmp(a, "--topic")) o.topic = v;
        else if (!strcmp(a, "--producers")) o.producers = atoi(v);
        else if (!strcmp(a, "--partitions")) o.partitions = atoi(v);
        else if (!strcmp(a, "--records")) o.records = atoll(v);
        else if (!strcmp(a, "--size")) o.size = atoi(v);
        else if (!strcmp(a, "--acks")) o.acks = atoi(v);
        else if (!strcmp(a, "--linger-ms")) o.linger_ms = atoi(v);
        else if (!strcmp(a, "--window")) o.window = atoi(v);
        else if (!strcmp(a, "--touch-topics")) o.touch = atoi(v);
        else { usage(stderr); return 2; }
    }
    if (!o.brokers || !o.topic || o.producers < 1 || o.partitions < 1 || o.records < 1 ||
        o.size < 1 || o.size > 1000000 || o.window < 1 || o.linger_ms < 0 || o.touch < 0) {
        usage(stderr);
        return 2;
    }
    /* Random bytes: a 1 MiB pool plus the record size (xorshift, fixed seed). */
    pool_len = (size_t)(1 << 20) + (size_t)o.size;
    unsigned char *buf = malloc(pool_len);
    if (!buf) return 1;
    uint64_t s = 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < pool_len; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        buf[i] = (unsigned char)(s >> 32);
    }
    pool = buf;
    if (o.touch) {
        int rc = touch_topics(&o);
        free(buf);
        return rc;
    }

    producer *ps = calloc((size_t)o.producers, sizeof *ps);
    if (!ps) return 1;
    pthread_barrier_init(&start_barrier, NULL, (unsigned)o.producers + 1);
    for (int t = 0; t < o.producers; t++) {
        ps[t].id = t;
        ps[t].o = &o;
        ps[t].n = o.records / o.producers + (t < o.records % o.producers ? 1 : 0);
        ps[t].lat_us = malloc(sizeof(float) * (size_t)(ps[t].n > 0 ? ps[t].n : 1));
        if (!ps[t].lat_us || pthread_create(&ps[t].th, NULL, run_producer, &ps[t]) != 0) {
            fprintf(stderr, "alog-loadgen: out of memory or threads\n");
            return 1;
        }
    }
    pthread_barrier_wait(&start_barrier);
    uint64_t t0 = now_ns();
    for (int t = 0; t < o.producers; t++) pthread_join(ps[t].th, NULL);
    double secs = (double)(now_ns() - t0) / 1e9;

    long long done = 0, errs = 0;
    int failed = 0;
    for (int t = 0; t < o.producers; t++) {
        done += ps[t].ndone < ps[t].n ? ps[t].ndone : ps[t].n;
        errs += ps[t].nerr;
        failed |= ps[t].failed;
    }
    float *all = malloc(sizeof(float) * (size_t)(done > 0 ? done : 1));
    if (!all) return 1;
    long long k = 0;
    for (int t = 0; t < o.producers; t++) {
        long long m = ps[t].ndone < ps[t].n ? ps[t].ndone : ps[t].n;
        memcpy(all + k, ps[t].lat_us, sizeof(float) * (size_t)m);
        k += m;
    }
    qsort(all, (size_t)done, sizeof(float), cmp_float);
    double p50 = done ? all[(size_t)((double)(done - 1) * 0.50)] : 0;
    double p99 = done ? all[(size_t)((double)(done - 1) * 0.99)] : 0;
    double rps = (double)done / secs, mbps = rps * o.size / 1e6;
    if (o.json)
        printf("{\"records\": %lld, \"secs\": %.3f, \"records_per_s\": %.0f, \"MB_per_s\": %.2f, "
               "\"p50_us\": %.0f, \"p99_us\": %.0f, \"errors\": %lld, \"producers\": %d, "
               "\"partitions\": %d, \"acks\": %d, \"size\": %d, \"window\": %d}\n",
               done, secs, rps, mbps, p50, p99, errs, o.producers, o.partitions, o.acks, o.size,
               o.window);
    else
        printf("records=%lld secs=%.3f records_per_s=%.0f MB_per_s=%.2f p50_us=%.0f p99_us=%.0f "
               "errors=%lld\n",
               done, secs, rps, mbps, p50, p99, errs);
    for (int t = 0; t < o.producers; t++) {
        if (ps[t].rk) {
            if (ps[t].rkt) rd_kafka_topic_destroy(ps[t].rkt);
            rd_kafka_destroy(ps[t].rk);
        }
        free(ps[t].lat_us);
    }
    free(ps);
    free(all);
    free(buf);
    return failed || errs || done < o.records ? 1 : 0;
}
