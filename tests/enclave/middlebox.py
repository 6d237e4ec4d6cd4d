"""An adversarial network path for the client: real HTTP to the live gateway, with the
response bodies of chosen routes rewritten before the client sees them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

Rewrite = Callable[[str, dict[str, Any]], dict[str, Any]]


class Middlebox(httpx.BaseTransport):
    def __init__(self, rewrite: Rewrite) -> None:
        self.inner = httpx.HTTPTransport()
        self.rewrite = rewrite

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        if response.status_code != 200:
            return response
        body = self.rewrite(request.url.path, json.loads(response.content))
        return httpx.Response(200, json=body, request=request)

    def close(self) -> None:
        self.inner.close()


def http_through(url: str, rewrite: Rewrite) -> httpx.Client:
    return httpx.Client(base_url=url, transport=Middlebox(rewrite), timeout=30)
