# Telecare gateway: the two commands are `make demo` and `make test`.
# Each sets up what it needs (virtual environment, Mosquitto, PostgreSQL + TimescaleDB),
# idempotently: a second run skips whatever is already in place.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.lock pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test test-faults check lint types services services-stop stop venv clean-venv browser bench

venv: $(STAMP)

$(STAMP): requirements-dev.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "venv: installing locked packages"
	@$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.lock 2>&1 \
		| { grep -v "^WARNING: Location" || true; }; test $${PIPESTATUS[0]} -eq 0
	@$(BIN)/pip install -q --disable-pip-version-check --no-deps -e . 2>&1 \
		| { grep -v -i "warning\|^ *!!\|wheel_obj" || true; }; test $${PIPESTATUS[0]} -eq 0
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

services:
	@bash scripts/services.sh ensure

services-stop:
	@bash scripts/services.sh stop

demo: venv services
	@bash scripts/demo.sh

stop:
	@bash scripts/demo.sh stop

browser:
	@bash scripts/browser.sh ensure

# The simulated nights run alone (they judge time); everything else on two workers (each test
# has its own topic root, database and ports). Both parts always run; either failing fails.
test: venv services browser
	@rc=0; $(BIN)/pytest -q tests/e2e || rc=1; \
	$(BIN)/pytest -q -n 2 --dist worksteal --ignore=tests/faults --ignore=tests/e2e || rc=1; exit $$rc

# Bounded fault runs (broker kills, fuzzing at volume): CI runs them after `make test`.
test-faults: venv services
	@$(BIN)/pytest -q tests/faults

lint: venv
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

types: venv
	@$(BIN)/mypy gateway devices responders simulator dashboard_tui api_models

check: lint types test

clean-venv:
	rm -rf $(VENV)

# Benchmarks (never part of `make test`): each starts its own broker on a free loopback port and
# a fresh database, bounds itself, prints a table and writes bench/results/*.json.
bench: venv services
	@$(BIN)/python -m benchmarks.run
