--[[
refund.lua -- gives back what lua/evaluate.lua charged, for a request that was split over several
script calls and denied by another of them. Mirrors refundOps() in
src/limiter/algorithms/refund.ts exactly.

When it runs
  On Redis Cluster one request's ops are grouped by hash slot and each group is one evaluate
  call (a script can only touch keys of one slot). A group that fits is charged at once; when
  another group denies the request (and chargeOnDeny is off), the backend calls this script once
  per charged group, with the ops that group charged (not over, hits > 0) and the `now` that
  group's evaluate call returned. With REDIS_PERSECOND a request can also span two stores (its
  per-second limits in one Redis, the others in another, src/backend/per-second.ts): the store
  that admitted it runs this script when the other denied it, on standalone Redis and Sentinel
  too. Otherwise standalone Redis and Sentinel never need it: one call evaluates the whole
  request.

Contract
  KEYS[i]   counter key of op i (n = #KEYS ops; all in one hash slot, as for evaluate.lua). Keys
            may repeat: each op gives back its own hits, on the working copy of its key.
  ARGV[1]   chargeNow: the Unix ms the charge was evaluated at (evaluate.lua's reply), integer.
  ARGV[2 + 5(i-1) .. 6 + 5(i-1)]   op i, 5 decimal strings (refunds are rare, so they keep the
            plain layout rather than evaluate.lua's packed one):
            code ('f' | 's' | 't'), windowMs (ms), threshold, burst, hits (> 0).
  Reply     integer: the number of keys written.
  Redis calls: one GET per distinct key, then one SET key value KEEPTTL per changed key (Redis
  >= 6.0). A missing key is left missing: its charge expired with it. KEEPTTL is right for all
  three algorithms: giving back only makes a state reach its "fresh" meaning sooner, and a key
  read after that point already means fresh (an old window, a full bucket), so a TTL longer than
  needed only delays cleanup.

What it guarantees (best effort, documented in README "Redis Cluster")
  Between the charge and this refund other requests see the charge, so the service can briefly
  under-admit; a refund never gives back more than the charge still holds (window counts are
  additive; the token bucket gives back at most the hole the charge left, see
  lua/token-bucket.lua), so it never over-admits. A refund that fails (a timeout, a failover)
  leaves the charge in place: under-admission again, never over-admission.

Why atomic
  The read of the current state and the write of the given-back state must not interleave with a
  concurrent charge on the same key, or that charge would be lost (over-admission).

Assembly (src/backend/redis/lua-assembler.ts): this file, with each `-- @refund <algorithm>`
line replaced by that algorithm's @decode, @refund and (when the state changed) @encode sections
(lua/<algorithm>.lua) in a `do ... end` block. They read raw (the key's working copy),
windowMs, threshold, burst, hits and now (here the charge's `now`) and assign value (the new
state bytes, nil when there is nothing to give back).
]]
local now = tonumber(ARGV[1])
local working, changed, order = {}, {}, {}
local a = 2
for i = 1, #KEYS do
  local key = KEYS[i]
  local raw = working[key]
  if raw == nil then
    raw = redis.call('GET', key)
    working[key] = raw
  end
  local code = ARGV[a]
  local windowMs, threshold, burst, hits = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local value
  if code == 'f' then
    -- @refund fixed-window
  elseif code == 's' then
    -- @refund sliding-window
  elseif code == 't' then
    -- @refund token-bucket
  else
    return error({ err = 'ERR meshlimit: unknown algorithm code ' .. tostring(code) })
  end
  if value then
    if not changed[key] then
      changed[key] = true
      order[#order + 1] = key
    end
    working[key] = value
  end
  a = a + 5
end
for i = 1, #order do
  local key = order[i]
  redis.call('SET', key, working[key], 'KEEPTTL')
end
return #order
