"""zk steps through the prover queue, end to end: `trustdial pipeline run --prover-queue ...`
uploads the head's input and artifacts to S3 on a real moto server (127.0.0.1), enqueues a job in
the prover's format, a real `trustdial prover worker` subprocess proves it, the run downloads the
proof and writes the composite receipt, and `trustdial-verify receipt` accepts it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from hybrid.hybrid_setup import BIN, Published, input_file, verify
from prover.aws_clients import make_clients

pytestmark = pytest.mark.slow


@dataclass
class Queue:
    endpoint: str
    url: str
    bucket: str
    s3: Any


@dataclass
class WorkerProcess:
    process: subprocess.Popen[str]
    events: list[dict[str, Any]] = field(default_factory=list)


def _queue(endpoint: str, bucket: str | None = None) -> Queue:
    """A fresh job queue; a fresh bucket unless given (the head's ~160 MB proving key is uploaded
    once per bucket: its artifacts prefix is content-addressed)."""
    sqs, s3 = make_clients(endpoint)
    name = uuid.uuid4().hex[:10]
    if bucket is None:
        bucket = f"pipeline-{name}"
        s3.create_bucket(Bucket=bucket)
    url = sqs.create_queue(QueueName=f"jobs-{name}", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    return Queue(endpoint=endpoint, url=url, bucket=bucket, s3=s3)


@pytest.fixture(scope="module")
def queue(moto_endpoint: str) -> Queue:
    return _queue(moto_endpoint)


@pytest.fixture(scope="module")
def worker(queue: Queue) -> Iterator[WorkerProcess]:
    command = [
        str(BIN / "trustdial"), "prover", "worker", "--queue-url", queue.url, "--bucket", queue.bucket,
        "--endpoint-url", queue.endpoint, "--visibility-timeout", "30", "--wait-time", "1",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    running = WorkerProcess(process)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            running.events.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        reader.join(timeout=5)


def _run(published: Published, queue: Queue, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    receipt, root = published.root / f"{name}.json", published.root / f"{name}.root.pem"
    command = [
        str(BIN / "trustdial"), "pipeline", "run", str(published.pipeline), "--split", str(published.split),
        "--input", str(input_file(published.root / f"{name}.in.json", 5)), "--local",
        "--measurements", str(published.manifest), "--output", str(receipt), "--root-out", str(root),
        "--prover-queue", queue.url, "--prover-bucket", queue.bucket, "--endpoint-url", queue.endpoint, *extra,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=dict(os.environ))


@pytest.fixture(scope="module")
def queued_run(private: Published, queue: Queue, worker: WorkerProcess) -> subprocess.CompletedProcess[str]:
    done = _run(private, queue, "queued", "--timeout", "500")
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_receipt_proven_through_the_queue_verifies(private: Published, queued_run: Any) -> None:
    receipt, root = private.root / "queued.json", private.root / "queued.root.pem"
    done = verify(*private.verify_args(receipt, root))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert [(s["segment"], s["mode"]) for s in report["steps"]] == [("body", "tee"), ("head", "zk")]


def test_the_worker_proved_and_stored_the_head_job(queued_run: Any, worker: WorkerProcess, queue: Queue) -> None:
    stored = [e for e in worker.events if e["event"] == "proof_stored"]
    assert len(stored) == 1
    queue.s3.head_object(Bucket=queue.bucket, Key=stored[0]["key"])


def test_the_job_is_in_the_prover_job_format(queued_run: Any, worker: WorkerProcess, queue: Queue) -> None:
    (received,) = [e for e in worker.events if e["event"] == "job_received"]
    listed = queue.s3.list_objects_v2(Bucket=queue.bucket, Prefix="inputs/")["Contents"]
    assert f"inputs/{received['job_id']}.json" in [o["Key"] for o in listed]
    artifacts = queue.s3.list_objects_v2(Bucket=queue.bucket, Prefix="pipeline-artifacts/head/")["Contents"]
    assert any(o["Key"].endswith("/artifacts.json") for o in artifacts)


def test_run_prints_progress_while_waiting_for_the_proof(queued_run: subprocess.CompletedProcess[str]) -> None:
    assert "enqueued job" in queued_run.stderr
    assert "downloaded" in queued_run.stderr


def test_no_proof_within_the_timeout_is_a_typed_error_and_writes_no_receipt(private: Published, queue: Queue) -> None:
    idle = _queue(queue.endpoint, queue.bucket)  # no worker takes its jobs
    done = _run(private, idle, "timed-out", "--timeout", "2", "--json")
    assert done.returncode == 2
    assert json.loads(done.stdout.strip().splitlines()[-1])["code"] == "PIPELINE_PROOF_TIMEOUT"
    assert not (private.root / "timed-out.json").exists()


def test_a_failed_worker_attempt_ends_the_wait_with_its_code(private: Published, queue: Queue) -> None:
    # The failing worker is played by its documented failure record (<proof_key>.error.json).
    import numpy as np
    from trustdial_verifier._internal.proof.tensors import tensor_from_bytes

    from trustdial.pipeline.errors import PipelineError
    from trustdial.pipeline.queue_prover import QueueConfig, QueueProver

    idle = _queue(queue.endpoint, queue.bucket)
    sqs, _ = make_clients(queue.endpoint)
    prover = QueueProver(QueueConfig(queue_url=idle.url, bucket=idle.bucket, endpoint_url=queue.endpoint, timeout_s=60))
    array = np.zeros((1, 4), dtype="<f4")
    outcome: dict[str, BaseException] = {}

    def prove() -> None:
        try:
            prover.prove("head", private.zk_artifacts / "head", tensor_from_bytes("float32", (1, 4), array.tobytes()))
        except PipelineError as err:
            outcome["error"] = err

    thread = threading.Thread(target=prove)
    thread.start()
    messages: list[dict[str, Any]] = []
    while not messages and thread.is_alive():
        messages = sqs.receive_message(QueueUrl=idle.url, WaitTimeSeconds=1).get("Messages", [])
    job = json.loads(messages[0]["Body"])
    record = {"job_id": job["job_id"], "code": "PROVE_FAILED", "reason": "ezkl could not prove this input"}
    idle.s3.put_object(Bucket=idle.bucket, Key=job["proof_key"] + ".error.json", Body=json.dumps(record).encode())
    thread.join(timeout=60)
    error = outcome["error"]
    assert isinstance(error, PipelineError) and error.code == "PIPELINE_PROOF_FAILED"
    assert "PROVE_FAILED" in error.reason


def test_prover_queue_without_a_bucket_is_a_usage_error(private: Published, capsys: pytest.CaptureFixture[str]) -> None:
    from trustdial.cli import main

    status = main(
        [
            "pipeline", "run", str(private.pipeline), "--split", str(private.split), "--input", "x.json", "--local",
            "--measurements", str(private.manifest), "--output", str(private.root / "never.json"),
            "--prover-queue", "http://127.0.0.1:1/queue", "--json",
        ]
    )  # fmt: skip
    assert status == 2
    assert json.loads(capsys.readouterr().out)["code"] == "MISSING_ARGUMENT"
    assert not (private.root / "never.json").exists()
