-- GET /v1/invites/user for a seeded inviter (see examples/bench_seed.rs): a random one, or with
-- SWEEP=1 every inviter in turn (the warm-up that leaves every inviter's counts cached).
wrk.headers["Authorization"] = "Bearer " .. os.getenv("KEY")
local bot = "859000000000000001"
local inviters = 100000
local sweep = os.getenv("SWEEP") == "1"

local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

local next_inviter = 0
function init(args)
  -- wrk seeds every thread's generator alike: both threads would send the same sequence, so
  -- every new inviter would be asked for twice at once (two misses instead of one).
  math.randomseed(os.time() * 1000 + id)
  next_inviter = id * math.floor(inviters / 2)
end

request = function()
  local k
  if sweep then
    k = next_inviter % inviters
    next_inviter = next_inviter + 1
  else
    k = math.random(0, inviters - 1)
  end
  local path = string.format("/v1/invites/user?bot_id=%s&guild_id=%d&inviter_id=%d",
    bot, 1000000 + k % 1000, 2000000 + k)
  return wrk.format("GET", path)
end
