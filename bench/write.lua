-- wrk script: POST a Telegraf-like batch of line protocol with timestamps.
-- LINES (env) sets the batch size (default 1000).
local lines = tonumber(os.getenv("LINES") or "1000")
local t = {}
local ts = 1700000000000000000
for i = 1, lines do
  t[#t + 1] = string.format(
    "cpu,host=server%02d,region=us-west,cpu=cpu%d usage_user=%d.5,usage_system=0.25,usage_idle=99.1,usage_iowait=%di %d",
    i % 50, i % 8, i % 100, i % 7, ts + i)
end
wrk.method = "POST"
wrk.body = table.concat(t, "\n") .. "\n"
wrk.headers["Content-Type"] = "text/plain; charset=utf-8"
