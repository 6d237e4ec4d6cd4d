"""The /dev/nsm backend without a device: request encodings written out by hand from the NSM
API's serde types, the ioctl number and struct layout from the Linux _IOC rules, and the full
round trip through a stand-in for the kernel driver that reads and writes the iovecs."""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import cbor2
import pytest

from enclave_app.nsm.device import (
    NSM_IOCTL_REQUEST,
    DeviceNsm,
    IoVec,
    NsmError,
    NsmMessage,
    decode_response,
    encode_attestation_request,
    encode_describe_pcr_request,
    encode_get_random_request,
)
from enclave_app.nsm.selection import open_nsm
from enclave_app.nsm.simulated import SimulatedNsm


def _text(s: str) -> bytes:
    assert len(s) < 24
    return bytes([0x60 | len(s)]) + s.encode()


def test_attestation_request_is_an_externally_tagged_struct_variant() -> None:
    expected = (
        b"\xa1" + _text("Attestation") + b"\xa3"
        + _text("user_data") + b"\xf6"  # None -> null
        + _text("nonce") + b"\x43\x01\x02\x03"  # ByteBuf -> byte string
        + _text("public_key") + b"\x41\x6b"
    )  # fmt: skip
    assert encode_attestation_request(nonce=b"\x01\x02\x03", public_key=b"k") == expected


def test_describe_pcr_request_carries_a_u16_index() -> None:
    assert encode_describe_pcr_request(3) == b"\xa1" + _text("DescribePCR") + b"\xa1" + _text("index") + b"\x03"


def test_get_random_request_is_a_unit_variant_string() -> None:
    assert encode_get_random_request() == _text("GetRandom")


def test_error_response_raises_with_the_nsm_error_code() -> None:
    with pytest.raises(NsmError) as err:
        decode_response(b"\xa1" + _text("Error") + _text("InvalidIndex"), "DescribePCR")
    assert err.value.code == "InvalidIndex"


def test_response_of_another_variant_is_invalid() -> None:
    raw = b"\xa1" + _text("GetRandom") + b"\xa1" + _text("random") + b"\x41\x00"
    with pytest.raises(NsmError) as err:
        decode_response(raw, "Attestation")
    assert err.value.code == "InvalidResponse"


def test_ioctl_request_code_is_iowr_0x0a_0_with_a_32_byte_message() -> None:
    read_write, size, magic, number = 3, 32, 0x0A, 0
    assert NSM_IOCTL_REQUEST == (read_write << 30) | (size << 16) | (magic << 8) | number == 0xC0200A00


def test_message_struct_is_two_iovecs_of_pointer_and_size() -> None:
    assert ctypes.sizeof(IoVec) == 16
    assert (NsmMessage.request.offset, NsmMessage.response.offset, ctypes.sizeof(NsmMessage)) == (0, 16, 32)
    assert (IoVec.iov_base.offset, IoVec.iov_len.offset) == (0, 8)


class KernelStandIn:
    """Plays the driver: reads the request iovec, answers from a simulated NSM, writes the
    response into the response iovec and sets its length, as the ioctl does."""

    def __init__(self) -> None:
        self.nsm = SimulatedNsm()
        self.requests: list[Any] = []

    def __call__(self, fd: int, request_code: int, message: NsmMessage) -> int:
        assert request_code == NSM_IOCTL_REQUEST
        request = cbor2.loads(ctypes.string_at(message.request.iov_base, message.request.iov_len))
        self.requests.append(request)
        if request == "GetRandom":
            response: Any = {"GetRandom": {"random": self.nsm.get_random(256)}}
        elif "Attestation" in request:
            response = {"Attestation": {"document": self.nsm.attest(**request["Attestation"])}}
        elif "DescribePCR" in request:
            index = request["DescribePCR"]["index"]
            if index > 31:
                response = {"Error": "InvalidIndex"}
            else:
                lock, data = self.nsm.describe_pcr(index)
                response = {"DescribePCR": {"lock": lock, "data": data}}
        else:
            response = {"Error": "InvalidOperation"}
        raw = cbor2.dumps(response)
        assert len(raw) <= message.response.iov_len
        ctypes.memmove(message.response.iov_base, raw, len(raw))
        message.response.iov_len = len(raw)
        return 0


@pytest.fixture
def device() -> tuple[DeviceNsm, KernelStandIn]:
    kernel = KernelStandIn()
    return DeviceNsm(-1, ioctl=kernel), kernel


def test_attest_returns_the_document_the_driver_wrote(device: tuple[DeviceNsm, KernelStandIn]) -> None:
    nsm, kernel = device
    document = nsm.attest(nonce=b"abc", public_key=b"key")
    payload = cbor2.loads(cbor2.loads(document)[2])
    assert (payload["nonce"], payload["public_key"], payload["user_data"]) == (b"abc", b"key", None)
    assert kernel.requests[-1] == {"Attestation": {"user_data": None, "nonce": b"abc", "public_key": b"key"}}


def test_describe_pcr_returns_lock_and_value(device: tuple[DeviceNsm, KernelStandIn]) -> None:
    nsm, kernel = device
    assert nsm.describe_pcr(0) == kernel.nsm.describe_pcr(0)


def test_describe_pcr_out_of_range_raises_invalid_index(device: tuple[DeviceNsm, KernelStandIn]) -> None:
    nsm, _ = device
    with pytest.raises(NsmError) as err:
        nsm.describe_pcr(40)
    assert err.value.code == "InvalidIndex"


def test_get_random_concatenates_responses_to_the_requested_length(device: tuple[DeviceNsm, KernelStandIn]) -> None:
    nsm, kernel = device
    assert len(nsm.get_random(600)) == 600
    assert kernel.requests == ["GetRandom"] * 3


def test_oversized_request_is_refused_before_the_ioctl(device: tuple[DeviceNsm, KernelStandIn]) -> None:
    nsm, kernel = device
    with pytest.raises(NsmError) as err:
        nsm.attest(user_data=b"x" * 5000)
    assert err.value.code == "InputTooLarge" and kernel.requests == []


def test_auto_uses_the_simulator_when_the_device_is_absent(tmp_path: Path) -> None:
    assert isinstance(open_nsm("auto", device=tmp_path / "nsm"), SimulatedNsm)


def test_auto_uses_the_device_when_it_is_present(tmp_path: Path) -> None:
    present = tmp_path / "nsm"
    present.write_bytes(b"")
    nsm = open_nsm("auto", device=present)
    assert isinstance(nsm, DeviceNsm)
    nsm.close()


def test_device_mode_without_a_device_fails_instead_of_simulating(tmp_path: Path) -> None:
    with pytest.raises(NsmError) as err:
        open_nsm("device", device=tmp_path / "nsm")
    assert err.value.code == "Unavailable"


def test_response_with_shared_references_is_invalid_not_followed() -> None:
    # {"GetRandom": {"random": 28(h'00')}}: the driver's answer goes through the strict reader, which takes no tags
    raw = b"\xa1" + _text("GetRandom") + b"\xa1" + _text("random") + b"\xd8\x1c\x41\x00"
    with pytest.raises(NsmError) as err:
        decode_response(raw, "GetRandom")
    assert err.value.code == "InvalidResponse" and "CBOR_UNSUPPORTED" in str(err.value)


def test_response_with_a_repeated_variant_key_is_invalid() -> None:
    fields = b"\xa1" + _text("random") + b"\x41\x00"
    raw = b"\xa2" + _text("GetRandom") + fields + _text("GetRandom") + fields
    with pytest.raises(NsmError) as err:
        decode_response(raw, "GetRandom")
    assert err.value.code == "InvalidResponse" and "CBOR_DUPLICATE_KEY" in str(err.value)
