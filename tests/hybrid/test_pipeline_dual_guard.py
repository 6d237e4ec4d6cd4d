"""The operator's last guard before writing a tee+zk step: the enclave's commitments and the
proof's must name the same tensors with a shared kind, else no receipt is written."""

from __future__ import annotations

import numpy as np
import pytest

from trustdial.pipeline.errors import PipelineError
from trustdial.pipeline.run import _check_same_tensors, _Evidence


def _piece(inputs: dict[str, dict[str, str]], outputs: dict[str, dict[str, str]]) -> _Evidence:
    return _Evidence(evidence={}, inputs=inputs, outputs=outputs, values={"decision": np.zeros(2, np.float32)})


def test_same_commitments_pass() -> None:
    tee = _piece({"embedding": {"sha256": "aa", "poseidon": "pp"}}, {"decision": {"sha256": "dd"}})
    zk = _piece({"embedding": {"poseidon": "pp"}}, {"decision": {"sha256": "dd"}})
    _check_same_tensors("head", tee, zk)


@pytest.mark.parametrize(
    ("tee_in", "zk_out"),
    [
        ({"sha256": "aa", "poseidon": "other"}, {"sha256": "dd"}),  # different input Poseidon
        ({"sha256": "aa"}, {"sha256": "dd"}),  # no shared kind for the private input
        ({"sha256": "aa", "poseidon": "pp"}, {"sha256": "float output"}),  # float vs fixed-point output
    ],
)
def test_different_tensors_are_refused(tee_in: dict[str, str], zk_out: dict[str, str]) -> None:
    tee = _piece({"embedding": tee_in}, {"decision": {"sha256": "dd"}})
    zk = _piece({"embedding": {"poseidon": "pp"}}, {"decision": zk_out})
    with pytest.raises(PipelineError) as caught:
        _check_same_tensors("head", tee, zk)
    assert caught.value.code == "PIPELINE_DUAL_MISMATCH"
