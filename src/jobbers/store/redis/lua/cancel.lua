-- ARGV[4] JSON list of ids, ARGV[5] reason. Returns {cancelled, not cancellable, unknown};
-- running ones are announced on the cancel channel so their worker stops them at once.
local cancelled, refused, unknown, running = {}, {}, {}, {}
local step = EFFECTS.cancel
local seen = {}
for _, id in ipairs(cjson.decode(ARGV[4])) do
  if not seen[id] then
    seen[id] = true
    local f = redis.call('HMGET', tkey(id), 'status', 'attempt', 'worker', 'queue')
    if not f[1] then
      table.insert(unknown, id)
    elseif not step.sources[f[1]] then
      table.insert(refused, id)
    else
      if f[1] == 'started' or f[1] == 'stalled' then table.insert(running, id) end
      apply(id, f[4], step, f[1], f[3], {n = f[2]}, ARGV[5])
      table.insert(cancelled, id)
    end
  end
end
if #running > 0 then redis.call('PUBLISH', P .. ':cancel', cjson.encode(running)) end
if #cancelled > 0 then changed() end
return {cancelled, refused, unknown}
