"""Shared pieces for the red-team attacks: a simulated NSM on a fixed clock, the shipped genuine vectors."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from trustdial_verifier._internal.receipts import Commitment, Receipt, Statement
from trustdial_verifier._internal.receipts.attested import BINDING_USER_DATA
from trustdial_verifier._internal.tensors import COMMITMENT_KIND_SHA256, Tensor, commit_tensors

from enclave_app.nsm.simulated import SimulatedNsm
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.sealer import Sealer

NITRO_DIR = Path(__file__).parent.parent / "data" / "nitro"
SIM_TIME = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
MARLIN_FILE = NITRO_DIR / "marlin_oyster_aws_2024-12-13.cbor"


@dataclass(frozen=True)
class GenuineVector:
    path: Path
    timestamp_ms: int
    pcrs: dict[int, bytes]

    @property
    def raw(self) -> bytes:
        return self.path.read_bytes()

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)


def genuine(name: str) -> GenuineVector:
    """A genuine AWS document from tests/data/nitro with its independently published PCRs (expected.json)."""
    entries = json.loads((NITRO_DIR / "expected.json").read_text())
    entry = next(e for e in entries if e["file"] == name)
    pcrs = {int(index): bytes.fromhex(value) for index, value in entry["pcrs"].items()}
    return GenuineVector(NITRO_DIR / name, int(entry["timestamp_ms"]), pcrs)


def fixed_nsm(**options: object) -> SimulatedNsm:
    """A simulated NSM on the fixed SIM_TIME clock unless ``clock`` is given."""
    options.setdefault("clock", lambda: SIM_TIME)
    return SimulatedNsm(**options)  # type: ignore[arg-type]


MODEL_SHA256 = hashlib.sha256(b"red team model bytes").digest()
REQUEST_NONCE = bytes(range(16))
STATEMENT_TIME_MS = int(SIM_TIME.timestamp() * 1000) + 1_000


class ReceiptEnclave:
    """A receipt key bound by a simulated-NSM document, sealing statements the way the service does."""

    def __init__(self, key_type: str = "ed25519", **nsm_options: object) -> None:
        self.nsm = fixed_nsm(**nsm_options)
        self.key = ReceiptKey.generate(key_type)
        self.document = self.nsm.attest(public_key=self.key.public_key_der(), user_data=BINDING_USER_DATA)
        self.digest = hashlib.sha256(self.document).digest()

    @property
    def pcrs(self) -> dict[int, bytes]:
        return {index: self.nsm.describe_pcr(index)[1] for index in (0, 1, 2)}

    def statement(
        self, inputs: dict[str, Tensor], outputs: dict[str, Tensor], seq: int = 1, **changes: object
    ) -> bytes:
        fields: dict[str, object] = {
            "op": "infer",
            "model": MODEL_SHA256,
            "input": Commitment(COMMITMENT_KIND_SHA256, commit_tensors(inputs)),
            "output": Commitment(COMMITMENT_KIND_SHA256, commit_tensors(outputs)),
            "nonce": REQUEST_NONCE,
            "timestamp_ms": STATEMENT_TIME_MS,
            "seq": seq,
            "attestation": self.digest,
        }
        fields.update(changes)
        return Statement(**fields).encode()  # type: ignore[arg-type]

    def seal(self, statements: list[bytes]) -> list[Receipt]:
        sealer = Sealer(self.key, self.digest)
        for statement in statements:
            sealer.add(statement)
        return sealer.seal()


def tensor_json(tensor: Tensor) -> dict[str, object]:
    return {"dtype": tensor.dtype, "shape": list(tensor.shape), "data": base64.b64encode(tensor.data).decode()}


INPUTS = {"x": Tensor("float32", (2,), b"\x00\x00\x80\x3f\x00\x00\x00\x40")}
OUTPUTS = {"y": Tensor("int64", (1,), (7).to_bytes(8, "little"))}


def write_infer_evidence(enclave: ReceiptEnclave, directory: Path) -> dict[str, Path]:
    """request.json, response.json (attestation included), root.pem and pcrs.json for one genuine infer call."""
    receipt = enclave.seal([enclave.statement(INPUTS, OUTPUTS)])[0]
    request = {"model": "m", "inputs": {n: tensor_json(t) for n, t in INPUTS.items()}, "nonce": REQUEST_NONCE.hex()}
    response = {
        "outputs": {n: tensor_json(t) for n, t in OUTPUTS.items()},
        "receipt": base64.b64encode(receipt.encode()).decode(),
        "attestation": base64.b64encode(enclave.document).decode(),
    }
    paths = {name: directory / f"{name}.json" for name in ("request", "response", "pcrs")}
    paths["request"].write_text(json.dumps(request))
    paths["response"].write_text(json.dumps(response))
    paths["pcrs"].write_text(json.dumps({str(i): v.hex() for i, v in enclave.pcrs.items()}))
    paths["root"] = directory / "root.pem"
    paths["root"].write_bytes(enclave.nsm.root_pem)
    return paths
