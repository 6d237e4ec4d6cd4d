"""Red team, issue 15: decoder bombs. A few hundred bytes of unsigned CBOR using shared references
(tags 28/29) describe a structure of 2**n elements; anything that renders it as text, hashes it as a
map key or compares it element by element never finishes. Integers beyond Python's int-string limit
and lone UTF-16 surrogates crashed untyped. Each input must end in a typed refusal, promptly.

Every call runs in a daemon thread joined with a generous timeout: against the old decoders these
tests fail (the thread is still spinning) instead of hanging the suite."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from redteam_support import MODEL_SHA256, ReceiptEnclave, tensor_json, write_infer_evidence
from trustdial_verifier._internal.cli import main
from trustdial_verifier._internal.measurements import load_signed_manifest
from trustdial_verifier._internal.measurements.signed import protected_header
from trustdial_verifier._internal.receipts.model import decode_receipt, decode_statement
from trustdial_verifier._internal.receipts.seal import CONTENT_TYPE, decode_seal
from trustdial_verifier._internal.tensors import Tensor, TensorError, commit_tensors
from trustdial_verifier.errors import InputError, VerificationError

#: Far above what any of these inputs needs when bounded (microseconds), far below "never".
JOIN_SECONDS = 20.0
#: 2**60 leaves: no machine renders this.
DEPTH = 60


def _dag(depth: int = DEPTH) -> object:
    node: object = [1]
    for _ in range(depth):
        node = [node, node]
    return node


def _shared(value: object) -> bytes:
    """``value`` encoded with shared references (tag 28 marks, tag 29 refers): linear in ``depth``."""
    encoded = cbor2.dumps(value, value_sharing=True)
    assert len(encoded) < 1024
    return encoded


def _outcome(call: Callable[[], object]) -> BaseException | None:
    box: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as err:  # noqa: BLE001 - reported to the test thread, which judges it
            box.append(err)
        else:
            box.append(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(JOIN_SECONDS)
    assert not worker.is_alive(), f"no answer within {JOIN_SECONDS} s: the input is not bounded"
    return box[0]


def _typed(call: Callable[[], object]) -> VerificationError | InputError:
    outcome = _outcome(call)
    assert isinstance(outcome, VerificationError | InputError), f"expected a typed refusal, found {outcome!r}"
    return outcome


def test_shared_reference_bomb_in_a_seal_protected_header_is_refused_promptly() -> None:
    protected = _shared({1: -8, 3: CONTENT_TYPE, 4: _dag()})
    seal = cbor2.dumps([protected, {}, b"", b""])
    assert _typed(lambda: decode_seal(seal)).code == "RECEIPT_SEAL_MALFORMED"


def test_shared_reference_bomb_as_a_receipt_map_key_is_refused_promptly() -> None:
    # a map whose first key is the shared-reference array: cbor2 turns an array key into a tuple and hashes it
    envelope = b"\xa2" + _shared(_dag()) + cbor2.dumps(1) + cbor2.dumps("v") + cbor2.dumps(1)
    assert _typed(lambda: decode_receipt(envelope)).code == "RECEIPT_MALFORMED"


def test_shared_reference_bomb_in_statement_params_is_refused_promptly() -> None:
    statement = cbor2.loads(ReceiptEnclave().statement({}, {}))
    statement["params"] = {"k": _dag()}
    raw = cbor2.dumps(statement, value_sharing=True)
    assert _typed(lambda: decode_statement(raw)).code == "RECEIPT_MALFORMED"


def test_shared_reference_bomb_in_a_manifest_unprotected_header_is_refused_promptly() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    # unsigned: the headers are checked before the signature, so no key is needed to send this
    signed = cbor2.dumps(cbor2.CBORTag(18, [protected_header(), {3: _dag()}, b"{}", b"\x00" * 96]), value_sharing=True)
    assert _typed(lambda: load_signed_manifest(signed, key.public_key())).code.startswith("MANIFEST_")


def test_receipt_index_beyond_the_int_string_limit_is_a_typed_refusal() -> None:
    envelope = cbor2.loads(ReceiptEnclave().seal([ReceiptEnclave().statement({}, {})])[0].encode())
    envelope["index"] = 1 << 20000  # a bignum (tag 2): 6000 decimal digits, past Python's 4300
    assert _typed(lambda: decode_receipt(cbor2.dumps(envelope))).code == "RECEIPT_MALFORMED"


def test_tensor_name_with_a_lone_surrogate_is_a_typed_refusal() -> None:
    tensor = Tensor("int8", (1,), b"\x01")
    outcome = _outcome(lambda: commit_tensors({"\ud800": tensor}))
    assert isinstance(outcome, TensorError) and outcome.code == "TENSOR_NAME"


def _receipt_cli(capsys: pytest.CaptureFixture[str], evidence: dict[str, Path], request: Path) -> tuple[int, dict]:
    argv = ["receipt", str(evidence["response"]), "--request", str(request), "--pcrs", str(evidence["pcrs"])]
    argv += ["--root", str(evidence["root"]), "--model-sha256", MODEL_SHA256.hex(), "--json"]
    box: list[int] = []
    outcome = _outcome(lambda: box.append(main(argv)))
    assert outcome is None, f"expected an exit status, found {outcome!r}"
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    return box[0], json.loads(lines[0])


def test_request_with_an_integer_beyond_the_int_string_limit_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evidence = write_infer_evidence(ReceiptEnclave(), tmp_path)
    request = tmp_path / "big-int.json"
    request.write_text('{"model": "m", "nonce": "00", "max_new_tokens": ' + "9" * 5000 + "}")
    status, result = _receipt_cli(capsys, evidence, request)
    assert (status, result["valid"], result["code"]) == (2, False, "BAD_JSON")


def test_request_with_a_lone_surrogate_tensor_name_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evidence = write_infer_evidence(ReceiptEnclave(), tmp_path)
    request = tmp_path / "surrogate.json"
    tensor = tensor_json(Tensor("int8", (1,), b"\x01"))
    request.write_text('{"model": "m", "nonce": "00", "inputs": {"\\ud800": ' + json.dumps(tensor) + "}}")
    status, result = _receipt_cli(capsys, evidence, request)
    assert (status, result["valid"], result["code"]) == (2, False, "BAD_JSON")


@pytest.mark.parametrize(
    "change",
    [{"model_instance_shapes": [["x"]]}, {"input_types": 5}, {"model_input_scales": ["thirteen"]}],
    ids=["shape-text", "types-number", "scale-text"],
)
def test_settings_fields_of_the_wrong_type_are_a_typed_refusal(change: dict[str, object]) -> None:
    # Before: int("x") and len(5) escaped as ValueError / TypeError.
    from trustdial_verifier._internal.proof.instances import layout_from_settings

    settings: dict[str, object] = {
        "run_args": {
            "input_visibility": "Public",
            "output_visibility": "Public",
            "param_visibility": "Fixed",
            "logrows": 11,
        },
        "input_types": ["F32"],
        "output_types": ["F32"],
        "model_input_scales": [13],
        "model_output_scales": [13],
        "model_instance_shapes": [[1, 2], [1, 2]],
        **change,
    }
    assert _typed(lambda: layout_from_settings(settings)).code == "SETTINGS_MALFORMED"
