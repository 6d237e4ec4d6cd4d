"""The stream verifier checks one signature per micro-batch: a cached seal still requires every receipt's own
statement to be included in the batch root it signed."""

from __future__ import annotations

import numpy as np
import pytest
from trustdial_verifier._internal.receipts import ReceiptError
from trustdial_verifier._internal.receipts.model import BatchRoot, Receipt, decode_receipt
from trustdial_verifier._internal.receipts.verify import open_receipt

from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.pipeline import ReceiptPipeline

ATTESTATION = bytes(range(32))


def test_receipts_of_one_batch_share_a_checked_seal_but_not_their_statements() -> None:
    key = ReceiptKey.generate("p256")
    pipeline = ReceiptPipeline(key, ATTESTATION, max_batch=8, max_wait=10.0, threaded=False)
    futures = [
        pipeline.submit("llm-chunk", bytes(32), {"x": np.array([i], dtype=np.int64)}, {"y": np.zeros(1)}, b"n")
        for i in range(3)
    ]
    pipeline.drain()
    raws = [f.result() for f in futures if f is not None]
    first, second = decode_receipt(raws[0]), decode_receipt(raws[1])
    assert first.seal == second.seal  # one batch, one signature
    cache: dict[bytes, BatchRoot] = {}
    public = key.public_key_der()
    for raw in raws:
        open_receipt(raw, public_key=public, attestation_digest=ATTESTATION, verified_seals=cache)
    assert len(cache) == 1
    forged = Receipt(statement=second.statement, seal=first.seal, index=first.index, path=first.path).encode()
    with pytest.raises(ReceiptError) as caught:
        open_receipt(forged, public_key=public, attestation_digest=ATTESTATION, verified_seals=cache)
    assert caught.value.code == "RECEIPT_INCLUSION"
    other = ReceiptKey.generate("p256").public_key_der()
    with pytest.raises(ReceiptError) as caught:  # a fresh cache for another key: the signature is checked again
        open_receipt(raws[0], public_key=other, attestation_digest=ATTESTATION, verified_seals={})
    assert caught.value.code == "RECEIPT_SIGNATURE"
