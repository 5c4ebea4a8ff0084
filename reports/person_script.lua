-- Links a patient key to a person: the person's keys only (one slot, {P}).
-- KEYS[1] hr:person:{P}  KEYS[2] hr:person:{P}:pts  KEYS[3] hr:person:{P}:st
-- ARGV: person id, id type, hmac, patient key, now ms, max patients,
--       then pairs (score, study UID) of the patient's studies.
-- Returns {code, created, linked, studies added}; code 0 ok, 1 the person has
-- another identifier of that type, 2 the person has max patients already.
local h, pts, st = KEYS[1], KEYS[2], KEYS[3]
local person, idtype, hmac, pkey = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, maxpts = ARGV[5], tonumber(ARGV[6])
local have = redis.call('HGET', h, idtype)
if have and have ~= hmac then
  return {1, 0, 0, 0}
end
local member = redis.call('SISMEMBER', pts, pkey)
if member == 0 and redis.call('SCARD', pts) >= maxpts then
  return {2, 0, 0, 0}
end
local created = redis.call('HSETNX', h, 'id', person)
if created == 1 then
  redis.call('HSET', h, 'created_ms', now)
end
redis.call('HSET', h, idtype, hmac, 'updated_ms', now)
redis.call('SADD', pts, pkey)
local added = 0
for i = 7, #ARGV - 1, 2 do
  added = added + redis.call('ZADD', st, ARGV[i], ARGV[i + 1])
end
return {0, created, 1 - member, added}
