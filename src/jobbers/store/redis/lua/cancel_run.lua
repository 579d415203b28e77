-- ARGV[4] run id, ARGV[5] reason. Marks the run cancelled and cancels every task of it not
-- yet ended, the waiting ones first, so that cancelling a parent releases none of them (an
-- error handler). Returns {0} for an unknown run, or {1, cancelled ids}.
local rkey = P .. ':run:' .. ARGV[4]
if redis.call('EXISTS', rkey) == 0 then return {0} end
redis.call('HSETNX', rkey, 'cancelled_at', NOW)
local step = EFFECTS.cancel
local cancelled, running = {}, {}
local ids = redis.call('ZRANGE', P .. ':runtasks:' .. ARGV[4], 0, -1)
local order = {}
for _, id in ipairs(ids) do
  if redis.call('HGET', tkey(id), 'status') == 'waiting' then table.insert(order, id) end
end
for _, id in ipairs(ids) do table.insert(order, id) end
for _, id in ipairs(order) do
  local f = redis.call('HMGET', tkey(id), 'status', 'attempt', 'worker', 'queue')
  if f[1] and step.sources[f[1]] then
    if f[1] == 'started' or f[1] == 'stalled' then table.insert(running, id) end
    apply(id, f[4], step, f[1], f[3], {n = f[2]}, ARGV[5])
    table.insert(cancelled, id)
  end
end
if #running > 0 then redis.call('PUBLISH', P .. ':cancel', cjson.encode(running)) end
if #cancelled > 0 then changed() end
return {1, cancelled}
