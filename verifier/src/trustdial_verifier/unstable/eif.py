"""EIF images: the measuring reader, the on-disk layout constants the image writer uses, PCR extension.

Unstable: see :mod:`trustdial_verifier.unstable`."""

from trustdial_verifier._internal.eif import measure_eif
from trustdial_verifier._internal.eif.format import (
    CRC_OFFSET,
    DEFAULT_CPUS,
    DEFAULT_MEM,
    HEADER_SIZE,
    HEADER_STRUCT,
    MAGIC,
    MAX_SECTIONS,
    SECTION_HEADER_SIZE,
    SECTION_HEADER_STRUCT,
    VERSION,
    SectionType,
    flags_for_arch,
)
from trustdial_verifier._internal.eif.pcr import extend_pcr

__all__ = [
    "CRC_OFFSET",
    "DEFAULT_CPUS",
    "DEFAULT_MEM",
    "HEADER_SIZE",
    "HEADER_STRUCT",
    "MAGIC",
    "MAX_SECTIONS",
    "SECTION_HEADER_SIZE",
    "SECTION_HEADER_STRUCT",
    "VERSION",
    "SectionType",
    "extend_pcr",
    "flags_for_arch",
    "measure_eif",
]
