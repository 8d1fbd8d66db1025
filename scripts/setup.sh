#!/usr/bin/env bash
# Installs the Debian packages alog needs to build, test and benchmark.
# Debian packages only, with one exception: kafkajs, the interop tests' JavaScript
# client, comes from the npm registry at the version its lock file pins (below).
# Nothing is vendored.
# Idempotent: packages already present are not reinstalled, apt is not touched at all
# when nothing is missing, npm only when tests/interop/node_modules is missing or stale.
set -euo pipefail

pkgs=(
  # build
  build-essential cmake pkg-config clang
  # libFuzzer and sanitizer runtimes for clang
  libclang-rt-14-dev
  # the engine's libraries: CRC32C (ISA-L), and Kafka's codecs
  libisal-dev zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
  # test framework
  libcmocka-dev
  # the CLI tests check JSON output with python3
  python3
  # benchmark peers
  libsqlite3-dev liblmdb-dev librocksdb-dev
  # interop tests of alogd (tests/interop/): kcat and librdkafka as Kafka clients
  kcat librdkafka-dev
  # alogd's topic test counts the fsyncs of a produce with strace
  strace
  # server benchmark (bench/server_bench.sh): Redis Streams as the peer of alogd
  redis-server redis-tools
)
# kafkajs (tests/interop/) needs Node.js and npm. Debian's nodejs and npm packages only
# when the machine has no node/npm of its own: an image's Node.js from elsewhere bundles
# npm and conflicts with Debian's npm package.
if ! command -v node >/dev/null 2>&1; then pkgs+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then pkgs+=(npm); fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists once if they are empty or stale (a fresh machine has none).
  if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ] || \
     ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# kafkajs for the interop tests, from the npm registry at the version pinned in
# tests/interop/package-lock.json, into tests/interop/node_modules (not committed).
# Only when missing or older than the lock file.
interop="$(cd "$(dirname "$0")/.." && pwd)/tests/interop"
if [ -f "$interop/package-lock.json" ] && \
   { [ ! -f "$interop/node_modules/kafkajs/package.json" ] || \
     [ "$interop/package-lock.json" -nt "$interop/node_modules/.package-lock.json" ]; }; then
  echo "setup: npm ci --prefix tests/interop (kafkajs)" >&2
  npm ci --prefix "$interop" --no-audit --no-fund --loglevel=error >&2
fi
