"""The trustdial service kit: enclave app, prover, infrastructure and pipelines."""

__version__ = "0.1.0"
