#!/usr/bin/env bash
# append -> read --format json round trip: keys, values, headers (duplicates, empty,
# null, '=' in the value), timestamps, escaping, non-UTF-8 bytes (base64 fields),
# stdin lines, every compression codec; plus the exact text and hex formats.
set -euo pipefail
. "$(dirname "$0")/common.sh"

D=$T/log

# 1. One call, several VALUEs: one batch, offsets 0..6 printed one per line.
# Values: plain, empty, quotes/backslash, newline/tab/CR, UTF-8 (2-, 3- and 4-byte
# sequences), control characters and DEL, a JSON-looking string.
run 0 "$ALOG" append "$D" --key 'k"ey\1' \
  --header a=1 --header a=2 --header 'e=' --header 'eq=x=y=z' --header nullhdr \
  --header $'uni=\xc3\xbc\xe2\x9c\x93' \
  --timestamp 1700000000123 -- \
  plain '' 'say "hi" \ back\\slash' $'l1\nl2\tt\rr' $'\xc3\xbcn\xc3\xafc\xc3\xb8d\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80' \
  $'\x01\x02\x1f\x7f|\x08\x0c' '{"not":"json"}'
assert_eq "$(printf '%s\n' 0 1 2 3 4 5 6)" "$(cat "$T/out")" "offsets of the first append"

# 2. No --key (null key), non-UTF-8 key and header value, timestamp 0.
run 0 "$ALOG" append "$D" --timestamp 0 -- nokey
assert_eq 7 "$(cat "$T/out")" "offset of the null-key record"
run 0 "$ALOG" append "$D" --key $'\xff\xfekey' --header $'bin=\xc3\x28' --timestamp 5 -- $'bad\xe0\x80\x80overlong'
assert_eq 8 "$(cat "$T/out")" "offset of the non-UTF-8 record"
# A UTF-16 surrogate encoded as UTF-8 (ED A0 80) is not valid UTF-8 either.
run 0 "$ALOG" append "$D" --timestamp 6 -- $'\xed\xa0\x80'
assert_eq 9 "$(cat "$T/out")" "offset of the surrogate record"

# 3. stdin: one record per line; only the trailing newline is stripped (CR stays), an
# empty line is an empty value, a last line without newline still counts, bytes that
# are not UTF-8 pass through.
printf 'first\n\nwith space  \ncrlf\r\n\xff\xfe\x00nul\nlast-no-newline' >"$T/stdin"
run 0 "$ALOG" append "$D" --key sk --header src=stdin --timestamp 2024-01-15T09:00:00Z <"$T/stdin"
assert_eq "$(printf '%s\n' 10 11 12 13 14 15)" "$(cat "$T/out")" "offsets of the stdin append"

run 0 "$ALOG" read "$D" --format json
cp "$T/out" "$T/read.json"

python3 - "$T/read.json" <<'PY'
import base64, json, sys
lines = open(sys.argv[1], 'rb').read().split(b'\n')
assert lines[-1] == b'', 'output must end with a newline'
recs = [json.loads(l.decode('utf-8')) for l in lines[:-1]]

def fail(msg):
    sys.exit('FAIL [test_roundtrip]: ' + msg)

def b(rec, name):
    """The bytes of field name (name or name_base64), or None for null."""
    if name + '_base64' in rec:
        if name in rec:
            fail('both %s and %s_base64 in %r' % (name, name, rec))
        return base64.b64decode(rec[name + '_base64'], validate=True)
    if name not in rec:
        fail('%s missing in %r' % (name, rec))
    v = rec[name]
    return None if v is None else v.encode('utf-8')

first_headers = [(b'a', b'1'), (b'a', b'2'), (b'e', b''), (b'eq', b'x=y=z'),
                 (b'nullhdr', None), (b'uni', '\u00fc\u2713'.encode())]
vals = [b'plain', b'', b'say "hi" \\ back\\\\slash', b'l1\nl2\tt\rr',
        '\u00fcn\u00efc\u00f8d\u00e9 \u2713 \U0001F600'.encode(),
        b'\x01\x02\x1f\x7f|\x08\x0c', b'{"not":"json"}']
expect = []
for i, v in enumerate(vals):
    expect.append((i, 1700000000123, b'k"ey\\1', v, first_headers))
expect.append((7, 0, None, b'nokey', []))
expect.append((8, 5, b'\xff\xfekey', b'bad\xe0\x80\x80overlong', [(b'bin', b'\xc3\x28')]))
expect.append((9, 6, None, b'\xed\xa0\x80', []))
for i, v in enumerate([b'first', b'', b'with space  ', b'crlf\r', b'\xff\xfe\x00nul',
                       b'last-no-newline']):
    expect.append((10 + i, 1705309200000, b'sk', v, [(b'src', b'stdin')]))

if len(recs) != len(expect):
    fail('expected %d records, got %d' % (len(expect), len(recs)))
for rec, (off, ts, key, val, hdrs) in zip(recs, expect):
    if rec.get('offset') != off: fail('offset: %r' % rec)
    if rec.get('timestamp') != ts: fail('timestamp of %d: %r' % (off, rec))
    if type(rec['offset']) is not int or type(rec['timestamp']) is not int:
        fail('offset/timestamp must be JSON integers: %r' % rec)
    if b(rec, 'key') != key: fail('key of %d: %r != %r' % (off, b(rec, 'key'), key))
    if b(rec, 'value') != val: fail('value of %d: %r != %r' % (off, b(rec, 'value'), val))
    got = [(b(h, 'key'), b(h, 'value')) for h in rec['headers']]
    if got != hdrs: fail('headers of %d: %r != %r' % (off, got, hdrs))
    # valid UTF-8 must come as text, not base64
    if val is not None:
        try:
            val.decode('utf-8')
            if 'value' not in rec: fail('valid UTF-8 value of %d sent as base64' % off)
        except UnicodeDecodeError:
            if 'value_base64' not in rec: fail('invalid UTF-8 value of %d not base64' % off)
# exact escaping of one line: control characters, quotes, backslash
want = (b'{"offset":5,"timestamp":1700000000123,"key":"k\\"ey\\\\1",'
        b'"value":"\\u0001\\u0002\\u001f\\u007f|\\b\\f","headers":[')
if not lines[5].startswith(want):
    fail('line 5 is %r, expected it to start with %r' % (lines[5], want))
if b'"key":null' not in lines[7] or b'"headers":[]' not in lines[7]:
    fail('null key / empty headers not as expected: %r' % lines[7])
if b'{"key":"nullhdr","value":null}' not in lines[0]:
    fail('null header value not as expected: %r' % lines[0])
PY

# 4. Exact text and hex formats.
D2=$T/fmt
run 0 "$ALOG" append "$D2" --key k --header h=x --timestamp 1000 -- v $'a"b\\c\n\xff'
run 0 "$ALOG" read "$D2"
assert_eq '0 1970-01-01T00:00:01.000Z "k" "v" ["h"="x"]
1 1970-01-01T00:00:01.000Z "k" "a\"b\\c\n\xff" ["h"="x"]' "$(cat "$T/out")" "text format"
run 0 "$ALOG" read "$D2" --format hex --count 1
assert_eq 'offset 0  timestamp 1970-01-01T00:00:01.000Z (1000)
  key: 1 bytes
    00000000  6b                                                |k|
  value: 1 bytes
    00000000  76                                                |v|
  header "h": 1 bytes
    00000000  78                                                |x|' "$(cat "$T/out")" "hex format"

# 5. Every codec round-trips, and dump reports it.
for codec in none gzip snappy lz4 zstd; do
  DC=$T/codec-$codec
  run 0 "$ALOG" append "$DC" --compression "$codec" --key "k-$codec" --timestamp 42 -- \
    "$(head -c 3000 /dev/zero | tr '\0' 'a')" second $'third\nline'
  assert_eq "$(printf '%s\n' 0 1 2)" "$(cat "$T/out")" "offsets with $codec"
  run 0 "$ALOG" read "$DC" --format json
  python3 - "$T/out" "$codec" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8')]
codec = sys.argv[2]
vals = [r['value'] for r in recs]
if vals != ['a' * 3000, 'second', 'third\nline']:
    sys.exit('FAIL [test_roundtrip]: %s: values %r' % (codec, [v[:20] for v in vals]))
if [r['key'] for r in recs] != ['k-' + codec] * 3 or [r['timestamp'] for r in recs] != [42] * 3:
    sys.exit('FAIL [test_roundtrip]: %s: keys/timestamps %r' % (codec, recs))
PY
  run 0 "$ALOG" dump "$(seg_path "$DC" 0)" --json
  python3 - "$T/out" "$codec" <<'PY'
import json, sys
b = [json.loads(l) for l in open(sys.argv[1])]
if len(b) != 1 or b[0]['codec'] != sys.argv[2] or b[0]['count'] != 3:
    sys.exit('FAIL [test_roundtrip]: dump of %s log: %r' % (sys.argv[2], b))
PY
done

# 6. More than one stdin batch (1000 lines per batch): offsets stay contiguous.
seq 1 2500 | "$ALOG" append "$T/many" --timestamp 7 >"$T/offs"
assert_eq "$(seq 0 2499)" "$(cat "$T/offs")" "offsets of 2500 stdin lines"
run 0 "$ALOG" read "$T/many" --format json
python3 - "$T/out" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
if [r['value'] for r in recs] != [str(i) for i in range(1, 2501)]:
    sys.exit('FAIL [test_roundtrip]: 2500 stdin lines did not read back in order')
PY
run 0 "$ALOG" dump "$(seg_path "$T/many" 0)" --json
python3 - "$T/out" <<'PY'
import json, sys
counts = [json.loads(l)['count'] for l in open(sys.argv[1])]
if sum(counts) != 2500 or len(counts) < 3 or max(counts) > 1000:
    sys.exit('FAIL [test_roundtrip]: stdin batches have counts %r' % counts)
PY

# 7. Empty stdin appends nothing and succeeds.
run 0 "$ALOG" append "$T/empty" </dev/null
assert_eq "" "$(cat "$T/out")" "offsets for empty stdin"

echo "ok: $TEST_NAME"
