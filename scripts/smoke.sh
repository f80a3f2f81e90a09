#!/usr/bin/env bash
# End-to-end smoke test of a deployed stack (or of `exportctl serve`): every export route
# inline and as a stored file, a job followed to its download, a schedule created,
# previewed and deleted, and the refusals that keep tenants apart. One line per check,
# `PASS name` or `FAIL name: what was seen`; exit 1 when any check fails.
#
# Usage: scripts/smoke.sh BASE_URL ADMIN_TOKEN USER_TOKEN
#   BASE_URL     the API's base URL (the stack's ApiUrl output, or http://127.0.0.1:3000)
#   ADMIN_TOKEN  a bearer token with role admin
#   USER_TOKEN   a bearer token of a user with a client_id and a company_id
# Needs curl and python3. Reads nothing else and changes nothing but what it creates: one
# export job and one schedule of the user, the schedule deleted at the end.
set -uo pipefail

if [ $# -ne 3 ]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
BASE=${1%/}
ADMIN=$2
USER=$3
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "smoke.sh needs $tool" >&2; exit 2; }
done

failed=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failed=1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# request NAME METHOD PATH TOKEN [curl args...]: the status; the body in $WORK/NAME,
# the headers in $WORK/NAME.h.
request() {
  local name=$1 method=$2 path=$3 token=$4; shift 4
  local auth=()
  [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
  curl -sS -o "$WORK/$name" -D "$WORK/$name.h" -w '%{http_code}' -X "$method" "${auth[@]}" "$@" "$BASE$path" \
    2>"$WORK/$name.err" || echo "000"
}

# jget FILE KEY: a top-level value of a JSON file (empty if none); jtest FILE EXPR: whether
# EXPR holds of the document `d`.
jget() { python3 -c 'import json,sys
try: v = json.load(open(sys.argv[1])).get(sys.argv[2])
except Exception: v = None
print("" if v is None else v)' "$1" "$2"; }
jtest() { python3 -c 'import json,sys
try: d = json.load(open(sys.argv[1]))
except Exception: sys.exit(1)
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"; }

header() { grep -i "^$2:" "$WORK/$1.h" | tail -1 | cut -d' ' -f2- | tr -d '\r'; }

# An export answered inline (200 with the file) or as a redirect to the stored file
# (303, whose Location must serve it): either way, a non-empty file.
export_check() { # name path token
  local name=$1 path=$2 token=$3 status
  status=$(request "$name" GET "$path" "$token")
  case $status in
    200)
      if [ -s "$WORK/$name" ]; then pass "$name (200 inline, $(wc -c <"$WORK/$name") bytes)"
      else fail "$name" "200 with an empty body"; fi ;;
    303)
      local location; location=$(header "$name" location)
      if [ -z "$location" ]; then fail "$name" "303 without a Location"; return; fi
      local got; got=$(curl -sS -o "$WORK/$name.file" -w '%{http_code}' "$location" 2>/dev/null || echo 000)
      if [ "$got" = 200 ] && [ -s "$WORK/$name.file" ]; then
        pass "$name (303 to the stored file, $(wc -c <"$WORK/$name.file") bytes)"
      else fail "$name" "303, then the stored file answered $got"; fi ;;
    *) fail "$name" "status $status: $(head -c 300 "$WORK/$name")" ;;
  esac
}

# An export asked for as a link (Accept: application/json): stored in S3, the
# presigned URL serves it.
link_check() { # name path token
  local name=$1 path=$2 token=$3 status url got
  status=$(request "$name" GET "$path" "$token" -H "Accept: application/json")
  url=$(jget "$WORK/$name" download_url)
  if [ "$status" != 200 ] || [ -z "$url" ]; then
    fail "$name" "status $status: $(head -c 300 "$WORK/$name")"; return
  fi
  got=$(curl -sS -o "$WORK/$name.file" -w '%{http_code}' "$url" 2>/dev/null || echo 000)
  if [ "$got" = 200 ] && [ -s "$WORK/$name.file" ]; then pass "$name (link, $(wc -c <"$WORK/$name.file") bytes)"
  else fail "$name" "the presigned URL answered $got"; fi
}

# A refusal: the status and the documented JSON error shape.
refusal_check() { # name expected method path token [curl args...]
  local name=$1 expected=$2 method=$3 path=$4 token=$5; shift 5
  local status; status=$(request "$name" "$method" "$path" "$token" "$@")
  if [ "$status" = "$expected" ] && jtest "$WORK/$name" 'isinstance(d, dict)'; then
    pass "$name ($status)"
  else fail "$name" "status $status, expected $expected: $(head -c 300 "$WORK/$name")"; fi
}

# The user's own tenants, from their token's claims (base64url, unpadded).
claims() { python3 -c 'import base64,json,sys
p = sys.argv[1].split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))).get(sys.argv[2]) or "")' "$USER" "$1" 2>/dev/null; }
CLIENT=$(claims client_id)
COMPANY=$(claims company_id)
[ -n "$CLIENT" ] && [ -n "$COMPANY" ] || { echo "USER_TOKEN must carry client_id and company_id claims" >&2; exit 2; }

# Every export route, inline or redirected, and as a stored file.
export_check sessions-admin "/api/admin/sessions/export?format=csv" "$ADMIN"
link_check sessions-admin-link "/api/admin/sessions/export?format=json" "$ADMIN"
export_check leads-user "/api/hybrid-leads/export?format=csv" "$USER"
link_check leads-user-link "/api/hybrid-leads/export?format=xlsx" "$USER"
export_check chats-user "/client/export/chats/download?format=csv&limit=1000" "$USER"
link_check chats-user-link "/client/export/chats/download?format=json&include_geo=true" "$USER"
export_check conversations-user "/client/export/conversations?format=csv" "$USER"
status=$(request chats-post POST /client/export/chats "$USER" -H "Content-Type: application/json" \
  --data '{"format":"json","limit":100}')
if [ "$status" = 200 ] && jtest "$WORK/chats-post" 'd.get("success") is True'; then pass "chats-post (200)"
else fail chats-post "status $status: $(head -c 300 "$WORK/chats-post")"; fi

# A job: started, followed to the end (with its progress), downloaded.
status=$(request job-start POST /api/exports "$USER" -H "Content-Type: application/json" \
  -H "Cache-Control: no-cache" --data '{"kind":"leads","format":"csv"}')
JOB=$(jget "$WORK/job-start" id)
if [ "$status" = 202 ] && [ -n "$JOB" ]; then
  pass "job-start (202)"
  final=""
  for _ in $(seq 1 120); do
    request job-get GET "/api/exports/$JOB" "$USER" >/dev/null
    final=$(jget "$WORK/job-get" status)
    case $final in succeeded|failed|cancelled) break ;; esac
    sleep 1
  done
  if [ "$final" = succeeded ] && jtest "$WORK/job-get" 'd["rows_done"] >= 0 and d["bytes_done"] > 0'; then
    pass "job-progress (succeeded, $(jget "$WORK/job-get" rows_done) rows)"
    status=$(request job-download GET "/api/exports/$JOB/download" "$USER")
    location=$(header job-download location)
    got=000
    [ "$status" = 303 ] && [ -n "$location" ] && got=$(curl -sS -o "$WORK/job.file" -w '%{http_code}' "$location" 2>/dev/null || echo 000)
    if [ "$got" = 200 ] && [ -s "$WORK/job.file" ]; then pass "job-download (303, the file)"
    else fail job-download "status $status, then $got"; fi
  else fail job-progress "ended $final: $(head -c 300 "$WORK/job-get")"; fi
else
  fail job-start "status $status: $(head -c 300 "$WORK/job-start")"
fi

# A schedule: created, previewed, listed, deleted.
status=$(request schedule-create POST /api/schedules "$USER" -H "Content-Type: application/json" --data \
  '{"name":"smoke test","export":{"kind":"leads","format":"csv"},"cron":"0 3 * * *","time_zone":"UTC","window":"previous_period"}')
SCHEDULE=$(jget "$WORK/schedule-create" id)
if [ "$status" = 201 ] && [ -n "$SCHEDULE" ]; then
  pass "schedule-create (201)"
  status=$(request schedule-get GET "/api/schedules/$SCHEDULE" "$USER")
  if [ "$status" = 200 ] && jtest "$WORK/schedule-get" 'd.get("next_run_at")'; then pass "schedule-get (200, next run $(jget "$WORK/schedule-get" next_run_at))"
  else fail schedule-get "status $status"; fi
  status=$(request schedule-preview POST /api/schedules/preview "$USER" -H "Content-Type: application/json" \
    --data '{"name":"smoke test","export":{"kind":"leads","format":"csv"},"cron":"0 3 * * *","time_zone":"UTC","window":"previous_period"}')
  if [ "$status" = 200 ]; then pass "schedule-preview (200)"; else fail schedule-preview "status $status: $(head -c 300 "$WORK/schedule-preview")"; fi
  status=$(request schedule-delete DELETE "/api/schedules/$SCHEDULE" "$USER")
  if [ "$status" = 204 ]; then pass "schedule-delete (204)"; else fail schedule-delete "status $status"; fi
else
  fail schedule-create "status $status: $(head -c 300 "$WORK/schedule-create")"
fi

# Tenancy and credentials.
refusal_check no-token 401 GET "/api/admin/sessions/export" ""
refusal_check user-on-admin-route 403 GET "/api/admin/sessions/export" "$USER"
refusal_check user-other-company 403 GET "/api/hybrid-leads/export?companyId=${COMPANY}-other" "$USER"
refusal_check user-other-client 403 GET "/client/export/chats/download?client_id=${CLIENT}-other" "$USER"
if [ -n "${JOB:-}" ]; then
  # A token changed by one character is no token.
  refusal_check job-tampered-token 401 GET "/api/exports/$JOB" "${USER}x"
fi

exit $failed
