"""Fixtures of the web console's browser tests (Playwright, sync API).

scripts/browser-tests.sh starts `exportctl serve` on dedicated tables and sets:
BASE_URL, ADMIN_TOKEN, USER_TOKEN (client-alpha / comp-acme), OTHER_TOKEN (client-beta /
comp-globex), PAGER_TOKEN (client-gamma / comp-umbrella, whose history only the pages
test writes), SCREENSHOT_DIR, WORKER_PID (the export worker, which the cancel test pauses),
CHROMIUM (Debian's /usr/bin/chromium; no browser is ever downloaded), EXPORTCTL (the
binary the schedules tests tick the scheduler with, in this same environment) and
USER_EMAIL (USER_TOKEN's `email` claim; empty when `exportctl token` has no --email).
"""

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:3400").rstrip("/")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOT_DIR = Path(os.environ.get("SCREENSHOT_DIR", ".stack/screenshots"))
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Generous: a debug build on 2 cores, with the worker and the emulators beside it.
TIMEOUT_MS = 30_000
expect.set_options(timeout=15_000)

# Every toast that ever appears (they go away after a few seconds), for the check that
# no toast ever shows a token.
TOAST_LOG_SCRIPT = """
(() => {
  window.__toastLog = [];
  const watch = () => {
    const box = document.getElementById("toasts");
    if (!box) return;
    const seen = new WeakMap();
    const record = () => {
      for (const t of box.querySelectorAll(".toast")) {
        const text = t.textContent;
        if (seen.get(t) !== text) {
          seen.set(t, text);
          window.__toastLog.push({ className: t.className, text });
        }
      }
    };
    new MutationObserver(record).observe(box, { childList: true, subtree: true, characterData: true });
    record();
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watch);
  else watch();
})();
"""


def env_token(name):
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(f"{name} is not set: run the tests through scripts/browser-tests.sh (make browser)")
    return value


@pytest.fixture(scope="session")
def tokens():
    return {
        "admin": env_token("ADMIN_TOKEN"),
        "user": env_token("USER_TOKEN"),
        "other": env_token("OTHER_TOKEN"),
        "pager": env_token("PAGER_TOKEN"),
    }


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


class Console:
    """The console in one browser tab, driven as a person would."""

    def __init__(self, page, tokens):
        self.page = page
        self.tokens = tokens
        self.console_lines = []
        self.page_errors = []
        page.on("console", lambda m: self.console_lines.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))

    # --- navigation ---------------------------------------------------------------------
    def sign_in(self, who):
        token = self.tokens[who]
        self.page.goto(f"{BASE_URL}/#token={token}")
        expect(self.page.locator("#whoami")).not_to_be_empty()
        expect(self.page.locator("#view-signin")).to_be_hidden()
        return token

    def open(self, view):
        self.page.locator(f'[data-view="{view}"]').click()
        expect(self.page.locator(f"#view-{view}")).to_be_visible()

    def screenshot(self, name):
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOT_DIR / name), full_page=True)

    # --- downloads ----------------------------------------------------------------------
    def download(self, click, timeout=60_000):
        """Runs click() and returns (suggested file name, bytes) of the download it starts."""
        with self.page.expect_download(timeout=timeout) as info:
            click()
        d = info.value
        path = d.path()
        assert d.failure() is None, f"download of {d.suggested_filename} failed: {d.failure()}"
        return d.suggested_filename, Path(path).read_bytes()

    # --- toasts -------------------------------------------------------------------------
    def toast(self, kind, text=None):
        """The toast of a kind ("success", "error") with the text (str or regex)."""
        loc = self.page.locator(f"#toasts div.toast.toast-{kind}")
        if text is not None:
            loc = loc.filter(has_text=text)
        return loc.last

    def toast_log(self):
        return self.page.evaluate("window.__toastLog || []")

    # --- waiting ------------------------------------------------------------------------
    def wait_until(self, predicate, what, timeout=TIMEOUT_MS):
        """Polls predicate() while the page keeps running (events, routes) until true."""
        deadline = time.monotonic() + timeout / 1000
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            self.page.wait_for_timeout(50)


@pytest.fixture
def console(browser, tokens, request):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(TOAST_LOG_SCRIPT)
    page = context.new_page()
    c = Console(page, tokens)
    yield c
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    try:
        if failed:
            c.screenshot(f"failed-{request.node.name}.png")
            print(f"url: {page.url}")
            print("toasts:", json.dumps(c.toast_log(), ensure_ascii=False))
            print("console:", *c.console_lines[-40:], sep="\n  ")
            print("page errors:", *c.page_errors, sep="\n  ")
        else:
            # Everywhere: no token in the address bar, and no toast ever showed one.
            for token in tokens.values():
                assert token not in page.url
                for t in c.toast_log():
                    assert token not in t["text"], f"a toast showed a token: {t}"
            assert c.page_errors == [], f"uncaught errors in the page: {c.page_errors}"
    finally:
        context.close()


# --- the API, directly (no browser) ----------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def api(method, path, token=None, params=None, body=None, headers=None, url=None):
    """One request; returns (status, headers, bytes). Redirects are not followed."""
    if url is None:
        url = BASE_URL + path
        if params:
            url += "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with _opener.open(req, timeout=60) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def api_json(method, path, token, params=None, body=None, headers=None):
    status, _, data = api(method, path, token, params=params, body=body, headers=headers)
    return status, (json.loads(data) if data else None)


def file_name_of(disposition):
    m = re.search(r'filename="([^"]+)"', disposition or "")
    return m.group(1) if m else None


def api_file(path, token, params=None, url=None):
    """A file export fetched directly: (file name, bytes), following a 303 to S3 (no token)."""
    status, headers, data = api("GET", path, token, params=params, url=url)
    if status == 303:
        status, headers, data = api("GET", None, url=headers["Location"])
    assert status == 200, f"GET {path} {params}: {status} {data[:300]!r}"
    return file_name_of(headers.get("Content-Disposition")), data


def today_dates():
    """Today as YYYY-MM-DD, in UTC and in local time (a file name may use either)."""
    return {datetime.now(timezone.utc).strftime("%Y-%m-%d"), datetime.now().strftime("%Y-%m-%d")}
