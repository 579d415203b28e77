-- ARGV[4] JSON list of ids: dead tasks run again with the same id and fresh budgets.
local moved = {}
for _, id in ipairs(cjson.decode(ARGV[4])) do
  if redis.call('HGET', tkey(id), 'status') == 'dead' then
    local f = redis.call('HMGET', tkey(id), 'queue', 'name', 'retries')
    add_retries(f[1], f[2], -tonumber(f[3] or '0'))
    move(id, 'dead', 'submitted', nil, 'resubmitted')
    redis.call('HSET', tkey(id), 'retries', 0, 'lost', 0)
    redis.call('HDEL', tkey(id), 'due_at', 'finished_at', 'worker', 'result', 'error')
    redis.call('ZREM', P .. ':finished', id)
    ready(id)
    table.insert(moved, id)
  end
end
if #moved > 0 then changed() end
return moved
