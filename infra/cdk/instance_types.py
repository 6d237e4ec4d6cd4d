"""Which EC2 instance types can host a Nitro enclave, decided at synth time (CDK does not check).

Rules (AWS Nitro Enclaves User Guide, "Requirements"): the parent must be a Nitro-based virtualized instance with
at least 4 vCPUs on Intel/AMD or at least 2 vCPUs on Graviton; burstable (``t*``), ``a1``, Mac and high-memory
``u-*`` instances and bare metal are not supported. The list of families below is the validated set; a family
missing from it is refused rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from infra.cdk.errors import InfraConfigError

# Family classes whose generations >= 5 are Nitro-based and support enclaves (any attribute letters: a, d, n, g...).
ENCLAVE_CLASSES_FROM_GENERATION_5 = ("m", "c", "r")
# Further families known to support enclaves.
ENCLAVE_EXTRA_FAMILIES = frozenset({"i3en", "i4i", "i4g", "im4gn", "is4gen", "x2idn", "x2iedn", "x2gd", "z1d"})
REFUSED_PREFIXES = ("t", "a1", "mac", "u-")
# "flex" variants (e.g. m7i-flex) are not in the documented list of enclave-capable types.
FAMILY_PATTERN = re.compile(r"(?P<cls>[a-z]+?)(?P<gen>[0-9])(?P<attrs>[a-z]*)")
SIZE_PATTERN = re.compile(r"(?P<mult>[0-9]*)xlarge|large|medium|small|micro|nano|metal(-[0-9]+xl)?")
SMALL_SIZES_VCPUS = {"nano": 1, "micro": 1, "small": 1, "medium": 1, "large": 2}
SUPPORTED_HELP = (
    "use an Intel/AMD type with >= 4 vCPUs (e.g. m6i.xlarge, c6a.2xlarge, r7i.xlarge) or a Graviton type with >= 2 "
    "vCPUs (e.g. m7g.large, c7g.xlarge); see docs.aws.amazon.com/enclaves/latest/user/nitro-enclave.html#nitro-"
    "enclave-reqs"
)


@dataclass(frozen=True)
class InstanceType:
    family: str
    size: str
    family_class: str
    generation: int
    attributes: str

    @property
    def graviton(self) -> bool:
        return "g" in self.attributes

    @property
    def vcpus(self) -> int | None:
        """vCPUs implied by the size name (Graviton ``medium`` is 1, ``large`` 2, ``xlarge`` 4, ``Nxlarge`` 4N)."""
        if self.size in SMALL_SIZES_VCPUS:
            return SMALL_SIZES_VCPUS[self.size]
        if self.size.endswith("xlarge") and not self.size.startswith("metal"):
            multiplier = self.size.removesuffix("xlarge")
            return 4 * (int(multiplier) if multiplier else 1)
        return None


def parse_instance_type(name: str) -> InstanceType:
    family, dot, size = name.partition(".")
    match = FAMILY_PATTERN.fullmatch(family)
    if not dot or match is None or SIZE_PATTERN.fullmatch(size) is None:
        raise InfraConfigError("BAD_INSTANCE_TYPE", f"expected an EC2 instance type like 'm6i.xlarge', found {name!r}")
    return InstanceType(family, size, match["cls"], int(match["gen"]), match["attrs"])


def require_enclave_capable(name: str) -> InstanceType:
    """Return the parsed type if it can host a Nitro enclave; raise ``NOT_ENCLAVE_CAPABLE`` saying why not."""
    if name.startswith(REFUSED_PREFIXES) or "-flex" in name:
        raise InfraConfigError(
            "NOT_ENCLAVE_CAPABLE",
            f"{name!r} cannot host a Nitro enclave (burstable, a1, Mac, high-memory and flex types are not "
            f"supported); {SUPPORTED_HELP}",
        )
    parsed = parse_instance_type(name)
    if parsed.size.startswith("metal"):
        raise InfraConfigError(
            "NOT_ENCLAVE_CAPABLE", f"{name!r} is bare metal; enclaves need a virtualized parent; {SUPPORTED_HELP}"
        )
    known = parsed.family in ENCLAVE_EXTRA_FAMILIES or (
        parsed.family_class in ENCLAVE_CLASSES_FROM_GENERATION_5 and parsed.generation >= 5
    )
    if not known:
        raise InfraConfigError(
            "NOT_ENCLAVE_CAPABLE",
            f"{name!r}: family {parsed.family!r} is not a Nitro Enclaves-capable family; {SUPPORTED_HELP}",
        )
    minimum = 2 if parsed.graviton else 4
    vcpus = parsed.vcpus
    if vcpus is None or vcpus < minimum:
        processor = "Graviton" if parsed.graviton else "Intel/AMD"
        raise InfraConfigError(
            "NOT_ENCLAVE_CAPABLE",
            f"{name!r} has {vcpus} vCPUs; a {processor} enclave parent needs at least {minimum} "
            f"(one core stays with the parent); {SUPPORTED_HELP}",
        )
    return parsed
