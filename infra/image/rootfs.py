"""The enclave's root filesystem from Debian's packages with mmdebstrap, fed only the .debs of
the package lock (a flat repository of exactly those files), with ``SOURCE_DATE_EPOCH`` fixed
and documentation, manual pages and translations excluded (copyright files are kept).

After the build, the installed package set is read from the new root's dpkg database and must
equal the lock: a missing dependency, an extra package or another version is
``DEBIAN_LOCK_MISMATCH``."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from infra.image.debian_lock import DebianLock
from infra.image.errors import BuildError

# libstdc++6 must be named: without it numpy and onnxruntime fail to import.
ROOTFS_INCLUDE: tuple[str, ...] = ("python3", "python-is-python3", "libstdc++6", "ca-certificates")
DPKG_OPTIONS: tuple[str, ...] = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/lintian/*",
    "force-unsafe-io",  # no fsync per file: the output is a tar written afterwards, the bytes are the same
)
MMDEBSTRAP_TIMEOUT_S = 1200


def mmdebstrap_command(lock: DebianLock, repository: Path, output: Path, installed_list: Path) -> list[str]:
    query = "dpkg-query --admindir=\"$1/var/lib/dpkg\" -W -f='${Package}\\t${Version}\\t${Architecture}\\n' > " + str(
        installed_list
    )
    # the build's own flat repository would otherwise be named in the image (a path of this machine)
    sources = " ".join(shlex.quote(f"deb {s.uri} {s.suite} {' '.join(s.components)}") for s in lock.sources)
    write_sources = f'printf "%s\\n" {sources} > "$1/etc/apt/sources.list"'
    return [
        "mmdebstrap",
        "--mode=root",
        f"--variant={lock.variant}",
        f"--architectures={lock.arch}",
        f"--include={','.join(lock.include)}",
        *(f"--dpkgopt={option}" for option in DPKG_OPTIONS),
        f"--customize-hook={query}",
        f"--customize-hook={write_sources}",
        "--format=tar",
        "--quiet",
        lock.suite,
        str(output),
        f"deb [trusted=yes] copy://{repository.resolve()} ./",
    ]


def build_rootfs(lock: DebianLock, repository: Path, output: Path, *, source_date_epoch: int, workdir: Path) -> float:
    """Write the rootfs tar to ``output``; returns the seconds mmdebstrap took."""
    if shutil.which("mmdebstrap") is None:
        raise BuildError("DEBIAN_TOOL_MISSING", "mmdebstrap is not installed: apt-get install mmdebstrap")
    if os.geteuid() != 0:
        raise BuildError("DEBIAN_TOOL_MISSING", "mmdebstrap --mode=root needs root")
    installed_list = workdir / "installed.txt"
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    command = mmdebstrap_command(lock, repository, partial, installed_list)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(source_date_epoch), "LC_ALL": "C.UTF-8", "TMPDIR": str(workdir)}
    sys.stderr.write(f"rootfs: mmdebstrap --variant={lock.variant} from {len(lock.packages)} locked packages...\n")
    started = time.monotonic()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=MMDEBSTRAP_TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        partial.unlink(missing_ok=True)
        raise BuildError("ROOTFS_BUILD_FAILED", f"mmdebstrap did not finish within {MMDEBSTRAP_TIMEOUT_S} s") from err
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise BuildError("ROOTFS_BUILD_FAILED", f"mmdebstrap failed (exit {done.returncode}):\n{tail}")
    check_installed(lock, installed_list)
    os.replace(partial, output)
    sys.stderr.write(f"rootfs: {output} in {elapsed:.0f} s\n")
    return elapsed


def check_installed(lock: DebianLock, installed_list: Path) -> None:
    installed = {}
    for line in installed_list.read_text().splitlines():
        name, version, arch = line.split("\t")
        installed[name] = (version, arch)
    locked = {p.name: (p.version, p.arch) for p in lock.packages}
    problems = [f"{n} {v[0]} is installed but not locked" for n, v in sorted(installed.items()) if n not in locked]
    problems += [f"{n} is locked but not installed" for n in sorted(locked) if n not in installed]
    problems += [
        f"{n} installed as {installed[n][0]} ({installed[n][1]}), locked as {v[0]} ({v[1]})"
        for n, v in sorted(locked.items())
        if n in installed and installed[n] != v
    ]
    if problems:
        raise BuildError("DEBIAN_LOCK_MISMATCH", "the rootfs does not hold exactly the locked packages: "
                         + "; ".join(problems[:10]))  # fmt: skip
