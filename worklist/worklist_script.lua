-- Worklist transitions and reads: one operation per EVAL, so every state
-- change is atomic. Called by worklist/worklist.c (call_run); the keys are
-- documented in docs/index-schema.md, "Worklist".
-- ARGV[1] operation, ARGV[2] now (ms), ARGV[3] events kept, ARGV[4..] its
-- arguments. Per-item operations also get the item key as KEYS[1].
-- Results: 0 ok, 1 no such item, 2 held by another reader, 3 not allowed
-- in the item's state, 4 bad argument (mapped to HR_ codes by worklist.c).
local OK, NOTFOUND, BUSY, STATE, INVAL = 0, 1, 2, 3, 4
local LOG_KEEP = 1000
local SPAN = 1e13 -- list score = priority * SPAN + due ms
local PRIO = {stat = 0, urgent = 1, routine = 2}
local STATES = {'receiving', 'ready', 'claimed', 'reported', 'final', 'amended'}
local op, now, keep = ARGV[1], tonumber(ARGV[2]), ARGV[3]

local function num(x) return string.format('%.0f', x) end
local function ikey(s) return 'hr:wl:{' .. s .. '}' end
local function ckey(c, part) return 'hr:wl:c:' .. c .. ':' .. part end
local function working(state) return state == 'ready' or state == 'claimed' end

local function load(study)
  local a = redis.call('HGETALL', ikey(study))
  if #a == 0 then return nil end
  local t = {}
  for i = 1, #a, 2 do t[a[i]] = a[i + 1] end
  return t
end

local function score(it) return (PRIO[it.priority] or 2) * SPAN + tonumber(it.due_ms) end

-- Appends the event to the stream and the item's history, wakes every node.
local function event(it, typ, user, reader)
  user, reader = user or '', reader or ''
  local id = redis.call('XADD', 'hr:wl:events', 'MAXLEN', '~', keep, '*', 'type', typ,
    'study', it.study, 'center', it.center, 'hospital', it.hospital or '', 'user', user,
    'reader', reader, 'priority', it.priority, 'state', it.state, 'time', num(now))
  redis.call('PUBLISH', 'hr:wl:notify', id)
  local log = ikey(it.study) .. ':log'
  redis.call('RPUSH', log, table.concat({num(now), typ, it.state, user, reader}, '\t'))
  redis.call('LTRIM', log, -LOG_KEEP, -1)
  return id
end

-- Moves the item between the per-center state sets; stamps who and when.
local function move(it, to, user)
  local s = score(it)
  redis.call('ZREM', ckey(it.center, 's:' .. it.state), it.study)
  redis.call('ZADD', ckey(it.center, 's:' .. to), s, it.study)
  if working(to) then
    redis.call('ZADD', ckey(it.center, 'work'), s, it.study)
  elseif working(it.state) then
    redis.call('ZREM', ckey(it.center, 'work'), it.study)
  end
  it.state = to
  redis.call('HSET', ikey(it.study), 'state', to, to .. '_ms', num(now), to .. '_actor', user or '')
end

local function drop_claim(it)
  redis.call('ZREM', 'hr:wl:leases', it.study)
  redis.call('HSET', ikey(it.study), 'claimed_by', '', 'lease_until_ms', '0')
  it.claimed_by = ''
end

local function make_ready(it, by)
  redis.call('ZREM', 'hr:wl:receiving', it.study)
  move(it, 'ready', by)
  event(it, 'ready', by, '')
end

local function expire(it)
  local holder = it.claimed_by or ''
  drop_claim(it)
  move(it, 'ready', '')
  event(it, 'expired', '', holder)
end

-- A lease that ran out is dead whether or not a sweep has seen it yet.
local function expire_if_due(it)
  if it.state == 'claimed' and tonumber(it.lease_until_ms or '0') <= now then expire(it) end
end

local function hold(it, user, lease_ms)
  local untl = now + lease_ms
  redis.call('HSET', ikey(it.study), 'claimed_by', user, 'lease_until_ms', num(untl))
  redis.call('ZADD', 'hr:wl:leases', untl, it.study)
  it.claimed_by = user
end

if op == 'arrive' then
  -- study center priority rule quiet_ms due_ms hospital modality patient
  -- patient_name accession study_date procedure repeat patient_conflict
  local study, center, prio = ARGV[4], ARGV[5], ARGV[6]
  local conflict = ARGV[18] == '1' and '1' or '0'
  local quiet, due = tonumber(ARGV[8]), tonumber(ARGV[9])
  local fields = {hospital = ARGV[10], modality = ARGV[11], patient = ARGV[12],
    patient_name = ARGV[13], accession = ARGV[14], study_date = ARGV[15], procedure = ARGV[16]}
  local it = load(study)
  if not it then
    it = {study = study, center = center, priority = prio, state = 'receiving',
      hospital = fields.hospital, due_ms = num(due)}
    local h = {'study', study, 'center', center, 'priority', prio, 'state', 'receiving',
      'rule', ARGV[7], 'arrived_ms', num(now), 'last_ms', num(now), 'quiet_ms', num(quiet),
      'due_ms', num(due), 'instances', '1', 'overdue', '0', 'changed_after_ready', '0',
      'changed_since_read', '0', 'claimed_by', '', 'lease_until_ms', '0',
      'patient_conflict', conflict,
      'receiving_ms', num(now), 'receiving_actor', ''}
    for k, v in pairs(fields) do
      h[#h + 1] = k
      h[#h + 1] = v
    end
    redis.call('HSET', ikey(study), unpack(h))
    redis.call('ZADD', 'hr:wl:receiving', now + quiet, study)
    redis.call('ZADD', 'hr:wl:due', due, study)
    redis.call('ZADD', ckey(center, 's:receiving'), score(it), study)
    redis.call('ZADD', ckey(center, 'arr'), now, study)
    if fields.hospital ~= '' then redis.call('ZADD', 'hr:wl:h:' .. fields.hospital, now, study) end
    event(it, 'received', '', '')
    return 1
  end
  if conflict == '1' then redis.call('HSET', ikey(study), 'patient_conflict', '1') end
  if ARGV[17] == '1' then
    -- the same bytes sent again (a retry): activity while receiving, nothing new after
    if it.state == 'receiving' then
      redis.call('ZADD', 'hr:wl:receiving', now + tonumber(it.quiet_ms), study)
    end
    return 0
  end
  redis.call('HINCRBY', ikey(study), 'instances', 1)
  redis.call('HSET', ikey(study), 'last_ms', num(now))
  for k, v in pairs(fields) do
    if v ~= '' and (it[k] or '') == '' and k ~= 'hospital' then
      redis.call('HSET', ikey(study), k, v)
    end
  end
  if it.state == 'receiving' then
    if quiet > tonumber(it.quiet_ms) then
      redis.call('HSET', ikey(study), 'quiet_ms', num(quiet))
    else
      quiet = tonumber(it.quiet_ms)
    end
    redis.call('ZADD', 'hr:wl:receiving', now + quiet, study)
    return 0
  end
  local flipped = false
  if it.changed_after_ready ~= '1' then
    redis.call('HSET', ikey(study), 'changed_after_ready', '1')
    flipped = true
  end
  if it.state ~= 'ready' and it.changed_since_read ~= '1' then
    redis.call('HSET', ikey(study), 'changed_since_read', '1')
    flipped = true
  end
  if flipped then event(it, 'changed', '', it.claimed_by) end
  return 0
end

if op == 'complete' then -- study by
  local it = load(ARGV[4])
  if not it then return NOTFOUND end
  if it.state == 'receiving' then make_ready(it, ARGV[5]) end
  return OK
end

if op == 'sweep_complete' then -- max; returns the number made ready
  local due = redis.call('ZRANGEBYSCORE', 'hr:wl:receiving', '-inf', num(now), 'LIMIT', 0, ARGV[4])
  local n = 0
  for _, study in ipairs(due) do
    local it = load(study)
    if it and it.state == 'receiving' then
      make_ready(it, '')
      n = n + 1
    else
      redis.call('ZREM', 'hr:wl:receiving', study)
    end
  end
  return n
end

if op == 'sweep_expire' then -- max; returns the number of leases expired
  local due = redis.call('ZRANGEBYSCORE', 'hr:wl:leases', '-inf', num(now), 'LIMIT', 0, ARGV[4])
  local n = 0
  for _, study in ipairs(due) do
    local it = load(study)
    if it and it.state == 'claimed' and tonumber(it.lease_until_ms) <= now then
      expire(it)
      n = n + 1
    elseif not (it and it.state == 'claimed') then
      redis.call('ZREM', 'hr:wl:leases', study)
    end
  end
  return n
end

if op == 'sweep_overdue' then -- max; returns {study, center, priority, due_ms} per flagged item
  local due = redis.call('ZRANGEBYSCORE', 'hr:wl:due', '-inf', '(' .. num(now), 'LIMIT', 0, ARGV[4])
  local out = {}
  for _, study in ipairs(due) do
    redis.call('ZREM', 'hr:wl:due', study)
    local it = load(study)
    if it and it.overdue ~= '1' and it.state ~= 'final' and it.state ~= 'amended' then
      redis.call('HSET', ikey(study), 'overdue', '1', 'overdue_ms', num(now))
      redis.call('ZADD', ckey(it.center, 'overdue'), tonumber(it.due_ms), study)
      event(it, 'overdue', '', it.claimed_by)
      out[#out + 1] = study
      out[#out + 1] = it.center
      out[#out + 1] = it.priority
      out[#out + 1] = it.due_ms
    end
  end
  return out
end

if op == 'next' then -- earliest deadline of the three sweeps, 0 when none
  local best = 0
  for _, k in ipairs({'hr:wl:receiving', 'hr:wl:leases', 'hr:wl:due'}) do
    local f = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
    if #f == 2 then
      local t = tonumber(f[2])
      if k == 'hr:wl:due' then t = t + 1 end -- overdue once now > due
      if best == 0 or t < best then best = t end
    end
  end
  return num(best)
end

if op == 'claim' or op == 'renew' or op == 'release' then -- study user lease_ms
  local user, lease = ARGV[5], tonumber(ARGV[6] or '0')
  local it = load(ARGV[4])
  if not it then return NOTFOUND end
  expire_if_due(it)
  if op == 'claim' and it.state == 'ready' then
    hold(it, user, lease)
    move(it, 'claimed', user)
    event(it, 'claimed', user, user)
    return OK
  end
  if it.state ~= 'claimed' then return STATE end
  if it.claimed_by ~= user then return BUSY end
  if op == 'release' then
    drop_claim(it)
    move(it, 'ready', user)
    event(it, 'released', user, user)
  else
    hold(it, user, lease)
    event(it, 'renewed', user, user)
  end
  return OK
end

if op == 'reassign' then -- study to by lease_ms
  local to, by, lease = ARGV[5], ARGV[6], tonumber(ARGV[7])
  local it = load(ARGV[4])
  if not it then return NOTFOUND end
  expire_if_due(it)
  if not working(it.state) then return STATE end
  hold(it, to, lease)
  if it.state == 'ready' then
    move(it, 'claimed', by)
  else
    redis.call('HSET', ikey(it.study), 'claimed_ms', num(now), 'claimed_actor', by)
  end
  event(it, 'reassigned', by, to)
  return OK
end

if op == 'set_state' then -- study to user
  local to, user = ARGV[5], ARGV[6]
  local it = load(ARGV[4])
  if not it then return NOTFOUND end
  expire_if_due(it)
  if to == 'reported' then
    if it.state ~= 'claimed' then return STATE end
    if it.claimed_by ~= user then return BUSY end
    drop_claim(it)
    redis.call('HSET', ikey(it.study), 'reported_by', user)
    it.reported_by = user
  elseif to == 'final' then
    if it.state ~= 'reported' then return STATE end
  elseif to == 'amended' then
    if it.state ~= 'final' and it.state ~= 'amended' then return STATE end
  else
    return INVAL
  end
  if to == 'final' or to == 'amended' then
    redis.call('ZREM', 'hr:wl:due', it.study)
    redis.call('ZREM', ckey(it.center, 'overdue'), it.study)
  end
  move(it, to, user)
  event(it, to, user, it.reported_by or user)
  return OK
end

-- Reads. An item is returned as its HGETALL array.

if op == 'list' then
  -- center state(''=ready+claimed) priority(''=any) hospital modality overdue_only claimed_by
  -- from to order_arrival offset limit
  local center, state, prio = ARGV[4], ARGV[5], ARGV[6]
  local hosp, mod, od, by = ARGV[7], ARGV[8], ARGV[9] == '1', ARGV[10]
  local from, to, by_arrival = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13] == '1'
  local offset, limit = tonumber(ARGV[14]), tonumber(ARGV[15])
  local out = {0}
  for _, s in ipairs(STATES) do out[#out + 1] = redis.call('ZCARD', ckey(center, 's:' .. s)) end
  out[#out + 1] = redis.call('ZCARD', ckey(center, 'overdue'))
  local src, lo, hi
  if by_arrival then
    src = ckey(center, 'arr')
    lo = from > 0 and num(from) or '-inf'
    hi = to > 0 and num(to) or '+inf'
  else
    src = state == '' and ckey(center, 'work') or ckey(center, 's:' .. state)
    lo, hi = '-inf', '+inf'
    if prio ~= '' then
      lo = num(PRIO[prio] * SPAN)
      hi = '(' .. num((PRIO[prio] + 1) * SPAN)
    end
  end
  local need_state = by_arrival
  local residual = need_state or hosp ~= '' or mod ~= '' or od or by ~= '' or
    (not by_arrival and (from > 0 or to > 0)) or (by_arrival and prio ~= '')
  local page = {}
  if not residual then
    out[1] = redis.call('ZCOUNT', src, lo, hi)
    page = redis.call('ZRANGEBYSCORE', src, lo, hi, 'LIMIT', offset, limit)
  else
    local matched, pos, batch = 0, 0, 512
    while true do
      local ids = redis.call('ZRANGEBYSCORE', src, lo, hi, 'LIMIT', pos, batch)
      for _, study in ipairs(ids) do
        local f = redis.call('HMGET', ikey(study), 'state', 'priority', 'hospital', 'modality',
          'overdue', 'claimed_by', 'arrived_ms')
        local arrived = tonumber(f[7] or '0') or 0
        local ok = f[1] ~= false
        if ok and need_state then
          if state == '' then ok = working(f[1]) else ok = f[1] == state end
        end
        if ok and prio ~= '' then ok = f[2] == prio end
        if ok and hosp ~= '' then ok = f[3] == hosp end
        if ok and mod ~= '' then ok = f[4] == mod end
        if ok and od then ok = f[5] == '1' end
        if ok and by ~= '' then ok = f[6] == by end
        if ok and from > 0 then ok = arrived >= from end
        if ok and to > 0 then ok = arrived <= to end
        if ok then
          if matched >= offset and #page < limit then page[#page + 1] = study end
          matched = matched + 1
        end
      end
      if #ids < batch then break end
      pos = pos + batch
    end
    out[1] = matched
  end
  for _, study in ipairs(page) do out[#out + 1] = redis.call('HGETALL', ikey(study)) end
  return out
end

if op == 'hospital' then -- hospital offset limit; newest first
  local k = 'hr:wl:h:' .. ARGV[4]
  local offset, limit = tonumber(ARGV[5]), tonumber(ARGV[6])
  local out = {redis.call('ZCARD', k)}
  for _, study in ipairs(redis.call('ZREVRANGE', k, offset, offset + limit - 1)) do
    out[#out + 1] = redis.call('HGETALL', ikey(study))
  end
  return out
end

return redis.error_reply('ERR unknown worklist operation ' .. tostring(op))
