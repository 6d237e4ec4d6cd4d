"""The AWS Nitro Enclaves blobs directory (``/usr/share/nitro_enclaves/blobs`` from the
aws-nitro-enclaves-cli-devel package, or ``blobs/<arch>/`` of aws-nitro-enclaves-cli): kernel,
its config, cmdline, init, nsm.ko. Known releases are pinned by sha256; anything else is refused
unless explicitly allowed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from infra.image.errors import BuildError

DEFAULT_BLOBS_DIR = Path("/usr/share/nitro_enclaves/blobs")
KERNEL_NAMES = {"x86_64": "bzImage", "aarch64": "Image"}

# sha256 of init, nsm.ko, cmdline per known release (aws-nitro-enclaves-cli v1.5.0, blobs/<arch>/;
# the kernels are recorded upstream only as git blob ids, so they are identified by these files
# and reported by sha256 in the build output and manifest).
PINNED_RELEASES: dict[str, dict[str, str]] = {
    "nitro-cli-v1.5.0-x86_64": {
        "init": "755e650b732777b798cb9ec243ee402bef4826f789cf01a1e453bb724207c005",
        "nsm.ko": "48904e520db2541ca4378da29d85791749408febc81987ade56cc5c556bd90df",
        "cmdline": "10d7d9dd205d4596d45997d17434f26207525f129d171a51f9859b1af9f4a07a",
    },
    "nitro-cli-v1.5.0-aarch64": {
        "init": "c478b57a645ec594df9c355824f571bb684ca559d35ab380bb0cda81a0dc590d",
        "nsm.ko": "fa5475cbe0506ff3b7353b8ffa056da95eacd36626562f27326d73f384e8e49a",
        "cmdline": "e3a26db3f0375d58ed9756cb986a717a6286f38c6e54e82b457527467fc5ae4c",
    },
}


@dataclass(frozen=True)
class Blobs:
    arch: str
    kernel: Path
    init: Path
    nsm: Path
    cmdline: bytes  # trimmed as nitro-cli trims it
    release: str | None
    sha256: dict[str, str]
    kernel_config_line: str | None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_blobs(directory: Path, arch: str, *, allow_unpinned: bool = False) -> Blobs:
    if arch not in KERNEL_NAMES:
        raise BuildError("EIF_BUILD_INPUT", f"unknown architecture {arch!r}")
    kernel = directory / KERNEL_NAMES[arch]
    files = {
        "kernel": kernel,
        "init": directory / "init",
        "nsm.ko": directory / "nsm.ko",
        "cmdline": directory / "cmdline",
    }
    for name, path in files.items():
        if not path.is_file():
            raise BuildError("BLOB_MISSING", f"blob {name} not found at {path}")
    sha = {name: _sha256(path) for name, path in files.items()}
    release = next(
        (r for r, pins in PINNED_RELEASES.items() if r.endswith(arch) and all(sha[k] == v for k, v in pins.items())),
        None,
    )
    if release is None and not allow_unpinned:
        raise BuildError(
            "BLOB_UNPINNED",
            f"blobs in {directory} match no pinned release ({', '.join(PINNED_RELEASES)}): init {sha['init']}, "
            f"nsm.ko {sha['nsm.ko']}, cmdline {sha['cmdline']}; pass --allow-unpinned-blobs to use them anyway",
        )
    config = kernel.with_name(kernel.name + ".config")
    config_line = None
    if config.is_file():
        lines = config.read_text(encoding="utf-8", errors="replace").splitlines()
        config_line = lines[2] if len(lines) > 2 else None
    return Blobs(
        arch, kernel, files["init"], files["nsm.ko"], files["cmdline"].read_bytes().strip(), release, sha, config_line
    )


def os_and_kernel_version(config_line: str | None) -> tuple[str, str]:
    """nitro-cli's reading of line 3 of the kernel config: '# Linux/x86_64 4.14.256-... Kernel Configuration'."""
    if not config_line:
        return "OS", "kernel"
    import re

    words = [w for w in re.split(r"[ /-]", config_line)]
    if len(words) < 4:
        return "OS", "kernel"
    return words[1], words[3]
