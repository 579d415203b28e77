-- ARGV[4] JSON list of ids, ARGV[5] JSON list of statuses: deletes the tasks in one of them.
-- ARGV[6], when not "", deletes only tasks finished before that instant (pruning).
local allowed = {}
for _, s in ipairs(cjson.decode(ARGV[5])) do allowed[s] = true end
local gone = {}
for _, id in ipairs(cjson.decode(ARGV[4])) do
  local f = redis.call('HMGET', tkey(id), 'status', 'finished_at')
  if f[1] and allowed[f[1]] and (ARGV[6] == '' or
      (f[2] and tonumber(f[2]) < tonumber(ARGV[6]))) then
    remove(id)
    table.insert(gone, id)
  end
end
return gone
