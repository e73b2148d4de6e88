# Everything a fresh clone needs: Python 3.11+, make, git (and Node.js 20 for the client tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8001
PYTEST_ARGS ?=
LOCAL_STATE_FILE ?= .local/state.json

.PHONY: run test bench openapi lint demo clean

$(STAMP): requirements-dev.lock layers/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e layers/
	touch $(STAMP)

## run: the service on http://$(HOST):$(PORT), backed by an embedded moto server; tables and
## bucket are kept in $(LOCAL_STATE_FILE) across restarts (LOCAL_STATE_FILE= to start empty)
run: $(STAMP)
	HOST=$(HOST) PORT=$(PORT) LOCAL_STATE_FILE=$(LOCAL_STATE_FILE) $(BIN)/python -m local.server

## test: the whole suite (unit, moto integration, infra, local end-to-end)
test: $(STAMP) clients/node/node_modules/.installed
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)
	cd clients/node && npm test --silent

clients/node/node_modules/.installed: clients/node/package-lock.json
	cd clients/node && npm ci --no-audit --no-fund --silent
	touch $@

## openapi: regenerate the committed OpenAPI document from the models
openapi: $(STAMP)
	$(BIN)/python -m local.openapi
	$(BIN)/python docs/gen_api.py
	node clients/node/scripts/gen-types.js

## demo: one designer's journey against ML_SERVICE_URL (or a local server it starts); writes demo/report.html
demo: $(STAMP)
	$(BIN)/python demo/run.py $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV)

## bench: every benchmark in bench/ (QUICK=1 for the short version); tables in bench/README.md
bench: $(STAMP)
	QUICK=$(QUICK) $(BIN)/python -m bench.run
