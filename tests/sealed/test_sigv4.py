"""The enclave's standard-library SigV4 signer agrees byte for byte with botocore's ``SigV4Auth`` (an independent
implementation) on the Authorization header of the KMS JSON POSTs it makes."""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave_app.sealed.sigv4 import sign_post

HEADERS = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.Decrypt"}


def botocore_authorization(host: str, headers: dict[str, str], body: bytes, ak: str, secret: str,
                           token: str | None, region: str, when: datetime) -> str:  # fmt: skip
    request = AWSRequest(method="POST", url=f"https://{host}/", data=body, headers=dict(headers))
    request.headers["X-Amz-Date"] = when.strftime("%Y%m%dT%H%M%SZ")
    if token:
        request.headers["X-Amz-Security-Token"] = token
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    signer = SigV4Auth(Credentials(ak, secret, token), "kms", region)
    signature = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    scope = f"{when:%Y%m%d}/{region}/kms/aws4_request"
    return f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, Signature={signature}"  # noqa: E501


def ours(host: str, body: bytes, ak: str, secret: str, token: str | None, region: str, when: datetime) -> str:
    return sign_post(host=host, headers=HEADERS, body=body, access_key_id=ak, secret_access_key=secret,
                     session_token=token, region=region, service="kms", now=when)["Authorization"]  # fmt: skip


def test_aws_documented_style_example_matches_botocore() -> None:
    when = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
    args = ("kms.us-east-1.amazonaws.com", b'{"KeyId":"alias/x"}', "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token", "us-east-1", when)  # fmt: skip
    assert ours(*args) == botocore_authorization(args[0], HEADERS, *args[1:])


def test_signing_without_a_session_token_matches_botocore() -> None:
    when = datetime(2026, 12, 7, 23, 59, 59, tzinfo=UTC)
    args = ("kms.eu-west-1.amazonaws.com", b"{}", "AKIAEXAMPLE", "secret", None, "eu-west-1", when)
    assert ours(*args) == botocore_authorization(args[0], HEADERS, *args[1:])


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(max_size=300),
    secret=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=60),
    token=st.one_of(st.none(), st.text(alphabet="ABCDEFabcdef0123456789+/=", min_size=1, max_size=200)),
    region=st.sampled_from(["us-east-1", "eu-central-1", "ap-southeast-2"]),
    epoch=st.integers(min_value=1_500_000_000, max_value=2_000_000_000),
)
def test_random_requests_match_botocore(body: bytes, secret: str, token: str | None, region: str, epoch: int) -> None:
    when = datetime.fromtimestamp(epoch, UTC)
    host = f"kms.{region}.amazonaws.com"
    assert ours(host, body, "ASIATEST", secret, token, region, when) == botocore_authorization(
        host, HEADERS, body, "ASIATEST", secret, token, region, when
    )


def test_a_changed_body_changes_the_signature() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    first = ours("kms.us-east-1.amazonaws.com", b"{}", "A", "s", "t", "us-east-1", when)
    assert first != ours("kms.us-east-1.amazonaws.com", b"{ }", "A", "s", "t", "us-east-1", when)
