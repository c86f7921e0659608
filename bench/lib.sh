# Shared by the benchmark scripts (sourced): the benchmark route and small helpers. Set
# BENCH_NAME (the prefix of messages) before sourcing.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "${BENCH_NAME:-bench}: ERROR: $*" >&2; exit 1; }
log() { echo "${BENCH_NAME:-bench}: $*" >&2; }

# bench_release_build CARGO_ARGS...: builds into the repository's own target/release (the
# scripts look for their binaries there), unless SKIP_BUILD=1; sets REL.
bench_release_build() {
  unset CARGO_TARGET_DIR
  REL="$ROOT/target/release"
  if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building (cargo build --release $*; may wait for the cargo lock)"
    (cd "$ROOT" && cargo build --release "$@") || die "cargo build --release failed"
  fi
}

BENCH_SECRET="bench-secret-not-for-production"
BENCH_ROUTE_PATH="/webhooks/bench"

# bench_route UPSTREAM_URL TIMEOUT [EXTRA]: the one route every benchmark measures, generic
# HMAC-SHA256 over the body, the delivery id in X-Bench-Delivery, dedup on. EXTRA is
# more route keys (e.g. delivery = "buffered").
bench_route() {
  cat <<EOF2
[[route]]
name = "bench"
path = "$BENCH_ROUTE_PATH"
upstream = "$1"
secrets = [{ value = "$BENCH_SECRET" }]
dedup = true
timeout = "$2"
${3:-}

[route.verify]
algorithm = "hmac-sha256"
header = "X-Bench-Signature"
prefix = "sha256="
encoding = "hex"
payload = "{body}"
id_header = "X-Bench-Delivery"
EOF2
}

# A free 127.0.0.1 port.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
