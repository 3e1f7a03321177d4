# The commands a person types. `make up` and `make test` set up everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
LS_VENV := .venv-localstack
LAMBDA_VENV := .venv-lambda
BENCH_VENV := .venv-bench
MS_VENV := .venv-ministack
EXECUTOR_SRC := $(shell find localstack/host_executor -name build -prune -o -name '*.egg-info' -prune -o \( -name '*.py' -o -name pyproject.toml \) -print)
STAGE   ?= local
# The stages that deploy as a packaged CloudFormation stack (make package), and where a stack goes.
PACKAGED_STAGES := stack prod
TARGET  ?= localstack
PORT    ?= 8000
given_stage = $(if $(filter command line environment,$(origin STAGE)),$(STAGE),$(1))

.PHONY: help setup system-packages venvs up up-localstack deploy undeploy down status bootstrap budget \
	package preflight smoke deploy-stack undeploy-stack migrate key redrive replay-rejects \
	test test-suite unit functional browser fuzz integration bench bench-quick bench-scale bench-smoke faults faults-short lint format clean

help:  ## this list
	@echo "sluice: make up serves it, make test tests it. Times measured on this 2-core machine."
	@awk -F ':[^#]*## ' '/^[a-z][a-z-]*:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: system-packages venvs  ## install what is missing (make up and make test do it)

system-packages:  ## MariaDB, Redis, openssl and Chromium from the distribution's packages, if missing
	@scripts/ensure-system-packages.sh

VENV_STAMPS := $(VENV)/.installed $(LS_VENV)/.installed $(LS_VENV)/.executor-installed $(LAMBDA_VENV)/.installed \
	$(MS_VENV)/.installed
venvs: $(VENV_STAMPS)  ## the Python environments, made or brought up to date with the pinned requirements

$(VENV)/.installed: requirements.txt requirements-dev.txt scripts/make-venv.sh
	scripts/make-venv.sh $(VENV) requirements-dev.txt

$(LS_VENV)/.installed: localstack/requirements.txt localstack/constraints.txt scripts/make-venv.sh
	scripts/make-venv.sh $(LS_VENV) localstack/requirements.txt

# The host-process Lambda executor, installed into LocalStack's environment as a plugin.
$(LS_VENV)/.executor-installed: $(LS_VENV)/.installed $(EXECUTOR_SRC)
	$(LS_VENV)/bin/python -m pip install --quiet --no-deps --force-reinstall ./localstack/host_executor
	touch $@

$(LAMBDA_VENV)/.installed: localstack/lambda-runtime-requirements.txt scripts/make-venv.sh
	scripts/make-venv.sh $(LAMBDA_VENV) localstack/lambda-runtime-requirements.txt

$(MS_VENV)/.installed: ministack/requirements.txt ministack/constraints.txt scripts/make-venv.sh
	scripts/make-venv.sh $(MS_VENV) ministack/requirements.txt

$(BENCH_VENV)/.installed: bench/requirements.txt requirements-dev.txt requirements.txt scripts/make-venv.sh
	scripts/make-venv.sh $(BENCH_VENV) bench/requirements.txt

# exec: tools.devstack.serve is make's own child, so it dies with make (see tools/devstack/serve.py).
up: setup  ## start MariaDB, Redis, LocalStack; serve the API on :8000 (PORT=...) with chalice local; Ctrl-C stops it all [first run: about 3 min for the Python environments; then 4 s, 7 s when it starts the services]
	exec $(PY) -m tools.devstack.serve --stage $(STAGE) --port $(PORT)

up-localstack: setup  ## the same, deployed into LocalStack: API Gateway, Lambda, the SQS event source; Ctrl-C removes it [30 s]
	exec $(PY) -m tools.devstack.serve --stage $(STAGE) --via localstack

deploy: setup  ## deploy (or update) the stage into the running LocalStack and print its URL [25 s]
	$(PY) -m tools.devstack up
	$(PY) -m tools.deploy.localstack --stage $(STAGE)

undeploy: venvs  ## remove that deployment
	$(PY) -m tools.deploy.localstack --stage $(STAGE) --delete

down:  ## stop every make up of this checkout, then every service
	@if [ -x $(PY) ]; then $(PY) -m tools.devstack.serve --stop && $(PY) -m tools.devstack down; fi

# The operator's commands against a stack on AWS (TARGET=aws) need only the app's Python environment
# and your AWS credentials: no system packages, no emulators, no local services.
ops_prereq = $(if $(filter aws,$(TARGET)),$(VENV)/.installed,$(1))
STACK_ARG = $(if $(STACK_NAME),--stack-name "$(STACK_NAME)")

status: $(call ops_prereq,venvs)  ## what runs, and the pipeline: queue, dead letters, stored/s, lag, connections, partitions [8 s]
	$(if $(filter aws,$(TARGET)),,$(PY) -m tools.devstack status)
	$(PY) -m tools.ops.status --stage $(STAGE) --target $(TARGET) $(if $(filter aws,$(TARGET)),$(STACK_ARG))

bootstrap: setup  ## a local stage's schema, accounts and queues (STAGE=local; make up does it)
	$(PY) -m tools.devstack up
	$(PY) -m tools.devstack.bootstrap --stage $(STAGE)

budget: setup  ## the stage's MySQL connection budget, each number explained, checked against its server [3 s]
	$(PY) -m tools.devstack run -- $(PY) -m tools.ops.budget --stage $(STAGE)

# The budget rules, then chalice package with deploy/stack.yaml merged: dist/<stage>/sam.yaml + deployment.zip.
package: $(VENV)/.installed  ## STAGE=prod: the stage's whole stack as one CloudFormation template in dist/<stage>/ [10 s]
	$(PY) -m tools.deploy.package --stage $(call given_stage,prod)

# Before the first deploy to an account (and after changing its network): read-only checks, each
# with what to do when it fails. PARAMETERS: the file `aws cloudformation deploy` takes.
preflight: $(VENV)/.installed  ## STAGE=prod PARAMETERS=<file> [BUCKET=<bucket>]: will the stack deploy into your AWS account? [15 s]
	$(PY) -m tools.deploy.preflight --stage $(call given_stage,prod) --parameters "$(PARAMETERS)" \
		$(if $(BUCKET),--bucket "$(BUCKET)") $(STACK_ARG)

# After a deploy: the dependencies, then an entry written with a key and read back (the key revoked).
smoke: $(call ops_prereq,venvs)  ## STAGE=prod TARGET=aws: prove a deployed stack stores and serves an entry [10 s]
	$(PY) -m tools.deploy.smoke --stage $(STAGE) --target $(TARGET) $(if $(filter aws,$(TARGET)),$(STACK_ARG))

# Package the stage and deploy that template into LocalStack (or MiniStack, which enforces IAM).
deploy-stack: setup  ## that template (STAGE=stack) deployed into LocalStack, or TARGET=ministack (IAM enforced) [20 s]
	$(PY) -m tools.deploy.stack deploy --stage $(call given_stage,stack) --target $(TARGET)

undeploy-stack: venvs  ## remove it
	$(PY) -m tools.deploy.stack delete --stage $(call given_stage,stack) --target $(TARGET)

# An API key through the stage's KeyService (local) or its API (a stack: TARGET=localstack|ministack).
key: $(call ops_prereq,setup)  ## NAME=web-1 SOURCES=web-1 [SCOPES=logs:write]: make an API key, printed once (SOURCES='*': every source)
	$(if $(filter aws,$(TARGET)),,$(PY) -m tools.devstack up)
	$(PY) -m tools.ops.keys create --stage $(STAGE) --name "$(NAME)" --sources "$(SOURCES)" \
		$(if $(SCOPES),--scopes "$(SCOPES)") \
		$(if $(RATE),--rate $(RATE)) $(if $(BURST),--burst $(BURST)) \
		$(if $(filter localstack ministack,$(TARGET)),$(if $(filter command line,$(origin TARGET)),--target $(TARGET))) \
		$(if $(filter aws,$(TARGET)),--target aws $(STACK_ARG))

migrate: $(call ops_prereq,setup)  ## STAGE=...: run the migrations (a local stage's, or a deployed stack's migrate function)
	$(if $(filter aws,$(TARGET)),,$(PY) -m tools.devstack up)
	$(PY) -m tools.ops.migrate --stage $(STAGE) --target $(TARGET) $(if $(filter aws,$(TARGET)),$(STACK_ARG))

# What failed, back into the pipeline (DRY_RUN=1: show what would move, move nothing).
redrive: $(call ops_prereq,setup)  ## [DRY_RUN=1]: dead letters back to the log queue (SQS's move task)
	$(if $(filter aws,$(TARGET)),,$(PY) -m tools.devstack up)
	$(PY) -m tools.ops.redrive dead-letters --stage $(STAGE) --target $(TARGET) $(if $(DRY_RUN),--dry-run) \
		$(if $(filter aws,$(TARGET)),$(STACK_ARG))

replay-rejects: $(call ops_prereq,setup)  ## [DRY_RUN=1] [KEY_ID=key_...]: set-aside entries back to the log queue, once their cause is fixed
	$(if $(filter aws,$(TARGET)),,$(PY) -m tools.devstack up)
	$(PY) -m tools.ops.redrive rejects --stage $(STAGE) --target $(TARGET) $(if $(DRY_RUN),--dry-run) \
		$(if $(KEY_ID),--key-id $(KEY_ID)) $(if $(filter aws,$(TARGET)),$(STACK_ARG))

test: setup $(BENCH_VENV)/.installed  ## the same setup as make up, then lint and every suite below (CI runs this) [13 min on a fresh clone]
	$(PY) -m tools.devstack run --with ministack -- $(MAKE) --no-print-directory test-suite

test-suite: lint unit functional browser fuzz integration bench-smoke faults-short  ## what make test runs once the services are up

unit: venvs  ## tests without I/O [2 s]
	$(PY) -m pytest tests/unit

functional: venvs  ## the app against the real MariaDB, Redis and SQS, make up and the README's blocks [2 min]
	$(PY) -m pytest tests/functional

# Debian's chromium, headless, driven by Playwright (pinned in requirements-dev.txt; nothing downloaded).
browser: venvs  ## the log viewer (GET /ui) in headless Chromium against chalice local and the consumer [30 s]
	$(PY) -m pytest tests/browser

integration: venvs  ## the app and the packaged stack deployed into LocalStack and MiniStack, over HTTP [3 min]
	$(PY) -m pytest tests/integration

# Schemathesis from openapi.json against the running API (FUZZ_EXAMPLES per operation, default 50).
fuzz: venvs  ## Schemathesis from openapi.json against the running API [35 s]
	$(PY) -m pytest tests/fuzz

# The benchmark starts the services it needs (and stops those it started).
bench: setup $(BENCH_VENV)/.installed  ## the full benchmark: sluice vs direct vs celery, OTLP, logging handlers, then the scale scenario; report in bench/results/ [39 min]
	$(PY) -m tools.devstack run -- $(BENCH_VENV)/bin/python -m bench.run --profile full

bench-quick: setup $(BENCH_VENV)/.installed  ## the same, smaller, without the scale scenario [2 min]
	$(PY) -m tools.devstack run -- $(BENCH_VENV)/bin/python -m bench.run --profile quick

# The scale scenario alone (make bench runs it last): GET /logs and the writer at 1M and 10M rows.
SIZES ?= 1000000,10000000
bench-scale: setup $(BENCH_VENV)/.installed  ## GET /logs and the writer at 1M and 10M rows (SIZES=...) [30 min]
	$(PY) -m tools.devstack run -- $(BENCH_VENV)/bin/python -m bench.scale --sizes $(SIZES)

# A few seconds of every scenario, to keep the harness working (part of make test; no timing checks).
bench-smoke: $(BENCH_VENV)/.installed  ## a few seconds of every benchmark scenario (no timing checks) [1 min]
	$(BENCH_VENV)/bin/python -m bench.run --profile smoke --out .data/bench-smoke

# The fault suite kills and restarts MariaDB and Redis: nothing else may use them meanwhile.
faults: setup  ## the fault suite: outages injected, every acknowledged entry reconciled [7 min]
	$(PY) -m tools.devstack run -- $(PY) -m faults.run --profile full

# Its short profile, part of make test (report in .data/faults-short).
faults-short: venvs  ## six fault scenarios, shorter [2 min]
	$(PY) -m faults.run --profile short --out .data/faults-short

# ruff and mypy; then every packaged stage's template through cfn-lint (0 errors and 0 warnings).
lint: venvs  ## ruff, mypy, the OpenAPI and configuration checks, both packages and cfn-lint [30 s]
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m tools.ops.openapi --check
	$(PY) -m tools.ops.configuration --check
	@for stage in $(PACKAGED_STAGES); do \
		$(PY) -m tools.deploy.package --stage $$stage --template-only --out .data/lint/$$stage || exit 1; done
	$(LS_VENV)/bin/cfn-lint $(foreach stage,$(PACKAGED_STAGES),.data/lint/$(stage)/sam.yaml)
	$(PY) -m tools.deploy.inventory .data/lint/prod/sam.yaml --check

format: venvs  ## ruff's formatting and fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: down  ## make down, then remove .data/ (every row, queue and key), dist/ and the virtual environments
	rm -rf .data dist $(VENV) $(LS_VENV) $(LAMBDA_VENV) $(BENCH_VENV) $(MS_VENV)
