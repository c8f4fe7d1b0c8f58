-- wrk script for bench/run.py's wrk phase (issue 20): POST a cash donation (or,
-- for the bare reference, the same body to its HTTP path), each request with an
-- Idempotency-Key of its own. Keys are unique across runs and wrk threads:
-- LINLI_WRK_PREFIX (a per-run value from bench/run.py) .. thread number .. counter.
--   LINLI_WRK_PREFIX  per-run prefix of the keys (default: the time and a random number)
--   LINLI_WRK_TOKEN   bearer token (none for the bare reference)
--   LINLI_WRK_BODY    JSON body (default: a 1-yuan anonymous cash donation)
-- The URL on wrk's command line gives the path, e.g. .../api/v1/campaigns/ID/donations.

local threads = 0

function setup(thread)
  thread:set("thread_number", threads)
  threads = threads + 1
end

function init(args)
  math.randomseed(os.time())
  local run = os.getenv("LINLI_WRK_PREFIX") or (os.time() .. "-" .. math.random(1, 1000000000))
  prefix = "wrk-" .. run .. "-" .. tostring(thread_number or 0) .. "-"
  counter = 0
  wrk.method = "POST"
  wrk.body = os.getenv("LINLI_WRK_BODY") or '{"kind": "cash", "amount_fen": 100, "anonymous": true}'
  wrk.headers["Content-Type"] = "application/json"
  local token = os.getenv("LINLI_WRK_TOKEN")
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = prefix .. counter
  return wrk.format()
end
