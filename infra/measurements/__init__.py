"""Create, sign and publish measurement manifests (see docs/measurements.md).

``create_manifest(...) -> bytes``, ``sign_manifest(manifest, signer) -> bytes`` with
``signer_from_spec("path/key.pem" | "kms:KEY_ID")``, and ``publish(...)`` to S3 + SSM.
"""

from infra.measurements.create import create_manifest
from infra.measurements.publish import PublishResult, publish, ssm_prefix
from infra.measurements.signers import KmsSigner, LocalKeySigner, ManifestSigner, signer_from_spec
from infra.measurements.signing import sign_manifest

__all__ = [
    "KmsSigner",
    "LocalKeySigner",
    "ManifestSigner",
    "PublishResult",
    "create_manifest",
    "publish",
    "sign_manifest",
    "signer_from_spec",
    "ssm_prefix",
]
