"""Check that an EIF is the one a manifest describes: same file digest, same PCRs, same arch."""

from __future__ import annotations

from trustdial_verifier._internal.eif import EifMeasurement
from trustdial_verifier._internal.measurements.errors import ManifestError
from trustdial_verifier._internal.measurements.manifest import Manifest


def check_eif_matches(manifest: Manifest, eif: EifMeasurement) -> None:
    """Raise ``MANIFEST_EIF_MISMATCH`` naming the first field that differs."""
    recorded = manifest.document
    pairs = [
        ("eif.sha384", recorded["eif"]["sha384"], eif.sha384),
        ("eif.size", recorded["eif"]["size"], eif.size),
        ("eif.arch", recorded["eif"]["arch"], eif.arch),
        *((f"pcrs.{name}", recorded["pcrs"][name], value) for name, value in eif.pcrs().items()),
    ]
    for field, expected, found in pairs:
        if found is None and field == "eif.sha384":
            raise ManifestError("MANIFEST_EIF_MISMATCH", "the EIF was measured without file digests")
        if expected != found:
            raise ManifestError("MANIFEST_EIF_MISMATCH", f"{field}: manifest records {expected}, the EIF has {found}")
