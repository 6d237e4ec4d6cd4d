"""The real Nitro Security Module: ``/dev/nsm`` through its ioctl ABI.

Each call CBOR-encodes a request the way the NSM API's serde types do (an externally tagged
enum: unit variants as a text string, struct variants as ``{variant: {field: value}}`` with
byte strings for ``ByteBuf``/``serde_bytes`` fields and ``null`` for absent options), then
issues ``ioctl(fd, NSM_IOCTL_REQUEST, struct nsm_message)`` where::

    struct iovec       { void *iov_base; size_t iov_len; };              // 16 bytes on 64-bit
    struct nsm_message { struct iovec request; struct iovec response; }; // 32 bytes

and ``NSM_IOCTL_REQUEST = _IOWR(0x0A, 0, sizeof(struct nsm_message))``. The driver writes the
CBOR response into the response buffer (at most 0x3000 bytes) and sets its ``iov_len``.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
from trustdial_verifier.errors import describe_value
from trustdial_verifier.unstable.decoding import strict_cbor

NSM_IOCTL_MAGIC = 0x0A
NSM_REQUEST_MAX_SIZE = 0x1000
NSM_RESPONSE_MAX_SIZE = 0x3000
NSM_RANDOM_MAX = 256
_IOC_WRITE, _IOC_READ = 1, 2


class IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class NsmMessage(ctypes.Structure):
    _fields_ = [("request", IoVec), ("response", IoVec)]


def ioctl_request_code(magic: int, number: int, size: int) -> int:
    """Linux ``_IOWR(magic, number, size)``: direction bits 30-31, size 16-29, type 8-15, nr 0-7."""
    return ((_IOC_READ | _IOC_WRITE) << 30) | (size << 16) | (magic << 8) | number


NSM_IOCTL_REQUEST = ioctl_request_code(NSM_IOCTL_MAGIC, 0, ctypes.sizeof(NsmMessage))


class NsmError(RuntimeError):
    """The NSM answered with an error (``code`` is the NSM API's ErrorCode name) or could not be used."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def encode_attestation_request(
    *, user_data: bytes | None = None, nonce: bytes | None = None, public_key: bytes | None = None
) -> bytes:
    return cbor2.dumps({"Attestation": {"user_data": user_data, "nonce": nonce, "public_key": public_key}})


def encode_describe_pcr_request(index: int) -> bytes:
    if not 0 <= index < 1 << 16:
        raise ValueError(f"PCR index must fit in u16, found {index}")
    return cbor2.dumps({"DescribePCR": {"index": index}})


def encode_get_random_request() -> bytes:
    return cbor2.dumps("GetRandom")


def encode_describe_nsm_request() -> bytes:
    return cbor2.dumps("DescribeNSM")


def decode_response(raw: bytes, expected: str) -> dict[str, Any]:
    """The fields of response variant ``expected``; an ``Error`` variant raises :class:`NsmError`."""
    try:
        value: Any = strict_cbor.decode(raw)
    except strict_cbor.CborError as err:
        raise NsmError(
            "InvalidResponse", f"response is not CBOR the enclave accepts: {err.reason} ({err.code})"
        ) from None
    if isinstance(value, dict) and set(value) == {"Error"}:
        code = value["Error"] if isinstance(value["Error"], str) else "InvalidResponse"
        raise NsmError(code, f"the NSM refused the {expected} request")
    if not isinstance(value, dict) or set(value) != {expected} or not isinstance(value[expected], dict):
        raise NsmError("InvalidResponse", f"expected a {expected} response, found {describe_value(value)}")
    fields: dict[str, Any] = value[expected]
    return fields


IoctlFunction = Callable[[int, int, NsmMessage], int]


def _system_ioctl(fd: int, request: int, message: NsmMessage) -> int:
    return int(fcntl.ioctl(fd, request, message, True))


class DeviceNsm:
    """``enclave_app.nsm.interface.Nsm`` backed by the NSM driver."""

    def __init__(self, fd: int, *, ioctl: IoctlFunction = _system_ioctl) -> None:
        self._fd = fd
        self._ioctl = ioctl
        self._module_id: str | None = None

    @classmethod
    def open(cls, path: Path = Path("/dev/nsm")) -> DeviceNsm:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as err:
            raise NsmError("Unavailable", f"cannot open {path}: {err}") from err
        return cls(fd)

    def close(self) -> None:
        os.close(self._fd)

    def process(self, request: bytes) -> bytes:
        """One request/response round trip through the ioctl."""
        if len(request) > NSM_REQUEST_MAX_SIZE:
            raise NsmError("InputTooLarge", f"request of {len(request)} bytes exceeds {NSM_REQUEST_MAX_SIZE}")
        request_buffer = ctypes.create_string_buffer(request, len(request))
        response_buffer = ctypes.create_string_buffer(NSM_RESPONSE_MAX_SIZE)
        message = NsmMessage(
            IoVec(ctypes.cast(request_buffer, ctypes.c_void_p), len(request)),
            IoVec(ctypes.cast(response_buffer, ctypes.c_void_p), NSM_RESPONSE_MAX_SIZE),
        )
        try:
            self._ioctl(self._fd, NSM_IOCTL_REQUEST, message)
        except OSError as err:
            raise NsmError("InternalError", f"ioctl on the NSM device failed: {err}") from err
        length = message.response.iov_len
        if length > NSM_RESPONSE_MAX_SIZE:
            raise NsmError(
                "InvalidResponse", f"driver reported {length} response bytes, buffer holds {NSM_RESPONSE_MAX_SIZE}"
            )
        return response_buffer.raw[:length]

    @property
    def module_id(self) -> str:
        if self._module_id is None:
            fields = decode_response(self.process(encode_describe_nsm_request()), "DescribeNSM")
            self._module_id = str(fields["module_id"])
        return self._module_id

    def attest(
        self, *, nonce: bytes | None = None, user_data: bytes | None = None, public_key: bytes | None = None
    ) -> bytes:
        request = encode_attestation_request(user_data=user_data, nonce=nonce, public_key=public_key)
        document = decode_response(self.process(request), "Attestation").get("document")
        if not isinstance(document, bytes):
            raise NsmError("InvalidResponse", "Attestation response without a document byte string")
        return document

    def describe_pcr(self, index: int) -> tuple[bool, bytes]:
        fields = decode_response(self.process(encode_describe_pcr_request(index)), "DescribePCR")
        lock, data = fields.get("lock"), fields.get("data")
        if not isinstance(lock, bool) or not isinstance(data, bytes):
            raise NsmError("InvalidResponse", "DescribePCR response needs lock (bool) and data (bytes)")
        return lock, data

    def get_random(self, length: int) -> bytes:
        out = b""
        while len(out) < length:
            random = decode_response(self.process(encode_get_random_request()), "GetRandom").get("random")
            if not isinstance(random, bytes) or not random:
                raise NsmError("InvalidResponse", "GetRandom response without random bytes")
            out += random
        return out[:length]
