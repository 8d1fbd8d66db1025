#!/usr/bin/env bash
# Command-line surface: --help of everything exits 0, --version, bad options and
# arguments are usage errors (exit 2) with "alog <cmd>: ..." on stderr.
set -euo pipefail
. "$(dirname "$0")/common.sh"

run 0 "$ALOG" --help
for c in append read tail info verify dump; do
  assert_contains "$T/out" "$c" "alog --help lists $c"
done
run 0 "$ALOG" --version
grep -Eq '^alog [0-9]+\.[0-9]+\.[0-9]+' "$T/out" || fail "--version output: $(cat "$T/out")"
run 2 "$ALOG"
run 2 "$ALOG" frobnicate
assert_contains "$T/err" "frobnicate" "unknown command message"

for c in append read tail info verify dump; do
  run 0 "$ALOG" "$c" --help
  assert_contains "$T/out" "Usage: alog $c" "$c --help"
  [ ! -s "$T/err" ] || fail "$c --help wrote to stderr"
  run 0 "$ALOG" "$c" -h
  run 2 "$ALOG" "$c" "$T/x" --no-such-option
  assert_contains "$T/err" "alog $c:" "$c bad option message"
  run 2 "$ALOG" "$c" -Z "$T/x"
  run 2 "$ALOG" "$c"
  assert_contains "$T/err" "alog $c: missing" "$c without its argument"
done
[ ! -e "$T/x" ] || fail "a usage error created something"

D=$T/log
run 0 "$ALOG" append "$D" -- x
run 2 "$ALOG" append "$D" --compression brotli -- x
run 2 "$ALOG" append "$D" --fsync sometimes -- x
run 2 "$ALOG" append "$D" --segment-bytes 0 -- x
run 2 "$ALOG" append "$D" --segment-bytes 12k -- x
run 2 "$ALOG" append "$D" --segment-bytes 99999999999999999999 -- x
run 2 "$ALOG" append "$D" --key
run 2 "$ALOG" read "$D" --format xml
run 2 "$ALOG" read "$D" extra-arg
run 2 "$ALOG" tail "$D" --format yaml
run 2 "$ALOG" info "$D" extra-arg
# the good options are accepted
run 0 "$ALOG" append "$D" --fsync always --compression lz4 --segment-bytes 1048576 -- y
assert_eq 1 "$(cat "$T/out")" "offset with options"
run 0 "$ALOG" append "$D" --fsync never -k key -H a=b -t 5 -- z
assert_eq 2 "$(cat "$T/out")" "offset with short options"
# values that look like options after --
run 0 "$ALOG" append "$D" -- --not-an-option -x
assert_eq "$(printf '3\n4')" "$(cat "$T/out")" "offsets of option-like values"
run 0 "$ALOG" read "$D" --from-offset 3 --format json
assert_contains "$T/out" '"value":"--not-an-option"' "option-like value stored"

echo "ok: $TEST_NAME"
