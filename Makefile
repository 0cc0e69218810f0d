# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test docs lint bench lcpfn clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The test environment's exact torch (a CPU wheel pip finds through its find-links); the
# extras a user installs ask only for a range.
PINS_dev := torch==2.13.0
PINS_bench := torch==2.13.0

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[$*]" $(PINS_$*)
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/python examples/mlp_digits.py

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/mypy  # files and settings: [tool.mypy] in pyproject.toml
	$(BIN)/lint-imports  # the layers: [tool.importlinter] in pyproject.toml
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site  # mkdocs.yml
	scripts/test-services.sh run $(BIN)/python -m pytest  # stops the server it started

docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/overhead.py

# Retrain the LC-PFN curve model shipped in src/hyperlaw/curves/data (seeded; see the script).
lcpfn: $(VENV)/.installed-dev
	$(BIN)/python scripts/train_lcpfn.py

clean:
	rm -rf $(VENV) build *.egg-info
