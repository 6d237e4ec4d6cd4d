"""Values shared by the infra tests, chosen independently of the code under test."""

from __future__ import annotations

import hashlib
from typing import Any


def label_pcr(label: str) -> str:
    """A well-formed PCR value independent of the code under test."""
    return hashlib.sha384(label.encode()).hexdigest()


CURRENT_PCRS = {"pcr0": label_pcr("test image A pcr0"), "pcr1": label_pcr("kernel A"), "pcr2": label_pcr("app A")}
NEXT_PCRS = {"pcr0": label_pcr("test image B pcr0"), "pcr1": label_pcr("kernel B"), "pcr2": label_pcr("app B")}
TEST_CONFIG: dict[str, Any] = {
    "deployment": "citest",
    "pcrs": [CURRENT_PCRS, NEXT_PCRS],
    "enclave_instance_type": "c6i.2xlarge",
    "enclave_hosts_min": 2,
    "enclave_hosts_max": 5,
    "gateway_port": 9443,
    "prover_instance_type": "r7i.4xlarge",
    "prover_max_instances": 7,
    "prover_backlog_per_instance": 3,
    "prover_job_timeout_minutes": 45,
    "measurement_retention_days": 400,
}
