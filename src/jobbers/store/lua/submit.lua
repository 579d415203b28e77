-- ARGV[4]: JSON list of {id, fp, q, name, kwargs, prio, policy, hb, due}; due "" = ready now.
-- Returns {0, conflicting ids} and stores nothing, or {1, {{created, record}...}}.
local tasks = cjson.decode(ARGV[4])
local conflicts = {}
for _, t in ipairs(tasks) do
  local fp = redis.call('HGET', tkey(t.id), 'fp')
  if fp and fp ~= t.fp then table.insert(conflicts, t.id) end
end
if #conflicts > 0 then return {0, conflicts} end
local out = {}
for _, t in ipairs(tasks) do
  local created = 0
  if redis.call('EXISTS', tkey(t.id)) == 0 then
    created = 1
    local seq = redis.call('INCR', P .. ':seq')
    local status = 'submitted'
    if t.due ~= '' then status = 'scheduled' end
    redis.call('HSET', tkey(t.id), 'id', t.id, 'name', t.name, 'queue', t.q, 'kwargs', t.kwargs,
      'fp', t.fp, 'status', status, 'priority', t.prio, 'policy', t.policy, 'retries', 0,
      'lost', 0, 'attempt', 0, 'submitted_at', NOW, 'updated_at', NOW, 'seq', seq)
    if t.hb ~= '' then redis.call('HSET', tkey(t.id), 'hb_interval', t.hb) end
    redis.call('ZADD', P .. ':all', seq, t.id)
    redis.call('ZADD', P .. ':byq:' .. t.q, seq, t.id)
    redis.call('ZADD', P .. ':byname:' .. t.name, seq, t.id)
    redis.call('ZADD', P .. ':status:' .. status, seq, t.id)
    redis.call('SADD', P .. ':queues', t.q)
    tally(t.q, t.name, status, 1)
    if t.due ~= '' then
      redis.call('HSET', tkey(t.id), 'due_at', t.due)
      redis.call('ZADD', qkey(t.q, 'scheduled'), t.due, t.id)
    else
      ready(t.id)
    end
    emit(t.id, status, nil, nil)
  end
  table.insert(out, {created, load(t.id)})
end
changed()
return {1, out}
