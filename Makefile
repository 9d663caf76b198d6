# Day 6 workshop course kit.  `make lab` to teach/learn, `make test` to check everything.
# The first use of any target creates .venv and installs the pinned dependencies.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNEL := day6
PORT ?= 8888
JOBS ?= 2
UNITS := $(notdir $(wildcard solutions/[0-9][0-9]-*))
# nbgrader shells out to the venv's `alembic`; keep the venv's bin first on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv lab demo test lint pytest release bench clean browser test-browser

help:
	@echo "make lab      start JupyterLab on notebooks/ (installs on first use)"
	@echo "make test     lint + the whole test suite"
	@echo "make release  regenerate notebooks/ from solutions/ with nbgrader"
	@echo "make bench    speed/memory benchmarks (not tests)"
	@echo "make test-browser  JupyterLab in headless Chromium (screenshots in test-artifacts/)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) \
	    --display-name "Python 3 (Day 6 workshop)" >/dev/null
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --port=$(PORT)

lint: $(STAMP)
	$(BIN)/ruff check helpers grading tests benchmarks

pytest: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest -n $(JOBS) --durations=15 -m "not browser"

# Debian's chromium for the browser tests (never `playwright install`: no downloads here).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	    || echo "WARNING: could not install chromium; browser tests will be skipped"; \
	else echo "WARNING: chromium missing and not root; browser tests will be skipped"; fi

test-browser: $(STAMP) browser
	MPLBACKEND=Agg $(BIN)/python -m pytest tests/browser -m browser -rs

test: lint pytest

release: $(STAMP)
	cd grading && for u in $(UNITS); do nbgrader generate_assignment $$u --force || exit 1; done

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf grading/work .pytest_cache .ruff_cache
