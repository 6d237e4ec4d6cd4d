"""The public surface of ``trustdial_verifier``: every exported name exists and is documented, the verify
functions are there, and no public signature or result type mentions a private type that is not re-exported."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import subprocess
import sys
import types
import typing
from collections.abc import Iterator

import pytest
import trustdial_verifier

ENTRY_POINTS = (
    "verify_attestation",
    "verify_receipt",
    "verify_composite",
    "verify_proof",
    "verify_manifest",
    "recompute_pcrs",
)


def _exported() -> list[str]:
    return list(trustdial_verifier.__all__)


def _own_doc(obj: object) -> str:
    """The object's own docstring: a dataclass without one gets its signature as ``__doc__``, which is no doc."""
    doc = vars(obj).get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    if not doc or (inspect.isclass(obj) and doc.startswith(f"{obj.__name__}(")):
        return ""
    return inspect.cleandoc(doc)


def test_all_lists_each_name_once_and_each_exists() -> None:
    names = _exported()
    assert len(names) == len(set(names))
    missing = [name for name in names if not hasattr(trustdial_verifier, name)]
    assert not missing


def test_every_entry_point_is_exported() -> None:
    assert set(ENTRY_POINTS) <= set(_exported())
    for name in ENTRY_POINTS:
        assert inspect.isfunction(getattr(trustdial_verifier, name))


@pytest.mark.parametrize("name", _exported())
def test_every_exported_name_is_documented(name: str) -> None:
    assert len(_own_doc(getattr(trustdial_verifier, name))) >= 20, f"{name} has no docstring of its own"


def test_errors_are_typed_and_rooted_in_the_two_base_classes() -> None:
    bases = (trustdial_verifier.VerificationError, trustdial_verifier.InputError)
    errors = [getattr(trustdial_verifier, n) for n in _exported() if n.endswith("Error")]
    assert len(errors) >= 10
    for error in errors:
        assert issubclass(error, bases), error


def test_modes_and_evidence_kinds_are_str_enums_with_the_format_literals() -> None:
    assert issubclass(trustdial_verifier.TrustMode, enum.StrEnum)
    assert {m.value for m in trustdial_verifier.TrustMode} == {"tee", "zk", "tee+zk"}
    assert {k.value for k in trustdial_verifier.EvidenceKind} == {"tee", "zk"}
    assert {o.value for o in trustdial_verifier.ReceiptOperation} == {
        "infer",
        "generate",
        "llm-completion",
        "llm-chunk",
    }
    assert trustdial_verifier.TrustMode.TEE_ZK == "tee+zk"  # members are the strings the formats carry


def _types_in(annotation: object) -> Iterator[type]:
    if isinstance(annotation, type) and not isinstance(annotation, types.GenericAlias):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _types_in(arg)
    origin = typing.get_origin(annotation)
    if isinstance(origin, type):
        yield origin


def _public_annotations() -> Iterator[tuple[str, object]]:
    for name in _exported():
        obj = getattr(trustdial_verifier, name)
        if inspect.isfunction(obj):
            for param, hint in typing.get_type_hints(obj).items():
                yield f"{name}({param})", hint
        elif dataclasses.is_dataclass(obj) and inspect.isclass(obj):
            for field, hint in typing.get_type_hints(obj).items():
                yield f"{name}.{field}", hint


def test_public_signatures_mention_only_exported_or_foreign_types() -> None:
    exported = {id(getattr(trustdial_verifier, name)) for name in _exported()}
    leaks = [
        f"{where}: {kind.__module__}.{kind.__qualname__}"
        for where, hint in _public_annotations()
        for kind in _types_in(hint)
        if kind.__module__.startswith("trustdial_verifier") and id(kind) not in exported
    ]
    assert not leaks, leaks


def test_the_surface_check_sees_the_types_it_checks() -> None:
    # guards the test above against passing vacuously: it must walk into unions and generic arguments
    seen = {kind for _, hint in _public_annotations() for kind in _types_in(hint)}
    assert {trustdial_verifier.CompositeOptions, trustdial_verifier.Tensor, trustdial_verifier.VerifiedStep} <= seen
    assert trustdial_verifier.PipelinePolicy in seen  # from CompositeOptions.policy: PipelinePolicy | None


def test_every_exported_name_has_one_lazy_source() -> None:
    sources = vars(trustdial_verifier)["_SOURCES"]
    assert set(sources) == set(_exported())


def test_importing_an_internal_module_does_not_load_the_public_verifiers() -> None:
    # the enclave imports the verifier's encoders (trustdial_verifier._internal.*): the package's __init__ loads the
    # public names on first use only, so it does not pull in every verifier at start
    code = (
        "import sys, trustdial_verifier._internal.tensors\n"
        "loaded = [m for m in ('trustdial_verifier.verify', 'trustdial_verifier._internal.composite.verify') "
        "if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "import trustdial_verifier\n"
        "assert trustdial_verifier.verify_composite.__module__ == 'trustdial_verifier.verify'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = trustdial_verifier.verify_everything
