--[[
fixed-window.lua -- one fixed-window counter step. Twin of src/limiter/algorithms/fixed-window.ts:
same arithmetic in the same order, same state string, so Redis and the memory backend agree bit
for bit (checked by test/integration/backend/lua-vs-ts.property.test.ts).

Contract (one counter, as the drivers lua/evaluate.lua and lua/evaluate-one.lua slice a request)
  KEYS slice: 1 key, the counter: "<windowStart>:<count>" (integers: Unix ms, hits).
  ARGV slice: code 1 (evaluate) or 'f' (refund), windowMs (ms, integer > 0), threshold (hits per
              window), burst (unused), hits (>= 0; 0 checks without consuming), enforce (read by
              the driver); the drivers unpack them and pass numbers.
  Module: the assembler places this file in a `do` block that declares STEP and the boolean
  REFUND (`N`, lua/number.lua, is declared before it); the file assigns to STEP
  step(raw, windowMs, threshold, burst, hits, chargeOnOver, now)
    -> over, remaining, resetMs, value (the new state string, nil when unchanged), ttlMs, keepTtl
  keepTtl is true when the stored value already belongs to the current window: its TTL was set
  (to this window's end) by the write that opened the window, so the driver writes with KEEPTTL
  and skips re-arming the expiry (a PX costs Redis more than the whole arithmetic here).
  or, when REFUND is true (lua/refund.lua), refund(raw, windowMs, threshold, burst, hits, chargeNow)
    -> value (the state string with `hits` given back, nil when there is nothing to give back):
  if the stored window is the one `chargeNow` falls in, count = max(0, count - hits); a window
  that has rolled over since the charge took the charge with it.
  `raw` is the stored string (false or nil when missing); a missing or unparsable value is a
  fresh counter. Windows are aligned to multiples of windowMs since the Unix epoch; a hit is over
  when the count after it exceeds the threshold; reset = ms until the window ends = the TTL.

Why atomic
  Read, compare and charge must not interleave with another request's, or two requests could
  both see `threshold - 1` and both be admitted. The driver runs every step of a request inside
  one script, which Redis executes without interleaving.
]]
-- Hot path notes: library functions are looked up where used (each is used once per call, so
-- caching them in locals would only add work); state strings our encoder wrote ("digits:digits",
-- integers below 2^53) are read and written without lua/number.lua.
if REFUND then
  STEP = function(raw, windowMs, threshold, burst, hits, now)
    if not raw then return nil end
    local s, c
    local a, b = string.match(raw, '^(%d+):(%d+)$')
    if a then
      s, c = tonumber(a), tonumber(b)
      if s == math.huge or c == math.huge then s = nil end
    else
      local i = string.find(raw, ':', 1, true)
      if i and i > 1 then
        local num = N().num
        s, c = num(string.sub(raw, 1, i - 1)), num(string.sub(raw, i + 1))
        if c == nil then s = nil end
      end
    end
    local start = math.floor(now / windowMs) * windowMs
    if s == nil or s ~= start then return nil end
    local after = c - hits
    if after < 0 then after = 0 end
    if start % 1 == 0 and after % 1 == 0 and start < 9007199254740992 and start > -9007199254740992 and after < 9007199254740992 and after > -9007199254740992 then
      return string.format('%d:%d', start, after)
    end
    local str = N().str
    return str(start) .. ':' .. str(after)
  end
else
  STEP = function(raw, windowMs, threshold, burst, hits, chargeOnOver, now)
    local start = math.floor(now / windowMs) * windowMs
    local count, keep = 0, false
    if raw then
      -- decode, exactly as fixedWindow.decode: first ':' at index > 0, both sides finite Numbers
      local s, c
      local a, b = string.match(raw, '^(%d+):(%d+)$')
      if a then
        s, c = tonumber(a), tonumber(b)
        if s == math.huge or c == math.huge then s = nil end
      else
        local i = string.find(raw, ':', 1, true)
        if i and i > 1 then
          local num = N().num
          s, c = num(string.sub(raw, 1, i - 1)), num(string.sub(raw, i + 1))
          if c == nil then s = nil end
        end
      end
      if s ~= nil and s == start then count, keep = c, true end
    end
    local after = count + hits
    local over = after > threshold
    local remaining = 0
    if not over then
      remaining = threshold - after
      remaining = remaining - remaining % 1 -- floor: only a foreign fractional count makes it matter
    end
    local resetMs = start + windowMs - now
    if hits > 0 and (not over or chargeOnOver) then
      local value
      if start % 1 == 0 and after % 1 == 0 and start < 9007199254740992 and start > -9007199254740992 and after < 9007199254740992 and after > -9007199254740992 then
        value = string.format('%d:%d', start, after)
      else
        local str = N().str
        value = str(start) .. ':' .. str(after)
      end
      return over, remaining, resetMs, value, resetMs, keep
    end
    return over, remaining, resetMs, nil, resetMs, keep
  end
end
