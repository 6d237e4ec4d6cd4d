"""``trustdial prover worker``: a crash-safe consumer of proof jobs (SQS in, S3 out).

Guarantees, in the order a job goes through them:

* long-poll SQS; on receipt, immediately extend the message's visibility, then keep extending it
  from a heartbeat thread while the job runs (a dead worker stops extending, so the job reappears
  for another worker after the visibility timeout);
* idempotency: if the proof object already exists, acknowledge (delete) without proving;
* prove in a child process with hash-checked artifacts;
* store with a conditional put (``If-None-Match: *``) after re-checking existence, so a proof is
  never overwritten, then delete the message: only after the proof is stored;
* a failed attempt writes ``<proof_key>.error.json`` and releases the message at once; the queue's
  redrive policy (maxReceiveCount) moves a job that keeps failing to the dead-letter queue;
* SIGTERM/SIGINT: stop taking jobs; a running proof gets ``shutdown_grace_s`` to finish, otherwise
  it is abandoned and its message released (visibility 0) for another worker.

Every state change is one JSON line on stdout (``{"event": ..., "job_id": ..., "t": ..., "pid": ...}``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from prover.aws_clients import make_clients
from prover.errors import ProverError
from prover.jobs import ProofJob, parse_job
from prover.prove_child import EXIT_JOB_FAILED


@dataclass(frozen=True)
class WorkerConfig:
    queue_url: str
    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    concurrency: int = 1
    visibility_timeout_s: int = 60
    wait_time_s: int = 10
    shutdown_grace_s: float = 30.0
    cache_dir: Path | None = None

    @property
    def heartbeat_s(self) -> float:
        return max(0.5, self.visibility_timeout_s / 3)


class Worker:
    def __init__(self, config: WorkerConfig, events: TextIO | None = None) -> None:
        if config.concurrency < 1:
            raise ProverError("BAD_CONCURRENCY", f"expected concurrency >= 1, got {config.concurrency}")
        self.config = config
        self._events = events or sys.stdout
        self._events_lock = threading.Lock()
        self._stop = threading.Event()
        self._stop_at: float | None = None
        self._cache_lock = threading.Lock()
        self._cached: dict[str, Path] = {}
        self._scratch = tempfile.TemporaryDirectory(prefix="trustdial-worker-")
        self._cache_root = config.cache_dir or Path(self._scratch.name) / "artifacts"

    # -- lifecycle -------------------------------------------------------------------------
    def run(self) -> int:
        """Serve until stopped (SIGTERM/SIGINT or :meth:`stop`); returns the exit status."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self.emit("worker_started", concurrency=self.config.concurrency)
        threads = [
            threading.Thread(target=self._loop, args=(slot,), name=f"slot-{slot}")
            for slot in range(self.config.concurrency)
        ]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=0.2)
        self.emit("worker_stopped")
        self._scratch.cleanup()
        return 0

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop_at = time.monotonic()
            self._stop.set()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.emit("shutdown_requested", signal=signal.Signals(signum).name)
        self.stop()

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, "t": time.time(), "pid": os.getpid(), **fields})
        with self._events_lock:
            self._events.write(line + "\n")
            self._events.flush()

    # -- the job loop ----------------------------------------------------------------------
    def _loop(self, slot: int) -> None:
        sqs, s3 = make_clients(self.config.endpoint_url, self.config.region)
        while not self._stop.is_set():
            try:
                reply = sqs.receive_message(
                    QueueUrl=self.config.queue_url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=self.config.wait_time_s,
                    AttributeNames=["ApproximateReceiveCount"],
                )
            except (ClientError, BotoCoreError) as err:
                self.emit("receive_failed", slot=slot, error=str(err))
                self._stop.wait(1.0)
                continue
            for message in reply.get("Messages", []):
                if self._stop.is_set():
                    # received during the last long poll after shutdown began: hand it straight back
                    self._release(sqs, message["ReceiptHandle"], message.get("MessageId"))
                    continue
                self._handle(sqs, s3, message, slot)

    def _handle(self, sqs: Any, s3: Any, message: dict[str, Any], slot: int) -> None:
        handle = message["ReceiptHandle"]
        attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        heartbeat = _Heartbeat(self, sqs, handle)
        heartbeat.start()
        job: ProofJob | None = None
        try:
            job = parse_job(message["Body"])
            self.emit("job_received", job_id=job.job_id, attempt=attempt, slot=slot)
            if self._exists(s3, job.proof_key):
                self.emit("already_proved", job_id=job.job_id)
                heartbeat.stop()
                self._delete(sqs, handle, job)
                return
            outcome = self._prove(s3, job, slot)
            heartbeat.stop()
            if outcome == "released":
                self._release(sqs, handle, job.job_id)
                return
            self._delete(sqs, handle, job)
        except ProverError as err:
            heartbeat.stop()
            job_id = job.job_id if job is not None else message.get("MessageId")
            self.emit("job_failed", job_id=job_id, attempt=attempt, code=err.code, reason=err.reason)
            if job is not None:
                self._record_error(s3, job, err, attempt)
            self._release(sqs, handle, job_id)
        except (ClientError, BotoCoreError) as err:
            heartbeat.stop()
            job_id = job.job_id if job is not None else message.get("MessageId")
            self.emit("job_failed", job_id=job_id, attempt=attempt, code="AWS_ERROR", reason=str(err))
            self._release(sqs, handle, job_id)
        finally:
            heartbeat.stop()

    def _prove(self, s3: Any, job: ProofJob, slot: int) -> str:
        """Prove and store; returns "stored", "duplicate" or "released" (abandoned on shutdown)."""
        artifacts_dir = self._artifacts(s3, job.artifacts_prefix)
        work = Path(self._scratch.name) / f"slot-{slot}"
        work.mkdir(parents=True, exist_ok=True)
        input_path, proof_path, error_path = work / "input.json", work / "proof.json", work / "error.json"
        for stale in (proof_path, error_path):
            stale.unlink(missing_ok=True)
        try:
            s3.download_file(self.config.bucket, job.input_key, str(input_path))
        except ClientError as err:
            raise ProverError(
                "INPUT_NOT_FOUND", f"could not fetch s3://{self.config.bucket}/{job.input_key}: {err}"
            ) from err

        self.emit("prove_started", job_id=job.job_id)
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prover.prove_child",
                str(artifacts_dir),
                str(input_path),
                str(proof_path),
                str(error_path),
            ],
            stdout=sys.stderr,
            stderr=sys.stderr,
        )
        while True:
            try:
                status = child.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if self._stop.is_set() and self._stop_at is not None:
                    if time.monotonic() - self._stop_at >= self.config.shutdown_grace_s:
                        child.terminate()
                        try:
                            child.wait(timeout=10)
                        except subprocess.TimeoutExpired:
                            child.kill()
                            child.wait()
                        self.emit("prove_abandoned", job_id=job.job_id)
                        return "released"
        if status == EXIT_JOB_FAILED and error_path.is_file():
            failure = json.loads(error_path.read_text(encoding="utf-8"))
            raise ProverError(str(failure["code"]), str(failure["reason"]))
        if status != 0 or not proof_path.is_file():
            raise ProverError("PROVER_CRASHED", f"prover process exited with status {status}")
        self.emit("prove_finished", job_id=job.job_id)

        if self._exists(s3, job.proof_key):
            self.emit("duplicate_discarded", job_id=job.job_id)
            return "duplicate"
        try:
            s3.put_object(
                Bucket=self.config.bucket,
                Key=job.proof_key,
                Body=proof_path.read_bytes(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                self.emit("duplicate_discarded", job_id=job.job_id)
                return "duplicate"
            raise
        self.emit("proof_stored", job_id=job.job_id, key=job.proof_key)
        return "stored"

    # -- S3 / SQS helpers ------------------------------------------------------------------
    def _artifacts(self, s3: Any, prefix: str) -> Path:
        with self._cache_lock:
            cached = self._cached.get(prefix)
            if cached is not None:
                return cached
            target = self._cache_root / prefix.strip("/").replace("/", "__")
            target.mkdir(parents=True, exist_ok=True)
            paginator = s3.get_paginator("list_objects_v2")
            names = []
            for page in paginator.paginate(Bucket=self.config.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(prefix) :]
                    if name and "/" not in name:
                        s3.download_file(self.config.bucket, obj["Key"], str(target / name))
                        names.append(name)
            if "artifacts.json" not in names:
                raise ProverError("ARTIFACTS_NOT_FOUND", f"no artifacts.json under s3://{self.config.bucket}/{prefix}")
            self._cached[prefix] = target
            return target

    def _exists(self, s3: Any, key: str) -> bool:
        try:
            s3.head_object(Bucket=self.config.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def _delete(self, sqs: Any, handle: str, job: ProofJob) -> None:
        sqs.delete_message(QueueUrl=self.config.queue_url, ReceiptHandle=handle)
        self.emit("job_acknowledged", job_id=job.job_id)

    def _release(self, sqs: Any, handle: str, job_id: Any) -> None:
        try:
            sqs.change_message_visibility(QueueUrl=self.config.queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
            self.emit("job_released", job_id=job_id)
        except (ClientError, BotoCoreError) as err:
            self.emit("release_failed", job_id=job_id, error=str(err))

    def _record_error(self, s3: Any, job: ProofJob, err: ProverError, attempt: int) -> None:
        record = {
            "job_id": job.job_id,
            "code": err.code,
            "reason": err.reason,
            "attempt": attempt,
            "pid": os.getpid(),
            "t": time.time(),
        }
        try:
            s3.put_object(
                Bucket=self.config.bucket,
                Key=job.error_key,
                Body=json.dumps(record).encode(),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as put_err:
            self.emit("error_record_failed", job_id=job.job_id, error=str(put_err))


class _Heartbeat:
    """Keeps one message invisible while its job runs: extends now, then every heartbeat_s."""

    def __init__(self, worker: Worker, sqs: Any, handle: str) -> None:
        self._worker, self._sqs, self._handle = worker, sqs, handle
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._extend()
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self._worker.config.heartbeat_s):
            self._extend()

    def _extend(self) -> None:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._worker.config.queue_url,
                ReceiptHandle=self._handle,
                VisibilityTimeout=self._worker.config.visibility_timeout_s,
            )
        except (ClientError, BotoCoreError) as err:
            self._worker.emit("heartbeat_failed", error=str(err))
