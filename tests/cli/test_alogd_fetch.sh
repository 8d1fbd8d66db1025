#!/usr/bin/env bash
# alogd's Fetch from the segment files (sendfile) and its connection limits, driven by
# alogd_fetch_client.py:
#   - records made by the engine (`alog append`, batches from a hundred bytes to
#     700 KB) are produced to a partition with 1 MiB segments, and every Fetch gives
#     them back byte for byte: all at once across the segment rolls, each batch whole
#     from an offset inside it, partition and response max_bytes over two partitions;
#   - a client that reads slowly a response larger than the kernel's socket buffers
#     (partial sendfile, resumed from epoll) gets the same bytes;
#   - six such responses queued at once do not grow alogd's anonymous memory by more
#     than a quarter of one copy each (the records are not copied);
#   - retention deletes every segment of a queued response before the client reads
#     it: the client still gets the bytes, alogd holds the deleted files open until
#     they are sent, and lets them go after;
#   - --idle-timeout-ms (from a config file) closes idle connections but not one
#     waiting in a long poll; --max-connections refuses a connection past the limit
#     while the others are served, and accepts again once one closes;
#   - a long poll is answered when its record arrives, also when the record is
#     appended on another worker while the Fetch is between its attempt and parking
#     (ALOGD_TEST_PARK_DELAY_US holds that window open for 50 ms);
#   - long polls wait per partition: appends to another partition leave them parked
#     and do not rebuild them (alogd's count of retries at exit), an append to theirs
#     answers them.
# Also --help and bad values of the new options.
set -euo pipefail
. "$(dirname "$0")/common.sh"

. "$(dirname "$0")/alogd_common.sh"
CLIENT=$(dirname "$0")/alogd_fetch_client.py

# --- usage ------------------------------------------------------------------------
run 0 "$ALOGD" --help
assert_contains "$T/out" "--idle-timeout-ms MS" "--help lists --idle-timeout-ms"
assert_contains "$T/out" "--max-connections N" "--help lists --max-connections"
assert_contains "$T/out" "--retention-bytes N" "--help lists --retention-bytes"
run 2 "$ALOGD" --max-connections 0
assert_contains "$T/err" "max-connections must be 1..10000000, not '0'" "bad --max-connections"
run 2 "$ALOGD" --idle-timeout-ms soon
assert_contains "$T/err" "idle-timeout-ms must be 0..2147483647, not 'soon'" "bad --idle-timeout-ms"
run 2 "$ALOGD" --retention-bytes -5
assert_contains "$T/err" "retention-bytes must be a byte count" "bad --retention-bytes"
printf 'max-connections = many\n' >"$T/bad.conf"
run 2 "$ALOGD" --config "$T/bad.conf"
assert_contains "$T/err" "bad.conf:1: max-connections must be" "bad config file line"

# --- the records: batches made by the engine, large and small, in one segment --------
# More than the kernel's largest socket send buffer, so a response of all of them
# cannot leave in one send.
WMEM_MAX=$(awk '{print $3}' /proc/sys/net/ipv4/tcp_wmem)
TARGET=$((WMEM_MAX + 6 * 1024 * 1024))
SRC=$T/src
i=0
while [ ! -f "$(seg_path "$SRC" 0)" ] || [ "$(stat -c %s "$(seg_path "$SRC" 0)")" -lt "$TARGET" ]; do
  i=$((i + 1))
  # 1000 random lines of 700 characters: one batch of about 700 KB...
  python3 -c "import random, sys; r = random.Random($i)
sys.stdout.write(''.join('%0700x\n' % r.getrandbits(2800) for _ in range(1000)))" |
    "$ALOG" append "$SRC" -t $((1700000000000 + i)) >/dev/null
  # ...then one of a hundred bytes.
  "$ALOG" append "$SRC" -k "k$i" -t $((1700000000000 + i)) "small-$i" "s" >/dev/null
done
SRC_SEG=$(seg_path "$SRC" 0)
SRC_BYTES=$(stat -c %s "$SRC_SEG")

# --- Fetch: byte-identical, slow readers, memory, retention meanwhile -----------------
LOG=$T/fetch.log
: >"$LOG"
# Retention keeps the records (and 2 MiB more) until the client produces them again.
start_server "$LOG" --data "$T/data1" --segment-bytes 1M \
  --retention-bytes $((SRC_BYTES + 2 * 1024 * 1024))
python3 "$CLIENT" "$PORT" fetch "$SRC_SEG" "$T/data1" "$SERVER_PID" "$LOG" ||
  { tail -n 50 "$LOG" >&2; fail "fetch phase"; }
stop_server
"$ALOG" verify "$T/data1/big-0" >/dev/null || fail "alog verify of big-0 after the run"

# --- --idle-timeout-ms, from a config file --------------------------------------------
LOG2=$T/idle.log
: >"$LOG2"
printf 'idle-timeout-ms = 500\n' >"$T/idle.conf"
start_server "$LOG2" --data "$T/data2" --config "$T/idle.conf"
python3 "$CLIENT" "$PORT" idle "$SRC_SEG" "$LOG2" || { cat "$LOG2" >&2; fail "idle phase"; }
stop_server

# --- --max-connections ----------------------------------------------------------------
LOG3=$T/maxconn.log
: >"$LOG3"
start_server "$LOG3" --data "$T/data3" --max-connections 3
python3 "$CLIENT" "$PORT" maxconn "$LOG3" || { cat "$LOG3" >&2; fail "maxconn phase"; }
stop_server

# --- a wake-up that comes while a Fetch is about to park ------------------------------
LOG4=$T/wakeup.log
: >"$LOG4"
ALOGD_TEST_PARK_DELAY_US=50000 start_server "$LOG4" --data "$T/data4"
python3 "$CLIENT" "$PORT" wakeup "$SRC_SEG" || { tail -n 50 "$LOG4" >&2; fail "wakeup phase"; }
stop_server

# --- long polls wait for their own partitions ------------------------------------------
LOG5=$T/watch.log
: >"$LOG5"
start_server "$LOG5" --data "$T/data5"
python3 "$CLIENT" "$PORT" watch "$SRC_SEG" || { tail -n 50 "$LOG5" >&2; fail "watch phase"; }
stop_server
# The five Fetches were each retried once for their record (unless one had not parked
# yet); 200 produces to the other partition must not add one retry each (a few may come
# from request_park's epoch, when a produce lands while a Fetch parks).
RETRIED=$(sed -n 's/^alogd: long polls: Fetches parked [0-9]* times, retried \([0-9]*\) times .*/\1/p' "$LOG5")
[ -n "$RETRIED" ] || { cat "$LOG5" >&2; fail "no count of parked Fetches' retries in alogd's log at exit"; }
[ "$RETRIED" -ge 1 ] && [ "$RETRIED" -le 50 ] ||
  fail "parked Fetches were retried $RETRIED times (expected 1 to 50: 5 Fetches waiting on one partition, 200 produces to another)"

# No crash and no sanitizer report in the servers' logs.
if grep -E "AddressSanitizer|runtime error|LeakSanitizer" "$LOG" "$LOG2" "$LOG3" "$LOG4" "$LOG5" >/dev/null; then
  cat "$LOG" "$LOG2" "$LOG3" "$LOG4" "$LOG5" >&2
  fail "sanitizer report in a server log"
fi
echo "ok: $TEST_NAME"
rm -rf "$T"
