"""Bad input at the gateway (HTTP) and at the enclave server (frames) gets a 4xx / error
frame with a stable code, and the service keeps serving everyone else."""

from __future__ import annotations

import base64
import socket
import struct
import threading
import time
from typing import Any

import cbor2
import httpx
import numpy as np
import pytest

from enclave.live_service import LiveService

GOOD = {
    "model": "mlp",
    "inputs": {"x": {"dtype": "float32", "shape": [1, 16], "data": base64.b64encode(bytes(64)).decode()}},
}


def _post(live: LiveService, body: Any = None, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{live.url}/v1/infer", json=body, timeout=30, **kwargs)


def _still_serving(live: LiveService) -> None:
    response = _post(live, GOOD)
    assert response.status_code == 200, response.text
    assert "receipt" in response.json()


def _code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def _with_input(**tensor: Any) -> dict[str, Any]:
    return {"model": "mlp", "inputs": {"x": {**GOOD["inputs"]["x"], **tensor}}}  # type: ignore[index]


def test_malformed_json_is_400(live: LiveService) -> None:
    response = _post(live, content=b'{"model": "mlp", "inputs": ', headers={"content-type": "application/json"})
    assert (response.status_code, _code(response)) == (400, "MALFORMED_JSON")
    _still_serving(live)


def test_missing_field_is_400(live: LiveService) -> None:
    response = _post(live, {"model": "mlp"})
    assert (response.status_code, _code(response)) == (400, "BAD_REQUEST")
    _still_serving(live)


def test_wrong_dtype_is_400(live: LiveService) -> None:
    response = _post(live, _with_input(dtype="int32"))
    assert (response.status_code, _code(response)) == (400, "BAD_DTYPE")
    _still_serving(live)


def test_unsupported_dtype_is_400(live: LiveService) -> None:
    response = _post(live, _with_input(dtype="complex64"))
    assert (response.status_code, _code(response)) == (400, "BAD_DTYPE")


def test_wrong_shape_is_400(live: LiveService) -> None:
    response = _post(live, _with_input(shape=[2, 8]))
    assert (response.status_code, _code(response)) == (400, "BAD_SHAPE")
    _still_serving(live)


def test_data_not_matching_shape_is_400(live: LiveService) -> None:
    response = _post(live, _with_input(data=base64.b64encode(bytes(60)).decode()))
    assert (response.status_code, _code(response)) == (400, "BAD_TENSOR")


def test_bad_base64_is_400(live: LiveService) -> None:
    response = _post(live, _with_input(data="***"))
    assert (response.status_code, _code(response)) == (400, "BAD_TENSORS")


def test_unknown_model_is_404(live: LiveService) -> None:
    response = _post(live, {**GOOD, "model": "nope"})
    assert (response.status_code, _code(response)) == (404, "UNKNOWN_MODEL")
    _still_serving(live)


def test_bad_nonce_is_400(live: LiveService) -> None:
    response = _post(live, {**GOOD, "nonce": "zz"})
    assert (response.status_code, _code(response)) == (400, "BAD_NONCE")


def test_attestation_without_nonce_is_400(live: LiveService) -> None:
    response = httpx.get(f"{live.url}/v1/attestation", timeout=30)
    assert (response.status_code, _code(response)) == (400, "BAD_REQUEST")


def test_oversized_body_is_413(live: LiveService) -> None:
    big = np.zeros((1, 16), np.float32).tobytes() * 5000  # > 256 KiB limit once base64 encoded
    response = _post(live, _with_input(data=base64.b64encode(big).decode()))
    assert (response.status_code, _code(response)) == (413, "BODY_TOO_LARGE")
    _still_serving(live)


def test_oversized_chunked_body_is_413(live: LiveService) -> None:
    def chunks() -> Any:
        for _ in range(400):
            yield b" " * 1024

    response = httpx.post(f"{live.url}/v1/infer", content=chunks(), timeout=30)
    assert (response.status_code, _code(response)) == (413, "BODY_TOO_LARGE")
    _still_serving(live)


def test_unknown_route_is_404_with_a_code(live: LiveService) -> None:
    response = httpx.get(f"{live.url}/v1/nothing", timeout=30)
    assert (response.status_code, _code(response)) == (404, "NOT_FOUND")


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _read_http_response(sock: socket.socket) -> str:
    """Headers plus a Content-Length body, however the bytes are split into segments."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        assert part, "connection closed before the response headers"
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        part = sock.recv(65536)
        assert part, "connection closed before the response body"
        body += part
    return (head + b"\r\n\r\n" + body).decode()


def test_client_stalling_mid_body_gets_408_while_others_are_served(live: LiveService) -> None:
    stalled = socket.create_connection(_host_port(live.url), timeout=30)
    stalled.sendall(
        b"POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        b'{"model": "m'
    )
    started = time.monotonic()
    served = []
    while time.monotonic() - started < 1.0:  # others are served while the stalled body is pending
        served.append(_post(live, GOOD).status_code)
    reply = _read_http_response(stalled)
    stalled.close()
    assert set(served) == {200}
    assert reply.startswith("HTTP/1.1 408") and "REQUEST_TIMEOUT" in reply


def _enclave_socket(live: LiveService) -> socket.socket:
    _, host, port = live.enclave_address.split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _read_frame(sock: socket.socket) -> dict[str, Any]:
    header = b""
    while len(header) < 4:
        part = sock.recv(4 - len(header))
        assert part, "connection closed before a response frame"
        header += part
    (length,) = struct.unpack(">I", header)
    body = b""
    while len(body) < length:
        part = sock.recv(length - len(body))
        assert part, "connection closed inside a response frame"
        body += part
    return dict(cbor2.loads(body))


def _frame(message: dict[str, Any]) -> bytes:
    body = cbor2.dumps(message)
    return struct.pack(">I", len(body)) + body


def test_truncated_frame_gets_an_error_frame(live: LiveService) -> None:
    with _enclave_socket(live) as sock:
        sock.sendall(struct.pack(">I", 100) + b"\xa1" * 10)
        sock.shutdown(socket.SHUT_WR)
        reply = _read_frame(sock)
    assert reply["error"]["code"] == "FRAME_TRUNCATED"
    _still_serving(live)


def test_stalled_frame_times_out(live: LiveService) -> None:
    with _enclave_socket(live) as sock:
        sock.sendall(struct.pack(">I", 100) + b"\xa1")
        reply = _read_frame(sock)
    assert reply["error"]["code"] == "FRAME_TIMEOUT"
    _still_serving(live)


def test_oversized_frame_is_refused_before_reading_it(live: LiveService) -> None:
    with _enclave_socket(live) as sock:
        sock.sendall(struct.pack(">I", 0xFFFFFFF0))
        reply = _read_frame(sock)
    assert reply["error"]["code"] == "FRAME_TOO_LARGE"
    _still_serving(live)


def test_non_cbor_frame_is_refused_and_the_connection_continues(live: LiveService) -> None:
    with _enclave_socket(live) as sock:
        sock.sendall(struct.pack(">I", 3) + b"\xff\xff\xff")
        first = _read_frame(sock)
        sock.sendall(_frame({"id": 7, "op": "models"}))
        second = _read_frame(sock)
    assert first["error"]["code"] == "BAD_FRAME"
    assert second["ok"] and second["id"] == 7


def _shared_reference_bomb(levels: int) -> bytes:
    """CBOR of ``levels`` nested pairs that each name the previous level twice by shared reference (tags 28/29,
    RFC 8949 registry): about 9 bytes a level, 2**levels leaves once the references are followed."""
    out = bytearray(b"\xd8\x1c\x81\x61x")  # 28(["x"]): shared value 0
    for index in range(levels):
        reference = b"\xd8\x1d" + cbor2.dumps(index)  # 29(index)
        out += b"\xd8\x1c\x82" + reference + reference  # 28([29(index), 29(index)])
    return bytes(out)


def _raw_frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def test_shared_reference_frame_is_refused_with_a_code_and_the_connection_continues(live: LiveService) -> None:
    head = cbor2.dumps({"id": 5, "op": "infer", "model": "mlp"})
    body = (
        bytes([head[0] + 1])
        + head[1:]
        + cbor2.dumps("inputs")
        + b"\xa1"
        + cbor2.dumps("x")
        + _shared_reference_bomb(60)
    )
    assert len(body) < 1024
    with _enclave_socket(live) as sock:
        sock.sendall(_raw_frame(body))
        first = _read_frame(sock)
        sock.sendall(_frame({"id": 7, "op": "models"}))
        second = _read_frame(sock)
    assert first["error"]["code"] == "BAD_FRAME"
    assert "CBOR_UNSUPPORTED" in first["error"]["message"]
    assert second["ok"] and second["id"] == 7
    _still_serving(live)


def test_frame_with_a_repeated_key_is_refused(live: LiveService) -> None:
    # {"id": 3, "op": "models", "op": "infer"}: which "op" counts would depend on the decoder
    body = b"\xa3" + cbor2.dumps("id") + cbor2.dumps(3) + cbor2.dumps("op") + cbor2.dumps("models")
    body += cbor2.dumps("op") + cbor2.dumps("infer")
    with _enclave_socket(live) as sock:
        sock.sendall(_raw_frame(body))
        reply = _read_frame(sock)
    assert reply["error"]["code"] == "BAD_FRAME"
    assert "CBOR_DUPLICATE_KEY" in reply["error"]["message"]
    _still_serving(live)


def test_frame_with_a_non_finite_float_is_refused(live: LiveService) -> None:
    body = cbor2.dumps({"id": 4, "op": "models", "deadline": float("nan")})
    with _enclave_socket(live) as sock:
        sock.sendall(_raw_frame(body))
        reply = _read_frame(sock)
    assert reply["error"]["code"] == "BAD_FRAME"
    assert "CBOR_NON_FINITE" in reply["error"]["message"]


def test_unknown_operation_is_refused(live: LiveService) -> None:
    with _enclave_socket(live) as sock:
        sock.sendall(_frame({"id": 1, "op": "shutdown"}))
        reply = _read_frame(sock)
    assert reply["error"]["code"] == "UNKNOWN_OP"


def test_pipelined_requests_on_one_connection_are_all_answered(live: LiveService) -> None:
    x = {"dtype": "float32", "shape": [1, 16], "data": bytes(64)}
    with _enclave_socket(live) as sock:
        sock.sendall(b"".join(_frame({"id": i, "op": "infer", "model": "mlp", "inputs": {"x": x}}) for i in range(20)))
        replies = [_read_frame(sock) for _ in range(20)]
    assert sorted(r["id"] for r in replies) == list(range(20))
    assert all(r["ok"] for r in replies)


@pytest.mark.parametrize("threads", [8])
def test_bad_requests_in_parallel_do_not_disturb_good_ones(live: LiveService, threads: int) -> None:
    results: list[int] = []

    def good() -> None:
        results.extend(_post(live, GOOD).status_code for _ in range(10))

    def bad() -> None:
        for _ in range(10):
            _post(live, content=b"{", headers={"content-type": "application/json"})

    workers = [threading.Thread(target=good if i % 2 else bad) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert results == [200] * (threads // 2 * 10)
