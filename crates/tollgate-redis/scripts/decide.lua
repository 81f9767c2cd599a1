-- One decision over every check it is given, all-or-nothing.
--
-- KEYS: two per check: the counter, then its penalty box.
-- ARGV[1]: now in microseconds, or "" to read the server's clock (so that instances with
--          skewed clocks agree).
-- ARGV[2]: "a" acquire, "p" preview, "r" refund an earlier acquire made at ARGV[1],
--          "l" release lease ARGV[3] of counter KEYS[1].
-- ARGV[3..]: eleven per check: algorithm, cost, limit, p1..p6, block_for (0 = none),
--           lease id.
--
-- Answers seven integers per check (allowed, limit, remaining, reset, retry or -1,
-- blocked, lease or 0) and then the instant it decided at.

local algorithms = {
  gcra = gcra, token_bucket = token_bucket, sliding_window = sliding_window,
  sliding_log = sliding_log, fixed_window = fixed_window, concurrency = concurrency,
  quota = quota,
}

local now = tonumber(ARGV[1])
if not now then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local mode = ARGV[2]

-- Stores a state until it reads as fresh again, or drops it.
local function save(key, raw, idle_at)
  if not raw or not idle_at or idle_at <= now then
    redis.call("DEL", key)
    return
  end
  redis.call("SET", key, raw, "PX", ceil((idle_at - now) / 1000))
end

if mode == "l" then
  local st = fields(redis.call("GET", KEYS[1]))
  local kept, found = concurrency.release(st, now, ARGV[3])
  if #kept == 0 then
    redis.call("DEL", KEYS[1])
  else
    local raw, last = cc_encode(kept)
    save(KEYS[1], raw, last)
  end
  if found then return 1 end
  return 0
end

local checks = {}
for i = 1, #KEYS / 2 do
  local b = 2 + (i - 1) * 11
  local p = {}
  for j = 1, 6 do p[j] = tonumber(ARGV[b + 3 + j]) or 0 end
  checks[i] = {
    alg = algorithms[ARGV[b + 1]],
    cost = tonumber(ARGV[b + 2]) or 0,
    limit = tonumber(ARGV[b + 3]) or 0,
    p = p,
    block = tonumber(ARGV[b + 10]) or 0,
    lease = ARGV[b + 11],
    key = KEYS[2 * i - 1],
    penalty = KEYS[2 * i],
  }
  if not checks[i].alg then
    return redis.error_reply("unknown algorithm " .. tostring(ARGV[b + 1]))
  end
end

if mode == "r" then
  for _, c in ipairs(checks) do
    if c.cost > 0 then
      local st = fields(redis.call("GET", c.key))
      local raw, idle_at = c.alg.refund(c.p, st, now, c.cost, c.lease)
      save(c.key, raw, idle_at)
    end
  end
  return {now}
end

local outcomes, states, all = {}, {}, true
for i, c in ipairs(checks) do
  local until_at = 0
  if c.block > 0 then until_at = tonumber(redis.call("GET", c.penalty)) or 0 end
  if until_at > now then
    local wait = until_at - now
    outcomes[i] = {0, c.limit, 0, wait, wait, 1, 0}
  else
    states[i] = fields(redis.call("GET", c.key))
    outcomes[i] = c.alg.check(c.p, states[i], now, c.cost)
  end
  if outcomes[i][1] == 0 then all = false end
end

-- Nothing is consumed when any limit denies: the others report their state as it stays.
if not all then
  for i, c in ipairs(checks) do
    if outcomes[i][1] == 1 then outcomes[i] = c.alg.check(c.p, states[i], now, 0) end
  end
end

if mode == "a" then
  for i, c in ipairs(checks) do
    local o = outcomes[i]
    if all and c.cost > 0 then
      local raw, idle_at = c.alg.commit(c.p, states[i], now, c.cost, c.lease)
      save(c.key, raw, idle_at)
      if c.alg == concurrency then o[7] = tonumber(c.lease) or 0 end
    elseif not all and o[1] == 0 and o[6] == 0 and c.block > 0 then
      -- A denial by the count itself opens the penalty box.
      redis.call("SET", c.penalty, int(now + c.block), "PX", ceil(c.block / 1000), "NX")
    end
  end
end

local out = {}
for _, o in ipairs(outcomes) do
  for j = 1, 7 do out[#out + 1] = o[j] end
end
out[#out + 1] = now
return out
