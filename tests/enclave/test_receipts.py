"""Receipts signed by the sealer and checked by the verifier, with pycose as an independent
COSE oracle and the simulated NSM for the key-binding attestation document."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st
from pycose.keys import EC2Key, OKPKey
from pycose.keys.curves import P256, Ed25519
from pycose.messages import Sign1Message
from trustdial_verifier._internal.attestation.verify import AttestationError, PcrsEqual
from trustdial_verifier._internal.receipts import (
    Commitment,
    ReceiptError,
    ReceiptExpectation,
    Statement,
    check_statement,
    open_receipt,
)
from trustdial_verifier._internal.receipts.attested import BINDING_USER_DATA, verify_receipt
from trustdial_verifier._internal.receipts.model import Receipt, decode_receipt
from trustdial_verifier._internal.tensors import COMMITMENT_KIND_SHA256, Tensor, commit_tensors

from enclave_app.nsm.simulated import SimulatedNsm
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.sealer import Sealer

PCRS = {i: hashlib.sha384(f"receipt tests PCR{i}".encode()).digest() for i in (0, 1, 2)}
MODEL = hashlib.sha256(b"model bytes").digest()
INPUTS = {"x": Tensor("float32", (2,), b"\x00\x00\x80\x3f\x00\x00\x00\x40")}
OUTPUTS = {"y": Tensor("int64", (1,), (7).to_bytes(8, "little"))}
NONCE = b"n" * 16


def _statement(seq: int, attestation: bytes, **changes: object) -> Statement:
    statement = Statement(
        op="infer",
        model=MODEL,
        input=Commitment(COMMITMENT_KIND_SHA256, commit_tensors(INPUTS)),
        output=Commitment(COMMITMENT_KIND_SHA256, commit_tensors(OUTPUTS)),
        nonce=NONCE,
        timestamp_ms=1_800_000_000_000,
        seq=seq,
        attestation=attestation,
    )
    return replace(statement, **changes)  # type: ignore[arg-type]


def _expect(**changes: object) -> ReceiptExpectation:
    expectation = ReceiptExpectation(models=frozenset({MODEL}), inputs=INPUTS, outputs=OUTPUTS, nonce=NONCE)
    return replace(expectation, **changes)  # type: ignore[arg-type]


class Enclave:
    """A receipt key bound by a simulated NSM document, as the service does at start."""

    def __init__(self, key_type: str = "p256") -> None:
        self.nsm = SimulatedNsm(pcrs=PCRS)
        self.key = ReceiptKey.generate(key_type)
        self.document = self.nsm.attest(public_key=self.key.public_key_der(), user_data=BINDING_USER_DATA)
        self.digest = hashlib.sha256(self.document).digest()

    def receipts(self, count: int, **changes: object) -> list[Receipt]:
        sealer = Sealer(self.key, self.digest)
        for seq in range(1, count + 1):
            sealer.add(_statement(seq, self.digest, **changes).encode())
        return sealer.seal()

    def open(self, receipt: bytes) -> Statement:
        return open_receipt(receipt, public_key=self.key.public_key_der(), attestation_digest=self.digest).statement


@pytest.fixture(scope="module")
def enclave() -> Enclave:
    return Enclave()


def _pycose_key(key: ReceiptKey) -> OKPKey | EC2Key:
    public = key.private_key.public_key()
    if key.key_type == "ed25519":
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return OKPKey(crv=Ed25519, x=raw)
    numbers = public.public_numbers()  # type: ignore[union-attr]
    return EC2Key(crv=P256, x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"))


@pytest.mark.parametrize("key_type", ["ed25519", "p256"])
def test_seal_verifies_with_pycose(key_type: str) -> None:
    enclave = Enclave(key_type)
    receipt = enclave.receipts(3)[1]
    message = Sign1Message.from_cose_obj(cbor2.loads(receipt.seal), allow_unknown_attributes=True)
    message.key = _pycose_key(enclave.key)
    assert message.verify_signature()


@pytest.mark.parametrize("key_type", ["ed25519", "p256"])
def test_every_receipt_of_a_batch_verifies_on_its_own(key_type: str) -> None:
    enclave = Enclave(key_type)
    receipts = enclave.receipts(7)
    assert [enclave.open(r.encode()).seq for r in receipts] == list(range(1, 8))


def test_a_batch_shares_one_signature(enclave: Enclave) -> None:
    assert len({r.seal for r in enclave.receipts(5)}) == 1


def test_receipt_signed_by_another_key_is_rejected(enclave: Enclave) -> None:
    other = Sealer(ReceiptKey.generate(enclave.key.key_type), enclave.digest)
    other.add(_statement(1, enclave.digest).encode())
    with pytest.raises(ReceiptError) as err:
        enclave.open(other.seal()[0].encode())
    assert err.value.code == "RECEIPT_SIGNATURE"


def test_receipt_sealed_with_another_algorithm_is_rejected(enclave: Enclave) -> None:
    other = Sealer(ReceiptKey.generate("ed25519"), enclave.digest)
    other.add(_statement(1, enclave.digest).encode())
    with pytest.raises(ReceiptError) as err:
        enclave.open(other.seal()[0].encode())
    assert err.value.code == "RECEIPT_ALG"


def test_statement_swapped_inside_a_receipt_is_rejected(enclave: Enclave) -> None:
    receipt = enclave.receipts(4)[2]
    forged = replace(receipt, statement=_statement(3, enclave.digest, nonce=b"other").encode())
    with pytest.raises(ReceiptError) as err:
        enclave.open(forged.encode())
    assert err.value.code == "RECEIPT_INCLUSION"


def test_receipt_bound_to_another_attestation_is_rejected(enclave: Enclave) -> None:
    receipt = enclave.receipts(1)[0]
    with pytest.raises(ReceiptError) as err:
        open_receipt(receipt.encode(), public_key=enclave.key.public_key_der(), attestation_digest=b"\x00" * 32)
    assert err.value.code == "RECEIPT_ATTESTATION_MISMATCH"


def test_truncated_receipt_is_malformed(enclave: Enclave) -> None:
    raw = enclave.receipts(1)[0].encode()
    with pytest.raises(ReceiptError) as err:
        enclave.open(raw[:-5])
    assert err.value.code == "RECEIPT_MALFORMED"


def test_statement_with_unknown_field_is_malformed(enclave: Enclave) -> None:
    value = _statement(1, enclave.digest).to_cbor_value()
    value["extra"] = 1
    sealer = Sealer(enclave.key, enclave.digest)
    sealer.add(cbor2.dumps(value, canonical=True))
    with pytest.raises(ReceiptError) as err:
        enclave.open(sealer.seal()[0].encode())
    assert err.value.code == "RECEIPT_MALFORMED"


def test_matching_statement_passes_the_checks(enclave: Enclave) -> None:
    check_statement(enclave.open(enclave.receipts(1)[0].encode()), _expect())


@pytest.mark.parametrize(
    ("expectation", "code"),
    [
        (_expect(outputs={"y": Tensor("int64", (1,), (8).to_bytes(8, "little"))}), "RECEIPT_OUTPUT_MISMATCH"),
        (_expect(inputs={"x": Tensor("float32", (2,), bytes(8))}), "RECEIPT_INPUT_MISMATCH"),
        (_expect(models=frozenset({hashlib.sha256(b"other").digest()})), "RECEIPT_MODEL_MISMATCH"),
        (_expect(models=frozenset()), "RECEIPT_NO_EXPECTED_MODEL"),
        (_expect(nonce=b"m" * 16), "RECEIPT_NONCE_MISMATCH"),
        (_expect(min_seq=2), "RECEIPT_SEQUENCE_ROLLBACK"),
        (_expect(op="generate"), "RECEIPT_OP_MISMATCH"),
        (_expect(params={"max_new_tokens": 3}), "RECEIPT_PARAMS_MISMATCH"),
        (_expect(not_before_ms=1_800_000_010_000), "RECEIPT_TIMESTAMP"),
    ],
)
def test_statement_differing_from_expectation_is_rejected(
    enclave: Enclave, expectation: ReceiptExpectation, code: str
) -> None:
    statement = enclave.open(enclave.receipts(1)[0].encode())
    with pytest.raises(ReceiptError) as err:
        check_statement(statement, expectation)
    assert err.value.code == code


def test_unknown_commitment_kind_is_rejected(enclave: Enclave) -> None:
    poseidon = Commitment("poseidon-ezkl-v1", b"\x01" * 32)
    statement = enclave.open(enclave.receipts(1, input=poseidon)[0].encode())
    with pytest.raises(ReceiptError) as err:
        check_statement(statement, _expect())
    assert err.value.code == "RECEIPT_COMMITMENT_KIND"


def test_offline_verification_accepts_a_genuine_receipt(enclave: Enclave) -> None:
    receipt = enclave.receipts(2)[1].encode()
    verified = verify_receipt(
        receipt,
        attestation=enclave.document,
        policy=PcrsEqual(PCRS),
        expected=_expect(not_before_ms=0),
        root=enclave.nsm.root_certificate,
    )
    assert verified.statement.seq == 2


def test_offline_verification_rejects_a_pcr_mismatch(enclave: Enclave) -> None:
    receipt = enclave.receipts(1)[0].encode()
    with pytest.raises(AttestationError) as err:
        verify_receipt(
            receipt,
            attestation=enclave.document,
            policy=PcrsEqual({**PCRS, 1: b"\x11" * 48}),
            expected=_expect(),
            root=enclave.nsm.root_certificate,
        )
    assert err.value.code == "PCR_MISMATCH"


def test_offline_verification_rejects_the_pinned_aws_root_for_simulated_documents(enclave: Enclave) -> None:
    with pytest.raises(AttestationError):
        verify_receipt(
            enclave.receipts(1)[0].encode(), attestation=enclave.document, policy=PcrsEqual(PCRS), expected=_expect()
        )


def test_document_without_the_binding_marker_is_rejected(enclave: Enclave) -> None:
    unmarked = enclave.nsm.attest(public_key=enclave.key.public_key_der())
    sealer = Sealer(enclave.key, hashlib.sha256(unmarked).digest())
    sealer.add(_statement(1, hashlib.sha256(unmarked).digest()).encode())
    with pytest.raises(AttestationError):
        verify_receipt(
            sealer.seal()[0].encode(),
            attestation=unmarked,
            policy=PcrsEqual(PCRS),
            expected=_expect(),
            root=enclave.nsm.root_certificate,
        )


def test_receipt_round_trips_through_cbor(enclave: Enclave) -> None:
    receipt = enclave.receipts(3)[2]
    assert decode_receipt(receipt.encode()) == receipt


@given(st.binary(max_size=512))
def test_arbitrary_bytes_are_rejected_as_receipt_errors(raw: bytes) -> None:
    enclave = _SHARED
    with pytest.raises(ReceiptError):
        enclave.open(raw)


_SHARED = Enclave()


def test_every_single_bit_flip_of_a_genuine_receipt_is_rejected() -> None:
    raw = _SHARED.receipts(3)[1].encode()
    _SHARED.open(raw)
    for position in range(len(raw)):
        for bit in (0x01, 0x80):
            flipped = bytearray(raw)
            flipped[position] ^= bit
            with pytest.raises(ReceiptError):
                _SHARED.open(bytes(flipped))
