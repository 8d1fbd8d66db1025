#!/usr/bin/env bash
# recovery report: a log whose last segment ends in a torn batch (a crash in the middle
# of a write) or in garbage. info (read-only) shows the unfinished tail without
# changing anything; the next append cuts it, says so on stderr, and goes on at the
# right offset; the complete records before it are all there.
set -euo pipefail
. "$(dirname "$0")/common.sh"

D=$T/log
run 0 "$ALOG" append "$D" --timestamp 1000 -- one two three
run 0 "$ALOG" append "$D" --timestamp 2000 -- four five
SEG=$(seg_path "$D" 0)
size=$(stat -c %s "$SEG")
# Tear the last batch: drop its last 7 bytes.
truncate -s $((size - 7)) "$SEG"
run 0 "$ALOG" info "$D"
assert_contains "$T/out" "unfinished:" "info shows the torn tail"
assert_contains "$T/out" "from offset 3 on" "info names the first incomplete offset"
run 0 "$ALOG" info "$D" --json
python3 - "$T/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if r['next_offset'] != 3 or not r['unfinished_tail_bytes'] > 0:
    sys.exit('FAIL [test_recovery_report]: info --json %r' % r)
PY
[ "$(stat -c %s "$SEG")" = $((size - 7)) ] || fail "a read-only info changed the segment"

run 0 "$ALOG" append "$D" --timestamp 3000 -- six
assert_eq "3" "$(cat "$T/out")" "offset after recovery"
assert_contains "$T/err" "recovered" "append reports the recovery"
assert_contains "$T/err" "from offset 3" "append names the cut offset"

# Garbage after the last complete batch is cut too.
head -c 100 /dev/urandom >>"$SEG"
run 0 "$ALOG" append "$D" --timestamp 4000 -- seven
assert_eq "4" "$(cat "$T/out")" "offset after garbage"
assert_contains "$T/err" "cut 100 bytes" "append reports the garbage cut"

run 0 "$ALOG" read "$D" --format json
values=$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["value"] for l in open(sys.argv[1])))' "$T/out")
assert_eq "one two three six seven" "$values" "records after two recoveries"
run 0 "$ALOG" verify "$D"
run 0 "$ALOG" info "$D"
if grep -q "unfinished:" "$T/out"; then fail "info still shows an unfinished tail"; fi
echo "ok: $TEST_NAME"
