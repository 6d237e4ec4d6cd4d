"""The README's two Python examples of the public API, run as written: ``verify_attestation`` on a real AWS-signed
document (tests/data/nitro) and ``verify_composite`` on a composite receipt of the published reference pipeline.
Only the file names, the simulated NSM's root and the development SRS (the examples assume production evidence)
and, for the AWS document, its own verification time are put in."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from trustdial_verifier import CompositeError, PolicyError, Tensor, TrustMode

from hybrid.hybrid_setup import PRIVATE_RUN_NONCE

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
NITRO = REPO / "tests" / "data" / "nitro"
MARLIN = next(e for e in json.loads((NITRO / "expected.json").read_text()) if e["name"] == "marlin_aws_2024-12-13")
ATTESTATION_CALL = "PcrsEqual({0: pcr0, 1: pcr1, 2: pcr2}))"
COMPOSITE_OPTION = 'zk_artifacts=Path("zk"),'


def readme_example(marker: str) -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    (example,) = [block for block in blocks if marker in block]
    return example


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


def run_attestation_example(in_tmp: Path, pcrs: dict[int, bytes]) -> dict[str, Any]:
    example = readme_example("verify_attestation(")
    assert example.count(ATTESTATION_CALL) == 1, "the README's attestation example changed shape"
    example = example.replace(ATTESTATION_CALL, ATTESTATION_CALL[:-1] + ", at=at)")
    shutil.copy(NITRO / MARLIN["file"], in_tmp / "doc.cbor")
    names: dict[str, Any] = {
        "pcr0": pcrs[0], "pcr1": pcrs[1], "pcr2": pcrs[2],
        "at": datetime.fromtimestamp(MARLIN["timestamp_ms"] / 1000, tz=UTC),
    }  # fmt: skip
    exec(compile(example, str(README), "exec"), names)  # the README's own example, on purpose
    return names


def test_the_readme_attestation_example_verifies_a_real_aws_document(in_tmp: Path) -> None:
    pcrs = {int(i): bytes.fromhex(v) for i, v in MARLIN["pcrs"].items()}
    names = run_attestation_example(in_tmp, pcrs)
    assert names["document"].module_id == MARLIN["module_id"]  # the independent verifier's reading


def test_the_readme_attestation_example_refuses_other_pcrs(in_tmp: Path) -> None:
    pcrs = {int(i): bytes.fromhex(v) for i, v in MARLIN["pcrs"].items()}
    with pytest.raises(PolicyError):
        run_attestation_example(in_tmp, {**pcrs, 2: bytes(48)})


def run_composite_example(in_tmp: Path, private: Any, private_run: tuple[Path, Path], nonce: str) -> dict[str, Any]:
    example = readme_example("verify_composite(")
    assert example.count(COMPOSITE_OPTION) == 1, "the README's composite example changed shape"
    example = example.replace(COMPOSITE_OPTION, COMPOSITE_OPTION + " root=root, allow_dev_srs=True,")
    receipt, root_pem = private_run
    shutil.copy(receipt, in_tmp / "receipt.json")
    shutil.copy(private.manifest, in_tmp / "manifest.cose")
    shutil.copy(private.manifest_key, in_tmp / "signer.pub.pem")
    (in_tmp / "zk").symlink_to(private.zk_artifacts)
    from cryptography import x509

    names: dict[str, Any] = {"nonce": nonce, "root": x509.load_pem_x509_certificate(root_pem.read_bytes())}
    exec(compile(example, str(README), "exec"), names)  # the README's own example, on purpose
    return names


def test_the_readme_composite_example_returns_the_verified_steps_and_output(
    in_tmp: Path, private: Any, private_run: tuple[Path, Path]
) -> None:
    names = run_composite_example(in_tmp, private, private_run, PRIVATE_RUN_NONCE)
    verified = names["verified"]
    assert [(s.segment, s.mode, s.required_mode) for s in verified.steps] == [
        ("body", TrustMode.TEE, TrustMode.TEE),
        ("head", TrustMode.ZK, TrustMode.ZK),
    ]  # the reference pipeline.toml (docs/pipeline.md)
    document = json.loads(private_run[0].read_text())
    stated = document["tensors"]["decision"]["tensor"]  # read here with json alone
    decision = names["decision"]
    assert isinstance(decision, Tensor)
    assert (decision.dtype, list(decision.shape)) == (stated["dtype"], stated["shape"])
    assert decision.data == base64.b64decode(stated["data"])
    assert set(verified.outputs) == {"decision"}  # private tensors have no values in the result


def test_the_readme_composite_example_refuses_the_answer_to_another_request(
    in_tmp: Path, private: Any, private_run: tuple[Path, Path]
) -> None:
    with pytest.raises(CompositeError) as refused:
        run_composite_example(in_tmp, private, private_run, "00" * 32)
    assert "NONCE" in refused.value.code, refused.value.code
