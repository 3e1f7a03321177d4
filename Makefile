# The commands a person types. `make up` and `make test` set up everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
LS_VENV := .venv-localstack
LAMBDA_VENV := .venv-lambda
EXECUTOR_SRC := $(shell find localstack/host_executor -name '*.py' -o -name pyproject.toml)
STAGE   ?= local

.PHONY: help setup system-packages venvs up up-localstack deploy undeploy down status bootstrap budget \
	test test-suite unit functional integration lint format clean

help:
	@echo "make up        start MariaDB, Redis, LocalStack; serve the API on :8000 with chalice local (Ctrl-C stops)"
	@echo "make up-localstack  the same, but deployed into LocalStack: API Gateway, Lambda, SQS event source"
	@echo "make deploy    deploy (or update) the stage into the running LocalStack and print its URL"
	@echo "make test      the same setup, then lint and every test"
	@echo "make down      stop services left running"
	@echo "make budget    check the stage's MySQL connection budget (STAGE=local)"
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

test: setup
	$(PY) -m tools.devstack run -- $(MAKE) --no-print-directory test-suite

test-suite: lint unit functional integration

unit: venvs
	$(PY) -m pytest tests/unit

functional: venvs
	$(PY) -m pytest tests/functional

integration: venvs
	$(PY) -m pytest tests/integration

lint: venvs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: venvs
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: down
	rm -rf .data $(VENV) $(LS_VENV) $(LAMBDA_VENV)
