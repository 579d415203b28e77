-- A store written before the monotonic totals starts them, once, from the sums it keeps (what
-- can still be told of the tasks kept); the meta hash's `totals` field says it was done, so a
-- second run, or a store whose totals began empty, changes nothing; nor does a store that has
-- totals already (a Redis that lost the mark with its data). Returns 1 when it filled.
if redis.call('HSETNX', KEYS[1], 'totals', '1') == 0 then return 0 end
if redis.call('EXISTS', P .. ':totals') == 1 then return 0 end
local flat = redis.call('HGETALL', P .. ':counts')
for i = 1, #flat, 2 do
  local g = cjson.decode(flat[i])
  local q, name, status, n = g[1], g[2], g[3], tonumber(flat[i + 1])
  add_total(q, name, SUBMITTED, n)
  if status ~= 'submitted' and status ~= 'scheduled' and n > 0 then
    add_total(q, name, EFFECTS.start.total, n)
  end
  if status == 'dead' then
    add_total(q, name, EFFECTS.dead_letter.total, n)
    add_total(q, name, EFFECTS.fail.total, n)
  elseif FINAL[status] then
    add_total(q, name, 'finished:' .. status, n)
  end
end
flat = redis.call('HGETALL', P .. ':retries')
for i = 1, #flat, 2 do
  local g = cjson.decode(flat[i])
  add_total(g[1], g[2], EFFECTS.retry.total, tonumber(flat[i + 1]))
end
return 1
