#!/usr/bin/env bash
# Event streams live only as long as their session (issue 8, section 6): a
# logout (token revoked), a token past its expiry time or a disabled user
# ends the stream within one heartbeat (15 s) with `event: end`; a user has at most 8 streams per node.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3

port=$(free_port)
cfg=$(write_config sse "$port")
U="http://127.0.0.1:$(http_port sse)"
adduser() { add_user "$cfg" "$@"; }
adduser tech1 'tech1-password-1' technician township1
adduser tech2 'tech2-password-1' technician township2
start_huren sse "$cfg"
wait_port "$(http_port sse)" 30
login() { login_token "$U" "$@"; }

# stream NAME TOKEN: an event stream in the background; its output in $T/NAME.sse
stream() {
  curl -s -N -H "Authorization: Bearer $2" "$U/api/v1/events" >"$T/$1.sse" 2>/dev/null &
  echo $!
}
ended_within() { # PID SECONDS: the client saw the end of the response
  for _ in $(seq 1 $(($2 * 10))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

# --- logout revokes the token: the stream ends
TA=$(login tech1 'tech1-password-1')
TB=$(login tech1 'tech1-password-1')
TE=$(login tech1 'tech1-password-1')
pa=$(stream a "$TA")
pb=$(stream b "$TB")
pe=$(stream e "$TE")
sleep 1
check "the streams are open" kill -0 "$pa"
# a token reaching its expiry time (the session's "expires" field, which the
# check at each heartbeat reads, set to the past instead of waiting out the
# shortest http.token_ttl_s, 60 s)
check "the third session's token expires" rcli sse HSET \
  "hr:tok:$(printf %s "$TE" | sha256sum | cut -d' ' -f1)" expires $(($(date +%s) - 1))
check_eq "logout of the first session" 204 "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TA" "$U/api/v1/logout")"
check "its stream ends within a heartbeat" ended_within "$pa" 20
check "with an end event saying why" grep -q 'event: end' "$T/a.sse"
check "the other session's stream stays open" kill -0 "$pb"
check "the expired session's stream ends within a heartbeat" ended_within "$pe" 20
check "with an end event" grep -q 'event: end' "$T/e.sse"
kill "$pb" 2>/dev/null || true

# --- a disabled user: every stream ends
TC=$(login tech2 'tech2-password-1')
pc=$(stream c "$TC")
sleep 1
check "huren user disable" "$HUREN" user disable tech2 --config "$cfg"
check "the disabled user's stream ends within a heartbeat" ended_within "$pc" 20
check "with an end event" grep -q 'event: end' "$T/c.sse"

# --- at most 8 streams per user and node
TD=$(login tech1 'tech1-password-1')
pids=()
for i in $(seq 1 8); do pids+=("$(stream "d$i" "$TD")"); done
sleep 1.5
code=$(curl -s -o "$T/ninth.json" -w '%{http_code}' -m 5 -H "Authorization: Bearer $TD" "$U/api/v1/events" || true)
check_eq "the ninth stream of one user is refused: 429" 429 "$code"
check_eq "with a JSON reason" too_many_streams "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"])' "$T/ninth.json")"
kill "${pids[0]}" 2>/dev/null || true
# the hub notices a vanished client at its next write (the heartbeat, 15 s)
ok=0
for _ in $(seq 1 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 -H "Authorization: Bearer $TD" "$U/api/v1/events" || true)
  # -m 2 ends a stream that was accepted: curl reports 200 then times out
  [ "$code" = 200 ] && { ok=1; break; }
  sleep 0.2
done
check "one closed, one may open again" test "$ok" = 1
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
