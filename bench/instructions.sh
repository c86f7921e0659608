#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind's callgrind: hookwall (HMAC verify
# + memory dedup + forward, journal off, RUST_LOG=warn) next to the bare hyper proxy
# (bench/bare_hyper_proxy.rs), the floor for any proxy on the same HTTP stack. Seconds
# on this shared host move with whatever else runs; instruction counts do not, so two runs
# of the same binary agree closely and a change's cost shows at once.
#
#   bash bench/instructions.sh                  # REQUESTS=20000 WARMUP_REQUESTS=2000 CONNECTIONS=16
#   SKIP_BUILD=1 bash bench/instructions.sh     # use the existing target/release binaries
#   TOP=30 bash bench/instructions.sh           # more of hookwall's own functions
#
# Each proxy runs under callgrind; a warm-up of WARMUP_REQUESTS opens the connections and
# fills the pools; then the counters are zeroed, exactly REQUESTS are sent
# (bench/fixed_load.rs: fixed 1 KiB signed body, unique delivery ids, CONNECTIONS
# keep-alive connections) and the counts are dumped. The
# upstream is a plain hyper server outside valgrind. Everything is on 127.0.0.1.
set -euo pipefail

REQUESTS="${REQUESTS:-20000}"
WARMUP_REQUESTS="${WARMUP_REQUESTS:-2000}"
CONNECTIONS="${CONNECTIONS:-16}"
TOP="${TOP:-15}"
BENCH_NAME=instructions
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECRET="$BENCH_SECRET"
ROUTE_PATH="$BENCH_ROUTE_PATH"

SUDO=""
if [[ $EUID -ne 0 ]]; then SUDO="sudo"; fi
if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
  log "installing valgrind"
  $SUDO timeout 600 apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends valgrind
fi
command -v curl >/dev/null || die "curl is needed"

bench_release_build --bin hookwall --example bare_hyper_proxy --example fixed_load
HOOKWALL="$REL/hookwall"
BARE="$REL/examples/bare_hyper_proxy"
LOAD="$REL/examples/fixed_load"
for b in "$HOOKWALL" "$BARE" "$LOAD"; do [[ -x "$b" ]] || die "no binary at $b"; done

TMP="$(mktemp -d /tmp/hookwall-instructions.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ "${KEEP_TMP:-0}" == 1 ]] || rm -rf "$TMP"
}
trap cleanup EXIT

wait_port() { # port, what
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "$2 did not listen on $1"
}

P_UP="$(free_port)"
"$LOAD" upstream "127.0.0.1:$P_UP" &
PIDS+=($!)
wait_port "$P_UP" upstream

P_HW="$(free_port)"
P_ADM="$(free_port)"
cat >"$TMP/hookwall.toml" <<EOF
[server]
listen = "127.0.0.1:$P_HW"
max_body = "1MiB"
read_timeout = "60s"
max_concurrency = 1024
shutdown_grace = "1s"

[admin]
listen = "127.0.0.1:$P_ADM"

[journal]
enabled = false

[dedup]
store = "memory"
ttl = "1h"
lease = "120s"

$(bench_route "http://127.0.0.1:$P_UP/hooks/bench" 60s)
EOF
"$HOOKWALL" check --config "$TMP/hookwall.toml" >/dev/null || die "hookwall check failed"

# count LABEL URL -- CMD...: runs CMD under callgrind, counts REQUESTS, prints instructions.
count() {
  local label=$1 url=$2 port=$3
  shift 3
  local out="$TMP/callgrind.$label"
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    --dump-instr=no --compress-strings=no "$@" 2>"$TMP/$label.valgrind.log" &
  local vg=$!
  PIDS+=("$vg")
  wait_port "$port" "$label"
  "$LOAD" send "$url" "$WARMUP_REQUESTS" "$CONNECTIONS" "$SECRET" "warm-$label" >/dev/null \
    || die "$label: warm-up failed"
  # Forget what start-up and warm-up cost; count from here to the dump.
  callgrind_control --zero "$vg" >/dev/null 2>&1
  "$LOAD" send "$url" "$REQUESTS" "$CONNECTIONS" "$SECRET" "run-$label" >"$TMP/$label.load" \
    || { cat "$TMP/$label.load" >&2; die "$label: the measured requests failed"; }
  callgrind_control --dump "$vg" >/dev/null 2>&1
  kill -TERM "$vg" 2>/dev/null || true
  wait "$vg" 2>/dev/null || true
  # The dump made while running (out.1 and on); the final one at exit counted nothing.
  local dumped
  dumped="$(ls "$out".* 2>/dev/null | head -1)"
  [[ -n "$dumped" ]] || die "$label: callgrind wrote no dump"
  mv "$dumped" "$out.run"
  local total
  total="$(awk '/^(summary|totals):/ {print $2; exit}' "$out.run")"
  [[ -n "$total" ]] || die "$label: no instruction total in $out.run"
  echo "$total"
}

log "bare hyper proxy under callgrind ($REQUESTS requests after $WARMUP_REQUESTS)"
P_BARE="$(free_port)"
BARE_IR="$(count bare "http://127.0.0.1:$P_BARE$ROUTE_PATH" "$P_BARE" "$BARE" "127.0.0.1:$P_BARE" "127.0.0.1:$P_UP")"
log "hookwall under callgrind"
HW_IR="$(RUST_LOG=warn count hookwall "http://127.0.0.1:$P_HW$ROUTE_PATH" "$P_HW" "$HOOKWALL" run --config "$TMP/hookwall.toml")"

# Inclusive instructions per function (one line per function: inlined code is listed
# under several source files, the largest count is the function's).
inclusive() { # callgrind file -> "instructions<TAB>function", largest first
  callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$1" 2>/dev/null \
    | awk '/^ *[0-9,]+ / {
        ir = $1; gsub(",", "", ir); ir += 0
        line = $0
        if (!match(line, /\.(rs|c|S):/)) next
        fn = substr(line, RSTART + RLENGTH)
        sub(/ \[[^]]*\]$/, "", fn)
        if (!(fn in best) || ir > best[fn]) best[fn] = ir
      }
      END { for (f in best) printf "%d\t%s\n", best[f], f }' \
    | sort -t$'\t' -k1,1nr
}
inclusive "$TMP/callgrind.hookwall.run" >"$TMP/hookwall.inclusive"
# valgrind's CPU has no SHA extensions, so SHA-256 runs in software under it (about 60
# instructions per byte) although it uses SHA-NI natively where the CPU has it (grep -w
# sha_ni /proc/cpuinfo). The second ratio leaves that compression function out.
SHA_IR="$(awk -F'\t' '$2 ~ /^sha2::sha256::compress256/ { if ($1 > m) m = $1 } END { print m + 0 }' "$TMP/hookwall.inclusive")"
SHA_NI="no"
if grep -qw sha_ni /proc/cpuinfo; then SHA_NI="yes"; fi

echo
awk -v b="$BARE_IR" -v h="$HW_IR" -v s="$SHA_IR" -v n="$REQUESTS" -v ni="$SHA_NI" 'BEGIN {
  printf "instructions per request (%d requests after the warm-up, callgrind; user space only):\n", n
  printf "  bare hyper proxy             %8.0f\n", b / n
  printf "  hookwall                     %8.0f   ratio %.2f (target <= 1.20)\n", h / n, h / b
  printf "  hookwall without SHA-256     %8.0f   ratio %.2f (SHA-256 compression in software under valgrind: %.0f per request; this CPU has SHA-NI: %s)\n", (h - s) / n, (h - s) / b, s / n, ni }'
echo
echo "hookwall's own functions, inclusive instructions per request (top $TOP):"
awk -F'\t' -v n="$REQUESTS" -v top="$TOP" '$2 ~ /hookwall::/ && $2 !~ /^core::ptr::drop_in_place/ {
    printf "  %8.0f  %s\n", $1 / n, substr($2, 1, 150); if (++k >= top) exit }' "$TMP/hookwall.inclusive"
echo
echo "other code hookwall's requests run, inclusive per request, under half of the total (top $TOP):"
awk -F'\t' -v n="$REQUESTS" -v top="$TOP" -v h="$HW_IR" '$1 < h * 0.5 && $2 !~ /hookwall::/ {
    printf "  %8.0f  %s\n", $1 / n, substr($2, 1, 150); if (++k >= top) exit }' "$TMP/hookwall.inclusive"
