# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip

.PHONY: demo test test-slow lint bench clean-venv

# The environment takes about 6.6 GB (torch 2.14.1 is a CUDA build even here): say so up front
# instead of failing half-way through pip with "No space left on device".
NEED_GB := 7
# -qq: errors only. This machine's pip configuration names local index folders that lack most projects, and
# pip warns about each missing one (over 100 lines that bury the output of `make demo` and `make test`).
PIP_FLAGS := -qq --no-cache-dir

$(STAMP): pyproject.toml
	@avail=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); \
	if [ ! -x $(BIN)/python ] && [ "$$avail" -lt $(NEED_GB) ]; then \
		echo "make: setting up $(VENV) needs about $(NEED_GB) GB free here; $$avail GB available (df -h .)" >&2; \
		exit 1; \
	fi
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "setting up $(VENV): pip, torch 2.14.1 + torchvision 0.29.1 from the local disk, then scalinglab (about 3 minutes)"
	$(PIP) install $(PIP_FLAGS) --upgrade pip
	# torch/torchvision come from the local disk through pip (uv/poetry do not look there).
	$(PIP) install $(PIP_FLAGS) "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install $(PIP_FLAGS) -e ".[dev,ray,amplitudes]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/scalinglab run quickstart

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

test: $(STAMP) lint
	$(BIN)/python -m pytest -q --durations=15

# Longer tests (big backbones, Ray campaigns, compiled kernels, the report in headless Chromium).
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow --durations=10

bench: $(STAMP)
	for f in benchmarks/*.py; do $(BIN)/python $$f --quick; done

clean-venv:
	rm -rf $(VENV)
