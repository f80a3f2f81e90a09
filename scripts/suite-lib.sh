# Shared by the suites that run against `exportctl serve` on the local stack
# (scripts/browser-tests.sh, scripts/api-conformance.sh); sourced, not run.
#
# A suite sets SUITE (its name in .stack/test-summary), STACK (.stack) and `log`, keeps
# its counts in `passed`/`failed` and the pids it started in `suite_pids`, then calls
#   suite_traps            cleanup on exit: stop the pids, the stack if it started it,
#                          write the summary line (a failure if none was written)
#   suite_stack_up         brings the stack up unless all of it runs already
#   suite_tables PREFIX    points the exportctl variables at dedicated tables and queue
#   suite_port_free PORT NAME_OF_ITS_VARIABLE
#   suite_wait_http URL PID LOG
#   suite_summary          writes "$SUITE: N passed, M failed" into .stack/test-summary

started=$(date +%s)
stack_started=0
summary_written=0
passed=0
failed=0
suite_pids=()

suite_summary() {
  local line="$SUITE: $passed passed, $failed failed"
  echo "$line"
  # `make test` prints .stack/test-summary at the end (`make unit` writes it afresh);
  # a standalone run replaces this suite's line of an earlier one.
  if [ -f "$STACK/test-summary" ]; then
    grep -v "^$SUITE:" "$STACK/test-summary" > "$STACK/test-summary.tmp" || true
    mv "$STACK/test-summary.tmp" "$STACK/test-summary"
  fi
  echo "$line" >> "$STACK/test-summary"
  summary_written=1
}

stop_pid() {
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -CONT "$pid" 2>/dev/null || true # a test may have paused it
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

suite_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${suite_pids[@]}"; do stop_pid "$pid"; done
  if [ "$stack_started" = 1 ]; then scripts/stack.sh down || true; fi
  if [ "$summary_written" = 0 ]; then
    # Failed before or while running the tests: say so in the summary too.
    [ "$failed" -gt 0 ] || failed=1
    suite_summary
  fi
  log "took $(( $(date +%s) - started )) s"
  if [ "$rc" = 0 ] && [ "$failed" -gt 0 ]; then rc=1; fi
  exit "$rc"
}

suite_traps() {
  trap suite_cleanup EXIT
  trap 'exit 130' INT TERM
}

suite_stack_up() {
  local status
  status=$(scripts/stack.sh status)
  if [ -z "$status" ] || grep -qv ': running' <<<"$status"; then
    stack_started=1
    scripts/stack.sh up
  fi
}

suite_tables() {
  local p=$1
  export SESSIONS_TABLE="$p-sessions" SESSION_MESSAGES_TABLE="$p-session-messages" \
    LEADS_TABLE="$p-leads" CHAT_MESSAGES_TABLE="$p-chat-messages" RATE_LIMITS_TABLE="$p-rate-limits" \
    AUDIT_TABLE="$p-audit" JOBS_TABLE="$p-jobs" SCHEDULES_TABLE="$p-schedules" \
    EXPORT_QUEUE_URL="http://127.0.0.1:${SQS_PORT}/123456789012/$p-jobs" \
    EXPORT_DLQ_URL="http://127.0.0.1:${SQS_PORT}/123456789012/$p-jobs-dlq"
}

suite_port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    log "port $1 is taken by another process; set $2 to a free port" >&2
    exit 1
  fi
}

suite_wait_http() {
  local url=$1 pid=$2 logfile=$3 i
  for i in $(seq 1 150); do
    if curl -s -o /dev/null --max-time 2 "$url/"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "exportctl serve exited; see $logfile" >&2; tail -5 "$logfile" >&2; exit 1
    fi
    sleep 0.2
  done
  log "exportctl serve did not answer on $url" >&2
  exit 1
}
