#!/usr/bin/env bash
# kcat against alogd: under each compression codec (none gzip snappy lz4 zstd), kcat
# produces 10,000 keyed records with headers in two halves; the server is restarted;
# kcat reads them all back, byte for byte (offset, key, value, every header), from the
# beginning, from an offset (-o 5000, and -o 7777 inside a batch), from the tail (-o -100),
# and from a timestamp between the two halves (-o s@TIME): that read must start exactly
# at the first record of the second half.
set -euo pipefail
. "$(dirname "$0")/common.sh"
need_tool kcat python3

N=10000
HALF=$((N / 2))
CODECS=(none gzip snappy lz4 zstd)
# acks per codec: all three modes get used, with different batch sizes.
declare -A ACKS=([none]=-1 [gzip]=1 [snappy]=-1 [lz4]=0 [zstd]=all)
declare -A BATCH=([none]=1000 [gzip]=300 [snappy]=77 [lz4]=500 [zstd]=10000)
FMT='%o\t%T\t%k\t%s\t%h\n'

python3 "$INTEROP_DIR/gen_records.py" input 0 "$HALF" >"$T/in.1"
python3 "$INTEROP_DIR/gen_records.py" input "$HALF" "$((N - HALF))" >"$T/in.2"
python3 "$INTEROP_DIR/gen_records.py" expect 0 "$N" >"$T/expect.kv"

start_server

# produce CODEC INPUT: one kcat -P run; fails unless every record is delivered.
produce() {
  local codec=$1 input=$2
  run_to "$T/produce.out" "$T/produce.err" 60 \
    kcat -P -b "$BROKER" -t "kcat-$codec" -p 0 -K '\t' -z "$codec" \
      -H "codec=$codec" -H "trace=a=b,c" -H "empty=" -H "nullhdr" -H "dup=1" -H "dup=2" \
      -H "utf8=héllo wörld" \
      -X "acks=${ACKS[$codec]}" -X "batch.num.messages=${BATCH[$codec]}" -X linger.ms=20 \
      -X message.timeout.ms=30000 <"$input"
}

# wait_hwm CODEC N: the high watermark (ListOffsets, kcat -Q) must reach N: at once after
# an acknowledged produce; with acks=0 (no answer to wait for), within 10 s. The second
# half is only produced then: records on two connections have no order otherwise.
wait_hwm() {
  local codec=$1 want=$2 i got=""
  for i in $(seq 1 100); do
    run_to "$T/hwm.out" "$T/hwm.err" 30 kcat -Q -b "$BROKER" -t "kcat-$codec:0:-1"
    got=$(awk '{print $NF}' "$T/hwm.out")
    [ "$got" = "$want" ] && return 0
    [ "${ACKS[$codec]}" = 0 ] || break
    sleep 0.1
  done
  fail "$codec: high watermark $got after producing with acks=${ACKS[$codec]}, expected $want"
}

declare -A TMID TSTART TEND
for codec in "${CODECS[@]}"; do
  TSTART[$codec]=$(now_ms)
  produce "$codec" "$T/in.1"
  wait_hwm "$codec" "$HALF"
  sleep 0.005
  TMID[$codec]=$(now_ms)
  sleep 0.005
  produce "$codec" "$T/in.2"
  TEND[$codec]=$(now_ms)
  wait_hwm "$codec" "$N"
  log "$codec: produced $N records (acks=${ACKS[$codec]}, batch.num.messages=${BATCH[$codec]}, first half before ${TMID[$codec]} ms)"
done
server_alive

# consume CODEC WHAT OFFSET-SPEC FIRST: reads with kcat -C -e from OFFSET-SPEC and checks
# that it printed exactly records FIRST..N-1 (offset, key, value, headers).
consume() {
  local codec=$1 what=$2 spec=$3 first=$4
  local out=$T/$codec.$what.out hdrs
  hdrs="codec=$codec,trace=a=b,c,empty=,nullhdr=NULL,dup=1,dup=2,utf8=héllo wörld"
  run_to "$out" "$T/consume.err" 60 \
    kcat -C -b "$BROKER" -t "kcat-$codec" -p 0 -o "$spec" -e -q -f "$FMT"
  tail -n "+$((first + 1))" "$T/expect.kv" | sed "s/\$/\t$hdrs/" >"$T/expect.cur"
  cut -f1,3- "$out" >"$T/got.cur"
  if ! cmp -s "$T/expect.cur" "$T/got.cur"; then
    echo "--- first differences (expected vs got), records cut to 300 bytes:" >&2
    diff <(cut -c1-300 "$T/expect.cur") <(cut -c1-300 "$T/got.cur") | head -n 20 >&2 || true
    fail "$codec, read from $what (-o $spec): got $(wc -l <"$T/got.cur") records, expected $((N - first)) identical ones (records $first..$((N - 1)))"
  fi
  # Timestamps (CreateTime, set by the producer): each half within its produce window.
  awk -F'\t' -v s="${TSTART[$codec]}" -v m="${TMID[$codec]}" -v e="${TEND[$codec]}" -v h="$HALF" '
    { ts = $2 + 0; off = $1 + 0
      if (off < h && (ts < s || ts >= m)) { print "offset " off ": timestamp " ts " not in [" s ", " m ")"; bad = 1; exit }
      if (off >= h && (ts < m || ts > e)) { print "offset " off ": timestamp " ts " not in [" m ", " e "]"; bad = 1; exit } }
    END { exit bad }' "$out" >"$T/ts.err" || fail "$codec, read from $what: $(cat "$T/ts.err")"
}

# read_all PHASE: every read, every codec.
read_all() {
  local phase=$1 codec
  for codec in "${CODECS[@]}"; do
    consume "$codec" "beginning" beginning 0
    consume "$codec" "offset-5000" 5000 5000
    consume "$codec" "offset-7777" 7777 7777
    consume "$codec" "tail-100" -100 $((N - 100))
    consume "$codec" "timestamp" "s@${TMID[$codec]}" "$HALF"
    log "$codec: $phase: all reads identical (beginning, -o 5000, -o 7777, -o -100, -o s@${TMID[$codec]})"
  done
}

read_all "before restart"
stop_server
restart_server
read_all "after restart"

# The same after a kill -9 (nothing was written since the restart: nothing to lose).
kill9_server
restart_server
for codec in "${CODECS[@]}"; do
  consume "$codec" "beginning" beginning 0
done
log "all codecs: identical after kill -9 and restart"

done_ok
