-- Reports: one operation per EVAL, so each transition is atomic. Called by
-- reports/report.c; keys in docs/index-schema.md ("Reports"), decisions
-- 0022 and 0024. Every key of a study carries its hash tag {S}; the one
-- exception is the global delivery queue hr:rpt:outbox (KEYS[2] of commit),
-- like the worklist's global sets (decision 0024: split for Cluster as in
-- decision 0003). The PIN operations touch only the user's two keys.
-- ARGV[1] operation, ARGV[2] study (or user), ARGV[3] now (ms), then the
-- operation's arguments. KEYS[1] is the study's summary hash hr:rpt:{S}.
-- Results are arrays {code, ...}; codes are mapped by report.c.
local OK, NOTFOUND, STATE, BUSY, STALE, TOOMANY, PERM, TOOBIG, OPEN =
  0, 1, 2, 3, 4, 5, 6, 7, 8
local op, study, now = ARGV[1], ARGV[2], tonumber(ARGV[3])

local function num(x) return string.format('%.0f', x) end
local function tag() return '{' .. study .. '}' end
local function rkey(n) return 'hr:rpt:' .. tag() .. ':' .. n end
local function vkey(n, k) return rkey(n) .. ':v:' .. k end
local function ids_key() return 'hr:rpt:' .. tag() .. ':ids' end

-- The worklist item's claim (written only by worklist_script.lua; same
-- slot: hr:wl:{S}). OK, NOTFOUND, or BUSY unless user holds a live lease.
local function claim_check(user)
  local f = redis.call('HMGET', 'hr:wl:' .. tag(), 'state', 'claimed_by', 'lease_until_ms', 'center')
  if not f[1] then return NOTFOUND, nil end
  if f[1] ~= 'claimed' or f[2] ~= user or (tonumber(f[3] or '0') or 0) <= now then
    return BUSY, f[4]
  end
  return OK, f[4]
end

if op == 'create' then -- user center max
  local user, center, max = ARGV[4], ARGV[5], tonumber(ARGV[6])
  local code, item_center = claim_check(user)
  if code == NOTFOUND then return {NOTFOUND} end
  if item_center ~= center then return {PERM} end
  if code ~= OK then return {code} end
  local open = redis.call('HGET', KEYS[1], 'open')
  if open and open ~= '' then return {OPEN, open} end
  local n = redis.call('LLEN', ids_key())
  if n >= max then return {TOOMANY} end
  n = n + 1
  local id = 'r' .. n .. '-' .. study
  local hosp = redis.call('HGET', 'hr:wl:' .. tag(), 'hospital') or ''
  redis.call('HSET', rkey(n), 'id', id, 'study', study, 'n', n, 'center', center,
    'hospital', hosp, 'status', 'draft', 'versions', '0', 'current', '0', 'pending', '0',
    'pending_kind', '', 'author', user, 'created_by', user, 'created_ms', num(now),
    'updated_ms', num(now), 'draft', '', 'rev', '0', 'draft_by', user, 'draft_ms', num(now))
  redis.call('RPUSH', ids_key(), id)
  redis.call('HSET', KEYS[1], 'latest', id, 'status', 'draft', 'open', id)
  return {OK, id}
end

if op == 'save' then -- n user rev draft
  local n, user, rev, draft = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  local f = redis.call('HMGET', rkey(n), 'status', 'rev', 'versions')
  if not f[1] then return {NOTFOUND} end
  if f[1] ~= 'draft' then return {STATE} end -- a new draft, or one returned for revision
  local code = claim_check(user)
  if code ~= OK then return {code} end
  if f[2] ~= rev then return {STALE, f[2]} end
  local nrev = num(tonumber(rev) + 1)
  redis.call('HSET', rkey(n), 'draft', draft, 'rev', nrev, 'author', user, 'draft_by', user,
    'draft_ms', num(now), 'updated_ms', num(now))
  return {OK, nrev}
end

if op == 'return' then -- n guard_versions guard_pending record draft max
  -- An auditor returns the pending preliminary version for revision
  -- (decision 0034): the record (JSON) joins the report's returns; the
  -- initial preliminary (nothing current yet) becomes a draft again with
  -- the returned content and a new revision; a pending amendment is
  -- dropped (the current version stays in force). The signed version
  -- itself is kept as it is.
  local n, record, draft, max = ARGV[4], ARGV[7], ARGV[8], tonumber(ARGV[9])
  local f = redis.call('HMGET', rkey(n), 'versions', 'pending', 'current', 'rev', 'author')
  if not f[1] then return {NOTFOUND} end
  if f[1] ~= ARGV[5] or f[2] ~= ARGV[6] or f[2] == '0' or f[2] ~= f[1] then return {STATE} end
  local rk = rkey(n) .. ':returns'
  if redis.call('LLEN', rk) >= max then return {TOOMANY} end
  redis.call('RPUSH', rk, record)
  local rev = f[4] or '0'
  if f[3] == '0' then
    rev = num(tonumber(rev) + 1)
    redis.call('HSET', rkey(n), 'status', 'draft', 'pending', '0', 'pending_kind', '',
      'draft', draft, 'rev', rev, 'draft_by', f[5] or '', 'draft_ms', num(now),
      'updated_ms', num(now))
    local id = 'r' .. n .. '-' .. study
    if redis.call('HGET', KEYS[1], 'latest') == id then
      redis.call('HSET', KEYS[1], 'status', 'draft')
    end
  else
    redis.call('HSET', rkey(n), 'pending', '0', 'pending_kind', '', 'updated_ms', num(now))
  end
  return {OK, rev}
end

if op == 'commit' or op == 'replay' then
  -- n guard_versions guard_pending guard_rev ('' = none) claim_user ('' = none)
  -- k vstatus jws digest signed_ms signer tsr
  -- status current pending pending_kind author clear_draft(0|1) open(keep|clear) outbox(0|1)
  -- signers (JSON) supersedes (version or 0) cosigned (0|1) reason
  -- replay (start-up reconciliation of a version record file, decision 0024)
  -- adds: center hospital created_by created_ms, and answers {STATE, 'present'}
  -- when the version exists; a report whose hash was lost with its first
  -- version is recreated when it is the study's next one.
  local n = ARGV[4]
  if op == 'replay' then
    if redis.call('EXISTS', vkey(n, ARGV[9])) == 1 then return {STATE, 'present'} end
    if redis.call('EXISTS', rkey(n)) == 0 and ARGV[9] == '1' and ARGV[5] == '0'
      and redis.call('LLEN', ids_key()) == tonumber(n) - 1 then
      local id = 'r' .. n .. '-' .. study
      redis.call('HSET', rkey(n), 'id', id, 'study', study, 'n', n, 'center', ARGV[28],
        'hospital', ARGV[29], 'status', 'draft', 'versions', '0', 'current', '0',
        'pending', '0', 'pending_kind', '', 'author', ARGV[20], 'created_by', ARGV[30],
        'created_ms', ARGV[31], 'updated_ms', num(now), 'draft', '', 'rev', '0',
        'draft_by', ARGV[20], 'draft_ms', ARGV[31])
      redis.call('RPUSH', ids_key(), id)
      redis.call('HSET', KEYS[1], 'latest', id, 'status', 'draft', 'open', id)
    end
  end
  local f = redis.call('HMGET', rkey(n), 'versions', 'pending', 'rev', 'status')
  if not f[1] then return {NOTFOUND} end
  if f[1] ~= ARGV[5] or f[2] ~= ARGV[6] then return {STATE} end
  if ARGV[7] ~= '' and (f[4] ~= 'draft' or f[3] ~= ARGV[7]) then return {STALE, f[3] or ''} end
  if ARGV[8] ~= '' then
    local code = claim_check(ARGV[8])
    if code ~= OK then return {code} end
  end
  local k = ARGV[9]
  if redis.call('EXISTS', vkey(n, k)) == 1 then return {STATE} end
  redis.call('HSET', vkey(n, k), 'report', 'r' .. n .. '-' .. study, 'version', k,
    'status', ARGV[10], 'jws', ARGV[11], 'digest', ARGV[12], 'signed_ms', ARGV[13],
    'signer', ARGV[14], 'tsr', ARGV[15], 'signers', ARGV[24], 'supersedes', ARGV[25],
    'cosigned', ARGV[26], 'reason', ARGV[27])
  redis.call('HSET', rkey(n), 'versions', k, 'status', ARGV[16], 'current', ARGV[17],
    'pending', ARGV[18], 'pending_kind', ARGV[19], 'author', ARGV[20], 'updated_ms', num(now))
  if ARGV[21] == '1' then redis.call('HSET', rkey(n), 'draft', '') end
  local id = 'r' .. n .. '-' .. study
  if redis.call('HGET', KEYS[1], 'latest') == id then
    redis.call('HSET', KEYS[1], 'status', ARGV[16])
  end
  if ARGV[22] == 'clear' and redis.call('HGET', KEYS[1], 'open') == id then
    redis.call('HSET', KEYS[1], 'open', '')
  end
  if ARGV[23] == '1' then redis.call('ZADD', KEYS[2], now, id .. '/' .. k) end
  return {OK}
end

if op == 'images' then -- max: the study's attributes and every current instance's hash
  local max = tonumber(ARGV[4])
  local st = redis.call('HGETALL', 'hr:' .. tag() .. ':st')
  if #st == 0 then return {NOTFOUND} end
  local series = redis.call('ZRANGE', 'hr:' .. tag() .. ':se', 0, max)
  if #series > max then return {TOOBIG, #series} end
  local total = 0
  for _, se in ipairs(series) do
    total = total + redis.call('ZCARD', 'hr:' .. tag() .. ':se:' .. se .. ':i')
    if total > max then return {TOOBIG, total} end
  end
  local out = {OK, st}
  for _, se in ipairs(series) do
    for _, sop in ipairs(redis.call('ZRANGE', 'hr:' .. tag() .. ':se:' .. se .. ':i', 0, -1)) do
      local sha = redis.call('HGET', 'hr:' .. tag() .. ':i:' .. sop, 'sha')
      if sha then -- present: the instance's commit is complete
        out[#out + 1] = sop
        out[#out + 1] = sha
      end
    end
  end
  return out
end

if op == 'pin_fail' then -- KEYS: fail lock; limit window_s lock_s -> {failures, locked}
  local limit, window, lock = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('EXPIRE', KEYS[1], window) end
  if n >= limit then
    redis.call('SET', KEYS[2], num(now), 'EX', lock)
    redis.call('DEL', KEYS[1])
    return {n, 1}
  end
  return {n, 0}
end

return redis.error_reply('ERR unknown report operation ' .. tostring(op))
