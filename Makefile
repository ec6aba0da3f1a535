# Two commands for a new user: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.grokplug-installed

.PHONY: install demo test test-slow test-all lint docs bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/grokplug demo

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check grokplug hooks adapters examples tests benchmarks

docs: $(STAMP)
	$(BIN)/python -m grokplug._hookdocs > docs/hooks.md

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf build dist *.egg-info runs .pytest_cache
