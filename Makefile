# MedFabric: one-command set-up, consortium life cycle, tests.
#   make demo   sets up what is missing, brings the consortium up, runs the first EMR put/get
#   make test   unit tests, then integration tests against a real consortium they start and stop
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OPS := $(BIN)/python -m medfabric_ops
MODE ?= native
TOPOLOGY ?= network/topology.yaml
PYTEST_ARGS ?=

.PHONY: help setup venv up down status logs clean demo test unit integration render

help:
	@echo "make demo | test | setup | up | down | status | logs | clean   (MODE=native|docker)"

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

setup: venv
	$(OPS) setup --mode $(MODE) --topology $(TOPOLOGY)

render: venv
	$(OPS) render --topology $(TOPOLOGY)

up: setup
	$(OPS) up --mode $(MODE) --topology $(TOPOLOGY)

down: venv
	$(OPS) down --mode $(MODE) --topology $(TOPOLOGY)

status: venv
	$(OPS) status --mode $(MODE) --topology $(TOPOLOGY)

logs: venv
	$(OPS) logs --topology $(TOPOLOGY)

clean: venv
	$(OPS) clean --mode $(MODE) --topology $(TOPOLOGY)

demo: up
	$(BIN)/medfabric demo --topology $(TOPOLOGY)

unit: venv
	$(BIN)/python -m pytest tests/unit -q $(PYTEST_ARGS)

integration: venv
	$(BIN)/python -m pytest tests/integration -q $(PYTEST_ARGS)

test: venv
	$(BIN)/python -m pytest tests -q $(PYTEST_ARGS)
