#!/usr/bin/env bash
# Prints ready-to-run curl commands with fresh tokens, then serves the API in the
# foreground (Ctrl-C stops the API; `make stack-down` stops the emulators).
set -euo pipefail
cd "$(dirname "$0")/.."
X=target/debug/exportctl
ADMIN=$($X token --role admin --sub admin-demo --ttl 28800)
USER=$($X token --role user --sub user-demo --client-id client-alpha --company-id comp-acme --email user-demo@example.com --ttl 28800)
BASE="http://127.0.0.1:${API_PORT}"
cat <<TXT

chat-export demo: local stack up, sample data loaded.

The export console (open in a browser; the token moves into sessionStorage and leaves the address bar):
  admin: $BASE/#token=$ADMIN
  user (client-alpha, comp-acme): $BASE/#token=$USER

Admin: download every chat session as CSV
  curl -sS -OJ -H "Authorization: Bearer $ADMIN" "$BASE/api/admin/sessions/export"

Same, as a link to S3 (presigned URL, JSON answer)
  curl -sS -H "Accept: application/json" -H "Authorization: Bearer $ADMIN" "$BASE/api/admin/sessions/export"

A non-admin token gets 403, no token 401:
  curl -sS -H "Authorization: Bearer $USER" "$BASE/api/admin/sessions/export"
  curl -sS "$BASE/api/admin/sessions/export"

Leads of the user's own company (comp-acme), filtered, as CSV, Excel and JSON:
  curl -sS -OJ -H "Authorization: Bearer $USER" "$BASE/api/hybrid-leads/export?confidence=high&startDate=2024-01-01&endDate=2024-03-31"
  curl -sS -OJ -H "Authorization: Bearer $USER" "$BASE/api/hybrid-leads/export?format=xlsx&status=new&search=example.com"
  curl -sS -OJ -H "Authorization: Bearer $USER" "$BASE/api/hybrid-leads/export?format=json&category=demo_request&columns=Lead%20ID,Email,Phone,Created%20At"

Another company's leads are refused (403); a bad parameter gets 400 in the seed's shape:
  curl -sS -H "Authorization: Bearer $USER" "$BASE/api/hybrid-leads/export?companyId=comp-globex"
  curl -sS -H "Authorization: Bearer $USER" "$BASE/api/hybrid-leads/export?confidence=extreme"

Admin: several companies at once, or all of them:
  curl -sS -OJ -H "Authorization: Bearer $ADMIN" "$BASE/api/hybrid-leads/export?companyId=comp-acme,comp-globex&format=xlsx"
  curl -sS -OJ -H "Authorization: Bearer $ADMIN" "$BASE/api/hybrid-leads/export"

Chat export for the user's client (client-alpha): JSON, Excel, ZIP of both (IP addresses anonymised):
  curl -sS -OJ -L -H "Authorization: Bearer $USER" "$BASE/client/export/chats/download?format=json&include_geo=true&include_meta=true"
  curl -sS -OJ -L -H "Authorization: Bearer $USER" "$BASE/client/export/chats/download?format=excel&date_from=2024-01-01&date_to=2024-01-03"
  curl -sS -X POST -H "Authorization: Bearer $USER" -H "Content-Type: application/json" \
       -d '{"format":"both","include_geo":true,"limit":1000}' "$BASE/client/export/chats"

Conversations of the user's client, one row each (CSV, JSON or Excel):
  curl -sS -OJ -L -H "Authorization: Bearer $USER" "$BASE/client/export/conversations?format=xlsx"

Options of every export: gzip or zip compression, a BOM for Excel, timestamps in a time zone:
  curl -sS -OJ -L -H "Authorization: Bearer $ADMIN" "$BASE/api/admin/sessions/export?compression=gzip"
  curl -sS -OJ -L -H "Authorization: Bearer $USER" "$BASE/api/hybrid-leads/export?bom=true&time_zone=Europe/Berlin"

Export jobs (the worker runs inside this server): start one, watch its progress, download it:
  JOB=\$(curl -sS -X POST -H "Authorization: Bearer $USER" -H "Content-Type: application/json" \\
       -d '{"kind":"chats","format":"excel","params":{"include_geo":true,"include_meta":true}}' "$BASE/api/exports" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  curl -sS -H "Authorization: Bearer $USER" "$BASE/api/exports/\$JOB"
  curl -sS -OJ -L -H "Authorization: Bearer $USER" "$BASE/api/exports/\$JOB/download"

Any export as a job (Prefer: respond-async); the same request again is the cached job; the history:
  curl -sS -H "Prefer: respond-async" -H "Authorization: Bearer $ADMIN" "$BASE/api/admin/sessions/export?format=xlsx"
  curl -sS -H "Prefer: respond-async" -H "Authorization: Bearer $ADMIN" "$BASE/api/admin/sessions/export?format=xlsx"
  curl -sS -H "Authorization: Bearer $ADMIN" "$BASE/api/exports?limit=5"

Cancel a job (202, then status cancelled; a finished job is 409), or delete it with its file (204, then 404):
  curl -sS -X POST -H "Authorization: Bearer $USER" "$BASE/api/exports/\$JOB/cancel"
  curl -sS -X DELETE -H "Authorization: Bearer $USER" "$BASE/api/exports/\$JOB"

Rate limit: the 11th export by one user within a minute gets 429 with Retry-After:
  for i in \$(seq 11); do curl -s -o /dev/null -w "%{http_code} " -H "Authorization: Bearer $USER" "$BASE/client/export/chats/download?limit=1"; done; echo

TXT

# The API in the background, so that the sample schedule can be created through it.
$X serve --port "$API_PORT" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null && break; sleep 0.1; done
SCHEDULE=$(curl -sS -X POST -H "Authorization: Bearer $USER" -H "Content-Type: application/json" \
  -d '{"name":"Daily leads (demo)","export":{"kind":"leads","format":"csv","params":{"status":"new"}},"cron":"0 2 * * *","time_zone":"Europe/Berlin","window":"none","notify":{"emails":["user-demo@example.com"]}}' \
  "$BASE/api/schedules")
SCHEDULE_ID=$(printf '%s' "$SCHEDULE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
NEXT=$(printf '%s' "$SCHEDULE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["next_run_at"])')
AT=$(python3 -c "from datetime import datetime, timedelta; t = datetime.fromisoformat('$NEXT'.replace('Z', '+00:00')) + timedelta(seconds=30); print(t.strftime('%Y-%m-%dT%H:%M:%SZ'))")
cat <<TXT

Scheduled exports: a sample schedule was created for the user (daily at 02:00 Berlin time,
its new leads as CSV, emailed to user-demo@example.com). See it, and its next runs:
  curl -sS -H "Authorization: Bearer $USER" "$BASE/api/schedules/$SCHEDULE_ID"

Run the scheduler as if it were just after its next run ($NEXT); the worker in this server
runs the job, and the SES emulator receives the email:
  set -a; . ./local.env; set +a; $X schedules tick --at $AT
  curl -sS -H "Authorization: Bearer $USER" "$BASE/api/schedules/$SCHEDULE_ID"
Read the email (its link downloads the file, no token needed, for 7 days):
  curl -sS "http://127.0.0.1:${SES_PORT}/store" | python3 -m json.tool
  (or open http://127.0.0.1:${SES_PORT}/ in a browser)

Serving on $BASE (Ctrl-C stops it; make stack-down stops the emulators).
TXT
wait $SERVER
