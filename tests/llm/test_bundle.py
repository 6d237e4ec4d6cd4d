"""Bundle manifests: the digest is over the canonical manifest, and a bundle whose files differ from it in any way
is refused (by verify_bundle, by trustdial llm digest, and by trustdial serve before loading)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from serve_gateway import BIN
from trustdial_verifier._internal.llm.bundle import BundleError, read_manifest, verify_bundle

from llm.stack import DATA, TINY, other_bundle


def test_the_committed_bundle_verifies_with_its_recorded_digest() -> None:
    reference = json.loads((DATA / "tiny-reference.json").read_text())
    assert verify_bundle(TINY).digest().hex() == reference["bundle_digest"]


def _copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(TINY, tmp_path / "bundle"))


@pytest.mark.parametrize(
    ("damage", "code"),
    [
        (lambda d: (d / "tokenizer_config.json").write_text("{}"), "BUNDLE_FILE_MISMATCH"),
        (lambda d: (d / "model.onnx.data").unlink(), "BUNDLE_MISSING_FILE"),
        (lambda d: (d / "chat_template.jinja").write_text("{{ x }}"), "BUNDLE_EXTRA_FILE"),
        (lambda d: (d / "bundle.json").write_text("{"), "BUNDLE_MANIFEST"),
        (lambda d: (d / "extra.json").symlink_to(d / "genai_config.json"), "BUNDLE_SYMLINK"),
    ],
    ids=["changed", "missing", "extra", "bad-manifest", "symlink"],
)
def test_a_damaged_bundle_is_refused_everywhere(tmp_path: Path, damage: object, code: str) -> None:
    bundle = _copy(tmp_path)
    damage(bundle)  # type: ignore[operator]
    with pytest.raises(BundleError) as caught:
        verify_bundle(bundle)
    assert caught.value.code == code
    done = subprocess.run([BIN / "trustdial", "llm", "digest", bundle, "--json"], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 1 and json.loads(done.stdout)["code"] == code


def test_serve_refuses_a_changed_bundle_before_loading(tmp_path: Path) -> None:
    bundle = _copy(tmp_path)
    (bundle / "tokenizer_config.json").write_text("{}")
    served = subprocess.run(
        [BIN / "trustdial", "serve", "--llm", f"x={bundle}", "--listen", "tcp:127.0.0.1:0", "--nsm", "simulated"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert served.returncode == 2 and "BUNDLE_FILE_MISMATCH" in served.stderr


def test_the_digest_names_the_manifest_meta_too(tmp_path: Path) -> None:
    other = other_bundle(tmp_path / "other")
    assert read_manifest(other).digest() != read_manifest(TINY).digest()
    done = subprocess.run([BIN / "trustdial", "llm", "digest", other, "--json"], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert json.loads(done.stdout)["digest"] == read_manifest(other).digest().hex()
