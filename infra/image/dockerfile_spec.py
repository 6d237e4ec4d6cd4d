"""The parts of Dockerfile.enclave that the Docker-free build reproduces, read from the file so
both routes share one definition: ``ARG`` defaults, ``ENV``, ``WORKDIR``, ``CMD`` (JSON form)
and the ``COPY --chmod=MODE SRC DST`` lines that place the application under ``/app``.

Only the forms Dockerfile.enclave uses are accepted; anything else is ``DOCKERFILE_UNSUPPORTED``,
so a change to the Dockerfile cannot be silently ignored by the Docker-free route."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from infra.image.errors import BuildError

APP_PREFIX = "/app/"
# COPY destinations the Docker route uses only while building (its RUN deletes them again)
BUILD_ONLY = frozenset({"/tmp/requirements.lock"})
IGNORED = frozenset({"FROM", "RUN"})
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Copy:
    source: str  # relative to the build context
    destination: str  # absolute path in the image
    mode: int


@dataclass(frozen=True)
class DockerfileSpec:
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    workdir: str
    copies: tuple[Copy, ...]


def _unsupported(line: str, why: str) -> BuildError:
    return BuildError("DOCKERFILE_UNSUPPORTED", f"{why}: {line.strip()[:120]!r}")


def _instructions(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def parse_dockerfile(path: Path, build_args: dict[str, str] | None = None) -> DockerfileSpec:
    args: dict[str, str] = {}
    env: dict[str, str] = {}
    cmd: tuple[str, ...] | None = None
    workdir = "/"
    copies: list[Copy] = []

    def expand(value: str) -> str:
        return VARIABLE.sub(lambda m: args.get(m.group(1) or m.group(2), ""), value)

    for line in _instructions(path.read_text(encoding="utf-8")):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword in IGNORED:
            continue
        if keyword == "ARG":
            name, sep, default = rest.strip().partition("=")
            args[name] = (build_args or {}).get(name, default if sep else (build_args or {}).get(name, ""))
        elif keyword == "ENV":
            for word in shlex.split(rest):
                name, sep, value = word.partition("=")
                if not sep:
                    raise _unsupported(line, "ENV must use NAME=VALUE")
                env[name] = expand(value)
        elif keyword == "WORKDIR":
            workdir = expand(rest.strip())
        elif keyword == "CMD":
            try:
                value = json.loads(rest)
            except json.JSONDecodeError as err:
                raise _unsupported(line, "CMD must be a JSON array") from err
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
                raise _unsupported(line, "CMD must be a non-empty JSON array of strings")
            cmd = tuple(value)
        elif keyword == "COPY":
            words = shlex.split(rest)
            mode = None
            while words and words[0].startswith("--"):
                flag = words.pop(0)
                if not flag.startswith("--chmod="):
                    raise _unsupported(line, f"COPY flag {flag} is not supported")
                mode = int(flag.removeprefix("--chmod="), 8)
            if len(words) != 2 or mode is None:
                raise _unsupported(line, "COPY must be --chmod=MODE SRC DST")
            source, destination = expand(words[0]), expand(words[1])
            if destination in BUILD_ONLY:
                continue
            if not destination.startswith(APP_PREFIX) or ".." in destination.split("/"):
                raise _unsupported(line, f"COPY destination must be below {APP_PREFIX}")
            copies.append(Copy(source, destination, mode))
        else:
            raise _unsupported(line, f"instruction {keyword} is not supported")
    if cmd is None:
        raise BuildError("DOCKERFILE_UNSUPPORTED", f"{path} has no CMD")
    return DockerfileSpec(cmd, tuple(f"{k}={v}" for k, v in env.items()), workdir, tuple(copies))
