-- ARGV[4] worker, ARGV[5] JSON list of reports {id, n, e, why, kind, error, result, due_at,
-- spawn, collector} (a fan-out's tasks, stored before the completion and in the same script):
-- `e` names the steps the report takes (see apply_steps), chosen by the caller from the
-- outcome and, for failures, the pure policy's decision. A report whose attempt this worker no
-- longer owns changes nothing (fencing). Returns {0} or {1, record} per report.
local worker = ARGV[4]
local out = {}
local freed = false
for _, r in ipairs(cjson.decode(ARGV[5])) do
  local f = redis.call('HMGET', tkey(r.id), 'status', 'worker', 'attempt', 'queue')
  if f[1] ~= 'started' or f[2] ~= worker or tonumber(f[3]) ~= r.n then
    table.insert(out, {0})
  else
    freed = true
    if r.collector then
      for _, t in ipairs(r.spawn) do insert(t) end
      insert(r.collector)
      hand_over(r.id, r.collector.id)
    end
    apply_steps(r.id, f[4], 'started', worker, r)
    table.insert(out, {1, load(r.id)})
  end
end
count_inserted()
if freed then changed() end
return out
