# The commands a person types. `make up` and `make test` set up everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
LS_VENV := .venv-localstack
STAGE   ?= local

.PHONY: help setup system-packages venvs up down status bootstrap budget test test-suite unit functional lint format clean

help:
	@echo "make up        start MariaDB, Redis, LocalStack; serve the API on :8000 and consume the queue (Ctrl-C stops)"
	@echo "make test      the same setup, then lint and every test"
	@echo "make down      stop services left running"
	@echo "make budget    check the stage's MySQL connection budget (STAGE=local)"
	@echo "make lint      ruff and mypy"

setup: system-packages venvs

system-packages:
	@scripts/ensure-system-packages.sh

venvs: $(VENV)/.installed $(LS_VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt scripts/make-venv.sh
	scripts/make-venv.sh $(VENV) requirements-dev.txt

$(LS_VENV)/.installed: localstack/requirements.txt localstack/constraints.txt scripts/make-venv.sh
	scripts/make-venv.sh $(LS_VENV) localstack/requirements.txt

up: setup
	$(PY) -m tools.serve --stage $(STAGE)

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

test-suite: lint unit functional

unit: venvs
	$(PY) -m pytest tests/unit

functional: venvs
	$(PY) -m pytest tests/functional

lint: venvs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: venvs
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: down
	rm -rf .data $(VENV) $(LS_VENV)
