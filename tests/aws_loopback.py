"""AWS APIs on loopback for tests: one real moto server process-wide (``ThreadedMotoServer`` on 127.0.0.1, port 0)
and boto3 clients pointed at it with fake credentials. The fixtures built on these live in ``tests/conftest.py``.

Independence between tests: a test either resets the server first (``reset_moto``; the ``aws`` fixture does) or
names its resources uniquely (the prover fleet does). The KMS ``MessageType=DIGEST`` signing path, which moto 5.2.5
gets wrong, has its own loopback server in ``tests/measurements/kms_digest_server.py``.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

REGION = "us-east-1"
#: moto accepts any credentials; these keep boto3 from looking for real ones.
AWS_TEST_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (a free port); yields its endpoint URL and stops it on exit."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset_moto(endpoint: str) -> None:
    """Forget every resource the server holds (moto's own reset API)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        if answer.status != 200:
            raise RuntimeError(f"moto reset answered HTTP {answer.status}")


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client for ``service`` at ``endpoint`` with the test credentials (path-style addressing for S3)."""
    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"}) if service == "s3" else None
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
        config=config,
    )
