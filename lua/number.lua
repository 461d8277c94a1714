--[[
number.lua -- JavaScript number <-> string conversions for the counter scripts.

Contract
  Module, no KEYS, no ARGV, no Redis calls; returns a table of three functions. The script
  assembler (src/backend/redis/scripts.ts) binds `N` to a function that builds this module on
  its first call and returns it; the algorithm modules receive `N` as their parameter and call
  `N().num(s)` etc. only off their fast paths, so a normal request never instantiates this
  module's closures (a script pays for every closure it creates, on every call).

  num(s)  = JavaScript `Number(s)` when that is finite, else nil (NaN and +/-Infinity are nil,
            which is all the decoders need: they reject non-finite fields).
  str(x)  = JavaScript `String(x)`   (the fixed and sliding window encoders).
  fmt(x)  = src/limiter/algorithms/algorithm.ts `fmtNum(x)`: `String(x)` for integers,
            `x.toPrecision(17)` otherwise (the token bucket encoder).

Why it exists
  The memory backend (TypeScript) and Redis (this Lua) must agree bit for bit on what a stored
  string means and on the string written back, so a counter never changes value when the
  backend does. Lua's `tonumber` is laxer than `Number` (hex floats, "inf", "nan") and stricter
  elsewhere ("" and whitespace-only are 0 in JavaScript); C's `%.17g` strips trailing zeros and
  rounds exact ties to even where `toPrecision` keeps them and rounds ties up. The state strings
  our encoders write are plain decimal integers, which the algorithm modules read and write on a
  fast path of their own (digits only, integers below 2^53, where Lua and JavaScript trivially
  agree); this module only runs on foreign or corrupted values and non-integers.
]]

local find, sub, byte, format, rep = string.find, string.sub, string.byte, string.format, string.rep
local floor, huge = math.floor, math.huge

-- Length in bytes of the JavaScript white space (WhiteSpace or LineTerminator) that starts at
-- byte i of s, as UTF-8; 0 when there is none.
local function wslen(s, i)
  local b = byte(s, i)
  if b == 32 or (b and b >= 9 and b <= 13) then return 1 end
  if b == 0xC2 then return byte(s, i + 1) == 0xA0 and 2 or 0 end -- U+00A0
  if b == 0xE1 then -- U+1680
    return (byte(s, i + 1) == 0x9A and byte(s, i + 2) == 0x80) and 3 or 0
  end
  if b == 0xE2 then
    local b2, b3 = byte(s, i + 1), byte(s, i + 2)
    if b2 == 0x80 and b3 and ((b3 >= 0x80 and b3 <= 0x8A) or b3 == 0xA8 or b3 == 0xA9 or b3 == 0xAF) then
      return 3 -- U+2000..U+200A, U+2028, U+2029, U+202F
    end
    return (b2 == 0x81 and b3 == 0x9F) and 3 or 0 -- U+205F
  end
  if b == 0xE3 then return (byte(s, i + 1) == 0x80 and byte(s, i + 2) == 0x80) and 3 or 0 end -- U+3000
  if b == 0xEF then return (byte(s, i + 1) == 0xBB and byte(s, i + 2) == 0xBF) and 3 or 0 end -- U+FEFF
  return 0
end

local function trim(s)
  local i, j = 1, #s
  while i <= j do
    local n = wslen(s, i)
    if n == 0 then break end
    i = i + n
  end
  -- Trailing white space: every sequence above is 1 to 3 bytes long, so try those lengths.
  while j >= i do
    if wslen(s, j) == 1 then
      j = j - 1
    elseif j - 1 >= i and wslen(s, j - 1) == 2 then
      j = j - 2
    elseif j - 2 >= i and wslen(s, j - 2) == 3 then
      j = j - 3
    else
      break
    end
  end
  return sub(s, i, j)
end

local function finite(x)
  if x ~= nil and x == x and x ~= huge and x ~= -huge then return x end
  return nil
end

-- Value of a 0x/0o/0b literal's digits, rounded to the nearest double (ties to even), as
-- JavaScript's StringToNumber does; nil when it overflows.
local function radix(digits, base)
  local bits = {}
  local per = base == 16 and 4 or (base == 8 and 3 or 1)
  for i = 1, #digits do
    local d = tonumber(sub(digits, i, i), base)
    for k = per - 1, 0, -1 do
      local bit = floor(d / 2 ^ k) % 2
      if bit == 1 or #bits > 0 then bits[#bits + 1] = bit end
    end
  end
  local n = #bits
  local m = 0
  for i = 1, (n < 53 and n or 53) do m = m * 2 + bits[i] end
  if n <= 53 then return m end
  local sticky = false
  for i = 55, n do
    if bits[i] == 1 then sticky = true break end
  end
  if bits[54] == 1 and (sticky or m % 2 == 1) then m = m + 1 end
  return finite(m * 2 ^ (n - 53))
end

local function num(s)
  local t = trim(s)
  if t == '' then return 0 end
  local p2 = sub(t, 1, 2)
  if p2 == '0x' or p2 == '0X' then
    local d = sub(t, 3)
    if d ~= '' and not find(d, '[^0-9a-fA-F]') then return radix(d, 16) end
    return nil
  elseif p2 == '0o' or p2 == '0O' then
    local d = sub(t, 3)
    if d ~= '' and not find(d, '[^0-7]') then return radix(d, 8) end
    return nil
  elseif p2 == '0b' or p2 == '0B' then
    local d = sub(t, 3)
    if d ~= '' and not find(d, '[^01]') then return radix(d, 2) end
    return nil
  end
  -- StrDecimalLiteral: [+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?
  -- ("Infinity" is not finite, hence nil like every other non-matching string).
  local i = 1
  local c = sub(t, 1, 1)
  if c == '+' or c == '-' then i = 2 end
  local _, e1 = find(t, '^%d*', i)
  local intDigits = e1 - i + 1
  local fracDigits = 0
  i = e1 + 1
  if sub(t, i, i) == '.' then
    local _, e2 = find(t, '^%d*', i + 1)
    fracDigits = e2 - i
    i = e2 + 1
  end
  if intDigits + fracDigits == 0 then return nil end
  c = sub(t, i, i)
  if c == 'e' or c == 'E' then
    local _, e3 = find(t, '^[+-]?%d+', i + 1)
    if not e3 then return nil end
    i = e3 + 1
  end
  if i <= #t then return nil end
  -- The grammar above is a subset of what C strtod (behind tonumber) reads, and both round
  -- decimal input correctly, so the values agree.
  return finite(tonumber(t))
end


-- JavaScript renders a decimal `digits` x 10^(n - #digits) (n = decimal exponent + 1) like this
-- in Number::toString (ECMA-262 Number::toString, steps for radix 10).
local function jsrender(neg, d, n)
  local k = #d
  local s
  if k <= n and n <= 21 then
    s = d .. rep('0', n - k)
  elseif 0 < n and n <= 21 then
    s = sub(d, 1, n) .. '.' .. sub(d, n + 1)
  elseif -6 < n and n <= 0 then
    s = '0.' .. rep('0', -n) .. d
  else
    local e = n - 1
    s = (k == 1 and d or (sub(d, 1, 1) .. '.' .. sub(d, 2))) .. 'e' .. (e >= 0 and '+' or '-') .. (e >= 0 and e or -e)
  end
  return neg and ('-' .. s) or s
end

-- Splits C's "%.<p>e" output into its digit string and decimal exponent.
local function edigits(s)
  local epos = find(s, 'e', 1, true)
  local mant = sub(s, 1, epos - 1)
  local d = sub(mant, 1, 1) .. sub(mant, 3)
  return d, tonumber(sub(s, epos + 1))
end

local function str(x)
  if x ~= x then return 'NaN' end
  if x == huge then return 'Infinity' end
  if x == -huge then return '-Infinity' end
  if x == 0 then return '0' end -- also -0
  -- Below 2^53 every integer is a double, so its exact digits are also its shortest form.
  if x == floor(x) and x < 9007199254740992 and x > -9007199254740992 then return format('%.0f', x) end
  local neg = x < 0
  local a = neg and -x or x
  -- Shortest digit count that reads back as the same double; C rounds correctly (ties to even,
  -- as the spec asks when two shortest candidates are equally close).
  for p = 0, 16 do
    local s = format('%.' .. p .. 'e', a)
    if tonumber(s) == a then
      local d, e = edigits(s)
      return jsrender(neg, d, e + 1)
    end
  end
  local d, e = edigits(format('%.16e', a))
  return jsrender(neg, d, e + 1)
end

-- x.toPrecision(17) for a finite non-integer x.
local function toprecision17(x)
  local neg = x < 0
  local a = neg and -x or x
  local d, e = edigits(format('%.16e', a))
  -- An exact tie at the 18th digit: C rounds to even, JavaScript rounds up (picks the larger n).
  local exact = edigits(format('%.99e', a))
  if sub(exact, 18, 18) == '5' and not find(exact, '[^0]', 19) and sub(d, 17, 17) == sub(exact, 17, 17) then
    -- Add one unit in the 17th digit, carrying.
    local digits = {}
    for i = 1, 17 do digits[i] = byte(d, i) - 48 end
    local i = 17
    while i >= 1 do
      if digits[i] == 9 then
        digits[i] = 0
        i = i - 1
      else
        digits[i] = digits[i] + 1
        break
      end
    end
    if i == 0 then
      d = '1' .. rep('0', 16)
      e = e + 1
    else
      local out = {}
      for k = 1, 17 do out[k] = string.char(digits[k] + 48) end
      d = table.concat(out)
    end
  end
  local s
  if e < -6 or e >= 17 then
    s = sub(d, 1, 1) .. '.' .. sub(d, 2) .. 'e' .. (e >= 0 and '+' or '-') .. (e >= 0 and e or -e)
  elseif e == 16 then
    s = d
  elseif e >= 0 then
    s = sub(d, 1, e + 1) .. '.' .. sub(d, e + 2)
  else
    s = '0.' .. rep('0', -(e + 1)) .. d
  end
  return neg and ('-' .. s) or s
end

local function fmt(x)
  if x == floor(x) or x ~= x then return str(x) end -- integers, +/-Infinity ("Infinity"), NaN
  return toprecision17(x)
end

return { num = num, str = str, fmt = fmt }
