# MedFabric: one-command set-up, consortium life cycle, tests.
#   make demo   sets up what is missing, brings the consortium up, runs the EMR sharing demo
#   make test   unit tests, then integration tests against a real consortium they start and stop
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OPS := $(BIN)/python -m medfabric_ops
MODE ?= native
TOPOLOGY ?= network/topology.yaml
PYTEST_ARGS ?=
# Node workspaces the tests use: dclint and the Compose schema, and the official
# Fabric Gateway client and chaincode shim that check our fakes speak the protocol.
NODE_WORKSPACES := tests/node tests/conformance/node tests/conformance/chaincode_node

.PHONY: help setup venv node-deps up down status logs clean demo test unit integration render

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
	$(BIN)/medfabric --topology $(TOPOLOGY) demo

node-deps:
	@command -v npm >/dev/null || { echo "npm not found: the Node-based checks will be skipped"; exit 0; }; \
	for dir in $(NODE_WORKSPACES); do \
	  [ -d $$dir/node_modules ] || (cd $$dir && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
	done

unit: venv node-deps
	$(BIN)/python -m pytest tests/unit tests/conformance -q $(PYTEST_ARGS)

integration: venv
	$(BIN)/python -m pytest tests/integration -q $(PYTEST_ARGS)

test: venv node-deps
	$(BIN)/python -m pytest tests -q $(PYTEST_ARGS)
