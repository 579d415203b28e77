-- ARGV[4]: JSON list of {id, fp, q, name, kwargs, prio, policy, hb, due, tr}; due "" = ready
-- now, tr "" = no trace context.
-- Returns {0, conflicting ids} and stores nothing, or {1, {{created, record}...}} where the
-- record is "" for a task this call created (the caller knows it) and the stored one otherwise.
local tasks = cjson.decode(ARGV[4])
local conflicts = {}
local stored = {}
for _, t in ipairs(tasks) do
  local fp = redis.call('HGET', tkey(t.id), 'fp')
  if fp then
    stored[t.id] = true
    if fp ~= t.fp then table.insert(conflicts, t.id) end
  end
end
if #conflicts > 0 then return {0, conflicts} end
local out = {}
local made = {}
for _, t in ipairs(tasks) do
  if stored[t.id] then
    table.insert(out, {0, load(t.id)})
  else
    stored[t.id] = true
    local seq = redis.call('INCR', P .. ':seq')
    local status = 'submitted'
    if t.due ~= '' then status = 'scheduled' end
    local fields = {'id', t.id, 'name', t.name, 'queue', t.q, 'kwargs', t.kwargs, 'fp', t.fp,
      'status', status, 'priority', t.prio, 'policy', t.policy, 'retries', 0, 'lost', 0,
      'attempt', 0, 'submitted_at', NOW, 'updated_at', NOW, 'seq', seq}
    if t.tr ~= '' then
      table.insert(fields, 'trace'); table.insert(fields, t.tr)
    end
    if t.hb ~= '' then
      table.insert(fields, 'hb_interval'); table.insert(fields, t.hb)
    end
    local member = nil
    if t.due ~= '' then
      table.insert(fields, 'due_at'); table.insert(fields, t.due)
    else
      -- as ready() would: the sequence zero-padded, so members sort in submission order
      member = string.format('%015d|%s', seq, t.id)
      table.insert(fields, 'rk'); table.insert(fields, member)
    end
    redis.call('HSET', tkey(t.id), unpack(fields))
    redis.call('ZADD', P .. ':all', seq, t.id)
    redis.call('ZADD', P .. ':byq:' .. t.q, seq, t.id)
    redis.call('ZADD', P .. ':byname:' .. t.name, seq, t.id)
    redis.call('ZADD', P .. ':status:' .. status, seq, t.id)
    redis.call('SADD', P .. ':queues', t.q)
    tally(t.q, t.name, status, 1)
    local group = cjson.encode({t.q, t.name, SUBMITTED})
    made[group] = (made[group] or 0) + 1
    if member then
      redis.call('ZADD', qkey(t.q, 'ready'), -tonumber(t.prio), member)
      redis.call('ZADD', qkey(t.q, 'since'), NOW, t.id)
    else
      redis.call('ZADD', qkey(t.q, 'scheduled'), t.due, t.id)
    end
    emit(t.id, status, nil, nil)
    table.insert(out, {1, ''})
  end
end
for group, n in pairs(made) do redis.call('HINCRBY', P .. ':totals', group, n) end
changed()
return {1, out}
