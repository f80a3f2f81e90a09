#!/usr/bin/env bash
# The local stack: a DynamoDB emulator (dynalite), an S3 emulator that verifies
# SigV4 signatures (s3s-fs), an SQS emulator (local-aws-sqs, in memory, started by
# tools/sqs/server.mjs), an SES v2 emulator (aws-ses-v2-local, in memory: the mail
# it receives is listed at GET /store, emptied by POST /clear-store) and a second
# DynamoDB with DynamoDB Streams (moto_server, in memory: dynalite has no streams; the
# streams tests and `exportctl serve --streams` use it), pinned, installed into
# .tools/, data in .stack/data/, listening on 127.0.0.1 only.
# Usage: scripts/stack.sh install|up|down|reset|status
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; . ./local.env; set +a

S3S_VERSION=0.14.1
TOOLS=.tools
STACK=.stack
DYNALITE="$TOOLS/dynalite/node_modules/.bin/dynalite"
S3S="$TOOLS/s3s-fs/bin/s3s-fs"
SQS="$TOOLS/sqs/server.mjs"
SES="$TOOLS/ses/node_modules/aws-ses-v2-local/dist/cli.js"
MOTO="$TOOLS/moto/bin/moto_server"
SERVICES="dynamodb s3 sqs ses streams"

install() {
  if ! cmp -s tools/dynalite/package-lock.json "$TOOLS/dynalite/package-lock.json" || [ ! -x "$DYNALITE" ]; then
    echo "installing dynalite (pinned in tools/dynalite/package-lock.json)"
    mkdir -p "$TOOLS/dynalite"
    cp tools/dynalite/package.json tools/dynalite/package-lock.json "$TOOLS/dynalite/"
    (cd "$TOOLS/dynalite" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  if ! cmp -s tools/sqs/package-lock.json "$TOOLS/sqs/package-lock.json" || [ ! -d "$TOOLS/sqs/node_modules/local-aws-sqs" ]; then
    echo "installing local-aws-sqs (pinned in tools/sqs/package-lock.json)"
    mkdir -p "$TOOLS/sqs"
    cp tools/sqs/package.json tools/sqs/package-lock.json "$TOOLS/sqs/"
    (cd "$TOOLS/sqs" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  if ! cmp -s tools/ses/package-lock.json "$TOOLS/ses/package-lock.json" || [ ! -f "$SES" ]; then
    echo "installing aws-ses-v2-local (pinned in tools/ses/package-lock.json)"
    mkdir -p "$TOOLS/ses"
    cp tools/ses/package.json tools/ses/package-lock.json "$TOOLS/ses/"
    (cd "$TOOLS/ses" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  if ! cmp -s tools/requirements-moto.txt "$TOOLS/moto/requirements.txt" || [ ! -x "$MOTO" ]; then
    echo "installing moto[server] (pinned in tools/requirements-moto.txt, about 30 s)"
    rm -rf "$TOOLS/moto"
    python3 -m venv "$TOOLS/moto"
    "$TOOLS/moto/bin/pip" install --quiet --disable-pip-version-check -r tools/requirements-moto.txt
    cp tools/requirements-moto.txt "$TOOLS/moto/requirements.txt"
  fi
  # The server script must sit next to node_modules for `import "local-aws-sqs"`.
  cmp -s tools/sqs/server.mjs "$SQS" || cp tools/sqs/server.mjs "$SQS"
  if [ ! -x "$S3S" ] || ! grep -qx "$S3S_VERSION" "$TOOLS/s3s-fs/.version" 2>/dev/null; then
    echo "installing s3s-fs $S3S_VERSION (cargo install, a few minutes the first time)"
    cargo install s3s-fs --version "$S3S_VERSION" --locked --features binary --root "$TOOLS/s3s-fs" --quiet
    echo "$S3S_VERSION" > "$TOOLS/s3s-fs/.version"
  fi
}

alive() { [ -f "$STACK/$1.pid" ] && kill -0 "$(cat "$STACK/$1.pid")" 2>/dev/null; }

wait_port() { # name port
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    alive "$1" || { echo "$1 exited; see $STACK/$1.log" >&2; tail -5 "$STACK/$1.log" >&2; return 1; }
    sleep 0.1
  done
  echo "$1 did not answer on 127.0.0.1:$2" >&2; return 1
}

start() { # name port command...
  local name=$1 port=$2; shift 2
  if alive "$name"; then echo "$name already running (pid $(cat "$STACK/$name.pid"), port $port)"; return 0; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is taken by another process; set ${name^^}_PORT to another port" >&2; return 1
  fi
  nohup "$@" >"$STACK/$name.log" 2>&1 &
  echo $! > "$STACK/$name.pid"
  wait_port "$name" "$port"
  echo "$name up on 127.0.0.1:$port (pid $(cat "$STACK/$name.pid"))"
}

# The integration tests make a bucket per test (TestStack: `t<8 hex>-<test>`) and leave
# it, and an interrupted run leaves unfinished multipart uploads (`.upload_id-*`): a few
# GB per `make test`, enough to fill a disk over a few dozen runs. They go when S3
# starts; every other bucket (the demo's, the benchmarks') stays.
forget_test_objects() {
  alive s3 && return 0
  find "$STACK/data/s3" -mindepth 1 -maxdepth 1 \( -regextype posix-extended \
    -regex '.*/t[0-9a-f]{8}-[^/]*' -o -name '.upload_id-*' \) -exec rm -rf {} + 2>/dev/null || true
}

up() {
  install
  mkdir -p "$STACK/data/dynamodb" "$STACK/data/s3"
  forget_test_objects
  start dynamodb "$DYNAMODB_PORT" node "$DYNALITE" --host 127.0.0.1 --port "$DYNAMODB_PORT" \
    --path "$STACK/data/dynamodb" --createTableMs 0 --deleteTableMs 0 --updateTableMs 0
  start s3 "$S3_PORT" "$S3S" --host 127.0.0.1 --port "$S3_PORT" \
    --access-key "$AWS_ACCESS_KEY_ID" --secret-key "$AWS_SECRET_ACCESS_KEY" "$STACK/data/s3"
  # In memory: queues are gone after `down` (`exportctl setup` creates them again).
  start sqs "$SQS_PORT" node "$SQS" "$SQS_PORT"
  # In memory too: the stored mail is gone after `down`.
  start ses "$SES_PORT" node "$SES" --host 127.0.0.1 --port "$SES_PORT"
  # In memory: DynamoDB with Streams, for what needs the streams (STREAMS_ENDPOINT).
  start streams "$STREAMS_PORT" "$MOTO" -H 127.0.0.1 -p "$STREAMS_PORT"
}

stop_one() {
  if alive "$1"; then
    local pid; pid=$(cat "$STACK/$1.pid")
    kill "$pid"; for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "$1 stopped"
  fi
  rm -f "$STACK/$1.pid"
}

down() { for s in $SERVICES; do stop_one "$s"; done; }

case "${1:-}" in
  install) install ;;
  up) up ;;
  down) down ;;
  reset) down; rm -rf "$STACK/data"; echo "stack data wiped" ;;
  status) for s in $SERVICES; do if alive $s; then echo "$s: running (pid $(cat $STACK/$s.pid))"; else echo "$s: stopped"; fi; done ;;
  *) echo "usage: $0 install|up|down|reset|status" >&2; exit 2 ;;
esac
