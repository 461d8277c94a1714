--[[
token-bucket.lua -- the token-bucket math (continuous refill). Twin of
src/limiter/algorithms/token-bucket.ts: same arithmetic in the same order, same stored bytes.

Contract (one counter, as the drivers lua/evaluate.lua, lua/evaluate-one.lua and lua/refund.lua
slice a request)
  KEYS slice: 1 key, the bucket. Stored value, 25 bytes: struct.pack('<Bddd', 84, level, last,
              armed) ('T', then little-endian doubles: level in tokens x windowMs, see below; the
              Unix ms of the last take; the Unix ms until which the key's TTL was last armed).
              Also read: "<level>:<last>" in decimal digits, what versions before the binary
              state wrote, as armed = -infinity (the next write arms the TTL). Anything else, or
              a non-finite level or last, is a full bucket (armed may be any double: NaN or
              -infinity re-arm, only foreign values hold +infinity).
  ARGV slice: code 3 (evaluate) or 't' (refund), windowMs (ms, integer > 0), threshold (tokens
              refilled per window), burst (capacity in tokens), hits (tokens to take, >= 0; 0
              checks without consuming), enforce (read by the driver); the drivers unpack them
              into the locals below.
  Sections: spliced by the assembler where a driver says `-- @step` or `-- @refund`, exactly as
  described in lua/fixed-window.lua (same locals read and assigned; the state locals
  are this file's own, declared by its @decode).
  @step   The key must live until the bucket is full again (now + resetMs): an expired bucket is
          a full one. Every take moves that moment, but re-arming the TTL on every write (SET
          PX) costs Redis more than the arithmetic, so a write that re-arms gives the key
          2 x the full-refill time (2 x ceil(burst x windowMs / threshold)) and records the
          deadline in `armed`; later writes keep the TTL (KEEPTTL) while now + resetMs <= armed,
          which holds for at least one full-refill time after arming. `armed` is in the same
          clock as the key's expiry (Redis TIME; PX counts from the same clock), so the key
          never expires before the bucket is full. The TTL only serves cleanup: a test clock far
          from Redis's changes which writes re-arm, never an answer.
          ttl = armed - now when keeping (what PX would set: a second step on the key in one
          request may still need a PX, see lua/evaluate.lua).
  @refund give = hits x windowMs - (last - chargeNow) x threshold, level = min(cap, level +
          give), `last` and `armed` kept (a fuller bucket is full sooner, so the TTL is still
          long enough). With last = chargeNow (no take since ours) that is exact; a later take
          may have come after the bucket refilled part of our hole up to the cap, which the
          refill bound covers, so a refund never gives back more than the charge left missing.
          last < chargeNow (a clock that went back) or give <= 0 gives nothing.
  The level is kept in tokens x windowMs, so the refill per ms is `threshold` and every quantity
  is an integer with integer clocks (exact in doubles below 2^53). Over when hits x windowMs
  exceeds the level; never charged when over (chargeOnOver does not apply). Reset = ms until the
  bucket is full (ceil). threshold 0 (requests_per_unit: 0) is over for any hits > 0 and changes
  nothing.

Why atomic
  Refill, compare and take must not interleave with another request's; the driver runs all steps
  of one request inside one script.
]]
-- @decode
-- l, t, a = the stored level, last take and armed deadline; l is nil when raw is missing or not
-- ours (the decimal text of earlier versions has no deadline: -infinity re-arms)
local l, t, a
if raw then
  if #raw == 25 then
    local m
    m, l, t, a = struct.unpack('<Bddd', raw)
    if m ~= 84 then l = nil end
  end
  if l == nil then
    local x, y = string.match(raw, '^(%d+):(%d+)$')
    if x then l, t, a = tonumber(x), tonumber(y), -math.huge end
  end
end
-- @step
keep = false
if threshold == 0 then
  -- requests_per_unit 0 blocks every request, as for the window algorithms (a bucket that never
  -- refilled would otherwise depend on key expiry to come back)
  over, remaining, resetMs, ttl = hits > 0, 0, 0, 1
else
  local cap = burst * windowMs
  local level, armed = cap, -math.huge
  -- x - x == 0 only for a finite x
  if l and l - l == 0 and t - t == 0 then
    local elapsed = 0
    if now > t then elapsed = now - t end
    level = math.min(cap, l + elapsed * threshold)
    armed = a
  end
  local cost = hits * windowMs
  over = cost > level
  local after = level
  local charge = hits > 0 and not over
  if charge then after = level - cost end
  resetMs = math.ceil((cap - after) / threshold)
  remaining = 0
  if not over then remaining = math.floor(after / windowMs) end
  ttl = resetMs
  if ttl < 1 then ttl = 1 end
  if charge then
    if now + resetMs <= armed then
      keep, ttl = true, armed - now
    else
      ttl = 2 * math.ceil(cap / threshold)
      armed = now + ttl
    end
    l, t, a, changed = after, now, armed, true
  end
end
-- @encode
value = struct.pack('<Bddd', 84, l, t, a)
-- @refund
if l and l - l == 0 and t - t == 0 and t >= now then
  local give = hits * windowMs - (t - now) * threshold
  if give > 0 then
    l, changed = math.min(burst * windowMs, l + give), true
  end
end
