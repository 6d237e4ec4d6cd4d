"""A proof job arrives from the queue, written by whoever can send to it: its body goes through the verifier's strict
JSON reader, so a body two parsers would read differently, or one that crashes Python's int conversion, is
``JOB_MALFORMED`` with the reader's code."""

from __future__ import annotations

import pytest

from prover.errors import ProverError
from prover.jobs import ProofJob, parse_job

GOOD = '{"job_id": "j1", "artifacts_prefix": "zk/head/", "input_key": "in/j1.json", "proof_key": "out/j1.json"}'


def test_a_genuine_job_body_parses() -> None:
    job = parse_job(GOOD)
    assert job == ProofJob("j1", "zk/head/", "in/j1.json", "out/j1.json")
    assert parse_job(job.to_body()) == job


@pytest.mark.parametrize(
    ("body", "reader_code"),
    [
        (GOOD[:-1] + ', "proof_key": "out/other.json"}', "JSON_DUPLICATE_KEY"),
        (GOOD[:-1] + ', "retries": ' + "9" * 5000 + "}", "JSON_INTEGER_TOO_LARGE"),
        (GOOD.replace('"j1"', '"\\ud800"', 1), "JSON_LONE_SURROGATE"),
        (GOOD[:-1] + ', "weight": Infinity}', "JSON_NON_FINITE"),
        (GOOD[:-1] + ', "pad": "' + "x" * (70 * 1024) + '"}', "JSON_TOO_LARGE"),
    ],
    ids=["duplicate-key", "huge-integer", "lone-surrogate", "infinity", "oversized"],
)
def test_a_body_the_strict_reader_refuses_is_job_malformed(body: str, reader_code: str) -> None:
    with pytest.raises(ProverError) as err:
        parse_job(body)
    assert err.value.code == "JOB_MALFORMED"
    assert reader_code in str(err.value)
