-- Token bucket: p1 limit (tokens per period), p2 period, p3 capacity (limit + burst).
-- State: "at deficit", the deficit in tokens scaled by the period, as of instant `at`; it
-- shrinks by `limit` every microsecond, so refill needs no division and no rounding.
local token_bucket = {}

local function tb_deficit(p, st, now)
  if not st then return 0 end
  local at, d = num(st[1]), num(st[2])
  if now <= at then return d end
  local elapsed = now - at
  -- Past the time to refill completely the bucket is full; checked first so the product
  -- below stays small.
  if elapsed >= ceil(d / p[1]) then return 0 end
  return d - elapsed * p[1]
end

local function tb_until(p, scaled)
  return ceil(scaled / p[1])
end

function token_bucket.check(p, st, now, cost)
  local d = tb_deficit(p, st, now)
  local full = p[3] * p[2]
  if cost <= p[3] and d + cost * p[2] <= full then
    local after = d + cost * p[2]
    return allow(p[3], floor((full - after) / p[2]), tb_until(p, after))
  end
  local retry
  if cost <= p[3] then retry = tb_until(p, d + cost * p[2] - full) end
  return deny(p[3], floor((full - d) / p[2]), tb_until(p, d), retry)
end

function token_bucket.commit(p, st, now, cost)
  local d = tb_deficit(p, st, now) + cost * p[2]
  return int(now) .. " " .. int(d), now + tb_until(p, d)
end

function token_bucket.refund(p, st, now, cost)
  local d = max(0, tb_deficit(p, st, now) - cost * p[2])
  return int(now) .. " " .. int(d), now + tb_until(p, d)
end
