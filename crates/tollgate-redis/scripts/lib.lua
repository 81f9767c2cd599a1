-- Shared helpers. Time is in microseconds since the Unix epoch; every quantity stays an
-- integer below 2^53 so Lua's doubles hold it exactly (the store refuses rules that would
-- not fit).

local floor, ceil, max, min = math.floor, math.ceil, math.max, math.min

-- An outcome: allowed, limit, remaining, reset, retry (-1 = never), blocked, lease.
local function allow(limit, remaining, reset)
  return {1, limit, remaining, reset, 0, 0, 0}
end

local function deny(limit, remaining, reset, retry)
  return {0, limit, remaining, reset, retry or -1, 0, 0}
end

-- Reads a state: the numbers of a space-separated string, or nil.
local function fields(raw)
  if not raw then return nil end
  local out = {}
  for word in string.gmatch(raw, "%S+") do out[#out + 1] = word end
  return out
end

local function num(s) return tonumber(s) or 0 end

-- Lua 5.1 turns numbers into strings with 14 significant digits; microsecond instants
-- have 16, so every number stored goes through here.
local function int(x) return string.format("%.0f", x) end
