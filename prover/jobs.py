"""Proof jobs on the queue: the message body, and where a job's files live in S3.

Body (JSON)::

    {"job_id": "j-0001", "artifacts_prefix": "artifacts/mlp/", "input_key": "inputs/j-0001.json",
     "proof_key": "proofs/j-0001.json"}

All keys are in the worker's bucket. The artifacts prefix holds the files named in its
``artifacts.json``; the input is a tensor file (canonical or ezkl data format). A failed attempt
records its error at ``proof_key + ".error.json"``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from trustdial_verifier.errors import describe_value
from trustdial_verifier.unstable.decoding import strict_json

from prover.errors import ProverError

ERROR_SUFFIX = ".error.json"


@dataclass(frozen=True)
class ProofJob:
    job_id: str
    artifacts_prefix: str
    input_key: str
    proof_key: str

    @property
    def error_key(self) -> str:
        return self.proof_key + ERROR_SUFFIX

    def to_body(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


#: A job names four keys; a body larger than this is not one.
MAX_JOB_BYTES = 64 * 1024


def parse_job(body: str) -> ProofJob:
    try:
        doc = strict_json.loads(body, max_bytes=MAX_JOB_BYTES)
    except strict_json.JsonError as err:
        raise ProverError("JOB_MALFORMED", f"expected a strict JSON job body: {err.reason} ({err.code})") from None
    if not isinstance(doc, dict):
        raise ProverError("JOB_MALFORMED", f"expected a JSON object, got {type(doc).__name__}")
    fields = {}
    for name in ("job_id", "artifacts_prefix", "input_key", "proof_key"):
        value = doc.get(name)
        if not isinstance(value, str) or not value:
            raise ProverError("JOB_MALFORMED", f"expected a non-empty string {name!r}, found {describe_value(value)}")
        fields[name] = value
    if not fields["artifacts_prefix"].endswith("/"):
        fields["artifacts_prefix"] += "/"
    return ProofJob(**fields)
