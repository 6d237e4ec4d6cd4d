"""A composite zk step is only checked against artifacts the signed manifest pins: a segment
with no ``zk`` entry is rejected before its artifacts directory is ever read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trustdial_verifier._internal.composite.errors import CompositeError
from trustdial_verifier._internal.composite.evidence_zk import check_zk_evidence
from trustdial_verifier._internal.composite.manifest_facts import SegmentMeasurement
from trustdial_verifier._internal.composite.receipt import parse_receipt
from trustdial_verifier._internal.composite.verify import StepContext

from hybrid.composite_fixtures import build


def test_zk_step_without_manifest_pins_is_rejected(tmp_path: Path) -> None:
    scenario = build(("tee", "zk"))
    receipt = parse_receipt(json.dumps(scenario.document).encode())
    step = next(s for s in receipt.steps if "zk" in s.evidence)
    # An attacker-supplied, self-consistent artifacts directory would sit here; it must not be consulted.
    (tmp_path / step.segment).mkdir()
    context = StepContext(
        receipt=receipt,
        policy=scenario.policy,
        manifest=scenario.manifest,
        measurement=SegmentMeasurement(model_sha256="44" * 32),  # a model pin, but no zk entry
        public_tensors={},
        options={"zk_artifacts": tmp_path, "allow_dev_srs": True},
    )
    with pytest.raises(CompositeError) as caught:
        check_zk_evidence(step, {"proof": {"instances": [[]]}}, context)
    assert caught.value.code == "COMPOSITE_VK_MISMATCH"
