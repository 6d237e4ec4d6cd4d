"""The enclave host's user data: its check functions run under bash against real files."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from infra.cdk.host_bootstrap import HostBootstrapSettings, extract_checks, render_host_user_data
from infra.cdk.prover_bootstrap import ProverBootstrapSettings, render_prover_user_data

MIB = 1024 * 1024
SETTINGS = HostBootstrapSettings(
    region="eu-west-1",
    measurements_bucket="trustdial-test-measurements-111122223333-eu-west-1",
    signing_key_id="arn:aws:kms:eu-west-1:111122223333:key/0000",
    parameter_prefix="/trustdial/test/measurements/",
    enclave_cpu_count=2,
    enclave_min_memory_mib=2048,
    enclave_cid=16,
    enclave_vsock_port=5000,
    gateway_port=8443,
)
SCRIPT = render_host_user_data(SETTINGS)


def run_check(tmp_path: Path, command: str) -> subprocess.CompletedProcess[str]:
    checks = tmp_path / "checks.sh"
    checks.write_text("set -euo pipefail\n" + extract_checks(SCRIPT))
    return subprocess.run(
        ["bash", "-c", f'source "{checks}"; {command}'], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )


@pytest.fixture
def eif(tmp_path: Path) -> Path:
    path = tmp_path / "enclave.eif"
    path.write_bytes(b"not really an EIF, but bytes with a known SHA-384" * 100)
    return path


def test_matching_sha384_passes(tmp_path: Path, eif: Path) -> None:
    expected = hashlib.sha384(eif.read_bytes()).hexdigest()
    done = run_check(tmp_path, f'require_sha384 "{eif}" {expected} && echo verified')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "verified"


def test_mismatching_sha384_aborts_with_both_values(tmp_path: Path, eif: Path) -> None:
    wrong = hashlib.sha384(b"another image").hexdigest()
    done = run_check(tmp_path, f'require_sha384 "{eif}" {wrong}; echo continued')
    assert done.returncode == 1
    assert "continued" not in done.stdout
    assert wrong in done.stderr and hashlib.sha384(eif.read_bytes()).hexdigest() in done.stderr


def test_uppercase_expected_sha384_aborts(tmp_path: Path, eif: Path) -> None:
    expected = hashlib.sha384(eif.read_bytes()).hexdigest().upper()
    done = run_check(tmp_path, f'require_sha384 "{eif}" {expected}')
    assert done.returncode == 1
    assert "96 lowercase hex" in done.stderr


def test_empty_expected_sha384_aborts(tmp_path: Path, eif: Path) -> None:
    done = run_check(tmp_path, f'require_sha384 "{eif}" ""')
    assert done.returncode == 1


def test_missing_eif_aborts(tmp_path: Path) -> None:
    done = run_check(tmp_path, f'require_sha384 "{tmp_path / "absent.eif"}" {"a" * 96}')
    assert done.returncode == 1
    assert "does not exist" in done.stderr


BUCKET = SETTINGS.measurements_bucket
MANIFEST_SHA = hashlib.sha384(b"manifest").hexdigest()
SIGNED_KEY = f"manifests/{MANIFEST_SHA}.json.cose"
# The pointer as issue 3's publisher writes it (docs/measurements.md): compact JSON, sorted keys.
POINTER = json.dumps(
    {
        "eif": f"s3://{BUCKET}/eifs/{hashlib.sha384(b'eif').hexdigest()}.eif?versionId=eifVersion",
        "manifest": f"s3://{BUCKET}/manifests/{MANIFEST_SHA}.json?versionId=plainVersion",
        "manifest_sha384": MANIFEST_SHA,
        "signed_manifest": f"s3://{BUCKET}/{SIGNED_KEY}?versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
    },
    sort_keys=True,
    separators=(",", ":"),
)
SIGNED_PATTERN = r"manifests/[0-9a-f]{96}\.json\.cose"


def test_signed_manifest_key_and_version_are_read_from_the_current_pointer(tmp_path: Path) -> None:
    done = run_check(
        tmp_path,
        f"uri=$(json_field signed_manifest <<<'{POINTER}'); "
        f'published_key "$uri" {BUCKET} \'{SIGNED_PATTERN}\'; published_version "$uri"',
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [SIGNED_KEY, "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"]


@pytest.mark.parametrize(
    "uri",
    [
        f"s3://other-bucket/{SIGNED_KEY}",  # another bucket
        f"s3://{BUCKET}/manifests/latest.json.cose",  # not content-addressed
        f"s3://{BUCKET}/eifs/{MANIFEST_SHA}.json.cose",  # wrong prefix
        f"s3://{BUCKET}/{SIGNED_KEY}/../evil",
    ],
)
def test_pointer_to_an_unpublished_object_aborts(tmp_path: Path, uri: str) -> None:
    done = run_check(tmp_path, f"published_key '{uri}' {BUCKET} '{SIGNED_PATTERN}'")
    assert done.returncode == 1
    assert "FATAL" in done.stderr


def test_eif_sha384_is_read_from_the_verifier_report(tmp_path: Path) -> None:
    digest = hashlib.sha384(b"eif").hexdigest()
    report = json.dumps(
        {"valid": True, "manifest_sha384": MANIFEST_SHA, "eif_checked": False, "manifest": {"eif": {"sha384": digest}}}
    )
    done = run_check(tmp_path, f"require_valid_report '{report}'; json_field manifest.eif.sha384 <<<'{report}'")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == digest


def test_rejected_verifier_report_aborts(tmp_path: Path) -> None:
    report = json.dumps({"valid": False, "code": "MANIFEST_BAD_SIGNATURE", "reason": "wrong key"})
    done = run_check(tmp_path, f"require_valid_report '{report}'; echo continued")
    assert done.returncode == 1
    assert "continued" not in done.stdout


def test_missing_json_field_aborts(tmp_path: Path) -> None:
    done = run_check(tmp_path, 'json_field manifest.eif.sha384 <<<\'{"manifest": {"eif": {}}}\'')
    assert done.returncode == 1


def test_unpublished_pointer_is_not_json_and_aborts(tmp_path: Path) -> None:
    done = run_check(tmp_path, "json_field signed_manifest <<<unpublished")
    assert done.returncode == 1


@pytest.mark.parametrize(
    ("size", "minimum", "expected"),
    [
        (1 * MIB, 2048, 2048),  # small EIF: the configured minimum
        (600 * MIB, 2048, 2400),  # 4 x 600 MiB
        (100 * MIB + 1, 64, 401),  # rounds up to whole MiB
        (512 * MIB, 2048, 2048),  # exactly 4 x 512 = 2048
    ],
)
def test_enclave_memory_is_at_least_four_times_the_eif(tmp_path: Path, size: int, minimum: int, expected: int) -> None:
    eif = tmp_path / "sparse.eif"
    with eif.open("wb") as handle:
        handle.truncate(size)
    done = run_check(tmp_path, f'enclave_memory_mib "{eif}" {minimum}')
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == expected


def test_allocator_config_carries_memory_and_cpus(tmp_path: Path) -> None:
    target = tmp_path / "allocator.yaml"
    done = run_check(tmp_path, f'write_allocator_config 2400 4 "{target}"')
    assert done.returncode == 0, done.stderr
    lines = target.read_text().splitlines()
    assert "memory_mib: 2400" in lines and "cpu_count: 4" in lines


def test_user_data_is_strict_bash() -> None:
    assert SCRIPT.startswith("#!/bin/bash\n")
    assert "\nset -euo pipefail\n" in SCRIPT
    done = subprocess.run(["bash", "-n"], input=SCRIPT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_user_data_verifies_signature_and_eif_before_starting_anything() -> None:
    main_order = [line for line in SCRIPT.splitlines() if line and not line.startswith((" ", "#", "}"))]
    assert main_order.index("fetch_and_verify_eif") < main_order.index("configure_enclave_services")
    assert '"$TRUSTDIAL_BIN/trustdial-verify" measurements' in SCRIPT
    assert 'require_sha384 "$EIF_PATH" "$eif_sha"' in SCRIPT
    assert '--eif "$EIF_PATH" --json' in SCRIPT  # digest, PCRs and arch checked by the verifier too
    assert "--debug-mode" not in SCRIPT


def test_prover_user_data_is_strict_bash_running_the_worker() -> None:
    script = render_prover_user_data(
        ProverBootstrapSettings(
            region="eu-west-1",
            wheels_bucket="wheels-bucket",
            queue_url="https://sqs.eu-west-1.amazonaws.com/111122223333/jobs",
            artifacts_bucket="proofs-bucket",
            concurrency=2,
            job_timeout_seconds=2700,
            auto_scaling_group_name="trustdial-test-provers",
        )
    )
    done = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "\nset -euo pipefail\n" in script
    assert "trustdial prover worker --queue-url https://sqs.eu-west-1.amazonaws.com/111122223333/jobs" in script
    assert "--bucket proofs-bucket --concurrency 2" in script
    assert "TimeoutStopSec=2700" in script


def test_user_data_fits_the_ec2_limit_with_room_for_long_names() -> None:
    # EC2 refuses user data above 16 KB; ARNs and bucket names resolved at deploy time add well under 1 KB.
    assert len(SCRIPT.encode()) < 12 * 1024


def test_credentials_server_runs_before_the_enclave_and_admits_only_the_enclave_cid() -> None:
    unit = SCRIPT.split("cat > /etc/systemd/system/trustdial-credentials.service <<UNIT\n", 1)[1].split("UNIT\n", 1)[0]
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    rendered = exec_start.removeprefix("ExecStart=").replace("$CREDENTIALS_PORT", "8001").replace("$ENCLAVE_CID", "16")
    assert "readonly CREDENTIALS_PORT=8001\n" in SCRIPT and "readonly ENCLAVE_CID=16\n" in SCRIPT
    from trustdial.cli import build_parser

    words = rendered.split()[1:]
    args = build_parser(words).parse_args(words)  # the real CLI accepts exactly what the unit runs
    assert (args.command, args.listen, args.allow_cid) == ("host-credentials", "vsock:8001", [16])
    enclave_unit = SCRIPT.split("trustdial-enclave.service <<UNIT\n", 1)[1].split("UNIT\n", 1)[0]
    assert "trustdial-credentials.service" in next(
        line for line in enclave_unit.splitlines() if line.startswith("After=")
    )
    assert "trustdial-credentials.service\n" in SCRIPT.split("systemctl enable --now nitro-enclaves-allocator", 1)[1]
