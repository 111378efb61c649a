-- wrk script: POST /embed with one paragraph of the corpus per request, round robin.
local paragraphs = {}
local n = 0

function init(args)
  local path = args[1] or "tests/data/corpus.txt"
  for line in io.lines(path) do
    n = n + 1
    -- JSON-escape backslashes and quotes (the corpus has no control characters)
    paragraphs[n] = '{"inputs": "' .. line:gsub('\\', '\\\\'):gsub('"', '\\"') .. '"}'
  end
end

local i = 0
function request()
  i = i % n + 1
  return wrk.format("POST", "/embed", {["Content-Type"] = "application/json"}, paragraphs[i])
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d errors_status=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.duration, summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000))
end
