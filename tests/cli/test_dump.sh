#!/usr/bin/env bash
# dump: one line per batch with the right positions, offsets, counts, lengths, codecs
# and timestamps.
set -euo pipefail
. "$(dirname "$0")/common.sh"

D=$T/log
run 0 "$ALOG" append "$D" --timestamp 1000 -- a b c
run 0 "$ALOG" append "$D" --timestamp 2000 --key k -- single
run 0 "$ALOG" append "$D" --timestamp 3000 --compression zstd -- x y
seq 1 5 | "$ALOG" append "$D" --timestamp 4000 --compression gzip >/dev/null
SEG=$(seg_path "$D" 0)

run 0 "$ALOG" dump "$SEG"
assert_eq 4 "$(wc -l <"$T/out")" "dump line count"
assert_eq 4 "$(grep -c '^position: ' "$T/out")" "dump lines"
head -1 "$T/out" | grep -q '^position: 0 baseOffset: 0 lastOffset: 2 count: 3 ' ||
  fail "first dump line: $(head -1 "$T/out")"
sed -n 3p "$T/out" | grep -q 'codec: zstd' || fail "third batch codec: $(sed -n 3p "$T/out")"

run 0 "$ALOG" dump "$SEG" --json
python3 - "$T/out" "$SEG" <<'PY'
import json, os, struct, sys
bs = [json.loads(l) for l in open(sys.argv[1])]
data = open(sys.argv[2], 'rb').read()
def fail(m): sys.exit('FAIL [test_dump]: %s\n%r' % (m, bs))
want = [(0, 2, 3, 'none', 1000), (3, 3, 1, 'none', 2000), (4, 5, 2, 'zstd', 3000),
        (6, 10, 5, 'gzip', 4000)]
if len(bs) != 4: fail('batch count')
pos = 0
for b, (base, last, count, codec, ts) in zip(bs, want):
    if (b['base_offset'], b['last_offset'], b['count'], b['codec']) != (base, last, count, codec):
        fail('batch at %d' % base)
    if b['base_timestamp'] != ts or b['max_timestamp'] != ts: fail('timestamps at %d' % base)
    if b['magic'] != 2: fail('magic')
    if b['position'] != pos: fail('position of batch %d: %d != %d' % (base, b['position'], pos))
    # the header fields as they are in the file (Kafka RecordBatch v2, big-endian)
    off, length, epoch, magic, crc = struct.unpack_from('>qiibI', data, pos)
    if (off, length, crc) != (b['base_offset'], b['length'], b['crc']):
        fail('header of batch %d differs from the file' % base)
    if b['producer_id'] != -1 or b['producer_epoch'] != -1 or b['base_sequence'] != -1:
        fail('producer fields of batch %d' % base)
    pos += 12 + b['length']
if pos != len(data): fail('batches do not cover the file: %d of %d bytes' % (pos, len(data)))
PY

# a file that does not exist
run 1 "$ALOG" dump "$T/nope.log"
assert_contains "$T/err" "alog dump:" "missing file message"
# a truncated file: the first batches are printed, then the error
head -c $(($(stat -c %s "$SEG") - 5)) "$SEG" >"$T/trunc.log"
run 1 "$ALOG" dump "$T/trunc.log"
assert_eq 3 "$(grep -c '^position: ' "$T/out")" "valid batches of a truncated file"
assert_contains "$T/err" "alog dump:" "truncated file message"

echo "ok: $TEST_NAME"
