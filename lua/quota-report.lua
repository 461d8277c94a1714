--[[
quota-report.lua -- one RLQS usage report of one Envoy for one rule counter: charges the Envoy's
allowed requests to the rule's fixed-window counter (the one RLS counts on), keeps the Envoy's
demand beside it, drops silent Envoys and computes this Envoy's share. Twin of assign() and
MemoryQuotaStore in src/quota/report.ts, memory-store.ts and allocate.ts: same steps, same
arithmetic in the same order (sums over Envoys in ascending order of value, as there), so both
stores give the same assignments (test/integration/quota/quota-conformance.ts).

Contract
  KEYS[1]   the rule's counter key (RLS's fixed-window key for the rule and descriptor values,
            src/quota/keys.ts quotaCounterKey).
  KEYS[2]   the rule's Envoy hash, KEYS[1] .. ':rlqs' (same {hash tag}: one cluster slot).
            field = Envoy id, value = struct.pack('<dddd', demand (requests/s), heldRate
            (requests/s), heldUntil (Unix ms), reclaimAt (Unix ms)), 32 bytes; another value is
            dropped. PEXPIRE: until the last Envoy's reclaimAt, so an abandoned rule's hash goes.
  ARGV[1]   'r' (report) or 'f' (forget the Envoy: demand 0, reclaimed when its TTL ends)
  ARGV[2]   Envoy id
  ARGV[3]   now, Unix ms (integer), or '' to use redis.call('TIME') (production; tests send it)
  ARGV[4..] for 'r' only, decimal strings: allowed (>= 0), denied (>= 0), interval (whole
            seconds, 1..3600), threshold (the limit's requests per window), windowMs (ms),
            maxEnvoys, floorFraction, ttlIntervals, reclaimIntervals, maxFillSec (constants of
            src/quota/allocate.ts, sent so they are declared once), firstReport ('1' when
            time_elapsed was 0: the TTL then uses the other Envoys' longest interval).
  Reply     'r': { tokensPerFill, fillIntervalSec, ttlSec } (tokensPerFill 0: DENY_ALL), or
            { -1, envoys } when the Envoy is new and the rule already has maxEnvoys.
            'f': 1 when the Envoy was known, else 0.
  Redis calls: TIME (when ARGV[3] is ''), GET and SET (KEEPTTL or PX) of KEYS[1], HGETALL, HDEL,
  HSET and PEXPIRE of KEYS[2].

Why atomic
  The charge, the read of every Envoy's demand and held share and the write of this Envoy's new
  share must not interleave with another replica's report on the same rule, or two Envoys could
  both be given the same headroom (shares summing above the limit).

Assembly (src/backend/redis/lua-assembler.ts): the `-- @decode`, `-- @step-only` and `-- @encode`
lines become lua/fixed-window.lua's sections (see its contract for the locals they read and
assign); the include line becomes lua/includes/time-now.lua.
]]
local key, stateKey = KEYS[1], KEYS[2]
local envoy = ARGV[2]
local now = tonumber(ARGV[3])
if now == nil then
  -- @include "includes/time-now.lua"
end

if ARGV[1] == 'f' then
  local v = redis.call('HGET', stateKey, envoy)
  if not v then return 0 end
  if #v == 32 then
    local d, h, hu, ra = struct.unpack('<dddd', v)
    if hu > now then
      redis.call('HSET', stateKey, envoy, struct.pack('<dddd', 0, h, hu, hu))
      return 1
    end
  end
  redis.call('HDEL', stateKey, envoy)
  return 1
end

local allowed, denied, interval = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local threshold, windowMs, maxEnvoys = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local floorFraction, ttlIntervals, reclaimIntervals, maxFill = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local firstReport = ARGV[14] == '1'

-- 1. Charge the allowed requests (admitted already, so past the limit too), read what is left.
local left, resetLeft
do
  local raw = redis.call('GET', key)
  local hits, burst, chargeOnOver = allowed, threshold, true
  local over, remaining, resetMs, ttl, keep, changed, value
  -- @decode fixed-window
  -- @step-only fixed-window
  if changed then
    -- @encode fixed-window
    if keep then
      redis.call('SET', key, value, 'KEEPTTL')
    else
      redis.call('SET', key, value, 'PX', string.format('%d', ttl))
    end
  end
  left = remaining
  if over then left = 0 end
  resetLeft = resetMs
end

-- 2. The rule's Envoys: drop the silent ones, bound their number.
local fields = redis.call('HGETALL', stateKey)
local envoys, count, dropped = {}, 0, {}
for i = 1, #fields, 2 do
  local v = fields[i + 1]
  local d, h, hu, ra
  if #v == 32 then d, h, hu, ra = struct.unpack('<dddd', v) end
  if ra ~= nil and ra > now then
    envoys[fields[i]] = { d, h, hu, ra }
    count = count + 1
  else
    dropped[#dropped + 1] = fields[i]
  end
end
if #dropped > 0 then redis.call('HDEL', stateKey, unpack(dropped)) end
local previous = envoys[envoy]
if previous == nil and count >= maxEnvoys then return { -1, count } end

-- 3. Demand: the reported rate, smoothed (rises at once, halves per report when it falls).
local demand = (allowed + denied) / interval
if previous ~= nil then
  local mean = (previous[1] + demand) / 2
  if not (demand > mean) then demand = mean end
end
-- A first report (time_elapsed 0) takes its TTL interval from the other Envoys' state: the
-- longest of (reclaimAt - heldUntil) / ((reclaimIntervals - ttlIntervals) x 1000).
local demands, holding, ttlInterval = { demand }, {}, interval
for id, e in pairs(envoys) do
  if id ~= envoy then
    demands[#demands + 1] = e[1]
    if e[3] > now then holding[#holding + 1] = e[2] else holding[#holding + 1] = 0 end
    if firstReport then
      local theirs = (e[4] - e[3]) / ((reclaimIntervals - ttlIntervals) * 1000)
      if theirs > ttlInterval then ttlInterval = theirs end
    end
  end
end

-- 4. Capacity, floor, water level, headroom: allocate.ts capacity() and shareOf().
local limitRate = threshold / (windowMs / 1000)
local cap = 0
if left > 0 then
  cap = left / (resetLeft / 1000)
  if not (cap < limitRate) then cap = limitRate end
end
local rate = 0
if cap > 0 then
  local n = #demands
  local floor = (floorFraction * cap) / n
  for i = 1, n do
    if not (demands[i] > floor) then demands[i] = floor end
  end
  table.sort(demands)
  local rest, m, level = cap, n, math.huge
  for i = 1, n do
    if demands[i] > rest / m then
      level = rest / m
      break
    end
    rest = rest - demands[i]
    m = m - 1
  end
  local wanted = demand
  if not (demand > floor) then wanted = floor end
  local fair = wanted
  if not (wanted < level) then fair = level end
  table.sort(holding)
  local others = 0
  for i = 1, #holding do others = others + holding[i] end
  local headroom = cap - others
  rate = fair
  if not (fair < headroom) then rate = headroom end
  if not (rate > floor) then rate = floor end
end

-- 5. The token bucket (allocate.ts tokenBucketFor), this Envoy's new state, the hash's TTL.
local tokens, fill = 0, 1
if rate >= 1 then
  tokens = math.floor(rate)
elseif rate > 0 then
  fill = math.ceil(1 / rate)
  if fill > maxFill then fill = 1 else tokens = 1 end
end
local ttlSec = ttlIntervals * ttlInterval
local reclaimAt = now + reclaimIntervals * ttlInterval * 1000
redis.call('HSET', stateKey, envoy, struct.pack('<dddd', demand, tokens / fill, now + ttlSec * 1000, reclaimAt))
local last = reclaimAt
for _, e in pairs(envoys) do
  if e[4] > last then last = e[4] end
end
redis.call('PEXPIRE', stateKey, string.format('%d', last - now))
return { tokens, fill, ttlSec }
