# trustdial — every target creates .venv and installs pinned versions on its own.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install test lint typecheck pytest demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

$(STAMP): $(BIN)/python pyproject.toml verifier/pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e './verifier[zk,client]' -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy --strict verifier/src/verifier

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

demo: install
	$(BIN)/trustdial demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: fuzz
FUZZ_RUNS ?= 100000
fuzz: install
	$(BIN)/python tests/fuzz/fuzz_attestation.py -runs=$(FUZZ_RUNS) -print_final_stats=1 -artifact_prefix=$${TMPDIR:-/tmp}/trustdial-fuzz-
