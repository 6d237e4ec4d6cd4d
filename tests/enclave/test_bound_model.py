"""A model bound to the sealer-process ring: onnxruntime reads and writes the slots, the sealer
commits those bytes. Every receipt is checked with the unchanged verifier against tensors
committed independently (``trustdial_verifier._internal.tensors`` from the caller's own arrays and a plain
``session.run``), and every failure is typed and loses nothing that came after it."""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from trustdial_verifier._internal.receipts import ReceiptExpectation, check_statement, open_receipt
from trustdial_verifier._internal.tensors import Tensor, TensorError, commit_tensors
from trustdial_verifier.errors import VerificationError

from enclave_app.receipts.bound_model import BoundModel
from enclave_app.receipts.key import ReceiptKey
from enclave_app.receipts.process_pipeline import ProcessReceiptPipeline, SealerProcessError
from enclave_app.reference_models import build_cnn, build_mlp

ATTESTATION = hashlib.sha256(b"binding document").digest()
MODEL = hashlib.sha256(b"model").digest()


def _session(model: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _two_in_two_out() -> bytes:
    """Inputs named so that canonical (sorted) order differs from the graph's order, mixed dtypes."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["zeta", "alpha"], ["sum"]),
            helper.make_node("Cast", ["sum"], ["Big"], to=TensorProto.INT64),
        ],
        "two",
        [
            helper.make_tensor_value_info("zeta", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [2, 3]),
        ],
        [
            helper.make_tensor_value_info("sum", TensorProto.FLOAT, [2, 3]),
            helper.make_tensor_value_info("Big", TensorProto.INT64, [2, 3]),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _verify(
    key: ReceiptKey,
    raw: bytes,
    inputs: dict[str, np.ndarray],
    outputs: dict[str, np.ndarray],
    nonce: bytes,
    op: str = "infer",
    params: dict[str, int | str] | None = None,
):
    statement = open_receipt(raw, public_key=key.public_key_der(), attestation_digest=ATTESTATION).statement
    expected_in = {name: Tensor.from_array(value) for name, value in inputs.items()}
    expected_out = {name: Tensor.from_array(value) for name, value in outputs.items()}
    assert statement.input.digest == commit_tensors(expected_in)
    assert statement.output.digest == commit_tensors(expected_out)
    check_statement(
        statement,
        ReceiptExpectation(
            models=frozenset({MODEL}), inputs=expected_in, outputs=expected_out, nonce=nonce, op=op, params=params or {}
        ),
    )
    return statement


@pytest.mark.parametrize(("builder", "shape"), [(build_mlp, (1, 784)), (build_cnn, (1, 1, 28, 28))])
def test_receipts_of_bound_runs_commit_the_plain_runs_tensors(builder, shape) -> None:
    session = _session(builder())
    key = ReceiptKey.generate()
    pipeline = ProcessReceiptPipeline(key, ATTESTATION, slots=8, max_batch=5)
    bound = BoundModel(pipeline, session, MODEL)
    rng = np.random.default_rng(1)
    runs = []
    for i in range(40):  # five times round the ring: slots are reused
        x = rng.standard_normal(shape).astype(np.float32)
        nonce = os.urandom(i % 65)
        outputs, future = bound.run({"x": x}, nonce)
        plain = session.run(None, {"x": x})
        assert all(np.array_equal(a, b) for a, b in zip(outputs, plain, strict=True))
        runs.append((x, plain, nonce, future))
    pipeline.drain()
    for i, (x, plain, nonce, future) in enumerate(runs):
        statement = _verify(key, future.result(timeout=30), {"x": x}, {"y": plain[0]}, nonce)
        assert (statement.seq, statement.op) == (i + 1, "infer")
    pipeline.close()


def test_several_inputs_and_outputs_are_committed_in_canonical_order() -> None:
    session = _session(_two_in_two_out())
    key = ReceiptKey.generate()
    pipeline = ProcessReceiptPipeline(key, ATTESTATION)
    bound = BoundModel(pipeline, session, MODEL)
    zeta = np.arange(6, dtype=np.float32).reshape(2, 3)
    alpha = np.full((2, 3), 0.5, np.float32)
    (total, big), future = bound.run({"zeta": zeta, "alpha": alpha}, b"n")
    assert np.array_equal(total, zeta + alpha) and big.dtype == np.int64
    _verify(key, future.result(timeout=30), {"alpha": alpha, "zeta": zeta}, {"sum": total, "Big": big}, b"n")
    pipeline.close()


def test_bound_runs_and_submitted_responses_share_one_sequence() -> None:
    """A submit in between overwrites a slot's headers; the bound model rewrites them."""
    session = _session(build_mlp())
    key = ReceiptKey.generate()
    pipeline = ProcessReceiptPipeline(key, ATTESTATION, slots=3)
    bound = BoundModel(pipeline, session, MODEL)
    x = np.ones((1, 784), np.float32)
    futures = []
    for i in range(12):
        if i % 2:
            tokens = np.array([[i]], np.int64)
            futures.append(pipeline.submit("generate", MODEL, {"ids": tokens}, {"ids": tokens}, b"g", {"n": i}))
        else:
            futures.append(bound.run({"x": x}, b"b")[1])
    y = session.run(None, {"x": x})[0]
    for i, future in enumerate(futures):
        raw = future.result(timeout=30)
        if i % 2:
            tokens = np.array([[i]], np.int64)
            statement = _verify(key, raw, {"ids": tokens}, {"ids": tokens}, b"g", "generate", {"n": i})
            assert statement.op == "generate"
        else:
            statement = _verify(key, raw, {"x": x}, {"y": y}, b"b")
        assert statement.seq == i + 1
    pipeline.close()


@pytest.mark.parametrize(
    "feeds",
    [
        {"x": np.zeros((1, 784), np.float64)},
        {"x": np.zeros((784,), np.float32)},
        {"x": np.zeros((1, 784), np.float32), "extra": np.zeros(1, np.float32)},
        {"y": np.zeros((1, 784), np.float32)},
        {"x": [[0.0] * 784]},
        {"x": np.zeros((1, 784), ">f4")},
    ],
    ids=["dtype", "shape", "extra-input", "wrong-name", "not-an-array", "big-endian"],
)
def test_inputs_off_the_bound_layout_are_refused_before_taking_a_slot(feeds) -> None:
    key = ReceiptKey.generate()
    pipeline = ProcessReceiptPipeline(key, ATTESTATION)
    bound = BoundModel(pipeline, _session(build_mlp()), MODEL)
    with pytest.raises(TensorError) as caught:
        bound.run(feeds, b"")
    assert caught.value.code == "TENSOR_LAYOUT"
    x = np.zeros((1, 784), np.float32)
    outputs, future = bound.run({"x": x}, b"")
    assert _verify(key, future.result(timeout=30), {"x": x}, {"y": outputs[0]}, b"").seq == 1
    pipeline.close()


def test_an_equal_dtype_that_is_not_numpys_shared_instance_is_accepted() -> None:
    """The inline check compares dtypes by identity first; an equal dtype object must still pass."""
    key = ReceiptKey.generate()
    pipeline = ProcessReceiptPipeline(key, ATTESTATION)
    bound = BoundModel(pipeline, _session(build_mlp()), MODEL)
    x = np.random.default_rng(3).standard_normal((1, 784)).astype(np.float32)
    other = x.view(np.dtype(np.float32).newbyteorder("<"))
    assert other.dtype is not x.dtype and other.dtype == x.dtype
    outputs, future = bound.run({"x": other}, b"eq")
    assert np.array_equal(outputs[0], _session(build_mlp()).run(None, {"x": x})[0])
    _verify(key, future.result(timeout=30), {"x": x}, {"y": outputs[0]}, b"eq")
    pipeline.close()


def test_a_nonce_over_64_bytes_is_refused_with_a_typed_error() -> None:
    pipeline = ProcessReceiptPipeline(ReceiptKey.generate(), ATTESTATION)
    bound = BoundModel(pipeline, _session(build_mlp()), MODEL)
    try:
        with pytest.raises(SealerProcessError) as caught:
            bound.run({"x": np.zeros((1, 784), np.float32)}, b"n" * 65)
        assert caught.value.code == "RECEIPT_NONCE_TOO_LONG"
        with pytest.raises(SealerProcessError):
            pipeline.submit("infer", MODEL, {"x": np.zeros(1, np.float32)}, {"y": np.zeros(1, np.float32)}, b"n" * 65)
    finally:
        pipeline.close()


def test_an_inference_failure_after_the_slot_was_taken_gets_an_error_record_and_the_next_run_its_receipt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = ReceiptKey.generate()
    pipeline = ProcessReceiptPipeline(key, ATTESTATION, slots=2)
    session = _session(build_mlp())
    bound = BoundModel(pipeline, session, MODEL)
    x = np.ones((1, 784), np.float32)
    with monkeypatch.context() as patch:  # fault injection: onnxruntime fails mid-run
        patch.setattr(bound, "_run", lambda binding: (_ for _ in ()).throw(RuntimeError("device lost")))
        with pytest.raises(RuntimeError):
            bound.run({"x": x}, b"a")
    futures = [bound.run({"x": x}, b"b")[1] for _ in range(3)]  # round the 2-slot ring, the void one too
    y = session.run(None, {"x": x})[0]
    assert [_verify(key, f.result(timeout=30), {"x": x}, {"y": y}, b"b").seq for f in futures] == [2, 3, 4]
    pipeline.close()


def test_a_failed_slot_resolves_its_own_future_with_inference_failed() -> None:
    key = ReceiptKey.generate()
    pipeline = ProcessReceiptPipeline(key, ATTESTATION)
    seq = pipeline.reserve()
    future: Future[bytes] = Future()
    pipeline._futures[seq] = future
    pipeline.publish_void(seq)
    with pytest.raises(VerificationError) as caught:
        future.result(timeout=30)
    assert caught.value.code == "INFERENCE_FAILED"
    pipeline.close()


def test_concurrent_threads_each_get_their_own_slot_and_a_verifying_receipt() -> None:
    session = _session(build_mlp())
    key = ReceiptKey.generate()
    pipeline = ProcessReceiptPipeline(key, ATTESTATION, slots=4, max_batch=7)
    bound = BoundModel(pipeline, session, MODEL)
    results: list[tuple[np.ndarray, list[np.ndarray], bytes, Future[bytes]]] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        rng = np.random.default_rng(index)
        for j in range(50):
            x = rng.standard_normal((1, 784)).astype(np.float32)
            nonce = b"%d/%d" % (index, j)
            outputs, future = bound.run({"x": x}, nonce)
            assert future is not None
            with lock:
                results.append((x, outputs, nonce, future))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pipeline.drain()
    seqs = []
    for x, outputs, nonce, future in results:
        assert np.array_equal(outputs[0], session.run(None, {"x": x})[0])
        seqs.append(_verify(key, future.result(timeout=30), {"x": x}, {"y": outputs[0]}, nonce).seq)
    assert sorted(seqs) == list(range(1, 301))
    pipeline.close()


def test_models_without_static_shapes_are_not_bindable() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "dynamic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    pipeline = ProcessReceiptPipeline(ReceiptKey.generate(), ATTESTATION)
    try:
        with pytest.raises(SealerProcessError) as caught:
            BoundModel(pipeline, _session(model), MODEL)
        assert caught.value.code == "RECEIPT_NOT_BINDABLE"
    finally:
        pipeline.close()
    small = ProcessReceiptPipeline(ReceiptKey.generate(), ATTESTATION, slot_size=1024)
    try:
        with pytest.raises(SealerProcessError) as caught:
            BoundModel(small, _session(build_mlp()), MODEL)
        assert caught.value.code == "RECEIPT_SLOT_OVERFLOW"
    finally:
        small.close()


def test_bool_inputs_must_hold_canonical_bytes() -> None:
    graph = helper.make_graph(
        [helper.make_node("Not", ["flags"], ["inverted"])],
        "bools",
        [helper.make_tensor_value_info("flags", TensorProto.BOOL, [4])],
        [helper.make_tensor_value_info("inverted", TensorProto.BOOL, [4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    key = ReceiptKey.generate()
    pipeline = ProcessReceiptPipeline(key, ATTESTATION)
    try:
        bound = BoundModel(pipeline, _session(model), MODEL)
        with pytest.raises(TensorError) as caught:  # a byte of 2 is "true" to numpy, not canonical
            bound.run({"flags": np.frombuffer(b"\x00\x01\x02\x00", np.bool_)}, b"")
        assert caught.value.code == "TENSOR_BOOL"
        flags = np.array([True, False, True, True])
        (inverted,), future = bound.run({"flags": flags}, b"b")
        assert inverted.tolist() == [False, True, False, False]
        assert future is not None
        _verify(key, future.result(timeout=30), {"flags": flags}, {"inverted": inverted}, b"b")
    finally:
        pipeline.close()
