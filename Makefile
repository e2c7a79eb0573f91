# Two commands: `make run` (the default workflow) and `make test` (the test suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
TARGETS ?=
# TensorFlow build: cpu (tensorflow-cpu) or gpu (tensorflow[and-cuda]); see pyproject.toml.
TENSORFLOW ?= cpu

.PHONY: run test lint clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e ".[$(TENSORFLOW)]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet -e ".[$(TENSORFLOW),test]"
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES) $(TARGETS)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q --durations=15

lint: $(VENV)/.installed-test
	$(BIN)/snakemake --lint --cores 1
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/ruff check src tests benchmarks workflow/scripts
	$(BIN)/ruff format --check src tests benchmarks workflow/scripts

clean:
	rm -rf results resources .snakemake
