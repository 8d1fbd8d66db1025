# alogd_common.sh -- helpers for the tests that run alogd on a socket (sourced after
# common.sh; not a test itself): the binary, starting alogd on a free port, a clean
# stop, and killing whatever is left when the script exits.
#
# Environment: ALOGD (the alogd binary) or ALOG_BUILD (the build directory).

ALOGD=${ALOGD:-${ALOG_BUILD:-}/src/server/alogd}
[ -x "$ALOGD" ] || fail "no alogd binary at $ALOGD (set ALOGD or ALOG_BUILD)"
command -v python3 >/dev/null || fail "python3 is needed"

SERVER_PID="" # the process started (alogd, or a wrapper such as strace around it)
ALOGD_PID=""  # alogd itself when SERVER_PID is a wrapper
alogd_cleanup() {
  if [ -n "$ALOGD_PID" ]; then kill -KILL "$ALOGD_PID" 2>/dev/null || true; fi
  if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
}
trap alogd_cleanup EXIT

# wait_listening LOG LINES: sets PORT from alogd's "listening on" line, looking past
# the first LINES lines of LOG (earlier runs); fails if alogd exits or takes 30 s.
wait_listening() {
  local log=$1 before=$2
  PORT=""
  for _ in $(seq 1 300); do
    PORT=$(tail -n +$((before + 1)) "$log" |
      sed -n 's/^alogd: listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p')
    [ -n "$PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$log" >&2
  fail "alogd did not start"
}

# start_server LOG ARGS...: starts alogd on a free port (port 0), its stderr appended
# to LOG; sets SERVER_PID and PORT.
start_server() {
  local log=$1 before
  shift
  touch "$log"
  before=$(wc -l <"$log")
  "$ALOGD" --listen 127.0.0.1:0 "$@" 2>>"$log" &
  SERVER_PID=$!
  wait_listening "$log" "$before"
}

# stop_server [SECS]: SIGTERM to alogd; expects exit status 0 within SECS (10).
stop_server() {
  local secs=${1:-10} rc=0
  kill -TERM "${ALOGD_PID:-$SERVER_PID}"
  timeout "$secs" tail --pid="$SERVER_PID" -f /dev/null ||
    fail "alogd did not stop within $secs s of SIGTERM"
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=""
  ALOGD_PID=""
  assert_eq 0 "$rc" "alogd exit status after SIGTERM"
}
