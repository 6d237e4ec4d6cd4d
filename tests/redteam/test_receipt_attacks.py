"""Attacks on receipts by someone holding genuine receipts and the genuine binding document: splicing
batches, re-encoding signed bytes, confusing the seal's algorithm or envelope, and binding documents
that must not vouch for a receipt key."""

from __future__ import annotations

import base64
from dataclasses import replace

import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from redteam_support import INPUTS, MODEL_SHA256, OUTPUTS, REQUEST_NONCE, ReceiptEnclave
from trustdial_verifier._internal.attestation.verify import AllOf, AttestationError, MaxAge, PcrsEqual
from trustdial_verifier._internal.receipts import ReceiptError, ReceiptExpectation, open_receipt
from trustdial_verifier._internal.receipts.attested import BINDING_USER_DATA, verify_receipt
from trustdial_verifier._internal.receipts.merkle import leaf_hash
from trustdial_verifier._internal.receipts.model import MAX_RECEIPT_BYTES, Receipt
from trustdial_verifier._internal.receipts.seal import ALG_ES256, protected_header
from trustdial_verifier.errors import InputError


@pytest.fixture(scope="module")
def enclave() -> ReceiptEnclave:
    return ReceiptEnclave()


def _expect() -> ReceiptExpectation:
    return ReceiptExpectation(models=frozenset({MODEL_SHA256}), inputs=INPUTS, outputs=OUTPUTS, nonce=REQUEST_NONCE)


def _open_code(enclave: ReceiptEnclave, raw: bytes) -> str:
    with pytest.raises(ReceiptError) as caught:
        open_receipt(raw, public_key=enclave.key.public_key_der(), attestation_digest=enclave.digest)
    return caught.value.code


def _batch(enclave: ReceiptEnclave, size: int, first_seq: int = 1) -> list[Receipt]:
    return enclave.seal([enclave.statement(INPUTS, OUTPUTS, seq=first_seq + i) for i in range(size)])


def _reseal(
    receipt: Receipt, protected: bytes | None = None, unprotected: object = None, tag: int | None = None
) -> Receipt:
    parts = cbor2.loads(receipt.seal)
    if protected is not None:
        parts[0] = protected
    if unprotected is not None:
        parts[1] = unprotected
    value: object = parts if tag is None else cbor2.CBORTag(tag, parts)
    return replace(receipt, seal=cbor2.dumps(value))


def test_statement_and_path_spliced_under_another_batchs_seal_are_rejected(enclave: ReceiptEnclave) -> None:
    first, second = _batch(enclave, 4, first_seq=1), _batch(enclave, 4, first_seq=5)
    spliced = replace(second[1], statement=first[1].statement, path=first[1].path)
    assert _open_code(enclave, spliced.encode()) == "RECEIPT_INCLUSION"


def test_interior_node_presented_as_a_statement_is_rejected(enclave: ReceiptEnclave) -> None:
    pair = _batch(enclave, 2)
    children = leaf_hash(pair[0].statement) + leaf_hash(pair[1].statement)
    forged = replace(pair[0], statement=children, index=0, path=())
    assert _open_code(enclave, forged.encode()) == "RECEIPT_INCLUSION"


def test_statement_reencoded_with_the_same_fields_is_rejected(enclave: ReceiptEnclave) -> None:
    receipt = _batch(enclave, 1)[0]
    fields = cbor2.loads(receipt.statement)
    reordered = cbor2.dumps(dict(reversed(list(fields.items()))))
    assert reordered != receipt.statement
    assert _open_code(enclave, replace(receipt, statement=reordered).encode()) == "RECEIPT_INCLUSION"


def test_seal_wrapped_in_cose_tag_18_is_rejected(enclave: ReceiptEnclave) -> None:
    receipt = _reseal(_batch(enclave, 1)[0], tag=18)
    assert _open_code(enclave, receipt.encode()) == "RECEIPT_SEAL_MALFORMED"


def test_seal_with_an_unprotected_algorithm_header_is_rejected(enclave: ReceiptEnclave) -> None:
    receipt = _reseal(_batch(enclave, 1)[0], unprotected={1: -8})
    assert _open_code(enclave, receipt.encode()) == "RECEIPT_SEAL_MALFORMED"


def test_seal_claiming_es256_for_an_ed25519_key_is_rejected(enclave: ReceiptEnclave) -> None:
    receipt = _reseal(_batch(enclave, 1)[0], protected=protected_header(ALG_ES256))
    assert _open_code(enclave, receipt.encode()) == "RECEIPT_ALG"


def test_seal_protected_header_without_content_type_is_rejected(enclave: ReceiptEnclave) -> None:
    receipt = _reseal(_batch(enclave, 1)[0], protected=cbor2.dumps({1: -8}))
    assert _open_code(enclave, receipt.encode()) == "RECEIPT_SEAL_MALFORMED"


@pytest.mark.parametrize("index", [-1, 1 << 64], ids=["negative", "2^64"])
def test_receipt_index_outside_u64_is_malformed(enclave: ReceiptEnclave, index: int) -> None:
    receipt = replace(_batch(enclave, 1)[0], index=index)
    assert _open_code(enclave, receipt.encode()) == "RECEIPT_MALFORMED"


def test_receipt_larger_than_the_cap_is_malformed(enclave: ReceiptEnclave) -> None:
    receipt = replace(_batch(enclave, 1)[0], statement=bytes(MAX_RECEIPT_BYTES))
    assert _open_code(enclave, receipt.encode()) == "RECEIPT_MALFORMED"


def test_receipt_with_a_self_referencing_shared_value_is_malformed(enclave: ReceiptEnclave) -> None:
    # tag 28 marks a shareable value, tag 29 refers back to it: a map that contains itself
    raw = bytes.fromhex("d81ca16170d81d00")
    assert _open_code(enclave, raw) == "RECEIPT_MALFORMED"


def _bound_document(enclave: ReceiptEnclave, public_key: bytes) -> bytes:
    return enclave.nsm.attest(public_key=public_key, user_data=BINDING_USER_DATA)


@pytest.mark.parametrize("kind", ["p384", "rsa"])
def test_binding_document_naming_a_key_type_receipts_never_use_is_rejected(enclave: ReceiptEnclave, kind: str) -> None:
    key = ec.generate_private_key(ec.SECP384R1()) if kind == "p384" else rsa.generate_private_key(65537, 2048)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    document = _bound_document(enclave, spki)
    receipt = _batch(enclave, 1)[0]
    with pytest.raises(ReceiptError) as caught:
        verify_receipt(
            receipt.encode(),
            attestation=document,
            policy=PcrsEqual(enclave.pcrs),
            expected=_expect(),
            root=enclave.nsm.root_certificate,
        )
    assert caught.value.code == "RECEIPT_KEY"


def test_receipt_from_a_debug_enclave_is_rejected_by_default() -> None:
    debug = ReceiptEnclave(debug=True)
    receipt = _batch(debug, 1)[0]
    with pytest.raises(AttestationError) as caught:
        verify_receipt(
            receipt.encode(),
            attestation=debug.document,
            policy=PcrsEqual(debug.pcrs),
            expected=_expect(),
            root=debug.nsm.root_certificate,
        )
    assert caught.value.code == "DEBUG_MODE"


def test_statement_dated_before_its_binding_document_is_rejected(enclave: ReceiptEnclave) -> None:
    document_ms = int(cbor2.loads(cbor2.loads(enclave.document)[2])["timestamp"])
    early = enclave.seal([enclave.statement(INPUTS, OUTPUTS, timestamp_ms=document_ms - 60_000)])[0]
    with pytest.raises(ReceiptError) as caught:
        verify_receipt(
            early.encode(),
            attestation=enclave.document,
            policy=PcrsEqual(enclave.pcrs),
            expected=_expect(),
            root=enclave.nsm.root_certificate,
        )
    assert caught.value.code == "RECEIPT_TIMESTAMP"


def test_binding_document_given_as_base64_text_is_not_silently_decoded(enclave: ReceiptEnclave) -> None:
    receipt = _batch(enclave, 1)[0]
    with pytest.raises(AttestationError):
        verify_receipt(
            receipt.encode(),
            attestation=base64.b64encode(enclave.document),
            policy=PcrsEqual(enclave.pcrs),
            expected=_expect(),
            root=enclave.nsm.root_certificate,
        )


def test_max_age_inside_the_binding_policy_is_refused_rather_than_silently_void(enclave: ReceiptEnclave) -> None:
    # The binding document is checked as of its own timestamp, where every document is 0 s old.
    receipt = _batch(enclave, 1)[0]
    with pytest.raises(InputError) as caught:
        verify_receipt(
            receipt.encode(),
            attestation=enclave.document,
            policy=AllOf([PcrsEqual(enclave.pcrs), MaxAge(60)]),
            expected=_expect(),
            root=enclave.nsm.root_certificate,
        )
    assert caught.value.code == "CONFLICTING_OPTIONS"
