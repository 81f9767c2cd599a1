-- Fixed window: p1 limit, p2 period, p3 anchor (0 = the clock, 1 = the first hit).
-- State: "start count".
local fixed_window = {}

local function fw_window(p, st, now)
  if st then
    local start, count = num(st[1]), num(st[2])
    if now < start + p[2] then return start, count end
  end
  if p[3] == 1 then return now, 0 end
  return now - now % p[2], 0
end

function fixed_window.check(p, st, now, cost)
  local start, count = fw_window(p, st, now)
  local to_end = max(0, start + p[2] - now)
  local after = count + cost
  if after <= p[1] then
    local reset = 0
    if after > 0 then reset = to_end end
    return allow(p[1], p[1] - after, reset)
  end
  local reset, retry = 0, nil
  if count > 0 then reset = to_end end
  if cost <= p[1] then retry = to_end end
  return deny(p[1], max(0, p[1] - count), reset, retry)
end

function fixed_window.commit(p, st, now, cost)
  local start, count = fw_window(p, st, now)
  return int(start) .. " " .. int(count + cost), start + p[2]
end

function fixed_window.refund(p, st, now, cost)
  if not st then return nil end
  local start, count = num(st[1]), num(st[2])
  if now >= start and now < start + p[2] then count = max(0, count - cost) end
  return int(start) .. " " .. int(count), start + p[2]
end
