-- wrk script for the overhead benchmark: POSTs one prebuilt body (a multipart edit) and counts
-- answers that are not a 200 carrying a base64 PNG, so an arm that errors is failed, not fast.
--   BENCH_BODY=file BENCH_CONTENT_TYPE=... BENCH_AUTH=... wrk -s bench/wrk_post.lua URL
local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  good = 0
end

function response(status, headers, body)
  if status == 200 and string.find(body, '"b64_json":"iVBORw0KGgo', 1, true) then
    good = good + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local g, b = 0, 0
  for _, thread in ipairs(threads) do
    g = g + thread:get("good")
    b = b + thread:get("bad")
  end
  io.write(string.format("BENCH good=%d bad=%d\n", g, b))
end
