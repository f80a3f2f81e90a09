"""The web console (web/), in headless Chromium, against `exportctl serve` and the
emulators, with the data of `exportctl seed --sessions 20 --leads 60 --chats 300 --seed 5`.

Each test clicks through the console as a person would; files are compared with the
same exports fetched directly from the API.
"""

import csv
import io
import json
import os
import random
import re
import signal
import time
import urllib.parse
import zipfile
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect

from conftest import BASE_URL, api, api_file, api_json, today_dates

LEADS_ROUTE = re.compile(r"/api/hybrid-leads/export(\?|$)")
SESSIONS_ROUTE = re.compile(r"/api/admin/sessions/export(\?|$)")
CHATS_ROUTE = re.compile(r"/client/export/chats(\?|$)")
JOBS_POST = re.compile(r"/api/exports$")

# The leads export's columns (JSON keys), in the export's order
# (docs/api.md, "GET /api/hybrid-leads/export").
LEAD_KEYS = [
    "lead_id", "chatbot_name", "company_name", "session_id", "email", "phone", "lead_score",
    "interest_level", "confidence", "category", "primary_language", "detected_languages",
    "ai_legitimate", "ai_confidence_score", "ai_verification_reasons", "status", "created_at",
    "updated_at", "user_agent", "ip_address", "location_country", "location_city",
    "message_count", "session_duration", "first_interest_detected", "last_interest_detected",
    "conversation_summary", "tags", "notes_count", "converted_at", "conversion_value",
    "conversion_source",
]


def names_for(prefix, ext):
    return {f"{prefix}-{d}.{ext}" for d in today_dates()}


def csv_rows(data):
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@contextmanager
def held_requests(page, pattern):
    """Holds the requests matching pattern until the block ends (then lets them go), so a
    busy state can be seen for as long as the test needs."""
    held = []
    page.route(pattern, lambda route: held.append(route))
    try:
        yield held
    finally:
        for route in held:
            route.continue_()
        page.unroute(pattern)


def expect_busy(button, label=None):
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("aria-busy", "true")
    expect(button.locator("span.spinner")).to_have_count(1)
    if label:
        expect(button).to_contain_text(label)


def expect_idle(button, label):
    expect(button).to_be_enabled()
    expect(button).not_to_have_attribute("aria-busy", "true")
    expect(button.locator("span.spinner")).to_have_count(0)
    expect(button).to_have_text(label)


# --- 1. sessions ------------------------------------------------------------------------


def test_admin_sessions_export_csv(console):
    page = console.page
    console.sign_in("admin")
    expect(page.locator("#whoami")).to_contain_text("admin-bt")
    expect(page.locator("#whoami")).to_contain_text("admin")
    console.open("sessions")
    button = page.locator("button#export-sessions")
    expect_idle(button, "Export to CSV")
    sent = []
    page.on("request", lambda r: sent.append(r.url) if SESSIONS_ROUTE.search(r.url) else None)

    with held_requests(page, SESSIONS_ROUTE) as held:
        with page.expect_download(timeout=60_000) as info:
            button.click()
            console.wait_until(lambda: held, "the sessions export request")
            expect_busy(button)
            # A second click while busy starts nothing.
            button.click(force=True)
            held.pop().continue_()
    download = info.value
    expect(console.toast("success")).to_be_visible()
    data = open(download.path(), "rb").read()
    assert len(sent) == 1, f"one click, one request: {sent}"

    assert download.suggested_filename in names_for("chat-sessions-export", "csv")
    expected_name, expected = api_file("/api/admin/sessions/export", console.tokens["admin"])
    assert download.suggested_filename == expected_name
    assert data == expected
    rows = csv_rows(data)
    assert rows[0] == ["SessionID", "UserID", "MessageID", "MessageContent", "Sender", "Timestamp"]
    assert len(rows) > 20
    expect_idle(button, "Export to CSV")
    console.screenshot("console-sessions.png")


# --- 2. leads, filters, formats --------------------------------------------------------

# The seeded leads are from January 2024: the browser's clock says 2024-02-15, so that
# "Last 90 days" covers them (and the request is exactly reproducible).
FIXED_NOW = datetime(2024, 2, 15, 12, 0, 0, tzinfo=timezone.utc)
SEARCH = "pricing"


def js_iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def test_user_leads_csv_excel_json_with_filters(console):
    page = console.page
    page.clock.set_fixed_time(FIXED_NOW)
    console.sign_in("user")
    expect(page.locator("#view-leads")).to_be_visible()
    page.locator("select#lead-confidence").select_option("high")
    page.locator("select#lead-period").select_option("90")
    page.locator("input#lead-search").fill(SEARCH)
    console.screenshot("console-leads.png")

    sent = []
    page.on("request", lambda r: sent.append(r.url) if LEADS_ROUTE.search(r.url) else None)
    csv_button = page.locator("button#export-leads-csv")
    expect(csv_button).to_contain_text("Export CSV")
    r, g, b = map(int, re.findall(r"\d+", csv_button.evaluate("b => getComputedStyle(b).backgroundColor"))[:3])
    assert g > r and g > b, f"the CSV button is green: rgb({r}, {g}, {b})"
    with held_requests(page, LEADS_ROUTE) as held:
        with page.expect_download(timeout=60_000) as info:
            csv_button.click()
            console.wait_until(lambda: held, "the leads export request")
            expect_busy(csv_button, "Exporting...")
            held.pop().continue_()
    download = info.value
    data = open(download.path(), "rb").read()
    expect_idle(csv_button, "Export CSV")
    expect(console.toast("success")).to_be_visible()

    # The console asked for exactly the filters on screen ("Last 90 days" as a start date).
    start = js_iso(FIXED_NOW - timedelta(days=90))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(sent[0]).query)
    assert {k: v for k, v in query.items() if k != "format"} == {
        "confidence": ["high"], "startDate": [start], "search": [SEARCH],
    }, sent[0]
    assert query.get("format", ["csv"]) == ["csv"]

    # The file is the API's export with the same parameters, byte for byte.
    params = {"confidence": "high", "startDate": start, "search": SEARCH}
    expected_name, expected = api_file("/api/hybrid-leads/export", console.tokens["user"], params)
    assert download.suggested_filename == expected_name
    assert download.suggested_filename in names_for("leads-export", "csv")
    assert data == expected
    rows = csv_rows(data)
    header, body = rows[0], rows[1:]
    assert len(header) == 32 and body, "the filters should leave some leads"
    for row in body:
        lead = dict(zip(header, row))
        assert lead["Confidence"] == "high"
        assert lead["Company Name"] == "Acme, Inc."
        assert SEARCH in ",".join(row).lower()

    # Excel and JSON, same filters.
    name, xlsx = console.download(lambda: page.locator("button#export-leads-xlsx").click())
    assert name in names_for("leads-export", "xlsx")
    assert xlsx[:2] == b"PK"
    _, expected_xlsx = api_file("/api/hybrid-leads/export", console.tokens["user"], {**params, "format": "xlsx"})
    with zipfile.ZipFile(io.BytesIO(xlsx)) as got, zipfile.ZipFile(io.BytesIO(expected_xlsx)) as want:
        assert got.read("xl/worksheets/sheet1.xml") == want.read("xl/worksheets/sheet1.xml")
    name, raw = console.download(lambda: page.locator("button#export-leads-json").click())
    assert name in names_for("leads-export", "json")
    leads = json.loads(raw)
    assert [lead["lead_id"] for lead in leads] == [row[0] for row in body]
    assert all(lead["confidence"] == "high" for lead in leads)
    # JSON Lines: the same objects, one per line, byte for byte the API's file.
    name, raw = console.download(lambda: page.locator("button#export-leads-jsonl").click())
    assert name in names_for("leads-export", "jsonl")
    assert raw == api_file("/api/hybrid-leads/export", console.tokens["user"], {**params, "format": "jsonl"})[1]
    assert raw.endswith(b"}\n")
    assert [json.loads(line) for line in raw.split(b"\n")[:-1]] == leads
    # Parquet: a binary file (zstd inside), byte for byte the API's (it holds no time).
    name, raw = console.download(lambda: page.locator("button#export-leads-parquet").click())
    assert name in names_for("leads-export", "parquet")
    assert raw[:4] == b"PAR1" and raw[-4:] == b"PAR1", raw[:8]
    assert raw == api_file("/api/hybrid-leads/export", console.tokens["user"], {**params, "format": "parquet"})[1]


def test_leads_custom_range(console):
    page = console.page
    console.sign_in("user")
    start, end = page.locator("input#lead-start"), page.locator("input#lead-end")
    period = page.locator("select#lead-period")
    period.select_option("custom")
    expect(start).to_be_enabled()
    start.fill("2024-01-02")
    end.fill("2024-01-03")
    page.locator("select#lead-status").select_option("new")
    name, data = console.download(lambda: page.locator("button#export-leads-csv").click())
    assert name in names_for("leads-export", "csv")
    _, expected = api_file("/api/hybrid-leads/export", console.tokens["user"],
                           {"startDate": "2024-01-02", "endDate": "2024-01-03", "status": "new"})
    assert data == expected
    body = csv_rows(data)[1:]
    assert body and all(r[16][:10] in ("2024-01-02", "2024-01-03") and r[15] == "new" for r in body)
    period.select_option("30")
    expect(start).to_be_disabled()


def test_admin_leads_of_several_companies_and_chats_of_one_client(console):
    page = console.page
    console.sign_in("admin")
    console.open("leads")
    companies = page.locator("input#lead-companies")
    expect(companies).to_be_visible()
    companies.fill("comp-globex, comp-umbrella")
    page.locator("select#lead-confidence").select_option("low")
    name, data = console.download(lambda: page.locator("button#export-leads-csv").click())
    _, expected = api_file("/api/hybrid-leads/export", console.tokens["admin"],
                           {"companyId": "comp-globex,comp-umbrella", "confidence": "low"})
    assert data == expected
    assert {r[2] for r in csv_rows(data)[1:]} - {""}, "leads of the companies named"

    console.open("chats")
    client = page.locator("input#chat-client")
    expect(client).to_be_visible()
    client.fill("client-gamma")
    page.locator("input#chat-meta").check()
    check_chat_json(export_chats(console, "json"), "client-gamma")


# --- 3. the column chooser -------------------------------------------------------------


def test_column_chooser_limits_the_csv(console):
    page = console.page
    console.sign_in("user")
    boxes = page.locator('fieldset#lead-columns input[name="column"]')
    expect(boxes).to_have_count(32)
    assert [boxes.nth(i).get_attribute("value") for i in range(32)] == LEAD_KEYS
    assert all(boxes.nth(i).is_checked() for i in range(32))

    keep = ["lead_id", "email", "created_at"]
    for i in range(32):
        if boxes.nth(i).get_attribute("value") not in keep:
            boxes.nth(i).uncheck()
    expect(page.locator('fieldset#lead-columns input[name="column"]:checked')).to_have_count(3)

    name, data = console.download(lambda: page.locator("button#export-leads-csv").click())
    assert name in names_for("leads-export", "csv")
    rows = csv_rows(data)
    assert rows[0] == ["Lead ID", "Email", "Created At"]
    _, expected = api_file("/api/hybrid-leads/export", console.tokens["user"], {"columns": ",".join(keep)})
    assert data == expected
    assert len(rows) > 1


# --- 4. mock mode ------------------------------------------------------------------------


def test_mock_mode_exports_in_the_browser(console):
    page = console.page
    console.sign_in("user")
    asked = []
    page.on("request", lambda r: asked.append(r.url) if LEADS_ROUTE.search(r.url) else None)

    page.locator("input#mock-mode").check()
    table = page.locator("table#mock-leads")
    expect(table).to_be_visible()
    shown = table.locator("tbody tr")
    expect(shown).not_to_have_count(0)
    console.screenshot("console-leads-mock.png")

    name, data = console.download(lambda: page.locator("button#export-leads-csv").click())
    assert name in names_for("mock-leads-export", "csv")
    assert asked == [], f"mock mode asked the API: {asked}"

    # The header is the real export's header line, byte for byte (CRLF included).
    _, real = api_file("/api/hybrid-leads/export", console.tokens["user"])
    real_header = real[: real.index(b"\r\n") + 2]
    assert data[: data.index(b"\r\n") + 2] == real_header
    rows = csv_rows(data)
    assert len(rows[0]) == 32
    assert len(rows) - 1 == shown.count()
    first_cells = shown.locator("td:first-child").all_inner_texts()
    assert [r[0] for r in rows[1:]] == [t.strip() for t in first_cells]
    page.locator("input#mock-mode").uncheck()
    expect(table).to_be_hidden()
    assert asked == []


def test_mock_mode_leaves_parquet_to_the_server(console):
    """The browser cannot write Parquet (nor Excel): with mock data the button says so
    instead of downloading a broken file, and nothing is asked of the API."""
    page = console.page
    console.sign_in("user")
    asked = []
    page.on("request", lambda r: asked.append(r.url) if LEADS_ROUTE.search(r.url) or JOBS_POST.search(r.url) else None)
    downloads = []
    page.on("download", lambda d: downloads.append(d.suggested_filename))
    parquet = page.locator("button#export-leads-parquet")
    expect(parquet).to_have_text("Export Parquet")
    expect(parquet).to_be_enabled()

    page.locator("input#mock-mode").check()
    message = "Parquet files are made by the server"
    hint = page.locator("#mock-hint")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text(message)
    expect(parquet).to_be_disabled()
    expect(parquet).to_have_attribute("title", re.compile(message))
    expect(page.locator("button#export-leads-xlsx")).to_be_disabled()
    # A click that reaches it anyway starts no download and no request (if the page
    # sees it at all, it answers with the same message).
    parquet.dispatch_event("click")
    page.wait_for_timeout(500)
    assert downloads == [], f"mock mode downloaded {downloads}"
    assert asked == [], f"mock mode asked the API: {asked}"
    for t in console.toast_log():
        assert message in t["text"] or "toast-error" not in t["className"], t

    page.locator("input#mock-mode").uncheck()
    expect(parquet).to_be_enabled()
    expect(parquet).to_have_attribute("title", "")
    expect(hint).to_be_hidden()


# --- 5. errors and permissions ------------------------------------------------------------


def test_dom_contract(console):
    """The controls other tests and people rely on, with their values."""
    page = console.page
    page.goto(BASE_URL + "/")
    expect(page.locator("div#toasts")).to_have_attribute("aria-live", re.compile(r"\w+"))
    expect(page.locator("section#view-signin")).to_be_visible()
    expect(page.locator('[data-view="leads"]')).to_be_hidden()
    console.sign_in("user")

    def values(sel):
        return page.locator(f"{sel} option").evaluate_all("os => os.map(o => o.value)")

    assert values("select#lead-confidence") == ["", "high", "medium", "low"]
    assert values("select#lead-period") == ["", "7", "30", "90", "custom"]
    assert values("select#chat-format") == ["json", "excel", "both", "csv", "jsonl", "parquet"]
    assert set(values("select#lead-status")) >= {"new", "contacted", "qualified", "converted", "lost"}
    assert set(values("select#lead-category")) >= {"buying_intent", "pricing_inquiry", "demo_request", "general_inquiry"}
    for sel in ("input#lead-search", "input#lead-language", "input#lead-chatbot", "button#export-leads-xlsx",
                "button#export-leads-json", "button#export-leads-jsonl", "button#export-leads-parquet", "input#mock-mode",
                "input#as-job", "button#sign-out"):
        expect(page.locator(sel)).to_have_count(1)
    for view in ("leads", "chats", "exports"):
        expect(page.locator(f'[data-view="{view}"]')).to_be_visible()
    console.open("chats")
    for sel in ("input#chat-from", "input#chat-to", "input#chat-conversation", "input#chat-limit",
                "input#chat-geo", "input#chat-meta", "button#export-chats", "button#export-conversations"):
        expect(page.locator(sel)).to_be_visible()
    console.open("exports")
    expect(page.locator("table#jobs")).to_be_visible()
    expect(page.locator("button#jobs-more")).to_have_count(1)


def test_user_cannot_see_admin_controls(console):
    page = console.page
    console.sign_in("user")
    expect(page.locator("#whoami")).to_contain_text("user-bt")
    expect(page.locator('[data-view="sessions"]')).to_be_hidden()
    expect(page.locator("#view-sessions")).to_be_hidden()
    expect(page.locator("input#lead-companies")).to_be_hidden()
    console.open("chats")
    expect(page.locator("input#chat-client")).to_be_hidden()


def test_forbidden_answer_shows_the_server_message(console):
    page = console.page
    console.sign_in("user")
    page.route(LEADS_ROUTE, lambda route: route.fulfill(
        status=403,
        json={"success": False, "message": "Failed to export leads CSV", "error": "Access denied to this company"},
    ))
    button = page.locator("button#export-leads-csv")
    button.click()
    expect(console.toast("error", "Access denied to this company")).to_be_visible()
    expect_idle(button, "Export CSV")


def test_rate_limited_answer_says_when_to_retry(console):
    page = console.page
    console.sign_in("user")
    console.open("chats")
    page.route(CHATS_ROUTE, lambda route: route.fulfill(
        status=429,
        headers={"Retry-After": "42"},
        json={"error_code": "rate_limited", "message": "Rate limit exceeded: 10 exports per minute"},
    ))
    page.locator("button#export-chats").click()
    toast = console.toast("error", "42")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("Try again in 42 seconds")


def test_bad_request_from_the_server_shows_its_message(console):
    page = console.page
    console.sign_in("user")
    console.open("chats")
    page.locator("input#chat-limit").fill("0")
    with page.expect_response(lambda r: CHATS_ROUTE.search(r.url) is not None) as info:
        page.locator("button#export-chats").click()
    assert info.value.status == 400
    message = info.value.json()["message"]  # "Invalid export request: limit must be between ..."
    expect(console.toast("error", message)).to_be_visible()


# --- 6. chats through the UI: formats and tenancy --------------------------------------


CHAT_EXT = {"json": "json", "excel": "xlsx", "both": "zip", "csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}


def export_chats(console, fmt):
    page = console.page
    page.locator("select#chat-format").select_option(fmt)
    name, data = console.download(lambda: page.locator("button#export-chats").click())
    assert name in names_for("chat-export", CHAT_EXT[fmt]), name
    return data


def check_chat_json(raw, client_id):
    doc = json.loads(raw)
    assert doc["messages"], "no messages"
    assert {m["meta_data"]["client_id"] for m in doc["messages"]} == {client_id}
    assert doc["export_info"]["client_id"] == client_id
    return doc


def test_user_exports_chats_in_every_format(console):
    page = console.page
    console.sign_in("user")
    console.open("chats")
    page.locator("input#chat-meta").check()
    console.screenshot("console-chats.png")

    doc = check_chat_json(export_chats(console, "json"), "client-alpha")
    assert doc["export_info"]["include_meta"] is True

    xlsx = export_chats(console, "excel")
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        assert "xl/workbook.xml" in z.namelist()

    both = export_chats(console, "both")
    with zipfile.ZipFile(io.BytesIO(both)) as z:
        names = z.namelist()
        assert sorted(n.rsplit(".", 1)[1] for n in names) == ["json", "xlsx"], names
        check_chat_json(z.read(next(n for n in names if n.endswith(".json"))), "client-alpha")

    rows = csv_rows(export_chats(console, "csv"))
    client_col = rows[0].index("Client ID")
    assert {r[client_col] for r in rows[1:]} == {"client-alpha"}
    assert len(rows) - 1 == len(doc["messages"])

    # JSON Lines: the JSON document's messages, one per line, without its summary.
    raw = export_chats(console, "jsonl")
    assert raw.endswith(b"\n")
    assert [json.loads(line) for line in raw.split(b"\n")[:-1]] == doc["messages"]

    # Parquet: one message per row, typed; byte for byte the download route's file.
    raw = export_chats(console, "parquet")
    assert raw[:4] == b"PAR1" and raw[-4:] == b"PAR1", raw[:8]
    direct = {"format": "parquet", "include_geo": "false", "include_meta": "true"}
    assert raw == api_file("/client/export/chats/download", console.tokens["user"], direct)[1]


# --- 7. background jobs ----------------------------------------------------------------


def start_chat_job(console, fmt="csv"):
    """With "Run as a background job" checked, starts a chats export; returns the job id.
    A limit of its own makes it a new export (never one the cache would return)."""
    page = console.page
    page.locator("input#as-job").check()
    console.open("chats")
    page.locator("select#chat-format").select_option(fmt)
    page.locator("input#chat-limit").fill(str(random.randint(1000, 900_000)))
    with page.expect_response(lambda r: JOBS_POST.search(r.url) is not None and r.request.method == "POST") as info:
        page.locator("button#export-chats").click()
    assert info.value.status == 202, info.value.text()
    return info.value.json()["id"]


def test_job_progress_and_fresh_downloads(console):
    page = console.page
    console.sign_in("user")
    with page.expect_download(timeout=60_000) as first:
        job_id = start_chat_job(console)
        console.open("exports")
        row = page.locator(f'table#jobs tr[data-job-id="{job_id}"]')
        expect(row).to_be_visible()
        expect(row.locator("progress")).to_have_count(1)
        expect(row.locator("td.status")).to_contain_text("succeeded", timeout=60_000)
    # The export itself downloads its file when the job is done.
    name = first.value.suggested_filename
    data = open(first.value.path(), "rb").read()
    assert name in names_for("chat-export", "csv")
    expect(row.locator("button.cancel")).to_have_count(0)
    console.screenshot("console-exports.png")

    link_reads = []
    page.on("request", lambda r: link_reads.append(r.url) if r.url.endswith(f"/api/exports/{job_id}") else None)
    for i in range(2):
        got_name, got = console.download(lambda: row.locator("button.download").click())
        assert got_name == name
        assert got == data
    assert len(link_reads) == 2, "each download reads a fresh link"
    status, job = api_json("GET", f"/api/exports/{job_id}", console.tokens["user"])
    assert status == 200 and job["status"] == "succeeded"


@contextmanager
def worker_paused():
    """Pauses the export worker (when the harness says which it is), so a job stays queued."""
    pid = int(os.environ.get("WORKER_PID") or 0)
    if pid:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield bool(pid)
    finally:
        if pid:
            os.kill(pid, signal.SIGCONT)


def test_cancel_a_job(console):
    page = console.page
    console.sign_in("user")
    with worker_paused() as paused:
        job_id = start_chat_job(console)
        console.open("exports")
        row = page.locator(f'table#jobs tr[data-job-id="{job_id}"]')
        expect(row).to_be_visible()
        status = row.locator("td.status")
        if paused:
            expect(status).to_contain_text("queued")
        cancel = row.locator("button.cancel")
        if cancel.count():
            cancel.click()
        if paused or api_json("GET", f"/api/exports/{job_id}", console.tokens["user"])[1]["status"] != "succeeded":
            expect(status).to_contain_text("cancelled")
            expect(row.locator("button.download")).to_have_count(0)
        else:  # finished before the click: nothing left to cancel
            expect(status).to_contain_text("succeeded")
        expect(row.locator("button.cancel")).to_have_count(0)
    _, job = api_json("GET", f"/api/exports/{job_id}", console.tokens["user"])
    assert job["status"] in (("cancelled",) if paused else ("cancelled", "succeeded"))


def test_delete_a_finished_job_asks_first_then_removes_it_everywhere(console):
    """Delete (DELETE /api/exports/{id}) asks in the row; Keep (or Escape) keeps it;
    Delete removes the row, and the job and its file are gone from the API too."""
    page = console.page
    console.sign_in("user")
    job_id = start_chat_job(console)
    token = console.tokens["user"]
    for _ in range(300):
        _, job = api_json("GET", f"/api/exports/{job_id}", token)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    console.open("exports")
    row = page.locator(f'table#jobs tr[data-job-id="{job_id}"]')
    expect(row.locator("td.status")).to_contain_text("succeeded")
    row.locator("button.delete").click()
    expect(row.locator(".confirm-text")).to_contain_text("Delete this export")
    expect(row.locator("button.keep-job")).to_be_focused()
    page.keyboard.press("Escape")
    expect(row.locator("button.delete")).to_be_focused()
    assert api_json("GET", f"/api/exports/{job_id}", token)[0] == 200
    row.locator("button.delete").click()
    with page.expect_response(lambda r: f"/api/exports/{job_id}" in r.url and r.request.method == "DELETE") as info:
        row.locator("button.confirm-delete-job").click()
    assert info.value.status == 204
    expect(row).to_have_count(0)
    expect(console.toast("success", "Deleted")).to_be_visible()
    assert api_json("GET", f"/api/exports/{job_id}", token)[0] == 404
    status, _, _ = api("GET", "/ignored", url=job["download_url"])
    assert status != 200, "the stored file is deleted"


def test_older_exports_come_page_by_page(console):
    """The history shows 20 exports at a time; "Older" loads the next page."""
    token = console.tokens["pager"]
    _, history = api_json("GET", "/api/exports", token, params={"limit": "100"})
    for _ in range(max(0, 25 - len(history["exports"]))):  # synchronous exports are history too
        status, _, _ = api("GET", "/api/hybrid-leads/export", token, params={"columns": "lead_id"})
        assert status == 200
    _, history = api_json("GET", "/api/exports", token, params={"limit": "100"})
    total = len(history["exports"])
    assert total >= 25

    page = console.page
    console.sign_in("pager")
    console.open("exports")
    rows = page.locator("table#jobs tr[data-job-id]")
    more = page.locator("button#jobs-more")
    expect(rows).to_have_count(20)
    expect(more).to_be_visible()
    while more.is_visible():
        before = rows.count()
        more.click()
        expect(rows).not_to_have_count(before)
    expect(rows).to_have_count(total)
    shown = [rows.nth(i).get_attribute("data-job-id") for i in range(total)]
    assert shown == [j["id"] for j in history["exports"]], "newest first, each once"


# --- 8. tenancy ----------------------------------------------------------------------------


def test_other_tenant_sees_only_their_own(console):
    page = console.page
    user, other = console.tokens["user"], console.tokens["other"]
    # A job of the first user, started through the API.
    status, job = api_json("POST", "/api/exports", user, body={"kind": "conversations", "format": "csv"},
                           headers={"Cache-Control": "no-cache"})
    assert status == 202, job
    _, history = api_json("GET", "/api/exports", user, params={"limit": "100"})
    user_jobs = {j["id"] for j in history["exports"]} | {job["id"]}

    console.sign_in("other")
    console.open("chats")
    page.locator("input#chat-meta").check()
    check_chat_json(export_chats(console, "json"), "client-beta")

    with page.expect_response(lambda r: urllib.parse.urlsplit(r.url).path == "/api/exports") as listed:
        console.open("exports")
    assert listed.value.status == 200
    rows = page.locator("table#jobs tr[data-job-id]")
    expect(rows).not_to_have_count(0)  # their own chats export is in their history
    shown = {rows.nth(i).get_attribute("data-job-id") for i in range(rows.count())}
    assert not shown & user_jobs, "another tenant's jobs are listed"
    expect(page.locator(f'tr[data-job-id="{job["id"]}"]')).to_have_count(0)
    # And the API agrees: the first user's job is not theirs to see.
    assert api_json("GET", f"/api/exports/{job['id']}", other)[0] == 404


# --- 9. signing in and out -------------------------------------------------------------------


def test_sign_out_and_token_hygiene(console):
    page = console.page
    token = console.sign_in("user")
    assert "#token" not in page.url and token not in page.url
    assert page.evaluate("sessionStorage.getItem('token')") == token

    # An error and a success toast: neither shows the token (the fixture checks every toast).
    console.open("chats")
    page.locator("input#chat-limit").fill("0")
    page.locator("button#export-chats").click()
    expect(console.toast("error")).to_be_visible()
    page.locator("input#chat-limit").fill("5")
    console.download(lambda: page.locator("button#export-chats").click())
    expect(console.toast("success")).to_be_visible()
    for t in console.toast_log():
        assert token not in t["text"]

    page.locator("button#sign-out").click()
    expect(page.locator("section#view-signin")).to_be_visible()
    expect(page.locator("textarea#token-input")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('token')") is None
    assert page.evaluate("sessionStorage.length") == 0
    for view in ("sessions", "leads", "chats", "exports"):
        expect(page.locator(f"#view-{view}")).to_be_hidden()
    expect(page.locator("#whoami")).to_be_empty()
    assert token not in page.content()

    # After a reload, still signed out; then sign in by pasting a token.
    page.reload()
    expect(page.locator("section#view-signin")).to_be_visible()
    page.locator("textarea#token-input").fill(console.tokens["admin"])
    page.locator("button#sign-in").click()
    expect(page.locator("#whoami")).to_contain_text("admin-bt")
    expect(page.locator('[data-view="sessions"]')).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('token')") == console.tokens["admin"]
    assert console.tokens["admin"] not in page.url
