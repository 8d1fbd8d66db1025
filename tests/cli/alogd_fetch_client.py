#!/usr/bin/env python3
"""alogd_fetch_client.py -- the checks of test_alogd_fetch.sh: Fetch responses sent
from the segment files (sendfile), and the connection limits.

Builds on alogd_client.py (the Kafka encoding written from the message schemas,
independently of alogd's codec).

Usage:
  alogd_fetch_client.py PORT fetch SRC DATA PID LOG
      SRC is a segment file written by the engine (`alog append`): its batches are
      produced to topic "big" of a server started with small segments and a retention
      of a little more than SRC, so the partition holds the same batches at the same
      offsets and a Fetch of them must give SRC's bytes exactly. DATA is the server's
      data directory, PID its process (for /proc), LOG its stderr.
  alogd_fetch_client.py PORT idle SRC LOG
      the server runs with --idle-timeout-ms 500.
  alogd_fetch_client.py PORT maxconn LOG
      the server runs with --max-connections 3.
  alogd_fetch_client.py PORT wakeup SRC
      the server runs with ALOGD_TEST_PARK_DELAY_US=50000 (every Fetch that finds too
      little waits 50 ms before it parks); SRC as for fetch.
  alogd_fetch_client.py PORT watch SRC
      SRC as for fetch; test_alogd_fetch.sh then checks the count of retries of parked
      Fetches that alogd logs at exit.
Exits non-zero with a message on the first failed check.
"""
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alogd_client as kc  # noqa: E402  (PORT is argv[1] for both)

kc.TAG = "test_alogd_fetch"
check, fail = kc.check, kc.fail
i8, i16, i32, i64, string, array = kc.i8, kc.i16, kc.i32, kc.i64, kc.string, kc.array
FETCH = kc.FETCH


# ---- batches ----------------------------------------------------------------------

class Batch:
    def __init__(self, data, pos):
        self.pos = pos
        self.size = 12 + struct.unpack_from(">i", data, pos + 8)[0]
        self.base = struct.unpack_from(">q", data, pos)[0]
        self.last = self.base + struct.unpack_from(">i", data, pos + 23)[0]
        self.end = pos + self.size


def split_batches(data):
    out, pos = [], 0
    while pos < len(data):
        b = Batch(data, pos)
        check(b.end <= len(data), "source segment ends in a partial batch")
        out.append(b)
        pos = b.end
    return out


def produce_all(c, topic, part, src, batches, expect_base=True):
    """Produces the batches, one a request (Kafka's rule for Produce v3+)."""
    for b in batches:
        r = kc.produce(c, 7, topic, part, src[b.pos:b.end])
        check(r["err"] == 0, "produce to %s-%d: %r" % (topic, part, r))
        if expect_base:
            check(r["base"] == b.base, "produce at offset %d, expected %d" % (r["base"], b.base))


# ---- Fetch v11 with several partitions ----------------------------------------------

def fetch_body(topic, parts, max_bytes, max_wait=0, min_bytes=1):
    """parts: list of (partition, offset, partition_max_bytes)."""
    body = i32(-1) + i32(max_wait) + i32(min_bytes) + i32(max_bytes) + i8(1)
    body += i32(0) + i32(-1)  # sessionless
    ps = [i32(p) + i32(-1) + i64(off) + i64(-1) + i32(pmax) for p, off, pmax in parts]
    body += array([topic], lambda t: string(t) + array(ps, lambda x: x))
    body += array([], None) + string("")
    return body


def fetch_parse(r):
    r.i32()
    check(r.i16() == 0, "fetch top-level error")
    r.i32()

    def part(r):
        d = dict(index=r.i32(), err=r.i16(), hw=r.i64(), lso=r.i64(), log_start=r.i64())
        d["aborted"] = r.array(lambda r: (r.i64(), r.i64()))
        d["preferred"] = r.i32()
        d["records"] = r.bytes_()
        return d
    ts = r.array(lambda r: (r.string(), r.array(part)))
    r.end()
    return ts[0][1]


def fetch(c, topic, parts, max_bytes=50 << 20, **kw):
    return fetch_parse(c.call(FETCH, 11, fetch_body(topic, parts, max_bytes, **kw)))


def fetch1(c, topic, part, offset, part_max, max_bytes=50 << 20):
    return fetch(c, topic, [(part, offset, part_max)], max_bytes)[0]


# ---- connections -------------------------------------------------------------------

class SlowConn(kc.Conn):
    """A connection with a small receive buffer, so that what the server sends waits in
    the server's socket (and in its queue) until this client reads."""

    def __init__(self, rcvbuf=8192):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(120)
        self.s.connect(("127.0.0.1", kc.PORT))
        self.corr = 0

    def read_slowly(self, n, step=16384, pause=0.001):
        out = bytearray()
        while len(out) < n:
            c = self.s.recv(min(step, n - len(out)))
            if not c:
                fail("connection closed by alogd while reading a response slowly")
            out += c
            time.sleep(pause)
        return bytes(out)


def read_response(conn, corr, size_read=None, slowly=False):
    """The Fetch response of corr; size_read: its 4-byte size, if already read."""
    if size_read is None:
        size_read = conn.recv_exact(4)
    size = struct.unpack(">i", size_read)[0]
    body = conn.read_slowly(size) if slowly else conn.recv_exact(size)
    r = kc.Reader(body)
    got = r.i32()
    check(got == corr, "correlation id %d, expected %d" % (got, corr))
    return fetch_parse(r)


def served(conn):
    """Sends ApiVersions v0: True if answered, False if the connection is closed."""
    try:
        conn.s.settimeout(30)
        conn.s.sendall(kc.frame(kc.API_VERSIONS, 0, 99, b""))
        got = b""
        while len(got) < 4 or len(got) < 4 + struct.unpack(">i", got[:4])[0]:
            c = conn.s.recv(65536)
            if not c:
                return False
            got += c
    except (ConnectionResetError, BrokenPipeError):
        return False
    return struct.unpack(">i", got[4:8])[0] == 99


def deleted_segments_held(pid, part_dir):
    """The .log files of part_dir that alogd holds open although they were deleted."""
    out = []
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith(part_dir + "/") and target.endswith(".log (deleted)"):
            out.append(target)
    return out


def segment_files(part_dir):
    return sorted(f for f in os.listdir(part_dir) if f.endswith(".log"))


# ---- the phases --------------------------------------------------------------------

def phase_fetch(src_path, data_dir, pid, log_path):
    src = open(src_path, "rb").read()
    batches = split_batches(src)
    wmem_max = int(open("/proc/sys/net/ipv4/tcp_wmem").read().split()[2])
    check(len(src) > wmem_max + (2 << 20),
          "the test data (%d bytes) must exceed the kernel's largest send buffer (%d) by "
          "2 MiB, so that a response of it cannot leave in one send" % (len(src), wmem_max))
    check(any(b.size < 4096 for b in batches) and any(b.size > (256 << 10) for b in batches),
          "the test data must hold small and large batches")
    c = kc.Conn()
    part_dir = os.path.join(data_dir, "big-0")

    # Produce; the partition rolls its 1 MiB segments.
    produce_all(c, "big", 0, src, batches)
    segs = segment_files(part_dir)
    check(len(segs) >= 4, "segments rolled: %r" % segs)
    seg_bases = sorted(int(s[:20]) for s in segs)

    # One Fetch of everything: SRC's bytes exactly, across every segment.
    f = fetch1(c, "big", 0, 0, part_max=len(src) + 1)
    check(f["err"] == 0 and f["hw"] == batches[-1].last + 1, "Fetch all: %r" % f["err"])
    check(f["records"] == src, "Fetch of all records: %d bytes differ from the %d produced"
          % (len(f["records"] or b""), len(src)))

    # From inside each batch, with 1 partition byte: that batch whole (KIP-74), small
    # ones (copied) and large ones (sendfile) alike.
    for b in batches:
        f = fetch1(c, "big", 0, (b.base + b.last) // 2, part_max=1)
        check(f["records"] == src[b.pos:b.end],
              "Fetch at offset %d, 1 byte: the batch %d..%d whole" % ((b.base + b.last) // 2,
                                                                      b.base, b.last))
    # partition_max_bytes: whole batches that fit, across a segment boundary.
    for base in seg_bases[1:3]:
        k = next(i for i, b in enumerate(batches) if b.base == base)
        b0, b1, b2 = batches[k - 1], batches[k], batches[k + 1]
        f = fetch1(c, "big", 0, b0.base, part_max=b0.size + b1.size)
        check(f["records"] == src[b0.pos:b1.end], "two batches over the roll at %d" % base)
        f = fetch1(c, "big", 0, b0.base, part_max=b0.size + b1.size + b2.size - 1)
        check(f["records"] == src[b0.pos:b1.end], "a batch that does not fit is left out")

    # Response max_bytes over two partitions: once a partition returned data, later ones
    # get only whole batches that fit in what is left.
    res = kc.create_topics(c, 4, [("two", 2, 1)])
    check(res["two"]["err"] == 0, "CreateTopics two: %r" % res)
    # Each partition of "two" holds a large batch L, a small one S, and L again.
    big = next(b for b in batches if b.size > (256 << 10))
    small = next(b for b in batches if b.size < 4096)
    pick = [big, small, big]
    two, base = b"", 0
    for b in pick:
        two += kc.batch_with_base(src[b.pos:b.end], base)
        base += b.last - b.base + 1
    L, S = big.size, small.size
    for p in (0, 1):
        for b in pick:
            r = kc.produce(c, 7, "two", p, src[b.pos:b.end])
            check(r["err"] == 0, "produce to two-%d: %r" % (p, r))

    def sizes(f):
        return "%d and %d bytes" % (len(f[0]["records"]), len(f[1]["records"]))
    both = [(0, 0, 50 << 20), (1, 0, 50 << 20)]
    f = fetch(c, "two", both, max_bytes=L + S)
    check(f[0]["records"] == two[:L + S] and f[1]["records"] == b"",
          "max_bytes L+S: partition 0 gets L and S, partition 1 nothing; got " + sizes(f))
    f = fetch(c, "two", both, max_bytes=L + S - 1)
    check(f[0]["records"] == two[:L] and f[1]["records"] == b"",
          "max_bytes L+S-1: L, and partition 1's first batch does not fit in what is left, "
          "so nothing; got " + sizes(f))
    f = fetch(c, "two", both, max_bytes=1)
    check(f[0]["records"] == two[:L] and f[1]["records"] == b"",
          "max_bytes 1: one whole batch, for the first partition only; got " + sizes(f))
    f = fetch(c, "two", [(0, 0, L + S), (1, 0, 50 << 20)], max_bytes=2 * L + S)
    check(f[0]["records"] == two[:L + S] and f[1]["records"] == two[:L],
          "max_bytes 2L+S, partition max L+S: L+S, then L; got " + sizes(f))
    f = fetch(c, "two", [(0, 0, 1), (1, 0, L + S - 1)])
    check(f[0]["records"] == two[:L] and f[1]["records"] == two[:L],
          "partition max 1 then L+S-1: L, then L (S does not fit); got " + sizes(f))
    f = fetch(c, "two", [(0, 0, 1), (1, 0, 1)])
    check(f[0]["records"] == two[:L] and f[1]["records"] == b"",
          "partition max 1 twice: L for the first partition only; got " + sizes(f))
    f = fetch(c, "two", [(0, base, 1), (1, 0, 1)])
    check(f[0]["records"] == b"" and f[1]["records"] == two[:L],
          "an empty first partition: the next one still gets one batch whole; got " + sizes(f))

    # A slow reader: the response cannot leave in one go (it is larger than the
    # kernel's send buffer and this client's receive buffer together), so alogd's
    # sendfile stops part way again and again and resumes on EPOLLOUT.
    s = SlowConn()
    corr = s.send(FETCH, 11, fetch_body("big", [(0, 0, len(src) + 1)], 50 << 20))
    f = read_response(s, corr, slowly=True)[0]
    check(f["records"] == src, "slow reader: the records differ from those produced")
    s.close()

    # Queued responses hold no copy of their records: with 6 slow readers that each
    # have all the records queued (more than the socket takes), alogd's anonymous
    # memory grows by far less than the 6 copies a copying server would hold.
    kc.Conn().close()
    before = kc.proc_status_kib(pid, "RssAnon")
    slow = [SlowConn() for _ in range(6)]
    corrs = [x.send(FETCH, 11, fetch_body("big", [(0, 0, len(src) + 1)], 50 << 20))
             for x in slow]
    heads = [x.recv_exact(4) for x in slow]  # the response is built and queued
    grown = kc.proc_status_kib(pid, "RssAnon") - before
    queued_kib = 6 * len(src) // 1024
    check(grown < queued_kib // 4,
          "alogd's RssAnon grew by %d KiB with %d KiB of Fetch responses queued: the "
          "records must be sent from the files, not copied" % (grown, queued_kib))
    for x, k, h in zip(slow, corrs, heads):
        check(read_response(x, k, size_read=h)[0]["records"] == src,
              "a queued response's records differ")
        x.close()

    # Retention deletes the segments of a response while it is queued: the response
    # still gets the bytes that were published, from the files alogd holds open.
    s = SlowConn()
    corr = s.send(FETCH, 11, fetch_body("big", [(0, 0, len(src) + 1)], 50 << 20))
    head = s.recv_exact(4)
    end = batches[-1].last + 1
    for _ in range(6):
        produce_all(c, "big", 0, src, batches, expect_base=False)
        if kc.list_offsets(c, 2, "big", 0, -2)["offset"] > end:
            break
    start = kc.list_offsets(c, 2, "big", 0, -2)["offset"]
    check(start > end, "retention deleted every segment of the first records "
          "(log start %d, they end at %d)" % (start, end))
    left = segment_files(part_dir)
    check(not set(left) & set(segs), "the first segment files are gone: %r" % left)
    held = deleted_segments_held(pid, part_dir)
    check(held, "alogd must hold the deleted segments of the queued response open")
    f = read_response(s, corr, size_read=head, slowly=True)[0]
    check(f["records"] == src, "records sent after retention deleted their segments differ")
    s.close()
    for _ in range(100):  # the last sendfile returns before this client has the bytes
        held = deleted_segments_held(pid, part_dir)
        if not held:
            break
        time.sleep(0.1)
    check(not held, "deleted segments still held after the response was sent: %r" % held)
    f = fetch1(c, "big", 0, 0, part_max=1 << 20)
    check(f["err"] == 1, "Fetch of a deleted offset: OFFSET_OUT_OF_RANGE, got %r" % f["err"])
    f = fetch1(c, "big", 0, start, part_max=1 << 20)
    check(f["err"] == 0 and f["records"], "Fetch at the new log start")


def phase_idle(src_path, log_path):
    batch = open(src_path, "rb").read()
    first = Batch(batch, 0)
    c = kc.Conn()
    err, _ = kc.api_versions(c, 2)
    check(err == 0, "ApiVersions on a new connection")
    check(c.closed_by_peer(timeout=60), "an idle connection must be closed")
    # A connection that sends part of a request and then nothing is idle too.
    c = kc.Conn()
    c.s.sendall(i32(100) + b"\x00\x12")
    check(c.closed_by_peer(timeout=60), "a connection stalled mid-request must be closed")
    # A request in flight longer than the timeout (a long poll) is not cut short...
    c = kc.Conn()
    r = kc.produce(c, 7, "idle", 0, batch[:first.size])
    check(r["err"] == 0, "produce: %r" % r)
    end = r["base"] + first.last - first.base + 1
    f = fetch1(c, "idle", 0, end, part_max=1 << 20)
    check(f["err"] == 0 and f["records"] == b"" and f["hw"] == end,
          "Fetch at the end: error %d, hw %d" % (f["err"], f["hw"]))
    corr = c.send(FETCH, 11, fetch_body("idle", [(0, end, 1 << 20)], 1 << 20, max_wait=2000))
    f = read_response(c, corr)[0]
    check(f["err"] == 0 and f["records"] == b"",
          "a long poll (2000 ms) outlives --idle-timeout-ms 500: error %d" % f["err"])
    # ...and its connection is idle from the response on.
    check(c.closed_by_peer(timeout=60), "idle after the long poll: closed")
    with open(log_path) as f_:
        log = f_.read()
    check("(--idle-timeout-ms 500); closing the connection" in log, "log line for idle closes")


def phase_maxconn(log_path):
    cs = [kc.Conn() for _ in range(3)]
    for k, x in enumerate(cs):
        check(served(x), "connection %d of 3 is served" % (k + 1))
    extra = kc.Conn()
    check(extra.closed_by_peer(timeout=30), "a 4th connection must be closed at once")
    for k, x in enumerate(cs):
        check(served(x), "connection %d still served after a refusal" % (k + 1))
    with open(log_path) as f:
        log = f.read()
    check("connection refused: 3 connections are open (--max-connections 3)" in log,
          "log line for the refused connection")
    # A place freed is taken again (once alogd has seen the close).
    cs[0].close()
    ok = False
    for _ in range(200):
        n = kc.Conn()
        if served(n):
            ok = True
            break
        n.close()
        time.sleep(0.05)
    check(ok, "a connection is accepted again once one of the 3 closed")
    for x in cs[1:]:
        check(served(x), "the other connections are still served")


def phase_wakeup(src_path):
    """A long poll is answered when its record arrives, also when the record is
    appended on the other worker while the Fetch is between its attempt and its
    parking (the window the server's test delay holds open). When a Fetch was counted
    as parked only once it parked, such a Fetch missed its wake-up and slept out its
    whole max_wait; this checks the answer comes long before that. Each round uses two new
    connections: the kernel spreads connections over the workers, so with 12 rounds
    some pair is on two workers but for a chance of 1 in 4096."""
    with open(src_path, "rb") as f:
        src = f.read()
    small = [b for b in split_batches(src) if b.size < 4096]
    check(len(small) >= 12, "12 small batches in the source segment")
    meta = kc.Conn()
    brokers, topics = kc.metadata(meta, 1, ["wake"])  # auto-created
    check(topics["wake"]["err"] == 0, "topic wake created")
    off = 0
    for k, b in enumerate(small[:12]):
        cons, prod = kc.Conn(), kc.Conn()
        cons.s.settimeout(10)
        corr = cons.send(FETCH, 11, fetch_body("wake", [(0, off, 1 << 20)], 50 << 20,
                                               max_wait=20000, min_bytes=1))
        time.sleep(0.01)  # the Fetch is now inside its 50 ms before parking
        r = kc.produce(prod, 7, "wake", 0, src[b.pos:b.end])
        check(r["err"] == 0 and r["base"] == off, "round %d: produced at offset %d" % (k, off))
        try:
            parts = read_response(cons, corr)
        except socket.timeout:
            fail("round %d: a Fetch waiting at offset %d was not answered within 10 s of "
                 "its record's arrival (max_wait 20 s): its wake-up was lost" % (k, off))
        got = parts[0]["records"]
        check(parts[0]["err"] == 0 and len(got) == b.size and
              struct.unpack_from(">q", got, 0)[0] == off,
              "round %d: the Fetch returns the batch at offset %d" % (k, off))
        off = b.last - b.base + off + 1
        cons.close()
        prod.close()


WATCH_OTHER_PRODUCES = 200  # test_alogd_fetch.sh allows a quarter as many retries


def phase_watch(src_path):
    """A parked Fetch waits for the partitions it names: four long polls on partition 0
    of topic watch, and one naming partition 0 a thousand times, stay parked while
    WATCH_OTHER_PRODUCES batches go to partition 1, and each is answered once a batch
    goes to partition 0. That they were not rebuilt meanwhile is what the shell checks
    in alogd's count at exit (before per-partition wake-ups, each of those produces
    rebuilt every parked Fetch of each worker: about 1,000 retries here)."""
    with open(src_path, "rb") as f:
        src = f.read()
    b = next(b for b in split_batches(src) if b.size < 4096)
    batch = src[b.pos:b.end]
    c = kc.Conn()
    check(kc.create_topics(c, 1, [("watch", 2, 1)])["watch"]["err"] == 0, "topic watch created")
    waiting = []
    for n in (1, 1, 1, 1, 1000):
        cons = kc.Conn()
        corr = cons.send(FETCH, 11, fetch_body("watch", [(0, 0, 1 << 20)] * n, 50 << 20,
                                               max_wait=120000, min_bytes=1))
        waiting.append((cons, corr, n))
    time.sleep(0.5)  # not needed for the checks: a Fetch not yet parked just parks later
    for _ in range(WATCH_OTHER_PRODUCES):
        r = kc.produce(c, 7, "watch", 1, batch)
        check(r["err"] == 0, "produce to watch-1: %r" % r)
    readable, _, _ = select.select([x[0].s for x in waiting], [], [], 0)
    check(not readable, "no Fetch parked on watch-0 is answered by produces to watch-1")
    r = kc.produce(c, 7, "watch", 0, batch)
    check(r["err"] == 0 and r["base"] == 0, "produce to watch-0: %r" % r)
    for cons, corr, n in waiting:
        cons.s.settimeout(60)
        try:
            parts = read_response(cons, corr)
        except socket.timeout:
            fail("a Fetch parked on watch-0 (naming it %d times, max_wait 120 s) was not "
                 "answered within 60 s of a record's arrival there" % n)
        check(len(parts) == n and parts[0]["err"] == 0 and len(parts[0]["records"]) == b.size
              and struct.unpack_from(">q", parts[0]["records"], 0)[0] == 0,
              "the Fetch naming watch-0 %d times returns the batch at offset 0" % n)
        cons.close()
    c.close()


def main():
    phase = sys.argv[2]
    if phase == "fetch":
        phase_fetch(sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
    elif phase == "idle":
        phase_idle(sys.argv[3], sys.argv[4])
    elif phase == "maxconn":
        phase_maxconn(sys.argv[3])
    elif phase == "wakeup":
        phase_wakeup(sys.argv[3])
    elif phase == "watch":
        phase_watch(sys.argv[3])
    else:
        fail("unknown phase " + phase)
    print("%s: %d checks passed" % (phase, kc.CHECKS))


if __name__ == "__main__":
    main()
