-- Calendar quota: p1 limit, p2 rollover cap, p3..p6 the period boundaries around the
-- caller's clock: previous start, start, end, next end (calendars and time zones are the
-- caller's to compute). State: "used period_start carry".
local quota = {}

-- The period holding `now`: previous start, start, end, next end. The server clock may
-- sit a little outside the caller's period near a boundary.
local function q_span(p, now)
  if now >= p[5] and now < p[6] then
    return p[4], p[5], p[6], p[6] + (p[6] - p[5])
  end
  return p[3], p[4], p[5], p[6]
end

local function q_view(p, st, prev_start, start)
  if st then
    local used, period, carry = num(st[1]), num(st[2]), num(st[3])
    if period == start then return used, carry end
    if period == prev_start then return 0, min(max(0, p[1] + carry - used), p[2]) end
  end
  return 0, 0
end

function quota.check(p, st, now, cost)
  local prev_start, start, stop, next_end = q_span(p, now)
  local used, carry = q_view(p, st, prev_start, start)
  local allowance = p[1] + carry
  local to_end = max(0, stop - now)
  local after = used + cost
  if after <= allowance then
    local reset = 0
    if after > 0 then reset = to_end end
    return allow(allowance, allowance - after, reset)
  end
  local next_carry = min(max(0, allowance - used), p[2])
  local retry
  if cost <= p[1] + next_carry then
    retry = to_end
  elseif cost <= p[1] + p[2] then
    retry = max(0, next_end - now)
  end
  local reset = 0
  if used > 0 then reset = to_end end
  return deny(allowance, max(0, allowance - used), reset, retry)
end

local function q_idle(p, start, stop, next_end)
  if p[2] > 0 then return next_end end
  return stop
end

function quota.commit(p, st, now, cost)
  local prev_start, start, stop, next_end = q_span(p, now)
  local used, carry = q_view(p, st, prev_start, start)
  return int(used + cost) .. " " .. int(start) .. " " .. int(carry), q_idle(p, start, stop, next_end)
end

function quota.refund(p, st, now, cost)
  if not st then return nil end
  local _, start, stop, next_end = q_span(p, now)
  local used, period, carry = num(st[1]), num(st[2]), num(st[3])
  if period == start then used = max(0, used - cost) end
  return int(used) .. " " .. int(period) .. " " .. int(carry), q_idle(p, start, stop, next_end)
end
