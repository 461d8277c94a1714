--[[
evaluate.lua -- the driver: one rate-limit request (all of its counter ops) in one script.
Mirrors evaluateOps() in src/limiter/algorithms/evaluate.ts exactly. A request of exactly one op
runs lua/evaluate-one.lua instead (same semantics, less work); this script serves several ops,
and every call of the cluster backend when a request spans several hash slots (it needs `now`).

Contract
  KEYS[i]   counter key of op i (n = #KEYS ops). Keys may repeat: two ops on one key see each
            other (ops on one key must use one algorithm; the backends check this). On Redis
            Cluster all keys of one call must hash to one slot (keys.ts gives every key of a
            descriptor the same {hash tag}); on standalone Redis any keys may be mixed.
  ARGV[1]   the parameters, little-endian IEEE-754 doubles (src/backend/redis/script-format.ts
            marshalEvaluate): a header of 2, then 6 per op, 16 + 48 n bytes in all.
              header: now (Unix ms, integer; NaN = use redis.call('TIME') truncated to the ms:
                      Redis is the one clock, production sends NaN, tests a fixed time; TIME
                      before writes needs effects replication, the default since Redis 5),
                      chargeOnDeny (1 charges every window op even when the request is denied,
                      envoyproxy/ratelimit behaviour; 0 charges nothing when denied)
              op i:   code (1 fixed window | 2 sliding window | 3 token bucket), windowMs (ms),
                      threshold, burst (token bucket capacity), hits (>= 0),
                      enforce (1 | 0 = shadow)
            Binary, not decimal strings: Redis makes a Lua string of every argument and
            tonumber() runs strtod on each, which costs more than all the arithmetic here.
  Reply     flat integer array: { denied (1|0), then per op: over (1|0), remaining, resetMs,
            then now (the Unix ms the ops were evaluated at) }. `now` lets a caller that split
            one request over several calls (Redis Cluster: one call per hash slot) undo exactly
            what this call charged, with lua/refund.lua, when another call denied the request.
  Redis calls: one GET (one distinct key) or one MGET (several), then one SET per changed key,
  only when the request is admitted or chargeOnDeny is set: `SET key value KEEPTTL` when every
  step that changed the key reported its stored TTL still right (keep), else
  `SET key value PX ttl`. Nothing else (TIME when now is NaN).

Why atomic
  "Every enforced op fits, so charge them all" spans several counters. As one script, no other
  request can charge a counter between our read and our write, and a denied request leaves
  every counter exactly as it was.

Assembly (src/backend/redis/lua-assembler.ts): this file, with its `-- @each-algorithm` block
expanded into an `if code == ...` chain, one branch per algorithm, whose `-- @step` line becomes
that algorithm's decision (lua/<algorithm>.lua: decode, step, encode) in a `do ... end` block:
no closure per call, the math still exists once. A section reads raw (the key's working copy),
windowMs, threshold, burst, hits, chargeOnOver, now and assigns
  over, remaining, resetMs, value (new state bytes, nil when unchanged), ttl (ms), keep
The working copy of a key is its stored value: a step always decodes its input, and
decode(encode(x)) = x, so this is the same as evaluateOps' working copy of decoded states.
Its `-- @include "includes/time-now.lua"` line becomes that file's text (the Redis clock in ms),
indented like the line: a fragment is included, not copied, and costs no Lua function call
(expandIncludes in lua-assembler.ts).
]]
local args = ARGV[1]
local now, chargeOnDeny = struct.unpack('<dd', args)
if now ~= now then
  -- @include "includes/time-now.lua"
end
local chargeOnOver = chargeOnDeny == 1
local n = #KEYS

-- Read every distinct key once; `working[key]` is then the working copy.
local working, distinct = {}, {}
for i = 1, n do
  local k = KEYS[i]
  if working[k] == nil then
    working[k] = false
    distinct[#distinct + 1] = k
  end
end
if #distinct == 1 then
  working[distinct[1]] = redis.call('GET', distinct[1])
else
  local values = redis.call('MGET', unpack(distinct))
  for i = 1, #distinct do working[distinct[i]] = values[i] end
end

-- ttls[key]: nil while unchanged; false while every step that changed the key said its stored
-- TTL is still right (keep: write with KEEPTTL); else the TTL of the last such step (PX).
local ttls, order = {}, {}
local reply = { 0 }
local denied = false
local pos = 17
for i = 1, n do
  local key = KEYS[i]
  local code, windowMs, threshold, burst, hits, enforce
  code, windowMs, threshold, burst, hits, enforce, pos = struct.unpack('<dddddd', args, pos)
  local raw = working[key]
  local over, remaining, resetMs, value, ttl, keep
  -- @each-algorithm
  -- @step
  -- @end-each-algorithm
  if over and enforce == 1 then denied = true end
  if value then
    local pending = ttls[key]
    if pending == nil then order[#order + 1] = key end
    if keep and not pending then ttls[key] = false else ttls[key] = ttl end
    working[key] = value
  end
  reply[3 * i - 1] = over and 1 or 0
  reply[3 * i] = remaining
  reply[3 * i + 1] = resetMs
end

reply[3 * n + 2] = now
if denied then
  reply[1] = 1
  if not chargeOnOver then return reply end
end
for i = 1, #order do
  local key = order[i]
  local ttl = ttls[key]
  if ttl then
    redis.call('SET', key, working[key], 'PX', string.format('%d', ttl))
  else
    redis.call('SET', key, working[key], 'KEEPTTL')
  end
end
return reply
