-- GET the leaderboard of a random seeded guild (all time by default; RANGE=7d for a window).
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
local range = os.getenv("RANGE") or "all"

local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  -- wrk seeds every thread's generator alike; without this both threads ask for the same pages.
  math.randomseed(os.time() * 1000 + id)
end

request = function()
  local g = 1000000 + math.random(0, 999)
  local path = string.format("/v1/bots/859000000000000001/guilds/%d/leaderboard?range=%s", g, range)
  return wrk.format("GET", path)
end
