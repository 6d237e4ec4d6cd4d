"""Structured reference strings for ezkl: dev generation and ceremony-file checks.

``generate_dev_srs`` runs ``ezkl.gen_srs`` (a single-party setup: the generating machine saw
the secret, so proofs are only as trustworthy as that machine). Production uses the
perpetual-powers-of-tau ceremony files, whose digests are in ``trustdial_verifier._internal.proof.srs``. Nothing here
downloads: ``ezkl.get_srs`` is never called.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from trustdial_verifier.unstable.proof import ceremony_k, sha256_file

from prover import ezkl_api
from prover.errors import ProverError


def generate_dev_srs(path: Path, logrows: int) -> Path:
    """Write an insecure single-party SRS for circuits up to ``logrows``."""
    started = time.monotonic()
    sys.stderr.write(f"[zk srs] generating a DEV-INSECURE SRS, k={logrows} (about 128 * 2^k bytes)\n")
    ezkl_api.gen_srs(path, logrows)
    sys.stderr.write(f"[zk srs] done in {time.monotonic() - started:.1f}s -> {path}\n")
    return path


def check_ceremony_srs(path: Path, logrows: int) -> str:
    """Return the SRS digest if it is a ceremony file large enough for ``logrows``; else raise."""
    if not path.is_file():
        raise ProverError("SRS_NOT_FOUND", f"expected an SRS file at {path}")
    digest = sha256_file(path)
    k = ceremony_k(digest)
    if k is None:
        raise ProverError(
            "SRS_NOT_CEREMONY",
            f"{path} (sha256 {digest}) is not a known ceremony file kzg1..26.srs; use --dev-srs for a local test SRS",
        )
    if k < logrows:
        raise ProverError("SRS_TOO_SMALL", f"the circuit needs k >= {logrows}; {path} is the ceremony file for k={k}")
    return digest
