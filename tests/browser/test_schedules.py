"""The console's Schedules page (docs/schedules.md), in headless Chromium against
`exportctl serve` and its worker, with the seeded data of scripts/browser-tests.sh.

A schedule is created through the form (watching the preview follow the edits, and a bad
cron shown next to its field), listed, paused and resumed; then the scheduler is ticked
deterministically with `exportctl schedules tick --at <its next run>` (the same
environment as the server: the dedicated tables and queue), the worker runs the job, and
the run is downloaded from the schedule's details; last, the schedule is deleted through
the confirm step, by keyboard.
"""

import json
import os
import random
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from playwright.sync_api import expect

from conftest import api_json

EXPORTCTL = os.environ.get("EXPORTCTL", "target/debug/exportctl")
PREVIEW_ROUTE = re.compile(r"/api/schedules/preview$")
SCHEDULES_POST = re.compile(r"/api/schedules$")
SECRETS_POST = re.compile(r"/api/webhook-secrets$")
# A loopback receiver the local stack lets through (local.env: WEBHOOK_ALLOW_LOOPBACK=true);
# nothing listens on port 9, and nothing needs to for a schedule to be made.
LOOPBACK_HOOK = "http://127.0.0.1:9/hook"
LEADS_HEADER = b"Lead ID,"
# The `email` claim of USER_TOKEN (scripts/browser-tests.sh), when `exportctl token` has --email.
USER_EMAIL = os.environ.get("USER_EMAIL", "").strip()
SES_URL = os.environ.get("AWS_ENDPOINT_URL_SESV2", "").rstrip("/")


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def shown(dt, offset="UTC+00:00"):
    """How the console shows a time (in the schedule's zone, here UTC): `Tue 2026-12-01 02:00 UTC+00:00`."""
    return f"{dt.strftime('%a %Y-%m-%d %H:%M')} {offset}"


def next_daily(hour, minute=0, now=None):
    """The next `minute hour * * *` firing in UTC after now."""
    now = now or datetime.now(timezone.utc)
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


def tick(at):
    """One scheduler tick as of `at`, as `exportctl serve` would run it (same environment)."""
    proc = subprocess.run(
        [EXPORTCTL, "--json", "schedules", "tick", "--at", iso(at)],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )
    assert proc.returncode == 0, f"exportctl schedules tick: {proc.returncode}\n{proc.stdout}\n{proc.stderr[-2000:]}"
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return {"raw": proc.stdout}


def mail_to(address, needle, timeout=45):
    """The SES emulator's stored mail (GET /store) once it has a message to `address`
    mentioning `needle` (e.g. a job id in the download link); its text."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{SES_URL}/store", timeout=10) as resp:
            text = resp.read().decode("utf-8", "replace")
        if address in text and needle in text:
            return text
        assert time.monotonic() < deadline, f"no email to {address} naming {needle}"
        time.sleep(0.5)


def unique(name):
    return f"{name} {random.randint(10_000, 99_999)}"


def preview_requests(page):
    """The bodies of every preview request the page sends from now on."""
    sent = []
    page.on("request", lambda r: sent.append(r.post_data_json)
            if PREVIEW_ROUTE.search(urllib.parse.urlsplit(r.url).path) and r.method == "POST" else None)
    return sent


def schedule_of(token, name):
    status, body = api_json("GET", "/api/schedules", token)
    assert status == 200, body
    found = [s for s in body["schedules"] if s["name"] == name]
    assert len(found) == 1, f"{name!r} listed {len(found)} times"
    return found[0]


def open_schedules(console, who="user"):
    page = console.page
    console.sign_in(who)
    with page.expect_response(lambda r: urllib.parse.urlsplit(r.url).path == "/api/schedules"
                              and r.request.method == "GET") as listed:
        console.open("schedules")
    assert listed.value.status == 200, listed.value.text()
    return page


# --- the whole life of a schedule ------------------------------------------------------------


def test_schedule_create_pause_resume_run_download_delete(console):
    page = open_schedules(console)
    token = console.tokens["user"]
    sent = preview_requests(page)
    form = page.locator("form#schedule-form")
    status = page.locator("#schedule-preview-status")
    runs = page.locator("#schedule-preview-runs li")

    # Defaults: the browser's time zone, a daily cron preset, enabled, no email.
    browser_tz = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    expect(page.locator("input#sched-tz")).to_have_value(browser_tz)
    expect(page.locator("input#sched-cron")).to_have_value("0 2 * * *")
    expect(page.locator("input#sched-enabled")).to_be_checked()
    expect(page.locator("input#sched-emails")).to_have_value("")
    # Sessions are for admins only.
    kinds = page.locator("select#sched-kind option:not([hidden])").evaluate_all("os => os.map(o => o.value)")
    assert kinds == ["leads", "chats", "conversations"]

    name = unique("Nightly new leads")
    page.locator("input#sched-name").fill(name)
    page.locator("select#sched-kind").select_option("leads")
    page.locator("select#sched-format").select_option("csv")
    page.locator("select#sched-lead-status").select_option("new")
    page.locator("input#sched-tz").fill("UTC")
    page.locator("select#sched-window").select_option("previous_period")
    if USER_EMAIL:  # a non-admin may have the export emailed to their own address only
        page.locator("input#sched-emails").fill(USER_EMAIL)

    # The preview: the server's description and the next five runs, with their windows.
    first = next_daily(2)
    expect(runs).to_have_count(5)
    expect(runs.first).to_contain_text(shown(first))
    window_end = first.replace(hour=0)
    expect(runs.first).to_contain_text(f"from {shown(window_end - timedelta(days=1))}")
    expect(runs.first).to_contain_text(f"up to {shown(window_end)}")
    expect(status).not_to_be_empty()
    daily = status.inner_text()
    # A screen reader hears the whole date and the zone.
    spoken = runs.first.locator("time .visually-hidden").first
    expect(spoken).to_contain_text(first.strftime("%B"))
    expect(spoken).to_contain_text("Coordinated Universal Time")
    expect(runs.first.locator("time").first).to_have_attribute("datetime", re.compile(rf"^{first.strftime('%Y-%m-%dT%H:%M')}"))
    assert sent and sent[-1]["window"] == "previous_period" and sent[-1]["time_zone"] == "UTC"

    # Typing a new cron: one debounced preview for the whole edit, which follows it.
    cron = page.locator("input#sched-cron")
    cron.fill("")
    before = len(sent)
    cron.press_sequentially("30 4 * * *", delay=15)
    expect(runs.first).to_contain_text(shown(next_daily(4, 30)))
    expect(status).not_to_have_text(daily)
    assert 1 <= len(sent) - before <= 3, f"{len(sent) - before} previews for 10 keystrokes"
    assert sent[-1]["cron"] == "30 4 * * *"
    expect(page.locator("select#sched-preset")).to_have_value("")  # a hand-written cron: "Custom"

    # A bad cron: the server's 400 names the field, and it is shown next to it.
    cron.fill("61 2 * * *")
    cron_error = page.locator("#sched-cron-error")
    expect(cron_error).to_be_visible()
    expect(cron_error).to_contain_text("cron")
    expect(cron).to_have_attribute("aria-invalid", "true")
    expect(cron).to_have_attribute("aria-describedby", re.compile(r"\bsched-cron-error\b"))
    expect(status).to_have_class(re.compile(r"\bpreview-error\b"))
    expect(runs).to_have_count(0)
    console.screenshot("console-schedule-bad-cron.png")

    # The preset puts a good cron back; the error goes.
    page.locator("select#sched-preset").select_option("cron|0 2 * * *")
    expect(cron).to_have_value("0 2 * * *")
    expect(cron_error).to_be_hidden()
    expect(cron).not_to_have_attribute("aria-invalid", "true")
    expect(runs.first).to_contain_text(shown(first))
    expect(status).to_have_text(daily)
    console.screenshot("console-schedule-form.png")

    # Create.
    with page.expect_response(lambda r: SCHEDULES_POST.search(urllib.parse.urlsplit(r.url).path)
                              and r.request.method == "POST") as created:
        page.locator("button#sched-create").click()
    assert created.value.status == 201, created.value.text()
    body = created.value.request.post_data_json
    expected = {
        "name": name,
        "export": {"kind": "leads", "format": "csv", "params": {"status": "new"}},
        "cron": "0 2 * * *",
        "time_zone": "UTC",
        "window": "previous_period",
        "enabled": True,
    }
    if USER_EMAIL:
        expected["notify"] = {"emails": [USER_EMAIL], "on_empty": True}
    assert body == expected
    schedule = created.value.json()
    expect(console.toast("success", name)).to_be_visible()
    expect(page.locator("input#sched-name")).to_have_value("")

    row = page.locator(f'table#schedules tr[data-schedule-id="{schedule["id"]}"]')
    expect(row).to_be_visible()
    expect(row.locator("th.name")).to_have_text(name)
    expect(row.locator("td.export")).to_contain_text("Leads · CSV · status new")
    expect(row.locator("td.cadence")).to_contain_text(schedule["description"])
    expect(row.locator("td.window")).to_have_text("Previous period")
    expect(row.locator("td.tz")).to_have_text("UTC")
    expect(row.locator("td.next")).to_contain_text(shown(first))
    expect(row.locator("td.state")).to_have_text("enabled")
    assert schedule_of(token, name)["id"] == schedule["id"]
    console.screenshot("console-schedules.png")

    # Pause, then resume.
    toggle = row.locator("button.toggle")
    expect(toggle).to_contain_text("Pause")
    toggle.click()
    expect(console.toast("success", f"Paused “{name}”")).to_be_visible()
    expect(row.locator("td.state")).to_have_text("paused")
    expect(row.locator("td.next")).to_contain_text("paused")
    expect(toggle).to_contain_text("Resume")
    expect(toggle).to_be_focused()
    paused = schedule_of(token, name)
    assert paused["enabled"] is False and paused["next_run_at"] is None

    toggle.click()
    expect(console.toast("success", f"Resumed “{name}”")).to_be_visible()
    expect(row.locator("td.state")).to_have_text("enabled")
    expect(row.locator("td.next")).to_contain_text(shown(first))
    expect(toggle).to_contain_text("Pause")
    resumed = schedule_of(token, name)
    assert resumed["enabled"] is True and resumed["next_run_at"].startswith(first.strftime("%Y-%m-%dT%H:%M"))

    # The scheduler's tick at the next run starts its job; the worker runs it.
    report = tick(first + timedelta(seconds=30))

    row.locator("button.runs").click()
    details = page.locator("#schedule-details")
    expect(details).to_be_visible()
    expect(page.locator("#schedule-details-title")).to_contain_text(name)
    expect(page.locator("#schedule-details-title")).to_be_focused()
    run_rows = page.locator("table#schedule-runs tbody tr[data-job-id]")
    expect(run_rows).to_have_count(1)
    run = run_rows.first
    job_id = run.get_attribute("data-job-id")
    if isinstance(report, dict) and "created" in report:
        assert job_id in report["created"], report
    expect(run.locator("td.run-at")).to_contain_text(shown(first))
    expect(run.locator("td.window-start")).to_contain_text(shown(window_end - timedelta(days=1)))
    expect(run.locator("td.window-end")).to_contain_text(shown(window_end))
    # The page polls while the run is queued or running.
    expect(run.locator("td.status")).to_contain_text("succeeded", timeout=60_000)
    expect(run.locator("td.rows")).to_contain_text(re.compile(r"\d+ rows?"))
    expect(run.locator("td.size")).not_to_have_text("—")
    console.screenshot("console-schedule-runs.png")

    file_name, data = console.download(lambda: run.locator("button.download").click())
    assert file_name.endswith(".csv"), file_name
    assert data.lstrip(b"\xef\xbb\xbf").startswith(LEADS_HEADER), data[:200]
    status_code, job = api_json("GET", f"/api/exports/{job_id}", token)
    assert status_code == 200 and job["status"] == "succeeded" and job["trigger"] == "schedule", job
    assert job["file_name"] == file_name
    if USER_EMAIL and SES_URL:
        # The worker emailed the recipient a link naming the job (never the file).
        mail_to(USER_EMAIL, job_id)

    # The next runs moved on past the tick: the first is the next day's (checked last).
    next_after_tick = page.locator("#schedule-details-next li").first.inner_text()

    # Delete, by keyboard: the confirm step takes focus; Escape keeps the schedule.
    delete = row.locator("button.delete")
    delete.focus()
    page.keyboard.press("Enter")
    confirm = row.locator('[role="group"]')
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text(f"Delete “{name}”?")
    expect(row.locator("button.cancel-delete")).to_be_focused()
    page.keyboard.press("Escape")
    expect(confirm).to_have_count(0)
    expect(delete).to_be_focused()

    page.keyboard.press("Enter")
    expect(row.locator("button.cancel-delete")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(row.locator("button.confirm-delete")).to_be_focused()
    page.keyboard.press("Enter")
    expect(console.toast("success", f"Deleted “{name}”")).to_be_visible()
    expect(row).to_have_count(0)
    expect(details).to_be_hidden()
    assert api_json("GET", f"/api/schedules/{schedule['id']}", token)[0] == 404
    # Its jobs and files stay until they expire.
    assert api_json("GET", f"/api/exports/{job_id}", token)[0] == 200
    assert shown(first + timedelta(days=1)) in next_after_tick, next_after_tick


# --- field errors, kinds, tenancy ----------------------------------------------------------


def test_create_errors_are_shown_at_their_field(console):
    page = open_schedules(console)
    before = {s["id"] for s in api_json("GET", "/api/schedules", console.tokens["user"])[1]["schedules"]}

    # No name: the server's 400 names the field; the form shows it there and focuses it.
    with page.expect_response(lambda r: SCHEDULES_POST.search(urllib.parse.urlsplit(r.url).path)
                              and r.request.method == "POST") as created:
        page.locator("button#sched-create").click()
    assert created.value.status == 400
    message = created.value.json()["message"]
    name_error = page.locator("#sched-name-error")
    expect(name_error).to_be_visible()
    expect(name_error).to_have_text(message)
    expect(page.locator("input#sched-name")).to_be_focused()
    expect(console.toast("error", message)).to_be_visible()

    # A time zone that does not exist, and a rate.
    page.locator("input#sched-name").fill(unique("Bad zone"))
    page.locator("input#sched-cadence-rate").check()
    expect(page.locator("input#sched-rate")).to_be_visible()
    expect(page.locator("input#sched-cron")).to_be_hidden()
    page.locator("input#sched-rate").fill("2 hours")
    expect(page.locator("#schedule-preview-runs li")).to_have_count(5)
    page.locator("input#sched-tz").fill("Mars/Olympus_Mons")
    tz_error = page.locator("#sched-tz-error")
    expect(tz_error).to_be_visible()
    expect(tz_error).to_contain_text("time_zone")
    expect(page.locator("input#sched-tz")).to_have_attribute("aria-invalid", "true")
    page.locator("button#sched-create").click()
    expect(console.toast("error", "time_zone")).to_be_visible()

    # Berlin: times are shown with their offset.
    page.locator("input#sched-tz").fill("Europe/Berlin")
    expect(tz_error).to_be_hidden()
    expect(page.locator("#schedule-preview-runs li").first).to_contain_text(re.compile(r"UTC\+0[12]:00"))

    # Someone else's address: a non-admin may only notify their own (the token's email).
    page.locator("input#sched-emails").fill("someone.else@example.com")
    emails_error = page.locator("#sched-emails-error")
    expect(emails_error).to_be_visible()
    expect(emails_error).to_contain_text("notify")
    expect(page.locator("input#sched-emails")).to_have_attribute("aria-invalid", "true")
    page.locator("input#sched-emails").fill("")
    expect(emails_error).to_be_hidden()

    after = {s["id"] for s in api_json("GET", "/api/schedules", console.tokens["user"])[1]["schedules"]}
    assert after == before, "a refused schedule was stored"


def test_kinds_and_windows_follow_the_role(console):
    page = open_schedules(console, "admin")
    kinds = page.locator("select#sched-kind option:not([hidden])").evaluate_all("os => os.map(o => o.value)")
    assert kinds == ["leads", "chats", "conversations", "sessions"]
    expect(page.locator("input#schedules-owner")).to_be_visible()

    page.locator("select#sched-kind").select_option("chats")
    expect(page.locator("input#sched-client")).to_be_visible()
    formats = page.locator("select#sched-format option").evaluate_all("os => os.map(o => o.value)")
    assert set(formats) == {"csv", "json", "jsonl", "parquet", "excel", "both"}
    expect(page.locator("#sched-params-leads")).to_be_hidden()

    # Sessions have no date field: only the window "none".
    page.locator("select#sched-window").select_option("previous_period")
    page.locator("select#sched-kind").select_option("sessions")
    expect(page.locator("select#sched-window")).to_have_value("none")
    disabled = page.locator("select#sched-window option").evaluate_all("os => os.filter(o => o.disabled).map(o => o.value)")
    assert disabled == ["previous_period", "incremental"]
    expect(page.locator("input#sched-client")).to_be_hidden()
    formats = page.locator("select#sched-format option").evaluate_all("os => os.map(o => o.value)")
    assert formats == ["csv", "xlsx", "json", "jsonl", "parquet"]

    # An admin's chats schedule for one client, made in the browser.
    page.locator("select#sched-kind").select_option("conversations")
    name = unique("Hourly conversations")
    page.locator("input#sched-name").fill(name)
    page.locator("input#sched-client").fill("client-beta")
    page.locator("select#sched-preset").select_option("rate|1 hour")
    expect(page.locator("input#sched-cadence-rate")).to_be_checked()
    expect(page.locator("input#sched-rate")).to_have_value("1 hour")
    page.locator("input#sched-tz").fill("UTC")
    expect(page.locator("#schedule-preview-runs li")).to_have_count(5)
    page.locator("button#sched-create").click()
    expect(console.toast("success", name)).to_be_visible()
    s = schedule_of(console.tokens["admin"], name)
    assert s["rate"] and s["cron"] is None
    assert s["export"]["params"]["client_id"] == "client-beta"
    row = page.locator(f'table#schedules tr[data-schedule-id="{s["id"]}"]')
    expect(row).to_contain_text("admin-bt")  # admins see each schedule's owner
    assert api_json("DELETE", f"/api/schedules/{s['id']}", console.tokens["admin"])[0] == 204


def test_other_tenant_does_not_see_a_schedule(console):
    user, other = console.tokens["user"], console.tokens["other"]
    name = unique("Private schedule")
    status, mine = api_json("POST", "/api/schedules", user, body={
        "name": name, "export": {"kind": "conversations", "format": "csv"}, "rate": "1 day",
    })
    assert status == 201, mine
    page = open_schedules(console, "other")
    expect(page.locator("#schedules-empty, table#schedules tbody tr").first).to_be_visible()
    expect(page.locator(f'tr[data-schedule-id="{mine["id"]}"]')).to_have_count(0)
    expect(page.locator("table#schedules")).not_to_contain_text(name)
    assert api_json("GET", f"/api/schedules/{mine['id']}", other)[0] == 404
    assert api_json("DELETE", f"/api/schedules/{mine['id']}", user)[0] == 204


def test_page_never_shows_the_token(console):
    page = open_schedules(console)
    token = console.tokens["user"]
    page.locator("input#sched-cron").fill("nope")
    expect(page.locator("#sched-cron-error")).to_be_visible()
    assert token not in page.content()


# --- webhooks (docs/api.md, "Webhooks") ------------------------------------------------------


def make_secret(page):
    """Clicks "New secret"; the 201's body ({id, secret, ...})."""
    with page.expect_response(lambda r: SECRETS_POST.search(urllib.parse.urlsplit(r.url).path)
                              and r.request.method == "POST") as made:
        page.locator("button#sched-webhook-new").click()
    assert made.value.status == 201, made.value.text()
    return made.value.json()


def test_webhook_secret_is_shown_once_and_a_schedule_gets_the_webhook(console):
    page = open_schedules(console)
    token = console.tokens["user"]
    reveal = page.locator("#sched-webhook-reveal")
    expect(reveal).to_be_hidden()

    # "New secret": its id fills the form; the whsec_ value is shown once, read-only.
    secret = make_secret(page)
    assert secret["secret"].startswith("whsec_"), secret
    expect(page.locator("input#sched-webhook-secret")).to_have_value(secret["id"])
    expect(reveal).to_be_visible()
    expect(reveal).to_contain_text("shown only once")
    value = page.locator("input#sched-webhook-secret-value")
    expect(value).to_have_value(secret["secret"])
    expect(value).to_have_attribute("readonly", "")
    expect(console.toast("success", "shown only once")).to_be_visible()
    # Kept nowhere but that box: not in storage, the console, a toast or the markup.
    stored = page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    assert secret["secret"] not in stored
    assert not any(secret["secret"] in line for line in console.console_lines)
    assert not any(secret["secret"] in t["text"] for t in console.toast_log())
    assert secret["secret"] not in page.content()

    # A schedule with the webhook: the preview accepts it, the request carries it.
    name = unique("Hooked leads")
    page.locator("input#sched-name").fill(name)
    page.locator("input#sched-tz").fill("UTC")
    page.locator("input#sched-webhook-url").fill(LOOPBACK_HOOK)
    expect(page.locator("#schedule-preview-runs li")).to_have_count(5)
    with page.expect_response(lambda r: SCHEDULES_POST.search(urllib.parse.urlsplit(r.url).path)
                              and r.request.method == "POST") as created:
        page.locator("button#sched-create").click()
    assert created.value.status == 201, created.value.text()
    assert created.value.request.post_data_json["notify"] == {
        "webhooks": [{"url": LOOPBACK_HOOK, "secret_id": secret["id"]}],
    }
    schedule = created.value.json()
    expect(console.toast("success", name)).to_be_visible()

    # Shown in its row (the host) and in its details (the URL).
    row = page.locator(f'table#schedules tr[data-schedule-id="{schedule["id"]}"]')
    expect(row.locator("td.export .webhooks")).to_have_text("webhook 127.0.0.1:9")
    row.locator("button.runs").click()
    expect(page.locator("#schedule-details-webhooks")).to_contain_text(LOOPBACK_HOOK)
    assert schedule_of(token, name)["notify"]["webhooks"] == [{"url": LOOPBACK_HOOK, "secret_id": secret["id"]}]
    console.screenshot("console-schedule-webhook.png")

    # Once: after a reload the box is empty and hidden (the id stays the API's to name).
    page.reload()
    console.open("schedules")
    expect(reveal).to_be_hidden()
    expect(value).to_have_value("")

    assert api_json("DELETE", f"/api/schedules/{schedule['id']}", token)[0] == 204
    assert api_json("DELETE", f"/api/webhook-secrets/{secret['id']}", token)[0] == 204


def test_refused_webhook_url_and_unknown_secret_show_the_server_message(console):
    page = open_schedules(console)
    token = console.tokens["user"]
    before = {s["id"] for s in api_json("GET", "/api/schedules", token)[1]["schedules"]}
    page.locator("input#sched-name").fill(unique("Private hook"))
    url_input = page.locator("input#sched-webhook-url")
    url_error = page.locator("#sched-webhook-url-error")

    # A private address: the server's 400, next to the URL.
    url_input.fill("http://10.0.0.1/hook")
    with page.expect_response(lambda r: SCHEDULES_POST.search(urllib.parse.urlsplit(r.url).path)
                              and r.request.method == "POST") as created:
        page.locator("button#sched-create").click()
    assert created.value.status == 400, created.value.text()
    message = created.value.json()["message"]
    assert "notify.webhooks[0].url" in message, message
    expect(url_error).to_be_visible()
    expect(url_error).to_have_text(message)
    expect(url_input).to_have_attribute("aria-invalid", "true")
    expect(url_input).to_be_focused()
    expect(console.toast("error", message)).to_be_visible()

    # A secret id that is not one of the caller's: the server's 400, next to the secret.
    url_input.fill(LOOPBACK_HOOK)
    expect(url_error).to_be_hidden()
    page.locator("input#sched-webhook-secret").fill("0" * 32)
    with page.expect_response(lambda r: SCHEDULES_POST.search(urllib.parse.urlsplit(r.url).path)
                              and r.request.method == "POST") as created:
        page.locator("button#sched-create").click()
    assert created.value.status == 400, created.value.text()
    message = created.value.json()["message"]
    assert "secret_id" in message, message
    expect(page.locator("#sched-webhook-secret-error")).to_have_text(message)
    expect(url_error).to_be_hidden()

    after = {s["id"] for s in api_json("GET", "/api/schedules", token)[1]["schedules"]}
    assert after == before, "a refused schedule was stored"


@contextmanager
def receiver():
    """A webhook receiver on 127.0.0.1 (a free port) answering 200; yields its URL."""
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_exports_list_shows_each_webhook_delivery(console):
    token = console.tokens["user"]
    status, secret = api_json("POST", "/api/webhook-secrets", token)
    assert status == 201, secret
    with receiver() as url:
        status, job = api_json("POST", "/api/exports", token, body={
            "kind": "conversations", "format": "csv",
            "notify": {"webhooks": [{"url": url, "secret_id": secret["id"]}]},
        })
        assert status == 202, job
        deadline = time.monotonic() + 60
        while True:
            _, job = api_json("GET", f"/api/exports/{job['id']}", token)
            if job["webhooks"] and job["webhooks"][0]["delivered"]:
                break
            assert time.monotonic() < deadline, f"the webhook was not delivered: {job}"
            time.sleep(0.2)
    host = urllib.parse.urlsplit(url).netloc

    page = console.page
    console.sign_in("user")
    console.open("exports")
    row = page.locator(f'table#jobs tr[data-job-id="{job["id"]}"]')
    expect(row.locator("td.file .webhook-deliveries li")).to_have_text(
        f"webhook {host}: delivered, 1 attempt, last 200")
    expect(row.locator("td.file")).not_to_contain_text("/hook")  # the host only
    assert api_json("DELETE", f"/api/webhook-secrets/{secret['id']}", token)[0] == 204
