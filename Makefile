# Two commands for a new user: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.grokplug-installed

.PHONY: install demo test test-slow test-all test-compat lint docs bench clean

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

# open-unlearning's pins: a second virtualenv with them, running the adapter, HF and LLM tests there.
COMPAT       ?= .venv-compat
COMPAT_STAMP := $(COMPAT)/.grokplug-installed
OU_PINS      := transformers==4.45.1 accelerate==0.34.2
COMPAT_TESTS := tests/test_trainer_adapter.py tests/test_llm_methods.py tests/test_llm_unlearn.py \
                tests/test_llm_data.py tests/test_llm_model.py tests/test_llm_qa.py tests/test_llm_metrics.py \
                tests/test_hf.py tests/test_hf_trainer_run.py tests/test_export.py tests/test_adapters.py \
                tests/test_toolkit_fixes.py tests/test_perturber_adapter.py

$(COMPAT_STAMP): pyproject.toml
	@test -x $(COMPAT)/bin/python || $(PYTHON) -m venv $(COMPAT)
	@echo "installing grokplug with open-unlearning's pins ($(OU_PINS)) into $(COMPAT) (log: $(COMPAT)/install.log) ..."
	@{ $(COMPAT)/bin/python -m pip install --upgrade pip && $(COMPAT)/bin/python -m pip install -e '.[dev]' $(OU_PINS); } \
		>$(COMPAT)/install.log 2>&1 \
		|| { echo "install failed; the last lines of $(COMPAT)/install.log:"; tail -n 15 $(COMPAT)/install.log; exit 1; }
	@touch $(COMPAT_STAMP)

test-compat: $(COMPAT_STAMP)
	$(COMPAT)/bin/python -c "import transformers as t, accelerate as a; v = (t.__version__, a.__version__); \
		assert v == ('4.45.1', '0.34.2'), v; print('transformers %s, accelerate %s' % v)"
	$(COMPAT)/bin/python -m pytest -m "not slow" -q $(COMPAT_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check grokplug hooks adapters examples tests benchmarks
	$(BIN)/mypy grokplug hooks adapters

docs: $(STAMP)
	$(BIN)/python -m grokplug._hookdocs > docs/hooks.md

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf build dist *.egg-info runs .pytest_cache $(COMPAT)
