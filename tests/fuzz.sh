#!/usr/bin/env bash
# The schema-driven fuzz run of `make test`: schemathesis (PyPI, in .tools/venv) against the dev
# server on the embedded store, every operation of its /openapi.json, a bounded number of examples
# each (FUZZ_EXAMPLES, default 20) with a fixed seed (FUZZ_SEED) so that CI is repeatable. It runs
# every check of schemathesis but positive_data_acceptance (docs/tests.md says why), and fails as
# well on a panic, an internal error or any ERROR line in the server's log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
st="$root/.tools/venv/bin/schemathesis"
server="${CARGO_TARGET_DIR:-$root/target}/debug/billflow-dev"
[ -x "$st" ] || { echo "schemathesis is not installed: run 'make tools'" >&2; exit 1; }
[ -x "$server" ] || { echo "$server is not built: run 'cargo build --workspace --all-targets'" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
log="$root/.tools/fuzz-server.log"
key="fuzz-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
PORT=$port DEV_API_KEY=$key WORKER_STEP_DELAY_MS=0 RUST_LOG=info "$server" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q '^export ADMIN_TOKEN=' "$log" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
token=$(sed -n 's/^export ADMIN_TOKEN=//p' "$log")
if [ -z "$token" ]; then
  echo "the dev server did not start; its log:" >&2
  cat "$log" >&2
  exit 1
fi
# The caller of both credentials is tenant `dev` with every scope: path parameters named
# tenantId are `dev` in the configuration (tests/schemathesis.toml), so that billing-run
# operations get past the tenant check; everything else is generated.
status=0
"$st" --config-file "$root/tests/schemathesis.toml" run "http://127.0.0.1:$port/openapi.json" \
  --checks all --exclude-checks positive_data_acceptance \
  --max-examples "${FUZZ_EXAMPLES:-20}" --seed "${FUZZ_SEED:-1}" --generation-database none --workers 2 \
  --header "Authorization: Bearer $token" --header "x-api-key: $key" || status=$?
if grep -nE 'panicked|internal error|ERROR' "$log"; then
  echo "the server logged the errors above during the fuzz run (log: $log)" >&2
  status=1
fi
exit "$status"
