#!/usr/bin/env bash
# alogd under load from many clients at once (alogd_topics_client.py, phase
# concurrent): 8 producers (acks -1, 1 and 0) and 8 long-polling consumers, each on its
# own connection, so the kernel spreads them over both worker threads, on topics fsynced
# per acknowledgement (flush.messages=1: the log's fsync thread posts back to the
# workers), fsynced by interval, and stamped with LogAppendTime; meanwhile one client
# creates, produces to and deletes topics in a loop and lists them all, with the
# retention thread running every 50 ms. Afterwards every partition holds exactly the
# records acknowledged, readable in order with valid CRCs, and SIGTERM stops alogd
# cleanly. Its purpose is mostly the TSan build (label "concurrent", see
# tests/CMakeLists.txt), where a data race in alogd halts it and fails this test.
set -euo pipefail
. "$(dirname "$0")/common.sh"

ALOGD=${ALOGD:-${ALOG_BUILD:-}/src/server/alogd}
[ -x "$ALOGD" ] || fail "no alogd binary at $ALOGD (set ALOGD or ALOG_BUILD)"
command -v python3 >/dev/null || fail "python3 is needed"
CLIENT=$(dirname "$0")/alogd_topics_client.py

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

DATA=$T/data
LOG=$T/alogd.log
"$ALOGD" --listen 127.0.0.1:0 --data "$DATA" --retention-check-ms 50 2>"$LOG" &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's/^alogd: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$LOG")
  [ -n "$PORT" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
[ -n "$PORT" ] || { cat "$LOG" >&2; fail "alogd did not start"; }

python3 "$CLIENT" "$PORT" concurrent "$DATA" 8 100 || { tail -n 60 "$LOG" >&2; fail "concurrent clients"; }

kill -TERM "$SERVER_PID"
rc=0
timeout 30 tail --pid="$SERVER_PID" -f /dev/null || fail "alogd did not stop within 30 s of SIGTERM"
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
if grep -E "AddressSanitizer|runtime error|LeakSanitizer|ThreadSanitizer" "$LOG" >/dev/null; then
  cat "$LOG" >&2
  fail "sanitizer report in the server log"
fi
assert_eq 0 "$rc" "alogd exit status after SIGTERM"
for d in cc_always-0 cc_always-3 cc_interval-1 cc_lat-0; do
  "$ALOG" verify "$DATA/$d" >/dev/null || fail "alog verify $d"
done
echo "ok: $TEST_NAME"
rm -rf "$T"
