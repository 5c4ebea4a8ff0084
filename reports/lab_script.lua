-- Commits one lab report's new state (decision 0035): the keys of one exam
-- slot {U} only. The caller merged the message into the report it read at
-- revision ARGV[2]; the commit happens only if the report is still at that
-- revision and the message was not applied before (idempotent: a resend
-- after a crash changes nothing).
-- KEYS[1] hr:lab:{U}  KEYS[2] hr:lab:{U}:msgs  KEYS[3] hr:{U}:st
-- ARGV: message id, expected rev, report JSON, now ms, max messages,
--       hospital, patient key, patient id, issuer, patient name, birth date,
--       sex, date, accession, description, uid
-- Returns {code, rev}: 0 committed, 1 already applied, 2 changed meanwhile
-- (read again), 3 the report has max messages, 4 the UID's hr:{U}:st
-- belongs to another hospital or is not a lab report (refused).
local h, msgs, st = KEYS[1], KEYS[2], KEYS[3]
local id, expected, now = ARGV[1], tonumber(ARGV[2]), ARGV[4]
local rev = tonumber(redis.call('HGET', h, 'rev') or '0')
if redis.call('ZSCORE', msgs, id) then
  return {1, rev}
end
-- the UID is a public function of hospital, order and code: a study of
-- another hospital (or any study that is not this lab report) holding it
-- first is never taken over
local owner = redis.call('HGET', st, 'hospital')
if owner and (owner ~= ARGV[6] or redis.call('HGET', st, 'kind') ~= 'lab') then
  return {4, rev}
end
if rev ~= expected then
  return {2, rev}
end
if redis.call('ZCARD', msgs) >= tonumber(ARGV[5]) then
  return {3, rev}
end
redis.call('HSET', h, 'json', ARGV[3], 'rev', rev + 1, 'hospital', ARGV[6],
           'patient', ARGV[7], 'date', ARGV[13], 'updated_ms', now)
-- the owner, like a study's (storage/access.c reads hr:{U}:st hospital):
-- set by the first message, never changed
local fields = {'hospital', ARGV[6], 'patient', ARGV[7], 'patient_id', ARGV[8],
                'issuer', ARGV[9], 'patient_name', ARGV[10], 'birth_date', ARGV[11],
                'sex', ARGV[12], 'date', ARGV[13], 'accession', ARGV[14],
                'description', ARGV[15], 'uid', ARGV[16], 'kind', 'lab',
                'first_received', now}
for i = 1, #fields - 1, 2 do
  if fields[i + 1] ~= '' then
    redis.call('HSETNX', st, fields[i], fields[i + 1])
  end
end
redis.call('HSET', st, 'updated', now)
-- the message is applied: last
redis.call('ZADD', msgs, now, id)
return {0, rev + 1}
