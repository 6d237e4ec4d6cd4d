"""A development enclave image for the hybrid demo, built without Docker or AWS blobs.

The kernel and the init ramdisk are SYNTHETIC development blobs, marked as such in their own
bytes, in the EIF metadata and in every report: the image cannot boot. What is real is the EIF
format, its PCRs (computed by the verifier's EIF reader), and the fact that the ``tee``
segments' ONNX files sit in the measured second ramdisk, so PCR2 changes with any model change.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trustdial_verifier.unstable.eif import measure_eif

from infra.image.cpio_writer import NewcWriter
from infra.image.eif_metadata import EifMetadata
from infra.image.eif_writer import write_eif

SYNTHETIC_MARKER = b"TRUSTDIAL SYNTHETIC DEVELOPMENT BLOB - NOT BOOTABLE - NOT FOR PRODUCTION\n"
CMDLINE = b"console=ttyS0 trustdial.synthetic_development_image=1"
ARCH = "x86_64"


@dataclass(frozen=True)
class DevImage:
    eif: Path
    pcrs: Mapping[str, str | None]
    synthetic: bool


def _synthetic_kernel(size: int = 64 * 1024) -> bytes:
    stream = bytearray(SYNTHETIC_MARKER)
    counter = 0
    while len(stream) < size:
        stream += hashlib.sha256(b"trustdial synthetic kernel %d" % counter).digest()
        counter += 1
    return bytes(stream[:size])


def _ramdisk(files: Mapping[str, bytes]) -> bytes:
    out = io.BytesIO()
    writer = NewcWriter(out)
    writer.add("trustdial", "dir", perm=0o755, mtime=0)
    writer.add(
        "trustdial/SYNTHETIC-DEVELOPMENT-IMAGE",
        "reg",
        perm=0o644,
        mtime=0,
        size=len(SYNTHETIC_MARKER),
        data=[SYNTHETIC_MARKER],
    )
    for name in sorted(files):
        data = files[name]
        writer.add(f"trustdial/{name}", "reg", perm=0o644, mtime=0, size=len(data), data=[data])
    writer.close()
    return out.getvalue()


def build_dev_image(
    models: Mapping[str, Path], directory: Path, *, circuits: Mapping[str, Path] | None = None
) -> DevImage:
    """Write ``directory/enclave-dev.eif`` holding ``models`` (name -> ONNX file) in its ramdisk, and
    the compiled circuits (name -> ezkl compiled circuit) of segments the enclave executes with their
    circuit's semantics (``tee+zk``)."""
    directory.mkdir(parents=True, exist_ok=True)
    kernel = directory / "synthetic-kernel.bin"
    kernel.write_bytes(_synthetic_kernel())
    bootstrap = directory / "synthetic-bootstrap.cpio"
    bootstrap.write_bytes(_ramdisk({"init": SYNTHETIC_MARKER}))
    customer = directory / "models.cpio"
    files = {f"models/{name}.onnx": path.read_bytes() for name, path in models.items()}
    files.update({f"circuits/{name}.compiled": path.read_bytes() for name, path in (circuits or {}).items()})
    customer.write_bytes(_ramdisk(files))
    metadata = EifMetadata(
        image_name="trustdial-dev-synthetic",
        image_version="0.1.0",
        custom_metadata={"synthetic_development_blobs": True, "warning": SYNTHETIC_MARKER.decode().strip()},
    )
    eif = directory / "enclave-dev.eif"
    write_eif(eif, kernel=kernel, cmdline=CMDLINE, ramdisks=[bootstrap, customer], arch=ARCH, metadata=metadata)
    return DevImage(eif=eif, pcrs=measure_eif(eif).pcrs(), synthetic=True)
