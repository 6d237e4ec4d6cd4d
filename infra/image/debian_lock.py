"""The Debian package lock: exactly which .debs (name, version, arch, pool path, sha256, size)
go into the enclave's root filesystem, and from which sources they were resolved.

* :func:`resolve_lock` asks apt, in a private state directory (nothing of the host's apt state is
  read or changed), what a ``--variant=essential`` bootstrap with the given extra packages would
  install today, and records each package's SHA256 from the signed suite indexes.
* :func:`fetch_locked` brings exactly the locked files into a cache (kept by sha256, so it can be
  shared between builds), refusing any whose digest differs, and failing with
  ``DEBIAN_PACKAGE_UNAVAILABLE`` naming the package when Debian no longer serves that version.
* :func:`write_flat_repository` turns the fetched files into a flat apt repository, the only
  source mmdebstrap is given, so the build cannot drift to a newer version.

The lock file is canonical JSON (sorted keys, two-space indent, trailing newline); its sha256 is
what the measurement manifest records.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infra.image.atomic_output import atomic_output
from infra.image.errors import BuildError

LOCK_SCHEMA = "trustdial.debian-lock/v1"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
SHA256 = re.compile(r"[0-9a-f]{64}")
NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
DOWNLOAD_TIMEOUT_S = 120


@dataclass(frozen=True)
class DebianSource:
    uri: str  # e.g. http://deb.debian.org/debian
    suite: str
    components: tuple[str, ...] = ("main",)

    def sources_line(self, keyring: Path) -> str:
        return f"deb [signed-by={keyring}] {self.uri} {self.suite} {' '.join(self.components)}"


BOOKWORM_SOURCES: tuple[DebianSource, ...] = (
    DebianSource("http://deb.debian.org/debian", "bookworm"),
    DebianSource("http://deb.debian.org/debian", "bookworm-updates"),
    DebianSource("http://deb.debian.org/debian-security", "bookworm-security"),
)


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    arch: str
    source: str  # the uri of the DebianSource that serves it
    path: str  # pool path below ``source`` (the index's Filename)
    sha256: str
    size: int

    @property
    def url(self) -> str:
        return f"{self.source.rstrip('/')}/{urllib.parse.quote(self.path)}"

    @property
    def label(self) -> str:
        return f"{self.name}={self.version} ({self.arch})"


@dataclass(frozen=True)
class DebianLock:
    suite: str
    arch: str
    variant: str  # mmdebstrap variant ("essential", or "none": the named packages only)
    include: tuple[str, ...]
    sources: tuple[DebianSource, ...]
    packages: tuple[LockedPackage, ...] = field(default=())

    def to_bytes(self) -> bytes:
        document: dict[str, Any] = {
            "schema": LOCK_SCHEMA,
            "suite": self.suite,
            "arch": self.arch,
            "variant": self.variant,
            "include": list(self.include),
            "sources": [{**asdict(s), "components": list(s.components)} for s in self.sources],
            "packages": [asdict(p) for p in sorted(self.packages, key=lambda p: (p.name, p.arch))],
        }
        return (json.dumps(document, sort_keys=True, indent=2) + "\n").encode()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()


def _bad_lock(path: Path, reason: str) -> BuildError:
    return BuildError("DEBIAN_LOCK_INVALID", f"{path}: {reason}")


def load_lock(path: Path) -> DebianLock:
    """Read and validate a lock file; anything unexpected is ``DEBIAN_LOCK_INVALID``."""
    try:
        raw = path.read_bytes()
        document = json.loads(raw)
    except OSError as err:
        raise BuildError("DEBIAN_LOCK_INVALID", f"cannot read the Debian package lock {path}: {err}") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _bad_lock(path, f"not JSON: {err}") from err
    if not isinstance(document, dict) or document.get("schema") != LOCK_SCHEMA:
        raise _bad_lock(path, f"not a {LOCK_SCHEMA} document")
    try:
        sources = tuple(DebianSource(s["uri"], s["suite"], tuple(s["components"])) for s in document["sources"])
        packages = tuple(LockedPackage(**p) for p in document["packages"])
        lock = DebianLock(
            suite=str(document["suite"]),
            arch=str(document["arch"]),
            variant=str(document["variant"]),
            include=tuple(str(i) for i in document["include"]),
            sources=sources,
            packages=packages,
        )
    except (KeyError, TypeError) as err:
        raise _bad_lock(path, f"missing or malformed field: {err}") from err
    uris = {s.uri for s in sources}
    for p in packages:
        if not (isinstance(p.name, str) and NAME.fullmatch(p.name)):
            raise _bad_lock(path, f"bad package name {p.name!r}")
        if not (isinstance(p.sha256, str) and SHA256.fullmatch(p.sha256)):
            raise _bad_lock(path, f"{p.name}: sha256 must be 64 lowercase hex digits")
        if not isinstance(p.size, int) or isinstance(p.size, bool) or p.size <= 0:
            raise _bad_lock(path, f"{p.name}: size must be a positive integer")
        if p.source not in uris:
            raise _bad_lock(path, f"{p.name}: source {p.source!r} is not one of the lock's sources")
        if not p.path.startswith("pool/") or ".." in p.path.split("/"):
            raise _bad_lock(path, f"{p.name}: path {p.path!r} is not below pool/")
    if lock.to_bytes() != raw:
        raise _bad_lock(path, "not in canonical form (regenerate it with `make debian-lock`)")
    return lock


# --- resolving ---


def _apt_root(workdir: Path, sources: Sequence[DebianSource], arch: str, keyring: Path) -> dict[str, str]:
    for sub in ("etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/trusted.gpg.d", "var/lib/apt/lists/partial",
                "var/cache/apt/archives/partial", "var/lib/dpkg"):  # fmt: skip
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    (workdir / "var/lib/dpkg/status").write_bytes(b"")
    (workdir / "etc/apt/sources.list").write_text("".join(s.sources_line(keyring) + "\n" for s in sources))
    conf = workdir / "apt.conf"
    conf.write_text(
        f'Dir "{workdir}/";\n'
        f'Dir::State::status "{workdir}/var/lib/dpkg/status";\n'
        f'APT::Architecture "{arch}";\n'
        f'APT::Architectures {{ "{arch}"; }};\n'
        'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
        'Acquire::Languages "none";\nAcquire::GzipIndexes "false";\n'
    )
    return {**os.environ, "APT_CONFIG": str(conf), "LC_ALL": "C.UTF-8"}


def _run(command: Sequence[str], env: dict[str, str], what: str, timeout: float = 600) -> str:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as err:
        raise BuildError("DEBIAN_TOOL_MISSING", f"{command[0]} not found ({what}); install apt") from err
    except subprocess.TimeoutExpired as err:
        raise BuildError("DEBIAN_RESOLVE_FAILED", f"{what} did not finish within {timeout:.0f} s") from err
    if done.returncode != 0:
        raise BuildError("DEBIAN_RESOLVE_FAILED", f"{what} failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def parse_index(text: str) -> Iterable[dict[str, str]]:
    """Stanzas of a Packages index (continuation lines are kept joined by newlines)."""
    for block in text.split("\n\n"):
        stanza: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key is not None:
                stanza[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                stanza[key] = value.strip()
        if "Package" in stanza:
            yield stanza


def _index_files(lists: Path, source: DebianSource) -> list[Path]:
    host_path = source.uri.split("://", 1)[1].rstrip("/").replace("/", "_")
    prefix = f"{host_path}_dists_{source.suite}_"
    return sorted(p for p in lists.iterdir() if p.name.startswith(prefix) and p.name.endswith("_Packages"))


def resolve_lock(
    *,
    include: Sequence[str],
    variant: str,
    suite: str = "bookworm",
    arch: str = "amd64",
    sources: Sequence[DebianSource] = BOOKWORM_SOURCES,
    workdir: Path,
    keep: re.Pattern[str] | None = None,
    keyring: Path = DEBIAN_KEYRING,
) -> DebianLock:
    """What Debian serves today for ``variant`` (``essential``: every ``Essential: yes`` package
    plus ``include`` and their dependencies, as mmdebstrap installs them; ``none``: ``include``
    resolved with dependencies, keeping only names matching ``keep``)."""
    if variant not in ("essential", "none"):
        raise BuildError("DEBIAN_RESOLVE_FAILED", f"unknown variant {variant!r}")
    if not keyring.is_file():
        raise BuildError("DEBIAN_TOOL_MISSING", f"Debian's archive keyring {keyring} is missing: apt-get install "
                         "debian-archive-keyring")  # fmt: skip
    env = _apt_root(workdir, sources, arch, keyring)
    sys.stderr.write(f"debian lock: apt-get update for {', '.join(s.suite for s in sources)}...\n")
    _run(["apt-get", "update", "-q"], env, "apt-get update", timeout=300)
    lists = workdir / "var/lib/apt/lists"
    by_filename: dict[str, tuple[DebianSource, dict[str, str]]] = {}
    essential: set[str] = set()
    for source in sources:
        files = _index_files(lists, source)
        if not files:
            raise BuildError("DEBIAN_RESOLVE_FAILED", f"apt fetched no Packages index for {source.uri} {source.suite}")
        for index in files:
            for stanza in parse_index(index.read_text(encoding="utf-8", errors="replace")):
                by_filename.setdefault(stanza["Filename"], (source, stanza))
                if stanza.get("Essential") == "yes":
                    essential.add(stanza["Package"])
    wanted = sorted(essential) + list(include) if variant == "essential" else list(include)
    sys.stderr.write(f"debian lock: resolving {len(wanted)} packages with apt...\n")
    out = _run(["apt-get", "install", "--print-uris", "-qq", "-y", *wanted], env, "apt-get install --print-uris")
    packages = []
    for line in out.splitlines():
        if not line.startswith("'"):
            continue
        url = line.split("'", 2)[1]
        origin = next((s for s in sources if url.startswith(s.uri.rstrip("/") + "/")), None)
        if origin is None:
            raise BuildError("DEBIAN_RESOLVE_FAILED", f"apt chose {url}, which is none of the lock's sources")
        pool_path = urllib.parse.unquote(url[len(origin.uri.rstrip("/")) + 1 :])
        entry = by_filename.get(pool_path)
        if entry is None or entry[0].uri != origin.uri:
            raise BuildError("DEBIAN_RESOLVE_FAILED", f"{pool_path} is in no index of {origin.uri}")
        stanza = entry[1]
        if keep is not None and not keep.fullmatch(stanza["Package"]):
            continue
        packages.append(
            LockedPackage(
                name=stanza["Package"],
                version=stanza["Version"],
                arch=stanza["Architecture"],
                source=origin.uri,
                path=pool_path,
                sha256=stanza["SHA256"],
                size=int(stanza["Size"]),
            )
        )
    if not packages:
        raise BuildError("DEBIAN_RESOLVE_FAILED", f"apt resolved nothing for {wanted}")
    return DebianLock(suite, arch, variant, tuple(include), tuple(sources), tuple(packages))


# --- fetching ---


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def cached_path(cache: Path, package: LockedPackage) -> Path:
    return cache / f"{package.name}_{package.sha256[:16]}_{package.arch}.deb"


def fetch_locked(lock: DebianLock, cache: Path, *, mirror: dict[str, str] | None = None) -> list[Path]:
    """Every locked .deb, from ``cache`` when it holds the exact bytes, else downloaded (``mirror``
    maps a lock source uri to another base, e.g. a snapshot). Each file's sha256 is checked."""
    cache.mkdir(parents=True, exist_ok=True)
    paths = []
    fetched = 0
    for p in sorted(lock.packages, key=lambda p: (p.name, p.arch)):
        target = cached_path(cache, p)
        if target.is_file() and _file_sha256(target) == p.sha256:
            paths.append(target)
            continue
        base = (mirror or {}).get(p.source, p.source)
        url = f"{base.rstrip('/')}/{urllib.parse.quote(p.path)}"
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as answer, atomic_output(target) as out:
                shutil.copyfileobj(answer, out, 1 << 20)
        except urllib.error.HTTPError as err:
            if err.code in (404, 410):
                raise BuildError(
                    "DEBIAN_PACKAGE_UNAVAILABLE",
                    f"locked package {p.label} is no longer served at {url} (HTTP {err.code}): Debian has replaced "
                    "this version; refresh the lock with `make debian-lock` (and review the change), or fetch it "
                    "from a snapshot that still holds it (trustdial image build --mirror SOURCE=SNAPSHOT_URL)",
                ) from err
            raise BuildError("DEBIAN_FETCH_FAILED", f"downloading {p.label} from {url}: HTTP {err.code}") from err
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            raise BuildError("DEBIAN_FETCH_FAILED", f"downloading {p.label} from {url}: {err}") from err
        found = _file_sha256(target)
        if found != p.sha256:
            target.unlink()
            raise BuildError(
                "DEBIAN_PACKAGE_MISMATCH", f"{url} ({p.label}) has sha256 {found}, the lock says {p.sha256}"
            )
        fetched += 1
        paths.append(target)
    sys.stderr.write(f"debian lock: {len(paths)} packages ready ({fetched} downloaded, {len(paths) - fetched} "
                     "from the cache)\n")  # fmt: skip
    return paths


def write_flat_repository(lock: DebianLock, debs: Sequence[Path], directory: Path) -> Path:
    """A flat apt repository (``Packages`` + ``Release``) holding exactly ``debs``; returns its
    directory. The index stanzas are the packages' own control fields plus Filename/Size/SHA256."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    stanzas = []
    for p, deb in zip(sorted(lock.packages, key=lambda p: (p.name, p.arch)), debs, strict=True):
        name = f"{p.name}_{p.sha256[:16]}_{p.arch}.deb"
        try:
            os.link(deb, directory / name)
        except OSError:
            shutil.copyfile(deb, directory / name)
        control = _run(["dpkg-deb", "--field", str(deb)], dict(os.environ), f"dpkg-deb --field {deb.name}")
        fields = dict(_control_fields(control))
        if (fields.get("Package"), fields.get("Version"), fields.get("Architecture")) != (p.name, p.version, p.arch):
            raise BuildError("DEBIAN_PACKAGE_MISMATCH", f"{deb} does not hold {p.label}")
        stanzas.append(control.rstrip("\n") + f"\nFilename: ./{name}\nSize: {p.size}\nSHA256: {p.sha256}\n")
    packages = "\n".join(stanzas).encode()
    (directory / "Packages").write_bytes(packages)
    (directory / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
    release = (
        f"Suite: {lock.suite}\nArchitectures: {lock.arch}\nSHA256:\n"
        f" {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n"
    )
    (directory / "Release").write_text(release)
    return directory


def _control_fields(control: str) -> Iterable[tuple[str, str]]:
    for stanza in parse_index(control):
        yield from stanza.items()
