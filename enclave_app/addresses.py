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


def listening_socket(address: Address) -> socket.socket:
    if address.scheme == "tcp":
        sock = socket.create_server((address.host, address.port), reuse_port=False)
    else:
        sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        sock.bind((address.cid, address.port))
        sock.listen(128)
    sock.setblocking(False)
    return sock
