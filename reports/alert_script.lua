-- Critical-value alerts (reports/alert.h, decision 0040): one call per
-- transition, every key in the exam's slot (KEYS[1] the alert hash, KEYS[2]
-- its step log). The global indexes are written by reports/alert.c after
-- the call (docs/index-schema.md, "Critical value alerts"). The event goes
-- to the node's event stream hr:wl:events (as the worklist's), which the
-- SSE readers of every node follow.
local h, logk = KEYS[1], KEYS[2]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local KEEP = 200
local EVENTS_KEEP = 100000

local function num(x) return string.format('%d', x) end

local function hgetall(k)
  local a = redis.call('HGETALL', k)
  local t = {}
  for i = 1, #a, 2 do t[a[i]] = a[i + 1] end
  return t
end

local function log(entry)
  entry.at = now
  redis.call('RPUSH', logk, cjson.encode(entry))
  redis.call('LTRIM', logk, -KEEP, -1)
end

local function event(a, typ)
  local id = redis.call('XADD', 'hr:wl:events', 'MAXLEN', '~', EVENTS_KEEP, '*', 'type', typ,
    'study', a.exam, 'center', a.center or '', 'hospital', a.hospital or '', 'user',
    a.target or '', 'reader', a.id, 'priority', '', 'state', a.state, 'time', num(now))
  redis.call('PUBLISH', 'hr:wl:notify', id)
end

-- The step's channels, comma separated ("" when none), and whether sse is one.
local function channels(steps, i)
  local s = steps[i + 1]
  if not s then return '', false end
  local out, sse = {}, false
  for _, c in ipairs(s.channels or {}) do
    if c == 'sse' then sse = true else out[#out + 1] = c end
  end
  return table.concat(out, ','), sse
end

-- A step begins: its target is told through the event stream (sse) now,
-- the other channels by the notifier.
local function begin_step(a, steps, typ, extra)
  local s = steps[tonumber(a.step) + 1]
  a.target = s and s.user or ''
  local chs, sse = channels(steps, tonumber(a.step))
  if sse then a.state = 'notified' end
  redis.call('HSET', h, 'target', a.target, 'state', a.state, 'step', a.step,
    'deadline_ms', a.deadline_ms)
  local e = extra or {}
  e.event, e.step, e.user = typ, tonumber(a.step), a.target
  e.name, e.role = s and s.name or '', s and s.role or ''
  log(e)
  if sse then
    log({event = 'notify', step = tonumber(a.step), channel = 'sse', ok = true,
         user = a.target, detail = 'published on the event stream'})
  end
  event(a, 'alert.' .. typ)
  return chs
end

if op == 'raise' then
  -- ARGV: op now steps_json timeout_ms n k1 v1 ... kn vn
  if redis.call('EXISTS', h) == 1 then
    local a = hgetall(h)
    return {'exists', a.state or '', a.deadline_ms or '0', a.target or '', a.hospital or '',
      a.center or '', a.step or '0'}
  end
  local steps_json, timeout = ARGV[3], tonumber(ARGV[4])
  local n = tonumber(ARGV[5])
  local a = {}
  for i = 0, n - 1 do
    a[ARGV[6 + 2 * i]] = ARGV[7 + 2 * i]
    redis.call('HSET', h, ARGV[6 + 2 * i], ARGV[7 + 2 * i])
  end
  a.state, a.step, a.deadline_ms = 'raised', '0', num(now + timeout)
  redis.call('HSET', h, 'steps', steps_json, 'timeout_ms', num(timeout), 'created_ms', num(now),
    'escalations', '0', 'readback_refused', '0', 'acked_ms', '0', 'final_ms', '0')
  local steps = cjson.decode(steps_json)
  local chs = begin_step(a, steps, 'raised', {value = a.value, flag = a.flag, item = a.item})
  return {'created', a.state, a.deadline_ms, a.target, chs}
end

if redis.call('EXISTS', h) == 0 then return {'gone'} end
local a = hgetall(h)

if op == 'ack' then
  -- ARGV: op now user hospital readback match
  local user, hosp, rb, match = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  if a.state == 'acknowledged' then return {'already', a.acked_by or ''} end
  if hosp ~= a.hospital and user ~= a.target then return {'forbidden'} end
  if match ~= '1' then
    redis.call('HINCRBY', h, 'readback_refused', 1)
    log({event = 'readback_refused', user = user, readback = rb})
    return {'readback', a.hospital}
  end
  local in_time = (tonumber(a.final_ms) == 0 and now <= tonumber(a.deadline_ms)) and 1 or 0
  a.state = 'acknowledged'
  a.target = user
  redis.call('HSET', h, 'state', a.state, 'acked_ms', num(now), 'acked_by', user,
    'acked_hospital', hosp, 'acked_readback', rb, 'acked_in_time', num(in_time))
  log({event = 'acknowledged', user = user, hospital = hosp, readback = rb,
       step = tonumber(a.step), in_time = in_time == 1})
  event(a, 'alert.acked')
  return {'ok', num(in_time), a.hospital}
end

if op == 'escalate' then
  if a.state == 'acknowledged' or a.state == 'overdue_final' then return {'done'} end
  if tonumber(a.deadline_ms) > now then return {'later', a.deadline_ms} end
  local steps = cjson.decode(a.steps)
  local step = tonumber(a.step) + 1
  if step < #steps then
    a.step = num(step)
    a.state = 'escalated'
    a.deadline_ms = num(now + tonumber(a.timeout_ms))
    redis.call('HINCRBY', h, 'escalations', 1)
    local chs = begin_step(a, steps, 'escalated')
    return {'escalated', a.step, a.target, a.deadline_ms, chs, a.hospital}
  end
  a.state = 'overdue_final'
  redis.call('HSET', h, 'state', a.state, 'final_ms', num(now))
  log({event = 'overdue_final', step = tonumber(a.step), user = a.target or ''})
  event(a, 'alert.final')
  return {'final', a.hospital}
end

if op == 'notified' then
  -- ARGV: op now step channel ok detail attempt
  local step, ch, ok, detail, attempt = tonumber(ARGV[3]), ARGV[4], ARGV[5] == '1', ARGV[6],
    tonumber(ARGV[7])
  log({event = 'notify', step = step, channel = ch, ok = ok, detail = detail, attempt = attempt,
       user = a.target or ''})
  if ok and step == tonumber(a.step) and (a.state == 'raised' or a.state == 'escalated') then
    redis.call('HSET', h, 'state', 'notified')
    a.state = 'notified'
  end
  return {a.state, a.step}
end

return redis.error_reply('alert_script: unknown op ' .. tostring(op))
