#!/usr/bin/env bash
# tail -f: follows records another process appends (also across segment rolls), exits
# cleanly on SIGTERM and SIGINT, and stops when its stdout is closed.
set -euo pipefail
. "$(dirname "$0")/common.sh"

D=$T/log
run 0 "$ALOG" append "$D" --timestamp 1 -- r0 r1 r2 r3

# offsets_in FILE: offsets of the json lines, space separated (ignores a partial line)
offsets_in() {
  python3 -c '
import json, sys
out = []
for l in open(sys.argv[1]):
    if l.endswith("\n"):
        out.append(str(json.loads(l)["offset"]))
print(" ".join(out))' "$1"
}

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

"$ALOG" tail -f -n 2 --format json "$D" >"$T/follow.out" 2>"$T/follow.err" &
pid=$!
PIDS+=("$pid")
wait_for_lines "$T/follow.out" 2 10 || fail "tail -f did not print the last 2 records: $(cat "$T/follow.err")"
assert_eq "2 3" "$(offsets_in "$T/follow.out")" "tail -f -n 2 initial records"

# Another process appends, in several calls, with small segments to force rolls.
for i in $(seq 4 13); do
  "$ALOG" append "$D" --segment-bytes 200 --timestamp 2 -- "r$i" >/dev/null
done
wait_for_lines "$T/follow.out" 12 10 ||
  fail "tail -f did not show the appended records within 10 s: [$(offsets_in "$T/follow.out")] $(cat "$T/follow.err")"
assert_eq "$(seq -s ' ' 2 13)" "$(offsets_in "$T/follow.out")" "records followed"
python3 - "$T/follow.out" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r['value'] != 'r%d' % r['offset']:
        sys.exit('FAIL [test_tail_follow]: offset %d has value %r' % (r['offset'], r['value']))
PY
[ "$(ls "$D" | grep -c '\.log$')" -ge 2 ] || fail "expected segment rolls during the follow"

# A batch from stdin arrives too.
seq 14 16 | sed 's/^/r/' | "$ALOG" append "$D" --segment-bytes 200 >/dev/null
wait_for_lines "$T/follow.out" 15 10 || fail "tail -f missed the stdin batch"
assert_eq "$(seq -s ' ' 2 16)" "$(offsets_in "$T/follow.out")" "records followed after stdin batch"

# It is not spinning: over 1 s idle it uses well under 0.5 s of CPU.
if [ -r "/proc/$pid/stat" ]; then
  cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
  t0=$(cpu); sleep 1; t1=$(cpu)
  hz=$(getconf CLK_TCK)
  [ $((t1 - t0)) -lt $((hz / 2)) ] || fail "tail -f is busy-polling ($((t1 - t0)) ticks in 1 s)"
fi

# SIGTERM: clean exit, status 0.
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
assert_eq 0 "$rc" "tail -f exit status after SIGTERM"

# SIGINT: clean exit too (alog installs its own handler, so the SIG_IGN bash gives
# background jobs does not matter).
"$ALOG" tail -f -n 1 "$D" >"$T/int.out" 2>"$T/int.err" &
pid=$!
PIDS+=("$pid")
wait_for_lines "$T/int.out" 1 10 || fail "tail -f (text) printed nothing"
assert_eq '16 ' "$(head -c 3 "$T/int.out")" "tail -f text output"
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
assert_eq 0 "$rc" "tail -f exit status after SIGINT"

# stdout closed: `alog tail -f | head -n 1` ends by itself, even with no new records.
rc=0
timeout 10 bash -c '"$1" tail -f -n 3 "$2" | head -n 1 >"$3"' _ "$ALOG" "$D" "$T/head.out" || rc=$?
assert_eq 0 "$rc" "tail -f | head -n 1 (124 means it never noticed the closed pipe)"
assert_eq 1 "$(wc -l <"$T/head.out")" "head output"

# a missing log is an error
run 1 "$ALOG" tail -f "$T/missing"
assert_contains "$T/err" "alog tail:" "missing log message"

echo "ok: $TEST_NAME"
