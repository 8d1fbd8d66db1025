/*
 * alogd.c -- the alogd program: a single-node Kafka broker (as far as producers and
 * consumers can tell) whose partitions are alog logs.
 *
 * This file holds only the program around the server: options and the config file,
 * signals, start-up and clean shutdown. The pieces: topics.c (partitions on disk),
 * net.c (sockets, threads, framing), api.c (the answers), kafka_msgs.c and proto.c
 * (the wire format).
 *
 * Shutdown: SIGTERM and SIGINT are blocked in every thread and taken by the main
 * thread with sigwait(), so no handler runs in the middle of anything. On either, the
 * workers drain (net_stop), then every log is closed cleanly (topics_close: synced,
 * marked clean, so the next start checks nothing), then the workers are freed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "alog.h"
#include "server.h"

#define DEFAULT_DATA "./data/alogd"
#define DEFAULT_HOST "127.0.0.1"
/* Kafka's log.retention.check.interval.ms default. */
#define DEFAULT_RETENTION_CHECK_MS 300000

/* --retention-check-ms: a topics option (topics_config), kept here rather than in
 * server_cfg, which holds what the network layer needs. */
static int g_retention_check_ms = DEFAULT_RETENTION_CHECK_MS;

static void usage(FILE *f) {
    fprintf(f,
            "Usage: alogd [options]\n"
            "A Kafka-protocol server whose partitions are alog logs. Kafka clients\n"
            "(librdkafka/kcat, kafkajs) produce and consume against it unchanged.\n"
            "\n"
            "Options:\n"
            "  --data DIR               data directory, one log per partition in\n"
            "                           DIR/<topic>-<partition>/ (default " DEFAULT_DATA ")\n"
            "  --listen HOST:PORT       address to listen on (default " DEFAULT_HOST ":%d);\n"
            "                           port 0 picks a free port (printed at start)\n"
            "  --advertise HOST[:PORT]  address Metadata gives clients (default: the\n"
            "                           listen address)\n"
            "  --partitions N           partitions of auto-created topics and of\n"
            "                           CreateTopics with -1 (default 1)\n"
            "  --fsync always|interval  always: a produce (acks 1/-1) is answered once its\n"
            "                           records are fsynced; interval (default): answered\n"
            "                           after the append, fsynced within 1000 ms. A\n"
            "                           topic's flush.messages/flush.ms override it\n"
            "  --max-request-bytes N    largest request accepted (default 100MiB); a\n"
            "                           larger size prefix closes the connection. Accepts\n"
            "                           K, M, G suffixes (powers of 1024)\n"
            "  --segment-bytes N        roll partition segments at this size (default 1G;\n"
            "                           a topic's segment.bytes overrides it)\n"
            "  --retention-check-ms N   apply topics' retention.ms/retention.bytes every N\n"
            "                           ms besides at each segment roll (default 300000;\n"
            "                           0: only at rolls)\n"
            "  --retention-bytes N      delete a partition's oldest segments while it is\n"
            "                           larger than N (Kafka's retention.bytes; default 0:\n"
            "                           no limit; a topic's retention.bytes overrides it)\n"
            "  --idle-timeout-ms MS     close a connection with no request in flight once\n"
            "                           nothing came or went for MS ms (Kafka's\n"
            "                           connections.max.idle.ms; default %d, 10 minutes;\n"
            "                           0: never)\n"
            "  --max-connections N      open connections at most (default %d); past it a\n"
            "                           new connection is accepted and closed at once\n"
            "  --max-queued-request-bytes N\n"
            "                           bytes of requests in flight on all connections\n"
            "                           together (Kafka's queued.max.request.bytes;\n"
            "                           default %uMiB; 0: no limit; K, M, G suffixes).\n"
            "                           At or past it a connection with a request in\n"
            "                           flight is not read until some end; one with none\n"
            "                           still takes one\n"
            "  --max-partitions N       partitions of all topics together at most\n"
            "                           (default %d; 0: no limit); creating a topic\n"
            "                           past it (CreateTopics or auto-creation) gets\n"
            "                           POLICY_VIOLATION. Each open partition holds a\n"
            "                           thread and 4 descriptors (3 more per extra\n"
            "                           segment): keep ulimit -n above that\n"
            "  --no-auto-create         do not create unknown topics on Metadata/Produce\n"
            "  --config FILE            read options from FILE: one 'name = value' a line\n"
            "                           (names as the long options, e.g. 'fsync = always',\n"
            "                           'auto-create = false'; # comments). Options on the\n"
            "                           command line win over the file.\n"
            "  --help                   this help\n"
            "  --version                the version\n"
            "\n"
            "Try it:\n"
            "  alogd --data /tmp/alogd --listen 127.0.0.1:9092 &\n"
            "  echo hello | kcat -b 127.0.0.1:9092 -P -t demo\n"
            "  kcat -b 127.0.0.1:9092 -C -t demo -e\n",
            ALOGD_DEFAULT_PORT, ALOGD_DEFAULT_IDLE_MS, ALOGD_DEFAULT_MAX_CONNECTIONS,
            ALOGD_DEFAULT_MAX_QUEUED_REQUEST >> 20, ALOGD_DEFAULT_MAX_PARTITIONS);
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "alogd: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

/* Parses a byte count with an optional K/M/G suffix (powers of 1024). */
static int parse_size(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-') return -1;
    uint64_t mul = 1;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': mul = 1ull << 10; break;
        case 'm': case 'M': mul = 1ull << 20; break;
        case 'g': case 'G': mul = 1ull << 30; break;
        default: return -1;
        }
        end++;
        if (*end == 'i' && end[1] == 'B') end += 2;
        else if (*end == 'B') end++;
        if (*end) return -1;
    }
    if (v > UINT64_MAX / mul) return -1;
    *out = v * mul;
    return 0;
}

/* A plain decimal count (no suffix). */
static int parse_count(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-' || *end) return -1;
    *out = v;
    return 0;
}

/* "host:port", "[v6]:port", or a bare port. */
static int parse_hostport(const char *s, char *host, size_t hostlen, int *port, int port_optional) {
    const char *colon = NULL;
    char h[256];
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || (size_t)(rb - s - 1) >= sizeof h) return -1;
        snprintf(h, sizeof h, "%.*s", (int)(rb - s - 1), s + 1);
        if (rb[1] == ':') colon = rb + 1;
        else if (rb[1] || !port_optional) return -1;
    } else {
        colon = strrchr(s, ':');
        size_t n = colon ? (size_t)(colon - s) : strlen(s);
        if (n >= sizeof h) return -1;
        snprintf(h, sizeof h, "%.*s", (int)n, s);
        if (!colon && !port_optional) {
            /* a bare port */
            char *end;
            long p = strtol(s, &end, 10);
            if (*s && !*end && p >= 0 && p <= 65535) {
                snprintf(host, hostlen, "%s", DEFAULT_HOST);
                *port = (int)p;
                return 0;
            }
            return -1;
        }
    }
    if (colon) {
        char *end;
        long p = strtol(colon + 1, &end, 10);
        if (!colon[1] || *end || p < 0 || p > 65535) return -1;
        *port = (int)p;
    }
    if (!h[0]) return -1;
    snprintf(host, hostlen, "%s", h);
    return 0;
}

static int parse_bool(const char *v, int *out) {
    if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcmp(v, "1"))
        *out = 1;
    else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") ||
             !strcmp(v, "0"))
        *out = 0;
    else
        return -1;
    return 0;
}

/* Sets one option by its long name; value NULL for flags. where names the source
 * for messages ("--partitions", "alogd.conf:3"). */
static int apply_option(server_cfg *cfg, char *data_buf, size_t data_len, const char *name,
                        const char *value, const char *where) {
    uint64_t n;
    if (!strcmp(name, "data")) {
        if (!value || !*value) return fail("%s: the data directory is empty", where);
        if (strlen(value) >= data_len) return fail("%s: path too long", where);
        snprintf(data_buf, data_len, "%s", value);
        cfg->data_dir = data_buf;
    } else if (!strcmp(name, "listen")) {
        if (parse_hostport(value, cfg->listen_host, sizeof cfg->listen_host, &cfg->listen_port, 0))
            return fail("%s: '%s' is not HOST:PORT", where, value);
    } else if (!strcmp(name, "advertise")) {
        int port = 0;
        if (parse_hostport(value, cfg->advertise_host, sizeof cfg->advertise_host, &port, 1))
            return fail("%s: '%s' is not HOST[:PORT]", where, value);
        cfg->advertise_port = port;
    } else if (!strcmp(name, "partitions")) {
        if (parse_size(value, &n) || n < 1 || n > TOPIC_PARTITIONS_MAX)
            return fail("%s: partitions must be 1..%d, not '%s'", where, TOPIC_PARTITIONS_MAX,
                        value);
        cfg->partitions = (int)n;
    } else if (!strcmp(name, "fsync")) {
        if (!strcmp(value, "always")) cfg->fsync_always = 1;
        else if (!strcmp(value, "interval")) cfg->fsync_always = 0;
        else return fail("%s: fsync must be 'always' or 'interval', not '%s'", where, value);
    } else if (!strcmp(name, "max-request-bytes")) {
        if (parse_size(value, &n) || n < 64 || n > INT32_MAX)
            return fail("%s: max-request-bytes must be 64..%d, not '%s'", where, INT32_MAX, value);
        cfg->max_request_bytes = (size_t)n;
    } else if (!strcmp(name, "segment-bytes")) {
        if (parse_size(value, &n) || n < 64)
            return fail("%s: segment-bytes must be at least 64, not '%s'", where, value);
        cfg->segment_bytes = n;
    } else if (!strcmp(name, "retention-bytes")) {
        if (parse_size(value, &n))
            return fail("%s: retention-bytes must be a byte count, not '%s'", where, value);
        cfg->retention_bytes = n;
    } else if (!strcmp(name, "idle-timeout-ms")) {
        if (parse_count(value, &n) || n > INT32_MAX)
            return fail("%s: idle-timeout-ms must be 0..%d, not '%s'", where, INT32_MAX, value);
        cfg->idle_timeout_ms = (int64_t)n;
    } else if (!strcmp(name, "max-connections")) {
        if (parse_count(value, &n) || n < 1 || n > 10000000)
            return fail("%s: max-connections must be 1..10000000, not '%s'", where, value);
        cfg->max_connections = (int)n;
    } else if (!strcmp(name, "max-queued-request-bytes")) {
        if (parse_size(value, &n))
            return fail("%s: max-queued-request-bytes must be a byte count, not '%s'", where,
                        value);
        cfg->max_queued_request_bytes = n;
    } else if (!strcmp(name, "max-partitions")) {
        if (parse_count(value, &n) || n > 10000000)
            return fail("%s: max-partitions must be 0..10000000, not '%s'", where, value);
        cfg->max_partitions = (int)n;
    } else if (!strcmp(name, "retention-check-ms")) {
        if (parse_size(value, &n) || n > INT32_MAX)
            return fail("%s: retention-check-ms must be 0..%d, not '%s'", where, INT32_MAX, value);
        g_retention_check_ms = (int)n;
    } else if (!strcmp(name, "auto-create")) {
        int b = 1;
        if (value && parse_bool(value, &b))
            return fail("%s: auto-create must be true or false, not '%s'", where, value);
        cfg->auto_create = b;
    } else if (!strcmp(name, "no-auto-create")) {
        cfg->auto_create = 0;
    } else {
        return fail("%s: unknown option '%s'", where, name);
    }
    return 0;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static int load_config(server_cfg *cfg, char *data_buf, size_t data_len, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return fail("cannot read the config file %s: %s", path, strerror(errno));
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *s = trim(line);
        if (!*s) continue;
        char where[512];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = fail("%s: expected 'name = value'", where);
            break;
        }
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        if (!strcmp(name, "config")) {
            rc = fail("%s: a config file cannot name another", where);
            break;
        }
        rc = apply_option(cfg, data_buf, data_len, name, value, where);
    }
    fclose(f);
    return rc;
}

enum { OPT_HELP = 1000, OPT_VERSION, OPT_CONFIG };

/* Each connection and each open partition (three segment files) takes descriptors;
 * the usual soft limit of 1024 would refuse clients long before memory runs short.
 * Raise it to the hard limit, as servers do. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv) {
    static char data_buf[4096];
    raise_fd_limit();
    server srv;
    memset(&srv, 0, sizeof srv);
    /* For the test of the parked-Fetch wake-up race only (server.h); at most 1 s. */
    const char *tpd = getenv("ALOGD_TEST_PARK_DELAY_US");
    long tpd_us = tpd ? strtol(tpd, NULL, 10) : 0;
    if (tpd_us > 0) srv.test_park_delay_us = tpd_us > 1000000 ? 1000000 : (int)tpd_us;
    server_cfg *cfg = &srv.cfg;
    cfg->data_dir = DEFAULT_DATA;
    snprintf(cfg->listen_host, sizeof cfg->listen_host, "%s", DEFAULT_HOST);
    cfg->listen_port = ALOGD_DEFAULT_PORT;
    cfg->partitions = 1;
    cfg->max_request_bytes = ALOGD_DEFAULT_MAX_REQUEST;
    cfg->auto_create = 1;
    cfg->idle_timeout_ms = ALOGD_DEFAULT_IDLE_MS;
    cfg->max_connections = ALOGD_DEFAULT_MAX_CONNECTIONS;
    cfg->max_queued_request_bytes = ALOGD_DEFAULT_MAX_QUEUED_REQUEST;
    cfg->max_partitions = ALOGD_DEFAULT_MAX_PARTITIONS;

    static const struct option opts[] = {
        {"data", required_argument, NULL, 0},
        {"listen", required_argument, NULL, 0},
        {"advertise", required_argument, NULL, 0},
        {"partitions", required_argument, NULL, 0},
        {"fsync", required_argument, NULL, 0},
        {"max-request-bytes", required_argument, NULL, 0},
        {"segment-bytes", required_argument, NULL, 0},
        {"retention-check-ms", required_argument, NULL, 0},
        {"retention-bytes", required_argument, NULL, 0},
        {"idle-timeout-ms", required_argument, NULL, 0},
        {"max-connections", required_argument, NULL, 0},
        {"max-queued-request-bytes", required_argument, NULL, 0},
        {"max-partitions", required_argument, NULL, 0},
        {"no-auto-create", no_argument, NULL, 0},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    /* Pass 1: --help, --version, --config (the file first, so the command line wins). */
    const char *config = NULL;
    opterr = 0;
    int o, idx;
    while ((o = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        if (o == OPT_HELP || o == 'h') {
            usage(stdout);
            return 0;
        }
        if (o == OPT_VERSION) {
            printf("alogd %s (libalog %s)\n", ALOG_VERSION_STRING, alog_version());
            return 0;
        }
        if (o == OPT_CONFIG) config = optarg;
    }
    if (config && load_config(cfg, data_buf, sizeof data_buf, config)) return 2;
    /* Pass 2: everything else, in order. */
    optind = 0;
    opterr = 1;
    while ((o = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        if (o == 0) {
            char where[64];
            snprintf(where, sizeof where, "--%s", opts[idx].name);
            if (apply_option(cfg, data_buf, sizeof data_buf, opts[idx].name, optarg, where)) {
                fprintf(stderr, "Try 'alogd --help' for more information.\n");
                return 2;
            }
        } else if (o == '?') {
            fprintf(stderr, "Try 'alogd --help' for more information.\n");
            return 2;
        }
    }
    if (optind < argc) {
        fail("unexpected argument '%s'", argv[optind]);
        fprintf(stderr, "Try 'alogd --help' for more information.\n");
        return 2;
    }

    /* Signals: taken by sigwait() below; the threads started later inherit the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    topics_config tc;
    memset(&tc, 0, sizeof tc);
    tc.data_dir = cfg->data_dir;
    tc.default_partitions = cfg->partitions;
    tc.auto_create = cfg->auto_create;
    alog_options_init(&tc.log_opts);
    /* The defaults of the topics' flush.messages (--fsync always: 1) and flush.ms
     * (1000). A topic fsynced per acknowledgement gets logs that never sync on the
     * append path: a produce asks for the fsync with alog_on_durable() (topics.c). */
    tc.fsync_always = cfg->fsync_always;
    tc.log_opts.fsync_policy = ALOG_FSYNC_INTERVAL;
    tc.log_opts.fsync_interval_ms = 1000;
    tc.retention_check_ms = g_retention_check_ms;
    tc.max_partitions = cfg->max_partitions;
    if (cfg->segment_bytes) tc.log_opts.segment_bytes = cfg->segment_bytes;
    tc.log_opts.retention_bytes = cfg->retention_bytes;
    /* A batch may be as large as a request. */
    if (cfg->max_request_bytes > tc.log_opts.max_batch_bytes)
        tc.log_opts.max_batch_bytes = (uint32_t)cfg->max_request_bytes;

    /* What Metadata advertises (the port once bound: net_start sets srv.port). */
    snprintf(srv.host, sizeof srv.host, "%s",
             cfg->advertise_host[0] ? cfg->advertise_host : cfg->listen_host);
    if (!cfg->advertise_host[0] &&
        (!strcmp(srv.host, "0.0.0.0") || !strcmp(srv.host, "::") || !srv.host[0])) {
        if (gethostname(srv.host, sizeof srv.host) != 0)
            snprintf(srv.host, sizeof srv.host, "localhost");
        srv.host[sizeof srv.host - 1] = '\0';
    }
    char err[1200];
    if (topics_open(&tc, &srv.topics, err, sizeof err)) {
        fail("%s", err);
        return 1;
    }
    if (net_start(&srv, err, sizeof err)) {
        fail("%s", err);
        topics_close(srv.topics);
        return 1;
    }
    /* The limits are meant to bind before the descriptors run out: say so if not. */
    struct rlimit rl;
    uint64_t need = 4 * (uint64_t)cfg->max_partitions + (uint64_t)cfg->max_connections + 64;
    if (cfg->max_partitions > 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
        rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        fprintf(stderr,
                "alogd: warning: the open files limit (ulimit -n) is %llu, below the %llu "
                "that --max-partitions %d and --max-connections %d may take (4 a partition, "
                "1 a connection): raise it or lower them\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)need, cfg->max_partitions,
                cfg->max_connections);
    fprintf(stderr,
            "alogd: listening on %s:%d (advertised as %s:%d), data in %s, fsync %s, "
            "auto-create %s, %d partition%s by default, %d threads\n",
            cfg->listen_host, cfg->listen_port, srv.host, srv.port, cfg->data_dir,
            cfg->fsync_always ? "always" : "interval (1000 ms)", cfg->auto_create ? "on" : "off",
            cfg->partitions, cfg->partitions == 1 ? "" : "s", srv.nworkers);

    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    fprintf(stderr, "alogd: %s: shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    net_stop(&srv);
    net_log_counts(&srv);
    topics_close(srv.topics);
    net_free(&srv);
    fprintf(stderr, "alogd: stopped; every log closed cleanly\n");
    return 0;
}
