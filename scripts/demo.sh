#!/usr/bin/env bash
# Prints ready-to-run curl commands with fresh tokens, then serves the API in the
# foreground (Ctrl-C stops the API; `make stack-down` stops the emulators).
set -euo pipefail
cd "$(dirname "$0")/.."
X=target/debug/exportctl
ADMIN=$($X token --role admin --sub admin-demo --ttl 28800)
USER=$($X token --role user --sub user-demo --client-id client-alpha --company-id comp-acme --ttl 28800)
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

Cancel a job (202, then status cancelled; a finished job is 409):
  curl -sS -X DELETE -H "Authorization: Bearer $USER" "$BASE/api/exports/\$JOB"

Rate limit: the 11th export by one user within a minute gets 429 with Retry-After:
  for i in \$(seq 11); do curl -s -o /dev/null -w "%{http_code} " -H "Authorization: Bearer $USER" "$BASE/client/export/chats/download?limit=1"; done; echo

TXT
exec $X serve --port "$API_PORT"
