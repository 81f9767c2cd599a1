-- Concurrency leases: p1 limit, p2 lease time-to-live. State: "id weight expires ...".
-- Lease ids stay strings: they are opaque to the script.
local concurrency = {}

local function cc_live(st, now)
  local out = {}
  if not st then return out end
  for i = 1, #st - 2, 3 do
    local expires = num(st[i + 2])
    if expires > now then
      out[#out + 1] = {st[i], num(st[i + 1]), expires}
    end
  end
  return out
end

local function cc_encode(leases)
  local parts, last = {}, 0
  for _, l in ipairs(leases) do
    parts[#parts + 1] = l[1] .. " " .. int(l[2]) .. " " .. int(l[3])
    last = max(last, l[3])
  end
  return table.concat(parts, " "), last
end

function concurrency.check(p, st, now, cost)
  local live = cc_live(st, now)
  local used, last_end = 0, nil
  for _, l in ipairs(live) do
    used = used + l[2]
    if not last_end or l[3] > last_end then last_end = l[3] end
  end
  if cost <= p[1] and used + cost <= p[1] then
    local e = last_end
    if cost > 0 and (not e or now + p[2] > e) then e = now + p[2] end
    local reset = 0
    if e then reset = e - now end
    return allow(p[1], p[1] - used - cost, reset)
  end
  local retry
  if cost <= p[1] then
    table.sort(live, function(a, b) return a[3] < b[3] end)
    local held, at = used, now
    for _, l in ipairs(live) do
      if held + cost <= p[1] then break end
      held = held - l[2]
      at = l[3]
    end
    retry = at - now
  end
  local reset = 0
  if last_end then reset = last_end - now end
  return deny(p[1], max(0, p[1] - used), reset, retry)
end

function concurrency.commit(p, st, now, cost, lease)
  local live = cc_live(st, now)
  live[#live + 1] = {lease, cost, now + p[2]}
  return cc_encode(live)
end

-- Ends lease `lease`; the second result says whether it was live.
function concurrency.release(st, now, lease)
  local live = cc_live(st, now)
  local kept, found = {}, false
  for _, l in ipairs(live) do
    if l[1] == lease then found = true else kept[#kept + 1] = l end
  end
  return kept, found
end

-- Gives lease `lease` a new time-to-live `ttl` from `now`; the second result says whether
-- it was live.
function concurrency.renew(st, now, lease, ttl)
  local live = cc_live(st, now)
  local found = false
  for _, l in ipairs(live) do
    if l[1] == lease then
      l[3] = now + ttl
      found = true
    end
  end
  return live, found
end

function concurrency.refund(p, st, now, cost, lease)
  local kept = concurrency.release(st, now, lease)
  if #kept == 0 then return nil end
  return cc_encode(kept)
end
