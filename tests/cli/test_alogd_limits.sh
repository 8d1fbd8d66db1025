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
#     --max-request-bytes of copied records;
#   - --max-queued-request-bytes bounds the requests in flight of every connection
#     together: 8 connections pipelining 256 MB of long polls (each within its own
#     64 MiB) make alogd read about the budget, not all of it (and hold twice that:
#     20 connections held 1.7 GB); a connection with nothing in flight is still
#     served, and connections held back are read again when others' requests end
#     (on either worker);
#   - the default limits fit a common open files limit: no warning at start.
# Also --help and bad --max-partitions and --max-queued-request-bytes.
set -euo pipefail
. "$(dirname "$0")/common.sh"

. "$(dirname "$0")/alogd_common.sh"
CLIENT=$(dirname "$0")/alogd_limits_client.py

# --- usage ------------------------------------------------------------------------
run 0 "$ALOGD" --help
assert_contains "$T/out" "--max-partitions N" "--help lists --max-partitions"
assert_contains "$T/out" "--max-queued-request-bytes N" "--help lists --max-queued-request-bytes"
run 2 "$ALOGD" --max-partitions lots
assert_contains "$T/err" "max-partitions must be 0..10000000, not 'lots'" "bad --max-partitions"
run 2 "$ALOGD" --max-queued-request-bytes 1T
assert_contains "$T/err" "max-queued-request-bytes must be a byte count, not '1T'" \
  "bad --max-queued-request-bytes"

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
# The default limits need 18064 descriptors (4 a partition, 1 a connection, 64):
# under a hard limit that holds them (alogd raises its soft limit to it), no warning.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 18064 ]; then
  if grep -q "open files limit" "$LOG2"; then
    cat "$LOG2" >&2
    fail "a warning about ulimit -n ($hard) with the default limits"
  fi
fi

# --- --max-queued-request-bytes -------------------------------------------------------
LOG3=$T/budget.log
: >"$LOG3"
start_server "$LOG3" --data "$T/data3" --max-queued-request-bytes 16M
python3 "$CLIENT" "$PORT" budget "$SERVER_PID" $((16 << 20)) ||
  { tail -n 50 "$LOG3" >&2; fail "budget phase"; }
stop_server

if grep -E "AddressSanitizer|runtime error|LeakSanitizer|ThreadSanitizer" "$LOG" "$LOG2" "$LOG3" \
  >/dev/null; then
  cat "$LOG" "$LOG2" "$LOG3" >&2
  fail "sanitizer report in a server log"
fi
echo "ok: $TEST_NAME"
rm -rf "$T"
