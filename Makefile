# chat-export: `make demo` runs the local stack with sample data and the API;
# `make test` runs every check. Both install what they need into git-ignored folders.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ENV := set -a; . ./local.env; set +a;
CARGO ?= cargo
EXPORTCTL := target/debug/exportctl
VENV := .venv
PKG_VENV := .venv-package
READERS_VENV := .venv-readers

.PHONY: shells readers help stack stack-down stack-reset stack-status build setup seed serve demo test lint fmt clippy unit browser api-check bench package lambda-build lambda-test lambda-ci sam-build tools

help:
	@echo "make demo         local stack + sample data + API on 127.0.0.1:\$$API_PORT, prints curl commands"
	@echo "make test         fmt, clippy, unit + integration tests against the local stack, template and OpenAPI checks, browser tests"
	@echo "make stack        start DynamoDB + S3 + SQS + SES emulators (idempotent); stack-down stops them; stack-reset wipes data"
	@echo "make browser      the web console in headless Chromium (Playwright) + the client's Node tests"
	@echo "make api-check    schemathesis against exportctl serve with openapi.yaml (zero failures required)"
	@echo "make bench        release benchmark of the engine (rows/s, MB/s, peak RSS)"
	@echo "make package      sam build (x86_64)"

stack:
	@scripts/stack.sh up

stack-down:
	@scripts/stack.sh down

stack-reset:
	@scripts/stack.sh reset

stack-status:
	@scripts/stack.sh status

build:
	$(CARGO) build --workspace

setup: build stack
	@$(ENV) $(EXPORTCTL) setup

seed: setup
	@$(ENV) $(EXPORTCTL) seed --sessions 300 --leads 500 --chats 2000 --seed 1

demo: seed
	@$(ENV) scripts/demo.sh

# The linters for the SAM template live in a project venv.
$(VENV)/.installed: tools/requirements-lint.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-lint.txt
	touch $@

# pyarrow and DuckDB: the readers the tests check JSON Lines (and Parquet) files with
# (tests/readers/check.py, run by the cargo tests through READERS_PYTHON).
$(READERS_VENV)/.installed: tools/requirements-readers.txt
	python3 -m venv $(READERS_VENV)
	$(READERS_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-readers.txt
	touch $@

readers: $(READERS_VENV)/.installed

lint: $(VENV)/.installed $(PKG_VENV)/.installed
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --quiet
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/python scripts/check_template.py
	$(VENV)/bin/openapi-spec-validator openapi.yaml
	SAM_CLI_TELEMETRY=0 AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 $(PKG_VENV)/bin/sam validate --lint --template template.yaml

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# zsh and fish (Debian's), so that tests/tests/cli.rs checks exportctl's completion
# scripts in the shells they are for (bash is the machine's).
shells:
	@if ! command -v zsh >/dev/null || ! command -v fish >/dev/null; then \
	  echo "installing Debian's zsh and fish"; \
	  apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends zsh fish >/dev/null; \
	fi

# Unit + integration tests against the local stack (the binaries first: some tests run
# the real `exportctl`, which `cargo test` does not build); stops the stack afterwards
# unless it was already running before. The totals go to .stack/test-summary.
unit: $(READERS_VENV)/.installed shells
	@mkdir -p .stack; rm -f .stack/soak-summary; was_up=$$(scripts/stack.sh status | grep -c running || true); \
	scripts/stack.sh up; \
	status=0; { $(CARGO) build --workspace --bins && $(ENV) READERS_PYTHON="$(CURDIR)/$(READERS_VENV)/bin/python" $(CARGO) test --workspace --all-targets; } 2>&1 | tee .stack/test.log || status=$$?; \
	if [ "$$was_up" != "5" ]; then scripts/stack.sh down; fi; \
	awk '/^test result:/ { p += $$4; f += $$6 } END { printf "cargo tests: %d passed, %d failed\n", p, f }' \
	  .stack/test.log > .stack/test-summary; \
	exit $$status

# The web console in headless Chromium (Playwright) and the Node tests of its client,
# against `exportctl serve` on dedicated tables; appends its line to .stack/test-summary.
browser:
	@scripts/browser-tests.sh

# The API exactly as openapi.yaml says: schemathesis (pinned in tools/schemathesis/)
# against `exportctl serve` on dedicated tables, seed 22, 25 examples per operation,
# every phase (examples, coverage, fuzzing, stateful) and every check. No check is
# excluded. tools/schemathesis/schemathesis.toml widens two checks' accepted statuses
# (each with its reason there: a state answer, 404/409/410, to a valid request; the
# request-size refusals 413/414/431 to an invalid one) and lets coverage send repeated
# query parameters; tools/schemathesis/hooks.py reads the document's
# `x-cross-field-rules` (what JSON Schema cannot state) and accepts a valid request's
# 400 only when the request breaks one and the 400 is that rule's. About 80 s.
api-check:
	@scripts/api-conformance.sh

# The last line is the total of every suite (cargo, Node, Playwright, schemathesis).
test: fmt clippy unit lint browser api-check lambda-ci
	@cat .stack/test-summary
	@if [ -f .stack/soak-summary ]; then cat .stack/soak-summary; fi
	@awk '{ for (i = 2; i <= NF; i++) { if ($$i == "passed,") p += $$(i-1); if ($$i == "failed") f += $$(i-1) } } \
	  END { printf "tests: %d passed, %d failed\n", p, f }' .stack/test-summary

bench:
	$(CARGO) build --release --bin exportctl
	@for k in sessions leads conversations; do for f in csv json jsonl xlsx parquet; do for n in 100000 1000000; do \
	  target/release/exportctl bench --export $$k --format $$f --rows $$n --sink null; done; done; done
	@for f in csv json jsonl xlsx zip parquet; do for n in 100000 1000000; do \
	  target/release/exportctl bench --export chats --format $$f --rows $$n --sink null; done; done
	@scripts/stack.sh up >/dev/null; $(ENV) target/release/exportctl setup >/dev/null; \
	$(ENV) target/release/exportctl bench --rows 1000000 --sink s3
	@for k in sessions leads chats conversations; do for n in 100000 1000000; do \
	  $(ENV) target/release/exportctl bench --export $$k --format csv --rows $$n --sink job; done; done
	@for f in json xlsx; do \
	  $(ENV) target/release/exportctl bench --export chats --format $$f --rows 1000000 --sink job; done
	@for f in json csv xlsx; do \
	  $(ENV) target/release/exportctl bench-e2e --export chats --format $$f --rows 100000 2>/dev/null; done
	@$(ENV) target/release/exportctl bench-e2e --export chats --rows 100000 --read-only 2>/dev/null

$(PKG_VENV)/.installed: tools/requirements-package.txt
	python3 -m venv $(PKG_VENV)
	$(PKG_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-package.txt
	touch $@

# The Lambda functions, as template.yaml builds them.
LAMBDA_BINS := sessions-export leads-export chats-export export-jobs export-worker export-scheduler export-scale export-indexer

# The artifacts AWS runs: every function's `bootstrap`, built by the pinned cargo-lambda
# (zig links it against provided.al2023's glibc) into target/lambda/<function>/, then
# each one's size and newest glibc symbol (at most 2.34, else this fails). `make package`
# builds the release profile that is deployed, and so does `make lambda-test`; CI's
# `make test` (lambda-ci) builds the `lambda-test` profile (no fat LTO; see lambda-ci).
LAMBDA_PROFILE ?= release
lambda-build: $(PKG_VENV)/.installed
	PATH="$(CURDIR)/$(PKG_VENV)/bin:$$PATH" $(CARGO) lambda build --profile $(LAMBDA_PROFILE) $(addprefix --bin ,$(LAMBDA_BINS))
	@scripts/lambda-report.sh $(LAMBDA_BINS)

package:
	$(MAKE) lambda-build LAMBDA_PROFILE=release

# The built bootstraps under a Lambda Runtime API emulator against the local stack:
# every sample event in events/, the failure paths, and the cold-start table
# (tests/tests/lambda.rs). Stops the stack afterwards unless it was already running.
lambda-test: lambda-build
	@was_up=$$(scripts/stack.sh status | grep -c running || true); scripts/stack.sh up >/dev/null; \
	status=0; $(ENV) $(CARGO) test -p integration-tests --test lambda -- --ignored --nocapture --test-threads 1 \
	  2>&1 | tee .stack/lambda-test.log || status=$$?; \
	if [ "$$was_up" != "5" ]; then scripts/stack.sh down >/dev/null; fi; \
	awk '/^test result:/ { printf "lambda tests: %d passed, %d failed\n", $$4, $$6 }' .stack/lambda-test.log >> .stack/test-summary; \
	exit $$status

# `make test`'s run of the real binaries: cargo-lambda, zig, the glibc check and the
# runtime loop as shipped, built with the `lambda-test` profile (the release profile
# without fat LTO, about 6.5 min here instead of 15-16): with the release build, a
# fresh clone's `make test` took 39.7 min of its 40 min budget on 2026-12-06.
# `make lambda-test` (release, the default) and `make package` build what ships.
lambda-ci:
	$(MAKE) lambda-test LAMBDA_PROFILE=lambda-test

# What `sam deploy` uploads (sam build runs cargo-lambda for each function itself).
sam-build: $(PKG_VENV)/.installed
	PATH="$(CURDIR)/$(PKG_VENV)/bin:$$PATH" sam build --beta-features
