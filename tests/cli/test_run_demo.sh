#!/usr/bin/env bash
# run demo: `scripts/run.sh demo`, the CLI demo, succeeds on a new log and again on the
# same log, and what it appended reads back. (Plain scripts/run.sh, what `make run`
# starts, runs alogd: test_alogd_basic.sh covers that.)
set -euo pipefail
. "$(dirname "$0")/common.sh"

export ALOG_BIN=$ALOG ALOG_DATA=$T/nested/demo
run 0 bash "$ALOG_SRC/scripts/run.sh" demo
assert_contains "$T/out" '"value":' "demo prints JSON records"
n1=$("$ALOG" info "$ALOG_DATA" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
[ "$n1" -gt 0 ] || fail "demo appended nothing"
run 0 bash "$ALOG_SRC/scripts/run.sh" demo
n2=$("$ALOG" info "$ALOG_DATA" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
[ "$n2" = $((2 * n1)) ] || fail "second run: $n2 records, expected $((2 * n1))"
run 0 "$ALOG" verify "$ALOG_DATA"
echo "ok: $TEST_NAME"
