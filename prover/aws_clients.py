"""boto3 clients for the worker and ``submit`` (an ``endpoint_url`` points them at e.g. a local moto server)."""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_REGION = "us-east-1"


def make_clients(endpoint_url: str | None, region: str | None = None) -> tuple[Any, Any]:
    """(sqs, s3) clients; a fresh session each call so threads never share one."""
    session = boto3.session.Session(region_name=region or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION)
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"})
    sqs = session.client("sqs", endpoint_url=endpoint_url, config=config)
    s3 = session.client("s3", endpoint_url=endpoint_url, config=config)
    return sqs, s3
