--[[
sliding-window.lua -- one sliding-window (weighted two-window) counter step. Twin of
src/limiter/algorithms/sliding-window.ts: same arithmetic in the same order, same state string.

Contract (one counter, as the drivers lua/evaluate.lua and lua/evaluate-one.lua slice a request)
  KEYS slice: 1 key, the counter: "<currentStart>:<cur>:<prev>" (integers: Unix ms, hits, hits).
  ARGV slice: code 2 (evaluate) or 's' (refund), windowMs (ms, integer > 0), threshold (hits per
              window), burst (unused), hits (>= 0; 0 checks without consuming), enforce (read by
              the driver); the drivers unpack them and pass numbers.
  Module: the assembler places this file in a `do` block that declares STEP and the boolean
  REFUND (`N`, lua/number.lua, is declared before it); the file assigns to STEP
  step(raw, windowMs, threshold, burst, hits, chargeOnOver, now)
    -> over, remaining, resetMs, value (the new state string, nil when unchanged), ttlMs, keepTtl
  keepTtl is true when the stored value already belongs to the current window: the write that
  opened the window set its TTL (to one window past its end), so the driver writes with KEEPTTL.
  or, when REFUND is true (lua/refund.lua), refund(raw, windowMs, threshold, burst, hits, chargeNow)
    -> value (the state string with `hits` given back, nil when there is nothing to give back):
  cur = max(0, cur - hits) while the stored window is still the charge's; prev = max(0, prev - hits)
  once it has rolled over exactly once (the charge is now the previous window's); later, nothing.
  `raw` is the stored string (false or nil when missing); a missing or unparsable value is a
  fresh counter.
  estimate = prev * (windowMs - elapsed) / windowMs + cur; over when estimate + hits > threshold.
  Reset = ms until the current aligned window ends; TTL = reset + windowMs (the state is still
  needed as `prev` during the next window).

Why atomic
  As for the fixed window: reading the estimate and charging must not interleave with another
  request's; the driver runs all steps of one request inside one script.
]]
-- Hot path notes: as in fixed-window.lua (library functions looked up where used; our own
-- "digits:digits:digits" strings are read and written without lua/number.lua).
if REFUND then
  STEP = function(raw, windowMs, threshold, burst, hits, now)
    if not raw then return nil end
    local s, c, p
    local a, b, d = string.match(raw, '^(%d+):(%d+):(%d+)$')
    if a then
      s, c, p = tonumber(a), tonumber(b), tonumber(d)
      if s == math.huge or c == math.huge or p == math.huge then s = nil end
    else
      a, b, d = string.match(raw, '^([^:]*):([^:]*):([^:]*)$')
      if a then
        local num = N().num
        s, c, p = num(a), num(b), num(d)
        if c == nil or p == nil then s = nil end
      end
    end
    if s == nil then return nil end
    local start = math.floor(now / windowMs) * windowMs
    if s == start then
      c = c - hits
      if c < 0 then c = 0 end
    elseif s == start + windowMs then
      p = p - hits
      if p < 0 then p = 0 end
    else
      return nil
    end
    if s % 1 == 0 and c % 1 == 0 and p % 1 == 0 and s < 9007199254740992 and s > -9007199254740992
      and c < 9007199254740992 and c > -9007199254740992 and p < 9007199254740992 and p > -9007199254740992 then
      return string.format('%d:%d:%d', s, c, p)
    end
    local str = N().str
    return str(s) .. ':' .. str(c) .. ':' .. str(p)
  end
else
  STEP = function(raw, windowMs, threshold, burst, hits, chargeOnOver, now)
    local start = math.floor(now / windowMs) * windowMs
    local cur, prev, keep = 0, 0, false
    if raw then
      -- decode, exactly as slidingWindow.decode: split(':') gives three parts, each a finite Number
      local s, c, p
      local a, b, d = string.match(raw, '^(%d+):(%d+):(%d+)$')
      if a then
        s, c, p = tonumber(a), tonumber(b), tonumber(d)
        if s == math.huge or c == math.huge or p == math.huge then s = nil end
      else
        a, b, d = string.match(raw, '^([^:]*):([^:]*):([^:]*)$')
        if a then
          local num = N().num
          s, c, p = num(a), num(b), num(d)
          if c == nil or p == nil then s = nil end
        end
      end
      if s ~= nil then
        if s == start then
          cur, prev, keep = c, p, true
        elseif s == start - windowMs then
          prev = c
        end
      end
    end
    local elapsed = now - start
    local estimate = prev * (windowMs - elapsed) / windowMs + cur
    local over = estimate + hits > threshold
    local remaining = 0
    if not over then remaining = math.floor(threshold - estimate - hits) end
    local resetMs = start + windowMs - now
    if hits > 0 and (not over or chargeOnOver) then
      local nextCur = cur + hits
      local value
      if start % 1 == 0 and nextCur % 1 == 0 and prev % 1 == 0 and start < 9007199254740992 and start > -9007199254740992
        and nextCur < 9007199254740992 and nextCur > -9007199254740992 and prev < 9007199254740992 and prev > -9007199254740992 then
        value = string.format('%d:%d:%d', start, nextCur, prev)
      else
        local str = N().str
        value = str(start) .. ':' .. str(nextCur) .. ':' .. str(prev)
      end
      return over, remaining, resetMs, value, resetMs + windowMs, keep
    end
    return over, remaining, resetMs, nil, resetMs + windowMs, keep
  end
end
