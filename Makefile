# Two entry points (see README): `make demo` and `make test`. Both create .venv/ first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: setup demo test lint dry-run-voc clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The whole pipeline on the generated synthetic dataset → results/synth/miou.csv.
demo: setup
	$(BIN)/snakemake --cores $(CORES)

# Unit tests, workflow lint, VOC dry run and the tiny end-to-end run.
test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/snakemake --lint

clean:
	rm -rf results logs .snakemake
