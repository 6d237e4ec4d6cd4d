"""The DEV/TEST blob set: a stand-in for AWS's Nitro Enclaves blobs, which cannot be obtained
here, so that `make eif` and the publication path run and the EIF can be booted under qemu.

    bzImage          Debian's kernel (linux-image-*-amd64, pinned by dev_init/kernel.lock)
    bzImage.config   its configuration (nitro-cli reads OS and version from line 3)
    init             dev_init/init.c compiled with gcc -static (not AWS's init: no vsock heartbeat)
    nsm.ko           the e1000 NIC driver of that kernel, where AWS's blob set has the NSM driver
    cmdline          serial console, power off on panic, and a marker naming the set

An EIF built from these blobs has the same PCR2 as one built from AWS's (PCR2 covers the customer
ramdisk only) and different PCR0/PCR1. It can never pass for a production EIF: its blobs match
no pinned release (``trustdial eif image`` refuses them without --allow-unpinned-blobs) and its
cmdline carries ``trustdial.blobs=DEV-TEST-NOT-AWS``."""

from __future__ import annotations

import lzma
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from infra.image.debian_lock import DebianLock, fetch_locked
from infra.image.errors import BuildError

DEV_INIT_DIR = Path(__file__).resolve().parent / "dev_init"
KERNEL_LOCK = DEV_INIT_DIR / "kernel.lock"
KERNEL_INCLUDE = ("linux-image-amd64",)
KERNEL_PACKAGE = re.compile(r"linux-image-[0-9][0-9.]*-[0-9]+-amd64")
DEV_CMDLINE = "console=ttyS0 reboot=k panic=-1 loglevel=4 trustdial.blobs=DEV-TEST-NOT-AWS"
MARKER = "DEV-TEST-NOT-AWS.txt"
NIC_MODULE = "kernel/drivers/net/ethernet/intel/e1000/e1000.ko"


def _tool(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except FileNotFoundError as err:
        raise BuildError("DEV_BLOBS_FAILED", f"{command[0]} not found ({what})") from err
    if done.returncode != 0:
        raise BuildError("DEV_BLOBS_FAILED", f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")


def compile_init(output: Path) -> None:
    if shutil.which("gcc") is None:
        raise BuildError("DEV_BLOBS_FAILED", "gcc is not installed: apt-get install gcc libc6-dev")
    _tool(["gcc", "-static", "-O2", "-Wall", "-Werror", "-Wl,--build-id=none", f"-ffile-prefix-map={DEV_INIT_DIR}=.",
           "-o", str(output), str(DEV_INIT_DIR / "init.c")], "gcc -static init.c")  # fmt: skip


def build_dev_blobs(lock: DebianLock, cache: Path, output: Path, *, workdir: Path) -> Path:
    (deb,) = fetch_locked(lock, cache) if len(lock.packages) == 1 else (None,)
    if deb is None:
        raise BuildError("DEV_BLOBS_FAILED", "the kernel lock must hold exactly one package")
    extracted = workdir / "kernel"
    shutil.rmtree(extracted, ignore_errors=True)
    sys.stderr.write(f"dev blobs: dpkg-deb -x {deb.name}...\n")
    _tool(["dpkg-deb", "-x", str(deb), str(extracted)], "dpkg-deb -x")
    kernels = sorted((extracted / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise BuildError("DEV_BLOBS_FAILED", f"{deb.name} holds {len(kernels)} kernels, expected one")
    version = kernels[0].name.removeprefix("vmlinuz-")
    modules = extracted / "lib/modules" / version
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    shutil.copyfile(kernels[0], output / "bzImage")
    shutil.copyfile(extracted / "boot" / f"config-{version}", output / "bzImage.config")
    nic = modules / NIC_MODULE
    if nic.is_file():
        shutil.copyfile(nic, output / "nsm.ko")
    elif nic.with_name(nic.name + ".xz").is_file():
        (output / "nsm.ko").write_bytes(lzma.decompress(nic.with_name(nic.name + ".xz").read_bytes()))
    else:
        raise BuildError("DEV_BLOBS_FAILED", f"{deb.name} has no {NIC_MODULE}")
    compile_init(output / "init")
    (output / "cmdline").write_text(DEV_CMDLINE + "\n")
    (output / MARKER).write_text(
        "DEV/TEST blob set built by `trustdial image dev-blobs`: Debian kernel "
        f"{version}, trustdial's test init, the e1000 driver as nsm.ko.\nNOT AWS's Nitro Enclaves blobs: PCR0 and "
        "PCR1 of an EIF built from them are not those of a production EIF (PCR2 is the same).\n"
    )
    for name in ("bzImage", "init", "nsm.ko"):
        os.chmod(output / name, 0o755 if name == "init" else 0o644)
    shutil.rmtree(extracted, ignore_errors=True)
    return output
