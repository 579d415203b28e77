-- ARGV[4] worker, ARGV[5] JSON list of {id, n, p, lines}: `p` is the progress as stored JSON
-- ("" = unchanged), `lines` the log lines as stored JSON. Notes of an attempt that is not this
-- worker's latest, or of a task that is gone, are dropped (fencing).
local worker = ARGV[4]
for _, note in ipairs(cjson.decode(ARGV[5])) do
  local f = redis.call('HMGET', tkey(note.id), 'attempt', 'worker')
  if f[2] == worker and tonumber(f[1]) == note.n then
    if note.p ~= '' then redis.call('HSET', P .. ':prog:' .. note.id, note.n, note.p) end
    for i = 1, #note.lines, 500 do
      redis.call('RPUSH', P .. ':log:' .. note.id,
        unpack(note.lines, i, math.min(i + 499, #note.lines)))
    end
  end
end
return 0
