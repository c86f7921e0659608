#!/usr/bin/env bash
# Memory under clients that never read their answers (issue 18): an upstream answers every
# delivery with ANSWER_MIB (8) MiB, CLIENTS (20) clients each send one signed delivery and
# then never read, and hookwall's resident memory is sampled while they hang there. Prints
# the RSS before, the peak during, and the growth; exits 1 if the growth is over LIMIT_MIB
# (32). Everything runs on 127.0.0.1 and is stopped on exit.
#
#   bash bench/nonreading_clients.sh
#   HOOKWALL_BIN=target/debug/hookwall CLIENTS=50 bash bench/nonreading_clients.sh
set -euo pipefail

CLIENTS="${CLIENTS:-20}"
ANSWER_MIB="${ANSWER_MIB:-8}"
HOLD_SECS="${HOLD_SECS:-10}"
LIMIT_MIB="${LIMIT_MIB:-32}"
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
BIN="${HOOKWALL_BIN:-$ROOT/target/release/hookwall}"

if [[ ! -x "$BIN" ]]; then
  echo "nonreading_clients: building $BIN" >&2
  (cd "$ROOT" && cargo build --release --bin hookwall)
fi
command -v python3 >/dev/null || { echo "nonreading_clients: needs python3" >&2; exit 1; }

exec python3 - "$BIN" "$CLIENTS" "$ANSWER_MIB" "$HOLD_SECS" "$LIMIT_MIB" <<'PY'
import hashlib, hmac, http.server, os, socket, subprocess, sys, tempfile, threading, time, urllib.request

bin_, clients, answer_mib, hold, limit_mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
SECRET = "bench-secret-not-for-production"
ANSWER = b"x" * (answer_mib << 20)

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", str(len(ANSWER)))
        self.end_headers()
        try:
            self.wfile.write(ANSWER)
        except OSError:
            pass
    def log_message(self, *a):
        pass

upstream = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Upstream)
upstream.daemon_threads = True
threading.Thread(target=upstream.serve_forever, daemon=True).start()
up_port = upstream.server_address[1]
port, admin = free_port(), free_port()

tmp = tempfile.mkdtemp(prefix="hookwall-nonreading-")
config = os.path.join(tmp, "gateway.toml")
with open(config, "w") as f:
    f.write(f"""
[server]
listen = "127.0.0.1:{port}"
max_concurrency = 1024
[admin]
listen = "127.0.0.1:{admin}"
[storage]
path = "{tmp}/hookwall.db"
[[route]]
name = "bench"
path = "/webhooks/bench"
upstream = "http://127.0.0.1:{up_port}/hooks"
secrets = [{{ value = "{SECRET}" }}]
dedup = false
journal = false
[route.verify]
header = "X-Bench-Signature"
prefix = "sha256="
payload = "{{body}}"
""")
gw = subprocess.Popen([bin_, "run", "--config", config], stderr=open(os.path.join(tmp, "hookwall.log"), "w"))

def rss_kib():
    with open(f"/proc/{gw.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

try:
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    else:
        sys.exit("nonreading_clients: hookwall did not come up (see " + tmp + "/hookwall.log)")
    # Warm up: one delivery read in full, so the baseline includes the pools and buffers.
    body = b'{"warmup":true}'
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/bench", data=body,
                                 headers={"X-Bench-Signature": "sha256=" + sig})
    assert len(urllib.request.urlopen(req, timeout=30).read()) == len(ANSWER)
    time.sleep(0.5)
    before = rss_kib()
    socks = []
    for i in range(clients):
        body = b'{"client":%d}' % i
        sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.sendall(b"POST /webhooks/bench HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n"
                  b"X-Bench-Signature: sha256=%s\r\n\r\n%s" % (len(body), sig.encode(), body))
        socks.append(s)  # and never read from it
    peak, end = before, time.time() + hold
    while time.time() < end:
        peak = max(peak, rss_kib())
        time.sleep(0.05)
    growth = (peak - before) / 1024
    print(f"clients={clients} answer={answer_mib}MiB hold={hold:g}s")
    print(f"rss_before_mib={before / 1024:.1f} rss_peak_mib={peak / 1024:.1f} growth_mib={growth:.1f} limit_mib={limit_mib}")
    for s in socks:
        s.close()
    sys.exit(0 if growth <= limit_mib else 1)
finally:
    gw.terminate()
    try:
        gw.wait(timeout=10)
    except subprocess.TimeoutExpired:
        gw.kill()
    upstream.shutdown()
PY
