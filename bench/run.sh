#!/usr/bin/env bash
# make bench: runs alog-bench (built by `make build` into build/bench/) and prints its
# table. Arguments are passed on, e.g. `make bench ARGS=--quick` or
# `bash bench/run.sh --runs 5 --json`. The data goes to $ALOG_BENCH_DIR (default
# build/bench-data) and is deleted afterwards; it needs about 1 GB free.
# Then bench/server_bench.sh: alogd against Redis Streams (XADD, AOF) at two
# durabilities, and alogd's idle memory (about 1-3 minutes); --no-server skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${ALOG_BENCH_BIN:-build/bench/alog-bench}
if [ ! -x "$BIN" ]; then
  echo "bench/run.sh: $BIN is missing; run 'make build' first (it needs the SQLite, LMDB" \
       "and RocksDB development packages that scripts/setup.sh installs)" >&2
  exit 1
fi
dir=${ALOG_BENCH_DIR:-build/bench-data}
mkdir -p "$dir"
server=1
args=()
for a in "$@"; do
  if [ "$a" = "--no-server" ]; then server=0; else args+=("$a"); fi
done
status=0
"$BIN" --dir "$dir" "${args[@]+"${args[@]}"}" || status=$?
if [ $server = 1 ]; then
  ALOG_BENCH_BIN=$BIN ALOG_BENCH_DIR=$dir bash bench/server_bench.sh --dir "$dir" \
    "${args[@]+"${args[@]}"}" || status=$?
fi
rm -rf "$dir"
exit $status
