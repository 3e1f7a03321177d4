# The commands a person types. `make up` and `make test` set up everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
LS_VENV := .venv-localstack
LAMBDA_VENV := .venv-lambda
BENCH_VENV := .venv-bench
MS_VENV := .venv-ministack
EXECUTOR_SRC := $(shell find localstack/host_executor -name '*.py' -o -name pyproject.toml)
STAGE   ?= local
# The stages that deploy as a packaged CloudFormation stack (make package), and where a stack goes.
PACKAGED_STAGES := stack prod
TARGET  ?= localstack
PORT    ?= 8000
given_stage = $(if $(filter command line environment,$(origin STAGE)),$(STAGE),$(1))

.PHONY: help setup system-packages venvs up up-localstack deploy undeploy down status bootstrap budget \
	package deploy-stack undeploy-stack migrate key redrive replay-rejects \
	test test-suite unit functional fuzz integration bench bench-quick bench-scale bench-smoke faults faults-short lint format clean

help:
	@echo "make up        start MariaDB, Redis, LocalStack; serve the API on :8000 with chalice local (Ctrl-C stops)"
	@echo "make up-localstack  the same, but deployed into LocalStack: API Gateway, Lambda, SQS event source"
	@echo "make deploy    deploy (or update) the stage into the running LocalStack and print its URL"
	@echo "make test      the same setup, then lint and every test"
	@echo "make down      stop services left running"
	@echo "make status    what runs, and the pipeline: queue, dead letters, stored/s, lag, connections, partitions"
	@echo "make budget    check the stage's MySQL connection budget (STAGE=local)"
	@echo "make package STAGE=prod   the stage's whole stack as one CloudFormation template in dist/<stage>/"
	@echo "make deploy-stack [STAGE=stack] [TARGET=localstack|ministack]   that template, deployed into an emulator"
	@echo "make undeploy-stack       remove it"
	@echo "make migrate STAGE=...    run the migrations (local stage, or a deployed stack's migrate function)"
	@echo "make key NAME=web-1 [SOURCES=web-1] [SCOPES=logs:write] [STAGE=local]   make an API key (printed once)"
	@echo "make redrive [STAGE=local] [DRY_RUN=1]          dead letters back to the log queue (SQS's move task)"
	@echo "make replay-rejects [STAGE=local] [DRY_RUN=1]   set-aside entries back to the log queue, once fixed"
	@echo "make faults    the fault suite (about 7 min): outages injected into chalice local and the LocalStack deployment, every acknowledged entry reconciled"
	@echo "make bench     the full benchmark (about 15 min): sluice vs direct vs celery, report in bench/results/"
	@echo "make bench-quick  the same, smaller (under 2 min)"
	@echo "make bench-scale  GET /logs and the writer at 1M and 10M rows (SIZES=...; the last part of make bench)"
	@echo "make lint      ruff and mypy"

setup: system-packages venvs

system-packages:
	@scripts/ensure-system-packages.sh

venvs: $(VENV)/.installed $(LS_VENV)/.installed $(LS_VENV)/.executor-installed $(LAMBDA_VENV)/.installed \
	$(MS_VENV)/.installed

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

# exec: tools.serve is make's own child, so it dies with make (see tools/serve.py).
up: setup
	exec $(PY) -m tools.serve --stage $(STAGE) --port $(PORT)

up-localstack: setup
	exec $(PY) -m tools.serve --stage $(STAGE) --via localstack

deploy: setup
	$(PY) -m tools.devstack up
	$(PY) -m tools.deploy --stage $(STAGE)

undeploy: venvs
	$(PY) -m tools.deploy --stage $(STAGE) --delete

down:
	@if [ -x $(PY) ]; then $(PY) -m tools.serve --stop && $(PY) -m tools.devstack down; fi

status: venvs
	$(PY) -m tools.devstack status
	$(PY) -m tools.status --stage $(STAGE)

bootstrap: setup
	$(PY) -m tools.devstack up
	$(PY) -m tools.bootstrap --stage $(STAGE)

budget: setup
	$(PY) -m tools.devstack run -- $(PY) -m tools.budget --stage $(STAGE)

# The budget rules, then chalice package with deploy/stack.yaml merged: dist/<stage>/sam.yaml + deployment.zip.
package: venvs
	$(PY) -m tools.package --stage $(call given_stage,prod)

# Package the stage and deploy that template into LocalStack (or MiniStack, which enforces IAM).
deploy-stack: setup
	$(PY) -m tools.stack deploy --stage $(call given_stage,stack) --target $(TARGET)

undeploy-stack: venvs
	$(PY) -m tools.stack delete --stage $(call given_stage,stack) --target $(TARGET)

# An API key through the stage's KeyService (local) or its API (a stack: TARGET=localstack|ministack).
key: setup
	$(PY) -m tools.devstack up
	$(PY) -m tools.keys create --stage $(STAGE) --name "$(NAME)" \
		$(if $(SOURCES),--sources "$(SOURCES)") $(if $(SCOPES),--scopes "$(SCOPES)") \
		$(if $(RATE),--rate $(RATE)) $(if $(BURST),--burst $(BURST)) \
		$(if $(filter localstack ministack,$(TARGET)),$(if $(filter command line,$(origin TARGET)),--target $(TARGET)))

migrate: setup
	$(if $(filter aws,$(TARGET)),,$(PY) -m tools.devstack up)
	$(PY) -m tools.migrate --stage $(STAGE) --target $(TARGET)

# What failed, back into the pipeline (DRY_RUN=1: show what would move, move nothing).
redrive: setup
	$(if $(filter aws,$(TARGET)),,$(PY) -m tools.devstack up)
	$(PY) -m tools.redrive dead-letters --stage $(STAGE) --target $(TARGET) $(if $(DRY_RUN),--dry-run)

replay-rejects: setup
	$(if $(filter aws,$(TARGET)),,$(PY) -m tools.devstack up)
	$(PY) -m tools.redrive rejects --stage $(STAGE) --target $(TARGET) $(if $(DRY_RUN),--dry-run)

test: setup $(BENCH_VENV)/.installed
	$(PY) -m tools.devstack run --with ministack -- $(MAKE) --no-print-directory test-suite

test-suite: lint unit functional fuzz integration bench-smoke faults-short

unit: venvs
	$(PY) -m pytest tests/unit

functional: venvs
	$(PY) -m pytest tests/functional

integration: venvs
	$(PY) -m pytest tests/integration

# Schemathesis from openapi.json against the running API (FUZZ_EXAMPLES per operation, default 50).
fuzz: venvs
	$(PY) -m pytest tests/fuzz

# The benchmark starts the services it needs (and stops those it started).
bench: setup $(BENCH_VENV)/.installed
	$(PY) -m tools.devstack run -- $(BENCH_VENV)/bin/python -m bench.run --profile full

bench-quick: setup $(BENCH_VENV)/.installed
	$(PY) -m tools.devstack run -- $(BENCH_VENV)/bin/python -m bench.run --profile quick

# The scale scenario alone (make bench runs it last): GET /logs and the writer at 1M and 10M rows.
SIZES ?= 1000000,10000000
bench-scale: setup $(BENCH_VENV)/.installed
	$(PY) -m tools.devstack run -- $(BENCH_VENV)/bin/python -m bench.scale --sizes $(SIZES)

# A few seconds of every scenario, to keep the harness working (part of make test; no timing checks).
bench-smoke: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -m bench.run --profile smoke --out .data/bench-smoke

# The fault suite kills and restarts MariaDB and Redis: nothing else may use them meanwhile.
faults: setup
	$(PY) -m tools.devstack run -- $(PY) -m faults.run --profile full

# Its short profile, part of make test (report in .data/faults-short).
faults-short: venvs
	$(PY) -m faults.run --profile short --out .data/faults-short

# ruff and mypy; then every packaged stage's template through cfn-lint (0 errors and 0 warnings).
lint: venvs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m tools.openapi --check
	@for stage in $(PACKAGED_STAGES); do $(PY) -m tools.package --stage $$stage || exit 1; done
	$(LS_VENV)/bin/cfn-lint $(foreach stage,$(PACKAGED_STAGES),dist/$(stage)/sam.yaml)

format: venvs
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: down
	rm -rf .data dist $(VENV) $(LS_VENV) $(LAMBDA_VENV) $(BENCH_VENV) $(MS_VENV)
