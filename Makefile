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
	$(BIN)/mypy --strict enclave_app
	$(BIN)/mypy --strict prover trustdial infra

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

demo: install
	$(BIN)/trustdial demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# LLM bundle building (trustdial llm build): torch CPU first, alone, so that nothing pulls a CUDA build; then
# transformers, gguf and onnx-ir pinned in constraints-llm.txt. Not part of make install: make test needs none of it.
.PHONY: llm-deps
LLM_STAMP := $(VENV)/.llm-stamp
$(LLM_STAMP): $(STAMP) constraints-llm.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -c constraints.txt -c constraints-llm.txt -e '.[llm-build]'
	touch $(LLM_STAMP)

llm-deps: $(LLM_STAMP)

# SmolLM2 served in a simulated enclave, asked through the verifying proxy (docs/llm-receipts.md); the bundle is
# built once into .cache/llm (the build dependencies are installed only if it is not cached yet).
.PHONY: llm-demo
llm-demo: install
	@$(BIN)/python -c 'import sys; from trustdial.llm.smollm2 import cache_dir; sys.exit(0 if (cache_dir() / "smollm2-int4").exists() else 1)' || $(MAKE) llm-deps
	$(BIN)/python -m trustdial.llm.demo

.PHONY: fuzz
FUZZ_RUNS ?= 100000
fuzz: install
	$(BIN)/python tests/fuzz/fuzz_attestation.py -runs=$(FUZZ_RUNS) -print_final_stats=1 -artifact_prefix=$${TMPDIR:-/tmp}/trustdial-fuzz-
	$(BIN)/python tests/fuzz/fuzz_decoders.py -runs=$(FUZZ_RUNS) -print_final_stats=1 -artifact_prefix=$${TMPDIR:-/tmp}/trustdial-fuzz-decoders-

# The enclave's runtime lock (infra/image/enclave/requirements.lock): the `enclave` role's requirements resolved
# against constraints.txt into hash-pinned wheels for the image's Python. Run after changing either input.
.PHONY: runtime-lock
runtime-lock: install
	$(BIN)/python -m infra.image.runtime_lock --constraints constraints.txt

# --- enclave image (issue 3): reproducible EIF, PCRs, rebuild check. Docker is needed only here. ---
EIF_IMAGE ?= trustdial-enclave:build
EIF_DIR   ?= build/eif
EIF       ?= $(EIF_DIR)/enclave.eif
BLOBS     ?= /usr/share/nitro_enclaves/blobs
EIF_FLAGS ?=
MODEL     ?= models/model.onnx

.PHONY: eif pcrs verify-build docker-available

docker-available:
	@command -v docker >/dev/null 2>&1 || { echo "make: Docker is required for this target (docker buildx build + docker save) and was not found on PATH; everything below it (trustdial eif image/build/ramdisk) runs without Docker" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make: Docker is installed but the daemon is not reachable" >&2; exit 1; }

eif: docker-available install
	mkdir -p $(EIF_DIR)
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) && docker buildx build --file Dockerfile.enclave \
	  --build-arg SOURCE_DATE_EPOCH=$$SOURCE_DATE_EPOCH --build-arg MODEL=$(MODEL) \
	  --output type=docker,name=$(EIF_IMAGE),rewrite-timestamp=true .
	docker save $(EIF_IMAGE) --output $(EIF_DIR)/image.tar
	$(BIN)/trustdial eif image --blobs $(BLOBS) --image $(EIF_DIR)/image.tar --output $(EIF) $(EIF_FLAGS) --json \
	  > $(EIF_DIR)/pcrs.json
	cat $(EIF_DIR)/pcrs.json
	@if command -v nitro-cli >/dev/null 2>&1; then \
	  NITRO_CLI_BLOBS=$(BLOBS) nitro-cli build-enclave --docker-uri $(EIF_IMAGE) --output-file $(EIF_DIR)/nitro-cli.eif > $(EIF_DIR)/nitro-cli.json && \
	  $(BIN)/python -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))["Measurements"]; \
	  bad=[k for k in ("PCR0","PCR1","PCR2") if a[k]!=b[k]]; sys.exit("PCRs differ from nitro-cli: "+",".join(bad) if bad else 0)' \
	  $(EIF_DIR)/pcrs.json $(EIF_DIR)/nitro-cli.json && echo "nitro-cli agrees on PCR0/1/2"; \
	else echo "nitro-cli not installed: skipped the cross-check"; fi

pcrs: install
	@test -f $(EIF) || { echo "make pcrs: $(EIF) does not exist; run make eif (or set EIF=path)" >&2; exit 1; }
	$(BIN)/trustdial-verify eif $(EIF) --json

verify-build: docker-available install
	@test -f $(EIF) || { echo "make verify-build: $(EIF) does not exist; run make eif first" >&2; exit 1; }
	cp $(EIF) $(EIF_DIR)/previous.eif
	$(MAKE) eif
	cmp $(EIF_DIR)/previous.eif $(EIF) && echo "verify-build: rebuild is bit-identical"

# infra: synthesize the CDK app offline (no AWS credentials, no context lookups); templates land in infra/cdk.out.
.PHONY: synth
synth: install
	cd infra && { [ -d node_modules ] || npm ci --offline --no-audit --no-fund || npm ci --no-audit --no-fund; } && \
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 JSII_DEPRECATED=quiet CDK_DISABLE_CLI_TELEMETRY=true \
	npx --no-install cdk synth --no-lookups --no-notices -q $(CDK_ARGS)
