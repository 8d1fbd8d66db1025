# common.sh -- helpers sourced by the tests/cli/test_*.sh scripts (not a test itself).
#
# Environment (set by ctest, see tests/CMakeLists.txt):
#   ALOG           path of the built alog binary
#   ALOG_TEST_TMP  scratch directory; every script makes a fresh directory under it
#   ALOG_SRC       source root
set -euo pipefail

if [ -z "${ALOG:-}" ] || [ ! -x "$ALOG" ]; then
  echo "FAIL: \$ALOG must name the built alog binary (got '${ALOG:-}')" >&2
  exit 1
fi
: "${ALOG_TEST_TMP:=/tmp/alog-cli-tests}"
mkdir -p "$ALOG_TEST_TMP"
TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "$ALOG_TEST_TMP/$TEST_NAME.XXXXXX")

fail() {
  echo "FAIL [$TEST_NAME]: $*" >&2
  echo "  (scratch directory kept: $T)" >&2
  exit 1
}

# run EXPECTED_STATUS CMD ARGS...: runs the command with stdout in $T/out and stderr in
# $T/err and fails unless it exits with EXPECTED_STATUS.
run() {
  local want=$1 got=0
  shift
  "$@" >"$T/out" 2>"$T/err" || got=$?
  if [ "$got" != "$want" ]; then
    echo "--- stdout:" >&2; head -c 4000 "$T/out" >&2 || true
    echo "--- stderr:" >&2; head -c 4000 "$T/err" >&2 || true
    fail "expected exit status $want, got $got: $*"
  fi
}

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
  if [ "$1" != "$2" ]; then
    fail "$3: expected [$1], got [$2]"
  fi
}

# assert_contains FILE STRING WHAT
assert_contains() {
  if ! grep -qF -- "$2" "$1"; then
    echo "--- $1:" >&2; head -c 4000 "$1" >&2 || true
    fail "$3: [$2] not found in $1"
  fi
}

# seg_path DIR BASE -> DIR/<20-digit base>.log
seg_path() {
  printf '%s/%020d.log' "$1" "$2"
}

# wait_for_lines FILE N SECONDS: waits until FILE has at least N lines.
wait_for_lines() {
  local file=$1 n=$2 secs=$3 i=0
  while [ "$i" -lt $((secs * 10)) ]; do
    if [ -f "$file" ] && [ "$(wc -l <"$file")" -ge "$n" ]; then
      return 0
    fi
    sleep 0.1
    i=$((i + 1))
  done
  return 1
}
