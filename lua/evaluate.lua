--[[
evaluate.lua -- the driver: one rate-limit request (all of its counter ops) in one script.
Mirrors evaluateOps() in src/limiter/algorithms/evaluate.ts exactly.

Contract
  KEYS[i]   counter key of op i (n = #KEYS ops). Keys may repeat: two ops on one key see each
            other (ops on one key must use one algorithm; the backends check this). On Redis
            Cluster all keys of one call must hash to one slot (keys.ts gives every key of a
            descriptor the same {hash tag}); on standalone Redis any keys may be mixed.
  ARGV[1]   now: Unix ms (integer), or '' to use redis.call('TIME') truncated to the ms (Redis is
            the one clock: production passes ''; tests pass a fixed time). TIME before writes
            needs effects replication, the default since Redis 5.
  ARGV[2]   chargeOnDeny: '1' charges every window op even when the request is denied
            (envoyproxy/ratelimit behaviour); '0' charges nothing when denied.
  ARGV[3 + 6(i-1) .. 8 + 6(i-1)]   op i, 6 values:
            code ('f' fixed window | 's' sliding window | 't' token bucket), windowMs (ms),
            threshold, burst (token bucket capacity), hits (>= 0), enforce ('1' | '0' = shadow).
  Reply     flat integer array: { denied (1|0), then per op: over (1|0), remaining, resetMs,
            then now (the Unix ms the ops were evaluated at) }. `now` lets a caller that split
            one request over several calls (Redis Cluster: one call per hash slot) undo exactly
            what this call charged, with lua/refund.lua, when another call denied the request.
  Redis calls: one GET (one op) or one MGET (several ops, distinct keys once), then one
  SET key value PX ttl per changed key, only when the request is admitted or chargeOnDeny is set.
  Nothing else (TIME when ARGV[1] is '').

Why atomic
  "Every enforced op fits, so charge them all" spans several counters. As one script, no other
  request can charge a counter between our read and our write, and a denied request leaves
  every counter exactly as it was.

Assembly (src/backend/redis/scripts.ts): `N` (lua/number.lua, built lazily), then the three
algorithm modules (assembled with REFUND = false) bound to FIXED, SLIDING and TOKEN, each a step
function
  step(raw, windowMs, threshold, burst, hits, chargeOnOver, now)
    -> over, remaining, resetMs, new state string or nil when unchanged, ttlMs
The working copy of a key is its state string: a step always decodes its input, and
decode(encode(x)) = x, so this is the same as evaluateOps' working copy of decoded states.
Redis CPU matters (every decision runs this): one op takes a path with no table but the reply.
]]
local function pick(code)
  if code == 'f' then return FIXED end
  if code == 's' then return SLIDING end
  if code == 't' then return TOKEN end
  return error({ err = 'ERR meshlimit: unknown algorithm code ' .. tostring(code) })
end

local now = ARGV[1]
if now == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(now)
end
local chargeOnDeny = ARGV[2] == '1'
local n = #KEYS

if n == 1 then
  -- One op (the common case): no tables but the reply.
  local key = KEYS[1]
  local over, remaining, resetMs, value, ttl = pick(ARGV[3])(redis.call('GET', key),
    tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), chargeOnDeny, now)
  local denied = over and ARGV[8] == '1'
  if value and (chargeOnDeny or not denied) then
    redis.call('SET', key, value, 'PX', string.format('%d', ttl))
  end
  return { denied and 1 or 0, over and 1 or 0, remaining, resetMs, now }
end

-- Several ops: read every distinct key once; `value[key]` is then the working copy.
local value, seen, distinct = {}, {}, {}
for i = 1, n do
  local k = KEYS[i]
  if not seen[k] then
    seen[k] = true
    distinct[#distinct + 1] = k
  end
end
local values = redis.call('MGET', unpack(distinct))
for i = 1, #distinct do value[distinct[i]] = values[i] end

local ttls, order = {}, {}
local reply = { 0 }
local denied = false
local a = 3
for i = 1, n do
  local key = KEYS[i]
  local over, remaining, resetMs, nextValue, ttl = pick(ARGV[a])(value[key],
    tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), chargeOnDeny, now)
  if over and ARGV[a + 5] == '1' then denied = true end
  if nextValue then
    if ttls[key] == nil then order[#order + 1] = key end
    value[key] = nextValue
    ttls[key] = ttl
  end
  reply[3 * i - 1] = over and 1 or 0
  reply[3 * i] = remaining
  reply[3 * i + 1] = resetMs
  a = a + 6
end

reply[3 * n + 2] = now
if denied then
  reply[1] = 1
  if not chargeOnDeny then return reply end
end
for i = 1, #order do
  local key = order[i]
  redis.call('SET', key, value[key], 'PX', string.format('%d', ttls[key]))
end
return reply
