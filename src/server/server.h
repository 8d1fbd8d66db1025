/*
 * server.h -- what the network layer (net.c) and the request handlers (api.c) share:
 * the server's configuration and state, and the life of one request.
 *
 * A request is decoded by net.c from one frame of a connection, handed to
 * api_handle(), and ends in exactly one of request_respond(), request_no_response()
 * or request_close_conn(); until then it may wait: a Produce for an fsync
 * (worker_post() from the log's fsync thread), a Fetch for data (request_park()).
 * Responses leave each connection in request order, whatever order they finish in.
 * A Fetch response may carry segment file ranges (request_respond_fetch()): net.c
 * sends them with sendfile(2) between the encoded bytes, holding each range's segment
 * reference (alog_raw) until its bytes are out.
 * Everything about a request runs on the thread of the worker that owns its
 * connection, except the callbacks that end in worker_post().
 */
#ifndef ALOGD_SERVER_H
#define ALOGD_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka_msgs.h"
#include "proto.h"
#include "topics.h"

#define ALOGD_DEFAULT_PORT 9092
#define ALOGD_DEFAULT_MAX_REQUEST (100u << 20)
#define ALOGD_THREADS 2
#define ALOGD_DEFAULT_IDLE_MS 600000 /* Kafka's connections.max.idle.ms: 10 minutes */
#define ALOGD_DEFAULT_MAX_CONNECTIONS 10000
/* Each partition: a thread and 4+ descriptors. With the default connections that is
 * 18064 descriptors, within common open files limits (20000; systemd's 524288). */
#define ALOGD_DEFAULT_MAX_PARTITIONS 2000
/* Requests in flight on every connection together (Kafka's queued.max.request.bytes):
 * 4 connections at the 64 MiB bound of each, 2.5 requests of the largest default size;
 * with their decoded forms about twice that in memory. */
#define ALOGD_DEFAULT_MAX_QUEUED_REQUEST (256u << 20)

typedef struct server_cfg {
    const char *data_dir;
    char listen_host[256];
    int listen_port;         /* 0: any free port (printed at start) */
    char advertise_host[256]; /* what Metadata tells clients; "" = listen host */
    int advertise_port;      /* 0 = the port listened on */
    int partitions;          /* default partition count */
    int fsync_always;        /* --fsync always (else interval) */
    size_t max_request_bytes;
    int auto_create;
    uint64_t segment_bytes; /* 0 = the engine's default */
    uint64_t retention_bytes; /* per partition; 0 = no limit */
    int64_t idle_timeout_ms; /* close connections idle this long; 0 = never */
    int max_connections;     /* open connections beyond this are refused */
    int max_partitions;      /* partitions open at most, all topics; 0 = no limit */
    uint64_t max_queued_request_bytes; /* requests in flight, all connections; 0 = no limit */
} server_cfg;

typedef struct worker worker;
typedef struct conn conn;
typedef struct slot slot;

typedef struct server {
    server_cfg cfg;
    topics *topics;
    worker **workers;
    int nworkers;
    char host[256]; /* advertised host and port */
    int port;
    atomic_int nconns; /* open connections, all workers (--max-connections) */
    atomic_size_t queued_bytes; /* requests in flight, all workers (--max-queued-request-bytes) */
    uint64_t key_seed;      /* server_partition_key's, random (net_start) */
    /* ALOGD_TEST_PARK_DELAY_US, tests only: a Fetch that found too little waits this
     * long before it parks: the window in which a wake-up was once lost (net.c). */
    int test_park_delay_us;
} server;

/* A unit of work posted to a worker from any thread; runs on the worker's thread.
 * Embed it in the caller's struct (no allocation in the poster's thread). */
typedef struct wtask {
    struct wtask *next;
    void (*fn)(struct wtask *t);
} wtask;

typedef struct request {
    server *srv;
    worker *w;
    conn *c;
    uint8_t *buf; /* the frame after its size prefix (owned) */
    size_t len;
    karena arena; /* the decoded request and what handlers allocate for the response */
    kreq req;
    slot *slot;   /* where the response goes in the connection's order */
    int pending;  /* api.c: callbacks still to come before the response */
    void *api_state; /* api.c: a response under construction (in the arena) */
    int64_t deadline_ms; /* a parked Fetch: when to answer anyway (monotonic ms) */
    struct request *park_next;
    int parked;
    int woken; /* parked, to be retried now: data arrived in a partition it names */
    struct park_watch *watch; /* a Fetch: one per partition it names (api.c, arena) */
    size_t nwatch;
} request;

/* A partition a parked Fetch waits on: api.c sets key (server_partition_key), net.c
 * links it into its worker's index while the Fetch is parked. */
typedef struct park_watch {
    uint64_t key;
    request *r;
    struct park_watch *next, **pprev;
} park_watch;

/* ---- net.c, for api.c ---------------------------------------------------------- */

/* Encodes body as the response of r, queues it in order, frees r. */
void request_respond(request *r, const kresp_body *body);
/* The same for a Fetch whose records chunks with p NULL (out of line, see
 * kafka_encode_fetch_response) are sent from files: files[k] is the k-th such chunk,
 * in encoding order, its bytes the range [position, position + length) of its fd.
 * Takes the references in files[0..nfiles) (files itself stays the caller's): each is
 * released once its bytes are sent, or when the connection closes. */
void request_respond_fetch(request *r, const kresp_fetch *body, alog_raw *files, size_t nfiles);
/* r gets no response (Produce with acks=0); frees r. */
void request_no_response(request *r);
/* Closes r's connection with a log line naming why; frees r. */
void request_close_conn(request *r, const char *why);
/* A Fetch's attempt begins: it counts as parked on w from now (server_data_arrived
 * then tells w of every append), until request_park_end() (answered) or, once parked,
 * until it leaves the parked state. */
void request_park_begin(worker *w);
void request_park_end(worker *w);
/* Parks a Fetch, after its request_park_begin(), until deadline_ms (monotonic) or
 * until data arrives in one of the partitions of r->watch: then api_fetch_retry() is
 * called again. */
void request_park(request *r, int64_t deadline_ms);
/* The key of partition p of the topic named name (len bytes): a hash with the server's
 * random seed. Two partitions share a key once in 2^64: at worst a needless retry. */
uint64_t server_partition_key(const server *s, const char *name, size_t len, int32_t p);
/* Records were appended to the nkeys partitions of keys (server_partition_key; repeats
 * are fine): wakes the parked Fetches that name one of them, on every worker. Any
 * thread. */
void server_data_arrived(server *s, const uint64_t *keys, size_t nkeys);
/* Runs t->fn on w's thread soon. Any thread; never fails. */
void worker_post(worker *w, wtask *t);
/* 1 while the worker is shutting down (parked requests must answer now). */
int worker_draining(const worker *w);
/* The peer's address, for log lines ("127.0.0.1:53122"). */
const char *request_peer(const request *r);
/* Bytes r's connection may still queue before its unsent output reaches the 64 MiB
 * back-pressure bound (0 if it is there): a Fetch answers with no more than that. */
uint64_t request_out_room(const request *r);
int64_t mono_ms(void);

/* ---- api.c, for net.c ---------------------------------------------------------- */

/* Answers a decoded request (r->req). */
void api_handle(request *r);
/* A parked Fetch: answers it if it can now (or expired); returns 1 if answered, 0 if
 * it parked again. */
int api_fetch_retry(request *r, int expired);

/* ---- net.c, for alogd.c --------------------------------------------------------- */

/* Binds the listening sockets and creates the workers. On failure returns -1 with a
 * message in err. srv->port is the port actually bound. */
int net_start(server *srv, char *err, size_t errlen);
/* Asks every worker to finish: no new requests; pending ones are answered (parked
 * Fetches at once) for at most a few seconds; then waits for them. */
void net_stop(server *srv);
/* Frees the workers; runs tasks posted meanwhile (after the logs are closed). */
void net_free(server *srv);
/* Logs what the workers counted of parked Fetches (after net_stop). */
void net_log_counts(const server *srv);

#endif
