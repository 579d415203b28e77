-- ARGV[4]: JSON list of tasks as insert() in common.lua takes them.
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
for _, t in ipairs(tasks) do
  if stored[t.id] then
    table.insert(out, {0, load(t.id)})
  else
    stored[t.id] = true
    insert(t)
    table.insert(out, {1, ''})
  end
end
count_inserted()
changed()
return {1, out}
