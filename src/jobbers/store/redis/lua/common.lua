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

-- Summed counts, kept in the same script as the change they sum, so reading them costs
-- O(groups): tasks by {queue, name, status}, retries by {queue, name}, finishes per second and
-- per minute (two hashes per hour, the last KEEP_HOURS hours), and wait and run time histograms
-- per queue over the tasks kept (each task holds its own sample, so it can be taken back out).
-- FINAL and RAN (the finished-status sets) are generated, like ALLOWED and EFFECTS.
local KEEP_HOURS = 48

local function tally(q, name, status, by)
  local field = cjson.encode({q, name, status})
  if redis.call('HINCRBY', P .. ':counts', field, by) <= 0 then
    redis.call('HDEL', P .. ':counts', field)
  end
end

local function add_retries(q, name, by)
  if by == 0 then return end
  local field = cjson.encode({q, name})
  if redis.call('HINCRBY', P .. ':retries', field, by) == 0 then
    redis.call('HDEL', P .. ':retries', field)
  end
end

-- Monotonic totals by {queue, name, total}: only ever added to (a prune or delete leaves them).
local function add_total(q, name, key, by)
  redis.call('HINCRBY', P .. ':totals', cjson.encode({q, name, key}), by)
end

-- One duration into the monotonic timings of {queue, name}: one in its slot ('wait:3'; the slot
-- #BOUNDS is past the last bound) and the seconds summed ('wait:sum'). Never taken back.
local function add_timing(kind, q, name, v)
  local slot = tostring(#BOUNDS)
  for i, bound in ipairs(BOUNDS) do
    if v <= bound then slot = tostring(i - 1); break end
  end
  redis.call('HINCRBY', P .. ':totals', cjson.encode({q, name, kind .. ':' .. slot}), 1)
  redis.call('HINCRBYFLOAT', P .. ':totals', cjson.encode({q, name, kind .. ':sum'}), num(v))
end

local function add_finish(key, field, by)
  if redis.call('HINCRBY', key, field, by) <= 0 then redis.call('HDEL', key, field) end
end

-- Per second and per minute (the minute's first second), in the hour's two hashes.
local function count_finish(at, status, by)
  local sec = math.floor(tonumber(at))
  local hour = string.format('%d', math.floor(sec / 3600))
  local hours = P .. ':fin:hours'
  if by > 0 and redis.call('ZADD', hours, hour, hour) == 1 then
    local floor = '(' .. string.format('%d', tonumber(hour) - KEEP_HOURS)
    for _, old in ipairs(redis.call('ZRANGEBYSCORE', hours, '-inf', floor)) do
      redis.call('DEL', P .. ':fin:' .. old, P .. ':fin:m:' .. old)
    end
    redis.call('ZREMRANGEBYSCORE', hours, '-inf', floor)
  end
  add_finish(P .. ':fin:' .. hour, string.format('%d', sec) .. '|' .. status, by)
  add_finish(P .. ':fin:m:' .. hour, string.format('%d', sec - sec % 60) .. '|' .. status, by)
end

-- One duration in (by = 1) or out of (by = -1) a queue's histogram; slots are not cumulative.
local function sample(kind, q, v, by)
  local key = P .. ':hist:' .. kind .. ':' .. q
  local slot = 'inf'
  for i, bound in ipairs(BOUNDS) do
    if v <= bound then slot = tostring(i - 1); break end
  end
  redis.call('HINCRBY', key, slot, by)
  if redis.call('HINCRBY', key, 'n', by) <= 0 then
    redis.call('DEL', key)
  else
    redis.call('HINCRBYFLOAT', key, 'sum', num(by * v))
  end
end

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
-- Returns the task's name (its steps' totals are kept by queue and name).
local function move(id, from, to, worker, reason)
  if not (ALLOWED[from] and ALLOWED[from][to]) then
    error('task ' .. id .. ': ' .. from .. ' -> ' .. to .. ' is not an allowed transition')
  end
  local f = redis.call('HMGET', tkey(id), 'seq', 'queue', 'name', 'finished_at', 'started_at',
    'run_v')
  redis.call('HSET', tkey(id), 'status', to, 'updated_at', NOW)
  redis.call('ZREM', P .. ':status:' .. from, id)
  redis.call('ZADD', P .. ':status:' .. to, f[1], id)
  tally(f[2], f[3], from, -1)
  tally(f[2], f[3], to, 1)
  if FINAL[from] and f[4] then count_finish(f[4], from, -1) end
  if FINAL[to] then count_finish(NOW, to, 1) end
  if RAN[from] and not RAN[to] and f[6] then
    sample('run', f[2], tonumber(f[6]), -1)
    redis.call('HDEL', tkey(id), 'run_v')
  elseif RAN[to] and not RAN[from] and f[5] then
    local v = math.max(0, tonumber(NOW) - tonumber(f[5]))
    sample('run', f[2], v, 1)
    redis.call('HSET', tkey(id), 'run_v', num(v))
  end
  emit(id, to, worker, reason)
  return f[3]
end

local function changed()
  redis.call('PUBLISH', P .. ':changed', NOW)
end

-- Ready tasks sort by score (-priority), then by member: the zero-padded submission sequence.
-- The queue's `since` index orders ready tasks by when they became ready (oldest waiting).
local function ready(id)
  local f = redis.call('HMGET', tkey(id), 'queue', 'priority', 'seq', 'due_at', 'submitted_at')
  local member = string.format('%015d|%s', tonumber(f[3]), id)
  redis.call('HSET', tkey(id), 'rk', member)
  redis.call('ZADD', qkey(f[1], 'ready'), -tonumber(f[2]), member)
  redis.call('ZADD', qkey(f[1], 'since'), f[4] or f[5], id)
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
end

local function finished(id)
  redis.call('HSET', tkey(id), 'finished_at', NOW)
  redis.call('ZADD', P .. ':finished', NOW, id)
end

-- Out of every queue structure: ready, scheduled, running.
local function unqueue(id)
  local f = redis.call('HMGET', tkey(id), 'queue', 'rk')
  if f[2] then redis.call('ZREM', qkey(f[1], 'ready'), f[2]) end
  redis.call('ZREM', qkey(f[1], 'since'), id)
  redis.call('ZREM', qkey(f[1], 'scheduled'), id)
  off_running(id, f[1])
end

-- The retries and lost counters a step moves: `spends` adds one, `resets` sets to 0; retries
-- are also summed per queue and name.
local function count_step(id, q, e)
  if not e.spends and #e.resets == 0 then return end
  local name = redis.call('HGET', tkey(id), 'name')
  if e.spends then
    redis.call('HINCRBY', tkey(id), e.spends, 1)
    if e.spends == 'retries' then add_retries(q, name, 1) end
  end
  for _, c in ipairs(e.resets) do
    local old = tonumber(redis.call('HGET', tkey(id), c) or '0')
    redis.call('HSET', tkey(id), c, 0)
    if c == 'retries' then add_retries(q, name, -old) end
  end
end

-- The one way a step changes a task: EFFECTS[name] (generated from jobbers.effects) says what.
-- `x` holds what the step is given: n (the attempt), kind (the failure reported), and the
-- values of the fields it sets (result, error, due_at); `why` is its reason when given.
-- A task leaves the ready or scheduled list of the status it leaves; an attempt runs only
-- while its task is started, so only a step leaving started ends one.
local settle
local NOTHING = {}

local function apply(id, q, e, from, worker, x, why, alone)
  if e.attempt and from == 'started' then
    local outcome = e.attempt
    if outcome == 'reported' then outcome = x.kind end
    local err = nil
    if e.attempt_error then err = x.error end
    end_attempt(id, x.n, outcome, err)
  end
  if from == 'submitted' then
    local rk = redis.call('HGET', tkey(id), 'rk')
    if rk then redis.call('ZREM', qkey(q, 'ready'), rk) end
    redis.call('ZREM', qkey(q, 'since'), id)
  elseif from == 'scheduled' then
    redis.call('ZREM', qkey(q, 'scheduled'), id)
  end
  count_step(id, q, e)
  local reason = e.reason
  if e.given then reason = why end
  if not e.worker then worker = nil end
  local name = move(id, from, e.to, worker, reason)
  if e.total then add_total(q, name, e.total, 1) end
  if e.attempt and from == 'started' then
    local s = redis.call('HGET', tkey(id), 'started_at')
    if s then add_timing('run', q, name, math.max(0, tonumber(NOW) - tonumber(s))) end
  end
  if #e.clears > 0 then redis.call('HDEL', tkey(id), unpack(e.clears)) end
  if e.unrun then off_running(id, q) end
  if e.unfinish then redis.call('ZREM', P .. ':finished', id) end
  if #e.sets > 0 then
    local values = {}
    for _, f in ipairs(e.sets) do
      table.insert(values, f); table.insert(values, x[f])
    end
    redis.call('HSET', tkey(id), unpack(values))
  end
  if e.finishes then finished(id) end
  if e.ready then
    ready(id)
  elseif e.scheduled then
    redis.call('ZADD', qkey(q, 'scheduled'), x.due_at, id)
  end
  if not alone and FINAL[e.to] and not FINAL[from] then settle(id, e.to) end
end

local function upkey(id) return P .. ':up:' .. id end
local function downkey(id) return P .. ':down:' .. id end

-- A task has ended: each task waiting on it through an open edge (`down`) is released when
-- that was its last one and every edge got the end it waited for (SATISFIES), or skipped at
-- once when not, which ends it in turn. Runs in the script that ended the parent, so once.
settle = function(parent, ended)
  local stack = {{parent, ended}}
  while #stack > 0 do
    local top = table.remove(stack)
    local done, fin = top[1], top[2]
    local down = redis.call('HGETALL', downkey(done))
    redis.call('DEL', downkey(done))
    for i = 1, #down, 2 do
      local child, on = down[i], down[i + 1]
      local f = redis.call('HMGET', tkey(child), 'status', 'queue')
      if f[1] == 'waiting' then
        local left = redis.call('HINCRBY', tkey(child), 'waits', -1)
        if not SATISFIES[on][fin] then
          apply(child, f[2], EFFECTS.skip, 'waiting', nil, NOTHING, skip_reason(done, fin), true)
          table.insert(stack, {child, EFFECTS.skip.to})
        elseif left <= 0 then
          apply(child, f[2], EFFECTS.release, 'waiting', nil, NOTHING, nil, true)
        end
      end
    end
  end
end

-- The new task's edges: open ones wait in the parent's `down`; one whose parent has already
-- ended is settled at once, as that end would have settled it.
local function link(id, after)
  local open, miss = 0, nil
  for i, e in ipairs(after) do
    redis.call('HSET', upkey(id), e.p, cjson.encode({i, e.k, e.o}))
    local ps = redis.call('HGET', tkey(e.p), 'status')
    if ps and FINAL[ps] then
      if not SATISFIES[e.o][ps] and not miss then miss = {e.p, ps} end
    else
      redis.call('HSET', downkey(e.p), id, e.o)
      open = open + 1
    end
  end
  redis.call('HSET', tkey(id), 'waits', open)
  local q = redis.call('HGET', tkey(id), 'queue')
  if miss then
    apply(id, q, EFFECTS.skip, 'waiting', nil, NOTHING, skip_reason(miss[1], miss[2]))
  elseif open == 0 then
    apply(id, q, EFFECTS.release, 'waiting', nil, NOTHING, nil)
  end
end

-- What waited on `id` waits on `to` instead (a fan-out's collector).
local function hand_over(id, to)
  local down = redis.call('HGETALL', downkey(id))
  redis.call('DEL', downkey(id))
  for i = 1, #down, 2 do
    local child = down[i]
    redis.call('HSET', downkey(to), child, down[i + 1])
    local edge = redis.call('HGET', upkey(child), id)
    redis.call('HDEL', upkey(child), id)
    redis.call('HSET', upkey(child), to, edge)
  end
end

-- One new task (t: {id, fp, q, name, kwargs, prio, policy, hb, due, after, run, inputs};
-- due "" = ready now); a task with parents waits for them.
-- Tasks insert() made this call, by {queue, name, 'submitted'}: added to the totals at the end
-- (count_inserted), one HINCRBY per group rather than per task.
local INSERTED = {}

local function count_inserted()
  for group, n in pairs(INSERTED) do redis.call('HINCRBY', P .. ':totals', group, n) end
  INSERTED = {}
end

local function insert(t)
  local seq = redis.call('INCR', P .. ':seq')
  local waits = t.after and #t.after > 0
  local status = 'submitted'
  if waits then status = 'waiting' elseif t.due ~= '' then status = 'scheduled' end
  local fields = {'id', t.id, 'name', t.name, 'queue', t.q, 'kwargs', t.kwargs, 'fp', t.fp,
    'status', status, 'priority', t.prio, 'policy', t.policy, 'retries', 0, 'lost', 0,
    'attempt', 0, 'submitted_at', NOW, 'updated_at', NOW, 'seq', seq}
  if t.hb ~= '' then
    table.insert(fields, 'hb_interval'); table.insert(fields, t.hb)
  end
  if t.tr and t.tr ~= '' then
    table.insert(fields, 'trace'); table.insert(fields, t.tr)
  end
  if t.run then
    table.insert(fields, 'run'); table.insert(fields, t.run)
    redis.call('ZADD', P .. ':runtasks:' .. t.run, seq, t.id)
  end
  if t.inputs then
    table.insert(fields, 'inputs'); table.insert(fields, t.inputs)
  end
  local member = nil
  if status == 'scheduled' then
    table.insert(fields, 'due_at'); table.insert(fields, t.due)
  elseif status == 'submitted' then
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
  INSERTED[group] = (INSERTED[group] or 0) + 1
  if member then
    redis.call('ZADD', qkey(t.q, 'ready'), -tonumber(t.prio), member)
    redis.call('ZADD', qkey(t.q, 'since'), NOW, t.id)
  elseif status == 'scheduled' then
    redis.call('ZADD', qkey(t.q, 'scheduled'), t.due, t.id)
  end
  emit(t.id, status, nil, nil)
  if waits then link(t.id, t.after) end
end

-- Steps in a row (x.e: their names; x.why: their given reasons), each from where the last left.
local function apply_steps(id, q, from, worker, x)
  for i, name in ipairs(x.e) do
    local e = EFFECTS[name]
    apply(id, q, e, from, worker, x, x.why[i])
    from = e.to
  end
end

local function promote_queue(q)
  local due = redis.call('ZRANGEBYSCORE', qkey(q, 'scheduled'), '-inf', NOW)
  for _, id in ipairs(due) do
    apply(id, q, EFFECTS.due, 'scheduled', nil, NOTHING, nil)
  end
  return #due
end

-- One JSON text per record: far cheaper for the client to parse than nested replies.
local function load(id)
  return cjson.encode({redis.call('HGETALL', tkey(id)), redis.call('HGETALL', akey(id))})
end

-- Gone from every index and count, then deleted with its attempts and notes.
local function remove(id)
  local f = redis.call('HMGET', tkey(id), 'status', 'queue', 'name', 'retries', 'finished_at',
    'wait_v', 'run_v')
  local status, q = f[1], f[2]
  unqueue(id)
  redis.call('ZREM', P .. ':finished', id)
  redis.call('ZREM', P .. ':all', id)
  redis.call('ZREM', P .. ':byq:' .. q, id)
  redis.call('ZREM', P .. ':byname:' .. f[3], id)
  redis.call('ZREM', P .. ':status:' .. status, id)
  tally(q, f[3], status, -1)
  add_retries(q, f[3], -tonumber(f[4] or '0'))
  if FINAL[status] and f[5] then count_finish(f[5], status, -1) end
  if f[6] then sample('wait', q, tonumber(f[6]), -1) end
  if f[7] then sample('run', q, tonumber(f[7]), -1) end
  local run = redis.call('HGET', tkey(id), 'run')
  if run then redis.call('ZREM', P .. ':runtasks:' .. run, id) end
  redis.call('DEL', tkey(id), akey(id), P .. ':prog:' .. id, P .. ':log:' .. id, upkey(id),
    downkey(id))
end
