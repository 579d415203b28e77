-- ARGV[4] the run {id, name, created_at, graph (JSON text)}, ARGV[5] its tasks as insert()
-- takes them. Returns {0, ids already used} and stores nothing, or {1}.
local run = cjson.decode(ARGV[4])
local tasks = cjson.decode(ARGV[5])
local rkey = P .. ':run:' .. run.id
if redis.call('EXISTS', rkey) == 1 then return {0, {run.id}} end
local used = {}
for _, t in ipairs(tasks) do
  if redis.call('EXISTS', tkey(t.id)) == 1 then table.insert(used, t.id) end
end
if #used > 0 then return {0, used} end
local seq = redis.call('INCR', P .. ':runseq')
redis.call('HSET', rkey, 'id', run.id, 'name', run.name, 'created_at', run.created_at,
  'graph', run.graph, 'seq', seq)
redis.call('ZADD', P .. ':runs', seq, run.id)
redis.call('ZADD', P .. ':runs:name:' .. run.name, seq, run.id)
for _, t in ipairs(tasks) do insert(t) end
count_inserted()
changed()
return {1}
