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

# infra: synthesize the CDK app offline (no AWS credentials, no context lookups); templates land in infra/cdk.out.
.PHONY: synth
synth: install
	cd infra && { [ -d node_modules ] || npm ci --offline --no-audit --no-fund || npm ci --no-audit --no-fund; } && \
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 JSII_DEPRECATED=quiet CDK_DISABLE_CLI_TELEMETRY=true \
	npx --no-install cdk synth --no-lookups --no-notices -q $(CDK_ARGS)
