"""The CodeBuild buildspec of the image build pipeline: build the EIF twice from the same source, fail on PCR
drift, then publish the wheels, the EIF and the KMS-signed measurement manifest (objects first, pointer last)."""

from __future__ import annotations

from typing import Any

from infra.cdk.wheel_install import WHEELS_PREFIX

DEFAULT_EIF_PATH = "out/eif/trustdial.eif"


def image_build_spec() -> dict[str, Any]:
    """Environment variables expected: DEPLOYMENT, MEASUREMENTS_BUCKET, SIGNING_KEY_ARN, EIF_PATH."""
    return {
        "version": "0.2",
        "env": {"shell": "bash"},
        "phases": {
            "install": {"commands": ["make install"]},
            "build": {
                "commands": [
                    "set -euo pipefail",
                    'make eif && mkdir -p out/build-1 && cp "$EIF_PATH" out/build-1/enclave.eif',
                    ".venv/bin/trustdial-verify eif out/build-1/enclave.eif --json > out/build-1/pcrs.json",
                    'rm -f "$EIF_PATH" && make eif && mkdir -p out/build-2 && cp "$EIF_PATH" out/build-2/enclave.eif',
                    ".venv/bin/trustdial-verify eif out/build-2/enclave.eif --json > out/build-2/pcrs.json",
                    "if ! cmp -s out/build-1/pcrs.json out/build-2/pcrs.json; then "
                    'echo "PCR drift: two builds of the same source measured differently" >&2; '
                    "diff out/build-1/pcrs.json out/build-2/pcrs.json >&2 || true; exit 1; fi",
                    "sha384sum out/build-1/enclave.eif out/build-2/enclave.eif",
                    ".venv/bin/pip wheel --quiet --no-deps -c constraints.txt -w out/wheels . ./verifier",
                    f'aws s3 cp --recursive --only-show-errors out/wheels "s3://$MEASUREMENTS_BUCKET/{WHEELS_PREFIX}"',
                    ".venv/bin/trustdial measurements publish --eif out/build-1/enclave.eif "
                    '--deployment "$DEPLOYMENT" --bucket "$MEASUREMENTS_BUCKET" --signing-key "kms:$SIGNING_KEY_ARN"',
                ]
            },
        },
        "artifacts": {"files": ["out/build-1/pcrs.json", "out/build-2/pcrs.json"], "discard-paths": "no"},
    }
