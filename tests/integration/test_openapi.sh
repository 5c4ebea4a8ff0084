#!/usr/bin/env bash
# docs/openapi.yaml against the code: scripts/check-openapi (every route of
# k_routes documented, nothing else), the checker's own failures on broken
# copies, and the spec's OpenAPI structure (version, info, operations with
# responses, path parameters declared, $refs resolving, security, error
# schema, QIDO paging bounds equal to qido.c's). No server is started.
source "$(dirname "$0")/lib.sh"

CHECK=$SRC/scripts/check-openapi
SPEC=$SRC/docs/openapi.yaml
CSRC=$SRC/viewer-api/http_server.c

check "the spec exists" test -s "$SPEC"
check "scripts/check-openapi is executable" test -x "$CHECK"
out=$("$CHECK" 2>&1) && st=0 || st=$?
echo "$out" | sed 's/^/    /'
check_eq "check-openapi: spec and k_routes agree" 0 "$st"
out=$(CHECK_OPENAPI_NO_YAML=1 "$CHECK" 2>&1) && st=0 || st=$?
check_eq "check-openapi agrees without PyYAML too (line mode)" 0 "$st"

# ---- the checker fails, naming the pair, on broken copies ----
# the spec without GET /dicomweb/series and with a DELETE /healthz
sed -e 's#^  /dicomweb/series:#  /dicomweb/series-renamed:#' \
  -e 's#^  /healthz:#  /healthz:\n    delete:\n      responses: {"204": {description: gone}}#' \
  "$SPEC" >"$T/broken.yaml"
for mode in yaml line; do
  out=$(if [ $mode = line ]; then export CHECK_OPENAPI_NO_YAML=1; fi
        "$CHECK" "$T/broken.yaml" 2>&1) && st=0 || st=$?
  check_eq "[$mode] a route missing from the spec fails the check" 1 "$st"
  check "[$mode] ... naming GET /dicomweb/series" grep -q "missing from the spec: GET /dicomweb/series " <<<"$out"
  check "[$mode] ... and the undocumented DELETE /healthz" grep -q "not served by the code: DELETE /healthz" <<<"$out"
done
# the code with a route the spec lacks: named the OpenAPI way
sed 's#^\(\s*\){"GET", "/healthz",#\1{"POST", "/dicomweb/studies/{}/series/{}/reject", 0, va_handle_qido, "qido"},\n&#' \
  "$CSRC" >"$T/http_server.c"
check "the copied k_routes gained a route" grep -q '/reject"' "$T/http_server.c"
out=$("$CHECK" "$SPEC" "$T/http_server.c" 2>&1) && st=0 || st=$?
check_eq "a new route in k_routes fails the check" 1 "$st"
check "... naming POST /dicomweb/studies/{study}/series/{series}/reject" \
  grep -q "missing from the spec: POST /dicomweb/studies/{study}/series/{series}/reject" <<<"$out"
# renamed path parameters still match: {} is compared by position
sed 's#{study}#{studyUID}#g' "$SPEC" >"$T/renamed.yaml"
check "path parameter names do not matter to the route check" \
  bash -c '"$0" "$1" >/dev/null' "$CHECK" "$T/renamed.yaml"
# a YAML syntax error
printf 'openapi: 3.0.3\npaths: [\n' >"$T/syntax.yaml"
if "$CHECK" "$T/syntax.yaml" >/dev/null 2>&1; then st=0; else st=$?; fi
yaml_py=""
for cand in python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import yaml' >/dev/null 2>&1; then
    yaml_py=$cand
    break
  fi
done
if [ -n "$yaml_py" ]; then
  check_eq "a spec that does not parse fails the check" 1 "$st"
  # the public routes must opt out of security, the others must not
  sed '/^  \/healthz:/,/^  \/metrics:/{/^      security: \[\]$/d}' "$SPEC" >"$T/nosec.yaml"
  out=$("$CHECK" "$T/nosec.yaml" 2>&1) && st=0 || st=$?
  check_eq "a public route without security: [] fails the check" 1 "$st"
  check "... naming GET /healthz" grep -q "GET /healthz needs no token" <<<"$out"
else
  echo "skip - YAML syntax and security checks: no python3 with PyYAML (Debian python3-yaml)"
fi

# ---- OpenAPI structure ----
if [ -z "$yaml_py" ]; then
  echo "skip - structural checks of the spec: no python3 with PyYAML (Debian python3-yaml)"
else
  while IFS= read -r line; do
    case $line in
      "ok "*) pass "${line#ok }" ;;
      "FAIL "*) fail "${line#FAIL }" ;;
      "skip "*) echo "$line" ;;
      *) echo "    $line" ;;
    esac
  done < <("$yaml_py" - "$SPEC" "$SRC/viewer-api/qido.c" <<'PY' 2>&1 || echo "FAIL structural checker crashed"
import re
import sys

import yaml

spec_path, qido_c = sys.argv[1], sys.argv[2]
doc = yaml.safe_load(open(spec_path, encoding="utf-8"))
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def check(desc, cond, why=""):
    print(("ok " if cond else "FAIL ") + desc + ("" if cond or not why else ": " + why))


def resolve(node, seen=0):
    """Follows local $refs; None when one does not resolve."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or seen > 20:
            return None
        node = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        seen += 1
    return node


check("openapi is 3.0.x", re.match(r"^3\.0\.\d+$", str(doc.get("openapi", ""))) is not None,
      repr(doc.get("openapi")))
info = doc.get("info") or {}
check("info has title and version", bool(info.get("title")) and bool(info.get("version")))
check("info.description mentions the CORS preflight (OPTIONS)",
      "OPTIONS" in info.get("description", "") and "Access-Control-Allow-Origin" in info.get("description", ""))
paths = doc.get("paths") or {}
check("paths is a non-empty mapping", isinstance(paths, dict) and len(paths) > 0)

schemes = (doc.get("components") or {}).get("securitySchemes") or {}
ba = schemes.get("bearerAuth") or {}
check("securitySchemes.bearerAuth is http bearer",
      ba.get("type") == "http" and str(ba.get("scheme", "")).lower() == "bearer")
check("bearerAuth applies globally", doc.get("security") == [{"bearerAuth": []}], repr(doc.get("security")))
tags = {t.get("name") for t in doc.get("tags") or []}
check("tags session, dicomweb, operations are declared", {"session", "dicomweb", "operations"} <= tags,
      repr(sorted(tags)))

# every $ref anywhere resolves
bad_refs = []


def walk(node):
    if isinstance(node, dict):
        if "$ref" in node and resolve(node) is None:
            bad_refs.append(node["$ref"])
        for v in node.values():
            walk(v)
    elif isinstance(node, list):
        for v in node:
            walk(v)


walk(doc)
check("every $ref resolves", not bad_refs, ", ".join(sorted(set(bad_refs))))

op_ids, problems = [], []
n_ops = 0
for path, item in paths.items():
    if not str(path).startswith("/"):
        problems.append("%s: a path must start with /" % path)
        continue
    names = re.findall(r"\{([^}/]+)\}", path)
    item_params = [resolve(p) or {} for p in item.get("parameters") or []]
    for method, op in item.items():
        if method not in METHODS:
            continue
        n_ops += 1
        where = "%s %s" % (method.upper(), path)
        if not isinstance(op, dict):
            problems.append(where + ": not a mapping")
            continue
        if op.get("operationId"):
            op_ids.append(op["operationId"])
        else:
            problems.append(where + ": no operationId")
        if not op.get("tags") or not set(op["tags"]) <= tags:
            problems.append(where + ": tags %r not declared" % op.get("tags"))
        responses = op.get("responses")
        if not isinstance(responses, dict) or not responses:
            problems.append(where + ": no responses")
            continue
        for code, resp in responses.items():
            if not re.match(r"^([1-5][0-9][0-9]|[1-5]XX|default)$", str(code)):
                problems.append("%s: response code %r" % (where, code))
            r = resolve(resp)
            if not isinstance(r, dict) or not r.get("description"):
                problems.append("%s %s: response without description" % (where, code))
                continue
            if "X-Request-Id" not in (r.get("headers") or {}):
                problems.append("%s %s: no X-Request-Id header" % (where, code))
            # errors are JSON Error documents, except /healthz's 503 (Health)
            # and STOW's 409 (a Store Instances Response with the failures)
            stow409 = method == "post" and str(code) == "409"
            if str(code).startswith(("4", "5")) and path != "/healthz" and not stow409:
                js = (r.get("content") or {}).get("application/json")
                if not js or resolve(js.get("schema")) is not resolve({"$ref": "#/components/schemas/Error"}):
                    problems.append("%s %s: error response is not application/json Error" % (where, code))
        # public operations (security: []) authenticate nothing: no 401
        if op.get("security") != []:
            if "401" not in responses:
                problems.append(where + ": authenticated operation without 401")
        params = item_params + [resolve(p) or {} for p in op.get("parameters") or []]
        declared = {p.get("name") for p in params if p.get("in") == "path"}
        for n in names:
            if n not in declared:
                problems.append("%s: path parameter {%s} not declared" % (where, n))
        for p in params:
            if p.get("in") == "path" and (p.get("name") not in names or p.get("required") is not True):
                problems.append("%s: path parameter %s not in the path or not required"
                                % (where, p.get("name")))
        for p in params:
            if p.get("in") == "header" and str(p.get("name", "")).lower() in ("accept", "content-type", "authorization"):
                problems.append("%s: header parameter %s is ignored by OpenAPI; describe it instead"
                                % (where, p.get("name")))
for p in problems:
    print("    " + p)
check("every operation: operationId, declared tags, responses with X-Request-Id, "
      "JSON Error for 4xx/5xx, path parameters declared and required", not problems,
      "%d problem(s) listed above" % len(problems))
check("operationIds are unique", len(op_ids) == len(set(op_ids)))
print("    %d paths, %d operations" % (len(paths), n_ops))

# public operations opt out of security, no other does
public = sorted("%s %s" % (m.upper(), p) for p, it in paths.items() for m, op in it.items()
                if m in METHODS and op.get("security") == [])
# (and the patient share routes: their token is in the path, decision 0032)
check("only GET /healthz, POST /api/v1/login and the public share routes opt out of security",
      public == ["GET /api/v1/share/{token}", "GET /api/v1/share/{token}/images/{n}",
                 "GET /api/v1/share/{token}/pdf", "GET /healthz", "POST /api/v1/login"], repr(public))

# the error schema
err = (((doc.get("components") or {}).get("schemas") or {}).get("Error")) or {}
check("Error schema: error, detail, request_id required strings",
      set(err.get("required") or []) >= {"error", "detail", "request_id"} and
      all((err.get("properties") or {}).get(k, {}).get("type") == "string"
          for k in ("error", "detail", "request_id")))

# media types of a few operations
def content_types(path, method, code):
    op = (paths.get(path) or {}).get(method) or {}
    r = resolve((op.get("responses") or {}).get(code)) or {}
    return set((r.get("content") or {}).keys())


check("QIDO answers application/dicom+json",
      content_types("/dicomweb/studies", "get", "200") == {"application/dicom+json"})
stow = (paths.get("/dicomweb/studies") or {}).get("post") or {}
body = ((stow.get("requestBody") or {}).get("content") or {})
check("STOW takes multipart/related; type=\"application/dicom\"",
      any(k.startswith("multipart/related") and "application/dicom" in k for k in body))
check("STOW answers 200/202/409 in application/dicom+json",
      all(content_types("/dicomweb/studies", "post", c) == {"application/dicom+json"}
          for c in ("200", "202", "409")))
sr = (((doc.get("components") or {}).get("schemas") or {}).get("StowResponse") or {}).get("properties") or {}
check("StowResponse has 00081199 and 00081198", {"00081198", "00081199"} <= set(sr))
check("metrics answer text/plain",
      any(t.startswith("text/plain") for t in content_types("/metrics", "get", "200")))
check("login takes JSON {user, password}",
      set((resolve(((((paths.get("/api/v1/login") or {}).get("post") or {}).get("requestBody") or {})
                   .get("content") or {}).get("application/json", {}).get("schema")) or {})
          .get("required") or []) == {"user", "password"})

# QIDO paging bounds as in qido.c
src = open(qido_c, encoding="utf-8").read()
qmax = re.search(r"#define\s+QIDO_MAX\s+(\d+)", src)
qdef = re.search(r"#define\s+QIDO_DEFAULT\s+(\d+)", src)
lim = ((((doc.get("components") or {}).get("parameters") or {}).get("limit") or {}).get("schema")) or {}
if qmax and qdef:
    check("limit schema is 1..QIDO_MAX, default QIDO_DEFAULT (%s, %s)" % (qmax.group(1), qdef.group(1)),
          lim.get("minimum") == 1 and lim.get("maximum") == int(qmax.group(1)) and
          lim.get("default") == int(qdef.group(1)), repr(lim))
else:
    print("skip QIDO_MAX / QIDO_DEFAULT not found in qido.c")

# a real OpenAPI validator, when the machine has one (not installed by scripts/setup)
try:
    from openapi_spec_validator import validate
except Exception:
    print("skip - openapi-spec-validator not available to this python")
else:
    try:
        validate(doc)
        check("openapi-spec-validator accepts the spec", True)
    except Exception as e:
        check("openapi-spec-validator accepts the spec", False, str(e).splitlines()[0])
PY
  )
fi
finish
