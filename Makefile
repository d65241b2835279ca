# MedFabric: one-command set-up, consortium life cycle, tests.
#   make demo   sets up what is missing, brings the consortium up, runs the EMR sharing demo
#   make test   unit tests, then integration tests against a real consortium they start and stop
#   make bench  Caliper benchmarks of the running consortium (SUITE=, ROUNDS=, PROFILE=)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OPS := $(BIN)/python -m medfabric_ops
MODE ?= native
TOPOLOGY ?= network/topology.yaml
PYTEST_ARGS ?=
# Tuning profile of network/topology.yaml (low-latency, high-throughput); empty: the file's own values.
PROFILE ?=
PROFILE_FLAG := $(if $(PROFILE),--profile $(PROFILE))
SUITE ?= default
ROUNDS ?=
# Node workspaces the tests use: dclint and the Compose schema, the official
# Fabric Gateway client and chaincode shim that check our fakes speak the protocol,
# Caliper (its runner is tested against the fake Gateway) and the Node baseline chaincode.
NODE_WORKSPACES := tests/node tests/conformance/node tests/conformance/chaincode_node caliper caliper/baseline

.PHONY: help setup venv node-deps baseline-deps bench-deps up down status logs clean demo demo-fl test unit \
	integration render bench bench-fl bench-market bench-consensus bench-report reliability

help:
	@echo "make demo | demo-fl | test | setup | up | down | status | logs | clean   (MODE=native|docker, PROFILE=NAME)"
	@echo "make bench [SUITE=default] [ROUNDS=N] [PROFILE=NAME] | bench-fl | bench-market | bench-consensus | bench-report"
	@echo "make reliability   hostile input, then faults under load on a consortium of its own (build/network/bench/)"

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

setup: venv
	$(OPS) setup --mode $(MODE) --topology $(TOPOLOGY) $(PROFILE_FLAG)

render: venv
	$(OPS) render --topology $(TOPOLOGY) $(PROFILE_FLAG)

up: setup baseline-deps
	$(OPS) up --mode $(MODE) --topology $(TOPOLOGY) $(PROFILE_FLAG)

# The Node baseline chaincode's packages, when npm is there; without them `up` skips the baseline, saying so.
baseline-deps:
	@if [ -f caliper/baseline/package-lock.json ] && [ ! -d caliper/baseline/node_modules ] \
	  && command -v npm >/dev/null; then \
	  (cd caliper/baseline && npm ci --no-audit --no-fund --loglevel=error) || true; \
	fi

bench-deps:
	@command -v npm >/dev/null || { echo "npm not found: Caliper needs Node.js 20 and npm"; exit 1; }
	@[ -d caliper/node_modules ] || (cd caliper && npm ci --no-audit --no-fund --loglevel=error)

# Caliper on the running consortium (make up first); results in build/bench/<UTC time>-<SUITE>/.
bench: venv bench-deps
	$(OPS) bench --topology $(TOPOLOGY) --suite $(SUITE) $(if $(ROUNDS),--rounds $(ROUNDS)) $(PROFILE_FLAG)

# Federated learning's ledger cost per round on the running consortium (make up PROFILE=low-latency first).
bench-fl: venv
	$(BIN)/medfabric --topology $(TOPOLOGY) fl bench $(if $(ROUNDS),--rounds $(ROUNDS))

# The market solver (no network): N = 10^4 users, M = 10 duty nodes, against scipy's centralised solve.
bench-market: venv
	$(BIN)/medfabric market bench

# Real SmartBFT, flat against AHC-clustered (needs no running consortium: each case comes up at 27000 and goes).
bench-consensus: venv
	$(OPS) bench-consensus

# Hostile input first (generated arguments for every contract transaction through the real chaincode runtime;
# FUZZ_PER_TRANSACTION=10000 is the full run), then faults under load (leader orderer, peers, chaincode server,
# data service, refusal flood, down + up) on a consortium of its own at 28000: one table of both.
FUZZ_PER_TRANSACTION ?= 1000
reliability: venv
	mkdir -p build/network/bench
	$(BIN)/python -m tests.fuzz.contracts --per-transaction $(FUZZ_PER_TRANSACTION) --seed 13 --quiet \
		--report build/network/bench/fuzz-report.json > /dev/null
	$(OPS) reliability --fuzz-report build/network/bench/fuzz-report.json

bench-report: venv
	$(BIN)/medfabric bench report

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

# Federated learning on the running consortium: a task over every domain, all rounds, every aggregation re-run.
FL_STARTED := $(shell date -u +%Y%m%dT%H%M%S)
FL_TASK ?= demo-$(FL_STARTED)
demo-fl: up
	$(BIN)/medfabric --topology $(TOPOLOGY) fl task create --task-id $(FL_TASK) --rounds 30 --target-accuracy 0.99 \
	  --domains $$($(BIN)/python -c "from medfabric.consortium.topology import load_topology as t; \
	  print(','.join(d.id for d in t('$(TOPOLOGY)').domains))")
	$(BIN)/medfabric --topology $(TOPOLOGY) fl run --task $(FL_TASK)
	$(BIN)/medfabric --topology $(TOPOLOGY) fl verify --task $(FL_TASK)
	$(BIN)/medfabric --topology $(TOPOLOGY) fl status --task $(FL_TASK) --plot build/fl-$(FL_TASK).png

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
