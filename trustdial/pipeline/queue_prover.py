"""zk steps through the prover fleet (``trustdial prover worker``): upload the segment's artifacts
(once, under a content-addressed prefix) and the step's input to S3, enqueue a job in the prover's
job format (:func:`prover.submit.submit_job`), wait for the proof object, download it.

The artifacts prefix is ``<root>/<segment>/<sha256 of artifacts.json, 16 hex>/``: a changed
compile never aliases an older one (workers cache artifacts by prefix). A failed attempt (the
worker's ``<proof_key>.error.json``) ends the wait with ``PIPELINE_PROOF_FAILED``; no proof
within the timeout is ``PIPELINE_PROOF_TIMEOUT``. Either way the caller writes no receipt.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from trustdial_verifier.unstable.decoding import strict_json
from trustdial_verifier.unstable.proof import ARTIFACTS_FILE, Tensor, canonical_tensor_json

from prover.aws_clients import make_clients
from prover.errors import ProverError
from prover.jobs import ProofJob
from prover.submit import submit_job, upload_artifacts
from trustdial.pipeline.errors import PipelineError

DEFAULT_TIMEOUT_S = 900.0
DEFAULT_ARTIFACTS_ROOT = "pipeline-artifacts"
MAX_PROOF_BYTES = 64 << 20


@dataclass(frozen=True)
class QueueConfig:
    queue_url: str
    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    poll_s: float = 0.5
    progress_every_s: float = 5.0
    artifacts_root: str = DEFAULT_ARTIFACTS_ROOT


class QueueProver:
    """A :class:`trustdial.pipeline.run.StepProver` that proves through the job queue."""

    label = "proving through the prover queue"

    def __init__(self, config: QueueConfig, progress: Callable[[str], None] = lambda _line: None) -> None:
        self.config = config
        self.progress = progress
        self.sqs, self.s3 = make_clients(config.endpoint_url, config.region)
        self.jobs: list[ProofJob] = []

    def prove(self, segment: str, directory: Path, tensor: Tensor) -> dict[str, Any]:
        try:
            prefix = self._artifacts(segment, directory)
            with tempfile.TemporaryDirectory(prefix="trustdial-queue-") as scratch:
                data = Path(scratch) / "input.json"
                data.write_text(
                    json.dumps(canonical_tensor_json(list(tensor.values), list(tensor.shape), tensor.dtype))
                )
                job = submit_job(
                    self.sqs,
                    self.s3,
                    queue_url=self.config.queue_url,
                    bucket=self.config.bucket,
                    artifacts_prefix=prefix,
                    input_file=data,
                )
        except ProverError as err:
            raise PipelineError(err.code, err.reason) from err
        except (ClientError, BotoCoreError) as err:
            raise PipelineError("PIPELINE_QUEUE_ERROR", f"could not submit the {segment!r} job: {err}") from err
        self.jobs.append(job)
        self.progress(f"{segment}: enqueued job {job.job_id}; waiting for s3://{self.config.bucket}/{job.proof_key}")
        return self._wait(segment, job)

    def _artifacts(self, segment: str, directory: Path) -> str:
        digest = hashlib.sha256((directory / ARTIFACTS_FILE).read_bytes()).hexdigest()[:16]
        prefix = f"{self.config.artifacts_root.strip('/')}/{segment}/{digest}/"
        if self._object(prefix + ARTIFACTS_FILE) is None:
            self.progress(f"{segment}: uploading artifacts to s3://{self.config.bucket}/{prefix}")
            upload_artifacts(self.s3, self.config.bucket, directory, prefix)
        return prefix

    def _wait(self, segment: str, job: ProofJob) -> dict[str, Any]:
        started = time.monotonic()
        last_report = started
        while True:
            try:
                proof = self._object(job.proof_key)
                if proof is not None:
                    return self._parse(segment, job, proof)
                failure = self._object(job.error_key)
            except (ClientError, BotoCoreError) as err:
                raise PipelineError("PIPELINE_QUEUE_ERROR", f"while waiting for job {job.job_id}: {err}") from err
            if failure is not None:
                record = _json_or_text(failure)
                raise PipelineError(
                    "PIPELINE_PROOF_FAILED",
                    f"segment {segment!r}: the worker failed job {job.job_id}: "
                    f"[{record.get('code', '?')}] {record.get('reason', record)}",
                )
            now = time.monotonic()
            if now - started >= self.config.timeout_s:
                raise PipelineError(
                    "PIPELINE_PROOF_TIMEOUT",
                    f"segment {segment!r}: no proof at s3://{self.config.bucket}/{job.proof_key} after "
                    f"{self.config.timeout_s:g} s (job {job.job_id} stays queued; no receipt written)",
                )
            if now - last_report >= self.config.progress_every_s:
                last_report = now
                self.progress(f"{segment}: waiting for job {job.job_id} ({now - started:.0f} s)")
            time.sleep(self.config.poll_s)

    def _object(self, key: str) -> bytes | None:
        try:
            reply = self.s3.get_object(Bucket=self.config.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        body: bytes = reply["Body"].read(MAX_PROOF_BYTES + 1)
        return body

    def _parse(self, segment: str, job: ProofJob, data: bytes) -> dict[str, Any]:
        if len(data) > MAX_PROOF_BYTES:
            raise PipelineError("PIPELINE_PROOF_MALFORMED", f"job {job.job_id}: proof larger than {MAX_PROOF_BYTES}")
        try:
            document = strict_json.loads(data, max_bytes=MAX_PROOF_BYTES)
        except strict_json.JsonError as err:
            raise PipelineError(
                "PIPELINE_PROOF_MALFORMED", f"job {job.job_id}: proof is not strict JSON: {err.reason} ({err.code})"
            ) from None
        if not isinstance(document, dict):
            raise PipelineError("PIPELINE_PROOF_MALFORMED", f"job {job.job_id}: expected a proof object")
        self.progress(f"{segment}: proof of job {job.job_id} downloaded ({len(data)} bytes)")
        return document


def _json_or_text(data: bytes) -> dict[str, Any]:
    try:
        value = strict_json.loads(data)
    except strict_json.JsonError:
        return {"reason": data[:500].decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {"reason": str(value)[:500]}
