-- wrk script for bench/run.sh: POST a fixed 1 KiB signed body, each request with a
-- unique X-Bench-Delivery id (so hookwall's dedup layer reserves + settles a NEW id every
-- time instead of answering from the duplicate cache).
--
-- Inputs (environment, set by run.sh):
--   BENCH_BODY_FILE   file holding the exact request body (1024 bytes)
--   BENCH_SIGNATURE   value for X-Bench-Signature, e.g. "sha256=<hex hmac of the body>"
--   BENCH_RUN         prefix making ids unique across wrk invocations (warmup vs. measured)
--
-- The delivery id is not part of the signed payload ("{body}"), so the signature stays valid.
-- done() prints one machine-readable line starting with BENCH_RESULT.

local threads = {}
local next_thread_id = 0

-- Runs in the main Lua state, once per thread, before the thread starts.
function setup(thread)
  next_thread_id = next_thread_id + 1
  thread:set("thread_id", next_thread_id)
  table.insert(threads, thread)
end

local function read_file(path)
  local f = assert(io.open(path, "rb"), "cannot open BENCH_BODY_FILE " .. tostring(path))
  local data = f:read("*a")
  f:close()
  return data
end

-- Per-thread state (each thread has its own Lua state).
local body, headers, run, counter

function init(args)
  body = read_file(assert(os.getenv("BENCH_BODY_FILE"), "BENCH_BODY_FILE unset"))
  run = os.getenv("BENCH_RUN") or tostring(os.time())
  counter = 0
  non2xx = 0 -- global: read back by done() via thread:get
  headers = {
    ["Content-Type"] = "application/json",
    ["X-Bench-Signature"] = assert(os.getenv("BENCH_SIGNATURE"), "BENCH_SIGNATURE unset"),
  }
end

function request()
  counter = counter + 1
  headers["X-Bench-Delivery"] = string.format("%s-t%d-%d", run, thread_id, counter)
  return wrk.format("POST", nil, headers, body)
end

function response(status, hdrs, resp_body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local n2 = 0
  for _, t in ipairs(threads) do
    n2 = n2 + (t:get("non2xx") or 0)
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d timeouts=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    n2, e.connect + e.read + e.write + e.timeout, e.timeout))
end
