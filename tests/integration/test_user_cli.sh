#!/usr/bin/env bash
# huren user: accounts made with no server running (the command starts and
# stops the embedded redis itself), then while huren serve runs (the command
# uses the server's redis); passwords from stdin and from a terminal.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
cfg=$(write_config users "$port")
data=$T/users/data

# stored hash = PBKDF2-HMAC-SHA256(password, salt, iter): verify <user> <password>
verify() {
  local name=$1 pw=$2 salt hash iter
  salt=$(rcli_raw users HGET "hr:user:$name" salt)
  hash=$(rcli_raw users HGET "hr:user:$name" hash)
  iter=$(rcli_raw users HGET "hr:user:$name" iter)
  python3 -c 'import hashlib,sys; pw,salt,it,h=sys.argv[1:]; sys.exit(0 if hashlib.pbkdf2_hmac("sha256", pw.encode(), bytes.fromhex(salt), int(it)).hex()==h else 1)' \
    "$pw" "$salt" "$iter" "$hash"
}

# --- no server running: the data directory does not even exist yet
out=$(printf 'first password 1\n' | "$HUREN" user add alice --role reader --hospital county \
  --center imaging --display-name "李医生" --config "$cfg" 2>&1) && st=0 || st=$?
check_eq "add with password on stdin, no server running: exit 0" 0 "$st"
check "add says what it did" grep -q "user alice added: reader at county, center imaging" <<<"$out"
check "the data directory was created" test -d "$data/redis"
check "the embedded redis it started is not answering any more" \
  bash -c "! redis-cli -s '$data/redis/redis.sock' ping >/dev/null 2>&1"
check "and was shut down cleanly (its pid file removed)" test ! -e "$data/redis/redis.pid"
check "its AOF holds the user" grep -q "hr:user:alice" -r "$data/redis"
check "the data-dir lock is free again" flock -n "$data/huren.lock" true

out=$("$HUREN" user list --config "$cfg" 2>&1)
echo "$out"
check "list has a header" grep -q "^NAME  *ROLE  *HOSPITAL  *CENTER  *DISABLED" <<<"$out"
check "list shows alice (persisted across redis restarts)" \
  grep -Eq "^alice +reader +county +imaging +no +李医生$" <<<"$out"

# --- refusals: exit 2 for invalid input, 1 for state, nothing written
expect_fail() { # expect_fail "description" status pattern command...
  local d=$1 want=$2 pat=$3 o s; shift 3
  o=$("$@" 2>&1) && s=0 || s=$?
  if [ "$s" = "$want" ] && grep -q -- "$pat" <<<"$o"; then pass "$d"; else fail "$d: exit $s: $o"; fi
}
expect_fail "dicom-peer is not a user role" 2 "role" \
  bash -c "echo 'long enough password' | '$HUREN' user add p1 --role dicom-peer --hospital county --config '$cfg'"
expect_fail "unknown hospital refused" 2 'hospital: "atlantis"' \
  bash -c "echo 'long enough password' | '$HUREN' user add p1 --role technician --hospital atlantis --config '$cfg'"
expect_fail "reader without a center refused" 2 "center" \
  bash -c "echo 'long enough password' | '$HUREN' user add p1 --role reader --hospital county --config '$cfg'"
expect_fail "an unknown center refused" 2 'center: "nowhere" is not a configured center' \
  bash -c "echo 'long enough password' | '$HUREN' user add p1 --role reader --hospital county --center nowhere --config '$cfg'"
expect_fail "a center of another hospital refused" 2 'center: "imaging" belongs to hospital county, not township1' \
  bash -c "echo 'long enough password' | '$HUREN' user add p1 --role reader --hospital township1 --center imaging --config '$cfg'"
expect_fail "invalid name refused" 2 "name" \
  bash -c "echo 'long enough password' | '$HUREN' user add 'Bad Name' --role technician --hospital county --config '$cfg'"
expect_fail "password of 9 bytes refused" 2 "at least 10" \
  bash -c "echo '123456789' | '$HUREN' user add p1 --role technician --hospital county --config '$cfg'"
expect_fail "no password on stdin refused" 2 "no password" \
  bash -c "'$HUREN' user add p1 --role technician --hospital county --config '$cfg' </dev/null"
expect_fail "an existing user is not replaced" 1 "already exists" \
  bash -c "echo 'other password 2' | '$HUREN' user add alice --role admin --hospital county --config '$cfg'"
expect_fail "unknown subcommand" 2 "unknown command" "$HUREN" user frobnicate --config "$cfg"
expect_fail "missing name" 2 "NAME missing" "$HUREN" user disable --config "$cfg"

# --- with huren serve running: the command uses the server's redis
start_huren users "$cfg"
out=$(printf 'second password 2\n' | "$HUREN" user add bob --role technician --hospital township1 \
  --config "$cfg" 2>&1) && st=0 || st=$?
check_eq "add while serve runs: exit 0 ($out)" 0 "$st"
check_eq "bob is in the server's redis" technician "$(rcli users HGET hr:user:bob role)"
check_eq "alice too (same database)" reader "$(rcli users HGET hr:user:alice role)"
check_eq "p1 was never written" 0 "$(rcli users EXISTS hr:user:p1)"
check "the password is not stored in clear" bash -c "! redis-cli -s '$data/redis/redis.sock' --raw HGETALL hr:user:bob | grep -q 'second password'"
check "the stored hash is PBKDF2 of bob's password" verify bob "second password 2"
check "alice's hash verifies against her password" verify alice "first password 1"
check "the server is still serving DICOM" echoscu -aet TOWNSHIP1 -aec HUREN 127.0.0.1 "$port"

# a terminal: asked twice, without echo
out=$(python3 - "$HUREN" "$cfg" <<'PY'
import os, pty, sys, time
huren, cfg = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(huren, [huren, "user", "add", "carol", "--role", "admin", "--hospital", "county", "--config", cfg])
def read_until(s, limit=20):
    buf = b""; end = time.time() + limit
    while s.encode() not in buf and time.time() < end:
        try: buf += os.read(fd, 1024)
        except OSError: break
    return buf.decode(errors="replace")
seen = read_until("New password for carol:")
os.write(fd, b"terminal password 3\n")
seen += read_until("Repeat the password:")
os.write(fd, b"terminal password 3\n")
seen += read_until("added")
end = time.time() + 30  # bounded: a child that hangs is killed and fails the check
while True:
    done, st = os.waitpid(pid, os.WNOHANG)
    if done or time.time() > end:
        break
    time.sleep(0.1)
if not done:
    os.kill(pid, 9)
    _, st = os.waitpid(pid, 0)
print(seen.replace("\r", ""))
print("EXIT", os.waitstatus_to_exitcode(st))
PY
)
check "terminal: prompted twice, exit 0" grep -q "EXIT 0" <<<"$out"
check "terminal: the password is not echoed" bash -c "! grep -q 'terminal password' <<<'$out'"
check "terminal: carol's hash verifies" verify carol "terminal password 3"

out=$("$HUREN" user disable bob --config "$cfg" 2>&1) && st=0 || st=$?
check_eq "disable: exit 0 ($out)" 0 "$st"
check_eq "bob is disabled" 1 "$(rcli users HGET hr:user:bob disabled)"
check "list shows bob disabled" bash -c "'$HUREN' user list --config '$cfg' | grep -Eq '^bob +technician +township1 +- +yes'"
expect_fail "disable of an unknown user" 1 'no user "nobody"' "$HUREN" user disable nobody --config "$cfg"
check_eq "no hash made for nobody" 0 "$(rcli users EXISTS hr:user:nobody)"
old=$(rcli_raw users HGET hr:user:alice hash)
out=$(printf 'changed password 4\n' | "$HUREN" user passwd alice --config "$cfg" 2>&1) && st=0 || st=$?
check_eq "passwd: exit 0 ($out)" 0 "$st"
check "passwd: a new hash" test "$old" != "$(rcli_raw users HGET hr:user:alice hash)"
check "passwd: the new password verifies" verify alice "changed password 4"
check "graceful stop exits 0" stop_huren "$HUREN_PID"

# --- after the server stopped: everything persisted (AOF of the embedded redis)
out=$("$HUREN" user list --config "$cfg" 2>&1)
check_eq "three users listed after the restart" 3 "$(grep -Ec '^(alice|bob|carol) ' <<<"$out")"
check "bob still disabled" grep -Eq '^bob .* yes' <<<"$out"
out=$("$HUREN" user enable bob --config "$cfg" 2>&1) && st=0 || st=$?
check_eq "enable without a server: exit 0 ($out)" 0 "$st"
check "bob enabled" bash -c "'$HUREN' user list --config '$cfg' | grep -Eq '^bob .* no'"
# accounts are not derived from the object files: a flushed index keeps them
check "reindex --flush runs" "$HUREN" reindex --flush --config "$cfg"
check_eq "users survive reindex --flush" 3 "$("$HUREN" user list --config "$cfg" 2>&1 | grep -Ec '^(alice|bob|carol) ')"
finish
