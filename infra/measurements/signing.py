"""Sign manifest bytes into the COSE_Sign1 form verifiers load with
``trustdial_verifier._internal.measurements.load_signed_manifest``; the result is verified before it is returned."""

from __future__ import annotations

import hashlib

from trustdial_verifier.errors import VerificationError
from trustdial_verifier.unstable.cose import ALG_ES384, raw_ecdsa_signature
from trustdial_verifier.unstable.measurements import (
    encode_signed_manifest,
    load_signed_manifest,
    parse_manifest,
    protected_header,
    to_be_signed,
)

from infra.measurements.errors import MeasurementsError
from infra.measurements.signers import ManifestSigner


def sign_manifest(manifest: bytes, signer: ManifestSigner) -> bytes:
    try:
        parse_manifest(manifest)
    except VerificationError as err:
        raise MeasurementsError("MANIFEST_CREATE_INPUT", f"refusing to sign an invalid manifest: {err.reason}") from err
    protected = protected_header()
    digest = hashlib.sha384(to_be_signed(protected, manifest)).digest()
    signature = raw_ecdsa_signature(signer.sign_digest(digest), ALG_ES384)
    signed = encode_signed_manifest(protected, manifest, signature, key_id=signer.key_id.encode())
    load_signed_manifest(signed, signer.public_key())
    return signed
