"""Request errors the enclave server and gateway report with a stable code (docs/receipts.md §8)."""

from __future__ import annotations


class RequestError(Exception):
    """A request was refused; ``code`` is stable, ``status`` the HTTP status the gateway maps it to."""

    def __init__(self, code: str, message: str, status: int = 400, *, param: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        #: the request field at fault, where known (the OpenAI-compatible routes report it as ``param``)
        self.param = param
