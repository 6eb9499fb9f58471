# Growthlens: `make run` runs the platform on demo data; `make test` runs lint, template checks and the tests.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint install clean bench

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/growthlens serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/cfn-lint template.yaml

test: lint
	@test -x /usr/bin/chromium || ./.ci/install-chromium || echo "note: Chromium unavailable; browser tests will be skipped"
	$(BIN)/pytest -q -n 2 -m "not e2e"
	$(BIN)/pytest -q -m e2e    # browser tests: one process sharing one demo store, API and dashboard

BENCHES := overview mmm optimize simulate attribution cdp identity package

# Comparison tools live in their own Python 3.12 environments, never in the project's dependencies.
PY312 ?= python3.12
BENCH_ENVS := bench/.venv-pymc/bin/python bench/.venv-ca/bin/python bench/.venv-rl/bin/python

bench/.venv-pymc/bin/python:
	$(PY312) -m venv bench/.venv-pymc && bench/.venv-pymc/bin/pip install --quiet pymc-marketing==1.3.0
bench/.venv-ca/bin/python:
	$(PY312) -m venv bench/.venv-ca && bench/.venv-ca/bin/pip install --quiet channelattribution==2.2.5 matplotlib
bench/.venv-rl/bin/python:
	$(PY312) -m venv bench/.venv-rl && bench/.venv-rl/bin/pip install --quiet recordlinkage splink==5.0.0

bench: $(STAMP) $(BENCH_ENVS)
	for b in $(BENCHES); do nice $(BIN)/python bench/$$b.py || exit 1; done
	$(BIN)/python bench/collect.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
