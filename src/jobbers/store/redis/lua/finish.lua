-- ARGV[4] worker, ARGV[5] JSON list of reports {id, n, kind, result, err, d}; `d` is the
-- pure policy's decision for failures. A report whose attempt this worker no longer owns
-- changes nothing (fencing). Returns {0} or {1, record} per report.
local worker = ARGV[4]
local out = {}
local freed = false
for _, r in ipairs(cjson.decode(ARGV[5])) do
  local f = redis.call('HMGET', tkey(r.id), 'status', 'worker', 'attempt', 'queue')
  if f[1] ~= 'started' or f[2] ~= worker or tonumber(f[3]) ~= r.n then
    table.insert(out, {0})
  else
    local id, q = r.id, f[4]
    freed = true
    if r.kind == 'completed' then
      end_attempt(id, r.n, 'completed', nil)
      off_running(id, q)
      move(id, 'started', 'completed', worker, nil)
      redis.call('HSET', tkey(id), 'result', r.result)
      redis.call('HDEL', tkey(id), 'error')
      finished(id)
    elseif r.kind == 'handed_back' then
      end_attempt(id, r.n, 'handed_back', nil)
      off_running(id, q)
      move(id, 'started', 'submitted', worker, 'handed back')
      redis.call('HDEL', tkey(id), 'worker')
      ready(id)
    elseif r.kind == 'cancelled' then
      end_attempt(id, r.n, 'cancelled', r.err)
      off_running(id, q)
      move(id, 'started', 'cancelled', worker, 'cancelled by the task')
      finished(id)
    else
      end_attempt(id, r.n, r.kind, r.err)
      apply_decision(id, 'started', worker, r.d)
    end
    table.insert(out, {1, load(id)})
  end
end
if freed then changed() end
return out
