"""Enclave Image File (EIF) reading, validation and PCR computation.

``measure_eif(path)`` walks an EIF once with bounded memory and returns its PCR0/1/2/8,
file digests, sections and metadata; any malformed input raises :class:`EifError`.
"""

from trustdial_verifier._internal.eif.errors import EifError
from trustdial_verifier._internal.eif.format import ARCH_AARCH64, ARCH_X86_64, SectionType
from trustdial_verifier._internal.eif.pcr import extend_pcr, pcr3_for_role_arn, pcr4_for_instance_id, pcr_from_digest
from trustdial_verifier._internal.eif.reader import EifMeasurement, SectionInfo, measure_eif, measure_eif_stream

__all__ = [
    "ARCH_AARCH64",
    "ARCH_X86_64",
    "EifError",
    "EifMeasurement",
    "SectionInfo",
    "SectionType",
    "extend_pcr",
    "measure_eif",
    "measure_eif_stream",
    "pcr3_for_role_arn",
    "pcr4_for_instance_id",
    "pcr_from_digest",
]
