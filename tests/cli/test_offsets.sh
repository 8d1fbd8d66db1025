#!/usr/bin/env bash
# read --from-offset / --count, out-of-range offsets, tail -n, and reads from a log whose
# oldest segments retention has deleted (first offset > 0).
set -euo pipefail
. "$(dirname "$0")/common.sh"

D=$T/log
seq 0 19 | sed 's/^/r/' >"$T/in"
run 0 "$ALOG" append "$D" --timestamp 100 <"$T/in"
assert_eq "$(seq 0 19)" "$(cat "$T/out")" "offsets"

# values_of FILE: the values of json lines, space separated
values_of() {
  python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
for i, r in enumerate(recs):
    assert r["value"] == "r%d" % r["offset"], r
print(" ".join(str(r["offset"]) for r in recs))' "$1"
}

run 0 "$ALOG" read "$D" --format json
assert_eq "$(seq -s ' ' 0 19)" "$(values_of "$T/out")" "read all"
run 0 "$ALOG" read "$D" --from-offset 5 --count 3 --format json
assert_eq "5 6 7" "$(values_of "$T/out")" "--from-offset 5 --count 3"
run 0 "$ALOG" read "$D" --from-offset 17 --count 10 --format json
assert_eq "17 18 19" "$(values_of "$T/out")" "--count past the end"
run 0 "$ALOG" read "$D" --from-offset 19 --format json
assert_eq "19" "$(values_of "$T/out")" "last record"
run 0 "$ALOG" read "$D" --count 0
assert_eq "" "$(cat "$T/out")" "--count 0"
run 0 "$ALOG" read "$D" --count 2 --format json
assert_eq "0 1" "$(values_of "$T/out")" "--count 2 from the start"
# from the next offset: nothing, and that is fine
run 0 "$ALOG" read "$D" --from-offset 20
assert_eq "" "$(cat "$T/out")" "reading from the next offset"
# below the first offset, or past the next one: an error, exit 1, message on stderr
run 1 "$ALOG" read "$D" --from-offset -1
assert_contains "$T/err" "alog read:" "error for offset -1"
[ ! -s "$T/out" ] || fail "nothing may be printed for offset -1"
run 1 "$ALOG" read "$D" --from-offset 21
assert_contains "$T/err" "alog read:" "error for offset 21"
# bad numbers are usage errors
for bad in abc 5x "" 1e3 99999999999999999999 " 5"; do
  run 2 "$ALOG" read "$D" --from-offset "$bad"
done
for bad in -1 x 99999999999999999999; do
  run 2 "$ALOG" read "$D" --count "$bad"
done
run 2 "$ALOG" read "$D" --from-offset 1 --from-time 1
# a log that does not exist is an error (read-only: it is not created)
run 1 "$ALOG" read "$T/nope"
assert_contains "$T/err" "alog read:" "error for a missing log"
[ ! -e "$T/nope" ] || fail "read must not create a log"

# tail -n
run 0 "$ALOG" tail "$D" --format json
assert_eq "$(seq -s ' ' 10 19)" "$(values_of "$T/out")" "tail (default 10)"
run 0 "$ALOG" tail -n 3 "$D" --format json
assert_eq "17 18 19" "$(values_of "$T/out")" "tail -n 3"
run 0 "$ALOG" tail -n 100 "$D" --format json
assert_eq "$(seq -s ' ' 0 19)" "$(values_of "$T/out")" "tail -n 100"
run 0 "$ALOG" tail -n 0 "$D"
assert_eq "" "$(cat "$T/out")" "tail -n 0"
run 2 "$ALOG" tail -n -3 "$D"

# Retention: tiny segments, keep at most ~2 KB; the oldest segments go and the first
# offset moves up. Reading below it is an error; from it works.
R=$T/ret
for i in $(seq 0 29); do
  run 0 "$ALOG" append "$R" --segment-bytes 300 --retention-bytes 2000 --timestamp 1 -- \
    "$(printf 'value-%03d-%0100d' "$i" 0)"
  assert_eq "$i" "$(cat "$T/out")" "offset of retained append $i"
done
run 0 "$ALOG" info "$R" --json
first=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["first_offset"])' "$T/out")
next=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["next_offset"])' "$T/out")
assert_eq 30 "$next" "next offset after retention"
[ "$first" -gt 0 ] || fail "retention deleted nothing (first offset $first)"
[ ! -e "$(seg_path "$R" 0)" ] || fail "segment 0 still on disk after retention"
run 1 "$ALOG" read "$R" --from-offset 0
assert_contains "$T/err" "alog read:" "error below the first offset"
run 1 "$ALOG" read "$R" --from-offset $((first - 1))
run 0 "$ALOG" read "$R" --format json
python3 - "$T/out" "$first" <<'PY'
import json, sys
first = int(sys.argv[2])
recs = [json.loads(l) for l in open(sys.argv[1])]
offs = [r['offset'] for r in recs]
if offs != list(range(first, 30)):
    sys.exit('FAIL [test_offsets]: after retention read gave offsets %r' % offs)
for r in recs:
    if not r['value'].startswith('value-%03d-' % r['offset']):
        sys.exit('FAIL [test_offsets]: wrong value at %d' % r['offset'])
PY
run 0 "$ALOG" tail -n 3 "$R" --format json
assert_eq "27 28 29" "$(python3 -c '
import json,sys; print(" ".join(str(json.loads(l)["offset"]) for l in open(sys.argv[1])))' "$T/out")" \
  "tail after retention"

echo "ok: $TEST_NAME"
