"""Every shell command shown in README.md and docs/*.md, and either the test that runs it (with real inputs in
place of the placeholders) or why it cannot run here. ``tests/test_readme.py`` requires this registry and the
documents to agree exactly: a command added to a document without an entry here fails the suite, and so does an
entry whose command no document shows any more, or whose test does not exist.

Keys are the command as the document shows it, continuation lines joined, the trailing ``# comment`` dropped and
runs of whitespace collapsed to one space."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class NotHere(StrEnum):
    """Why a documented command does not run in the test suite (the machine has no AWS, no Docker, no Nitro)."""

    AWS = "needs an AWS account and credentials; the tests drive the same AWS APIs against moto on loopback"
    DOCKER = "needs Docker (docker buildx build, docker save), which neither this machine nor CI has"
    NITRO = "needs a Nitro Enclaves parent instance (vsock, the NSM device) or AWS's Nitro blobs"
    SHELL_STEP = "a shell step (variable, directory, input file) for the commands after it, run with them"
    INSTALL = "installs into the caller's environment; make install installs the same extras for the tests"
    REPEATS_FIXTURE = (
        "runs the multi-minute image build that a session fixture of the suite already runs step by step; "
        "a second run would double the suite's longest step"
    )


@dataclass(frozen=True)
class RunBy:
    """The test (``tests/PATH.py::test_name``) that runs this command, with real values for its placeholders."""

    test: str


@dataclass(frozen=True)
class Unrunnable:
    """Why this command cannot run here, and what the suite checks instead."""

    reason: NotHere
    instead: str


Registered = RunBy | Unrunnable

DOCUMENTED: dict[str, Registered] = {
    # README.md
    "make demo": RunBy("tests/hybrid/test_demo.py::test_demo_exits_zero_with_a_verified_receipt"),
    "make test": Unrunnable(NotHere.SHELL_STEP, "it is the suite itself (ruff, mypy --strict, pytest)"),
    "make llm-demo": Unrunnable(
        NotHere.INSTALL, "it installs torch and transformers (make llm-deps) and converts SmolLM2 once (make "
        "llm-bundle, which make pytest runs too); tests/llm runs the same stack (serve, gateway, trustdial-verify "
        "proxy, the openai client, a tampered stream) on the tiny bundle, and tests/llm/test_smollm2.py on the real "
        "model's bundle"
    ),
    "make eif-dev": Unrunnable(
        NotHere.REPEATS_FIXTURE, "tests/image's session build runs its steps (dev blobs, trustdial image build, "
        "trustdial eif image --allow-unpinned-blobs) and make pcrs / make publication-check run on its EIF"
    ),
    "make eif MODEL=path/model.onnx": Unrunnable(
        NotHere.NITRO, "it needs AWS's Nitro blobs (aws-nitro-enclaves-cli-devel); tests/image builds the same image "
        "with trustdial image build and the DEV/TEST blobs, and boots it under qemu"
    ),
    "make eif LLM=path/to/bundle": Unrunnable(
        NotHere.NITRO, "it needs AWS's Nitro blobs; tests/image's session build passes the tiny bundle as "
        "trustdial image build --llm, boots the image and asks it for chat completions, and test_llm_image.py "
        "rebuilds the app layer with other bundles (PCR2 changes) and refuses a bundle that fails its bundle.json"
    ),
    "make verify-build": RunBy("tests/image/test_reproducible_build.py::test_two_clean_builds_are_byte_identical"),
    "trustdial-verify attestation doc.cbor --pcr 0=HEX --pcr 1=HEX --pcr 2=HEX --nonce HEX --max-age 60 --json": RunBy(
        "tests/attestation/test_attestation_cli.py::test_nonce_mismatch_is_rejected"
    ),
    "trustdial-verify receipt receipt.json --measurements manifest.cose --manifest-key signer.pub.pem "
    "--policy pipeline.toml --zk-artifacts zk/ --nonce HEX": RunBy(
        "tests/hybrid/test_composite_e2e.py::test_private_boundary_receipt_verifies"
    ),
    # docs/usage.md: a hybrid pipeline by hand
    "trustdial pipeline reference --output ref/": RunBy(
        "tests/hybrid/test_composite_e2e.py::test_private_boundary_receipt_verifies"
    ),
    "trustdial pipeline split ref/pipeline.toml --output split/ --compile-zk --dev-srs": RunBy(
        "tests/hybrid/test_composite_e2e.py::test_split_pins_the_tuned_zk_artifacts_it_wrote"
    ),
    "trustdial pipeline publish-dev ref/pipeline.toml --split split/ --output pub/": RunBy(
        "tests/hybrid/test_composite_e2e.py::test_private_boundary_receipt_verifies"
    ),
    'python3 -c "import base64,json; print(json.dumps({\'input\': {\'dtype\': \'float32\', \'shape\': [1, 784], '
    "'data': base64.b64encode(bytes(4 * 784)).decode()}}))\" > x.json": Unrunnable(
        NotHere.SHELL_STEP, "tests/hybrid/hybrid_setup.py writes the same tensor file format (input_file)"
    ),
    'N=$(python3 -c "import os; print(os.urandom(32).hex())")': Unrunnable(
        NotHere.SHELL_STEP, "tests/hybrid/hybrid_setup.py draws its nonce the same way"
    ),
    "trustdial pipeline run ref/pipeline.toml --split split/ --input x.json --local --nonce $N "
    "--measurements pub/manifest.cose --output receipt.json --root-out sim-root.pem": RunBy(
        "tests/hybrid/test_composite_e2e.py::test_private_boundary_receipt_verifies"
    ),
    "trustdial-verify receipt receipt.json --measurements pub/manifest.cose --manifest-key "
    "pub/manifest-signing-dev.pub.pem --policy ref/pipeline.toml --zk-artifacts split/zk --root sim-root.pem "
    "--allow-dev-srs --nonce $N": RunBy(
        "tests/hybrid/test_composite_e2e.py::test_attack_replay_a_tee_receipt_from_another_request"
    ),
    "trustdial pipeline run ref/pipeline.toml --split split/ --input x.json --local --measurements "
    "pub/manifest.cose --output receipt.json --prover-queue QUEUE_URL --prover-bucket BUCKET [--endpoint-url URL] "
    "[--timeout S]": RunBy("tests/hybrid/test_pipeline_queue.py::test_receipt_proven_through_the_queue_verifies"),
    # docs/usage.md: attestation documents
    "trustdial-verify attestation doc.cbor --pcr 0=<hex> --pcr 1=<hex> --pcr 2=<hex> --nonce <hex> --max-age 60 "
    "--json": RunBy("tests/attestation/test_attestation_cli.py::test_max_age_exceeded_is_rejected"),
    "trustdial-verify attestation doc.b64 --at doc --pcr 0=<hex>": RunBy(
        "tests/attestation/test_attestation_cli.py::test_text_encoded_document_is_detected"
    ),
    "trustdial-verify attestation - --root sim-root.pem --pcr 0=<hex> < doc.hex": RunBy(
        "tests/attestation/test_attestation_cli.py::test_simulator_document_needs_its_root"
    ),
    # docs/usage.md: attested inference
    "trustdial serve --model mlp=model.onnx --listen vsock:5005": Unrunnable(
        NotHere.NITRO, "the same server on TCP with the simulated NSM runs in tests/serve_gateway.py"
    ),
    "trustdial gateway --enclave vsock:16:5005 --listen 0.0.0.0:8080": Unrunnable(
        NotHere.NITRO, "the same gateway in front of a TCP enclave address runs in tests/serve_gateway.py"
    ),
    "trustdial serve --model mlp=model.onnx --listen tcp:127.0.0.1:5005 --nsm simulated --simulated-pcrs-from "
    "pcrs.json --simulated-root-out sim-root.pem": RunBy(
        "tests/enclave/test_addresses.py::test_connections_accepted_by_serve_and_gateway_listeners_have_nagle_off"
    ),
    "trustdial gateway --enclave tcp:127.0.0.1:5005 --listen 127.0.0.1:8080": RunBy(
        "tests/enclave/test_addresses.py::test_connections_accepted_by_serve_and_gateway_listeners_have_nagle_off"
    ),
    "trustdial-verify receipt response.json --request request.json --pcrs pcrs.json --model-sha256 HEX "
    "[--root sim-root.pem] --json": RunBy("tests/enclave/test_receipt_command.py::test_saved_evidence_verifies"),
    # docs/usage.md: zk
    "trustdial zk compile model.onnx --calibration cal.json --output art/ --srs kzg17.srs --tune": Unrunnable(
        NotHere.INSTALL, "a ceremony SRS is a download; the tests compile with --dev-srs (next line)"
    ),
    "trustdial zk compile model.onnx --calibration cal.json --output art/ --dev-srs": RunBy(
        "tests/prover/test_zk_compile_prove.py::test_compile_command_writes_artifacts_json"
    ),
    "trustdial zk prove art/ --input input.json --output proof.json": RunBy(
        "tests/prover/test_zk_compile_prove.py::test_prove_command_prints_progress_and_one_json_line"
    ),
    "pip install './verifier[zk]'": Unrunnable(NotHere.INSTALL, "make install installs ./verifier[zk,client]"),
    "trustdial-verify proof proof.json --artifacts art/ --input input.json --measurements manifest.cose "
    "--manifest-key signing.pub.pem --segment head [--allow-dev-srs] --json": RunBy(
        "tests/prover/test_zk_verify_proof.py::test_pinned_vk_digest_from_a_manifest_must_match"
    ),
    "trustdial-verify proof proof.json --artifacts art/ --expect vk=HEX --expect settings=HEX --json": RunBy(
        "tests/prover/test_zk_verify_proof.py::test_valid_proof_with_its_input_is_accepted"
    ),
    "trustdial prover submit --queue-url URL --bucket B --artifacts-prefix art/ --upload-artifacts art/ --input "
    "input.json": RunBy("tests/prover/test_zk_worker.py::test_fleet_survives_sigkill_and_sends_poison_to_dlq"),
    "trustdial prover worker --queue-url URL --bucket B [--endpoint-url URL] [--concurrency N]": RunBy(
        "tests/prover/test_zk_worker.py::test_concurrency_two_proves_jobs_in_parallel_slots"
    ),
    # docs/usage.md: image, PCRs, manifest
    "make pcrs": RunBy("tests/image/test_publication_path.py::test_make_pcrs_then_publication_check"),
    "trustdial-verify eif build/eif/enclave.eif --json": RunBy(
        "tests/eif/test_eif_image.py::test_image_build_pcrs_follow_from_the_ramdisk_known_answers"
    ),
    'trustdial measurements create --eif build/eif/enclave.eif --source-revision "$(git rev-parse HEAD)" --output '
    "m.json": RunBy("tests/eif/test_eif_image.py::test_manifest_records_blob_and_image_digests"),
    "trustdial measurements sign --manifest m.json --key kms:alias/trustdial-measurements --output m.cose": RunBy(
        "tests/measurements/test_publish.py::test_cli_signs_with_kms_and_the_verifier_accepts"
    ),
    "trustdial measurements publish --signed m.cose --eif build/eif/enclave.eif --bucket B --deployment prod": RunBy(
        "tests/measurements/test_publish.py::test_cli_publish_against_endpoint"
    ),
    "trustdial-verify measurements m.cose --public-key signer.pub.pem": RunBy(
        "tests/measurements/test_publish.py::test_cli_signs_with_kms_and_the_verifier_accepts"
    ),
    # docs/deploy.md
    "make synth": RunBy(
        "tests/infra/test_infra_synth.py::test_pinned_cdk_cli_synthesizes_all_stacks_offline_without_credentials"
    ),
    'make synth CDK_ARGS="-c config=../deploy/prod.json"': RunBy(
        "tests/infra/test_infra_synth.py::test_non_enclave_instance_type_stops_synth_with_a_clear_error"
    ),
    "cd infra": Unrunnable(NotHere.SHELL_STEP, "the CDK commands after it run from infra/"),
    "npx cdk bootstrap aws://ACCOUNT/REGION": Unrunnable(NotHere.AWS, "make synth runs the same pinned CDK CLI"),
    "npx cdk deploy -c config=../deploy/prod.json Trustdial-prod-Measurements Trustdial-prod-ImageBuild": Unrunnable(
        NotHere.AWS, "tests/infra synthesizes and checks these stacks' templates offline"
    ),
    "npx cdk deploy -c config=../deploy/prod.json -c pcrs=../deploy/pcrs.json --all": Unrunnable(
        NotHere.AWS, "tests/infra synthesizes every stack with PCR context and checks the key policy"
    ),
}
