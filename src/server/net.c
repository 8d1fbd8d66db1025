/*
 * net.c -- alogd's network layer: listening sockets, worker threads with one epoll
 * each, connections, framing, and responses in request order.
 *
 * Threads: ALOGD_THREADS workers (2). Each has its own listening socket on the same
 * address with SO_REUSEPORT, so the kernel spreads new connections over the workers
 * and no socket is ever handed between threads: a connection lives and dies on the
 * worker that accepted it, with no locks on the request path. (The alternative, one
 * accept thread dealing sockets out round-robin, costs a hand-over per connection and
 * is no fairer.) Each worker also watches an eventfd: other threads use it to post
 * tasks (an fsync finished: the log's thread calls alog_on_durable callbacks), to
 * wake parked Fetches (data was appended on another worker) and to stop.
 *
 * Framing: a request is a 4-byte big-endian size and that many bytes. A size above
 * --max-request-bytes, one too small for a header, or a request that does not decode
 * closes that connection alone, with one line on stderr. Input is read as it comes
 * (the buffer grows with the bytes that arrived, never to a size a peer only claims),
 * so a slow or silent client holds only its own buffer; sockets are non-blocking and
 * edge-triggered, and nothing on a worker waits for a peer.
 *
 * Order: each request gets a slot in its connection's queue when it is decoded; its
 * response fills the slot whenever it is ready (at once, after an fsync, after a
 * long-poll), and bytes leave only from the head of the queue, so responses go out in
 * request order. A connection with 64 requests in flight, 64 MiB of them (their frames,
 * each kept until its request ends: a parked Fetch holds its copy, and its decoded
 * form about as large again, until it is answered; 64 parked Fetches of 4.5 MB held
 * 625 MB) or 64 MiB of unsent output is not read further until that drains
 * (back-pressure on its TCP window). One request of any size up to
 * --max-request-bytes is still taken when below those. A Fetch
 * response takes at most the room left under those 64 MiB (request_out_room; at least
 * one batch, as KIP-74), so that 64 parked Fetches answered together (their deadline,
 * or data arrived) cannot queue 64 full responses: each could hold --max-request-bytes
 * of records copied into its buffer (a Fetch naming one partition 3,000 times, each
 * time a 30 KB batch, is 90 MB), 64 of them gigabytes on one connection.
 *
 * Server-wide budget: those bounds are per connection, so 20 connections pipelining
 * long polls held 1.7 GB. --max-queued-request-bytes (Kafka's
 * queued.max.request.bytes) bounds the frames in flight of every connection
 * together (queued_bytes, an atomic): at or past it a connection with a request in
 * flight is not read further. One with none still takes one, unlike Kafka, which
 * stops reading everywhere: a peer holding the budget with long polls (their
 * max_wait_ms is the client's choice) then slows the others to one request at a
 * time but stops none, and the server cannot wait on itself (each connection held
 * back has a request that will end: a deadline, an fsync). A connection held back
 * by the budget alone waits in its worker's budget list; the request end that brings
 * the total below the budget wakes each worker whose list waits (budget_waiting, so
 * only those, through the eventfd), and that worker reads them again in the order
 * they began to wait.
 *
 * Sending: a slot holds the encoded response and, for a Fetch, file ranges (segment
 * fd, position, length) that belong at given places in it (api.c decides which
 * records go that way). The buffer's bytes go with send(), MSG_MORE when a range
 * follows, and each range with sendfile(2) on the non-blocking socket: no copy through
 * user space. A partial send or sendfile (EAGAIN) keeps its place (a position in the
 * buffer, or a range and the bytes of it sent) and resumes on EPOLLOUT. Each range
 * holds its segment's reference (alog_raw) until its last byte is sent, or until the
 * connection closes: the fd stays open, so bytes already promised are still read from
 * a segment that retention unlinked meanwhile; and the range lies below the
 * segment's published end when it was read, where the bytes never change.
 *
 * Connection limits: --max-connections counts open connections over every worker (an
 * atomic); a connection past it is accepted and closed at once (with a log line, at
 * most one a second, so a flood cannot flood the log), and the others are served as
 * before. --idle-timeout-ms (Kafka's connections.max.idle.ms, default 10 minutes)
 * closes, with a log line, a connection that received nothing and finished no
 * response for that long and has no request in flight. Each worker keeps its
 * connections in order of last activity (a doubly linked list: activity moves a
 * connection to the front in O(1)), so the timer looks only at the tail, and
 * epoll_wait's timeout includes the tail's deadline.
 *
 * Parked Fetches: a Fetch without min_bytes of data waits in its worker's parked list
 * until its deadline (the epoll_wait timeout is the nearest one) or until data is
 * appended to a partition it names; then it is rebuilt (api_fetch_retry). As Kafka's
 * purgatory watches a delayed fetch per partition, each worker keeps an index from
 * partition (a key: topic name and partition hashed, server_partition_key) to the
 * parked Fetches that name it: a hash table of intrusive nodes, one per distinct
 * partition a Fetch names, each Fetch's in its own array, linked when it parks and
 * unlinked when it leaves (answered, retried, its connection closed).
 * server_data_arrived() (after a Produce, on any worker) adds the keys of the
 * partitions appended to, to each worker that has parked Fetches, under the worker's
 * mutex, and wakes it; the worker takes them and retries only the Fetches watching
 * those keys, each at most once an iteration. So an append costs the Fetches that wait
 * for it, not every parked partition (20 parked Fetches naming 4,000 partitions each, a
 * Produce to another partition every 10 ms: 4.9 ms of worker CPU per Produce when each
 * append rebuilt every parked Fetch, 0.07 ms now, as with no Fetch parked). Keys hold
 * no topic pointer: a topic deleted, or created again under its name, causes at worst a
 * needless retry. A Fetch counts as parked from before its attempt, so an append that
 * lands between its attempt and its parking still reaches it (request_park_begin).
 *
 * Shutdown (net_stop): listeners close, no new requests are read, parked Fetches are
 * answered, pending Produces get their fsync, output is flushed; after at most 5 s
 * the worker closes what is left and exits.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "server.h"

#define MAX_INFLIGHT 64
#define MAX_UNSENT (64u << 20)
#define READ_CHUNK (64u << 10)
#define DRAIN_MS 5000
#define WATCH_MIN_BUCKETS 64
/* Keys announced to a worker and not yet taken, at most: past it (a worker busy for
 * long, a Produce to very many partitions) every parked Fetch of it is retried. */
#define PEND_MAX (1u << 16)

/* A file range of a Fetch response: its bytes go at position at of the slot's out. */
typedef struct slot_file {
    size_t at;
    alog_raw raw; /* holds the segment: the fd stays open and readable until released */
} slot_file;

struct slot {
    slot *next;
    kbuf out;         /* the encoded response, without its file ranges */
    size_t sent;      /* bytes of out sent */
    slot_file *files; /* by position */
    size_t nfiles;
    size_t fi;        /* the next file range to send */
    uint64_t fsent;   /* bytes of files[fi] sent */
    uint64_t size;    /* out.len plus the file ranges' bytes */
    int ready;
};

struct conn {
    worker *w;
    int fd;
    char peer[64];
    kbuf in;
    size_t in_pos;     /* bytes of in already handled */
    slot *head, *tail; /* responses in request order */
    int nslots;
    size_t unsent;
    size_t req_bytes; /* the frames of its requests in flight (parked Fetches too) */
    int refs;    /* 1 while open + 1 per live request */
    int closed;
    int stalled; /* stopped reading for back-pressure; resume when it drains */
    int eof;     /* the peer shut its side: close once every response is out */
    int want_resume;
    int budget_wait; /* in the worker's budget list */
    int64_t last_active; /* a byte received or a response sent (worker's clock) */
    conn *prev, *next;  /* the worker's open connections, most recently active first */
    conn *resume_next;  /* the worker's resume list */
    conn *budget_prev, *budget_next; /* the worker's budget list */
    conn *grave_next;   /* freed at the end of the loop iteration */
};

struct worker {
    server *srv;
    int idx;
    pthread_t th;
    int started;
    int epfd, evfd, lfd;
    pthread_mutex_t mu; /* the posted tasks, and the announced keys (pend) */
    wtask *q_head, *q_tail;
    uint64_t *pend; /* keys of partitions appended to, for the parked Fetches */
    size_t npend, cap_pend;
    int pend_all;   /* too many keys, or no memory for them: retry every parked Fetch */
    uint64_t *pend_spare; /* the worker's: the vector pend last swapped out */
    size_t cap_spare;
    atomic_int stop;
    atomic_int data_flag; /* keys were announced (pend) */
    atomic_int nparked;
    park_watch **buckets; /* the parked Fetches by partition key: nbuckets chains */
    size_t nbuckets;      /* a power of 2, at least WATCH_MIN_BUCKETS */
    size_t nwatched;      /* nodes linked */
    uint64_t nparks;      /* counts for net_log_counts: Fetches parked, */
    uint64_t nwoken;      /* and retried because data arrived */
    int draining;
    int64_t drain_deadline;
    int64_t accept_resume; /* accepting paused (out of fds) until then; 0 = not paused */
    int64_t now;           /* mono_ms() at the start of this loop iteration */
    int64_t refused_logged; /* when the last --max-connections refusal was logged */
    int refused_quiet;     /* refusals since then, not logged */
    request *parked;
    conn *conns, *conns_tail; /* least recently active at the tail */
    conn *resume;
    conn *budget_tail; /* stalled by the server-wide budget alone: the newest (prev) */
    atomic_int budget_waiting; /* set with the budget list: a release must wake us */
    atomic_int budget_woken;   /* a release came: look at the budget list again */
    conn *grave;
};

int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...) {
    char line[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "alogd: %s\n", line);
}

/* ---- posting to a worker ------------------------------------------------------------ */

static void wake(worker *w) {
    uint64_t one = 1;
    /* EAGAIN only if the counter is about to overflow: it is already readable. */
    while (write(w->evfd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

void worker_post(worker *w, wtask *t) {
    t->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->q_tail)
        w->q_tail->next = t;
    else
        w->q_head = t;
    w->q_tail = t;
    pthread_mutex_unlock(&w->mu);
    wake(w);
}

static void run_tasks(worker *w) {
    pthread_mutex_lock(&w->mu);
    wtask *t = w->q_head;
    w->q_head = w->q_tail = NULL;
    pthread_mutex_unlock(&w->mu);
    while (t) {
        wtask *next = t->next; /* t may be freed by its fn */
        t->fn(t);
        t = next;
    }
}

/* Under w->mu: appends n keys to w's pending ones; past PEND_MAX, or without memory,
 * asks for every parked Fetch to be retried instead. */
static void pend_add(worker *w, const uint64_t *keys, size_t n) {
    if (w->pend_all) return;
    if (n > PEND_MAX - w->npend) {
        w->pend_all = 1;
        return;
    }
    if (w->npend + n > w->cap_pend) {
        size_t cap = w->cap_pend ? w->cap_pend : 64;
        while (cap < w->npend + n) cap *= 2;
        uint64_t *v = realloc(w->pend, cap * sizeof *v);
        if (!v) {
            w->pend_all = 1;
            return;
        }
        w->pend = v;
        w->cap_pend = cap;
    }
    memcpy(w->pend + w->npend, keys, n * sizeof *keys);
    w->npend += n;
}

/* The keys go to each worker whose count of parked Fetches is not 0; the fence
 * orders the append before the counts are read (request_park_begin says why no
 * wake-up is lost). Reading the counts before a Fetch was counted once made a
 * consumer wait out its whole max_wait_ms for a record that was there (once in 9,000
 * fetch-then-produce rounds on two connections). */
void server_data_arrived(server *s, const uint64_t *keys, size_t nkeys) {
    atomic_thread_fence(memory_order_seq_cst);
    for (int i = 0; i < s->nworkers; i++) {
        worker *w = s->workers[i];
        if (atomic_load(&w->nparked) == 0) continue;
        pthread_mutex_lock(&w->mu);
        pend_add(w, keys, nkeys);
        pthread_mutex_unlock(&w->mu);
        atomic_store(&w->data_flag, 1); /* after the keys: the worker takes them all */
        wake(w);
    }
}

int worker_draining(const worker *w) { return w->draining; }

/* ---- the server-wide budget of requests in flight ----------------------------------- */

/* Whether c may take a request under --max-queued-request-bytes. One with none in
 * flight always may: a peer holding the budget with long polls (up to max_wait_ms,
 * which the client picks) slows every other connection to one request at a time, but
 * stops none of them. */
static int budget_allows(const conn *c) {
    server *s = c->w->srv;
    uint64_t max = s->cfg.max_queued_request_bytes;
    return !max || !c->req_bytes || atomic_load(&s->queued_bytes) < max;
}

/* A request ended on any worker. When that brings the total below the budget, each
 * worker with connections waiting for it is woken (once: budget_waiting is set again
 * by the next connection that waits). */
static void budget_release(server *s, size_t len) {
    uint64_t max = s->cfg.max_queued_request_bytes;
    size_t before = atomic_fetch_sub(&s->queued_bytes, len);
    if (!max || before < max || before - len >= max) return;
    for (int i = 0; i < s->nworkers; i++) {
        worker *w = s->workers[i];
        if (atomic_load(&w->budget_waiting) && atomic_exchange(&w->budget_waiting, 0)) {
            atomic_store(&w->budget_woken, 1);
            wake(w);
        }
    }
}

static void conn_resume_later(conn *c);

/* c, stalled, has room of its own but the budget is spent: it waits in its worker's
 * budget list. The flag is set before the total is read again, so a release between
 * our first look and now is not lost: either it finds the flag and wakes us, or we
 * find the total it left (all of these atomics are sequentially consistent). */
static void budget_wait(conn *c) {
    worker *w = c->w;
    if (!c->budget_wait) {
        c->budget_wait = 1;
        c->budget_next = NULL;
        c->budget_prev = w->budget_tail;
        if (w->budget_tail) w->budget_tail->budget_next = c;
        w->budget_tail = c;
    }
    atomic_store(&w->budget_waiting, 1);
    if (budget_allows(c)) conn_resume_later(c);
}

static void budget_unlink(conn *c) {
    worker *w = c->w;
    if (!c->budget_wait) return;
    c->budget_wait = 0;
    if (c->budget_prev) c->budget_prev->budget_next = c->budget_next;
    if (c->budget_next)
        c->budget_next->budget_prev = c->budget_prev;
    else
        w->budget_tail = c->budget_prev;
    c->budget_prev = c->budget_next = NULL;
}

static void conn_maybe_resume(conn *c);

/* Budget was given back: every waiting connection is looked at again (read at the end
 * of this iteration, or back in the list if the budget is spent again). Taken from
 * the tail, as the resume list is last in first out: they are read in the order they
 * began to wait, and those that lose again go to the back. */
static void budget_resume(worker *w) {
    conn *c = w->budget_tail;
    w->budget_tail = NULL;
    while (c) {
        conn *prev = c->budget_prev;
        c->budget_prev = c->budget_next = NULL;
        c->budget_wait = 0;
        conn_maybe_resume(c);
        c = prev;
    }
}

/* ---- parked Fetches by partition ---------------------------------------------------- */

/* FNV-1a over the name from the random seed (a peer that may create topics cannot pick
 * names that fill one chain of the index), then the partition, then murmur3's
 * finalizer, so that the low bits (the chain) depend on every bit. For one name,
 * distinct partitions get distinct keys (every step is a bijection). */
uint64_t server_partition_key(const server *s, const char *name, size_t len, int32_t p) {
    uint64_t h = s->key_seed;
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)name[i]) * 0x100000001b3ull;
    h = (h ^ (uint32_t)p) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

static park_watch **watch_chain(park_watch **buckets, size_t nbuckets, uint64_t key) {
    return &buckets[key & (nbuckets - 1)];
}

static void watch_link(park_watch **chain, park_watch *x) {
    x->next = *chain;
    if (x->next) x->next->pprev = &x->next;
    x->pprev = chain;
    *chain = x;
}

/* Rehashes the index into n chains; out of memory, keeps the table as it is (longer
 * chains, the same wake-ups). */
static void watch_resize(worker *w, size_t n) {
    park_watch **b = calloc(n, sizeof *b);
    if (!b) return;
    for (size_t i = 0; i < w->nbuckets; i++) {
        park_watch *x = w->buckets[i];
        while (x) {
            park_watch *next = x->next;
            watch_link(watch_chain(b, n, x->key), x);
            x = next;
        }
    }
    free(w->buckets);
    w->buckets = b;
    w->nbuckets = n;
}

/* Links r's nodes (distinct keys: api.c). The table doubles as it fills, so chains
 * stay short: O(1) a node. */
static void watch_add(worker *w, request *r) {
    for (size_t i = 0; i < r->nwatch; i++) {
        park_watch *x = &r->watch[i];
        if (w->nwatched >= w->nbuckets) watch_resize(w, 2 * w->nbuckets);
        x->r = r;
        watch_link(watch_chain(w->buckets, w->nbuckets, x->key), x);
        w->nwatched++;
    }
}

/* Unlinks r's nodes; the table shrinks once mostly empty (a large Fetch gone). */
static void watch_del(worker *w, request *r) {
    for (size_t i = 0; i < r->nwatch; i++) {
        park_watch *x = &r->watch[i];
        *x->pprev = x->next;
        if (x->next) x->next->pprev = x->pprev;
        w->nwatched--;
    }
    if (w->nbuckets > WATCH_MIN_BUCKETS && w->nwatched < w->nbuckets / 8)
        watch_resize(w, w->nbuckets / 4);
}

/* Takes the keys announced since last time and marks the parked Fetches watching them;
 * retry_parked retries each marked one once, in this loop iteration. */
static void wake_watchers(worker *w) {
    pthread_mutex_lock(&w->mu);
    uint64_t *keys = w->pend;
    size_t n = w->npend, cap = w->cap_pend;
    int all = w->pend_all;
    w->pend = w->pend_spare;
    w->cap_pend = w->cap_spare;
    w->npend = 0;
    w->pend_all = 0;
    pthread_mutex_unlock(&w->mu);
    w->pend_spare = keys;
    w->cap_spare = cap;
    if (all) {
        for (request *r = w->parked; r; r = r->park_next) r->woken = 1;
        return;
    }
    for (size_t i = 0; i < n; i++)
        for (park_watch *x = *watch_chain(w->buckets, w->nbuckets, keys[i]); x; x = x->next)
            if (x->key == keys[i]) x->r->woken = 1;
}

/* r leaves the parked state, to be retried or freed: out of the index and the count. */
static void park_leave(worker *w, request *r) {
    r->woken = 0;
    watch_del(w, r);
    atomic_fetch_sub(&w->nparked, 1);
}

/* ---- connections -------------------------------------------------------------------- */

/* Drops the segment references a response still holds (sent or not). */
static void slot_release_files(slot *s) {
    for (size_t i = 0; i < s->nfiles; i++) alog_raw_release(&s->files[i].raw);
    free(s->files);
    s->files = NULL;
    s->nfiles = s->fi = 0;
}

static void slot_free(slot *s) {
    slot_release_files(s);
    kbuf_free(&s->out);
    free(s);
}

/* The worker's list of open connections, kept in order of activity for the idle
 * timeout: touching moves a connection to the front, so the one idle longest is at
 * the tail. */
static void conn_unlink(conn *c) {
    worker *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        w->conns_tail = c->prev;
    c->prev = c->next = NULL;
}

static void conn_link_front(conn *c) {
    worker *w = c->w;
    c->prev = NULL;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    else
        w->conns_tail = c;
    w->conns = c;
}

static void conn_touch(conn *c) {
    c->last_active = c->w->now;
    if (!c->closed && c->w->conns != c) {
        conn_unlink(c);
        conn_link_front(c);
    }
}

static void conn_unref(conn *c) {
    if (--c->refs == 0) {
        c->grave_next = c->w->grave;
        c->w->grave = c;
    }
}

static void conn_free(conn *c) {
    while (c->head) {
        slot *s = c->head;
        c->head = s->next;
        slot_free(s);
    }
    kbuf_free(&c->in);
    free(c);
}

static void request_free(request *r) {
    conn *c = r->c;
    karena_free(&r->arena);
    free(r->buf);
    c->req_bytes -= r->len;
    budget_release(c->w->srv, r->len);
    if (!c->closed) conn_maybe_resume(c);
    conn_unref(c);
    free(r);
}

/* Closes c (once): why is logged unless NULL. Requests still running keep the memory
 * until they end; their responses are dropped. */
static void conn_close(conn *c, const char *why) {
    if (c->closed) return;
    c->closed = 1;
    if (why) logmsg("%s: %s; closing the connection", c->peer, why);
    epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    worker *w = c->w;
    atomic_fetch_sub(&w->srv->nconns, 1);
    /* Responses not sent never will be: their segments may go now. */
    for (slot *s = c->head; s; s = s->next) slot_release_files(s);
    /* Its parked Fetches go now. */
    request **pp = &w->parked;
    while (*pp) {
        request *r = *pp;
        if (r->c == c) {
            *pp = r->park_next;
            r->parked = 0;
            park_leave(w, r);
            request_free(r);
        } else {
            pp = &r->park_next;
        }
    }
    conn_unlink(c);
    budget_unlink(c);
    conn_unref(c);
}

/* The connection's own bounds: below each, it takes one more request of any size. */
static int conn_has_room(const conn *c) {
    return c->nslots < MAX_INFLIGHT && c->unsent < MAX_UNSENT && c->req_bytes < MAX_UNSENT &&
           !c->w->draining;
}

static int conn_can_take(const conn *c) { return conn_has_room(c) && budget_allows(c); }

/* Read at the end of the loop. */
static void conn_resume_later(conn *c) {
    if (c->want_resume) return;
    c->want_resume = 1;
    c->resume_next = c->w->resume;
    c->w->resume = c;
}

/* A stalled connection that can take requests again is read at the end of the loop;
 * one held back by the server-wide budget alone waits for it in the budget list. */
static void conn_maybe_resume(conn *c) {
    if (!c->stalled || !conn_has_room(c)) return;
    if (budget_allows(c))
        conn_resume_later(c);
    else
        budget_wait(c);
}

/* Sends what the socket takes of response s: the bytes of out, and at their places
 * its file ranges with sendfile (no copy through user space; see api.c for when a
 * Fetch uses them). Returns 1 once s is all sent, 0 when the socket is full (EPOLLOUT
 * brings us back, and the send resumes where it stopped, within out or within a
 * file range), -1 if the connection was closed. */
static int slot_send(conn *c, slot *s) {
    for (;;) {
        ssize_t n;
        const char *call;
        if (s->fi < s->nfiles && s->sent == s->files[s->fi].at) {
            slot_file *f = &s->files[s->fi];
            if (s->fsent == f->raw.length) {
                alog_raw_release(&f->raw); /* sent: retention may take the segment now */
                s->fi++;
                s->fsent = 0;
                continue;
            }
            uint64_t left = f->raw.length - s->fsent;
            off_t off = (off_t)(f->raw.position + s->fsent);
            call = "sendfile";
            n = sendfile(c->fd, f->raw.fd, &off, left > (1u << 30) ? (1u << 30) : (size_t)left);
            if (n > 0) {
                s->fsent += (uint64_t)n;
                c->unsent -= (size_t)n;
                continue;
            }
            if (n == 0) { /* below the published end a segment never shrinks */
                conn_close(c, "sendfile: a segment file ended before its published end");
                return -1;
            }
        } else {
            size_t end = s->fi < s->nfiles ? s->files[s->fi].at : s->out.len;
            if (s->sent == end) return 1;
            /* MSG_MORE before a file range: the header and the records leave in full
             * segments, not a small one first (TCP_NODELAY is on). */
            call = "send";
            n = send(c->fd, s->out.data + s->sent, end - s->sent,
                     MSG_NOSIGNAL | (s->fi < s->nfiles ? MSG_MORE : 0));
            if (n > 0) {
                s->sent += (size_t)n;
                c->unsent -= (size_t)n;
                continue;
            }
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0; /* EPOLLOUT */
        if (n < 0 && errno != EPIPE && errno != ECONNRESET) {
            char why[160];
            snprintf(why, sizeof why, "%s: %s", call, strerror(errno));
            conn_close(c, why);
        } else {
            conn_close(c, NULL);
        }
        return -1;
    }
}

/* Sends what is ready at the head of the queue. */
static void conn_flush(conn *c) {
    while (!c->closed && c->head && c->head->ready) {
        slot *s = c->head;
        if (slot_send(c, s) <= 0) return;
        c->head = s->next;
        if (!c->head) c->tail = NULL;
        c->nslots--;
        slot_free(s);
        conn_touch(c);
    }
    if (c->eof && !c->head && !c->closed) {
        conn_close(c, NULL);
        return;
    }
    conn_maybe_resume(c);
}

static slot *conn_new_slot(conn *c) {
    slot *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (c->tail)
        c->tail->next = s;
    else
        c->head = s;
    c->tail = s;
    c->nslots++;
    return s;
}

/* ---- requests ----------------------------------------------------------------------- */

const char *request_peer(const request *r) { return r->c->peer; }

uint64_t request_out_room(const request *r) {
    return r->c->unsent < MAX_UNSENT ? MAX_UNSENT - r->c->unsent : 0;
}

static void slot_done(conn *c, slot *s) {
    s->ready = 1;
    if (s->size < s->out.len) s->size = s->out.len; /* no file ranges */
    c->unsent += s->size;
    conn_flush(c);
}

void request_respond(request *r, const kresp_body *body) {
    conn *c = r->c;
    if (!c->closed) {
        char err[300];
        const kreq_header *h = &r->req.h;
        if (kafka_encode_response(&r->slot->out, h->api_key, h->api_version, h->correlation_id,
                                  body, err, sizeof err) != 0) {
            conn_close(c, err);
        } else {
            slot_done(c, r->slot);
        }
    }
    request_free(r);
}

void request_respond_fetch(request *r, const kresp_fetch *body, alog_raw *files, size_t nfiles) {
    conn *c = r->c;
    slot *s = r->slot;
    size_t *pos = NULL;
    if (!c->closed && nfiles) {
        s->files = calloc(nfiles, sizeof *s->files);
        pos = calloc(nfiles, sizeof *pos);
        if (!s->files || !pos) {
            free(pos);
            for (size_t i = 0; i < nfiles; i++) alog_raw_release(&files[i]);
            conn_close(c, "out of memory for a response");
            request_free(r);
            return;
        }
    }
    if (!c->closed) {
        char err[300];
        if (kafka_encode_fetch_response(&s->out, r->req.h.api_version, r->req.h.correlation_id,
                                        body, pos, nfiles, err, sizeof err) != 0) {
            conn_close(c, err);
        } else {
            s->size = s->out.len;
            for (size_t i = 0; i < nfiles; i++) {
                s->files[i].at = pos[i];
                s->files[i].raw = files[i];
                s->size += files[i].length;
                files[i].internal = NULL; /* the slot's now */
            }
            s->nfiles = nfiles;
            slot_done(c, s);
        }
    }
    free(pos);
    for (size_t i = 0; i < nfiles; i++) alog_raw_release(&files[i]); /* those not taken */
    request_free(r);
}

void request_no_response(request *r) {
    if (!r->c->closed) slot_done(r->c, r->slot); /* an empty slot: keeps the order */
    request_free(r);
}

void request_close_conn(request *r, const char *why) {
    conn_close(r->c, why);
    request_free(r);
}

static void park_link(worker *w, request *r) {
    r->parked = 1;
    r->park_next = w->parked;
    w->parked = r;
}

/* A Fetch is counted in nparked from before its attempt, then a fence, then the
 * attempt reads the partitions. server_data_arrived, after its append, has a fence and
 * then reads the count. By the fences' order, either the attempt sees the records,
 * or server_data_arrived sees the count above 0 and queues its keys for this worker,
 * which takes them in its loop: after the Fetch is in the index, since the attempt
 * and the parking run in one go on this thread. No wake-up is lost, and an append
 * elsewhere costs the Fetch nothing (a global epoch compared after parking instead
 * retried it whenever any append landed during its attempt). */
void request_park_begin(worker *w) {
    atomic_fetch_add(&w->nparked, 1);
    atomic_thread_fence(memory_order_seq_cst);
}

void request_park_end(worker *w) { atomic_fetch_sub(&w->nparked, 1); }

void request_park(request *r, int64_t deadline_ms) {
    worker *w = r->w;
    r->deadline_ms = deadline_ms;
    park_link(w, r);
    watch_add(w, r);
    w->nparks++;
}

/* Retries the parked Fetches woken by data (wake_watchers) and the expired (deadline
 * passed; all of them when draining). */
static void retry_parked(worker *w) {
    int64_t now = mono_ms();
    /* Take the list: answering may close connections, which edits w->parked. Those put
     * back untried stay counted in nparked and in the index throughout, so that an
     * append meanwhile on another worker still reaches them; a retried one is counted
     * again before its attempt (request_park_begin). */
    request *list = w->parked;
    w->parked = NULL;
    request *keep = NULL;
    while (list) {
        request *r = list;
        list = r->park_next;
        r->parked = 0;
        int expired = now >= r->deadline_ms || w->draining;
        if (r->c->closed) {
            park_leave(w, r);
            request_free(r);
        } else if (expired || r->woken) {
            if (!expired) w->nwoken++;
            park_leave(w, r);
            api_fetch_retry(r, expired); /* answers or parks again */
        } else {
            r->park_next = keep;
            keep = r;
        }
    }
    while (keep) {
        request *r = keep;
        keep = r->park_next;
        park_link(w, r);
    }
}

/* One complete frame: decode and dispatch. */
static void handle_frame(conn *c, const uint8_t *p, size_t len) {
    worker *w = c->w;
    request *r = calloc(1, sizeof *r);
    if (r) r->buf = malloc(len);
    if (!r || !r->buf) {
        free(r);
        conn_close(c, "out of memory for a request");
        return;
    }
    memcpy(r->buf, p, len);
    r->len = len;
    c->req_bytes += len;
    atomic_fetch_add(&w->srv->queued_bytes, len);
    r->srv = w->srv;
    r->w = w;
    r->c = c;
    c->refs++;
    r->slot = conn_new_slot(c);
    if (!r->slot) return request_close_conn(r, "out of memory for a request");
    /* Decoding may allocate at most a fixed multiple of the request's size; the
     * handlers' own allocations for the response are not limited. */
    karena_init(&r->arena, 16 * len + 65536);
    char err[300];
    kdec_result d = kafka_decode_request(r->buf, len, &r->arena, &r->req, err, sizeof err);
    r->arena.limit = 0;
    if (d == KDEC_MALFORMED) {
        char why[400];
        snprintf(why, sizeof why, "malformed request: %s", err);
        return request_close_conn(r, why);
    }
    if (d == KDEC_UNSUPPORTED) {
        if (r->req.h.api_key == KAPI_API_VERSIONS) {
            /* Kafka's answer to an ApiVersions it does not know: error 35 in a v0 body
             * that lists its own range, so the client retries with a lower version. */
            if (kafka_encode_api_versions_unsupported(&r->slot->out, r->req.h.correlation_id))
                return request_close_conn(r, "out of memory for a response");
            slot_done(c, r->slot);
            request_free(r);
            return;
        }
        return request_close_conn(r, err);
    }
    api_handle(r);
}

/* Handles the complete frames in the input buffer, while the connection takes more. */
static void process_input(conn *c) {
    size_t max = c->w->srv->cfg.max_request_bytes;
    while (!c->closed) {
        if (!conn_can_take(c)) {
            c->stalled = 1;
            conn_maybe_resume(c); /* the budget's list, if only the budget holds it */
            break;
        }
        size_t avail = c->in.len - c->in_pos;
        if (avail < 4) break;
        const uint8_t *p = c->in.data + c->in_pos;
        int32_t size = (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
                                 ((uint32_t)p[2] << 8) | p[3]);
        if (size < 0 || (size_t)size > max) {
            char why[160];
            snprintf(why, sizeof why, "request size %d is outside 0..%zu (--max-request-bytes)",
                     size, max);
            conn_close(c, why);
            return;
        }
        if (size < 8) {
            char why[160];
            snprintf(why, sizeof why, "request of %d bytes is shorter than a request header", size);
            conn_close(c, why);
            return;
        }
        if (avail - 4 < (size_t)size) break;
        c->in_pos += 4 + (size_t)size;
        handle_frame(c, p + 4, (size_t)size);
    }
    if (c->in_pos == c->in.len) {
        c->in.len = c->in_pos = 0;
        if (c->in.cap > (4u << 20)) kbuf_free(&c->in); /* a big request went by */
    }
}

/* Reads until the socket is empty (edge-triggered), handling frames as they complete. */
static void conn_read(conn *c) {
    if (c->eof) return;
    c->stalled = 0;
    process_input(c);
    while (!c->closed && !c->stalled) {
        if (c->in_pos > 0) { /* keep the unhandled bytes at the front */
            memmove(c->in.data, c->in.data + c->in_pos, c->in.len - c->in_pos);
            c->in.len -= c->in_pos;
            c->in_pos = 0;
        }
        /* Room for the rest of the current frame, in steps, or a chunk. */
        size_t want = READ_CHUNK;
        if (c->in.len >= 4) {
            const uint8_t *p = c->in.data;
            size_t size = ((size_t)p[0] << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
            size_t rest = 4 + size > c->in.len ? 4 + size - c->in.len : 0;
            if (rest > want) want = rest < (1u << 20) ? rest : (1u << 20);
        }
        if (kbuf_reserve(&c->in, want)) {
            conn_close(c, "out of memory for input");
            return;
        }
        ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            conn_touch(c);
            process_input(c);
            continue;
        }
        if (n == 0) {
            /* The peer closed (or shut down its sending side): what it asked before
             * still gets answered, then the connection closes. An incomplete request
             * left in the buffer is dropped. */
            c->eof = 1;
            if (!c->head) conn_close(c, NULL);
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        conn_close(c, errno == ECONNRESET ? NULL : strerror(errno));
        return;
    }
}

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t outlen) {
    char host[INET6_ADDRSTRLEN] = "?";
    snprintf(out, outlen, "?");
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(out, outlen, "%s:%d", host, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(out, outlen, "[%s]:%d", host, ntohs(a->sin6_port));
    }
}

/* A connection past --max-connections: accepted (so it leaves the backlog) and closed
 * at once. One line a second at most, counting those not logged, so a flood of
 * connections cannot flood the log. */
static void refuse(worker *w, int fd, const struct sockaddr_storage *ss) {
    close(fd);
    int64_t now = mono_ms();
    if (w->refused_logged && now - w->refused_logged < 1000) {
        w->refused_quiet++;
        return;
    }
    char peer[64], more[80] = "";
    format_peer(ss, peer, sizeof peer);
    if (w->refused_quiet)
        snprintf(more, sizeof more, "; %d more refused since the last such line",
                 w->refused_quiet);
    logmsg("%s: connection refused: %d connections are open (--max-connections %d)%s", peer,
           atomic_load(&w->srv->nconns), w->srv->cfg.max_connections, more);
    w->refused_logged = now;
    w->refused_quiet = 0;
}

static void accept_all(worker *w) {
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(w->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            /* Out of file descriptors or memory: the pending connection stays queued and
             * the level-triggered listener would wake us at once, forever. Stop
             * listening for a while instead. */
            logmsg("accept: %s; not accepting connections for 1 s", strerror(errno));
            epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->lfd, NULL);
            w->accept_resume = mono_ms() + 1000;
            return;
        }
        /* The count covers every worker; conn_close() gives the place back. */
        if (atomic_fetch_add(&w->srv->nconns, 1) >= w->srv->cfg.max_connections) {
            atomic_fetch_sub(&w->srv->nconns, 1);
            refuse(w, fd, &ss);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            atomic_fetch_sub(&w->srv->nconns, 1);
            logmsg("out of memory accepting a connection");
            continue;
        }
        c->w = w;
        c->fd = fd;
        c->refs = 1;
        format_peer(&ss, c->peer, sizeof c->peer);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = c};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            logmsg("epoll_ctl: %s", strerror(errno));
            close(fd);
            atomic_fetch_sub(&w->srv->nconns, 1);
            free(c);
            continue;
        }
        c->last_active = w->now;
        conn_link_front(c);
    }
}

/* ---- the worker loop ---------------------------------------------------------------- */

/* Closes the connections idle for --idle-timeout-ms (Kafka's connections.max.idle.ms):
 * nothing received and no response finished for that long, and no request in flight
 * (a parked Fetch, a Produce waiting for its fsync, a response not yet all sent). The
 * least recently active connection is at the tail; a busy one found there goes to
 * the front (its clock starts again once its last response is out). */
static void close_idle(worker *w) {
    int64_t idle = w->srv->cfg.idle_timeout_ms;
    if (idle <= 0 || w->draining) return;
    while (w->conns_tail && w->now - w->conns_tail->last_active >= idle) {
        conn *c = w->conns_tail;
        if (c->nslots > 0) {
            conn_touch(c);
            continue;
        }
        char why[160];
        snprintf(why, sizeof why, "idle for %lld ms (--idle-timeout-ms %lld)",
                 (long long)(w->now - c->last_active), (long long)idle);
        conn_close(c, why);
    }
}

static int next_timeout(worker *w) {
    int64_t now = mono_ms(), t = -1;
    if (w->srv->cfg.idle_timeout_ms > 0 && w->conns_tail && !w->draining) {
        int64_t d = w->conns_tail->last_active + w->srv->cfg.idle_timeout_ms - now;
        t = d > 0 ? d : 0;
    }
    for (request *r = w->parked; r; r = r->park_next) {
        int64_t d = r->deadline_ms - now;
        if (d < 0 || r->woken) d = 0; /* woken: retry now */
        if (t < 0 || d < t) t = d;
    }
    if (w->accept_resume) {
        int64_t d = w->accept_resume > now ? w->accept_resume - now : 0;
        if (t < 0 || d < t) t = d;
    }
    if (w->draining && (t < 0 || t > 50)) t = 50;
    if (t > 60000) t = 60000;
    return (int)t;
}

/* Draining is over when nothing is waiting and every response is out. */
static int drained(worker *w) {
    if (w->parked) return 0;
    for (conn *c = w->conns; c; c = c->next)
        if (c->head) return 0;
    return 1;
}

static void start_draining(worker *w) {
    w->draining = 1;
    w->drain_deadline = mono_ms() + DRAIN_MS;
    if (w->lfd >= 0) {
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->lfd, NULL);
        close(w->lfd);
        w->lfd = -1;
    }
    w->accept_resume = 0;
    retry_parked(w); /* answered now */
}

static void end_of_iteration(worker *w) {
    while (w->resume) {
        conn *c = w->resume;
        w->resume = c->resume_next;
        c->want_resume = 0;
        if (!c->closed && c->stalled) conn_read(c);
    }
    while (w->grave) {
        conn *c = w->grave;
        w->grave = c->grave_next;
        conn_free(c);
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    struct epoll_event evs[64];
    w->now = mono_ms();
    for (;;) {
        int n = epoll_wait(w->epfd, evs, 64, next_timeout(w));
        if (n < 0 && errno != EINTR) {
            logmsg("epoll_wait: %s", strerror(errno));
            break;
        }
        w->now = mono_ms();
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &w->lfd) {
                accept_all(w);
            } else if (p == &w->evfd) {
                uint64_t v;
                while (read(w->evfd, &v, sizeof v) < 0 && errno == EINTR) {
                }
            } else {
                conn *c = p;
                if (c->closed) continue;
                if (evs[i].events & EPOLLOUT) conn_flush(c);
                if (!c->closed && (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                    conn_read(c);
            }
        }
        if (w->accept_resume && mono_ms() >= w->accept_resume && w->lfd >= 0) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->lfd};
            if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->lfd, &ev) == 0) w->accept_resume = 0;
            else w->accept_resume = mono_ms() + 1000;
        }
        run_tasks(w);
        if (atomic_exchange(&w->data_flag, 0)) wake_watchers(w);
        retry_parked(w);
        close_idle(w);
        if (atomic_load(&w->budget_woken) && atomic_exchange(&w->budget_woken, 0))
            budget_resume(w);
        end_of_iteration(w);
        if (atomic_load(&w->stop) && !w->draining) {
            start_draining(w);
            end_of_iteration(w);
        }
        if (w->draining && (drained(w) || mono_ms() >= w->drain_deadline)) break;
    }
    /* Close what is left; requests still waiting for an fsync keep their connection's
     * memory until net_free() runs their tasks. */
    while (w->conns) conn_close(w->conns, NULL);
    end_of_iteration(w);
    return NULL;
}

/* ---- start and stop ----------------------------------------------------------------- */

/* The listen address for port (getaddrinfo, passive, numeric port). */
static int resolve(const server_cfg *cfg, int port, struct addrinfo **res) {
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    return getaddrinfo(cfg->listen_host[0] ? cfg->listen_host : NULL, ports, &hints, res);
}

/* The workers' listeners share the port through SO_REUSEPORT, which would also let a
 * second alogd (same user) join the group and take half of the connections. So first
 * bind the address once without SO_REUSEPORT: that fails if anyone listens there. */
static int port_is_free(const server_cfg *cfg, int port, char *err, size_t errlen) {
    struct addrinfo *res = NULL;
    if (resolve(cfg, port, &res) != 0) return 1; /* reported by listen_socket() */
    int ok = 1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE) {
            snprintf(err, errlen, "cannot listen on %s:%d: address already in use",
                     cfg->listen_host, port);
            ok = 0;
        }
        close(fd);
        break;
    }
    freeaddrinfo(res);
    return ok;
}

static int listen_socket(const server_cfg *cfg, int port, int *bound_port, char *err,
                         size_t errlen) {
    struct addrinfo *res = NULL;
    int rc = resolve(cfg, port, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", cfg->listen_host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    const char *what = "socket";
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int one = 1;
        what = "setsockopt";
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0 &&
            (what = "bind", bind(fd, ai->ai_addr, ai->ai_addrlen) == 0) &&
            (what = "listen", listen(fd, 1024) == 0))
            break;
        int e = errno;
        close(fd);
        fd = -1;
        errno = e;
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s: %s", cfg->listen_host, port, what,
                 strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *bound_port = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        if (ss.ss_family == AF_INET6) *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

static void worker_destroy(worker *w) {
    if (!w) return;
    if (w->lfd >= 0) close(w->lfd);
    if (w->evfd >= 0) close(w->evfd);
    if (w->epfd >= 0) close(w->epfd);
    pthread_mutex_destroy(&w->mu);
    free(w->buckets);
    free(w->pend);
    free(w->pend_spare);
    free(w);
}

int net_start(server *srv, char *err, size_t errlen) {
    srv->workers = calloc(ALOGD_THREADS, sizeof *srv->workers);
    if (!srv->workers) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* Random, so that peers cannot aim keys at one chain of the index. */
    if (getrandom(&srv->key_seed, sizeof srv->key_seed, GRND_NONBLOCK) != sizeof srv->key_seed)
        srv->key_seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    int port = srv->cfg.listen_port;
    if (port != 0 && !port_is_free(&srv->cfg, port, err, errlen)) goto fail;
    for (int i = 0; i < ALOGD_THREADS; i++) {
        worker *w = calloc(1, sizeof *w);
        if (!w) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        srv->workers[srv->nworkers++] = w;
        w->srv = srv;
        w->idx = i;
        w->epfd = w->evfd = w->lfd = -1;
        pthread_mutex_init(&w->mu, NULL);
        w->buckets = calloc(WATCH_MIN_BUCKETS, sizeof *w->buckets);
        if (!w->buckets) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        w->nbuckets = WATCH_MIN_BUCKETS;
        /* The first socket picks the port when 0 was asked; the others share it. */
        int bound;
        w->lfd = listen_socket(&srv->cfg, port, &bound, err, errlen);
        if (w->lfd < 0) goto fail;
        port = bound;
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (w->epfd < 0 || w->evfd < 0) {
            snprintf(err, errlen, "epoll/eventfd: %s", strerror(errno));
            goto fail;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->lfd};
        struct epoll_event ev2 = {.events = EPOLLIN, .data.ptr = &w->evfd};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->lfd, &ev) != 0 ||
            epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev2) != 0) {
            snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
            goto fail;
        }
    }
    srv->cfg.listen_port = port;
    srv->port = srv->cfg.advertise_port ? srv->cfg.advertise_port : port;
    for (int i = 0; i < srv->nworkers; i++) {
        int rc = pthread_create(&srv->workers[i]->th, NULL, worker_main, srv->workers[i]);
        if (rc != 0) {
            snprintf(err, errlen, "pthread_create: %s", strerror(rc));
            net_stop(srv);
            net_free(srv);
            return -1;
        }
        srv->workers[i]->started = 1;
    }
    return 0;
fail:
    net_free(srv);
    return -1;
}

void net_stop(server *srv) {
    for (int i = 0; i < srv->nworkers; i++) {
        atomic_store(&srv->workers[i]->stop, 1);
        wake(srv->workers[i]);
    }
    for (int i = 0; i < srv->nworkers; i++) {
        worker *w = srv->workers[i];
        if (w->started) pthread_join(w->th, NULL);
        w->started = 0;
    }
}

void net_free(server *srv) {
    for (int i = 0; i < srv->nworkers; i++) {
        worker *w = srv->workers[i];
        /* Callbacks that closing the logs ran (with ALOG_EFAILED) posted here: their
         * requests end now, on this thread, the workers being gone. Ending a request
         * may look at every worker (budget_release): none is freed before all ran. */
        run_tasks(w);
        end_of_iteration(w);
    }
    for (int i = 0; i < srv->nworkers; i++) worker_destroy(srv->workers[i]);
    free(srv->workers);
    srv->workers = NULL;
    srv->nworkers = 0;
}

void net_log_counts(const server *srv) {
    unsigned long long parks = 0, woken = 0;
    for (int i = 0; i < srv->nworkers; i++) {
        parks += srv->workers[i]->nparks;
        woken += srv->workers[i]->nwoken;
    }
    logmsg("long polls: Fetches parked %llu times, retried %llu times for data that arrived",
           parks, woken);
}
