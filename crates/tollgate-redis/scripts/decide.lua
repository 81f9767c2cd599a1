-- One decision over every check it is given, all-or-nothing.
--
-- KEYS: two per check: the counter, then its penalty box.
-- ARGV[1]: now in microseconds, or "" to read the server's clock (so that instances with
--          skewed clocks agree).
-- ARGV[2]: "a" acquire, "p" preview, "r" refund an earlier acquire made at ARGV[1],
--          "l" release lease ARGV[3] of counter KEYS[1], "n" renew it for ARGV[4] µs,
--          "m" several decisions (below).
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

if mode == "n" then
  local live, found = concurrency.renew(fields(redis.call("GET", KEYS[1])), now, ARGV[3],
    tonumber(ARGV[4]))
  if not found then return 0 end
  local raw, last = cc_encode(live)
  save(KEYS[1], raw, last)
  return 1
end

-- The checks of one decision: `n` of them, whose keys start after KEYS[kbase] and whose
-- fields start after ARGV[abase].
local function read_checks(kbase, abase, n)
  local checks = {}
  for i = 1, n do
    local b = abase + (i - 1) * 11
    local p = {}
    for j = 1, 6 do p[j] = tonumber(ARGV[b + 3 + j]) or 0 end
    local alg = algorithms[ARGV[b + 1]]
    if not alg then return nil, "unknown algorithm " .. tostring(ARGV[b + 1]) end
    checks[i] = {
      alg = alg,
      cost = tonumber(ARGV[b + 2]) or 0,
      limit = tonumber(ARGV[b + 3]) or 0,
      p = p,
      block = tonumber(ARGV[b + 10]) or 0,
      lease = ARGV[b + 11],
      key = KEYS[kbase + 2 * i - 1],
      penalty = KEYS[kbase + 2 * i],
    }
  end
  return checks
end

-- Decides `checks` all-or-nothing ("a" acquires, "p" previews); one outcome each.
local function decide_one(checks, dmode)
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

  if dmode == "a" then
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
  return outcomes
end

local out = {}
local function emit(outcomes)
  for _, o in ipairs(outcomes) do
    for j = 1, 7 do out[#out + 1] = o[j] end
  end
end

-- The common decision, one GCRA check with no penalty box, without the tables the general
-- path builds for each check: the same answer as `decide_one`, in a fraction of Redis's
-- time. Its fields are ARGV[b + 1 .. b + 11] and its counter KEYS[k].
local function gcra_one(b, k, dmode)
  local cost, interval = tonumber(ARGV[b + 2]) or 0, tonumber(ARGV[b + 4]) or 1
  local cap, tol = tonumber(ARGV[b + 5]) or 0, tonumber(ARGV[b + 6]) or 0
  local key = KEYS[k]
  local tat = max(tonumber(redis.call("GET", key)) or now, now)
  local new_tat = tat + cost * interval
  local allow_at = new_tat - tol
  local o = #out
  if cost <= cap and allow_at <= now then
    local after = tat
    if cost > 0 then
      after = new_tat
      if dmode == "a" then save(key, int(new_tat), new_tat) end
    end
    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5], out[o + 6], out[o + 7] =
      1, cap, floor(max(0, now + tol - after) / interval), after - now, 0, 0, 0
  else
    local retry = -1
    if cost <= cap then retry = allow_at - now end
    out[o + 1], out[o + 2], out[o + 3], out[o + 4], out[o + 5], out[o + 6], out[o + 7] =
      0, cap, floor(max(0, now + tol - tat) / interval), tat - now, retry, 0, 0
  end
end

-- Whether the decision whose fields follow ARGV[b], with `n` checks, is one `gcra_one`
-- answers.
local function is_gcra_one(b, n)
  return n == 1 and ARGV[b + 1] == "gcra" and ARGV[b + 10] == "0"
end

if mode == "m" then
  -- Several independent decisions in one call: ARGV[3] of them, each its mode and check
  -- count, then its checks' fields; their keys follow each other in KEYS.
  local pos, kbase = 4, 0
  for _ = 1, tonumber(ARGV[3]) or 0 do
    local dmode, n = ARGV[pos], tonumber(ARGV[pos + 1]) or 0
    if is_gcra_one(pos + 1, n) then
      gcra_one(pos + 1, kbase + 1, dmode)
    else
      local checks, err = read_checks(kbase, pos + 1, n)
      if not checks then return redis.error_reply(err) end
      emit(decide_one(checks, dmode))
    end
    pos = pos + 2 + n * 11
    kbase = kbase + 2 * n
  end
  out[#out + 1] = now
  return out
end

if mode ~= "r" and is_gcra_one(2, #KEYS / 2) then
  gcra_one(2, 1, mode)
  out[#out + 1] = now
  return out
end

local checks, err = read_checks(0, 2, #KEYS / 2)
if not checks then return redis.error_reply(err) end

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

emit(decide_one(checks, mode))
out[#out + 1] = now
return out
