#!/usr/bin/env bash
# What an untrusted peer can make alogd hold, driven by alogd_limits_client.py:
#   - --max-partitions: topics are created (CreateTopics, validate_only too, and
#     auto-creation by Metadata) only while every topic's partitions together stay
#     within it; past it POLICY_VIOLATION with a message, and nothing is created (each
#     partition holds a thread and descriptors: one Metadata naming thousands of
#     topics used to exhaust the process's descriptors). Deleting a topic frees its
#     share.
#   - a topic named many times in a Metadata is answered once (as Kafka: a 120 KB
#     request used to get a 520 MB response), and CreateTopics finds repeated names
#     among tens of thousands without comparing every pair (80,000 names took 19 s
#     of a worker before);
#   - a connection pipelining large long polls is not read past 64 MiB of requests
#     in flight (each is kept, with its decoded form, until answered);
#   - parked Fetches answered together on a connection that reads nothing queue at
#     most the 64 MiB back-pressure bound of unsent output, not each its own
#     --max-request-bytes of copied records.
# Also --help and a bad --max-partitions.
set -euo pipefail
. "$(dirname "$0")/common.sh"

. "$(dirname "$0")/alogd_common.sh"
CLIENT=$(dirname "$0")/alogd_limits_client.py

# --- usage ------------------------------------------------------------------------
run 0 "$ALOGD" --help
assert_contains "$T/out" "--max-partitions N" "--help lists --max-partitions"
run 2 "$ALOGD" --max-partitions lots
assert_contains "$T/err" "max-partitions must be 0..10000000, not 'lots'" "bad --max-partitions"

# --- --max-partitions -------------------------------------------------------------
LOG=$T/partitions.log
: >"$LOG"
start_server "$LOG" --data "$T/data1" --max-partitions 10
python3 "$CLIENT" "$PORT" partitions "$LOG" || { cat "$LOG" >&2; fail "partitions phase"; }
stop_server
# The topics created are there at the next start (the limit does not refuse them).
: >"$LOG"
start_server "$LOG" --data "$T/data1" --max-partitions 4
stop_server
assert_contains "$LOG" "stopped; every log closed cleanly" "restart over the limit"

# --- repeated names; Fetch responses within the connection's output bound --------
LOG2=$T/fetchroom.log
: >"$LOG2"
start_server "$LOG2" --data "$T/data2"
python3 "$CLIENT" "$PORT" repeats || { tail -n 50 "$LOG2" >&2; fail "repeats phase"; }
python3 "$CLIENT" "$PORT" fetchroom || { tail -n 50 "$LOG2" >&2; fail "fetchroom phase"; }
python3 "$CLIENT" "$PORT" reqbytes "$SERVER_PID" || { tail -n 50 "$LOG2" >&2; fail "reqbytes phase"; }
stop_server

if grep -E "AddressSanitizer|runtime error|LeakSanitizer|ThreadSanitizer" "$LOG" "$LOG2" >/dev/null; then
  cat "$LOG" "$LOG2" >&2
  fail "sanitizer report in a server log"
fi
echo "ok: $TEST_NAME"
rm -rf "$T"
