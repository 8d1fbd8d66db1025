# common.sh -- helpers sourced by the tests/interop/test_*.sh scripts (not a test itself).
#
# Each script runs alogd, the Kafka-protocol server, on a free port with a fresh data
# directory and talks to it with real Kafka clients (kcat, librdkafka, kafkajs).
#
# Environment (set by ctest, see tests/CMakeLists.txt):
#   ALOGD          path of the built alogd binary
#   ALOG           path of the built alog CLI (optional here)
#   ALOG_TEST_TMP  scratch directory; every script makes a fresh directory under it and
#                  removes it again when the script passes (kept on failure)
#   ALOG_SRC       source root
#   RDKAFKA_CHECK  path of the built rdkafka_check program (test_librdkafka.sh only)
#   CI             when set (CI=true), a missing client tool fails the test instead of
#                  skipping it: scripts/setup.sh installs them all.
set -euo pipefail

TEST_NAME=$(basename "$0" .sh)
INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${ALOG_SRC:=$(cd "$INTEROP_DIR/../.." && pwd)}"

if [ -z "${ALOGD:-}" ] || [ ! -x "$ALOGD" ]; then
  echo "FAIL [$TEST_NAME]: \$ALOGD must name the built alogd binary (got '${ALOGD:-}')" >&2
  exit 1
fi
: "${ALOG_TEST_TMP:=/tmp/alog-interop-tests}"
mkdir -p "$ALOG_TEST_TMP"
T=$(mktemp -d "$ALOG_TEST_TMP/$TEST_NAME.XXXXXX")
T0=$(date +%s%N)

# The server: one per script, on $PORT (the same across restarts), data in $DATA, its
# stdout and stderr appended to $SERVER_LOG.
DATA=$T/data
SERVER_LOG=$T/alogd.log
SERVER_PID=""
SERVER_ARGS=()
PORT=""
BROKER=""
# Other background processes a script starts: killed (-9) on exit.
BG_PIDS=()

_interop_cleanup() {
  local rc=$?
  set +e
  for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if [ -n "$SERVER_PID" ]; then
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if [ "$rc" -eq 0 ]; then
    rm -rf "$T"
  else
    echo "  (scratch directory kept: $T)" >&2
  fi
  exit "$rc"
}
trap _interop_cleanup EXIT

log() {
  local now
  now=$(date +%s%N)
  printf '[%s %6.1fs] %s\n' "$TEST_NAME" "$(((now - T0) / 1000000))e-3" "$*" >&2
}

fail() {
  echo "FAIL [$TEST_NAME]: $*" >&2
  if [ -s "$SERVER_LOG" ]; then
    echo "--- last lines of the server log ($SERVER_LOG):" >&2
    tail -n 30 "$SERVER_LOG" >&2 || true
  fi
  exit 1
}

# skip WHY: the test cannot run on this machine. Says so loudly; under CI (where
# scripts/setup.sh has installed every tool) it is a failure instead.
skip() {
  {
    echo "################################################################"
    echo "skip: [$TEST_NAME] $*"
    echo "skip: this interop test did NOT run (run scripts/setup.sh to install what it needs)"
    echo "################################################################"
  } >&2
  echo "skip: [$TEST_NAME] $*"
  if [ -n "${CI:-}" ]; then
    echo "FAIL [$TEST_NAME]: under CI every interop tool must be installed" >&2
    exit 1
  fi
  exit 0
}

# need_tool NAME...: skips the test unless every named command exists.
need_tool() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || skip "required tool '$t' is not installed"
  done
}

# run_to OUT ERR SECONDS CMD ARGS...: runs a client with a time limit; fails the test when
# it exits non-zero or times out, showing its stderr.
run_to() {
  local out=$1 err=$2 secs=$3 rc=0
  shift 3
  timeout -k 5 "$secs" "$@" >"$out" 2>"$err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "--- stderr of: $*" >&2
    tail -c 4000 "$err" >&2 || true
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      fail "timed out after ${secs}s: $1 ..."
    fi
    fail "exit status $rc: $1 ..."
  fi
}

# port_in_use PORT: true when something accepts connections on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# _launch: starts alogd on $PORT and waits until it accepts connections. Returns 0 when
# up, 2 when it died because the port was taken, and fails the test otherwise.
_launch() {
  local i
  mkdir -p "$DATA"
  echo "=== $(date '+%T.%N') alogd --data $DATA --listen 127.0.0.1:$PORT ${SERVER_ARGS[*]}" >>"$SERVER_LOG"
  "$ALOGD" --data "$DATA" --listen "127.0.0.1:$PORT" "${SERVER_ARGS[@]}" >>"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  for i in $(seq 1 300); do # 30 s
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      local rc=0
      wait "$SERVER_PID" || rc=$?
      SERVER_PID=""
      if tail -n 5 "$SERVER_LOG" | grep -qiE 'in use|EADDRINUSE'; then
        return 2
      fi
      fail "alogd exited (status $rc) before accepting connections on port $PORT"
    fi
    if port_in_use "$PORT"; then
      # alogd listens with SO_REUSEPORT, so its bind succeeds even when another process
      # (say, a concurrent test's alogd) already listens there, and the kernel would then
      # split our connections between the two: make sure every listener is ours.
      if command -v ss >/dev/null 2>&1 &&
         ss -Htlnp "sport = :$PORT" | grep -o 'pid=[0-9]*' | grep -qv "^pid=$SERVER_PID\$"; then
        log "port $PORT is shared with another process: $(ss -Htlnp "sport = :$PORT" | tr -s ' ' | head -n 3)"
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
        return 2
      fi
      return 0
    fi
    sleep 0.1
  done
  fail "alogd did not accept connections on port $PORT within 30 s"
}

# start_server [ALOGD ARGS...]: the first start picks a free port in 20000-40000 (retrying
# when busy) and remembers the extra arguments (e.g. --fsync always) for restarts.
start_server() {
  local try rc
  [ -z "$SERVER_PID" ] || fail "start_server: alogd is already running"
  SERVER_ARGS=("$@")
  for try in $(seq 1 20); do
    PORT=$((20000 + (RANDOM * 32768 + RANDOM) % 20001))
    port_in_use "$PORT" && continue
    rc=0
    _launch || rc=$?
    if [ "$rc" -eq 0 ]; then
      BROKER=127.0.0.1:$PORT
      log "alogd up on $BROKER (pid $SERVER_PID) ${SERVER_ARGS[*]}"
      return 0
    fi
  done
  fail "could not find a free port for alogd in 20 tries"
}

# stop_server: SIGTERM, and alogd must exit 0 (a clean shutdown) within 30 s.
stop_server() {
  local i rc=0
  [ -n "$SERVER_PID" ] || fail "stop_server: alogd is not running"
  kill -TERM "$SERVER_PID"
  for i in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    fail "alogd (pid $SERVER_PID) did not exit within 30 s of SIGTERM"
  fi
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=""
  [ "$rc" -eq 0 ] || fail "alogd exited with status $rc on SIGTERM (expected a clean shutdown, 0)"
  log "alogd stopped (SIGTERM, exit 0)"
}

# kill9_server: SIGKILL, no chance to clean up.
kill9_server() {
  [ -n "$SERVER_PID" ] || fail "kill9_server: alogd is not running"
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  log "alogd killed (SIGKILL)"
}

# restart_server: starts alogd again on the same data directory, port and arguments
# (after stop_server or kill9_server). The port was ours a moment ago; should another
# process have taken it in between, the server moves to a new one ($BROKER follows).
restart_server() {
  local try rc
  [ -z "$SERVER_PID" ] || fail "restart_server: alogd is still running"
  for try in $(seq 1 20); do
    rc=0
    _launch || rc=$?
    if [ "$rc" -eq 0 ]; then
      BROKER=127.0.0.1:$PORT
      log "alogd restarted on $BROKER (pid $SERVER_PID)"
      return 0
    fi
    # The port is busy: give a lingering socket a moment, then try another port.
    sleep 0.2
    if [ "$try" -ge 5 ]; then
      log "port $PORT still busy; moving to another port"
      PORT=$((20000 + (RANDOM * 32768 + RANDOM) % 20001))
    fi
  done
  fail "could not restart alogd (port busy)"
}

# server_alive: fails the test when alogd has died.
server_alive() {
  if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
    local rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=""
    fail "alogd died (exit status $rc)"
  fi
}

# now_ms: wall-clock time in milliseconds (the clock Kafka's CreateTime uses).
now_ms() {
  echo $(($(date +%s%N) / 1000000))
}

# done_ok: the closing line of a passing script.
done_ok() {
  server_alive
  log "PASS ($(( ($(date +%s%N) - T0) / 1000000 )) ms)"
}
