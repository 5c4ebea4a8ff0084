-- Admits one object into its study before it is stored (storage/index.c,
-- sto_index_admit; decision 0009). KEYS[1] = hr:{S}:st. ARGV[1] = the
-- sender's hospital, ARGV[2] = '1' when the sender is the hub's own hospital
-- adding a derived object (SR, KOS, presentation state, ...).
-- Returns {1, owner} when admitted, {0, owner} when refused.
--
-- The study belongs to the hospital of its first object. A study that only
-- holds the hub's derived objects (possible while `huren reindex` walks files
-- in no particular order) is owned weakly (owner_weak = 1): the first
-- original object takes it over.
local have = redis.call('TYPE', KEYS[1])['ok']
if have ~= 'none' and have ~= 'hash' then
  return redis.error_reply('WRONGTYPE index key ' .. KEYS[1] .. ' holds a ' .. have)
end
local h, derived = ARGV[1], ARGV[2] == '1'
local cur = redis.call('HMGET', KEYS[1], 'hospital', 'owner_weak')
local owner, weak = cur[1], cur[2] == '1'
if not owner then
  redis.call('HSET', KEYS[1], 'hospital', h)
  if derived then redis.call('HSET', KEYS[1], 'owner_weak', '1') end
  return {1, h}
end
if owner == h then
  if weak and not derived then redis.call('HDEL', KEYS[1], 'owner_weak') end
  return {1, h}
end
if derived then return {1, owner} end
if weak then
  redis.call('HSET', KEYS[1], 'hospital', h)
  redis.call('HDEL', KEYS[1], 'owner_weak')
  return {1, h}
end
return {0, owner}
