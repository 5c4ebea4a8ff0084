#!/usr/bin/env bash
# The web application's files, libraries and OHIF served by huren (issue 10,
# decision 0028): the right media types and security headers, OHIF rebased
# to /viewer/ with a configuration generated per session, and nothing outside
# web.root reachable by any path: traversal, escapes, hidden files, other
# packages, symbolic links out of the root, file types not served.
source "$(dirname "$0")/lib.sh"
SRC=${HUREN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}

# a web root of our own, with a link that leads out of it
W=$T/webroot
mkdir -p "$W/app/pages" "$W/share" "$W/node_modules/preact/dist" "$W/node_modules/jose" "$W/vendor"
echo '<!doctype html><title>app</title>' > "$W/app/index.html"
echo 'export const x = 1;' > "$W/app/pages/a.js"
echo 'secret' > "$W/app/.hidden.js"
echo 'echo no' > "$W/app/run.sh"
echo '<!doctype html><title>share</title>' > "$W/share/index.html"
echo 'export default 1;' > "$W/node_modules/preact/dist/preact.module.js"
echo 'export default 2;' > "$W/node_modules/jose/index.js"
echo 'outside' > "$T/outside.js"
ln -s "$T/outside.js" "$W/app/link.js"
ln -s "$T" "$W/app/up"

port=$(free_port)
cfg=$(write_config ws "$port")
/usr/bin/python3 - "$cfg" "$W" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["web"] = {"root": sys.argv[2]}
json.dump(c, open(sys.argv[1], "w"))
PY
add_user "$cfg" tech1 tech1-password-1 technician township1
add_user "$cfg" admin1 admin1-password-1 admin county
start_huren ws "$cfg"
wait_port "$(http_port ws)" 30
U="http://127.0.0.1:$(http_port ws)"
code() { curl -s -o "$T/out" -D "$T/hdr" -w '%{http_code}' "$@"; }

check_eq "/ is the application's page" 200 "$(code "$U/")"
check "as HTML" grep -qi '^content-type: text/html; charset=utf-8' "$T/hdr"
check "its content" grep -q '<title>app</title>' "$T/out"
check "with a strict Content-Security-Policy (no inline script)" \
  grep -qi "^content-security-policy: default-src 'self'; script-src 'self';" "$T/hdr"
check "nosniff" grep -qi '^x-content-type-options: nosniff' "$T/hdr"
check "no Referer leaves the page" grep -qi '^referrer-policy: no-referrer' "$T/hdr"
check "revalidated (no-cache) with an ETag" bash -c "grep -qi '^cache-control: no-cache' '$T/hdr' && grep -qi '^etag: \"' '$T/hdr'"
etag=$(sed -n 's/^[Ee][Tt][Aa][Gg]: \(.*\)\r$/\1/p' "$T/hdr")
check_eq "If-None-Match with it: 304" 304 "$(code -H "If-None-Match: $etag" "$U/")"
check_eq "a page module" 200 "$(code "$U/app/pages/a.js")"
check "as JavaScript" grep -qi '^content-type: text/javascript' "$T/hdr"
check_eq "HEAD works" 200 "$(curl -s -o /dev/null -w '%{http_code}' -I "$U/app/pages/a.js")"
check_eq "POST to a page: 405" 405 "$(code -X POST "$U/app/pages/a.js")"
check_eq "a share link opens the share page" 200 "$(code "$U/s/abcDEF123_-")"
check "the share page itself" grep -q '<title>share</title>' "$T/out"
check_eq "an allowed library" 200 "$(code "$U/vendor/preact/dist/preact.module.js")"
check "kept a day" grep -qi '^cache-control: public, max-age=86400' "$T/hdr"
check_eq "another package under node_modules: 404" 404 "$(code "$U/vendor/jose/index.js")"
check_eq "a hidden file: 404" 404 "$(code "$U/app/.hidden.js")"
check_eq "a file type not served (.sh): 404" 404 "$(code "$U/app/run.sh")"
check_eq "a link out of the root: 404" 404 "$(code "$U/app/link.js")"
check_eq "a directory link out of the root: 404" 404 "$(code "$U/app/up/outside.js")"
check_eq "../ traversal: 404" 404 "$(code --path-as-is "$U/app/../../outside.js")"
check_eq "encoded traversal: 404" 404 "$(code --path-as-is "$U/app/%2e%2e/%2e%2e/outside.js")"
check_eq "an encoded slash: 404" 404 "$(code --path-as-is "$U/vendor/preact%2fdist/preact.module.js")"
check_eq "a double slash: 404" 404 "$(code --path-as-is "$U/app//pages/a.js")"
check_eq "a directory: 404" 404 "$(code "$U/app/pages.js")"
check_eq "a long path: 404" 404 "$(code "$U/app/$(head -c 3000 /dev/zero | tr '\0' a).js")"
check "every refusal is the same JSON 404" grep -q '"not_found"' "$T/out"
check_eq "the API is not shadowed: /api/v1/me without a session is 401" 401 "$(code "$U/api/v1/me")"
check_eq "nor DICOMweb" 401 "$(code "$U/dicomweb/studies")"
check_eq "the viewer is absent from this root: 404" 404 "$(code "$U/viewer/")"
check "graceful stop exits 0" stop_huren "$HUREN_PID"

# the source tree's web/ (the default root): the libraries and OHIF
port=$(free_port)
cfg=$(write_config wv "$port")
add_user "$cfg" tech1 tech1-password-1 technician township1
add_user "$cfg" read1 read1-password-1 reader county imaging
start_huren wv "$cfg"
wait_port "$(http_port wv)" 30
U="http://127.0.0.1:$(http_port wv)"
check_eq "preact from web/node_modules" 200 "$(code "$U/vendor/preact/dist/preact.module.js")"
check_eq "echarts" 200 "$(code "$U/vendor/echarts/dist/echarts.esm.min.js")"
check_eq "OHIF at /viewer/" 200 "$(code "$U/viewer/")"
check "rebased to /viewer/" grep -q 'window.PUBLIC_URL="/viewer/"' "$T/out"
check "its links too" bash -c "! grep -q 'src=\"/[a-z]' '$T/out' || grep -q 'src=\"/viewer/app.bundle' '$T/out'"
check "the viewer's own CSP (WebAssembly codecs, this origin only)" \
  grep -qi "^content-security-policy: default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval' blob:" "$T/hdr"
check_eq "an OHIF route is its page" 200 "$(code "$U/viewer/viewer?StudyInstanceUIDs=1.2.3")"
check "the same index" grep -q 'window.PUBLIC_URL="/viewer/"' "$T/out"
bundle=$(grep -o 'src="/viewer/app.bundle[^"]*"' "$T/out" | head -1 | sed 's/src="//; s/"$//')
check_eq "its bundle" 200 "$(code "$U$bundle")"
check "as JavaScript" grep -qi '^content-type: text/javascript' "$T/hdr"
wasm=$(cd "$SRC/web/vendor/ohif" && ls *.wasm | head -1)
check_eq "a WebAssembly codec" 200 "$(code "$U/viewer/$wasm")"
check "as application/wasm" grep -qi '^content-type: application/wasm' "$T/hdr"
check_eq "the demo configuration is not shipped: the generated one needs a session (401)" 401 \
  "$(code "$U/viewer/app-config.js")"
J=$T/jar
curl -s -o /dev/null -c "$J" -X POST "$U/api/v1/login" -d '{"user": "read1", "password": "read1-password-1"}'
check_eq "a reader's configuration" 200 "$(code -b "$J" "$U/viewer/app-config.js")"
check "DICOMweb at this origin" grep -q "qidoRoot: 'http://127.0.0.1:$(http_port wv)/dicomweb'" "$T/out"
check "with the study list (a reader browses the center's studies)" grep -q 'showStudyList: true' "$T/out"
check "never cached" grep -qi '^cache-control: no-store' "$T/hdr"
sess=$(awk '$6 == "huren_session" {print $7}' "$J")
check_eq "a forged Host cannot write into the script" 200 \
  "$(code -H "Cookie: huren_session=$sess" -H "Host: x');alert(1);('" "$U/viewer/app-config.js")"
check "the roots stay relative" grep -q "qidoRoot: '/dicomweb'" "$T/out"
check "nothing of the Host" bash -c "! grep -q alert '$T/out'"
curl -s -o /dev/null -c "$J" -X POST "$U/api/v1/login" -d '{"user": "tech1", "password": "tech1-password-1"}'
check_eq "a technician's configuration" 200 "$(code -b "$J" "$U/viewer/app-config.js")"
check "without the study list" grep -q 'showStudyList: false' "$T/out"
check "graceful stop exits 0" stop_huren "$HUREN_PID"
finish
