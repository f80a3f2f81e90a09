#!/usr/bin/env bash
# The API as openapi.yaml says (`make api-check`; `make test` runs it): schemathesis,
# a tool nobody here wrote, generates requests from the document (examples, coverage,
# fuzzing and stateful sequences) and checks every answer against it.
#
# Installs what it needs (idempotent): .venv-schemathesis with
# tools/schemathesis/requirements.txt (schemathesis, pinned), reinstalled when that file
# changes. Then: brings the local stack up if it is not running (and stops it at the end
# only if this script started it); creates dedicated tables and a dedicated jobs queue
# (prefix st-<random>) and seeds them; starts `exportctl serve` (its worker inside) on
# $SCHEMATHESIS_PORT (default 3500) with chat rate limits out of the way (a 429 leaves a
# request untested); mints an admin token; runs
#   schemathesis run openapi.yaml --seed $SCHEMATHESIS_SEED (22) \
#     --max-examples $SCHEMATHESIS_EXAMPLES (25) --workers 1
# with tools/schemathesis/schemathesis.toml (every check; the statuses two of them
# accept beyond their defaults, with the reasons) and tools/schemathesis/hooks.py (the
# document's cross-field rules: a schema-valid request that breaks one must get that
# rule's 400). The report is in .stack/schemathesis/ (JUnit XML), the server's log in
# .stack/schemathesis-serve.log.
# Prints `schemathesis: N passed, M failed` (API operations) and appends it to
# .stack/test-summary. Exits non-zero on any failure.
#
# Environment: SCHEMATHESIS_PORT, SCHEMATHESIS_SEED, SCHEMATHESIS_EXAMPLES,
# SCHEMATHESIS_ARGS (more arguments, e.g. "--include-operation-id exportLeads").
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=.stack
SUITE=schemathesis
VENV=.venv-schemathesis
REQS=tools/schemathesis/requirements.txt
EXPORTCTL=target/debug/exportctl
PORT=${SCHEMATHESIS_PORT:-3500}
SEED=${SCHEMATHESIS_SEED:-22}
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-25}
REPORT="$STACK/schemathesis"
LOG="$STACK/schemathesis-serve.log"
mkdir -p "$STACK"

log() { echo "api-conformance: $*"; }
. scripts/suite-lib.sh

if ! cmp -s "$REQS" "$VENV/.installed" || [ ! -x "$VENV/bin/schemathesis" ]; then
  log "installing $REQS into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS"
  cp "$REQS" "$VENV/.installed"
fi
log "$("$VENV/bin/schemathesis" --version)"

if [ ! -x "$EXPORTCTL" ]; then
  log "building the workspace (cargo build --workspace)"
  cargo build --workspace --quiet
fi

set -a; . ./local.env; set +a
P="st-$RANDOM$RANDOM"
suite_tables "$P"
export RATE_LIMIT_USER_PER_MINUTE=1000000 RATE_LIMIT_CLIENT_PER_HOUR=1000000 MAX_ACTIVE_JOBS_PER_CALLER=1000
export SCHEDULER_TICK_SECONDS=0

suite_traps

suite_stack_up
suite_port_free "$PORT" SCHEMATHESIS_PORT

log "tables and queue prefix $P"
: > "$LOG"
"$EXPORTCTL" setup >>"$LOG" 2>&1
"$EXPORTCTL" seed --sessions 20 --leads 60 --chats 300 --seed 5 >>"$LOG" 2>&1
"$EXPORTCTL" serve --port "$PORT" >>"$LOG" 2>&1 &
server_pid=$!
suite_pids+=("$server_pid")
BASE_URL="http://127.0.0.1:$PORT"
suite_wait_http "$BASE_URL" "$server_pid" "$LOG"
ADMIN_TOKEN=$("$EXPORTCTL" token --role admin --sub admin-st --email admin-st@example.com --ttl 7200)

rm -rf "$REPORT" "$REPORT.rules"
st_rc=0
# shellcheck disable=SC2086
: > "$REPORT.rules"
PYTHONPATH="$PWD/tools/schemathesis" SCHEMATHESIS_HOOKS=hooks SCHEMATHESIS_RULES_LOG="$PWD/$REPORT.rules" \
  "$VENV/bin/schemathesis" --config-file tools/schemathesis/schemathesis.toml run openapi.yaml \
  --url "$BASE_URL" -H "Authorization: Bearer $ADMIN_TOKEN" \
  --seed "$SEED" --max-examples "$EXAMPLES" --workers 1 \
  --report junit --report-dir "$REPORT" --no-color ${SCHEMATHESIS_ARGS:-} || st_rc=$?

read -r passed failed < <(python3 - "$REPORT" <<'EOF' || echo "0 0"
import glob, sys, xml.etree.ElementTree as ET
ok = bad = 0
for path in glob.glob(sys.argv[1] + "/*.xml"):
    for case in ET.parse(path).getroot().iter("testcase"):
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            bad += 1
        elif "skipped" not in tags:
            ok += 1
print(ok, bad)
EOF
)
if [ -s "$REPORT.rules" ]; then
  log "schema-valid requests refused by a documented cross-field rule (its 400, checked by tools/schemathesis/hooks.py):"
  sort "$REPORT.rules" | uniq -c | sed 's/^/  /'
fi
if [ "$st_rc" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
suite_summary
