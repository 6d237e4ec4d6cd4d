"""Hybrid pipelines: one inference split into segments, each run under its own trust mode
(enclave attestation, zero-knowledge proof, or both), linked by tensor commitments."""
