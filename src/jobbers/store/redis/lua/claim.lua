-- ARGV[4] worker, ARGV[5] lease expiry, ARGV[6] limit, ARGV[7] this claim's token, ARGV[8]
-- tokens of this worker's claims whose answer was lost (comma separated), ARGV[9] the task
-- names the worker can run as a JSON list ("" for any: the others are passed over, where they
-- are, within the first SCAN waiting tasks of each queue), ARGV[10...] queues.
-- What the last of those claims started, if it still runs under this worker, is returned again
-- (its answer never arrived: nobody runs it). Then due scheduled tasks of these queues are
-- promoted; each queue's room (the ROOM rule: pause, then each cap, such as global concurrency
-- or the rate limit over its sliding window) bounds its candidates, and the best `limit`
-- candidates by priority, then age, start. Returns the started records; what they are is kept
-- under the token for one lease.
local worker, lease_at, limit = ARGV[4], ARGV[5], tonumber(ARGV[6])
local now = tonumber(NOW)
local step = EFFECTS.start
local ROOM = room_rule()
local candidates = {}
local limited = {}
local out, taken = {}, {}
local mine = P .. ':claimed:' .. worker
if ARGV[8] ~= '' then
  local last = redis.call('GET', mine)
  local sep = last and string.find(last, '|', 1, true)
  if sep and string.find(',' .. ARGV[8] .. ',', ',' .. string.sub(last, 1, sep - 1) .. ',', 1,
      true) then
    for _, c in ipairs(cjson.decode(string.sub(last, sep + 1))) do
      local f = redis.call('HMGET', tkey(c[1]), 'status', 'worker', 'attempt')
      if f[1] == step.to and f[2] == worker and tonumber(f[3]) == c[2] then
        redis.call('HSET', tkey(c[1]), 'lease', lease_at)
        redis.call('ZADD', P .. ':leases', lease_at, c[1])
        table.insert(out, load(c[1]))
        table.insert(taken, c)
      end
    end
  end
end
limit = limit - #out
local runnable = nil
if ARGV[9] ~= '' then
  runnable = {}
  for _, name in ipairs(cjson.decode(ARGV[9])) do runnable[name] = true end
end
local SCAN = 1000

-- Up to `room` ready members of queue q the worker can run, as {score, member, q}.
local function ready_for(q, room)
  local found = {}
  if not runnable then
    local items = redis.call('ZRANGE', qkey(q, 'ready'), 0, room - 1, 'WITHSCORES')
    for j = 1, #items, 2 do table.insert(found, {tonumber(items[j + 1]), items[j], q}) end
    return found
  end
  local from = 0
  while #found < room and from < SCAN do
    local items = redis.call('ZRANGE', qkey(q, 'ready'), from, from + 99, 'WITHSCORES')
    for j = 1, #items, 2 do
      local name = redis.call('HGET', tkey(string.sub(items[j], 17)), 'name')
      if runnable[name] and #found < room then
        table.insert(found, {tonumber(items[j + 1]), items[j], q})
      end
    end
    if #items < 200 then break end
    from = from + 100
  end
  return found
end

-- What counts against each cap, by the name the ROOM rule gives it.
local USED = {
  running = function(q) return redis.call('SCARD', qkey(q, 'running')) end,
  recent_starts = function(q, period)
    redis.call('ZREMRANGEBYSCORE', qkey(q, 'starts'), '-inf', num(now - tonumber(period)))
    limited[q] = true
    return redis.call('ZCARD', qkey(q, 'starts'))
  end,
}

local function room_for(q, wanted)
  local values = redis.call('HMGET', qkey(q, 'conf'), unpack(ROOM.fields))
  local conf = {}
  for i, field in ipairs(ROOM.fields) do conf[field] = values[i] end
  if conf[ROOM.paused] == '1' then return 0 end
  local room = wanted
  for _, cap in ipairs(ROOM.caps) do
    local bound = conf[cap.limit]
    if room > 0 and bound and bound ~= '' then
      local window = nil
      if cap.window then window = conf[cap.window] end
      room = math.min(room, tonumber(bound) - USED[cap.used](q, window))
    end
  end
  return room
end

for i = 10, #ARGV do
  local q = ARGV[i]
  promote_queue(q)
  local room = room_for(q, limit)
  if room > 0 then
    for _, c in ipairs(ready_for(q, room)) do table.insert(candidates, c) end
  end
end
table.sort(candidates, function(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] end
  return a[2] < b[2]
end)
for i = 1, math.min(limit, #candidates) do
  local c = candidates[i]
  local member, q = c[2], c[3]
  local id = string.sub(member, 17)
  redis.call('ZREM', qkey(q, 'ready'), member)
  redis.call('ZREM', qkey(q, 'since'), id)
  local w = redis.call('HMGET', tkey(id), 'due_at', 'submitted_at', 'wait_v', 'updated_at')
  if w[3] then sample('wait', q, tonumber(w[3]), -1) end
  local waited = math.max(0, now - tonumber(w[1] or w[2]))
  sample('wait', q, waited, 1)
  redis.call('HSET', tkey(id), 'wait_v', num(waited))
  redis.call('HDEL', tkey(id), 'rk', unpack(step.clears))
  local name = move(id, 'submitted', step.to, worker, step.reason)
  add_total(q, name, step.total, 1)
  -- the monotonic wait runs from when the task became ready (submitted, promoted when due,
  -- handed back): the time of the status change that made it submitted
  add_timing('wait', q, name, math.max(0, now - tonumber(w[4] or w[2])))
  local number = redis.call('HINCRBY', tkey(id), 'attempt', 1)
  redis.call('HSET', tkey(id), 'worker', worker, 'started_at', NOW, 'lease', lease_at)
  redis.call('HSET', akey(id), number,
    cjson.encode({n = number, w = worker, s = NOW, o = step.attempt}))
  redis.call('SADD', qkey(q, 'running'), id)
  redis.call('ZADD', P .. ':leases', lease_at, id)
  local hb = redis.call('HGET', tkey(id), 'hb_interval')
  if hb then redis.call('ZADD', P .. ':beats', num(now + tonumber(hb)), id) end
  if limited[q] then redis.call('ZADD', qkey(q, 'starts'), NOW, id .. ':' .. number) end
  table.insert(out, load(id))
  table.insert(taken, {id, number})
end
if #taken > 0 then
  local ms = math.max(1, math.floor((tonumber(lease_at) - now) * 1000))
  redis.call('SET', mine, ARGV[7] .. '|' .. cjson.encode(taken), 'PX', ms)
end
return out
