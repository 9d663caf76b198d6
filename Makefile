# Day 6 workshop course kit.  `make lab` to teach/learn, `make test` to check everything.
# The first use of any target creates .venv and installs the pinned dependencies.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KERNEL := day6
PORT ?= 8888
# pytest workers: one more than the cores, since the grading tests wait on kernels, time-outs
# and servers (2 cores: -n 2 733 s, -n 3 523 s, -n 4 605 s; NOTES.md).
JOBS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 2) + 1 )))
UNITS := $(notdir $(wildcard solutions/[0-9][0-9]-*))
# nbgrader shells out to the venv's `alembic`; keep the venv's bin first on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv lab demo test lint pytest release bench clean clean-grading sandbox postgres grade browser test-browser

help:
	@echo "make lab      start JupyterLab on notebooks/ (installs on first use)"
	@echo "make test     lint + the whole test suite"
	@echo "make release  regenerate notebooks/ from solutions/ with nbgrader"
	@echo "make bench    speed/memory benchmarks (not tests)"
	@echo "make clean    caches only (never grading/work/)"
	@echo "make clean-grading  delete grading/work/ (gradebook, submissions): asks first"
	@echo "make grade ASSIGNMENT=01-kmeans SUBMISSIONS=path/   autograde a class (sandboxed)"
	@echo "make sandbox  install bubblewrap, the grading sandbox (as root; warns otherwise)"
	@echo "make postgres install PostgreSQL for the shared-gradebook test (as root; warns otherwise)"
	@echo "make test-browser  JupyterLab in headless Chromium (screenshots in test-artifacts/)"

venv: $(STAMP)

# scripts/install_venv.py: uv (pip where uv cannot) from the sources pip is configured with,
# then byte-compiles site-packages on every core (a fresh .venv: ~40-50 s, pip took 74-110).
$(STAMP): pyproject.toml etc/jupyter/jupyter_nbconvert_config.json scripts/install_venv.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python scripts/install_venv.py
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) \
	    --display-name "Python 3 (Day 6 workshop)" >/dev/null
	# nbconvert's HTML prefers the PNG our explorers also offer over their live view,
	# which needs a widget manager from a CDN and shows nothing offline.
	mkdir -p $(VENV)/etc/jupyter
	cp etc/jupyter/jupyter_nbconvert_config.json $(VENV)/etc/jupyter/
	touch $(STAMP)

# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --port=$(PORT) $(ALLOW_ROOT)

# Presenter set-up: large fonts, all cells rendered, every unit's kernel warmed up.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py --port=$(PORT)

lint: $(STAMP)
	$(BIN)/ruff check helpers grading tests benchmarks scripts

# Byte-compile the course's own code first: every kernel, grading worker and test process
# imports helpers/ (read-only in the sandbox, so a kernel cannot write the .pyc itself).
pytest: $(STAMP)
	$(BIN)/python -m compileall -q -j 0 helpers grading >/dev/null
	MPLBACKEND=Agg $(BIN)/python -m pytest -n $(JOBS) --dist worksteal --durations=15 -m "not browser"

# Debian's chromium for the browser tests (never `playwright install`: no downloads here).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	    || echo "WARNING: could not install chromium; browser tests will be skipped"; \
	else echo "WARNING: chromium missing and not root; browser tests will be skipped"; fi

test-browser: $(STAMP) browser
	MPLBACKEND=Agg $(BIN)/python -m pytest tests/browser -m browser -rs

test: sandbox postgres lint pytest

release: $(STAMP)
	cd grading && for u in $(UNITS); do nbgrader generate_assignment $$u --force || exit 1; done

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Caches only. Grades, submissions and reports (grading/work/) are never touched by `clean`.
clean:
	rm -rf .pytest_cache .ruff_cache test-artifacts
	find helpers grading tests benchmarks scripts -name __pycache__ -type d -prune \
	    -exec rm -rf {} +

# Deletes the gradebook, every submission, feedback and report: asks first (CONFIRM=yes to
# skip the question in a script).
clean-grading:
	@if [ ! -d grading/work ]; then echo "grading/work/ does not exist: nothing to delete"; exit 0; fi; \
	echo "This deletes grading/work/: the gradebook, every submission, feedback and report:"; \
	du -sh grading/work; \
	answer="$(CONFIRM)"; \
	if [ -z "$$answer" ]; then printf "Type yes to delete it: "; read answer; fi; \
	if [ "$$answer" = yes ]; then rm -rf grading/work && echo "deleted grading/work/"; \
	else echo "kept grading/work/"; exit 1; fi

# The grading sandbox (bubblewrap, from Debian). Never fails: without it grading still works,
# unprotected, and says so loudly.
sandbox:
	@if command -v bwrap >/dev/null 2>&1; then \
	    echo "sandbox: $$(bwrap --version) found"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) \
	    >/dev/null 2>&1; then \
	    echo "sandbox: installed $$(bwrap --version)"; \
	else \
	    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	    echo "!! WARNING: bubblewrap (bwrap) is missing and could not be installed (needs"; \
	    echo "!! root and apt-get). Grading will run UNPROTECTED: student code could read the"; \
	    echo "!! gradebook and other submissions. Install it: sudo apt-get install bubblewrap"; \
	    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	fi

# PostgreSQL (Debian's postgresql) for tests/test_grading_postgres.py, which starts its own
# throwaway server: a gradebook several TAs share. Never fails: without it that test skips.
PG_INITDB = $(firstword $(shell command -v initdb 2>/dev/null) $(wildcard /usr/lib/postgresql/*/bin/initdb))
postgres:
	@initdb="$(PG_INITDB)"; \
	if [ -n "$$initdb" ]; then \
	    echo "postgres: $$($$initdb --version) found"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) \
	    >/dev/null 2>&1; then \
	    echo "postgres: installed $$(ls /usr/lib/postgresql/*/bin/initdb | tail -n 1)"; \
	else \
	    echo "WARNING: PostgreSQL (initdb, pg_ctl) is missing and could not be installed (needs"; \
	    echo "  root and apt-get): the shared-gradebook test will be skipped. Install it:"; \
	    echo "  sudo apt-get install postgresql"; \
	fi

ASSIGNMENT ?=
SUBMISSIONS ?=
GRADE_ARGS ?=
grade: $(STAMP) sandbox
	@test -n "$(ASSIGNMENT)" -a -n "$(SUBMISSIONS)" || \
	    { echo "usage: make grade ASSIGNMENT=01-kmeans SUBMISSIONS=path/ [GRADE_ARGS=--jobs 4]"; exit 2; }
	MPLBACKEND=Agg $(BIN)/python -m grading grade --assignment $(ASSIGNMENT) \
	    --submissions $(SUBMISSIONS) $(GRADE_ARGS)
