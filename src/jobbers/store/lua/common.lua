-- Shared by every script (prepended when the script is loaded). Every script is called with
-- KEYS[1] = the deployment's meta key and ARGV[1] = key prefix (with its hash tag),
-- ARGV[2] = change-feed MAXLEN, ARGV[3] = now (epoch seconds, as text), ARGV[4...] = its own.
-- Times are kept as the text the caller sent, so no precision is lost in Lua's number format.
local P = ARGV[1]
local MAXLEN = ARGV[2]
local NOW = ARGV[3]

local function tkey(id) return P .. ':task:' .. id end
local function akey(id) return P .. ':att:' .. id end
local function qkey(q, what) return P .. ':q:' .. q .. ':' .. what end
local function num(x) return string.format('%.17g', x) end

local function emit(id, status, worker, reason)
  local args = {P .. ':events', 'MAXLEN', '~', MAXLEN, '*', 't', id, 's', status, 'a', NOW}
  if worker and worker ~= '' then
    table.insert(args, 'w'); table.insert(args, worker)
  end
  if reason and reason ~= '' then
    table.insert(args, 'r'); table.insert(args, reason)
  end
  redis.call('XADD', unpack(args))
end

-- The single place a status changes: checked against the state machine, indexed, recorded.
local function move(id, from, to, worker, reason)
  if not (ALLOWED[from] and ALLOWED[from][to]) then
    error('task ' .. id .. ': ' .. from .. ' -> ' .. to .. ' is not an allowed transition')
  end
  local seq = redis.call('HGET', tkey(id), 'seq')
  redis.call('HSET', tkey(id), 'status', to, 'updated_at', NOW)
  redis.call('ZREM', P .. ':status:' .. from, id)
  redis.call('ZADD', P .. ':status:' .. to, seq, id)
  emit(id, to, worker, reason)
end

local function changed()
  redis.call('PUBLISH', P .. ':changed', NOW)
end

-- Ready tasks sort by score (-priority), then by member: the zero-padded submission sequence.
local function ready(id)
  local f = redis.call('HMGET', tkey(id), 'queue', 'priority', 'seq')
  local member = string.format('%015d|%s', tonumber(f[3]), id)
  redis.call('HSET', tkey(id), 'rk', member)
  redis.call('ZADD', qkey(f[1], 'ready'), -tonumber(f[2]), member)
end

local function promote_queue(q)
  local due = redis.call('ZRANGEBYSCORE', qkey(q, 'scheduled'), '-inf', NOW)
  for _, id in ipairs(due) do
    move(id, 'scheduled', 'submitted', nil, 'due')
    redis.call('HDEL', tkey(id), 'due_at')
    redis.call('ZREM', qkey(q, 'scheduled'), id)
    ready(id)
  end
  return #due
end

local function end_attempt(id, number, outcome, err)
  local raw = redis.call('HGET', akey(id), number)
  if not raw then return end
  local a = cjson.decode(raw)
  if a.o ~= 'running' then return end
  a.o = outcome
  a.f = NOW
  if err and err ~= '' then a.e = err end
  redis.call('HSET', akey(id), number, cjson.encode(a))
end

-- No longer running: out of the queue's running set and the lease and heartbeat indexes.
local function off_running(id, q)
  redis.call('SREM', qkey(q, 'running'), id)
  redis.call('ZREM', P .. ':leases', id)
  redis.call('ZREM', P .. ':beats', id)
  redis.call('HDEL', tkey(id), 'lease')
end

local function finished(id)
  redis.call('HSET', tkey(id), 'finished_at', NOW)
  redis.call('ZADD', P .. ':finished', NOW, id)
end

-- Out of every queue structure: ready, scheduled, running.
local function unqueue(id)
  local f = redis.call('HMGET', tkey(id), 'queue', 'rk')
  if f[2] then redis.call('ZREM', qkey(f[1], 'ready'), f[2]) end
  redis.call('ZREM', qkey(f[1], 'scheduled'), id)
  off_running(id, f[1])
end

-- A decision the caller took with the pure policy (retry at due, or fail, then maybe dead).
local function apply_decision(id, from, worker, d)
  local q = redis.call('HGET', tkey(id), 'queue')
  redis.call('HSET', tkey(id), 'error', d.err, 'retries', d.re, 'lost', d.lo)
  off_running(id, q)
  move(id, from, d.st, worker, d.reason)
  if d.st == 'scheduled' then
    redis.call('HSET', tkey(id), 'due_at', d.due)
    redis.call('ZADD', qkey(q, 'scheduled'), d.due, id)
    return
  end
  finished(id)
  if d.dead == 1 then move(id, 'failed', 'dead', worker, 'dead-lettered') end
end

-- One JSON text per record: far cheaper for the client to parse than nested replies.
local function load(id)
  return cjson.encode({redis.call('HGETALL', tkey(id)), redis.call('HGETALL', akey(id))})
end

-- Gone from every index, then deleted.
local function remove(id)
  local status = redis.call('HGET', tkey(id), 'status')
  unqueue(id)
  redis.call('ZREM', P .. ':finished', id)
  redis.call('ZREM', P .. ':all', id)
  redis.call('ZREM', P .. ':status:' .. status, id)
  redis.call('DEL', tkey(id), akey(id))
end
