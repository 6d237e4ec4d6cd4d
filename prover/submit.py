"""``trustdial prover submit``: upload what a job needs and enqueue it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from trustdial_verifier.unstable.proof import ARTIFACTS_FILE, load_artifacts

from prover.errors import ProverError
from prover.jobs import ProofJob


def upload_artifacts(s3: Any, bucket: str, directory: Path, prefix: str) -> list[str]:
    """Upload artifacts.json and every file it names (all of them: the worker needs the pk too)."""
    artifacts = load_artifacts(directory)
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    names = [ARTIFACTS_FILE, *(entry.path for entry in artifacts.files.values())]
    for name in names:
        if not (directory / name).is_file():
            raise ProverError("ARTIFACT_MISSING", f"{directory / name} is named in artifacts.json but missing")
        s3.upload_file(str(directory / name), bucket, prefix + name)
    return [prefix + name for name in names]


def submit_job(
    sqs: Any,
    s3: Any,
    *,
    queue_url: str,
    bucket: str,
    artifacts_prefix: str,
    input_file: Path,
    proof_key: str | None = None,
    job_id: str | None = None,
) -> ProofJob:
    job_id = job_id or f"job-{uuid.uuid4().hex[:12]}"
    input_key = f"inputs/{job_id}.json"
    s3.upload_file(str(input_file), bucket, input_key)
    job = ProofJob(
        job_id=job_id,
        artifacts_prefix=artifacts_prefix if artifacts_prefix.endswith("/") else artifacts_prefix + "/",
        input_key=input_key,
        proof_key=proof_key or f"proofs/{job_id}.json",
    )
    sqs.send_message(QueueUrl=queue_url, MessageBody=job.to_body())
    return job
