"""AWS Signature Version 4 for one JSON POST (the KMS API), with the standard library only: the enclave runtime
lock carries no botocore. Tests check it byte for byte against botocore's ``SigV4Auth`` (an independent oracle).

Canonical request: method, URI ``/``, empty query, the signed headers lowercased with trimmed values sorted by name,
the signed header names, and the hex SHA-256 of the body; the key is derived as ``HMAC(HMAC(HMAC(HMAC("AWS4" +
secret, date), region), service), "aws4_request")``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime

ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret_access_key).encode(), date)
    return _hmac(_hmac(_hmac(key, region), service), "aws4_request")


def sign_post(
    *,
    host: str,
    headers: Mapping[str, str],
    body: bytes,
    access_key_id: str,
    secret_access_key: str,
    session_token: str | None,
    region: str,
    service: str,
    now: datetime,
) -> dict[str, str]:
    """``headers`` plus Host, X-Amz-Date, X-Amz-Security-Token (if any) and Authorization, for ``POST /``."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    signed = {"host": host, **{name.lower(): value for name, value in headers.items()}, "x-amz-date": amz_date}
    if session_token:
        signed["x-amz-security-token"] = session_token
    names = sorted(signed)
    canonical_headers = "".join(f"{name}:{' '.join(signed[name].split())}\n" for name in names)
    signed_headers = ";".join(names)
    canonical_request = "\n".join(
        ["POST", "/", "", canonical_headers, signed_headers, hashlib.sha256(body).hexdigest()]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    signature = hmac.new(
        signing_key(secret_access_key, date, region, service), string_to_sign.encode(), hashlib.sha256
    ).hexdigest()
    result = {**dict(headers), "Host": host, "X-Amz-Date": amz_date}
    if session_token:
        result["X-Amz-Security-Token"] = session_token
    result["Authorization"] = (
        f"{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
    return result
