#!/usr/bin/env bash
# hookwall throughput/latency benchmark. See bench/README.md.
#
#   bash bench/run.sh                 # DURATION=15 (seconds per measured run)
#   DURATION=10 bash bench/run.sh
#
# Targets, all on 127.0.0.1, measured one after another with the same wrk script:
#   direct     wrk -> nginx upstream (return 200 "ok")
#   nginx      wrk -> nginx proxy_pass (keepalive pool) -> upstream
#   hookwall   wrk -> hookwall (HMAC verify + memory dedup + forward) -> upstream, RUST_LOG=warn
#   hookwall   same, default info logging (one JSON line per request, stderr to a file)
#   hookwall   memory dedup, Redis dedup; journal off in those three, then the journal on
#              SQLite and on PostgreSQL (a private server started here, or POSTGRES_URL)
set -euo pipefail

DURATION="${DURATION:-15}"
WARMUP="${WARMUP:-3}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
BUILD_TIMEOUT="${BUILD_TIMEOUT:-1800}"   # SKIP_BUILD=1 uses an existing target/release/hookwall

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
SECRET="$BENCH_SECRET"
ROUTE_PATH="$BENCH_ROUTE_PATH"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
LUA="$BENCH_DIR/unique_delivery.lua"
CMDLINE="DURATION=$DURATION"
for v in WARMUP THREADS CONNECTIONS SKIP_BUILD IDLE_MAX IDLE_WAIT KEEP_TMP POSTGRES_URL; do
  if [[ -n "${!v+x}" ]]; then CMDLINE+=" $v=${!v}"; fi
done
CMDLINE+=" bash $0${*:+ $*}"

die() { echo "bench: ERROR: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------- 1. tools and build
SUDO=""
if [[ $EUID -ne 0 ]]; then SUDO="sudo"; fi
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
for t in curl python3 openssl getconf timeout; do
  command -v "$t" >/dev/null 2>&1 || need+=("$t")
done
if ((${#need[@]})); then
  # python3/openssl/curl are package names too; getconf/timeout come with libc-bin/coreutils.
  pkgs=()
  for p in "${need[@]}"; do
    case "$p" in getconf) pkgs+=(libc-bin) ;; timeout) pkgs+=(coreutils) ;; *) pkgs+=("$p") ;; esac
  done
  log "installing: ${pkgs[*]}"
  # Keep the distro's nginx service from starting (it would listen on :80): the standard
  # Debian policy-rc.d mechanism, only if none exists, removed right after.
  made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $SUDO timeout 600 apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y --no-install-recommends "${pkgs[@]}"
  if ((made_policy)); then $SUDO rm -f /usr/sbin/policy-rc.d; fi
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

# The binaries are looked for in the repository's own target/.
unset CARGO_TARGET_DIR
HOOKWALL="$ROOT/target/release/hookwall"
if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
  log "SKIP_BUILD=1: using the existing $HOOKWALL"
else
  log "building hookwall (cargo build --release; may wait for the cargo lock)"
  (cd "$ROOT" && timeout "$BUILD_TIMEOUT" cargo build --release --bin hookwall --example bare_hyper_proxy --example journal_write --example fixed_load) \
    || die "cargo build --release failed"
fi
[[ -x "$HOOKWALL" ]] || die "no binary at $HOOKWALL"
BARE="$ROOT/target/release/examples/bare_hyper_proxy"
[[ -x "$BARE" ]] || die "no binary at $BARE (cargo build --release --example bare_hyper_proxy)"
JOURNAL_WRITE="$ROOT/target/release/examples/journal_write"
[[ -x "$JOURNAL_WRITE" ]] || die "no binary at $JOURNAL_WRITE (cargo build --release --example journal_write)"

# ---------------------------------------------------------------- process bookkeeping
TMP="$(mktemp -d /tmp/hookwall-bench.XXXXXX)"
chmod 755 "$TMP"
PIDS=()
PG_STARTED=0
AS_PG=()
stop_pg() { # the private PostgreSQL, if this script started it
  if ((PG_STARTED)); then
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$TMP/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    PG_STARTED=0
  fi
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pg
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ "${KEEP_TMP:-0}" == 1 || $rc -ne 0 ]]; then
    log "temp dir kept: $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stop_pid() { # stop one process we started, bounded
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=()
  for p in "${PIDS[@]}"; do [[ "$p" == "$pid" ]] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}

# Free 127.0.0.1 ports (all sockets held open until every port is chosen, so no repeats).
read -r P_UP P_PROXY P_HW1 P_ADM1 P_HW2 P_ADM2 P_HW3 P_ADM3 P_BARE P_HW4 P_ADM4 P_HW5 P_ADM5 P_PG P_HW6 P_ADM6 P_HW7 P_ADM7 < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(18):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)

wait_http() { # url, what, pid: poll until any HTTP answer, at most 15 s
  local url=$1 what=$2 pid=$3
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || die "$what exited during startup (see $TMP)"
    if curl -s -o /dev/null --max-time 1 "$url"; then return 0; fi
    sleep 0.1
  done
  die "$what not ready after 15 s ($url)"
}

cpu_ticks() { # utime+stime of a pid (all threads), in clock ticks
  # Fields after the ")" closing comm: state=1 ... utime=12 stime=13.
  local s
  s="$(cat "/proc/$1/stat")"
  s="${s##*) }"
  awk '{print $12 + $13}' <<<"$s"
}
CLK_TCK="$(getconf CLK_TCK)"

cpu_sample() { # "busy total" jiffies of the whole machine; busy = user+nice+system+steal
  # (irq/softirq left out: loopback networking lands there and is not charged to processes)
  awk '/^cpu /{b=$2+$3+$4+$9; print b, b+$5+$6+$7+$8; exit}' /proc/stat
}
bg_busy() { # secs -> % of the whole machine busy meanwhile (our servers idle => background load)
  local b0 t0 b1 t1
  read -r b0 t0 < <(cpu_sample); sleep "$1"; read -r b1 t1 < <(cpu_sample)
  awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" 'BEGIN{printf "%.0f", (t > 0 ? 100*b/t : 0)}'
}
# Other work on the machine (a concurrent cargo build, ...) steals CPU from the measured
# processes. Before each target wait (bounded) until background load is low, and report it.
IDLE_MAX="${IDLE_MAX:-10}"   # % of the whole machine
IDLE_WAIT="${IDLE_WAIT:-300}" # seconds, per target
wait_idle() { # label -> sets BG_PRE
  local label=$1 start=$SECONDS
  BG_PRE="$(bg_busy 2)"
  while ((BG_PRE > IDLE_MAX && SECONDS - start < IDLE_WAIT)); do
    log "$label: machine ${BG_PRE}% busy with other work; waiting for it to drop below ${IDLE_MAX}% (max ${IDLE_WAIT}s)"
    BG_PRE="$(bg_busy 2)"
  done
  ((BG_PRE <= IDLE_MAX)) || log "WARNING: $label: measuring with ${BG_PRE}% background CPU; numbers are contaminated"
}

nginx_worker() { # the single worker of an nginx master we started
  local master=$1 w=""
  for _ in $(seq 50); do
    w="$(cat "/proc/$master/task/$master/children" 2>/dev/null | awk '{print $1}')"
    [[ -n "$w" ]] && { echo "$w"; return 0; }
    sleep 0.1
  done
  die "no worker process under nginx master $master"
}

# ---------------------------------------------------------------- 5. header
echo "== hookwall benchmark =="
echo "command:  $CMDLINE"
echo "machine:  nproc=$(nproc); cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo); kernel=$(uname -sr)"
echo "tools:    $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'); $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'); hookwall $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet HEAD -- src 2>/dev/null || echo ' (+uncommitted src changes)'), binary built $(date -r "$HOOKWALL" '+%F %T')"
echo "load:     wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, ${WARMUP}s warmup per target, 1024-byte signed POST, unique X-Bench-Delivery per request"
echo

# ---------------------------------------------------------------- 3. body + signature
BODY="$TMP/body.json"
python3 - "$BODY" <<'EOF'
import sys
head = '{"type":"bench.event","id":"evt_bench","created":1767225600,"data":{"pad":"'
tail = '"}}'
pad = 1024 - len(head) - len(tail)
body = head + ("abcdefghijklmnopqrstuvwxyz0123456789" * 40)[:pad] + tail
assert len(body.encode()) == 1024
open(sys.argv[1], "wb").write(body.encode())
EOF
[[ "$(wc -c <"$BODY")" == 1024 ]] || die "body is not 1024 bytes"
SIG="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$BODY" | awk '{print $1}')"
export BENCH_BODY_FILE="$BODY" BENCH_SIGNATURE="$SIG"

# ---------------------------------------------------------------- 2. nginx upstream + proxy
nginx_conf() { # name, server-block body -> sets NGINX_PID
  local name=$1 body=$2 d="$TMP/$1"
  mkdir -p "$d/logs" "$d/tmp"
  chmod 777 "$d/tmp"
  local user=""
  if [[ $EUID -eq 0 ]]; then user="user root;"; fi
  cat >"$d/nginx.conf" <<EOF
$user
daemon off;
master_process on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $d/tmp/client;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    # nginx's default (1000) would close wrk's connections every 1000 requests;
    # hookwall keeps client connections open, so lift it for a like-for-like comparison.
    keepalive_requests 1000000;
    keepalive_timeout 75s;
$body
}
EOF
  "$NGINX" -t -q -p "$d" -e "$d/logs/error.log" -c "$d/nginx.conf" || die "nginx config $name invalid"
  "$NGINX" -p "$d" -e "$d/logs/error.log" -c "$d/nginx.conf" >"$d/logs/stdout.log" 2>&1 &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
}

nginx_conf upstream "
    server {
        listen 127.0.0.1:$P_UP;
        location / { return 200 \"ok\"; }
    }"
UP_PID=$NGINX_PID
nginx_conf proxy "
    upstream bench_up {
        server 127.0.0.1:$P_UP;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$P_PROXY;
        # Bodies up to the scale run's 1 MiB are kept in memory, as hookwall keeps them.
        client_max_body_size 2m;
        client_body_buffer_size 2m;
        location / {
            proxy_pass http://bench_up;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
PROXY_PID=$NGINX_PID
wait_http "http://127.0.0.1:$P_UP/" "nginx upstream" "$UP_PID"
wait_http "http://127.0.0.1:$P_PROXY/" "nginx proxy" "$PROXY_PID"
UP_WORKER="$(nginx_worker "$UP_PID")"
PROXY_WORKER="$(nginx_worker "$PROXY_PID")"

# ---------------------------------------------------------------- hookwall config
hookwall_conf() { # file, listen port, admin port, redis url ("" = memory store), journal (off|sqlite|postgres), delivery (sync|buffered-sqlite|buffered-postgres)
  local store='store = "memory"'
  if [[ -n "${4:-}" ]]; then store="store = \"redis\"
redis_url = \"$4\"
call_timeout = \"250ms\""; fi
  local journal
  case "${5:-off}" in
    off) journal='[journal]
enabled = false' ;;
    # The journal's defaults (bodies = "accepted": every benchmark body is kept).
    sqlite) journal="[storage]
path = \"${1%.toml}.db\"" ;;
    postgres) journal="[storage]
backend = \"postgres\"
postgres_url = \"$PG_URL\"" ;;
    *) die "journal mode ${5}" ;;
  esac
  # Buffered: the queue on SQLite or PostgreSQL, journal off (the acceptance and the
  # queue are what is measured).
  local delivery=""
  case "${6:-sync}" in
    sync) ;;
    buffered-sqlite) journal="[journal]
enabled = false
[storage]
path = \"${1%.toml}.db\""; delivery='delivery = "buffered"' ;;
    buffered-postgres) journal="[journal]
enabled = false
[storage]
backend = \"postgres\"
postgres_url = \"$PG_URL\""; delivery='delivery = "buffered"' ;;
    *) die "delivery mode ${6}" ;;
  esac
  cat >"$1" <<EOF
[server]
listen = "127.0.0.1:$2"
max_body = "1MiB"
read_timeout = "10s"
max_concurrency = 1024
# Every benchmark connection comes from 127.0.0.1: one client, allowed all of it.
max_concurrency_per_ip = 1024
shutdown_grace = "1s"

[admin]
listen = "127.0.0.1:$3"

$journal

[dedup]
$store
ttl = "1h"
lease = "60s"
max_entries = 20000000

$(bench_route "http://127.0.0.1:$P_UP/hooks/bench" 10s "$delivery")
EOF
  "$HOOKWALL" check --config "$1" >"$1.check" 2>&1 || { cat "$1.check" >&2; die "hookwall check failed for $1"; }
}

# ---------------------------------------------------------------- 4. measurement
RESULTS=()   # "label|rps|p50|p99|gw_us|up_us|wrk_us|non2xx|requests|socket_errors|other pre/run/post"

run_wrk() { # label, url, run-id  -> prints the BENCH_RESULT line
  local label=$1 url=$2 run=$3 d=$4 out
  out="$TMP/wrk-$run.txt"
  BENCH_RUN="$run" timeout $((d + 30)) \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${d}s" --latency --timeout 10s -s "$LUA" "$url" >"$out" 2>&1 \
    || { cat "$out" >&2; die "wrk failed for $label ($run)"; }
  local line
  # This subshell reaped timeout, which reaped wrk: cutime+cstime = wrk's CPU (+ timeout's).
  local st
  read -r st <"/proc/$BASHPID/stat"
  st="${st##*) }"
  read -r -a st <<<"$st"
  line="$(grep '^BENCH_RESULT' "$out")" || { cat "$out" >&2; die "no BENCH_RESULT from wrk ($label)"; }
  echo "$line wrk_ticks=$((st[13] + st[14]))"
}

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }

check_result() { # label, result-line
  local label=$1 line=$2 req n2 se
  req="$(field "$line" requests)"; n2="$(field "$line" non2xx)"; se="$(field "$line" socket_errors)"
  ((req > 0)) || die "$label: wrk completed 0 requests"
  if ((n2 * 1000 > req)); then
    echo "$label: $n2 of $req responses were NOT 2xx (> 0.1%) -- the numbers are meaningless" >&2
    die "$label rejected requests; inspect $TMP"
  fi
  ((n2 == 0)) || log "WARNING: $label: $n2 non-2xx of $req (under the 0.1% limit)"
  ((se == 0)) || log "WARNING: $label: $se socket errors (connect/read/write/timeout)"
}

measure() { # label, url, gateway-pid or "", upstream-worker-pid
  local label=$1 url=$2 gw=$3 up=$4 line
  log "$label: warmup ${WARMUP}s"
  line="$(run_wrk "$label" "$url" "warm-$label-$RANDOM" "$WARMUP")"
  check_result "$label (warmup)" "$line"
  wait_idle "$label"
  local gw0=0 gw1=0 up0 up1 mb0 mt0 mb1 mt1 bg_post
  if [[ -n "$gw" ]]; then gw0="$(cpu_ticks "$gw")"; fi
  up0="$(cpu_ticks "$up")"
  # A side process to count too (redis-server in the Redis run): its CPU and commandstats.
  local side0=0 side1=0
  if [[ -n "${SIDE_PID:-}" ]]; then
    side0="$(cpu_ticks "$SIDE_PID")"
    redis-cli -s "$REDIS_SOCK" config resetstat >/dev/null
  fi
  read -r mb0 mt0 < <(cpu_sample)
  log "$label: measuring ${DURATION}s"
  line="$(run_wrk "$label" "$url" "main-$label-$RANDOM" "$DURATION")"
  read -r mb1 mt1 < <(cpu_sample)
  if [[ -n "${SIDE_PID:-}" ]]; then
    side1="$(cpu_ticks "$SIDE_PID")"
    redis-cli -s "$REDIS_SOCK" info commandstats >"$TMP/commandstats-$label.txt"
  fi
  if [[ -n "$gw" ]]; then gw1="$(cpu_ticks "$gw")"; fi
  up1="$(cpu_ticks "$up")"
  check_result "$label" "$line"
  bg_post="$(bg_busy 1)"
  ((bg_post <= IDLE_MAX)) || log "WARNING: $label: ${bg_post}% background CPU right after the run"
  local req wt gw_us up_us wrk_us bg_run
  req="$(field "$line" requests)"
  wt="$(field "$line" wrk_ticks)"
  per_req() { awk -v d="$1" -v t="$CLK_TCK" -v n="$req" 'BEGIN{printf "%.1f", d/t/n*1e6}'; }
  up_us="$(per_req $((up1 - up0)))"
  wrk_us="$(per_req "$wt")"
  gw_us="-"
  if [[ -n "$gw" ]]; then gw_us="$(per_req $((gw1 - gw0)))"; fi
  if [[ -n "${SIDE_PID:-}" ]]; then
    SIDE_US="$(per_req $((side1 - side0)))"
    SIDE_REQUESTS="$req"
  fi
  # Whole-machine busy time during the run that is neither wrk, the gateway nor the upstream.
  bg_run="$(awk -v b="$((mb1 - mb0 - (gw1 - gw0) - (up1 - up0) - wt - (side1 - side0)))" -v t="$((mt1 - mt0))" \
    'BEGIN{o = (t > 0 ? 100*b/t : 0); if (o < 0) o = 0; printf "%.0f", o}')"
  ((bg_run <= IDLE_MAX)) || log "WARNING: $label: ${bg_run}% of the machine went to other work DURING the run; numbers are contaminated"
  RESULTS+=("$label|$(field "$line" rps)|$(field "$line" p50_ms)|$(field "$line" p99_ms)|$gw_us|$up_us|$wrk_us|$(field "$line" non2xx)|$req|$(field "$line" socket_errors)|$BG_PRE/$bg_run/$bg_post")
}

start_hookwall() { # name, port, admin port, mode(warn|info), redis url or "", journal, delivery -> sets HW_PID
  local name=$1 conf="$TMP/$1.toml"
  hookwall_conf "$conf" "$2" "$3" "${5:-}" "${6:-off}" "${7:-sync}"
  if [[ "$4" == warn ]]; then
    RUST_LOG=warn "$HOOKWALL" --log-format json run --config "$conf" 2>"$TMP/$name.log" &
  else
    env -u RUST_LOG "$HOOKWALL" --log-format json run --config "$conf" 2>"$TMP/$name.log" &
  fi
  HW_PID=$!
  PIDS+=("$HW_PID")
  wait_http "http://127.0.0.1:$3/healthz" "hookwall ($name)" "$HW_PID"
  curl -sf --max-time 2 "http://127.0.0.1:$3/healthz" >/dev/null || die "hookwall ($name) /healthz not 200"
  # One signed request by hand: fail fast with the gateway's own answer if it rejects.
  local code
  code="$(curl -s -o "$TMP/$name.probe" -w '%{http_code}' --max-time 5 -X POST \
    -H 'Content-Type: application/json' -H "X-Bench-Signature: $SIG" -H "X-Bench-Delivery: probe-$name" \
    --data-binary @"$BODY" "http://127.0.0.1:$2$ROUTE_PATH")"
  [[ "$code" == 2* ]] || { cat "$TMP/$name.probe" >&2; echo >&2; die "hookwall ($name) answered $code to a signed probe"; }
}

hw_outcomes() { # admin port, name -> "forwarded=N duplicate=N ..." from /metrics; fails on duplicates
  local m
  m="$(curl -sf --max-time 5 "http://127.0.0.1:$1/metrics")" || die "hookwall ($2) /metrics failed"
  local summary
  summary="$(awk '/^hookwall_requests_total\{/ && match($0, /outcome="[^"]*"/) {
      o = substr($0, RSTART + 9, RLENGTH - 10); n[o] += $NF }
    END { for (o in n) printf "%s%s=%d", (k++ ? " " : ""), o, n[o] }' <<<"$m")"
  echo "hookwall ($2) outcomes, whole life (probe+warmup+run): ${summary:-none}" >&2
  local fwd dup
  fwd="$(sed -n 's/.*forwarded=\([0-9]*\).*/\1/p' <<<"$summary")"
  dup="$(sed -n 's/.*duplicate=\([0-9]*\).*/\1/p' <<<"$summary")"
  ((${fwd:-0} > 0)) || die "hookwall ($2) forwarded nothing"
  ((${dup:-0} * 1000 <= ${fwd:-0})) || die "hookwall ($2) answered ${dup} deliveries as duplicates: ids were not unique"
  echo "$summary"
}

declare -A RSS_OF
measure direct "http://127.0.0.1:$P_UP$ROUTE_PATH" "" "$UP_WORKER"
measure nginx-proxy "http://127.0.0.1:$P_PROXY$ROUTE_PATH" "$PROXY_WORKER" "$UP_WORKER"
RSS_OF[nginx-proxy]="$(awk '/^VmHWM/{print $2}' "/proc/$PROXY_WORKER/status")"

# The floor for any hyper-based proxy here: hyper server + client, no checks (bench/bare_hyper_proxy.rs).
"$BARE" "127.0.0.1:$P_BARE" "127.0.0.1:$P_UP" 2>"$TMP/bare.log" &
BARE_PID=$!
PIDS+=("$BARE_PID")
wait_http "http://127.0.0.1:$P_BARE/" "bare hyper proxy" "$BARE_PID"
measure hyper-bare "http://127.0.0.1:$P_BARE$ROUTE_PATH" "$BARE_PID" "$UP_WORKER"
RSS_OF[hyper-bare]="$(awk '/^VmHWM/{print $2}' "/proc/$BARE_PID/status")"
stop_pid "$BARE_PID"

start_hookwall hookwall-warn "$P_HW1" "$P_ADM1" warn "" off
measure hookwall-warn "http://127.0.0.1:$P_HW1$ROUTE_PATH" "$HW_PID" "$UP_WORKER"
RSS_WARN="$(awk '/^VmHWM/{print $2, $3}' "/proc/$HW_PID/status")"
RSS_OF[hookwall-warn]="${RSS_WARN% *}"
OUT_WARN="$(hw_outcomes "$P_ADM1" hookwall-warn)"
stop_pid "$HW_PID"

start_hookwall hookwall-info "$P_HW2" "$P_ADM2" info "" off
measure hookwall-info "http://127.0.0.1:$P_HW2$ROUTE_PATH" "$HW_PID" "$UP_WORKER"
RSS_INFO="$(awk '/^VmHWM/{print $2, $3}' "/proc/$HW_PID/status")"
RSS_OF[hookwall-info]="${RSS_INFO% *}"
OUT_INFO="$(hw_outcomes "$P_ADM2" hookwall-info)"
stop_pid "$HW_PID"
# Redis dedup: a private redis-server on a unix socket, no persistence (benchmark only).
command -v redis-server >/dev/null || die "redis-server is needed for the Redis run (apt-get install redis-server)"
REDIS_SOCK="$TMP/redis.sock"
redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 --save "" --appendonly no \
  --dir "$TMP" >"$TMP/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 1 200); do [[ -S "$REDIS_SOCK" ]] && break; sleep 0.05; done
[[ -S "$REDIS_SOCK" ]] || die "redis-server did not start"
start_hookwall hookwall-redis "$P_HW3" "$P_ADM3" warn "redis+unix://$REDIS_SOCK" off
SIDE_PID="$REDIS_PID" measure hookwall-redis "http://127.0.0.1:$P_HW3$ROUTE_PATH" "$HW_PID" "$UP_WORKER"
RSS_OF[hookwall-redis]="$(awk '/^VmHWM/{print $2}' "/proc/$HW_PID/status")"
OUT_REDIS="$(hw_outcomes "$P_ADM3" hookwall-redis)"
REDIS_CPU_NOTE="redis-server CPU is not in gw CPU"
# What Redis ran per delivery over the measured run: calls and server time per command.
REDIS_COMMANDS="$(awk -F'[:,=]' -v n="$SIDE_REQUESTS" '/^cmdstat_/ && $2 !~ /^(config|info)$/ {
    sub(/^cmdstat_/, "", $1); printf "%s%s %.2f calls %.2f us", (k++ ? ", " : ""), $1, $3/n, $5/n; t += $5 }
  END { printf "; in commands %.2f us/delivery", t/n }' "$TMP/commandstats-hookwall-redis.txt")"
stop_pid "$HW_PID"
stop_pid "$REDIS_PID"

# ---------------------------------------------------------------- journal runs
metric_sum() { # admin port, metric family -> sum of its samples
  curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" \
    | awk -v f="$2" '$1 == f || index($1, f "{") == 1 { n += $NF } END { printf "%d", n }'
}
journal_stats() { # admin port, name -> "entries=N dropped=N"; fails if entries are dropped
  local entries dropped
  # The writer may still be finishing its last batch: wait (bounded) for the count to settle.
  entries="$(metric_sum "$1" hookwall_journal_entries_total)"
  for _ in $(seq 50); do
    sleep 0.2
    local again
    again="$(metric_sum "$1" hookwall_journal_entries_total)"
    [[ "$again" == "$entries" ]] && break
    entries=$again
  done
  dropped="$(metric_sum "$1" hookwall_journal_dropped_total)"
  ((dropped == 0)) || log "WARNING: $2: the journal dropped $dropped entries"
  echo "entries=$entries dropped=$dropped"
}

# After a buffered run: how long the queue takes to drain once the load stops (bounded),
# and how many deliveries the upstream got from it.
drain_stats() { # admin port, name -> "queued_at_end=N drained_in_s=S drain_rate=R/s delivered=N"
  local depth start delivered0 delivered1 t
  depth="$(metric_sum "$1" hookwall_queue_depth)"
  # The depth gauge is refreshed every 2 s: wait for one refresh after the load.
  sleep 2.2
  depth="$(metric_sum "$1" hookwall_queue_depth)"
  delivered0="$(curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" | awk '/^hookwall_delivery_attempts_total\{/ && /result="2xx"/ {n += $NF} END {printf "%d", n}')"
  start=$SECONDS
  while (( $(metric_sum "$1" hookwall_queue_depth) > 0 && SECONDS - start < 300 )); do sleep 0.5; done
  t=$((SECONDS - start))
  delivered1="$(curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" | awk '/^hookwall_delivery_attempts_total\{/ && /result="2xx"/ {n += $NF} END {printf "%d", n}')"
  local left
  left="$(metric_sum "$1" hookwall_queue_depth)"
  ((left == 0)) || log "WARNING: $2: $left deliveries still queued after 300 s"
  echo "queued_at_end=$depth drained_in_s=$t drain_rate=$(awk -v n=$((delivered1 - delivered0)) -v t="$t" 'BEGIN{printf "%.0f", (t > 0 ? n/t : n)}')/s delivered=$delivered1"
}

start_hookwall hookwall-buf "$P_HW6" "$P_ADM6" warn "" off buffered-sqlite
measure hookwall-buf "http://127.0.0.1:$P_HW6$ROUTE_PATH" "$HW_PID" "$UP_WORKER"
RSS_OF[hookwall-buf]="$(awk '/^VmHWM/{print $2}' "/proc/$HW_PID/status")"
BUF_SQLITE="$(drain_stats "$P_ADM6" hookwall-buf)"
stop_pid "$HW_PID"

start_hookwall hookwall-jrnl "$P_HW4" "$P_ADM4" warn "" sqlite
measure hookwall-jrnl "http://127.0.0.1:$P_HW4$ROUTE_PATH" "$HW_PID" "$UP_WORKER"
RSS_OF[hookwall-jrnl]="$(awk '/^VmHWM/{print $2}' "/proc/$HW_PID/status")"
hw_outcomes "$P_ADM4" hookwall-jrnl >/dev/null
JRNL_SQLITE="$(journal_stats "$P_ADM4" hookwall-jrnl)"
stop_pid "$HW_PID"
SQLITE_DB="$TMP/hookwall-jrnl.db"
SQLITE_BYTES=$(( $(stat -c %s "$SQLITE_DB") + $(stat -c %s "$SQLITE_DB-wal" 2>/dev/null || echo 0) ))
JRNL_SQLITE+=" disk_bytes_per_entry=$(awk -v b="$SQLITE_BYTES" -v n="$(field "$JRNL_SQLITE" entries)" 'BEGIN{printf "%.0f", (n > 0 ? b/n : 0)}')"

# PostgreSQL: POSTGRES_URL, or a private server in the temp dir (initdb + pg_ctl), trust
# auth on 127.0.0.1 only, fsync on (the default), no other tuning.
PG_NOTE=""
if [[ -z "${POSTGRES_URL:-}" ]]; then
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [[ -x "$PG_BIN/initdb" ]]; then
    if [[ $EUID -eq 0 ]]; then AS_PG=(runuser -u postgres --); fi
    mkdir -p "$TMP/pg"; chmod 777 "$TMP/pg"
    "${AS_PG[@]}" "$PG_BIN/initdb" -D "$TMP/pg/data" -A trust -U hookwall >"$TMP/pg/initdb.log" 2>&1 \
      || { cat "$TMP/pg/initdb.log" >&2; die "initdb failed"; }
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$TMP/pg/data" -l "$TMP/pg/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $P_PG -c unix_socket_directories=$TMP/pg" start >/dev/null \
      || { cat "$TMP/pg/server.log" >&2; die "pg_ctl start failed"; }
    PG_STARTED=1
    PG_URL="postgres://hookwall@127.0.0.1:$P_PG/postgres"
    PG_NOTE="private PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}') started for the run"
  fi
else
  PG_URL="$POSTGRES_URL"
  PG_NOTE="PostgreSQL at POSTGRES_URL"
fi
JRNL_PG="skipped (no PostgreSQL: install postgresql or set POSTGRES_URL)"
BUF_PG="skipped (no PostgreSQL)"
WRITE_PG=""
if [[ -n "${PG_URL:-}" ]]; then
  start_hookwall hookwall-jrnl-pg "$P_HW5" "$P_ADM5" warn "" postgres
  measure hookwall-jrnl-pg "http://127.0.0.1:$P_HW5$ROUTE_PATH" "$HW_PID" "$UP_WORKER"
  RSS_OF[hookwall-jrnl-pg]="$(awk '/^VmHWM/{print $2}' "/proc/$HW_PID/status")"
  hw_outcomes "$P_ADM5" hookwall-jrnl-pg >/dev/null
  JRNL_PG="$(journal_stats "$P_ADM5" hookwall-jrnl-pg)"
  stop_pid "$HW_PID"
  if command -v psql >/dev/null; then
    PG_BYTES="$(psql "$PG_URL" -Atc "SELECT pg_total_relation_size('journal')" 2>/dev/null || echo 0)"
    JRNL_PG+=" disk_bytes_per_entry=$(awk -v b="$PG_BYTES" -v n="$(field "$JRNL_PG" entries)" 'BEGIN{printf "%.0f", (n > 0 ? b/n : 0)}')"
  fi
  start_hookwall hookwall-buf-pg "$P_HW7" "$P_ADM7" warn "" off buffered-postgres
  measure hookwall-buf-pg "http://127.0.0.1:$P_HW7$ROUTE_PATH" "$HW_PID" "$UP_WORKER"
  RSS_OF[hookwall-buf-pg]="$(awk '/^VmHWM/{print $2}' "/proc/$HW_PID/status")"
  BUF_PG="$(drain_stats "$P_ADM7" hookwall-buf-pg)"
  stop_pid "$HW_PID"
  # The most the storage takes, the way the writer writes (batches of 512, one at a time).
  WRITE_PG="$(timeout 120 "$JOURNAL_WRITE" postgres "$PG_URL" 100000 2>&1 | grep '^JOURNAL_WRITE')" || WRITE_PG="journal_write failed"
  stop_pg
fi
WRITE_SQLITE="$(timeout 120 "$JOURNAL_WRITE" sqlite "$TMP/journal_write.db" 100000 2>&1 | grep '^JOURNAL_WRITE')" || WRITE_SQLITE="journal_write failed"

INFO_LOG_LINES="$(wc -l <"$TMP/hookwall-info.log")"
INFO_LOG_BYTES="$(wc -c <"$TMP/hookwall-info.log")"

# ---------------------------------------------------------------- scale curves (SCALE=1)
# The same three proxies as body size grows (64 connections) and as connections grow
# (1 KiB): req/s and CPU per request, to show how cost grows with work.
SCALE_BODIES="${SCALE_BODIES:-1024 16384 262144 1048576}"
SCALE_CONNS="${SCALE_CONNS:-16 64 256 1000}"
SCALE_DURATION="${SCALE_DURATION:-8}"
if [[ "${SCALE:-0}" == 1 ]]; then
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  for size in $SCALE_BODIES; do
    python3 - "$TMP/body-$size.json" "$size" <<'EOF'
import sys
size = int(sys.argv[2])
head = '{"type":"bench.event","id":"evt_bench","data":{"pad":"'
tail = '"}}'
body = head + ("abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 1))[:size - len(head) - len(tail)] + tail
open(sys.argv[1], "wb").write(body.encode())
EOF
  done
  scale_runs() { # target label, url, gateway pid
    local t=$1 url=$2 gw=$3 size c
    for size in $SCALE_BODIES; do
      BENCH_BODY_FILE="$TMP/body-$size.json" \
      BENCH_SIGNATURE="sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$TMP/body-$size.json" | awk '{print $1}')" \
      DURATION="$SCALE_DURATION" WARMUP=2 CONNECTIONS=64 \
        measure "scale|$t|body-$((size / 1024))KiB|64" "$url" "$gw" "$UP_WORKER"
    done
    for c in $SCALE_CONNS; do
      [[ "$c" == 64 ]] && continue # the 1 KiB, 64-connection point is the row above
      DURATION="$SCALE_DURATION" WARMUP=2 CONNECTIONS="$c" \
        measure "scale|$t|body-1KiB|$c" "$url" "$gw" "$UP_WORKER"
    done
  }
  scale_runs nginx-proxy "http://127.0.0.1:$P_PROXY$ROUTE_PATH" "$PROXY_WORKER"
  "$BARE" "127.0.0.1:$P_BARE" "127.0.0.1:$P_UP" 2>"$TMP/bare-scale.log" &
  BARE_PID=$!
  PIDS+=("$BARE_PID")
  wait_http "http://127.0.0.1:$P_BARE/" "bare hyper proxy" "$BARE_PID"
  scale_runs hyper-bare "http://127.0.0.1:$P_BARE$ROUTE_PATH" "$BARE_PID"
  stop_pid "$BARE_PID"
  start_hookwall hookwall-scale "$P_HW1" "$P_ADM1" warn "" off
  scale_runs hookwall-warn "http://127.0.0.1:$P_HW1$ROUTE_PATH" "$HW_PID"
  stop_pid "$HW_PID"
fi

# ---------------------------------------------------------------- table
echo
printf '%-14s %9s %7s %7s %8s %8s %8s %8s %7s %9s %11s\n' "" "" "p50" "p99" "gw CPU" "up CPU" "wrk CPU" "gw RSS" "" "" "other CPU%"
printf '%-14s %9s %7s %7s %8s %8s %8s %8s %7s %9s %11s\n' target "req/s" "ms" "ms" "us/req" "us/req" "us/req" "peak MB" non-2xx requests "pre/run/post"
printf '%-14s %9s %7s %7s %8s %8s %8s %8s %7s %9s %11s\n' -------------- --------- ------- ------- -------- -------- -------- -------- ------- --------- -----------
declare -A RPS
for r in "${RESULTS[@]}"; do
  [[ "$r" == scale* ]] && continue
  IFS='|' read -r l rps p50 p99 gw up wk n2 req se bg <<<"$r"
  RPS[$l]=$rps
  rss="-"
  if [[ -n "${RSS_OF[$l]:-}" ]]; then rss="$(awk -v k="${RSS_OF[$l]}" 'BEGIN{printf "%.1f", k/1024}')"; fi
  printf '%-14s %9s %7.2f %7.2f %8s %8s %8s %8s %7s %9s %11s\n' "$l" "$rps" "$p50" "$p99" "$gw" "$up" "$wk" "$rss" "$n2" "$req" "$bg"
done
echo
echo "gw CPU = utime+stime of the gateway process (nginx proxy worker / bare hyper proxy / whole hookwall process) over the"
echo "measured run divided by requests; up CPU = the same for the upstream nginx worker; wrk CPU = the load generator."
echo "other CPU% = % of the whole machine busy with anything else, before / during / after the run (should be ~0)."
awk -v h="${RPS[hookwall-warn]}" -v i="${RPS[hookwall-info]}" -v n="${RPS[nginx-proxy]}" -v r="${RPS[hookwall-redis]}" -v b="${RPS[hyper-bare]}" 'BEGIN{
  printf "ratio hookwall/nginx-proxy req/s: %.2f (RUST_LOG=warn), %.2f (info logging); bare hyper/nginx: %.2f\n", h/n, i/n, b/n
  printf "ratio hookwall Redis/memory store req/s: %.2f\n", r/h }'
echo "hookwall peak RSS (VmHWM): $RSS_WARN (warn run), $RSS_INFO (info run; dedup store holds every id of warmup+run)"
echo "hookwall outcomes (probe+warmup+run): warn run: $OUT_WARN; info run: $OUT_INFO; redis run: $OUT_REDIS ($REDIS_CPU_NOTE)"
for r in "${RESULTS[@]}"; do
  IFS='|' read -r l _ _ _ gw _ <<<"$r"
  case "$l" in hookwall-warn) CPU_MEM=$gw ;; hookwall-redis) CPU_REDIS=$gw ;; esac
done
awk -v s="$SIDE_US" -v m="$CPU_MEM" -v r="$CPU_REDIS" 'BEGIN{
  printf "Redis dedup: redis-server CPU %.1f us/delivery (target <= 6); hookwall CPU with Redis %+.1f us over the memory store (target <= +6)\n", s, r-m }'
echo "Redis commands per delivery (INFO commandstats over the measured run): $REDIS_COMMANDS"
echo "hookwall info log: $INFO_LOG_LINES lines, $INFO_LOG_BYTES bytes"
echo
echo "journal (hookwall-jrnl* runs; journal off in the others; every 1 KiB body kept):"
awk -v h="${RPS[hookwall-warn]}" -v s="${RPS[hookwall-jrnl]}" -v p="${RPS[hookwall-jrnl-pg]:-0}" 'BEGIN{
  printf "  req/s with the journal on / off: SQLite %.2f", s/h
  if (p > 0) printf ", PostgreSQL %.2f", p/h
  printf "\n" }'
for r in "${RESULTS[@]}"; do
  IFS='|' read -r l _ _ _ gw _ <<<"$r"
  case "$l" in hookwall-warn) CPU_OFF=$gw ;; hookwall-jrnl) CPU_SQLITE=$gw ;; hookwall-jrnl-pg) CPU_PG=$gw ;; esac
done
awk -v o="$CPU_OFF" -v s="$CPU_SQLITE" -v p="${CPU_PG:-}" 'BEGIN{
  printf "  gateway CPU added per request: SQLite %+.1f us", s-o
  if (p != "") printf ", PostgreSQL %+.1f us", p-o
  printf "\n" }'
echo "  SQLite run:     $JRNL_SQLITE (file + WAL over entries)"
echo "  PostgreSQL run: $JRNL_PG${PG_NOTE:+ ($PG_NOTE)}"
echo "  storage write rate, batches of 512 as the writer does (bench/journal_write.rs):"
echo "    $WRITE_SQLITE"
[[ -n "$WRITE_PG" ]] && echo "    $WRITE_PG"
echo
echo "buffered delivery (hookwall-buf* runs: 202 once committed; the workers deliver to the same upstream meanwhile):"
awk -v h="${RPS[hookwall-warn]}" -v s="${RPS[hookwall-buf]}" -v p="${RPS[hookwall-buf-pg]:-0}" 'BEGIN{
  printf "  accepted/s, buffered / sync: SQLite %.2f", s/h
  if (p > 0) printf ", PostgreSQL %.2f", p/h
  printf "\n" }'
echo "  SQLite:     $BUF_SQLITE"
echo "  PostgreSQL: $BUF_PG"
if [[ "${SCALE:-0}" == 1 ]]; then
  echo
  echo "scale curves (SCALE=1; ${SCALE_DURATION}s per point; gw CPU as above):"
  printf '%-14s %-14s %6s %9s %8s %9s\n' target load conns "req/s" "p99 ms" "gw us/req"
  for r in "${RESULTS[@]}"; do
    [[ "$r" == scale* ]] || continue
    IFS='|' read -r _ t load c rps _ p99 gw _ <<<"$r"
    printf '%-14s %-14s %6s %9s %8.2f %9s\n' "$t" "$load" "$c" "$rps" "$p99" "$gw"
  done
fi
echo
# Memory: idle, per remembered id, 1,000 idle connections, large bodies (bench/memory.sh).
if [[ "${SKIP_MEMORY:-0}" != 1 ]]; then
  SKIP_BUILD=1 bash "$BENCH_DIR/memory.sh" || log "WARNING: bench/memory.sh failed"
fi
