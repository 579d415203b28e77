-- Scheduled tasks that are due become submitted, in every queue. Returns how many moved.
local moved = 0
for _, q in ipairs(redis.call('SMEMBERS', P .. ':queues')) do
  moved = moved + promote_queue(q)
end
if moved > 0 then changed() end
return moved
