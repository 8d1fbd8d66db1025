#!/usr/bin/env python3
"""alogd_client.py -- a minimal Kafka wire-protocol client for test_alogd_basic.sh
(and a module for alogd_fetch_client.py, which imports it: PORT is argv[1] there too).

Written from the Kafka message schemas with struct packing, independently of alogd's
own codec (src/server/kafka_msgs.c), so that a mistake shared by alogd's encoder and
decoder still shows up here.

Usage:
  alogd_client.py PORT phase1 BATCH_A BATCH_B TS_B LOG
      every API against a fresh server; BATCH_A/B are files holding one RecordBatch
      each, made by the engine (alog append); TS_B is the timestamp of BATCH_B's
      records; LOG is the server's stderr, to check its log lines.
  alogd_client.py PORT phase2 BATCH_A BATCH_B
      after a restart: the data of phase 1 is still there.
Exits non-zero with a message on the first failed check.
"""
import os
import random
import socket
import struct
import sys
import time

PORT = int(sys.argv[1])
CHECKS = 0
TAG = "test_alogd_basic"  # other scripts that import this module set their own


def fail(msg):
    sys.exit("FAIL [%s]: %s" % (TAG, msg))


def check(cond, msg):
    global CHECKS
    CHECKS += 1
    if not cond:
        fail(msg)


def proc_status_kib(pid, field):
    """A kB figure of /proc/PID/status (VmRSS, RssAnon, ...) of a process (alogd)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    fail("no %s in /proc/%d/status" % (field, pid))


# ---- encoding ----------------------------------------------------------------------

def i8(v): return struct.pack(">b", v)
def i16(v): return struct.pack(">h", v)
def i32(v): return struct.pack(">i", v)
def i64(v): return struct.pack(">q", v)


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def byts(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items, enc):
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(enc(x) for x in items)


def uvarint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def compact_string(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


def frame(key, version, corr, body, client_id="alogd-test", flexible_header=False):
    h = i16(key) + i16(version) + i32(corr) + string(client_id)
    if flexible_header:
        h += uvarint(0)  # no tagged fields
    msg = h + body
    return i32(len(msg)) + msg


# ---- decoding ----------------------------------------------------------------------

class Reader:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, n):
        if self.p + n > len(self.b):
            fail("response truncated at byte %d (want %d of %d)" % (self.p, n, len(self.b)))
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def i8(self): return struct.unpack(">b", self.take(1))[0]
    def i16(self): return struct.unpack(">h", self.take(2))[0]
    def i32(self): return struct.unpack(">i", self.take(4))[0]
    def i64(self): return struct.unpack(">q", self.take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, fn):
        n = self.i32()
        return None if n < 0 else [fn(self) for _ in range(n)]

    def uvarint(self):
        v, s = 0, 0
        while True:
            c = self.take(1)[0]
            v |= (c & 0x7F) << s
            s += 7
            if not c & 0x80:
                return v

    def tagged(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def end(self):
        check(self.p == len(self.b), "%d trailing bytes in a response" % (len(self.b) - self.p))


class Conn:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        self.corr = 0

    def send(self, key, version, body, **kw):
        self.corr += 1
        self.s.sendall(frame(key, version, self.corr, body, **kw))
        return self.corr

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            c = self.s.recv(n - len(out))
            if not c:
                fail("connection closed by alogd while reading a response")
            out += c
        return out

    def recv(self, corr):
        size = struct.unpack(">i", self.recv_exact(4))[0]
        r = Reader(self.recv_exact(size))
        got = r.i32()
        check(got == corr, "correlation id %d, expected %d" % (got, corr))
        return r

    def call(self, key, version, body, **kw):
        return self.recv(self.send(key, version, body, **kw))

    def closed_by_peer(self, timeout=5):
        self.s.settimeout(timeout)
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


# ---- the APIs ----------------------------------------------------------------------

PRODUCE, FETCH, LIST_OFFSETS, METADATA, API_VERSIONS, CREATE, DELETE = 0, 1, 2, 3, 18, 19, 20
EXPECTED_APIS = {PRODUCE: (0, 7), FETCH: (0, 11), LIST_OFFSETS: (0, 2), METADATA: (0, 4),
                 API_VERSIONS: (0, 3), CREATE: (0, 4), DELETE: (0, 3)}


def api_versions(c, v):
    if v >= 3:
        body = compact_string("alogd-test") + compact_string("1.0") + uvarint(0)
        r = c.call(API_VERSIONS, v, body, flexible_header=True)
    else:
        r = c.call(API_VERSIONS, v, b"")
    err = r.i16()
    if v >= 3:
        n = r.uvarint() - 1
        apis = {}
        for _ in range(n):
            k, lo, hi = r.i16(), r.i16(), r.i16()
            r.tagged()
            apis[k] = (lo, hi)
    else:
        apis = {k: (lo, hi) for k, lo, hi in r.array(lambda r: (r.i16(), r.i16(), r.i16()))}
    if v >= 1:
        r.i32()
    if v >= 3:
        r.tagged()
    r.end()
    return err, apis


def metadata(c, v, topics, auto=True):
    body = array(topics, string)
    if v >= 4:
        body += i8(1 if auto else 0)
    r = c.call(METADATA, v, body)
    if v >= 3:
        r.i32()
    brokers = r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string() if v >= 1 else None))
    if v >= 2:
        r.string()
    if v >= 1:
        check(r.i32() == 0, "controller id")

    def part(r):
        return dict(err=r.i16(), index=r.i32(), leader=r.i32(),
                    replicas=r.array(lambda r: r.i32()), isr=r.array(lambda r: r.i32()))

    def topic(r):
        t = dict(err=r.i16(), name=r.string())
        if v >= 1:
            t["internal"] = r.i8()
        t["parts"] = r.array(part)
        return t
    ts = r.array(topic)
    r.end()
    return brokers, {t["name"]: t for t in ts}


def produce(c, v, topic, part, records, acks=-1):
    body = b""
    if v >= 3:
        body += string(None)
    body += i16(acks) + i32(5000)
    body += array([topic], lambda t: string(t) + array([part], lambda p: i32(p) + byts(records)))
    if acks == 0:
        c.send(PRODUCE, v, body)
        return None
    r = c.call(PRODUCE, v, body)

    def presp(r):
        d = dict(index=r.i32(), err=r.i16(), base=r.i64())
        if v >= 2:
            d["append_time"] = r.i64()
        if v >= 5:
            d["log_start"] = r.i64()
        return d
    ts = r.array(lambda r: (r.string(), r.array(presp)))
    if v >= 1:
        r.i32()
    r.end()
    return ts[0][1][0]


def fetch_body(v, topic, part, offset, max_wait=0, min_bytes=1, part_max=1 << 20):
    body = i32(-1) + i32(max_wait) + i32(min_bytes)
    if v >= 3:
        body += i32(50 << 20)
    if v >= 4:
        body += i8(1)  # read_committed, as librdkafka
    if v >= 7:
        body += i32(0) + i32(-1)
    p = i32(part)
    if v >= 9:
        p += i32(-1)
    p += i64(offset)
    if v >= 5:
        p += i64(-1)
    p += i32(part_max)
    body += array([topic], lambda t: string(t) + array([p], lambda x: x))
    if v >= 7:
        body += array([], None)
    if v >= 11:
        body += string("")
    return body


def fetch_parse(r, v):
    if v >= 1:
        r.i32()
    if v >= 7:
        check(r.i16() == 0, "fetch top-level error")
        check(r.i32() == 0, "fetch session id must be 0 (sessionless)")

    def part(r):
        d = dict(index=r.i32(), err=r.i16(), hw=r.i64())
        if v >= 4:
            d["lso"] = r.i64()
        if v >= 5:
            d["log_start"] = r.i64()
        if v >= 4:
            d["aborted"] = r.array(lambda r: (r.i64(), r.i64()))
        if v >= 11:
            d["preferred"] = r.i32()
        d["records"] = r.bytes_()
        return d
    ts = r.array(lambda r: (r.string(), r.array(part)))
    r.end()
    return ts[0][1][0]


def fetch(c, v, topic, part, offset, **kw):
    return fetch_parse(c.call(FETCH, v, fetch_body(v, topic, part, offset, **kw)), v)


def list_offsets(c, v, topic, part, ts):
    body = i32(-1)
    if v >= 2:
        body += i8(0)
    p = i32(part) + i64(ts) + (i32(1) if v == 0 else b"")
    body += array([topic], lambda t: string(t) + array([p], lambda x: x))
    r = c.call(LIST_OFFSETS, v, body)
    if v >= 2:
        r.i32()

    def part_(r):
        d = dict(index=r.i32(), err=r.i16())
        if v == 0:
            d["offsets"] = r.array(lambda r: r.i64())
        else:
            d["timestamp"], d["offset"] = r.i64(), r.i64()
        return d
    ts_ = r.array(lambda r: (r.string(), r.array(part_)))
    r.end()
    return ts_[0][1][0]


def create_topics(c, v, topics):
    """topics: list of (name, partitions, replication_factor)."""
    def t(x):
        return string(x[0]) + i32(x[1]) + i16(x[2]) + array([], None) + array([], None)
    body = array(topics, t) + i32(5000)
    if v >= 1:
        body += i8(0)
    r = c.call(CREATE, v, body)
    if v >= 2:
        r.i32()

    def res(r):
        d = dict(name=r.string(), err=r.i16())
        if v >= 1:
            d["msg"] = r.string()
        return d
    out = r.array(res)
    r.end()
    return {d["name"]: d for d in out}


def delete_topics(c, v, names):
    r = c.call(DELETE, v, array(names, string) + i32(5000))
    if v >= 1:
        r.i32()
    out = r.array(lambda r: (r.string(), r.i16()))
    r.end()
    return dict(out)


# ---- record batches ----------------------------------------------------------------

def batch_with_base(batch, base):
    """The batch as a broker stores it at base: baseOffset rewritten, the rest as is
    (the leader epoch alogd writes is 0, as the engine's encoder writes)."""
    return i64(base) + batch[8:12] + i32(0) + batch[16:]


def corrupt(batch):
    b = bytearray(batch)
    b[-1] ^= 0xFF  # inside the CRC-covered part: the CRC no longer matches
    return bytes(b)


def data_dirs(root):
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))


# ---- the phases --------------------------------------------------------------------

def phase1(batch_a, batch_b, ts_b, log_path):
    c = Conn()
    # ApiVersions: every version alogd has, and Kafka's error-35 answer above them.
    for v in range(0, 4):
        err, apis = api_versions(c, v)
        check(err == 0, "ApiVersions v%d error %d" % (v, err))
        for k, rng in EXPECTED_APIS.items():
            check(apis.get(k) == rng, "ApiVersions v%d: key %d range %r, expected %r"
                  % (v, k, apis.get(k), rng))
    corr = c.send(API_VERSIONS, 4, compact_string("x") + compact_string("1") + uvarint(0),
                  flexible_header=True)
    r = c.recv(corr)  # a v0 body whatever the version asked
    check(r.i16() == 35, "ApiVersions v4 must answer UNSUPPORTED_VERSION (35)")
    check(r.array(lambda r: (r.i16(), r.i16(), r.i16())) == [(18, 0, 3)],
          "ApiVersions v4 error body must list ApiVersions 0..3")
    r.end()

    # Metadata: no topics yet; auto-creation on a named topic.
    for v in range(0, 5):
        brokers, topics = metadata(c, v, [] if v == 0 else None)
        check(len(brokers) == 1 and brokers[0][:3] == (0, "127.0.0.1", PORT),
              "Metadata v%d broker %r" % (v, brokers))
        check(topics == {}, "Metadata v%d: no topics expected, got %r" % (v, topics))
    _, topics = metadata(c, 4, ["nope"], auto=False)
    check(topics["nope"]["err"] == 3, "Metadata without auto-create: UNKNOWN_TOPIC_OR_PARTITION")
    _, topics = metadata(c, 4, ["bad/name"])
    check(topics["bad/name"]["err"] == 17, "Metadata of an invalid name: INVALID_TOPIC_EXCEPTION")
    _, topics = metadata(c, 4, ["t1"])
    t = topics["t1"]
    check(t["err"] == 0 and len(t["parts"]) == 1, "auto-created t1: %r" % t)
    p = t["parts"][0]
    check((p["leader"], p["replicas"], p["isr"]) == (0, [0], [0]), "t1 partition 0: %r" % p)

    # CreateTopics and its errors.
    res = create_topics(c, 4, [("ct", 3, 1), ("bad name", 1, 1), ("rf", 1, 3), ("zero", 0, 1)])
    check(res["ct"]["err"] == 0, "CreateTopics ct: %r" % res["ct"])
    check(res["bad name"]["err"] == 17, "CreateTopics bad name: %r" % res["bad name"])
    check(res["rf"]["err"] == 38, "CreateTopics rf 3: %r" % res["rf"])
    check(res["zero"]["err"] == 37, "CreateTopics 0 partitions: %r" % res["zero"])
    res = create_topics(c, 0, [("ct", 1, 1)])
    check(res["ct"]["err"] == 36, "CreateTopics v0 of an existing topic: %r" % res["ct"])
    _, topics = metadata(c, 1, ["ct"])
    check(len(topics["ct"]["parts"]) == 3, "ct has 3 partitions")

    # Produce the engine's batches; offsets follow on.
    r = produce(c, 7, "t1", 0, batch_a)
    check(r["err"] == 0 and r["base"] == 0, "Produce v7 batch A: %r" % r)
    check(r["log_start"] == 0 and r["append_time"] == -1, "Produce v7 fields: %r" % r)
    r = produce(c, 3, "t1", 0, batch_b)
    check(r["err"] == 0 and r["base"] == 2, "Produce v3 batch B at offset 2: %r" % r)
    r = produce(c, 7, "t1", 0, corrupt(batch_a))
    check(r["err"] == 2, "a corrupt batch: CORRUPT_MESSAGE, got %r" % r)
    r = produce(c, 7, "t1", 0, batch_a[:40])
    check(r["err"] == 2, "a truncated batch: CORRUPT_MESSAGE, got %r" % r)
    r = produce(c, 7, "t1", 5, batch_a)
    check(r["err"] == 3, "an unknown partition: UNKNOWN_TOPIC_OR_PARTITION, got %r" % r)
    r = produce(c, 2, "t1", 0, batch_a)
    check(r["err"] == 35, "Produce v2 (old message format): UNSUPPORTED_VERSION, got %r" % r)
    r = produce(c, 7, "t1", 0, batch_a, acks=2)
    check(r["err"] == 21, "acks=2: INVALID_REQUIRED_ACKS, got %r" % r)

    # Fetch them back unchanged (but for the base offset).
    want = batch_with_base(batch_a, 0) + batch_with_base(batch_b, 2)
    for v in (4, 5, 7, 11):
        f = fetch(c, v, "t1", 0, 0)
        check(f["err"] == 0 and f["hw"] == 4, "Fetch v%d: %r" % (v, f))
        check(f["lso"] == 4 and f["aborted"] is None, "Fetch v%d lso/aborted: %r" % (v, f))
        if v >= 5:
            check(f["log_start"] == 0, "Fetch v%d log start" % v)
        if v >= 11:
            check(f["preferred"] == -1, "Fetch v11 preferred read replica")
        check(f["records"] == want, "Fetch v%d: records differ from what was produced" % v)
    f = fetch(c, 11, "t1", 0, 2)
    check(f["records"] == batch_with_base(batch_b, 2), "Fetch from offset 2: batch B only")
    f = fetch(c, 11, "t1", 0, 3)
    check(f["records"] == batch_with_base(batch_b, 2),
          "Fetch from offset 3: the whole batch holding it")
    f = fetch(c, 11, "t1", 0, 0, part_max=1)
    check(f["records"] == batch_with_base(batch_a, 0),
          "Fetch with 1 partition byte: still the first batch whole (KIP-74)")
    f = fetch(c, 11, "t1", 0, 4)
    check(f["err"] == 0 and f["records"] == b"", "Fetch at the end: empty: %r" % f)
    f = fetch(c, 11, "t1", 0, 5)
    check(f["err"] == 1, "Fetch past the end: OFFSET_OUT_OF_RANGE, got %r" % f)
    f = fetch(c, 11, "nope", 0, 0)
    check(f["err"] == 3, "Fetch of an unknown topic: UNKNOWN_TOPIC_OR_PARTITION, got %r" % f)
    f = fetch(c, 3, "t1", 0, 0)
    check(f["err"] == 35, "Fetch v3: UNSUPPORTED_VERSION, got %r" % f)

    # Long poll: nothing at the end, so it waits max_wait_ms...
    t0 = time.time()
    f = fetch(c, 11, "t1", 0, 4, max_wait=400)
    dt = time.time() - t0
    check(f["records"] == b"" and dt >= 0.35, "long poll returned after %.3f s" % dt)
    # ...unless a produce on another connection brings data.
    c2 = Conn()
    corr = c.send(FETCH, 11, fetch_body(11, "ct", 1, 0, max_wait=10000))
    time.sleep(0.2)
    t0 = time.time()
    r = produce(c2, 7, "ct", 1, batch_a)
    check(r["err"] == 0 and r["base"] == 0, "Produce to ct-1: %r" % r)
    f = fetch_parse(c.recv(corr), 11)
    dt = time.time() - t0
    check(f["records"] == batch_with_base(batch_a, 0) and dt < 5,
          "a parked Fetch must wake on a produce (took %.3f s)" % dt)

    # acks=0: no response, but stored; the next response is the next request's.
    produce(c2, 7, "ct", 2, batch_a, acks=0)
    _, topics = metadata(c2, 4, ["ct"])
    check(fetch(c2, 11, "ct", 2, 0)["hw"] == 2, "acks=0 produce stored")

    # Pipelined requests come back in order, a parked Fetch first.
    corrs = [c2.send(FETCH, 11, fetch_body(11, "ct", 0, 0, max_wait=300))]
    corrs += [c2.send(API_VERSIONS, 0, b"") for _ in range(5)]
    for k in corrs:
        c2.recv(k)  # checks the correlation id

    # ListOffsets.
    for v in (0, 1, 2):
        e = list_offsets(c, v, "t1", 0, -2)
        l = list_offsets(c, v, "t1", 0, -1)
        if v == 0:
            check(e["offsets"] == [0] and l["offsets"] == [4], "ListOffsets v0: %r %r" % (e, l))
        else:
            check(e["offset"] == 0 and l["offset"] == 4, "ListOffsets v%d: %r %r" % (v, e, l))
    r = list_offsets(c, 2, "t1", 0, ts_b)
    check(r["err"] == 0 and r["offset"] == 2 and r["timestamp"] == ts_b,
          "ListOffsets by time %d: %r" % (ts_b, r))
    r = list_offsets(c, 1, "t1", 0, ts_b + 10 ** 9)
    check(r["offset"] == -1 and r["timestamp"] == -1, "ListOffsets past the newest: %r" % r)
    r = list_offsets(c, 2, "nope", 0, -1)
    check(r["err"] == 3, "ListOffsets unknown topic: %r" % r)

    # DeleteTopics removes the directories.
    data = os.path.join(os.path.dirname(log_path), "data")
    check("ct-2" in data_dirs(data), "ct-2 directory exists before deletion")
    res = delete_topics(c, 3, ["ct", "nope"])
    check(res == {"ct": 0, "nope": 3}, "DeleteTopics: %r" % res)
    _, topics = metadata(c, 4, None)
    check(set(topics) == {"t1"}, "after DeleteTopics: %r" % set(topics))
    for _ in range(50):
        if not [d for d in data_dirs(data) if d.startswith("ct-")]:
            break
        time.sleep(0.1)
    check(not [d for d in data_dirs(data) if d.startswith("ct-")],
          "ct directories removed: %r" % data_dirs(data))
    res = create_topics(c, 2, [("ct", 1, -1)])
    check(res["ct"]["err"] == 0, "CreateTopics after delete: %r" % res)

    # Abuse: each closes its own connection only, with a log line.
    bad = Conn()
    bad.s.sendall(i32(1 << 30))  # above --max-request-bytes
    check(bad.closed_by_peer(), "an oversized size prefix must close the connection")
    bad = Conn()
    bad.s.sendall(i32(12) + b"\x00\x03\x00\x04garbage!")  # Metadata v4, body garbage
    check(bad.closed_by_peer(), "a malformed request must close the connection")
    bad = Conn()
    bad.s.sendall(i32(10) + i16(999) + i16(0) + i32(1) + i16(-1))  # unknown API key
    check(bad.closed_by_peer(), "an unknown API key must close the connection")
    bad = Conn()
    junk = random.Random(7).randbytes(3000)  # a Produce v7 of random bytes
    bad.s.sendall(i32(3000) + i16(0) + i16(7) + junk[4:])
    check(bad.closed_by_peer(), "a Produce of random bytes must close the connection")
    slow = Conn()
    slow.s.sendall(i32(100) + b"\x00\x12")  # a request that never completes
    c3 = Conn()
    err, _ = api_versions(c3, 2)
    check(err == 0, "a new connection is served while a slow one waits")
    check(fetch(c3, 11, "t1", 0, 0)["records"] == want, "data still served")
    check(not slow.closed_by_peer(timeout=0.2), "the slow client is left alone")
    # 1,000 idle connections: the server keeps serving a new one, and the data.
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1100 and hard >= 1100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    idle = [socket.create_connection(("127.0.0.1", PORT), timeout=10) for _ in range(1000)]
    c4 = Conn()
    err, _ = api_versions(c4, 2)
    check(err == 0, "a new connection is served next to 1,000 idle ones")
    check(fetch(c4, 11, "t1", 0, 0)["records"] == want, "data served next to 1,000 idle connections")
    for s_ in idle:
        s_.close()
    with open(log_path) as f:
        log = f.read()
    check("outside 0..104857600 (--max-request-bytes)" in log, "log line for the oversized size")
    check("malformed request: Metadata v4 request" in log, "log line for the malformed request")
    check("API key 999 v0 request" in log, "log line for the unknown API key")


def phase2(batch_a, batch_b):
    c = Conn()
    _, topics = metadata(c, 4, None)
    check(set(topics) == {"t1", "ct"}, "topics after restart: %r" % set(topics))
    want = batch_with_base(batch_a, 0) + batch_with_base(batch_b, 2)
    f = fetch(c, 11, "t1", 0, 0)
    check(f["hw"] == 4 and f["records"] == want, "t1 data after restart: %r" % f)
    r = produce(c, 7, "t1", 0, batch_a)
    check(r["err"] == 0 and r["base"] == 4, "produce after restart at offset 4: %r" % r)


def main():
    phase = sys.argv[2]
    batch_a = open(sys.argv[3], "rb").read()
    batch_b = open(sys.argv[4], "rb").read()
    if phase == "phase1":
        phase1(batch_a, batch_b, int(sys.argv[5]), sys.argv[6])
    else:
        phase2(batch_a, batch_b)
    print("%s: %d checks passed" % (phase, CHECKS))


if __name__ == "__main__":
    main()
