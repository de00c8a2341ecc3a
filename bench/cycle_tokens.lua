-- wrk script of the benchmark: every request is `GET <url path>` with the next bearer token of
-- a file (one token per line), cycling through the file in order.
--
--   wrk -t1 -c16 -d10s --latency -s bench/cycle_tokens.lua URL -- TOKENS_FILE [START [once]]
--
-- A file of one token is the warm case (one token reused, as client-credentials callers do); a
-- file of more distinct tokens than any verified-token cache holds is the cold case (in strict
-- order, an LRU cache of fewer entries never hits). START (0-based, default 0) is the token to
-- begin with: a cold run continues where the previous one stopped, else its first requests would
-- find the tokens the previous run left in the cache. With `once`, the thread stops after as
-- many responses as there are tokens (to fill a cache; up to -c requests more may be in flight).
--
-- Requests are formatted once, in `init`, so the per-request work in wrk is the same whatever
-- the file. `done` prints one line `BENCH_RESULT {json}` that the runner reads.

local requests = {}
local count = 0
local next_index = 0

function init(args)
  local path = args[1]
  if path == nil then
    error("usage: wrk ... -s cycle_tokens.lua URL -- TOKENS_FILE [START [once]]")
  end
  for line in io.lines(path) do
    local token = line:gsub("%s+$", "")
    if #token > 0 then
      count = count + 1
      requests[count] = wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. token })
    end
  end
  if count == 0 then
    error("no tokens in " .. path)
  end
  next_index = (tonumber(args[2] or "0") or 0) % count
  if args[3] == "once" then
    local seen = 0
    -- Defined only in this mode: a `response` function makes wrk parse every response for Lua.
    response = function(status, headers, body)
      seen = seen + 1
      if seen >= count then
        wrk.thread:stop()
      end
    end
  end
end

function request()
  next_index = next_index + 1
  if next_index > count then
    next_index = 1
  end
  return requests[next_index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
