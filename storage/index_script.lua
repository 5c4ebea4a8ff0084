-- Commits one instance atomically. KEYS and ARGV are built by
-- storage/index.c (index_args); the key schema is docs/index-schema.md.
-- Returns 0 new, 1 identical, 2 new version (now current), 3 older version.
local function hset(key, ...)
  local a = {...}
  local t = {}
  for i = 1, #a, 2 do
    if a[i + 1] ~= nil and a[i + 1] ~= '' then
      t[#t + 1] = a[i]
      t[#t + 1] = a[i + 1]
    end
  end
  if #t > 0 then redis.call('HSET', key, unpack(t)) end
end
local sha, received, size = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local sop, series, study = ARGV[6], ARGV[7], ARGV[8]
local outcome = 0
local old = redis.call('HMGET', KEYS[1], 'sha', 'received')
if old[1] then
  if old[1] == sha then return 1 end
  if tonumber(old[2] or '0') > received then
    redis.call('ZADD', KEYS[2], received, sha)
    return 3
  end
  redis.call('ZADD', KEYS[2], tonumber(old[2] or '0'), old[1])
  outcome = 2
end
local date = tonumber(ARGV[18]) or 0
if #ARGV[18] ~= 8 then date = 0 end
hset(KEYS[1], 'sha', sha, 'received', ARGV[2], 'size', ARGV[3], 'ts', ARGV[4],
  'sop_class', ARGV[5], 'sop', sop, 'series', series, 'study', study, 'number', ARGV[9],
  'frames', ARGV[10], 'source_ae', ARGV[11], 'hospital', ARGV[12])
hset(KEYS[3], 'uid', series, 'study', study, 'modality', ARGV[13], 'number', ARGV[14],
  'description', ARGV[15], 'date', ARGV[16], 'body_part', ARGV[17])
redis.call('ZADD', KEYS[4], tonumber(ARGV[9]) or 0, sop)
hset(KEYS[5], 'uid', study, 'date', ARGV[18], 'time', ARGV[19], 'accession', ARGV[20],
  'description', ARGV[21], 'id', ARGV[22], 'referring', ARGV[23], 'institution', ARGV[24],
  'performing', ARGV[25], 'patient', ARGV[26], 'patient_id', ARGV[27], 'issuer', ARGV[28],
  'patient_name', ARGV[29], 'birth_date', ARGV[30], 'sex', ARGV[31], 'charset', ARGV[32],
  'charset_guessed', ARGV[33], 'hospital', ARGV[12], 'updated', ARGV[2])
redis.call('HSETNX', KEYS[5], 'first_received', ARGV[2])
if redis.call('ZADD', KEYS[6], tonumber(ARGV[14]) or 0, series) == 1 then
  redis.call('HINCRBY', KEYS[5], 'series', 1)
end
if ARGV[13] ~= '' then redis.call('SADD', KEYS[7], ARGV[13]) end
if ARGV[26] ~= '' then
  hset(KEYS[8], 'key', ARGV[26], 'id', ARGV[27], 'issuer', ARGV[28], 'name', ARGV[29],
    'birth_date', ARGV[30], 'sex', ARGV[31])
  redis.call('ZADD', KEYS[9], date, study)
  redis.call('SADD', KEYS[16], ARGV[26])
  redis.call('SADD', KEYS[17], ARGV[26])
end
if ARGV[20] ~= '' then redis.call('SADD', KEYS[10], study) end
redis.call('ZADD', KEYS[11], date, study)
if ARGV[13] ~= '' then redis.call('ZADD', KEYS[12], date, study) end
redis.call('ZADD', KEYS[13], received, study)
redis.call('HSET', KEYS[14], sop, study)
if outcome == 0 then
  redis.call('HINCRBY', KEYS[3], 'instances', 1)
  redis.call('HINCRBY', KEYS[5], 'instances', 1)
  redis.call('HINCRBY', KEYS[5], 'bytes', size)
  redis.call('HINCRBY', KEYS[15], 'instances', 1)
  redis.call('HINCRBY', KEYS[15], 'bytes', size)
end
return outcome
