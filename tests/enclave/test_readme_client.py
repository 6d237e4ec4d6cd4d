"""The README's client example, run as written against a live gateway and enclave server: only the gateway's
address and the simulated NSM's root (the example uses the pinned AWS root) are put in."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from trustdial_verifier.errors import VerificationError

from enclave.live_service import MLP_DIMS, LiveService, ModelFiles

README = Path(__file__).resolve().parents[2] / "README.md"
ADDRESS = '"http://gateway:8080"'
EXPECTED = 'models={"mlp": mlp_sha256})'


def readme_client_example() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    (example,) = [block for block in blocks if "trustdial_verifier.client import" in block]
    return example


def run_example(live: LiveService, pcrs: dict[int, bytes], x: np.ndarray) -> np.ndarray:
    example = readme_client_example()
    assert example.count(ADDRESS) == 1 and example.count(EXPECTED) == 1, "the README's example changed shape"
    example = example.replace(ADDRESS, repr(live.url)).replace(EXPECTED, EXPECTED[:-1] + ", root=root)")
    names: dict[str, object] = {
        "pcr0": pcrs[0], "pcr1": pcrs[1], "pcr2": pcrs[2], "mlp_sha256": live.models["mlp"], "x": x, "root": live.root,
    }  # fmt: skip
    exec(compile(example, str(README), "exec"), names)  # the README's own example, on purpose
    y = names["y"]
    assert isinstance(y, np.ndarray)
    return y


def test_the_readme_client_example_returns_what_onnxruntime_computes(
    live: LiveService, model_files: ModelFiles
) -> None:
    x = np.random.default_rng(19).standard_normal((1, MLP_DIMS[0])).astype(np.float32)
    y = run_example(live, live.pcrs, x)
    session = ort.InferenceSession(str(model_files.mlp), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(y, session.run(["y"], {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_the_readme_client_example_refuses_an_enclave_with_other_pcrs(live: LiveService) -> None:
    x = np.zeros((1, MLP_DIMS[0]), dtype=np.float32)
    with pytest.raises(VerificationError) as refused:
        run_example(live, {**live.pcrs, 0: bytes(47) + b"\x01"}, x)
    assert "PCR" in refused.value.code, refused.value.code
