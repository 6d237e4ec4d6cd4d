"""Boot an EIF's own sections under qemu (TCG): its kernel, its cmdline and its ramdisks in file
order, followed by one TEST-ONLY ramdisk that replaces ``/cmd`` and ``/env`` (the kernel unpacks
later archives over earlier ones) and adds ``/rootfs/test/``. The EIF's ramdisks reach the guest
byte for byte; the test ramdisk only changes the flags of the same command (listen on tcp, the
simulated NSM).

The guest's only network is qemu's user-mode stack with ``restrict=on`` (no way out) and one
forward from 127.0.0.1 on the host to guest port 5000. ttyS0 (the console) goes to a file,
ttyS1 to another (the simulated NSM writes its root certificate there)."""

from __future__ import annotations

import io
import json
import socket
import struct
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.image.cpio_writer import NewcWriter

GUEST_PORT = 5000
KERNEL, CMDLINE, RAMDISK = 1, 2, 3
QEMU_ACCEL = ["-accel", "tcg,thread=multi", "-cpu", "max", "-m", "2048", "-smp", "2"]


def eif_sections(eif: Path) -> list[tuple[int, bytes]]:
    """(type, data) of every section, in file order (the 548-byte header, then ``>HHQ`` + data each)."""
    data = eif.read_bytes()
    sections, pos = [], 548
    while pos < len(data):
        kind, _flags, size = struct.unpack(">HHQ", data[pos : pos + 12])
        sections.append((kind, data[pos + 12 : pos + 12 + size]))
        pos += 12 + size
    return sections


def override_ramdisk(cmd: Sequence[str], files: dict[str, bytes], env: Sequence[str] | None = None) -> bytes:
    """A newc archive replacing ``cmd`` (and ``env`` when given) and adding ``rootfs/test/<name>`` files."""
    out = io.BytesIO()
    writer = NewcWriter(out)
    cmd_bytes = "".join(f"{a}\n" for a in cmd).encode()
    writer.add("cmd", "reg", perm=0o644, mtime=0, size=len(cmd_bytes), data=[cmd_bytes])
    if env is not None:
        env_bytes = "".join(f"{e}\n" for e in env).encode()
        writer.add("env", "reg", perm=0o644, mtime=0, size=len(env_bytes), data=[env_bytes])
    writer.add("rootfs/test", "dir", perm=0o755, mtime=0)
    for name, content in files.items():
        writer.add(f"rootfs/test/{name}", "reg", perm=0o644, mtime=0, size=len(content), data=[content])
    writer.close()
    return out.getvalue()


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Guest:
    process: subprocess.Popen[bytes]
    port: int
    console: Path
    ttys1: Path
    started: float

    def console_text(self) -> str:
        return self.console.read_text(errors="replace") if self.console.exists() else ""

    def wait_for_listening(self, timeout: float) -> tuple[dict[str, object], float]:
        """The serve command's ready line from the console, and the seconds since qemu started. Only whole
        lines count: the console file is read while the guest is still writing it, so its last line may be cut."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.console_text().split("\n")[:-1]:
                start = line.find('{"event": "listening"')
                if start >= 0:
                    return json.loads(line[start:]), time.monotonic() - self.started
            if self.process.poll() is not None:
                status = self.process.returncode
                raise RuntimeError(f"qemu exited ({status}) before serving:\n{self.console_text()[-4000:]}")
            time.sleep(0.5)
        raise TimeoutError(f"the guest was not serving after {timeout:.0f} s:\n{self.console_text()[-4000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)


def boot(eif: Path, extra_ramdisk: bytes, workdir: Path, qemu: str = "qemu-system-x86_64") -> Guest:
    sections = eif_sections(eif)
    kernel = next(d for k, d in sections if k == KERNEL)
    cmdline = next(d for k, d in sections if k == CMDLINE).decode()
    (workdir / "bzImage").write_bytes(kernel)
    with (workdir / "initrd").open("wb") as initrd:
        for kind, data in sections:
            if kind == RAMDISK:
                initrd.write(data)
        initrd.write(extra_ramdisk)
    port = free_loopback_port()
    console, ttys1 = workdir / "console.log", workdir / "ttyS1.log"
    command = [
        qemu, *QEMU_ACCEL, "-display", "none", "-monitor", "none", "-no-reboot",
        "-serial", f"file:{console}", "-serial", f"file:{ttys1}",
        "-kernel", str(workdir / "bzImage"), "-initrd", str(workdir / "initrd"), "-append", cmdline,
        "-nic", f"user,model=e1000,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:{GUEST_PORT}",
    ]  # fmt: skip
    with (workdir / "qemu.stderr").open("wb") as stderr:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                   start_new_session=True)  # fmt: skip
    return Guest(process, port, console, ttys1, time.monotonic())
