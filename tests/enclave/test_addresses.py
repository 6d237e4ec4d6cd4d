"""Listen/connect address syntax for serve and gateway."""

from __future__ import annotations

import asyncio
import socket

import pytest

from enclave_app.addresses import VMADDR_CID_ANY, Address, listening_socket, parse_address, tcp_listener


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


def _nodelay_of_accepted_connection(listener: socket.socket) -> int:
    """TCP_NODELAY as the kernel reports it on the server side of a connection accepted by
    asyncio (the mechanism uvicorn and asyncio.start_server share) on ``listener``."""

    async def main() -> int:
        seen: list[int] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=listener)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.read()  # EOF once the handler has looked and closed
        writer.close()
        server.close()
        await server.wait_closed()
        return seen[0]

    return asyncio.run(main())


@pytest.mark.parametrize(
    "make",
    [lambda: tcp_listener("127.0.0.1", 0), lambda: listening_socket(parse_address("tcp::0"))],
    ids=["gateway", "serve"],
)
def test_connections_accepted_by_serve_and_gateway_listeners_have_nagle_off(make) -> None:
    """Without TCP_NODELAY every HTTP response (headers, then body) waited ~44 ms for a delayed ACK."""
    assert _nodelay_of_accepted_connection(make()) != 0
