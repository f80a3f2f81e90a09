#!/usr/bin/env bash
# Browser tests of the web console (`make browser`; `make test` runs them last).
#
# Installs what it needs (idempotent, like the other tools of the project):
#   - Debian's chromium, when /usr/bin/chromium is missing (never `playwright install`:
#     no browser build can be downloaded here);
#   - .venv-browser with tools/browser/requirements.txt (Playwright for Python, pytest),
#     reinstalled when that file changes.
# Then: brings the local stack up if it is not running (and stops it at the end only if
# this script started it); creates dedicated tables and a dedicated jobs queue (prefix
# bt-<random>; like the integration tests' tables, they stay in the emulator) and seeds
# them (`exportctl seed --sessions 20 --leads 60 --chats 300 --seed 5`); starts
# `exportctl serve --no-worker` on $BROWSER_PORT (default 3400) with `exportctl worker`
# beside it (the worker `serve` would run inside, as its own process so that a test can
# pause it; both log to .stack/browser-serve.log; `serve` also ticks the scheduler, and
# the schedules tests tick it themselves with `$EXPORTCTL schedules tick --at`, in this
# script's environment); mints tokens (the user's with an email claim); runs the Node unit
# tests of the client (web/tests/) and the Playwright tests (tests/browser/;
# screenshots in .stack/screenshots/, JUnit XML in .stack/browser-tests.xml).
# Prints `browser tests: N passed, M failed` and appends it to .stack/test-summary
# (which `make test` prints last). Exits non-zero when any test failed or could not run.
#
# Environment: BROWSER_PORT (3400), BROWSER_BUILD=1 (run `cargo build --workspace`
# even when target/debug/exportctl exists), PYTEST_ARGS (extra pytest arguments,
# e.g. "-k leads -x").
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=.stack
SUITE="browser tests"
VENV=.venv-browser
REQS=tools/browser/requirements.txt
EXPORTCTL=target/debug/exportctl
CHROMIUM=/usr/bin/chromium
BROWSER_PORT=${BROWSER_PORT:-3400}
mkdir -p "$STACK"

log() { echo "browser-tests: $*"; }
. scripts/suite-lib.sh

# --- tools -------------------------------------------------------------------------
if [ ! -x "$CHROMIUM" ]; then
  log "installing Debian's chromium"
  # Another apt run (unattended upgrades, a colleague) may hold the lock for a while.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends chromium >/dev/null
fi
log "$("$CHROMIUM" --version 2>/dev/null | head -1)"

if ! cmp -s "$REQS" "$VENV/.installed" || [ ! -x "$VENV/bin/pytest" ]; then
  log "installing $REQS into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS"
  cp "$REQS" "$VENV/.installed"
fi
log "playwright $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("playwright"))'), $("$VENV/bin/pytest" --version 2>&1 | head -1)"

if [ ! -x "$EXPORTCTL" ] || [ "${BROWSER_BUILD:-0}" = 1 ]; then
  log "building the workspace (cargo build --workspace)"
  cargo build --workspace --quiet
fi

# --- state and cleanup -------------------------------------------------------------
set -a; . ./local.env; set +a
P="bt-$RANDOM$RANDOM"
suite_tables "$P"
# No test meets a chat rate limit by accident (the 429 tests fake theirs).
export RATE_LIMIT_USER_PER_MINUTE=1000 RATE_LIMIT_CLIENT_PER_HOUR=100000

suite_traps

# --- stack, data, server -----------------------------------------------------------
suite_stack_up
suite_port_free "$BROWSER_PORT" BROWSER_PORT

log "tables and queue prefix $P"
: > "$STACK/browser-serve.log"
"$EXPORTCTL" setup 2>>"$STACK/browser-serve.log" >/dev/null
"$EXPORTCTL" seed --sessions 20 --leads 60 --chats 300 --seed 5 2>>"$STACK/browser-serve.log" >/dev/null

# The API and the console; the export worker runs beside it as its own process (what
# `serve` would run inside), so a test can pause it (SIGSTOP) to catch a job queued.
"$EXPORTCTL" serve --port "$BROWSER_PORT" --no-worker >>"$STACK/browser-serve.log" 2>&1 &
server_pid=$!
suite_pids+=("$server_pid")
"$EXPORTCTL" worker >>"$STACK/browser-serve.log" 2>&1 &
worker_pid=$!
suite_pids+=("$worker_pid")
BASE_URL="http://127.0.0.1:$BROWSER_PORT"
suite_wait_http "$BASE_URL" "$server_pid" "$STACK/browser-serve.log"
kill -0 "$worker_pid" 2>/dev/null || { log "exportctl worker exited; see $STACK/browser-serve.log" >&2; exit 1; }
log "console and API on $BASE_URL (pid $server_pid), worker pid $worker_pid"

ADMIN_TOKEN=$("$EXPORTCTL" token --role admin --sub admin-bt 2>/dev/null)
# The user's token names an email address (when `exportctl token` has --email): a
# non-admin may only have exports emailed to that address (docs/schedules.md).
USER_EMAIL=""
if "$EXPORTCTL" token --help 2>/dev/null | grep -q -- '--email'; then USER_EMAIL="user-bt@example.com"; fi
USER_TOKEN=$("$EXPORTCTL" token --role user --sub user-bt --client-id client-alpha --company-id comp-acme \
  ${USER_EMAIL:+--email "$USER_EMAIL"} 2>/dev/null)
OTHER_TOKEN=$("$EXPORTCTL" token --role user --sub other-bt --client-id client-beta --company-id comp-globex 2>/dev/null)
# A user with a history of its own, for the pages of the Exports tab.
PAGER_TOKEN=$("$EXPORTCTL" token --role user --sub pager-bt --client-id client-gamma --company-id comp-umbrella 2>/dev/null)
SCREENSHOT_DIR="$STACK/screenshots"
rm -rf "$SCREENSHOT_DIR"; mkdir -p "$SCREENSHOT_DIR"
WORKER_PID=$worker_pid
# The schedules tests tick the scheduler themselves (`exportctl schedules tick --at`),
# with this environment (the dedicated tables and queue).
EXPORTCTL="$PWD/$EXPORTCTL"
export BASE_URL ADMIN_TOKEN USER_TOKEN OTHER_TOKEN PAGER_TOKEN SCREENSHOT_DIR CHROMIUM WORKER_PID EXPORTCTL USER_EMAIL

# --- Node unit tests of the client ---------------------------------------------------
if [ -d web/tests ]; then
  log "node --test web/tests/"
  rm -f "$STACK/node-tests.tap"
  node_rc=0
  node --test --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$STACK/node-tests.tap" web/tests/ || node_rc=$?
  np=$(awk '/^# pass /{print $3}' "$STACK/node-tests.tap" 2>/dev/null | tail -1)
  nf=$(awk '/^# fail /{print $3}' "$STACK/node-tests.tap" 2>/dev/null | tail -1)
  np=${np:-0}; nf=${nf:-0}
  if [ "$node_rc" != 0 ] && [ "$nf" = 0 ]; then nf=1; fi # crashed without a count
  passed=$((passed + np)); failed=$((failed + nf))
  log "node: $np passed, $nf failed"
else
  log "node: skipped, web/tests/ does not exist yet"
fi

# --- Playwright tests ----------------------------------------------------------------
log "pytest tests/browser"
rm -f "$STACK/browser-tests.xml"
py_rc=0
# shellcheck disable=SC2086
"$VENV/bin/pytest" -q -p no:cacheprovider --junitxml="$STACK/browser-tests.xml" tests/browser ${PYTEST_ARGS:-} || py_rc=$?
read -r pp pf < <("$VENV/bin/python" - "$STACK/browser-tests.xml" <<'EOF' || echo "0 0"
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 0); sys.exit()
# One outcome per test: a test that failed and then also errored in teardown is one failure.
outcome = {}
for case in root.iter("testcase"):
    key = (case.get("classname"), case.get("name"))
    tags = {child.tag for child in case}
    bad = bool(tags & {"failure", "error"})
    if bad or key not in outcome:
        outcome[key] = "failed" if bad else ("skipped" if "skipped" in tags else "passed")
print(sum(v == "passed" for v in outcome.values()), sum(v == "failed" for v in outcome.values()))
EOF
)
if [ "$py_rc" != 0 ] && [ "$pf" = 0 ]; then pf=1; fi # collection error, crash, no tests (5)
passed=$((passed + pp)); failed=$((failed + pf))
log "pytest: $pp passed, $pf failed"

suite_summary
