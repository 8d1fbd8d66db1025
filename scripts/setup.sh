#!/usr/bin/env bash
# Installs the Debian packages alog needs to build, test and benchmark.
# Only Debian packages: nothing is downloaded from anywhere else, nothing is vendored.
# Idempotent: packages already present are not reinstalled, apt is not touched at all
# when nothing is missing.
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
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

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
