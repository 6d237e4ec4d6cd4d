"""``trustdial serve --sealed-model NAME=DIR``: the options, and loading each sealed model before the server starts.

A sealed model is unsealed in memory (see :mod:`enclave_app.sealed.unseal`) and handed to onnxruntime as bytes; its
identity (``LoadedModel.sha256``, what receipts name) is the SHA-256 of those bytes, which ``unseal`` has already
checked against the header. Any failure raises :class:`SealedModelError` and the server does not start.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from enclave_app.addresses import parse_address
from enclave_app.models import LoadedModel, load_model_bytes
from enclave_app.sealed.credentials import fetch_credentials
from enclave_app.sealed.errors import SealedModelError
from enclave_app.sealed.header import KeyScheme, WrappedKey
from enclave_app.sealed.kms_client import KmsEndpoint
from enclave_app.sealed.unseal import DataKeyUnwrapper, KmsRecipientUnwrapper, RsaFileUnwrapper, unseal

if TYPE_CHECKING:
    from enclave_app.nsm.interface import Nsm

#: the parent's credential server (``trustdial host-credentials``) as the enclave reaches it
DEFAULT_CREDENTIALS = "vsock:3:8001"
ModelLoader = Callable[..., LoadedModel]


def add_sealed_arguments(parser: Any) -> None:
    parser.add_argument(
        "--sealed-model", action="append", default=[], metavar="NAME=DIR", help="a `trustdial model seal` output"
    )
    parser.add_argument("--kms", metavar="ADDRESS", help="KMS through the parent: vsock:CID:PORT or tcp:HOST:PORT")
    parser.add_argument("--region", help="the KMS region (TLS is checked against kms.REGION.amazonaws.com)")
    parser.add_argument(
        "--credentials", default=DEFAULT_CREDENTIALS, metavar="ADDRESS", help="the parent's credential server"
    )
    parser.add_argument("--kms-ca-file", type=Path, help="CA bundle for KMS TLS (default: the pinned Amazon roots)")
    parser.add_argument(
        "--sealed-key-file", type=Path, help="DEVELOPMENT ONLY: RSA private key (PEM) for file:PEM-sealed models"
    )


def _spec(text: str) -> tuple[str, Path]:
    name, sep, directory = text.partition("=")
    if not sep or not name or not directory:
        raise SealedModelError("SEALED_MODEL_SPEC", f"expected --sealed-model NAME=DIR, found {text!r}")
    return name, Path(directory)


def _rsa_key(path: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise SealedModelError("SEALED_KEY_FILE", f"cannot load the RSA private key {path}: {err}") from err
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SealedModelError("SEALED_KEY_FILE", f"{path} is not an RSA private key")
    return key


def unwrapper_for(args: argparse.Namespace, nsm: Nsm, scheme: KeyScheme) -> DataKeyUnwrapper:
    if scheme == KeyScheme.RSA_OAEP_SHA256:
        if args.sealed_key_file is None:
            raise SealedModelError("SEALED_KEY_FILE", "a file:PEM-sealed model needs --sealed-key-file (development)")
        return RsaFileUnwrapper(_rsa_key(args.sealed_key_file))
    if not args.kms or not args.region:
        raise SealedModelError("SEALED_KMS_OPTIONS", "a KMS-sealed model needs --kms ADDRESS and --region REGION")
    try:
        kms = parse_address(args.kms)
        credentials = parse_address(args.credentials)
    except ValueError as err:
        raise SealedModelError("SEALED_KMS_OPTIONS", str(err)) from err
    endpoint = KmsEndpoint(kms, args.region, ca_file=args.kms_ca_file)
    return KmsRecipientUnwrapper(nsm, endpoint, lambda: fetch_credentials(credentials))


@dataclass(frozen=True)
class _ByScheme:
    """Builds the unwrapper the header's key scheme needs, when a header asks for it."""

    args: argparse.Namespace
    nsm: Nsm

    def unwrap(self, key: WrappedKey) -> bytes:
        return unwrapper_for(self.args, self.nsm, key.scheme).unwrap(key)


def _stderr(line: str) -> None:
    print(f"trustdial serve: {line}", file=sys.stderr, flush=True)


def load_sealed_models(
    args: argparse.Namespace,
    nsm: Nsm,
    *,
    intra_op_threads: int = 0,
    loader: ModelLoader = load_model_bytes,
    progress: Callable[[str], None] = _stderr,
) -> list[LoadedModel]:
    """Every ``--sealed-model``, unsealed and loaded; nothing is loaded unless all of them unseal."""
    unsealed = []
    for spec in args.sealed_model:
        name, directory = _spec(spec)
        progress(f"unsealing {name} from {directory}")
        model = unseal(directory, _ByScheme(args, nsm))
        progress(f"{name}: {len(model.files)} file(s) decrypted in memory, sha256 {model.model_sha256.hex()} checked")
        unsealed.append((name, directory, model))
    return [
        loader(model.model_bytes, name, directory / model.header.model, intra_op_threads=intra_op_threads)
        for name, directory, model in unsealed
    ]
