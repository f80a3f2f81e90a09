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

Rate limit: the 11th export by one user within a minute gets 429 with Retry-After:
  for i in \$(seq 11); do curl -s -o /dev/null -w "%{http_code} " -H "Authorization: Bearer $USER" "$BASE/client/export/chats/download?limit=1"; done; echo

TXT
exec $X serve --port "$API_PORT"
