"""``trustdial zk prove``: one proof for one input, from a compiled artifacts directory."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from trustdial_verifier.errors import VerificationError
from trustdial_verifier.unstable.proof import Tensor, check_file_hashes, load_artifacts

from prover import ezkl_api
from prover.console import ezkl_prints_to_stderr, progress, ticking
from prover.errors import ProverError

PROVER_ROLES = ("settings", "compiled_circuit", "pk", "srs")


def prove(artifacts_dir: Path, tensor: Tensor, proof_path: Path) -> Path:
    """Prove the compiled circuit on ``tensor``; write ezkl's proof JSON to ``proof_path``.

    Every artifact is hash-checked against artifacts.json first, so a proof is never made with
    files other than the pinned ones.
    """
    try:
        artifacts = load_artifacts(artifacts_dir)
        paths = check_file_hashes(artifacts_dir, artifacts, PROVER_ROLES)
    except VerificationError as err:
        raise ProverError(err.code, err.reason) from err
    proof_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="trustdial-prove-") as scratch:
        data = Path(scratch) / "input.json"
        witness = Path(scratch) / "witness.json"
        data.write_text(json.dumps({"input_data": [list(tensor.values)]}), encoding="utf-8")
        try:
            with ezkl_prints_to_stderr():
                ezkl_api.gen_witness(data, paths["compiled_circuit"], witness)
            progress("zk prove", f"witness ready ({len(tensor.values)} input values)")
            with ticking("zk prove", f"proving (logrows={artifacts.logrows})"), ezkl_prints_to_stderr():
                ezkl_api.prove(witness, paths["compiled_circuit"], paths["pk"], proof_path, paths["srs"])
        except RuntimeError as err:
            raise ProverError("PROVE_FAILED", f"ezkl could not prove this input: {err}") from err
    progress("zk prove", f"wrote {proof_path}")
    return proof_path
