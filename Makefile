# Contact Sync — developer entry points. `make test` works from a clean clone on Debian as root.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install services test lint format run bench load binaries clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import venv' 2>/dev/null || (apt-get update -qq && apt-get install -y -qq python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,bench]'
	@touch $(STAMP)

services:
	@bash scripts/services.sh

test: install services
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

run: install services
	$(PY) scripts/run_dev.py

bench: install services
	$(PY) bench/run.py $(BENCH_ARGS)

load: install services
	$(PY) tests/load/run.py $(LOAD_ARGS)

binaries: install
	bash deploy/binaries/build.sh

clean:
	rm -rf $(VENV) dist build .pytest_cache .ruff_cache
