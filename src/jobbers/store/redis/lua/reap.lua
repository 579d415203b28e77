-- ARGV[4] JSON list of {id, n, kind, e, why, error, due_at}: attempts whose lease expired (kind
-- lease_lost) or whose heartbeat lapsed (kind stalled), with the steps they take: started ->
-- stalled, then the pure policy's decision. Each is applied only if it still holds now (same
-- attempt, still started, deadline still passed), so any number of reapers can run at once.
-- Returns {reaped, stalled}.
local counts = {0, 0}
for _, r in ipairs(cjson.decode(ARGV[4])) do
  local f = redis.call('HMGET', tkey(r.id), 'status', 'attempt', 'worker', 'queue')
  local index = P .. ':leases'
  if r.kind == 'stalled' then index = P .. ':beats' end
  local deadline = redis.call('ZSCORE', index, r.id)
  if f[1] == 'started' and tonumber(f[2]) == r.n and deadline
      and tonumber(deadline) < tonumber(NOW) then
    apply_steps(r.id, f[4], 'started', f[3], r)
    if r.kind == 'stalled' then counts[2] = counts[2] + 1 else counts[1] = counts[1] + 1 end
  end
end
if counts[1] + counts[2] > 0 then changed() end
return counts
