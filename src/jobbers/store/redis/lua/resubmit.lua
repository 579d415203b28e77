-- ARGV[4] JSON list of ids: dead tasks run again with the same id and fresh budgets.
local step = EFFECTS.resubmit
local moved = {}
for _, id in ipairs(cjson.decode(ARGV[4])) do
  local f = redis.call('HMGET', tkey(id), 'status', 'queue')
  if f[1] and step.sources[f[1]] then
    apply(id, f[2], step, f[1], nil, NOTHING, nil)
    table.insert(moved, id)
  end
end
if #moved > 0 then changed() end
return moved
