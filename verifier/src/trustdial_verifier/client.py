"""The app developer's verifying client (the ``client`` extra: ``pip install './verifier[client]'``).

:class:`Client` attests the enclave behind a gateway with a fresh nonce, checks the attestation document against
an :class:`ExpectedEnclave` (PCRs, model digests) and returns a response's outputs only after its receipt
verified under the attested key, all within a total time budget per call. Every failure is a
:class:`~trustdial_verifier.VerificationError` or an :class:`~trustdial_verifier.InputError`.

>>> from trustdial_verifier import Tensor
>>> from trustdial_verifier.client import Client, ExpectedEnclave
>>> client = Client("http://gateway:8080", expected=ExpectedEnclave(pcrs={0: p0, 1: p1, 2: p2}))  # doctest: +SKIP
"""

from trustdial_verifier._internal.client import Client, ExpectedEnclave

__all__ = ["Client", "ExpectedEnclave"]
