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
local INF = math.huge
local PRIO = {stat = 0, urgent = 1, routine = 2}
local STATES = {'receiving', 'ready', 'claimed', 'reported', 'final', 'amended'}
local op, now, keep = ARGV[1], tonumber(ARGV[2]), ARGV[3]

local function num(x) return string.format('%.0f', x) end
local function ikey(s) return 'hr:wl:{' .. s .. '}' end
local function ckey(c, part) return 'hr:wl:c:' .. c .. ':' .. part end
local function working(state) return state == 'ready' or state == 'claimed' end
local function past(state) return state == 'final' or state == 'amended' end

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

-- The per-center list indexes an item belongs to (docs/index-schema.md),
-- each with its score: {keys = {k...}, scores = {k = score}}. Priority-ordered
-- sets score priority * SPAN + due, arrival-ordered ones arrived_ms; final and
-- amended items are only in their own state's sets (history), never in the
-- sets of the working list.
local function index_sets(it)
  local p, a = score(it), tonumber(it.arrived_ms or '0') or 0
  local t = {keys = {}, scores = {}}
  local function add(part, s)
    local k = ckey(it.center, part)
    t.keys[#t.keys + 1] = k
    t.scores[k] = s
  end
  local st = it.state
  local dims = {}
  if (it.hospital or '') ~= '' then dims[#dims + 1] = 'h:' .. it.hospital end
  if (it.modality or '') ~= '' then dims[#dims + 1] = 'm:' .. it.modality end
  add('s:' .. st, p)
  add('a:' .. st, a)
  if working(st) then
    add('work', p)
    add('a:work', a)
    for _, d in ipairs(dims) do add(d .. ':work', p) end
    if st == 'claimed' and (it.claimed_by or '') ~= '' then add('u:' .. it.claimed_by .. ':work', p) end
  elseif past(st) then
    for _, d in ipairs(dims) do add(d .. ':' .. st, a) end
    if (it.reported_by or '') ~= '' then add('u:' .. it.reported_by .. ':' .. st, a) end
  end
  return t
end

-- Brings the item's index membership from before (index_sets of its old
-- fields) to what its fields are now.
local function reindex(before, it)
  local after = index_sets(it)
  for _, k in ipairs(before.keys) do
    if after.scores[k] == nil then redis.call('ZREM', k, it.study) end
  end
  for _, k in ipairs(after.keys) do
    if before.scores[k] ~= after.scores[k] then redis.call('ZADD', k, num(after.scores[k]), it.study) end
  end
end
local NOWHERE = {keys = {}, scores = {}}

-- Statistics counters of one local day (docs/index-schema.md, "Statistics"):
-- written here, at the moment each event happens, so a statistics query
-- reads one hash per day whatever the number of exams. day: YYYYMMDD from
-- the caller ('' = not counted).
local function stat(day, field, by)
  if day ~= nil and day ~= '' then redis.call('HINCRBY', 'hr:stat:' .. day, field, by) end
end

-- Turnaround histogram bucket: 0 below 1 s, k for [2^(k-1), 2^k) s, at most 24.
local function tat_bucket(ms)
  local k, s = 0, 1000
  while ms >= s and k < 24 do
    k = k + 1
    s = s * 2
  end
  return k
end

-- Moves the item between the per-center sets; stamps who and when.
local function move(it, to, user)
  local before = index_sets(it)
  it.state = to
  redis.call('HSET', ikey(it.study), 'state', to, to .. '_ms', num(now), to .. '_actor', user or '')
  reindex(before, it)
end

local function drop_claim(it)
  local before = index_sets(it)
  redis.call('ZREM', 'hr:wl:leases', it.study)
  redis.call('HSET', ikey(it.study), 'claimed_by', '', 'lease_until_ms', '0')
  it.claimed_by = ''
  reindex(before, it)
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
  local before = index_sets(it)
  local untl = now + lease_ms
  redis.call('HSET', ikey(it.study), 'claimed_by', user, 'lease_until_ms', num(untl))
  redis.call('ZADD', 'hr:wl:leases', untl, it.study)
  it.claimed_by = user
  reindex(before, it)
end

if op == 'arrive' then
  -- study center priority rule quiet_ms due_ms hospital modality patient
  -- patient_name accession study_date procedure repeat patient_conflict day
  local study, center, prio = ARGV[4], ARGV[5], ARGV[6]
  local conflict = ARGV[18] == '1' and '1' or '0'
  local quiet, due = tonumber(ARGV[8]), tonumber(ARGV[9])
  local fields = {hospital = ARGV[10], modality = ARGV[11], patient = ARGV[12],
    patient_name = ARGV[13], accession = ARGV[14], study_date = ARGV[15], procedure = ARGV[16]}
  local it = load(study)
  if not it then
    it = {study = study, center = center, priority = prio, state = 'receiving',
      hospital = fields.hospital, modality = fields.modality, due_ms = num(due),
      arrived_ms = num(now)}
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
    reindex(NOWHERE, it)
    if fields.hospital ~= '' then redis.call('ZADD', 'hr:wl:h:' .. fields.hospital, now, study) end
    event(it, 'received', '', '')
    stat(ARGV[19], 'rx|t|', 1)
    stat(ARGV[19], 'rx|c|' .. center, 1)
    if fields.hospital ~= '' then stat(ARGV[19], 'rx|h|' .. fields.hospital, 1) end
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
  local before = index_sets(it)
  for k, v in pairs(fields) do
    if v ~= '' and (it[k] or '') == '' and k ~= 'hospital' then
      redis.call('HSET', ikey(study), k, v)
      it[k] = v
    end
  end
  reindex(before, it) -- a modality learnt late
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

if op == 'sweep_overdue' then -- max day; returns {study, center, priority, due_ms} per flagged item
  local due = redis.call('ZRANGEBYSCORE', 'hr:wl:due', '-inf', '(' .. num(now), 'LIMIT', 0, ARGV[4])
  local out = {}
  for _, study in ipairs(due) do
    redis.call('ZREM', 'hr:wl:due', study)
    local it = load(study)
    if it and it.overdue ~= '1' and it.state ~= 'final' and it.state ~= 'amended' then
      redis.call('HSET', ikey(study), 'overdue', '1', 'overdue_ms', num(now))
      redis.call('ZADD', ckey(it.center, 'overdue'), score(it), study)
      event(it, 'overdue', '', it.claimed_by)
      stat(ARGV[5], 'od|' .. it.center .. '|' .. it.priority, 1)
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

if op == 'return' then -- study reader by lease_ms: the report went back to its reader
  local reader, by, lease = ARGV[5], ARGV[6], tonumber(ARGV[7])
  local it = load(ARGV[4])
  if not it then return NOTFOUND end
  if it.state ~= 'reported' then return STATE end
  hold(it, reader, lease)
  move(it, 'claimed', by)
  event(it, 'returned', by, reader)
  return OK
end

if op == 'set_state' then -- study to user day (to: reported final amended, or ready: reopened)
  local to, user, day = ARGV[5], ARGV[6], ARGV[7]
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
  elseif to == 'ready' then
    -- the report was retracted (entered-in-error): the exam is read again
    if it.state ~= 'reported' and not past(it.state) then return STATE end
    move(it, 'ready', user)
    if it.overdue ~= '1' then
      redis.call('ZADD', 'hr:wl:due', it.due_ms, it.study)
    else -- still overdue: back in the center's overdue set (final/amended left it)
      redis.call('ZADD', ckey(it.center, 'overdue'), score(it), it.study)
    end
    event(it, 'reopened', user, it.reported_by or '')
    return OK
  else
    return INVAL
  end
  if to == 'final' or to == 'amended' then
    redis.call('ZREM', 'hr:wl:due', it.study)
    redis.call('ZREM', ckey(it.center, 'overdue'), it.study)
  end
  if to == 'final' and it.stat_final ~= '1' then
    -- the exam's first final report: its turnaround (arrival to sign-off),
    -- against its due time, and who it was read for (remote diagnosis)
    redis.call('HSET', ikey(it.study), 'stat_final', '1')
    local tat = math.max(0, now - (tonumber(it.arrived_ms or '0') or 0))
    local cp = it.center .. '|' .. it.priority
    stat(day, 'fin|' .. cp, 1)
    stat(day, 'sum|' .. cp, tat)
    if now <= (tonumber(it.due_ms or '0') or 0) then stat(day, 'ok|' .. cp, 1) end
    stat(day, 'b|' .. cp .. '|' .. tat_bucket(tat), 1)
    stat(day, 'fh|' .. it.center .. '|' .. (it.hospital or ''), 1)
  end
  move(it, to, user)
  event(it, to, user, it.reported_by or user)
  return OK
end

-- Reads. An item is returned as its HGETALL array. Listings read one sorted
-- set by rank from a cursor and never walk from the start of the set: their
-- cost is O(log N + page) on an index that matches the filters, and at most
-- `budget` members examined when filters remain to be checked per item.

-- a < b byte-wise, like the order of members of equal score (Lua's < follows
-- the locale)
local function bytes_lt(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- The rank of the first member of key after (s, m) in (score, member)
-- order, or at (s, m) when not strict; m need not be in key any more.
-- O(log N) plus a binary search among members of score s.
local function seek(key, s, m, strict)
  local lo = redis.call('ZCOUNT', key, '-inf', '(' .. num(s))
  local hi = lo + redis.call('ZCOUNT', key, num(s), num(s))
  local r = redis.call('ZRANK', key, m)
  if r and r >= lo and r < hi then return strict and r + 1 or r end
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if bytes_lt(redis.call('ZRANGE', key, mid, mid)[1], m) then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- Cursor "<tag>:<score>:<skip>:<member>": the listing goes on after (score,
-- member), first skipping skip more matches (an offset not reached yet).
local function cursor_parse(c, tag)
  if c == nil or c == '' then return nil, true end
  local t, sc, sk, m = string.match(c, '^(%a):(%-?%d+):(%d+):([%d%.]+)$')
  if t ~= tag then return nil, false end
  return {s = tonumber(sc), skip = tonumber(sk), m = m}, true
end

local function cursor_make(tag, c)
  if not c then return '' end
  return tag .. ':' .. num(c.s) .. ':' .. string.format('%d', c.skip) .. ':' .. c.m
end

-- Members of key with a score in [lo, hi], ascending or descending, after
-- cur (or from the start), skipping skip matches, at most limit; pred (may
-- be nil: every member matches) is checked on at most budget members.
-- Returns page, matched (-1: unknown, more than the budget), next cursor
-- (nil at the end), examined.
local function scan(key, asc, lo, hi, cur, skip, limit, budget, pred)
  local first = lo == -INF and 0 or redis.call('ZCOUNT', key, '-inf', '(' .. num(lo))
  local last = (hi == INF and redis.call('ZCARD', key) or redis.call('ZCOUNT', key, '-inf', num(hi))) - 1
  local size = math.max(0, last - first + 1)
  local i = asc and first or last
  if cur then
    skip = skip + cur.skip
    if asc then i = math.max(first, seek(key, cur.s, cur.m, true))
    else i = math.min(last, seek(key, cur.s, cur.m, false) - 1) end
  end
  local step = asc and 1 or -1
  local function left(j) return asc and last - j + 1 or j - first + 1 end
  -- n members from rank j on, in the listing's direction
  local function fetch(j, n)
    local a, b = j, j + n - 1
    if not asc then a, b = j - n + 1, j end
    local r = redis.call('ZRANGE', key, a, b, 'WITHSCORES')
    local ms, ss = {}, {}
    for x = 1, #r, 2 do
      ms[#ms + 1] = r[x]
      ss[#ss + 1] = tonumber(r[x + 1])
    end
    if not asc then
      for x = 1, math.floor(#ms / 2) do
        local y = #ms - x + 1
        ms[x], ms[y] = ms[y], ms[x]
        ss[x], ss[y] = ss[y], ss[x]
      end
    end
    return ms, ss
  end
  local page = {}
  if not pred then -- the index is the listing: ranks do the paging
    i = i + step * skip
    local n = math.max(0, math.min(limit, left(i)))
    if n == 0 then return page, size, nil, 0 end
    local ms, ss = fetch(i, n)
    local nxt = nil
    if left(i) > n then nxt = {s = ss[#ss], m = ms[#ms], skip = 0} end
    return ms, size, nxt, #ms
  end
  if size <= budget then -- small: check every member, count them all
    local matched, nxt = 0, nil
    local j = asc and first or last
    while left(j) > 0 do
      local n = math.min(256, left(j))
      local ms, ss = fetch(j, n)
      for x = 1, #ms do
        local rank = j + step * (x - 1)
        if pred(ms[x]) then
          matched = matched + 1
          if (asc and rank >= i) or (not asc and rank <= i) then
            if skip > 0 then
              skip = skip - 1
            elseif #page < limit then
              page[#page + 1] = ms[x]
              nxt = {s = ss[x], m = ms[x], skip = 0}
            elseif nxt and nxt.more == nil then
              nxt.more = true
            end
          end
        end
      end
      j = j + step * n
    end
    if nxt and not nxt.more then nxt = nil end
    return page, matched, nxt, size
  end
  -- large: go on from the cursor until the page is full or the budget spent
  local examined, nxt = 0, nil
  while left(i) > 0 and #page < limit do
    local n = math.min(128, left(i), budget - examined)
    if n <= 0 then break end
    local ms, ss = fetch(i, n)
    local x = 0
    while x < #ms and #page < limit do
      x = x + 1
      examined = examined + 1
      if pred(ms[x]) then
        if skip > 0 then skip = skip - 1 else page[#page + 1] = ms[x] end
      end
      nxt = {s = ss[x], m = ms[x], skip = skip}
    end
    i = i + step * x
  end
  if left(i) <= 0 then nxt = nil end
  return page, -1, nxt, examined
end

if op == 'upgrade' then -- center max; returns the items still to index
  -- Items indexed before decision 0015 are in the center's `arr` set (every
  -- item, score arrived_ms): index each as it is now, then drop it from there.
  local center = ARGV[4]
  local legacy = ckey(center, 'arr')
  for _, study in ipairs(redis.call('ZRANGE', legacy, 0, tonumber(ARGV[5]) - 1)) do
    local it = load(study)
    if it and it.center == center and it.state then
      reindex(NOWHERE, it)
      if redis.call('ZSCORE', ckey(center, 'overdue'), study) then
        redis.call('ZADD', ckey(center, 'overdue'), score(it), study)
      end
    end
    redis.call('ZREM', legacy, study)
  end
  return redis.call('ZCARD', legacy)
end

if op == 'list' then
  -- center state(''=ready+claimed) priority(''=any) hospital modality overdue_only mine
  -- from to order_arrival offset limit cursor budget
  local center, group, prio = ARGV[4], ARGV[5], ARGV[6]
  local hosp, mod, od, by = ARGV[7], ARGV[8], ARGV[9] == '1', ARGV[10]
  local from, to, by_arrival = tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13] == '1'
  local offset, limit, budget = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[17])
  local tag = by_arrival and 'a' or 'p'
  local cur, ok = cursor_parse(ARGV[16], tag)
  if not ok or (prio ~= '' and not PRIO[prio]) then return INVAL end
  if group == '' then group = 'work' end
  local out = {0}
  for _, s in ipairs(STATES) do out[#out + 1] = redis.call('ZCARD', ckey(center, 's:' .. s)) end
  out[#out + 1] = redis.call('ZCARD', ckey(center, 'overdue'))
  -- the sets that hold every item of the listing (and maybe more): what
  -- each one guarantees (g: the state, h m u o: hospital, modality, mine,
  -- overdue); the smallest one is read
  local cands = {}
  local function cand(part, g, h, m, u, o)
    cands[#cands + 1] = {k = ckey(center, part), g = g, h = h, m = m, u = u, o = o}
  end
  local lo, hi = -INF, INF
  if by_arrival then
    cand('a:' .. group, true)
    if past(group) then
      if hosp ~= '' then cand('h:' .. hosp .. ':' .. group, true, true) end
      if mod ~= '' then cand('m:' .. mod .. ':' .. group, true, false, true) end
      if by ~= '' then cand('u:' .. by .. ':' .. group, true, false, false, true) end
    end
    if from > 0 then lo = from end
    if to > 0 then hi = to end
  else
    cand(group == 'work' and 'work' or 's:' .. group, true)
    if working(group) or group == 'work' then
      local whole = group == 'work'
      if hosp ~= '' then cand('h:' .. hosp .. ':work', whole, true) end
      if mod ~= '' then cand('m:' .. mod .. ':work', whole, false, true) end
      if by ~= '' then cand('u:' .. by .. ':work', group ~= 'ready', false, false, true) end
    end
    if od and not past(group) then cand('overdue', false, false, false, false, true) end
    if prio ~= '' then
      lo = PRIO[prio] * SPAN
      hi = (PRIO[prio] + 1) * SPAN - 1
    end
  end
  local best, best_n = nil, 0
  for _, c in ipairs(cands) do
    local n = redis.call('ZCARD', c.k)
    if not best or n <= best_n then best, best_n = c, n end -- ties: the more specific
  end
  local exact = best.g and (hosp == '' or best.h) and (mod == '' or best.m) and
    (by == '' or best.u) and (not od or best.o) and
    ((by_arrival and prio == '') or (not by_arrival and from == 0 and to == 0))
  local pred = nil
  if not exact then
    pred = function(study)
      local f = redis.call('HMGET', ikey(study), 'state', 'priority', 'hospital', 'modality',
        'overdue', 'claimed_by', 'reported_by', 'arrived_ms')
      local st = f[1]
      if not st then return false end
      if group == 'work' then
        if not working(st) then return false end
      elseif st ~= group then
        return false
      end
      if prio ~= '' and f[2] ~= prio then return false end
      if hosp ~= '' and f[3] ~= hosp then return false end
      if mod ~= '' and f[4] ~= mod then return false end
      if od and f[5] ~= '1' then return false end
      if by ~= '' then
        local who = (st == 'reported' or past(st)) and f[7] or f[6]
        if who ~= by then return false end
      end
      local arrived = tonumber(f[8] or '0') or 0
      if from > 0 and arrived < from then return false end
      if to > 0 and arrived > to then return false end
      return true
    end
  end
  local page, matched, nxt, examined = scan(best.k, true, lo, hi, cur, offset, limit, budget, pred)
  out[1] = matched
  out[#out + 1] = examined
  out[#out + 1] = cursor_make(tag, nxt)
  for _, study in ipairs(page) do out[#out + 1] = redis.call('HGETALL', ikey(study)) end
  return out
end

if op == 'hospital' then -- hospital cursor offset limit; newest first
  local k = 'hr:wl:h:' .. ARGV[4]
  local cur, ok = cursor_parse(ARGV[5], 'h')
  if not ok then return INVAL end
  local page, total, nxt, examined = scan(k, false, -INF, INF, cur, tonumber(ARGV[6]),
    tonumber(ARGV[7]), 0, nil)
  local out = {total, examined, cursor_make('h', nxt)}
  for _, study in ipairs(page) do out[#out + 1] = redis.call('HGETALL', ikey(study)) end
  return out
end

return redis.error_reply('ERR unknown worklist operation ' .. tostring(op))
