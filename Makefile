# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip

.PHONY: demo test test-slow lint bench clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch/torchvision come from the local disk through pip (uv/poetry do not look there).
	$(PIP) install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install --quiet -e ".[dev,ray,amplitudes]"
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
