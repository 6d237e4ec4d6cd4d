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


def test_manifest_key_and_version_are_read_from_the_current_pointer(tmp_path: Path) -> None:
    digest = hashlib.sha384(b"manifest").hexdigest()
    pointer = json.dumps(
        {
            "manifest": f"s3://bucket/manifests/{digest}.json?versionId=3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
            "sha384": digest,
        }
    )
    done = run_check(tmp_path, f"manifest_key_from_current '{pointer}'; manifest_version_from_current '{pointer}'")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [f"manifests/{digest}.json", "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"]


def test_unpublished_pointer_aborts(tmp_path: Path) -> None:
    done = run_check(tmp_path, "manifest_key_from_current unpublished")
    assert done.returncode == 1
    assert "nothing published yet" in done.stderr


def test_manifest_eif_sha384_is_read_from_the_manifest(tmp_path: Path) -> None:
    digest = hashlib.sha384(b"eif").hexdigest()
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"schema": "trustdial.measurements/v1", "eif": {"sha384": digest}}))
    done = run_check(tmp_path, f'manifest_field "{manifest}" eif.sha384')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == digest


def test_manifest_without_eif_sha384_aborts(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"eif": {"sha256": "ab"}}))
    done = run_check(tmp_path, f'manifest_field "{manifest}" eif.sha384')
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
    assert "trustdial-verify measurements" in SCRIPT
    assert 'require_sha384 "$EIF_PATH" "$eif_sha"' in SCRIPT
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
