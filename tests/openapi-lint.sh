#!/usr/bin/env bash
# Redocly's recommended lint (npm @redocly/cli, in .tools) of the OpenAPI document the dev server
# serves: it must be valid with no warning at all (Redocly exits 0 on warnings, so they are
# counted here).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
redocly="$root/.tools/node_modules/.bin/redocly"
[ -x "$redocly" ] || { echo "Redocly CLI is not installed: run 'make tools'" >&2; exit 1; }
source "$root/tests/dev-server.sh"
work=$(mktemp -d)
trap 'stop_dev_server; rm -rf "$work"' EXIT
start_dev_server "$work/server.log" DEV_CREDENTIALS_FILE="$work/dev-credentials.json"
curl -sS --fail-with-body "http://127.0.0.1:$port/openapi.json" -o "$work/openapi.json"
# no-ambiguous-paths is skipped for one overlap the billing-runs contract makes:
# /billingRuns/{tenantId}/{id}/actions and /billingRuns/{tenantId}/recurringBillingRun/{id} both
# fit /billingRuns/t/recurringBillingRun/actions. The literal segment wins there, as API Gateway
# routes it, and "recurringBillingRun" is no run id (a UUID) anyway.
(cd "$work" && "$redocly" lint --extends recommended --skip-rule no-ambiguous-paths --format stylish openapi.json) >"$work/lint.log" 2>&1 || {
  cat "$work/lint.log" >&2
  exit 1
}
if grep -qE '^\s+[0-9]+:[0-9]+\s+(warning|error)' "$work/lint.log"; then
  grep -E '^\s+[0-9]+:[0-9]+\s+(warning|error)' "$work/lint.log" >&2
  echo "Redocly's recommended lint found the problems above in the OpenAPI document" >&2
  exit 1
fi
echo "Redocly recommended lint: the OpenAPI document is valid, with no warning"
