-- Weighted two-window counter: p1 limit, p2 period. State: "start prev cur".
local sliding_window = {}

local function sw_view(p, st, now)
  local period = p[2]
  local aligned = now - now % period
  if st then
    local start, prev, cur = num(st[1]), num(st[2]), num(st[3])
    if start >= aligned then
      return start, max(0, now - start), prev, cur
    end
    if start + period == aligned then
      return aligned, now - aligned, cur, 0
    end
  end
  return aligned, now - aligned, 0, 0
end

local function sw_used(p, elapsed, prev, cur)
  return prev * (p[2] - min(elapsed, p[2])) + cur * p[2]
end

local function sw_reset(p, start, prev, cur, now)
  if cur > 0 then return max(0, start + 2 * p[2] - now) end
  if prev > 0 then return max(0, start + p[2] - now) end
  return 0
end

local function sw_earliest(p, prev, cur, cost)
  if prev == 0 then return 0 end
  local room = (p[1] - cur - cost) * p[2]
  return p[2] - min(floor(room / prev), p[2])
end

function sliding_window.check(p, st, now, cost)
  local start, elapsed, prev, cur = sw_view(p, st, now)
  local cap = p[1] * p[2]
  local function remaining(c)
    return floor(max(0, cap - sw_used(p, elapsed, prev, c)) / p[2])
  end
  if cost <= p[1] and sw_used(p, elapsed, prev, cur + cost) <= cap then
    return allow(p[1], remaining(cur + cost), sw_reset(p, start, prev, cur + cost, now))
  end
  local retry
  if cost <= p[1] then
    local at
    if cur + cost <= p[1] then
      at = start + sw_earliest(p, prev, cur, cost)
    else
      at = start + p[2] + sw_earliest(p, cur, 0, cost)
    end
    retry = max(0, at - now)
  end
  return deny(p[1], remaining(cur), sw_reset(p, start, prev, cur, now), retry)
end

function sliding_window.commit(p, st, now, cost)
  local start, _, prev, cur = sw_view(p, st, now)
  return int(start) .. " " .. int(prev) .. " " .. int(cur + cost), start + 2 * p[2]
end

function sliding_window.refund(p, st, now, cost)
  if not st then return nil end
  local start, prev, cur = num(st[1]), num(st[2]), num(st[3])
  -- The units were counted in the window holding `now`; it may since have become the
  -- previous one.
  local aligned = now - now % p[2]
  if start == aligned then
    cur = max(0, cur - cost)
  elseif start == aligned + p[2] then
    prev = max(0, prev - cost)
  end
  return int(start) .. " " .. int(prev) .. " " .. int(cur), start + 2 * p[2]
end
