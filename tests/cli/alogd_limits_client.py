#!/usr/bin/env python3
"""alogd_limits_client.py -- the checks of test_alogd_limits.sh: what an untrusted peer
may make alogd hold.

Builds on alogd_client.py and alogd_topics_client.py (the Kafka encoding written from
the message schemas, independently of alogd's codec).

Usage:
  alogd_limits_client.py PORT partitions LOG
      the server runs with --max-partitions 10: CreateTopics and auto-creation past it
      get POLICY_VIOLATION (44) with a message, and deleting a topic frees its share.
  alogd_limits_client.py PORT repeats
      a topic named more than once: Metadata answers it once, CreateTopics refuses
      every occurrence (INVALID_REQUEST); both with tens of thousands of names.
  alogd_limits_client.py PORT reqbytes PID
      a connection pipelining big long polls is not read past 64 MiB of requests in
      flight (PID: alogd, for its VmRSS).
  alogd_limits_client.py PORT fetchroom
      Fetch responses answered together (parked Fetches reaching their deadline) on a
      connection that reads nothing queue no more than the 64 MiB back-pressure bound
      (net.c), whatever each one asked for.
  alogd_limits_client.py PORT budget PID BUDGET
      the server runs with --max-queued-request-bytes BUDGET (16 MiB): 8 connections
      pipelining big long polls, none reading, make alogd read about BUDGET of
      requests, not 8 times the per-connection 64 MiB; meanwhile a connection with
      nothing in flight is served; once data arrives every request is answered (the
      stalled connections of both workers are read again), and the budget is whole.
Exits non-zero with a message on the first failed check.
"""
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alogd_client as kc  # noqa: E402  (PORT is argv[1])
import alogd_topics_client as tc  # noqa: E402

kc.TAG = "test_alogd_limits"
check, fail = kc.check, kc.fail
i8, i32, i64, string, array = kc.i8, kc.i32, kc.i64, kc.string, kc.array
POLICY_VIOLATION = 44


def phase_partitions(log_path):
    c = kc.Conn()
    r = tc.create_topics(c, [("a", 4, {}), ("b", 4, {})])
    check(r == {"a": (0, None), "b": (0, None)}, "8 of 10 partitions are created: %r" % r)
    # 8 + 3 > 10: refused, even to validate only; nothing of it is on disk.
    for vo in (True, False):
        r = tc.create_topics(c, [("c", 3, {})], validate_only=vo)
        err, msg = r["c"]
        check(err == POLICY_VIOLATION, "3 more partitions (validate_only %s): error %d"
              % (vo, err))
        check("would make 11 partitions open, more than the 10 alogd serves at most "
              "(--max-partitions)" in (msg or ""), "the refusal says why: %r" % msg)
    r = tc.create_topics(c, [("c", 2, {})])
    check(r["c"] == (0, None), "2 more partitions make exactly 10: %r" % (r["c"],))
    # Auto-creation (1 partition by default) is refused the same way, and one Metadata
    # naming many topics creates none of them.
    _, ts = kc.metadata(c, 4, ["auto-%d" % i for i in range(500)])
    errs = set(t["err"] for t in ts.values())
    check(errs == {POLICY_VIOLATION}, "auto-creation past the limit: errors %r" % errs)
    _, ts = kc.metadata(c, 0, [])  # v0: an empty list is every topic
    check(sorted(ts) == ["a", "b", "c"], "no topic was auto-created: %r" % sorted(ts))
    # Deleting a topic frees its partitions (once alogd dropped its last reference).
    kc.delete_topics(c, 3, ["a"])
    ok = False
    for _ in range(200):
        r = tc.create_topics(c, [("d", 4, {})])
        if r["d"][0] == 0:
            ok = True
            break
        time.sleep(0.05)
    check(ok, "after deleting a's 4 partitions, 4 more are created: %r" % (r["d"],))
    with open(log_path) as f:
        log = f.read()
    check("topic auto-" not in log, "no auto-created topic in the log")
    c.close()


def metadata_topics(c, names):
    """Metadata v4 (no auto-creation): the topics of the response as a list, in order
    and with any repeats, of (name, error, partition count)."""
    r = c.call(kc.METADATA, 4, array(names, string) + i8(0))
    r.i32()
    r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
    r.string()
    r.i32()

    def part(r):
        r.i16(), r.i32(), r.i32(), r.array(lambda r: r.i32()), r.array(lambda r: r.i32())

    out = r.array(lambda r: (r.i16(), r.string(), r.i8(), len(r.array(part))))
    r.end()
    return [(n, e, k) for e, n, _, k in out]


def phase_repeats():
    c = kc.Conn()
    r = tc.create_topics(c, [("wide", 50, {})])
    check(r["wide"] == (0, None), "create wide: %r" % (r["wide"],))
    # A topic named several times is answered once (Kafka takes the names as a set):
    # 20,000 times a 50-partition topic would otherwise be a 26 MB response.
    ts = metadata_topics(c, ["wide", "nope", "wide", "wide", "nope"] + ["wide"] * 20000)
    check(ts == [("wide", 0, 50), ("nope", 3, 0)],
          "Metadata with repeated names: each once, in first-seen order: %r" % ts[:4])
    # CreateTopics: every occurrence of a repeated name is refused (INVALID_REQUEST),
    # wherever the repeats are among many names; the others are judged on their own.
    names = ["n%06d" % i for i in range(50000)]
    names[49999] = names[0]
    names[30000] = names[20000] = "wide"
    topics = [(n, 1, {"segment.bytes": "bad"}) for n in names]
    r = tc.create_topics(c, topics, validate_only=True)
    errs = {}
    for n, (e, _) in r.items():
        errs[e] = errs.get(e, 0) + 1
    check(r[names[0]][0] == 42 and r["wide"][0] == 42,
          "repeated names get INVALID_REQUEST: %r %r" % (r[names[0]], r["wide"]))
    check(errs == {42: 2, 40: 49996}, "the other names get INVALID_CONFIG: %r" % errs)
    c.close()


def recv_into(s, n):
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = s.recv_into(view[got:], n - got)
        if k == 0:
            fail("connection closed by alogd while reading a response")
        got += k
    return bytes(buf)


def phase_fetchroom():
    c = kc.Conn()
    c.s.settimeout(60)
    batch = tc.make_batch([b"x" * 30000], 1700000000000)  # under 32 KiB: copied, not sent
    r = tc.produce(c, "room", 0, batch)                   # from the file
    check(r["err"] == 0, "produce: %r" % r)
    # Each Fetch names the partition 2,000 times: ~60 MB of records copied into its
    # response. min_bytes cannot be reached, so all park and expire together.
    nrep, nfetch = 2000, 8
    part = i32(0) + i32(-1) + i64(0) + i64(-1) + i32(1 << 20)
    body = (i32(-1) + i32(300) + i32(0x7fffffff) + i32(0x7fffffff) + i8(1) + i32(0) + i32(-1)
            + array(["room"], lambda t: string(t) + array([part] * nrep, lambda x: x))
            + array([], None) + string(""))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", kc.PORT))
    s.settimeout(120)
    s.sendall(b"".join(kc.frame(kc.FETCH, 11, k + 1, body) for k in range(nfetch)))
    time.sleep(3)  # the deadlines (300 ms) pass while nothing is read
    total, with_records = 0, 0
    for k in range(nfetch):
        size = struct.unpack(">i", recv_into(s, 4))[0]
        rd = kc.Reader(recv_into(s, size))
        check(rd.i32() == k + 1, "correlation id of Fetch %d" % (k + 1))
        f = kc.fetch_parse(rd, 11)
        check(f["err"] == 0, "Fetch %d: error %d" % (k + 1, f["err"]))
        if f["records"]:
            with_records += 1
        total += size
    # Without the bound: 8 x ~60 MB. With it: 64 MiB, plus a batch per response (KIP-74:
    # a response still carries a first batch) and what the kernel buffers took.
    check(total < 100 << 20, "8 parked Fetches answered at once queued %d bytes (at most "
          "64 MiB plus a batch each expected)" % total)
    check(with_records == nfetch, "every response carries records (%d of %d)"
          % (with_records, nfetch))
    s.close()
    c.close()


def phase_reqbytes(pid):
    """64 long polls of 4.5 MB each (150,000 partitions named) on one connection: alogd
    keeps each request (and its decoded form) until it is answered, so it must stop
    reading once 64 MiB of requests are in flight, not take all 64 (288 MB, which it
    held as some 650 MB)."""
    c = kc.Conn()
    kc.metadata(c, 4, ["polls"])
    part = i32(0) + i32(-1) + i64(0) + i64(-1) + i32(1 << 20)
    body = (i32(-1) + i32(60000) + i32(0x7fffffff) + i32(0x7fffffff) + i8(1) + i32(0)
            + i32(-1) + array(["polls"], lambda t: string(t) + array([part] * 150000,
                                                                     lambda x: x))
            + array([], None) + string(""))
    before = kc.proc_status_kib(pid, "VmRSS")
    s = socket.create_connection(("127.0.0.1", kc.PORT))
    data = b"".join(kc.frame(kc.FETCH, 11, k + 1, body) for k in range(64))
    view, sent = memoryview(data), 0
    s.setblocking(False)
    while sent < len(data):
        _, w, _ = select.select([], [s], [], 2)
        if not w:
            break  # alogd stopped reading: back-pressure
        try:
            sent += s.send(view[sent:sent + (1 << 20)])
        except BlockingIOError:
            pass
    time.sleep(1)
    grown = (kc.proc_status_kib(pid, "VmRSS") - before) // 1024
    check(sent < len(data), "alogd read all 64 requests (%d MB) of one connection"
          % (len(data) >> 20))
    if os.environ.get("ALOG_INSTRUMENTED", "0") != "1":  # sanitizers' memory is theirs
        check(grown < 350, "64 MiB of requests in flight (and their decoded form) grew "
              "alogd by %d MB" % grown)
    s.close()
    c.close()


def tcp_queues():
    """{(local port, remote port): (tx_queue, rx_queue)} of the IPv4 TCP sockets: bytes
    a socket's owner wrote that its peer has not acknowledged (or not been sent), and
    bytes received that its owner has not read."""
    out = {}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            lport = int(fields[1].split(":")[1], 16)
            rport = int(fields[2].split(":")[1], 16)
            tx, rx = (int(x, 16) for x in fields[4].split(":"))
            out[(lport, rport)] = (tx, rx)
    return out


class Poller:
    """A connection that pipelines n copies of a Fetch and reads nothing until told."""

    def __init__(self, body, n):
        self.s = socket.create_connection(("127.0.0.1", kc.PORT))
        self.s.setblocking(False)
        self.port = self.s.getsockname()[1]
        self.body, self.n = body, n
        self.k, self.out, self.sent = 0, b"", 0
        self.inbuf, self.answered = b"", 0

    def done_sending(self):
        return self.k == self.n and not self.out

    def send_some(self):
        if not self.out and self.k < self.n:
            self.k += 1
            self.out = memoryview(kc.frame(kc.FETCH, 11, self.k, self.body))
        try:
            n = self.s.send(self.out[:1 << 18])
        except BlockingIOError:
            return
        self.out = self.out[n:]
        self.sent += n

    def read_by_alogd(self, queues):
        """What alogd took off the socket: sent, less what is still in either queue."""
        return (self.sent - queues.get((self.port, kc.PORT), (0, 0))[0]
                - queues.get((kc.PORT, self.port), (0, 0))[1])

    def recv_some(self):
        try:
            b = self.s.recv(1 << 20)
        except BlockingIOError:
            return
        if not b:
            fail("alogd closed a connection with %d of its %d long polls answered"
                 % (self.answered, self.n))
        self.inbuf += b
        while len(self.inbuf) >= 4:
            size = struct.unpack(">i", self.inbuf[:4])[0]
            if len(self.inbuf) < 4 + size:
                break
            rd = kc.Reader(self.inbuf[4:4 + size])
            self.inbuf = self.inbuf[4 + size:]
            self.answered += 1
            check(rd.i32() == self.answered, "responses in request order")
            f = kc.fetch_parse(rd, 11)
            check(f["err"] == 0 and f["records"], "a long poll answered with the record: %r" % f)


def send_until(pollers, cond, quiet_s, what):
    """Sends the pollers' requests until cond() holds once no socket took a byte for
    quiet_s (alogd stopped reading), or everything is sent."""
    deadline = time.time() + 120
    while True:
        busy = [p for p in pollers if not p.done_sending()]
        if not busy:
            return
        _, w, _ = select.select([], [p.s for p in busy], [], quiet_s)
        if not w and cond():
            return
        check(time.time() < deadline, "timed out waiting until " + what)
        for p in busy:
            if p.s in w:
                p.send_some()


def pump(senders, readers, cond, what):
    """Sends the senders' requests and reads the readers' responses until cond()."""
    deadline = time.time() + 120
    while not cond():
        check(time.time() < deadline, what())
        busy = [p.s for p in senders if not p.done_sending()]
        rd, w, _ = select.select([p.s for p in readers], busy, [], 0.2)
        for p in senders:
            if p.s in w:
                p.send_some()
        for p in readers:
            if p.s in rd:
                p.recv_some()


def long_poll_body(topic, offset, nforgotten):
    """A Fetch v11 of partition 0 from offset that waits 10 minutes for a byte (longer
    than any timeout here: only data arriving answers it), made big (4 bytes per
    entry) by a forgotten_topics_data list, which alogd decodes and keeps with the
    request but does not answer: the response stays small."""
    part = i32(0) + i32(-1) + i64(offset) + i64(-1) + i32(1 << 20)
    return (i32(-1) + i32(600000) + i32(1) + i32(1 << 20) + i8(1) + i32(0) + i32(-1)
            + array([topic], lambda t: string(t) + array([part], lambda x: x))
            + array([topic], lambda t: string(t) + array([0] * nforgotten, i32))
            + string(""))


def phase_budget(pid, budget):
    """8 connections, each pipelining 32 long polls of 1 MB without reading: 256 MB,
    which the per-connection bounds (64 MiB each) let alogd read in full. Four (A)
    wait for data in topic budget-a, then four (B) for data in budget-b."""
    nreq = 32
    c = kc.Conn()
    c.s.settimeout(120)
    kc.metadata(c, 4, ["budget-a", "budget-b"])
    before = kc.proc_status_kib(pid, "VmRSS")

    def taken(pollers):
        q = tcp_queues()
        return [p.read_by_alogd(q) for p in pollers]

    # A's requests spend the budget; then each of B's connections takes one request
    # (it has none in flight), and no more.
    a = [Poller(long_poll_body("budget-a", 0, 250000), nreq) for _ in range(4)]
    send_until(a, lambda: sum(taken(a)) >= budget, 1, "A's connections spend the budget")
    body_b = long_poll_body("budget-b", 0, 250000)
    b = [Poller(body_b, nreq) for _ in range(4)]
    one = len(kc.frame(kc.FETCH, 11, 1, body_b))
    send_until(b, lambda: min(taken(b)) >= one, 1, "each of B's connections sent a request")
    read, settled = taken(a + b), 0  # everything sent (no budget): what alogd reads of it
    while settled < 5:
        time.sleep(0.2)
        last, read = read, taken(a + b)
        settled = settled + 1 if read == last else 0
    grown = (kc.proc_status_kib(pid, "VmRSS") - before) // 1024
    print("budget: alogd read %d MB of %d MB sent on 8 connections; VmRSS grew %d MB"
          % (sum(read) >> 20, sum(p.sent for p in a + b) >> 20, grown))
    # The budget, plus a request per connection (taken with nothing in flight) and one
    # per worker (checking and adding are not one step), plus the unhandled input each
    # stalled connection holds (a frame and a read chunk): under 64 MiB for 16 MiB.
    check(sum(read) < budget + (48 << 20), "alogd read %d MB of requests on 8 connections "
          "(budget %d MB)" % (sum(read) >> 20, budget >> 20))
    check(all(not p.done_sending() for p in a + b), "every connection is held back")
    if os.environ.get("ALOG_INSTRUMENTED", "0") != "1":  # sanitizers' memory is theirs
        # Each request held twice (frame, decoded list): 2 x 64 MiB at most, with the
        # allocator's slack. Without the budget: 2 x 256 MB.
        check(grown < 200, "with %d MB of requests read alogd grew by %d MB"
              % (sum(read) >> 20, grown))
    # A connection with nothing in flight is served while the budget is spent: one
    # peer's long polls do not starve every other client.
    try:
        err, _ = kc.api_versions(c, 2)
        _, ts = kc.metadata(c, 4, ["budget-a"])
    except socket.timeout:
        fail("a connection with nothing in flight got no answer in 120 s while the "
             "budget is spent")
    check(err == 0, "ApiVersions while the budget is spent: error %d" % err)
    check(ts["budget-a"]["err"] == 0, "Metadata while the budget is spent")
    # Data for A: A's polls are answered (and those A sends next, at once), giving the
    # budget back. B's connections, which hold a request each and less than the
    # budget, and whose own polls still wait, are read again only if that release
    # wakes their worker (either one): then they take the budget.
    r = tc.produce(c, "budget-a", 0, tc.make_batch([b"a"], 1700000000000))
    check(r["err"] == 0, "produce while the budget is spent: %r" % r)
    pump(a + b, a, lambda: all(p.answered == nreq for p in a) and sum(taken(b)) >= budget,
         lambda: "A's polls answered: %r of %d each; B's connections read %d MB, not the "
         "budget: not woken" % ([p.answered for p in a], nreq, sum(taken(b)) >> 20))
    r = tc.produce(c, "budget-b", 0, tc.make_batch([b"b"], 1700000000000))
    check(r["err"] == 0, "produce to budget-b: %r" % r)
    pump(b, b, lambda: all(p.answered == nreq for p in b),
         lambda: "B's polls answered: %r of %d each" % ([p.answered for p in b], nreq))
    for p in a + b:
        p.s.close()
    # The budget is whole again: 8 long polls (half of it) on one connection are all
    # read, though none is answered yet.
    fresh = Poller(long_poll_body("budget-a", 1, 250000), 8)
    send_until([fresh], lambda: False, 1, "8 MB of long polls are sent")
    pump([], [], lambda: fresh.read_by_alogd(tcp_queues()) == fresh.sent,
         lambda: "alogd read %d of 8 MB of long polls on a fresh connection"
         % (fresh.read_by_alogd(tcp_queues()) >> 20))
    # And a fresh connection gets a Produce and a Fetch answered as ever.
    c2 = kc.Conn()
    r = tc.produce(c2, "budget-a", 0, tc.make_batch([b"after"], 1700000000001))
    check(r["err"] == 0 and r["base"] == 1, "produce after the test: %r" % r)
    f = kc.fetch(c2, 11, "budget-a", 0, 1)
    check(f["err"] == 0 and b"after" in f["records"], "fetch after the test: %r" % f)
    fresh.s.close()
    c2.close()
    c.close()


def main():
    phase = sys.argv[2]
    if phase == "partitions":
        phase_partitions(sys.argv[3])
    elif phase == "repeats":
        phase_repeats()
    elif phase == "reqbytes":
        phase_reqbytes(int(sys.argv[3]))
    elif phase == "fetchroom":
        phase_fetchroom()
    elif phase == "budget":
        phase_budget(int(sys.argv[3]), int(sys.argv[4]))
    else:
        fail("unknown phase " + phase)
    print("%s: %d checks passed" % (phase, kc.CHECKS))


if __name__ == "__main__":
    main()
