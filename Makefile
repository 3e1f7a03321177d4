# The commands a person types. `make up` and `make test` set up everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
LS_VENV := .venv-localstack
LAMBDA_VENV := .venv-lambda
BENCH_VENV := .venv-bench
EXECUTOR_SRC := $(shell find localstack/host_executor -name '*.py' -o -name pyproject.toml)
STAGE   ?= local

.PHONY: help setup system-packages venvs up up-localstack deploy undeploy down status bootstrap budget \
	test test-suite unit functional integration bench bench-quick bench-smoke lint format clean

help:
	@echo "make up        start MariaDB, Redis, LocalStack; serve the API on :8000 with chalice local (Ctrl-C stops)"
	@echo "make up-localstack  the same, but deployed into LocalStack: API Gateway, Lambda, SQS event source"
	@echo "make deploy    deploy (or update) the stage into the running LocalStack and print its URL"
	@echo "make test      the same setup, then lint and every test"
	@echo "make down      stop services left running"
	@echo "make budget    check the stage's MySQL connection budget (STAGE=local)"
	@echo "make bench     the full benchmark (about 15 min): sluice vs direct vs celery, report in bench/results/"
	@echo "make bench-quick  the same, smaller (under 2 min)"
	@echo "make lint      ruff and mypy"

setup: system-packages venvs

system-packages:
	@scripts/ensure-system-packages.sh

venvs: $(VENV)/.installed $(LS_VENV)/.installed $(LS_VENV)/.executor-installed $(LAMBDA_VENV)/.installed

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

$(BENCH_VENV)/.installed: bench/requirements.txt requirements-dev.txt requirements.txt scripts/make-venv.sh
	scripts/make-venv.sh $(BENCH_VENV) bench/requirements.txt

up: setup
	$(PY) -m tools.serve --stage $(STAGE)

up-localstack: setup
	$(PY) -m tools.serve --stage $(STAGE) --via localstack

deploy: setup
	$(PY) -m tools.devstack up
	$(PY) -m tools.deploy --stage $(STAGE)

undeploy: venvs
	$(PY) -m tools.deploy --stage $(STAGE) --delete

down:
	@if [ -x $(PY) ]; then $(PY) -m tools.devstack down; fi

status: venvs
	$(PY) -m tools.devstack status

bootstrap: setup
	$(PY) -m tools.devstack up
	$(PY) -m tools.bootstrap --stage $(STAGE)

budget: setup
	$(PY) -m tools.devstack run -- $(PY) -m tools.budget --stage $(STAGE)

test: setup $(BENCH_VENV)/.installed
	$(PY) -m tools.devstack run -- $(MAKE) --no-print-directory test-suite

test-suite: lint unit functional integration bench-smoke

unit: venvs
	$(PY) -m pytest tests/unit

functional: venvs
	$(PY) -m pytest tests/functional

integration: venvs
	$(PY) -m pytest tests/integration

# The benchmark starts the services it needs (and stops those it started).
bench: setup $(BENCH_VENV)/.installed
	$(PY) -m tools.devstack run -- $(BENCH_VENV)/bin/python -m bench.run --profile full

bench-quick: setup $(BENCH_VENV)/.installed
	$(PY) -m tools.devstack run -- $(BENCH_VENV)/bin/python -m bench.run --profile quick

# A few seconds of every scenario, to keep the harness working (part of make test; no timing checks).
bench-smoke: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python -m bench.run --profile smoke --out .data/bench-smoke

lint: venvs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: venvs
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: down
	rm -rf .data $(VENV) $(LS_VENV) $(LAMBDA_VENV) $(BENCH_VENV)
