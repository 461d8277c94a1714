--[[
includes/encode-outcome.lua -- one op's outcome as a reply element: the reply of
lua/evaluate-one.lua, and each op's element of lua/evaluate-batch.lua's reply. Parsed by
decodeOutcome() in src/backend/redis/script-format.ts.
  reads     over (boolean), remaining, resetMs, burst
  declares  outcome: -1 - resetMs when over; else r = resetMs x (burst + 1) + remaining when
            0 <= remaining <= burst and r < 2^53 (always, for our own state and real limits),
            else the array { 0, remaining, resetMs }
An integer reply costs Redis a fraction of an array reply.
]]
local outcome
if over then
  outcome = -1 - resetMs
else
  local r = resetMs * (burst + 1) + remaining
  if remaining >= 0 and remaining <= burst and r < 9007199254740992 then
    outcome = r
  else
    outcome = { 0, remaining, resetMs }
  end
end
