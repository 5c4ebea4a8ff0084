-- Report deliveries (decision 0026; keys in docs/index-schema.md,
-- "Report deliveries"). One operation per EVAL, every key of one call in the
-- study's hash slot {S}: the global sets (hr:dlv:due, hr:dlv:pending,
-- hr:dlv:failing) are kept by reports/delivery.c with single-key commands
-- after the script, and are repaired by the next claim when a node stops in
-- between (the delivery hash is the truth, the sets only index it).
-- ARGV[1] operation, ARGV[2] now (ms), then its arguments.
local op, now = ARGV[1], tonumber(ARGV[2])

local function num(x) return string.format('%.0f', x) end

local function log(key, keep, outcome, attempt, detail)
  redis.call('RPUSH', key, table.concat({num(now), outcome, attempt, detail}, '\t'))
  redis.call('LTRIM', key, -keep, -1)
end

-- expand: KEYS[1] the report's index zset, then per channel its hash and
-- log; ARGV[3] report id, ARGV[4] version, ARGV[5] hospital, ARGV[6] log
-- kept, then per channel: name, control id. Creates the deliveries that do
-- not exist (state pending, due now); returns per channel
-- {created (0/1), state, next_ms, created_ms}.
if op == 'expand' then
  local report, version, hospital, keep = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
  local out = {}
  local nch = (#KEYS - 1) / 2
  for i = 1, nch do
    local h, l = KEYS[2 * i], KEYS[2 * i + 1]
    local ch, cid = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
    local st = redis.call('HMGET', h, 'state', 'next_ms', 'created_ms')
    if st[1] then
      out[#out + 1] = {0, st[1], st[2] or '0', st[3] or '0'}
    else
      redis.call('HSET', h, 'report', report, 'version', version, 'channel', ch,
        'hospital', hospital, 'state', 'pending', 'attempts', '0', 'next_ms', num(now),
        'created_ms', num(now), 'delivered_ms', '0', 'last_error', '', 'last_ms', '0',
        'control_id', cid, 'lease', '', 'lease_until', '0')
      redis.call('ZADD', KEYS[1], 'NX', num(now), version .. ':' .. ch)
      log(l, keep, 'queued', '0', 'to ' .. hospital)
      out[#out + 1] = {1, 'pending', num(now), num(now)}
    end
  end
  return out
end

-- claim: KEYS[1] the hash; ARGV[3] lease ms, ARGV[4] token. A pending
-- delivery that is due and not leased is leased to token:
-- {'ok', report, version, channel, hospital, attempts, control_id,
--  created_ms, lease_until}; else {'gone'} (absent or delivered),
-- {'later', next_ms} or {'leased', lease_until}.
if op == 'claim' then
  local f = redis.call('HMGET', KEYS[1], 'state', 'next_ms', 'lease_until', 'report', 'version',
    'channel', 'hospital', 'attempts', 'control_id', 'created_ms')
  if not f[1] or f[1] ~= 'pending' then return {'gone'} end
  local next_ms, lease_until = tonumber(f[2]) or 0, tonumber(f[3]) or 0
  if lease_until > now then return {'leased', num(lease_until)} end
  if next_ms > now then return {'later', num(next_ms)} end
  local until_ms = now + tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], 'lease', ARGV[4], 'lease_until', num(until_ms))
  return {'ok', f[4], f[5], f[6], f[7], f[8], f[9], f[10], num(until_ms)}
end

-- finish: KEYS[1] the hash, KEYS[2] its log; ARGV[3] token, ARGV[4] 1
-- delivered / 0 failed, ARGV[5] detail, ARGV[6] next attempt (ms, on
-- failure), ARGV[7] log kept. Every result is logged. A success counts
-- whoever held the lease (the receiver got it); a failure reschedules only
-- when token still holds the lease (else the holder decides).
-- Returns {state, attempts, next_ms, mine (1: the caller updates the sets)};
-- {'gone'} when absent.
if op == 'finish' then
  local f = redis.call('HMGET', KEYS[1], 'state', 'attempts', 'lease', 'next_ms')
  if not f[1] then return {'gone'} end
  local ok, detail, keep = ARGV[4] == '1', ARGV[5], tonumber(ARGV[7])
  local attempts = (tonumber(f[2]) or 0) + 1
  local mine = f[3] == ARGV[3]
  if f[1] ~= 'pending' then
    log(KEYS[2], keep, ok and 'delivered-again' or 'failed-late', num(attempts), detail)
    return {f[1], f[2], f[4] or '0', 0}
  end
  if ok then
    redis.call('HSET', KEYS[1], 'state', 'delivered', 'attempts', num(attempts),
      'delivered_ms', num(now), 'last_ms', num(now), 'lease', '', 'lease_until', '0',
      'next_ms', '0')
    log(KEYS[2], keep, 'delivered', num(attempts), detail)
    return {'delivered', num(attempts), '0', 1}
  end
  if not mine then
    log(KEYS[2], keep, 'failed-late', num(attempts), detail)
    return {'pending', f[2], f[4] or '0', 0}
  end
  redis.call('HSET', KEYS[1], 'attempts', num(attempts), 'last_error', detail,
    'last_ms', num(now), 'next_ms', ARGV[6], 'lease', '', 'lease_until', '0')
  log(KEYS[2], keep, 'failed', num(attempts), detail)
  return {'pending', num(attempts), ARGV[6], 1}
end

return redis.error_reply('unknown operation ' .. tostring(op))
