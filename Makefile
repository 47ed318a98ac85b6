# Two entry points (see README): `make demo` and `make test`; both create .venv/ first. `make
# benchmark` runs the longer VOC-scale benchmark (synth_voc).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: setup slurm-profile demo benchmark test test-fast lint cuda-ext bench clean

setup: $(STAMP) slurm-profile

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# `snakemake --profile slurm` looks for ./slurm, then ~/.config/snakemake/slurm: link the latter to
# workflow/profiles/slurm, unless something is already there (a dangling link, e.g. to a deleted
# clone, is replaced).
PROFILE_LINK := $(or $(XDG_CONFIG_HOME),$(HOME)/.config)/snakemake/slurm
slurm-profile:
	@if [ -L "$(PROFILE_LINK)" ] && [ ! -e "$(PROFILE_LINK)" ]; then rm "$(PROFILE_LINK)"; fi
	@if [ ! -e "$(PROFILE_LINK)" ] && [ ! -L "$(PROFILE_LINK)" ]; then \
		mkdir -p "$(dir $(PROFILE_LINK))" && ln -s "$(CURDIR)/workflow/profiles/slurm" "$(PROFILE_LINK)"; \
	elif [ "$$(readlink -f "$(PROFILE_LINK)")" != "$$(readlink -f workflow/profiles/slurm)" ]; then \
		echo "$(PROFILE_LINK) exists: left as it is (this repository's: --profile workflow/profiles/slurm)"; \
	fi

# The whole pipeline on the generated synthetic dataset → results/synth/miou.csv, then its HTML
# report (gallery, curves, tables), whose path is the last line printed.
REPORT := results/synth/report.html
demo: setup
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --quiet all --report $(REPORT)
	@echo "$(CURDIR)/$(REPORT)"

# The VOC-like benchmark (README, "synth_voc"): every experiment on the generated synth_voc
# dataset, each model starting from a backbone pre-trained on the shape corpus (the ImageNet
# stand-in) → results/synth_voc/miou.csv, cost.csv and the report. 1 h 51 min from a fresh clone
# on 2 CPU cores (README).
BENCH_REPORT := results/synth_voc/report.html
BENCH_SET := --config 'default_datasets=[synth_voc]'
benchmark: setup
	$(BIN)/snakemake --cores $(CORES) $(BENCH_SET)
	$(BIN)/snakemake --quiet all --report $(BENCH_REPORT) $(BENCH_SET)
	@echo "$(CURDIR)/$(BENCH_REPORT)"

# The whole suite (what CI runs): unit tests, lint, dry runs, the tiny end-to-end run, SLURM, kill
# and resume, on two pytest-xdist workers. Each test module runs on one worker (loadfile), so the
# module-scoped fixtures, and the session's one tiny run in tests/workflow/test_tiny_run.py, are
# built once.
TEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile --durations=25
test: setup lint
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)

# Unit tests only (no workflow runs, no SLURM): a few minutes, for iterating.
test-fast: setup
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not slow and not slurm"

# Optional fused CUDA kernels for criss-cross attention (cuda_ext/, package wsss_cca); needs nvcc
# and the CUDA build of torch that `setup` installs. Compiles without a GPU too: CUDA_ARCHS picks
# the targets (empty = the visible GPUs' architectures; CI compiles for 9.0).
CUDA_HOME ?= $(if $(wildcard /usr/local/cuda/bin/nvcc),/usr/local/cuda,)
CUDA_ARCHS ?=
cuda-ext: setup
	CUDA_HOME=$(CUDA_HOME) FORCE_CUDA=1 $(if $(CUDA_ARCHS),TORCH_CUDA_ARCH_LIST="$(CUDA_ARCHS)") \
		$(BIN)/python -m pip install --quiet --no-build-isolation ./cuda_ext

# Criss-cross attention benchmarks (CPU; add BENCH_DEVICE=cuda on a GPU machine).
BENCH_DEVICE ?= cpu
bench: setup
	$(BIN)/python benchmarks/bench_cca.py --device $(BENCH_DEVICE)

# Style and workflow checks (settings: [tool.ruff] and [tool.snakefmt] in pyproject.toml); none of
# them rewrites a file: `ruff check --fix`, `ruff format` and `snakefmt Snakefile workflow` do.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint

clean:
	rm -rf results logs .snakemake cuda_ext/build
