-- Exact log of admissions: p1 limit, p2 period. State: "t1 c1 t2 c2 ...", oldest first.
local sliding_log = {}

-- The live entries at `now`, as a flat list of instants and costs.
local function sl_live(p, st, now)
  local out = {}
  if not st then return out end
  for i = 1, #st - 1, 2 do
    local at = num(st[i])
    if at + p[2] > now then
      out[#out + 1] = at
      out[#out + 1] = num(st[i + 1])
    end
  end
  return out
end

local function sl_encode(entries)
  local parts = {}
  for i, v in ipairs(entries) do parts[i] = int(v) end
  return table.concat(parts, " ")
end

function sliding_log.check(p, st, now, cost)
  local live = sl_live(p, st, now)
  local used, newest = 0, nil
  for i = 1, #live, 2 do
    used = used + live[i + 1]
    newest = live[i]
  end
  local function reset_from(at)
    if not at then return 0 end
    return max(0, at + p[2] - now)
  end
  if cost <= p[1] and used + cost <= p[1] then
    if cost > 0 then newest = now end
    return allow(p[1], p[1] - used - cost, reset_from(newest))
  end
  local retry
  if cost <= p[1] then
    local left, at = used, now
    for i = 1, #live, 2 do
      if left + cost <= p[1] then break end
      left = left - live[i + 1]
      at = live[i] + p[2]
    end
    retry = max(0, at - now)
  end
  return deny(p[1], max(0, p[1] - used), reset_from(newest), retry)
end

function sliding_log.commit(p, st, now, cost)
  local live = sl_live(p, st, now)
  live[#live + 1] = now
  live[#live + 1] = cost
  return sl_encode(live), now + p[2]
end

function sliding_log.refund(p, st, now, cost)
  local live = sl_live(p, st, now)
  local newest = now
  for i = #live - 1, 1, -2 do
    if live[i] == now and live[i + 1] == cost then
      table.remove(live, i + 1)
      table.remove(live, i)
      break
    end
  end
  if #live == 0 then return nil end
  newest = live[#live - 1]
  return sl_encode(live), newest + p[2]
end
