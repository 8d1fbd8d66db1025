#!/usr/bin/env python3
"""alogd_topics_client.py -- the Kafka-protocol client of test_alogd_topics.sh and
test_alogd_concurrent.sh: topic metadata, topic configs, one batch per partition, and
many clients at once.

It reuses the wire helpers of alogd_client.py (written from the Kafka schemas,
independently of alogd's codec) and adds what those tests need: CreateTopics with
configs, and RecordBatch v2 built here (with its own CRC-32C), so that timestamps can be
chosen at produce time.

Usage: alogd_topics_client.py PORT PHASE DATA_DIR [ARGS...]  (phases: see main()).
Exits non-zero with a message on the first failed check.
"""
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import alogd_client as kc  # noqa: E402  (reads the port from sys.argv[1])
from alogd_client import i8, i16, i32, i64, string, array, Conn  # noqa: E402

PHASE = sys.argv[2]
kc.TAG = "alogd_topics_client " + PHASE
fail, check = kc.fail, kc.check  # one failure format and one check count for both


# ---- RecordBatch v2 ------------------------------------------------------------------

def _crc_table():
    t = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


check(crc32c(b"123456789") == 0xE3069283, "CRC-32C check value")


def zz(n):
    """ZigZag varint (Kafka's record fields)."""
    n = (n << 1) ^ (n >> 63)
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def make_batch(values, ts, key=None):
    """One uncompressed RecordBatch v2 holding values (bytes), all at timestamp ts."""
    recs = b""
    for i, v in enumerate(values):
        body = i8(0) + zz(0) + zz(i)
        body += zz(-1) if key is None else zz(len(key)) + key
        body += zz(len(v)) + v + zz(0)
        recs += zz(len(body)) + body
    n = len(values)
    after_crc = (i16(0) + i32(n - 1) + i64(ts) + i64(ts) + i64(-1) + i16(-1) + i32(-1) + i32(n)
                 + recs)
    body = i32(0) + i8(2) + struct.pack(">I", crc32c(after_crc)) + after_crc
    return i64(0) + i32(len(body)) + body


def batches_of(records):
    """Splits fetched bytes into (base_offset, attributes, max_ts, count, crc_ok)."""
    out, p = [], 0
    while p + 61 <= len(records):
        base, blen = struct.unpack(">qi", records[p:p + 12])
        b = records[p:p + 12 + blen]
        if len(b) < 12 + blen:
            break
        crc = struct.unpack(">I", b[17:21])[0]
        attrs = struct.unpack(">h", b[21:23])[0]
        max_ts = struct.unpack(">q", b[35:43])[0]
        count = struct.unpack(">i", b[57:61])[0]
        out.append((base, attrs, max_ts, count, crc == crc32c(b[21:])))
        p += 12 + blen
    return out


# ---- requests ------------------------------------------------------------------------

def create_topics(c, topics, validate_only=False, v=4):
    """topics: list of (name, partitions, {config: value})."""
    def t(x):
        name, parts, cfg = x
        return (string(name) + i32(parts) + i16(-1) + array([], None)
                + array(sorted(cfg.items()), lambda kv: string(kv[0]) + string(kv[1])))
    body = array(topics, t) + i32(5000) + i8(1 if validate_only else 0)
    r = c.call(kc.CREATE, v, body)
    r.i32()
    out = {}
    for _ in range(r.i32()):
        name, err, msg = r.string(), r.i16(), r.string()
        out[name] = (err, msg)
    r.end()
    return out


def produce(c, topic, part, records, acks=-1):
    return kc.produce(c, 7, topic, part, records, acks=acks)


def hw(c, topic, part):
    f = kc.fetch(c, 11, topic, part, 0, part_max=1)
    return f["hw"]


def earliest(c, topic, part):
    return kc.list_offsets(c, 1, topic, part, -2)["offset"]


def partitions_of(c, topic):
    _, topics = kc.metadata(c, 4, [topic], auto=False)
    t = topics[topic]
    return t["err"], len(t["parts"] or [])


def logs_in(data, d):
    return sorted(f for f in os.listdir(os.path.join(data, d)) if f.endswith(".log"))


def read_meta(data, topic):
    with open(os.path.join(data, topic + ".topic")) as f:
        return f.read()


def wait_for(cond, what, secs=60):
    deadline = time.time() + secs
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.1)
    fail("gave up waiting (%d s) for %s" % (secs, what))


VAL = b"v" * 60  # a 60-byte value: one-record batches of about 130 bytes


# ---- test_alogd_topics: phases -----------------------------------------------------

def phase_create(data, log_path):
    c = Conn()
    res = create_topics(c, [
        ("p3", 3, {}),
        ("seg", 1, {"segment.bytes": "100"}),
        ("ret", 1, {"segment.bytes": "100", "retention.bytes": "300"}),
        ("rtime", 1, {"segment.bytes": "100", "retention.ms": "6000"}),
        ("flush1", 1, {"flush.messages": "1"}),
        ("lazy", 1, {"flush.ms": "4294967295"}),
        ("fsoff", 1, {"flush.messages": "9223372036854775807", "flush.ms": "4294967295"}),
        ("lat", 1, {"message.timestamp.type": "LogAppendTime", "cleanup.policy": "delete"}),
        ("half", 2, {}), ("gone", 2, {}), ("extra", 1, {}), ("badmeta", 1, {}),
        ("x" * 249, 1, {}),
    ])
    for name, (err, msg) in res.items():
        check(err == 0, "CreateTopics %s: %r" % (name[:20], (err, msg)))
    check(read_meta(data, "p3") == "alogd-topic 1\npartitions=3\n", "p3.topic: %r" % read_meta(data, "p3"))
    check(read_meta(data, "ret") == "alogd-topic 1\npartitions=1\nretention.bytes=300\nsegment.bytes=100\n",
          "ret.topic: %r" % read_meta(data, "ret"))
    check(os.path.exists(os.path.join(data, "x" * 249 + ".topic")), "a 249-character topic's metadata file")
    check(not [f for f in os.listdir(data) if f.endswith("+new") or f.endswith("+tmp")],
          "no marker left after creation: %r" % os.listdir(data))

    # Invalid configs: INVALID_CONFIG (40) naming the config, and nothing created.
    bad = {
        "bad1": ({"foo.bar": "1"}, "Unknown topic config name: foo.bar"),
        "bad2": ({"segment.bytes": "abc"}, "segment.bytes"),
        "bad3": ({"flush.messages": "5"}, "flush.messages"),
        "bad4": ({"segment.ms": "1000"}, "segment.ms"),
        "bad5": ({"retention.ms": "0"}, "retention.ms"),
        "bad6": ({"message.timestamp.type": "Later"}, "message.timestamp.type"),
        "bad7": ({"cleanup.policy": "compact"}, "cleanup.policy"),
        "bad8": ({"min.insync.replicas": "1"}, "min.insync.replicas"),
        "bad9": ({"segment.bytes": "10"}, "segment.bytes"),
    }
    res = create_topics(c, [(n, 1, cfg) for n, (cfg, _) in bad.items()])
    for n, (cfg, words) in bad.items():
        err, msg = res[n]
        check(err == 40 and msg and words in msg, "CreateTopics %s %r: %r" % (n, cfg, res[n]))
        check(partitions_of(c, n)[0] == 3, "%s must not exist" % n)
        check(not os.path.exists(os.path.join(data, n + "-0")) and
              not os.path.exists(os.path.join(data, n + ".topic")), "%s left files" % n)
    res = create_topics(c, [("vo", 2, {"retention.ms": "1000"})], validate_only=True)
    check(res["vo"][0] == 0, "validate_only with a valid config: %r" % res)
    res = create_topics(c, [("vo", 2, {"retention.ms": "-5"})], validate_only=True)
    check(res["vo"][0] == 40, "validate_only with an invalid config: %r" % res)
    check(partitions_of(c, "vo")[0] == 3 and not os.path.exists(os.path.join(data, "vo-0")),
          "validate_only creates nothing")

    # segment.bytes=100: every ~130-byte batch gets a segment of its own.
    for k in range(4):
        r = produce(c, "seg", 0, make_batch([VAL], int(time.time() * 1000)))
        check(r["err"] == 0 and r["base"] == k, "produce to seg: %r" % r)
    check(len(logs_in(data, "seg-0")) == 4, "seg-0 segments: %r" % logs_in(data, "seg-0"))

    # retention.bytes=300: old segments go at each roll; the log start moves.
    for k in range(6):
        r = produce(c, "ret", 0, make_batch([VAL], int(time.time() * 1000)))
        check(r["err"] == 0 and r["base"] == k, "produce to ret: %r" % r)
    # At the last roll, segments 0-4 (about 128 bytes each) and the new, empty 5: 0 and
    # 1 go, as deleting 2 would leave less than 300 bytes.
    segs = logs_in(data, "ret-0")
    check(len(segs) == 4 and earliest(c, "ret", 0) == 2, "ret-0 after retention: %r, start %d"
          % (segs, earliest(c, "ret", 0)))

    # retention.ms=6000 by the retention thread: offset 0's segment is sealed by the
    # second produce; nothing writes afterwards, yet it goes once 6 s old.
    for k in range(2):
        r = produce(c, "rtime", 0, make_batch([VAL], int(time.time() * 1000)))
        check(r["err"] == 0 and r["base"] == k, "produce to rtime: %r" % r)
    wait_for(lambda: "retention deleted 1 segment of rtime-0" in open(log_path).read(),
             "the retention thread to delete rtime-0's first segment")
    check(earliest(c, "rtime", 0) == 1, "rtime log start after time retention")

    # message.timestamp.type=LogAppendTime: the broker stamps the batch.
    before = int(time.time() * 1000)
    r = produce(c, "lat", 0, make_batch([b"a", b"b"], 1000))
    after = int(time.time() * 1000)
    check(r["err"] == 0 and before <= r["append_time"] <= after, "LogAppendTime produce: %r" % r)
    f = kc.fetch(c, 11, "lat", 0, 0)
    bs = batches_of(f["records"])
    check(len(bs) == 1 and bs[0][1] & 0x08 and bs[0][2] == r["append_time"] and bs[0][4],
          "LogAppendTime batch (base, attrs, max_ts, count, crc ok): %r" % bs)
    bad = bytearray(make_batch([b"a"], 1000))
    bad[-1] ^= 1
    r = produce(c, "lat", 0, bytes(bad))
    check(r["err"] == 2, "a damaged batch is not re-stamped with a valid CRC: %r" % r)
    r = produce(c, "p3", 0, make_batch([b"c"], 1000))
    check(r["err"] == 0 and r["append_time"] == -1, "CreateTime topic: append time -1: %r" % r)

    # Exactly one batch per partition (Kafka's rule for Produce v3+): INVALID_RECORD.
    two = make_batch([b"one"], 1000) + make_batch([b"two"], 1000)
    r = produce(c, "p3", 1, two)
    check(r["err"] == 87, "two batches in one partition: INVALID_RECORD (87), got %r" % r)
    r = produce(c, "p3", 1, b"")
    check(r["err"] == 87, "no batch: INVALID_RECORD (87), got %r" % r)
    old = bytearray(make_batch([b"x"], 1000))
    old[16] = 1
    r = produce(c, "p3", 1, bytes(old))
    check(r["err"] == 87, "magic 1 in Produce v7: INVALID_RECORD (87), got %r" % r)
    # zstd (attributes codec 4) only from Produce v7 on: UNSUPPORTED_COMPRESSION_TYPE.
    z = bytearray(make_batch([b"z"], 1000))
    z[22] = 4
    z[17:21] = struct.pack(">I", crc32c(bytes(z[21:])))
    r = kc.produce(c, 6, "p3", 1, bytes(z))
    check(r["err"] == 76, "zstd in Produce v6: UNSUPPORTED_COMPRESSION_TYPE (76), got %r" % r)
    check(hw(c, "p3", 1) == 0, "nothing appended by the refused produces")
    r = produce(c, "p3", 1, make_batch([b"one"], 1000))
    check(r["err"] == 0 and r["base"] == 0, "then one batch: %r" % r)
    with open(log_path) as f:
        check("must carry exactly one record batch per partition (got 2 batches)" in f.read(),
              "log line for two batches")


def count_syncs(trace, part):
    """fdatasync/fsync calls on the .log files of partition directory part."""
    n = 0
    with open(trace) as f:
        for line in f:
            if ("fdatasync(" in line or "fsync(" in line) and "/%s/" % part in line \
                    and ".log>" in line and "= 0" in line:
                n += 1
    return n


def phase_fsync(data, trace, always_topics, lazy_topics):
    """Acknowledged produces to always_topics are each fsynced first; to lazy_topics,
    not. trace is the strace output of alogd (-y: paths of the descriptors)."""
    c = Conn()
    n = 10
    before = {t: count_syncs(trace, t + "-0") for t in always_topics + lazy_topics}
    for t in always_topics + lazy_topics:
        for _ in range(n):
            r = produce(c, t, 0, make_batch([b"durable?"], int(time.time() * 1000)))
            check(r["err"] == 0, "produce to %s: %r" % (t, r))
    for t in always_topics:
        got = count_syncs(trace, t + "-0") - before[t]
        check(got >= n, "%s: %d fsyncs for %d acknowledged produces, expected one each" % (t, got, n))
    for t in lazy_topics:
        got = count_syncs(trace, t + "-0") - before[t]
        check(got < n // 2, "%s: %d fsyncs for %d produces, expected none per produce" % (t, got, n))


def phase_restart(data, log_path):
    c = Conn()
    _, topics = kc.metadata(c, 4, None)
    names = set(topics)
    for t in ("seg", "ret", "rtime", "flush1", "lazy", "fsoff", "lat", "legacy"):
        check(t in names, "%s after restart: %r" % (t, sorted(names)))
    for t in ("half", "gone", "p3", "extra", "badmeta"):
        check(t not in names, "%s must not be listed after restart" % t)
    with open(log_path) as f:
        log = f.read()
    check("topic half: removing its partition directories, left by an interrupted creation" in log,
          "log line for the half-created topic")
    check(not [d for d in os.listdir(data) if d.startswith("half")], "half's leftovers removed")
    check(partitions_of(c, "half")[0] == 3, "half does not exist")
    check("left by an interrupted deletion" in log and
          not [d for d in os.listdir(data) if d.startswith("gone")], "gone's deletion finished")
    check(not os.path.exists(os.path.join(data, "p3+tmp")), "p3+tmp removed")

    # p3: a partition directory is missing: unavailable, not recreated, others served.
    check("topic p3 is unavailable: its metadata file says 3 partitions, but partition 2 "
          "has no directory" in log, "log line for p3")
    check(partitions_of(c, "p3")[0] == 56, "Metadata of p3: KAFKA_STORAGE_ERROR")
    _, t = kc.metadata(c, 4, ["p3"], auto=True)
    check(t["p3"]["err"] == 56, "auto-creation does not make a fresh p3: %r" % t["p3"])
    check(produce(c, "p3", 0, make_batch([b"x"], 1))["err"] == 56, "produce to p3: 56")
    res = create_topics(c, [("p3", 3, {})])
    check(res["p3"][0] == 36 and "unavailable" in res["p3"][1], "CreateTopics p3: %r" % res)
    check("topic extra is unavailable: its metadata file says 1 partition, but there is a "
          "directory for partition 1" in log, "log line for extra")
    check("topic badmeta is unavailable" in log and "newer than this alogd supports" in log,
          "log line for badmeta")
    # DeleteTopics removes an unavailable topic with all its directories.
    check(kc.delete_topics(c, 3, ["p3", "extra"]) == {"p3": 0, "extra": 0}, "delete p3, extra")
    wait_for(lambda: not [d for d in os.listdir(data) if d.startswith("p3") or d.startswith("extra")],
             "p3's and extra's files to go")
    res = create_topics(c, [("p3", 2, {})])
    check(res["p3"][0] == 0, "p3 created again: %r" % res)
    check(partitions_of(c, "p3") == (0, 2), "the new p3 has 2 partitions")

    # The legacy topic: opened from its directories, metadata file written.
    check("topic legacy: no metadata file (made by an older alogd); wrote legacy.topic with "
          "2 partitions" in log, "log line for legacy")
    check(read_meta(data, "legacy") == "alogd-topic 1\npartitions=2\n", "legacy.topic")
    check(partitions_of(c, "legacy") == (0, 2), "legacy has 2 partitions")
    check(hw(c, "legacy", 0) == 2 and hw(c, "legacy", 1) == 1, "legacy data")

    # Configs survive the restart: segment.bytes still rolls seg-0 at each batch.
    n = len(logs_in(data, "seg-0"))
    r = produce(c, "seg", 0, make_batch([VAL], int(time.time() * 1000)))
    check(r["err"] == 0 and r["base"] == 4, "produce to seg after restart: %r" % r)
    check(len(logs_in(data, "seg-0")) == n + 1, "seg-0 rolled after the restart")
    r = produce(c, "lat", 0, make_batch([b"z"], 5))
    check(r["err"] == 0 and r["append_time"] > 5, "LogAppendTime after restart: %r" % r)


# ---- test_alogd_concurrent ---------------------------------------------------------

def phase_concurrent(data, nclients, nbatches):
    """nclients producers and as many long-polling consumers at once, on as many
    connections (so on both workers), plus topic creation and deletion and Metadata;
    then every partition holds exactly what was acknowledged, in order."""
    c = Conn()
    res = create_topics(c, [("cc_always", 4, {"flush.messages": "1"}),
                            ("cc_interval", 2, {}),
                            ("cc_lat", 2, {"message.timestamp.type": "LogAppendTime"})])
    check(all(e == 0 for e, _ in res.values()), "CreateTopics: %r" % res)
    targets = [("cc_always", p) for p in range(4)] + [("cc_interval", p) for p in range(2)] + \
              [("cc_lat", p) for p in range(2)]
    errors = []
    acked = {t: 0 for t in targets}
    lock = threading.Lock()

    def producer(k):
        try:
            pc = Conn()
            for i in range(nbatches):
                t = targets[(k + i) % len(targets)]
                acks = (-1, 1, 0)[i % 3]
                recs = [b"%d-%d-%d" % (k, i, j) for j in range(1 + i % 3)]
                r = produce(pc, t[0], t[1], make_batch(recs, int(time.time() * 1000)), acks=acks)
                if r is not None and r["err"] != 0:
                    errors.append("produce %r: %r" % (t, r))
                with lock:
                    acked[t] += len(recs)
            # acks=0 produces have no response: a last acks=-1 one on each partition
            # this client wrote to orders them before the counts are checked.
            for t in targets:
                r = produce(pc, t[0], t[1], make_batch([b"end"], int(time.time() * 1000)))
                if r["err"]:
                    errors.append("produce %r: %r" % (t, r))
                with lock:
                    acked[t] += 1
        except BaseException as e:  # noqa: B902
            errors.append("producer %d: %r" % (k, e))

    stop = threading.Event()

    def consumer(k):
        try:
            cc = Conn()
            t = targets[k % len(targets)]
            off = 0
            while not stop.is_set():
                f = kc.fetch(cc, 11, t[0], t[1], off, max_wait=100)
                if f["err"]:
                    errors.append("fetch %r at %d: %r" % (t, off, f["err"]))
                    return
                for base, attrs, max_ts, count, ok in batches_of(f["records"]):
                    if base != off or not ok:
                        errors.append("fetch %r: batch at %d, expected %d (crc ok %r)"
                                      % (t, base, off, ok))
                        return
                    off += count
        except BaseException as e:  # noqa: B902
            errors.append("consumer %d: %r" % (k, e))

    def churn():
        try:
            cc = Conn()
            i = 0
            while not stop.is_set():
                name = "cc_tmp%d" % (i % 3)
                create_topics(cc, [(name, 2, {"segment.bytes": "200"})])
                produce(cc, name, i % 2, make_batch([b"tmp"], 1))
                kc.metadata(cc, 4, None)
                kc.delete_topics(cc, 3, [name])
                i += 1
        except BaseException as e:  # noqa: B902
            errors.append("churn: %r" % e)

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(nclients)]
    readers = [threading.Thread(target=consumer, args=(k,)) for k in range(nclients)]
    readers.append(threading.Thread(target=churn))
    for th in readers + threads:
        th.start()
    for th in threads:
        th.join()
    stop.set()
    for th in readers:
        th.join()
    check(not errors, "; ".join(errors[:5]))
    for t in targets:
        check(hw(c, t[0], t[1]) == acked[t], "%r holds %d records, %d were produced"
              % (t, hw(c, t[0], t[1]), acked[t]))
        f = kc.fetch(c, 11, t[0], t[1], 0, part_max=50 << 20)
        bs = batches_of(f["records"])
        check(all(b[4] for b in bs) and sum(b[3] for b in bs) == acked[t],
              "%r read back whole: %d records" % (t, sum(b[3] for b in bs)))


def main():
    data = sys.argv[3]
    if PHASE == "create":
        phase_create(data, sys.argv[4])
    elif PHASE == "fsync":
        phase_fsync(data, sys.argv[4], sys.argv[5].split(","), sys.argv[6].split(","))
    elif PHASE == "restart":
        phase_restart(data, sys.argv[4])
    elif PHASE == "concurrent":
        phase_concurrent(data, int(sys.argv[4]), int(sys.argv[5]))
    else:
        fail("unknown phase " + PHASE)
    print("%s: %d checks passed" % (PHASE, kc.CHECKS))


if __name__ == "__main__":
    main()
