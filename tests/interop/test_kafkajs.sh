#!/usr/bin/env bash
# kafkajs against alogd: its admin client creates topics, reads the metadata and the
# offsets, its producer sends records (acks -1 and 1, plain and gzip) whose base offsets
# must be as expected; the server is restarted and the metadata and offsets must be
# unchanged, producing goes on at the right offsets, and a topic is deleted. kafkajs's
# consumer needs the consumer-group APIs (alogd has none), so kcat reads every record
# back and it must be identical (offset, timestamp, key, value, headers).
# kafkajs itself: tests/interop/package.json and package-lock.json (kafkajs 2.2.4),
# installed into tests/interop/node_modules by scripts/setup.sh, or here when missing.
set -euo pipefail
. "$(dirname "$0")/common.sh"
need_tool node kcat

if [ ! -f "$INTEROP_DIR/node_modules/kafkajs/package.json" ]; then
  need_tool npm
  log "kafkajs missing: npm ci --prefix tests/interop"
  if ! (cd "$INTEROP_DIR" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) >"$T/npm.log" 2>&1; then
    cat "$T/npm.log" >&2
    skip "could not install kafkajs with npm ci (see above)"
  fi
fi
kjs_version=$(node -p "require('$INTEROP_DIR/node_modules/kafkajs/package.json').version")
[ "$kjs_version" = "2.2.4" ] || fail "tests/interop/node_modules has kafkajs $kjs_version, expected 2.2.4 (run: npm ci --prefix tests/interop)"

export KAFKAJS_NO_PARTITIONER_WARNING=1

# kjs MODE: one run of kafkajs_check.js; its lines go to the log.
kjs() {
  run_to "$T/kjs-$1.out" "$T/kjs-$1.err" 90 node "$INTEROP_DIR/kafkajs_check.js" "$1" "$BROKER" "$T"
  sed "s/^/  /" "$T/kjs-$1.out" >&2
}

# read_back WHEN: kcat reads every partition of kjs-main; each must equal expect.P.
read_back() {
  local p
  for p in 0 1 2; do
    run_to "$T/got.$p" "$T/kcat.err" 60 \
      kcat -C -b "$BROKER" -t kjs-main -p "$p" -o beginning -e -q -f '%o\t%T\t%k\t%s\t%h\n'
    if ! cmp -s "$T/expect.$p" "$T/got.$p"; then
      diff <(cut -c1-200 "$T/expect.$p") <(cut -c1-200 "$T/got.$p") | head -n 20 >&2 || true
      fail "$1: kcat read $(wc -l <"$T/got.$p") records from kjs-main [$p], expected the $(wc -l <"$T/expect.$p") kafkajs produced, identical"
    fi
  done
  run_to "$T/got.auto" "$T/kcat.err" 60 kcat -C -b "$BROKER" -t kjs-auto -p 0 -o beginning -e -q -f '%o %k %s\n'
  [ "$(cat "$T/got.auto")" = "$(printf '0 a auto-1\n1 b auto-2')" ] ||
    fail "$1: kjs-auto holds [$(cat "$T/got.auto")]"
  log "$1: kcat read back every record kafkajs produced, identical"
}

start_server --partitions 1
kjs before-restart
read_back "before the restart"
stop_server
restart_server
read_back "after the restart"
kjs after-restart
read_back "after producing more"
done_ok
