#!/usr/bin/env bash
# alogd over a socket: starts it on a free port with a fresh data directory and speaks
# the Kafka protocol to it with alogd_client.py (every API and version alogd serves,
# RecordBatches made by the engine through `alog append`, long polls, pipelining, and
# abuse: an oversized size prefix, garbage, an unknown API key, a stalled client).
# Then SIGTERM (a clean stop: every log marked clean) and a restart: the data is there.
# Also: --help, bad options, --config, a second alogd on the same data directory, and
# scripts/run.sh (what `make run` starts).
set -euo pipefail
. "$(dirname "$0")/common.sh"

. "$(dirname "$0")/alogd_common.sh"
CLIENT=$(dirname "$0")/alogd_client.py

# --- usage ------------------------------------------------------------------------
run 0 "$ALOGD" --help
assert_contains "$T/out" "--max-request-bytes" "--help lists the options"
run 2 "$ALOGD" --fsync sometimes
assert_contains "$T/err" "fsync must be 'always' or 'interval'" "bad --fsync value"
run 2 "$ALOGD" --listen nowhere
assert_contains "$T/err" "is not HOST:PORT" "bad --listen value"
printf 'partitions = 0\n' >"$T/bad.conf"
run 2 "$ALOGD" --config "$T/bad.conf"
assert_contains "$T/err" "bad.conf:1: partitions must be" "bad config file line"

# --- two record batches made by the engine ------------------------------------------
TS_A=1700000000000
TS_B=1700000005000
run 0 "$ALOG" append "$T/src_a" -k key-a -t "$TS_A" value-a1 value-a2
run 0 "$ALOG" append "$T/src_b" -H h=1 -t "$TS_B" value-b1 value-b2
cp "$(seg_path "$T/src_a" 0)" "$T/batch_a"
cp "$(seg_path "$T/src_b" 0)" "$T/batch_b"

# --- phase 1: every API on a fresh server (config file for the data directory) ------
mkdir -p "$T/srv"
printf '# alogd test config\ndata = %s\nfsync = always\n' "$T/srv/data" >"$T/alogd.conf"
LOG=$T/srv/alogd.log
: >"$LOG"
start_server "$LOG" --config "$T/alogd.conf" --max-request-bytes 100M
assert_contains "$LOG" "fsync always" "the config file was read"
# A second alogd on the same data directory refuses to start.
run 1 "$ALOGD" --listen 127.0.0.1:0 --data "$T/srv/data"
assert_contains "$T/err" "in use by another alogd (pid $SERVER_PID)" "second alogd refused"
# ... and so does one on another data directory but the same port (SO_REUSEPORT would
# otherwise let it take half of the connections).
run 1 "$ALOGD" --listen "127.0.0.1:$PORT" --data "$T/other-data"
assert_contains "$T/err" "address already in use" "second alogd on the same port refused"

python3 "$CLIENT" "$PORT" phase1 "$T/batch_a" "$T/batch_b" "$TS_B" "$LOG" ||
  { cat "$LOG" >&2; fail "phase 1"; }
stop_server
assert_contains "$LOG" "SIGTERM: shutting down" "shutdown log line"
for rp in "$T"/srv/data/*/recovery-point; do
  grep -q ' clean=1 ' "$rp" || fail "$rp: not closed cleanly: $(cat "$rp")"
done

# --- phase 2: restart, the data is still there --------------------------------------
start_server "$LOG" --data "$T/srv/data" --fsync interval
python3 "$CLIENT" "$PORT" phase2 "$T/batch_a" "$T/batch_b" || { cat "$LOG" >&2; fail "phase 2"; }
stop_server
"$ALOG" verify "$T/srv/data/t1-0" >/dev/null || fail "alog verify of t1-0 after the run"

# --- scripts/run.sh (make run): alogd in the foreground, with kcat hints ---------------
: >"$T/run.err"
ALOGD_BIN=$ALOGD ALOGD_DATA=$T/rundata/alogd ALOGD_LISTEN=127.0.0.1:0 \
  bash "$ALOG_SRC/scripts/run.sh" >"$T/run.out" 2>>"$T/run.err" &
SERVER_PID=$!
for _ in $(seq 1 100); do
  grep -q "^alogd: listening on" "$T/run.err" && break
  sleep 0.1
done
assert_contains "$T/run.err" "alogd: listening on 127.0.0.1:" "run.sh starts alogd"
assert_contains "$T/run.out" "kcat -b 127.0.0.1:0 -P -t demo" "run.sh prints how to try it"
[ -d "$T/rundata/alogd" ] || fail "run.sh did not use ALOGD_DATA"
stop_server

# No crash and no sanitizer report in the server's log.
if grep -E "AddressSanitizer|runtime error|LeakSanitizer" "$LOG" "$T/run.err" >/dev/null; then
  cat "$LOG" "$T/run.err" >&2
  fail "sanitizer report in the server log"
fi
echo "ok: $TEST_NAME"
rm -rf "$T"
