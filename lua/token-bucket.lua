--[[
token-bucket.lua -- one token-bucket counter step (continuous refill). Twin of
src/limiter/algorithms/token-bucket.ts: same arithmetic in the same order, same state string.

Contract (one counter, as the drivers lua/evaluate.lua and lua/evaluate-one.lua slice a request)
  KEYS slice: 1 key, the bucket: "<level>:<lastMs>" (level in tokens x windowMs, see below).
  ARGV slice: code 3 (evaluate) or 't' (refund), windowMs (ms, integer > 0), threshold (tokens
              refilled per window), burst (capacity in tokens), hits (tokens to take, >= 0; 0
              checks without consuming), enforce (read by the driver); the drivers unpack them
              and pass numbers.
  Module: the assembler places this file in a `do` block that declares STEP and the boolean
  REFUND (`N`, lua/number.lua, is declared before it); the file assigns to STEP
  step(raw, windowMs, threshold, burst, hits, chargeOnOver, now)
    -> over, remaining, resetMs, value (the new state string, nil when unchanged), ttlMs, keepTtl
  keepTtl is always false: every take moves the moment the bucket is full again, so every write
  re-arms the expiry.
  or, when REFUND is true (lua/refund.lua), refund(raw, windowMs, threshold, burst, hits, chargeNow)
    -> value (the state string with the tokens given back, nil when there is nothing to give back):
  give = hits x windowMs - (last - chargeNow) x threshold, level = min(cap, level + give), `last`
  kept. With last = chargeNow (no take since ours) that is exact; a later take may have come
  after the bucket refilled part of our hole up to the cap, which the refill bound covers, so a
  refund never gives back more than the charge left missing. last < chargeNow (a clock that went
  back) or give <= 0 gives nothing.
  `raw` is the stored string (false or nil when missing); a missing or unparsable value is a
  full bucket.
  The level is kept in tokens x windowMs, so the refill per ms is `threshold` and every quantity
  is an integer with integer clocks (exact in doubles below 2^53). Over when hits x windowMs
  exceeds the level; never charged when over (chargeOnOver does not apply). Reset = ms until the
  bucket is full (ceil), also the TTL (at least 1 ms): an expired bucket is a full one.
  threshold 0 (requests_per_unit: 0) is over for any hits > 0 and changes nothing.

Why atomic
  Refill, compare and take must not interleave with another request's; the driver runs all steps
  of one request inside one script.
]]
-- Hot path notes: as in fixed-window.lua (library functions looked up where used; our own
-- integer "level:last" strings are read and written without lua/number.lua).
if REFUND then
  STEP = function(raw, windowMs, threshold, burst, hits, now)
    if not raw then return nil end
    local l, t
    local a, b = string.match(raw, '^(%d+):(%d+)$')
    if a then
      l, t = tonumber(a), tonumber(b)
      if l == math.huge or t == math.huge then l = nil end
    else
      local i = string.find(raw, ':', 1, true)
      if i and i > 1 then
        local num = N().num
        l, t = num(string.sub(raw, 1, i - 1)), num(string.sub(raw, i + 1))
        if t == nil then l = nil end
      end
    end
    if l == nil or t < now then return nil end
    local give = hits * windowMs - (t - now) * threshold
    if not (give > 0) then return nil end
    local level = math.min(burst * windowMs, l + give)
    if level % 1 == 0 and t % 1 == 0 and level < 9007199254740992 and level > -9007199254740992 and t < 9007199254740992 and t > -9007199254740992 then
      return string.format('%d:%d', level, t)
    end
    local n = N()
    return n.fmt(level) .. ':' .. n.str(t)
  end
else
  STEP = function(raw, windowMs, threshold, burst, hits, chargeOnOver, now)
    -- requests_per_unit 0 blocks every request, as for the window algorithms (a bucket that never
    -- refilled would otherwise depend on key expiry to come back).
    if threshold == 0 then return hits > 0, 0, 0, nil, 1, false end
    local cap = burst * windowMs
    local level = cap
    if raw then
      -- decode, exactly as tokenBucket.decode: first ':' at index > 0, both sides finite Numbers
      local l, t
      local a, b = string.match(raw, '^(%d+):(%d+)$')
      if a then
        l, t = tonumber(a), tonumber(b)
        if l == math.huge or t == math.huge then l = nil end
      else
        local i = string.find(raw, ':', 1, true)
        if i and i > 1 then
          local num = N().num
          l, t = num(string.sub(raw, 1, i - 1)), num(string.sub(raw, i + 1))
          if t == nil then l = nil end
        end
      end
      if l ~= nil then
        local elapsed = 0
        if now > t then elapsed = now - t end
        level = math.min(cap, l + elapsed * threshold)
      end
    end
    local cost = hits * windowMs
    local over = cost > level
    local after = level
    local charge = hits > 0 and not over
    if charge then after = level - cost end
    local resetMs = 0
    if threshold > 0 then resetMs = math.ceil((cap - after) / threshold) end
    local remaining = 0
    if not over then remaining = math.floor(after / windowMs) end
    local ttl = resetMs
    if ttl < 1 then ttl = 1 end
    if charge then
      local value
      if after % 1 == 0 and now % 1 == 0 and after < 9007199254740992 and after > -9007199254740992 and now < 9007199254740992 and now > -9007199254740992 then
        value = string.format('%d:%d', after, now)
      else
        local n = N()
        value = n.fmt(after) .. ':' .. n.str(now)
      end
      return over, remaining, resetMs, value, ttl, false
    end
    return over, remaining, resetMs, nil, ttl, false
  end
end
