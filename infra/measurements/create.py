"""Build a manifest document from an EIF and its provenance, in canonical JSON form
(sorted keys, two-space indent, UTF-8, trailing newline), validated before it is returned."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trustdial_verifier.errors import VerificationError
from trustdial_verifier.unstable.eif import measure_eif
from trustdial_verifier.unstable.measurements import IMAGE_INPUTS, SCHEMA_ID, parse_manifest

from infra.measurements.errors import MeasurementsError


def canonical_json(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def create_manifest(
    *,
    eif: Path,
    source_revision: str,
    build_time: str,
    blobs: Mapping[str, str],
    image_digest: str | None = None,
    image_inputs: Mapping[str, str] | None = None,
    models: Mapping[str, Mapping[str, str]] | None = None,
    zk: Mapping[str, Mapping[str, str]] | None = None,
    pipeline_policy_sha256: str | None = None,
) -> bytes:
    measurement = measure_eif(eif)
    assert measurement.sha256 is not None and measurement.sha384 is not None
    document = {
        "schema": SCHEMA_ID,
        "build_time": build_time,
        "source_revision": source_revision,
        "eif": {
            "sha384": measurement.sha384,
            "sha256": measurement.sha256,
            "size": measurement.size,
            "arch": measurement.arch,
        },
        "pcrs": measurement.pcrs(),
        "blobs": {name: {"sha256": digest} for name, digest in blobs.items()},
        "image": {"digest": image_digest, **{name: (image_inputs or {}).get(name) for name in IMAGE_INPUTS}},
        "models": {name: dict(v) for name, v in (models or {}).items()},
        "zk": {name: dict(v) for name, v in (zk or {}).items()},
        "pipeline_policy_sha256": pipeline_policy_sha256,
    }
    raw = canonical_json(document)
    try:
        parse_manifest(raw)
    except VerificationError as err:
        raise MeasurementsError("MANIFEST_CREATE_INPUT", f"manifest would be invalid: {err.reason}") from err
    return raw
