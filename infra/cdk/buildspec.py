"""The CodeBuild buildspec of the image build pipeline: build the EIF twice from the same source (Docker build
cache cleared in between), fail on PCR drift, then create the manifest, sign it with the KMS key and publish wheels,
EIF and signed manifest (issue 3's publisher writes objects first, the ``current`` pointer last).

The source archive must contain ``.git``: ``make eif`` takes SOURCE_DATE_EPOCH from the last commit and the
manifest records ``git rev-parse HEAD``. The manifest also records the first build's ``build.json``: the Debian lock,
rootfs and runtime lock digests, and the models the image serves (the model file's sha256 and the LLM bundle's
digest), so that clients pin the bundle from the signed manifest.
"""

from __future__ import annotations

from typing import Any

from infra.cdk.wheel_install import WHEELS_PREFIX

BUILD_DIRS = ("out/build-1", "out/build-2")
# Prints only the PCR fields of a `trustdial-verify eif --json` report, sorted; fails unless PCR0-2 are present.
PCRS_ONLY = (
    "python3 -c 'import json,sys; d=json.load(sys.stdin); p={k.upper(): v for k, v in d.items() "
    'if k.upper().startswith("PCR")}; assert d.get("valid") is True and {"PCR0","PCR1","PCR2"} <= set(p), d; '
    "print(json.dumps(p, sort_keys=True))'"
)


def image_build_spec() -> dict[str, Any]:
    """Environment variables expected: DEPLOYMENT, MEASUREMENTS_BUCKET, SIGNING_KEY_ARN."""
    first, second = BUILD_DIRS
    build = ["set -euo pipefail", "make install"]
    for number, directory in enumerate(BUILD_DIRS):
        if number:
            build.append("docker builder prune --all --force")
        build.append(f"make eif EIF_DIR={directory} IMAGE_DIR={directory}/image")
        build.append(
            f".venv/bin/trustdial-verify eif {directory}/enclave.eif --json | {PCRS_ONLY} > {directory}/pcrs.json"
        )
    build += [
        f"if ! cmp -s {first}/pcrs.json {second}/pcrs.json; then "
        'echo "PCR drift: two builds of the same source measured differently" >&2; '
        f"diff {first}/pcrs.json {second}/pcrs.json >&2 || true; exit 1; fi",
        f"sha384sum {first}/enclave.eif {second}/enclave.eif",
        ".venv/bin/pip wheel --quiet --no-deps -w out/wheels . ./verifier && cp constraints.txt out/wheels/",
        f'aws s3 cp --recursive --only-show-errors out/wheels "s3://$MEASUREMENTS_BUCKET/{WHEELS_PREFIX}"',
        f".venv/bin/trustdial measurements create --eif {first}/enclave.eif --image-build {first}/image/build.json "
        '--source-revision "$(git rev-parse HEAD)" --output out/manifest.json',
        '.venv/bin/trustdial measurements sign --manifest out/manifest.json --key "kms:$SIGNING_KEY_ARN" '
        "--output out/manifest.json.cose",
        f".venv/bin/trustdial measurements publish --signed out/manifest.json.cose --eif {first}/enclave.eif "
        '--bucket "$MEASUREMENTS_BUCKET" --deployment "$DEPLOYMENT"',
    ]
    return {
        "version": "0.2",
        "env": {"shell": "bash"},
        "phases": {"build": {"commands": build}},
        "artifacts": {
            "files": [f"{first}/pcrs.json", f"{second}/pcrs.json", "out/manifest.json", "out/manifest.json.cose"],
            "discard-paths": "no",
        },
    }
