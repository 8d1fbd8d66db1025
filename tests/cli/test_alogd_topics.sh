#!/usr/bin/env bash
# alogd's topics on disk and their configs, over a socket (alogd_topics_client.py):
#  - CreateTopics writes DATA/<topic>.topic (partition count and configs) and leaves no
#    marker; invalid configs get INVALID_CONFIG (40) naming the config, and nothing is
#    created; validate_only creates nothing.
#  - the configs act: segment.bytes (several segments), retention.bytes (old segments
#    removed at rolls), retention.ms (removed by the retention thread while nothing is
#    written), message.timestamp.type=LogAppendTime (the broker stamps the batch, with
#    a valid CRC), flush.messages=1 / flush.ms (each acknowledged produce fsynced first,
#    or not: counted with strace when it is installed), overriding --fsync both ways.
#  - a Produce with two batches (or none) for one partition gets INVALID_RECORD (87).
#  - restart: configs still apply; leftovers are handled: a half-created topic
#    (<topic>+new) and an interrupted deletion (<topic>+del) are removed, a <topic>+tmp
#    is removed, a topic whose partition directory is missing or which has one too
#    many or whose metadata is from a newer alogd is unavailable (KAFKA_STORAGE_ERROR)
#    while the others are served, and can be deleted; a legacy topic (directories only)
#    opens and gets its metadata file.
set -euo pipefail
. "$(dirname "$0")/common.sh"

. "$(dirname "$0")/alogd_common.sh"
CLIENT=$(dirname "$0")/alogd_topics_client.py

# strace counts the fsyncs of the flush.* checks; without it they are skipped (said so).
STRACE=0
if command -v strace >/dev/null && strace -f -qq -o /dev/null true 2>/dev/null; then
  STRACE=1
fi

DATA=$T/data
LOG=$T/alogd.log
: >"$LOG"

# start_traced TRACE ARGS...: alogd on a free port with DATA (under strace, writing
# TRACE, when strace is there); sets PORT, SERVER_PID (strace's or alogd's), ALOGD_PID.
start_traced() {
  local trace=$1 before
  shift
  before=$(wc -l <"$LOG")
  if [ "$STRACE" = 1 ]; then
    # LeakSanitizer cannot run under ptrace: no leak check for this alogd in the ASan
    # build (test_alogd_basic and test_alogd_concurrent keep it).
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
      strace -f -qq -y -e trace=fdatasync,fsync -o "$trace" \
      "$ALOGD" --listen 127.0.0.1:0 --data "$DATA" "$@" 2>>"$LOG" &
  else
    "$ALOGD" --listen 127.0.0.1:0 --data "$DATA" "$@" 2>>"$LOG" &
  fi
  SERVER_PID=$!
  wait_listening "$LOG" "$before"
  ALOGD_PID=$(cat "$DATA/alogd.lock")
}

client() {
  python3 "$CLIENT" "$PORT" "$@" || { tail -n 40 "$LOG" >&2; fail "client phase $2"; }
}

# --- phase 1: create topics with configs, use them -----------------------------------
start_traced "$T/trace1" --fsync interval --retention-check-ms 200
client create "$DATA" "$LOG"
if [ "$STRACE" = 1 ]; then
  # --fsync interval: flush.messages=1 fsyncs each acknowledged produce; flush.ms does not.
  client fsync "$DATA" "$T/trace1" flush1 lazy,fsoff
else
  echo "SKIP: strace is not installed: the flush.messages/flush.ms fsync counts are not checked"
fi
stop_server 20
"$ALOG" verify "$DATA/lat-0" >/dev/null || fail "alog verify of the LogAppendTime partition"

# --- leftovers, as crashes and operators leave them ----------------------------------
mv "$DATA/half.topic" "$DATA/half+new"   # crashed after the directories, before the commit
mv "$DATA/gone.topic" "$DATA/gone+del"   # crashed after the deletion's commit point
rm -rf "$DATA/p3-2"                      # a partition directory lost
printf 'half written' >"$DATA/p3+tmp"    # an interrupted metadata rewrite
run 0 "$ALOG" append "$DATA/extra-1" stray   # a partition beyond the metadata's count
printf 'alogd-topic 9\npartitions=1\n' >"$DATA/badmeta.topic"
run 0 "$ALOG" append "$DATA/legacy-0" a b    # a topic from before metadata files
run 0 "$ALOG" append "$DATA/legacy-1" c
[ -d "$DATA/half-1" ] && [ -d "$DATA/gone-0" ] || fail "the leftovers are not there"

# --- phase 2: restart with --fsync always ---------------------------------------------
start_traced "$T/trace2" --fsync always --retention-check-ms 200
client restart "$DATA" "$LOG"
if [ "$STRACE" = 1 ]; then
  # --fsync always is the default of flush.messages: lazy (flush.ms only) inherits it,
  # fsoff (flush.messages=9223372036854775807) does not.
  client fsync "$DATA" "$T/trace2" lazy fsoff
fi
stop_server 20

if grep -E "AddressSanitizer|runtime error|LeakSanitizer|ThreadSanitizer" "$LOG" >/dev/null; then
  cat "$LOG" >&2
  fail "sanitizer report in the server log"
fi
echo "ok: $TEST_NAME"
rm -rf "$T"
