#!/usr/bin/env python3
"""Deterministic records for the interop tests (not a test itself).

  gen_records.py input  FIRST COUNT   kcat -P -K '\\t' input: "key<TAB>value" lines
  gen_records.py expect FIRST COUNT   what kcat -C -f '%o\\t%k\\t%s\\n' prints for them when
                                      record i sits at offset i

Record i is the same on every run and machine: its key and value depend on i alone. The
values mix compressible text, pseudo-random characters, UTF-8, a few empty values and
keys, and every 997th value is large (20-60 KB), so that batches and codecs get work.
Keys and values never hold a tab or a newline (the delimiters).
"""
import sys

ALPHABET = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
            " .,;:=-_+*/()[]{}<>!?#&%$@'\"\\|~^")
WORDS = ["alog", "kafka", "record", "batch", "offset", "durable", "append", "segment",
         "é", "日本語", "ÿ", "—"]


def lcg(seed):
    x = (seed * 2654435761 + 12345) & 0xFFFFFFFF
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        yield x


def record(i):
    r = lcg(i + 1)
    key = "key-%05d" % i
    if i % 1000 == 500:
        key = ""  # an empty (not null) key
    n = next(r) % 8
    if i % 250 == 7:
        return key, ""  # an empty (not null) value
    parts = ["value-%05d" % i]
    for _ in range(n):
        w = WORDS[next(r) % len(WORDS)]
        parts.append(w * (1 + next(r) % 4))
    length = next(r) % 120
    if i % 997 == 3:
        length = 20000 + next(r) % 40000
    parts.append("".join(ALPHABET[next(r) % len(ALPHABET)] for _ in range(length)))
    return key, " ".join(parts)


def main():
    mode, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    out = sys.stdout
    for i in range(first, first + count):
        k, v = record(i)
        if mode == "input":
            out.write("%s\t%s\n" % (k, v))
        elif mode == "expect":
            out.write("%d\t%s\t%s\n" % (i, k, v))
        else:
            sys.exit("usage: gen_records.py input|expect FIRST COUNT")


if __name__ == "__main__":
    main()
