-- GCRA: p1 emission interval, p2 capacity (limit + burst), p3 tolerance. State: "tat".
local gcra = {}

local function gcra_tat(st, now)
  if st then return max(num(st[1]), now) end
  return now
end

local function gcra_remaining(p, tat, now)
  return floor(max(0, now + p[3] - tat) / p[1])
end

function gcra.check(p, st, now, cost)
  local tat = gcra_tat(st, now)
  local new_tat = tat + cost * p[1]
  local allow_at = new_tat - p[3]
  if cost <= p[2] and allow_at <= now then
    local after = new_tat
    if cost == 0 then after = tat end
    return allow(p[2], gcra_remaining(p, after, now), after - now)
  end
  local retry
  if cost <= p[2] then retry = allow_at - now end
  return deny(p[2], gcra_remaining(p, tat, now), tat - now, retry)
end

function gcra.commit(p, st, now, cost)
  local tat = gcra_tat(st, now) + cost * p[1]
  return int(tat), tat
end

function gcra.refund(p, st, now, cost)
  if not st then return nil end
  local tat = num(st[1]) - cost * p[1]
  return int(tat), tat
end
