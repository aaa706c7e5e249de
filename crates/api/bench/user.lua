-- GET /v1/invites/user for a random seeded inviter (see examples/bench_seed.rs).
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
local bot = "859000000000000001"
request = function()
  local k = math.random(0, 99999)
  local path = string.format("/v1/invites/user?bot_id=%s&guild_id=%d&inviter_id=%d",
    bot, 1000000 + k % 1000, 2000000 + k)
  return wrk.format("GET", path)
end
