"""The enclave host's fetch-and-verify step, end to end: a real EIF's manifest is created and signed with issue 3's
``infra.measurements`` and published with ``trustdial measurements publish`` to a moto server on 127.0.0.1; then
the bootstrap's own ``fetch_and_verify_eif`` (sourced from the rendered user data) fetches it and checks it with
the real ``trustdial-verify``.

Two stand-ins, both stated here: the AWS CLI is replaced by a small script (below) that performs the two calls
the bootstrap makes (``ssm get-parameter``, ``s3api get-object``) with boto3 against the moto server, because the
AWS CLI is not a project dependency; and ``fetch_signing_public_key`` copies the test's public key instead of
asking KMS, because moto's KMS cannot sign with ``MessageType=DIGEST`` (see docs/measurements.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_loopback import AWS_TEST_ENV, REGION, aws_client, reset_moto
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from infra_testkit import REPO
from measurements.manifests import key_files

from infra.cdk.host_bootstrap import HostBootstrapSettings, extract_checks, render_host_user_data
from infra.measurements import create_manifest, sign_manifest, signer_from_spec

EIF = REPO / "tests" / "data" / "infra" / "kat1.rust.eif"
EIF_SHA384 = "3815fe6dec491fe7e65ba3bdbd315b19ea8790caded615a6fcc8eba3743a35a703118732389e34a3c10ff8d9c90a0426"
BIN = Path(sys.executable).parent
BUCKET = "trustdial-e2e-measurements"
DEPLOYMENT = "e2e"
PREFIX = f"/trustdial/{DEPLOYMENT}/measurements/"

AWS_STAND_IN = '''#!{python}
"""Stand-in for the AWS CLI calls the bootstrap makes, performed with boto3 against AWS_ENDPOINT_URL."""
import json, sys
import boto3

args = sys.argv[1:]
def option(name):
    return args[args.index(name) + 1] if name in args else None
if args[:2] == ["ssm", "get-parameter"] and option("--query") == "Parameter.Value" and option("--output") == "text":
    print(boto3.client("ssm").get_parameter(Name=option("--name"))["Parameter"]["Value"])
elif args[:2] == ["s3api", "get-object"]:
    extra = {{"VersionId": option("--version-id")}} if option("--version-id") else {{}}
    answer = boto3.client("s3").get_object(Bucket=option("--bucket"), Key=option("--key"), **extra)
    with open(args[-1], "wb") as out:
        out.write(answer["Body"].read())
    print(json.dumps({{"VersionId": answer.get("VersionId")}}))
else:
    sys.exit(f"aws stand-in: unsupported call {{args}}")
'''


def aws_environment(endpoint: str, tools: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        **AWS_TEST_ENV,
        AWS_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PATH=f"{tools}{os.pathsep}{env['PATH']}",
    )
    return env


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> dict[str, Path | str]:
    """Create, sign (local P-384 key) and publish a manifest for the EIF, once for the module."""
    tmp_path = tmp_path_factory.mktemp("published")
    reset_moto(moto_endpoint)
    s3 = aws_client("s3", moto_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    private, public = key_files(tmp_path)
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "aws").write_text(AWS_STAND_IN.format(python=sys.executable))
    (tools / "aws").chmod(0o755)
    env = aws_environment(moto_endpoint, tools)
    # create and sign in process (issue 3's Python API); publish through the command line the image build runs
    manifest = create_manifest(eif=EIF, source_revision="e2e-test", build_time="1970-01-01T00:00:00+00:00", blobs={})
    signed = tmp_path / "manifest.json.cose"
    signed.write_bytes(sign_manifest(manifest, signer_from_spec(str(private))))
    publish_command = [
        str(BIN / "trustdial"), "measurements", "publish", "--signed", str(signed), "--eif", str(EIF),
        "--bucket", BUCKET, "--deployment", DEPLOYMENT, "--endpoint-url", moto_endpoint, "--region", REGION,
    ]  # fmt: skip
    done = subprocess.run(publish_command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return {"public": public, "tools": tools, "endpoint": moto_endpoint}


def run_fetch(tmp_path: Path, published: dict[str, Path | str], public_key: Path) -> subprocess.CompletedProcess[str]:
    script = render_host_user_data(
        HostBootstrapSettings(
            region=REGION,
            measurements_bucket=BUCKET,
            signing_key_id="unused-in-this-test",
            parameter_prefix=PREFIX,
            enclave_cpu_count=2,
            enclave_min_memory_mib=2048,
            enclave_cid=16,
            enclave_vsock_port=5000,
            gateway_port=8443,
        )
    )
    work = tmp_path / "work"
    work.mkdir()
    program = (
        "set -euo pipefail\n"
        f"MEASUREMENTS_BUCKET={BUCKET}; SIGNING_KEY_ID=unused; PARAMETER_PREFIX={PREFIX}\n"
        f"WORK_DIR={work}; EIF_PATH={work}/enclave.eif; TRUSTDIAL_BIN={BIN}\n"
        + extract_checks(script)
        + f'\nfetch_signing_public_key() {{ cp "{public_key}" "$1"; }}\n'
        + "fetch_and_verify_eif\necho HOST-READY\n"
    )
    env = aws_environment(str(published["endpoint"]), Path(published["tools"]))
    return subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=120, env=env)


def test_host_fetches_and_verifies_the_published_eif(tmp_path: Path, published: dict[str, Path | str]) -> None:
    done = run_fetch(tmp_path, published, Path(published["public"]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("HOST-READY")
    fetched = tmp_path / "work" / "enclave.eif"
    assert hashlib.sha384(fetched.read_bytes()).hexdigest() == EIF_SHA384
    assert fetched.read_bytes() == EIF.read_bytes()


def test_manifest_signed_by_another_key_stops_the_boot(tmp_path: Path, published: dict[str, Path | str]) -> None:
    other = tmp_path / "other.pub.pem"
    other.write_bytes(
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    done = run_fetch(tmp_path, published, other)
    assert done.returncode == 1
    assert "HOST-READY" not in done.stdout
    assert "rejected" in done.stderr
    assert not (tmp_path / "work" / "enclave.eif").exists()


def test_pointer_disagreeing_with_the_signed_manifest_stops_the_boot(
    tmp_path: Path, published: dict[str, Path | str]
) -> None:
    ssm = aws_client("ssm", str(published["endpoint"]))
    original = ssm.get_parameter(Name=PREFIX + "current")["Parameter"]["Value"]
    current = json.loads(original)
    current["manifest_sha384"] = hashlib.sha384(b"some other manifest").hexdigest()
    ssm.put_parameter(Name=PREFIX + "current", Value=json.dumps(current), Type="String", Overwrite=True)
    try:
        done = run_fetch(tmp_path, published, Path(published["public"]))
    finally:
        ssm.put_parameter(Name=PREFIX + "current", Value=original, Type="String", Overwrite=True)
    assert done.returncode == 1
    assert "disagree" in done.stderr
    assert not (tmp_path / "work" / "enclave.eif").exists()
