# Two commands for a new user: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.grokplug-installed

.PHONY: install demo test test-slow test-all lint docs bench clean

INSTALL_LOG := $(VENV)/install.log

# One line of progress; the build log goes to $(INSTALL_LOG) and is named when the install fails.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing grokplug and its dependencies into $(VENV) (log: $(INSTALL_LOG)) ..."
	@{ $(BIN)/python -m pip install --upgrade pip && $(BIN)/python -m pip install -e '.[dev]'; } >$(INSTALL_LOG) 2>&1 \
		|| { echo "install failed; the last lines of $(INSTALL_LOG):"; tail -n 15 $(INSTALL_LOG); exit 1; }
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
	$(BIN)/mypy grokplug hooks adapters

docs: $(STAMP)
	$(BIN)/python -m grokplug._hookdocs > docs/hooks.md

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf build dist *.egg-info runs .pytest_cache
