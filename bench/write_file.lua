-- wrk script: POST the bytes of BODY_FILE to the URL, as a Telegraf-like
-- client would. GZIP=1 adds `Content-Encoding: gzip` (the file is then a
-- gzip stream). Used by scripts/bench-fanout.sh.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "text/plain; charset=utf-8"
if os.getenv("GZIP") == "1" then
  wrk.headers["Content-Encoding"] = "gzip"
end
-- DELAY_MS > 0: each connection waits that long between requests, for
-- latency at a fixed fraction of the saturating rate.
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end
