"""Where each tensor sits in a proof's public instances, read from the pinned settings.json.

ezkl lays out ``instances[0]`` as the input part followed by the output part. A ``public``
tensor contributes its quantized values (flattened, row-major); a ``hashed`` tensor contributes
one Poseidon hash. Params are ``fixed`` (baked into the vk) and contribute nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from trustdial_verifier.errors import VerificationError, describe_value


@dataclass(frozen=True)
class InstanceLayout:
    input_visibility: str
    output_visibility: str
    input_scale: int
    output_scale: int
    input_is_f32: bool
    input_count: int
    output_count: int
    logrows: int
    input_type: str = ""  # ezkl's element type of the input (settings' input_types[0], e.g. "F32")
    output_type: str = ""  # ezkl's element type of the output (settings' output_types[0])
    input_shape: tuple[int, ...] | None = None  # shape of a public input (settings' model_instance_shapes)
    output_shape: tuple[int, ...] | None = None  # shape of a public output

    @property
    def total(self) -> int:
        return self.input_count + self.output_count

    def input_part(self, instances: list[str]) -> list[str]:
        return instances[: self.input_count]

    def output_part(self, instances: list[str]) -> list[str]:
        return instances[self.input_count :]


def layout_from_settings(settings: Any) -> InstanceLayout:
    """Derive the layout; anything unexpected is a rejection, never a guess (a field of the wrong type
    too: ``SETTINGS_MALFORMED``, never a TypeError or ValueError)."""
    try:
        return _layout(settings)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        raise VerificationError(
            "SETTINGS_MALFORMED", f"expected ezkl settings fields of the documented types ({type(err).__name__})"
        ) from None


def _layout(settings: Any) -> InstanceLayout:
    try:
        run_args = settings["run_args"]
        input_visibility = _visibility(run_args["input_visibility"])
        output_visibility = _visibility(run_args["output_visibility"])
        param_visibility = _visibility(run_args["param_visibility"])
        input_types = settings["input_types"]
        output_types = settings["output_types"]
        input_scales = settings["model_input_scales"]
        output_scales = settings["model_output_scales"]
        shapes = settings["model_instance_shapes"]
        logrows = run_args["logrows"]
    except (KeyError, TypeError) as err:
        raise VerificationError("SETTINGS_MALFORMED", f"expected ezkl settings fields; missing {err}") from err
    if param_visibility != "fixed":
        raise VerificationError(
            "SETTINGS_UNSUPPORTED", f"expected param visibility 'fixed', found {param_visibility!r}"
        )
    if len(input_types) != 1 or len(output_types) != 1 or len(input_scales) != 1 or len(output_scales) != 1:
        raise VerificationError(
            "SETTINGS_UNSUPPORTED",
            f"expected one input and one output tensor, found {len(input_types)} inputs "
            f"and {len(output_types)} outputs",
        )
    public_shapes = list(shapes)
    counts: list[int] = []
    public: list[tuple[int, ...] | None] = []
    for visibility in (input_visibility, output_visibility):
        if visibility == "public":
            if not public_shapes:
                raise VerificationError(
                    "SETTINGS_MALFORMED", "expected a model_instance_shapes entry per public tensor"
                )
            shape = tuple(int(d) for d in public_shapes.pop(0))
            counts.append(math.prod(shape))
            public.append(shape)
        else:
            counts.append(1)
            public.append(None)
    if public_shapes:
        raise VerificationError("SETTINGS_MALFORMED", f"unexpected extra instance shapes ({len(public_shapes)} more)")
    return InstanceLayout(
        input_visibility=input_visibility,
        output_visibility=output_visibility,
        input_scale=int(input_scales[0]),
        output_scale=int(output_scales[0]),
        input_is_f32=input_types[0] == "F32",
        input_type=input_types[0] if isinstance(input_types[0], str) else "",
        output_type=output_types[0] if isinstance(output_types[0], str) else "",
        input_count=counts[0],
        output_count=counts[1],
        logrows=int(logrows),
        input_shape=public[0],
        output_shape=public[1],
    )


def _visibility(value: Any) -> str:
    """ezkl writes "Public"/"Fixed"/"Private" as strings and hashed as {"Hashed": {...}}."""
    if isinstance(value, str) and value.lower() in ("public", "fixed", "private"):
        return value.lower()
    if isinstance(value, dict) and set(value) == {"Hashed"}:
        hashed = value["Hashed"]
        if isinstance(hashed, dict) and hashed.get("hash_is_public") is True and not hashed.get("outlets"):
            return "hashed"
    raise VerificationError(
        "SETTINGS_UNSUPPORTED", f"expected visibility public, fixed or hashed, found {describe_value(value)}"
    )
