# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the project from its own files.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/custsync demo

test: $(STAMP)
	$(BIN)/ruff check engine connectors tests bench
	$(BIN)/mypy engine connectors
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check engine connectors tests bench

typecheck: $(STAMP)
	$(BIN)/mypy engine connectors

bench: $(STAMP)
	$(BIN)/python bench/evaluate.py --n 100000
	$(BIN)/python bench/shopify.py --n 2000
	$(BIN)/python bench/sync.py --n 10000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
