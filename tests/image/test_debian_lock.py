"""The Debian package lock: a locked file that Debian no longer serves, or serves with other bytes, fails with a
typed error naming the package (against a loopback HTTP server standing in for the mirror); a malformed or
hostile lock is refused before anything is fetched; a rootfs whose installed set differs from the lock is
refused. No tools or network needed."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from infra.image.debian_lock import BOOKWORM_SOURCES, DebianLock, LockedPackage, fetch_locked, load_lock
from infra.image.errors import BuildError
from infra.image.rootfs import check_installed

ROOT = Path(__file__).resolve().parents[2]
CONTENT = b"!<arch>\nnot really a deb, but bytes with a known digest\n"


class _Mirror(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror() -> Iterator[tuple[str, dict[str, bytes]]]:
    files: dict[str, bytes] = {}
    handler = type("Mirror", (_Mirror,), {"files": files})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/debian", files
    finally:
        server.shutdown()
        server.server_close()


def _lock(sha256: str = hashlib.sha256(CONTENT).hexdigest()) -> DebianLock:
    package = LockedPackage("libfoo1", "1.2-3+deb12u4", "amd64", BOOKWORM_SOURCES[0].uri,
                            "pool/main/f/foo/libfoo1_1.2-3+deb12u4_amd64.deb", sha256, len(CONTENT))  # fmt: skip
    return DebianLock("bookworm", "amd64", "essential", ("python3",), BOOKWORM_SOURCES, (package,))


def test_a_locked_file_is_fetched_checked_and_then_taken_from_the_cache(
    mirror: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    base, files = mirror
    files["/debian/pool/main/f/foo/libfoo1_1.2-3%2Bdeb12u4_amd64.deb"] = CONTENT
    (deb,) = fetch_locked(_lock(), tmp_path, mirror={BOOKWORM_SOURCES[0].uri: base})
    assert deb.read_bytes() == CONTENT
    files.clear()  # the mirror forgets it: the cache still serves the exact bytes
    assert fetch_locked(_lock(), tmp_path, mirror={BOOKWORM_SOURCES[0].uri: base}) == [deb]


def test_a_version_debian_no_longer_serves_fails_naming_the_package(
    mirror: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    base, _ = mirror
    with pytest.raises(BuildError) as caught:
        fetch_locked(_lock(), tmp_path, mirror={BOOKWORM_SOURCES[0].uri: base})
    assert caught.value.code == "DEBIAN_PACKAGE_UNAVAILABLE"
    assert "libfoo1=1.2-3+deb12u4 (amd64)" in caught.value.reason and "make debian-lock" in caught.value.reason
    assert list(tmp_path.iterdir()) == []


def test_other_bytes_under_the_locked_name_are_refused_and_not_kept(
    mirror: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    base, files = mirror
    files["/debian/pool/main/f/foo/libfoo1_1.2-3%2Bdeb12u4_amd64.deb"] = CONTENT + b"tampered"
    with pytest.raises(BuildError) as caught:
        fetch_locked(_lock(), tmp_path, mirror={BOOKWORM_SOURCES[0].uri: base})
    assert caught.value.code == "DEBIAN_PACKAGE_MISMATCH" and "libfoo1" in caught.value.reason
    assert list(tmp_path.iterdir()) == []


def test_the_committed_lock_is_canonical_and_complete() -> None:
    lock = load_lock(ROOT / "infra" / "image" / "enclave" / "debian.lock")
    names = {p.name for p in lock.packages}
    assert {"python3", "python-is-python3", "libstdc++6", "ca-certificates", "libc6", "dpkg"} <= names
    assert {s.suite for s in lock.sources} == {"bookworm", "bookworm-updates", "bookworm-security"}
    kernel = load_lock(ROOT / "infra" / "image" / "dev_init" / "kernel.lock")
    assert len(kernel.packages) == 1 and kernel.packages[0].name.startswith("linux-image-6.1.0-")


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"path": "pool/../../etc/shadow"}, "not below pool/"),
        ({"path": "dists/bookworm/Release"}, "not below pool/"),
        ({"sha256": "AB" * 32}, "sha256"),
        ({"size": 0}, "size"),
        ({"source": "http://evil.example/debian"}, "not one of the lock's sources"),
        ({"name": "../x"}, "bad package name"),
    ],
)
def test_a_malformed_lock_is_refused(tmp_path: Path, change: dict[str, object], needle: str) -> None:
    lock = _lock()
    bad = replace(lock, packages=(replace(lock.packages[0], **change),))  # type: ignore[arg-type]
    (tmp_path / "debian.lock").write_bytes(bad.to_bytes())
    with pytest.raises(BuildError) as caught:
        load_lock(tmp_path / "debian.lock")
    assert caught.value.code == "DEBIAN_LOCK_INVALID" and needle in caught.value.reason


def test_a_lock_not_in_canonical_form_is_refused(tmp_path: Path) -> None:
    (tmp_path / "debian.lock").write_bytes(_lock().to_bytes().replace(b"  ", b"   "))
    with pytest.raises(BuildError, match="canonical"):
        load_lock(tmp_path / "debian.lock")


@pytest.mark.parametrize(
    ("installed", "needle"),
    [
        ("libfoo1\t1.2-3+deb12u5\tamd64\n", "installed as 1.2-3+deb12u5"),
        ("libfoo1\t1.2-3+deb12u4\tamd64\nlibbar2\t1\tamd64\n", "libbar2 1 is installed but not locked"),
        ("", "libfoo1 is locked but not installed"),
    ],
)
def test_a_rootfs_that_does_not_hold_exactly_the_lock_is_refused(tmp_path: Path, installed: str, needle: str) -> None:
    (tmp_path / "installed.txt").write_text(installed)
    with pytest.raises(BuildError) as caught:
        check_installed(_lock(), tmp_path / "installed.txt")
    assert caught.value.code == "DEBIAN_LOCK_MISMATCH" and needle in caught.value.reason


def test_mmdebstrap_is_given_only_the_flat_repository_by_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.image.rootfs import mmdebstrap_command

    monkeypatch.chdir(tmp_path)
    command = mmdebstrap_command(_lock(), Path("build/repository"), Path("out.tar"), Path("installed.txt"))
    sources = [word for word in command if word.startswith("deb ")]
    assert sources == [f"deb [trusted=yes] copy://{tmp_path}/build/repository ./"]
    assert "--variant=essential" in command and "--include=python3" in command
