#!/usr/bin/env bash
# install: `cmake --install` (what `make install` runs) puts the tools (alog, alogd),
# the header, both libraries and alog.pc under a prefix, and a program built with
# `pkg-config alog` against them (shared, and static with --static) appends and reads
# a record.
# Skipped in sanitizer builds, whose libraries need the sanitizer runtime to link.
set -euo pipefail
. "$(dirname "$0")/common.sh"

if [ "${ALOG_INSTRUMENTED:-0}" = 1 ]; then
  echo "skip: $TEST_NAME (instrumented build)"
  exit 0
fi
[ -n "${ALOG_BUILD:-}" ] || fail "ALOG_BUILD is not set"
P=$T/prefix
run 0 cmake --install "$ALOG_BUILD" --prefix "$P"
for f in bin/alog bin/alogd include/alog.h; do
  [ -e "$P/$f" ] || fail "$f not installed"
done
pc=$(find "$P" -name alog.pc | head -1)
[ -n "$pc" ] || fail "alog.pc not installed"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
run 0 "$P/bin/alog" --help
run 0 "$P/bin/alogd" --help

cat >"$T/prog.c" <<'C'
#include <alog.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    (void)argc;
    alog_options o;
    alog_options_init(&o);
    alog *log;
    if (alog_open(argv[1], &o, &log) != ALOG_OK) { fprintf(stderr, "%s\n", alog_last_error()); return 1; }
    alog_record r = {0, 1234, "k", 1, "hello", 5, NULL, 0};
    int64_t off;
    if (alog_append(log, &r, &off) != ALOG_OK) return 1;
    alog_cursor *c;
    alog_record got;
    if (alog_cursor_open(log, off, &c) != ALOG_OK || alog_cursor_next(c, &got) != ALOG_OK) return 1;
    printf("%lld %lld %.*s\n", (long long)got.offset, (long long)got.timestamp,
           (int)got.value_len, (const char *)got.value);
    alog_cursor_close(c);
    return alog_close(log) == ALOG_OK ? 0 : 1;
}
C
libdir=$(pkg-config --variable=libdir alog)
run 0 cc -std=c11 -Wall -Werror "$T/prog.c" -o "$T/prog" $(pkg-config --cflags --libs alog) \
  -Wl,-rpath,"$libdir"
run 0 "$T/prog" "$T/log1"
assert_eq "0 1234 hello" "$(cat "$T/out")" "shared-library program"
# Static: the archive and the libraries alog.pc lists as private dependencies.
run 0 cc -std=c11 -Wall -Werror "$T/prog.c" -o "$T/prog-static" -I"$P/include" \
  "$libdir/libalog.a" $(pkg-config --static --libs-only-l alog | sed 's/-lalog //')
run 0 "$T/prog-static" "$T/log2"
assert_eq "0 1234 hello" "$(cat "$T/out")" "static program"
run 0 "$P/bin/alog" read "$T/log2" --format json
assert_contains "$T/out" '"value":"hello"' "installed alog reads the log"
echo "ok: $TEST_NAME"
