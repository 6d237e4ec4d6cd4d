"""``artifacts.json``: the pinned description of one compiled ezkl circuit.

Written by ``trustdial zk compile`` next to the files it names; read by the verifier, which
recomputes every SHA-256 before using a file. Format (``format`` = ``trustdial-zk-artifacts/1``)::

    {"format": "trustdial-zk-artifacts/1", "ezkl_version": "23.0.5", "srs_kind": "dev-insecure",
     "input_visibility": "public", "output_visibility": "public", "param_visibility": "fixed",
     "logrows": 11, "input_scale": 13, "output_scale": 13,
     "files": {"model": {"path": "model.onnx", "sha256": "..."}, "settings": {...},
               "compiled_circuit": {...}, "vk": {...}, "srs": {...}, "pk": {...}}}

``settings``, ``vk`` and ``srs`` are what a verifier needs and checks; the prover checks
``settings``, ``compiled_circuit``, ``pk`` and ``srs`` before proving. The model's digest pins the
ONNX file the circuit was compiled from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from trustdial_verifier._internal import strict_json
from trustdial_verifier.errors import InputError, VerificationError, describe_value

ARTIFACTS_FILE: Final = "artifacts.json"
ARTIFACTS_FORMAT: Final = "trustdial-zk-artifacts/1"
VISIBILITIES: Final = ("public", "hashed")
FILE_ROLES: Final = ("model", "settings", "compiled_circuit", "vk", "srs", "pk")
VERIFIER_ROLES: Final = ("settings", "vk", "srs")

T = TypeVar("T")


@dataclass(frozen=True)
class ArtifactFile:
    path: str
    sha256: str


@dataclass(frozen=True)
class Artifacts:
    ezkl_version: str
    srs_kind: str
    input_visibility: str
    output_visibility: str
    param_visibility: str
    logrows: int
    input_scale: int
    output_scale: int
    files: dict[str, ArtifactFile]

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        return {"format": ARTIFACTS_FORMAT, **body}

    def sha256_of(self, role: str) -> str:
        return self.files[role].sha256


#: artifacts.json is a few hundred bytes; proofs and ezkl settings of trustdial's circuits tens of KiB.
MAX_ARTIFACTS_BYTES = 1 << 20
MAX_PROOF_JSON_BYTES = 16 << 20


def read_json_file(path: Path, code: str, *, max_bytes: int) -> Any:
    """A JSON file through the strict reader, at most ``max_bytes`` read; every refusal is ``code``."""
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    try:
        return strict_json.loads(data, max_bytes=max_bytes)
    except strict_json.JsonError as err:
        raise VerificationError(code, f"{path} is not strict JSON: {err.reason} ({err.code})") from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_artifacts(directory: Path, artifacts: Artifacts) -> Path:
    target = directory / ARTIFACTS_FILE
    target.write_text(json.dumps(artifacts.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def load_artifacts(directory: Path) -> Artifacts:
    """Parse ``DIR/artifacts.json``; shape errors are rejections (the evidence is unusable)."""
    path = directory / ARTIFACTS_FILE
    if not path.is_file():
        raise InputError("ARTIFACTS_NOT_FOUND", f"expected {path} (written by `trustdial zk compile`)")
    doc = read_json_file(path, "ARTIFACTS_MALFORMED", max_bytes=MAX_ARTIFACTS_BYTES)
    if not isinstance(doc, dict) or doc.get("format") != ARTIFACTS_FORMAT:
        found = describe_value(doc.get("format")) if isinstance(doc, dict) else type(doc).__name__
        raise VerificationError("ARTIFACTS_MALFORMED", f"expected format {ARTIFACTS_FORMAT!r}, found {found}")
    files_doc = doc.get("files")
    if not isinstance(files_doc, dict):
        raise VerificationError("ARTIFACTS_MALFORMED", "expected a 'files' object")
    files: dict[str, ArtifactFile] = {}
    for role, entry in files_doc.items():
        if role not in FILE_ROLES:
            raise VerificationError(
                "ARTIFACTS_MALFORMED", f"unknown file role {describe_value(role)}; expected one of {FILE_ROLES}"
            )
        files[role] = _parse_file_entry(role, entry)
    for role in VERIFIER_ROLES:
        if role not in files:
            raise VerificationError("ARTIFACTS_MALFORMED", f"expected a '{role}' entry in files; none found")
    try:
        artifacts = Artifacts(
            ezkl_version=_field(doc, "ezkl_version", str),
            srs_kind=_field(doc, "srs_kind", str),
            input_visibility=_field(doc, "input_visibility", str),
            output_visibility=_field(doc, "output_visibility", str),
            param_visibility=_field(doc, "param_visibility", str),
            logrows=_field(doc, "logrows", int),
            input_scale=_field(doc, "input_scale", int),
            output_scale=_field(doc, "output_scale", int),
            files=files,
        )
    except KeyError as err:
        raise VerificationError("ARTIFACTS_MALFORMED", f"expected field {err} in {path}") from err
    for side in (artifacts.input_visibility, artifacts.output_visibility):
        if side not in VISIBILITIES:
            raise VerificationError(
                "ARTIFACTS_MALFORMED", f"expected visibility in {VISIBILITIES}, found {describe_value(side)}"
            )
    return artifacts


def check_file_hashes(
    directory: Path, artifacts: Artifacts, roles: tuple[str, ...] = VERIFIER_ROLES
) -> dict[str, Path]:
    """Recompute the digest of each file in ``roles``; return their paths by role.

    A needed file that is missing, or not named in artifacts.json, is a rejection: nothing
    unpinned is ever used in its place. Files outside ``roles`` (e.g. a 500 MB proving key when
    only verifying) are not read.
    """
    paths: dict[str, Path] = {}
    for role in roles:
        entry = artifacts.files.get(role)
        if entry is None:
            raise VerificationError("ARTIFACT_MISSING", f"expected a {role} entry in artifacts.json; none found")
        path = directory / entry.path
        if not path.is_file():
            raise VerificationError("ARTIFACT_MISSING", f"expected {role} file {path}; it does not exist")
        found = sha256_file(path)
        if found != entry.sha256:
            raise VerificationError(
                "ARTIFACT_HASH_MISMATCH", f"{role} file {entry.path}: expected sha256 {entry.sha256}, found {found}"
            )
        paths[role] = path
    return paths


def _parse_file_entry(role: str, entry: Any) -> ArtifactFile:
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("path"), str)
        or not isinstance(entry.get("sha256"), str)
    ):
        raise VerificationError(
            "ARTIFACTS_MALFORMED", f"expected {{path, sha256}} strings for {role}, found {describe_value(entry)}"
        )
    name = entry["path"]
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise VerificationError(
            "ARTIFACTS_MALFORMED", f"expected a plain file name for {role}, found {describe_value(name)}"
        )
    digest = entry["sha256"].lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise VerificationError(
            "ARTIFACTS_MALFORMED", f"expected a 64-hex-digit sha256 for {role}, found {describe_value(digest)}"
        )
    return ArtifactFile(path=name, sha256=digest)


def _field(doc: dict[str, Any], name: str, kind: type[T]) -> T:
    value = doc[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise VerificationError(
            "ARTIFACTS_MALFORMED", f"expected {name} to be {kind.__name__}, found {describe_value(value)}"
        )
    return value
