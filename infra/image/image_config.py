"""What nitro-cli takes from an image's configuration: the ``cmd`` file (each Cmd element plus
a newline; Entrypoint only when Cmd is absent) and the ``env`` file (each Env entry plus a newline)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.image.errors import BuildError


@dataclass(frozen=True)
class ImageConfig:
    cmd: tuple[str, ...] | None
    entrypoint: tuple[str, ...] | None
    env: tuple[str, ...]
    architecture: str | None = None
    image_id: str | None = None

    def cmd_file(self) -> bytes:
        args = self.cmd if self.cmd is not None else self.entrypoint
        if args is None:
            raise BuildError("IMAGE_CONFIG_INVALID", "image has neither Cmd nor Entrypoint; nitro-cli refuses it")
        return "".join(f"{a}\n" for a in args).encode("utf-8")

    def env_file(self) -> bytes:
        return "".join(f"{e}\n" for e in self.env).encode("utf-8")


def _strings(value: Any, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BuildError("IMAGE_CONFIG_INVALID", f"{what} must be a list of strings or null")
    return tuple(value)


def parse_image_config(document: Any) -> ImageConfig:
    """Accept ``docker image inspect`` output (object or one-element list) or an OCI image config."""
    if isinstance(document, list):
        if len(document) != 1:
            raise BuildError("IMAGE_CONFIG_INVALID", f"inspect output lists {len(document)} images, expected 1")
        document = document[0]
    if not isinstance(document, dict):
        raise BuildError("IMAGE_CONFIG_INVALID", "image configuration must be a JSON object")
    config = document.get("Config", document.get("config"))
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise BuildError("IMAGE_CONFIG_INVALID", "image 'Config' must be an object")
    env = _strings(config.get("Env"), "Env") or ()
    arch = document.get("Architecture", document.get("architecture"))
    image_id = document.get("Id")
    return ImageConfig(
        cmd=_strings(config.get("Cmd"), "Cmd"),
        entrypoint=_strings(config.get("Entrypoint"), "Entrypoint"),
        env=env,
        architecture=arch if isinstance(arch, str) else None,
        image_id=image_id if isinstance(image_id, str) else None,
    )


def load_image_config(path: Path) -> ImageConfig:
    try:
        return parse_image_config(json.loads(path.read_text(encoding="utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BuildError("IMAGE_CONFIG_INVALID", f"{path} is not JSON: {err}") from err
