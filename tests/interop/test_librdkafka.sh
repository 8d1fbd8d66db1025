#!/usr/bin/env bash
# librdkafka against alogd, through rdkafka_check (tests/interop/rdkafka_check.c):
#  1. records produced with acks=all (none, then each codec) all get a successful delivery
#     report at the expected offset, and read back identical (null and empty keys and
#     values, binary values, headers with null and empty values, CreateTime timestamps),
#     from the beginning and from an offset, with the right watermarks and
#     offsets_for_times answers; the same after a restart, and producing continues at the
#     right offset after it.
#  2. with --fsync always, a producer produces continuously with acks=all while the
#     server is killed (-9) mid-produce and restarted, three times; afterwards every
#     record it was acknowledged is read back at the offset it was acknowledged at.
set -euo pipefail
. "$(dirname "$0")/common.sh"

if [ -z "${RDKAFKA_CHECK:-}" ] || [ ! -x "$RDKAFKA_CHECK" ]; then
  skip "rdkafka_check was not built (librdkafka-dev, pkg-config rdkafka, was missing when CMake configured)"
fi
RK=$RDKAFKA_CHECK

# rk OUTNAME SECONDS ARGS...: one rdkafka_check run; its summary line goes to the log.
rk() {
  local name=$1 secs=$2
  shift 2
  run_to "$T/$name.out" "$T/$name.err" "$secs" "$RK" "$@"
  log "$name: $(tail -n 1 "$T/$name.out")"
}

# ---- 1. produce with delivery reports, consume, restart, consume, produce on ----
start_server
TOPIC=rk-records
rk produce-none 90 produce "$BROKER" "$TOPIC" 0 20000
rk produce-lz4 60 produce "$BROKER" "$TOPIC" 20000 5000 compression.codec=lz4
rk produce-zstd 60 produce "$BROKER" "$TOPIC" 25000 5000 compression.codec=zstd
rk produce-gzip 60 produce "$BROKER" "$TOPIC" 30000 5000 compression.codec=gzip
rk produce-snappy 60 produce "$BROKER" "$TOPIC" 35000 5000 compression.codec=snappy \
  batch.num.messages=50
rk consume-all 60 consume "$BROKER" "$TOPIC" 0 40000
rk consume-from-17001 60 consume "$BROKER" "$TOPIC" 17001 40000

stop_server
restart_server
rk consume-after-restart 60 consume "$BROKER" "$TOPIC" 0 40000
rk produce-after-restart 60 produce "$BROKER" "$TOPIC" 40000 5000 compression.codec=lz4
rk consume-from-38000 60 consume "$BROKER" "$TOPIC" 38000 45000

kill9_server
restart_server
rk consume-after-kill9 60 consume "$BROKER" "$TOPIC" 0 45000
stop_server

# ---- 2. kill -9 mid-produce with --fsync always ----
DATA=$T/data-kill9
start_server --fsync always
ACKS=$T/acked.txt
"$RK" produce-until "$BROKER" rk-kill9 "$ACKS" 100 20000 >"$T/producer.out" 2>"$T/producer.err" &
PRODUCER=$!
BG_PIDS+=("$PRODUCER")

# acked_count: lines in the ack file so far.
acked_count() {
  if [ -f "$ACKS" ]; then wc -l <"$ACKS"; else echo 0; fi
}
# wait_acked N: waits (30 s at most) until N records are acknowledged.
wait_acked() {
  local want=$1 i
  for i in $(seq 1 300); do
    [ "$(acked_count)" -ge "$want" ] && return 0
    kill -0 "$PRODUCER" 2>/dev/null || fail "the producer exited early: $(cat "$T/producer.err")"
    sleep 0.1
  done
  fail "only $(acked_count) of $want records acknowledged within 30 s (producer: $(tail -n 3 "$T/producer.err"))"
}

for round in 1 2 3; do
  wait_acked $(($(acked_count) + 8000))
  server_alive
  kill -USR1 "$PRODUCER" # it notes how many records are in flight
  sleep 0.02
  kill9_server
  log "round $round: killed alogd mid-produce after $(acked_count) acknowledged records; producer: $(grep unacknowledged "$T/producer.err" | tail -n 1)"
  sleep 0.3
  restart_server
done
# The producer carries on after the last restart, then stops.
wait_acked $(($(acked_count) + 8000))
kill -TERM "$PRODUCER"
rc=0
wait "$PRODUCER" || rc=$?
[ "$rc" -eq 0 ] || fail "the producer exited with status $rc: $(tail -n 5 "$T/producer.err")"
log "producer: $(tail -n 1 "$T/producer.out")"

rk verify-acked 120 verify-acked "$BROKER" rk-kill9 "$ACKS"
# And once more after a clean restart.
stop_server
restart_server
rk verify-acked-restart 120 verify-acked "$BROKER" rk-kill9 "$ACKS"

done_ok
