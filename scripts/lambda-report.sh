#!/usr/bin/env bash
# Each bootstrap that `cargo lambda build --release` made (target/lambda/<fn>/bootstrap):
# its size and the newest glibc symbol version it needs, which must be no newer than
# provided.al2023's glibc 2.34 (the runtime would refuse to start it otherwise).
# Usage: scripts/lambda-report.sh FUNCTION...
set -euo pipefail
cd "$(dirname "$0")/.."
MAX=2.34
status=0
printf '| function | size | newest glibc symbol |\n|---|---|---|\n'
for fn in "$@"; do
  bin="target/lambda/$fn/bootstrap"
  [ -f "$bin" ] || { echo "$bin is missing" >&2; exit 1; }
  size=$(stat -c %s "$bin")
  newest=$(readelf -W --dyn-syms "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
  printf '| %s | %.1f MB | %s |\n' "$fn" "$(echo "$size / 1000000" | bc -l)" "${newest:-none}"
  if [ -n "$newest" ] && [ "$(printf '%s\n%s\n' "$newest" "$MAX" | sort -V | tail -1)" != "$MAX" ]; then
    echo "$fn needs glibc $newest, newer than provided.al2023's $MAX" >&2
    status=1
  fi
done
exit $status
