-- Schema 2 to 3: one hour's per-minute finish sums (ARGV[4] = the hour), made again from its
-- per-second sums in one step, so a script that counts a finish meanwhile sees both or neither.
-- Safe to repeat: each run rebuilds the whole hour.
local hour = ARGV[4]
local minutes = P .. ':fin:m:' .. hour
redis.call('DEL', minutes)
local flat = redis.call('HGETALL', P .. ':fin:' .. hour)
for i = 1, #flat, 2 do
  local sec, status = string.match(flat[i], '^(-?%d+)|(.+)$')
  local s = tonumber(sec)
  redis.call('HINCRBY', minutes, string.format('%d', s - s % 60) .. '|' .. status, flat[i + 1])
end
return #flat / 2
