-- ARGV[4] worker, ARGV[5] lease expiry, ARGV[6] JSON list of {id, n, beat} (beat "" = none),
-- ARGV[7] how many tasks the worker runs. Extends what the worker still owns, records
-- heartbeats and the worker's liveness; returns the ids it no longer owns, and 1 if the worker
-- is registered (0: the store forgot it, and it registers again).
local worker, lease_at = ARGV[4], ARGV[5]
local known = redis.call('HEXISTS', P .. ':workers', worker)
if known == 1 then
  redis.call('ZADD', P .. ':workers:seen', NOW, worker)
  redis.call('HSET', P .. ':workers:running', worker, ARGV[7])
end
local lost = {}
for _, l in ipairs(cjson.decode(ARGV[6])) do
  local f = redis.call('HMGET', tkey(l.id), 'status', 'worker', 'attempt', 'hb_at',
    'hb_interval', 'started_at')
  if f[1] == 'started' and f[2] == worker and tonumber(f[3]) == l.n then
    redis.call('HSET', tkey(l.id), 'lease', lease_at)
    redis.call('ZADD', P .. ':leases', lease_at, l.id)
    local hb = f[4]
    if l.beat ~= '' and (not hb or tonumber(l.beat) > tonumber(hb)) then
      hb = l.beat
      redis.call('HSET', tkey(l.id), 'hb_at', hb)
    end
    if f[5] then
      local base = math.max(tonumber(hb or '0'), tonumber(f[6]))
      redis.call('ZADD', P .. ':beats', num(base + tonumber(f[5])), l.id)
    end
  else
    table.insert(lost, l.id)
  end
end
return {lost, known}
