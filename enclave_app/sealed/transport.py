"""A blocking stream socket to a ``tcp:`` or ``vsock:`` address (the enclave's outbound legs to its parent)."""

from __future__ import annotations

import socket

from enclave_app.addresses import Address


def connect(address: Address, timeout: float) -> socket.socket:
    if address.scheme == "tcp":
        return socket.create_connection((address.host, address.port), timeout=timeout)
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((address.cid, address.port))
    except OSError:
        sock.close()
        raise
    return sock
