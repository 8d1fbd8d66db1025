#!/usr/bin/env bash
# info and info --json: offsets, counts, segments (small --segment-bytes forces several),
# sizes matching the files on disk, time ranges, the active flag.
set -euo pipefail
. "$(dirname "$0")/common.sh"

D=$T/log
# 12 appends of 3 records each, ~100-byte values, timestamps 1000*i .. 1000*i+2 (one
# batch per call, timestamps given per call so each call uses one).
for i in $(seq 1 12); do
  v=$(printf 'payload-%02d-%090d' "$i" 0)
  run 0 "$ALOG" append "$D" --segment-bytes 1000 --timestamp "$((i * 1000))" -- "$v-a" "$v-b" "$v-c"
  assert_eq "$(seq $(((i - 1) * 3)) $((i * 3 - 1)))" "$(cat "$T/out")" "offsets of call $i"
done

run 0 "$ALOG" info "$D" --json
python3 - "$T/out" "$D" <<'PY'
import json, os, sys
info = json.load(open(sys.argv[1]))
d = sys.argv[2]
def fail(m): sys.exit('FAIL [test_info]: %s\n%s' % (m, json.dumps(info, indent=1)))
if info['first_offset'] != 0: fail('first_offset')
if info['next_offset'] != 36: fail('next_offset')
if info['records'] != 36: fail('records')
segs = info['segments']
if info['segment_count'] != len(segs): fail('segment_count')
if len(segs) < 3: fail('expected several segments with --segment-bytes 1000, got %d' % len(segs))
if segs[0]['base_offset'] != 0: fail('first segment base')
if segs[-1]['next_offset'] != 36: fail('last segment next')
for a, b in zip(segs, segs[1:]):
    if a['next_offset'] != b['base_offset']: fail('segments not contiguous')
for s in segs:
    if s['base_offset'] % 3: fail('a segment starts inside a batch')
    if s['records'] != s['next_offset'] - s['base_offset']: fail('segment records')
    if s['file'] != '%020d.log' % s['base_offset']: fail('segment file name')
    path = os.path.join(d, s['file'])
    if not os.path.exists(path): fail('%s does not exist' % path)
    if os.path.getsize(path) != s['size_bytes']: fail('size of %s' % s['file'])
    if s['size_bytes'] > 1000 and s['records'] > 3: fail('segment past --segment-bytes')
    # timestamps: each call i (offsets 3(i-1)..) has timestamp 1000*i
    lo = s['base_offset'] // 3 + 1
    hi = (s['next_offset'] - 1) // 3 + 1
    if (s['min_timestamp'], s['max_timestamp']) != (lo * 1000, hi * 1000):
        fail('time range of %s' % s['file'])
actives = [s['active'] for s in segs]
if actives != [False] * (len(segs) - 1) + [True]: fail('active flags %r' % actives)
if info['total_bytes'] != sum(s['size_bytes'] for s in segs): fail('total_bytes')
on_disk = sorted(f for f in os.listdir(d) if f.endswith('.log'))
if on_disk != [s['file'] for s in segs]: fail('segment files on disk: %r' % on_disk)
if (info['min_timestamp'], info['max_timestamp']) != (1000, 12000): fail('time range')
PY

# the text form has the same numbers
run 0 "$ALOG" info "$D"
assert_contains "$T/out" "first offset:  0" "text first offset"
assert_contains "$T/out" "next offset:   36" "text next offset"
assert_contains "$T/out" "records:       36" "text records"
assert_contains "$T/out" "00000000000000000000.log" "text segment list"
assert_contains "$T/out" "1970-01-01T00:00:01.000Z .. 1970-01-01T00:00:12.000Z" "text time range"

# an empty log
run 0 "$ALOG" append "$T/empty" </dev/null
run 0 "$ALOG" info "$T/empty" --json
python3 - "$T/out" <<'PY'
import json, sys
i = json.load(open(sys.argv[1]))
if (i['first_offset'], i['next_offset'], i['records']) != (0, 0, 0) or i['min_timestamp'] is not None:
    sys.exit('FAIL [test_info]: empty log: %r' % i)
PY
# a missing log
run 1 "$ALOG" info "$T/missing"
assert_contains "$T/err" "alog info:" "missing log message"
[ ! -e "$T/missing" ] || fail "info must not create a log"

echo "ok: $TEST_NAME"
