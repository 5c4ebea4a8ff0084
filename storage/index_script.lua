-- Commits one instance atomically. KEYS and ARGV are built by
-- storage/index.c (index_args); the key schema is docs/index-schema.md.
-- Returns {code, detail}: code = outcome (0 new, 1 identical, 2 new version,
-- now current, 3 older version) + 8 when the instance's patient attributes
-- disagree with the study's; detail describes the disagreement ("" if none).
--
-- Order: validate everything first (no write happens when a key has the
-- wrong type), then write; the instance hash (KEYS[1]) is written last, so
-- an error part-way leaves no instance that a retry would take for
-- "identical", and every counter is tied to a set insertion, so the retry
-- does not count twice. The study's owner (hash field `hospital`) is set by
-- storage/admit_script.lua before the object is stored; this script never
-- changes it. Study and patient attributes come from the first instance
-- that has them; later instances never overwrite them.
local types = {'hash', 'zset', 'hash', 'zset', 'hash', 'zset', 'set', 'hash', 'zset', 'set',
  'zset', 'zset', 'zset', 'hash', 'hash', 'set', 'set', 'list', 'list', 'zset', 'zset'}
for i, t in ipairs(types) do
  local have = redis.call('TYPE', KEYS[i])['ok']
  if have ~= 'none' and have ~= t then
    return redis.error_reply('WRONGTYPE index key ' .. KEYS[i] .. ' holds a ' .. have)
  end
end
local sha, received, size = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local sop, series, study = ARGV[6], ARGV[7], ARGV[8]
local pkey, owner, live = ARGV[26], ARGV[34], ARGV[35] == '1'

local function hset(key, nx, ...)
  local a = {...}
  for i = 1, #a, 2 do
    if a[i + 1] ~= nil and a[i + 1] ~= '' then
      if nx then redis.call('HSETNX', key, a[i], a[i + 1])
      else redis.call('HSET', key, a[i], a[i + 1]) end
    end
  end
end
-- PN and text values compare without trailing component separators/spaces
local function norm(v) return (string.gsub(v or '', '[%^=%s]+$', '')) end
local function eff_pid(issuer, id)
  if not id or id == '' then return '' end
  if not issuer or issuer == '' then issuer = owner end
  return issuer .. '|' .. id
end

-- patient attributes against the study's (only once the study has instances)
local st = redis.call('HMGET', KEYS[5], 'patient', 'patient_id', 'issuer', 'patient_name',
  'birth_date', 'sex', 'instances')
for i = 1, 7 do st[i] = st[i] or '' end -- absent fields come back as false
local conflicts = {}
if (tonumber(st[7]) or 0) > 0 then
  if st[1] ~= '' and pkey ~= '' and st[1] ~= pkey then
    conflicts[#conflicts + 1] = {'PatientID', eff_pid(st[3], st[2]), eff_pid(ARGV[28], ARGV[27])}
  end
  local fields = {{'PatientName', st[4], ARGV[29]}, {'PatientBirthDate', st[5], ARGV[30]},
    {'PatientSex', st[6], ARGV[31]}}
  for _, f in ipairs(fields) do
    local a, b = norm(f[2]), norm(f[3])
    if a ~= '' and b ~= '' and a ~= b then conflicts[#conflicts + 1] = f end
  end
end
local flag, detail = 0, ''
if #conflicts > 0 then
  flag = 8
  local parts = {}
  for _, c in ipairs(conflicts) do
    parts[#parts + 1] = c[1] .. " study '" .. (c[2] or '') .. "' instance '" .. (c[3] or '') .. "'"
  end
  detail = table.concat(parts, '; ')
end

-- patient-name indexes (decision 0014), from the study's name (the first
-- instance's): score 0, member "<group>\0<study>" per component group in
-- KEYS[20] (prefix and exact keys), and one per character position of each
-- group in KEYS[21] (keys with a leading wildcard); groups are ASCII
-- lower-cased like storage/query.c (sto_pn_norm); groups longer than 256
-- bytes (STO_PN_SUFFIX_MAX) only whole. ZADD of present members is a no-op.
local function index_name()
  local pname = redis.call('HGET', KEYS[5], 'patient_name')
  if pname and pname ~= '' then
    local low = string.gsub(pname, '[A-Z]', function(c) return string.char(c:byte() + 32) end)
    local whole, sfx = {}, {}
    for g in string.gmatch(low .. '=', '([^=]*)=') do
      if g ~= '' then
        whole[#whole + 1] = 0
        whole[#whole + 1] = g .. '\0' .. study
        local last = #g
        if last > 256 then last = 1 end
        for p = 1, last do
          local b = string.byte(g, p)
          if b < 128 or b >= 192 then -- a UTF-8 character starts here
            sfx[#sfx + 1] = 0
            sfx[#sfx + 1] = string.sub(g, p) .. '\0' .. study
          end
        end
      end
    end
    if #whole > 0 then redis.call('ZADD', KEYS[20], unpack(whole)) end
    if #sfx > 0 then redis.call('ZADD', KEYS[21], unpack(sfx)) end
  end
end

local old = redis.call('HMGET', KEYS[1], 'sha', 'received')
if old[1] == sha then
  index_name() -- a reindex of an index made before the name indexes fills them
  if live then -- a receipt: who sent the same data set again, and when
    redis.call('LPUSH', KEYS[18], ARGV[2] .. '\t' .. ARGV[12] .. '\t' .. ARGV[11])
    redis.call('LTRIM', KEYS[18], 0, 99)
    redis.call('HINCRBY', KEYS[1], 'receipts', 1)
  end
  return {1 + flag, detail}
end
local outcome = 0
if old[1] then
  if tonumber(old[2] or '0') > received then
    redis.call('ZADD', KEYS[2], received, sha)
    return {3 + flag, detail}
  end
  redis.call('ZADD', KEYS[2], tonumber(old[2] or '0'), old[1])
  outcome = 2
end

hset(KEYS[3], false, 'uid', series, 'study', study, 'modality', ARGV[13], 'number', ARGV[14],
  'description', ARGV[15], 'date', ARGV[16], 'body_part', ARGV[17])
local new_in_series = redis.call('ZADD', KEYS[4], tonumber(ARGV[9]) or 0, sop) == 1
hset(KEYS[5], true, 'uid', study, 'date', ARGV[18], 'time', ARGV[19], 'accession', ARGV[20],
  'description', ARGV[21], 'id', ARGV[22], 'referring', ARGV[23], 'institution', ARGV[24],
  'performing', ARGV[25], 'charset', ARGV[32], 'charset_guessed', ARGV[33],
  'hospital', owner, 'first_received', ARGV[2])
redis.call('HSET', KEYS[5], 'updated', ARGV[2])
local in_patient = #conflicts == 0 and pkey ~= ''
if #conflicts == 0 then
  hset(KEYS[5], true, 'patient', pkey, 'patient_id', ARGV[27], 'issuer', ARGV[28],
    'patient_name', ARGV[29], 'birth_date', ARGV[30], 'sex', ARGV[31])
  -- the study's patient is the first one seen: index under it only
  in_patient = in_patient and redis.call('HGET', KEYS[5], 'patient') == pkey
else
  redis.call('HSET', KEYS[5], 'patient_conflict', 'YES')
  for _, c in ipairs(conflicts) do
    redis.call('LPUSH', KEYS[19], ARGV[2] .. '\t' .. sop .. '\t' .. c[1] .. '\t' .. (c[2] or '') ..
      '\t' .. (c[3] or ''))
  end
  redis.call('LTRIM', KEYS[19], 0, 99)
end
local sdate = redis.call('HGET', KEYS[5], 'date') or ''
local date = tonumber(sdate) or 0
if #sdate ~= 8 then date = 0 end
if redis.call('ZADD', KEYS[6], tonumber(ARGV[14]) or 0, series) == 1 then
  redis.call('HINCRBY', KEYS[5], 'series', 1)
end
if ARGV[13] ~= '' then redis.call('SADD', KEYS[7], ARGV[13]) end
if in_patient then
  hset(KEYS[8], true, 'key', pkey, 'id', ARGV[27], 'issuer', ARGV[28], 'name', ARGV[29],
    'birth_date', ARGV[30], 'sex', ARGV[31])
  redis.call('ZADD', KEYS[9], date, study)
  redis.call('SADD', KEYS[16], pkey)
  redis.call('SADD', KEYS[17], pkey)
end
if ARGV[20] ~= '' then redis.call('SADD', KEYS[10], study) end
redis.call('ZADD', KEYS[11], date, study)
if ARGV[13] ~= '' then redis.call('ZADD', KEYS[12], date, study) end
redis.call('ZADD', KEYS[13], received, study)
if new_in_series then
  redis.call('HINCRBY', KEYS[3], 'instances', 1)
  redis.call('HINCRBY', KEYS[5], 'instances', 1)
  redis.call('HINCRBY', KEYS[5], 'bytes', size)
end
if redis.call('HSET', KEYS[14], sop, study) == 1 then
  redis.call('HINCRBY', KEYS[15], 'instances', 1)
  redis.call('HINCRBY', KEYS[15], 'bytes', size)
end
index_name()
-- last: the instance itself (its presence means the commit is complete)
hset(KEYS[1], false, 'sha', sha, 'received', ARGV[2], 'size', ARGV[3], 'ts', ARGV[4],
  'sop_class', ARGV[5], 'sop', sop, 'series', series, 'study', study, 'number', ARGV[9],
  'frames', ARGV[10], 'source_ae', ARGV[11], 'hospital', ARGV[12])
return {outcome + flag, detail}
