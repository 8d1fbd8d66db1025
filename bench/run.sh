#!/usr/bin/env bash
# make bench: runs alog-bench (built by `make build` into build/bench/) and prints its
# table. Arguments are passed on, e.g. `make bench ARGS=--quick` or
# `bash bench/run.sh --runs 5 --json`. The data goes to $ALOG_BENCH_DIR (default
# build/bench-data) and is deleted afterwards; it needs about 1 GB free.
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
status=0
"$BIN" --dir "$dir" "$@" || status=$?
rm -rf "$dir"
exit $status
