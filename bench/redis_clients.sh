#!/usr/bin/env bash
# Client-side instructions per Redis dedup delivery (reserve pipeline + commit MULTI, as
# src/dedup/redis.rs sends them), the redis crate hookwall uses against fred, counted by
# callgrind: each client runs DELIVERIES and 3 x DELIVERIES against a private
# redis-server on a unix socket; the difference over 2 x DELIVERIES is the cost of one
# delivery without start-up. Builds bench/redis_clients/ (its own small crate, outside
# hookwall's build).
#
#   bash bench/redis_clients.sh          # DELIVERIES=10000 TASKS=64
set -euo pipefail
DELIVERIES="${DELIVERIES:-10000}"
TASKS="${TASKS:-64}"
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/redis_clients"
die() { echo "redis_clients: ERROR: $*" >&2; exit 1; }
command -v valgrind >/dev/null || die "valgrind is needed (apt-get install valgrind)"
command -v redis-server >/dev/null || die "redis-server is needed (apt-get install redis-server)"
unset CARGO_TARGET_DIR
(cd "$DIR" && cargo build --release --quiet) || die "build failed"
BIN="$DIR/target/release/hookwall-bench-redis-clients"
TMP="$(mktemp -d /tmp/hookwall-redis-clients.XXXXXX)"
redis-server --port 0 --unixsocket "$TMP/r.sock" --save "" --appendonly no --dir "$TMP" \
  --daemonize yes --pidfile "$TMP/pid" --logfile "$TMP/log"
trap 'redis-cli -s "$TMP/r.sock" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do [[ -S "$TMP/r.sock" ]] && break; sleep 0.1; done
count() { # client deliveries -> instructions
  redis-cli -s "$TMP/r.sock" flushall >/dev/null
  valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.$1.$2" \
    "$BIN" "$1" "redis+unix://$TMP/r.sock" "$2" "$TASKS" >/dev/null 2>"$TMP/vg.$1.$2" \
    || { cat "$TMP/vg.$1.$2" >&2; die "$1 failed"; }
  awk '/^(summary|totals):/ {print $2; exit}' "$TMP/cg.$1.$2"
}
echo "client-side instructions per delivery (reserve + commit, $TASKS tasks on one connection):"
for c in redis fred; do
  a="$(count "$c" "$DELIVERIES")"
  b="$(count "$c" $((3 * DELIVERIES)))"
  awk -v a="$a" -v b="$b" -v n="$((2 * DELIVERIES))" -v c="$c" 'BEGIN { printf "  %-6s %8.0f\n", c, (b - a) / n }'
done
