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

. "$(dirname "$0")/alogd_common.sh"
CLIENT=$(dirname "$0")/alogd_topics_client.py

DATA=$T/data
LOG=$T/alogd.log
start_server "$LOG" --data "$DATA" --retention-check-ms 50

python3 "$CLIENT" "$PORT" concurrent "$DATA" 8 100 || { tail -n 60 "$LOG" >&2; fail "concurrent clients"; }

stop_server 30
if grep -E "AddressSanitizer|runtime error|LeakSanitizer|ThreadSanitizer" "$LOG" >/dev/null; then
  cat "$LOG" >&2
  fail "sanitizer report in the server log"
fi
for d in cc_always-0 cc_always-3 cc_interval-1 cc_lat-0; do
  "$ALOG" verify "$DATA/$d" >/dev/null || fail "alog verify $d"
done
echo "ok: $TEST_NAME"
rm -rf "$T"
