"""The image carries the LLM engine and the bundle it serves, measured into PCR2.

On the session build (the tiny bundle as the build's LLM argument):
* the customer ramdisk, read with an independent newc reader, holds the bundle at the path the CMD serves
  (``/app/llm/bundle``), byte for byte, and the bundle found there verifies and has the digest its maker recorded
  (tests/data/llm/PROVENANCE.md); it also holds onnxruntime-genai 0.18.0 from the runtime lock;
* PCR2 is a function of the bundle's bytes: the app layer rebuilt over the session's own rootfs and wheel layers
  with a copy of the bundle gives the session's PCR2 again, and with a bundle changed in one weight byte, or in its
  manifest alone, gives another PCR2 each time (and another bundle digest);
* a bundle whose files do not match its bundle.json is refused by the build before anything is built."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from trustdial_verifier._internal.llm.bundle import build_manifest, read_manifest, verify_bundle, write_manifest

from image.conftest import LLM, ROOT, SOURCE_DATE_EPOCH, ImageSession, record_measurements, run_json
from image.newc_reader import read_newc
from image.qemu_boot import RAMDISK, eif_sections
from infra.image.debian_lock import load_lock
from infra.image.dockerfile_spec import parse_dockerfile
from infra.image.image_build import assemble_image

pytestmark = pytest.mark.timeout(2400)
BIN = Path(sys.executable).parent
#: the tiny bundle's digest as its maker recorded it (tests/data/llm/PROVENANCE.md)
TINY_DIGEST = "9017a85ee937e822014c434849cf9a1b130a6f18dfd4dbe18bb602956cdda688"
SERVED = "rootfs/app/llm/bundle/"
RUNTIME_LOCK = ROOT / "infra" / "image" / "enclave" / "requirements.lock"
SITE = "rootfs/usr/local/lib/python3.11/dist-packages/"


def _customer_ramdisk(eif: Path) -> bytes:
    return [data for kind, data in eif_sections(eif) if kind == RAMDISK][1]


def _pcr2(eif: Path) -> str:
    return hashlib.sha384(bytes(48) + hashlib.sha384(_customer_ramdisk(eif)).digest()).hexdigest()


def test_the_ramdisk_holds_the_served_bundle_and_the_engine(image_session: ImageSession, tmp_path: Path) -> None:
    customer = _customer_ramdisk(image_session.builds[0].eif)
    bundle = {name: e for name, e in read_newc(customer, SERVED).items() if e.is_file}
    source = {p.relative_to(LLM).as_posix(): p.read_bytes() for p in LLM.rglob("*") if p.is_file()}
    assert {name.removeprefix(SERVED): entry.data for name, entry in bundle.items()} == source
    assert parse_dockerfile(ROOT / "Dockerfile.enclave").cmd.count("/app/llm/bundle") == 1
    extracted = tmp_path / "bundle"
    for name, entry in bundle.items():
        (extracted / name.removeprefix(SERVED)).parent.mkdir(parents=True, exist_ok=True)
        (extracted / name.removeprefix(SERVED)).write_bytes(entry.data)
    assert verify_bundle(extracted).digest().hex() == TINY_DIGEST

    engine = read_newc(customer, SITE + "onnxruntime_genai")
    assert f"{SITE}onnxruntime_genai/onnxruntime_genai.cpython-311-x86_64-linux-gnu.so" in engine
    metadata = read_newc(customer, SITE + "onnxruntime_genai-0.18.0.dist-info/METADATA")
    assert b"\nVersion: 0.18.0\n" in next(iter(metadata.values())).data
    record_measurements({"customer_ramdisk_bytes": len(customer)})


def _rebuilt_pcr2(image_session: ImageSession, bundle: Path, work: Path) -> str:
    """PCR2 of the image with ``bundle`` as the build's LLM: the app layer and OCI archive as the build makes them,
    over the session build's own rootfs and wheel layers (which do not depend on the app's files), then the EIF."""
    build = image_session.builds[0]
    work.mkdir()
    spec = parse_dockerfile(ROOT / "Dockerfile.enclave", {"MODEL": str(image_session.model), "LLM": str(bundle)})
    assemble_image(
        lock=load_lock(image_session.debian_lock), runtime_lock=RUNTIME_LOCK, rootfs=build.directory / "rootfs.tar",
        python_layer=build.directory / "python.tar", spec=spec, context=ROOT,
        app_layer=work / "app.tar", archive=work / "image.oci.tar", source_date_epoch=SOURCE_DATE_EPOCH,
    )  # fmt: skip
    result = run_json("trustdial", "eif", "image", "--blobs", image_session.blobs, "--allow-unpinned-blobs",
                      "--image", work / "image.oci.tar", "--output", work / "enclave.eif", timeout=900)  # fmt: skip
    assert result["PCR2"] == _pcr2(work / "enclave.eif")
    (work / "image.oci.tar").unlink()  # a few hundred MB each
    (work / "enclave.eif").unlink()
    return str(result["PCR2"])


def _rewritten(directory: Path, meta: dict[str, str] | None = None) -> Path:
    manifest = read_manifest(directory)
    (directory / "bundle.json").unlink()
    write_manifest(directory, build_manifest(directory, meta if meta is not None else dict(manifest.meta)))
    return directory


def test_pcr2_follows_the_bundle_bytes(image_session: ImageSession, tmp_path: Path) -> None:
    session_pcr2 = image_session.builds[0].eif_result["PCR2"]
    same = shutil.copytree(LLM, tmp_path / "same")
    assert _rebuilt_pcr2(image_session, same, tmp_path / "eif-same") == session_pcr2  # the method reproduces it

    rng = random.Random(17)  # one weight byte, at a drawn offset of a drawn file, then the manifest rewritten
    weights = shutil.copytree(LLM, tmp_path / "weights")
    victim = rng.choice(sorted(weights.glob("model.onnx*")))  # the graph and its external weights
    data = bytearray(victim.read_bytes())
    offset = rng.randrange(len(data))
    data[offset] ^= 1 << rng.randrange(8)
    victim.write_bytes(bytes(data))
    _rewritten(weights)
    renamed = _rewritten(shutil.copytree(LLM, tmp_path / "renamed"), {**read_manifest(LLM).meta, "name": "tiny-b"})

    pcr2s = {"same": session_pcr2}
    for name, bundle in (("weights", weights), ("renamed", renamed)):
        assert verify_bundle(bundle).digest().hex() != TINY_DIGEST
        pcr2s[name] = _rebuilt_pcr2(image_session, bundle, tmp_path / f"eif-{name}")
    record_measurements({"pcr2_by_bundle": {**pcr2s, "weights_changed": f"{victim.name}@{offset}"}})
    assert len(set(pcr2s.values())) == 3, pcr2s


def test_a_bundle_that_does_not_match_its_manifest_is_refused_before_building(
    image_session: ImageSession, tmp_path: Path
) -> None:
    stale = shutil.copytree(LLM, tmp_path / "stale")
    with (stale / "model.onnx.data").open("r+b") as handle:
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0xFF]))
    done = subprocess.run(
        [str(BIN / "trustdial"), "image", "build", "--debian-lock", str(image_session.debian_lock),
         "--model", str(image_session.model), "--llm", str(stale), "--output-dir", str(tmp_path / "out"),
         "--cache", str(tmp_path / "cache"), "--source-date-epoch", str(SOURCE_DATE_EPOCH), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    report = json.loads(done.stdout)
    assert report["code"] == "EIF_BUILD_INPUT" and "BUNDLE_FILE_MISMATCH" in report["reason"], report
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def _make_dry_run(*args: str) -> str:
    make = shutil.which("make")
    assert make is not None
    done = subprocess.run([make, "-n", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_eif_passes_its_llm_bundle_to_both_routes(tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not built by make")
    chosen = _make_dry_run("eif", f"MODEL={model}", f"LLM={LLM}")
    assert f"--model {model} --llm {LLM} " in chosen
    assert "llm-deps" not in chosen and "ensure_bundle" not in chosen  # a chosen bundle is never built
    docker = _make_dry_run("eif-docker", f"MODEL={model}", f"LLM={LLM}")
    assert f"--build-arg MODEL={model} --build-arg LLM={LLM} " in docker
    default = _make_dry_run("eif", f"MODEL={model}")
    assert f"--model {model} --llm .cache/llm/smollm2-int4 " in default
    if not (ROOT / ".cache" / "llm" / "smollm2-int4").is_dir():  # the default bundle is built first when missing
        assert default.index("ensure_bundle") < default.index("trustdial image build")
