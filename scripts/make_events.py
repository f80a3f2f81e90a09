#!/usr/bin/env python3
"""Writes events/*.json: API Gateway HTTP API (payload 2.0) events for every route.

Tokens are minted with the dev secret of local.env and are valid until 2099. Files that
exist are kept (pass --force to rewrite them all):
    set -a; . ./local.env; set +a; python3 scripts/make_events.py [--force]
The events of the other triggers are written by hand: events/sqs/ (export-worker's
queue), events/scheduler/ (export-scheduler's EventBridge Scheduler tick) and
events/worker/ (an operator-defined export, invoked directly by EventBridge Scheduler).
"""
import json
import os
import subprocess
import sys
import time
import urllib.parse

FORCE = "--force" in sys.argv

EXPORTCTL = os.environ.get("EXPORTCTL", "target/debug/exportctl")
TTL = str(int(time.mktime((2099, 1, 1, 0, 0, 0, 0, 0, 0)) - time.time()))


def token(*args):
    return subprocess.check_output([EXPORTCTL, "token", "--ttl", TTL, *args], text=True).strip()


ADMIN = token("--role", "admin", "--sub", "admin-events")
USER = token("--role", "user", "--sub", "user-events", "--client-id", "client-alpha", "--company-id", "comp-acme")


def event(name, method, path, auth, query="", accept="*/*", body=None, route=None, extra=None):
    if os.path.exists(f"events/{name}.json") and not FORCE:
        return
    route = route or path
    headers = {"host": "abc123.execute-api.us-east-1.amazonaws.com", "user-agent": "curl/8.5.0", "accept": accept}
    headers.update(extra or {})
    if auth:
        headers["authorization"] = "Bearer " + auth
    e = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": headers["host"],
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "curl/8.5.0"},
            "requestId": "evt-" + name,
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "time": "22/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795341600000,
        },
        "isBase64Encoded": False,
    }
    if body is not None:
        headers["content-type"] = "application/json"
        e["body"] = json.dumps(body)
    if route != path:
        e["pathParameters"] = {"id": path.split("/")[3]}
    if query:
        e["queryStringParameters"] = {k: ",".join(v) for k, v in urllib.parse.parse_qs(query).items()}
    with open(f"events/{name}.json", "w") as f:
        json.dump(e, f, indent=2)
        f.write("\n")


S = "/api/admin/sessions/export"
event("sessions-export-admin", "GET", S, ADMIN)
event("sessions-export-admin-json", "GET", S, ADMIN, accept="application/json")
event("sessions-export-admin-raw", "GET", S, ADMIN, query="spreadsheet_safe=false")
event("sessions-export-user", "GET", S, USER)
event("sessions-export-no-token", "GET", S, None)
event("sessions-export-bad-param", "GET", S, ADMIN, query="format=xml")
event("sessions-export-admin-xlsx-gzip", "GET", S, ADMIN, query="format=xlsx&compression=gzip")

L = "/api/hybrid-leads/export"
event("leads-export-user", "GET", L, USER)
event("leads-export-user-filtered-xlsx", "GET", L, USER,
      query="format=xlsx&confidence=high&startDate=2024-01-01&endDate=2024-01-31&search=example")
event("leads-export-user-other-company", "GET", L, USER, query="companyId=comp-globex")
event("leads-export-admin-bulk-json", "GET", L, ADMIN, query="format=json&companyId=comp-acme,comp-globex&columns=Lead%20ID,Email,Company%20Name")
event("leads-export-admin-link", "GET", L, ADMIN, accept="application/json")
event("leads-export-bad-enum", "GET", L, ADMIN, query="confidence=extreme")
event("leads-export-no-token", "GET", L, None)
event("leads-export-user-berlin-bom", "GET", L, USER, query="time_zone=Europe/Berlin&bom=true&startDate=2024-01-01")

C = "/client/export/chats"
D = "/client/export/chats/download"
event("chats-export-post-admin", "POST", C, ADMIN,
      body={"format": "excel", "date_from": "2024-01-01", "date_to": "2024-12-31", "include_geo": True, "include_meta": True, "limit": 5000})
event("chats-export-post-invalid", "POST", C, ADMIN, body={"format": "pdf", "limit": 0})
event("chats-export-download-user", "GET", D, USER, query="format=json&include_geo=true&limit=1000")
event("chats-export-download-other-client", "GET", D, USER, query="client_id=client-beta")
event("chats-export-no-token", "GET", D, None, query="format=both")

V = "/client/export/conversations"
event("conversations-export-user", "GET", V, USER)
event("conversations-export-admin-json", "GET", V, ADMIN, query="format=json&date_from=2024-01-01&limit=500")
event("conversations-export-other-client", "GET", V, USER, query="client_id=client-beta")
event("leads-export-user-async", "GET", L, USER, query="format=csv&confidence=high", extra={"prefer": "respond-async"})

J = "/api/exports"
UNKNOWN = "0123456789abcdef0123456789abcdef"
event("jobs-start-user-leads", "POST", J, USER, body={"kind": "leads", "format": "csv", "params": {"confidence": "high"}},
      extra={"idempotency-key": "events-leads-1"})
event("jobs-start-admin-chats-excel", "POST", J, ADMIN,
      body={"kind": "chats", "format": "excel", "params": {"client_id": "client-alpha", "include_geo": True}})
event("jobs-start-invalid", "POST", J, USER, body={"kind": "leads", "format": "pdf"})
event("jobs-start-user-other-kind-sessions", "POST", J, USER, body={"kind": "sessions"})
event("jobs-start-no-token", "POST", J, None, body={"kind": "leads"})
event("jobs-list-user", "GET", J, USER, query="limit=10&status=succeeded")
event("jobs-get-unknown", "GET", f"{J}/{UNKNOWN}", USER, route=J + "/{id}")
event("jobs-download-unknown", "GET", f"{J}/{UNKNOWN}/download", USER, route=J + "/{id}/download")
event("jobs-cancel-unknown", "POST", f"{J}/{UNKNOWN}/cancel", USER, route=J + "/{id}/cancel")
event("jobs-delete-unknown", "DELETE", f"{J}/{UNKNOWN}", USER, route=J + "/{id}")

SC = "/api/schedules"
UNKNOWN_SCHEDULE = "fedcba9876543210fedcba9876543210"
# The body of docs/schedules.md; an admin may notify addresses of NOTIFY_ALLOWED_DOMAINS.
event("schedules-create-admin-leads", "POST", SC, ADMIN,
      body={"name": "Nightly leads", "export": {"kind": "leads", "format": "csv", "params": {"status": "new"}},
            "cron": "0 2 * * *", "time_zone": "Europe/Berlin", "window": "previous_period",
            "notify": {"emails": ["me@example.com"], "on_empty": True}, "enabled": True})
event("schedules-create-invalid", "POST", SC, USER,
      body={"name": "Both", "export": {"kind": "leads", "format": "csv"}, "cron": "0 2 * * *", "rate": "1 hour"})
event("schedules-list-user", "GET", SC, USER, query="limit=10")
event("schedules-preview-user", "POST", f"{SC}/preview", USER,
      body={"name": "Hourly leads", "export": {"kind": "leads", "format": "csv", "params": {"confidence": "high"}},
            "rate": "1 hour", "window": "incremental", "lag_seconds": 300})
event("schedules-get-unknown", "GET", f"{SC}/{UNKNOWN_SCHEDULE}", USER, route=SC + "/{id}")
event("schedules-update-unknown", "PATCH", f"{SC}/{UNKNOWN_SCHEDULE}", USER, route=SC + "/{id}",
      body={"cron": "0 2 * * *", "time_zone": "Europe/Berlin", "enabled": False})
event("schedules-delete-unknown", "DELETE", f"{SC}/{UNKNOWN_SCHEDULE}", USER, route=SC + "/{id}")
