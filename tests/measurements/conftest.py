from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """boto3 clients for the loopback moto server (fake credentials, path-style S3)."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"), timeout=10)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    config = Config(s3={"addressing_style": "path"})
    return {
        "endpoint": moto_endpoint,
        "s3": boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", config=config),
        "ssm": boto3.client("ssm", endpoint_url=moto_endpoint, region_name="us-east-1"),
        "kms": boto3.client("kms", endpoint_url=moto_endpoint, region_name="us-east-1"),
    }
