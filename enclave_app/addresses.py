"""``tcp:HOST:PORT`` and ``vsock:[CID:]PORT`` addresses, and sockets for them."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

VMADDR_CID_ANY = 0xFFFFFFFF


@dataclass(frozen=True)
class Address:
    scheme: str
    host: str
    port: int
    cid: int = VMADDR_CID_ANY

    def __str__(self) -> str:
        if self.scheme == "tcp":
            return f"tcp:{self.host}:{self.port}"
        return f"vsock:{self.cid}:{self.port}"


def parse_address(text: str) -> Address:
    scheme, _, rest = text.partition(":")
    try:
        if scheme == "tcp":
            host, _, port = rest.rpartition(":")
            return Address("tcp", host or "127.0.0.1", int(port))
        if scheme == "vsock":
            cid, _, port = rest.rpartition(":")
            return Address("vsock", "", int(port), int(cid) if cid else VMADDR_CID_ANY)
    except ValueError as err:
        raise ValueError(f"bad address {text!r}: {err}") from err
    raise ValueError(f"expected tcp:HOST:PORT or vsock:[CID:]PORT, found {text!r}")


async def open_connection(address: Address, limit: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if address.scheme == "tcp":
        return await asyncio.open_connection(address.host, address.port, limit=limit)
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (address.cid, address.port))
    return await asyncio.open_connection(sock=sock, limit=limit)


def tcp_listener(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A listening TCP socket created with ``IPPROTO_TCP`` as its protocol.

    asyncio turns Nagle's algorithm off (``TCP_NODELAY``) only on sockets whose ``proto`` is
    ``IPPROTO_TCP``; ``socket.create_server`` leaves it 0, and accepted connections inherit it.
    Without it, a response written in two parts (HTTP headers, then the body) waits for the
    peer's delayed ACK: about 44 ms per request on loopback."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def listening_socket(address: Address) -> socket.socket:
    if address.scheme == "tcp":
        sock = tcp_listener(address.host, address.port)
    else:
        sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        sock.bind((address.cid, address.port))
        sock.listen(128)
    sock.setblocking(False)
    return sock
