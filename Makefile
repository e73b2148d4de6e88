# Everything a fresh clone needs: Python 3.11+, make, git (and Node.js 20 for the client tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8001
PYTEST_ARGS ?=

.PHONY: run test bench openapi lint demo clean

$(STAMP): requirements-dev.lock layers/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e layers/
	touch $(STAMP)

## run: the service on http://$(HOST):$(PORT), backed by an embedded moto server
run: $(STAMP)
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python -m local.server

## test: the whole suite (unit, moto integration, infra, local end-to-end)
test: $(STAMP) clients/node/node_modules/.installed
	$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)
	cd clients/node && npm test --silent

clients/node/node_modules/.installed: clients/node/package-lock.json
	cd clients/node && npm ci --no-audit --no-fund --silent
	touch $@

## openapi: regenerate the committed OpenAPI document from the models
openapi: $(STAMP)
	$(BIN)/python -m local.openapi
	node clients/node/scripts/gen-types.js

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV)

## bench: every benchmark in bench/ (QUICK=1 for the short version); tables in bench/README.md
bench: $(STAMP)
	QUICK=$(QUICK) $(BIN)/python -m bench.run
