"""The EIF metadata section exactly as serde_json writes ``EifIdentityInfo``: compact JSON,
top-level fields in declaration order, object keys inside DockerInfo/CustomMetadata sorted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from infra.image.errors import BuildError

EPOCH_BUILD_TIME = "1970-01-01T00:00:00+00:00"


def _canonical(value: Any, where: str) -> str:
    _reject_floats(value, where)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _reject_floats(value: Any, where: str) -> None:
    if isinstance(value, float):
        raise BuildError(
            "EIF_BUILD_METADATA",
            f"{where} holds the float {value!r}; serde_json formats floats "
            "differently from Python, so floats are refused (use strings or integers)",
        )
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise BuildError("EIF_BUILD_METADATA", f"{where} holds {value}, outside the 64-bit range serde_json keeps")
        return
    if isinstance(value, list):
        for item in value:
            _reject_floats(item, where)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise BuildError("EIF_BUILD_METADATA", f"{where} has a non-string key {key!r}")
            _reject_floats(item, where)
        return
    raise BuildError("EIF_BUILD_METADATA", f"{where} holds a {type(value).__name__}, not JSON")


@dataclass(frozen=True)
class EifMetadata:
    image_name: str
    image_version: str
    build_time: str = EPOCH_BUILD_TIME
    build_tool: str = "trustdial"
    build_tool_version: str = "0.1.0"
    operating_system: str = "OS"
    kernel_version: str = "kernel"
    docker_info: Any = None
    custom_metadata: Any = None

    def to_bytes(self) -> bytes:
        s = _canonical
        text = (
            f'{{"ImageName":{s(self.image_name, "ImageName")},"ImageVersion":{s(self.image_version, "ImageVersion")},'
            f'"BuildMetadata":{{"BuildTime":{s(self.build_time, "BuildTime")},'
            f'"BuildTool":{s(self.build_tool, "BuildTool")},'
            f'"BuildToolVersion":{s(self.build_tool_version, "BuildToolVersion")},'
            f'"OperatingSystem":{s(self.operating_system, "OperatingSystem")},'
            f'"KernelVersion":{s(self.kernel_version, "KernelVersion")}}},'
            f'"DockerInfo":{s(self.docker_info, "DockerInfo")},'
            f'"CustomMetadata":{s(self.custom_metadata, "CustomMetadata")}}}'
        )
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise BuildError("EIF_BUILD_METADATA", f"metadata holds text that is not valid Unicode: {err}") from err
