# jobping: `make demo` runs the pipeline offline, `make test` checks everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: compose help install demo test test-faults soak lint typecheck unit bench interop lock clean emulator-stop up down browser

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "jobping needs Python 3.11 or newer, this is " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.lock
	$(PIP) install --no-deps -e .
	@touch $@

install: $(STAMP)  ## make .venv with the locked dependencies and .venv/bin/jobping

demo: $(STAMP)  ## scrape the bundled sample, analyse it offline, query the result
	PREFECT_LOGGING_LEVEL=WARNING $(BIN)/jobping demo

up: $(STAMP)  ## start the Prefect UI on 127.0.0.1:4200 with the deployments and a worker
	$(BIN)/jobping stack up

down: $(STAMP)  ## stop exactly what `make up` started
	$(BIN)/jobping stack down

lint: $(STAMP)  ## ruff, and the import layers of pyproject.toml (lint-imports)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)  ## mypy --strict on all non-test code
	$(BIN)/mypy

# two pytest workers, a test file to each at a time: most tests wait on real servers (moto, the
# OpenAI stand-in, Prefect), so two cores serve two files at once
# --durations: the slowest tests named in every run's output, where a slower make test shows first
PYTEST := $(BIN)/pytest -n 2 --dist loadfile --durations=15

unit: $(STAMP)  ## pytest without the slow end-to-end tests (the stack and its browser test)
	$(PYTEST) -m "not slow"

CHROMIUM ?= /usr/bin/chromium

browser:  ## Debian's chromium for the UI test (installed with apt-get when missing and run as root)
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)); \
	  else echo "the UI test needs Debian's chromium at $(CHROMIUM): sudo apt-get install chromium" >&2; exit 1; fi; }
	@test -x $(CHROMIUM)

compose:  ## Debian's docker-compose, which checks docker-compose.yml in the tests (installed with apt-get when missing and run as root)
	@command -v docker-compose >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -q docker-compose >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q docker-compose >/dev/null)); \
	  else echo "the compose tests need Debian's docker-compose: sudo apt-get install docker-compose" >&2; exit 1; fi; }
	@command -v docker-compose >/dev/null

# the end-to-end tests run the whole stack and a browser: alone, after the others, so that no
# other test slows them
test: lint typecheck browser compose  ## ruff, lint-imports, mypy --strict and every test (the UI test drives chromium)
	$(PYTEST) -m "not slow"
	$(BIN)/pytest -m slow --durations=10

test-faults: $(STAMP)  ## the fault-injection suite and the 90-night soak, against real processes; writes docs/RELIABILITY.md
	$(BIN)/python scripts/faults.py
	$(BIN)/python scripts/soak.py

soak: $(STAMP)  ## ninety nights of the local stack, compressed (about 6 min); writes the soak section of docs/RELIABILITY.md
	$(BIN)/python scripts/soak.py

bench: $(STAMP)  ## run the benchmarks and write bench/RESULTS.md
	$(BIN)/python -m bench.run

# Spark reads the lake from its own venv: pyspark is 400 MB, and only this target needs it
SPARK_VENV := .venv-interop
PYSPARK := pyspark==4.0.1

interop: $(STAMP)  ## the lake read by polars, pyarrow, DuckDB and (with Java) Spark, against the views; not in CI
	@if command -v java >/dev/null && ! $(SPARK_VENV)/bin/python -c 'import pyspark' 2>/dev/null; then \
	  $(PYTHON) -m venv $(SPARK_VENV) && $(SPARK_VENV)/bin/python -m pip install --quiet $(PYSPARK); fi
	$(BIN)/python -m scripts.interop --spark-python $(SPARK_VENV)/bin/python $(INTEROP_ARGS)

lock:  ## re-resolve the dependencies into requirements.lock
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet -e '.[dev]'
	.venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^jobping' > requirements.lock
	rm -rf .venv-lock

emulator-stop:  ## stop the embedded SQS emulator
	$(BIN)/jobping emulator stop

clean:  ## remove the venv and the data dir
	-$(BIN)/jobping emulator stop
	rm -rf $(VENV) $(SPARK_VENV) data .mypy_cache .ruff_cache .pytest_cache
