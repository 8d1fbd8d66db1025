#!/usr/bin/env bash
# TIME parsing (milliseconds and ISO 8601) for append --timestamp and read --from-time,
# and that --from-time lands on the right offset.
set -euo pipefail
. "$(dirname "$0")/common.sh"

D=$T/log
# offsets 0..4 with timestamps 1000..5000, one append (one batch) each, then 5..7 in one
# batch with 6000, 6000, 7000.
for i in 1 2 3 4 5; do
  run 0 "$ALOG" append "$D" --timestamp "${i}000" -- "v$i"
  assert_eq "$((i - 1))" "$(cat "$T/out")" "offset of v$i"
done
run 0 "$ALOG" append "$D" --timestamp 6000 -- v6 v7
run 0 "$ALOG" append "$D" --timestamp 1970-01-01T00:00:07Z -- v8

# first_offset_for TIME: offset of the first record read --from-time TIME prints
first_offset_for() {
  run 0 "$ALOG" read "$D" --from-time "$1" --count 1 --format json
  if [ ! -s "$T/out" ]; then echo none; return; fi
  python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["offset"])' <"$T/out"
}
assert_eq 0 "$(first_offset_for 0)" "--from-time 0"
assert_eq 0 "$(first_offset_for 1000)" "--from-time 1000"
assert_eq 1 "$(first_offset_for 1001)" "--from-time 1001"
assert_eq 1 "$(first_offset_for 2000)" "--from-time 2000"
assert_eq 2 "$(first_offset_for 2500)" "--from-time 2500"
assert_eq 4 "$(first_offset_for 5000)" "--from-time 5000"
assert_eq 5 "$(first_offset_for 5999)" "--from-time 5999"
assert_eq 7 "$(first_offset_for 7000)" "--from-time 7000"
assert_eq none "$(first_offset_for 7001)" "--from-time after the last record"
# ISO 8601 forms
assert_eq 1 "$(first_offset_for 1970-01-01T00:00:02Z)" "ISO 1970-01-01T00:00:02Z"
assert_eq 2 "$(first_offset_for 1970-01-01T00:00:02.5Z)" "ISO with fraction .5"
assert_eq 2 "$(first_offset_for 1970-01-01T00:00:02.001Z)" "ISO with fraction .001"
assert_eq 1 "$(first_offset_for 1970-01-01T00:00:01.999999Z)" "ISO with fraction .999999"
assert_eq 1 "$(first_offset_for 1970-01-01T01:00:02+01:00)" "ISO with +01:00"
assert_eq 2 "$(first_offset_for 1969-12-31T19:00:03-0500)" "ISO with -0500"
assert_eq 0 "$(first_offset_for 1970-01-01)" "date only"

# --from-time prints everything from there on, in order
run 0 "$ALOG" read "$D" --from-time 2500 --format json
python3 - "$T/out" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
got = [(r['offset'], r['timestamp'], r['value']) for r in recs]
want = [(2, 3000, 'v3'), (3, 4000, 'v4'), (4, 5000, 'v5'), (5, 6000, 'v6'), (6, 6000, 'v7'),
        (7, 7000, 'v8')]
if got != want:
    sys.exit('FAIL [test_time]: --from-time 2500 gave %r' % got)
PY

# --timestamp: stored exactly as parsed.
# TIME -> expected milliseconds
cases=(
  "0 0"
  "1705309200000 1705309200000"
  "2024-01-15T09:00:00Z 1705309200000"
  "2024-01-15T09:00:00.123Z 1705309200123"
  "2024-01-15T09:00:00.1Z 1705309200100"
  "2024-01-15T09:00:00.123456789Z 1705309200123"
  "2024-01-15T09:00:00+01:00 1705305600000"
  "2024-01-15T09:00:00-0500 1705327200000"
  "2024-01-15T09:00:00.250-05:30 1705329000250"
  "2024-01-15T09:00Z 1705309200000"
  "2024-01-15t09:00:00z 1705309200000"
  "2024-01-15 1705276800000"
  "2024-02-29 1709164800000"
  "2000-03-01T00:00:00Z 951868800000"
  "1970-01-01T00:00:00Z 0"
  "2038-01-19T03:14:08Z 2147483648000"
  "9999-12-31T23:59:59.999Z 253402300799999"
)
DT=$T/ts
n=0
for c in "${cases[@]}"; do
  set -- $c
  run 0 "$ALOG" append "$DT" --timestamp "$1" -- "case $n"
  assert_eq "$n" "$(cat "$T/out")" "offset for --timestamp $1"
  n=$((n + 1))
done
run 0 "$ALOG" read "$DT" --format json
n=0
while IFS= read -r line; do
  set -- ${cases[$n]}
  got=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["timestamp"])' "$line")
  assert_eq "$2" "$got" "stored timestamp of --timestamp $1"
  n=$((n + 1))
done <"$T/out"
assert_eq "${#cases[@]}" "$n" "records read back"

# the text format shows timestamps in ISO 8601 UTC
run 0 "$ALOG" read "$DT" --from-offset 3 --count 1
assert_eq '3 2024-01-15T09:00:00.123Z null "case 3"' "$(cat "$T/out")" "text timestamp"

# Anything else is rejected as a usage error (exit 2) with a message naming the input.
for bad in "" "yesterday" "12abc" "-5" "1.5" "2024-13-01" "2024-00-10" "2024-02-30" "2023-02-29" \
  "2024-01-15T09:00:00" "2024-01-15T24:00:00Z" "2024-01-15T09:60:00Z" "2024-01-15T09:00:61Z" \
  "2024-01-15T09:00:00+25:00" "2024-01-15T09:00:00.Z" "2024-1-5" "2024-01-15T9:00:00Z" \
  "2024-01-15T09:00:00Zjunk" "2024-01-15 09:00:00Z" "99999999999999999999" " 1000"; do
  run 2 "$ALOG" append "$T/bad" --timestamp "$bad" -- x
  assert_contains "$T/err" "alog append:" "message for --timestamp '$bad'"
  if [ -n "$bad" ]; then assert_contains "$T/err" "$bad" "message names '$bad'"; fi
  run 2 "$ALOG" read "$D" --from-time "$bad"
  assert_contains "$T/err" "alog read:" "message for --from-time '$bad'"
done
[ ! -e "$T/bad" ] || fail "a rejected --timestamp must not create the log"
# the message for a missing zone says so
run 2 "$ALOG" read "$D" --from-time 2024-01-15T09:00:00
assert_contains "$T/err" "time zone" "missing-zone message"

echo "ok: $TEST_NAME"
