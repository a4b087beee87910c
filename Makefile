# Every target bootstraps its own virtual environment; nothing else needs to be installed first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
CORE_STAMP := $(VENV)/.installed-core
BENCH_STAMP := $(VENV)/.installed-bench
TORCH_VERSION ?= 2.13.0

.PHONY: demo test lint format bench soak docs screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The core alone: what a user of the library gets, and all the demo needs.
$(CORE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# torch is asked for by its exact version first: that CPU build is what sentence-transformers
# (the semantic drift tests) then uses, instead of a multi-GB CUDA build a plain "torch" would pick.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet 'torch==$(TORCH_VERSION)'
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(CORE_STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

demo: $(CORE_STAMP)
	$(BIN)/seawall demo

test: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider --cov --cov-report=term $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# The fault matrix at its goal: 1,000 SQLite, 200 PostgreSQL and 20 Celery schedules of kills,
# stalls, ledger outages and worker pauses, 0 violations (`make bench` runs a smaller one).
soak: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.bench_faults $(SOAK_ARGS)

docs: $(STAMP)
	$(BIN)/python -m seawall.cli._reference > docs/cli-reference.md

# The dashboard's pages (light and dark) for docs/dashboard.md; needs Debian's chromium.
screenshots: $(STAMP)
	$(BIN)/python -m tests.dashboard.screenshots docs/img

clean:
	rm -rf $(VENV) .seawall .pytest_cache .mypy_cache .ruff_cache .coverage*
