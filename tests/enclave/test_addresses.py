"""Listen/connect address syntax for serve and gateway."""

from __future__ import annotations

import pytest

from enclave_app.addresses import VMADDR_CID_ANY, Address, parse_address


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("tcp:127.0.0.1:5005", Address("tcp", "127.0.0.1", 5005)),
        ("tcp::0", Address("tcp", "127.0.0.1", 0)),
        ("vsock:5005", Address("vsock", "", 5005, VMADDR_CID_ANY)),
        ("vsock:16:5005", Address("vsock", "", 5005, 16)),
    ],
)
def test_addresses_parse(text: str, address: Address) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize("text", ["udp:1.2.3.4:5", "tcp:host:port", "vsock:x:1", "5005"])
def test_malformed_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)
