#!/usr/bin/env bash
# The browser session (issue 8, section 6; decision 0017): the login sets an
# HttpOnly, SameSite=Strict cookie holding the session token; it
# authenticates GETs (pages, EventSource, DICOMweb) like the bearer token;
# a POST authenticated by it needs X-Requested-With (CSRF); logout revokes
# the session and clears the cookie; a forged or overlong cookie is refused.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
cfg=$(write_config ck "$port")
U="http://127.0.0.1:$(http_port ck)"
printf 'tech1-password-1\n' | "$HUREN" user add tech1 --role technician --hospital township1 --config "$cfg" >/dev/null
# a reader made under a configuration where the imaging center was township1's;
# the hub now runs it at the county: the account no longer fits
/usr/bin/python3 - "$cfg" "$T/cfg-old.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["centers"] = [{"id": "imaging", "kind": "imaging", "hospital": "township1"}]
c["routing"] = {"rules": [], "default": {"center": "imaging", "priority": "routine"}}
json.dump(c, open(sys.argv[2], "w"))
PY
printf 'reader-password-1\n' | "$HUREN" user add rold --role reader --hospital township1 --center imaging --config "$T/cfg-old.json" >/dev/null
start_huren ck "$cfg"
wait_port "$(http_port ck)" 30
J=$T/jar

check_eq "a reader whose center is now another hospital's cannot log in: 403" 403 \
  "$(curl -s -o "$T/mis.json" -w '%{http_code}' -X POST "$U/api/v1/login" -d '{"user": "rold", "password": "reader-password-1"}')"
check "saying why" grep -q 'account_misconfigured.*belongs to hospital county, not township1' "$T/mis.json"
check "and no cookie or token was issued" bash -c "! grep -q token '$T/mis.json'"

hdrs=$(curl -s -D - -o /dev/null -c "$J" -X POST "$U/api/v1/login" -d '{"user": "tech1", "password": "tech1-password-1"}')
cookie=$(grep -i '^set-cookie: huren_session=' <<<"$hdrs" | tr -d '\r')
check "the login sets the session cookie" test -n "$cookie"
check "HttpOnly" grep -q '; HttpOnly' <<<"$cookie"
check "SameSite=Strict" grep -q '; SameSite=Strict' <<<"$cookie"
check "Path=/ and a lifetime" grep -q '; Path=/; Max-Age=28800' <<<"$cookie"
check "no Secure flag on plain HTTP (it would never be sent back)" bash -c "! grep -q Secure <<<'$cookie'"
code() { curl -s -o "$T/out" -w '%{http_code}' "$@"; }
check_eq "GET with the cookie alone is authenticated" 200 "$(code -b "$J" "$U/api/v1/me")"
check "as the user" grep -q '"user": *"tech1"' "$T/out"
check_eq "DICOMweb with the cookie alone" 200 "$(code -b "$J" "$U/dicomweb/studies")"
check_eq "an event stream with the cookie alone (EventSource)" 200 "$(code -m 2 -b "$J" "$U/api/v1/events" || true)"
S=1.2.826.0.1.3680043.2.1125.424242
check_eq "a POST with the cookie and no X-Requested-With: 403" 403 "$(code -X POST -b "$J" "$U/api/v1/exams/$S/complete")"
check "csrf named" grep -q '"csrf"' "$T/out"
check "a POST with X-Requested-With passes the check (404: no such exam)" \
  test "$(code -X POST -b "$J" -H 'X-Requested-With: huren' "$U/api/v1/exams/$S/complete")" != 403
check_eq "a forged cookie: 401" 401 "$(code -b 'huren_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' "$U/api/v1/me")"
check_eq "an overlong cookie: 401" 401 "$(code -b "huren_session=$(head -c 5000 /dev/zero | tr '\0' A)" "$U/api/v1/me")"
check_eq "other cookies around it are ignored" 200 "$(code -H "Cookie: a=b; $(sed -n 's/.*\(huren_session=[^;]*\).*/\1/p' <<<"$cookie"); c=d" "$U/api/v1/me")"
hdrs=$(curl -s -D - -o /dev/null -b "$J" -c "$J" -X POST -H 'X-Requested-With: huren' "$U/api/v1/logout")
check "logout answers 204" grep -q '^HTTP/1.1 204' <<<"$hdrs"
check "and clears the cookie" grep -qi '^set-cookie: huren_session=; Path=/; Max-Age=0' <<<"$hdrs"
old=$(sed -n 's/.*\(huren_session=[^;]*\).*/\1/p' <<<"$cookie")
check_eq "the old cookie no longer works (revoked)" 401 "$(code -H "Cookie: $old" "$U/api/v1/me")"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
