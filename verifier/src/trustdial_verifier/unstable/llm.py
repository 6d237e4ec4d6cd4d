"""LLM receipts: bundle manifests, the request schema and its limits, the deterministic engine, and the
statement inputs/outputs both the enclave and the verifier commit to.

Unstable: see :mod:`trustdial_verifier.unstable`."""

from trustdial_verifier._internal.llm.bundle import (
    MANIFEST_NAME,
    BundleError,
    BundleManifest,
    build_manifest,
    file_sha256,
    verify_bundle,
    write_manifest,
)
from trustdial_verifier._internal.llm.engine import Engine
from trustdial_verifier._internal.llm.request import (
    DEFAULT_MAX_TOKENS,
    MAX_SEED,
    MAX_STOP,
    MAX_TOKENS_LIMIT,
    MAX_TOP_K,
    Endpoint,
    RequestRefused,
    parse_request,
    resolve,
)
from trustdial_verifier._internal.llm.statements import (
    OP_CHUNK,
    OP_COMPLETION,
    chain_next,
    chain_start,
    chunk_inputs,
    chunk_outputs,
    completion_inputs,
    completion_outputs,
    completion_params,
)
from trustdial_verifier._internal.llm.verify import ChatExpectation, verify_completion

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "MANIFEST_NAME",
    "MAX_SEED",
    "MAX_STOP",
    "MAX_TOKENS_LIMIT",
    "MAX_TOP_K",
    "OP_CHUNK",
    "OP_COMPLETION",
    "BundleError",
    "BundleManifest",
    "ChatExpectation",
    "Endpoint",
    "Engine",
    "RequestRefused",
    "build_manifest",
    "chain_next",
    "chain_start",
    "chunk_inputs",
    "chunk_outputs",
    "completion_inputs",
    "completion_outputs",
    "completion_params",
    "file_sha256",
    "parse_request",
    "resolve",
    "verify_bundle",
    "verify_completion",
    "write_manifest",
]
