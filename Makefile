# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/python examples/mlp_digits.py

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy  # files and settings: [tool.mypy] in pyproject.toml
	$(BIN)/lint-imports  # the layers: [tool.importlinter] in pyproject.toml
	scripts/test-services.sh run $(BIN)/python -m pytest  # stops the server it started

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) build *.egg-info
