#!/usr/bin/env bash
# The schema-driven fuzz run of `make test`: schemathesis (PyPI, in .tools/venv) against the dev
# server on the embedded store, every operation of its /openapi.json, a bounded number of examples
# each (FUZZ_EXAMPLES, default 20) with a fixed seed (FUZZ_SEED) so that CI is repeatable. It runs
# every check of schemathesis, positive_data_acceptance included (tests/schemathesis.toml says
# which refusals of valid data are allowed where, and the README why), and fails as well on a
# panic, an internal error or any ERROR line in the server's log.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
st="$root/.tools/venv/bin/schemathesis"
[ -x "$st" ] || { echo "schemathesis is not installed: run 'make tools'" >&2; exit 1; }
source "$root/tests/dev-server.sh"
log="$root/.tools/fuzz-server.log"
key="fuzz-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
trap stop_dev_server EXIT
start_dev_server "$log" DEV_API_KEY="$key" DEV_CREDENTIALS_FILE="$root/.tools/fuzz-credentials.json" RUST_LOG=info
token=$(sed -n 's/^export ADMIN_TOKEN=//p' "$log")
# The caller of both credentials is tenant `dev` with every scope: path parameters named
# tenantId are `dev` in the configuration (tests/schemathesis.toml), so that billing-run
# operations get past the tenant check; everything else is generated.
status=0
# One worker: hypothesis describes filters by parsing lambda sources with `ast.parse`, which is not
# thread-safe on Python 3.11 before 3.11.8 (CPython gh-106905, "AST constructor recursion depth
# mismatch"); two workers crashed a run on this machine's 3.11.7.
"$st" --config-file "$root/tests/schemathesis.toml" run "http://127.0.0.1:$port/openapi.json" \
  --checks all \
  --max-examples "${FUZZ_EXAMPLES:-20}" --seed "${FUZZ_SEED:-1}" --generation-database none --workers 1 \
  --header "Authorization: Bearer $token" --header "x-api-key: $key" || status=$?
if grep -nE 'panicked|internal error|ERROR' "$log"; then
  echo "the server logged the errors above during the fuzz run (log: $log)" >&2
  status=1
fi
exit "$status"
