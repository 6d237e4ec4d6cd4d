"""Prover fleet against a real moto server on loopback: worker processes, SQS visibility, S3 proofs, DLQ."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aws_loopback import AWS_TEST_ENV
from trustdial_verifier._internal.proof.artifacts import sha256_file
from trustdial_verifier._internal.proof.tensors import load_tensor_file
from trustdial_verifier._internal.proof.verify import verify_proof
from zk_test_support import SIZES, write_tensor

from prover.aws_clients import make_clients
from prover.jobs import ProofJob
from prover.submit import submit_job, upload_artifacts

BIN = Path(sys.executable).parent
MAX_RECEIVES = 3


@dataclass
class Fleet:
    endpoint: str
    sqs: Any
    s3: Any
    bucket: str
    queue_url: str
    dlq_url: str
    prefix: str = "artifacts/public/"


@dataclass
class WorkerProcess:
    process: subprocess.Popen[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    reader: threading.Thread | None = None

    def wait_for(self, predicate: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                if predicate(event):
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no matching event within {timeout}s; events: {self.events[-10:]}")

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]


@pytest.fixture
def fleet(moto_endpoint: str, public_circuit) -> Fleet:
    sqs, s3 = make_clients(moto_endpoint)
    name = uuid.uuid4().hex[:10]
    bucket = f"proofs-{name}"
    s3.create_bucket(Bucket=bucket)
    dlq_url = sqs.create_queue(QueueName=f"dlq-{name}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)})
    queue_url = sqs.create_queue(
        QueueName=f"jobs-{name}", Attributes={"VisibilityTimeout": "4", "RedrivePolicy": redrive}
    )["QueueUrl"]
    fleet = Fleet(moto_endpoint, sqs, s3, bucket, queue_url, dlq_url)
    upload_artifacts(s3, bucket, public_circuit.directory, fleet.prefix)
    return fleet


def start_worker(fleet: Fleet, *extra: str) -> WorkerProcess:
    command = [str(BIN / "trustdial"), "prover", "worker", "--queue-url", fleet.queue_url, "--bucket", fleet.bucket]
    command += ["--endpoint-url", fleet.endpoint, "--visibility-timeout", "4", "--wait-time", "1", *extra]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **AWS_TEST_ENV},
        start_new_session=True,
    )
    worker = WorkerProcess(process)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            worker.events.append(json.loads(line))

    worker.reader = threading.Thread(target=read, daemon=True)
    worker.reader.start()
    return worker


def stop_worker(worker: WorkerProcess) -> int:
    if worker.process.poll() is None:
        worker.process.send_signal(signal.SIGTERM)
    status = worker.process.wait(timeout=60)
    if worker.reader is not None:
        worker.reader.join(timeout=5)
    return status


def submit_inputs(fleet: Fleet, tmp_path: Path, count: int, *, prefix: str = "job") -> dict[str, tuple[ProofJob, Path]]:
    jobs = {}
    rng = np.random.default_rng(11)
    for index in range(count):
        tensor = write_tensor(tmp_path / f"{prefix}-{index}.json", rng.normal(size=(1, SIZES[0])).astype(np.float32))
        job = submit_job(
            fleet.sqs,
            fleet.s3,
            queue_url=fleet.queue_url,
            bucket=fleet.bucket,
            artifacts_prefix=fleet.prefix,
            input_file=tensor,
            job_id=f"{prefix}-{index:02d}",
        )
        jobs[job.job_id] = (job, tensor)
    return jobs


def object_exists(fleet: Fleet, key: str) -> bool:
    listing = fleet.s3.list_objects_v2(Bucket=fleet.bucket, Prefix=key)
    return any(obj["Key"] == key for obj in listing.get("Contents", []))


def queue_depth(fleet: Fleet, url: str) -> int:
    attributes = fleet.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def verify_stored_proof(fleet: Fleet, public_circuit, job: ProofJob, tensor: Path, tmp_path: Path) -> None:
    local = tmp_path / f"stored-{job.job_id}.json"
    fleet.s3.download_file(fleet.bucket, job.proof_key, str(local))
    honest = {  # pins of the build the fleet was given, hashed from its files (not read from artifacts.json)
        "vk": sha256_file(public_circuit.directory / "vk.key"),
        "settings": sha256_file(public_circuit.directory / "settings.json"),
    }
    report = verify_proof(
        local,
        public_circuit.directory,
        inputs=load_tensor_file(tensor, side="input"),
        allow_dev_srs=True,
        expected_sha256=honest,
    )
    assert report.input_checked


def test_fleet_survives_sigkill_and_sends_poison_to_dlq(fleet, public_circuit, tmp_path) -> None:
    jobs = submit_inputs(fleet, tmp_path, 12)
    poison_input = write_tensor(tmp_path / "poison.json", np.zeros((1, SIZES[0] + 1), dtype=np.float32))
    poison = submit_job(
        fleet.sqs,
        fleet.s3,
        queue_url=fleet.queue_url,
        bucket=fleet.bucket,
        artifacts_prefix=fleet.prefix,
        input_file=poison_input,
        job_id="poison",
    )
    victim, survivor = start_worker(fleet), start_worker(fleet)
    try:
        started = victim.wait_for(lambda e: e["event"] == "prove_started" and e["job_id"] in jobs, timeout=120)
        os.killpg(victim.process.pid, signal.SIGKILL)
        victim.process.wait(timeout=30)
        killed_job = started["job_id"]

        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            done = all(object_exists(fleet, job.proof_key) for job, _ in jobs.values())
            if done and queue_depth(fleet, fleet.dlq_url) == 1 and queue_depth(fleet, fleet.queue_url) == 0:
                break
            time.sleep(0.5)
        assert stop_worker(survivor) == 0
    finally:
        for worker in (victim, survivor):
            if worker.process.poll() is None:
                os.killpg(worker.process.pid, signal.SIGKILL)

    # every job: exactly one stored proof, and it verifies for that job's own input
    events = victim.events + survivor.events
    for job_id, (job, tensor) in jobs.items():
        stored = [e for e in events if e["event"] == "proof_stored" and e["job_id"] == job_id]
        assert len(stored) == 1, (job_id, stored)
        late = [
            e for e in events if e["event"] == "prove_started" and e["job_id"] == job_id and e["t"] > stored[0]["t"]
        ]
        assert late == [], f"{job_id} was proved again after its proof was stored"
        verify_stored_proof(fleet, public_circuit, job, tensor, tmp_path)
    # the job whose worker died mid-proof was finished by the other worker
    assert not any(e["event"] == "proof_stored" and e["job_id"] == killed_job for e in victim.events)
    assert any(e["event"] == "proof_stored" and e["job_id"] == killed_job for e in survivor.events)
    # nothing lost: main queue drained; the poison job is in the DLQ with its error recorded
    assert queue_depth(fleet, fleet.queue_url) == 0
    dead = fleet.sqs.receive_message(QueueUrl=fleet.dlq_url, WaitTimeSeconds=1)["Messages"]
    assert [json.loads(m["Body"])["job_id"] for m in dead] == ["poison"]
    error = json.loads(fleet.s3.get_object(Bucket=fleet.bucket, Key=poison.error_key)["Body"].read())
    assert error["code"] == "PROVE_FAILED" and error["attempt"] == MAX_RECEIVES
    assert not object_exists(fleet, poison.proof_key)


def test_redelivered_job_with_stored_proof_is_acknowledged_without_proving(fleet, tmp_path) -> None:
    ((job, _),) = submit_inputs(fleet, tmp_path, 1, prefix="done").values()
    fleet.s3.put_object(Bucket=fleet.bucket, Key=job.proof_key, Body=b'{"already": "stored"}')
    worker = start_worker(fleet)
    try:
        worker.wait_for(lambda e: e["event"] == "job_acknowledged" and e["job_id"] == job.job_id, timeout=60)
    finally:
        assert stop_worker(worker) == 0
    assert worker.named("already_proved") and not worker.named("prove_started")
    assert fleet.s3.get_object(Bucket=fleet.bucket, Key=job.proof_key)["Body"].read() == b'{"already": "stored"}'
    assert queue_depth(fleet, fleet.queue_url) == 0


def test_sigterm_mid_proof_finishes_the_job_within_grace(fleet, public_circuit, tmp_path) -> None:
    ((job, tensor),) = submit_inputs(fleet, tmp_path, 1, prefix="finish").values()
    worker = start_worker(fleet, "--shutdown-grace", "120")
    worker.wait_for(lambda e: e["event"] == "prove_started", timeout=60)
    assert stop_worker(worker) == 0
    names = [e["event"] for e in worker.events]
    assert names.index("shutdown_requested") < names.index("proof_stored") < names.index("job_acknowledged")
    verify_stored_proof(fleet, public_circuit, job, tensor, tmp_path)
    assert queue_depth(fleet, fleet.queue_url) == 0


def test_sigterm_mid_proof_without_grace_releases_the_job(fleet, tmp_path) -> None:
    ((job, _),) = submit_inputs(fleet, tmp_path, 1, prefix="release").values()
    worker = start_worker(fleet, "--shutdown-grace", "0")
    worker.wait_for(lambda e: e["event"] == "prove_started", timeout=60)
    assert stop_worker(worker) == 0
    assert worker.named("prove_abandoned") and worker.named("job_released") and not worker.named("proof_stored")
    assert not object_exists(fleet, job.proof_key)
    # released means visible again right away, not after the visibility timeout
    again = fleet.sqs.receive_message(
        QueueUrl=fleet.queue_url, WaitTimeSeconds=1, AttributeNames=["ApproximateReceiveCount"]
    )
    assert [json.loads(m["Body"])["job_id"] for m in again["Messages"]] == [job.job_id]


def test_concurrency_two_proves_jobs_in_parallel_slots(fleet, public_circuit, tmp_path) -> None:
    jobs = submit_inputs(fleet, tmp_path, 4, prefix="parallel")
    worker = start_worker(fleet, "--concurrency", "2")
    try:
        for job_id in jobs:
            worker.wait_for(lambda e, j=job_id: e["event"] == "job_acknowledged" and e["job_id"] == j, timeout=180)
    finally:
        assert stop_worker(worker) == 0
    assert {e["slot"] for e in worker.named("job_received")} == {0, 1}
    for job, tensor in jobs.values():
        verify_stored_proof(fleet, public_circuit, job, tensor, tmp_path)
    assert queue_depth(fleet, fleet.queue_url) == 0


def test_the_submit_command_uploads_artifacts_and_queues_a_job_the_worker_proves(
    fleet, public_circuit, tmp_path
) -> None:
    """``trustdial prover submit`` as docs/usage.md shows it (artifacts uploaded under a fresh prefix first): the
    worker proves the job it queued, and the stored proof verifies against the build's own pins."""
    values = np.random.default_rng(5).normal(size=(1, SIZES[0])).astype(np.float32)
    tensor = write_tensor(tmp_path / "cli-input.json", values)
    prefix = f"cli-{uuid.uuid4().hex[:8]}/"
    done = subprocess.run(
        [
            str(BIN / "trustdial"), "prover", "submit", "--queue-url", fleet.queue_url, "--bucket", fleet.bucket,
            "--artifacts-prefix", prefix, "--upload-artifacts", str(public_circuit.directory),
            "--input", str(tensor), "--endpoint-url", fleet.endpoint,
        ],
        capture_output=True, text=True, timeout=120, env={**os.environ, **AWS_TEST_ENV},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["ok"] is True and answer["artifacts_prefix"] == prefix
    assert object_exists(fleet, prefix + "artifacts.json")
    job = ProofJob(**{k: v for k, v in answer.items() if k != "ok"})
    worker = start_worker(fleet)
    try:
        worker.wait_for(lambda e: e["event"] == "job_acknowledged" and e["job_id"] == job.job_id, timeout=180)
    finally:
        assert stop_worker(worker) == 0
    verify_stored_proof(fleet, public_circuit, job, tensor, tmp_path)
