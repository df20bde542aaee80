# DPHP: two commands on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EVENTS ?=

.PHONY: install system-deps bench-web bench-publish bench-scale demo test test-unit test-integration test-e2e faults faults-short up down status bench schemas clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## Debian packages of features and tests (apt-get, when absent): chromium and pdftotext (PDF forms,
## browser and PDF tests), prometheus and promtool (`dphp dev up --monitoring`, the rules test).
system-deps:
	scripts/system-deps.sh

## The main job: start the stack and the services, publish a Blora sample, print the recap.
demo: $(STAMP)
	$(BIN)/dphp demo

## All tests: unit, integration (real Kafka and PostgreSQL) and end-to-end.
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -m "unit or integration or e2e"

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest -m integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e

## The fault campaign: its own broker and database on free ports, killed and restarted; prints
## the table and writes it to out/faults.md. Needs root (tmpfs tablespace, PostgreSQL as `postgres`).
faults: $(STAMP)
	$(BIN)/python -m pytest -m faults tests/faults -s

## Its CI version: one repetition of the fast scenarios, 30,000 events (< 8 minutes).
faults-short: $(STAMP)
	DPHP_FAULTS_SHORT=1 $(BIN)/python -m pytest -m faults tests/faults -s

up: $(STAMP)
	$(BIN)/dphp dev up

down: $(STAMP)
	$(BIN)/dphp dev down

status: $(STAMP)
	$(BIN)/dphp dev status

schemas: $(STAMP)
	$(BIN)/python -m schemas.generate

## The benchmark: uses the stack of the settings (started here if needed, without services).
bench: $(STAMP)
	$(BIN)/dphp dev up --no-services
	$(BIN)/python -m bench.run $(if $(EVENTS),--events $(EVENTS))

## dphp publish's paths side by side: per-event, batched (workers), bare aiokafka (the limit).
bench-publish: $(STAMP)
	$(BIN)/dphp dev up --no-services
	$(BIN)/python -m bench.publish $(if $(EVENTS),--events $(EVENTS))

## Cost against size (default 0.1 M, 1 M, 5 M events; SIZES=100000,1000000,5000000,full adds the whole
## province, 28.4 M voters): appends to docs/scale.md with a plot.
bench-scale: $(STAMP)
	$(BIN)/dphp dev up --no-services
	$(BIN)/python -m bench.scale $(if $(SIZES),--sizes $(SIZES))

clean: down
	rm -rf .dphp

## Latency of the web pages (p50/p99 of a province and a kabupaten page) on the configured projection.
bench-web: $(STAMP)
	$(BIN)/python -m bench.web
