#!/usr/bin/env bash
# run.sh: what `make run` starts once `make build` has built everything in build/.
#
#   scripts/run.sh          starts alogd, the Kafka-protocol server, in the foreground
#                           on 127.0.0.1:9092 with its data in data/alogd (created on
#                           first use), after printing how to try it with kcat. Ctrl-C
#                           (SIGINT) or SIGTERM stops it cleanly.
#   scripts/run.sh demo     a short demo of the alog CLI on a demo log instead (below).
#
# Environment (alogd):
#   ALOGD_BIN     the alogd binary (default: build/src/server/alogd in this repository)
#   ALOGD_DATA    its data directory (default: data/alogd in this repository)
#   ALOGD_LISTEN  HOST:PORT to listen on (default 127.0.0.1:9092)
#   ALOGD_ARGS    more alogd options, split on spaces (e.g. "--fsync always")
#
# The demo appends a few records (keys, headers, explicit timestamps, one atomic
# multi-record batch, one zstd batch from stdin lines), reads them back as JSON, looks
# one up by time, and shows `info` and `verify`. Every command is printed before it runs.
#
# Environment (demo):
#   ALOG_BIN   the alog binary (default: build/tools/alog in this repository)
#   ALOG_DATA  the log directory (default: data/demo in this repository). The parent
#              directory is created if missing. The log is created on first use.
#
# Running the demo again is safe: each run appends one more round of records to the same
# log and deletes nothing (a log never changes its past). So offsets keep growing from
# run to run. The reads below show only this run's records. This run's timestamps are
# the current time, or just past the newest timestamp already in the log if that is
# later, so --from-time finds them. To start over: rm -rf data/demo (or your $ALOG_DATA).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Defaults are under the repository; shown relative when run from its top (make run).
base=$root/
if [ "$(pwd -P)" = "$(cd "$root" && pwd -P)" ]; then base=""; fi

if [ "${1:-}" != demo ]; then
  if [ $# -gt 0 ]; then
    echo "usage: scripts/run.sh [demo]" >&2
    exit 2
  fi
  ALOGD_BIN=${ALOGD_BIN:-${base}build/src/server/alogd}
  ALOGD_DATA=${ALOGD_DATA:-${base}data/alogd}
  ALOGD_LISTEN=${ALOGD_LISTEN:-127.0.0.1:9092}
  if [ ! -x "$ALOGD_BIN" ]; then
    echo "run.sh: no alogd binary at $ALOGD_BIN (build it first: make build)" >&2
    exit 1
  fi
  b=$ALOGD_LISTEN
  cat <<EOF
alogd: a Kafka-protocol server on $b, data in $ALOGD_DATA (Ctrl-C stops it).
Try it from another terminal with kcat (apt-get install kcat):
  echo hello | kcat -b $b -P -t demo     # produce (topics are created on first use)
  kcat -b $b -C -t demo -e               # consume from the beginning, then exit
  kcat -b $b -C -t demo -e -o s@\$(date -d '1 hour ago' +%s%3N)   # from a time
  kcat -b $b -L                          # topics and partitions
(scripts/run.sh demo shows the alog CLI on a demo log instead.)
EOF
  mkdir -p "$(dirname "$ALOGD_DATA")"
  # shellcheck disable=SC2086 # ALOGD_ARGS is split on purpose
  exec "$ALOGD_BIN" --data "$ALOGD_DATA" --listen "$ALOGD_LISTEN" ${ALOGD_ARGS:-}
fi

ALOG_BIN=${ALOG_BIN:-${base}build/tools/alog}
ALOG_DATA=${ALOG_DATA:-${base}data/demo}

if [ ! -x "$ALOG_BIN" ]; then
  echo "run.sh: no alog binary at $ALOG_BIN (build it first: make build)" >&2
  exit 1
fi

# Prints an argument the way it would be typed in a shell.
quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./:=+@%,-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# show ARGS...: prints "$ alog ARGS" (after $pipe_from, if set) and runs it.
pipe_from=""
show() {
  printf '$ %salog' "$pipe_from"
  for a in "$@"; do printf ' '; quote "$a"; done
  printf '\n'
  "$ALOG_BIN" "$@"
}

step() { printf '\n== %s\n' "$*"; }

# ms since the epoch as ISO 8601 UTC with milliseconds.
iso() { printf '%s.%03dZ' "$(date -u -d "@$(($1 / 1000))" +%Y-%m-%dT%H:%M:%S)" $(($1 % 1000)); }

mkdir -p "$(dirname "$ALOG_DATA")"

echo "alog demo: $("$ALOG_BIN" --version)"
echo "log directory: $ALOG_DATA"
echo "(scripts/run.sh without arguments starts alogd, the Kafka-protocol server)"

# This run's base time: now, or 1 ms past the newest timestamp already in the log.
now=$(date +%s%3N)
newest=$("$ALOG_BIN" info --json "$ALOG_DATA" 2>/dev/null |
  sed -n 's/.*"max_timestamp":\([0-9][0-9]*\),"segments".*/\1/p') || true
t0=$now
if [ -n "$newest" ] && [ "$newest" -ge "$t0" ]; then t0=$((newest + 1)); fi
t1=$((t0 + 1000))
t2=$((t0 + 2000))

step "append: one record with a key, a header and a timestamp (prints its offset)"
out=$(show append "$ALOG_DATA" -k user-1 -H source=web -t "$(iso "$t0")" '{"action":"login"}')
printf '%s\n' "$out"
first=${out##*$'\n'} # the offset is the last line of the output

step "append: two records as one atomic batch, two headers"
show append "$ALOG_DATA" -k user-2 -H source=app -H trace=7f3a -t "$(iso "$t1")" \
  '{"action":"view"}' '{"action":"buy"}'

step "append: one record per stdin line, compressed with zstd"
pipe_from="printf 'line one\\nline two\\n' | "
printf 'line one\nline two\n' | show append "$ALOG_DATA" -c zstd -t "$(iso "$t2")"
pipe_from=""

step "read this run's records back as JSON"
show read "$ALOG_DATA" --from-offset "$first" --format json

step "read from a time: the first record at or after $(iso "$t1") and the 2 after it"
show read "$ALOG_DATA" --from-time "$(iso "$t1")" --count 3

step "info: offsets, size, time range, segments"
show info "$ALOG_DATA"

step "verify: check every batch (CRC-32C, records) and every index entry"
show verify "$ALOG_DATA"

echo
echo "demo done. Run it again to append more, or try: $ALOG_BIN --help"
