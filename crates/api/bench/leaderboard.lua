-- GET the leaderboard of a random seeded guild (all time by default; RANGE=7d for a window).
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
local range = os.getenv("RANGE") or "all"
request = function()
  local g = 1000000 + math.random(0, 999)
  local path = string.format("/v1/bots/859000000000000001/guilds/%d/leaderboard?range=%s", g, range)
  return wrk.format("GET", path)
end
