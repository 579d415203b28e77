-- ARGV[4] JSON list of ids, ARGV[5] reason. Returns {cancelled, not cancellable, unknown};
-- running ones are announced on the cancel channel so their worker stops them at once.
local cancelled, refused, unknown, running = {}, {}, {}, {}
local terminal = {completed = true, failed = true, cancelled = true, dead = true}
local seen = {}
for _, id in ipairs(cjson.decode(ARGV[4])) do
  if not seen[id] then
    seen[id] = true
    local f = redis.call('HMGET', tkey(id), 'status', 'attempt', 'worker')
    if not f[1] then
      table.insert(unknown, id)
    elseif terminal[f[1]] then
      table.insert(refused, id)
    else
      if f[1] == 'started' or f[1] == 'stalled' then
        end_attempt(id, f[2], 'cancelled', nil)
        table.insert(running, id)
      end
      unqueue(id)
      move(id, f[1], 'cancelled', f[3], ARGV[5])
      finished(id)
      table.insert(cancelled, id)
    end
  end
end
if #running > 0 then redis.call('PUBLISH', P .. ':cancel', cjson.encode(running)) end
if #cancelled > 0 then changed() end
return {cancelled, refused, unknown}
