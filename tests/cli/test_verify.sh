#!/usr/bin/env bash
# verify: a good log passes (exit 0, right counts, no progress bar when piped); a byte
# flipped in the middle of a sealed segment is found (exit 1, the file named).
set -euo pipefail
. "$(dirname "$0")/common.sh"

D=$T/log
for i in $(seq 1 10); do
  run 0 "$ALOG" append "$D" --segment-bytes 1500 --timestamp "$i" -- \
    "$(printf 'a%0150d' "$i")" "$(printf 'b%0150d' "$i")"
done

run 0 "$ALOG" verify "$D"
assert_eq "$D: OK: $(python3 - "$D" <<'PY'
import os, sys
d = sys.argv[1]
logs = [f for f in os.listdir(d) if f.endswith('.log')]
size = sum(os.path.getsize(os.path.join(d, f)) for f in logs)
print('%d segments, 10 batches, 20 records, %d bytes' % (len(logs), size))
PY
)" "$(cat "$T/out")" "verify summary"
[ ! -s "$T/err" ] || fail "verify wrote to a piped stderr: $(cat "$T/err")"

run 0 "$ALOG" verify "$D" --json
python3 - "$T/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if not (r['ok'] is True and r['error'] is None and r['batches'] == 10 and r['records'] == 20
        and r['segments'] >= 2):
    sys.exit('FAIL [test_verify]: good log report %r' % r)
PY
run 0 "$ALOG" verify "$D" --quiet
[ ! -s "$T/out" ] && [ ! -s "$T/err" ] || fail "verify --quiet printed something on a good log"

# Several segments, the first sealed: flip a byte in the middle of it.
nseg=$(ls "$D" | grep -c '\.log$')
[ "$nseg" -ge 2 ] || fail "expected at least 2 segments, got $nseg"
SEG=$(seg_path "$D" 0)
size=$(stat -c %s "$SEG")
pos=$((size / 2))
python3 - "$SEG" "$pos" <<'PY'
import sys
path, pos = sys.argv[1], int(sys.argv[2])
with open(path, 'r+b') as f:
    f.seek(pos)
    b = f.read(1)
    f.seek(pos)
    f.write(bytes([b[0] ^ 0xff]))
PY

run 1 "$ALOG" verify "$D"
assert_contains "$T/out" "00000000000000000000.log" "damage report names the segment"
assert_contains "$T/out" "at byte position" "damage report gives the position"
[ "$(grep -o 'at byte position' "$T/out" | wc -l)" = 1 ] ||
  fail "the position is given more than once: $(cat "$T/out")"
run 1 "$ALOG" verify "$D" --json
python3 - "$T/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
e = r.get('error')
if r['ok'] is not False or not e or not e['file'].endswith('00000000000000000000.log'):
    sys.exit('FAIL [test_verify]: damaged log report %r' % r)
if not isinstance(e['position'], int) or not e['message']:
    sys.exit('FAIL [test_verify]: damaged log report %r' % r)
PY
run 1 "$ALOG" verify "$D" --quiet
[ ! -s "$T/out" ] || fail "verify --quiet printed on stdout"
assert_contains "$T/err" "00000000000000000000.log" "quiet damage message on stderr"

# dump of the damaged segment: the valid batches, then the error, exit 1
run 1 "$ALOG" dump "$SEG"
assert_contains "$T/err" "alog dump:" "dump error message"
nvalid=$(grep -c '^position: ' "$T/out" || true)
[ "$nvalid" -ge 1 ] || fail "dump printed no valid batch before the damage"

# a missing log is an error, not damage
run 1 "$ALOG" verify "$T/missing"
assert_contains "$T/err" "alog verify:" "missing log message"

echo "ok: $TEST_NAME"
