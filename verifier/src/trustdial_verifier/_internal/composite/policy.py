"""The pipeline policy: which trust mode each segment of a model must run under.

A policy is parsed from ``pipeline.toml`` (schema in docs/pipeline.md) with stdlib ``tomllib``
and validated strictly: unknown keys, missing keys, wrong types, unknown modes, tensors used
before they are produced and tensors without a declared visibility are all refused.

Its identity is :func:`policy_sha256`: SHA-256 over the canonical JSON of the parsed policy
(never over the TOML bytes, so comments and formatting do not change it).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustdial_verifier._internal.composite.errors import PolicyFileError
from trustdial_verifier._internal.kinds import EvidenceKind, TrustMode
from trustdial_verifier.errors import describe_value

POLICY_FORMAT = "trustdial.pipeline/1"
MAX_POLICY_BYTES = 1 << 20
MAX_SEGMENTS = 64

MODE_TEE = TrustMode.TEE.value
MODE_ZK = TrustMode.ZK.value
MODE_TEE_ZK = TrustMode.TEE_ZK.value
# Integrity assurance, weakest first. A step may run stronger than its policy demands, never weaker.
MODE_STRENGTH: Mapping[str, int] = {MODE_TEE: 1, MODE_ZK: 2, MODE_TEE_ZK: 3}
# The kinds of evidence each mode consists of.
MODE_EVIDENCE: Mapping[str, frozenset[str]] = {
    MODE_TEE: frozenset({EvidenceKind.TEE.value}),
    MODE_ZK: frozenset({EvidenceKind.ZK.value}),
    MODE_TEE_ZK: frozenset({EvidenceKind.TEE.value, EvidenceKind.ZK.value}),
}

VISIBILITY_PUBLIC = "public"
VISIBILITY_PRIVATE = "private"
VISIBILITIES = (VISIBILITY_PUBLIC, VISIBILITY_PRIVATE)

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}")  # always fullmatch: "$" would admit a trailing newline
_TOP_KEYS = {"format", "name", "model", "segments", "tensors"}
_SEGMENT_KEYS = {"name", "inputs", "outputs", "mode", "reason"}


@dataclass(frozen=True)
class Segment:
    """One model segment of a pipeline: the tensors it reads and writes, and the trust mode it must run under."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    mode: str
    reason: str


@dataclass(frozen=True)
class PipelinePolicy:
    """A validated ``pipeline.toml``: the model, its segments in order, and each tensor's visibility."""

    name: str
    model: str
    segments: tuple[Segment, ...]
    visibility: Mapping[str, str]

    def segment(self, name: str) -> Segment:
        for segment in self.segments:
            if segment.name == name:
                return segment
        raise KeyError(name)

    @property
    def pipeline_inputs(self) -> tuple[str, ...]:
        produced = {t for s in self.segments for t in s.outputs}
        seen: list[str] = []
        for segment in self.segments:
            seen += [t for t in segment.inputs if t not in produced and t not in seen]
        return tuple(seen)

    @property
    def pipeline_outputs(self) -> tuple[str, ...]:
        consumed = {t for s in self.segments for t in s.inputs}
        return tuple(t for s in self.segments for t in s.outputs if t not in consumed)

    def producer(self, tensor: str) -> Segment | None:
        for segment in self.segments:
            if tensor in segment.outputs:
                return segment
        return None


def mode_satisfies(actual: str, required: str) -> bool:
    """True when a step that ran in ``actual`` mode meets a policy demanding ``required``.

    Unknown modes never satisfy anything. ``zk`` meets ``tee`` (a proof is stronger integrity
    evidence than an attestation); nothing weaker than the requirement does.
    """
    if not isinstance(actual, str) or not isinstance(required, str):
        return False
    if actual not in MODE_STRENGTH or required not in MODE_STRENGTH:
        return False
    return MODE_STRENGTH[actual] >= MODE_STRENGTH[required]


def load_policy(path: Path) -> PipelinePolicy:
    """Read and validate a pipeline.toml file."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_POLICY_BYTES + 1)
    except OSError as err:
        raise PolicyFileError("POLICY_UNREADABLE", f"cannot read policy file {path}: {err}") from err
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyFileError("POLICY_TOO_LARGE", f"expected at most {MAX_POLICY_BYTES} bytes, found more")
    return parse_policy(data)


def parse_policy(data: bytes) -> PipelinePolicy:
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise PolicyFileError("POLICY_TOML_INVALID", f"expected UTF-8 TOML, found undecodable bytes: {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise PolicyFileError("POLICY_TOML_INVALID", f"expected valid TOML: {err}") from err
    except (ValueError, RecursionError) as err:  # e.g. an integer past Python's int-string limit
        raise PolicyFileError(
            "POLICY_TOML_INVALID", f"expected TOML this verifier accepts, refused: {type(err).__name__}"
        ) from None
    return policy_from_mapping(document)


def policy_from_mapping(document: Mapping[str, Any]) -> PipelinePolicy:
    """Validate an already-decoded policy document (TOML tables or the canonical JSON form)."""
    _exact_keys(document, _TOP_KEYS, "top level", optional={"model"})
    if document["format"] != POLICY_FORMAT:
        raise PolicyFileError(
            "POLICY_FORMAT_UNKNOWN", f"expected format {POLICY_FORMAT!r}, found {document['format']!r}"
        )
    name = _name(document["name"], "name")
    model = document.get("model", "")
    if not isinstance(model, str):
        raise PolicyFileError(
            "POLICY_FIELD_TYPE", f"expected 'model' to be a path string, found {type(model).__name__}"
        )
    raw_segments = document["segments"]
    if not isinstance(raw_segments, list) or not raw_segments:
        raise PolicyFileError("POLICY_NO_SEGMENTS", "expected at least one [[segments]] table, found none")
    if len(raw_segments) > MAX_SEGMENTS:
        raise PolicyFileError(
            "POLICY_TOO_LARGE", f"expected at most {MAX_SEGMENTS} segments, found {len(raw_segments)}"
        )
    segments = tuple(_segment(raw, index) for index, raw in enumerate(raw_segments))
    _check_order(segments)
    visibility = _visibility(document["tensors"], segments)
    return PipelinePolicy(name=name, model=model, segments=segments, visibility=visibility)


def canonical_policy(policy: PipelinePolicy) -> dict[str, Any]:
    """The hashed form: everything that decides what must be proven, nothing about file locations."""
    return {
        "format": POLICY_FORMAT,
        "name": policy.name,
        "segments": [
            {
                "name": s.name,
                "inputs": list(s.inputs),
                "outputs": list(s.outputs),
                "mode": s.mode,
                "reason": s.reason,
            }
            for s in policy.segments
        ],
        "tensors": dict(sorted(policy.visibility.items())),
    }


def canonical_policy_bytes(policy: PipelinePolicy) -> bytes:
    text = json.dumps(canonical_policy(policy), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def policy_sha256(policy: PipelinePolicy) -> str:
    """Lowercase hex SHA-256 of :func:`canonical_policy_bytes`."""
    return hashlib.sha256(canonical_policy_bytes(policy)).hexdigest()


def _exact_keys(table: Any, allowed: set[str], where: str, optional: set[str] | None = None) -> None:
    if not isinstance(table, Mapping):
        raise PolicyFileError("POLICY_FIELD_TYPE", f"expected a table at {where}, found {type(table).__name__}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise PolicyFileError("POLICY_FIELD_UNKNOWN", f"unknown key(s) at {where}: {', '.join(unknown)}")
    missing = sorted(allowed - (optional or set()) - set(table))
    if missing:
        raise PolicyFileError("POLICY_FIELD_MISSING", f"missing key(s) at {where}: {', '.join(missing)}")


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise PolicyFileError(
            "POLICY_NAME_INVALID", f"expected {where} to match {_NAME.pattern}, found {describe_value(value)}"
        )
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise PolicyFileError("POLICY_FIELD_TYPE", f"expected {where} to be a non-empty list of tensor names")
    names = tuple(_name(item, where) for item in value)
    if len(set(names)) != len(names):
        raise PolicyFileError("POLICY_TENSOR_DUPLICATE", f"expected distinct tensor names in {where}, found {names}")
    return names


def _segment(raw: Any, index: int) -> Segment:
    where = f"segments[{index}]"
    _exact_keys(raw, _SEGMENT_KEYS, where)
    mode = raw["mode"]
    if not isinstance(mode, str) or mode not in MODE_STRENGTH:
        raise PolicyFileError(
            "POLICY_MODE_UNKNOWN", f"expected {where}.mode in {sorted(MODE_STRENGTH)}, found {describe_value(mode)}"
        )
    reason = raw["reason"]
    if not isinstance(reason, str) or not reason.strip():
        raise PolicyFileError("POLICY_REASON_MISSING", f"expected {where}.reason to say why mode {mode} was chosen")
    return Segment(
        name=_name(raw["name"], f"{where}.name"),
        inputs=_names(raw["inputs"], f"{where}.inputs"),
        outputs=_names(raw["outputs"], f"{where}.outputs"),
        mode=mode,
        reason=reason,
    )


def _check_order(segments: Sequence[Segment]) -> None:
    names = [s.name for s in segments]
    if len(set(names)) != len(names):
        raise PolicyFileError("POLICY_SEGMENT_DUPLICATE", f"expected distinct segment names, found {names}")
    producers: dict[str, int] = {}
    for index, segment in enumerate(segments):
        for tensor in segment.outputs:
            if tensor in producers:
                raise PolicyFileError(
                    "POLICY_TENSOR_REPRODUCED",
                    f"expected each tensor to be produced by one segment, found {tensor!r} produced twice",
                )
            if tensor in segment.inputs:
                raise PolicyFileError(
                    "POLICY_TENSOR_ORDER", f"segment {segment.name!r} consumes its own output {tensor!r}"
                )
            producers[tensor] = index
    for index, segment in enumerate(segments):
        for tensor in segment.inputs:
            if producers.get(tensor, -1) > index:
                raise PolicyFileError(
                    "POLICY_TENSOR_ORDER",
                    f"segment {segment.name!r} consumes {tensor!r} before segment "
                    f"{segments[producers[tensor]].name!r} produces it",
                )


def _visibility(raw: Any, segments: Sequence[Segment]) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise PolicyFileError("POLICY_FIELD_TYPE", "expected [tensors] to be a table of tensor = visibility")
    used = {t for s in segments for t in (*s.inputs, *s.outputs)}
    unknown = sorted(set(raw) - used)
    if unknown:
        raise PolicyFileError("POLICY_FIELD_UNKNOWN", f"[tensors] names tensors no segment uses: {', '.join(unknown)}")
    missing = sorted(used - set(raw))
    if missing:
        raise PolicyFileError(
            "POLICY_VISIBILITY_MISSING",
            f"expected a visibility for every segment tensor, missing: {', '.join(missing)}",
        )
    result: dict[str, str] = {}
    for tensor, value in raw.items():
        if value not in VISIBILITIES:
            raise PolicyFileError(
                "POLICY_VISIBILITY_UNKNOWN",
                f"expected tensors.{tensor} in {list(VISIBILITIES)}, found {describe_value(value)}",
            )
        result[tensor] = value
    return result
