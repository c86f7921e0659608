#!/usr/bin/env bash
# hookwall's memory, measured: RSS idle; bytes per delivery id remembered by the memory
# store; RSS with 1,000 idle keep-alive connections and an empty store; peak RSS while
# large bodies arrive on more connections than max_concurrency admits (the bound is
# max_body × max_concurrency). bench/run.sh runs this at its end; alone:
#
#   bash bench/memory.sh              # IDS=200000 CONNS=1000
#   SKIP_BUILD=1 bash bench/memory.sh
#
# Everything is on 127.0.0.1; the load is bench/fixed_load.rs (signed POSTs, unique ids).
set -euo pipefail

IDS="${IDS:-200000}"
CONNS="${CONNS:-1000}"
BIG_BODY="${BIG_BODY:-1048576}"       # bytes per body in the large-body run
BIG_CONCURRENCY="${BIG_CONCURRENCY:-8}" # max_concurrency in the large-body run
BIG_SENDERS="${BIG_SENDERS:-64}"       # connections sending large bodies at once
BENCH_NAME=memory
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECRET="$BENCH_SECRET"
ROUTE_PATH="$BENCH_ROUTE_PATH"

bench_release_build --bin hookwall --example fixed_load
HOOKWALL="$REL/hookwall"
LOAD="$REL/examples/fixed_load"
for b in "$HOOKWALL" "$LOAD"; do [[ -x "$b" ]] || die "no binary at $b"; done

TMP="$(mktemp -d /tmp/hookwall-memory.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ "${KEEP_TMP:-0}" == 1 ]] || rm -rf "$TMP"
}
trap cleanup EXIT

wait_http() { # url, what, log file
  for _ in $(seq 1 300); do
    curl -sf --max-time 1 "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  tail -5 "$3" >&2 || true
  die "$2 did not answer $1"
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

P_UP="$(free_port)"
"$LOAD" upstream "127.0.0.1:$P_UP" &
PIDS+=($!)

# start_hookwall NAME MAX_CONCURRENCY MAX_BODY -> HW_PID, HW_URL, HW_ADMIN
start_hookwall() {
  local name=$1 port admin
  port="$(free_port)"
  admin="$(free_port)"
  cat >"$TMP/$name.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
max_body = "$3"
read_timeout = "30s"
max_concurrency = $2
# Every benchmark connection comes from 127.0.0.1: one client, allowed all of it.
max_concurrency_per_ip = $2
shutdown_grace = "1s"

[admin]
listen = "127.0.0.1:$admin"

[journal]
enabled = false

[dedup]
store = "memory"
ttl = "1h"
lease = "60s"
max_entries = 20000000

$(bench_route "http://127.0.0.1:$P_UP/hooks/bench" 30s)
EOF
  RUST_LOG=warn "$HOOKWALL" run --config "$TMP/$name.toml" 2>"$TMP/$name.log" &
  HW_PID=$!
  PIDS+=("$HW_PID")
  HW_URL="http://127.0.0.1:$port$ROUTE_PATH"
  HW_ADMIN="http://127.0.0.1:$admin"
  wait_http "$HW_ADMIN/healthz" "hookwall ($name)" "$TMP/$name.log"
}
stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
entries() {
  curl -sf --max-time 5 "$HW_ADMIN/metrics" | awk '$1 == "hookwall_dedup_entries" {print $2}'
}

# 1. Idle, and bytes per remembered id.
start_hookwall ids 1024 1MiB
# One request so every lazily made piece (pools, the first shard's table) exists.
"$LOAD" send "$HW_URL" 16 4 "$SECRET" probe >/dev/null || die "probe failed"
sleep 1
IDLE="$(rss_kib "$HW_PID")"
log "sending $IDS deliveries with unique ids"
"$LOAD" send "$HW_URL" "$IDS" 32 "$SECRET" ids >/dev/null || die "the id run failed"
sleep 1
HELD="$(entries)"
AFTER="$(rss_kib "$HW_PID")"
stop "$HW_PID"

# 2. Many idle keep-alive connections, empty store.
start_hookwall conns 1024 1MiB
sleep 1
CONN_BEFORE="$(rss_kib "$HW_PID")"
log "holding $CONNS keep-alive connections"
FIXED_LOAD_HOLD=10 "$LOAD" send "$HW_URL" "$CONNS" "$CONNS" "$SECRET" conns >"$TMP/conns.out" 2>&1 &
HOLDER=$!
PIDS+=("$HOLDER")
for _ in $(seq 1 300); do grep -q holding "$TMP/conns.out" && break; sleep 0.1; done
grep -q holding "$TMP/conns.out" || { cat "$TMP/conns.out" >&2; die "the connections were not all answered"; }
OPEN="$(ls "/proc/$HW_PID/fd" | wc -l)"
CONN_RSS="$(rss_kib "$HW_PID")"
wait "$HOLDER" || true
stop "$HW_PID"

# 3. Large bodies on more connections than max_concurrency admits.
start_hookwall bodies "$BIG_CONCURRENCY" 1MiB
sleep 1
BIG_BEFORE="$(rss_kib "$HW_PID")"
log "$BIG_SENDERS connections sending $BIG_BODY-byte bodies, max_concurrency $BIG_CONCURRENCY"
# Answers past max_concurrency are 503 overloaded, which fixed_load counts as failures:
# only memory is measured here.
FIXED_LOAD_BODY="$BIG_BODY" "$LOAD" send "$HW_URL" $((BIG_SENDERS * 8)) "$BIG_SENDERS" "$SECRET" big >/dev/null 2>&1 || true
BIG_PEAK="$(hwm_kib "$HW_PID")"
stop "$HW_PID"

echo
echo "memory (VmRSS; hookwall, memory store, journal off, RUST_LOG=warn):"
echo "  idle:                                   $(mib "$IDLE") MiB (target <= 24)"
awk -v a="$AFTER" -v b="$IDLE" -v n="${HELD:-0}" 'BEGIN {
  printf "  per remembered delivery id:             %.0f B (%d ids held; RSS %.1f -> %.1f MiB; target <= 48)\n",
    (n > 0 ? (a - b) * 1024 / n : 0), n, b / 1024, a / 1024 }'
echo "  $CONNS idle keep-alive connections:     $(mib "$CONN_RSS") MiB ($(mib "$CONN_BEFORE") before; $OPEN fds open; target <= 64)"
awk -v p="$BIG_PEAK" -v b="$BIG_BEFORE" -v s="$BIG_BODY" -v c="$BIG_CONCURRENCY" -v n="$BIG_SENDERS" 'BEGIN {
  printf "  %d senders of %.0f KiB bodies:          peak %.1f MiB, %.1f MiB over idle (bound max_body x max_concurrency = %.1f MiB)\n",
    n, s / 1024, p / 1024, (p - b) / 1024, s * c / 1048576 }'
