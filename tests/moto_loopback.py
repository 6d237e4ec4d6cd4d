"""One real moto server process-thread on 127.0.0.1 (SQS + S3), shared by the areas whose tests
talk to AWS APIs through boto3's ``endpoint_url`` (never by patching boto3 in-process)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

# moto accepts any credentials; these keep boto3 from looking for real ones.
AWS_TEST_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def moto_loopback() -> Iterator[str]:
    """Start moto's threaded server on a free loopback port; yield its endpoint URL."""
    from moto.server import ThreadedMotoServer

    saved = {name: os.environ.get(name) for name in AWS_TEST_ENV}
    os.environ.update(AWS_TEST_ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
