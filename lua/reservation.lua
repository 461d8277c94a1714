--[[
reservation.lua -- reserve or settle one reservation on one counter. Mirrors reservationStep()
in src/limiter/algorithms/reservation.ts exactly (same steps, same order, same integers).

Contract
  KEYS[1]  the counter's hash (the rule's counter key, `...{tag}:rsv:...`): fields
           w = window start (Unix ms), u = cost charged in that window, s = sum of outstanding
           estimates, r:<id> = the estimate of reservation <id>.
  KEYS[2]  the expiry set beside it (KEYS[1] .. ':exp', same hash tag, so the same cluster
           slot): member <id>, score = the Unix ms at which it expires.
  ARGV[1]  phase: 'r' (reserve) or 's' (settle)
  ARGV[2]  id: the correlation id (<= 128 characters, checked by the service)
  ARGV[3]  amount: reserve: the estimate; settle: the real cost (0 for in-flight rules)
  ARGV[4]  threshold (requests_per_unit)
  ARGV[5]  windowMs (ms)
  ARGV[6]  ttlMs: how long a reservation lives without a settle (ms, <= windowMs)
  ARGV[7]  expiryCharge: '1' charges an expired reservation's estimate, '0' charges nothing
  ARGV[8]  maxOutstanding: most reservations outstanding on this counter
  ARGV[9]  now (Unix ms) or '' to use Redis TIME (production sends '', tests a fixed time)
  Reply    array of 8 integers: overLimit (0/1), remaining, resetMs, outcome (1 taken, 2 denied,
           3 full, 4 duplicate, 5 settled, 6 unknown), expired, outstanding, used, reserved.
  Redis calls: HMGET, ZRANGEBYSCORE (+ HGET/HDEL and ZREMRANGEBYSCORE per expired batch),
  ZSCORE or HGET for the id, ZCARD, then one HSET (the counter's fields and a new reservation's
  estimate), HDEL, ZADD/ZREM and PEXPIRE on both keys when something changed (keep = windowMs + ttlMs, so neither the window's charge nor the last
  reservation is forgotten while it counts).

Why atomic
  The admission test reads used + reserved and writes the new reservation; a concurrent reserve
  between the two would be admitted against the same room (the check-then-report race this
  exists to close). Expiry and settle remove a reservation and subtract its estimate in one
  step, so each reservation is released exactly once.
]]
local key, zkey = KEYS[1], KEYS[2]
local phase, id = ARGV[1], ARGV[2]
local amount, threshold, windowMs = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local ttlMs, expiryCharge, maxOutstanding = tonumber(ARGV[6]), ARGV[7] == '1', tonumber(ARGV[8])
local now = tonumber(ARGV[9])
if now == nil then
  -- @include "includes/time-now.lua"
end
local function num(x)
  return string.format('%.0f', x)
end
local windowStart = now - now % windowMs
local st = redis.call('HMGET', key, 'w', 'u', 's')
local used, reserved = tonumber(st[2]) or 0, tonumber(st[3]) or 0
local changed = false
if tonumber(st[1]) ~= windowStart then
  used = 0
  changed = true
end
local expired = 0
local gone = redis.call('ZRANGEBYSCORE', zkey, '-inf', now)
if #gone > 0 then
  for i = 1, #gone do
    local field = 'r:' .. gone[i]
    local estimate = tonumber(redis.call('HGET', key, field)) or 0
    redis.call('HDEL', key, field)
    reserved = reserved - estimate
    if expiryCharge then used = used + estimate end
  end
  redis.call('ZREMRANGEBYSCORE', zkey, '-inf', now)
  expired = #gone
  changed = true
end
local outstanding = redis.call('ZCARD', zkey)
local outcome, taken
if phase == 'r' then
  if redis.call('ZSCORE', zkey, id) then
    outcome = 4
  elseif outstanding >= maxOutstanding then
    outcome = 3
  elseif used + reserved + amount <= threshold then
    taken = 'r:' .. id
    redis.call('ZADD', zkey, now + ttlMs, id)
    reserved = reserved + amount
    outstanding = outstanding + 1
    changed = true
    outcome = 1
  else
    outcome = 2
  end
else
  local held = redis.call('HGET', key, 'r:' .. id)
  if held then
    redis.call('HDEL', key, 'r:' .. id)
    redis.call('ZREM', zkey, id)
    reserved = reserved - tonumber(held)
    used = used + amount
    outstanding = outstanding - 1
    changed = true
    outcome = 5
  else
    outcome = 6
  end
end
if taken then
  -- The new reservation's estimate goes in the same HSET as the counter's fields.
  redis.call('HSET', key, 'w', num(windowStart), 'u', num(used), 's', num(reserved), taken, num(amount))
elseif changed then
  redis.call('HSET', key, 'w', num(windowStart), 'u', num(used), 's', num(reserved))
end
if changed then
  local keep = windowMs + ttlMs
  redis.call('PEXPIRE', key, keep)
  if outstanding > 0 then redis.call('PEXPIRE', zkey, keep) end
end
local over = 0
if outcome == 2 or outcome == 3 or outcome == 4 then over = 1 end
local remaining = threshold - used - reserved
if remaining < 0 then remaining = 0 end
return { over, remaining, windowStart + windowMs - now, outcome, expired, outstanding, used, reserved }
